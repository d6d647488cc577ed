//! Budgets and rate limits end to end: real `redis-server` processes started on loopback
//! ports, meter replicas in front of one simulator, and the real SDK. The simulator's token
//! counts are the ground truth of what Bedrock billed.
//!
//! `redis-server` comes from Debian's package (`.ci/run` installs it); outside CI a machine
//! without it skips these tests with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::types::InferenceConfiguration;
use bedrock_meter::config::LimitsConfig;
use bedrock_meter::pricing::{Call, Tier, Usage};
use bedrock_meter::proxy::limits::RedisOptions;
use bedrock_meter::proxy::limits::file::LimitsFile;
use bedrock_meter::server::Running;
use bedrock_meter::simulator::Simulator;
use common::*;
use futures_util::StreamExt;

const MICRO: &str = "amazon.nova-micro-v1:0";
/// Every call's usage: the prompt is padded so that the meter's estimate of its input (bytes
/// / 3) is above the 400 tokens the simulator reports, as it is for real text.
const INPUT: u64 = 400;
const OUTPUT: u64 = 100;

// ------------------------------------------------------------------------- redis-server

/// A `redis-server` on a loopback port, killed when dropped.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    /// `None` when redis-server is not installed (outside CI; in CI it must be).
    fn start() -> Option<Redis> {
        let mut redis = Redis {
            port: free_port(),
            child: None,
        };
        redis.restart()?;
        Some(redis)
    }

    fn restart(&mut self) -> Option<()> {
        let spawned = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "redis-server is needed in CI (.ci/run installs it): {e}"
                );
                eprintln!("skipped: redis-server is not installed");
                return None;
            }
        };
        self.child = Some(Child(child));
        for _ in 0..200 {
            if self.ping() {
                return Some(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.port)))
        else {
            return false;
        };
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn kill(&mut self) {
        self.child = None;
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Every field of every counter of `app`, by key.
    async fn counters(&self, app: &str) -> Vec<(String, Vec<(String, i64)>)> {
        let mut conn = self.conn().await;
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("bedrock-meter:limit:{app}:*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.sort();
        let mut out = Vec::new();
        for key in keys {
            let mut fields: Vec<(String, i64)> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            fields.sort();
            out.push((key, fields));
        }
        out
    }
}

// ----------------------------------------------------------------------------- helpers

fn limits(text: &str, redis: Option<&Redis>, fail_closed: bool) -> LimitsConfig {
    LimitsConfig {
        file: LimitsFile::parse(text, "limits.toml").unwrap(),
        path: None,
        redis: redis.map(|r| RedisOptions {
            url: r.url(),
            timeout: Duration::from_millis(250),
        }),
        fail_closed,
    }
}

async fn replica(sim: &Simulator, config: LimitsConfig) -> Running {
    start_proxy(&sim.url(), |c| c.limits = Some(config)).await
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// 429 ThrottlingException, with its message and Retry-After.
    Throttled(String, Option<String>),
    Failed(u16, String, String),
}

fn prompt() -> String {
    format!("[[sim input={INPUT} output={OUTPUT}]] {}", "x".repeat(1300))
}

async fn converse(client: &Client) -> Outcome {
    let result = client
        .converse()
        .model_id(MICRO)
        .messages(user_message(&prompt()))
        .inference_config(InferenceConfiguration::builder().max_tokens(100).build())
        .send()
        .await;
    match result {
        Ok(_) => Outcome::Ok,
        Err(e) => {
            let raw = e.raw_response().unwrap();
            let status = raw.status().as_u16();
            let retry_after = raw.headers().get("retry-after").map(str::to_owned);
            let code = e.code().unwrap_or_default().to_owned();
            let message = e.message().unwrap_or_default().to_owned();
            if status == 429 && code == "ThrottlingException" {
                Outcome::Throttled(message, retry_after)
            } else {
                Outcome::Failed(status, code, message)
            }
        }
    }
}

/// What `input` and `output` tokens of Nova Micro cost, in pico-dollars, on the shipped card.
fn pico(input: u64, output: u64) -> u64 {
    let card = shipped_card();
    let resolved = card
        .resolve(&Call {
            model_id: MICRO,
            region: Some("us-east-1"),
            latency_optimized: false,
            at: SystemTime::now(),
        })
        .unwrap();
    let usage = Usage {
        input,
        output,
        ..Usage::default()
    };
    resolved.quote(&usage, Tier::Default).cost.unwrap().total()
}

/// What the simulator billed: its token counts priced.
fn billed(sim: &Simulator) -> (u64, u64, u64) {
    let stats = sim.stats();
    let input = stats.token_count(MICRO, "input");
    let output = stats.token_count(MICRO, "output");
    (input, output, pico(input, output))
}

async fn sum(replicas: &[Running], name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for r in replicas {
        total += scrape_metrics(r).await.value(name, labels);
    }
    total
}

/// Waits until every replica's reservations are settled in the store.
async fn settled(replicas: &[Running]) {
    for _ in 0..400 {
        if sum(replicas, "bedrock_limit_reservations_in_flight", &[]).await == 0.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("reservations never returned to 0");
}

/// Starts per-minute tests early in a minute, so one run stays within one window.
async fn early_in_a_minute() {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let into = secs % 60.0;
    if into > 35.0 {
        tokio::time::sleep(Duration::from_secs_f64(60.0 - into + 0.2)).await;
    }
}

/// Runs `n` calls, `concurrency` at a time, spread over the replicas' clients.
async fn run(clients: &[Client], n: usize, concurrency: usize) -> Vec<Outcome> {
    let clients = Arc::new(clients.to_vec());
    futures_util::stream::iter(0..n)
        .map(|i| {
            let clients = clients.clone();
            async move { converse(&clients[i % clients.len()]).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

fn count_ok(outcomes: &[Outcome]) -> usize {
    outcomes.iter().filter(|o| **o == Outcome::Ok).count()
}

// ------------------------------------------------------------------------------- tests

/// Three replicas, one Redis, one app's small monthly budget and 300 calls 32 at a time:
/// what Bedrock billed stays within the budget, every refusal is AWS's 429, the replicas'
/// cost metrics sum to exactly what was billed, and no reservation is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_hold_one_budget_under_concurrency() {
    let Some(redis) = Redis::start() else { return };
    let sim = Harness::start().await.simulator;
    let budget_usd = "0.005";
    let budget_pico: u64 = 5_000_000_000;
    let file = format!("[apps.shop]\nmonthly_usd = \"{budget_usd}\"\n");
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica(&sim, limits(&file, Some(&redis), false)).await);
    }
    let clients: Vec<Client> = replicas
        .iter()
        .map(|r| sdk_client(&r.url(), Some("shop")))
        .collect();

    let outcomes = run(&clients, 300, 32).await;
    settled(&replicas).await;

    let admitted = count_ok(&outcomes);
    let refused: Vec<&Outcome> = outcomes.iter().filter(|o| **o != Outcome::Ok).collect();
    assert!(admitted > 0 && !refused.is_empty(), "{admitted} admitted");
    for o in &refused {
        match o {
            Outcome::Throttled(message, retry_after) => {
                assert!(
                    message.starts_with(
                        "Rate exceeded: app \"shop\" is at its monthly_usd limit of $0.005000 (used $"
                    ),
                    "{message}"
                );
                assert!(message.contains("; it resets at "), "{message}");
                let secs: u64 = retry_after.as_deref().unwrap().parse().unwrap();
                assert!(secs > 0 && secs <= 31 * 86_400);
            }
            other => panic!("a refusal that is not AWS's 429: {other:?}"),
        }
    }

    // Ground truth: the simulator saw exactly the admitted calls, and billed within budget.
    let stats = sim.stats();
    assert_eq!(stats.requests, admitted as u64);
    let (input, output, billed_pico) = billed(&sim);
    assert_eq!(
        (input, output),
        (INPUT * admitted as u64, OUTPUT * admitted as u64)
    );
    assert!(
        billed_pico <= budget_pico,
        "billed {billed_pico} pico-dollars over a {budget_pico} budget"
    );
    // Not refused too early: at a refusal at most the 32 calls in flight held reservations,
    // each at most 3× its cost (input estimated high, the dearest tier's price).
    let per_call = pico(INPUT, OUTPUT);
    assert!(
        billed_pico + 96 * per_call > budget_pico,
        "billed only {billed_pico} of {budget_pico}"
    );

    // The replicas' metrics sum to the ground truth exactly.
    let mut metered = 0u64;
    for r in &replicas {
        let m = scrape_metrics(r).await;
        metered += m.cost_pico("shop", MICRO, "input") + m.cost_pico("shop", MICRO, "output");
    }
    assert_eq!(metered, billed_pico);
    let refusals = sum(
        &replicas,
        "bedrock_limit_refusals_total",
        &[("app", "shop"), ("limit", "monthly_usd")],
    )
    .await;
    assert_eq!(refusals as usize, refused.len());
    let throttled = sum(
        &replicas,
        "bedrock_requests_total",
        &[("app", "shop"), ("status", "429")],
    )
    .await;
    assert_eq!(throttled as usize, refused.len());

    // Redis holds the settled spend (each call rounded up to a nano-dollar) and no
    // reservation.
    let counters = redis.counters("shop").await;
    assert_eq!(counters.len(), 1, "{counters:?}");
    let (key, fields) = &counters[0];
    assert!(
        key.starts_with("bedrock-meter:limit:shop:*:monthly_usd:"),
        "{key}"
    );
    assert_eq!(
        fields,
        &vec![(
            "spent".to_owned(),
            (per_call.div_ceil(1000) * admitted as u64) as i64
        )]
    );
}

/// A tokens-per-minute limit across three replicas admits no more tokens than the limit, and
/// refuses only within a couple of requests' worth of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_per_minute_hold_across_three_replicas() {
    let Some(redis) = Redis::start() else { return };
    let sim = Harness::start().await.simulator;
    let limit = 20_000u64;
    let file = format!("[default]\ntokens_per_minute = {limit}\n");
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica(&sim, limits(&file, Some(&redis), false)).await);
    }
    let clients: Vec<Client> = replicas
        .iter()
        .map(|r| sdk_client(&r.url(), Some("agent")))
        .collect();
    early_in_a_minute().await;
    let outcomes = run(&clients, 80, 8).await;
    settled(&replicas).await;
    let admitted = count_ok(&outcomes) as u64;
    let tokens = sim.stats().token_count(MICRO, "input") + sim.stats().token_count(MICRO, "output");
    assert_eq!(tokens, admitted * (INPUT + OUTPUT));
    // Each call reserves its estimate (its body's bytes / 3) plus its 100-token ceiling.
    let request = INPUT + OUTPUT;
    assert!(
        tokens <= limit,
        "{tokens} tokens admitted under a {limit} limit"
    );
    assert!(
        tokens + 2 * request > limit,
        "only {tokens} of {limit} admitted"
    );
    for o in outcomes.iter().filter(|o| **o != Outcome::Ok) {
        assert!(
            matches!(o, Outcome::Throttled(m, _) if m.starts_with("Rate exceeded: app \"agent\" is at its tokens_per_minute limit of 20000 tokens")),
            "{o:?}"
        );
    }
    let counters = redis.counters("agent").await;
    assert_eq!(counters.len(), 1);
    assert_eq!(counters[0].1, vec![("spent".to_owned(), tokens as i64)]);
}

