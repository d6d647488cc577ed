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

/// The exception frame a stream ends with when the model fails mid-answer.
pub fn exception(exception_type: &str) -> Result<Bytes, EncodeError> {
    let payload = match exception_type {
        "modelStreamErrorException" => json!({
            "message": "The model stream was interrupted by a simulated error.",
            "originalStatusCode": 500,
        }),
        "throttlingException" => json!({ "message": THROTTLED }),
        "serviceUnavailableException" => {
            json!({ "message": "Bedrock is unable to process your request." })
        }
        "validationException" => {
            json!({ "message": "The simulated stream hit a validation error." })
        }
        "modelTimeoutException" => {
            json!({ "message": "Model has timed out in processing the request." })
        }
        _ => {
            json!({ "message": "The server encountered an internal error while processing the request." })
        }
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
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
    use bytes::BytesMut;
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn header<'a>(m: &'a Message, name: &str) -> &'a str {
        m.headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .unwrap()
            .value()
            .as_string()
            .unwrap()
            .as_str()
    }

    fn decode_one(bytes: &[u8]) -> Result<Message, EncodeError> {
        let mut buf = BytesMut::from(bytes);
        match MessageFrameDecoder::new().decode_frame(&mut buf)? {
            DecodedFrame::Complete(m) => Ok(m),
            DecodedFrame::Incomplete => panic!("incomplete"),
        }
    }

    #[test]
    fn event_frames_round_trip_with_padding() {
        let m =
            decode_one(&event("messageStart", json!({"role": "assistant"}), 3).unwrap()).unwrap();
        assert_eq!(header(&m, ":event-type"), "messageStart");
        assert_eq!(header(&m, ":message-type"), "event");
        assert_eq!(header(&m, ":content-type"), "application/json");
        let v: Value = serde_json::from_slice(m.payload()).unwrap();
        assert_eq!(v, json!({"role": "assistant", "p": &PADDING[..22]}));
    }

    #[test]
    fn exception_and_corrupt_frames() {
        let m = decode_one(&exception("modelStreamErrorException").unwrap()).unwrap();
        assert_eq!(header(&m, ":message-type"), "exception");
        assert_eq!(header(&m, ":exception-type"), "modelStreamErrorException");
        let v: Value = serde_json::from_slice(m.payload()).unwrap();
        assert_eq!(v["originalStatusCode"], 500);
        let good = event("x", json!({}), 0).unwrap();
        assert!(decode_one(&corrupt(&good)).is_err());
    }

    fn script(deltas: usize) -> Script {
        let frame = |name: &str| event(name, json!({}), 0).unwrap();
        Script {
            preamble: vec![frame("start")],
            deltas: (0..deltas).map(|_| frame("delta")).collect(),
            tail: vec![frame("stop"), frame("usage")],
        }
    }

    async fn run(fault: Option<(StreamFault, u64)>) -> (Vec<String>, bool, bool) {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let (mut body, _) = spawn(script(3), Pacing::default(), fault, move || {
            flag.store(true, Ordering::SeqCst)
        });
        let mut names = Vec::new();
        let mut errored = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    let data = f.into_data().unwrap();
                    names.push(match decode_one(&data) {
                        Ok(m) => m
                            .headers()
                            .iter()
                            .find(|h| {
                                h.name().as_str().ends_with("-type")
                                    && h.name().as_str() != ":content-type"
                            })
                            .map(|h| h.value().as_string().unwrap().as_str().to_owned())
                            .unwrap(),
                        Err(_) => "corrupt".to_owned(),
                    });
                }
                Err(_) => {
                    errored = true;
                    break;
                }
            }
        }
        (names, errored, done.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn whole_script_completes() {
        let (names, errored, done) = run(None).await;
        assert_eq!(names, ["start", "delta", "delta", "delta", "stop", "usage"]);
        assert!(!errored);
        assert!(done);
    }

    #[tokio::test]
    async fn faults_cut_after_preamble_and_k_deltas() {
        let ex = exception("throttlingException").unwrap();
        let (names, errored, done) = run(Some((StreamFault::Exception(ex), 2))).await;
        assert_eq!(names, ["start", "delta", "delta", "throttlingException"]);
        assert!(!errored && !done);

        let (names, errored, done) = run(Some((StreamFault::Drop, 0))).await;
        assert_eq!(names, ["start"]);
        assert!(errored && !done);

        let (names, errored, done) = run(Some((StreamFault::Corrupt, 9))).await;
        assert_eq!(names, ["start", "delta", "delta", "delta", "corrupt"]);
        assert!(!errored && !done);
    }

    #[tokio::test]
    async fn producer_stops_when_the_client_goes_away() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let pacing = Pacing {
            ttft: Duration::ZERO,
            gap: Duration::from_secs(3600),
        };
        let (mut body, task) = spawn(script(3), pacing, None, move || {
            flag.store(true, Ordering::SeqCst)
        });
        assert!(body.frame().await.is_some());
        drop(body);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the producer must stop while waiting out a gap")
            .unwrap();
        assert!(!done.load(Ordering::SeqCst));
    }

    #[test]
    fn span() {
        let p = Pacing {
            ttft: Duration::from_millis(100),
            gap: Duration::from_millis(10),
        };
        assert_eq!(p.span_ms(8), 170);
        assert_eq!(p.span_ms(0), 100);
    }
}
