//! Memory stays bounded under many concurrent large bodies: the real binary with
//! `--max-buffered-bytes`, clients that send 4 MiB bodies at once and hold back the last byte
//! (so every admitted body sits in the proxy together), and the proxy's peak RSS read from
//! `/proc`. The same load without a budget is the control: it shows the measurement sees the
//! bodies, so the bounded run's figure means something.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::primitives::Blob;
use bedrock_meter::simulator::{Simulator, SimulatorConfig};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;
const BODY: usize = 4 * MIB;
const CLIENTS: usize = 40;
const MODEL: &str = "amazon.nova-micro-v1:0";

struct Proxy {
    served: ServeBinary,
}

impl Proxy {
    async fn start(upstream: &str, max_buffered: usize) -> Proxy {
        let budget = format!("--max-buffered-bytes={max_buffered}");
        Proxy {
            served: serve_binary(upstream, &[&budget]).await,
        }
    }

    /// A `/proc/PID/status` field in bytes (`VmRSS`, `VmHWM`).
    fn memory(&self, field: &str) -> usize {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.served.child.0.id())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap();
        let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    async fn metrics(&self) -> Metrics {
        let (status, _, body) = http_get(&format!("{}/metrics", self.served.admin)).await;
        assert_eq!(status, 200);
        Metrics(bedrock_meter::tools::scrape::parse(
            std::str::from_utf8(&body).unwrap(),
        ))
    }
}

/// One raw HTTP/1.1 InvokeModel call whose body is sent but for its last byte, which waits
/// for `release`. Returns the status the proxy answered with.
async fn held_back_call(port: u16, release: tokio::sync::watch::Receiver<bool>) -> u16 {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let directive = br#"{"inputText":"[[sim input=100 output=7]] "#;
    let mut body = Vec::with_capacity(BODY);
    body.extend_from_slice(directive);
    body.resize(BODY - 2, b'x');
    body.extend_from_slice(b"\"}");
    let head = format!(
        "POST /model/{MODEL}/invoke HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\
         content-type: application/json\r\nx-bedrock-meter-app: big\r\n\
         content-length: {BODY}\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        let mut release = release;
        write.write_all(head.as_bytes()).await?;
        write.write_all(&body[..BODY - 1]).await?;
        while !*release.borrow_and_update() {
            if release.changed().await.is_err() {
                break;
            }
        }
        write.write_all(&body[BODY - 1..]).await?;
        // Keep the write half open until the answer is read.
        Ok::<_, std::io::Error>(write)
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let status = loop {
        let n = read.read(&mut buf).await.unwrap();
        assert!(n > 0, "the proxy closed without an answer");
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let line = String::from_utf8_lossy(&answer);
            break line[9..12].parse().unwrap();
        }
    };
    writer.abort();
    status
}

struct Run {
    statuses: Vec<u16>,
    baseline_rss: usize,
    peak_rss: usize,
    metrics: Metrics,
    refused_sdk_call: Option<(Option<String>, Option<String>)>,
}