/// Redis killed mid-run: a fail-open replica keeps forwarding and counts the failure, a
/// fail-closed one refuses with AWS's 503; once Redis is back, the spend made during the outage
/// is settled and enforcement resumes without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_redis_fails_open_or_closed_and_recovers() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let sim = Harness::start().await.simulator;
    let file = "[default]\nrequests_per_minute = 5\n";
    let open = replica(&sim, limits(file, Some(&redis), false)).await;
    let closed = replica(&sim, limits(file, Some(&redis), true)).await;
    let (to_open, to_closed) = (
        sdk_client(&open.url(), Some("ops")),
        sdk_client(&closed.url(), Some("ops")),
    );
    early_in_a_minute().await;
    assert_eq!(converse(&to_open).await, Outcome::Ok);
    assert_eq!(converse(&to_closed).await, Outcome::Ok);

    redis.kill();
    assert_eq!(converse(&to_open).await, Outcome::Ok);
    match converse(&to_closed).await {
        Outcome::Failed(503, code, message) => {
            assert_eq!(code, "ServiceUnavailableException");
            assert!(
                message.contains("limits store does not answer"),
                "{message}"
            );
        }
        other => panic!("fail-closed answered {other:?}"),
    }
    let unavailable = scrape_metrics(&open)
        .await
        .value("bedrock_limits_unavailable_total", &[]);
    assert!(unavailable >= 1.0);
    let closed_503 = scrape_metrics(&closed).await.requests(&[("status", "503")]);
    assert_eq!(closed_503, 1);

    // Back (empty: no persistence). The call forwarded unchecked during the outage is settled
    // as soon as Redis answers.
    redis.restart().unwrap();
    let mut spent = Vec::new();
    for _ in 0..200 {
        spent = redis.counters("ops").await;
        if !spent.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(spent.len(), 1, "{spent:?}");
    assert_eq!(spent[0].1, vec![("spent".to_owned(), 1)]);
    // Enforcement resumes: 4 more calls fit in the 5 per minute, the next is refused.
    let mut admitted = 0;
    let mut outcome = Outcome::Ok;
    for i in 0..20 {
        let client = if i % 2 == 0 { &to_open } else { &to_closed };
        outcome = converse(client).await;
        match &outcome {
            Outcome::Ok => admitted += 1,
            // The connection is re-established lazily: the first calls may still see it down.
            Outcome::Failed(503, ..) => tokio::time::sleep(Duration::from_millis(100)).await,
            Outcome::Throttled(..) => break,
            Outcome::Failed(..) => panic!("{outcome:?}"),
        }
    }
    assert!(matches!(outcome, Outcome::Throttled(..)), "{outcome:?}");
    assert_eq!(admitted, 4);
    settled(&[open, closed]).await;
}

