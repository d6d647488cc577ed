//! The usage ledger and what is built on it: after a mixed run through the real SDK, the
//! ledger's per-app/model sums equal the Prometheus counters, `report` totals equal the ledger,
//! and `x-bedrock-meter-cost-usd` tells each non-streaming call's exact cost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{ConverseStreamOutput, ResponseStream};
use bedrock_meter::meter::ledger::Target;
use bedrock_meter::tools::report::{self, Format, ReportArgs};
use bytes::Bytes;
use common::*;

const NOVA_MICRO: &str = "amazon.nova-micro-v1:0";
const SONNET_45: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const UNPRICED: &str = "acme.unlisted-model-v1:0";
const HAIKU_3: &str = "anthropic.claude-3-haiku-20240307-v1:0";

async fn mixed_run(h: &Harness) {
    let checkout = h.client("checkout");
    let search = h.client("search");
    for (client, model, prompt) in [
        (&checkout, NOVA_MICRO, "[[sim input=1000 output=200]]"),
        (&checkout, NOVA_MICRO, "[[sim input=10 output=3]]"),
        (
            &checkout,
            SONNET_45,
            "[[sim input=500 output=120 cache_read=2000 cache_write=300]]",
        ),
        (&search, SONNET_45, "[[sim input=42 output=7]]"),
        (&search, UNPRICED, "[[sim input=64 output=16]]"),
    ] {
        client
            .converse()
            .model_id(model)
            .messages(user_message(prompt))
            .send()
            .await
            .unwrap();
    }
    // Throttled: counted, no tokens.
    assert!(
        search
            .converse()
            .model_id(NOVA_MICRO)
            .messages(user_message("[[sim fault=throttle]]"))
            .send()
            .await
            .is_err()
    );
    // A stream.
    let out = search
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim input=77 output=33 chunks=3]]"))
        .send()
        .await
        .unwrap();
    let mut events = out.stream;
    while let Some(e) = events.recv().await.unwrap() {
        let _: ConverseStreamOutput = e;
    }
    // InvokeModel and its stream.
    let body = r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":50,"messages":[{"role":"user","content":"[[sim input=90 output=45]]"}]}"#;
    checkout
        .invoke_model()
        .model_id(HAIKU_3)
        .body(Blob::new(body))
        .send()
        .await
        .unwrap();
    let out = checkout
        .invoke_model_with_response_stream()
        .model_id(HAIKU_3)
        .body(Blob::new(body))
        .send()
        .await
        .unwrap();
    let mut events = out.body;
    while let Some(e) = events.recv().await.unwrap() {
        let _: ResponseStream = e;
    }
}

#[tokio::test]
async fn ledger_sums_equal_the_counters_and_report_totals_equal_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let ledger_path = path.clone();
    let h = Harness::start_with(|c| c.ledger = Some(Target::File(ledger_path))).await;
    mixed_run(&h).await;
    let m = h.metrics().await;
    h.proxy.state.flush_ledger().await;

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 9, "{text}");
    assert_eq!(
        lines.len() as u64,
        m.value("bedrock_requests_total", &[]) as u64
    );
    for line in &lines {
        assert_eq!(line["rate_card"], "2026-12");
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
        // Every call Bedrock answered carries its request id.
        assert!(line["request_id"].as_str().is_some(), "{line}");
    }
    let throttled: Vec<_> = lines.iter().filter(|l| l["status"] == 429).collect();
    assert_eq!(throttled.len(), 1);
    assert_eq!(throttled[0]["tokens"]["output"], 0);
    assert!(throttled[0]["cost_usd"].is_null());
    let unpriced: Vec<_> = lines.iter().filter(|l| l["model"] == UNPRICED).collect();
    assert_eq!(unpriced[0]["tokens"]["input"], 64);
    assert!(unpriced[0]["cost_usd"].is_null());

    // Per app and model, the ledger (summed by `report`) equals Prometheus exactly.
    let args = ReportArgs::default();
    let summed = report::aggregate(text.as_bytes(), &args.query().unwrap()).unwrap();
    let pairs: BTreeSet<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["app"].as_str().unwrap().to_owned(),
                l["model"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(pairs.len(), 6);
    for (app, model) in &pairs {
        let t = summed.group(Some(app), Some(model));
        assert_eq!(
            t.requests,
            m.requests(&[("app", app), ("model", model)]),
            "{app} {model}"
        );
        let tokens = [
            ("input", t.tokens.input),
            ("output", t.tokens.output),
            ("cache_read", t.tokens.cache_read),
            ("cache_write", t.tokens.cache_write),
        ];
        for (kind, n) in tokens {
            assert_eq!(n as u64, m.tokens(app, model, kind), "{app} {model} {kind}");
        }
        let by_type = [
            ("input", t.cost_by_type.input),
            ("output", t.cost_by_type.output),
            ("cache_read", t.cost_by_type.cache_read),
            ("cache_write", t.cost_by_type.cache_write),
        ];
        for (kind, pico) in by_type {
            assert_eq!(
                pico.0 as u64,
                m.cost_pico(app, model, kind),
                "{app} {model} {kind}"
            );
        }
    }
    // Totals: exact figures by hand. Nova Micro $0.035/$0.14; Sonnet 4.5 (us.) $3.30/$16.50,
    // cache read $0.33, write $4.125; Haiku 3 $0.25/$1.25.
    let micro = |t: u64, rate: u64| t * rate;
    let expected = micro(1010 + 77, 35_000)
        + micro(203 + 33, 140_000)
        + micro(542, 3_300_000)
        + micro(127, 16_500_000)
        + micro(2000, 330_000)
        + micro(300, 4_125_000)
        + micro(180, 250_000)
        + micro(90, 1_250_000);
    assert_eq!(summed.total.cost.0 as u64, expected);

    // `report` in CSV prints the same total.
    let mut out = Vec::new();
    let mut err = Vec::new();
    let csv_args = ReportArgs {
        format: Format::Csv,
        ..ReportArgs::default()
    };
    report::run(text.as_bytes(), &csv_args, &mut out, &mut err).unwrap();
    let csv = String::from_utf8(out).unwrap();
    let total = csv.lines().find(|l| l.starts_with("TOTAL")).unwrap();
    let expected_usd = bedrock_meter::money::usd(expected);
    assert!(total.contains(&expected_usd), "{total} vs {expected_usd}");
}

