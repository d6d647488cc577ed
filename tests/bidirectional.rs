//! InvokeModelWithBidirectionalStream (Nova Sonic speech to speech) through the meter: the real
//! SDK over TLS (HTTP/2 by ALPN, as the SDK needs for this operation) to the meter, HTTP/2 to
//! the simulator, an event stream each way at once.
//!
//! The client sends each audio chunk only once the answer to the one before has come back, so
//! a frame held anywhere in either direction stops the session (the test would time out); the
//! reply's audio arrives paced, not batched. The session's text and speech tokens and their
//! cost are checked to the token and the pico-dollar, and sessions cut by the client, by the
//! upstream and by the session limit are recorded once, with what Bedrock reported so far.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::primitives::event_stream::EventReceiver;
use aws_sdk_bedrockruntime::types::error::InvokeModelWithBidirectionalStreamInputError;
use aws_sdk_bedrockruntime::types::{
    BidirectionalInputPayloadPart, InvokeModelWithBidirectionalStreamInput,
    InvokeModelWithBidirectionalStreamOutput,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::pki::*;
use common::*;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const SONIC: &str = "amazon.nova-2-sonic-v1:0";
/// Nova 2 Sonic, USD per 1M tokens as pico-dollars per token: text in, text out, speech in,
/// speech out ($0.33, $2.75, $3.00, $12.00).
const RATES: [u64; 4] = [330_000, 2_750_000, 3_000_000, 12_000_000];
/// Audio bytes the simulator counts as one speech token.
const AUDIO_PER_TOKEN: usize = 1024;

type Input =
    Result<InvokeModelWithBidirectionalStreamInput, InvokeModelWithBidirectionalStreamInputError>;

/// The meter over TLS in front of the simulator, and an SDK client of `app` trusting it.
async fn meter_over_tls(dir: &std::path::Path) -> (Harness, Client) {
    let pki = Pki::new("duplex-test-ca");
    let (cert, key) = write_pair(dir, &pki.server("meter"));
    let ledger = dir.join("ledger.jsonl");
    let h = Harness::start_with(|c| {
        c.tls = Some(files(cert, key, None));
        c.ledger = Some(bedrock_meter::meter::ledger::Target::File(ledger));
    })
    .await;
    let client = sdk_over_tls(&h, &pki.ca_pem, "voice");
    (h, client)
}

/// One client event, as the SDK sends it: a `chunk` whose bytes are the event's JSON.
fn event(body: Value) -> Input {
    Ok(InvokeModelWithBidirectionalStreamInput::Chunk(
        BidirectionalInputPayloadPart::builder()
            .bytes(Blob::new(json!({ "event": body }).to_string()))
            .build(),
    ))
}

fn audio(bytes: usize) -> Input {
    event(json!({"audioInput": {
        "promptName": "p1", "contentName": "user-audio",
        "content": STANDARD.encode(vec![7u8; bytes]),
    }}))
}

/// The opening of a session: its start, the prompt, the system prompt (text), and the start of
/// the user's audio.
fn opening(system: &str) -> Vec<Input> {
    vec![
        event(json!({"sessionStart": {"inferenceConfiguration": {"maxTokens": 1024}}})),
        event(json!({"promptStart": {"promptName": "p1"}})),
        event(
            json!({"contentStart": {"promptName": "p1", "contentName": "system", "type": "TEXT", "role": "SYSTEM"}}),
        ),
        event(
            json!({"textInput": {"promptName": "p1", "contentName": "system", "content": system}}),
        ),
        event(json!({"contentEnd": {"promptName": "p1", "contentName": "system"}})),
        event(
            json!({"contentStart": {"promptName": "p1", "contentName": "user-audio", "type": "AUDIO", "role": "USER"}}),
        ),
    ]
}

/// A session the test drives event by event: what it sends goes through `tx`.
struct Session {
    tx: Option<mpsc::Sender<Input>>,
    out: EventReceiver<
        InvokeModelWithBidirectionalStreamOutput,
        aws_sdk_bedrockruntime::types::error::InvokeModelWithBidirectionalStreamOutputError,
    >,
}

impl Session {
    async fn open(client: &Client) -> Session {
        let (tx, rx) = mpsc::channel::<Input>(1);
        // Fused: the SDK polls its input once more after the end.
        let stream =
            futures_util::StreamExt::fuse(futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            }));
        let output = client
            .invoke_model_with_bidirectional_stream()
            .model_id(SONIC)
            .body(stream.into())
            .send()
            .await
            .unwrap();
        Session {
            tx: Some(tx),
            out: output.body,
        }
    }

    async fn send(&self, input: Input) {
        self.tx.as_ref().unwrap().send(input).await.unwrap();
    }

    /// The next answer event (its name and body), `None` at the stream's end.
    async fn next(&mut self) -> Option<(String, Value)> {
        let item = tokio::time::timeout(Duration::from_secs(10), self.out.recv())
            .await
            .expect("an answer event within 10 s: a frame is held somewhere")
            .unwrap()?;
        let InvokeModelWithBidirectionalStreamOutput::Chunk(part) = item else {
            panic!("unexpected event {item:?}");
        };
        let v: Value = serde_json::from_slice(part.bytes().unwrap().as_ref()).unwrap();
        let (name, body) = v["event"].as_object().unwrap().iter().next().unwrap();
        Some((name.clone(), body.clone()))
    }

    /// Reads answer events until a usage event, and returns its totals
    /// (speech in, text in, speech out, text out).
    async fn usage(&mut self) -> [u64; 4] {
        loop {
            let (name, body) = self.next().await.expect("a usage event");
            if name == "usageEvent" {
                let t = &body["details"]["total"];
                return [
                    t["input"]["speechTokens"].as_u64().unwrap(),
                    t["input"]["textTokens"].as_u64().unwrap(),
                    t["output"]["speechTokens"].as_u64().unwrap(),
                    t["output"]["textTokens"].as_u64().unwrap(),
                ];
            }
        }
    }
}

