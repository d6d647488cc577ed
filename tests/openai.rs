//! The OpenAI-compatible paths (Chat Completions, Responses) and the Anthropic Messages API
//! through the meter: a real OpenAI client (`async-openai`) for Chat Completions, the raw HTTP
//! shapes for the rest, each call priced by the shipped card and asserted to the pico-dollar.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_openai::Client as OpenAiClient;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions,
    CreateChatCompletionRequestArgs,
};
use bedrock_meter::simulator::{Simulator, SimulatorConfig};
use bytes::Bytes;
use common::*;
use futures_util::StreamExt;

const GPT_OSS_20B: &str = "openai.gpt-oss-20b-1:0";
/// $0.07 / $0.30 per 1M tokens: micro-dollars per 1M = pico-dollars per token.
const GPT_OSS_20B_RATES: (u64, u64) = (70_000, 300_000);
const SONNET_45: &str = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// The meter in open mode calls Bedrock in this Region for clients that do not sign (OpenAI
/// clients send a bearer token, which the meter does not forward).
async fn harness() -> Harness {
    Harness::start_with(|c| c.region = Some("us-east-1".into())).await
}

fn openai(h: &Harness, app: &str) -> OpenAiClient<OpenAIConfig> {
    let config = OpenAIConfig::new()
        .with_api_base(format!("{}/openai/v1", h.proxy.url()))
        .with_api_key("bedrock-api-key-not-forwarded")
        .with_header("x-bedrock-meter-app", app)
        .unwrap();
    OpenAiClient::with_config(config)
}

fn chat_request(text: &str, stream: Option<bool>) -> CreateChatCompletionRequestArgs {
    let mut r = CreateChatCompletionRequestArgs::default();
    r.model(GPT_OSS_20B).messages(vec![
        ChatCompletionRequestUserMessageArgs::default()
            .content(text)
            .build()
            .unwrap()
            .into(),
    ]);
    if let Some(s) = stream {
        r.stream(s);
    }
    r
}

#[tokio::test]
async fn chat_completions_whole_and_streamed_are_priced_exactly() {
    let h = harness().await;
    let client = openai(&h, "assistant");

    let whole = client
        .chat()
        .create(
            chat_request("[[sim input=1000 output=200]]", None)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let usage = whole.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (1000, 200));

    // Streamed without `include_usage`: the client sees no usage at all, and the meter still
    // meters the call exactly.
    let mut stream = client
        .chat()
        .create_stream(
            chat_request("[[sim input=3000 output=500 chunks=4]]", Some(true))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.usage.is_none(), "usage the client did not ask for");
        assert!(
            !chunk.choices.is_empty(),
            "a usage-only chunk reached the client"
        );
        for c in &chunk.choices {
            text.push_str(c.delta.content.as_deref().unwrap_or(""));
        }
    }
    assert_eq!(text.matches("Simulated reply part").count(), 4);

    // Streamed with `include_usage`: the client gets its usage chunk as asked.
    let mut asked = chat_request("[[sim input=7 output=9]]", Some(true));
    asked.stream_options(ChatCompletionStreamOptions {
        include_usage: Some(true),
        include_obfuscation: None,
    });
    let mut stream = client
        .chat()
        .create_stream(asked.build().unwrap())
        .await
        .unwrap();
    let mut usage_chunks = 0;
    while let Some(chunk) = stream.next().await {
        if let Some(u) = chunk.unwrap().usage {
            assert_eq!((u.prompt_tokens, u.completion_tokens), (7, 9));
            usage_chunks += 1;
        }
    }
    assert_eq!(usage_chunks, 1);

    let m = h.metrics().await;
    let (input, output) = GPT_OSS_20B_RATES;
    assert_eq!(m.tokens("assistant", GPT_OSS_20B, "input"), 1000 + 3000 + 7);
    assert_eq!(m.tokens("assistant", GPT_OSS_20B, "output"), 200 + 500 + 9);
    assert_eq!(
        m.cost_pico("assistant", GPT_OSS_20B, "input"),
        (1000 + 3000 + 7) * input
    );
    assert_eq!(
        m.cost_pico("assistant", GPT_OSS_20B, "output"),
        (200 + 500 + 9) * output
    );
    assert_eq!(
        m.requests(&[
            ("app", "assistant"),
            ("operation", "ChatCompletions"),
            ("status", "200")
        ]),
        3
    );
    assert_eq!(m.value("bedrock_usage_missing_total", &[]), 0.0);
    // Every answer, streamed or whole, said why it stopped ("stop": its turn ended).
    assert_eq!(
        m.value(
            "bedrock_stop_reasons_total",
            &[("app", "assistant"), ("reason", "end_turn")]
        ),
        3.0
    );
    // What Bedrock reported is exactly what was metered.
    let truth = h.simulator.stats().tokens;
    assert_eq!(truth[&(GPT_OSS_20B.to_owned(), "input")], 4007);
    assert_eq!(truth[&(GPT_OSS_20B.to_owned(), "output")], 709);
}

