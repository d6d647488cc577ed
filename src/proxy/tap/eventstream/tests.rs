//! Tests of `eventstream`.

use super::*;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue};
use aws_smithy_types::str_bytes::StrBytes;

const CONVERSE: EventReader = crate::api::converse::read_event;
const INVOKE: EventReader = crate::api::invoke::read_chunk;

fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut message = Message::new(Bytes::copy_from_slice(payload));
    for (name, value) in headers {
        message = message.add_header(Header::new(
            StrBytes::from(name.to_string()),
            HeaderValue::String(StrBytes::from(value.to_string())),
        ));
    }
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    out
}

fn event(event_type: &str, json: &str) -> Vec<u8> {
    frame(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", "application/json"),
        ],
        json.as_bytes(),
    )
}

fn exception(exception_type: &str) -> Vec<u8> {
    frame(
        &[
            (":message-type", "exception"),
            (":exception-type", exception_type),
            (":content-type", "application/json"),
        ],
        br#"{"message":"The model stream failed."}"#,
    )
}

const METADATA: &str = r#"{"usage":{"inputTokens":11,"outputTokens":7,"totalTokens":30,
    "cacheReadInputTokens":5,"cacheWriteInputTokens":7,
    "cacheDetails":[{"ttl":"5m","inputTokens":7}]},
    "metrics":{"latencyMs":123},"p":"abcdefghij","serviceTier":{"type":"default"}}"#;

const CONVERSE_USAGE: Usage = Usage {
    input: 11,
    output: 7,
    cache_read: 5,
    cache_write: 7,
    cache_write_1h: 0,
};

fn converse_frames() -> Vec<Vec<u8>> {
    vec![
        event("messageStart", r#"{"p":"abc","role":"assistant"}"#),
        event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hel"},"p":"abcd"}"#,
        ),
        event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"lo"},"p":"ab"}"#,
        ),
        event(
            "contentBlockStop",
            r#"{"contentBlockIndex":0,"p":"abcdef"}"#,
        ),
        event("messageStop", r#"{"p":"abcdefg","stopReason":"end_turn"}"#),
        event("metadata", METADATA),
    ]
}

fn converse_stream() -> Vec<u8> {
    converse_frames().concat()
}