#[tokio::test]
async fn cost_header_tells_each_non_streaming_calls_cost() {
    let h = Harness::start_with(|c| c.region = Some("us-east-1".into())).await;
    let converse = |prompt: &str| {
        Bytes::from(format!(
            r#"{{"messages":[{{"role":"user","content":[{{"text":"{prompt}"}}]}}]}}"#
        ))
    };
    let url = format!("{}/model/{NOVA_MICRO}/converse", h.proxy.url());
    let (status, headers, body) = http_request(
        "POST",
        &url,
        &[("content-type", "application/json")],
        converse("[[sim input=1000 output=200]]"),
    )
    .await;
    assert_eq!(status, 200);
    // 1000 × $0.035/1M + 200 × $0.14/1M = $0.000063.
    assert_eq!(headers["x-bedrock-meter-cost-usd"], "0.000063");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["usage"]["outputTokens"], 200);

    let url = format!("{}/model/{HAIKU_3}/invoke", h.proxy.url());
    let (status, headers, _) = http_request(
        "POST",
        &url,
        &[("content-type", "application/json")],
        Bytes::from(
            r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":50,"messages":[{"role":"user","content":"[[sim input=1000 output=100]]"}]}"#,
        ),
    )
    .await;
    assert_eq!(status, 200);
    // 1000 × $0.25/1M + 100 × $1.25/1M = $0.000375.
    assert_eq!(headers["x-bedrock-meter-cost-usd"], "0.000375");

    // Unpriced: no header rather than a made-up $0.
    let url = format!("{}/model/{UNPRICED}/converse", h.proxy.url());
    let (status, headers, _) = http_request("POST", &url, &[], converse("hi")).await;
    assert_eq!(status, 200);
    assert!(headers.get("x-bedrock-meter-cost-usd").is_none());

    // Turned off.
    let off = Harness::start_with(|c| {
        c.region = Some("us-east-1".into());
        c.cost_header = false;
    })
    .await;
    let url = format!("{}/model/{NOVA_MICRO}/converse", off.proxy.url());
    let (_, headers, _) = http_request("POST", &url, &[], converse("hi")).await;
    assert!(headers.get("x-bedrock-meter-cost-usd").is_none());
}

