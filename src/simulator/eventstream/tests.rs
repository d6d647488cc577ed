//! Tests of `eventstream`.

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
    let m = decode_one(&event("messageStart", json!({"role": "assistant"}), 3).unwrap()).unwrap();
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
