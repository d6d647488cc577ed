//! The savings advisor on a ledger with known opportunities, each lever's dollars checked
//! against figures worked out by hand from the published rates, and its HTML report opened in
//! a real browser (headless Chromium, Debian's `chromium`; `.ci/run` installs it).
//!
//! One day of traffic (2026-11-01), so a month is 30 times the day:
//! - `triage` sends classification-sized calls to Claude Opus 4.1 (right-sizing to Sonnet 4);
//! - `support` repeats one 4,000-token system prompt a minute apart on Nova Pro (caching);
//! - `writer`'s Claude Sonnet 4.5 calls all stop at their 1,024-token ceiling (output);
//! - `nightly` makes 200 non-streaming Nova Lite calls (Batch);
//! - `research` sends 120,000-token contexts to Claude Sonnet 4.5 (retrieval);
//! - `ingest` calls Nova Micro every hour of the day (steady: Provisioned Throughput).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use bedrock_meter::money::usd;
use bedrock_meter::tools::advise::{self, AdviseArgs, AdviseFormat};
use serde_json::{Value, json};

const OPUS_41: &str = "anthropic.claude-opus-4-1-20250805-v1:0";
const SONNET_45: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const NOVA_PRO: &str = "amazon.nova-pro-v1:0";
const NOVA_LITE: &str = "amazon.nova-lite-v1:0";
const NOVA_MICRO: &str = "amazon.nova-micro-v1:0";

/// Published on-demand rates in micro-dollars per 1M tokens (= pico-dollars per token):
/// (input, output).
fn rates(model: &str) -> (u64, u64) {
    match model {
        OPUS_41 => (15_000_000, 75_000_000),
        SONNET_45 => (3_000_000, 15_000_000),
        NOVA_PRO => (800_000, 3_200_000),
        NOVA_LITE => (60_000, 240_000),
        NOVA_MICRO => (35_000, 140_000),
        _ => unreachable!(),
    }
}

struct Call<'a> {
    minute: u64,
    app: &'a str,
    model: &'a str,
    input: u64,
    output: u64,
    stream: bool,
    stop: &'a str,
    max_tokens: Option<u64>,
    /// (fingerprint, bytes, tokens)
    prefix: Option<(&'a str, u64, u64)>,
}

fn line(c: &Call<'_>) -> String {
    let (ri, ro) = rates(c.model);
    let (ci, co) = (c.input * ri, c.output * ro);
    let mut v = json!({
        "time": format!("2026-11-01T{:02}:{:02}:00.000Z", c.minute / 60, c.minute % 60),
        "request_id": "r",
        "app": c.app,
        "model": c.model,
        "operation": if c.stream { "ConverseStream" } else { "Converse" },
        "status": 200,
        "tier": null,
        "tokens": {"input": c.input, "output": c.output, "cache_read": 0, "cache_write": 0, "cache_write_1h": 0},
        "cost_usd": usd(ci + co),
        "cost_usd_by_type": {"input": usd(ci), "output": usd(co), "cache_read": usd(0), "cache_write": usd(0)},
        "cache_savings_usd": usd(0),
        "latency_ms": 100.0,
        "rate_card": "2026-12",
        "stream": c.stream,
        "stop_reason": c.stop,
    });
    if let Some(n) = c.max_tokens {
        v["max_tokens"] = n.into();
    }
    if let Some((fp, bytes, tokens)) = c.prefix {
        v["prefix"] =
            json!({"fingerprint": fp, "bytes": bytes, "tokens": tokens, "tokens_estimated": true});
    }
    v.to_string()
}

