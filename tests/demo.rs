//! The demo: a few seconds of its synthetic traffic, then its table against `/metrics` and
//! against the simulator's own count of the tokens it reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bedrock_meter::demo::{Demo, Table};
use common::*;

#[tokio::test]
async fn demo_table_matches_metrics_and_the_simulators_ground_truth() {
    let mut demo = Demo::start(
        shipped_card(),
        loopback(),
        (Duration::from_secs(1), Duration::from_secs(2)),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    demo.stop_traffic().await;

    let table = demo.table().unwrap();
    let (status, _, body) = http_get(&format!("{}/metrics", demo.proxy.admin_url())).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body.to_vec()).unwrap();
    let scraped = Table::from_metrics(&text);
    assert_eq!(table.total, scraped.total);
    let m = Metrics(bedrock_meter::scrape::parse(&text));
    let t = &table.total;
    assert_eq!(t.requests, m.value("bedrock_requests_total", &[]));
    assert_eq!(
        t.input,
        m.value("bedrock_tokens_total", &[("type", "input")])
    );
    assert_eq!(
        t.output,
        m.value("bedrock_tokens_total", &[("type", "output")])
    );
    assert!((t.cost_usd - m.value("bedrock_cost_usd_total", &[])).abs() < 1e-9);

    // Every app and every operation took part; some calls were throttled; one model is unpriced.
    for app in ["checkout", "search", "support", "research"] {
        assert!(m.requests(&[("app", app)]) > 0, "{app}");
    }
    for op in [
        "Converse",
        "ConverseStream",
        "InvokeModel",
        "InvokeModelWithResponseStream",
    ] {
        assert!(m.requests(&[("operation", op)]) > 0, "{op}");
    }
    assert!(t.requests >= 20.0, "{}", table.render());
    assert_eq!(
        table.unpriced,
        vec!["research/acme.unlisted-model-v1:0".to_string()]
    );
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);

    // The meter counted exactly the tokens the simulator reported, no more, no less.
    let sim = demo.simulator.stats();
    for (kind, counted) in [("input", t.input), ("output", t.output)] {
        let truth: u64 = sim
            .tokens
            .iter()
            .filter(|((_, k), _)| *k == kind)
            .map(|(_, n)| *n)
            .sum();
        assert_eq!(counted as u64, truth, "{kind}");
    }
    assert!(table.render().contains("TOTAL"));
    demo.shutdown().await;
}
