//! proxy-bench: bedrock-meter against nginx `proxy_pass` and against no hop at all, in one run.
//!
//! Driven by `bench/proxy-bench.sh`, which starts the simulator, bedrock-meter and nginx and
//! passes their addresses and process ids. Method: bench/README.md; results: bench/RESULTS.md.
//!
//! `proxy-bench run ...` measures every scenario and writes a Markdown section;
//! `proxy-bench soak ...` drives the meter at a fixed rate for a long time and samples its RSS.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, Error>;
/// Plain HTTP to most hops; HTTPS (HTTP/1.1 by ALPN) to the meter's TLS listener, trusting
/// the bench's own CA. Pooled keep-alive either way, as SDKs do.
type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

const MODEL: &str = "amazon.nova-micro-v1:0";

// ---------------------------------------------------------------------------------------------
// Arguments

struct Args(HashMap<String, String>);

impl Args {
    fn parse() -> Res<(String, Args)> {
        let mut it = std::env::args().skip(1);
        let mode = it
            .next()
            .ok_or("usage: proxy-bench run|soak --key value ...")?;
        let mut map = HashMap::new();
        while let Some(k) = it.next() {
            let key = k.strip_prefix("--").ok_or(format!("unexpected {k:?}"))?;
            let value = it.next().ok_or(format!("--{key} needs a value"))?;
            map.insert(key.to_owned(), value);
        }
        Ok((mode, Args(map)))
    }

    fn str(&self, key: &str) -> Res<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("missing --{key}").into())
    }

    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Res<T> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("bad --{key} {v:?}").into()),
        }
    }

    fn pids(&self, key: &str) -> Res<Vec<u32>> {
        self.str(key)?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| format!("bad pid {s:?}").into()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

fn client(max_idle: usize, ca: Option<&str>) -> Res<HttpClient> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        for cert in CertificateDer::pem_file_iter(path)? {
            roots.add(cert?)?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle)
        .pool_idle_timeout(Duration::from_secs(120))
        .build(https))
}

/// A Converse body of exactly `size` bytes carrying a simulator directive.
fn converse_body(directive: &str, size: usize) -> Bytes {
    let head = format!(r#"{{"messages":[{{"role":"user","content":[{{"text":"{directive} "#);
    let tail = r#""}]}]}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut s = head;
    for i in 0..pad {
        s.push(char::from(b'a' + (i % 26) as u8));
    }
    s.push_str(tail);
    Bytes::from(s)
}

#[derive(Clone)]
struct Target {
    base: String,
    op: &'static str,
    body: Bytes,
    app: String,
    model: String,
    /// A path of another API family (`/openai/v1/chat/completions`); else `/model/{model}/{op}`.
    path: Option<&'static str>,
}

impl Target {
    /// `addr` is `IP:PORT` (plain HTTP) or a URL with its scheme.
    fn new(addr: &str, op: &'static str, body: Bytes) -> Self {
        Target {
            base: if addr.starts_with("http") {
                addr.to_owned()
            } else {
                format!("http://{addr}")
            },
            op,
            body,
            app: "bench".into(),
            model: MODEL.into(),
            path: None,
        }
    }

    fn request(&self) -> Res<http::Request<Full<Bytes>>> {
        let model = self.model.replace(':', "%3A");
        let url = match self.path {
            Some(path) => format!("{}{path}", self.base),
            None => format!("{}/model/{model}/{}", self.base, self.op),
        };
        Ok(http::Request::post(url)
            .header("content-type", "application/json")
            .header("x-bedrock-meter-app", &self.app)
            .body(Full::new(self.body.clone()))?)
    }
}

/// One call; returns the arrival time of the first body chunk and of the end.
async fn call(client: &HttpClient, target: &Target) -> Res<(Instant, Instant)> {
    let resp = client.request(target.request()?).await?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()).into());
    }
    let mut body = resp.into_body();
    let mut first = None;
    while let Some(frame) = body.frame().await {
        if frame?.is_data() && first.is_none() {
            first = Some(Instant::now());
        }
    }
    let end = Instant::now();
    Ok((first.unwrap_or(end), end))
}

/// A stream call; returns the arrival time of every complete event-stream message.
async fn stream_call(client: &HttpClient, target: &Target) -> Res<Vec<Instant>> {
    let resp = client.request(target.request()?).await?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()).into());
    }
    let mut body = resp.into_body();
    let mut arrivals = Vec::new();
    let mut pending = 0usize; // bytes of the current message still to come
    let mut prelude: Vec<u8> = Vec::with_capacity(4);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let now = Instant::now();
        let mut rest: &[u8] = &data;
        while !rest.is_empty() {
            if pending == 0 {
                let need = 4 - prelude.len();
                let take = need.min(rest.len());
                prelude.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if prelude.len() == 4 {
                    let total =
                        u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]);
                    pending = (total as usize).saturating_sub(4).max(1);
                    prelude.clear();
                }
            } else {
                let take = pending.min(rest.len());
                pending -= take;
                rest = &rest[take..];
                if pending == 0 {
                    arrivals.push(now);
                }
            }
        }
    }
    Ok(arrivals)
}

// ---------------------------------------------------------------------------------------------
// Load shapes

#[derive(Default)]
struct Samples {
    /// Microseconds from the intended send time to the end of the response.
    latency: Vec<u32>,
    /// Microseconds from the intended send time to the first body byte.
    ttfb: Vec<u32>,
    errors: u64,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Open loop: requests leave on a fixed schedule whatever the responses do; latency counts
/// from the scheduled time, so a stalled server is charged for the requests it delayed. The
/// schedule is kept by an OS thread (sub-100 µs wake-ups; tokio's timer has 1 ms ticks).
async fn open_loop(client: &HttpClient, target: &Target, rate: f64, secs: f64) -> Samples {
    let samples = Arc::new(Mutex::new(Samples::default()));
    let n = (rate * secs) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let handle = tokio::runtime::Handle::current();
    let (client, target2, samples2) = (client.clone(), target.clone(), samples.clone());
    let pacer = std::thread::spawn(move || {
        let mut tasks = Vec::with_capacity(n as usize);
        let start = Instant::now() + Duration::from_millis(5);
        for i in 0..n {
            let at = start + interval.mul_f64(i as f64);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            let (client, target, samples) = (client.clone(), target2.clone(), samples2.clone());
            tasks.push(handle.spawn(async move {
                let r = call(&client, &target).await;
                let mut s = match samples.lock() {
                    Ok(s) => s,
                    Err(p) => p.into_inner(),
                };
                match r {
                    Ok((first, end)) => {
                        s.latency.push(micros(end - at));
                        s.ttfb.push(micros(first - at));
                    }
                    Err(_) => s.errors += 1,
                }
            }));
        }
        tasks
    });
    let tasks = tokio::task::spawn_blocking(move || pacer.join())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    for t in tasks {
        let _ = t.await;
    }
    let mut s = match samples.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    std::mem::take(&mut *s)
}

/// Closed loop at saturation: `conns` callers, each sending its next request when the last
/// answered. Returns (completed, errors).
async fn closed_loop(client: &HttpClient, target: &Target, conns: usize, secs: f64) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..conns {
        let (client, target) = (client.clone(), target.clone());
        set.spawn(async move {
            let (mut ok, mut err) = (0u64, 0u64);
            while Instant::now() < deadline {
                match call(&client, &target).await {
                    Ok(_) => ok += 1,
                    Err(_) => err += 1,
                }
            }
            (ok, err)
        });
    }
    let (mut ok, mut err) = (0, 0);
    while let Some(r) = set.join_next().await {
        if let Ok((o, e)) = r {
            ok += o;
            err += e;
        }
    }
    (ok, err)
}