fn ledger() -> String {
    let mut out = String::new();
    let mut push = |c: Call<'_>| {
        let _ = writeln!(out, "{}", line(&c));
    };
    let base = Call {
        minute: 0,
        app: "",
        model: NOVA_MICRO,
        input: 0,
        output: 0,
        stream: true,
        stop: "end_turn",
        max_tokens: None,
        prefix: None,
    };
    for i in 0..120 {
        push(Call {
            minute: 60 + i,
            app: "triage",
            model: OPUS_41,
            input: 800,
            output: 5,
            ..base
        });
    }
    for i in 0..100 {
        push(Call {
            minute: 300 + i,
            app: "support",
            model: NOVA_PRO,
            input: 4500,
            output: 150,
            prefix: Some(("00000000000abcde", 16_000, 4000)),
            ..base
        });
    }
    for i in 0..50 {
        push(Call {
            minute: 600 + i,
            app: "writer",
            model: SONNET_45,
            input: 2000,
            output: 1024,
            stop: "max_tokens",
            max_tokens: Some(1024),
            ..base
        });
    }
    for i in 0..200 {
        push(Call {
            minute: 120 + i / 4,
            app: "nightly",
            model: NOVA_LITE,
            input: 3000,
            output: 400,
            stream: false,
            ..base
        });
    }
    for i in 0..10 {
        push(Call {
            minute: 900 + i * 3,
            app: "research",
            model: SONNET_45,
            input: 120_000,
            output: 500,
            ..base
        });
    }
    for h in 0..24 {
        push(Call {
            minute: h * 60 + 30,
            app: "ingest",
            model: NOVA_MICRO,
            input: 10_000,
            output: 100,
            ..base
        });
    }
    // Failed calls cost nothing and count for nothing.
    let _ = writeln!(
        out,
        r#"{{"time":"2026-11-01T12:00:00Z","app":"triage","model":"{OPUS_41}","status":429,"tokens":{{}},"cost_usd":null}}"#
    );
    out
}

fn args(format: AdviseFormat) -> AdviseArgs {
    AdviseArgs {
        from: Some("2026-11-01".into()),
        to: Some("2026-11-02".into()),
        format,
        rates: Path::new(env!("CARGO_MANIFEST_DIR")).join("rates/bedrock.toml"),
    }
}

fn advice_json() -> Value {
    let card = common::shipped_card();
    let a = advise::advise(ledger().as_bytes(), &args(AdviseFormat::Json), &card).unwrap();
    advise::to_json(&a)
}

/// Pico-dollars as the exact decimal the JSON carries.
fn dollars(pico: u64) -> Value {
    Value::String(usd(pico))
}

