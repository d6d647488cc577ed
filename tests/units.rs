//! Calls billed per unit through the whole path, with the real SDK and the shipped rate card:
//! images (Nova Canvas, Titan Image, Stability) by quality and size, a Nova Reel video job by the
//! second, a rerank by search unit and an ApplyGuardrail call by policy unit — each call's cost
//! asserted to the pico-dollar against the public price.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    AsyncInvokeOutputDataConfig, AsyncInvokeS3OutputDataConfig, GuardrailContentBlock,
    GuardrailContentSource, GuardrailTextBlock,
};
use aws_smithy_types::{Document, Number};
use common::*;
use serde_json::{Value, json};

/// One dollar in pico-dollars.
const USD: u64 = 1_000_000_000_000;

fn document(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(Number::PosInt(n.as_u64().unwrap())),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(document).collect()),
        Value::Object(o) => Document::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), document(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

async fn invoke(h: &Harness, app: &str, model: &str, body: Value) -> Value {
    let out = h
        .client(app)
        .invoke_model()
        .model_id(model)
        .body(Blob::new(body.to_string()))
        .send()
        .await
        .unwrap();
    serde_json::from_slice(out.body().as_ref()).unwrap()
}

fn canvas(quality: &str, width: u64, height: u64, n: u64) -> Value {
    json!({
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a lighthouse at dawn"},
        "imageGenerationConfig": {
            "numberOfImages": n, "quality": quality, "width": width, "height": height,
            "cfgScale": 8.0
        }
    })
}

#[tokio::test]
async fn images_are_priced_per_image_by_quality_and_size() {
    let h = Harness::start().await;
    // Nova Canvas: standard up to 1024×1024 $0.04; larger $0.06; premium $0.06 / $0.08.
    let nova = "amazon.nova-canvas-v1:0";
    let answer = invoke(&h, "design", nova, canvas("standard", 1024, 1024, 2)).await;
    assert_eq!(answer["images"].as_array().unwrap().len(), 2);
    invoke(&h, "design", nova, canvas("premium", 2048, 2048, 3)).await;
    invoke(&h, "design", nova, canvas("premium", 1280, 720, 1)).await;
    // Titan Image Generator v2: standard 512×512 $0.008, larger $0.01; premium $0.01 / $0.012.
    let titan = "amazon.titan-image-generator-v2:0";
    invoke(&h, "design", titan, canvas("standard", 512, 512, 1)).await;
    invoke(&h, "design", titan, canvas("premium", 1024, 1024, 2)).await;
    // Stable Image Core: $0.04 an image whatever its size.
    let core = "stability.stable-image-core-v1:1";
    invoke(
        &h,
        "design",
        core,
        json!({"prompt": "a lighthouse", "aspect_ratio": "16:9", "output_format": "png"}),
    )
    .await;

    let m = h.metrics().await;
    let image = |model| m.cost_pico("design", model, "image");
    assert_eq!(image(nova), (2 * 4 + 3 * 8 + 6) * USD / 100);
    assert_eq!(image(titan), (8 + 2 * 12) * USD / 1000);
    assert_eq!(image(core), 4 * USD / 100);
    let count = |model| {
        m.value(
            "bedrock_units_total",
            &[("app", "design"), ("model", model), ("unit", "image")],
        )
    };
    assert_eq!((count(nova), count(titan), count(core)), (6.0, 3.0, 1.0));
    // An image model has no token cost series, and nothing is unpriced.
    assert!(!m.has(
        "bedrock_cost_usd_total",
        &[("model", nova), ("type", "input")]
    ));
    assert_eq!(m.value("bedrock_unpriced_requests_total", &[]), 0.0);
    assert_eq!(m.value("bedrock_usage_missing_total", &[]), 0.0);
    let truth = h.simulator.stats().units;
    assert_eq!(truth[&(nova.to_owned(), "image")], 6);
}

#[tokio::test]
async fn a_video_job_is_priced_by_the_second_when_accepted() {
    let h = Harness::start().await;
    let reel = "amazon.nova-reel-v1:1";
    let job = |seconds: u64| {
        json!({
            "taskType": "TEXT_VIDEO",
            "textToVideoParams": {"text": "waves"},
            "videoGenerationConfig": {"durationSeconds": seconds, "fps": 24, "dimension": "1280x720"}
        })
    };
    let output = AsyncInvokeOutputDataConfig::S3OutputDataConfig(
        AsyncInvokeS3OutputDataConfig::builder()
            .s3_uri("s3://videos/out/")
            .build()
            .unwrap(),
    );
    for seconds in [6, 12] {
        let started = h
            .client("video")
            .start_async_invoke()
            .model_id(reel)
            .model_input(document(&job(seconds)))
            .output_data_config(output.clone())
            .send()
            .await
            .unwrap();
        assert!(started.invocation_arn().contains(":async-invoke/"));
    }
    let m = h.metrics().await;
    // Nova Reel: $0.08 per second of video.
    assert_eq!(m.cost_pico("video", reel, "video"), 18 * 8 * USD / 100);
    assert_eq!(
        m.value(
            "bedrock_units_total",
            &[("app", "video"), ("unit", "video_second")]
        ),
        18.0
    );
    assert_eq!(
        m.requests(&[
            ("app", "video"),
            ("operation", "StartAsyncInvoke"),
            ("status", "200")
        ]),
        2
    );
}

#[tokio::test]
async fn rerank_is_priced_per_search_unit() {
    let h = Harness::start().await;
    let documents: Vec<String> = (0..150).map(|i| format!("document {i}")).collect();
    let answer = invoke(
        &h,
        "search",
        "cohere.rerank-v3-5:0",
        json!({"query": "which one?", "documents": documents, "top_n": 3, "api_version": 2}),
    )
    .await;
    assert_eq!(answer["results"].as_array().unwrap().len(), 3);
    invoke(
        &h,
        "search",
        "amazon.rerank-v1:0",
        json!({"query": "which one?", "documents": ["a", "b"]}),
    )
    .await;
    let m = h.metrics().await;
    // Cohere Rerank 3.5 $2.00 and Amazon Rerank 1.0 $1.00 per 1,000 queries; 150 documents
    // are two queries of up to 100.
    assert_eq!(
        m.cost_pico("search", "cohere.rerank-v3-5:0", "rerank"),
        2 * 2 * USD / 1000
    );
    assert_eq!(
        m.cost_pico("search", "amazon.rerank-v1:0", "rerank"),
        USD / 1000
    );
}

#[tokio::test]
async fn guardrail_units_are_priced_per_policy() {
    let h = Harness::start().await;
    let text = "[[sim content_policy=3 topic_policy=2 sensitive_information_policy=4 word_policy=5 contextual_grounding_policy=1]]";
    let out = h
        .client("safety")
        .apply_guardrail()
        .guardrail_identifier("gr-test01")
        .guardrail_version("1")
        .source(GuardrailContentSource::Input)
        .content(GuardrailContentBlock::Text(
            GuardrailTextBlock::builder().text(text).build().unwrap(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(out.usage().unwrap().content_policy_units(), 3);
    let m = h.metrics().await;
    // Per 1,000 units: content filters and denied topics $0.15, PII $0.10, contextual
    // grounding $0.10, word filters free.
    assert_eq!(
        m.cost_pico("safety", "none", "guardrail"),
        (3 * 150 + 2 * 150 + 4 * 100 + 100) * USD / 1_000_000
    );
    assert_eq!(
        m.value(
            "bedrock_units_total",
            &[("app", "safety"), ("unit", "guardrail_text_unit")]
        ),
        15.0
    );
}

#[tokio::test]
async fn all_dollars_per_app_is_one_query() {
    let h = Harness::start().await;
    let nova = "amazon.nova-canvas-v1:0";
    invoke(&h, "mixed", nova, canvas("standard", 1024, 1024, 1)).await;
    h.client("mixed")
        .converse()
        .model_id("amazon.nova-micro-v1:0")
        .messages(user_message("[[sim input=1000 output=100]]"))
        .send()
        .await
        .unwrap();
    let m = h.metrics().await;
    // sum by (app) (bedrock_cost_usd_total): the image and the tokens together.
    let all = (m.value("bedrock_cost_usd_total", &[("app", "mixed")]) * 1e12).round() as u64;
    assert_eq!(all, 4 * USD / 100 + 1000 * 35_000 + 100 * 140_000);
}
