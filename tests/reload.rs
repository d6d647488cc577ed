//! Rate card hot reload: a good card changes prices for requests that start after it, a broken
//! card is refused whole and the old prices stay, and a request in flight keeps the card it
//! started with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use aws_sdk_bedrockruntime::types::ConverseStreamOutput;
use bedrock_meter::pricing::RateCard;
use common::*;

const MODEL: &str = "amazon.nova-micro-v1:0";

fn card(version: &str, input: &str, output: &str) -> String {
    format!(
        "version = \"{version}\"\ncurrency = \"USD\"\n\n[[model]]\nid = \"{MODEL}\"\ninput = {input}\noutput = {output}\ncache_read = 0.00875\ncache_write = 0.035\n"
    )
}

async fn converse(h: &Harness, app: &str, prompt: &str) {
    h.client(app)
        .converse()
        .model_id(MODEL)
        .messages(user_message(prompt))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn reload_reprices_new_requests_only_and_refuses_a_broken_card() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rates.toml");
    std::fs::write(&path, card("v1", "0.035", "0.14")).unwrap();
    let first = RateCard::load(&path).unwrap().card;
    let rates_path = path.clone();
    let h = Harness::start_with(|c| {
        c.rates = first;
        c.rates_path = Some(rates_path);
        c.reload_interval = Duration::from_millis(20);
    })
    .await;
    let m = h.metrics().await;
    assert_eq!(m.value("bedrock_rate_card_info", &[("version", "v1")]), 1.0);
    assert_eq!(m.value("bedrock_rate_card_reloads_total", &[]), 0.0);

    // A stream starts under v1 and ends after v2 is in force.
    let stream = h
        .client("before")
        .converse_stream()
        .model_id(MODEL)
        .messages(user_message(
            "[[sim input=1000 output=100 chunks=4 gap_ms=150]]",
        ))
        .send()
        .await
        .unwrap();
    write_atomically(&path, &card("v2", "1.5", "3"));
    wait_for(
        &h,
        "bedrock_rate_card_reloads_total",
        &[("result", "ok")],
        1.0,
    )
    .await;
    let mut events = stream.stream;
    let mut output = 0;
    while let Some(event) = events.recv().await.unwrap() {
        if let ConverseStreamOutput::Metadata(m) = event {
            output = m.usage().unwrap().output_tokens();
        }
    }
    assert_eq!(output, 100);
    converse(&h, "after", "[[sim input=1000 output=100]]").await;

    let m = h.metrics().await;
    // v1: $0.035 / $0.14 per 1M tokens, as micro-dollars × tokens = pico-dollars.
    assert_eq!(m.cost_pico("before", MODEL, "input"), 1000 * 35_000);
    assert_eq!(m.cost_pico("before", MODEL, "output"), 100 * 140_000);
    // v2: $1.50 / $3.00.
    assert_eq!(m.cost_pico("after", MODEL, "input"), 1000 * 1_500_000);
    assert_eq!(m.cost_pico("after", MODEL, "output"), 100 * 3_000_000);
    assert_eq!(m.value("bedrock_rate_card_info", &[("version", "v2")]), 1.0);
    assert!(!m.has("bedrock_rate_card_info", &[("version", "v1")]));

    // A broken card (a price that is not a number) is refused; v2 stays.
    write_atomically(&path, &card("v3", "\"cheap\"", "3"));
    wait_for(
        &h,
        "bedrock_rate_card_reloads_total",
        &[("result", "error")],
        1.0,
    )
    .await;
    converse(&h, "later", "[[sim input=1000 output=100]]").await;
    let m = h.metrics().await;
    assert_eq!(m.cost_pico("later", MODEL, "input"), 1000 * 1_500_000);
    assert_eq!(m.value("bedrock_rate_card_info", &[("version", "v2")]), 1.0);
    assert!(!m.has("bedrock_rate_card_info", &[("version", "v3")]));
    assert_eq!(
        m.value("bedrock_rate_card_reloads_total", &[("result", "ok")]),
        1.0
    );
    // /rates shows the card in force.
    let (status, _, body) = http_get(&format!("{}/rates", h.proxy.admin_url())).await;
    assert_eq!(status, 200);
    let rates: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(rates["version"], "v2");
}
