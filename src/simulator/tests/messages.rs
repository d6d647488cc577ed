//! The Anthropic Messages API (`/anthropic/v1/messages`), whole and streamed, byte for byte.

use super::*;
use crate::simulator::head::Head;

const SONNET: &str = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
const MESSAGES: &str = "/anthropic/v1/messages";

fn body(text: &str, extra: &str) -> String {
    format!(
        r#"{{"model":"{SONNET}","max_tokens":100,{extra}"messages":[{{"role":"user","content":"{text}"}}]}}"#
    )
}

fn message_id(body: &str) -> String {
    format!(
        "msg_bdrk_{:016x}",
        Head::read(body.as_bytes()).conversation_hash()
    )
}

const DIRECTIVE: &str =
    "[[sim input=10 output=5 cache_read=100 cache_write=30 cache_write_1h=12 chunks=2]]";

fn usage(output: u64) -> String {
    format!(
        r#"{{"input_tokens":10,"cache_creation_input_tokens":30,"cache_read_input_tokens":100,"output_tokens":{output},"cache_creation":{{"ephemeral_5m_input_tokens":18,"ephemeral_1h_input_tokens":12}}}}"#
    )
}

#[tokio::test]
async fn message_json() {
    let sim = sim().await;
    let body = body(DIRECTIVE, "");
    let (status, headers, bytes) = post(&sim, MESSAGES, &body).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/json");
    let id = message_id(&body);
    assert_eq!(
        String::from_utf8(bytes.to_vec()).unwrap(),
        format!(
            r#"{{"id":"{id}","type":"message","role":"assistant","model":"{SONNET}","content":[{{"type":"text","text":"Simulated reply part 1. Simulated reply part 2. "}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{}}}"#,
            usage(5)
        )
    );
    assert_eq!(
        tokens(&sim.stats()),
        [
            (SONNET.to_owned(), "cache_read", 100),
            (SONNET.to_owned(), "cache_write", 30),
            (SONNET.to_owned(), "input", 10),
            (SONNET.to_owned(), "output", 5),
        ]
    );
    assert_eq!(sim.stats().by_operation.get("AnthropicMessages"), Some(&1));
    // The same request, the same bytes.
    assert_eq!(post(&sim, MESSAGES, &body).await.2, bytes);
}

#[tokio::test]
async fn message_stream() {
    let sim = sim().await;
    let body = body(DIRECTIVE, r#""stream":true,"#);
    let r = send(&sim, MESSAGES, &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "content-type"), "text/event-stream");
    let mut events = Vec::new();
    let mut stream = r.into_body();
    while let Some(frame) = stream.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        events.push(String::from_utf8(data.to_vec()).unwrap());
    }
    let id = message_id(&body);
    let event = |name: &str, data: String| format!("event: {name}\ndata: {data}\n\n");
    let text_delta = |text: &str| {
        event(
            "content_block_delta",
            format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{text}"}}}}"#
            ),
        )
    };
    assert_eq!(
        events,
        [
            event(
                "message_start",
                format!(
                    r#"{{"type":"message_start","message":{{"id":"{id}","type":"message","role":"assistant","model":"{SONNET}","content":[],"stop_reason":null,"stop_sequence":null,"usage":{}}}}}"#,
                    usage(1)
                )
            ),
            event(
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.to_owned()
            ),
            event("ping", r#"{"type":"ping"}"#.to_owned()),
            text_delta("Simulated reply part 1. "),
            text_delta("Simulated reply part 2. "),
            event(
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#.to_owned()
            ),
            event(
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}"#.to_owned()
            ),
            event("message_stop", r#"{"type":"message_stop"}"#.to_owned()),
        ]
    );
    // Recorded once, when the stream was done.
    assert_eq!(sim.stats().token_count(SONNET, "output"), 5);
    assert_eq!(sim.stats().token_count(SONNET, "cache_write"), 30);
}

#[tokio::test]
async fn message_stream_error_event() {
    let sim = sim().await;
    let body = body(
        "[[sim fault=midstream after=1 exception=serviceUnavailableException]]",
        r#""stream":true,"#,
    );
    let r = send(&sim, MESSAGES, &body).await;
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let names: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("event: ")?.split('\n').next())
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "error"
        ]
    );
    assert!(text.ends_with(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Bedrock is unable to process your request.\"}}\n\n"
    ));
    assert!(sim.stats().tokens.is_empty());
}
