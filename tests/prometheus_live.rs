//! The dashboard and the Prometheus rules against a real Prometheus.
//!
//! A proxy in keys mode, with its rate card and keys file watched and a ledger, serves
//! simulated multi-app traffic (priced and unpriced models, all four metered operations,
//! throttling, 5xx, stream exceptions, unreadable usage, label overflow, refused signatures, a
//! rate card reload) while a `prometheus` process scrapes its admin address every second and
//! loads `dashboards/rules/*.yml`. Every dashboard query (variables substituted the way Grafana
//! does) and every rule expression is then evaluated through `/api/v1/query`: an invalid one
//! fails the test, and so does a panel without data. Alert states are checked too.
//!
//! Needs the `prometheus` binary (Debian's `prometheus` package). Without it the test prints
//! a skip message, unless `CI` is set, in which case it fails.
//!
//! The metric contract itself — the series table of `docs/metrics.md` — is checked against
//! what the same proxy exports, without Prometheus: every documented family is exported with
//! its documented type, and nothing else is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::primitives::Blob;
use common::*;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

const NOVA_MICRO: &str = "amazon.nova-micro-v1:0";
const NOVA_LITE: &str = "amazon.nova-lite-v1:0";
const HAIKU_3: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const US_HAIKU_35: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const UNPRICED: &str = "acme.mystery-model-v1:0";
const NOVA_CANVAS: &str = "amazon.nova-canvas-v1:0";
/// A default prompt router; the simulator routes it to Claude 3.5 Haiku.
const ROUTER: &str =
    "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1";

/// Documented series no dashboard panel shows, with the reason. Each must be documented and
/// really absent from the dashboard, so the list cannot go stale.
const NOT_ON_DASHBOARD: &[(&str, &str)] = &[
    (
        "bedrock_tls_certificate_expiry_timestamp_seconds",
        "only a TLS listener has it; the alert BedrockMeterCertificateExpiresSoon watches it",
    ),
    (
        "bedrock_tls_handshake_failures_total",
        "only a TLS listener has it; tests/tls.rs checks it",
    ),
    (
        "bedrock_tls_reloads_total",
        "only a TLS listener has it; the expiry alert catches a reload that keeps failing",
    ),
];

/// Documented series this test's meter (plain HTTP) cannot export: they exist only on a TLS
/// listener, and tests/tls.rs checks them there.
const ONLY_WITH_TLS: &[&str] = &[
    "bedrock_tls_certificate_expiry_timestamp_seconds",
    "bedrock_tls_handshake_failures_total",
    "bedrock_tls_reloads_total",
];

/// How Grafana fills in the built-in variables; the rate interval covers the whole run.
const RATE_INTERVAL: &str = "1m";
const RANGE: &str = "1h";

// ------------------------------------------------------------------------------ files

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo_path("dashboards/bedrock-meter.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every panel, rows' nested panels included (collapsed rows keep theirs inside).
fn panels(dash: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a [Value], out: &mut Vec<&'a Value>) {
        for p in list {
            out.push(p);
            if let Some(nested) = p["panels"].as_array() {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dash["panels"].as_array().unwrap(), &mut out);
    out
}

fn query_panels(dash: &Value) -> Vec<&Value> {
    panels(dash)
        .into_iter()
        .filter(|p| p["type"] != "row")
        .collect()
}

fn title(panel: &Value) -> &str {
    panel["title"].as_str().unwrap()
}

fn exprs(panel: &Value) -> Vec<&str> {
    panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["expr"].as_str().unwrap())
        .collect()
}

/// Substitutes Grafana's variables. `app` and `model` are already in Grafana's regex form
/// (`.*` for All, `(a|b)` for several values).
fn substitute(expr: &str, app: &str, model: &str) -> String {
    let out = expr
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("${__rate_interval}", RATE_INTERVAL)
        .replace("$__range_s", "3600")
        .replace("$__range_ms", "3600000")
        .replace("$__range", RANGE)
        .replace("${__range}", RANGE)
        .replace("$__interval_ms", "15000")
        .replace("$__interval", "15s")
        .replace("${app}", app)
        .replace("$app", app)
        .replace("${model}", model)
        .replace("$model", model);
    assert!(
        !out.contains('$'),
        "unknown variable left in dashboard query: {out}"
    );
    out
}

/// Rules declared in the project's rule files (`- record:` / `- alert:` lines).
fn declared_rules() -> (Vec<PathBuf>, BTreeSet<String>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path("dashboards/rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    let mut names = BTreeSet::new();
    for f in &files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let line = line.trim_start();
            for key in ["- record:", "- alert:"] {
                if let Some(name) = line.strip_prefix(key) {
                    names.insert(name.trim().to_owned());
                }
            }
        }
    }
    (files, names)
}

