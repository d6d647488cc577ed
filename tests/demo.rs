//! The demo: a few seconds of its synthetic traffic, then every cell of its table against
//! ground truth — the simulator's own count of the requests it got and the tokens it reported,
//! the rate card's price of those tokens, and the fault schedule the demo runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bedrock_meter::pricing::billing_units::Quality;
use bedrock_meter::pricing::{Call, Tier, Usage, price};
use bedrock_meter::tools::demo::{Demo, Row, Table};
use common::*;

/// The demo's workloads: each model is called by one app, with one operation, so a row's
/// tokens are the simulator's count for its model. `fault_every`: every n-th call of the
/// workload carries a fault (`throttle` answers 429; `midstream` answers 200 and ends the
/// stream with an exception, so the call reports no usage).
const WORKLOADS: [(&str, &str, &str, Fault); 9] = [
    (
        "checkout",
        "amazon.nova-micro-v1:0",
        "Converse",
        Fault::None,
    ),
    (
        "checkout",
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "ConverseStream",
        Fault::Throttle { every: 12 },
    ),
    ("search", "amazon.nova-lite-v1:0", "Converse", Fault::None),
    (
        "search",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "InvokeModel",
        Fault::None,
    ),
    (
        "support",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "ConverseStream",
        Fault::None,
    ),
    (
        "support",
        "meta.llama3-1-70b-instruct-v1:0",
        "InvokeModelWithResponseStream",
        Fault::MidStream { every: 15 },
    ),
    (
        "research",
        "acme.unlisted-model-v1:0",
        "Converse",
        Fault::None,
    ),
    (
        "assistant",
        "openai.gpt-oss-20b-1:0",
        "ChatCompletions",
        Fault::None,
    ),
    // Billed per image: one standard 1024 × 1024 image a call, no tokens.
    (
        "design",
        "amazon.nova-canvas-v1:0",
        "InvokeModel",
        Fault::None,
    ),
];

#[derive(Clone, Copy)]
enum Fault {
    None,
    Throttle { every: u64 },
    MidStream { every: u64 },
}

impl Fault {
    /// The call that meets the first fault (1 for none).
    fn first(self) -> u64 {
        match self {
            Fault::None => 1,
            Fault::Throttle { every } | Fault::MidStream { every } => every,
        }
    }

    /// (calls answered with an error, calls that reported usage) out of `calls`.
    fn outcome(self, calls: u64) -> (u64, u64) {
        match self {
            Fault::None => (0, calls),
            Fault::Throttle { every } => (calls / every, calls - calls / every),
            Fault::MidStream { every } => (0, calls - calls / every),
        }
    }
}

