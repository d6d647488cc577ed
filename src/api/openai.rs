//! The OpenAI-compatible family Bedrock serves on bedrock-runtime: Chat Completions
//! (`POST /openai/v1/chat/completions`) and Responses (`POST /openai/v1/responses`). The model
//! is the JSON body's `model`; a streamed answer (`"stream": true`) is Server-Sent Events.
//!
//! OpenAI's usage counts cached tokens inside the prompt total (`prompt_tokens_details.
//! cached_tokens`, `input_tokens_details.cached_tokens`); the meter's `input` excludes them, as
//! Converse's `inputTokens` does, so they are taken out here and counted as cache reads.
//! Reasoning tokens are already inside the output count.
//!
//! A Chat Completions stream carries its usage only if the request said
//! `stream_options.include_usage`. When the client did not, the meter asks for it (one member
//! spliced into the body) and takes out again what that adds to the answer — the usage-only
//! chunk before `[DONE]`, and the `"usage":null` member of the other chunks — so the client
//! gets what it would have got without the meter.

use std::borrow::Cow;

use bytes::Bytes;
use http::Method;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    Answer, Asked, BadBody, Family, Found, Missing, Operation, Route, Served, SseFound, StopReason,
    Strip, Unreadable, body_model, raw_member, span_of, splice,
};
use crate::pricing::{Tier, Usage};

pub struct OpenAi;

impl Family for OpenAi {
    fn route(&self, method: &Method, segments: &[&str]) -> Option<Route> {
        if method != Method::POST {
            return None;
        }
        let operation = match segments {
            ["openai", "v1", "chat", "completions"] => Operation::ChatCompletions,
            ["openai", "v1", "responses"] => Operation::Responses,
            _ => return None,
        };
        Some(Route {
            operation,
            model_id: None,
            family: &OpenAi,
        })
    }

    fn request(
        &self,
        op: Operation,
        _model_id: Option<&str>,
        body: &[u8],
    ) -> Result<Asked, BadBody> {
        let head: Head<'_> = serde_json::from_slice(body)
            .map_err(|e| BadBody(format!("The request body is not a valid request: {e}")))?;
        let model_id = body_model(head.model)?;
        let stream = head.stream.unwrap_or(false);
        let rewrite = if stream && op == Operation::ChatCompletions {
            ask_for_usage(body, head.stream_options)
        } else {
            None
        };
        Ok(Asked {
            model_id: Some(model_id),
            stream,
            strip_usage: rewrite.is_some(),
            rewrite,
            ..Asked::default()
        })
    }

    fn answer(&self, op: Operation, asked: &Asked) -> Answer {
        match (op, asked.stream) {
            (Operation::ChatCompletions, false) => Answer::JsonBody(read_chat),
            (Operation::ChatCompletions, true) => Answer::Sse(read_chat_event),
            (Operation::Responses, false) => Answer::JsonBody(read_response),
            (Operation::Responses, true) => Answer::Sse(read_response_event),
            _ => Answer::Unmetered,
        }
    }

    fn strip(&self, data: &[u8]) -> Strip {
        strip_chunk(data)
    }
}

/// The parts of a request body the meter reads; every other member is skipped unread.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    /// Kept as written (even `null`), so it can be replaced where it stands.
    #[serde(borrow, default, deserialize_with = "raw_member")]
    stream_options: Option<&'a RawValue>,
}

const INCLUDE_USAGE: &str = r#"{"include_usage":true}"#;

/// The body with `stream_options.include_usage` set, or `None` if the client set it already.
/// Only the `stream_options` member changes: it is added after the opening brace, or its value
/// is replaced where it stands; the rest of the body is copied byte for byte.
fn ask_for_usage(body: &[u8], options: Option<&RawValue>) -> Option<Bytes> {
    let Some(raw) = options else {
        let open = body.iter().position(|&b| b == b'{')?;
        let member = format!(r#""stream_options":{INCLUDE_USAGE},"#);
        return Some(splice(body, open + 1..open + 1, member.as_bytes()));
    };
    let value = match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(serde_json::Value::Object(mut map)) => {
            if map.get("include_usage") == Some(&serde_json::Value::Bool(true)) {
                return None;
            }
            map.insert("include_usage".into(), true.into());
            serde_json::Value::Object(map).to_string()
        }
        _ => INCLUDE_USAGE.to_owned(),
    };
    let span = span_of(body, raw.get())?;
    Some(splice(body, span, value.as_bytes()))
}

