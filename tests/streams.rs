//! Streaming through the meter: ConverseStream and InvokeModelWithResponseStream consumed with
//! the real SDK, metered exactly, forwarded frame by frame, and recorded once however they end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

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
    // The meter's totals equal what the simulator reported.
    assert_eq!(h.simulator.stats().token_count(&model, "output"), 120);
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
}

#[tokio::test]
async fn frames_are_forwarded_as_they_arrive() {
    let h = Harness::start().await;
    let start = Instant::now();
    // 3 deltas + 4 other frames, 200 ms apart: the last arrives about 1.2 s after the first.
    let mut out = h
        .client("chat")
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim chunks=3 gap_ms=200]]"))
        .send()
        .await
        .unwrap();
    let mut arrivals = Vec::new();
    while let Some(_event) = out.stream.recv().await.unwrap() {
        arrivals.push(start.elapsed());
    }
    assert_eq!(arrivals.len(), 7);
    let (first, last) = (arrivals[0], arrivals[6]);
    // A buffering proxy would deliver everything at once, after the last frame.
    assert!(last - first >= Duration::from_millis(1100), "{arrivals:?}");
    assert!(first < Duration::from_millis(700), "{arrivals:?}");
    // Each frame arrives after the one before, not in a burst.
    for pair in arrivals.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(100),
            "{arrivals:?}"
        );
    }
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
async fn upstream_drop_mid_stream_is_counted_once() {
    let h = Harness::start().await;
    let mut out = h
        .client("chat")
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim fault=drop after=2]]"))
        .send()
        .await
        .unwrap();
    let mut failed = false;
    loop {
        match out.stream.recv().await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
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
    let h = Harness::start().await;
    let mut out = h
        .client("chat")
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim chunks=20 gap_ms=100]]"))
        .send()
        .await
        .unwrap();
    assert!(out.stream.recv().await.unwrap().is_some());
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
