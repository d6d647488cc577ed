use super::*;
use aws_credential_types::Credentials;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use http_body_util::{BodyExt, StreamBody};
use std::sync::{Arc, Mutex};

const SEED: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl FrameWatch for Seen {
    fn refused(&mut self, error: &FrameError) {
        self.0.lock().unwrap().push(error.reason().to_owned());
    }
}

fn creds(secret: &str) -> Credentials {
    Credentials::new("AKID", secret, None, None, "test")
}

fn event(text: &str) -> Bytes {
    let message = Message::new(Bytes::from(text.to_owned())).add_header(Header::new(
        ":event-type",
        HeaderValue::String("chunk".into()),
    ));
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    Bytes::from(out)
}

/// The client's stream: each event signed in the client's chain, then the empty final frame.
fn client_stream(secret: &str, events: &[&str]) -> Vec<Bytes> {
    let mut chain = FrameChain::new(&creds(secret), "us-east-1", SEED);
    let now = SystemTime::now();
    let mut frames: Vec<Bytes> = events.iter().map(|e| chain.frame(event(e), now)).collect();
    frames.push(chain.frame(Bytes::new(), now));
    frames
}

type Pieces = Vec<Result<Frame<Bytes>, BoxError>>;
type Scripted =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, BoxError>>>>;

fn body(pieces: Vec<Bytes>) -> Scripted {
    let items: Pieces = pieces.into_iter().map(|b| Ok(Frame::data(b))).collect();
    StreamBody::new(futures_util::stream::iter(items))
}

/// Every frame is re-signed in the meter's chain, whatever pieces it came in, and checks in
/// a chain of the meter's credentials seeded the same way; the messages are the client's.
#[tokio::test]
async fn frames_are_resigned_one_by_one() {
    let frames = client_stream("client-secret", &["one", "two", "three"]);
    // Cut across frame boundaries: byte by byte for the first, the rest in one piece.
    let joined: Vec<u8> = frames.concat();
    let first = frames[0].len();
    let mut pieces: Vec<Bytes> = joined[..first]
        .iter()
        .map(|b| Bytes::copy_from_slice(std::slice::from_ref(b)))
        .collect();
    pieces.push(Bytes::copy_from_slice(&joined[first..]));
    let seen = Seen::default();
    let mut resigned = Resigned::new(
        body(pieces),
        FrameChain::new(&creds("meter-secret"), "us-east-1", SEED),
        Some(FrameChain::new(&creds("client-secret"), "us-east-1", SEED)),
        seen.clone(),
    );
    let mut check = FrameChain::new(&creds("meter-secret"), "us-east-1", SEED);
    let mut out = Vec::new();
    while let Some(frame) = resigned.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        let message = read_message_from(data).unwrap();
        let header = |name| {
            message
                .headers()
                .iter()
                .find(|h| h.name().as_str() == name)
                .unwrap()
                .value()
                .clone()
        };
        let date = date_of(&header(DATE)).unwrap();
        let signature = header(SIGNATURE);
        assert!(check.check(message.payload(), date, signature.as_byte_array().unwrap()));
        out.push(message.payload().clone());
    }
    assert_eq!(
        out,
        [event("one"), event("two"), event("three"), Bytes::new()]
    );
    assert!(seen.0.lock().unwrap().is_empty());
}

/// A frame signed with another secret than the client's key ends the stream there, counted.
#[tokio::test]
async fn a_frame_that_does_not_check_ends_the_stream() {
    let mut frames = client_stream("client-secret", &["one"]);
    frames.insert(1, client_stream("stolen-secret", &["two"])[0].clone());
    let seen = Seen::default();
    let mut resigned = Resigned::new(
        body(frames),
        FrameChain::new(&creds("meter-secret"), "us-east-1", SEED),
        Some(FrameChain::new(&creds("client-secret"), "us-east-1", SEED)),
        seen.clone(),
    );
    assert!(resigned.frame().await.unwrap().is_ok());
    assert!(resigned.frame().await.unwrap().is_err());
    assert!(resigned.frame().await.is_none());
    assert_eq!(*seen.0.lock().unwrap(), ["frame_signature"]);
}

/// Unsigned frames are messages of their own, re-signed as they are; a stream cut inside a
/// frame, or a frame claiming to be larger than the cap, is an error, never buffered.
#[tokio::test]
async fn unsigned_truncated_and_oversized_frames() {
    let seen = Seen::default();
    let mut resigned = Resigned::new(
        body(vec![event("plain")]),
        FrameChain::new(&creds("meter-secret"), "us-east-1", SEED),
        None,
        seen.clone(),
    );
    let data = resigned
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(read_message_from(data).unwrap().payload(), &event("plain"));

    let whole = event("cut");
    let mut cut = Resigned::new(
        body(vec![whole.slice(..whole.len() - 1)]),
        FrameChain::new(&creds("meter-secret"), "us-east-1", SEED),
        None,
        seen.clone(),
    );
    assert!(cut.frame().await.unwrap().is_err());

    let mut huge = Resigned::new(
        body(vec![Bytes::from_static(&[
            0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
        ])]),
        FrameChain::new(&creds("meter-secret"), "us-east-1", SEED),
        None,
        seen.clone(),
    );
    assert!(huge.frame().await.unwrap().is_err());
    assert_eq!(
        *seen.0.lock().unwrap(),
        ["frame_malformed", "frame_malformed"]
    );
}

/// A client proven by its SigV4 signature signs every frame: an unsigned one ends the stream.
#[tokio::test]
async fn keys_mode_refuses_unsigned_frames() {
    let seen = Seen::default();
    let mut resigned = Resigned::new(
        body(vec![event("plain")]),
        FrameChain::new(&creds("meter-secret"), "us-east-1", SEED),
        Some(FrameChain::new(&creds("client-secret"), "us-east-1", SEED)),
        seen.clone(),
    );
    assert!(resigned.frame().await.unwrap().is_err());
    assert_eq!(*seen.0.lock().unwrap(), ["frame_signature"]);
}