/// Streams opened on a fixed schedule; returns for each stream its message arrival offsets
/// from the scheduled start.
async fn stream_open_loop(
    client: &HttpClient,
    target: &Target,
    rate: f64,
    count: usize,
) -> (Vec<Vec<Duration>>, u64) {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(5);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..count {
        let at = start + interval.mul_f64(i as f64);
        let now = Instant::now();
        if at > now {
            // Streams are paced in whole milliseconds; each offset is taken from the send.
            tokio::time::sleep(at - now).await;
        }
        let (client, target) = (client.clone(), target.clone());
        set.spawn(async move {
            let sent = Instant::now();
            stream_call(&client, &target)
                .await
                .map(|a| a.into_iter().map(|t| t - sent).collect::<Vec<_>>())
        });
    }
    let (mut out, mut errors) = (Vec::new(), 0);
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(a)) => out.push(a),
            _ => errors += 1,
        }
    }
    (out, errors)
}

// ---------------------------------------------------------------------------------------------
// /proc

struct Cpu {
    pids: Vec<u32>,
    ticks: u64,
    at: Instant,
}

fn proc_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name's closing parenthesis; utime and stime are 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Whole-machine (busy, total) jiffies from /proc/stat.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

impl Cpu {
    fn start(pids: &[u32]) -> Cpu {
        Cpu {
            pids: pids.to_vec(),
            ticks: pids.iter().map(|p| proc_ticks(*p)).sum(),
            at: Instant::now(),
        }
    }

    /// (CPU seconds used, wall seconds) since start.
    fn stop(&self, clk_tck: f64) -> (f64, f64) {
        let ticks: u64 = self.pids.iter().map(|p| proc_ticks(*p)).sum();
        (
            ticks.saturating_sub(self.ticks) as f64 / clk_tck,
            self.at.elapsed().as_secs_f64(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)])
}

fn ratio(a: f64, b: f64) -> String {
    if b.abs() < 1e-9 || !a.is_finite() || !b.is_finite() {
        "–".into()
    } else {
        format!("{:.2}×", a / b)
    }
}

/// `histogram_quantile`: linear interpolation inside the bucket holding the rank, from the
/// cumulative bucket counts (upper bound, count); the first bucket starts at 0.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return f64::NAN;
    };
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let (mut lo, mut below) = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return lo;
            }
            let inside = count - below;
            return if inside <= 0.0 {
                le
            } else {
                lo + (le - lo) * (rank - below) / inside
            };
        }
        lo = le;
        below = count;
    }
    lo
}

/// Cumulative `bedrock_proxy_overhead_seconds` buckets of one operation from /metrics text.
fn overhead_buckets(text: &str, op: &str) -> Vec<(f64, f64)> {
    let prefix = format!("bedrock_proxy_overhead_seconds_bucket{{operation=\"{op}\",le=\"");
    let mut out: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

fn diff_buckets(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(le, c)| {
            let b = before.iter().find(|x| x.0 == le).map_or(0.0, |x| x.1);
            (le, c - b)
        })
        .collect()
}

async fn get_text(client: &HttpClient, url: &str) -> Res<(String, Duration)> {
    let start = Instant::now();
    let resp = client
        .request(http::Request::get(url).body(Full::new(Bytes::new()))?)
        .await?;
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((String::from_utf8_lossy(&body).into_owned(), start.elapsed()))
}

// ---------------------------------------------------------------------------------------------
// The run

struct Hop {
    name: &'static str,
    addr: String,
    /// Processes whose CPU is the hop's (empty for direct).
    pids: Vec<u32>,
}

struct Run {
    client: HttpClient,
    hops: Vec<Hop>,
    admin: String,
    clk_tck: f64,
    out: String,
    meter_pid: u32,
    nginx_pids: Vec<u32>,
}

#[derive(Default, Clone)]
struct Tally {
    latency: Vec<u32>,
    ttfb: Vec<u32>,
    errors: u64,
    cpu: f64,
    requests: f64,
    wall: f64,
    busy: f64,
    total: f64,
}

