//! Label safety under attack: floods of distinct bogus app names and model ids must leave the
//! number of exported series bounded by the configured caps (`--max-apps`, `--max-models`).
//!
//! Two tests: one end to end through the proxy (thousands of HTTP requests with bounded
//! concurrency), and one that drives a million distinct values through the meter's label path
//! in-process, without HTTP. Both assert the `/metrics` line count against a bound computed
//! from the caps, that it stops growing once the caps are reached, and that every fold into
//! `other` was counted in `bedrock_label_overflow_total`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bedrock_meter::api::Operation;
use bedrock_meter::meter::labels::{INVALID, NO_MODEL, OTHER, UNKNOWN_APP, UNVERIFIED};
use bedrock_meter::pricing::Usage;
use bedrock_meter::tools::scrape::{self, Sample};
use bytes::Bytes;
use common::{Harness, start_proxy};
use futures_util::StreamExt;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// App labels that are not client-chosen names (`unauthenticated` is keys mode's).
const FIXED_APPS: [&str; 4] = [INVALID, OTHER, UNKNOWN_APP, "unauthenticated"];
const FIXED_MODELS: [&str; 4] = [INVALID, OTHER, UNVERIFIED, NO_MODEL];

/// A legitimate caller, admitted before the attack starts: it must keep its own series.
const LEGIT_APP: &str = "checkout";
const LEGIT_MODEL: &str = "amazon.nova-micro-v1:0";

/// The exposition and what it says about labels.
struct Exposition {
    lines: usize,
    samples: Vec<Sample>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        Exposition {
            lines: text.lines().filter(|l| !l.trim().is_empty()).count(),
            samples: scrape::parse(text),
        }
    }

    /// Every value the label takes anywhere.
    fn values(&self, label: &str) -> BTreeSet<&str> {
        self.samples
            .iter()
            .filter_map(|s| s.labels.get(label).map(String::as_str))
            .collect()
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        scrape::sum(&self.samples, name, labels)
    }

    /// The most lines the exposition could have if `app` took at most `apps` values and `model`
    /// at most `models`: per sample name, the combinations of its other labels seen (operation,
    /// status, token type, bucket, ...: the code's own constants, whose count the flood cannot
    /// change) times the values `app` and `model` may take, plus the `# HELP` and `# TYPE` lines
    /// of each family.
    fn bound(&self, apps: usize, models: usize) -> usize {
        let mut rest: BTreeMap<&str, BTreeSet<Vec<(&str, &str)>>> = BTreeMap::new();
        let mut factor: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &self.samples {
            let others = s
                .labels
                .iter()
                .filter(|(k, _)| *k != "app" && *k != "model")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            rest.entry(&s.name).or_default().insert(others);
            let f = if s.labels.contains_key("app") {
                apps
            } else {
                1
            } * if s.labels.contains_key("model") {
                models
            } else {
                1
            };
            factor.insert(&s.name, f);
        }
        let series: usize = rest
            .iter()
            .map(|(name, combos)| combos.len() * factor[name])
            .sum();
        let families = self
            .samples
            .iter()
            .map(|s| family(&s.name))
            .collect::<BTreeSet<_>>()
            .len();
        series + 2 * families
    }
}

fn family(sample: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| sample.strip_suffix(suffix))
        .unwrap_or(sample)
}

/// Asserts the label values stay within the caps (plus `slack` for racing first sightings,
/// which the guard allows by design) and the line count within the bound they imply. Returns
/// the admitted (non-fixed) app and model labels.
fn assert_bounded(
    e: &Exposition,
    max_apps: usize,
    max_models: usize,
    slack: usize,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let apps = e.values("app");
    let models = e.values("model");
    let admitted_apps: BTreeSet<String> = apps
        .iter()
        .filter(|a| !FIXED_APPS.contains(a))
        .map(|a| a.to_string())
        .collect();
    let admitted_models: BTreeSet<String> = models
        .iter()
        .filter(|m| !FIXED_MODELS.contains(m))
        .map(|m| m.to_string())
        .collect();
    assert!(
        admitted_apps.len() <= max_apps + slack,
        "{} app labels for a cap of {max_apps}: {admitted_apps:?}",
        admitted_apps.len()
    );
    assert!(
        admitted_models.len() <= max_models + slack,
        "{} model labels for a cap of {max_models}: {admitted_models:?}",
        admitted_models.len()
    );
    let bound = e.bound(
        max_apps + slack + FIXED_APPS.len(),
        max_models + slack + FIXED_MODELS.len(),
    );
    assert!(
        e.lines <= bound,
        "{} lines in /metrics, bound {bound}",
        e.lines
    );
    (admitted_apps, admitted_models)
}

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build_http()
}

