//! Nothing lost under load and faults: exact accounting against the simulator's ground truth,
//! the fault matrix (upstream and client side), the in-flight cap, and graceful shutdown of the
//! real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::primitives::Blob;
use bedrock_meter::simulator::{Simulator, SimulatorConfig};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MODELS: [&str; 3] = [
    "amazon.nova-micro-v1:0",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "openai.gpt-oss-120b-1:0",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Converse,
    ConverseStream,
    InvokeModel,
    InvokeModelWithResponseStream,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Converse => "Converse",
            Op::ConverseStream => "ConverseStream",
            Op::InvokeModel => "InvokeModel",
            Op::InvokeModelWithResponseStream => "InvokeModelWithResponseStream",
        }
    }
}

/// What happens to one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fate {
    Clean,
    Throttled,
    Invalid,
    Slow,
    Malformed,
    Dropped,
    MidStream,
    /// The client gives up: a non-streaming call after 400 ms of a 1 s answer; a stream after
    /// its first event.
    Abandoned,
}

impl Fate {
    fn directive(self, op: Op) -> &'static str {
        let stream = matches!(op, Op::ConverseStream | Op::InvokeModelWithResponseStream);
        match self {
            Fate::Clean => "",
            Fate::Throttled => "fault=throttle",
            Fate::Invalid => "fault=validation",
            Fate::Slow => "delay_ms=80 gap_ms=20",
            Fate::Malformed => "fault=malformed after=2",
            Fate::Dropped => "fault=drop after=2",
            Fate::MidStream if stream => "fault=midstream after=2 exception=throttlingException",
            Fate::MidStream => "fault=model_error",
            Fate::Abandoned if stream => "gap_ms=5",
            Fate::Abandoned => "delay_ms=1000",
        }
    }
}

const FATES: [Fate; 12] = [
    Fate::Clean,
    Fate::Clean,
    Fate::Clean,
    Fate::Clean,
    Fate::Throttled,
    Fate::Invalid,
    Fate::Slow,
    Fate::Malformed,
    Fate::Dropped,
    Fate::MidStream,
    Fate::Abandoned,
    Fate::Abandoned,
];

async fn one_call(client: &Client, op: Op, model: &str, prompt: String, fate: Fate) {
    let converse_message = || user_message(&prompt);
    let invoke_body = || {
        Blob::new(
            serde_json::json!({
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 512,
                "messages": [{"role": "user", "content": prompt}],
            })
            .to_string(),
        )
    };
    match op {
        Op::Converse | Op::InvokeModel => {
            let call = async {
                if op == Op::Converse {
                    let _ = client
                        .converse()
                        .model_id(model)
                        .messages(converse_message())
                        .send()
                        .await;
                } else {
                    let _ = client
                        .invoke_model()
                        .model_id(model)
                        .body(invoke_body())
                        .send()
                        .await;
                }
            };
            if fate == Fate::Abandoned {
                // Long enough for the request to reach the proxy even on a loaded machine, well
                // short of the answer.
                let _ = tokio::time::timeout(Duration::from_millis(400), call).await;
            } else {
                call.await;
            }
        }
        Op::ConverseStream => {
            if let Ok(out) = client
                .converse_stream()
                .model_id(model)
                .messages(converse_message())
                .send()
                .await
            {
                let mut events = out.stream;
                while let Ok(Some(_)) = events.recv().await {
                    if fate == Fate::Abandoned {
                        break;
                    }
                }
            }
        }
        Op::InvokeModelWithResponseStream => {
            if let Ok(out) = client
                .invoke_model_with_response_stream()
                .model_id(model)
                .body(invoke_body())
                .send()
                .await
            {
                let mut events = out.body;
                while let Ok(Some(_)) = events.recv().await {
                    if fate == Fate::Abandoned {
                        break;
                    }
                }
            }
        }
    }
}

