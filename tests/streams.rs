//! Streaming through the meter: ConverseStream and InvokeModelWithResponseStream consumed with
//! the real SDK, metered exactly, forwarded frame by frame, and recorded once however they end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::ConverseStreamOutput;
use common::*;

const NOVA_MICRO: &str = "amazon.nova-micro-v1:0";
const HAIKU_35: &str = "anthropic.claude-3-5-haiku-20241022-v1:0";

/// Waits until no request is in flight (a dropped stream is recorded when hyper drops it).
async fn settled(h: &Harness) -> Metrics {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = h.metrics().await;
        if m.value("bedrock_in_flight_requests", &[]) == 0.0 || Instant::now() > deadline {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn converse_stream_is_metered_exactly() {
    let h = Harness::start().await;
    let model = format!("us.{HAIKU_35}");
    let mut out = h
        .client("chat")
        .converse_stream()
        .model_id(&model)
        .messages(user_message(
            "[[sim input=900 output=120 cache_read=3000 cache_write=200 chunks=5]]",
        ))
        .send()
        .await
        .unwrap();
    let mut seen_usage = None;
    while let Some(event) = out.stream.recv().await.unwrap() {
        if let ConverseStreamOutput::Metadata(meta) = event {
            seen_usage = meta.usage().map(|u| (u.input_tokens(), u.output_tokens()));
        }
    }
    assert_eq!(seen_usage, Some((900, 120)));
    let m = h.metrics().await;
    assert_eq!(m.tokens("chat", &model, "input"), 900);
    assert_eq!(m.tokens("chat", &model, "output"), 120);
    assert_eq!(m.tokens("chat", &model, "cache_read"), 3000);
    assert_eq!(m.tokens("chat", &model, "cache_write"), 200);
    // Claude 3.5 Haiku: $0.80 / $4.00, cache read $0.08, cache write $1.00 per 1M tokens.
    assert_eq!(m.cost_pico("chat", &model, "input"), 900 * 800_000);
    assert_eq!(m.cost_pico("chat", &model, "output"), 120 * 4_000_000);
    assert_eq!(m.cost_pico("chat", &model, "cache_read"), 3000 * 80_000);
    assert_eq!(m.cost_pico("chat", &model, "cache_write"), 200 * 1_000_000);
    assert_eq!(
        m.value(
            "bedrock_time_to_first_token_seconds_count",
            &[("model", &model), ("operation", "ConverseStream")]
        ),
        1.0
    );
    assert_eq!(m.value("bedrock_usage_missing_total", &[]), 0.0);
    // The proxy's own time on the stream (every frame decoded on the side, and the recording)
    // is one observation, made when the stream ends; it is a sliver of the whole call.
    let overhead = [("operation", "ConverseStream")];
    assert_eq!(
        m.value("bedrock_proxy_overhead_seconds_count", &overhead),
        1.0
    );
    let spent = m.value("bedrock_proxy_overhead_seconds_sum", &overhead);
    let whole = m.value(
        "bedrock_request_duration_seconds_sum",
        &[("operation", "ConverseStream")],
    );
    assert!(spent > 0.0 && spent < whole, "{spent} s of {whole} s");
    // The meter's totals equal what the simulator reported sending, type by type.
    assert_matches_ground_truth(&h, &m, "chat", &model);
}

/// The meter's token totals for (`app`, `model`) equal the simulator's own count of the tokens
/// it reported, for each of the four types, and the cost is the rate card's price of them.
fn assert_matches_ground_truth(h: &Harness, m: &Metrics, app: &str, model: &str) {
    let sim = h.simulator.stats();
    let card = shipped_card();
    let resolved = card
        .resolve(&bedrock_meter::pricing::Call {
            model_id: model,
            region: Some("us-east-1"),
            latency_optimized: false,
            at: std::time::SystemTime::now(),
        })
        .unwrap();
    let truth = bedrock_meter::pricing::Usage {
        input: sim.token_count(model, "input"),
        output: sim.token_count(model, "output"),
        cache_read: sim.token_count(model, "cache_read"),
        cache_write: sim.token_count(model, "cache_write"),
        cache_write_1h: 0,
    };
    let cost = resolved
        .quote(&truth, bedrock_meter::pricing::Tier::Default)
        .cost
        .unwrap();
    for kind in bedrock_meter::pricing::TokenType::ALL {
        let name = kind.as_str();
        assert_eq!(m.tokens(app, model, name), truth.get(kind), "{name} tokens");
        assert_eq!(m.cost_pico(app, model, name), cost.get(kind), "{name} cost");
    }
}

#[tokio::test]
async fn invoke_with_response_stream_is_metered_exactly() {
    let h = Harness::start().await;
    let body = serde_json::json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "[[sim input=410 output=77 cache_read=64 cache_write=32]]"}],
    });
    let mut out = h
        .client("agent")
        .invoke_model_with_response_stream()
        .model_id(HAIKU_35)
        .content_type("application/json")
        .body(Blob::new(serde_json::to_vec(&body).unwrap()))
        .send()
        .await
        .unwrap();
    let mut chunks = 0;
    while let Some(_event) = out.body.recv().await.unwrap() {
        chunks += 1;
    }
    assert!(chunks >= 5, "{chunks}");
    let m = h.metrics().await;
    assert_eq!(m.tokens("agent", HAIKU_35, "input"), 410);
    assert_eq!(m.tokens("agent", HAIKU_35, "output"), 77);
    assert_eq!(m.tokens("agent", HAIKU_35, "cache_read"), 64);
    assert_eq!(m.tokens("agent", HAIKU_35, "cache_write"), 32);
    assert_eq!(m.cost_pico("agent", HAIKU_35, "output"), 77 * 4_000_000);
    assert_eq!(
        m.cost_pico("agent", HAIKU_35, "cache_write"),
        32 * 1_000_000
    );
    assert_eq!(
        m.requests(&[
            ("operation", "InvokeModelWithResponseStream"),
            ("status", "200")
        ]),
        1
    );
    assert_matches_ground_truth(&h, &m, "agent", HAIKU_35);
}

