//! The metering proxy end to end: the real SDK → bedrock-meter → the simulator, with exact
//! tokens and costs read back from `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::primitives::Blob;
use bytes::Bytes;
use common::*;

const NOVA_MICRO: &str = "amazon.nova-micro-v1:0";
const HAIKU_3: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const SONNET_45: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

/// Micro-dollars per 1M tokens × tokens = pico-dollars.
fn pico(tokens: u64, micro_rate: u64) -> u64 {
    tokens * micro_rate
}

#[tokio::test]
async fn converse_is_metered_and_priced_exactly() {
    let h = Harness::start().await;
    let out = h
        .client("checkout")
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim input=1000 output=200]] hello"))
        .send()
        .await
        .unwrap();
    // The client sees Bedrock's own usage, untouched.
    let usage = out.usage().unwrap();
    assert_eq!((usage.input_tokens(), usage.output_tokens()), (1000, 200));

    let m = h.metrics().await;
    assert_eq!(m.tokens("checkout", NOVA_MICRO, "input"), 1000);
    assert_eq!(m.tokens("checkout", NOVA_MICRO, "output"), 200);
    assert_eq!(m.tokens("checkout", NOVA_MICRO, "cache_read"), 0);
    // Nova Micro: $0.035 / $0.14 per 1M tokens.
    assert_eq!(
        m.cost_pico("checkout", NOVA_MICRO, "input"),
        pico(1000, 35_000)
    );
    assert_eq!(
        m.cost_pico("checkout", NOVA_MICRO, "output"),
        pico(200, 140_000)
    );
    assert_eq!(
        m.requests(&[
            ("app", "checkout"),
            ("model", NOVA_MICRO),
            ("operation", "Converse"),
            ("status", "200")
        ]),
        1
    );
    assert_eq!(
        m.value(
            "bedrock_output_tokens_sum",
            &[("app", "checkout"), ("model", NOVA_MICRO)]
        ),
        200.0
    );
    assert_eq!(
        m.value(
            "bedrock_output_tokens_count",
            &[("app", "checkout"), ("model", NOVA_MICRO)]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "bedrock_input_tokens_sum",
            &[("app", "checkout"), ("model", NOVA_MICRO)]
        ),
        1000.0
    );
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
    assert_eq!(
        m.value("bedrock_rate_card_info", &[("version", "2026-12")]),
        1.0
    );
    assert_eq!(
        m.value(
            "bedrock_proxy_overhead_seconds_count",
            &[("operation", "Converse")]
        ),
        1.0
    );
    assert_eq!(m.value("bedrock_unpriced_requests_total", &[]), 0.0);
}

#[tokio::test]
async fn profiles_and_arns_are_priced_by_their_model() {
    let h = Harness::start().await;
    let client = h.client("search");
    let us = format!("us.{SONNET_45}");
    let global = format!("global.{SONNET_45}");
    let arn = format!("arn:aws:bedrock:us-east-1::foundation-model/{HAIKU_3}");
    for model in [&us, &global, &arn] {
        client
            .converse()
            .model_id(model)
            .messages(user_message("[[sim input=10000 output=1000]]"))
            .send()
            .await
            .unwrap();
    }
    let m = h.metrics().await;
    // Sonnet 4.5: geographic profiles 1.1× the global list price ($3.30/$16.50 vs $3/$15).
    assert_eq!(m.cost_pico("search", &us, "input"), pico(10_000, 3_300_000));
    assert_eq!(m.cost_pico("search", &us, "output"), pico(1000, 16_500_000));
    assert_eq!(
        m.cost_pico("search", &global, "input"),
        pico(10_000, 3_000_000)
    );
    assert_eq!(
        m.cost_pico("search", &global, "output"),
        pico(1000, 15_000_000)
    );
    // The ARN is the label as called, priced as Claude 3 Haiku ($0.25/$1.25).
    assert_eq!(m.tokens("search", &arn, "input"), 10_000);
    assert_eq!(m.cost_pico("search", &arn, "input"), pico(10_000, 250_000));
    assert_eq!(m.cost_pico("search", &arn, "output"), pico(1000, 1_250_000));
}

