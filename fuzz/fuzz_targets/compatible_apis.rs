//! The families that read request bodies or answer non-token units — OpenAI-compatible,
//! Anthropic Messages, image and rerank InvokeModel, StartAsyncInvoke, ApplyGuardrail — and the
//! SSE tap and filter. No panic, and:
//! - a spliced body is still JSON, asks for usage, and differs from the client's in
//!   `stream_options` only;
//! - usage read from a stream, and the bytes the filter lets through, do not depend on where
//!   the stream was cut into chunks;
//! - a stream that never mentions `"usage"` passes the filter unchanged;
//! - a body tagged with request metadata is the client's JSON with the meter's app added, and a
//!   merged metadata header is a JSON object naming the app.
//!
//! Input: a split point (first byte), then the bytes, used both as a request body and as a
//! stream.
#![no_main]

use bedrock_meter::api::{Family, Operation, anthropic, async_invoke, converse, guardrail, invoke, openai};
use bedrock_meter::proxy::forward::metadata;
use bedrock_meter::proxy::tap::sse::{SseTap, Stripper, usage_of};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn stripped(data: &[u8], cut: usize) -> Vec<u8> {
    let mut s = Stripper::new(&openai::OpenAi);
    let mut out = Vec::new();
    let (a, b) = data.split_at(cut.min(data.len()));
    for part in [a, b] {
        out.extend_from_slice(&s.push(Bytes::copy_from_slice(part)));
    }
    out.extend_from_slice(&s.finish());
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&cut, data)) = input.split_first() else {
        return;
    };
    let cut = usize::from(cut);

    for (family, op) in [
        (&openai::OpenAi as &dyn Family, Operation::ChatCompletions),
        (&openai::OpenAi, Operation::Responses),
        (&anthropic::Anthropic, Operation::AnthropicMessages),
    ] {
        let Ok(asked) = family.request(op, None, data) else {
            continue;
        };
        assert!(asked.model_id.as_deref().is_some_and(|m| !m.is_empty()));
        if let Some(body) = &asked.rewrite {
            assert!(asked.stream && asked.strip_usage);
            // The meter reads only the members it needs, so a body can pass it with flaws
            // deeper in (an invalid `\u` escape); the splice must not add any.
            let Ok(mut original) = serde_json::from_slice::<Value>(data) else {
                continue;
            };
            let mut sent: Value = serde_json::from_slice(body).expect("a spliced body is JSON");
            assert_eq!(sent["stream_options"]["include_usage"], Value::Bool(true));
            if let (Some(sent), Some(original)) = (sent.as_object_mut(), original.as_object_mut()) {
                sent.remove("stream_options");
                original.remove("stream_options");
            }
            assert_eq!(sent, original);
        }
    }

    // Request metadata: a body the meter tags is still the client's JSON with the meter's app
    // in `requestMetadata`, and nothing else changed.
    if let Ok(Some(tagged)) = metadata::body(data, "app", "checkout")
        && let Ok(mut original) = serde_json::from_slice::<Value>(data)
        && original.is_object()
    {
        let mut sent: Value = serde_json::from_slice(&tagged).expect("a tagged body is JSON");
        assert_eq!(sent["requestMetadata"]["app"], Value::String("checkout".into()));
        let (Some(sent), Some(original)) = (sent.as_object_mut(), original.as_object_mut()) else {
            unreachable!("both are objects");
        };
        let mut tags = sent.remove("requestMetadata");
        if let Some(tags) = tags.as_mut().and_then(Value::as_object_mut) {
            tags.remove("app");
        }
        let mut before = original.remove("requestMetadata");
        if let Some(before) = before.as_mut().and_then(Value::as_object_mut) {
            before.remove("app");
        }
        let empty = Some(Value::Object(serde_json::Map::new()));
        assert!(tags == before || (tags == empty && before.as_ref().is_none_or(Value::is_null)));
        assert_eq!(sent, original);
    }
    if let Ok(value) = http::HeaderValue::from_bytes(data)
        && let Ok(merged) = metadata::header(Some(&value), "app", "checkout")
    {
        let merged: Value = serde_json::from_slice(merged.as_bytes()).expect("merged is JSON");
        assert_eq!(merged["app"], Value::String("checkout".into()));
    }

    // Units: an image count cannot exceed the bytes that hold it; nothing else may panic.
    for (family, op, model) in [
        (&invoke::Invoke as &dyn Family, Operation::InvokeModel, "amazon.nova-canvas-v1:0"),
        (&invoke::Invoke, Operation::InvokeModel, "us.stability.sd3-5-large-v1:0"),
        (&invoke::Invoke, Operation::InvokeModel, "cohere.rerank-v3-5:0"),
        (&async_invoke::AsyncInvoke, Operation::StartAsyncInvoke, ""),
    ] {
        if let Ok(asked) = family.request(op, Some(model), data) {
            assert!(asked.units.search_units <= data.len() as u64 / 100 + 1);
        }
    }
    if let Ok(found) = invoke::read_images(data) {
        assert!(found.units.images <= data.len() as u64);
    }
    let _ = guardrail::read_answer(data);
    let _ = converse::read_answer(data);
    // Any bytes as a request body: the output ceiling and the stable prefix never panic, and
    // a prefix is never longer than the body it came from.
    let key = bedrock_meter::api::request::FingerprintKey::from_secret("fuzz");
    let facts = bedrock_meter::api::request::facts(data, &key);
    if let Some(p) = facts.prefix {
        assert!(p.bytes > 0 && p.bytes <= data.len() as u64);
    }

    // OpenAI's usage has no cache writes; cached tokens are reads taken out of the prompt.
    for reader in [openai::read_chat as fn(&[u8]) -> _, openai::read_response] {
        if let Ok(found) = reader(data) {
            // A whole answer always has its usage.
            let usage = found.usage.expect("a read answer carries usage");
            assert_eq!((usage.cache_write, usage.cache_write_1h), (0, 0));
        }
    }
    let _ = anthropic::read_message(data);

    for read in [
        openai::read_chat_event as bedrock_meter::api::SseReader,
        openai::read_response_event,
        anthropic::read_event,
    ] {
        let mut whole = SseTap::new(read);
        whole.push(data);
        let mut split = SseTap::new(read);
        let (a, b) = data.split_at(cut.min(data.len()));
        split.push(a);
        split.push(b);
        assert_eq!(usage_of(&whole), usage_of(&split));
    }

    let once = stripped(data, data.len());
    assert_eq!(once, stripped(data, cut));
    if memchr_usage(data).is_none() {
        assert_eq!(once, data);
    }
});

fn memchr_usage(data: &[u8]) -> Option<usize> {
    data.windows(7).position(|w| w == b"\"usage\"")
}