/// How long a test waits for something that should take milliseconds before calling it lost:
/// a bound on a hang, never a measurement.
const NEVER: Duration = Duration::from_secs(20);

#[tokio::test]
async fn frames_are_forwarded_as_they_arrive() {
    // An upstream that produces each frame only when the test says so, and the test says so
    // only once the client holds the frame before: a proxy that held back any frame (until
    // more arrived, or the end) would never deliver it.
    let (hand_over, mut bodies) = tokio::sync::mpsc::unbounded_channel();
    let upstream = Scripted::start(move |_, _| {
        let (frames, body) = channel_body();
        hand_over.send(frames).unwrap();
        event_stream_response(body)
    })
    .await;
    let proxy = start_proxy(&upstream.url(), |_| {}).await;
    let send = sdk_client(&proxy.url(), Some("chat"))
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("hi"))
        .send();
    let mut out = tokio::time::timeout(NEVER, send)
        .await
        .expect("the response head never reached the client")
        .unwrap();
    let frames = bodies.recv().await.unwrap();
    let script = [
        ("messageStart", serde_json::json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            serde_json::json!({"contentBlockIndex": 0, "delta": {"text": "one "}}),
        ),
        (
            "contentBlockDelta",
            serde_json::json!({"contentBlockIndex": 0, "delta": {"text": "two"}}),
        ),
        (
            "contentBlockStop",
            serde_json::json!({"contentBlockIndex": 0}),
        ),
        ("messageStop", serde_json::json!({"stopReason": "end_turn"})),
        (
            "metadata",
            serde_json::json!({
                "usage": {"inputTokens": 12, "outputTokens": 34, "totalTokens": 46},
                "metrics": {"latencyMs": 5},
            }),
        ),
    ];
    let mut received = Vec::new();
    for (i, (event_type, payload)) in script.iter().enumerate() {
        frames.send(event_frame(event_type, payload)).unwrap();
        let Ok(next) = tokio::time::timeout(NEVER, out.stream.recv()).await else {
            panic!("frame {i} ({event_type}) never reached the client");
        };
        let event = next.unwrap().unwrap();
        received.push(match event {
            ConverseStreamOutput::MessageStart(_) => "messageStart",
            ConverseStreamOutput::ContentBlockDelta(_) => "contentBlockDelta",
            ConverseStreamOutput::ContentBlockStop(_) => "contentBlockStop",
            ConverseStreamOutput::MessageStop(_) => "messageStop",
            ConverseStreamOutput::Metadata(_) => "metadata",
            other => panic!("unexpected event {other:?}"),
        });
    }
    drop(frames);
    assert!(out.stream.recv().await.unwrap().is_none());
    assert_eq!(received, script.iter().map(|(t, _)| *t).collect::<Vec<_>>());
    // And the usage of the last frame was metered, once.
    let m = scrape_metrics(&proxy).await;
    assert_eq!(m.tokens("chat", NOVA_MICRO, "input"), 12);
    assert_eq!(m.tokens("chat", NOVA_MICRO, "output"), 34);
    assert_eq!(
        m.requests(&[("operation", "ConverseStream"), ("status", "200")]),
        1
    );
}

