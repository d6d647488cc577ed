//! `InvokeModelWithBidirectionalStream`, as Nova Sonic answers it: a session read frame by
//! frame while it answers, both at once.
//!
//! Every request frame is one client event (`chunk`, `{"bytes": base64 of the event JSON}`),
//! wrapped in a signed frame when the client signs them; with credentials expected, the head
//! is checked over the empty body's hash and each frame in the chain its signature seeds, and
//! each result counted in `signatures_valid` / `signatures_invalid`.
//!
//! The conversation, deterministic: a `textInput` counts its bytes ÷ 4 (rounded up) as input
//! text tokens, and the first one may carry a `[[sim …]]` directive; an `audioInput` counts one
//! input speech token per started 1,024 bytes of audio and is answered at once with a
//! `usageEvent` (running totals, and the change since the last), so a client can wait for it before sending more; the end of
//! an audio content (the user's turn) is answered with a reply — text (4 output text tokens)
//! then `chunks` audio pieces (default 3) of 1,024 bytes, one output speech token each, `gap_ms`
//! apart — and a `usageEvent`; `sessionEnd` ends the stream with `completionEnd`. Faults:
//! `fault=drop after=N` cuts the connection after N answer frames; `fault=midstream
//! exception=TYPE after=N` ends the stream with that exception frame (Bedrock's session limit is
//! `modelTimeoutException`).

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_smithy_eventstream::frame::read_message_from;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, header, request::Parts};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::Shared;
use super::body::{Dropped, FrameSender, SimBody};
use super::directives::{self, Directive, Fault};
use super::eventstream::{self, EncodeError};
use crate::aws::sigv4::event::{DATE, FrameChain, SIGNATURE, date_of};
use crate::aws::sigv4::{self};

/// Audio bytes per speech token, both ways.
pub const AUDIO_BYTES_PER_TOKEN: usize = 1024;
/// Output text tokens of one reply.
pub const REPLY_TEXT_TOKENS: u64 = 4;
const REPLY_TEXT: &str = "Simulated spoken reply.";
const DEFAULT_AUDIO_CHUNKS: u64 = 3;

/// Running totals, as `usageEvent` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub speech_in: u64,
    pub text_in: u64,
    pub speech_out: u64,
    pub text_out: u64,
}

/// Starts the session: checks the head, then answers from a task of its own while the request
/// frames arrive.
pub fn session(shared: &Shared, parts: &Parts, body: Incoming, model: String) -> Response<SimBody> {
    let mut chain = None;
    if let Some(expected) = &shared.expect_credentials {
        let verdict = super::auth::check(parts, b"", expected);
        shared.recorder.signature(verdict.is_ok());
        if let Err(rejection) = verdict {
            return rejection.into_response();
        }
        chain = seed(parts, expected);
    }
    let (tx, response_body) = SimBody::channel();
    let recorder = shared.recorder.clone();
    tokio::spawn(async move {
        let mut s = Session {
            tx,
            chain,
            recorder,
            model,
            totals: Totals::default(),
            reported: Totals::default(),
            audio: None,
            directive: None,
            sent: 0,
            started: false,
            closed: false,
        };
        // Any error ends the session; the client sees the stream end or break.
        let _ = s.run(body).await;
    });
    let mut response = Response::new(response_body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::converse::EVENTSTREAM),
    );
    response
}

fn seed(parts: &Parts, expected: &Credentials) -> Option<FrameChain> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let auth = sigv4::parse_authorization(value).ok()?;
    Some(FrameChain::new(expected, auth.region, auth.signature))
}

struct Session {
    tx: FrameSender,
    /// The chain request frames are checked in, when credentials are expected.
    chain: Option<FrameChain>,
    recorder: std::sync::Arc<super::stats::Recorder>,
    model: String,
    totals: Totals,
    /// The totals the last usage event reported.
    reported: Totals,
    /// The name of the audio content the client has open.
    audio: Option<String>,
    directive: Option<Directive>,
    /// Answer frames sent so far.
    sent: u64,
    started: bool,
    /// `sessionEnd` came: the answer is over, the rest of the request is only checked.
    closed: bool,
}

/// The session stopped early: the client is gone, or a fault ended the stream as planned.
enum Stop {
    Ended,
}

impl From<EncodeError> for Stop {
    fn from(_: EncodeError) -> Stop {
        Stop::Ended
    }
}

