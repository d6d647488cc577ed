//! Reads token usage out of Bedrock's `application/vnd.amazon.eventstream` response bodies
//! (ConverseStream, InvokeModelWithResponseStream) while the bytes stream past to the client.
//! The framing is decoded here; which event carries the usage, and how to read it, is the API
//! family's [`EventReader`].
//!
//! The proxy forwards every chunk untouched and also shows it to a [`StreamTap`]; the tap keeps
//! its own copy of at most one incomplete frame, so its memory is bounded by [`MAX_FRAME`].

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::Bytes;

use crate::api::{EventReader, Served, StopReason, Unreadable};
use crate::pricing::Usage;
use crate::pricing::billing_units::Units;

/// Largest frame the tap accepts. Bedrock's frames are a few KiB; anything bigger is treated as
/// garbage rather than buffered.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Total length, headers length, prelude CRC.
const PRELUDE_LEN: usize = 12;
/// Prelude plus the trailing message CRC: a frame with no headers and no payload.
const MIN_FRAME: usize = PRELUDE_LEN + 4;
/// After one unusually large frame, don't keep its buffer capacity for the rest of the stream.
const KEEP_CAPACITY: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Usage was found (the `metadata` event, or the final chunk's `amazon-bedrock-invocationMetrics`).
    Usage(Usage),
    /// A modeled exception frame (`:message-type` = `exception`) arrived; its `:exception-type`, e.g.
    /// "modelStreamErrorException". Usage seen before it (rare) is kept in `usage`.
    Exception {
        exception_type: String,
        usage: Option<Usage>,
    },
    /// No usage and no exception by the end of what was seen.
    NoUsage,
    /// The bytes could not be decoded (bad prelude, CRC mismatch, oversized frame, bad JSON/base64 in
    /// a frame that should carry usage). Decoding stops for good after this; later bytes are ignored.
    Undecodable,
}

/// Incremental event-stream reader for one response body.
pub struct StreamTap {
    /// The family's reader for the events that may carry usage.
    reader: EventReader,
    decoder: MessageFrameDecoder,
    /// Copy of the frame that straddles chunk boundaries; empty between frames.
    partial: Vec<u8>,
    /// The reader's reusable buffer (InvokeModel decodes each chunk's base64 into it).
    scratch: Vec<u8>,
    frames: u64,
    usage: Option<Usage>,
    /// What a usage event said about tier and latency (ConverseStream's `metadata`).
    served: Option<Served>,
    /// The model a prompt router chose, if a usage event named it.
    invoked_model: Option<String>,
    /// Non-token units a usage event reported (a guardrail trace's policy units).
    units: Units,
    /// Why the model stopped, if an event said (ConverseStream's `messageStop`).
    stop_reason: Option<StopReason>,
    exception: Option<String>,
    broken: bool,
}

impl StreamTap {
    pub fn new(reader: EventReader) -> Self {
        StreamTap {
            reader,
            decoder: MessageFrameDecoder::new(),
            partial: Vec::new(),
            scratch: Vec::new(),
            frames: 0,
            usage: None,
            served: None,
            invoked_model: None,
            units: Units::default(),
            stop_reason: None,
            exception: None,
            broken: false,
        }
    }

    /// How the call was served, if the stream said (ConverseStream's `metadata` event).
    pub fn served(&self) -> Option<Served> {
        self.served
    }

    /// The model a prompt router chose, if the stream said (ConverseStream's `metadata` trace).
    pub fn invoked_model(&self) -> Option<&str> {
        self.invoked_model.as_deref()
    }

    /// Non-token units the stream reported (ConverseStream's `metadata` guardrail trace).
    pub fn units(&self) -> Units {
        self.units
    }