/// The metric contract: every family in the series table of `docs/metrics.md` (the table
/// headed `| metric | type | ...`), with its type.
fn documented_metrics() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo_path("docs/metrics.md")).unwrap();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with("| metric | type |"))
        .skip(2);
    let mut out = BTreeMap::new();
    for line in lines.by_ref().take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1]
            .strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .unwrap_or_else(|| panic!("not a metric name: {line}"));
        assert!(
            ["counter", "gauge", "histogram"].contains(&cells[2]),
            "not a metric type: {line}"
        );
        assert!(
            out.insert(name.to_owned(), cells[2].to_owned()).is_none(),
            "documented twice: {name}"
        );
    }
    assert!(
        out.len() > 20,
        "the series table of docs/metrics.md was not found: {out:?}"
    );
    out
}

/// Every family in a Prometheus text exposition, with its `# TYPE`.
fn exported_metrics(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

/// Whether `name` occurs in `text` as a whole metric name (not as part of a longer one).
fn mentions(text: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    text.match_indices(name)
        .any(|(at, _)| !text[..at].ends_with(word) && !text[at + name.len()..].starts_with(word))
}

/// Whether a dashboard's queries show the documented family `name` of type `kind`: a
/// histogram through its buckets, or through both its sum and its count.
fn shows(exprs: &str, name: &str, kind: &str) -> bool {
    if kind == "histogram" {
        mentions(exprs, &format!("{name}_bucket"))
            || (mentions(exprs, &format!("{name}_sum"))
                && mentions(exprs, &format!("{name}_count")))
    } else {
        mentions(exprs, name)
    }
}

// ------------------------------------------------------------------------------ structure

#[test]
fn dashboard_is_provisionable_and_covers_the_metrics() {
    let dash = dashboard();
    assert_eq!(dash["uid"], "bedrock-meter");
    assert!(dash["id"].is_null(), "provisioned dashboards carry no id");

    let vars: BTreeMap<&str, &Value> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    assert_eq!(
        vars.keys().copied().collect::<Vec<_>>(),
        ["app", "datasource", "model"]
    );
    assert_eq!(vars["datasource"]["type"], "datasource");
    assert_eq!(vars["datasource"]["query"], "prometheus");
    for name in ["app", "model"] {
        let v = vars[name];
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
        assert_eq!(v["includeAll"], true, "{name}");
        assert_eq!(v["multi"], true, "{name}");
        assert_eq!(v["allValue"], ".*", "{name}");
    }

    let mut ids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    let mut all_exprs = String::new();
    let mut boxes = Vec::new();
    for p in panels(&dash) {
        let t = title(p);
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate id: {t}");
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(w > 0 && h > 0 && x + w <= 24, "{t}: bad gridPos {g}");
        for (other, (ox, oy, ow, oh)) in &boxes {
            let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
            assert!(!overlap, "{t} overlaps {other}");
        }
        boxes.push((t.to_owned(), (x, y, w, h)));
        if p["type"] == "row" {
            continue;
        }
        assert!(titles.insert(t), "duplicate title: {t}");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{t}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{t}: no query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{t}");
            all_exprs.push_str(target["expr"].as_str().unwrap());
            all_exprs.push('\n');
        }
    }
    // Every series of the metric contract (docs/metrics.md) is on the dashboard, but for the
    // few listed, with their reason.
    let documented = documented_metrics();
    let exempt: BTreeMap<&str, &str> = NOT_ON_DASHBOARD.iter().copied().collect();
    for (metric, kind) in &documented {
        let on_dashboard = shows(&all_exprs, metric, kind);
        match exempt.get(metric.as_str()) {
            None => assert!(on_dashboard, "no panel shows {metric}"),
            Some(why) => assert!(
                !on_dashboard,
                "{metric} is on the dashboard now; drop it from NOT_ON_DASHBOARD ({why})"
            ),
        }
    }
    for (metric, _) in NOT_ON_DASHBOARD {
        assert!(
            documented.contains_key(*metric),
            "NOT_ON_DASHBOARD names an undocumented metric: {metric}"
        );
    }
}

