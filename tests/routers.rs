//! Prompt routers through the meter: a Converse or ConverseStream call to a router is priced and
//! labelled as the model the router chose (`trace.promptRouter.invokedModelId`), and the router
//! stays visible in `bedrock_routed_requests_total` and the ledger.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

const ROUTER: &str =
    "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1";
/// The simulator's choice for an `anthropic.claude` default router, as an inference-profile ARN;
/// the label is its id.
const HAIKU_35: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const NOVA_LITE: &str = "amazon.nova-lite-v1:0";

#[tokio::test]
async fn a_routed_call_is_priced_as_the_model_the_router_chose() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    let path = ledger.clone();
    let h = Harness::start_with(move |c| {
        c.ledger = Some(bedrock_meter::meter::ledger::Target::File(path))
    })
    .await;
    let client = h.client("support");
    let answer = client
        .converse()
        .model_id(ROUTER)
        .messages(user_message("[[sim input=1000 output=100]]"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.usage().unwrap().input_tokens(), 1000);
    // Streamed, with the router's choice named by the directive: a foundation-model ARN.
    let out = client
        .converse_stream()
        .model_id(ROUTER)
        .messages(user_message(
            "[[sim input=2000 output=300 invoked=arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0]]",
        ))
        .send()
        .await
        .unwrap();
    let mut events = out.stream;
    while events.recv().await.unwrap().is_some() {}

    let m = h.metrics().await;
    // Claude 3.5 Haiku through a geographic profile: $0.80 / $4.00 per 1M.
    assert_eq!(m.cost_pico("support", HAIKU_35, "input"), 1000 * 800_000);
    assert_eq!(m.cost_pico("support", HAIKU_35, "output"), 100 * 4_000_000);
    // Nova Lite: $0.06 / $0.24 per 1M.
    assert_eq!(m.cost_pico("support", NOVA_LITE, "input"), 2000 * 60_000);
    assert_eq!(m.cost_pico("support", NOVA_LITE, "output"), 300 * 240_000);
    // Nothing is left unpriced or labelled with the router as a model.
    assert_eq!(m.value("bedrock_unpriced_requests_total", &[]), 0.0);
    assert!(!m.has("bedrock_tokens_total", &[("model", ROUTER)]));
    for (model, operation) in [(HAIKU_35, "Converse"), (NOVA_LITE, "ConverseStream")] {
        assert_eq!(m.requests(&[("model", model), ("operation", operation)]), 1);
        assert_eq!(
            m.value(
                "bedrock_routed_requests_total",
                &[("app", "support"), ("router", ROUTER), ("model", model)]
            ),
            1.0
        );
    }

    h.proxy.state.flush_ledger().await;
    let text = std::fs::read_to_string(&ledger).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["router"], ROUTER);
    }
    assert_eq!(lines[0]["model"], HAIKU_35);
    assert_eq!(lines[0]["cost_usd"], "0.001200000000");
}

#[tokio::test]
async fn a_direct_call_names_no_router_even_if_the_answer_has_a_trace() {
    let h = Harness::start().await;
    h.client("direct")
        .converse()
        .model_id(NOVA_LITE)
        .messages(user_message(
            "[[sim input=10 output=10 invoked=amazon.nova-micro-v1:0]]",
        ))
        .send()
        .await
        .unwrap();
    let m = h.metrics().await;
    assert_eq!(m.tokens("direct", NOVA_LITE, "input"), 10);
    assert!(!m.has("bedrock_routed_requests_total", &[("app", "direct")]));
}