async fn scrape_text(client: &HttpClient, admin_url: &str) -> String {
    let req = http::Request::get(format!("{admin_url}/metrics"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// What request `i` of the attack sends. App names and model ids vary independently (periods 7
/// and 6), so every combination of their kinds recurs throughout the attack.
struct Attack {
    app: Option<String>,
    path: String,
    prompt: &'static str,
}

/// Kinds of app name.
enum AppKind {
    /// A valid, never-seen name: admitted until the cap, then folded into `other`.
    Fresh,
    /// Not a valid label value (`invalid`).
    Invalid,
    /// No name at all (`unknown`).
    Absent,
    /// A name the proxy uses for its own placeholders, declared by the client: it means the
    /// same whoever says it.
    Reserved(&'static str),
}

/// The app labels that are the proxy's own: never admitted under the cap, never folded.
const RESERVED_APPS: [&str; 4] = [UNKNOWN_APP, OTHER, INVALID, "unauthenticated"];

/// Kinds of model id.
#[derive(Clone, Copy, PartialEq)]
enum ModelKind {
    /// A valid-looking id Bedrock (the simulator) answers with success: vouched for, so
    /// admitted until the cap, then folded into `other`.
    VouchedFresh,
    /// A valid-looking id Bedrock rejects: `unverified`, never admitted.
    Rejected,
    /// Characters no model id has: `invalid`.
    BadChars,
    /// Longer than any model id: `invalid`.
    TooLong,
    /// Not a Bedrock operation at all: 404, model `none`.
    UnknownPath,
    /// The legitimate model admitted before the attack.
    Legit,
}

const MODEL_KINDS: [ModelKind; 6] = [
    ModelKind::VouchedFresh,
    ModelKind::Rejected,
    ModelKind::BadChars,
    ModelKind::TooLong,
    ModelKind::UnknownPath,
    ModelKind::Legit,
];

fn app_kind(i: usize) -> AppKind {
    match i % 7 {
        0 | 2 | 4 | 6 => AppKind::Fresh,
        1 => AppKind::Absent,
        3 => AppKind::Reserved(RESERVED_APPS[(i / 7) % RESERVED_APPS.len()]),
        _ => AppKind::Invalid,
    }
}

fn model_kind(i: usize) -> ModelKind {
    MODEL_KINDS[i % MODEL_KINDS.len()]
}

fn attack(i: usize) -> Attack {
    let app = match app_kind(i) {
        AppKind::Fresh => Some(format!("bogus-app-{i}")),
        AppKind::Invalid => Some(format!("bogus app {i}!")),
        AppKind::Absent => None,
        AppKind::Reserved(name) => Some(name.to_owned()),
    };
    let (label, action, prompt) = match model_kind(i) {
        ModelKind::VouchedFresh => (format!("acme.bogus-{i}-v1%3A0"), "converse", "hi"),
        ModelKind::Rejected => (
            format!("acme.rejected-{i}-v1%3A0"),
            "converse",
            "[[sim fault=unknown_model]]",
        ),
        ModelKind::BadChars => (format!("acme.bogus%20{i}%2A"), "converse", "hi"),
        ModelKind::TooLong => (format!("acme.{}{i}", "x".repeat(300)), "converse", "hi"),
        ModelKind::UnknownPath => (format!("acme.bogus-{i}"), "explode", "hi"),
        ModelKind::Legit => ("amazon.nova-micro-v1%3A0".to_owned(), "converse", "hi"),
    };
    Attack {
        app,
        path: format!("/model/{label}/{action}"),
        prompt,
    }
}

async fn send(client: &HttpClient, base: &str, a: &Attack) -> u16 {
    // A path the proxy refuses is answered before the body is read: send none, so the
    // connection stays reusable.
    let body = if a.path.ends_with("/explode") {
        String::new()
    } else {
        format!(
            r#"{{"messages":[{{"role":"user","content":[{{"text":"{}"}}]}}]}}"#,
            a.prompt
        )
    };
    let mut req =
        http::Request::post(format!("{base}{}", a.path)).header("content-type", "application/json");
    if let Some(app) = &a.app {
        req = req.header("x-bedrock-meter-app", app);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{}: {e:?}", a.path));
    let status = resp.status().as_u16();
    resp.into_body().collect().await.unwrap();
    status
}

/// Sends requests `range` of the attack, `concurrency` at a time.
async fn flood(client: &HttpClient, base: &str, range: std::ops::Range<usize>, concurrency: usize) {
    futures_util::stream::iter(range)
        .map(|i| async move {
            let a = attack(i);
            let status = send(client, base, &a).await;
            let expected = match model_kind(i) {
                ModelKind::Rejected => 400,
                ModelKind::UnknownPath => 404,
                _ => 200,
            };
            assert_eq!(status, expected, "request {i}: {}", a.path);
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
}

/// End to end: distinct bogus app names and model ids through the proxy and the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_flood_of_bogus_labels_stays_within_the_caps() {
    const MAX_APPS: usize = 6;
    const MAX_MODELS: usize = 6;
    const CONCURRENCY: usize = 32;
    /// Sent one at a time, so the caps fill in a known order: the guard checks a cap before
    /// inserting, without a lock, and first sightings racing on different threads could
    /// overshoot it. Once full, no race can add to it. By then every kind of app name and
    /// model id has been seen.
    const SERIAL: usize = 42;
    const WARM_UP: usize = 1_500;
    const TOTAL: usize = 8_000;

    let h = Harness::start_with(|c| {
        c.region = Some("us-east-1".into());
        c.max_apps = MAX_APPS;
        c.max_models = MAX_MODELS;
    })
    .await;
    let client = client();
    let base = h.proxy.url();
    let admin = h.proxy.admin_url();
    let started = Instant::now();

    // A legitimate caller first: its app and model are admitted before the flood.
    let legit = Attack {
        app: Some(LEGIT_APP.into()),
        path: "/model/amazon.nova-micro-v1%3A0/converse".into(),
        prompt: "hi",
    };
    assert_eq!(send(&client, &base, &legit).await, 200);

    flood(&client, &base, 0..SERIAL, 1).await;
    flood(&client, &base, SERIAL..WARM_UP, CONCURRENCY).await;
    let warm = Exposition::parse(&scrape_text(&client, &admin).await);
    flood(&client, &base, WARM_UP..TOTAL, CONCURRENCY).await;
    // The legitimate caller, during the flood, still gets its own series.
    assert_eq!(send(&client, &base, &legit).await, 200);
    let text = scrape_text(&client, &admin).await;
    let e = Exposition::parse(&text);
    let elapsed = started.elapsed();

    // The first names and ids seen, and only they, were admitted: the caps hold exactly.
    let (apps, models) = assert_bounded(&e, MAX_APPS, MAX_MODELS, 0);
    let first = |n: usize, kind: &dyn Fn(usize) -> bool, name: &dyn Fn(usize) -> String| {
        (0..TOTAL)
            .filter(|&i| kind(i))
            .take(n)
            .map(name)
            .collect::<Vec<_>>()
    };
    let mut want_apps = first(
        MAX_APPS - 1,
        &|i| matches!(app_kind(i), AppKind::Fresh),
        &|i| format!("bogus-app-{i}"),
    );
    want_apps.push(LEGIT_APP.to_owned());
    assert_eq!(apps, want_apps.into_iter().collect());
    let mut want_models = first(
        MAX_MODELS - 1,
        &|i| model_kind(i) == ModelKind::VouchedFresh,
        &|i| format!("acme.bogus-{i}-v1:0"),
    );
    want_models.push(LEGIT_MODEL.to_owned());
    assert_eq!(models, want_models.into_iter().collect());
    assert_eq!(
        e.value(
            "bedrock_requests_total",
            &[("app", LEGIT_APP), ("model", LEGIT_MODEL)]
        ),
        2.0
    );
    // Once the caps are full the flood mints nothing: the exposition has exactly the lines it
    // had after the warm-up, and no new label values.
    assert_eq!(
        e.lines, warm.lines,
        "the series count grew after the caps filled"
    );
    assert_eq!(e.values("app"), warm.values("app"));
    assert_eq!(e.values("model"), warm.values("model"));

    // Every fresh, valid name beyond the ones admitted was folded into `other`, and each fold
    // counted. The proxy's own placeholder apps — no name (`unknown`), and the reserved names
    // a client may declare — never took a slot under the cap, nor were they folded.
    let count = |kind: &dyn Fn(usize) -> bool| (0..TOTAL).filter(|&i| kind(i)).count();
    let fresh_apps = count(&|i| matches!(app_kind(i), AppKind::Fresh));
    let folded_apps = fresh_apps - (MAX_APPS - 1);
    assert_eq!(
        e.value("bedrock_label_overflow_total", &[("label", "app")]) as usize,
        folded_apps
    );
    let declared =
        |name: &str| count(&|i| matches!(app_kind(i), AppKind::Reserved(n) if n == name));
    for (app, requests) in [
        (
            UNKNOWN_APP,
            count(&|i| matches!(app_kind(i), AppKind::Absent)) + declared(UNKNOWN_APP),
        ),
        ("unauthenticated", declared("unauthenticated")),
        (
            INVALID,
            count(&|i| matches!(app_kind(i), AppKind::Invalid)) + declared(INVALID),
        ),
        (OTHER, folded_apps + declared(OTHER)),
    ] {
        assert!(requests > 0, "{app}");
        assert_eq!(
            e.value("bedrock_requests_total", &[("app", app)]) as usize,
            requests,
            "{app}"
        );
    }
    let vouched_models = count(&|i| model_kind(i) == ModelKind::VouchedFresh);
    assert_eq!(
        e.value("bedrock_label_overflow_total", &[("label", "model")]) as usize,
        vouched_models - (MAX_MODELS - 1)
    );
    assert_eq!(
        e.value("bedrock_requests_total", &[]) as usize,
        TOTAL + 2,
        "every request counted"
    );
    assert!(e.value("bedrock_requests_total", &[("model", UNVERIFIED)]) > 0.0);
    assert!(e.value("bedrock_requests_total", &[("model", INVALID)]) > 0.0);
    assert!(e.value("bedrock_requests_total", &[("model", NO_MODEL)]) > 0.0);
    println!(
        "{TOTAL} requests in {elapsed:.1?}: {} lines in /metrics (bound {}), {} app and {} model labels admitted",
        e.lines,
        e.bound(MAX_APPS + FIXED_APPS.len(), MAX_MODELS + FIXED_MODELS.len()),
        apps.len(),
        models.len()
    );
    h.proxy.shutdown().await;
}

/// In-process: a million distinct values through the meter's label path (`Meter::begin`,
/// `Pending::set_model`, `Pending::finish`), as the proxy drives it: half a million requests,
/// each with an app name and a model id never seen before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_bogus_labels_in_process_stay_within_the_caps() {
    const MAX_APPS: usize = 20;
    const MAX_MODELS: usize = 20;
    const TOTAL: usize = 500_000;
    const CHECKPOINT: usize = 25_000;

    // Nothing is forwarded: the upstream is never contacted.
    let proxy = start_proxy("http://127.0.0.1:9", |c| {
        c.max_apps = MAX_APPS;
        c.max_models = MAX_MODELS;
    })
    .await;
    let client = client();
    let admin = proxy.admin_url();
    let state = proxy.state.clone();
    let usage = Usage {
        input: 10,
        output: 5,
        ..Usage::default()
    };
    let started = Instant::now();
    let run = |range: std::ops::Range<usize>| {
        for i in range {
            // Distinct valid names, and a sprinkling of invalid ones.
            let app = if i % 16 == 15 {
                format!("bogus app {i}")
            } else {
                format!("app-{i}")
            };
            let mut pending = state.meter.begin(
                Some(&app),
                Operation::Converse,
                Instant::now(),
                state.rates.load_full(),
            );
            // Distinct ids: most answered with success (vouched), some rejected, some invalid.
            let (model, status) = match i % 8 {
                0..=4 => (format!("acme.model-{i}-v1:0"), StatusCode::OK),
                5 | 6 => (format!("acme.rejected-{i}"), StatusCode::BAD_REQUEST),
                _ => (format!("acme model {i}"), StatusCode::OK),
            };
            pending.set_model(Some(model));
            let outcome = status.is_success().then_some(Ok(usage));
            pending.finish(status, outcome);
        }
    };
    run(0..CHECKPOINT);
    let warm = Exposition::parse(&scrape_text(&client, &admin).await);
    run(CHECKPOINT..TOTAL);
    let e = Exposition::parse(&scrape_text(&client, &admin).await);
    let elapsed = started.elapsed();

    // One thread drove the meter: the caps hold exactly.
    let (apps, models) = assert_bounded(&e, MAX_APPS, MAX_MODELS, 0);
    assert_eq!(apps.len(), MAX_APPS);
    assert_eq!(models.len(), MAX_MODELS);
    assert_eq!(
        e.lines, warm.lines,
        "the series count grew after the caps filled"
    );

    let valid_apps = (0..TOTAL).filter(|i| i % 16 != 15).count();
    assert_eq!(
        e.value("bedrock_label_overflow_total", &[("label", "app")]) as usize,
        valid_apps - MAX_APPS
    );
    let vouched_models = (0..TOTAL).filter(|i| i % 8 <= 4).count();
    assert_eq!(
        e.value("bedrock_label_overflow_total", &[("label", "model")]) as usize,
        vouched_models - MAX_MODELS
    );
    assert_eq!(e.value("bedrock_requests_total", &[]) as usize, TOTAL);
    assert_eq!(
        e.value("bedrock_tokens_total", &[("type", "output")]) as usize,
        5 * (0..TOTAL).filter(|i| i % 8 <= 4 || i % 8 == 7).count()
    );
    println!(
        "{TOTAL} requests ({} distinct values) metered in {elapsed:.1?}: {} lines in /metrics (bound {})",
        2 * TOTAL,
        e.lines,
        e.bound(MAX_APPS + FIXED_APPS.len(), MAX_MODELS + FIXED_MODELS.len())
    );
    proxy.shutdown().await;
}