#[tokio::test]
async fn cache_tokens_are_metered_and_priced() {
    let h = Harness::start().await;
    let model = format!("us.{SONNET_45}");
    let out = h
        .client("support")
        .converse()
        .model_id(&model)
        .messages(user_message(
            "[[sim input=300 output=40 cache_read=2000 cache_write=500]]",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(out.usage().unwrap().cache_read_input_tokens(), Some(2000));
    let m = h.metrics().await;
    assert_eq!(m.tokens("support", &model, "cache_read"), 2000);
    assert_eq!(m.tokens("support", &model, "cache_write"), 500);
    assert_eq!(
        m.cost_pico("support", &model, "cache_read"),
        pico(2000, 330_000)
    );
    assert_eq!(
        m.cost_pico("support", &model, "cache_write"),
        pico(500, 4_125_000)
    );
    assert_eq!(
        m.cost_pico("support", &model, "input"),
        pico(300, 3_300_000)
    );
    // The per-request input histogram counts cache tokens too.
    assert_eq!(
        m.value("bedrock_input_tokens_sum", &[("app", "support")]),
        2800.0
    );
}

#[tokio::test]
async fn invoke_model_is_metered_from_headers() {
    let h = Harness::start().await;
    let body = serde_json::json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "[[sim input=321 output=54]] hi"}],
    });
    let out = h
        .client("batch")
        .invoke_model()
        .model_id(HAIKU_3)
        .content_type("application/json")
        .body(Blob::new(serde_json::to_vec(&body).unwrap()))
        .send()
        .await
        .unwrap();
    let reply: serde_json::Value = serde_json::from_slice(out.body().as_ref()).unwrap();
    assert_eq!(reply["usage"]["output_tokens"], 54);
    let m = h.metrics().await;
    assert_eq!(m.tokens("batch", HAIKU_3, "input"), 321);
    assert_eq!(m.tokens("batch", HAIKU_3, "output"), 54);
    assert_eq!(m.cost_pico("batch", HAIKU_3, "input"), pico(321, 250_000));
    assert_eq!(m.cost_pico("batch", HAIKU_3, "output"), pico(54, 1_250_000));
    assert_eq!(
        m.requests(&[("operation", "InvokeModel"), ("status", "200")]),
        1
    );
}

#[tokio::test]
async fn unpriced_model_is_metered_in_tokens_and_counted() {
    let h = Harness::start().await;
    let model = "acme.mystery-model-v1:0";
    h.client("lab")
        .converse()
        .model_id(model)
        .messages(user_message("[[sim input=77 output=11]]"))
        .send()
        .await
        .unwrap();
    let m = h.metrics().await;
    assert_eq!(m.tokens("lab", model, "input"), 77);
    assert_eq!(m.tokens("lab", model, "output"), 11);
    assert_eq!(
        m.value("bedrock_unpriced_requests_total", &[("model", model)]),
        1.0
    );
    // Never priced at zero: no cost series at all.
    assert!(!m.has("bedrock_cost_usd_total", &[("model", model)]));
}

#[tokio::test]
async fn upstream_errors_pass_through_and_are_counted() {
    let h = Harness::start().await;
    let err = h
        .client("checkout")
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim fault=throttle]]"))
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(err.is_throttling_exception(), "{err:?}");
    assert_eq!(
        err.message(),
        Some("Too many requests, please wait before trying again.")
    );

    // A model Bedrock rejects never becomes a label of its own.
    let err = h
        .client("checkout")
        .converse()
        .model_id("no.such-model-v9:0")
        .messages(user_message("[[sim fault=unknown_model]]"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");

    let m = h.metrics().await;
    assert_eq!(
        m.requests(&[
            ("app", "checkout"),
            ("model", NOVA_MICRO),
            ("status", "429")
        ]),
        1
    );
    assert_eq!(m.requests(&[("model", "unverified"), ("status", "400")]), 1);
    assert!(!m.has("bedrock_requests_total", &[("model", "no.such-model-v9:0")]));
    assert_eq!(m.tokens("checkout", NOVA_MICRO, "input"), 0);
    assert_eq!(m.value("bedrock_usage_missing_total", &[]), 0.0);
}

#[tokio::test]
async fn unreachable_upstream_is_a_502_the_sdk_decodes() {
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let proxy = start_proxy(&upstream, |_| {}).await;
    let err = sdk_client(&proxy.url(), Some("checkout"))
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("hi"))
        .send()
        .await
        .unwrap_err();
    let raw_status = err.raw_response().map(|r| r.status().as_u16());
    let err = err.into_service_error();
    assert_eq!(raw_status, Some(502));
    assert!(err.is_internal_server_exception(), "{err:?}");
    assert!(err.message().unwrap().contains("unreachable"), "{err:?}");
    let m = scrape_metrics(&proxy).await;
    assert_eq!(
        m.requests(&[
            ("app", "checkout"),
            ("model", NOVA_MICRO),
            ("status", "502")
        ]),
        1
    );
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
}

/// Credentials that never come: a request waits for them after its body was read, before it
/// is forwarded.
#[derive(Debug)]
struct CredentialsThatNeverCome;

impl aws_credential_types::provider::ProvideCredentials for CredentialsThatNeverCome {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(std::future::pending())
    }
}

