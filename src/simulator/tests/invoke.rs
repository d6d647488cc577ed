//! InvokeModel and its stream (Anthropic and generic chunks), and the other operations.

use super::*;

#[tokio::test]
async fn invoke_model_headers_and_bodies() {
    let sim = sim().await;
    let body = prompt("[[sim input=100 output=20 cache_read=50 cache_write=30 tier=flex]]");
    let (status, headers, v) = post_json(&sim, &format!("/model/{CLAUDE}/invoke"), &body).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(header(&headers, "x-amzn-bedrock-input-token-count"), "100");
    assert_eq!(header(&headers, "x-amzn-bedrock-output-token-count"), "20");
    assert_eq!(header(&headers, "x-amzn-bedrock-invocation-latency"), "0");
    assert_eq!(
        header(&headers, "x-amzn-bedrock-cache-read-input-token-count"),
        "50"
    );
    assert_eq!(
        header(&headers, "x-amzn-bedrock-cache-write-input-token-count"),
        "30"
    );
    assert_eq!(header(&headers, "x-amzn-bedrock-service-tier"), "flex");
    assert_eq!(
        v,
        json!({
            "id": "msg_bdrk_000000000000000000000001",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-20241022-v1:0",
            "content": [{"type": "text", "text": "Simulated reply part 1. Simulated reply part 2. Simulated reply part 3. Simulated reply part 4. "}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": 100, "cache_creation_input_tokens": 30,
                      "cache_read_input_tokens": 50, "output_tokens": 20},
        })
    );

    // A generic model, no cache, the tier taken from the request header.
    let req = Request::post(format!("{}/model/{NOVA}/invoke", sim.url()))
        .header("x-amzn-bedrock-service-tier", "priority")
        .body(Full::new(Bytes::from(prompt(
            "[[sim input=7 output=3 chunks=1 delay_ms=5]]",
        ))))
        .unwrap();
    let r = client().request(req).await.unwrap();
    let headers = r.headers().clone();
    let v: Value =
        serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(header(&headers, "x-amzn-bedrock-input-token-count"), "7");
    assert_eq!(header(&headers, "x-amzn-bedrock-output-token-count"), "3");
    assert_eq!(header(&headers, "x-amzn-bedrock-invocation-latency"), "5");
    assert_eq!(header(&headers, "x-amzn-bedrock-service-tier"), "priority");
    assert!(
        headers
            .get("x-amzn-bedrock-cache-read-input-token-count")
            .is_none()
    );
    assert!(
        headers
            .get("x-amzn-bedrock-cache-write-input-token-count")
            .is_none()
    );
    assert_eq!(
        v,
        json!({"outputText": "Simulated reply part 1. ", "stopReason": "end_turn",
               "usage": {"inputTokens": 7, "outputTokens": 3, "totalTokens": 10}})
    );
    let stats = sim.stats();
    assert_eq!(
        stats.token_count("us.anthropic.claude-3-5-haiku-20241022-v1:0", "cache_write"),
        30
    );
    assert_eq!(stats.token_count("amazon.nova-micro-v1:0", "input"), 7);
    assert_eq!(stats.by_operation.get("InvokeModel"), Some(&2));
}

#[tokio::test]
async fn invoke_stream_anthropic_chunks() {
    let sim = sim().await;
    let body =
        prompt("[[sim input=9 output=4 cache_write=3 chunks=2 ttft_ms=10 gap_ms=5 tier=priority]]");
    let r = send(
        &sim,
        &format!("/model/{CLAUDE}/invoke-with-response-stream"),
        &body,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(r.headers(), "x-amzn-bedrock-content-type"),
        "application/json"
    );
    assert_eq!(
        header(r.headers(), "x-amzn-bedrock-service-tier"),
        "priority"
    );
    let f = read_frames(r, Instant::now()).await;
    assert_eq!(f.error, None);
    assert!(f.messages.iter().all(|m| h(m, ":event-type") == "chunk"));
    let decoded: Vec<Value> = f.messages.iter().map(chunk_json).collect();
    let kinds: Vec<&str> = decoded
        .iter()
        .map(|v| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        decoded[0]["message"]["usage"],
        json!({"input_tokens": 9, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 0, "output_tokens": 1})
    );
    assert_eq!(
        decoded[3]["delta"],
        json!({"type": "text_delta", "text": "Simulated reply part 2. "})
    );
    assert_eq!(decoded[5]["usage"], json!({"output_tokens": 4}));
    assert_eq!(
        decoded[6]["amazon-bedrock-invocationMetrics"],
        json!({"inputTokenCount": 9, "outputTokenCount": 4, "invocationLatency": 40,
               "firstByteLatency": 10, "cacheReadInputTokenCount": 0, "cacheWriteInputTokenCount": 3})
    );
    let model = "us.anthropic.claude-3-5-haiku-20241022-v1:0".to_owned();
    assert_eq!(
        tokens(&sim.stats()),
        [
            (model.clone(), "cache_write", 3),
            (model.clone(), "input", 9),
            (model, "output", 4)
        ]
    );
}

