//! The OpenAI-compatible API: Chat Completions and Responses, whole and streamed, byte for byte.

use super::*;
use crate::simulator::head::Head;

const GPT: &str = "openai.gpt-oss-20b-1:0";
const CHAT: &str = "/openai/v1/chat/completions";
const RESPONSES: &str = "/openai/v1/responses";

/// A request body with `extra` members (each followed by a comma) before the messages.
fn chat_body(text: &str, extra: &str) -> String {
    format!(r#"{{"model":"{GPT}",{extra}"messages":[{{"role":"user","content":"{text}"}}]}}"#)
}

fn chat_id(body: &str) -> String {
    format!(
        "chatcmpl-{:016x}",
        Head::read(body.as_bytes()).conversation_hash()
    )
}

/// The body of a streamed answer, one entry per body chunk, and the error it ended with.
async fn stream_chunks(r: Response<Incoming>) -> (Vec<String>, Option<String>) {
    let mut body = r.into_body();
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    chunks.push(String::from_utf8_lossy(&data).into_owned());
                }
            }
            Err(e) => return (chunks, Some(e.to_string())),
        }
    }
    (chunks, None)
}

async fn stream(sim: &Simulator, path: &str, body: &str) -> (HeaderMap, Vec<String>) {
    let r = send(sim, path, body).await;
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    let (chunks, error) = stream_chunks(r).await;
    assert_eq!(error, None);
    (headers, chunks)
}