#[test]
fn every_lever_with_its_exact_dollars_ranked() {
    let v = advice_json();
    assert_eq!(v["period"]["days"], "1.000");
    let levers = v["levers"].as_array().unwrap();
    let got: Vec<(&str, &str, &str)> = levers
        .iter()
        .map(|l| {
            (
                l["lever"].as_str().unwrap(),
                l["app"].as_str().unwrap(),
                l["model"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("retrieval", "research", SONNET_45),
            ("right_sizing", "triage", OPUS_41),
            ("caching", "support", NOVA_PRO),
            ("output_discipline", "writer", SONNET_45),
            ("batch", "nightly", NOVA_LITE),
            ("provisioned_throughput", "ingest", NOVA_MICRO),
        ],
        "{v:#}"
    );

    // Retrieval: 10 calls of 120,000 prompt tokens on Claude Sonnet 4.5 ($3 per 1M input);
    // a tenth of the input would do: 90% of 10 × 120,000 × $3 per 1M = $3.24 a day.
    let retrieval = 10 * 120_000 * 3_000_000u64 * 9 / 10;
    assert_eq!(levers[0]["savings_usd_period"], dollars(retrieval));
    assert_eq!(levers[0]["savings_usd_month"], "97.200000000000");

    // Right-sizing: 120 calls of 800 in, 5 out; Opus 4.1 ($15/$75) against Sonnet 4 ($3/$15)
    // = 120 × (800 × 12 + 5 × 60) µ$ = $1.188 a day.
    let per_call = 800 * (15_000_000 - 3_000_000) + 5 * (75_000_000 - 15_000_000);
    assert_eq!(levers[1]["savings_usd_period"], dollars(120 * per_call));
    assert_eq!(levers[1]["savings_usd_month"], dollars(30 * 120 * per_call));
    assert_eq!(levers[1]["savings_usd_month"], "35.640000000000");
    assert!(levers[1]["basis"].as_str().unwrap().starts_with(
        "120 calls averaging 800 input and 5 output tokens: classification-sized for this model; the same tokens on anthropic.claude-sonnet-4-20250514-v1:0"
    ));

    // Caching: 100 calls a minute apart share one 4,000-token prefix. The first writes it
    // (Nova's cache write costs the input price: no premium); each of the other 99 reads it at
    // $0.20 instead of $0.80 per 1M: 99 × 4,000 × 0.6 µ$.
    let caching = 99 * 4000 * (800_000 - 200_000);
    assert_eq!(levers[2]["savings_usd_period"], dollars(caching));
    assert_eq!(levers[2]["savings_usd_month"], "7.128000000000");
    assert_eq!(
        levers[2]["basis"],
        "99 of 100 calls (99%) reuse a prefix seen within 5 minutes; the most used prefix, 16000 bytes, is in 100 calls; its 1 cache write(s) cost $0.000000 more than input, the reads save $0.237600 (prefix tokens estimated from bytes)"
    );

    // Output discipline: all 50 calls stopped at 1,024; 30% of their output spend
    // (50 × 1,024 × $15 per 1M = $0.768).
    let output = 50 * 1024 * 15_000_000u64;
    assert_eq!(levers[3]["savings_usd_period"], dollars(output * 30 / 100));
    assert_eq!(levers[3]["savings_usd_month"], "6.912000000000");
    assert_eq!(
        levers[3]["basis"],
        "50 of 50 calls (100%) stopped at their output ceiling (they asked for 1024 tokens on average); output is 71% of this spend"
    );

    // Batch: 200 non-streaming calls, half their token spend.
    let nightly = 200 * (3000 * 60_000 + 400 * 240_000);
    assert_eq!(levers[4]["savings_usd_period"], dollars(nightly / 2));
    assert_eq!(levers[4]["savings_usd_month"], "0.828000000000");

    // Steady volume: every hour of the day, 24 × 10,100 tokens over 1,440 minutes = 168 a
    // minute; no Provisioned Throughput price on the card, so no dollars.
    assert_eq!(levers[5]["savings_usd_month"], Value::Null);
    assert_eq!(
        levers[5]["basis"],
        "calls in 24 of the period's 24 hours (100%), 168 tokens per minute on average"
    );

    // Nothing else applies: streams are not Batch material, Nova Micro has no cheaper rung,
    // and no other app's calls hit their ceiling or reuse a prefix.
    assert_eq!(
        v["savings_usd_month"],
        dollars(30 * (retrieval + 120 * per_call + caching + output * 30 / 100 + nightly / 2))
    );
    let triage = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["app"] == "triage")
        .unwrap();
    assert_eq!(triage["calls"], 120, "the refused call counts for nothing");
}

#[test]
fn no_lever_without_its_evidence() {
    let card = common::shipped_card();
    // The same traffic spread over a month (the period): the caching reuse window is the same
    // but the steadiness is gone (24 hours of a 720-hour month).
    let mut a = args(AdviseFormat::Json);
    a.to = Some("2026-12-01".into());
    let v = advise::to_json(&advise::advise(ledger().as_bytes(), &a, &card).unwrap());
    let kinds: Vec<&str> = v["levers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lever"].as_str().unwrap())
        .collect();
    assert!(!kinds.contains(&"provisioned_throughput"), "{kinds:?}");
    // A month of the same day's savings is the day's savings: scaled by 30 days / 30 days.
    assert_eq!(v["levers"][0]["savings_usd_month"], "3.240000000000");
    // An empty ledger: no lever.
    let v = advise::to_json(&advise::advise(&b""[..], &args(AdviseFormat::Json), &card).unwrap());
    assert_eq!(v["levers"], json!([]));
}

/// `bedrock-meter advise LEDGER --from FROM --to TO`, run from the repository (for the card).
fn advise_command(ledger: &Path, from: &str, to: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bedrock-meter"))
        .arg("advise")
        .arg(ledger)
        .args(["--from", from, "--to", to])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn the_command_writes_a_table_and_refuses_a_bad_period() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    std::fs::write(&path, ledger()).unwrap();
    let out = advise_command(&path, "2026-11-01", "2026-11-02");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().nth(2).unwrap();
    assert!(
        first.contains("retrieval") && first.contains("$97.200000"),
        "{text}"
    );
    let bad = advise_command(&path, "2026-11-02", "2026-11-01");
    assert_eq!(bad.status.code(), Some(2));
}

