//! InvokeModel and InvokeModelWithResponseStream answers: Anthropic Messages bodies for
//! Anthropic models, a generic text body otherwise, with Bedrock's usage headers and metrics.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderName, HeaderValue, Response, header};
use serde_json::{Value, json};

use super::body::SimBody;
use super::call::Call;
use super::converse::{EVENTSTREAM, json_response, stream_fault};
use super::eventstream::{self, EncodeError, Script};
use super::usage::{Render, Usage};

const TIER_HEADER: &str = "x-amzn-bedrock-service-tier";

/// For an Anthropic model (base id, system inference profile, or either's ARN), whose
/// InvokeModel bodies follow the Anthropic Messages API: the model name Anthropic puts in
/// `model`, i.e. the id without ARN, geography and vendor.
fn anthropic_name(model_id: &str) -> Option<&str> {
    let base = model_id.rsplit('/').next().unwrap_or(model_id);
    base.strip_prefix("anthropic.").or_else(|| {
        let (geo, rest) = base.split_once('.')?;
        let is_geo = !geo.is_empty()
            && geo.len() <= 6
            && geo.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
        if is_geo {
            rest.strip_prefix("anthropic.")
        } else {
            None
        }
    })
}

/// Embedding models (Titan, Cohere Embed, Nova embeddings) answer with a vector and count
/// input tokens only: Bedrock sends no output-token header for them.
fn is_embedding(model_id: &str) -> bool {
    let base = model_id.rsplit('/').next().unwrap_or(model_id);
    base.contains("embed")
}

pub fn invoke(call: &Call) -> Response<SimBody> {
    if is_embedding(&call.model) {
        return embedding(call);
    }
    let u = &call.usage;
    let body = match anthropic_name(&call.model) {
        Some(name) => json!({
            "id": message_id(call),
            "type": "message",
            "role": "assistant",
            "model": name,
            "content": [{"type": "text", "text": call.text()}],
            "stop_reason": call.stop_reason(),
            "stop_sequence": null,
            "usage": u.anthropic_json(u.output),
        }),
        None => {
            let mut usage = json!({
                "inputTokens": u.input,
                "outputTokens": u.output,
                "totalTokens": u.total(),
            });
            if let Value::Object(m) = &mut usage {
                if u.cache_read > 0 {
                    m.insert("cacheReadInputTokenCount".into(), u.cache_read.into());
                }
                if u.cache_write > 0 {
                    m.insert("cacheWriteInputTokenCount".into(), u.cache_write.into());
                }
            }
            json!({"outputText": call.text(), "stopReason": call.stop_reason(), "usage": usage})
        }
    };
    let mut response = json_response(&body);
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: u64| {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    };
    put("x-amzn-bedrock-input-token-count", u.input);
    put("x-amzn-bedrock-output-token-count", u.output);
    put("x-amzn-bedrock-invocation-latency", call.latency_ms(0));
    if u.cache_read > 0 {
        put("x-amzn-bedrock-cache-read-input-token-count", u.cache_read);
    }
    if u.cache_write > 0 {
        put(
            "x-amzn-bedrock-cache-write-input-token-count",
            u.cache_write,
        );
    }
    add_tier_header(&mut response, call);
    call.record_usage();
    response
}

/// Titan's shape: `{"embedding": [...], "inputTextTokenCount": N}`, and only the input-token
/// and latency headers.
fn embedding(call: &Call) -> Response<SimBody> {
    let usage = Usage {
        output: 0,
        ..call.usage
    };
    let mut response = json_response(&json!({
        "embedding": [0.125, -0.25, 0.5, 0.0],
        "inputTextTokenCount": usage.input,
    }));
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("x-amzn-bedrock-input-token-count"),
        HeaderValue::from(usage.input),
    );
    headers.insert(
        HeaderName::from_static("x-amzn-bedrock-invocation-latency"),
        HeaderValue::from(call.latency_ms(0)),
    );
    call.recorder.usage_sent(&call.model, &usage);
    response
}

pub fn invoke_stream(call: &Call) -> Result<Response<SimBody>, EncodeError> {
    let script = match anthropic_name(&call.model) {
        Some(name) => anthropic_script(call, name)?,
        None => generic_script(call)?,
    };
    let fault = stream_fault(call)?;
    let (body, _) = eventstream::spawn(script, call.pacing(), fault, call.usage_recorder());
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENTSTREAM));
    headers.insert(
        HeaderName::from_static("x-amzn-bedrock-content-type"),
        HeaderValue::from_static("application/json"),
    );
    add_tier_header(&mut response, call);
    Ok(response)
}

