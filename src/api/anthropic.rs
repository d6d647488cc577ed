//! The Anthropic Messages API Bedrock serves on bedrock-runtime under `/anthropic`
//! (`POST /anthropic/v1/messages`, the Anthropic SDKs' base URL plus `/v1/messages`). The model
//! is the JSON body's `model`; a streamed answer (`"stream": true`) is Server-Sent Events whose
//! `message_start` reports the input side of the usage and whose `message_delta` reports the
//! output (and, in newer versions, the input again): later counts replace earlier ones.
//!
//! Anthropic's `input_tokens` already excludes cache reads and writes, as the meter's `input`
//! does; `cache_creation.ephemeral_1h_input_tokens` is the 1-hour share of the cache writes.

use std::borrow::Cow;

use http::Method;
use serde::Deserialize;

use super::{
    Answer, Asked, BadBody, Family, Found, Missing, Operation, Route, Served, SseFound, SseUsage,
    StopReason, Unreadable, body_model,
};
use crate::pricing::{Tier, Tokens, Usage};

pub struct Anthropic;

impl Family for Anthropic {
    fn route(&self, method: &Method, segments: &[&str]) -> Option<Route> {
        match (method, segments) {
            (&Method::POST, ["anthropic", "v1", "messages"]) => Some(Route {
                operation: Operation::AnthropicMessages,
                model_id: None,
                family: &Anthropic,
            }),
            _ => None,
        }
    }

    fn request(
        &self,
        _op: Operation,
        _model_id: Option<&str>,
        body: &[u8],
    ) -> Result<Asked, BadBody> {
        let head: Head<'_> = serde_json::from_slice(body)
            .map_err(|e| BadBody(format!("The request body is not a valid request: {e}")))?;
        Ok(Asked {
            model_id: Some(body_model(head.model)?),
            stream: head.stream.unwrap_or(false),
            rewrite: None,
            strip_usage: false,
            ..Asked::default()
        })
    }

    fn answer(&self, op: Operation, asked: &Asked) -> Answer {
        match (op, asked.stream) {
            (Operation::AnthropicMessages, false) => Answer::JsonBody(read_message),
            (Operation::AnthropicMessages, true) => Answer::Sse(read_event),
            _ => Answer::Unmetered,
        }
    }
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
}

/// A Messages `usage`, whole or partial: every count is optional because a stream's
/// `message_delta` may carry only `output_tokens`.
#[derive(Deserialize)]
struct MessagesUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_creation: Option<CacheCreation>,
}

#[derive(Deserialize)]
struct CacheCreation {
    ephemeral_1h_input_tokens: Option<u64>,
}

impl MessagesUsage {
    fn counts(&self) -> SseUsage {
        Tokens {
            input: self.input_tokens,
            output: self.output_tokens,
            cache_read: self.cache_read_input_tokens,
            cache_write: self.cache_creation_input_tokens,
            cache_write_1h: self
                .cache_creation
                .as_ref()
                .and_then(|c| c.ephemeral_1h_input_tokens),
        }
    }
}

#[derive(Deserialize)]
struct MessageBody<'a> {
    usage: MessagesUsage,
    #[serde(borrow, default)]
    service_tier: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

/// Usage from a whole Messages answer: `input_tokens` and `output_tokens` are required there.
pub fn read_message(body: &[u8]) -> Result<Found, Missing> {
    let b: MessageBody<'_> = serde_json::from_slice(body).map_err(|_| Missing::Unparseable)?;
    let counts = b.usage.counts();
    if counts.input.is_none() || counts.output.is_none() {
        return Err(Missing::Unparseable);
    }
    Ok(Found {
        usage: Some(counts.map(|n| n.unwrap_or(0))),
        stop_reason: b.stop_reason.as_deref().map(StopReason::parse),
        served: Some(Served {
            tier: b.service_tier.as_deref().and_then(Tier::parse),
            latency_optimized: false,
        }),
        invoked_model: None,
        units: Default::default(),
    })
}