/// The HTML report in a real browser: headless Chromium loads the file (no network), runs its
/// script, and the DOM it dumps says every chart's bars were laid out with a size; the
/// screenshot has the window's dimensions.
#[test]
fn the_html_report_renders_in_headless_chromium() {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is needed in CI (.ci/run installs it)"
        );
        eprintln!("skipped: chromium is not installed");
        return;
    };
    let card = common::shipped_card();
    let mut html = Vec::new();
    advise::run(
        ledger().as_bytes(),
        &args(AdviseFormat::Html),
        &card,
        &mut html,
        &mut Vec::new(),
    )
    .unwrap();
    let html = String::from_utf8(html).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("advice.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());
    let headless = |extra: &[&str]| {
        let out = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let dom = String::from_utf8(headless(&["--dump-dom"])).unwrap();
    assert!(dom.contains(r#"data-charts="3""#), "{dom}");
    assert!(dom.contains("3 of 3 charts drawn"));
    // Bars per chart: one day with six apps; six groups with token spend; five priced levers.
    for (id, bars) in [("spend-over-time", 6), ("output-share", 6), ("levers", 5)] {
        assert!(
            dom.contains(&format!(r#"id="{id}""#))
                && dom.contains(&format!(r#"data-drawn="{bars}""#)),
            "{id}: {bars} bars drawn"
        );
    }
    assert_eq!(dom.matches(r#"<tr class="lever""#).count(), 6);
    assert!(
        dom.contains(r#"<b id="savings">$147.708000</b>"#),
        "the total saving shows"
    );

    let shot = dir.path().join("advice.png");
    headless(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,1600",
        "--hide-scrollbars",
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let dim = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((dim(16), dim(20)), (1280, 1600));
}

/// The live prefix-reuse series: a call whose cacheable prefix (4,096 bytes and up) the same app
/// sent to the same model within 5 minutes is a reuse; a small prefix, another model or another
/// app is not; `--request-facts false` reads no body and exports no such series.
#[tokio::test]
async fn prefix_reuse_is_counted_live() {
    use aws_sdk_bedrockruntime::types::SystemContentBlock;
    use common::{Harness, user_message};

    let send = |client: aws_sdk_bedrockruntime::Client, model: &'static str, system: String| async move {
        client
            .converse()
            .model_id(model)
            .system(SystemContentBlock::Text(system))
            .messages(user_message("[[sim input=1100 output=5]] hi"))
            .send()
            .await
            .unwrap();
    };
    // `[{"text":"…"}]` is 13 bytes around the text: 4,083 bytes of text make 4,096.
    let big = "a".repeat(4083);
    let other_big = "b".repeat(5000);
    let small = "c".repeat(4082);

    let h = Harness::start().await;
    let (support, sales) = (h.client("support"), h.client("sales"));
    for _ in 0..3 {
        send(support.clone(), NOVA_PRO, big.clone()).await;
    }
    send(support.clone(), NOVA_PRO, other_big.clone()).await;
    send(support.clone(), NOVA_LITE, big.clone()).await;
    send(sales.clone(), NOVA_PRO, big.clone()).await;
    for _ in 0..2 {
        send(support.clone(), NOVA_PRO, small.clone()).await;
    }
    let m = h.metrics().await;
    let count = |name, app, model| m.value(name, &[("app", app), ("model", model)]);
    let calls = |app, model| count("bedrock_prefix_requests_total", app, model);
    let reused = |app, model| count("bedrock_prefix_reused_total", app, model);
    assert_eq!(
        calls("support", NOVA_PRO),
        4.0,
        "the small prefix is not counted"
    );
    assert_eq!(reused("support", NOVA_PRO), 2.0);
    assert_eq!(
        (calls("support", NOVA_LITE), reused("support", NOVA_LITE)),
        (1.0, 0.0)
    );
    assert_eq!(
        (calls("sales", NOVA_PRO), reused("sales", NOVA_PRO)),
        (1.0, 0.0)
    );

    let off = Harness::start_with(|c| c.request_facts = false).await;
    for _ in 0..2 {
        send(off.client("support"), NOVA_PRO, big.clone()).await;
    }
    let m = off.metrics().await;
    assert_eq!(m.requests(&[("app", "support")]), 2);
    assert!(!m.has("bedrock_prefix_requests_total", &[]));
}