/// Frames of an Anthropic stream besides the deltas: message_start, content_block_start;
/// content_block_stop, message_delta, message_stop.
const ANTHROPIC_FIXED: usize = 5;

fn anthropic_script(call: &Call, name: &str) -> Result<Script, EncodeError> {
    let u = &call.usage;
    let parts = call.parts();
    let metrics = u.invocation_metrics_json(
        call.latency_ms(parts.len() + ANTHROPIC_FIXED),
        call.first_byte_ms(),
    );
    let mut chunks = Chunks::default();
    let preamble = vec![
        chunks.next(&json!({
            "type": "message_start",
            "message": {
                "id": message_id(call), "type": "message", "role": "assistant", "model": name,
                "content": [], "stop_reason": null, "stop_sequence": null,
                // Anthropic reports the first output token up front; the total comes later.
                "usage": u.anthropic_json(u.output.min(1)),
            },
        }))?,
        chunks.next(&json!({
            "type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""},
        }))?,
    ];
    let deltas = parts
        .iter()
        .map(|text| {
            chunks.next(&json!({
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text},
            }))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tail = vec![
        chunks.next(&json!({"type": "content_block_stop", "index": 0}))?,
        chunks.next(&json!({
            "type": "message_delta",
            "delta": {"stop_reason": call.stop_reason(), "stop_sequence": null},
            "usage": {"output_tokens": u.output},
        }))?,
        chunks.next(&json!({
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": metrics,
        }))?,
    ];
    Ok(Script {
        preamble,
        deltas,
        tail,
    })
}

fn generic_script(call: &Call) -> Result<Script, EncodeError> {
    let parts = call.parts();
    let metrics = call
        .usage
        .invocation_metrics_json(call.latency_ms(parts.len() + 1), call.first_byte_ms());
    let mut chunks = Chunks::default();
    let deltas = parts
        .iter()
        .map(|text| chunks.next(&json!({"outputText": text, "index": 0})))
        .collect::<Result<Vec<_>, _>>()?;
    let tail = vec![chunks.next(&json!({
        "outputText": "", "index": 0, "stopReason": call.stop_reason(),
        "amazon-bedrock-invocationMetrics": metrics,
    }))?];
    Ok(Script {
        preamble: Vec::new(),
        deltas,
        tail,
    })
}

/// Numbers `chunk` frames so each gets its own padding.
#[derive(Default)]
struct Chunks(usize);

impl Chunks {
    fn next(&mut self, decoded: &Value) -> Result<bytes::Bytes, EncodeError> {
        self.0 += 1;
        let payload = json!({"bytes": STANDARD.encode(decoded.to_string())});
        eventstream::event("chunk", payload, self.0)
    }
}

fn message_id(call: &Call) -> String {
    format!("msg_bdrk_{:024x}", call.seq)
}

fn add_tier_header(response: &mut Response<SimBody>, call: &Call) {
    if let Some(value) = call
        .tier
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        response
            .headers_mut()
            .insert(HeaderName::from_static(TIER_HEADER), value);
    }
}

pub fn count_tokens(call: &Call) -> Response<SimBody> {
    json_response(&json!({"inputTokens": call.usage.input}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_model_ids() {
        for id in [
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            "global.anthropic.claude-sonnet-4-20250514-v1:0",
            "apac.anthropic.claude-3-5-sonnet-20240620-v1:0",
            "us-gov.anthropic.claude-3-haiku-20240307-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0",
        ] {
            assert!(anthropic_name(id).is_some(), "{id}");
        }
        assert_eq!(
            anthropic_name("us.anthropic.claude-3-haiku-20240307-v1:0"),
            Some("claude-3-haiku-20240307-v1:0")
        );
        for id in [
            "amazon.nova-micro-v1:0",
            "us.amazon.nova-lite-v1:0",
            "meta.llama3-8b-instruct-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123",
            "anthropic",
            "notageography.anthropic.claude",
        ] {
            assert_eq!(anthropic_name(id), None, "{id}");
        }
    }
}
