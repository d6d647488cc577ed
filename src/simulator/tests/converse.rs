//! Converse and ConverseStream: the JSON shape, defaults and tiers, and paced stream frames.

use super::*;

#[tokio::test]
async fn converse_json_shape() {
    let sim = sim().await;
    let body = prompt(
        "hi [[sim input=10 output=5 cache_read=3 cache_write=7 cache_write_1h=2 tier=priority delay_ms=12 chunks=2]]",
    );
    let (status, headers, v) = post_json(&sim, &format!("/model/{NOVA}/converse"), &body).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(
        header(&headers, "x-amzn-requestid"),
        "00000000-0000-4000-8000-000000000001"
    );
    assert_eq!(
        v,
        json!({
            "output": {"message": {"role": "assistant", "content": [
                {"text": "Simulated reply part 1. Simulated reply part 2. "}
            ]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": 10, "outputTokens": 5, "totalTokens": 25,
                "cacheReadInputTokens": 3, "cacheWriteInputTokens": 7,
                "cacheDetails": [{"ttl": "5m", "inputTokens": 5}, {"ttl": "1h", "inputTokens": 2}],
            },
            "metrics": {"latencyMs": 12},
            "serviceTier": {"type": "priority"},
        })
    );
    let stats = sim.stats();
    assert_eq!(
        tokens(&stats),
        [
            ("amazon.nova-micro-v1:0".to_owned(), "cache_read", 3),
            ("amazon.nova-micro-v1:0".to_owned(), "cache_write", 7),
            ("amazon.nova-micro-v1:0".to_owned(), "input", 10),
            ("amazon.nova-micro-v1:0".to_owned(), "output", 5),
        ]
    );
}

#[tokio::test]
async fn converse_defaults_and_requested_tier() {
    let sim = sim().await;
    let body = json!({"messages": [], "serviceTier": {"type": "flex"}}).to_string();
    let (_, _, v) = post_json(&sim, &format!("/model/{NOVA}/converse"), &body).await;
    let input = body.len().div_ceil(4) as u64;
    assert_eq!(
        v["usage"],
        json!({"inputTokens": input, "outputTokens": 25, "totalTokens": input + 25})
    );
    assert_eq!(v["serviceTier"], json!({"type": "flex"}));
    assert_eq!(v["metrics"], json!({"latencyMs": 0}));
    let (_, _, v) = post_json(&sim, &format!("/model/{NOVA}/converse"), "{}").await;
    assert_eq!(v.get("serviceTier"), None);
}

#[tokio::test]
async fn converse_stream_frames_and_pacing() {
    let sim = sim().await;
    let body = prompt(
        "[[sim input=11 output=6 cache_read=2 chunks=3 ttft_ms=300 gap_ms=40 tier=default]]",
    );
    let started = Instant::now();
    let r = send(&sim, &format!("/model/{NOVA}/converse-stream"), &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(r.headers(), "content-type"),
        "application/vnd.amazon.eventstream"
    );
    let headers_at = started.elapsed();
    let f = read_frames(r, started).await;
    assert_eq!(f.error, None);
    let types: Vec<String> = f.messages.iter().map(|m| h(m, ":event-type")).collect();
    assert_eq!(
        types,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    for m in &f.messages {
        assert_eq!(h(m, ":message-type"), "event");
        assert_eq!(h(m, ":content-type"), "application/json");
        assert!(payload(m)["p"].as_str().is_some_and(|p| !p.is_empty()));
    }
    assert_eq!(payload(&f.messages[0])["role"], "assistant");
    assert_eq!(
        payload(&f.messages[2])["delta"],
        json!({"text": "Simulated reply part 2. "})
    );
    assert_eq!(payload(&f.messages[2])["contentBlockIndex"], 0);
    assert_eq!(payload(&f.messages[5])["stopReason"], "end_turn");
    let mut metadata = payload(&f.messages[6]);
    metadata.as_object_mut().unwrap().remove("p");
    assert_eq!(
        metadata,
        json!({
            "usage": {"inputTokens": 11, "outputTokens": 6, "totalTokens": 19, "cacheReadInputTokens": 2},
            "metrics": {"latencyMs": 300 + 6 * 40},
            "serviceTier": {"type": "default"},
        })
    );
    // One body chunk per frame, each at its own time: ttft before the first, gap between.
    assert_eq!(f.chunk_times.len(), 7);
    assert!(headers_at < Duration::from_millis(280), "{headers_at:?}");
    for (i, t) in f.chunk_times.iter().enumerate() {
        let due = Duration::from_millis(300 + 40 * i as u64);
        assert!(*t >= due, "frame {i} at {t:?}, due {due:?}");
    }
    assert_eq!(
        sim.stats().token_count("amazon.nova-micro-v1:0", "input"),
        11
    );
    assert_eq!(
        sim.stats()
            .token_count("amazon.nova-micro-v1:0", "cache_read"),
        2
    );
}

const ROUTER: &str =
    "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Adefault-prompt-router%2Fanthropic.claude%3A1";
const HAIKU_PROFILE: &str = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0";

#[tokio::test]
async fn prompt_router_trace_and_ground_truth() {
    let sim = sim().await;
    let body = prompt("[[sim input=10 output=5]]");
    let (status, _, v) = post_json(&sim, &format!("/model/{ROUTER}/converse"), &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["trace"],
        json!({"promptRouter": {"invokedModelId": HAIKU_PROFILE}})
    );
    assert_eq!(sim.stats().token_count(HAIKU_PROFILE, "input"), 10);

    // The directive chooses; the usage goes to its choice.
    let body = prompt("[[sim input=3 output=1 invoked=anthropic.claude-3-5-sonnet-20240620-v1:0]]");
    let (_, _, v) = post_json(&sim, &format!("/model/{ROUTER}/converse"), &body).await;
    assert_eq!(
        v["trace"]["promptRouter"]["invokedModelId"],
        "anthropic.claude-3-5-sonnet-20240620-v1:0"
    );
    let stats = sim.stats();
    assert_eq!(
        stats.token_count("anthropic.claude-3-5-sonnet-20240620-v1:0", "input"),
        3
    );
    assert!(
        !stats
            .tokens
            .keys()
            .any(|(m, _)| m.contains("prompt-router"))
    );

    // A stream names it in the metadata event.
    let custom = "arn%3Aaws%3Abedrock%3Aeu-west-1%3A000000000001%3Aprompt-router%2Fr1";
    let body = prompt("[[sim input=4 output=2]]");
    let r = send(&sim, &format!("/model/{custom}/converse-stream"), &body).await;
    let f = read_frames(r, Instant::now()).await;
    let metadata = payload(f.messages.last().unwrap());
    let nova = "arn:aws:bedrock:eu-west-1:000000000001:inference-profile/us.amazon.nova-lite-v1:0";
    assert_eq!(
        metadata["trace"],
        json!({"promptRouter": {"invokedModelId": nova}})
    );
    assert_eq!(sim.stats().token_count(nova, "output"), 2);

    // `invoked=` means nothing to a model that is not a router.
    let body = prompt("[[sim input=2 invoked=other]]");
    let (_, _, v) = post_json(&sim, &format!("/model/{NOVA}/converse"), &body).await;
    assert_eq!(v.get("trace"), None);
    assert_eq!(
        sim.stats().token_count("amazon.nova-micro-v1:0", "input"),
        2
    );
    assert_eq!(sim.stats().token_count("other", "input"), 0);
}

#[tokio::test]
async fn unknown_prompt_routers() {
    let sim = sim().await;
    let unnamed = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Adefault-prompt-router%2F";
    for (model, body) in [
        (unnamed, prompt("hi")),
        (ROUTER, prompt("[[sim fault=unknown_model]]")),
    ] {
        for action in ["converse", "converse-stream"] {
            let (status, headers, v) =
                post_json(&sim, &format!("/model/{model}/{action}"), &body).await;
            assert_eq!(status, 400, "{model} {action}");
            assert_eq!(
                header(&headers, "x-amzn-errortype"),
                format!("ValidationException:{BEDROCK_NS}")
            );
            assert_eq!(
                v,
                json!({"message": "The provided model identifier is invalid."})
            );
        }
    }
    assert!(sim.stats().tokens.is_empty());
}