fn b(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

fn run(kind: EventReader, chunks: &[&[u8]]) -> (StreamEnd, u64) {
    let mut tap = StreamTap::new(kind);
    for chunk in chunks {
        tap.push(&b(chunk));
    }
    (tap.outcome(), tap.frames())
}

#[test]
fn converse_one_chunk() {
    let stream = converse_stream();
    let mut tap = StreamTap::new(CONVERSE);
    assert!(tap.push(&b(&stream)));
    assert_eq!(tap.outcome(), StreamEnd::Usage(CONVERSE_USAGE));
    assert_eq!(tap.frames(), 6);
    assert!(tap.partial.is_empty());
    assert_eq!(tap.stop_reason(), Some(crate::api::StopReason::EndTurn));
}

#[test]
fn a_stream_cut_after_its_stop_event_has_no_usage() {
    let frames = converse_frames();
    let mut tap = StreamTap::new(CONVERSE);
    tap.push(&b(&frames[..5].concat()));
    assert_eq!(tap.outcome(), StreamEnd::NoUsage);
    assert_eq!(tap.stop_reason(), Some(crate::api::StopReason::EndTurn));
}

#[test]
fn converse_without_cache_fields() {
    let stream = event(
        "metadata",
        r#"{"usage":{"inputTokens":3,"outputTokens":4,"totalTokens":7},"metrics":{"latencyMs":1}}"#,
    );
    let (end, frames) = run(CONVERSE, &[&stream]);
    assert_eq!(
        end,
        StreamEnd::Usage(Usage {
            input: 3,
            output: 4,
            ..Default::default()
        })
    );
    assert_eq!(frames, 1);
}

#[test]
fn converse_every_split_point() {
    let stream = converse_stream();
    let whole = run(CONVERSE, &[&stream]);
    assert_eq!(whole, (StreamEnd::Usage(CONVERSE_USAGE), 6));
    for i in 0..=stream.len() {
        let (a, c) = stream.split_at(i);
        assert_eq!(run(CONVERSE, &[a, c]), whole, "split at {i}");
    }
    // Three pieces: every first cut against a spread of second cuts.
    for i in 0..stream.len() {
        for j in (i..=stream.len()).step_by(23) {
            let (a, rest) = stream.split_at(i);
            let (m, c) = rest.split_at(j - i);
            assert_eq!(run(CONVERSE, &[a, m, c]), whole);
        }
    }
}

#[test]
fn converse_byte_by_byte() {
    let stream = converse_stream();
    let mut tap = StreamTap::new(CONVERSE);
    for byte in &stream {
        tap.push(&b(std::slice::from_ref(byte)));
        // Never more than one frame's worth of copy.
        assert!(tap.partial.len() < 400);
    }
    assert_eq!(tap.outcome(), StreamEnd::Usage(CONVERSE_USAGE));
    assert_eq!(tap.frames(), 6);
    assert!(tap.partial.is_empty());
}

#[test]
fn glued_frames_and_partial_tails() {
    let frames = converse_frames();
    let mut tap = StreamTap::new(CONVERSE);
    // Three whole frames plus half of the fourth.
    let mut first = frames[..3].concat();
    let half = frames[3].len() / 2;
    first.extend_from_slice(&frames[3][..half]);
    assert!(tap.push(&b(&first)));
    assert_eq!(tap.frames(), 3);
    assert_eq!(tap.partial.len(), half);
    // The rest of the fourth, the fifth whole and the start of the sixth.
    let mut second = frames[3][half..].to_vec();
    second.extend_from_slice(&frames[4]);
    second.extend_from_slice(&frames[5][..5]);
    assert!(tap.push(&b(&second)));
    assert_eq!(tap.frames(), 5);
    assert_eq!(tap.outcome(), StreamEnd::NoUsage);
    assert!(tap.push(&b(&frames[5][5..])));
    assert_eq!(tap.frames(), 6);
    assert_eq!(tap.outcome(), StreamEnd::Usage(CONVERSE_USAGE));
}

fn chunk_event(inner_json: &str) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(inner_json.as_bytes());
    frame(
        &[
            (":message-type", "event"),
            (":event-type", "chunk"),
            (":content-type", "application/json"),
        ],
        format!(r#"{{"bytes":"{encoded}","p":"abcdefgh"}}"#).as_bytes(),
    )
}

#[test]
fn invoke_final_chunk_metrics() {
    let stream = [
        chunk_event(r#"{"type":"message_start","message":{"usage":{"input_tokens":9}}}"#),
        chunk_event(r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}"#),
        chunk_event(
            r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":9,
            "outputTokenCount":2,"invocationLatency":512,"firstByteLatency":300,
            "cacheReadInputTokenCount":100,"cacheWriteInputTokenCount":50}}"#,
        ),
    ]
    .concat();
    let expected = StreamEnd::Usage(Usage {
        input: 9,
        output: 2,
        cache_read: 100,
        cache_write: 50,
        cache_write_1h: 0,
    });
    let kind = INVOKE;
    assert_eq!(run(kind, &[&stream]), (expected.clone(), 3));
    for i in 0..=stream.len() {
        let (a, c) = stream.split_at(i);
        assert_eq!(run(kind, &[a, c]), (expected.clone(), 3), "split at {i}");
    }
    // The same bytes read as ConverseStream carry no usage.
    assert_eq!(run(CONVERSE, &[&stream]), (StreamEnd::NoUsage, 3));
}

#[test]
fn invoke_metrics_without_cache_and_key_in_text() {
    let stream = [
        chunk_event(r#"{"delta":{"text":"what is amazon-bedrock-invocationMetrics?"}}"#),
        chunk_event(
            r#"{"amazon-bedrock-invocationMetrics":{"inputTokenCount":1,"outputTokenCount":2,
            "invocationLatency":3,"firstByteLatency":4}}"#,
        ),
    ]
    .concat();
    assert_eq!(
        run(INVOKE, &[&stream]),
        (
            StreamEnd::Usage(Usage {
                input: 1,
                output: 2,
                ..Default::default()
            }),
            2
        )
    );
}

