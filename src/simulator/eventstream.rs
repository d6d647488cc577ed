//! Event-stream responses: encoding frames the way Bedrock does, and the producer task that
//! sends them with the requested pacing and faults.

use std::time::Duration;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::body::{Dropped, FrameSender, SimBody};
use super::faults::THROTTLED;
use crate::server::listener::BoxError;

pub type EncodeError = aws_smithy_eventstream::error::Error;

/// Bedrock pads every payload with a random-length `p` so frame sizes do not leak token
/// lengths; a deterministic length per frame keeps the simulator's output reproducible.
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn string(value: impl Into<String>) -> HeaderValue {
    HeaderValue::String(value.into().into())
}

fn encode(headers: Vec<Header>, payload: &Value) -> Result<Bytes, EncodeError> {
    let message = Message::new_from_parts(headers, Bytes::from(payload.to_string()));
    let mut buf = Vec::new();
    write_message_to(&message, &mut buf)?;
    Ok(Bytes::from(buf))
}

/// An `event` frame of `event_type`; `index` picks its padding length.
pub fn event(event_type: &str, mut payload: Value, index: usize) -> Result<Bytes, EncodeError> {
    if let Value::Object(map) = &mut payload {
        let len = (index * 7) % PADDING.len() + 1;
        map.insert("p".into(), PADDING[..len].into());
    }
    encode(
        vec![
            Header::new(":event-type", string(event_type)),
            Header::new(":content-type", string("application/json")),
            Header::new(":message-type", string("event")),
        ],
        &payload,
    )
}

/// The message of a mid-stream exception of type `exception_type` (one of the directive's
/// `exception` values; anything else is an internal error).
pub fn exception_message(exception_type: &str) -> &'static str {
    match exception_type {
        "modelStreamErrorException" => "The model stream was interrupted by a simulated error.",
        "throttlingException" => THROTTLED,
        "serviceUnavailableException" => "Bedrock is unable to process your request.",
        "validationException" => "The simulated stream hit a validation error.",
        "modelTimeoutException" => "Model has timed out in processing the request.",
        _ => "The server encountered an internal error while processing the request.",
    }
}

/// The exception frame a stream ends with when the model fails mid-answer.
pub fn exception(exception_type: &str) -> Result<Bytes, EncodeError> {
    let message = exception_message(exception_type);
    let payload = if exception_type == "modelStreamErrorException" {
        json!({"message": message, "originalStatusCode": 500})
    } else {
        json!({ "message": message })
    };
    encode(
        vec![
            Header::new(":exception-type", string(exception_type)),
            Header::new(":content-type", string("application/json")),
            Header::new(":message-type", string("exception")),
        ],
        &payload,
    )
}

/// `frame` with its message CRC flipped, which any decoder must reject.
pub fn corrupt(frame: &Bytes) -> Bytes {
    let mut bytes = frame.to_vec();
    if let Some(last) = bytes.last_mut() {
        *last ^= 0xff;
    }
    Bytes::from(bytes)
}

/// The frames of one streamed answer. Faults strike after the preamble and `after` deltas.
pub struct Script {
    pub preamble: Vec<Bytes>,
    pub deltas: Vec<Bytes>,
    /// Ends with the frame that carries the usage.
    pub tail: Vec<Bytes>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Pacing {
    /// Before the first frame.
    pub ttft: Duration,
    /// Before every later frame, the fault's included.
    pub gap: Duration,
}

impl Pacing {
    /// Milliseconds from the response headers to the last of `frames` frames.
    pub fn span_ms(&self, frames: usize) -> u64 {
        let gaps = frames.saturating_sub(1) as u64;
        millis(self.ttft).saturating_add(millis(self.gap).saturating_mul(gaps))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub enum StreamFault {
    /// An exception frame, then the end of the stream.
    Exception(Bytes),
    /// The body fails, so the connection is reset mid-stream.
    Drop,
    /// The next frame goes out with a bad CRC, then the stream ends.
    Corrupt,
}

/// Starts the producer task and returns the body it feeds. `on_complete` runs once the last
/// frame (the one with the usage) has been handed to the body, and never after a fault.
pub fn spawn(
    script: Script,
    pacing: Pacing,
    fault: Option<(StreamFault, u64)>,
    on_complete: impl FnOnce() + Send + 'static,
) -> (SimBody, JoinHandle<()>) {
    let (tx, body) = SimBody::channel();
    let task = tokio::spawn(async move {
        if produce(&tx, script, pacing, fault).await {
            on_complete();
        }
        // Only now may the body end: a client that has read the whole stream finds the
        // usage already recorded.
        drop(tx);
    });
    (body, task)
}

/// Sends the script; true if every frame was handed over.
async fn produce(
    tx: &FrameSender,
    script: Script,
    pacing: Pacing,
    fault: Option<(StreamFault, u64)>,
) -> bool {
    let mut pacer = Pacer {
        tx,
        pacing,
        first: true,
    };
    let cut = fault.as_ref().map(|(_, after)| {
        let after = usize::try_from(*after).unwrap_or(usize::MAX);
        script.preamble.len() + after.min(script.deltas.len())
    });
    let frames = script
        .preamble
        .into_iter()
        .chain(script.deltas)
        .chain(script.tail);
    for (i, frame) in frames.enumerate() {
        if let (Some(cut), Some((fault, _))) = (cut, &fault)
            && i == cut
        {
            let item = match fault {
                StreamFault::Exception(frame) => Ok(frame.clone()),
                StreamFault::Drop => Err(Box::new(Dropped) as BoxError),
                StreamFault::Corrupt => Ok(corrupt(&frame)),
            };
            pacer.send(item).await;
            return false;
        }
        if !pacer.send(Ok(frame)).await {
            return false;
        }
    }
    true
}

struct Pacer<'a> {
    tx: &'a FrameSender,
    pacing: Pacing,
    first: bool,
}

impl Pacer<'_> {
    /// Waits out the pacing, then hands `item` to the body; false once the client is gone.
    async fn send(&mut self, item: Result<Bytes, BoxError>) -> bool {
        let wait = if self.first {
            self.pacing.ttft
        } else {
            self.pacing.gap
        };
        self.first = false;
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.tx.closed() => return false,
            }
        }
        self.tx.send(item).await.is_ok()
    }
}

#[cfg(test)]
mod tests;