impl Run {
    fn line(&mut self, s: &str) {
        println!("{s}");
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// Non-streaming Converse at a fixed rate, the hops interleaved round by round.
    /// Returns per hop (added p50, added p99, added p99.9, CPU µs per request).
    async fn fixed_rate(&mut self, rate: f64, secs: f64, rounds: usize) -> Res<Vec<Figures>> {
        let body = converse_body("[[sim input=500 output=100]]", 2048);
        let mut tallies = vec![Tally::default(); self.hops.len()];
        let before = get_text(&self.client, &self.admin).await?.0;
        for round in 0..rounds {
            for (i, hop) in self.hops.iter().enumerate() {
                let target = Target::new(&hop.addr, "converse", body.clone());
                let cpu = Cpu::start(&hop.pids);
                let machine = machine_jiffies();
                let s = open_loop(&self.client, &target, rate, secs).await;
                let (used, wall) = cpu.stop(self.clk_tck);
                let m2 = machine_jiffies();
                let t = &mut tallies[i];
                t.requests += s.latency.len() as f64;
                t.latency.extend(s.latency);
                t.errors += s.errors;
                t.cpu += used;
                t.wall += wall;
                t.busy += (m2.0 - machine.0) as f64;
                t.total += (m2.1 - machine.1) as f64;
                eprintln!("fixed-rate round {round} {}: done", hop.name);
            }
        }
        let after = get_text(&self.client, &self.admin).await?.0;
        for t in &mut tallies {
            t.latency.sort_unstable();
        }
        let direct = tallies[0].clone();
        let n = rate * secs * rounds as f64;
        self.line(&format!(
            "\n### Converse, 2 KB request, fixed rate {rate:.0} req/s\n\n{rounds} rounds of {secs:.0} s per hop, hops interleaved within each round ({n:.0} requests per hop). Latency is from the scheduled send time to the last response byte (open loop, so queueing is charged). Added = the hop's percentile minus direct's.\n"
        ));
        self.line("| hop | p50 | p99 | p99.9 | added p50 | added p99 | added p99.9 | CPU / request | machine busy | errors |");
        self.line("|---|---|---|---|---|---|---|---|---|---|");
        let mut added = Vec::new();
        for (i, t) in tallies.iter().enumerate() {
            let p = |q| pct(&t.latency, q);
            let a = |q| p(q) - pct(&direct.latency, q);
            let cpu_us = if t.requests > 0.0 {
                t.cpu / t.requests * 1e6
            } else {
                f64::NAN
            };
            let row = format!(
                "| {} | {:.0} µs | {:.0} µs | {:.0} µs | {} | {} | {} | {} | {:.0}% | {} |",
                self.hops[i].name,
                p(0.5),
                p(0.99),
                p(0.999),
                if i == 0 {
                    "–".into()
                } else {
                    format!("{:.0} µs", a(0.5))
                },
                if i == 0 {
                    "–".into()
                } else {
                    format!("{:.0} µs", a(0.99))
                },
                if i == 0 {
                    "–".into()
                } else {
                    format!("{:.0} µs", a(0.999))
                },
                if i == 0 {
                    "–".into()
                } else {
                    format!("{cpu_us:.1} µs")
                },
                100.0 * t.busy / t.total.max(1.0),
                t.errors
            );
            self.line(&row);
            added.push((a(0.5), a(0.99), a(0.999), cpu_us));
        }
        if added.len() == 3 {
            let (m, g) = (added[1], added[2]);
            self.line(&format!(
                "\n**bedrock-meter / nginx:** added p50 {}, added p99 {}, added p99.9 {}, CPU per request {}.",
                ratio(m.0, g.0),
                ratio(m.1, g.1),
                ratio(m.2, g.2),
                ratio(m.3, g.3)
            ));
        }
        // The overhead histogram is the main meter's: only meaningful in the main comparison.
        if self.hops.len() != 3 {
            return Ok(added);
        }
        let b = diff_buckets(
            &overhead_buckets(&after, "Converse"),
            &overhead_buckets(&before, "Converse"),
        );
        let count = b.last().map_or(0.0, |x| x.1);
        let within = |le: f64| b.iter().find(|x| x.0 == le).map_or(0.0, |x| x.1) / count.max(1.0);
        self.line(&format!(
            "\n`bedrock_proxy_overhead_seconds{{operation=\"Converse\"}}` over these {count:.0} requests (scraped before and after, bucket counts subtracted; quantiles interpolated linearly within the bucket as Prometheus' `histogram_quantile` does): **p50 {:.1} µs, p99 {:.1} µs**; {:.1}% of requests ≤ 10 µs, {:.1}% ≤ 50 µs.",
            histogram_quantile(0.5, &b) * 1e6,
            histogram_quantile(0.99, &b) * 1e6,
            100.0 * within(0.000_01),
            100.0 * within(0.000_05),
        ));
        Ok(added)
    }

    /// Runs the fixed-rate and saturation scenarios over `hops` (direct first, nginx last) in
    /// place of the main three, each warmed first, and puts the main three back.
    async fn compare(
        &mut self,
        hops: Vec<Hop>,
        rate: f64,
        secs: f64,
        rounds: usize,
        conns: usize,
    ) -> Res<(Vec<Figures>, Vec<(f64, f64)>)> {
        for h in &hops {
            let target = Target::new(&h.addr, "converse", converse_body("[[sim]]", 2048));
            closed_loop(&self.client, &target, conns, 1.0).await;
        }
        let main = std::mem::replace(&mut self.hops, hops);
        let fixed = self.fixed_rate(rate, secs, rounds).await;
        let sat = self.saturation(conns, secs, rounds).await;
        self.hops = main;
        Ok((fixed?, sat?))
    }

    /// What TLS and request metadata cost on a Converse call: the meter without request
    /// metadata (`--request-metadata false`), with it (the default), and with it over TLS,
    /// next to direct and nginx, in the same fixed-rate and saturation runs. Then the splice
    /// itself on a 25 MB body against a plain copy of it.
    async fn features(
        &mut self,
        args: &Args,
        rate: f64,
        secs: f64,
        rounds: usize,
        conns: usize,
    ) -> Res<()> {
        let main = &self.hops;
        let tls_addr = format!("https://{}", args.str("meter-tls")?);
        let tls_pids = args.pids("meter-tls-pid")?;
        let hops = vec![
            hop("direct", &main[0].addr, vec![]),
            hop(
                "meter, metadata off",
                args.str("meter-plain")?,
                args.pids("meter-plain-pid")?,
            ),
            hop(
                "meter, request facts off",
                args.str("meter-nofacts")?,
                args.pids("meter-nofacts-pid")?,
            ),
            hop("meter (defaults)", &main[1].addr, main[1].pids.clone()),
            hop("meter, TLS", &tls_addr, tls_pids.clone()),
            hop("nginx", &main[2].addr, main[2].pids.clone()),
        ];
        self.line("\n### TLS, request metadata and request facts on a Converse call\n\nThe same meter build four times on the same pinned core: without request metadata (`--request-metadata false`), without request facts (`--request-facts false`), with both (the defaults: `requestMetadata` spliced into the 2 KB body, the body read for its output ceiling and stable prefix), and with both over TLS (`--tls-cert`, TLS 1.3, HTTP/1.1 by ALPN, the load generator's pooled keep-alive connections, as SDKs reuse theirs).");
        let (fixed, sat) = self.compare(hops, rate, secs, rounds, conns).await?;
        let fds = open_fds(tls_pids.first().copied().unwrap_or(0));
        let row = |i, base| difference(&fixed, &sat, i, base);
        self.line(&format!(
            "\n**Request metadata** (on vs off): {}.\n\n**Request facts** (on vs off): {}.\n\n**TLS** (TLS vs plain, both with the defaults): {}.\n\n**vs nginx** (CPU per request at saturation): metadata off {}, facts off {}, defaults {}, TLS {}.\n\nThe TLS meter held {fds} open file descriptors at the end (its listener, the pooled client connections, its upstream pool): handshakes were paid once per connection, not per call.",
            row(3, 1),
            row(3, 2),
            row(4, 3),
            ratio(sat[1].1, sat[5].1),
            ratio(sat[2].1, sat[5].1),
            ratio(sat[3].1, sat[5].1),
            ratio(sat[4].1, sat[5].1),
        ));
        self.splice_25mb();
        self.facts_with_prefix();
        Ok(())
    }

    /// What budgets and rate limits cost on a Converse call: the meter without `--limits` next
    /// to the same build with a limits file whose every kind applies (requests and tokens per
    /// minute, a daily and a monthly budget: four counters per call), kept in process and
    /// shared through Redis, in the same fixed-rate and saturation runs.
    async fn limits(
        &mut self,
        args: &Args,
        rate: f64,
        secs: f64,
        rounds: usize,
        conns: usize,
    ) -> Res<()> {
        let main = &self.hops;
        let hops = vec![
            hop("direct", &main[0].addr, vec![]),
            hop("meter, no limits", &main[1].addr, main[1].pids.clone()),
            hop(
                "meter, limits in process",
                args.str("meter-limits")?,
                args.pids("meter-limits-pid")?,
            ),
            hop(
                "meter, limits in Redis",
                args.str("meter-redis")?,
                args.pids("meter-redis-pid")?,
            ),
            hop("nginx", &main[2].addr, main[2].pids.clone()),
        ];
        self.line("\n### Budgets and rate limits on a Converse call\n\nThe same meter build three times on the same pinned core: without `--limits`, with a limits file that puts four limits on every call (requests and tokens per minute, a daily and a monthly budget, none reached) kept in process, and the same file with `--redis` (a local `redis-server` on the load generator's core: its CPU is not in the meter's). Each call's worst case is read from its body and reserved on four counters before forwarding, then settled.");
        let (fixed, sat) = self.compare(hops, rate, secs, rounds, conns).await?;
        let row = |i, base| difference(&fixed, &sat, i, base);
        self.line(&format!(
            "\n**Limits in process** (vs no limits): {}.\n\n**Limits in Redis** (vs no limits): {}.\n\n**vs nginx** (CPU per request at saturation): no limits {}, in process {}, Redis {}.",
            row(2, 1),
            row(3, 1),
            ratio(sat[1].1, sat[4].1),
            ratio(sat[2].1, sat[4].1),
            ratio(sat[3].1, sat[4].1),
        ));
        Ok(())
    }

    /// HTTP/1.1 or HTTP/2 to the upstream for the operations that do not need HTTP/2: the
    /// default meter (HTTP/1.1, pooled connections) next to the same build with
    /// `--upstream-http2 true` (one h2c connection to the simulator, every call a stream on
    /// it), in the same fixed-rate and saturation runs.
    async fn upstream_http2(
        &mut self,
        args: &Args,
        rate: f64,
        secs: f64,
        rounds: usize,
        conns: usize,
    ) -> Res<()> {
        let main = &self.hops;
        let hops = vec![
            hop("direct", &main[0].addr, vec![]),
            hop(
                "meter, HTTP/1.1 upstream",
                &main[1].addr,
                main[1].pids.clone(),
            ),
            hop(
                "meter, HTTP/2 upstream",
                args.str("meter-h2up")?,
                args.pids("meter-h2up-pid")?,
            ),
            hop("nginx", &main[2].addr, main[2].pids.clone()),
        ];
        self.line("\n### HTTP/1.1 or HTTP/2 to the upstream, on a Converse call\n\nThe same meter build twice on the same pinned core: the default (HTTP/1.1 to the upstream, a pool of keep-alive connections) and `--upstream-http2 true` (HTTP/2 with prior knowledge to the simulator: one connection, each call a stream on it). Bidirectional streams always go over HTTP/2; this is the choice for every other operation.");
        let (fixed, sat) = self.compare(hops, rate, secs, rounds, conns).await?;
        let row = |i, base| difference(&fixed, &sat, i, base);
        self.line(&format!(
            "\n**HTTP/2 upstream** (vs HTTP/1.1): {}.\n\n**vs nginx** (CPU per request at saturation): HTTP/1.1 upstream {}, HTTP/2 upstream {}.",
            row(2, 1),
            ratio(sat[1].1, sat[3].1),
            ratio(sat[2].1, sat[3].1),
        ));
        Ok(())
    }

    /// `requestMetadata` spliced into a 25 MB Converse body (no member yet), against copying
    /// the body once: the splice is a substring search plus that copy.
    fn splice_25mb(&mut self) {
        let body = converse_body("[[sim]]", 25 * 1024 * 1024);
        let time = |f: &dyn Fn() -> usize| {
            let mut t: Vec<f64> = (0..15)
                .map(|_| {
                    let start = Instant::now();
                    std::hint::black_box(f());
                    start.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        };
        let splice = time(&|| {
            bedrock_meter::proxy::forward::metadata::body(&body, "app", "bench")
                .ok()
                .flatten()
                .map_or(0, |b| b.len())
        });
        let copy = time(&|| Bytes::copy_from_slice(&body).len());
        let hash = time(&|| {
            bedrock_meter::aws::sigv4::PayloadHash::of(&body)
                .as_str()
                .len()
        });
        self.line(&format!(
            "\n**25 MB body** (median of 15, one core): splicing `requestMetadata` in {splice:.2} ms, copying the body {copy:.2} ms, hashing it for SigV4 (which every forwarded call does once) {hash:.2} ms."
        ));
    }

    /// Reading a request's facts where the prefix is big: a Converse body with a 4,000-byte
    /// system prompt and a 2 KB user turn (the prefix is hashed), against the bench's own 2 KB
    /// body (no system prompt: only the parse).
    fn facts_with_prefix(&mut self) {
        use bedrock_meter::api::request::{FingerprintKey, facts};
        let key = FingerprintKey::from_secret("bench");
        let user = converse_body("[[sim]]", 2048);
        let user = std::str::from_utf8(&user).unwrap_or_default();
        let with_system = format!(
            r#"{{"system":[{{"text":"{}"}}],{}"#,
            "s".repeat(4000),
            user.strip_prefix('{').unwrap_or_default()
        );
        let time = |body: &[u8]| {
            const N: u32 = 20_000;
            let start = Instant::now();
            for _ in 0..N {
                std::hint::black_box(facts(std::hint::black_box(body), &key));
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(N)
        };
        let plain = time(user.as_bytes());
        let prefixed = time(with_system.as_bytes());
        self.line(&format!(
            "\n**Request facts** (one core, mean of 20,000): the bench's 2 KB body {plain:.2} µs; a {} B body with a 4,000-byte system prompt (parsed, and the prefix hashed with the keyed SHA-256) {prefixed:.2} µs.",
            with_system.len()
        ));
    }

    /// The API families at saturation: the same 2 KB conversation as Converse, as InvokeModel
    /// with an Anthropic body, as OpenAI Chat Completions and as Anthropic Messages, through
    /// the meter and through nginx, interleaved; CPU per request of each, side by side.
    async fn families(&mut self, conns: usize, secs: f64, rounds: usize) -> Res<()> {
        let pad = |head: &str, tail: &str| {
            let mut s = head.to_owned();
            for i in 0..2048usize.saturating_sub(head.len() + tail.len()) {
                s.push(char::from(b'a' + (i % 26) as u8));
            }
            s.push_str(tail);
            Bytes::from(s)
        };
        let sim = "[[sim input=500 output=100]] ";
        let families: [(&str, &'static str, &str, Option<&'static str>, Bytes); 4] = [
            (
                "Converse",
                "converse",
                MODEL,
                None,
                converse_body("[[sim input=500 output=100]]", 2048),
            ),
            (
                "InvokeModel (Anthropic body)",
                "invoke",
                "anthropic.claude-3-5-haiku-20241022-v1:0",
                None,
                pad(
                    &format!(
                        r#"{{"anthropic_version":"bedrock-2023-05-31","max_tokens":512,"messages":[{{"role":"user","content":"{sim}"#
                    ),
                    r#""}]}"#,
                ),
            ),
            (
                "OpenAI Chat Completions",
                "chat",
                "openai.gpt-oss-20b-1:0",
                Some("/openai/v1/chat/completions"),
                pad(
                    &format!(
                        r#"{{"model":"openai.gpt-oss-20b-1:0","max_tokens":512,"messages":[{{"role":"user","content":"{sim}"#
                    ),
                    r#""}]}"#,
                ),
            ),
            (
                "Anthropic Messages",
                "messages",
                "anthropic.claude-haiku-4-5-20251001-v1:0",
                Some("/anthropic/v1/messages"),
                pad(
                    &format!(
                        r#"{{"model":"anthropic.claude-haiku-4-5-20251001-v1:0","max_tokens":512,"messages":[{{"role":"user","content":"{sim}"#
                    ),
                    r#""}]}"#,
                ),
            ),
        ];
        let hops = [&self.hops[1], &self.hops[2]];
        // (requests, cpu seconds, wall seconds, errors) per family and hop.
        let mut tallies = vec![[(0.0f64, 0.0f64, 0.0f64, 0u64); 2]; families.len()];
        for round in 0..rounds {
            for (f, (name, op, model, path, body)) in families.iter().enumerate() {
                for (h, hop) in hops.iter().enumerate() {
                    let mut target = Target::new(&hop.addr, op, body.clone());
                    target.model = (*model).to_owned();
                    target.path = *path;
                    let cpu = Cpu::start(&hop.pids);
                    let (ok, err) = closed_loop(&self.client, &target, conns, secs).await;
                    let (used, wall) = cpu.stop(self.clk_tck);
                    let t = &mut tallies[f][h];
                    t.0 += ok as f64;
                    t.1 += used;
                    t.2 += wall;
                    t.3 += err;
                    eprintln!("families round {round} {name} {}: {ok} ok", hop.name);
                }
            }
        }
        self.line(&format!(
            "\n### API families, 2 KB request, saturation\n\nThe same conversation (a 2 KB body, 500 tokens in, 100 out) in each API family's shape, {conns} connections in a closed loop, {rounds} rounds of {secs:.0} s per family and hop, interleaved. The meter reads each family's own usage from its answer (Converse's and Messages' JSON, InvokeModel's headers, Chat Completions' `usage`).\n"
        ));
        self.line("| API family | bedrock-meter req/s | bedrock-meter CPU / request | nginx CPU / request | meter / nginx | errors (meter, nginx) |");
        self.line("|---|---|---|---|---|---|");
        for (f, (name, ..)) in families.iter().enumerate() {
            let [m, n] = tallies[f];
            let (mc, nc) = (m.1 / m.0.max(1.0), n.1 / n.0.max(1.0));
            self.line(&format!(
                "| {name} | {:.0} | {:.1} µs | {:.1} µs | {} | {}, {} |",
                m.0 / m.2.max(1e-9),
                mc * 1e6,
                nc * 1e6,
                ratio(mc, nc),
                m.3,
                n.3
            ));
        }
        Ok(())
    }

    /// Closed-loop saturation, interleaved.
    /// Returns per hop (requests/s, CPU seconds per request).
    async fn saturation(&mut self, conns: usize, secs: f64, rounds: usize) -> Res<Vec<(f64, f64)>> {
        let body = converse_body("[[sim input=500 output=100]]", 2048);
        let mut tallies = vec![Tally::default(); self.hops.len()];
        let (before, _) = get_text(&self.client, &self.admin).await?;
        for round in 0..rounds {
            for (i, hop) in self.hops.iter().enumerate() {
                let target = Target::new(&hop.addr, "converse", body.clone());
                let cpu = Cpu::start(&hop.pids);
                let machine = machine_jiffies();
                let (ok, err) = closed_loop(&self.client, &target, conns, secs).await;
                let (used, wall) = cpu.stop(self.clk_tck);
                let m2 = machine_jiffies();
                let t = &mut tallies[i];
                t.requests += ok as f64;
                t.errors += err;
                t.cpu += used;
                t.wall += wall;
                t.busy += (m2.0 - machine.0) as f64;
                t.total += (m2.1 - machine.1) as f64;
                eprintln!("saturation round {round} {}: {ok} ok", hop.name);
            }
        }
        self.line(&format!(
            "\n### Converse, 2 KB request, saturation\n\n{conns} connections in a closed loop, {rounds} rounds of {secs:.0} s per hop, interleaved. \"Hop CPU\" is the hop's share of one core over the run (utime+stime from /proc); \"one-core capacity\" = 1 s ÷ CPU per request, what the hop could serve if it had a core to itself.\n"
        ));
        self.line(
            "| hop | req/s | hop CPU | CPU / request | one-core capacity | machine busy | errors |",
        );
        self.line("|---|---|---|---|---|---|---|");
        let mut rows = Vec::new();
        for (i, t) in tallies.iter().enumerate() {
            let rps = t.requests / t.wall.max(1e-9);
            let cpu_req = t.cpu / t.requests.max(1.0);
            let row = if i == 0 {
                format!(
                    "| {} | {rps:.0} | – | – | – | {:.0}% | {} |",
                    self.hops[i].name,
                    100.0 * t.busy / t.total.max(1.0),
                    t.errors
                )
            } else {
                format!(
                    "| {} | {rps:.0} | {:.0}% | {:.1} µs | {:.0} req/s | {:.0}% | {} |",
                    self.hops[i].name,
                    100.0 * t.cpu / t.wall.max(1e-9),
                    cpu_req * 1e6,
                    1.0 / cpu_req.max(1e-12),
                    100.0 * t.busy / t.total.max(1.0),
                    t.errors
                )
            };
            self.line(&row);
            rows.push((rps, cpu_req));
        }
        if rows.len() == 3 {
            self.line(&format!(
                "\n**bedrock-meter / nginx:** throughput {}, CPU per request {}, one-core capacity {}.",
                ratio(rows[1].0, rows[2].0),
                ratio(rows[1].1, rows[2].1),
                ratio(rows[2].1, rows[1].1),
            ));
        }
        if self.hops.len() != 3 {
            return Ok(rows);
        }
        let (after, _) = get_text(&self.client, &self.admin).await?;
        let b = diff_buckets(
            &overhead_buckets(&after, "Converse"),
            &overhead_buckets(&before, "Converse"),
        );
        self.line(&format!(
            "\n`bedrock_proxy_overhead_seconds{{operation=\"Converse\"}}` at saturation ({:.0} requests, a busy core whose caches stay warm): **p50 {:.1} µs, p99 {:.1} µs**.",
            b.last().map_or(0.0, |x| x.1),
            histogram_quantile(0.5, &b) * 1e6,
            histogram_quantile(0.99, &b) * 1e6,
        ));
        Ok(rows)
    }

    /// ConverseStream: time to first byte, and how late each event frame arrives.
    async fn streams(&mut self, count: usize, rounds: usize) -> Res<()> {
        // TTFB: short streams at a low open-loop rate.
        let ttfb_body = converse_body("[[sim input=100 output=50 chunks=4]]", 512);
        let mut ttfb = vec![Tally::default(); self.hops.len()];
        for _ in 0..rounds {
            for (i, hop) in self.hops.iter().enumerate() {
                let target = Target::new(&hop.addr, "converse-stream", ttfb_body.clone());
                let s = open_loop(&self.client, &target, 200.0, count as f64 / 200.0).await;
                ttfb[i].ttfb.extend(s.ttfb);
                ttfb[i].errors += s.errors;
            }
        }
        for t in &mut ttfb {
            t.ttfb.sort_unstable();
        }
        // Pacing: 20 frames 20 ms apart, 25 streams/s (about 10 open at a time).
        let paced = converse_body("[[sim input=100 output=50 chunks=20 gap_ms=20]]", 512);
        let mut offsets: Vec<Vec<Vec<Duration>>> = vec![Vec::new(); self.hops.len()];
        let mut errors = vec![0u64; self.hops.len()];
        for _ in 0..rounds {
            for (i, hop) in self.hops.iter().enumerate() {
                let target = Target::new(&hop.addr, "converse-stream", paced.clone());
                let (o, e) = stream_open_loop(&self.client, &target, 25.0, 50).await;
                offsets[i].extend(o);
                errors[i] += e;
            }
        }
        // Reference schedule: direct's median arrival offset of each message index.
        let frames = offsets[0].iter().map(Vec::len).max().unwrap_or(0);
        let reference: Vec<Duration> = (0..frames)
            .map(|k| {
                let mut v: Vec<Duration> = offsets[0]
                    .iter()
                    .filter_map(|s| s.get(k))
                    .copied()
                    .collect();
                v.sort_unstable();
                v.get(v.len() / 2).copied().unwrap_or_default()
            })
            .collect();
        let lateness: Vec<Vec<u32>> = offsets
            .iter()
            .map(|streams| {
                let mut l: Vec<u32> = streams
                    .iter()
                    .flat_map(|s| {
                        s.iter()
                            .zip(&reference)
                            .skip(1)
                            .map(|(a, r)| micros(a.saturating_sub(*r)))
                    })
                    .collect();
                l.sort_unstable();
                l
            })
            .collect();
        self.line(&format!(
            "\n### ConverseStream\n\nTime to first byte: {count} short streams per hop per round at 200 streams/s (open loop), {rounds} rounds, from the scheduled send to the first body byte. Frame delay: streams of 20 content frames 20 ms apart, 25 streams/s, 50 per hop per round; each event message's arrival offset from its request's send, minus direct's median offset for the same message index (so the simulator's own pacing cancels out).\n"
        ));
        self.line("| hop | TTFB p50 | TTFB p99 | added TTFB p50 | added TTFB p99 | frame delay p50 | frame delay p99 | frame delay max | errors |");
        self.line("|---|---|---|---|---|---|---|---|---|");
        let mut summary = Vec::new();
        for i in 0..self.hops.len() {
            let t = &ttfb[i].ttfb;
            let d = &ttfb[0].ttfb;
            let l = &lateness[i];
            let row = format!(
                "| {} | {:.0} µs | {:.0} µs | {} | {} | {:.0} µs | {:.0} µs | {:.0} µs | {} |",
                self.hops[i].name,
                pct(t, 0.5),
                pct(t, 0.99),
                if i == 0 {
                    "–".into()
                } else {
                    format!("{:.0} µs", pct(t, 0.5) - pct(d, 0.5))
                },
                if i == 0 {
                    "–".into()
                } else {
                    format!("{:.0} µs", pct(t, 0.99) - pct(d, 0.99))
                },
                pct(l, 0.5),
                pct(l, 0.99),
                l.last().copied().map_or(f64::NAN, f64::from),
                ttfb[i].errors + errors[i]
            );
            self.line(&row);
            summary.push((pct(t, 0.5), pct(t, 0.99), pct(l, 0.5), pct(l, 0.99)));
        }
        if summary.len() == 3 {
            let (m, g, d) = (summary[1], summary[2], summary[0]);
            self.line(&format!(
                "\n**bedrock-meter vs nginx:** TTFB p50 {:+.0} µs, p99 {:+.0} µs (target: within 50 µs); frame delay added over direct p50 {:.0} µs, p99 {:.0} µs (nginx: {:.0} µs, {:.0} µs; target: within 1 ms).",
                m.0 - g.0,
                m.1 - g.1,
                m.2 - d.2,
                m.3 - d.3,
                g.2 - d.2,
                g.3 - d.3
            ));
        }
        Ok(())
    }

    /// RSS with `n` streams open at once through the meter and through nginx.
    async fn open_streams(&mut self, n: usize) -> Res<()> {
        let body = converse_body("[[sim input=100 output=50 chunks=40 gap_ms=500]]", 512);
        let mut rows = Vec::new();
        for (name, addr, pids) in [
            (
                "bedrock-meter",
                self.hops[1].addr.clone(),
                vec![self.meter_pid],
            ),
            ("nginx", self.hops[2].addr.clone(), self.nginx_pids.clone()),
        ] {
            let idle: u64 = pids.iter().map(|p| rss_kib(*p)).sum();
            let client = client(n, None)?;
            let target = Target::new(&addr, "converse-stream", body.clone());
            let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..n {
                let (client, target, started) = (client.clone(), target.clone(), started.clone());
                set.spawn(async move {
                    let resp = client.request(target.request()?).await?;
                    let mut body = resp.into_body();
                    let _ = body.frame().await;
                    started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    while let Some(f) = body.frame().await {
                        f?;
                    }
                    Ok::<(), Error>(())
                });
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while started.load(std::sync::atomic::Ordering::Relaxed) < n
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let open = started.load(std::sync::atomic::Ordering::Relaxed);
            let mut peak = 0;
            for _ in 0..10 {
                peak = peak.max(pids.iter().map(|p| rss_kib(*p)).sum::<u64>());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            set.abort_all();
            while set.join_next().await.is_some() {}
            eprintln!("open streams {name}: {open} open, RSS {peak} KiB");
            rows.push((name, open, idle, peak));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        self.line(&format!(
            "\n### Memory with {n} concurrent open streams\n\n{n} ConverseStream calls held open (40 frames 500 ms apart), each on its own connection; RSS sampled ten times over one second once every stream had its first frame (nginx: its workers summed).\n"
        ));
        self.line("| hop | streams open | RSS before | RSS with streams open |");
        self.line("|---|---|---|---|");
        for (name, open, idle, peak) in rows {
            self.line(&format!(
                "| {name} | {open} | {:.1} MB | {:.1} MB |",
                idle as f64 / 1024.0,
                peak as f64 / 1024.0
            ));
        }
        Ok(())
    }

    /// /metrics with `apps` × `models` series: render time, and request latency during scrapes.
    async fn scrape(&mut self, apps: usize, models: usize, rate: f64, secs: f64) -> Res<()> {
        let body = converse_body("[[sim input=500 output=100]]", 2048);
        let meter = self.hops[1].addr.clone();
        let mut set = tokio::task::JoinSet::new();
        for a in 0..apps {
            for m in 0..models {
                let mut target = Target::new(&meter, "converse", body.clone());
                target.app = format!("bench-app-{a:03}");
                target.model = format!("bench.model-{m:02}-v1:0");
                let client = self.client.clone();
                set.spawn(async move { call(&client, &target).await.is_ok() });
                if set.len() >= 32 {
                    set.join_next().await;
                }
            }
        }
        while set.join_next().await.is_some() {}
        let (text, _) = get_text(&self.client, &self.admin).await?;
        let mut times = Vec::new();
        let cpu = Cpu::start(&[self.meter_pid]);
        for _ in 0..30 {
            let (_, t) = get_text(&self.client, &self.admin).await?;
            times.push(micros(t));
        }
        let (render_cpu, _) = cpu.stop(self.clk_tck);
        times.sort_unstable();
        let target = Target::new(&meter, "converse", body.clone());
        let direct = Target::new(&self.hops[0].addr, "converse", body.clone());
        let quiet = open_loop(&self.client, &target, rate, secs).await;
        // The scraper runs on a thread and runtime of its own, so reading 6 MB every 100 ms
        // does not hold up the load generator's own tasks; it still shares the driver core.
        let scraping = |stop: Arc<std::sync::atomic::AtomicBool>| {
            let admin = self.admin.clone();
            std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return 0u32;
                };
                rt.block_on(async move {
                    let client = match client(4, None) {
                        Ok(c) => c,
                        Err(_) => return 0u32,
                    };
                    let mut n = 0u32;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if get_text(&client, &admin).await.is_ok() {
                            n += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    n
                })
            })
        };
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let scraper = scraping(stop.clone());
        let busy = open_loop(&self.client, &target, rate, secs).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let scrapes = scraper.join().unwrap_or(0);
        // Control: the same load straight to the simulator while bedrock-meter is scraped. What
        // this row gains is the scrape's cost to the machine (the client reading 6 MB on the
        // driver core), not bedrock-meter's.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let scraper = scraping(stop.clone());
        let control = open_loop(&self.client, &direct, rate, secs).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = scraper.join();
        let mut rows = Vec::new();
        for (name, mut s) in [
            ("through bedrock-meter, no scrapes", quiet),
            ("through bedrock-meter, scraped every 100 ms", busy),
            (
                "direct (control), bedrock-meter scraped every 100 ms",
                control,
            ),
        ] {
            s.latency.sort_unstable();
            rows.push(format!(
                "| {name} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {} |",
                pct(&s.latency, 0.5),
                pct(&s.latency, 0.99),
                pct(&s.latency, 0.999),
                s.latency.last().copied().map_or(f64::NAN, f64::from),
                s.errors
            ));
        }
        let series = text.lines().filter(|l| !l.starts_with('#')).count();
        self.line(&format!(
            "\n### /metrics with {apps} apps × {models} models\n\n{series} series, {:.1} MB of text. Render time (wall time of a GET /metrics from the client, 30 scrapes): **p50 {:.1} ms, max {:.1} ms**; bedrock-meter's CPU per scrape (utime+stime over the 30 scrapes, rendering and writing the response): **{:.1} ms**. Request latency at {rate:.0} req/s for {secs:.0} s through bedrock-meter without and with a scrape every 100 ms ({scrapes} scrapes, from a thread of the load generator's), and straight to the simulator while bedrock-meter is scraped (the control):\n",
            text.len() as f64 / 1e6,
            pct(&times, 0.5) / 1e3,
            times.last().copied().map_or(f64::NAN, |t| f64::from(t) / 1e3),
            render_cpu / 30.0 * 1e3,
        ));
        self.line("| load | p50 | p99 | p99.9 | max | errors |");
        self.line("|---|---|---|---|---|---|");
        for r in rows {
            self.line(&r);
        }
        Ok(())
    }
}

/// A hop of a comparison.
fn hop(name: &'static str, addr: &str, pids: Vec<u32>) -> Hop {
    Hop {
        name,
        addr: addr.to_owned(),
        pids,
    }
}

/// Per hop at the fixed rate: added p50, added p99, added p99.9, CPU µs per request.
type Figures = (f64, f64, f64, f64);

/// How hop `i` differs from hop `base` in one comparison.
fn difference(fixed: &[Figures], sat: &[(f64, f64)], i: usize, base: usize) -> String {
    format!(
        "added p50 {:+.1} µs, added p99 {:+.1} µs, CPU per request {} ({:+.2} µs) at the fixed rate; CPU per request {} at saturation",
        fixed[i].0 - fixed[base].0,
        fixed[i].1 - fixed[base].1,
        ratio(fixed[i].3, fixed[base].3),
        fixed[i].3 - fixed[base].3,
        ratio(sat[i].1, sat[base].1),
    )
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    // Counted from /proc/cpuinfo: under taskset, available_parallelism counts only ours.
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{cores} cores ({model}), {:.0} GiB; load average at the start {load}",
        mem as f64 / 1024.0 / 1024.0
    )
}

fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs() / 86_400).unwrap_or(0));
    let (y, m, d) = bedrock_meter::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

async fn run(args: &Args) -> Res<()> {
    let mut run = Run {
        client: client(4096, args.0.get("tls-ca").map(String::as_str))?,
        hops: vec![
            Hop {
                name: "direct",
                addr: args.str("direct")?.into(),
                pids: vec![],
            },
            Hop {
                name: "bedrock-meter",
                addr: args.str("meter")?.into(),
                pids: args.pids("meter-pid")?,
            },
            Hop {
                name: "nginx",
                addr: args.str("nginx")?.into(),
                pids: args.pids("nginx-pids")?,
            },
        ],
        admin: format!("http://{}/metrics", args.str("admin")?),
        clk_tck: args.num("clk-tck", 100.0)?,
        out: String::new(),
        meter_pid: args
            .pids("meter-pid")?
            .first()
            .copied()
            .ok_or("no meter pid")?,
        nginx_pids: args.pids("nginx-pids")?,
    };
    let rate: f64 = args.num("rate", 1000.0)?;
    let secs: f64 = args.num("secs", 10.0)?;
    let rounds: usize = args.num("rounds", 3)?;
    let conns: usize = args.num("conns", 32)?;
    let only = args.0.get("only").cloned().unwrap_or_default();
    let want = |s: &str| only.is_empty() || only.split(',').any(|o| o == s);

    let _ = writeln!(
        run.out,
        "Machine: {}. Date: {}. Command: `{}`. Layout: {}.",
        machine(),
        today(),
        args.0
            .get("command")
            .map_or("bench/proxy-bench.sh", String::as_str),
        args.0.get("layout").map_or("not pinned", String::as_str),
    );
    // Warm every path: connection pools on both sides, allocator arenas.
    for hop in &run.hops {
        let target = Target::new(&hop.addr, "converse", converse_body("[[sim]]", 2048));
        closed_loop(&run.client, &target, conns, 1.0).await;
    }
    if want("fixed") {
        run.fixed_rate(rate, secs, rounds).await?;
    }
    if want("saturation") {
        run.saturation(conns, secs, rounds).await?;
    }
    if want("families") {
        run.families(conns, secs, rounds).await?;
    }
    if want("features") {
        run.features(args, rate, secs, rounds, conns).await?;
    }
    if want("limits") {
        run.limits(args, rate, secs, rounds, conns).await?;
    }
    if want("upstream") {
        run.upstream_http2(args, rate, secs, rounds, conns).await?;
    }
    if want("stream") {
        run.streams(2000, rounds).await?;
    }
    if want("memory") {
        run.open_streams(args.num("streams", 1000)?).await?;
    }
    if want("scrape") {
        run.scrape(100, 20, rate, secs).await?;
    }
    std::fs::write(args.str("out")?, run.out)?;
    Ok(())
}

/// A long fixed-rate run through the meter with its RSS sampled: is memory flat?
async fn soak(args: &Args) -> Res<()> {
    let requests: f64 = args.num("requests", 1_000_000.0)?;
    let secs: f64 = args.num("secs", 600.0)?;
    let pid = args
        .pids("meter-pid")?
        .first()
        .copied()
        .ok_or("no meter pid")?;
    let client = client(1024, None)?;
    let target = Target::new(
        args.str("meter")?,
        "converse",
        converse_body("[[sim input=500 output=100]]", 2048),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut samples = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (kib, fds) = (rss_kib(pid), open_fds(pid));
                eprintln!(
                    "soak t={:.0}s rss={kib} KiB fds={fds}",
                    start.elapsed().as_secs_f64()
                );
                samples.push((start.elapsed().as_secs_f64(), kib, fds));
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            samples.push((start.elapsed().as_secs_f64(), rss_kib(pid), open_fds(pid)));
            samples
        })
    };
    // In one-minute slices so a slow machine cannot pile up more than a minute of tasks.
    let slices = (secs / 60.0).ceil().max(1.0) as usize;
    let (mut done, mut errors, mut lat) = (0usize, 0u64, Vec::new());
    for _ in 0..slices {
        let s = open_loop(&client, &target, requests / secs, secs / slices as f64).await;
        done += s.latency.len();
        errors += s.errors;
        lat.extend(s.latency);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.await.unwrap_or_default();
    lat.sort_unstable();
    // Flatness after the first minute (pools and allocator arenas fill during warm-up).
    let steady: Vec<u64> = samples
        .iter()
        .filter(|s| s.0 >= 60.0)
        .map(|s| s.1)
        .collect();
    let (lo, hi) = (
        steady.iter().copied().min().unwrap_or(0),
        steady.iter().copied().max().unwrap_or(0),
    );
    let mean = steady.iter().sum::<u64>() as f64 / steady.len().max(1) as f64;
    let fds: Vec<usize> = samples.iter().map(|s| s.2).collect();
    let mut out = format!(
        "Machine: {}. Date: {}. Command: `{}`.\n\n{done} requests ({errors} errors) at {:.0} req/s over {secs:.0} s through bedrock-meter; latency p50 {:.0} µs, p99 {:.0} µs. RSS sampled every 10 s: first {:.1} MB, after one minute {:.1}–{:.1} MB (spread {:+.1}% / {:+.1}% of the mean {:.1} MB), last {:.1} MB. Open file descriptors (sockets, mostly: one per client connection and per pooled upstream connection) {}–{}.\n\n| t | RSS | open fds |\n|---|---|---|\n",
        machine(),
        today(),
        args.0
            .get("command")
            .map_or("bench/proxy-bench.sh soak", String::as_str),
        requests / secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        samples.first().map_or(0.0, |s| s.1 as f64 / 1024.0),
        lo as f64 / 1024.0,
        hi as f64 / 1024.0,
        100.0 * (lo as f64 - mean) / mean.max(1.0),
        100.0 * (hi as f64 - mean) / mean.max(1.0),
        mean / 1024.0,
        samples.last().map_or(0.0, |s| s.1 as f64 / 1024.0),
        fds.iter().min().copied().unwrap_or(0),
        fds.iter().max().copied().unwrap_or(0),
    );
    for (t, kib, fds) in samples.iter().step_by(6) {
        let _ = writeln!(out, "| {t:.0} s | {:.1} MB | {fds} |", *kib as f64 / 1024.0);
    }
    print!("{out}");
    std::fs::write(args.str("out")?, out)?;
    Ok(())
}

/// `count`: exactly `--requests` Converse calls (the bench's 2 KB body) through `--meter`, from
/// `--conns` callers in a closed loop, as fast as the meter answers. For counting what a call
/// costs in total (allocations under dhat, samples under perf): two counts, subtracted.
async fn count(args: &Args) -> Res<()> {
    let client = client(64, None)?;
    let target = Target::new(
        args.str("meter")?,
        "converse",
        converse_body("[[sim input=500 output=100]]", 2048),
    );
    let requests: usize = args.num("requests", 1000)?;
    let conns: usize = args.num("conns", 1)?;
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(requests));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..conns.max(1) {
        let (client, target, left) = (client.clone(), target.clone(), left.clone());
        set.spawn(async move {
            let mut errors = 0u64;
            while left
                .fetch_update(
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                if call(&client, &target).await.is_err() {
                    errors += 1;
                }
            }
            errors
        });
    }
    let mut errors = 0;
    while let Some(r) = set.join_next().await {
        errors += r.unwrap_or(1);
    }
    eprintln!("count: {requests} calls, {errors} errors");
    if errors > 0 {
        return Err(format!("{errors} calls failed").into());
    }
    Ok(())
}

