//! The request side of a bidirectional stream (`proxy::duplex::resign`): whatever bytes a client
//! sends and however the network splits them, no panic; every frame passed upstream is one
//! whole event-stream message signed in the meter's chain; the same bytes give the same frames
//! (their messages, in order) and end the same way.
//!
//! Input: byte 0 bit 0 checks the client's chain too (keys mode; the input's frames are then
//! refused unless signed with the test secret, which the fuzzer does not find), bits 1..7 the
//! largest split step; bytes 1..9 seed the split points; the rest is the request body.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use aws_credential_types::Credentials;
use bedrock_meter::aws::sigv4::event::{DATE, FrameChain, SIGNATURE, date_of};
use bedrock_meter::proxy::duplex::resign::{FrameError, FrameWatch, Resigned};
use bedrock_meter::server::listener::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame};
use libfuzzer_sys::fuzz_target;

const SEED: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn creds(secret: &str) -> Credentials {
    Credentials::new("AKID", secret, None, None, "fuzz")
}

struct Ignore;

impl FrameWatch for Ignore {
    fn refused(&mut self, _: &FrameError) {}
}

/// A client body that hands out the given pieces, always ready.
struct Pieces(std::vec::IntoIter<Bytes>);

impl Body for Pieces {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.next().map(|b| Ok(Frame::data(b))))
    }
}

/// The messages sent upstream, and whether the stream ended in an error.
fn run(body: &Bytes, cuts: &[usize], check_client: bool) -> (Vec<Bytes>, bool) {
    let mut pieces = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&body.len())) {
        pieces.push(body.slice(start..end));
        start = end;
    }
    let client = check_client.then(|| FrameChain::new(&creds("client"), "us-east-1", SEED));
    let mut resigned = Resigned::new(
        Pieces(pieces.into_iter()),
        FrameChain::new(&creds("meter"), "us-east-1", SEED),
        client,
        Ignore,
    );
    let mut mirror = FrameChain::new(&creds("meter"), "us-east-1", SEED);
    let mut cx = Context::from_waker(Waker::noop());
    let mut messages = Vec::new();
    loop {
        match Pin::new(&mut resigned).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let data = frame.into_data().expect("only data frames");
                let message = aws_smithy_eventstream::frame::read_message_from(data)
                    .expect("a whole event-stream message");
                let header = |name: &str| {
                    message
                        .headers()
                        .iter()
                        .find(|h| h.name().as_str() == name)
                        .map(|h| h.value().clone())
                };
                let date = header(DATE).and_then(|v| date_of(&v)).expect(":date");
                let signature = header(SIGNATURE).expect(":chunk-signature");
                assert!(mirror.check(
                    message.payload(),
                    date,
                    signature.as_byte_array().expect("bytes"),
                ));
                messages.push(message.payload().clone());
            }
            Poll::Ready(Some(Err(_))) => return (messages, true),
            Poll::Ready(None) => return (messages, false),
            Poll::Pending => unreachable!("the pieces are always ready"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let check_client = flags & 1 == 1;
    let (seed, body) = rest.split_at(rest.len().min(8));
    let mut seed_bytes = [0u8; 8];
    seed_bytes[..seed.len()].copy_from_slice(seed);
    let body = Bytes::copy_from_slice(body);
    let whole = run(&body, &[], check_client);
    let bytewise: Vec<usize> = (0..=body.len()).collect();
    assert_eq!(run(&body, &bytewise, check_client), whole, "byte by byte");
    let mut state = u64::from_le_bytes(seed_bytes) | 1;
    let max_step = 1 + (flags >> 1) as u64 * 8;
    let mut cuts = Vec::new();
    let mut at = 0usize;
    while at < body.len() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        at += 1 + (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % max_step) as usize;
        cuts.push(at.min(body.len()));
    }
    assert_eq!(run(&body, &cuts, check_client), whole, "split at {cuts:?}");
});