async fn run(max_buffered: usize) -> Run {
    let simulator = Simulator::start(SimulatorConfig {
        listen: loopback(),
        expect_credentials: Some(proxy_credentials()),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let proxy = Proxy::start(&simulator.url(), max_buffered).await;
    let baseline_rss = proxy.memory("VmRSS");

    let started = Instant::now();
    let (release, released) = tokio::sync::watch::channel(false);
    let calls: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(held_back_call(proxy.served.port, released.clone())))
        .collect();

    // Every call is now either refused or admitted and held in the proxy, waiting for its
    // last byte. How many the budget admits is known in advance: it takes each declared
    // length before reading.
    let admitted = if max_buffered == 0 {
        CLIENTS
    } else {
        max_buffered / BODY
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let m = proxy.metrics().await;
        let refused = m.value("bedrock_proxy_buffer_full_total", &[]) as usize;
        let held = m.value("bedrock_proxy_buffered_bytes", &[]) as usize;
        let rss = proxy.memory("VmRSS");
        // Taken from the budget is not yet read: wait until the proxy's memory shows the
        // admitted bodies too.
        if refused == CLIENTS - admitted
            && held == admitted * BODY
            && rss > baseline_rss + admitted * BODY * 9 / 10
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{refused} refused, {held} bytes held, RSS {} MiB over the baseline",
            rss.saturating_sub(baseline_rss) / MIB
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // While the budget is spent, a real SDK call is refused in AWS's shape.
    let refused_sdk_call = if max_buffered == 0 {
        None
    } else {
        let client = sdk_client(
            &format!("http://127.0.0.1:{}", proxy.served.port),
            Some("sdk"),
        );
        let err = client
            .invoke_model()
            .model_id(MODEL)
            .body(Blob::new(vec![b' '; MIB]))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        Some((
            err.code().map(str::to_owned),
            err.message().map(str::to_owned),
        ))
    };

    eprintln!("all held after {:?}", started.elapsed());
    release.send(true).unwrap();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    statuses.sort_unstable();
    let peak_rss = proxy.memory("VmHWM");
    eprintln!(
        "max-buffered-bytes {max_buffered}: peak RSS {} MiB over a baseline of {} MiB",
        peak_rss.saturating_sub(baseline_rss) / MIB,
        baseline_rss / MIB
    );
    let metrics = proxy.metrics().await;
    Run {
        statuses,
        baseline_rss,
        peak_rss,
        metrics,
        refused_sdk_call,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_large_bodies_stay_within_the_byte_budget() {
    const BUDGET: usize = 32 * MIB;
    let admitted = BUDGET / BODY;
    let bounded = run(BUDGET).await;
    let mut expected = vec![200u16; admitted];
    expected.extend(vec![503u16; CLIENTS - admitted]);
    assert_eq!(bounded.statuses, expected);
    let m = &bounded.metrics;
    assert_eq!(
        m.value("bedrock_proxy_buffer_full_total", &[]),
        (CLIENTS - admitted + 1) as f64
    );
    assert_eq!(m.value("bedrock_proxy_buffered_bytes", &[]), 0.0);
    assert_eq!(
        m.requests(&[("app", "big"), ("status", "503")]),
        (CLIENTS - admitted) as u64
    );
    assert_eq!(m.requests(&[("app", "sdk"), ("status", "503")]), 1);
    assert_eq!(
        m.requests(&[("app", "big"), ("status", "200")]),
        admitted as u64
    );
    assert_eq!(m.tokens("big", MODEL, "input"), 100 * admitted as u64);
    assert_eq!(
        bounded.refused_sdk_call,
        Some((
            Some("ServiceUnavailableException".to_owned()),
            Some(format!(
                "bedrock-meter holds its limit of {BUDGET} bytes of request and response \
                 bodies (--max-buffered-bytes); retry with backoff"
            ))
        ))
    );
    // The proxy's peak memory grew by the budget and some slack (connection buffers, the
    // allocator's own), far from the 160 MiB the clients sent at once.
    let growth = bounded.peak_rss.saturating_sub(bounded.baseline_rss);
    assert!(
        growth < BUDGET + 48 * MIB,
        "peak RSS grew by {} MiB with a {} MiB budget",
        growth / MIB,
        BUDGET / MIB
    );

    // The control: no budget, the same load. Every call is admitted and the peak shows all
    // of the bodies at once, so the bound above is the budget's doing.
    let unbounded = run(0).await;
    assert_eq!(unbounded.statuses, vec![200u16; CLIENTS]);
    let growth = unbounded.peak_rss.saturating_sub(unbounded.baseline_rss);
    assert!(
        growth > CLIENTS * BODY * 3 / 4,
        "without a budget the peak grew by only {} MiB",
        growth / MIB
    );
}
