//! A Converse answer that arrives slowly: the proxy reads it whole (for its cost header) and the
//! upstream idle timeout bounds each silence in it, not the whole read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use common::*;

const NOVA_MICRO: &str = "amazon.nova-micro-v1:0";
const IDLE: Duration = Duration::from_millis(1000);

#[tokio::test]
async fn a_slow_but_live_converse_answer_is_read_to_its_end_and_metered() {
    let h = Harness::start_with(|c| c.upstream_idle_timeout = IDLE).await;
    // 15 pieces 100 ms apart: 1.4 s in all, longer than the idle timeout, but never silent
    // for more than a tenth of it.
    let out = h
        .client("slow")
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message(
            "[[sim input=700 output=90 chunks=15 gap_ms=100]]",
        ))
        .send()
        .await
        .unwrap();
    let usage = out.usage().unwrap();
    assert_eq!((usage.input_tokens(), usage.output_tokens()), (700, 90));

    let m = h.metrics().await;
    assert_eq!(
        m.requests(&[
            ("app", "slow"),
            ("operation", "Converse"),
            ("status", "200")
        ]),
        1
    );
    assert_eq!(m.tokens("slow", NOVA_MICRO, "input"), 700);
    assert_eq!(m.tokens("slow", NOVA_MICRO, "output"), 90);
    // Nova Micro: $0.035 / $0.14 per 1M tokens.
    assert_eq!(m.cost_pico("slow", NOVA_MICRO, "input"), 700 * 35_000);
    assert_eq!(m.cost_pico("slow", NOVA_MICRO, "output"), 90 * 140_000);
    assert_eq!(m.value("bedrock_usage_missing_total", &[]), 0.0);
}

#[tokio::test]
async fn a_converse_answer_silent_past_the_idle_timeout_is_504_and_counted_missing() {
    let h = Harness::start_with(|c| c.upstream_idle_timeout = IDLE).await;
    let err = h
        .client("stalled")
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message(
            "[[sim input=70 output=9 chunks=2 gap_ms=4000]]",
        ))
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert_eq!(err.code(), Some("ModelTimeoutException"), "{err:?}");
    assert_eq!(
        err.message(),
        Some("the upstream Bedrock endpoint did not answer within 1s")
    );

    let m = h.metrics().await;
    assert_eq!(
        m.requests(&[
            ("app", "stalled"),
            ("operation", "Converse"),
            ("status", "504")
        ]),
        1
    );
    assert_eq!(
        m.value(
            "bedrock_usage_missing_total",
            &[("operation", "Converse"), ("reason", "upstream_error")]
        ),
        1.0
    );
    assert_eq!(m.tokens("stalled", NOVA_MICRO, "input"), 0);
}
