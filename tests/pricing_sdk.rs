//! Pricing dimensions through the whole path: the real SDK → the proxy → the simulator, with the
//! tier, the Region and the cache TTLs taken from what Bedrock (here the simulator) answers and
//! what the client signed — priced by the shipped card, asserted to the pico-dollar.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{AppName, BehaviorVersion, Region};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{ServiceTier, ServiceTierType};
use common::*;

const GPT_OSS: &str = "openai.gpt-oss-120b-1:0";
const NOVA_MICRO: &str = "amazon.nova-micro-v1:0";

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
