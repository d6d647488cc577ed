//! Pricing dimensions through the whole path: the real SDK → the proxy → the simulator, with the
//! tier, the Region and the cache TTLs taken from what Bedrock (here the simulator) answers and
//! what the client signed — priced by the shipped card, asserted to the pico-dollar.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{AppName, BehaviorVersion, Region};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{PerformanceConfigLatency, ServiceTier, ServiceTierType};
use common::*;

const GPT_OSS: &str = "openai.gpt-oss-120b-1:0";
const NOVA_MICRO: &str = "amazon.nova-micro-v1:0";
/// `caching = false` in the card: cache tokens are priced at the input rate.
const HAIKU_3: &str = "anthropic.claude-3-haiku-20240307-v1:0";
/// Has a latency-optimized price in the card (0.90 / 0.90 against 0.72 / 0.72).
const LLAMA_31_70B: &str = "meta.llama3-1-70b-instruct-v1:0";

fn client_in(h: &Harness, app: &str, region: &str) -> Client {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(h.proxy.url())
        .credentials_provider(client_credentials())
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
        .app_name(AppName::new(app.to_owned()).unwrap())
        .build();
    Client::from_conf(config)
}

#[tokio::test]
async fn service_tier_from_the_response_sets_the_price() {
    let h = Harness::start().await;
    // The app asks for Flex in the request; Bedrock echoes the tier it served in the response.
    let flex = h
        .client("batch")
        .converse()
        .model_id(GPT_OSS)
        .service_tier(
            ServiceTier::builder()
                .r#type(ServiceTierType::Flex)
                .build()
                .unwrap(),
        )
        .messages(user_message("[[sim input=1000 output=100]]"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        flex.service_tier().map(|t| t.r#type().as_str()),
        Some("flex")
    );
    // Priority through InvokeModel: the tier comes back in X-Amzn-Bedrock-Service-Tier.
    h.client("chat")
        .invoke_model()
        .model_id(GPT_OSS)
        .body(Blob::new(
            r#"{"messages":[{"role":"user","content":"[[sim input=1000 output=100 tier=priority]]"}]}"#,
        ))
        .send()
        .await
        .unwrap();
    // Default, streamed: the tier is in the metadata event (none named = default).
    let out = h
        .client("chat")
        .converse_stream()
        .model_id(GPT_OSS)
        .messages(user_message("[[sim input=1000 output=100]]"))
        .send()
        .await
        .unwrap();
    let mut events = out.stream;
    while events.recv().await.unwrap().is_some() {}

    let m = h.metrics().await;
    // gpt-oss-120b: $0.15 / $0.60 per 1M; Flex 0.5×, Priority 1.75×.
    assert_eq!(m.cost_pico("batch", GPT_OSS, "input"), 1000 * 75_000);
    assert_eq!(m.cost_pico("batch", GPT_OSS, "output"), 100 * 300_000);
    assert_eq!(
        m.cost_pico("chat", GPT_OSS, "input"),
        1000 * 262_500 + 1000 * 150_000
    );
    assert_eq!(
        m.cost_pico("chat", GPT_OSS, "output"),
        100 * 1_050_000 + 100 * 600_000
    );
    for (tier, n) in [("flex", 1.0), ("priority", 1.0), ("default", 1.0)] {
        assert_eq!(
            m.value(
                "bedrock_service_tier_requests_total",
                &[("model", GPT_OSS), ("tier", tier)]
            ),
            n,
            "{tier}"
        );
    }
}

#[tokio::test]
async fn the_signed_region_and_the_cache_ttl_set_the_price() {
    let h = Harness::start().await;
    // Signed for eu-west-1: Nova Micro's EU price.
    client_in(&h, "eu-app", "eu-west-1")
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim input=1000 output=100]]"))
        .send()
        .await
        .unwrap();
    client_in(&h, "us-app", "us-east-1")
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim input=1000 output=100]]"))
        .send()
        .await
        .unwrap();
    // A 1-hour cache write on the global Sonnet 4.5 profile, streamed.
    let sonnet = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
    let out = h
        .client("agent")
        .converse_stream()
        .model_id(sonnet)
        .messages(user_message(
            "[[sim input=10 output=10 cache_write=3000 cache_write_1h=2000]]",
        ))
        .send()
        .await
        .unwrap();
    let mut events = out.stream;
    while events.recv().await.unwrap().is_some() {}

    let m = h.metrics().await;
    // Nova Micro: eu-west-1 $0.040 / $0.16, us-east-1 $0.035 / $0.14.
    assert_eq!(m.cost_pico("eu-app", NOVA_MICRO, "input"), 1000 * 40_000);
    assert_eq!(m.cost_pico("eu-app", NOVA_MICRO, "output"), 100 * 160_000);
    assert_eq!(m.cost_pico("us-app", NOVA_MICRO, "input"), 1000 * 35_000);
    assert_eq!(m.cost_pico("us-app", NOVA_MICRO, "output"), 100 * 140_000);
    // Sonnet 4.5 global: 1 000 tokens at the 5-minute $3.75, 2 000 at the 1-hour $6.00.
    assert_eq!(
        m.cost_pico("agent", sonnet, "cache_write"),
        1000 * 3_750_000 + 2000 * 6_000_000
    );
    assert_eq!(m.tokens("agent", sonnet, "cache_write"), 3000);
}