/// The members of a stream chunk that [`strip_chunk`] looks at.
#[derive(Deserialize)]
struct ChunkHead<'a> {
    #[serde(borrow, default, deserialize_with = "raw_member")]
    choices: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "raw_member")]
    usage: Option<&'a RawValue>,
}

/// What asking for usage added to one chunk of a Chat Completions stream: the usage-only chunk
/// (`"choices":[]` with a usage) is dropped; a `"usage":null` member is cut out, with its comma.
fn strip_chunk(data: &[u8]) -> Strip {
    let Ok(head) = serde_json::from_slice::<ChunkHead<'_>>(data) else {
        return Strip::Keep;
    };
    let Some(usage) = head.usage else {
        return Strip::Keep;
    };
    let is_null = usage.get() == "null";
    let no_choices = head.choices.is_some_and(|c| {
        let c = c.get();
        c.starts_with('[') && c[1..].trim() == "]"
    });
    if !is_null {
        return if no_choices { Strip::Drop } else { Strip::Keep };
    }
    span_of(data, usage.get())
        .and_then(|value| member_span(data, value))
        .map_or(Strip::Keep, Strip::Cut)
}

/// The bytes to remove to take out the member whose value is at `value` in a JSON object: its
/// key, colon and value, with the comma before it (or, for the first member, the one after).
/// `None` if the bytes before the value are not `"usage":` as a compact or spaced writer
/// would put them.
fn member_span(data: &[u8], value: std::ops::Range<usize>) -> Option<std::ops::Range<usize>> {
    let before = data.get(..value.start)?;
    let colon = before.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if before[colon] != b':' {
        return None;
    }
    let key_end = before[..colon]
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())?
        + 1;
    let key_start = key_end.checked_sub(br#""usage""#.len())?;
    if &before[key_start..key_end] != br#""usage""# {
        return None;
    }
    let lead = before[..key_start]
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())?;
    match before[lead] {
        b',' => Some(lead..value.end),
        b'{' => {
            let after = data.get(value.end..)?;
            let comma = after.iter().position(|b| !b.is_ascii_whitespace())?;
            if after[comma] != b',' {
                return None;
            }
            let next = after[comma + 1..]
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .map_or(after.len(), |n| comma + 1 + n);
            Some(key_start..value.end + next)
        }
        _ => None,
    }
}

/// Chat Completions `usage`.
#[derive(Deserialize)]
struct ChatUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    prompt_tokens_details: Option<Cached>,
}

/// Responses `usage`.
#[derive(Deserialize)]
struct ResponseUsage {
    input_tokens: u64,
    output_tokens: u64,
    input_tokens_details: Option<Cached>,
}

#[derive(Deserialize)]
struct Cached {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

/// The meter's usage from OpenAI's counts: cached tokens moved out of the prompt total into
/// cache reads (a cached count above the total is a lie from upstream and is capped at it).
fn from_openai(prompt: u64, output: u64, cached: Option<&Cached>) -> Usage {
    let cached = cached
        .and_then(|c| c.cached_tokens)
        .unwrap_or(0)
        .min(prompt);
    Usage {
        input: prompt - cached,
        output,
        cache_read: cached,
        ..Usage::default()
    }
}

impl From<ChatUsage> for Usage {
    fn from(u: ChatUsage) -> Usage {
        from_openai(
            u.prompt_tokens,
            u.completion_tokens,
            u.prompt_tokens_details.as_ref(),
        )
    }
}

impl From<ResponseUsage> for Usage {
    fn from(u: ResponseUsage) -> Usage {
        from_openai(
            u.input_tokens,
            u.output_tokens,
            u.input_tokens_details.as_ref(),
        )
    }
}

/// `service_tier` as echoed in an answer, when it names a tier the meter prices.
fn served(tier: Option<&str>) -> Served {
    Served {
        tier: tier.and_then(Tier::parse),
        latency_optimized: false,
    }
}

#[derive(Deserialize)]
struct ChatBody<'a> {
    usage: ChatUsage,
    #[serde(borrow, default)]
    service_tier: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

/// Usage from a whole Chat Completions answer.
pub fn read_chat(body: &[u8]) -> Result<Found, Missing> {
    let b: ChatBody<'_> = serde_json::from_slice(body).map_err(|_| Missing::Unparseable)?;
    Ok(Found {
        served: Some(served(b.service_tier.as_deref())),
        usage: Some(b.usage.into()),
        invoked_model: None,
        units: Default::default(),
        stop_reason: b
            .choices
            .first()
            .and_then(|c| c.finish_reason.as_deref())
            .map(StopReason::parse),
    })
}

#[derive(Deserialize)]
struct ChatChunk<'a> {
    #[serde(default)]
    usage: Option<ChatUsage>,
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
}