/// What the savings advisor needs is on each line: whether the call streamed, the ceiling it
/// asked for, why the model stopped, and its stable prefix as a keyed fingerprint — the same
/// for two calls with the same system prompt and tools, whatever they ask, and never the text.
#[tokio::test]
async fn ledger_lines_carry_the_advisors_facts() {
    use aws_sdk_bedrockruntime::types::{InferenceConfiguration, SystemContentBlock};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let ledger_path = path.clone();
    let h = Harness::start_with(|c| {
        c.ledger = Some(Target::File(ledger_path));
        c.fingerprint_key = Some("shared-secret".into());
    })
    .await;
    let client = h.client("support");
    let system = "You are the support agent of Example Corp. Answer in one sentence.";
    let ceiling = InferenceConfiguration::builder().max_tokens(64).build();
    for question in ["Where is my order?", "Cancel it."] {
        client
            .converse()
            .model_id(NOVA_MICRO)
            .system(SystemContentBlock::Text(system.into()))
            .messages(user_message(&format!(
                "[[sim input=300 output=64 stop=max_tokens]] {question}"
            )))
            .inference_config(ceiling.clone())
            .send()
            .await
            .unwrap();
    }
    let mut out = client
        .converse_stream()
        .model_id(NOVA_MICRO)
        .system(SystemContentBlock::Text(system.into()))
        .messages(user_message(
            "[[sim input=300 output=20 cache_read=250]] hi",
        ))
        .send()
        .await
        .unwrap();
    while out.stream.recv().await.unwrap().is_some() {}
    // No system prompt: no prefix.
    client
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim input=5 output=5]]"))
        .send()
        .await
        .unwrap();
    h.proxy.state.flush_ledger().await;
    let m = h.metrics().await;
    let stops = |reason| {
        m.value(
            "bedrock_stop_reasons_total",
            &[
                ("app", "support"),
                ("model", NOVA_MICRO),
                ("reason", reason),
            ],
        )
    };
    assert_eq!((stops("max_tokens"), stops("end_turn")), (2.0, 2.0));

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("Example Corp"),
        "the prompt's text is never written"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let system_json = format!(r#"[{{"text":"{system}"}}]"#);
    for line in &lines[..2] {
        assert_eq!(line["stream"], false);
        assert_eq!(line["max_tokens"], 64);
        assert_eq!(line["stop_reason"], "max_tokens");
        assert_eq!(line["prefix"]["bytes"], system_json.len());
        assert_eq!(line["prefix"]["tokens"], system_json.len().div_ceil(4));
        assert_eq!(line["prefix"]["tokens_estimated"], true);
    }
    let fingerprint = lines[0]["prefix"]["fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 16);
    assert_eq!(lines[1]["prefix"]["fingerprint"], fingerprint);
    // The stream: its stop reason from `messageStop`, the prefix tokens from the cache read.
    let stream = &lines[2];
    assert_eq!(stream["stream"], true);
    assert_eq!(stream["stop_reason"], "end_turn");
    assert!(stream.get("max_tokens").is_none());
    assert_eq!(stream["prefix"]["fingerprint"], fingerprint);
    assert_eq!(stream["prefix"]["tokens"], 250);
    assert!(stream["prefix"].get("tokens_estimated").is_none());
    assert!(lines[3].get("prefix").is_none());
    assert_eq!(lines[3]["stop_reason"], "end_turn");
}

/// InvokeModel's answers are in each model's own words: Anthropic's `stop_reason` (its stream's
/// `message_delta`), Nova's `stopReason` (its stream's final chunk). The meter reads them from
/// the body as it passes, whole or streamed, without a ledger.
#[tokio::test]
async fn invoke_model_answers_say_why_they_stopped() {
    let h = Harness::start().await;
    let client = h.client("batch");
    let anthropic = |directive: &str| {
        Blob::new(format!(
            r#"{{"anthropic_version":"bedrock-2023-05-31","max_tokens":64,"messages":[{{"role":"user","content":"[[sim {directive}]]"}}]}}"#
        ))
    };
    let nova = |directive: &str| {
        Blob::new(format!(
            r#"{{"messages":[{{"role":"user","content":[{{"text":"[[sim {directive}]]"}}]}}],"inferenceConfig":{{"maxTokens":64}}}}"#
        ))
    };
    for (model, body) in [
        (HAIKU_3, anthropic("input=9 output=64 stop=max_tokens")),
        (HAIKU_3, anthropic("input=9 output=3 stop=tool_use")),
        (NOVA_MICRO, nova("input=9 output=64 stop=max_tokens")),
        (NOVA_MICRO, nova("input=9 output=3")),
    ] {
        client
            .invoke_model()
            .model_id(model)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let out = client
            .invoke_model_with_response_stream()
            .model_id(model)
            .body(body)
            .send()
            .await
            .unwrap();
        let mut events = out.body;
        while events.recv().await.unwrap().is_some() {}
    }
    let m = h.metrics().await;
    let stops = |model, reason| {
        m.value(
            "bedrock_stop_reasons_total",
            &[("app", "batch"), ("model", model), ("reason", reason)],
        )
    };
    assert_eq!(stops(HAIKU_3, "max_tokens"), 2.0);
    assert_eq!(stops(HAIKU_3, "tool_use"), 2.0);
    assert_eq!(stops(HAIKU_3, "end_turn"), 0.0);
    assert_eq!(stops(NOVA_MICRO, "max_tokens"), 2.0);
    assert_eq!(stops(NOVA_MICRO, "end_turn"), 2.0);
    assert_eq!(
        m.value(
            "bedrock_tokens_total",
            &[("app", "batch"), ("model", NOVA_MICRO), ("type", "output")]
        ),
        134.0
    );
}
