use super::*;
use crate::api::{anthropic, openai};
use http_body_util::{BodyExt, StreamBody};

const WITH_USAGE: &str = concat!(
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":40,\"total_tokens\":160,\"prompt_tokens_details\":{\"cached_tokens\":100}}}\n\n",
    "data: [DONE]\n\n",
);

const WITHOUT_USAGE: &str = concat!(
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
);

fn chat_usage() -> Usage {
    Usage {
        input: 20,
        output: 40,
        cache_read: 100,
        ..Usage::default()
    }
}

/// The stream cut into pieces of `size` bytes (the last one shorter).
fn pieces(s: &str, size: usize) -> Vec<Bytes> {
    s.as_bytes()
        .chunks(size)
        .map(Bytes::copy_from_slice)
        .collect()
}

#[test]
fn usage_is_read_however_the_bytes_are_cut() {
    for size in 1..=WITH_USAGE.len() {
        let mut tap = SseTap::new(openai::read_chat_event);
        for p in pieces(WITH_USAGE, size) {
            tap.push(&p);
        }
        assert_eq!(usage_of(&tap), Some(chat_usage()), "pieces of {size}");
    }
    let crlf = WITH_USAGE.replace('\n', "\r\n");
    let mut tap = SseTap::new(openai::read_chat_event);
    for p in pieces(&crlf, 7) {
        tap.push(&p);
    }
    assert_eq!(usage_of(&tap), Some(chat_usage()));
}

#[test]
fn anthropic_counts_add_up_across_events() {
    let stream = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"cache_read_input_tokens\":4,\"cache_creation_input_tokens\":6,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":6},\"output_tokens\":1}}}\n\n",
        "event: ping\ndata: {\"type\":\"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"usage\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":41}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let mut tap = SseTap::new(anthropic::read_event);
    let mut first = None;
    for (i, p) in pieces(stream, 10).iter().enumerate() {
        if tap.push(p) && first.is_none() {
            first = Some(i);
        }
    }
    assert!(first.is_some());
    assert_eq!(tap.stop_reason(), Some(crate::api::StopReason::EndTurn));
    assert_eq!(
        usage_of(&tap),
        Some(Usage {
            input: 9,
            output: 41,
            cache_read: 4,
            cache_write: 6,
            cache_write_1h: 6,
        })
    );
}

#[test]
fn no_usage_and_garbage_are_told_apart() {
    let mut tap = SseTap::new(openai::read_chat_event);
    tap.push(WITHOUT_USAGE.as_bytes());
    assert!(matches!(tap.outcome(), StreamEnd::NoUsage));
    let mut tap = SseTap::new(openai::read_chat_event);
    tap.push(b"data: {\"usage\": {broken\n\n");
    assert!(matches!(tap.outcome(), StreamEnd::Undecodable));
    // Usage read before the garbage stands.
    let mut tap = SseTap::new(openai::read_chat_event);
    tap.push(WITH_USAGE.as_bytes());
    tap.push(b"data: {\"usage\": {broken\n\n");
    assert_eq!(usage_of(&tap), Some(chat_usage()));
}

#[test]
fn an_endless_event_is_given_up_on() {
    let mut events = Splitter::default();
    let big = vec![b'x'; 1024 * 1024];
    let mut held = Some(0);
    for _ in 0..=MAX_EVENT / big.len() {
        held = events.push(&big, |_| panic!("no event"));
        if held.is_none() {
            break;
        }
    }
    assert_eq!(held, None);
    assert_eq!(events.push(b"data: x\n\n", |_| panic!("no event")), Some(0));
}

async fn stripped(stream: &str, size: usize) -> (Vec<u8>, usize) {
    let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = pieces(stream, size)
        .into_iter()
        .map(|b| Ok(Frame::data(b)))
        .collect();
    let mut body = SseStrip::new(
        StreamBody::new(futures_util::stream::iter(frames)),
        &openai::OpenAi,
    );
    let mut out = Vec::new();
    let mut frames = 0;
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert!(!data.is_empty());
        out.extend_from_slice(&data);
        frames += 1;
    }
    (out, frames)
}

#[tokio::test]
async fn the_client_gets_what_it_would_have_got_without_the_meter() {
    for size in 1..=WITH_USAGE.len() {
        let (out, _) = stripped(WITH_USAGE, size).await;
        assert_eq!(
            String::from_utf8(out).unwrap(),
            WITHOUT_USAGE,
            "pieces of {size}"
        );
    }
    // A stream that never had the additions passes byte for byte, chunk for chunk.
    let (out, frames) = stripped(WITHOUT_USAGE, WITHOUT_USAGE.len()).await;
    assert_eq!(out, WITHOUT_USAGE.as_bytes());
    assert_eq!(frames, 1);
    // An event the upstream never finished still reaches the client.
    let cut = &WITH_USAGE[..WITH_USAGE.len() - 5];
    let (out, _) = stripped(cut, 16).await;
    assert!(String::from_utf8(out).unwrap().ends_with("data: [DO"));
}

#[tokio::test]
async fn each_event_goes_on_as_soon_as_it_is_whole() {
    // Three events in three chunks: three frames out, none waiting for the next.
    let events: Vec<&str> = WITHOUT_USAGE.split_inclusive("\n\n").collect();
    let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = events
        .iter()
        .map(|e| Ok(Frame::data(Bytes::copy_from_slice(e.as_bytes()))))
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut body = SseStrip::new(StreamBody::new(stream), &openai::OpenAi);
    for (frame, event) in frames.into_iter().zip(&events) {
        tx.send(frame).unwrap();
        let got = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&got[..], event.as_bytes());
    }
}