// ------------------------------------------------------------------------------ Prometheus

fn find_prometheus() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file())
}

/// A `prometheus` child process with its own storage; killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) every second, with the project's
    /// rule files, on a free loopback port. Waits until it is ready.
    async fn start(binary: &Path, target: &str, rule_files: &[PathBuf]) -> Prometheus {
        let mut last_log = String::new();
        // The port is picked free, then released; retry should another process take it.
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let rules: Vec<String> = rule_files
                .iter()
                .map(|f| format!("  - {}\n", serde_json::to_string(f).unwrap()))
                .collect();
            let config = format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n{}\
                 scrape_configs:\n  - job_name: bedrock-meter\n    static_configs:\n      - targets: [\"{target}\"]\n",
                rules.concat()
            );
            let config_path = dir.path().join("prometheus.yml");
            std::fs::write(&config_path, config).unwrap();
            let log = dir.path().join("prometheus.log");
            let out = File::create(&log).unwrap();
            let port = free_port();
            let child = Command::new(binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap();
            let mut prom = Prometheus {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if prom.child.try_wait().unwrap().is_some() {
                    break;
                }
                if is_ready(port).await {
                    return prom;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            last_log = prom.log_text();
        }
        panic!("prometheus did not become ready; its output:\n{last_log}");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs an instant query; Err is Prometheus's error message.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let url = format!(
            "{}/api/v1/query?query={}",
            self.url,
            utf8_percent_encode(expr, NON_ALPHANUMERIC)
        );
        let (status, body) = get_json(&url).await;
        if status != 200 || body["status"] != "success" {
            return Err(format!("HTTP {status}: {}", body["error"]));
        }
        match body["data"]["resultType"].as_str() {
            Some("vector") => Ok(body["data"]["result"].as_array().unwrap().clone()),
            Some("scalar") => Ok(vec![
                serde_json::json!({"metric": {}, "value": body["data"]["result"]}),
            ]),
            other => Err(format!("unexpected result type {other:?}")),
        }
    }

    async fn api(&self, path: &str) -> Value {
        let (status, body) = get_json(&format!("{}{path}", self.url)).await;
        assert_eq!(status, 200, "{path}: {body}");
        body["data"].clone()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True once Prometheus answers `/-/ready` with 200. Checks the port first, so a process
/// that is still starting is not an HTTP client error.
async fn is_ready(port: u16) -> bool {
    if tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        return false;
    }
    let (status, _, _) = http_get(&format!("http://127.0.0.1:{port}/-/ready")).await;
    status == 200
}

async fn get_json(url: &str) -> (u16, Value) {
    let (status, _, body) = http_get(url).await;
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, value)
}

