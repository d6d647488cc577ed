//! Answers of Bedrock's OpenAI-compatible API: Chat Completions
//! (`POST /openai/v1/chat/completions`) and Responses (`POST /openai/v1/responses`), whole or
//! streamed as Server-Sent Events.
//!
//! Every answer is compact JSON with its members in OpenAI's order, and depends only on the
//! request: `created` is fixed and ids are a hash of the conversation, so the same request
//! gets the same bytes, and a Chat Completions stream that asked for its usage differs from
//! one that did not only by what `stream_options.include_usage` adds — a `"usage":null` last
//! member in every chunk, and the usage-only chunk before `[DONE]`. (The meter relies on this
//! when it asks for the usage on a client's behalf and takes the additions out again.)
//!
//! OpenAI counts cached tokens inside the prompt total: `prompt_tokens` (`input_tokens`) is
//! input plus cache reads and writes, `cached_tokens` the cache reads.

use http::Response;
use serde::Serialize;

use super::body::SimBody;
use super::call::Call;
use super::converse::paced_json;
use super::eventstream::Script;
use super::head::Head;
use super::sse::{self, Dialect};
use super::usage::{ChatUsage, ResponseUsage};

/// 2026-01-01T00:00:00Z: a fixed `created`, so answers do not depend on the clock.
pub const CREATED: u64 = 1_767_225_600;

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: ChatUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'a str>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: Message<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'a str>,
    choices: Vec<ChunkChoice<'a>>,
    /// Absent unless the request asked for usage; then `null`, except in the usage-only chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<ChatUsage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'static str>,
}

#[derive(Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

/// A Chat Completions answer to `body`: JSON, or SSE chunks when the request said
/// `"stream": true`.
pub fn chat(
    call: &Call,
    stream: bool,
    body: &[u8],
) -> Result<Response<SimBody>, serde_json::Error> {
    let head = Head::read(body);
    let id = format!("chatcmpl-{:016x}", head.conversation_hash());
    let usage = ChatUsage::new(&call.usage);
    let tier = call.tier.as_deref();
    if !stream {
        let text = call.text();
        let answer = Completion {
            id: &id,
            object: "chat.completion",
            created: CREATED,
            model: &call.model,
            choices: [Choice {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: &text,
                },
                finish_reason: "stop",
            }],
            usage,
            service_tier: tier,
        };
        return Ok(paced_json(call, serde_json::to_string(&answer)?));
    }

    let include_usage = head.include_usage();
    let chunk = |choices: Vec<ChunkChoice<'_>>, usage: Option<ChatUsage>| {
        let chunk = Chunk {
            id: &id,
            object: "chat.completion.chunk",
            created: CREATED,
            model: &call.model,
            service_tier: tier,
            choices,
            usage: include_usage.then_some(usage),
        };
        serde_json::to_string(&chunk).map(|json| sse::data(&json))
    };
    let choice = |delta, finish_reason| {
        vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason,
        }]
    };
    let preamble = vec![chunk(
        choice(
            Delta {
                role: Some("assistant"),
                content: Some(""),
            },
            None,
        ),
        None,
    )?];
    let parts = call.parts();
    let deltas = parts
        .iter()
        .map(|part| {
            let delta = Delta {
                role: None,
                content: Some(part),
            };
            chunk(choice(delta, None), None)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut tail = vec![chunk(choice(Delta::default(), Some("stop")), None)?];
    if include_usage {
        tail.push(chunk(Vec::new(), Some(usage))?);
    }
    tail.push(bytes::Bytes::from_static(sse::DONE));
    let script = Script {
        preamble,
        deltas,
        tail,
    };
    sse::spawn(call, script, Dialect::ChatCompletions)
}

#[derive(Serialize)]
struct ResponseObject<'a> {
    id: &'a str,
    object: &'static str,
    created_at: u64,
    status: &'static str,
    model: &'a str,
    output: Vec<OutputItem<'a>>,
    /// `null` until the response is complete.
    usage: Option<ResponseUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'a str>,
}

#[derive(Serialize)]
struct OutputItem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    status: &'static str,
    role: &'static str,
    content: [OutputText<'a>; 1],
}

#[derive(Serialize)]
struct OutputText<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    annotations: [(); 0],
}

/// `response.created`, `response.completed`.
#[derive(Serialize)]
struct ResponseEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    response: ResponseObject<'a>,
}

/// `response.output_text.delta` (with `delta`), `response.output_text.done` (with `text`).
#[derive(Serialize)]
struct TextEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    item_id: &'a str,
    output_index: u32,
    content_index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// A Responses answer to `body`: the response object, or SSE events when the request said
/// `"stream": true`. The usage is always there (in `response.completed` for a stream).
pub fn responses(
    call: &Call,
    stream: bool,
    body: &[u8],
) -> Result<Response<SimBody>, serde_json::Error> {
    let hash = Head::read(body).conversation_hash();
    let id = format!("resp_{hash:016x}");
    let item_id = format!("msg_{hash:016x}");
    let text = call.text();
    let response = |done: bool| ResponseObject {
        id: &id,
        object: "response",
        created_at: CREATED,
        status: if done { "completed" } else { "in_progress" },
        model: &call.model,
        output: if done {
            vec![OutputItem {
                kind: "message",
                id: &item_id,
                status: "completed",
                role: "assistant",
                content: [OutputText {
                    kind: "output_text",
                    text: &text,
                    annotations: [],
                }],
            }]
        } else {
            Vec::new()
        },
        usage: done.then(|| ResponseUsage::new(&call.usage)),
        service_tier: call.tier.as_deref(),
    };
    if !stream {
        return Ok(paced_json(call, serde_json::to_string(&response(true))?));
    }

    let text_event = |kind, delta, text| {
        let event = TextEvent {
            kind,
            item_id: &item_id,
            output_index: 0,
            content_index: 0,
            delta,
            text,
        };
        sse::named(kind, &event)
    };
    let response_event = |kind, done| {
        sse::named(
            kind,
            &ResponseEvent {
                kind,
                response: response(done),
            },
        )
    };
    let preamble = vec![response_event("response.created", false)?];
    let parts = call.parts();
    let deltas = parts
        .iter()
        .map(|part| text_event("response.output_text.delta", Some(part), None))
        .collect::<Result<Vec<_>, _>>()?;
    let tail = vec![
        text_event("response.output_text.done", None, Some(&text))?,
        response_event("response.completed", true)?,
    ];
    let script = Script {
        preamble,
        deltas,
        tail,
    };
    sse::spawn(call, script, Dialect::Responses)
}
