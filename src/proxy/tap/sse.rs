//! Server-Sent Events (`text/event-stream`) bodies: the OpenAI-compatible and Anthropic
//! streams. [`SseTap`] reads the usage out of the events while the bytes pass to the client
//! untouched; [`SseStrip`] takes out of the stream what the meter added by asking for usage the
//! client did not ask for (see [`crate::api::Family::strip`]).
//!
//! Events end at a blank line. Both keep a copy of at most one incomplete event (bounded by
//! [`MAX_EVENT`]); complete events inside a chunk are read in place.

use std::borrow::Cow;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::eventstream::StreamEnd;
use crate::api::{Family, SseReader, SseUsage, StopReason, Strip, Unreadable, merge};
use crate::pricing::Usage;

/// Largest event kept while it arrives. Bedrock's events are a few KiB; a stream without a
/// blank line for this long is not one.
pub const MAX_EVENT: usize = 16 * 1024 * 1024;

/// Splits a byte stream into events, each handed over whole with its terminating blank line.
#[derive(Default)]
struct Splitter {
    /// The event that straddles chunk boundaries; empty between events.
    partial: Vec<u8>,
    /// Where in `partial` the search for the blank line resumes.
    scanned: usize,
    broken: bool,
}

impl Splitter {
    /// Calls `each` with every event completed by `chunk`; returns how many bytes at the end of
    /// `chunk` are held back as part of an incomplete event. `None`: the incomplete event has
    /// grown past [`MAX_EVENT`], so this is not an event stream after all; from then on nothing
    /// is held and no event is found.
    fn push(&mut self, chunk: &[u8], mut each: impl FnMut(&[u8])) -> Option<usize> {
        if self.broken {
            return Some(0);
        }
        let mut rest = chunk;
        if !self.partial.is_empty() {
            let before = self.partial.len();
            self.partial.extend_from_slice(rest);
            let Some(end) = event_end(&self.partial, self.scanned) else {
                // The blank line may straddle this chunk and the next: look again from just
                // before the end.
                self.scanned = self.partial.len().saturating_sub(3);
                if self.partial.len() > MAX_EVENT {
                    self.broken = true;
                    self.partial = Vec::new();
                    return None;
                }
                return Some(rest.len());
            };
            each(&self.partial[..end]);
            rest = &rest[end - before..];
            self.partial.clear();
            self.scanned = 0;
        }
        while let Some(end) = event_end(rest, 0) {
            each(&rest[..end]);
            rest = &rest[end..];
        }
        self.partial.extend_from_slice(rest);
        self.scanned = rest.len().saturating_sub(3);
        Some(rest.len())
    }
}

/// The end (exclusive) of the first event in `bytes`: just past the blank line that ends it.
/// Lines end in `\n` or `\r\n`; the search starts at `from`.
fn event_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(n) = memchr::memchr(b'\n', bytes.get(at..)?) {
        let nl = at + n;
        let next = nl + 1;
        match bytes.get(next) {
            Some(b'\n') => return Some(next + 1),
            Some(b'\r') if bytes.get(next + 1) == Some(&b'\n') => return Some(next + 2),
            _ => at = next,
        }
    }
    None
}

/// One event's `event:` name and `data:` (lines joined with `\n`), with where the data lies in
/// the event when it is a single line.
struct Event<'a> {
    name: &'a str,
    data: Cow<'a, [u8]>,
    data_at: Option<usize>,
}

fn parse(event: &[u8]) -> Event<'_> {
    let mut parsed = Event {
        name: "",
        data: Cow::Borrowed(&[]),
        data_at: None,
    };
    let mut lines = 0;
    let mut start = 0;
    for line in event.split(|&b| b == b'\n') {
        let at = start;
        start += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (field, value, value_at) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                let (value, skip) = match value.strip_prefix(b" ") {
                    Some(v) => (v, 1),
                    None => (value, 0),
                };
                (&line[..colon], value, at + colon + 1 + skip)
            }
            None => (line, &[][..], at + line.len()),
        };
        match field {
            b"event" => parsed.name = std::str::from_utf8(value).unwrap_or(""),
            b"data" => {
                lines += 1;
                if lines == 1 {
                    parsed.data = Cow::Borrowed(value);
                    parsed.data_at = Some(value_at);
                } else {
                    let joined = parsed.data.to_mut();
                    joined.push(b'\n');
                    joined.extend_from_slice(value);
                    parsed.data_at = None;
                }
            }
            _ => {}
        }
    }
    parsed
}

/// Reads the usage out of an SSE body as it passes.
pub struct SseTap {
    reader: SseReader,
    events: Splitter,
    seen: Option<SseUsage>,
    /// Why the model stopped, if an event said.
    stop: Option<StopReason>,
    unreadable: bool,
}

impl SseTap {
    pub fn new(reader: SseReader) -> SseTap {
        SseTap {
            reader,
            events: Splitter::default(),
            seen: None,
            stop: None,
            unreadable: false,
        }
    }