#[tokio::test]
async fn fallback_prices_are_charged_as_documented_and_counted_as_anomalies() {
    let h = Harness::start().await;
    // Bedrock says it served Priority, but the card has no Priority price for Nova Micro:
    // priced at the default tier.
    let out = h
        .client("chat")
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim input=1000 output=100 tier=priority]]"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.service_tier().map(|t| t.r#type().as_str()),
        Some("priority")
    );
    // Cache tokens on a model the card says does not cache: priced at the input rate.
    h.client("chat")
        .converse()
        .model_id(HAIKU_3)
        .messages(user_message(
            "[[sim input=1000 output=100 cache_read=400 cache_write=200]]",
        ))
        .send()
        .await
        .unwrap();
    // Priced as the card says, no fallback: no anomaly.
    h.client("chat")
        .converse()
        .model_id(GPT_OSS)
        .messages(user_message("[[sim input=1000 output=100 tier=priority]]"))
        .send()
        .await
        .unwrap();

    let m = h.metrics().await;
    // Nova Micro at the default $0.035 / $0.14.
    assert_eq!(m.cost_pico("chat", NOVA_MICRO, "input"), 1000 * 35_000);
    assert_eq!(m.cost_pico("chat", NOVA_MICRO, "output"), 100 * 140_000);
    // Claude 3 Haiku: $0.25 input, so cache reads and writes at $0.25 too.
    assert_eq!(m.cost_pico("chat", HAIKU_3, "cache_read"), 400 * 250_000);
    assert_eq!(m.cost_pico("chat", HAIKU_3, "cache_write"), 200 * 250_000);
    assert_eq!(m.cost_pico("chat", HAIKU_3, "input"), 1000 * 250_000);
    for (model, reason) in [
        (NOVA_MICRO, "tier_not_priced"),
        (HAIKU_3, "cache_tokens_on_uncached_model"),
    ] {
        assert_eq!(
            m.value(
                "bedrock_pricing_anomalies_total",
                &[("model", model), ("reason", reason)]
            ),
            1.0,
            "{model} {reason}"
        );
    }
    assert_eq!(m.value("bedrock_pricing_anomalies_total", &[]), 2.0);
}

/// InvokeModel answered the way Bedrock answers it: usage in the token-count headers, and the
/// latency it served echoed in `X-Amzn-Bedrock-PerformanceConfig-Latency` (the simulator does
/// not model latency-optimized inference).
async fn bedrock_echoing_the_latency() -> Scripted {
    Scripted::start(|parts, _| {
        let mut answer = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("x-amzn-requestid", "scripted")
            .header("x-amzn-bedrock-input-token-count", "1000")
            .header("x-amzn-bedrock-output-token-count", "100")
            .header("x-amzn-bedrock-invocation-latency", "40");
        if let Some(latency) = parts
            .headers
            .get("x-amzn-bedrock-performanceconfig-latency")
        {
            answer = answer.header("x-amzn-bedrock-performanceconfig-latency", latency);
        }
        answer
            .body(full_body(r#"{"generation":"ok","stop_reason":"stop"}"#))
            .unwrap()
    })
    .await
}

#[tokio::test]
async fn the_latency_bedrock_served_sets_the_price() {
    let upstream = bedrock_echoing_the_latency().await;
    let proxy = start_proxy(&upstream.url(), |_| {}).await;
    let invoke = |app: &str, model: &str, latency: PerformanceConfigLatency| {
        sdk_client(&proxy.url(), Some(app))
            .invoke_model()
            .model_id(model)
            .content_type("application/json")
            .performance_config_latency(latency)
            .body(Blob::new(r#"{"prompt":"hi"}"#))
            .send()
    };
    let out = invoke("fast", LLAMA_31_70B, PerformanceConfigLatency::Optimized)
        .await
        .unwrap();
    assert_eq!(
        out.performance_config_latency(),
        Some(&PerformanceConfigLatency::Optimized)
    );
    invoke("standard", LLAMA_31_70B, PerformanceConfigLatency::Standard)
        .await
        .unwrap();
    // Optimized, served, on a model the card has no latency-optimized price for.
    invoke("fast", NOVA_MICRO, PerformanceConfigLatency::Optimized)
        .await
        .unwrap();

    let m = scrape_metrics(&proxy).await;
    // Llama 3.1 70B: $0.90 / $0.90 optimized, $0.72 / $0.72 standard.
    assert_eq!(m.cost_pico("fast", LLAMA_31_70B, "input"), 1000 * 900_000);
    assert_eq!(m.cost_pico("fast", LLAMA_31_70B, "output"), 100 * 900_000);
    assert_eq!(
        m.cost_pico("standard", LLAMA_31_70B, "input"),
        1000 * 720_000
    );
    assert_eq!(
        m.cost_pico("standard", LLAMA_31_70B, "output"),
        100 * 720_000
    );
    // Nova Micro at its standard $0.035 / $0.14, and the fallback counted.
    assert_eq!(m.cost_pico("fast", NOVA_MICRO, "input"), 1000 * 35_000);
    assert_eq!(m.cost_pico("fast", NOVA_MICRO, "output"), 100 * 140_000);
    assert_eq!(
        m.value(
            "bedrock_pricing_anomalies_total",
            &[
                ("model", NOVA_MICRO),
                ("reason", "latency_optimized_not_priced")
            ]
        ),
        1.0
    );
    assert_eq!(m.value("bedrock_pricing_anomalies_total", &[]), 1.0);
    assert_eq!(
        m.requests(&[("operation", "InvokeModel"), ("status", "200")]),
        3
    );
}
