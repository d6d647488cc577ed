//! The real `aws-sdk-bedrockruntime` client against the simulator: the real Rust SDK must decode every answer shape and sign requests the simulator accepts.

use super::auth::creds;
use super::*;
use aws_sdk_bedrockruntime::config::{Region, retry::RetryConfig};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseStreamOutput, ResponseStream, ServiceTierType,
};

fn sdk(sim: &Simulator, secret: &str) -> aws_sdk_bedrockruntime::Client {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(sim.url())
        .credentials_provider(creds(secret))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_bedrockruntime::Client::from_conf(config)
}

fn message(text: &str) -> aws_sdk_bedrockruntime::types::Message {
    aws_sdk_bedrockruntime::types::Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text.to_owned()))
        .build()
        .unwrap()
}

async fn signed_sim() -> Simulator {
    Simulator::start(SimulatorConfig {
        expect_credentials: Some(creds("sdk-secret")),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn converse_and_stream_decode() {
    let sim = signed_sim().await;
    let client = sdk(&sim, "sdk-secret");
    let out = client
        .converse()
        .model_id("amazon.nova-micro-v1:0")
        .messages(message(
            "[[sim input=10 output=5 cache_read=3 cache_write=7 cache_write_1h=2 tier=priority]]",
        ))
        .send()
        .await
        .unwrap();
    let usage = out.usage().unwrap();
    assert_eq!(
        (
            usage.input_tokens(),
            usage.output_tokens(),
            usage.total_tokens()
        ),
        (10, 5, 25)
    );
    assert_eq!(usage.cache_read_input_tokens(), Some(3));
    assert_eq!(usage.cache_write_input_tokens(), Some(7));
    let details: Vec<(String, i32)> = usage
        .cache_details()
        .iter()
        .map(|d| (d.ttl().as_str().to_owned(), d.input_tokens()))
        .collect();
    assert_eq!(details, [("5m".to_owned(), 5), ("1h".to_owned(), 2)]);
    assert_eq!(
        out.service_tier().unwrap().r#type(),
        &ServiceTierType::Priority
    );
    assert_eq!(out.stop_reason().as_str(), "end_turn");

    let mut stream = client
        .converse_stream()
        .model_id("us.anthropic.claude-3-5-haiku-20241022-v1:0")
        .messages(message("[[sim input=8 output=2 chunks=2]]"))
        .send()
        .await
        .unwrap()
        .stream;
    let mut text = String::new();
    let mut usage = None;
    while let Some(event) = stream.recv().await.unwrap() {
        match event {
            ConverseStreamOutput::ContentBlockDelta(d) => {
                text.push_str(d.delta().unwrap().as_text().unwrap());
            }
            ConverseStreamOutput::Metadata(m) => usage = m.usage().cloned(),
            _ => {}
        }
    }
    assert_eq!(text, "Simulated reply part 1. Simulated reply part 2. ");
    let usage = usage.unwrap();
    assert_eq!((usage.input_tokens(), usage.output_tokens()), (8, 2));

    let mut stream = client
        .converse_stream()
        .model_id("amazon.nova-micro-v1:0")
        .messages(message(
            "[[sim fault=midstream exception=serviceUnavailableException]]",
        ))
        .send()
        .await
        .unwrap()
        .stream;
    let err = loop {
        match stream.recv().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream must fail"),
            Err(e) => break e,
        }
    };
    assert!(err.into_service_error().is_service_unavailable_exception());

    let s = sim.stats();
    assert_eq!((s.signatures_valid, s.signatures_invalid), (3, 0));
}

#[tokio::test]
async fn invoke_decode_and_errors() {
    let sim = signed_sim().await;
    let client = sdk(&sim, "sdk-secret");
    let out = client
        .invoke_model()
        .model_id("anthropic.claude-3-haiku-20240307-v1:0")
        .content_type("application/json")
        .body(Blob::new(prompt("[[sim tier=flex]]")))
        .send()
        .await
        .unwrap();
    assert_eq!(out.service_tier(), Some(&ServiceTierType::Flex));
    let v: Value = serde_json::from_slice(out.body().as_ref()).unwrap();
    assert_eq!(v["usage"]["output_tokens"], 25);

    let mut stream = client
        .invoke_model_with_response_stream()
        .model_id("anthropic.claude-3-haiku-20240307-v1:0")
        .body(Blob::new(prompt("[[sim output=3]]")))
        .send()
        .await
        .unwrap()
        .body;
    let mut last = Value::Null;
    while let Some(event) = stream.recv().await.unwrap() {
        if let ResponseStream::Chunk(part) = event {
            last = serde_json::from_slice(part.bytes().unwrap().as_ref()).unwrap();
        }
    }
    assert_eq!(
        last["amazon-bedrock-invocationMetrics"]["outputTokenCount"],
        3
    );

    let err = client
        .converse()
        .model_id("amazon.nova-micro-v1:0")
        .messages(message("[[sim fault=throttle]]"))
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(err.is_throttling_exception(), "{err:?}");
    assert_eq!(
        aws_sdk_bedrockruntime::error::ProvideErrorMetadata::message(&err),
        Some("Too many requests, please wait before trying again.")
    );

    let err = sdk(&sim, "bad-secret")
        .converse()
        .model_id("amazon.nova-micro-v1:0")
        .messages(message("hi"))
        .send()
        .await
        .unwrap_err();
    let code = aws_sdk_bedrockruntime::error::ProvideErrorMetadata::code(&err.into_service_error())
        .map(str::to_owned);
    assert_eq!(code.as_deref(), Some("InvalidSignatureException"));
    let s = sim.stats();
    assert_eq!((s.signatures_valid, s.signatures_invalid), (3, 1));
    let claude = "anthropic.claude-3-haiku-20240307-v1:0";
    assert_eq!(s.token_count(claude, "output"), 28);
}
