//! Streaming benchmark: the event-stream tap's throughput on one core, and time to first byte
//! of a ConverseStream through bedrock-meter versus straight to the simulator, in one run.
//! Method and results: bench/README.md, bench/RESULTS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bedrock_meter::api::converse;
use bedrock_meter::pricing::RateCard;
use bedrock_meter::proxy::forward::upstream::Upstream;
use bedrock_meter::proxy::tap::eventstream::{StreamEnd, StreamTap};
use bedrock_meter::server::{self, ProxyConfig};
use bedrock_meter::simulator::{Simulator, SimulatorConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn event(kind: &'static str, payload: String) -> Vec<u8> {
    let message = Message::new(Bytes::from(payload))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(":event-type", HeaderValue::String(kind.into())))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    out
}

fn tap_throughput(frames: usize, chunk: usize) {
    let mut stream = Vec::new();
    let delta = event(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":"a typical streamed text delta of a few words"},"p":"abcdefghij"}"#.into(),
    );
    for _ in 0..frames {
        stream.extend_from_slice(&delta);
    }
    stream.extend_from_slice(&event(
        "metadata",
        r#"{"usage":{"inputTokens":10,"outputTokens":20,"totalTokens":30},"metrics":{"latencyMs":1},"p":"x"}"#.into(),
    ));
    let chunks: Vec<Bytes> = stream.chunks(chunk).map(Bytes::copy_from_slice).collect();
    let rounds = 5;
    let start = Instant::now();
    for _ in 0..rounds {
        let mut tap = StreamTap::new(converse::read_event);
        for c in &chunks {
            tap.push(c);
        }
        assert!(matches!(tap.outcome(), StreamEnd::Usage(_)));
    }
    let secs = start.elapsed().as_secs_f64();
    let total_frames = (frames + 1) * rounds;
    let total_bytes = stream.len() * rounds;
    println!(
        "tap: {frames} frames of {} B in {chunk} B chunks: {:.0} frames/s, {:.0} MB/s (one core)",
        delta.len(),
        total_frames as f64 / secs,
        total_bytes as f64 / secs / 1e6
    );
}

async fn ttfb(url: &str, n: usize) -> Vec<Duration> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let body = Bytes::from_static(
        br#"{"messages":[{"role":"user","content":[{"text":"[[sim input=100 output=50 chunks=4]]"}]}]}"#,
    );
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let req = http::Request::post(format!(
            "{url}/model/amazon.nova-micro-v1%3A0/converse-stream"
        ))
        .header("content-type", "application/json")
        .header("x-bedrock-meter-app", "bench")
        .body(Full::new(body.clone()))
        .unwrap();
        let start = Instant::now();
        let resp = client.request(req).await.unwrap();
        let mut body = resp.into_body();
        let _first = body.frame().await;
        times.push(start.elapsed());
        while body.frame().await.is_some() {}
    }
    times.sort();
    times
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    tap_throughput(100_000, 16 * 1024);
    tap_throughput(100_000, 1024);

    let simulator = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let card = RateCard::load(std::path::Path::new("rates/bedrock.toml"))
        .unwrap()
        .card;
    let mut config = ProxyConfig::new(
        card,
        SharedCredentialsProvider::new(Credentials::new("bench", "bench", None, None, "bench")),
        Upstream::parse(Some(&simulator.url())).unwrap(),
    );
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.admin_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.region = Some("us-east-1".into());
    let proxy = server::start(config).await.unwrap();

    // Warm both paths (connection pools, allocator), then measure alternately.
    ttfb(&simulator.url(), 100).await;
    ttfb(&proxy.url(), 100).await;
    let direct = ttfb(&simulator.url(), n).await;
    let through = ttfb(&proxy.url(), n).await;
    for (name, t) in [("direct", &direct), ("through bedrock-meter", &through)] {
        println!(
            "ttfb {name}: p50 {:.0} µs, p99 {:.0} µs ({n} sequential ConverseStream calls)",
            pct(t, 0.5),
            pct(t, 0.99)
        );
    }
    println!(
        "ttfb added by the proxy: p50 {:.0} µs, p99 {:.0} µs",
        pct(&through, 0.5) - pct(&direct, 0.5),
        pct(&through, 0.99) - pct(&direct, 0.99)
    );
    proxy.shutdown().await;
}