#[tokio::test]
async fn a_client_that_leaves_before_the_proxy_answers_is_recorded_as_499() {
    let h = Harness::start_with(|c| {
        c.credentials = Some(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                CredentialsThatNeverCome,
            ),
        );
    })
    .await;
    let client = h.client("impatient");
    let call = tokio::spawn(async move {
        client
            .converse()
            .model_id(NOVA_MICRO)
            .messages(user_message("[[sim input=10 output=5]]"))
            .send()
            .await
    });
    // The request is in the proxy, stuck before forwarding; then its client gives up.
    wait_for(
        &h,
        "bedrock_in_flight_requests",
        &[("operation", "Converse")],
        1.0,
    )
    .await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());

    wait_for(&h, "bedrock_requests_total", &[], 1.0).await;
    let m = h.metrics().await;
    assert_eq!(
        m.requests(&[
            ("app", "impatient"),
            ("model", NOVA_MICRO),
            ("operation", "Converse"),
            ("status", "499")
        ]),
        1
    );
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
    assert_eq!(
        m.value(
            "bedrock_request_duration_seconds_count",
            &[("model", NOVA_MICRO), ("operation", "Converse")]
        ),
        1.0
    );
    // Nothing was forwarded, so nothing is metered or missing.
    assert_eq!(h.simulator.stats().requests, 0);
    assert_eq!(m.value("bedrock_tokens_total", &[]), 0.0);
    assert_eq!(m.value("bedrock_usage_missing_total", &[]), 0.0);
}

/// Once forwarded, a call is Bedrock's to bill: its client leaving while the answer is on its
/// way must not lose it. The exchange goes on without the client and is metered in full.
#[tokio::test]
async fn a_call_forwarded_before_its_client_left_is_metered_in_full() {
    let h = Harness::start().await;
    let client = h.client("impatient");
    let call = tokio::spawn(async move {
        client
            .converse()
            .model_id(NOVA_MICRO)
            .messages(user_message("[[sim input=17 output=9 delay_ms=400]]"))
            .send()
            .await
    });
    // The simulator has the request (it answers 400 ms later); then the client gives up.
    for _ in 0..200 {
        if h.simulator.stats().requests == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(h.simulator.stats().requests, 1);
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());

    wait_for(&h, "bedrock_requests_total", &[], 1.0).await;
    let m = h.metrics().await;
    assert_eq!(
        m.requests(&[
            ("app", "impatient"),
            ("model", NOVA_MICRO),
            ("operation", "Converse"),
            ("status", "200")
        ]),
        1
    );
    assert_eq!(m.tokens("impatient", NOVA_MICRO, "input"), 17);
    assert_eq!(m.tokens("impatient", NOVA_MICRO, "output"), 9);
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
}

#[tokio::test]
async fn slow_upstream_is_a_504() {
    let h = Harness::start_with(|c| c.upstream_timeout = Duration::from_millis(200)).await;
    let err = h
        .client("checkout")
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim delay_ms=2000]]"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_model_timeout_exception(), "{err:?}");
    let m = h.metrics().await;
    assert_eq!(m.requests(&[("status", "504")]), 1);
}

#[tokio::test]
async fn unknown_path_is_404_and_never_forwarded() {
    let h = Harness::start().await;
    let (status, headers, body) = http_request(
        "POST",
        &format!("{}/foundation-models/x", h.proxy.url()),
        &[("content-type", "application/json")],
        Bytes::from_static(b"{}"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(headers["x-amzn-errortype"], "UnknownOperationException");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("/foundation-models/x")
    );
    assert_eq!(body.as_object().unwrap().len(), 1);
    assert_eq!(h.simulator.stats().requests, 0);
    let m = h.metrics().await;
    assert_eq!(m.requests(&[("operation", "Other"), ("status", "404")]), 1);
}

#[tokio::test]
async fn oversized_body_is_413_and_never_forwarded() {
    let h = Harness::start_with(|c| c.max_body = 1024).await;
    let err = h
        .client("checkout")
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message(&"x".repeat(2000)))
        .send()
        .await
        .unwrap_err();
    let raw_status = err.raw_response().map(|r| r.status().as_u16());
    let err = err.into_service_error();
    assert_eq!(raw_status, Some(413));
    assert!(err.is_validation_exception(), "{err:?}");
    assert_eq!(h.simulator.stats().requests, 0);
    let m = h.metrics().await;
    assert_eq!(m.requests(&[("app", "checkout"), ("status", "413")]), 1);
}