/// A stream the client abandons after its first event settles at its exact cost (the meter
/// reads the rest of it for the usage), and its reservation is taken back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_cut_by_the_client_settles_at_its_exact_cost() {
    let Some(redis) = Redis::start() else { return };
    let sim = Harness::start().await.simulator;
    let meter = replica(
        &sim,
        limits("[default]\ndaily_usd = 1\n", Some(&redis), false),
    )
    .await;
    let client = sdk_client(&meter.url(), Some("voice"));
    let mut out = client
        .converse_stream()
        .model_id(MICRO)
        .messages(user_message(&format!(
            "[[sim input={INPUT} output={OUTPUT} chunks=10 gap_ms=50]] {}",
            "x".repeat(1300)
        )))
        .send()
        .await
        .unwrap();
    assert!(out.stream.recv().await.unwrap().is_some());
    drop(out);
    drop(client);
    let meters = [meter];
    settled(&meters).await;
    // Recorded once the meter has read the rest of the stream.
    for _ in 0..200 {
        if scrape_metrics(&meters[0])
            .await
            .requests(&[("app", "voice")])
            == 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    settled(&meters).await;
    let (_, _, billed_pico) = billed(&sim);
    assert_eq!(billed_pico, pico(INPUT, OUTPUT));
    let counters = redis.counters("voice").await;
    assert_eq!(counters.len(), 1);
    assert_eq!(
        counters[0].1,
        vec![("spent".to_owned(), billed_pico.div_ceil(1000) as i64)]
    );
}