/// One chunk of a Chat Completions stream with `choices`, and `,"usage":...` when given.
fn chunk(id: &str, choices: &str, usage: Option<&str>) -> String {
    let usage = usage.map_or(String::new(), |u| format!(r#","usage":{u}"#));
    format!(
        "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"{GPT}\",\"choices\":{choices}{usage}}}\n\n"
    )
}

fn delta(delta: &str, finish: &str) -> String {
    format!(r#"[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]"#)
}

/// The chunks of a two-part answer; `null` is `Some("null")` when the request asked for usage.
fn expected_chat_stream(id: &str, null: Option<&str>, usage: Option<&str>) -> Vec<String> {
    let mut out = vec![
        chunk(
            id,
            &delta(r#"{"role":"assistant","content":""}"#, "null"),
            null,
        ),
        chunk(
            id,
            &delta(r#"{"content":"Simulated reply part 1. "}"#, "null"),
            null,
        ),
        chunk(
            id,
            &delta(r#"{"content":"Simulated reply part 2. "}"#, "null"),
            null,
        ),
        chunk(id, &delta("{}", r#""stop""#), null),
    ];
    if let Some(u) = usage {
        out.push(chunk(id, "[]", Some(u)));
    }
    out.push("data: [DONE]\n\n".to_owned());
    out
}

const USAGE_13_5_3: &str = r#"{"prompt_tokens":13,"completion_tokens":5,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":3}}"#;

#[tokio::test]
async fn chat_completion_json() {
    let sim = sim().await;
    let body = chat_body("hi [[sim input=10 output=5 cache_read=3 chunks=2]]", "");
    let (status, headers, bytes) = post(&sim, CHAT, &body).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/json");
    let id = chat_id(&body);
    assert_eq!(
        String::from_utf8(bytes.to_vec()).unwrap(),
        format!(
            r#"{{"id":"{id}","object":"chat.completion","created":1767225600,"model":"{GPT}","choices":[{{"index":0,"message":{{"role":"assistant","content":"Simulated reply part 1. Simulated reply part 2. "}},"finish_reason":"stop"}}],"usage":{USAGE_13_5_3}}}"#
        )
    );
    assert_eq!(
        tokens(&sim.stats()),
        [
            (GPT.to_owned(), "cache_read", 3),
            (GPT.to_owned(), "input", 10),
            (GPT.to_owned(), "output", 5),
        ]
    );
    assert_eq!(sim.stats().by_operation.get("ChatCompletions"), Some(&1));
}

#[tokio::test]
async fn ids_are_a_hash_of_the_messages() {
    // Pinned: FNV-1a 64 of the raw `messages` member.
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(chat_id(body), "chatcmpl-8b81ed84fdfdbea6");

    let sim = sim().await;
    let a = post(&sim, CHAT, &chat_body("one", "")).await.2;
    let b = post(&sim, CHAT, &chat_body("one", "")).await.2;
    let c = post(&sim, CHAT, &chat_body("two", "")).await.2;
    assert_eq!(a, b);
    let id = |b: &Bytes| serde_json::from_slice::<Value>(b).unwrap()["id"].clone();
    assert_eq!(id(&a), json!(chat_id(&chat_body("one", ""))));
    assert_ne!(id(&a), id(&c));
    // Streamed or not, with or without usage: the same id.
    let streamed = chat_body(
        "one",
        r#""stream":true,"stream_options":{"include_usage":true},"#,
    );
    let (_, chunks) = stream(&sim, CHAT, &streamed).await;
    assert!(chunks[0].contains(&format!(r#""id":{}"#, id(&a))));
}

#[tokio::test]
async fn chat_stream_without_usage() {
    let sim = sim().await;
    let body = chat_body(
        "[[sim input=10 output=5 cache_read=3 chunks=2]]",
        r#""stream":true,"#,
    );
    let (headers, chunks) = stream(&sim, CHAT, &body).await;
    assert_eq!(header(&headers, "content-type"), "text/event-stream");
    // One body chunk per event.
    assert_eq!(chunks, expected_chat_stream(&chat_id(&body), None, None));
    // The usage is recorded all the same, once.
    assert_eq!(sim.stats().token_count(GPT, "input"), 10);
    assert_eq!(sim.stats().token_count(GPT, "cache_read"), 3);

    // Anything but `"include_usage": true` is no usage.
    for options in [
        r#""stream_options":{"include_usage":false},"#,
        r#""stream_options":null,"#,
        r#""stream_options":{"include_usage":"true"},"#,
        r#""stream_options":{},"#,
    ] {
        let body = chat_body("[[sim chunks=2]]", &format!(r#""stream":true,{options}"#));
        let (_, chunks) = stream(&sim, CHAT, &body).await;
        assert_eq!(
            chunks,
            expected_chat_stream(&chat_id(&body), None, None),
            "{options}"
        );
    }
}

#[tokio::test]
async fn chat_stream_with_usage() {
    let sim = sim().await;
    let body = chat_body(
        "[[sim input=10 output=5 cache_read=3 chunks=2]]",
        r#""stream":true,"stream_options":{"include_usage":true},"#,
    );
    let (_, chunks) = stream(&sim, CHAT, &body).await;
    assert_eq!(
        chunks,
        expected_chat_stream(&chat_id(&body), Some("null"), Some(USAGE_13_5_3))
    );
    // `"usage":null` is the last member of every chunk but the usage-only one.
    for c in &chunks[..4] {
        assert!(c.ends_with("],\"usage\":null}\n\n"), "{c}");
    }
    assert_eq!(
        tokens(&sim.stats()),
        [
            (GPT.to_owned(), "cache_read", 3),
            (GPT.to_owned(), "input", 10),
            (GPT.to_owned(), "output", 5),
        ]
    );
}

/// What the meter does to a stream it asked usage for: every `,"usage":null` and the
/// usage-only event taken out leave exactly the stream the client would have had.
#[tokio::test]
async fn with_usage_minus_its_additions_is_without_usage() {
    let sim = sim().await;
    for directive in [
        "[[sim input=7 output=2 chunks=3]]",
        "[[sim chunks=1 tier=priority]]",
        "[[sim chunks=0]]",
    ] {
        let without = chat_body(directive, r#""stream":true,"#);
        let with = chat_body(
            directive,
            r#""stream_options":{"include_usage":true},"stream":true,"#,
        );
        let (_, plain) = stream(&sim, CHAT, &without).await;
        let (_, counted) = stream(&sim, CHAT, &with).await;
        let stripped: String = counted
            .iter()
            .filter(|event| !event.contains(r#""choices":[],"usage":{"#))
            .map(|event| event.replace(r#","usage":null"#, ""))
            .collect();
        assert_eq!(stripped, plain.concat(), "{directive}");
        assert_eq!(counted.len(), plain.len() + 1, "{directive}");
    }
}

#[tokio::test]
async fn tier_is_echoed_when_asked_for() {
    let sim = sim().await;
    let body = chat_body("[[sim chunks=1]]", r#""service_tier":"flex","#);
    let (_, _, v) = post_json(&sim, CHAT, &body).await;
    assert_eq!(v["service_tier"], "flex");
    let body = chat_body("[[sim chunks=1 tier=priority]]", r#""stream":true,"#);
    let (_, chunks) = stream(&sim, CHAT, &body).await;
    assert!(
        chunks[0].contains(&format!(
            r#""model":"{GPT}","service_tier":"priority","choices""#
        )),
        "{}",
        chunks[0]
    );
    let (_, _, v) = post_json(&sim, CHAT, &chat_body("", "")).await;
    assert_eq!(v.get("service_tier"), None);
}

fn response_json(hash: &str, done: bool, usage: &str) -> String {
    let (status, output) = if done {
        (
            "completed",
            format!(
                r#"[{{"type":"message","id":"msg_{hash}","status":"completed","role":"assistant","content":[{{"type":"output_text","text":"Simulated reply part 1. Simulated reply part 2. ","annotations":[]}}]}}]"#
            ),
        )
    } else {
        ("in_progress", "[]".to_owned())
    };
    format!(
        r#"{{"id":"resp_{hash}","object":"response","created_at":1767225600,"status":"{status}","model":"{GPT}","output":{output},"usage":{usage}}}"#
    )
}

const RESPONSE_USAGE: &str = r#"{"input_tokens":13,"input_tokens_details":{"cached_tokens":3},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":18}"#;

#[tokio::test]
async fn responses_json_and_stream() {
    let sim = sim().await;
    let input = r#"[{"role":"user","content":"[[sim input=10 output=5 cache_read=3 chunks=2]]"}]"#;
    let hash = format!(
        "{:016x}",
        Head::read(format!(r#"{{"input":{input}}}"#).as_bytes()).conversation_hash()
    );
    let body = format!(r#"{{"model":"{GPT}","input":{input}}}"#);
    let (status, headers, bytes) = post(&sim, RESPONSES, &body).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(bytes, response_json(&hash, true, RESPONSE_USAGE));
    assert_eq!(sim.stats().token_count(GPT, "input"), 10);

    let body = format!(r#"{{"model":"{GPT}","stream":true,"input":{input}}}"#);
    let (headers, chunks) = stream(&sim, RESPONSES, &body).await;
    assert_eq!(header(&headers, "content-type"), "text/event-stream");
    let text_event = |kind: &str, last: &str| {
        format!(
            "event: {kind}\ndata: {{\"type\":\"{kind}\",\"item_id\":\"msg_{hash}\",\"output_index\":0,\"content_index\":0,{last}}}\n\n"
        )
    };
    assert_eq!(
        chunks,
        [
            format!(
                "event: response.created\ndata: {{\"type\":\"response.created\",\"response\":{}}}\n\n",
                response_json(&hash, false, "null")
            ),
            text_event(
                "response.output_text.delta",
                r#""delta":"Simulated reply part 1. ""#
            ),
            text_event(
                "response.output_text.delta",
                r#""delta":"Simulated reply part 2. ""#
            ),
            text_event(
                "response.output_text.done",
                r#""text":"Simulated reply part 1. Simulated reply part 2. ""#
            ),
            format!(
                "event: response.completed\ndata: {{\"type\":\"response.completed\",\"response\":{}}}\n\n",
                response_json(&hash, true, RESPONSE_USAGE)
            ),
        ]
    );
    let stats = sim.stats();
    assert_eq!(stats.token_count(GPT, "input"), 20);
    assert_eq!(stats.token_count(GPT, "cache_read"), 6);
    assert_eq!(stats.by_operation.get("Responses"), Some(&2));
}

#[tokio::test]
async fn bad_bodies_are_validation_errors() {
    let sim = sim().await;
    for path in [CHAT, RESPONSES, "/anthropic/v1/messages"] {
        for body in [r#"{"messages":[]}"#, "not json", r#"{"model":""}"#] {
            let (status, headers, v) = post_json(&sim, path, body).await;
            assert_eq!(status, 400, "{path} {body}");
            assert_eq!(
                header(&headers, "x-amzn-errortype"),
                format!("ValidationException:{BEDROCK_NS}")
            );
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    assert!(sim.stats().tokens.is_empty());
}

#[tokio::test]
async fn faults_before_the_answer() {
    let sim = sim().await;
    for path in [CHAT, RESPONSES, "/anthropic/v1/messages"] {
        for stream in ["", r#""stream":true,"#] {
            let body = chat_body("[[sim fault=throttle]]", stream);
            let (status, headers, v) = post_json(&sim, path, &body).await;
            assert_eq!(status, 429, "{path} {stream}");
            assert_eq!(
                header(&headers, "x-amzn-errortype"),
                format!("ThrottlingException:{BEDROCK_NS}")
            );
            assert_eq!(
                v,
                json!({"message": "Too many requests, please wait before trying again."})
            );
        }
        // Not a stream: a mid-stream fault is a model error.
        let body = chat_body("[[sim fault=midstream]]", "");
        assert_eq!(post(&sim, path, &body).await.0, 424, "{path}");
        let body = chat_body("[[sim fault=unknown_model]]", "");
        assert_eq!(post(&sim, path, &body).await.0, 400, "{path}");
    }
    assert!(sim.stats().tokens.is_empty());
}

#[tokio::test]
async fn stream_faults() {
    let sim = sim().await;
    // A mid-stream exception ends the stream with an error event after `after` deltas.
    let body = chat_body(
        "[[sim fault=midstream after=1 exception=throttlingException]]",
        r#""stream":true,"#,
    );
    let (_, chunks) = stream(&sim, CHAT, &body).await;
    let id = chat_id(&body);
    assert_eq!(
        chunks,
        [
            chunk(&id, &delta(r#"{"role":"assistant","content":""}"#, "null"), None),
            chunk(
                &id,
                &delta(r#"{"content":"Simulated reply part 1. "}"#, "null"),
                None
            ),
            "data: {\"error\":{\"message\":\"Too many requests, please wait before trying again.\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":\"throttlingException\"}}\n\n".to_owned(),
        ]
    );
    let body =
        format!(r#"{{"model":"{GPT}","stream":true,"input":"[[sim fault=midstream after=0]]"}}"#);
    let (_, chunks) = stream(&sim, RESPONSES, &body).await;
    assert_eq!(chunks.len(), 2);
    assert!(chunks[0].starts_with("event: response.created\n"));
    assert!(chunks[1].starts_with(
        "event: error\ndata: {\"type\":\"error\",\"code\":\"modelStreamErrorException\""
    ));

    // A drop cuts the connection.
    let body = chat_body("[[sim fault=drop after=2]]", r#""stream":true,"#);
    let r = send(&sim, CHAT, &body).await;
    assert_eq!(r.status(), 200);
    let (chunks, error) = stream_chunks(r).await;
    assert_eq!(chunks.len(), 3);
    assert!(error.is_some());

    // Malformed: the next event is corrupt, and the stream ends there.
    let body = chat_body("[[sim fault=malformed after=1]]", r#""stream":true,"#);
    let r = send(&sim, CHAT, &body).await;
    let (chunks, error) = stream_chunks(r).await;
    assert_eq!(error, None);
    assert_eq!(chunks.len(), 3);
    assert!(!chunks[2].ends_with("\n\n"));
    assert!(sim.stats().tokens.is_empty());
}

#[tokio::test]
async fn sse_pacing_one_event_at_a_time() {
    let sim = sim().await;
    let body = chat_body(
        "[[sim chunks=2 ttft_ms=150 gap_ms=30]]",
        r#""stream":true,"#,
    );
    let started = Instant::now();
    let r = send(&sim, CHAT, &body).await;
    assert!(started.elapsed() < Duration::from_millis(140));
    let mut body = r.into_body();
    let mut i = 0u64;
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert!(data.ends_with(b"\n\n"));
        let due = Duration::from_millis(150 + 30 * i);
        assert!(started.elapsed() >= due, "event {i}");
        i += 1;
    }
    assert_eq!(i, 5);
}
