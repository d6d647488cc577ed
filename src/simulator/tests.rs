//! End-to-end tests: the simulator on a loopback port, driven over HTTP by a plain hyper
//! client, raw TCP, and the real `aws-sdk-bedrockruntime` client.

use std::time::{Duration, Instant, SystemTime};

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const NOVA: &str = "amazon.nova-micro-v1%3A0";
const CLAUDE: &str = "us.anthropic.claude-3-5-haiku-20241022-v1%3A0";
const BEDROCK_NS: &str = "http://internal.amazon.com/coral/com.amazon.bedrock/";
const CORAL_NS: &str = "http://internal.amazon.com/coral/com.amazon.coral.service/";

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn sim() -> Simulator {
    Simulator::start(SimulatorConfig::default()).await.unwrap()
}

fn prompt(text: &str) -> String {
    json!({"messages": [{"role": "user", "content": [{"text": text}]}]}).to_string()
}

async fn send(sim: &Simulator, path: &str, body: &str) -> Response<Incoming> {
    let req = Request::post(format!("{}{path}", sim.url()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    client().request(req).await.unwrap()
}

async fn post(sim: &Simulator, path: &str, body: &str) -> (StatusCode, HeaderMap, Bytes) {
    let r = send(sim, path, body).await;
    let (parts, body) = r.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

async fn post_json(sim: &Simulator, path: &str, body: &str) -> (StatusCode, HeaderMap, Value) {
    let (status, headers, body) = post(sim, path, body).await;
    (status, headers, serde_json::from_slice(&body).unwrap())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// Decodes event-stream frames as body chunks arrive, noting when each body chunk came.
struct Frames {
    messages: Vec<Message>,
    chunk_times: Vec<Duration>,
    error: Option<String>,
}

async fn read_frames(response: Response<Incoming>, started: Instant) -> Frames {
    let mut body = response.into_body();
    let mut buf = BytesMut::new();
    let mut decoder = MessageFrameDecoder::new();
    let mut out = Frames {
        messages: Vec::new(),
        chunk_times: Vec::new(),
        error: None,
    };
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                out.error = Some(format!("body: {e}"));
                break;
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                out.chunk_times.push(started.elapsed());
                buf.extend_from_slice(&data);
                loop {
                    match decoder.decode_frame(&mut buf) {
                        Ok(DecodedFrame::Complete(m)) => out.messages.push(m),
                        Ok(DecodedFrame::Incomplete) => break,
                        Err(e) => {
                            out.error = Some(format!("decode: {e}"));
                            return out;
                        }
                    }
                }
            }
        }
    }
    out
}

fn h(m: &Message, name: &str) -> String {
    m.headers()
        .iter()
        .find(|x| x.name().as_str() == name)
        .map(|x| x.value().as_string().unwrap().as_str().to_owned())
        .unwrap_or_default()
}

fn payload(m: &Message) -> Value {
    serde_json::from_slice(m.payload()).unwrap()
}

fn chunk_json(m: &Message) -> Value {
    let p = payload(m);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(p["bytes"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn tokens(stats: &SimStats) -> Vec<(String, &'static str, u64)> {
    stats
        .tokens
        .iter()
        .map(|((m, k), n)| (m.clone(), *k, *n))
        .collect()
}

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
async fn midstream_exception_records_nothing() {
    let sim = sim().await;
    let body = prompt("[[sim fault=midstream after=2 exception=throttlingException]]");
    let r = send(&sim, &format!("/model/{NOVA}/converse-stream"), &body).await;
    assert_eq!(r.status(), 200);
    let f = read_frames(r, Instant::now()).await;
    assert_eq!(f.error, None);
    let kinds: Vec<String> = f
        .messages
        .iter()
        .map(|m| {
            format!(
                "{}:{}{}",
                h(m, ":message-type"),
                h(m, ":event-type"),
                h(m, ":exception-type")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "event:messageStart",
            "event:contentBlockDelta",
            "event:contentBlockDelta",
            "exception:throttlingException"
        ]
    );
    assert_eq!(
        payload(&f.messages[3]),
        json!({"message": "Too many requests, please wait before trying again."})
    );

    let body = prompt("[[sim fault=midstream]]");
    let r = send(
        &sim,
        &format!("/model/{CLAUDE}/invoke-with-response-stream"),
        &body,
    )
    .await;
    let f = read_frames(r, Instant::now()).await;
    assert_eq!(f.messages.len(), 4); // message_start, content_block_start, one delta, exception
    assert_eq!(
        h(&f.messages[3], ":exception-type"),
        "modelStreamErrorException"
    );
    assert_eq!(payload(&f.messages[3])["originalStatusCode"], 500);

    // Not a stream: a model error.
    let (status, headers, _) = post(&sim, &format!("/model/{NOVA}/converse"), &body).await;
    assert_eq!(status, 424);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        format!("ModelErrorException:{BEDROCK_NS}")
    );
    assert!(sim.stats().tokens.is_empty());
}

#[tokio::test]
async fn throttle_fault_shape() {
    let sim = sim().await;
    let body = prompt("[[sim fault=throttle]]");
    for path in [
        "converse",
        "converse-stream",
        "invoke",
        "invoke-with-response-stream",
    ] {
        let (status, headers, v) = post_json(&sim, &format!("/model/{NOVA}/{path}"), &body).await;
        assert_eq!(status, 429, "{path}");
        assert_eq!(
            header(&headers, "x-amzn-errortype"),
            format!("ThrottlingException:{BEDROCK_NS}")
        );
        assert_eq!(header(&headers, "content-type"), "application/json");
        assert!(headers.contains_key("x-amzn-requestid"));
        assert_eq!(
            v,
            json!({"message": "Too many requests, please wait before trying again."})
        );
    }
    let (status, _, v) = post_json(
        &sim,
        &format!("/model/{NOVA}/converse"),
        &prompt("[[sim fault=unknown_model]]"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({"message": "The provided model identifier is invalid."})
    );
    let stats = sim.stats();
    assert_eq!(stats.requests, 5);
    assert!(stats.tokens.is_empty());
}

#[tokio::test]
async fn malformed_faults() {
    let sim = sim().await;
    let body = prompt("[[sim fault=malformed]]");
    let (status, headers, bytes) = post(&sim, &format!("/model/{NOVA}/invoke"), &body).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(bytes, "{\"output\": ");

    let body = prompt("[[sim fault=malformed after=2 chunks=3]]");
    let r = send(&sim, &format!("/model/{NOVA}/converse-stream"), &body).await;
    let f = read_frames(r, Instant::now()).await;
    assert_eq!(f.messages.len(), 3);
    assert!(f.error.unwrap().contains("decode"));
    assert!(sim.stats().tokens.is_empty());
}

#[tokio::test]
async fn drop_fault_cuts_the_connection() {
    let sim = sim().await;
    // Not a stream: the connection closes before a status line is sent.
    let body = prompt("[[sim fault=drop]]");
    let mut tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let request = format!(
        "POST /model/{NOVA}/converse HTTP/1.1\r\nhost: sim\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the connection must be closed");
    assert_eq!(String::from_utf8_lossy(&received), "");

    // A stream: headers and `after` deltas, then the body fails.
    let body = prompt("[[sim fault=drop after=2]]");
    let r = send(&sim, &format!("/model/{NOVA}/converse-stream"), &body).await;
    assert_eq!(r.status(), 200);
    let f = read_frames(r, Instant::now()).await;
    assert_eq!(f.messages.len(), 3);
    assert!(f.error.unwrap().starts_with("body"));
    assert!(sim.stats().tokens.is_empty());
    assert_eq!(sim.stats().by_operation.get("ConverseStream"), Some(&1));
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
    assert_eq!(v["usage"]["topicPolicyUnits"], 0);
    let (status, _, v) = post_json(&sim, "/async-invoke", "{}").await;
    assert_eq!((status, v), (StatusCode::OK, json!({})));
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
            ("Other", 1),
            ("Unknown", 1)
        ]
    );
    // CountTokens reports no billable usage, and the rejected call none at all.
    assert!(stats.tokens.is_empty());
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

#[tokio::test]
async fn delay_holds_back_the_headers() {
    let sim = sim().await;
    let started = Instant::now();
    let (status, _, _) = post(
        &sim,
        &format!("/model/{NOVA}/converse"),
        &prompt("[[sim delay_ms=120 fault=internal]]"),
    )
    .await;
    assert_eq!(status, 500);
    assert!(started.elapsed() >= Duration::from_millis(120));
}

fn creds(secret: &str) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new("AKIDSIMULATOR", secret, None, None, "test")
}

async fn signed(
    sim: &Simulator,
    creds: &aws_credential_types::Credentials,
    body: &str,
) -> (StatusCode, HeaderMap, Value) {
    let req = Request::post(format!("{}/model/{NOVA}/converse", sim.url()))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (mut parts, ()) = req.into_parts();
    crate::aws::sigv4::sign(
        &mut parts,
        body.as_bytes(),
        creds,
        "us-east-1",
        SystemTime::now(),
    )
    .unwrap();
    let req = Request::from_parts(parts, Full::new(Bytes::from(body.to_owned())));
    let r = client().request(req).await.unwrap();
    let (parts, body) = r.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&body).unwrap(),
    )
}

#[tokio::test]
async fn signature_verification() {
    let sim = Simulator::start(SimulatorConfig {
        expect_credentials: Some(creds("right-secret")),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let body = prompt("[[sim input=3 output=4]]");
    let (status, _, v) = signed(&sim, &creds("right-secret"), &body).await;
    assert_eq!(status, 200, "{v}");
    let s = sim.stats();
    assert_eq!((s.signatures_valid, s.signatures_invalid), (1, 0));

    let (status, headers, v) = signed(&sim, &creds("wrong-secret"), &body).await;
    assert_eq!(status, 403);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        format!("InvalidSignatureException:{CORAL_NS}")
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("The request signature we calculated")
    );
    let s = sim.stats();
    assert_eq!((s.signatures_valid, s.signatures_invalid), (1, 1));

    let other =
        aws_credential_types::Credentials::new("AKIDOTHER", "right-secret", None, None, "t");
    let (status, headers, _) = signed(&sim, &other, &body).await;
    assert_eq!(status, 403);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        format!("UnrecognizedClientException:{CORAL_NS}")
    );
    let (status, headers, _) = post(&sim, &format!("/model/{NOVA}/converse"), &body).await;
    assert_eq!(status, 403);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        format!("UnrecognizedClientException:{CORAL_NS}")
    );

    let s = sim.stats();
    assert_eq!(
        (s.requests, s.signatures_valid, s.signatures_invalid),
        (4, 1, 3)
    );
    // Only the accepted call's usage counts.
    assert_eq!(
        tokens(&s),
        [
            ("amazon.nova-micro-v1:0".to_owned(), "input", 3),
            ("amazon.nova-micro-v1:0".to_owned(), "output", 4)
        ]
    );
}

#[tokio::test]
async fn h2c_prior_knowledge() {
    let sim = sim().await;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/model/{NOVA}/converse-stream", sim.url()))
        .body(Full::new(Bytes::from(prompt("[[sim chunks=2]]"))))
        .unwrap();
    let r = client.request(req).await.unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    let f = read_frames(r, Instant::now()).await;
    assert_eq!((f.messages.len(), f.error), (6, None));
}

mod sdk {
    //! The real Rust SDK must decode every answer shape and sign requests the simulator accepts.

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
            .messages(message("[[sim input=10 output=5 cache_read=3 cache_write=7 cache_write_1h=2 tier=priority]]"))
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
        let code =
            aws_sdk_bedrockruntime::error::ProvideErrorMetadata::code(&err.into_service_error())
                .map(str::to_owned);
        assert_eq!(code.as_deref(), Some("InvalidSignatureException"));
        let s = sim.stats();
        assert_eq!((s.signatures_valid, s.signatures_invalid), (3, 1));
        let claude = "anthropic.claude-3-haiku-20240307-v1:0";
        assert_eq!(s.token_count(claude, "output"), 28);
    }
}