/// Without Redis the same limits hold in one process: a request limit refuses before
/// forwarding, the refusal is metered, and a dollar budget's spend is exact.
#[tokio::test]
async fn in_process_limits_refuse_before_forwarding() {
    let sim = Harness::start().await.simulator;
    let file = "[default]\nrequests_per_minute = 3\nmonthly_usd = 10\n";
    let meter = replica(&sim, limits(file, None, false)).await;
    let client = sdk_client(&meter.url(), Some("batch"));
    early_in_a_minute().await;
    for _ in 0..3 {
        assert_eq!(converse(&client).await, Outcome::Ok);
    }
    match converse(&client).await {
        Outcome::Throttled(message, _) => assert!(
            message.starts_with(
                "Rate exceeded: app \"batch\" is at its requests_per_minute limit of 3 requests (used 3 requests, reserved by calls in flight 0 requests, this call needs up to 1 requests)"
            ),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.stats().requests, 3);
    let m = scrape_metrics(&meter).await;
    assert_eq!(m.requests(&[("app", "batch"), ("status", "429")]), 1);
    assert_eq!(
        m.value(
            "bedrock_limit_refusals_total",
            &[("app", "batch"), ("limit", "requests_per_minute")]
        ),
        1.0
    );
    // The budget's spend as the refused call saw it: three calls, exactly.
    let spent = m.value(
        "bedrock_limit_spent",
        &[
            ("app", "batch"),
            ("scope", "app"),
            ("limit", "requests_per_minute"),
        ],
    );
    assert_eq!(spent, 3.0);
    assert_eq!(m.value("bedrock_limit_reservations_in_flight", &[]), 0.0);
    assert_eq!(
        m.value(
            "bedrock_limit_value",
            &[("app", "batch"), ("limit", "monthly_usd")]
        ),
        10.0
    );
}

/// The limits file reloads on change: a new limit applies to the next call, and a broken file
/// is refused (counted) while the limits in force stay.
#[tokio::test]
async fn the_limits_file_reloads_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.toml");
    std::fs::write(&path, "[default]\nrequests_per_minute = 1000\n").unwrap();
    let config = LimitsConfig {
        file: LimitsFile::load(&path).unwrap(),
        path: Some(path.clone()),
        redis: None,
        fail_closed: false,
    };
    let h = Harness::start_with(|c| {
        c.limits = Some(config);
        c.reload_interval = Duration::from_millis(50);
    })
    .await;
    let client = h.client("nightly");
    early_in_a_minute().await;
    assert_eq!(converse(&client).await, Outcome::Ok);

    // Lowered to what the app has used: the next call is refused.
    write_atomically(&path, "[apps.nightly]\nrequests_per_minute = 1\n");
    wait_for(&h, "bedrock_limits_reloads_total", &[("result", "ok")], 1.0).await;
    assert!(matches!(converse(&client).await, Outcome::Throttled(..)));

    // A broken file: refused at its line, the limit of 1 stays.
    write_atomically(&path, "[apps.nightly]\nrequests_per_minute = \"many\"\n");
    wait_for(
        &h,
        "bedrock_limits_reloads_total",
        &[("result", "error")],
        1.0,
    )
    .await;
    assert!(matches!(converse(&client).await, Outcome::Throttled(..)));
    assert_eq!(h.simulator.stats().requests, 1);
}