/// Blocks and bytes allocated in a dhat profile, in total and by the first frame of
/// bedrock-meter's own code on each allocation's stack (else the first frame).
struct DhatProfile {
    blocks: u64,
    bytes: u64,
    by_site: HashMap<String, (u64, u64)>,
}

fn dhat_profile(path: &str) -> Res<DhatProfile> {
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let frames: Vec<&str> = json["ftbl"]
        .as_array()
        .ok_or("dhat file without ftbl")?
        .iter()
        .map(|f| f.as_str().unwrap_or(""))
        .collect();
    let mut profile = DhatProfile {
        blocks: 0,
        bytes: 0,
        by_site: HashMap::new(),
    };
    for pp in json["pps"].as_array().ok_or("dhat file without pps")? {
        let (blocks, bytes) = (
            pp["tbk"].as_u64().unwrap_or(0),
            pp["tb"].as_u64().unwrap_or(0),
        );
        profile.blocks += blocks;
        profile.bytes += bytes;
        let stack: Vec<&str> = pp["fs"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .filter_map(|i| frames.get(i.as_u64()? as usize).copied())
                    .collect()
            })
            .unwrap_or_default();
        let site = stack
            .iter()
            .find(|f| f.contains("bedrock_meter::"))
            .or_else(|| {
                stack
                    .iter()
                    .find(|f| !f.contains("alloc::") && !f.contains("malloc"))
            })
            .map_or_else(|| "(unknown)".to_owned(), |f| dhat_frame_name(f));
        let entry = profile.by_site.entry(site).or_default();
        entry.0 += blocks;
        entry.1 += bytes;
    }
    Ok(profile)
}

