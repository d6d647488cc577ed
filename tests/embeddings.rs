//! Embedding calls through InvokeModel: Bedrock reports their input tokens in
//! `X-Amzn-Bedrock-Input-Token-Count` and sends no output-token header (the simulator answers
//! the same way, as the recorded responses in `tests/fixtures/golden` show Bedrock does). They
//! are metered and priced like any other call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_bedrockruntime::primitives::Blob;
use common::*;

const TITAN_V2: &str = "amazon.titan-embed-text-v2:0";

#[tokio::test]
async fn embedding_calls_are_metered_with_input_tokens_only() {
    let h = Harness::start().await;
    for input in [37, 5] {
        let out = h
            .client("search")
            .invoke_model()
            .model_id(TITAN_V2)
            .content_type("application/json")
            .body(Blob::new(format!(
                r#"{{"inputText":"[[sim input={input}]] what is the return policy?"}}"#
            )))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(out.body().as_ref()).unwrap();
        assert_eq!(body["inputTextTokenCount"], input);
    }

    let m = h.metrics().await;
    assert_eq!(m.value("bedrock_usage_missing_total", &[]), 0.0);
    assert_eq!(m.tokens("search", TITAN_V2, "input"), 42);
    assert_eq!(m.tokens("search", TITAN_V2, "output"), 0);
    // Titan Text Embeddings V2: $0.02 per 1M input tokens.
    assert_eq!(m.cost_pico("search", TITAN_V2, "input"), 42 * 20_000);
    assert_eq!(m.cost_pico("search", TITAN_V2, "output"), 0);
    assert_eq!(
        m.requests(&[
            ("app", "search"),
            ("operation", "InvokeModel"),
            ("status", "200")
        ]),
        2
    );
    // The meter counted what the simulator sent, no more, no less.
    let truth = h.simulator.stats();
    let sent = |kind: &'static str| truth.tokens.get(&(TITAN_V2.to_owned(), kind)).copied();
    assert_eq!((sent("input"), sent("output")), (Some(42), Some(0)));
}

const TITAN_MULTIMODAL: &str = "amazon.titan-embed-image-v1";

/// Titan Multimodal Embeddings bills its input tokens and, on top, each input image.
#[tokio::test]
async fn a_multimodal_embedding_is_priced_per_token_and_per_image() {
    let h = Harness::start().await;
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    let bodies = [
        // Text and image: 11 tokens and one image.
        format!(r#"{{"inputText":"[[sim input=11]] a red bicycle","inputImage":"{png}"}}"#),
        // Image only: the answer still counts its (zero) input tokens.
        format!(
            r#"{{"inputText":"[[sim input=0]]","inputImage":"{png}","embeddingConfig":{{"outputEmbeddingLength":256}}}}"#
        ),
        // Text only: no image to bill.
        r#"{"inputText":"[[sim input=7]] a blue car"}"#.to_owned(),
    ];
    for body in bodies {
        h.client("catalog")
            .invoke_model()
            .model_id(TITAN_MULTIMODAL)
            .content_type("application/json")
            .body(Blob::new(body))
            .send()
            .await
            .unwrap();
    }

    let m = h.metrics().await;
    assert_eq!(m.value("bedrock_usage_missing_total", &[]), 0.0);
    assert_eq!(m.value("bedrock_unpriced_requests_total", &[]), 0.0);
    assert_eq!(m.tokens("catalog", TITAN_MULTIMODAL, "input"), 18);
    // $0.80 per 1M input tokens, $0.00006 per input image.
    assert_eq!(
        m.cost_pico("catalog", TITAN_MULTIMODAL, "input"),
        18 * 800_000
    );
    assert_eq!(
        m.cost_pico("catalog", TITAN_MULTIMODAL, "image"),
        2 * 60_000_000
    );
    assert_eq!(
        m.value(
            "bedrock_units_total",
            &[
                ("app", "catalog"),
                ("model", TITAN_MULTIMODAL),
                ("unit", "image")
            ]
        ),
        2.0
    );
    let truth = h.simulator.stats();
    assert_eq!(truth.units[&(TITAN_MULTIMODAL.to_owned(), "image")], 2);
    assert_eq!(truth.tokens[&(TITAN_MULTIMODAL.to_owned(), "input")], 18);
}