/// What the meter exported for the one session: (text in, text out, speech in, speech out)
/// tokens and the total cost in pico-dollars.
fn metered(m: &Metrics) -> ([u64; 4], u64) {
    let units = |unit| {
        m.value(
            "bedrock_units_total",
            &[("app", "voice"), ("model", SONIC), ("unit", unit)],
        ) as u64
    };
    let tokens = [
        m.tokens("voice", SONIC, "input"),
        m.tokens("voice", SONIC, "output"),
        units("speech_input_token"),
        units("speech_output_token"),
    ];
    let cost: u64 = ["input", "output", "speech_input", "speech_output"]
        .iter()
        .map(|t| m.cost_pico("voice", SONIC, t))
        .sum();
    (tokens, cost)
}

fn price(tokens: [u64; 4]) -> u64 {
    tokens.iter().zip(RATES).map(|(n, r)| n * r).sum()
}

/// Waits until the meter has recorded `n` bidirectional sessions.
async fn recorded(h: &Harness, n: u64) -> Metrics {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = h.metrics().await;
        let done = m.requests(&[("operation", "InvokeModelWithBidirectionalStream")]);
        if done >= n || Instant::now() > deadline {
            assert_eq!(done, n, "sessions recorded");
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_session_flows_both_ways_frame_by_frame_and_is_metered_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (h, client) = meter_over_tls(dir.path()).await;
    let system = "[[sim gap_ms=40 chunks=3]] You are the voice of Example Corp's help line.";
    let text_in = (system.len() as u64).div_ceil(4);

    let mut s = Session::open(&client).await;
    let opening = opening(system);
    let sent_events = opening.len() + 4 + 3;
    for e in opening {
        s.send(e).await;
    }
    // Ping-pong: each chunk waits for the answer to the one before, which the simulator sends
    // only once the chunk reached it.
    for i in 1..=4u64 {
        s.send(audio(2 * AUDIO_PER_TOKEN)).await;
        assert_eq!(s.usage().await, [2 * i, text_in, 0, 0], "after chunk {i}");
    }
    s.send(event(
        json!({"contentEnd": {"promptName": "p1", "contentName": "user-audio"}}),
    ))
    .await;
    // The reply: its audio pieces come 40 ms apart, each as it is produced.
    let mut audio_at = Vec::new();
    loop {
        let (name, body) = s.next().await.unwrap();
        match name.as_str() {
            "audioOutput" => audio_at.push(Instant::now()),
            "usageEvent" => {
                assert_eq!(body["details"]["total"]["output"]["speechTokens"], 3);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(audio_at.len(), 3);
    for pair in audio_at.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(25),
            "audio pieces batched: {gap:?} apart"
        );
    }
    s.send(event(json!({"promptEnd": {"promptName": "p1"}})))
        .await;
    s.send(event(json!({"sessionEnd": {}}))).await;
    let (last, _) = s.next().await.unwrap();
    assert_eq!(last, "completionEnd");
    s.tx = None;
    assert!(s.next().await.is_none());

    let m = recorded(&h, 1).await;
    let want = [text_in, 4, 8, 3];
    assert_eq!(metered(&m), (want, price(want)));
    assert_eq!(
        m.requests(&[
            ("app", "voice"),
            ("operation", "InvokeModelWithBidirectionalStream"),
            ("status", "200"),
        ]),
        1
    );
    // Every frame the meter sent checked in the meter's own chain: the head, each event and
    // the final empty frame.
    let stats = h.simulator.stats();
    assert_eq!(stats.signatures_invalid, 0);
    assert_eq!(stats.signatures_valid, 1 + sent_events as u64 + 1);
    assert_eq!(
        stats.units.get(&(SONIC.to_owned(), "speech_input_token")),
        Some(&8)
    );

    // The ledger line: the session, its text tokens, its speech tokens and their cost.
    h.proxy.state.flush_ledger().await;
    let text = std::fs::read_to_string(dir.path().join("ledger.jsonl")).unwrap();
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["operation"], "InvokeModelWithBidirectionalStream");
    assert_eq!(line["stream"], true);
    assert_eq!(line["tokens"]["input"], text_in);
    assert_eq!(line["tokens"]["output"], 4);
    assert_eq!(line["units"]["speech_input_token"], 8);
    assert_eq!(line["units"]["speech_output_token"], 3);
    assert_eq!(line["cost_usd_by_type"]["speech_input"], "0.000024000000");
    assert_eq!(line["cost_usd_by_type"]["speech_output"], "0.000036000000");
    assert_eq!(
        line["cost_usd"].as_str().unwrap(),
        bedrock_meter::money::usd(price(want))
    );
}

/// A client that hangs up mid-session: the session is recorded once, with the totals of the
/// last usage event.
#[tokio::test]
async fn a_session_the_client_cuts_is_recorded_once_with_what_was_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (h, client) = meter_over_tls(dir.path()).await;
    let system = "Short.";
    let text_in = (system.len() as u64).div_ceil(4);
    let mut s = Session::open(&client).await;
    for e in opening(system) {
        s.send(e).await;
    }
    for i in 1..=2u64 {
        s.send(audio(3 * AUDIO_PER_TOKEN)).await;
        assert_eq!(s.usage().await, [3 * i, text_in, 0, 0]);
    }
    drop(s);
    let m = recorded(&h, 1).await;
    let want = [text_in, 0, 6, 0];
    assert_eq!(metered(&m), (want, price(want)));
    // Nothing more arrives later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = h.metrics().await;
    assert_eq!(
        m.requests(&[("operation", "InvokeModelWithBidirectionalStream")]),
        1
    );
    assert_eq!(metered(&m), (want, price(want)));
}

