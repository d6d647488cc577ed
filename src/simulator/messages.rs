//! Answers of the Anthropic Messages API Bedrock serves under `/anthropic`
//! (`POST /anthropic/v1/messages`), whole or streamed as Server-Sent Events. Compact JSON in
//! Anthropic's member order; the id is a hash of the conversation, so the same request gets
//! the same bytes.

use http::Response;
use serde::Serialize;

use super::body::SimBody;
use super::call::Call;
use super::converse::paced_json;
use super::eventstream::Script;
use super::head::Head;
use super::sse::{self, Dialect};
use super::usage::AnthropicUsage;

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    usage: AnthropicUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'a str>,
}

/// A text content block; also a stream's `text_delta`.
#[derive(Serialize)]
struct Block<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: Message<'a>,
}

/// `content_block_start` (with `content_block`), `content_block_delta` (with `delta`),
/// `content_block_stop`.
#[derive(Serialize)]
struct BlockEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_block: Option<Block<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<Block<'a>>,
}

#[derive(Serialize)]
struct MessageDelta {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopDelta,
    usage: OutputUsage,
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

/// `ping`, `message_stop`.
#[derive(Serialize)]
struct Bare {
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A Messages answer to `body`: the message, or its SSE events when the request said
/// `"stream": true`.
pub fn messages(
    call: &Call,
    stream: bool,
    body: &[u8],
) -> Result<Response<SimBody>, serde_json::Error> {
    let id = format!("msg_bdrk_{:016x}", Head::read(body).conversation_hash());
    let u = &call.usage;
    let tier = call.tier.as_deref();
    if !stream {
        let text = call.text();
        let message = Message {
            id: &id,
            kind: "message",
            role: "assistant",
            model: &call.model,
            content: vec![Block {
                kind: "text",
                text: &text,
            }],
            stop_reason: Some("end_turn"),
            stop_sequence: None,
            usage: AnthropicUsage::new(u, u.output),
            service_tier: tier,
        };
        return Ok(paced_json(call, serde_json::to_string(&message)?));
    }

    let block = |kind, content_block, delta| BlockEvent {
        kind,
        index: 0,
        content_block,
        delta,
    };
    let start = MessageStart {
        kind: "message_start",
        message: Message {
            id: &id,
            kind: "message",
            role: "assistant",
            model: &call.model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            // Anthropic reports the first output token up front; the total comes at the end.
            usage: AnthropicUsage::new(u, 1),
            service_tier: tier,
        },
    };
    let preamble = vec![
        sse::named("message_start", &start)?,
        sse::named(
            "content_block_start",
            &block(
                "content_block_start",
                Some(Block {
                    kind: "text",
                    text: "",
                }),
                None,
            ),
        )?,
        sse::named("ping", &Bare { kind: "ping" })?,
    ];
    let parts = call.parts();
    let deltas = parts
        .iter()
        .map(|part| {
            let delta = Block {
                kind: "text_delta",
                text: part,
            };
            sse::named(
                "content_block_delta",
                &block("content_block_delta", None, Some(delta)),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tail = vec![
        sse::named(
            "content_block_stop",
            &block("content_block_stop", None, None),
        )?,
        sse::named(
            "message_delta",
            &MessageDelta {
                kind: "message_delta",
                delta: StopDelta {
                    stop_reason: "end_turn",
                    stop_sequence: None,
                },
                usage: OutputUsage {
                    output_tokens: u.output,
                },
            },
        )?,
        sse::named(
            "message_stop",
            &Bare {
                kind: "message_stop",
            },
        )?,
    ];
    let script = Script {
        preamble,
        deltas,
        tail,
    };
    sse::spawn(call, script, Dialect::Anthropic)
}