#[tokio::test]
async fn forwarded_requests_are_signed_with_the_proxy_credentials() {
    let h = Harness::start().await;
    h.client("checkout")
        .converse()
        .model_id(format!("us.{SONNET_45}"))
        .messages(user_message("hi"))
        .send()
        .await
        .unwrap();
    let stats = h.simulator.stats();
    assert_eq!((stats.signatures_valid, stats.signatures_invalid), (1, 0));
    let seen = stats.last_request.unwrap();
    let auth = seen
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(auth.contains("Credential=AKIDPROXYTEST/"), "{auth}");
    assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
    // The model id label stays percent-encoded on the wire.
    assert!(
        seen.path
            .contains("us.anthropic.claude-sonnet-4-5-20250929-v1%3A0"),
        "{}",
        seen.path
    );

    // A proxy holding other credentials is refused by the upstream, and the 403 passes through.
    let wrong = start_proxy(&h.simulator.url(), |c| {
        c.credentials = Some(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    "AKIDPROXYTEST",
                    "not-the-secret",
                    None,
                    None,
                    "t",
                ),
            ),
        );
    })
    .await;
    let err = sdk_client(&wrong.url(), Some("checkout"))
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("hi"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
    assert_eq!(h.simulator.stats().signatures_invalid, 1);
}

#[tokio::test]
async fn app_attribution_falls_back_to_header_then_unknown() {
    let h = Harness::start_with(|c| c.region = Some("us-east-1".into())).await;
    let path = format!(
        "{}/model/{}/converse",
        h.proxy.url(),
        "amazon.nova-micro-v1%3A0"
    );
    let body = Bytes::from_static(
        br#"{"messages":[{"role":"user","content":[{"text":"[[sim input=5 output=6]]"}]}]}"#,
    );
    let json = ("content-type", "application/json");
    let calls: [&[(&str, &str)]; 4] = [
        &[json, ("x-bedrock-meter-app", "cron-job")],
        // User-Agent wins over the header; `name` is a separate user-agent token.
        &[
            json,
            ("user-agent", "x app/bad name"),
            ("x-bedrock-meter-app", "cron-job"),
        ],
        &[json, ("user-agent", "x app/has*star")],
        &[json],
    ];
    for headers in calls {
        let (status, _, _) = http_request("POST", &path, headers, body.clone()).await;
        assert_eq!(status, 200);
    }
    let m = h.metrics().await;
    assert_eq!(m.tokens("cron-job", NOVA_MICRO, "output"), 6);
    assert_eq!(m.tokens("bad", NOVA_MICRO, "output"), 6);
    assert_eq!(m.tokens("invalid", NOVA_MICRO, "output"), 6);
    assert_eq!(m.tokens("unknown", NOVA_MICRO, "output"), 6);
}

#[tokio::test]
async fn unsigned_request_without_region_is_refused() {
    let h = Harness::start().await;
    let path = format!(
        "{}/model/{}/converse",
        h.proxy.url(),
        "amazon.nova-micro-v1%3A0"
    );
    let (status, headers, body) = http_request(
        "POST",
        &path,
        &[("content-type", "application/json")],
        Bytes::from_static(b"{}"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(headers["x-amzn-errortype"], "ValidationException");
    assert!(String::from_utf8_lossy(&body).contains("--region"));
    assert_eq!(h.simulator.stats().requests, 0);
    let m = h.metrics().await;
    assert_eq!(m.requests(&[("app", "unknown"), ("status", "400")]), 1);
}

#[tokio::test]
async fn streams_pass_through_and_are_counted() {
    let h = Harness::start().await;
    let mut out = h
        .client("chat")
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim input=10 output=20 chunks=3]]"))
        .send()
        .await
        .unwrap();
    let mut events = 0;
    while let Some(_event) = out.stream.recv().await.unwrap() {
        events += 1;
    }
    // messageStart, 3 deltas, contentBlockStop, messageStop, metadata.
    assert_eq!(events, 7);
    let m = h.metrics().await;
    assert_eq!(
        m.requests(&[
            ("app", "chat"),
            ("operation", "ConverseStream"),
            ("status", "200")
        ]),
        1
    );
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
}

#[tokio::test]
async fn http2_prior_knowledge_clients_are_served() {
    let h = Harness::start_with(|c| c.region = Some("us-east-1".into())).await;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let req = http::Request::post(format!(
        "{}/model/amazon.nova-micro-v1%3A0/converse",
        h.proxy.url()
    ))
    .header("content-type", "application/json")
    .header("x-bedrock-meter-app", "node-app")
    .body(http_body_util::Full::new(Bytes::from_static(
        br#"{"messages":[{"role":"user","content":[{"text":"[[sim input=3 output=4]]"}]}]}"#,
    )))
    .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    use http_body_util::BodyExt;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["usage"]["outputTokens"], 4);
    let m = h.metrics().await;
    assert_eq!(m.tokens("node-app", NOVA_MICRO, "output"), 4);
}