/// The same request straight to the simulator (without `include_usage`) and through the meter
/// (which asks for usage and takes it out again): the client's bytes are the same.
#[tokio::test]
async fn a_stream_without_include_usage_reaches_the_client_byte_for_byte() {
    let simulator = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let proxy = start_proxy(&simulator.url(), |c| c.region = Some("us-east-1".into())).await;
    let body = Bytes::from(format!(
        r#"{{"model":"{GPT_OSS_20B}","stream":true,"messages":[{{"role":"user","content":"[[sim input=40 output=60 chunks=5]]"}}]}}"#
    ));
    let headers = [
        ("content-type", "application/json"),
        ("x-bedrock-meter-app", "byte-check"),
    ];
    let path = "/openai/v1/chat/completions";
    let (status, _, direct) = http_request(
        "POST",
        &format!("{}{path}", simulator.url()),
        &headers,
        body.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let sent = body.len();
    let (status, response, metered) =
        http_request("POST", &format!("{}{path}", proxy.url()), &headers, body).await;
    assert_eq!(status, 200);
    assert_eq!(response["content-type"], "text/event-stream");
    assert_eq!(
        String::from_utf8(metered.to_vec()).unwrap(),
        String::from_utf8(direct.to_vec()).unwrap()
    );
    assert!(!direct.windows(7).any(|w| w == b"\"usage\""));
    // Bedrock was asked for the usage (one member added to the body), and the meter counted it.
    let seen = simulator.stats().last_request.unwrap();
    assert_eq!(
        seen.body_len,
        sent + r#""stream_options":{"include_usage":true},"#.len()
    );
    let m = scrape_metrics(&proxy).await;
    assert_eq!(m.tokens("byte-check", GPT_OSS_20B, "input"), 40);
    assert_eq!(m.tokens("byte-check", GPT_OSS_20B, "output"), 60);
    assert_eq!(
        m.cost_pico("byte-check", GPT_OSS_20B, "output"),
        60 * GPT_OSS_20B_RATES.1
    );
}

async fn post(h: &Harness, path: &str, app: &str, body: String) -> (u16, http::HeaderMap, Bytes) {
    http_request(
        "POST",
        &format!("{}{path}", h.proxy.url()),
        &[
            ("content-type", "application/json"),
            ("x-bedrock-meter-app", app),
        ],
        Bytes::from(body),
    )
    .await
}

#[tokio::test]
async fn responses_whole_and_streamed() {
    let h = harness().await;
    let path = "/openai/v1/responses";
    let (status, _, body) = post(
        &h,
        path,
        "agent",
        format!(r#"{{"model":"{GPT_OSS_20B}","input":"[[sim input=100 output=20]]"}}"#),
    )
    .await;
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["usage"]["input_tokens"], 100);
    let (status, headers, body) = post(
        &h,
        path,
        "agent",
        format!(
            r#"{{"model":"{GPT_OSS_20B}","stream":true,"input":"[[sim input=300 output=40]]"}}"#
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    assert!(
        std::str::from_utf8(&body)
            .unwrap()
            .contains("event: response.completed")
    );
    let m = h.metrics().await;
    let (input, output) = GPT_OSS_20B_RATES;
    assert_eq!(m.cost_pico("agent", GPT_OSS_20B, "input"), 400 * input);
    assert_eq!(m.cost_pico("agent", GPT_OSS_20B, "output"), 60 * output);
    assert_eq!(
        m.requests(&[("app", "agent"), ("operation", "Responses")]),
        2
    );
}

#[tokio::test]
async fn anthropic_messages_with_both_cache_ttls() {
    let h = harness().await;
    let path = "/anthropic/v1/messages";
    let request = |stream: bool, sim: &str| {
        format!(
            r#"{{"model":"{SONNET_45}","anthropic_version":"bedrock-2023-05-31","max_tokens":100,"stream":{stream},"messages":[{{"role":"user","content":"{sim}"}}]}}"#
        )
    };
    let (status, _, body) = post(
        &h,
        path,
        "coder",
        request(
            false,
            "[[sim input=1000 output=300 cache_read=5000 cache_write=800 cache_write_1h=200]]",
        ),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, headers, _) = post(
        &h,
        path,
        "coder",
        request(true, "[[sim input=10 output=30 cache_read=50 chunks=3]]"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");

    // Sonnet 4.5 `global.`: $3 / $15 / read $0.30 / 5-minute write $3.75 / 1-hour write $6.
    let m = h.metrics().await;
    assert_eq!(m.cost_pico("coder", SONNET_45, "input"), 1010 * 3_000_000);
    assert_eq!(m.cost_pico("coder", SONNET_45, "output"), 330 * 15_000_000);
    assert_eq!(
        m.cost_pico("coder", SONNET_45, "cache_read"),
        5050 * 300_000
    );
    assert_eq!(
        m.cost_pico("coder", SONNET_45, "cache_write"),
        600 * 3_750_000 + 200 * 6_000_000
    );
    assert_eq!(
        m.requests(&[("app", "coder"), ("operation", "AnthropicMessages")]),
        2
    );
    // The whole answer's stop_reason and the stream's message_delta.
    assert_eq!(
        m.value(
            "bedrock_stop_reasons_total",
            &[("app", "coder"), ("reason", "end_turn")]
        ),
        2.0
    );
}

#[tokio::test]
async fn bad_bodies_get_an_aws_shaped_error_and_are_counted_once() {
    let h = harness().await;
    for (path, body) in [
        ("/openai/v1/chat/completions", r#"{"messages":[]}"#),
        ("/openai/v1/chat/completions", r#"{"model":"#),
        ("/openai/v1/responses", r#"["not","an","object"]"#),
        ("/anthropic/v1/messages", r#"{"model":"","max_tokens":1}"#),
    ] {
        let (status, headers, answer) = post(&h, path, "sloppy", body.into()).await;
        assert_eq!(status, 400, "{path} {body}");
        assert_eq!(headers["x-amzn-errortype"], "ValidationException");
        let message: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert!(message["message"].as_str().unwrap().len() > 10);
    }
    let m = h.metrics().await;
    assert_eq!(m.requests(&[("app", "sloppy"), ("status", "400")]), 4);
    assert_eq!(h.simulator.stats().requests, 0, "nothing was forwarded");
}