/// The upstream cutting the connection, and the session limit's exception frame, each end the
/// session for the client; each is recorded once with what Bedrock reported before it.
#[tokio::test]
async fn sessions_the_upstream_ends_are_recorded_once_with_what_was_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (h, client) = meter_over_tls(dir.path()).await;
    let cases = [
        "[[sim fault=drop after=2]]",
        "[[sim fault=midstream exception=modelTimeoutException after=2]]",
    ];
    let mut want = [0u64; 4];
    for (n, system) in cases.iter().enumerate() {
        let text_in = (system.len() as u64).div_ceil(4);
        let mut s = Session::open(&client).await;
        for e in opening(system) {
            s.send(e).await;
        }
        // Two answered chunks; the third answer is the fault.
        for i in 1..=2u64 {
            s.send(audio(AUDIO_PER_TOKEN)).await;
            assert_eq!(s.usage().await, [i, text_in, 0, 0]);
        }
        s.send(audio(AUDIO_PER_TOKEN)).await;
        let end = tokio::time::timeout(Duration::from_secs(10), s.out.recv())
            .await
            .unwrap();
        assert!(
            end.is_err(),
            "{system}: the stream ends in an error: {end:?}"
        );
        want[0] += text_in;
        want[2] += 2;
        let m = recorded(&h, n as u64 + 1).await;
        assert_eq!(metered(&m), (want, price(want)), "{system}");
    }
    let m = h.metrics().await;
    assert_eq!(
        m.value(
            "bedrock_stream_exceptions_total",
            &[
                ("model", SONIC),
                ("operation", "InvokeModelWithBidirectionalStream"),
                ("type", "modelTimeoutException"),
            ]
        ),
        1.0
    );
}