/// Usage from a Chat Completions stream chunk: the one with a non-null `usage`; and the
/// `finish_reason` of the chunk that ends the choice.
pub fn read_chat_event(_event: &str, data: &[u8]) -> Result<Option<SseFound>, Unreadable> {
    let has_usage = mentions_usage(data);
    // Every chunk says `"finish_reason":null` until the last: only a string is worth a parse.
    let has_stop = [&b"\"finish_reason\":\""[..], b"\"finish_reason\": \""]
        .iter()
        .any(|n| memchr::memmem::find(data, n).is_some());
    if data == b"[DONE]" || !(has_usage || has_stop) {
        return Ok(None);
    }
    let chunk: ChatChunk<'_> = match serde_json::from_slice(data) {
        Ok(c) => c,
        // Only a chunk that should carry usage makes the stream unreadable.
        Err(_) if has_usage => return Err(Unreadable),
        Err(_) => return Ok(None),
    };
    let stop = chunk
        .choices
        .first()
        .and_then(|c| c.finish_reason.as_deref())
        .map(StopReason::parse);
    Ok(SseFound::of(
        chunk.usage.map(|u| Usage::from(u).map(Some)),
        stop,
    ))
}

#[derive(Deserialize)]
struct ResponseBody<'a> {
    usage: ResponseUsage,
    #[serde(borrow, default)]
    service_tier: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    incomplete_details: Option<Incomplete<'a>>,
}

#[derive(Deserialize)]
struct Incomplete<'a> {
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

/// Why a Responses answer ended: an incomplete one says why; a completed one ended its turn.
fn response_stop(
    status: Option<Cow<'_, str>>,
    incomplete: Option<Incomplete<'_>>,
) -> Option<StopReason> {
    incomplete
        .and_then(|i| i.reason)
        .or(status)
        .map(|s| StopReason::parse(&s))
}

/// Usage from a whole Responses answer.
pub fn read_response(body: &[u8]) -> Result<Found, Missing> {
    let b: ResponseBody<'_> = serde_json::from_slice(body).map_err(|_| Missing::Unparseable)?;
    let stop = response_stop(b.status, b.incomplete_details);
    Ok(Found {
        served: Some(served(b.service_tier.as_deref())),
        usage: Some(b.usage.into()),
        invoked_model: None,
        units: Default::default(),
        stop_reason: stop,
    })
}

#[derive(Deserialize)]
struct ResponseEvent<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    response: Option<ResponseObject<'a>>,
}

#[derive(Deserialize)]
struct ResponseObject<'a> {
    #[serde(default)]
    usage: Option<ResponseUsage>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    incomplete_details: Option<Incomplete<'a>>,
}

/// The events that end a Responses stream; each carries the final response and its usage.
const FINAL_EVENTS: [&str; 3] = [
    "response.completed",
    "response.incomplete",
    "response.failed",
];

/// Usage from a Responses stream event: the final `response.completed` (or `.incomplete`,
/// `.failed`) carries the whole response with its usage.
pub fn read_response_event(event: &str, data: &[u8]) -> Result<Option<SseFound>, Unreadable> {
    if !(event.is_empty() || FINAL_EVENTS.contains(&event)) || !mentions_usage(data) {
        return Ok(None);
    }
    let e: ResponseEvent<'_> = serde_json::from_slice(data).map_err(|_| Unreadable)?;
    if !FINAL_EVENTS.contains(&&*e.kind) {
        return Ok(None);
    }
    let Some(r) = e.response else {
        return Ok(None);
    };
    let stop = response_stop(r.status, r.incomplete_details);
    Ok(SseFound::of(
        r.usage.map(|u| Usage::from(u).map(Some)),
        stop,
    ))
}

/// Whether an event can hold a usage at all; most stream events are small deltas without one.
fn mentions_usage(data: &[u8]) -> bool {
    memchr::memmem::find(data, b"\"usage\"").is_some()
}

#[cfg(test)]
mod tests;