#[tokio::test]
async fn mid_stream_exception_reaches_the_client_and_is_counted_once() {
    let h = Harness::start().await;
    let mut out = h
        .client("chat")
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message(
            "[[sim fault=midstream exception=throttlingException after=2]]",
        ))
        .send()
        .await
        .unwrap();
    let mut events = 0;
    let err = loop {
        match out.stream.recv().await {
            Ok(Some(_)) => events += 1,
            Ok(None) => panic!("stream ended without the exception"),
            Err(e) => break e,
        }
    };
    assert_eq!(events, 3, "messageStart and two deltas");
    let err = err.into_service_error();
    assert!(err.is_throttling_exception(), "{err:?}");
    let m = settled(&h).await;
    assert_eq!(
        m.requests(&[("operation", "ConverseStream"), ("status", "200")]),
        1
    );
    assert_eq!(
        m.value(
            "bedrock_stream_exceptions_total",
            &[("model", NOVA_MICRO), ("type", "throttlingException")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "bedrock_usage_missing_total",
            &[("reason", "stream_exception")]
        ),
        1.0
    );
    assert_eq!(m.tokens("chat", NOVA_MICRO, "output"), 0);
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
}

#[tokio::test]
async fn an_exception_type_bedrock_may_add_later_is_counted_as_other() {
    // The type is Bedrock's word, not one of the six it documents today: it must not become a
    // label value of its own (anything upstream says could otherwise mint series).
    const NEW_TYPE: &str = "modelStreamQuotaException";
    let upstream = Scripted::start(|_, _| {
        let mut body =
            event_frame("messageStart", &serde_json::json!({"role": "assistant"})).to_vec();
        body.extend_from_slice(&exception_frame(
            NEW_TYPE,
            &serde_json::json!({"message": "a kind of failure this meter has never heard of"}),
        ));
        event_stream_response(full_body(body))
    })
    .await;
    let proxy = start_proxy(&upstream.url(), |_| {}).await;
    let mut out = sdk_client(&proxy.url(), Some("chat"))
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("hi"))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        out.stream.recv().await.unwrap(),
        Some(ConverseStreamOutput::MessageStart(_))
    ));
    // The client gets the exception as sent: its SDK knows no such type either, so it is an
    // unmodeled error carrying Bedrock's message.
    let err = out.stream.recv().await.unwrap_err().into_service_error();
    assert_eq!(err.code(), None, "{err:?}");
    assert_eq!(
        err.message(),
        Some("a kind of failure this meter has never heard of")
    );

    let m = scrape_metrics(&proxy).await;
    assert_eq!(
        m.value(
            "bedrock_stream_exceptions_total",
            &[
                ("model", NOVA_MICRO),
                ("operation", "ConverseStream"),
                ("type", "other")
            ]
        ),
        1.0
    );
    assert_eq!(m.value("bedrock_stream_exceptions_total", &[]), 1.0);
    assert!(!m.has("bedrock_stream_exceptions_total", &[("type", NEW_TYPE)]));
    assert_eq!(
        m.value(
            "bedrock_usage_missing_total",
            &[
                ("operation", "ConverseStream"),
                ("reason", "stream_exception")
            ]
        ),
        1.0
    );
    assert_eq!(
        m.requests(&[("operation", "ConverseStream"), ("status", "200")]),
        1
    );
}