/// Over `http://` the Rust SDK speaks HTTP/1.1 to the meter, the request body chunked while the
/// answer streams back: the session flows both ways just the same (the meter still speaks HTTP/2
/// to Bedrock). In keys mode the SDK's signature over the head is checked, then every frame in
/// the chain it seeds; a client of another key is refused before anything is forwarded.
#[tokio::test]
async fn keys_mode_over_plain_http_checks_the_head_and_every_frame() {
    let keys = bedrock_meter::proxy::identify::Keys::parse(
        "[[key]]\naccess_key_id = \"AKIDVOICE01\"\nsecret_access_key = \"voice-virtual-secret\"\napp = \"voice\"\n",
        "keys.toml",
    )
    .unwrap()
    .keys;
    let h = Harness::start_with(|c| c.keys = Some(keys)).await;
    let signed_by = |secret: &str| {
        Client::from_conf(
            aws_sdk_bedrockruntime::Config::builder()
                .behavior_version(aws_sdk_bedrockruntime::config::BehaviorVersion::latest())
                .region(aws_sdk_bedrockruntime::config::Region::new("us-east-1"))
                .endpoint_url(h.proxy.url())
                .credentials_provider(aws_credential_types::Credentials::new(
                    "AKIDVOICE01",
                    secret,
                    None,
                    None,
                    "test",
                ))
                .build(),
        )
    };
    let system = "Keys.";
    let text_in = (system.len() as u64).div_ceil(4);
    let mut s = Session::open(&signed_by("voice-virtual-secret")).await;
    for e in opening(system) {
        s.send(e).await;
    }
    for i in 1..=3u64 {
        s.send(audio(AUDIO_PER_TOKEN)).await;
        assert_eq!(s.usage().await, [i, text_in, 0, 0]);
    }
    s.send(event(json!({"sessionEnd": {}}))).await;
    s.tx = None;
    while s.next().await.is_some() {}
    let m = recorded(&h, 1).await;
    let want = [text_in, 0, 3, 0];
    assert_eq!(metered(&m), (want, price(want)));
    assert_eq!(m.value("bedrock_auth_failures_total", &[]), 0.0);

    // The wrong secret: refused on the head, nothing forwarded.
    let refused = signed_by("not-the-secret")
        .invoke_model_with_bidirectional_stream()
        .model_id(SONIC)
        .body(futures_util::stream::empty::<Input>().into())
        .send()
        .await;
    assert!(refused.is_err());
    let m = h.metrics().await;
    assert_eq!(
        m.requests(&[("app", "unauthenticated"), ("status", "403")]),
        1
    );
    assert_eq!(
        h.simulator.stats().by_operation["InvokeModelWithBidirectionalStream"],
        1
    );
}
