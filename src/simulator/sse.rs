//! Server-Sent Events answers (the streams of Chat Completions, Responses and the Anthropic
//! Messages API): each event is one piece of an [`eventstream::Script`], so pacing and faults
//! work as they do for event streams.
//!
//! Faults after some events: `drop` cuts the connection, `malformed` sends the next event with
//! its last byte flipped (not valid UTF-8, and never terminated) and ends, and `midstream`
//! ends the stream with the API's own error event, since SSE has no Bedrock exceptions:
//! `data: {"error":{...}}` for Chat Completions, `event: error` for Responses and Anthropic.

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use serde::Serialize;

use super::body::SimBody;
use super::call::Call;
use super::directives::Fault;
use super::eventstream::{self, Script, StreamFault};

pub const CONTENT_TYPE: &str = "text/event-stream";

/// The end of a Chat Completions stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// An event with only a `data` line (Chat Completions).
pub fn data(json: &str) -> Bytes {
    Bytes::from(format!("data: {json}\n\n"))
}

/// An event with a name and its `data` (Responses, Anthropic Messages).
pub fn event(name: &str, json: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

/// An event of `name` whose `data` is `value`, compact.
pub fn named<T: Serialize>(name: &str, value: &T) -> Result<Bytes, serde_json::Error> {
    Ok(event(name, &serde_json::to_string(value)?))
}

/// Whose error events a stream ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    ChatCompletions,
    Responses,
    Anthropic,
}

/// Starts the producer of `script` and answers with the stream it feeds; the usage is recorded
/// once the last event has been handed over.
pub fn spawn(
    call: &Call,
    script: Script,
    dialect: Dialect,
) -> Result<Response<SimBody>, serde_json::Error> {
    let fault = stream_fault(call, dialect)?;
    let (body, _) = eventstream::spawn(script, call.pacing(), fault, call.usage_recorder());
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The mid-stream fault the directive asks for, with how many content events precede it.
fn stream_fault(
    call: &Call,
    dialect: Dialect,
) -> Result<Option<(StreamFault, u64)>, serde_json::Error> {
    let d = &call.directive;
    let fault = match d.fault {
        Some(Fault::Midstream) => {
            let kind = d.exception.unwrap_or("modelStreamErrorException");
            StreamFault::Exception(error_event(dialect, kind)?)
        }
        Some(Fault::Drop) => StreamFault::Drop,
        Some(Fault::Malformed) => StreamFault::Corrupt,
        _ => return Ok(None),
    };
    Ok(Some((fault, d.after())))
}

#[derive(Serialize)]
struct ChatError<'a> {
    error: ChatErrorBody<'a>,
}

#[derive(Serialize)]
struct ChatErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    /// The Bedrock exception the error stands for.
    code: &'a str,
}

#[derive(Serialize)]
struct ResponsesError<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
    message: &'a str,
    param: Option<&'a str>,
}

#[derive(Serialize)]
struct AnthropicError<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    error: AnthropicErrorBody<'a>,
}

#[derive(Serialize)]
struct AnthropicErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// The event a stream of `dialect` ends with for the Bedrock exception `exception_type`.
pub fn error_event(dialect: Dialect, exception_type: &str) -> Result<Bytes, serde_json::Error> {
    let message = eventstream::exception_message(exception_type);
    match dialect {
        Dialect::ChatCompletions => {
            let kind = match exception_type {
                "throttlingException" => "rate_limit_error",
                "validationException" => "invalid_request_error",
                _ => "server_error",
            };
            let error = ChatError {
                error: ChatErrorBody {
                    message,
                    kind,
                    param: None,
                    code: exception_type,
                },
            };
            Ok(data(&serde_json::to_string(&error)?))
        }
        Dialect::Responses => named(
            "error",
            &ResponsesError {
                kind: "error",
                code: exception_type,
                message,
                param: None,
            },
        ),
        Dialect::Anthropic => {
            let kind = match exception_type {
                "throttlingException" => "rate_limit_error",
                "validationException" => "invalid_request_error",
                "serviceUnavailableException" => "overloaded_error",
                _ => "api_error",
            };
            named(
                "error",
                &AnthropicError {
                    kind: "error",
                    error: AnthropicErrorBody { kind, message },
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: Bytes) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn error_events_per_dialect() {
        assert_eq!(
            text(error_event(Dialect::ChatCompletions, "throttlingException").unwrap()),
            "data: {\"error\":{\"message\":\"Too many requests, please wait before trying again.\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":\"throttlingException\"}}\n\n"
        );
        assert_eq!(
            text(error_event(Dialect::Responses, "modelStreamErrorException").unwrap()),
            "event: error\ndata: {\"type\":\"error\",\"code\":\"modelStreamErrorException\",\"message\":\"The model stream was interrupted by a simulated error.\",\"param\":null}\n\n"
        );
        assert_eq!(
            text(error_event(Dialect::Anthropic, "serviceUnavailableException").unwrap()),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Bedrock is unable to process your request.\"}}\n\n"
        );
    }
}
