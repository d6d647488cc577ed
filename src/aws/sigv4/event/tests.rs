use super::*;
use aws_sigv4::event_stream::{sign_empty_message, sign_message};
use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_runtime_api::client::identity::Identity;

const SEED: &str = "e1d8e8c8815e60969f2a34765c9a15945ffc0badbaa4b7e3b163ea19131e949b";

fn credentials() -> Credentials {
    Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", None, None, "test")
}

fn inner(text: &str) -> (Message, Bytes) {
    let message = Message::new(Bytes::from(format!(r#"{{"bytes":"{text}"}}"#))).add_header(
        Header::new(":event-type", HeaderValue::String("chunk".into())),
    );
    let mut encoded = Vec::new();
    write_message_to(&message, &mut encoded).unwrap();
    (message, Bytes::from(encoded))
}

fn params<'a>(
    identity: &'a Identity,
    time: SystemTime,
) -> aws_sigv4::event_stream::SigningParams<'a> {
    v4::SigningParams::builder()
        .identity(identity)
        .region("us-east-1")
        .name("bedrock")
        .time(time)
        .settings(())
        .build()
        .unwrap()
}

/// The frames signed here are the frames `aws-sigv4`'s event signer makes, chain and all.
#[test]
fn frames_are_aws_sigv4s() {
    let identity: Identity = credentials().into();
    let mut ours = FrameChain::new(&credentials(), "us-east-1", SEED);
    let mut previous = SEED.to_owned();
    let times = [1_780_000_000u64, 1_780_000_001, 1_780_086_400 + 5];
    for (i, secs) in times.into_iter().enumerate() {
        let time = UNIX_EPOCH + Duration::from_millis(secs * 1000 + 250);
        let (message, encoded) = inner(&format!("part {i}"));
        let (theirs, signature) = sign_message(&message, &previous, &params(&identity, time))
            .unwrap()
            .into_parts();
        previous = signature;
        let mut theirs_encoded = Vec::new();
        write_message_to(&theirs, &mut theirs_encoded).unwrap();
        let frame = ours.frame(encoded, time);
        // Header order differs from nothing: both put the signature first, then the date.
        assert_eq!(frame, Bytes::from(theirs_encoded), "frame {i}");
    }
    let time = UNIX_EPOCH + Duration::from_secs(1_780_086_500);
    let (theirs, _) = sign_empty_message(&previous, &params(&identity, time))
        .unwrap()
        .into_parts();
    let mut theirs_encoded = Vec::new();
    write_message_to(&theirs, &mut theirs_encoded).unwrap();
    assert_eq!(ours.frame(Bytes::new(), time), Bytes::from(theirs_encoded));
}

/// A chain a client signed with `aws-sigv4` checks, frame by frame; a changed payload, a
/// wrong date or a frame out of order does not, and does not move the chain on.
#[test]
fn client_chains_check() {
    let identity: Identity = credentials().into();
    let mut previous = SEED.to_owned();
    let mut frames = Vec::new();
    for i in 0..3u64 {
        let time = UNIX_EPOCH + Duration::from_secs(1_780_000_000 + i);
        let (message, _) = inner(&format!("audio {i}"));
        let (signed, signature) = sign_message(&message, &previous, &params(&identity, time))
            .unwrap()
            .into_parts();
        previous = signature;
        let mut encoded = Vec::new();
        write_message_to(&signed, &mut encoded).unwrap();
        frames.push(read_message_from(Bytes::from(encoded)).unwrap());
    }
    let parts = |m: &Message| {
        let mut date = None;
        let mut sig = None;
        for h in m.headers() {
            match h.name().as_str() {
                DATE => date = date_of(h.value()),
                SIGNATURE => sig = h.value().as_byte_array().ok().cloned(),
                _ => {}
            }
        }
        (m.payload().clone(), date.unwrap(), sig.unwrap())
    };
    let mut chain = FrameChain::new(&credentials(), "us-east-1", SEED);
    let (p0, d0, s0) = parts(&frames[0]);
    let (p1, d1, s1) = parts(&frames[1]);
    assert!(!chain.check(&p1, d1, &s1), "out of order");
    assert!(!chain.check(b"tampered", d0, &s0));
    assert!(!chain.check(&p0, d1, &s0), "wrong date");
    assert!(chain.check(&p0, d0, &s0));
    assert!(chain.check(&p1, d1, &s1));
    let (p2, d2, s2) = parts(&frames[2]);
    let mut other = FrameChain::new(
        &Credentials::new("AKIDEXAMPLE", "another-secret", None, None, "test"),
        "us-east-1",
        SEED,
    );
    assert!(!other.check(&p0, d0, &s0), "another secret");
    assert!(chain.check(&p2, d2, &s2));
}