    /// Why the model stopped, if the stream said.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop_reason
    }

    /// Feed the next chunk of the body. Returns true if this chunk completed at least one frame
    /// that was an event (`:message-type` = `event`) — the meter uses the first such frame for
    /// time-to-first-token.
    pub fn push(&mut self, chunk: &Bytes) -> bool {
        let mut rest: &[u8] = chunk;
        let mut saw_event = false;
        while !rest.is_empty() && !self.stopped() {
            if self.partial.is_empty() {
                // Whole frames inside the chunk are decoded in place: no copy at all.
                match prelude(rest) {
                    Prelude::Bad => {
                        self.broken = true;
                        break;
                    }
                    Prelude::Frame(len) => {
                        if let Some((frame, after)) = rest.split_at_checked(len) {
                            saw_event |= self.frame(frame);
                            rest = after;
                            continue;
                        }
                    }
                    Prelude::Short => {}
                }
            }
            // The frame continues past this chunk (or started in an earlier one): copy, but
            // only up to the end of the current frame, and only once its prelude has vouched
            // for its length.
            let want = match prelude(&self.partial) {
                Prelude::Bad => {
                    self.broken = true;
                    break;
                }
                Prelude::Short => PRELUDE_LEN,
                Prelude::Frame(len) => len,
            };
            let take = want.saturating_sub(self.partial.len()).min(rest.len());
            let Some((head, after)) = rest.split_at_checked(take) else {
                self.broken = true;
                break;
            };
            self.partial.extend_from_slice(head);
            rest = after;
            // Judged again at once, so a bad length is known the moment its bytes arrive.
            match prelude(&self.partial) {
                Prelude::Bad => self.broken = true,
                Prelude::Frame(len) if self.partial.len() == len => {
                    let frame = std::mem::take(&mut self.partial);
                    saw_event |= self.frame(&frame);
                    self.partial = frame;
                    self.partial.clear();
                    self.partial.shrink_to(KEEP_CAPACITY);
                }
                Prelude::Frame(_) | Prelude::Short => {}
            }
        }
        saw_event
    }

    /// What has been learned so far (call at end of stream, on error or on drop).
    pub fn outcome(&self) -> StreamEnd {
        // Usage and exceptions come from frames whose CRC checked out, so they stand even if
        // bytes after them turned out to be garbage.
        if let Some(exception_type) = &self.exception {
            StreamEnd::Exception {
                exception_type: exception_type.clone(),
                usage: self.usage,
            }
        } else if let Some(usage) = self.usage {
            StreamEnd::Usage(usage)
        } else if self.broken {
            StreamEnd::Undecodable
        } else {
            StreamEnd::NoUsage
        }
    }

    /// Complete frames decoded.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// An exception ends the stream in the protocol, so nothing after it is read.
    fn stopped(&self) -> bool {
        self.broken || self.exception.is_some()
    }

    /// Handles exactly one frame's bytes; returns whether it was an event.
    fn frame(&mut self, bytes: &[u8]) -> bool {
        let message = match self.decoder.decode_frame(bytes) {
            Ok(DecodedFrame::Complete(message)) => message,
            // `bytes` holds the whole declared frame, so `Incomplete` means the decoder and the
            // prelude disagree: as undecodable as a CRC error.
            Ok(DecodedFrame::Incomplete) | Err(_) => {
                self.decoder = MessageFrameDecoder::new();
                self.broken = true;
                return false;
            }
        };
        self.frames += 1;
        match header(&message, ":message-type") {
            Some("event") => {
                self.event(&message);
                true
            }
            Some("exception") => {
                self.exception = Some(header_or_unknown(&message, ":exception-type"));
                false
            }
            // Unmodeled errors carry their name in `:error-code` instead.
            Some("error") => {
                self.exception = Some(header_or_unknown(&message, ":error-code"));
                false
            }
            _ => false,
        }
    }

    fn event(&mut self, message: &Message) {
        let Some(event_type) = header(message, ":event-type") else {
            return;
        };
        let found = (self.reader)(event_type, message.payload(), &mut self.scratch);
        self.scratch.clear();
        self.scratch.shrink_to(KEEP_CAPACITY);
        match found {
            Ok(Some(found)) => {
                if found.stop_reason.is_some() {
                    self.stop_reason = found.stop_reason;
                }
                let Some(usage) = found.usage else { return };
                self.usage = Some(usage);
                if found.served.is_some() {
                    self.served = found.served;
                }
                if found.invoked_model.is_some() {
                    self.invoked_model = found.invoked_model;
                }
                self.units = found.units;
            }
            Ok(None) => {}
            Err(Unreadable) => self.broken = true,
        }
    }
}

/// What the start of a frame says about it.
enum Prelude {
    /// Fewer bytes than needed to judge.
    Short,
    /// A plausible frame of this total length.
    Frame(usize),
    /// Out-of-range length or prelude CRC mismatch.
    Bad,
}

/// The decoder checks the prelude CRC only once the whole declared frame has arrived, so without
/// this a garbage length would be buffered first; the length is judged from its 4 bytes alone.
fn prelude(bytes: &[u8]) -> Prelude {
    let Some(len) = bytes.first_chunk::<4>() else {
        return Prelude::Short;
    };
    let total = u32::from_be_bytes(*len) as usize;
    if !(MIN_FRAME..=MAX_FRAME).contains(&total) {
        return Prelude::Bad;
    }
    let Some(prelude) = bytes.first_chunk::<PRELUDE_LEN>() else {
        return Prelude::Short;
    };
    let (covered, crc) = prelude.split_at(8);
    match crc.try_into() {
        Ok(crc) if crc32(covered) == u32::from_be_bytes(crc) => Prelude::Frame(total),
        _ => Prelude::Bad,
    }
}

/// CRC-32 (IEEE) of a prelude. `crc32fast` (already compiled in for the frame decoder) is 2.9×
/// faster than the bitwise loop this was, even on 8 bytes, measured in a release build.
fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

fn header<'m>(message: &'m Message, name: &str) -> Option<&'m str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str())
}

fn header_or_unknown(message: &Message, name: &str) -> String {
    header(message, name).unwrap_or("unknown").to_owned()
}

#[cfg(test)]
mod tests;