async fn wait_idle(h: &Harness) -> Metrics {
    for _ in 0..400 {
        let m = h.metrics().await;
        if m.value("bedrock_in_flight_requests", &[]) == 0.0 {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("requests still in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_token_is_counted_exactly_once_under_load_and_faults() {
    const CLIENTS: u64 = 32;
    const CALLS_EACH: u64 = 128;
    let h = Harness::start().await;
    let url = h.proxy.url();
    let calls: Arc<std::sync::Mutex<BTreeMap<(Op, Fate), u64>>> = Arc::default();
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let client = sdk_client(&url, Some(&format!("load-{}", c % 6)));
        let calls = calls.clone();
        let next = next.clone();
        workers.spawn(async move {
            for _ in 0..CALLS_EACH {
                let n = next.fetch_add(1, Ordering::Relaxed);
                // A fixed, well-mixed schedule: every (operation, fate) pair occurs.
                let op = [
                    Op::Converse,
                    Op::ConverseStream,
                    Op::InvokeModel,
                    Op::InvokeModelWithResponseStream,
                ][(n % 4) as usize];
                let fate = FATES[((n / 4) % FATES.len() as u64) as usize];
                let model = MODELS[((n / 7) % MODELS.len() as u64) as usize];
                let prompt = format!(
                    "[[sim input={} output={} cache_read={} chunks=4 {}]] call {n}",
                    50 + n % 97,
                    10 + n % 31,
                    if n.is_multiple_of(5) { 64 } else { 0 },
                    fate.directive(op)
                );
                one_call(&client, op, model, prompt, fate).await;
                *calls.lock().unwrap().entry((op, fate)).or_default() += 1;
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r.unwrap();
    }
    let m = wait_idle(&h).await;
    let elapsed = started.elapsed();
    let calls = calls.lock().unwrap().clone();
    let total: u64 = calls.values().sum();
    assert_eq!(total, CLIENTS * CALLS_EACH);

    // Every call made is one request counted, per operation.
    assert_eq!(m.requests(&[]), total);
    for op in [
        Op::Converse,
        Op::ConverseStream,
        Op::InvokeModel,
        Op::InvokeModelWithResponseStream,
    ] {
        let made: u64 = calls
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(m.requests(&[("operation", op.name())]), made, "{op:?}");
    }
    // Every token the simulator reported is counted, none twice, none invented.
    let sim = h.simulator.stats();
    let mut lost = 0i64;
    for kind in ["input", "output", "cache_read", "cache_write"] {
        let truth: u64 = sim
            .tokens
            .iter()
            .filter(|((_, k), _)| *k == kind)
            .map(|(_, n)| *n)
            .sum();
        let counted = m.value("bedrock_tokens_total", &[("type", kind)]) as u64;
        lost += truth as i64 - counted as i64;
        assert_eq!(counted, truth, "{kind} tokens");
    }
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
    assert_eq!(sim.signatures_invalid, 0);
    let clean: u64 = calls
        .iter()
        .filter(|((_, f), _)| *f == Fate::Clean)
        .map(|(_, n)| n)
        .sum();
    let faults = total - clean;
    eprintln!(
        "exact accounting: {total} calls ({faults} with a fault or abandoned) by {CLIENTS} clients in {:.1} s; \
         {} input / {} output tokens; tokens lost: {lost}",
        elapsed.as_secs_f64(),
        m.value("bedrock_tokens_total", &[("type", "input")]),
        m.value("bedrock_tokens_total", &[("type", "output")]),
    );
}

#[tokio::test]
async fn upstream_faults_end_cleanly_and_are_counted() {
    let h = Harness::start_with(|c| c.upstream_idle_timeout = Duration::from_millis(300)).await;
    let client = h.client("faults");
    let model = MODELS[0];

    // A stream whose upstream goes silent past the idle timeout is cut and recorded.
    let out = client
        .converse_stream()
        .model_id(model)
        .messages(user_message("[[sim chunks=4 gap_ms=3000]]"))
        .send()
        .await
        .unwrap();
    let mut events = out.stream;
    let mut result = Ok(Some(()));
    while let Ok(Some(_)) = &result {
        result = events.recv().await.map(|e| e.map(|_| ()));
    }
    assert!(result.is_err(), "the client sees the stream cut off");

    // Malformed JSON: passed on untouched, its usage counted missing.
    let err = client
        .converse()
        .model_id(model)
        .messages(user_message("[[sim fault=malformed]]"))
        .send()
        .await
        .unwrap_err();
    // The client got Bedrock's 200 and its truncated body byte for byte; its SDK, not the
    // proxy, is what failed to read it.
    let raw = err.raw_response().expect("a response reached the client");
    assert_eq!(raw.status().as_u16(), 200, "{err:?}");
    assert_eq!(raw.body().bytes(), Some(&b"{\"output\": "[..]), "{err:?}");
    let SdkError::ServiceError(service) = &err else {
        panic!("not the SDK failing to read a response: {err:?}");
    };
    let unreadable = service.err();
    assert_eq!(unreadable.code(), None, "{err:?}");
    assert_eq!(
        std::error::Error::source(unreadable).map(ToString::to_string),
        Some("Error at offset 11: unexpected end of stream".to_owned()),
        "{err:?}"
    );

    // The connection closes before a status line: 502.
    let err = client
        .converse()
        .model_id(model)
        .messages(user_message("[[sim fault=drop]]"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InternalServerException"), "{err:?}");

    let m = wait_idle(&h).await;
    assert_eq!(
        m.value(
            "bedrock_usage_missing_total",
            &[
                ("operation", "ConverseStream"),
                ("reason", "upstream_error")
            ]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "bedrock_usage_missing_total",
            &[("operation", "Converse"), ("reason", "unparseable")]
        ),
        1.0
    );
    assert_eq!(m.requests(&[("status", "502")]), 1);
    assert_eq!(m.requests(&[]), 3);
}

/// Reads from a raw connection until it closes or `limit` passes.
async fn read_until_closed(conn: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn client_faults_are_bounded_and_counted() {
    let h = Harness::start_with(|c| {
        c.region = Some("us-east-1".into());
        c.client_header_timeout = Duration::from_millis(300);
        c.client_body_timeout = Duration::from_millis(300);
    })
    .await;
    let addr = h.proxy.addr;
    let path = "/model/amazon.nova-micro-v1:0/converse";

    // Slowloris: headers that never finish; the connection is closed.
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(format!("POST {path} HTTP/1.1\r\nhost: meter\r\n").as_bytes())
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(closed, "a request whose headers never end is cut off");

    // A body that stalls: 408 RequestTimeoutException.
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        format!("POST {path} HTTP/1.1\r\nhost: meter\r\ncontent-length: 100\r\n\r\n{{\"messages\"")
            .as_bytes(),
    )
    .await
    .unwrap();
    let (answer, _) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-amzn-errortype: requesttimeoutexception"),
        "{answer}"
    );

    // A body cut short by the client closing: counted, never forwarded.
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(
        format!("POST {path} HTTP/1.1\r\nhost: meter\r\ncontent-length: 100\r\n\r\n{{\"mess")
            .as_bytes(),
    )
    .await
    .unwrap();
    conn.shutdown().await.unwrap();
    let (answer, closed) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(closed, "{answer}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let mut head_lines = head.lines();
    assert_eq!(
        head_lines.next(),
        Some("HTTP/1.1 400 Bad Request"),
        "{answer}"
    );
    let headers: Vec<String> = head_lines
        .map(str::to_ascii_lowercase)
        .filter(|h| !h.starts_with("date: "))
        .collect();
    assert_eq!(
        headers,
        [
            "content-type: application/json",
            "x-amzn-errortype: validationexception",
            "content-length: 82",
        ],
        "{answer}"
    );
    assert_eq!(
        body,
        r#"{"message":"request body could not be read: error reading a body from connection"}"#
    );

    // HTTP/1.1 pipelining: two requests in one write, two answers in order.
    let body = r#"{"messages":[{"role":"user","content":[{"text":"[[sim input=5 output=6]]"}]}]}"#;
    let one = format!(
        "POST {path} HTTP/1.1\r\nhost: meter\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(format!("{one}{one}").as_bytes())
        .await
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 8192];
    while seen.matches("\"outputTokens\":6").count() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(seen.matches("HTTP/1.1 200 OK").count(), 2, "{seen}");

    let m = wait_idle(&h).await;
    // The slowloris request never became one (its headers never ended); each of the others is
    // counted once, with the status its client got.
    let converse = [
        ("app", "unknown"),
        ("model", MODELS[0]),
        ("operation", "Converse"),
    ];
    for (status, n) in [("408", 1), ("400", 1), ("200", 2)] {
        let labels = [converse.as_slice(), &[("status", status)]].concat();
        assert_eq!(m.requests(&labels), n, "{status}");
    }
    assert_eq!(m.requests(&[]), 4);
    assert_eq!(m.tokens("unknown", MODELS[0], "output"), 12);
    assert_eq!(m.value("bedrock_usage_missing_total", &[]), 0.0);
    // The stalled and the truncated bodies never reached the upstream.
    assert_eq!(h.simulator.stats().requests, 2);
}

#[tokio::test]
async fn the_in_flight_cap_answers_throttling_and_recovers() {
    let h = Harness::start_with(|c| c.max_in_flight = 2).await;
    let slow = |app: &'static str| {
        let client = h.client(app);
        async move {
            client
                .converse()
                .model_id(MODELS[0])
                .messages(user_message("[[sim delay_ms=1500 output=4]]"))
                .send()
                .await
        }
    };
    let (a, b) = (tokio::spawn(slow("a")), tokio::spawn(slow("b")));
    // Both slow calls are in flight before the third is sent.
    for _ in 0..200 {
        if h.metrics().await.value("bedrock_in_flight_requests", &[]) == 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = h
        .client("c")
        .converse()
        .model_id(MODELS[0])
        .messages(user_message("hi"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_throttling_exception(), "{err:?}");
    assert!(err.message().unwrap().contains("limit 2"), "{err:?}");
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    // Capacity is back once the slow calls are done.
    h.client("c")
        .converse()
        .model_id(MODELS[0])
        .messages(user_message("[[sim output=1]]"))
        .send()
        .await
        .unwrap();
    let m = wait_idle(&h).await;
    assert_eq!(m.value("bedrock_proxy_throttled_total", &[]), 1.0);
    assert_eq!(m.requests(&[("app", "c"), ("status", "429")]), 1);
    assert_eq!(h.simulator.stats().requests, 3);
}

#[tokio::test]
async fn sigterm_turns_unready_lets_streams_finish_records_them_and_exits_0() {
    let creds = proxy_credentials();
    let simulator = Simulator::start(SimulatorConfig {
        listen: loopback(),
        expect_credentials: Some(creds.clone()),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    let ServeBinary {
        mut child,
        port,
        admin,
    } = serve_binary(
        &simulator.url(),
        &[
            "--ledger",
            ledger.to_str().unwrap(),
            "--shutdown-delay",
            "1",
            "--drain-timeout",
            "10",
        ],
    )
    .await;

    // A stream of about 2 s is under way when SIGTERM arrives.
    let client = sdk_client(&format!("http://127.0.0.1:{port}"), Some("draining"));
    let out = client
        .converse_stream()
        .model_id(MODELS[0])
        .messages(user_message(
            "[[sim input=40 output=30 chunks=6 gap_ms=300]]",
        ))
        .send()
        .await
        .unwrap();
    let mut events = out.stream;
    assert!(events.recv().await.unwrap().is_some());
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Not ready as soon as the signal is handled, while the listeners still serve for the
    // shutdown delay: the first answer other than 200 is a 503.
    let deadline = Instant::now() + Duration::from_secs(20);
    let unready = loop {
        match http_get_status(&format!("{admin}/readyz")).await {
            Some(200) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => break other,
        }
    };
    assert_eq!(unready, Some(503));

    let mut output = 0;
    while let Some(e) = events.recv().await.unwrap() {
        if let aws_sdk_bedrockruntime::types::ConverseStreamOutput::Metadata(m) = e {
            output = m.usage().unwrap().output_tokens();
        }
    }
    assert_eq!(output, 30, "the stream finished during the drain");

    let exit = tokio::task::spawn_blocking(move || {
        let status = child.0.wait().unwrap();
        std::mem::forget(child);
        status
    })
    .await
    .unwrap();
    assert_eq!(exit.code(), Some(0));
    let lines = std::fs::read_to_string(&ledger).unwrap();
    let line: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    assert_eq!(line["app"], "draining");
    assert_eq!(line["tokens"]["output"], 30);
    assert_eq!(line["status"], 200);
}

#[tokio::test]
async fn an_upstream_that_never_accepts_hits_the_connect_timeout() {
    // A listener whose accept queue is full and never drained: the kernel drops further SYNs,
    // so a new connection hangs in connect, as it does behind a black-holing firewall.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(loopback()).unwrap();
    let listener = socket.listen(1).unwrap();
    let upstream = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        if let Ok(Ok(conn)) =
            tokio::time::timeout(Duration::from_millis(200), s.connect(upstream)).await
        {
            fillers.push(conn);
        }
    }
    let proxy = start_proxy(&format!("http://{upstream}"), |c| {
        c.connect_timeout = Duration::from_millis(300);
        c.upstream_timeout = Duration::from_secs(20);
    })
    .await;
    let started = Instant::now();
    let err = sdk_client(&proxy.url(), Some("blackhole"))
        .converse()
        .model_id(MODELS[0])
        .messages(user_message("hi"))
        .send()
        .await
        .unwrap_err();
    let waited = started.elapsed();
    // The proxy's 502, in the AWS error shape.
    let raw = err.raw_response().expect("the proxy answered");
    assert_eq!(raw.status().as_u16(), 502, "{err:?}");
    assert_eq!(
        raw.headers().get("x-amzn-errortype"),
        Some("InternalServerException")
    );
    assert_eq!(raw.headers().get("content-type"), Some("application/json"));
    let message = "the upstream Bedrock endpoint is unreachable: client error (Connect): \
                   tcp connect error: deadline has elapsed";
    assert_eq!(
        raw.body().bytes(),
        Some(
            serde_json::json!({ "message": message })
                .to_string()
                .as_bytes()
        )
    );
    let err = err.into_service_error();
    assert!(err.is_internal_server_exception(), "{err:?}");
    assert_eq!(err.message(), Some(message));
    // The connect timeout ended it ("deadline has elapsed" while connecting), not the 20 s
    // first-byte timeout: it took at least the 300 ms and nowhere near 20 s.
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    let m = scrape_metrics(&proxy).await;
    assert_eq!(m.requests(&[("app", "blackhole"), ("status", "502")]), 1);
    drop((listener, fillers));
}