/// True if the result holds at least one finite value.
fn has_finite(result: &[Value]) -> bool {
    result.iter().any(|s| {
        s["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    })
}

// ------------------------------------------------------------------------------ traffic

async fn converse(client: &Client, model: &str, prompt: &str) {
    let _ = client
        .converse()
        .model_id(model)
        .messages(user_message(prompt))
        .send()
        .await;
}

/// A call with a system prompt big enough to cache (4,096 bytes and up): the same one every
/// time, so the prefix-reuse series count it reused from the second call on.
async fn converse_with_long_system_prompt(client: &Client, model: &str, prompt: &str) {
    let system = "You answer questions about the example product catalogue. ".repeat(80);
    let _ = client
        .converse()
        .model_id(model)
        .system(aws_sdk_bedrockruntime::types::SystemContentBlock::Text(
            system,
        ))
        .messages(user_message(prompt))
        .send()
        .await;
}

async fn converse_stream(client: &Client, model: &str, prompt: &str) {
    if let Ok(mut out) = client
        .converse_stream()
        .model_id(model)
        .messages(user_message(prompt))
        .send()
        .await
    {
        while let Ok(Some(_)) = out.stream.recv().await {}
    }
}

fn anthropic_body(prompt: &str) -> Blob {
    let body = serde_json::json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": prompt}],
    });
    Blob::new(serde_json::to_vec(&body).unwrap())
}

async fn invoke(client: &Client, model: &str, prompt: &str) {
    let _ = client
        .invoke_model()
        .model_id(model)
        .content_type("application/json")
        .body(anthropic_body(prompt))
        .send()
        .await;
}

async fn invoke_stream(client: &Client, model: &str, prompt: &str) {
    if let Ok(mut out) = client
        .invoke_model_with_response_stream()
        .model_id(model)
        .content_type("application/json")
        .body(anthropic_body(prompt))
        .send()
        .await
    {
        while let Ok(Some(_)) = out.body.recv().await {}
    }
}

const APPS: [&str; 4] = ["checkout", "search", "support", "batch"];
/// Beyond `--max-apps`: folded into `other`.
const OVERFLOW_APP: &str = "overflow-app";

/// The virtual key of `app` in the keys file below.
fn key_of(app: &str) -> aws_credential_types::Credentials {
    let id = format!("AKID{}", app.to_ascii_uppercase().replace('-', ""));
    aws_credential_types::Credentials::new(id, format!("{app}-secret"), None, None, "test")
}

fn keys_file(apps: &[&str]) -> String {
    apps.iter()
        .map(|app| {
            let key = key_of(app);
            format!(
                "[[key]]\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\napp = \"{app}\"\n\n",
                key.access_key_id(),
                key.secret_access_key()
            )
        })
        .collect()
}

/// A real SDK client signing with `credentials` (keys mode: the key decides the app).
fn keyed_client(h: &Harness, credentials: aws_credential_types::Credentials) -> Client {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(aws_sdk_bedrockruntime::config::BehaviorVersion::latest())
        .region(aws_sdk_bedrockruntime::config::Region::new("us-east-1"))
        .endpoint_url(h.proxy.url())
        .credentials_provider(credentials)
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

const LIMITS: &str = r#"
warn_percent = 1
[default]
monthly_usd = "1000"
[apps.batch]
daily_usd = "0.05"
[apps.other]
requests_per_minute = 0
"#;

/// The proxy as the tests here run it: keys mode with a key per app, room for the four apps
/// (the fifth folds into `other`), the keys file and a copy of the shipped rate card watched,
/// a ledger, and limits ([`LIMITS`], watched). The files live in `dir`.
async fn metered_proxy(dir: &Path) -> Harness {
    let keys_path = dir.join("keys.toml");
    std::fs::write(
        &keys_path,
        keys_file(&[APPS.as_slice(), &[OVERFLOW_APP]].concat()),
    )
    .unwrap();
    let keys = bedrock_meter::proxy::identify::Keys::load(&keys_path)
        .unwrap()
        .keys;
    let rates_path = dir.join("rates.toml");
    std::fs::copy(repo_path("rates/bedrock.toml"), &rates_path).unwrap();
    let ledger = dir.join("ledger.jsonl");
    // Limits every app is checked against: a budget for all, one batch crosses the soft
    // threshold of at its first call, and none at all for the apps folded into `other`.
    let limits_path = dir.join("limits.toml");
    std::fs::write(&limits_path, LIMITS).unwrap();
    let limits = bedrock_meter::config::LimitsConfig {
        file: bedrock_meter::proxy::limits::file::LimitsFile::load(&limits_path).unwrap(),
        path: Some(limits_path),
        redis: None,
        fail_closed: false,
    };
    let h = Harness::start_with_simulator(|c, simulator| {
        c.limits = Some(limits);
        // Per-app sessions from the simulator's STS (`--assume-role`).
        c.assume_role = Some(bedrock_meter::aws::sessions::AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/bedrock-apps".to_owned(),
            duration: Duration::from_secs(3600),
            endpoint: Some(simulator.to_owned()),
            region: "us-east-1".to_owned(),
        });
        c.max_apps = APPS.len();
        c.keys = Some(keys);
        c.keys_path = Some(keys_path);
        c.rates_path = Some(rates_path);
        c.reload_interval = Duration::from_millis(100);
        c.ledger = Some(bedrock_meter::meter::ledger::Target::File(ledger));
    })
    .await;
    // One call while STS is down: it goes out under the meter's own identity and is counted in
    // bedrock_assume_role_failures_total; the app's later calls get their session.
    h.simulator.set_sts_down(true);
    converse(
        &keyed_client(&h, key_of(APPS[0])),
        NOVA_MICRO,
        "[[sim input=10 output=2]]",
    )
    .await;
    h.simulator.set_sts_down(false);
    h
}

/// Edits the watched rate card (a comment line more) and waits until the proxy reloaded it.
async fn reload_rate_card(h: &Harness, dir: &Path) {
    let path = dir.join("rates.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    write_atomically(&path, &format!("{text}\n# edited\n"));
    wait_for(
        h,
        "bedrock_rate_card_reloads_total",
        &[("result", "ok")],
        1.0,
    )
    .await;
}

/// A caller whose signature does not check (the right key id, the wrong secret): refused, an
/// auth failure.
fn intruder(h: &Harness) -> Client {
    let key = key_of("checkout");
    keyed_client(
        h,
        aws_credential_types::Credentials::new(
            key.access_key_id(),
            "not-the-secret",
            None,
            None,
            "test",
        ),
    )
}

/// One round of an app's traffic; `n` counts rounds, so faults come at a fixed rhythm.
async fn round(app: &str, client: &Client, n: u32) {
    match app {
        // Priced Converse with cache reads; every third call throttled; an unpriced model;
        // every fifth answer truncated (usage unreadable).
        "checkout" => {
            let fault = if n % 3 == 2 { " fault=throttle" } else { "" };
            let p = format!(
                "[[sim input=600 output={} cache_read=400{fault}]]",
                80 + n % 5
            );
            converse(client, NOVA_MICRO, &p).await;
            converse_with_long_system_prompt(client, NOVA_MICRO, "[[sim input=1300 output=20]]")
                .await;
            converse(client, UNPRICED, "[[sim input=300 output=40]]").await;
            // An image, billed per image rather than per token.
            let _ = client
                .invoke_model()
                .model_id(NOVA_CANVAS)
                .content_type("application/json")
                .body(aws_sdk_bedrockruntime::primitives::Blob::new(
                    r#"{"taskType":"TEXT_IMAGE","textToImageParams":{"text":"a chart"},"imageGenerationConfig":{"numberOfImages":1,"width":1024,"height":1024}}"#,
                ))
                .send()
                .await;
            if n % 5 == 4 {
                converse(client, NOVA_MICRO, "[[sim fault=malformed]]").await;
            }
        }
        // Streams with a time to first token; in every five rounds one ConverseStream gets a
        // 500 and one ends with an exception frame.
        "search" => {
            let fault = match n % 5 {
                3 => " fault=internal",
                4 => " fault=midstream exception=modelStreamErrorException after=1",
                _ => "",
            };
            let p = format!(
                "[[sim input=120 output=15 cache_read=80 cache_write=10 ttft_ms=30 gap_ms=2{fault}]]"
            );
            converse_stream(client, US_HAIKU_35, &p).await;
            // A prompt router, which the simulator routes to Claude 3.5 Haiku.
            converse(client, ROUTER, "[[sim input=70 output=12]]").await;
            invoke_stream(
                client,
                US_HAIKU_35,
                "[[sim input=50 output=6 cache_read=20 ttft_ms=20]]",
            )
            .await;
        }
        // InvokeModel from headers; every fourth a 503.
        "support" => {
            let fault = if n % 4 == 3 { " fault=unavailable" } else { "" };
            invoke(
                client,
                HAIKU_3,
                &format!("[[sim input=90 output=20{fault}]]"),
            )
            .await;
        }
        "batch" => {
            converse(client, NOVA_LITE, "[[sim input=2000 output=60]]").await;
            // Served at Priority, which the card does not price for Nova Micro: a fallback
            // price, counted in bedrock_pricing_anomalies_total.
            if n.is_multiple_of(2) {
                converse(
                    client,
                    NOVA_MICRO,
                    "[[sim input=10 output=10 tier=priority]]",
                )
                .await;
            }
        }
        // Refused: a signature that does not check.
        "intruder" => converse(client, NOVA_LITE, "[[sim input=100 output=10]]").await,
        // Apps beyond --max-apps: folded into `other`.
        _ => converse(client, NOVA_LITE, "[[sim input=100 output=10]]").await,
    }
}

// ------------------------------------------------------------------------------ the test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_rules_evaluate_against_live_prometheus() {
    let Some(binary) = find_prometheus() else {
        if std::env::var_os("CI").is_some() {
            panic!("the prometheus binary is not on PATH (Debian: apt-get install prometheus)");
        }
        // Written to the stderr handle, not with eprintln!, so the test harness does not
        // capture it: the skip shows in a normal `cargo test` run.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED dashboard_and_rules_evaluate_against_live_prometheus: no prometheus \
             binary on PATH (Debian: apt-get install prometheus)"
        );
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let h = metered_proxy(dir.path()).await;
    let (rule_files, declared) = declared_rules();
    let target = h.proxy.admin_addr.to_string();
    let prom = Prometheus::start(&binary, &target, &rule_files).await;

    // Each app makes its first request before the extra one, so it keeps its own label.
    for app in APPS {
        round(app, &keyed_client(&h, key_of(app)), 0).await;
    }
    let mut traffic = tokio::task::JoinSet::new();
    for app in APPS.into_iter().chain([OVERFLOW_APP, "intruder"]) {
        let client = if app == "intruder" {
            intruder(&h)
        } else {
            keyed_client(&h, key_of(app))
        };
        traffic.spawn(async move {
            for n in 1.. {
                round(app, &client, n).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    // A scrape or two with the first card, then a new one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    reload_rate_card(&h, dir.path()).await;
    // Enough scrapes for rate() and for the rules to have run many times.
    tokio::time::sleep(Duration::from_secs(7)).await;

    // Evaluate everything; retry for a while in case a scrape or rule evaluation lags.
    let dash = dashboard();
    let deadline = Instant::now() + Duration::from_secs(20);
    let failures = loop {
        let failures = check_all(&prom, &dash, &declared).await;
        if failures.is_empty() || Instant::now() > deadline {
            break failures;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    traffic.abort_all();
    assert!(
        failures.is_empty(),
        "{} problem(s):\n  {}\n\nprometheus output:\n{}",
        failures.len(),
        failures.join("\n  "),
        prom.log_text()
    );
}

/// Every check; returns what failed, one line each.
async fn check_all(prom: &Prometheus, dash: &Value, declared: &BTreeSet<String>) -> Vec<String> {
    let mut failures = Vec::new();

    // 1. Dashboard panels: with every app and model, then with two apps and four models
    //    picked (Grafana's multi-value regex form, dots escaped).
    let selections = [
        (".*", ".*"),
        (
            "(checkout|search)",
            r"(amazon\\.nova-micro-v1:0|us\\.anthropic\\.claude-3-5-haiku-20241022-v1:0|acme\\.mystery-model-v1:0|amazon\\.nova-canvas-v1:0)",
        ),
    ];
    for (app, model) in selections {
        for panel in query_panels(dash) {
            let t = title(panel);
            for expr in exprs(panel) {
                let q = substitute(expr, app, model);
                match prom.query(&q).await {
                    Err(e) => failures.push(format!("panel {t:?}: invalid query {q}: {e}")),
                    Ok(result) if !has_finite(&result) => failures.push(format!(
                        "panel {t:?} (app={app}, model={model}): no data from {q}"
                    )),
                    Ok(_) => {}
                }
            }
        }
    }

    // 2. Template variables: label_values(SELECTOR, LABEL) has values.
    for var in dash["templating"]["list"].as_array().unwrap() {
        let Some(def) = var["definition"].as_str() else {
            continue;
        };
        let inner = def
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unexpected variable query {def}"));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let q = format!(
            "count by ({}) ({})",
            label.trim(),
            substitute(selector, ".*", ".*")
        );
        match prom.query(&q).await {
            Ok(r) if !r.is_empty() => {}
            other => failures.push(format!("variable {}: {q}: {other:?}", var["name"])),
        }
    }

    // 3. Rules: all loaded and healthy, each expression valid, each recording rule has
    //    recorded something.
    let groups = prom.api("/api/v1/rules").await;
    let mut loaded = BTreeSet::new();
    for group in groups["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["name"].as_str().unwrap();
            loaded.insert(name.to_owned());
            if rule["health"] != "ok" {
                failures.push(format!(
                    "rule {name}: health {} {}",
                    rule["health"], rule["lastError"]
                ));
            }
            let expr = rule["query"].as_str().unwrap();
            if let Err(e) = prom.query(expr).await {
                failures.push(format!("rule {name}: invalid expression {expr}: {e}"));
            }
            if rule["type"] == "recording" {
                match prom.query(name).await {
                    Ok(r) if has_finite(&r) => {}
                    other => failures.push(format!("recording rule {name}: no data: {other:?}")),
                }
            }
        }
    }
    if &loaded != declared {
        failures.push(format!(
            "rules loaded by Prometheus {loaded:?} differ from the rule files {declared:?}"
        ));
    }

    // 4. Alerts the traffic must trigger, and ones it must not.
    let alerts = prom.api("/api/v1/alerts").await;
    let mut active: BTreeSet<String> = BTreeSet::new();
    for a in alerts["alerts"].as_array().unwrap() {
        let labels = &a["labels"];
        let subject = ["model", "label", "operation", "reason", "app"]
            .iter()
            .filter_map(|k| labels[*k].as_str().map(|v| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(",");
        active.insert(format!(
            "{} {subject} {}",
            labels["alertname"].as_str().unwrap(),
            a["state"].as_str().unwrap()
        ));
    }
    for want in [
        format!("BedrockUnpricedModel model={UNPRICED} firing"),
        "BedrockLabelOverflow label=app firing".to_owned(),
        "BedrockUsageMissing operation=Converse,reason=unparseable firing".to_owned(),
        // Pending: these wait 10 minutes before firing.
        format!("BedrockThrottling model={NOVA_MICRO} pending"),
        format!("BedrockUpstreamErrors model={US_HAIKU_35} pending"),
        format!("BedrockUpstreamErrors model={HAIKU_3} pending"),
    ] {
        if !active.contains(&want) {
            failures.push(format!("alert not active: {want}; active: {active:?}"));
        }
    }
    for quiet in [
        "BedrockMeterDown",
        "BedrockSpendBurn",
        "BedrockOutputTokensDrift",
    ] {
        if active.iter().any(|a| a.starts_with(&format!("{quiet} "))) {
            failures.push(format!("alert {quiet} should not be active: {active:?}"));
        }
    }
    failures
}

// ------------------------------------------------------------------------------ the contract

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exported_metrics_are_exactly_the_documented_ones() {
    let dir = tempfile::tempdir().unwrap();
    let h = metered_proxy(dir.path()).await;
    // Traffic that makes every series appear: a round of each app, the app past the cap, a
    // refused signature, a fallback price, a rate card reload.
    for app in APPS {
        round(app, &keyed_client(&h, key_of(app)), 4).await;
    }
    round(OVERFLOW_APP, &keyed_client(&h, key_of(OVERFLOW_APP)), 0).await;
    round("intruder", &intruder(&h), 0).await;
    converse(
        &keyed_client(&h, key_of("batch")),
        NOVA_MICRO,
        "[[sim input=10 output=10 tier=priority]]",
    )
    .await;
    reload_rate_card(&h, dir.path()).await;

    let m = h.metrics().await;
    for (name, labels) in [
        ("bedrock_label_overflow_total", &[("label", "app")][..]),
        (
            "bedrock_auth_failures_total",
            &[("reason", "bad_signature")],
        ),
        (
            "bedrock_pricing_anomalies_total",
            &[("model", NOVA_MICRO), ("reason", "tier_not_priced")],
        ),
        ("bedrock_stream_exceptions_total", &[]),
        ("bedrock_usage_missing_total", &[]),
        ("bedrock_unpriced_requests_total", &[]),
    ] {
        assert!(m.value(name, labels) > 0.0, "{name}{labels:?}");
    }
    assert_eq!(m.value("bedrock_keys_loaded", &[]), (APPS.len() + 1) as f64);

    let (status, _, body) = http_get(&format!("{}/metrics", h.proxy.admin_url())).await;
    assert_eq!(status, 200);
    let exported = exported_metrics(std::str::from_utf8(&body).unwrap());
    let documented = documented_metrics();
    let undocumented: Vec<_> = exported
        .iter()
        .filter(|(name, _)| !documented.contains_key(*name))
        .collect();
    let missing: Vec<_> = documented
        .iter()
        .filter(|(name, _)| {
            !exported.contains_key(*name) && !ONLY_WITH_TLS.contains(&name.as_str())
        })
        .collect();
    for name in ONLY_WITH_TLS {
        assert!(documented.contains_key(*name), "{name} is not documented");
        assert!(!exported.contains_key(*name), "{name} exported without TLS");
    }
    assert!(
        undocumented.is_empty() && missing.is_empty(),
        "exported but not in docs/metrics.md: {undocumented:?}; documented but not exported: {missing:?}"
    );
    let mut documented = documented;
    documented.retain(|name, _| !ONLY_WITH_TLS.contains(&name.as_str()));
    assert_eq!(exported, documented, "the types differ");
}