    /// Why the model stopped, if the stream said.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop
    }

    /// Feeds the next chunk; true if it completed at least one event with data (for the time
    /// to first token).
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        let (reader, seen, stop, unreadable) = (
            self.reader,
            &mut self.seen,
            &mut self.stop,
            &mut self.unreadable,
        );
        let mut saw = false;
        self.events.push(chunk, |bytes| {
            let event = parse(bytes);
            if event.data.is_empty() {
                return;
            }
            saw = true;
            match reader(event.name, &event.data) {
                Ok(Some(found)) => {
                    if let Some(counts) = found.counts {
                        *seen = Some(merge(seen.unwrap_or_default(), counts));
                    }
                    if found.stop.is_some() {
                        *stop = found.stop;
                    }
                }
                Ok(None) => {}
                Err(Unreadable) => *unreadable = true,
            }
        });
        saw
    }

    /// What has been learned so far. Counts read before anything went wrong stand.
    pub fn outcome(&self) -> StreamEnd {
        match self.seen {
            Some(counts) if counts.input.is_some() || counts.output.is_some() => {
                StreamEnd::Usage(counts.map(|n| n.unwrap_or(0)))
            }
            _ if self.unreadable || self.events.broken => StreamEnd::Undecodable,
            _ => StreamEnd::NoUsage,
        }
    }
}

/// The usage of a stream's counts so far, for a test's eye.
pub fn usage_of(tap: &SseTap) -> Option<Usage> {
    match tap.outcome() {
        StreamEnd::Usage(u) => Some(u),
        _ => None,
    }
}

/// Takes out of an SSE byte stream the events (or parts of them) the family says the meter
/// added. Bytes of an incomplete event are held until it completes or the stream ends.
pub struct Stripper {
    family: &'static dyn Family,
    events: Splitter,
    /// The start of an incomplete event, held back from the client until it completes.
    held: Bytes,
}

impl Stripper {
    pub fn new(family: &'static dyn Family) -> Stripper {
        Stripper {
            family,
            events: Splitter::default(),
            held: Bytes::new(),
        }
    }

    /// The bytes of `chunk` that go on now (the chunk itself when no event in it changed).
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        let held = std::mem::take(&mut self.held);
        let (sent, rest) = filter(self.family, &mut self.events, held, chunk);
        self.held = rest;
        sent
    }

    /// At the end of the stream: an event the upstream never finished goes on as it came.
    pub fn finish(&mut self) -> Bytes {
        self.events = Splitter::default();
        std::mem::take(&mut self.held)
    }

    fn holds(&self) -> bool {
        !self.held.is_empty()
    }
}

pin_project! {
    /// An SSE body passed through a [`Stripper`].
    pub struct SseStrip<B> {
        #[pin]
        inner: B,
        stripper: Stripper,
    }
}

impl<B> SseStrip<B> {
    pub fn new(inner: B, family: &'static dyn Family) -> SseStrip<B> {
        SseStrip {
            inner,
            stripper: Stripper::new(family),
        }
    }
}

/// What to do with one whole event: `None` keeps it as it is, `Some(None)` drops it,
/// `Some(Some(range))` cuts those bytes out of it.
fn edit(family: &dyn Family, event: &[u8]) -> Option<Option<Range<usize>>> {
    let parsed = parse(event);
    let at = parsed.data_at?;
    match family.strip(&parsed.data) {
        Strip::Keep => None,
        Strip::Drop => Some(None),
        Strip::Cut(r) => Some(Some(at + r.start..at + r.end)),
    }
}

/// The bytes of `chunk` (after `held`) that go to the client, and what to hold back.
fn filter(family: &dyn Family, events: &mut Splitter, held: Bytes, chunk: Bytes) -> (Bytes, Bytes) {
    // Untouched until an event changes: then the kept bytes are copied into `out`.
    let mut out: Option<BytesMut> = None;
    let mut passed = 0usize;
    let mut whole = held.is_empty();
    let tail = events.push(&chunk, |event| {
        let change = edit(family, event);
        if whole && change.is_none() {
            passed += event.len();
            return;
        }
        let buf = out.get_or_insert_with(|| {
            let mut b = BytesMut::with_capacity(held.len() + chunk.len());
            b.extend_from_slice(&chunk[..passed]);
            b
        });
        whole = false;
        match change {
            None => buf.extend_from_slice(event),
            Some(None) => {}
            Some(Some(cut)) => {
                buf.extend_from_slice(&event[..cut.start]);
                buf.extend_from_slice(&event[cut.end..]);
            }
        }
    });
    let Some(tail) = tail else {
        // Not an event stream after all: what was held and this chunk go on as they came.
        let mut b = BytesMut::with_capacity(held.len() + chunk.len());
        b.extend_from_slice(&held);
        b.extend_from_slice(&chunk);
        return (b.freeze(), Bytes::new());
    };
    let complete = chunk.len() - tail;
    let rest = if held.is_empty() || complete > 0 || out.is_some() {
        chunk.slice(complete..)
    } else {
        // No event completed: the held start grows by the whole chunk.
        let mut b = BytesMut::with_capacity(held.len() + chunk.len());
        b.extend_from_slice(&held);
        b.extend_from_slice(&chunk);
        return (Bytes::new(), b.freeze());
    };
    let sent = match out {
        Some(buf) => buf.freeze(),
        None if whole => chunk.slice(..complete),
        None => Bytes::new(),
    };
    (sent, rest)
}

impl<B> Body for SseStrip<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        loop {
            let frame = match this.inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(None) => {
                    let rest = this.stripper.finish();
                    if rest.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
                other => return other,
            };
            let chunk = match frame.into_data() {
                Ok(chunk) => chunk,
                Err(frame) => return Poll::Ready(Some(Ok(frame))),
            };
            let sent = this.stripper.push(chunk);
            if !sent.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(sent))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.stripper.holds() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests;