#[tokio::test]
async fn upstream_drop_mid_stream_is_counted_once() {
    let h = Harness::start().await;
    let sent = h
        .client("chat")
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim fault=drop after=2]]"))
        .send()
        .await;
    // Over an HTTP/2 upstream the reset can arrive with the first frames, and the HTTP/1.1
    // connection to the client is then closed before its head was written: the send fails.
    let failed = match sent {
        Err(_) => true,
        Ok(mut out) => loop {
            match out.stream.recv().await {
                Ok(Some(_)) => {}
                Ok(None) => break false,
                Err(_) => break true,
            }
        },
    };
    assert!(failed, "the client must see the stream fail");
    let m = settled(&h).await;
    assert_eq!(m.requests(&[("operation", "ConverseStream")]), 1);
    assert_eq!(
        m.value(
            "bedrock_usage_missing_total",
            &[("reason", "upstream_error")]
        ),
        1.0
    );
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
}

#[tokio::test]
async fn client_dropping_a_stream_is_counted_once() {
    // The upstream goes quiet for a minute after the client's second event: far past the
    // grace the proxy reads an abandoned stream for, set here rather than left to a default.
    let h = Harness::start_with(|c| c.abandoned_grace = Duration::from_millis(200)).await;
    let mut out = h
        .client("chat")
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim chunks=20 gap_ms=60000]]"))
        .send()
        .await
        .unwrap();
    assert!(out.stream.recv().await.unwrap().is_some());
    drop(out);
    let m = settled(&h).await;
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
    assert_eq!(
        m.requests(&[("app", "chat"), ("operation", "ConverseStream")]),
        1
    );
    assert_eq!(
        m.value("bedrock_usage_missing_total", &[("reason", "client_gone")]),
        1.0
    );
    assert_eq!(
        m.value(
            "bedrock_proxy_overhead_seconds_count",
            &[("operation", "ConverseStream")]
        ),
        1.0
    );
    // Nothing is guessed: no tokens for a stream whose usage never came.
    assert_eq!(m.tokens("chat", NOVA_MICRO, "output"), 0);
    assert_eq!(h.simulator.stats().token_count(NOVA_MICRO, "output"), 0);
}

#[tokio::test]
async fn a_stream_whose_client_left_is_read_to_its_usage_within_the_grace() {
    // The rest of the stream comes within the grace: Bedrock bills it, so it is metered.
    let h = Harness::start_with(|c| c.abandoned_grace = NEVER).await;
    let mut out = h
        .client("chat")
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message(
            "[[sim input=70 output=20 chunks=5 gap_ms=50]]",
        ))
        .send()
        .await
        .unwrap();
    assert!(out.stream.recv().await.unwrap().is_some());
    drop(out);
    let m = settled(&h).await;
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
    assert_eq!(m.value("bedrock_usage_missing_total", &[]), 0.0);
    assert_eq!(m.tokens("chat", NOVA_MICRO, "input"), 70);
    assert_eq!(m.tokens("chat", NOVA_MICRO, "output"), 20);
    assert_eq!(h.simulator.stats().token_count(NOVA_MICRO, "output"), 20);
    assert_eq!(
        m.requests(&[
            ("app", "chat"),
            ("operation", "ConverseStream"),
            ("status", "200")
        ]),
        1
    );
}

#[tokio::test]
async fn corrupt_frames_still_flow_and_are_counted_undecodable() {
    let h = Harness::start().await;
    let mut out = h
        .client("chat")
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim fault=malformed after=1]]"))
        .send()
        .await
        .unwrap();
    // The SDK checks CRCs too: it gets the good frames, then fails on the corrupt one.
    let mut events = 0;
    while let Ok(Some(_)) = out.stream.recv().await {
        events += 1;
    }
    assert!(events >= 1);
    let m = settled(&h).await;
    assert_eq!(
        m.requests(&[("operation", "ConverseStream"), ("status", "200")]),
        1
    );
    assert_eq!(
        m.value("bedrock_usage_missing_total", &[("reason", "undecodable")]),
        1.0
    );
}