#[tokio::test]
async fn invoke_stream_generic_chunks() {
    let sim = sim().await;
    let body = prompt("[[sim input=2 output=3 chunks=2]]");
    let r = send(
        &sim,
        &format!("/model/{NOVA}/invoke-with-response-stream"),
        &body,
    )
    .await;
    let f = read_frames(r, Instant::now()).await;
    let decoded: Vec<Value> = f.messages.iter().map(chunk_json).collect();
    assert_eq!(decoded.len(), 3);
    assert_eq!(
        decoded[0],
        json!({"outputText": "Simulated reply part 1. ", "index": 0})
    );
    assert_eq!(
        decoded[2]["amazon-bedrock-invocationMetrics"]["outputTokenCount"],
        3
    );
    assert_eq!(decoded[2]["stopReason"], "end_turn");
}

#[tokio::test]
async fn other_operations() {
    let sim = sim().await;
    let (_, _, v) = post_json(
        &sim,
        &format!("/model/{NOVA}/count-tokens"),
        &prompt("[[sim input=42]]"),
    )
    .await;
    assert_eq!(v, json!({"inputTokens": 42}));
    let (status, _, v) = post_json(&sim, "/guardrail/gr1/version/1/apply", "{}").await;
    assert_eq!(status, 200);
    assert_eq!(v["action"], "NONE");
    // No directive: content and topic units for a text of the body's length.
    assert_eq!(v["usage"]["topicPolicyUnits"], 1);
    assert_eq!(v["usage"]["wordPolicyUnits"], 0);
    let (status, _, v) = post_json(
        &sim,
        "/async-invoke",
        r#"{"modelId":"amazon.nova-reel-v1:1","modelInput":{"videoGenerationConfig":{"durationSeconds":6}}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        v["invocationArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:bedrock:us-east-1:123456789012:async-invoke/")
    );
    let (status, headers, v) = post_json(&sim, "/model/x/explode?a=1", "abc").await;
    assert_eq!(status, 404);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        format!("UnknownOperationException:{CORAL_NS}")
    );
    assert!(v["message"].is_string());
    let (status, headers, v) = post_json(
        &sim,
        &format!("/model/{NOVA}/converse"),
        &prompt("[[sim outptu=3]]"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        format!("ValidationException:{BEDROCK_NS}")
    );
    assert_eq!(
        v,
        json!({"message": "invalid simulator directive key `outptu`: unknown key"})
    );

    let stats = sim.stats();
    assert_eq!(stats.requests, 5);
    let ops: Vec<(&str, u64)> = stats.by_operation.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(
        ops,
        [
            ("ApplyGuardrail", 1),
            ("Converse", 1),
            ("CountTokens", 1),
            ("StartAsyncInvoke", 1),
            ("Unknown", 1)
        ]
    );
    // CountTokens reports no billable usage, and the rejected call none at all.
    assert!(stats.tokens.is_empty());
    // The guardrail's and the video job's units are ground truth.
    let units: Vec<_> = stats
        .units
        .iter()
        .map(|((m, u), n)| (m.as_str(), *u, *n))
        .collect();
    assert_eq!(
        units,
        [
            ("amazon.nova-reel-v1:1", "video_second", 6),
            ("gr1", "content_policy", 1),
            ("gr1", "topic_policy", 1),
        ]
    );
    let last = stats.last_request.unwrap();
    assert_eq!(last.method, "POST");
    assert_eq!(last.path, format!("/model/{NOVA}/converse"));
    assert!(
        last.headers
            .contains(&("content-type".to_owned(), "application/json".to_owned()))
    );
    assert_eq!(last.body_len, prompt("[[sim outptu=3]]").len());
    let (_, _, v) = post_json(&sim, "/model/x/explode?a=1", "abc").await;
    assert!(v.is_object());
    assert_eq!(
        sim.stats().last_request.unwrap().path,
        "/model/x/explode?a=1"
    );
    assert_eq!(
        sim.stats().signatures_valid + sim.stats().signatures_invalid,
        0
    );
}