/// `0x1234: bedrock_meter::proxy::handler::exchange::{{closure}} (handler.rs:300:5)` →
/// `bedrock_meter::proxy::handler::exchange`.
fn dhat_frame_name(frame: &str) -> String {
    let name = frame.split_once(": ").map_or(frame, |(_, rest)| rest);
    let name = name.split(" (").next().unwrap_or(name);
    let name = name.replace("::{{closure}}", "");
    // Generic arguments make one site many names.
    match name.find('<') {
        Some(i) if i > 0 => name[..i].trim_end_matches("::").to_owned(),
        _ => name,
    }
}

/// `alloc-report`: allocations per Converse call, from two dhat profiles of the meter that
/// served `--calls-a` and `--calls-b` calls: the difference, divided by the difference in
/// calls, leaves out start-up and shutdown.
fn alloc_report(args: &Args) -> Res<()> {
    let (a, b) = (
        dhat_profile(args.str("dhat-a")?)?,
        dhat_profile(args.str("dhat-b")?)?,
    );
    let (calls_a, calls_b): (u64, u64) = (args.num("calls-a", 0)?, args.num("calls-b", 0)?);
    let calls = calls_b.saturating_sub(calls_a).max(1) as f64;
    let per = |x: u64, y: u64| y.saturating_sub(x) as f64 / calls;
    let mut out = format!(
        "Machine: {}. Date: {}. Command: `{}`.\n\nbedrock-meter (`serve`, defaults, one tokio worker thread) under `valgrind --tool=dhat`, in front of the simulator; `proxy-bench count` sends {calls_a} and then, to a fresh meter, {calls_b} Converse calls (the bench's 2 KB body) on 4 connections. Per call = the difference of the two runs' totals ÷ {:.0}, so start-up and shutdown cancel out.\n\n**{:.1} heap allocations and {:.1} KB allocated per call.**\n\n| allocations per call | bytes per call | first frame in bedrock-meter's code (else the allocating crate's) |\n|---|---|---|\n",
        machine(),
        today(),
        args.0
            .get("command")
            .map_or("bench/proxy-bench.sh alloc", String::as_str),
        calls,
        per(a.blocks, b.blocks),
        per(a.bytes, b.bytes) / 1000.0,
    );
    let mut sites: Vec<(&String, f64, f64)> = b
        .by_site
        .iter()
        .map(|(site, &(blocks, bytes))| {
            let (ba, ya) = a.by_site.get(site).copied().unwrap_or_default();
            (site, per(ba, blocks), per(ya, bytes))
        })
        .filter(|s| s.1 >= 0.05)
        .collect();
    sites.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(y.0)));
    for (site, blocks, bytes) in sites.iter().take(20) {
        let _ = writeln!(out, "| {blocks:.1} | {bytes:.0} | `{site}` |");
    }
    print!("{out}");
    std::fs::write(args.str("out")?, out)?;
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let (mode, args) = Args::parse()?;
    match mode.as_str() {
        "run" => run(&args).await,
        "soak" => soak(&args).await,
        "count" => count(&args).await,
        "alloc-report" => alloc_report(&args),
        other => Err(format!("unknown mode {other:?}: run, soak, count or alloc-report").into()),
    }
}