impl Session {
    async fn run(&mut self, mut body: Incoming) -> Result<(), Stop> {
        let mut buf = BytesMut::new();
        loop {
            while let Some(total) = whole(&buf) {
                let raw = buf.split_to(total).freeze();
                let Some(event) = self.unwrap(raw) else {
                    return self.finish_with_exception("validationException").await;
                };
                if self.closed {
                    // After `sessionEnd`: only the signatures of what still comes are checked.
                    continue;
                }
                if !self.on_event(&event).await? {
                    self.closed = true;
                    self.end().await?;
                }
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                    }
                }
                // The client's stream ended, or broke: so does the answer.
                Some(Err(_)) | None if self.closed => return Ok(()),
                Some(Err(_)) | None => return self.end().await,
            }
        }
    }

    /// The client event a request frame carries, its signature checked when one is expected.
    fn unwrap(&mut self, raw: Bytes) -> Option<Value> {
        let outer = read_message_from(raw.clone()).ok()?;
        let mut date = None;
        let mut signature = None;
        for h in outer.headers() {
            match h.name().as_str() {
                DATE => date = date_of(h.value()),
                SIGNATURE => signature = h.value().as_byte_array().ok().cloned(),
                _ => {}
            }
        }
        let inner = match (&mut self.chain, signature, date) {
            (Some(chain), Some(sig), Some(date)) => {
                let ok = chain.check(outer.payload(), date, &sig);
                self.recorder.signature(ok);
                if !ok {
                    return None;
                }
                outer.payload().clone()
            }
            // Credentials expected: every frame must be signed.
            (Some(_), _, _) => {
                self.recorder.signature(false);
                return None;
            }
            (None, Some(_), _) => outer.payload().clone(),
            (None, None, _) => raw,
        };
        // The final empty frame carries no event.
        if inner.is_empty() {
            return Some(Value::Null);
        }
        let message = read_message_from(inner).ok()?;
        let chunk: Value = serde_json::from_slice(message.payload()).ok()?;
        let decoded = STANDARD.decode(chunk["bytes"].as_str()?).ok()?;
        serde_json::from_slice(&decoded).ok()
    }

    /// Handles one client event; `false` when the session is over.
    async fn on_event(&mut self, event: &Value) -> Result<bool, Stop> {
        let Some((name, body)) = event["event"].as_object().and_then(|o| o.iter().next()) else {
            return Ok(true);
        };
        match name.as_str() {
            "textInput" => {
                let text = body["content"].as_str().unwrap_or_default();
                if self.directive.is_none() {
                    self.directive = Some(directives::parse(text.as_bytes()).unwrap_or_default());
                }
                self.totals.text_in += (text.len() as u64).div_ceil(4);
            }
            "audioInput" => {
                let audio = body["content"]
                    .as_str()
                    .and_then(|b| STANDARD.decode(b).ok())
                    .unwrap_or_default();
                self.totals.speech_in += audio.len().div_ceil(AUDIO_BYTES_PER_TOKEN) as u64;
                self.usage().await?;
            }
            "contentStart" if body["type"].as_str() == Some("AUDIO") => {
                self.audio = body["contentName"].as_str().map(str::to_owned);
            }
            // The end of the user's audio is a turn to answer; a text content (the system
            // prompt) ends without one.
            "contentEnd"
                if self.audio.is_some()
                    && self.audio.as_deref() == body["contentName"].as_str() =>
            {
                self.audio = None;
                self.reply(body["promptName"].as_str().unwrap_or("prompt"))
                    .await?;
            }
            "sessionEnd" => return Ok(false),
            _ => {}
        }
        Ok(true)
    }

    async fn reply(&mut self, prompt: &str) -> Result<(), Stop> {
        let d = self.directive.clone().unwrap_or_default();
        let ids = json!({"sessionId": "sim-session", "promptName": prompt, "completionId": "sim-completion"});
        if !self.started {
            self.started = true;
            self.send(json!({"completionStart": ids.clone()})).await?;
        }
        let with = |extra: Value| {
            let mut v = ids.clone();
            if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
                m.extend(e);
            }
            v
        };
        self.send(json!({"contentStart": with(json!({"contentId": "text-1", "type": "TEXT", "role": "ASSISTANT"}))}))
            .await?;
        self.send(json!({"textOutput": with(json!({"contentId": "text-1", "content": REPLY_TEXT, "role": "ASSISTANT"}))}))
            .await?;
        self.send(json!({"contentEnd": with(json!({"contentId": "text-1", "type": "TEXT", "stopReason": "END_TURN"}))}))
            .await?;
        self.totals.text_out += REPLY_TEXT_TOKENS;
        self.send(json!({"contentStart": with(json!({"contentId": "audio-1", "type": "AUDIO", "role": "ASSISTANT"}))}))
            .await?;
        let audio = STANDARD.encode([0u8; AUDIO_BYTES_PER_TOKEN]);
        for i in 0..d.chunks.unwrap_or(DEFAULT_AUDIO_CHUNKS) {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(d.gap_ms.unwrap_or(0))).await;
            }
            self.send(
                json!({"audioOutput": with(json!({"contentId": "audio-1", "content": audio}))}),
            )
            .await?;
            self.totals.speech_out += 1;
        }
        self.send(json!({"contentEnd": with(json!({"contentId": "audio-1", "type": "AUDIO", "stopReason": "END_TURN"}))}))
            .await?;
        self.usage().await
    }

    async fn usage(&mut self) -> Result<(), Stop> {
        let (t, r) = (self.totals, self.reported);
        let event = json!({"usageEvent": {
            "completionId": "sim-completion",
            "sessionId": "sim-session",
            "promptName": "prompt",
            "details": {
                "delta": {
                    "input": {"speechTokens": t.speech_in - r.speech_in, "textTokens": t.text_in - r.text_in},
                    "output": {"speechTokens": t.speech_out - r.speech_out, "textTokens": t.text_out - r.text_out},
                },
                "total": {
                    "input": {"speechTokens": t.speech_in, "textTokens": t.text_in},
                    "output": {"speechTokens": t.speech_out, "textTokens": t.text_out},
                },
            },
            "totalInputTokens": t.speech_in + t.text_in,
            "totalOutputTokens": t.speech_out + t.text_out,
            "totalTokens": t.speech_in + t.text_in + t.speech_out + t.text_out,
        }});
        self.send(event).await?;
        self.reported = t;
        Ok(())
    }

    /// Sends one answer event, or the planned fault in its place.
    async fn send(&mut self, event: Value) -> Result<(), Stop> {
        let d = self.directive.clone().unwrap_or_default();
        if d.after.is_some_and(|after| self.sent >= after) {
            match d.fault {
                Some(Fault::Drop) => {
                    let _ = self.tx.send(Err(Dropped.into())).await;
                    self.record();
                    return Err(Stop::Ended);
                }
                Some(Fault::Midstream) => {
                    let kind = d.exception.unwrap_or("internalServerException");
                    let _ = self.tx.send(Ok(eventstream::exception(kind)?)).await;
                    self.record();
                    return Err(Stop::Ended);
                }
                _ => {}
            }
        }
        self.sent += 1;
        let bytes = STANDARD.encode(json!({ "event": event }).to_string());
        let frame = eventstream::event("chunk", json!({ "bytes": bytes }), self.sent as usize)?;
        self.tx.send(Ok(frame)).await.map_err(|_| Stop::Ended)
    }

    async fn finish_with_exception(&mut self, kind: &str) -> Result<(), Stop> {
        let _ = self.tx.send(Ok(eventstream::exception(kind)?)).await;
        self.record();
        Ok(())
    }

    async fn end(&mut self) -> Result<(), Stop> {
        if self.started {
            self.send(json!({"completionEnd": {"sessionId": "sim-session", "promptName": "prompt", "completionId": "sim-completion", "stopReason": "END_TURN"}}))
                .await?;
        }
        self.record();
        Ok(())
    }

    /// The ground truth: what the last usage event reported.
    fn record(&self) {
        let t = self.reported;
        let usage = super::usage::Usage {
            input: t.text_in,
            output: t.text_out,
            ..Default::default()
        };
        self.recorder.usage_sent(&self.model, &usage);
        self.recorder
            .units_sent(&self.model, "speech_input_token", t.speech_in);
        self.recorder
            .units_sent(&self.model, "speech_output_token", t.speech_out);
    }
}

/// The length of the first whole frame in `buf`, if it is whole.
fn whole(buf: &BytesMut) -> Option<usize> {
    let prelude = buf.get(..4)?;
    let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
    (buf.len() >= total && total >= 16).then_some(total)
}
