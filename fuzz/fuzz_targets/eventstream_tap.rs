//! The event-stream tap (ConverseStream, InvokeModelWithResponseStream, the response side of
//! InvokeModelWithBidirectionalStream): whatever the bytes and however the network splits them,
//! no panic, and the same bytes give the same outcome.
//!
//! Input: byte 0 picks the stream kind (bit 7: bidirectional; else bit 0) and the largest split
//! step (bits 1..7), bytes 1..9 seed the split points, the rest is the response body.
#![no_main]

use bedrock_meter::api::{EventReader, bidirectional, converse, invoke};
use bedrock_meter::proxy::tap::eventstream::{StreamEnd, StreamTap};
use bedrock_meter::api::Served;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

/// The two event-stream answers, each with its family's usage reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamKind {
    ConverseStream,
    InvokeModelWithResponseStream,
    InvokeModelWithBidirectionalStream,
}

impl StreamKind {
    fn reader(self) -> EventReader {
        match self {
            StreamKind::ConverseStream => converse::read_event,
            StreamKind::InvokeModelWithResponseStream => invoke::read_chunk,
            StreamKind::InvokeModelWithBidirectionalStream => bidirectional::read_event,
        }
    }
}

/// What a tap learned from a whole body.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    outcome: StreamEnd,
    frames: u64,
    served: Option<Served>,
    /// Some push reported a completed event frame.
    any_event: bool,
}

fn run(kind: StreamKind, body: &Bytes, cuts: &[usize]) -> Seen {
    let mut tap = StreamTap::new(kind.reader());
    let mut any_event = false;
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&body.len())) {
        // `slice` shares the buffer, as hyper's chunks do.
        any_event |= tap.push(&body.slice(start..end));
        start = end;
    }
    Seen {
        outcome: tap.outcome(),
        frames: tap.frames(),
        served: tap.served(),
        any_event,
    }
}

/// xorshift64*: cheap, deterministic split points from the input's own seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let kind = if flags & 0x80 != 0 {
        StreamKind::InvokeModelWithBidirectionalStream
    } else if flags & 1 == 0 {
        StreamKind::ConverseStream
    } else {
        StreamKind::InvokeModelWithResponseStream
    };
    let (seed, body) = rest.split_at(rest.len().min(8));
    let mut seed_bytes = [0u8; 8];
    seed_bytes[..seed.len()].copy_from_slice(seed);
    let body = Bytes::copy_from_slice(body);

    let whole = run(kind, &body, &[]);
    if let StreamEnd::Exception { exception_type, .. } = &whole.outcome {
        assert!(!exception_type.is_empty());
    }

    // Byte by byte, with an empty chunk between every two bytes.
    let bytewise: Vec<usize> = (0..=body.len()).flat_map(|i| [i, i]).collect();
    assert_eq!(run(kind, &body, &bytewise), whole, "byte by byte");

    // Split points drawn from the seed: small and large chunks, in any mix.
    let mut rng = Rng(u64::from_le_bytes(seed_bytes) | 1);
    let mut cuts = Vec::new();
    let mut at = 0usize;
    let max_step = 1 + ((flags >> 1) & 0x3f) as usize * 8;
    while at < body.len() {
        at += 1 + (rng.next() % max_step as u64) as usize;
        cuts.push(at.min(body.len()));
    }
    assert_eq!(run(kind, &body, &cuts), whole, "split at {cuts:?}");

    // A single cut anywhere: the case a frame straddling two TCP reads exercises most.
    if !body.is_empty() {
        let cut = (rng.next() % body.len() as u64) as usize;
        assert_eq!(run(kind, &body, &[cut]), whole, "split at {cut}");
    }
});
