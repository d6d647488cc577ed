//! SigV4 for the frames of a request event stream (InvokeModelWithBidirectionalStream): each
//! frame wraps one encoded message and carries `:date` and `:chunk-signature` headers, the
//! signature chained from the previous frame's, the first from the HTTP request's own. An
//! empty frame (no payload) ends the stream.
//!
//! The string to sign is `aws-sigv4`'s (`event_stream` module): the payload algorithm, the
//! frame's time, the scope, the previous signature, the hash of the encoded `:date` header and
//! the hash of the payload. It is built here over the payload's bytes as they came, so a frame
//! is checked and signed without decoding and re-encoding the message inside it; the key
//! derivation and the HMAC are `aws-sigv4`'s, and the tests check the result against its own
//! event signer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::sign::v4;
use aws_smithy_eventstream::frame::{write_headers_to, write_message_to};
use aws_smithy_types::DateTime;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{SERVICE, amz_date, fast};

pub const DATE: &str = ":date";
pub const SIGNATURE: &str = ":chunk-signature";

/// One direction's chain of frame signatures, under one secret.
pub struct FrameChain {
    secret: String,
    region: String,
    /// Hex signature of the previous frame (at first, the request's).
    previous: String,
    /// The signing key of the day it was derived for (`YYYYMMDD`).
    key: Option<([u8; 8], [u8; 32])>,
}

impl std::fmt::Debug for FrameChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameChain")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl FrameChain {
    /// A chain under `credentials` in `region`, seeded with the request's signature (hex).
    pub fn new(credentials: &Credentials, region: &str, request_signature: &str) -> FrameChain {
        FrameChain {
            secret: credentials.secret_access_key().to_owned(),
            region: region.to_owned(),
            previous: request_signature.to_owned(),
            key: None,
        }
    }

    /// The signature that follows the previous one for `payload` at `time` (whole seconds),
    /// without moving the chain on.
    fn following(&mut self, payload: &[u8], time: SystemTime) -> String {
        let stamp = amz_date(time);
        let day = stamp.day();
        let key = match &self.key {
            Some((d, k)) if *d == day => *k,
            _ => {
                let derived = v4::generate_signing_key(&self.secret, time, &self.region, SERVICE);
                let mut k = [0u8; 32];
                k.copy_from_slice(derived.as_ref());
                self.key = Some((day, k));
                k
            }
        };
        let mut date_header = Vec::with_capacity(16);
        // Writing one timestamp header to a Vec cannot fail.
        let _ = write_headers_to(&[date_header_of(time)], &mut date_header);
        let mut string_to_sign =
            Vec::with_capacity(24 + 16 + 8 + self.region.len() + 24 + self.previous.len() + 130);
        for part in [
            b"AWS4-HMAC-SHA256-PAYLOAD\n".as_slice(),
            stamp.as_bytes(),
            b"\n",
            &day,
            b"/",
            self.region.as_bytes(),
            b"/",
            SERVICE.as_bytes(),
            b"/aws4_request\n",
            self.previous.as_bytes(),
            b"\n",
            &hex_sha256(&date_header),
            b"\n",
            &hex_sha256(payload),
        ] {
            string_to_sign.extend_from_slice(part);
        }
        v4::calculate_signature(key, &string_to_sign)
    }

    /// The next signature in the chain, for `payload` at `time` (whole seconds); the chain
    /// moves on to it.
    fn next(&mut self, payload: &[u8], time: SystemTime) -> [u8; 64] {
        let signature = self.following(payload, time);
        let mut out = [0u8; 64];
        out.copy_from_slice(&signature.as_bytes()[..64]);
        self.previous = signature;
        out
    }

    /// A signed frame carrying `payload` (an encoded message; empty for the final frame),
    /// dated `now`.
    pub fn frame(&mut self, payload: Bytes, now: SystemTime) -> Bytes {
        let time = whole_seconds(now);
        let signature = self.next(&payload, time);
        let mut raw = [0u8; 32];
        for (i, pair) in signature.chunks(2).enumerate() {
            raw[i] = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        let message = Message::new(payload)
            .add_header(Header::new(
                SIGNATURE,
                HeaderValue::ByteArray(Bytes::copy_from_slice(&raw)),
            ))
            .add_header(date_header_of(time));
        let mut out = Vec::with_capacity(message.payload().len() + 96);
        // Encoding into a Vec fails only on a message too large for the format, which a frame
        // read within MAX_FRAME is not.
        let _ = write_message_to(&message, &mut out);
        Bytes::from(out)
    }

    /// Whether `signature` (32 raw bytes) signs `payload` at `time` in this chain; the chain
    /// moves on only when it does.
    pub fn check(&mut self, payload: &[u8], time: SystemTime, signature: &[u8]) -> bool {
        let expected = self.following(payload, time);
        let mut raw = [0u8; 32];
        for (i, pair) in expected.as_bytes().chunks(2).take(32).enumerate() {
            raw[i] = (nibble(pair[0]) << 4) | nibble(pair.get(1).copied().unwrap_or(0));
        }
        let ok = bool::from(raw.as_slice().ct_eq(signature));
        if ok {
            self.previous = expected;
        }
        ok
    }
}

fn date_header_of(time: SystemTime) -> Header {
    Header::new(DATE, HeaderValue::Timestamp(DateTime::from(time)))
}

fn whole_seconds(time: SystemTime) -> SystemTime {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn hex_sha256(bytes: &[u8]) -> [u8; 64] {
    fast::hex(&Sha256::digest(bytes))
}

fn nibble(hex: u8) -> u8 {
    match hex {
        b'0'..=b'9' => hex - b'0',
        b'a'..=b'f' => hex - b'a' + 10,
        _ => 0,
    }
}

/// The time a `:date` header value names, if it is a timestamp.
pub fn date_of(value: &HeaderValue) -> Option<SystemTime> {
    match value {
        HeaderValue::Timestamp(t) => SystemTime::try_from(*t).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