#[test]
fn invoke_bad_payloads() {
    let kind = INVOKE;
    let chunk = |payload: &str| {
        frame(
            &[(":message-type", "event"), (":event-type", "chunk")],
            payload.as_bytes(),
        )
    };
    for bad in [
        chunk("not json"),
        chunk(r#"{"bytes":"!!!not base64!!!"}"#),
        chunk_event(r#"{"amazon-bedrock-invocationMetrics":{"inputTokenCount":"x"}}"#),
        chunk_event(r#"{"amazon-bedrock-invocationMetrics":{"inputTokenCount":1"#),
    ] {
        assert_eq!(run(kind, &[&bad]), (StreamEnd::Undecodable, 1));
    }
    // Model JSON without the key is never parsed, valid or not.
    assert_eq!(run(kind, &[&chunk_event("{{{")]), (StreamEnd::NoUsage, 1));
}

#[test]
fn bad_metadata_is_undecodable() {
    let stream = [
        event("messageStart", r#"{"role":"assistant"}"#),
        event("metadata", r#"{"metrics":{"latencyMs":1}}"#),
    ]
    .concat();
    assert_eq!(run(CONVERSE, &[&stream]), (StreamEnd::Undecodable, 2));
    // Non-metadata events are not parsed at all.
    let odd = event("contentBlockDelta", "not json");
    assert_eq!(run(CONVERSE, &[&odd]), (StreamEnd::NoUsage, 1));
}

#[test]
fn exception_after_two_events() {
    let frames = converse_frames();
    let mut stream = frames[..2].concat();
    stream.extend_from_slice(&exception("modelStreamErrorException"));
    let expected = StreamEnd::Exception {
        exception_type: "modelStreamErrorException".to_owned(),
        usage: None,
    };
    assert_eq!(run(CONVERSE, &[&stream]), (expected.clone(), 3));
    // Bytes after an exception are ignored.
    let mut more = stream.clone();
    more.extend_from_slice(&frames[5]);
    assert_eq!(run(CONVERSE, &[&more]), (expected, 3));

    let mut tap = StreamTap::new(CONVERSE);
    assert!(tap.push(&b(&frames[0])));
    assert!(!tap.push(&b(&exception("throttlingException"))));
    assert_eq!(
        tap.outcome(),
        StreamEnd::Exception {
            exception_type: "throttlingException".to_owned(),
            usage: None
        }
    );
}

#[test]
fn usage_before_exception_is_kept() {
    let mut stream = converse_stream();
    stream.extend_from_slice(&exception("internalServerException"));
    assert_eq!(
        run(CONVERSE, &[&stream]),
        (
            StreamEnd::Exception {
                exception_type: "internalServerException".to_owned(),
                usage: Some(CONVERSE_USAGE)
            },
            7
        )
    );
}

#[test]
fn unmodeled_error_frame() {
    let error = frame(
        &[
            (":message-type", "error"),
            (":error-code", "InternalFailure"),
            (":error-message", "oops"),
        ],
        b"",
    );
    assert_eq!(
        run(CONVERSE, &[&error]),
        (
            StreamEnd::Exception {
                exception_type: "InternalFailure".to_owned(),
                usage: None
            },
            1
        )
    );
}

#[test]
fn corrupt_crc_is_final() {
    let frames = converse_frames();
    let mut bad = frames[1].clone();
    let last = bad.len() - 6;
    bad[last] ^= 0x20; // inside the payload: message CRC mismatch
    for split in [false, true] {
        let mut tap = StreamTap::new(CONVERSE);
        assert!(tap.push(&b(&frames[0])));
        if split {
            let (x, y) = bad.split_at(20);
            tap.push(&b(x));
            assert!(!tap.push(&b(y)));
        } else {
            assert!(!tap.push(&b(&bad)));
        }
        assert_eq!(tap.outcome(), StreamEnd::Undecodable);
        // Valid frames afterwards, including the usage, don't revive it.
        assert!(!tap.push(&b(&frames[2..].concat())));
        assert_eq!(tap.outcome(), StreamEnd::Undecodable);
        assert_eq!(tap.frames(), 1);
    }

    // A prelude CRC mismatch is caught at 12 bytes, before the frame is buffered.
    let mut bad_prelude = frames[1].clone();
    bad_prelude[9] ^= 1;
    let mut tap = StreamTap::new(CONVERSE);
    tap.push(&b(&bad_prelude[..12]));
    assert_eq!(tap.outcome(), StreamEnd::Undecodable);
}

#[test]
fn crc32_matches_the_encoder() {
    let f = event("messageStart", "{}");
    assert_eq!(
        crc32(&f[..8]),
        u32::from_be_bytes([f[8], f[9], f[10], f[11]])
    );
    let n = f.len();
    assert_eq!(
        crc32(&f[..n - 4]),
        u32::from_be_bytes([f[n - 4], f[n - 3], f[n - 2], f[n - 1]])
    );
}

fn prelude_bytes(total: u32, headers: u32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&headers.to_be_bytes());
    let crc = crc32(&p);
    p.extend_from_slice(&crc.to_be_bytes());
    p
}

#[test]
fn huge_frame_is_refused_unbuffered() {
    let mut huge = prelude_bytes(100 * 1024 * 1024, 0);
    huge.extend(std::iter::repeat_n(0u8, 1024 * 1024));
    let mut tap = StreamTap::new(CONVERSE);
    assert!(!tap.push(&b(&huge)));
    assert_eq!(tap.outcome(), StreamEnd::Undecodable);
    assert!(tap.partial.capacity() < 1024);

    // Judged from the first 4 bytes, even when they arrive one at a time after a frame.
    let mut tap = StreamTap::new(CONVERSE);
    tap.push(&b(&event("messageStart", "{}")));
    for byte in &huge[..4] {
        tap.push(&b(std::slice::from_ref(byte)));
    }
    assert_eq!(tap.outcome(), StreamEnd::Undecodable);
    tap.push(&b(&huge[4..]));
    assert!(tap.partial.len() <= 4);

    // Just over the limit is refused; a short length is too.
    for total in [MAX_FRAME as u32 + 1, 15, 0] {
        let (end, _) = run(CONVERSE, &[&prelude_bytes(total, 0)]);
        assert_eq!(end, StreamEnd::Undecodable, "{total}");
    }
}

#[test]
fn large_frame_within_limit() {
    let text = "x".repeat(3 * 1024 * 1024);
    let big = event(
        "contentBlockDelta",
        &format!(r#"{{"delta":{{"text":"{text}"}}}}"#),
    );
    let mut stream = big.clone();
    stream.extend_from_slice(&event("metadata", METADATA));
    let mut tap = StreamTap::new(CONVERSE);
    for chunk in stream.chunks(64 * 1024) {
        tap.push(&b(chunk));
    }
    assert_eq!(tap.outcome(), StreamEnd::Usage(CONVERSE_USAGE));
    assert_eq!(tap.frames(), 2);
    assert!(tap.partial.capacity() <= KEEP_CAPACITY);
}

#[test]
fn truncated_stream_is_no_usage() {
    let stream = converse_stream();
    let cut = &stream[..stream.len() - 5];
    assert_eq!(run(CONVERSE, &[cut]), (StreamEnd::NoUsage, 5));
    assert_eq!(run(CONVERSE, &[]), (StreamEnd::NoUsage, 0));
    assert_eq!(run(CONVERSE, &[&stream[..3]]), (StreamEnd::NoUsage, 0));
}

#[test]
fn push_reports_completed_events() {
    let frames = [
        event("messageStart", "{}"),
        event("contentBlockDelta", r#"{"delta":{"text":"a"}}"#),
        exception("modelStreamErrorException"),
    ];
    let stream = frames.concat();
    let mut ends_of_events = Vec::new();
    let mut offset = 0;
    for f in &frames[..2] {
        offset += f.len();
        ends_of_events.push(offset - 1);
    }
    let mut tap = StreamTap::new(CONVERSE);
    let trues: Vec<usize> = stream
        .iter()
        .enumerate()
        .filter(|(_, byte)| tap.push(&b(std::slice::from_ref(*byte))))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(trues, ends_of_events);

    // A chunk with a non-event frame only, or only part of an event, reports false.
    let mut tap = StreamTap::new(CONVERSE);
    let first = &frames[0];
    assert!(!tap.push(&b(&first[..first.len() - 1])));
    assert!(tap.push(&b(&first[first.len() - 1..])));
    assert!(!tap.push(&b(&frames[2])));
    assert!(!tap.push(&Bytes::new()));
}

#[test]
fn garbage_never_panics() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid = [
        converse_stream(),
        chunk_event(
            r#"{"amazon-bedrock-invocationMetrics":{"inputTokenCount":1,"outputTokenCount":2}}"#,
        ),
    ]
    .concat();
    let (mut undecodable, mut other, mut decoded) = (0, 0, 0u64);
    for round in 0..3000 {
        let mut data: Vec<u8> = if round % 2 == 0 {
            // Pure noise, sometimes fronted by a plausible prelude so the decoder runs.
            let len = (next() % 600) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 4 == 0 && len > 40 {
                let p = prelude_bytes(len as u32, (next() % 40) as u32);
                d[..12].copy_from_slice(&p);
            }
            d
        } else {
            // A valid stream with a few flipped bytes.
            let mut d = valid.clone();
            for _ in 0..1 + next() % 3 {
                let i = (next() as usize) % d.len();
                d[i] ^= (next() as u8) | 1;
            }
            d
        };
        if round % 5 == 0 {
            data.truncate((next() as usize) % (data.len() + 1));
        }
        let kind = if round % 3 == 0 { INVOKE } else { CONVERSE };
        let mut tap = StreamTap::new(kind);
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = 1 + (next() as usize) % 97;
            let (chunk, after) = rest.split_at(n.min(rest.len()));
            tap.push(&b(chunk));
            rest = after;
            assert!(tap.partial.len() <= data.len());
        }
        match tap.outcome() {
            StreamEnd::Undecodable => undecodable += 1,
            _ => other += 1,
        }
        decoded += tap.frames();
    }
    // The noise must reach both the decoder and the error paths.
    assert!(undecodable > 1000 && other > 100 && decoded > 1000);
}