#[derive(Deserialize)]
struct StreamEvent<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(default)]
    message: Option<StartMessage>,
    #[serde(default)]
    usage: Option<MessagesUsage>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StartMessage {
    usage: Option<MessagesUsage>,
}

/// Counts from a Messages stream event: `message_start` (its message's usage) and
/// `message_delta` (its own usage, and why the model stopped).
pub fn read_event(event: &str, data: &[u8]) -> Result<Option<SseFound>, Unreadable> {
    if !matches!(event, "" | "message_start" | "message_delta") {
        return Ok(None);
    }
    let e: StreamEvent<'_> = serde_json::from_slice(data).map_err(|_| Unreadable)?;
    let (usage, stop) = match &*e.kind {
        "message_start" => (e.message.and_then(|m| m.usage), None),
        "message_delta" => (
            e.usage,
            e.delta
                .and_then(|d| d.stop_reason)
                .map(|s| StopReason::parse(&s)),
        ),
        _ => (None, None),
    };
    Ok(SseFound::of(usage.map(|u| u.counts()), stop))
}

/// The usage a stream's counts add up to: what the last event said of each count.
pub fn total(counts: SseUsage) -> Usage {
    counts.map(|n| n.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_answer() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude",
            "content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn",
            "usage":{"input_tokens":12,"output_tokens":30,"cache_read_input_tokens":400,
                     "cache_creation_input_tokens":50,
                     "cache_creation":{"ephemeral_5m_input_tokens":20,"ephemeral_1h_input_tokens":30}}}"#;
        assert_eq!(
            read_message(body).map(|f| f.usage.unwrap_or_default()),
            Ok(Usage {
                input: 12,
                output: 30,
                cache_read: 400,
                cache_write: 50,
                cache_write_1h: 30,
            })
        );
        assert_eq!(
            read_message(br#"{"usage":{"output_tokens":3}}"#),
            Err(Missing::Unparseable)
        );
        assert_eq!(read_message(b"{"), Err(Missing::Unparseable));
    }

    #[test]
    fn stream_counts_replace_field_by_field() {
        let start = br#"{"type":"message_start","message":{"id":"m","usage":{"input_tokens":9,"cache_read_input_tokens":4,"cache_creation_input_tokens":0,"output_tokens":1}}}"#;
        let delta = br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":41}}"#;
        let mut seen = SseUsage::default();
        for (name, data) in [
            ("message_start", &start[..]),
            ("content_block_delta", br#"{"type":"content_block_delta"}"#),
            ("message_delta", &delta[..]),
        ] {
            if let Some(c) = read_event(name, data).unwrap().and_then(|f| f.counts) {
                seen = crate::api::merge(seen, c);
            }
        }
        assert_eq!(
            total(seen),
            Usage {
                input: 9,
                output: 41,
                cache_read: 4,
                ..Usage::default()
            }
        );
        assert_eq!(
            read_event("message_delta", delta)
                .unwrap()
                .and_then(|f| f.stop),
            Some(StopReason::EndTurn)
        );
        assert_eq!(read_event("message_start", b"{"), Err(Unreadable));
        assert_eq!(read_event("ping", b"{"), Ok(None));
    }

    #[test]
    fn request_names_the_model() {
        let asked = Anthropic
            .request(
                Operation::AnthropicMessages,
                None,
                br#"{"model":"global.anthropic.claude-sonnet-4-5-20250929-v1:0","stream":true,"max_tokens":10,"messages":[]}"#,
            )
            .unwrap();
        assert_eq!(
            asked.model_id.as_deref(),
            Some("global.anthropic.claude-sonnet-4-5-20250929-v1:0")
        );
        assert!(asked.stream && asked.rewrite.is_none());
        assert!(
            Anthropic
                .request(Operation::AnthropicMessages, None, br#"{"max_tokens":10}"#)
                .is_err()
        );
        assert!(
            Anthropic
                .request(Operation::AnthropicMessages, None, b"not json")
                .is_err()
        );
    }
}
