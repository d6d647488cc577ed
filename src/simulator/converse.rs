//! Converse and ConverseStream answers, shaped as the Bedrock service model defines them.

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use serde_json::{Value, json};

use super::body::SimBody;
use super::call::Call;
use super::directives::Fault;
use super::eventstream::{self, EncodeError, Script, StreamFault};
use super::usage::Render;

pub const EVENTSTREAM: &str = "application/vnd.amazon.eventstream";

/// Non-content frames around the deltas: messageStart; contentBlockStop, messageStop, metadata.
const FIXED_FRAMES: usize = 4;

pub fn converse(call: &Call) -> Response<SimBody> {
    let mut answer = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": call.text()}]}},
        "stopReason": call.stop_reason(),
        "usage": call.usage.converse_json(),
        "metrics": {"latencyMs": call.latency_ms(0)},
    });
    add_tier(&mut answer, call);
    add_trace(&mut answer, call);
    paced_json(call, answer.to_string())
}

/// A whole JSON answer, and its usage recorded once it has been handed over. Unpaced, it goes
/// out at once; paced, in `chunks` pieces, `ttft_ms` before the first and `gap_ms` before each
/// later one, as a slow connection would deliver it.
pub fn paced_json(call: &Call, text: String) -> Response<SimBody> {
    let pacing = call.pacing();
    let body = if pacing.ttft.is_zero() && pacing.gap.is_zero() {
        call.record_usage();
        SimBody::bytes(text)
    } else {
        let pieces = usize::try_from(call.directive.chunks())
            .unwrap_or(usize::MAX)
            .max(1);
        let size = text.len().div_ceil(pieces).max(1);
        let deltas = text
            .as_bytes()
            .chunks(size)
            .map(Bytes::copy_from_slice)
            .collect();
        let script = Script {
            preamble: Vec::new(),
            deltas,
            tail: Vec::new(),
        };
        eventstream::spawn(script, pacing, None, call.usage_recorder()).0
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn converse_stream(call: &Call) -> Result<Response<SimBody>, EncodeError> {
    let parts = call.parts();
    let frames = parts.len() + FIXED_FRAMES;
    let mut metadata = json!({
        "usage": call.usage.converse_json(),
        "metrics": {"latencyMs": call.latency_ms(frames)},
    });
    add_tier(&mut metadata, call);
    add_trace(&mut metadata, call);

    let mut index = 0;
    let mut next = |event_type: &str, payload: Value| {
        index += 1;
        eventstream::event(event_type, payload, index)
    };
    let preamble = vec![next("messageStart", json!({"role": "assistant"}))?];
    let deltas = parts
        .into_iter()
        .map(|text| {
            next(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": text}}),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tail = vec![
        next("contentBlockStop", json!({"contentBlockIndex": 0}))?,
        next("messageStop", json!({"stopReason": call.stop_reason()}))?,
        next("metadata", metadata)?,
    ];
    let script = Script {
        preamble,
        deltas,
        tail,
    };
    let fault = stream_fault(call)?;
    let (body, _) = eventstream::spawn(script, call.pacing(), fault, call.usage_recorder());
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENTSTREAM));
    Ok(response)
}

/// The mid-stream fault the directive asks for, with how many deltas precede it.
pub fn stream_fault(call: &Call) -> Result<Option<(StreamFault, u64)>, EncodeError> {
    let d = &call.directive;
    let fault = match d.fault {
        Some(Fault::Midstream) => {
            let kind = d.exception.unwrap_or("modelStreamErrorException");
            StreamFault::Exception(eventstream::exception(kind)?)
        }
        Some(Fault::Drop) => StreamFault::Drop,
        Some(Fault::Malformed) => StreamFault::Corrupt,
        _ => return Ok(None),
    };
    Ok(Some((fault, d.after())))
}

fn add_tier(object: &mut Value, call: &Call) {
    if let (Some(tier), Value::Object(map)) = (&call.tier, object) {
        map.insert("serviceTier".into(), json!({"type": tier}));
    }
}

/// For a call to a prompt router: which model it chose.
fn add_trace(object: &mut Value, call: &Call) {
    if let (Some(id), Value::Object(map)) = (&call.invoked_model, object) {
        map.insert(
            "trace".into(),
            json!({"promptRouter": {"invokedModelId": id}}),
        );
    }
}

pub fn json_response(value: &Value) -> Response<SimBody> {
    let mut response = Response::new(SimBody::bytes(value.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