#[tokio::test]
async fn demo_table_matches_the_simulators_ground_truth() {
    let mut demo = Demo::start(
        shipped_card(),
        loopback(),
        (Duration::from_secs(1), Duration::from_secs(2)),
    )
    .await
    .unwrap();
    // Run until every workload has reached its first fault (the 12th and 15th calls of two of
    // them), so the errors and the calls without usage are part of what is checked.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let table = demo.table().unwrap();
        let reached = WORKLOADS.iter().all(|(app, model, _, fault)| {
            let calls = table
                .rows
                .get(&(app.to_string(), model.to_string()))
                .map_or(0.0, |r| r.requests);
            calls >= fault.first() as f64
        });
        if reached {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo's faults never came:\n{}",
            table.render()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    demo.stop_traffic().await;

    let table = demo.table().unwrap();
    let rendered = table.render();
    let sim = demo.simulator.stats();
    let card = shipped_card();

    // One row per workload, and no other.
    assert_eq!(
        table.rows.keys().cloned().collect::<Vec<_>>(),
        {
            let mut keys: Vec<(String, String)> = WORKLOADS
                .iter()
                .map(|(app, model, _, _)| (app.to_string(), model.to_string()))
                .collect();
            keys.sort();
            keys
        },
        "{rendered}"
    );

    // Requests: the simulator got every call the apps made (the proxy refused none), so the
    // table's requests per operation are the simulator's, and an operation only one workload
    // uses gives that row exactly.
    let mut per_operation: BTreeMap<&str, f64> = BTreeMap::new();
    for (app, model, operation, _) in WORKLOADS {
        *per_operation.entry(operation).or_default() += row(&table, app, model).requests;
    }
    let sim_operations: BTreeMap<&str, f64> = sim
        .by_operation
        .iter()
        .map(|(op, n)| (*op, *n as f64))
        .collect();
    assert_eq!(per_operation, sim_operations, "{rendered}");
    assert_eq!(table.total.requests, sim.requests as f64, "{rendered}");

    let mut expected_total = Row::default();
    for (app, model, _, fault) in WORKLOADS {
        let r = row(&table, app, model);
        let what = format!("{app}/{model}\n{rendered}");
        // Tokens: what the simulator reported for the model, type by type.
        let usage = Usage {
            input: sim.token_count(model, "input"),
            output: sim.token_count(model, "output"),
            cache_read: sim.token_count(model, "cache_read"),
            cache_write: sim.token_count(model, "cache_write"),
            cache_write_1h: 0,
        };
        let images = sim
            .units
            .get(&(model.to_owned(), "image"))
            .copied()
            .unwrap_or(0);
        assert!(usage.output > 0 || images > 0, "{what}");
        assert_eq!(r.input, usage.input as f64, "input {what}");
        assert_eq!(r.output, usage.output as f64, "output {what}");
        assert_eq!(
            r.cache,
            (usage.cache_read + usage.cache_write) as f64,
            "cache {what}"
        );
        // Errors and calls with usage (the average's denominator): the demo's fault schedule
        // applied to the calls made.
        let calls = r.requests as u64;
        let (errors, metered) = fault.outcome(calls);
        assert_eq!(r.errors, errors as f64, "errors {what}");
        assert_eq!(r.metered, metered as f64, "metered {what}");
        // Cost: the simulator's tokens at the card's rates for the call (signed for us-east-1,
        // default tier, standard latency), to the pico-dollar.
        let resolved = card.resolve(&Call {
            model_id: model,
            region: Some("us-east-1"),
            latency_optimized: false,
            at: SystemTime::now(),
        });
        match resolved {
            Some(resolved) => {
                let cost = if images > 0 {
                    // One standard 1024 × 1024 image a call, at the card's price per image.
                    assert_eq!(usage, Usage::default(), "{what}");
                    assert_eq!(images, calls, "{what}");
                    let per_image = resolved.model().units.image(Quality::Standard, 1 << 20);
                    images * per_image.unwrap() * 1_000_000
                } else {
                    let rates = resolved.rates(Tier::Default, false).unwrap();
                    price(&usage, &rates).total()
                };
                assert!(cost > 0, "{what}");
                assert!(r.priced, "{what}");
                assert_eq!((r.cost_usd * 1e12).round() as u64, cost, "cost {what}");
                expected_total.cost_usd += cost as f64 / 1e12;
            }
            None => {
                assert!(!r.priced, "{what}");
                assert_eq!(r.cost_usd, 0.0, "{what}");
            }
        }
        expected_total.requests += r.requests;
        expected_total.errors += errors as f64;
        expected_total.metered += metered as f64;
        expected_total.input += usage.input as f64;
        expected_total.output += usage.output as f64;
        expected_total.cache += (usage.cache_read + usage.cache_write) as f64;
    }
    let t = &table.total;
    for (name, got, want) in [
        ("requests", t.requests, expected_total.requests),
        ("errors", t.errors, expected_total.errors),
        ("metered", t.metered, expected_total.metered),
        ("input", t.input, expected_total.input),
        ("output", t.output, expected_total.output),
        ("cache", t.cache, expected_total.cache),
    ] {
        assert_eq!(got, want, "total {name}\n{rendered}");
    }
    assert!(
        (t.cost_usd - expected_total.cost_usd).abs() < 1e-9,
        "total cost {} against {}\n{rendered}",
        t.cost_usd,
        expected_total.cost_usd
    );
    // The simulator reported tokens for no model outside the table.
    for (model, _) in sim.tokens.keys() {
        assert!(WORKLOADS.iter().any(|(_, m, _, _)| m == model), "{model}");
    }

    // Every fault happened; one model is unpriced.
    assert!(t.errors > 0.0, "{rendered}");
    assert!(t.metered < t.requests - t.errors, "{rendered}");
    assert_eq!(
        table.unpriced,
        vec!["research/acme.unlisted-model-v1:0".to_string()]
    );
    assert!(rendered.contains("TOTAL"));
    // And the table is what a scrape of `/metrics` says, row for row.
    let (status, _, body) = http_get(&format!("{}/metrics", demo.proxy.admin_url())).await;
    assert_eq!(status, 200);
    let text = std::str::from_utf8(&body).unwrap();
    assert_eq!(Table::from_metrics(text).rows, table.rows);
    let m = Metrics(bedrock_meter::tools::scrape::parse(text));
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
    demo.shutdown().await;
}

fn row<'t>(table: &'t Table, app: &str, model: &str) -> &'t Row {
    table
        .rows
        .get(&(app.to_owned(), model.to_owned()))
        .unwrap_or_else(|| panic!("no row for {app}/{model}\n{}", table.render()))
}
