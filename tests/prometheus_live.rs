//! The dashboard and the Prometheus rules against a real Prometheus.
//!
//! A proxy serves simulated multi-app traffic (priced and unpriced models, all four metered
//! operations, throttling, 5xx, stream exceptions, unreadable usage, label overflow) while a
//! `prometheus` process scrapes its admin address every second and loads
//! `dashboards/rules/*.yml`. Every dashboard query (variables substituted the way Grafana
//! does) and every rule expression is then evaluated through `/api/v1/query`: an invalid one
//! fails the test, and so does a panel that should have data and has none. Alert states are
//! checked too.
//!
//! Needs the `prometheus` binary (Debian's `prometheus` package). Without it the test prints
//! a skip message, unless `CI` is set, in which case it fails.
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

/// Panels that may legitimately show no data after the traffic below, with the reason.
/// Every other panel must return at least one finite value.
const ALLOWED_EMPTY: &[(&str, &str)] = &[
    (
        "Auth failures by reason (req/s)",
        "bedrock_auth_failures_total comes with keys mode, not exported by this version",
    ),
    (
        "Usage ledger drops (records/s)",
        "bedrock_ledger_dropped_total comes with the usage ledger, not exported by this version",
    ),
    (
        "Rate card reloads",
        "bedrock_rate_card_reloads_total comes with rate card reloading, not exported by this version",
    ),
    (
        "Requests by service tier (req/s)",
        "bedrock_service_tier_requests_total is not exported by this version",
    ),
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
        }
    }
    for (t, _) in ALLOWED_EMPTY {
        assert!(titles.contains(t), "ALLOWED_EMPTY names no panel: {t}");
    }
    // Every series of the metric contract (docs/metrics.md) is on the dashboard.
    for metric in [
        "bedrock_requests_total",
        "bedrock_tokens_total",
        "bedrock_cost_usd_total",
        "bedrock_output_tokens_",
        "bedrock_input_tokens_",
        "bedrock_request_duration_seconds_bucket",
        "bedrock_time_to_first_token_seconds_bucket",
        "bedrock_proxy_overhead_seconds_bucket",
        "bedrock_unpriced_requests_total",
        "bedrock_usage_missing_total",
        "bedrock_rate_card_info",
        "bedrock_in_flight_requests",
        "bedrock_label_overflow_total",
        "bedrock_stream_exceptions_total",
    ] {
        assert!(all_exprs.contains(metric), "no panel shows {metric}");
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
            converse(client, UNPRICED, "[[sim input=300 output=40]]").await;
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
        "batch" => converse(client, NOVA_LITE, "[[sim input=2000 output=60]]").await,
        // Apps beyond --max-apps: folded into `other`.
        _ => converse(client, NOVA_LITE, "[[sim input=100 output=10]]").await,
    }
}

const APPS: [&str; 4] = ["checkout", "search", "support", "batch"];

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

    // Room for the four apps; a fifth folds into `other` (label overflow).
    let h = Harness::start_with(|c| c.max_apps = APPS.len()).await;
    let (rule_files, declared) = declared_rules();
    let target = h.proxy.admin_addr.to_string();
    let prom = Prometheus::start(&binary, &target, &rule_files).await;

    // Each app makes its first request before the extra one, so it keeps its own label.
    for app in APPS {
        round(app, &h.client(app), 0).await;
    }
    let mut traffic = tokio::task::JoinSet::new();
    for app in APPS.into_iter().chain(["overflow-app"]) {
        let client = h.client(app);
        traffic.spawn(async move {
            for n in 1.. {
                round(app, &client, n).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    // Enough scrapes for rate() and for the rules to have run many times.
    tokio::time::sleep(Duration::from_secs(10)).await;

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
    let allowed: BTreeMap<&str, &str> = ALLOWED_EMPTY.iter().copied().collect();

    // 1. Dashboard panels: with every app and model, then with two apps and three models
    //    picked (Grafana's multi-value regex form, dots escaped).
    let selections = [
        (".*", ".*"),
        (
            "(checkout|search)",
            r"(amazon\\.nova-micro-v1:0|us\\.anthropic\\.claude-3-5-haiku-20241022-v1:0|acme\\.mystery-model-v1:0)",
        ),
    ];
    for (app, model) in selections {
        for panel in query_panels(dash) {
            let t = title(panel);
            for expr in exprs(panel) {
                let q = substitute(expr, app, model);
                match prom.query(&q).await {
                    Err(e) => failures.push(format!("panel {t:?}: invalid query {q}: {e}")),
                    Ok(result) if !allowed.contains_key(t) && !has_finite(&result) => failures
                        .push(format!(
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
