//! Demo: the built-in simulator and the proxy in one process, synthetic traffic from several
//! apps through the real AWS SDK, and a table of what the meter saw. Needs no AWS account.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_bedrockruntime::types::{ContentBlock, ConversationRole, Message};
use aws_sdk_bedrockruntime::{Client, config::AppName};

use crate::cli::DemoArgs;
use crate::forward::upstream::Upstream;
use crate::pricing::RateCard;
use crate::scrape;
use crate::server::{self, ProxyConfig};
use crate::simulator::{Simulator, SimulatorConfig};

type DemoError = Box<dyn std::error::Error + Send + Sync>;

/// (app, model, input tokens, output tokens, cache read tokens) of the synthetic traffic.
const TRAFFIC: [(&str, &str, u32, u32, u32); 6] = [
    ("checkout", "amazon.nova-micro-v1:0", 600, 80, 0),
    (
        "checkout",
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        1200,
        150,
        400,
    ),
    ("search", "amazon.nova-lite-v1:0", 2000, 60, 0),
    (
        "search",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        3000,
        400,
        1500,
    ),
    (
        "support",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        2500,
        900,
        0,
    ),
    ("support", "meta.llama3-1-70b-instruct-v1:0", 1500, 300, 0),
];

pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    let card = RateCard::load(&args.rates)?.card;
    let simulator = Simulator::start(SimulatorConfig::default()).await?;
    let creds = Credentials::new("demo", "demo", None, None, "demo");
    let mut config = ProxyConfig::new(
        card,
        SharedCredentialsProvider::new(creds.clone()),
        Upstream::parse(Some(&simulator.url()))?,
    );
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.admin_listen = args.admin_listen;
    config.region = Some("us-east-1".into());
    let proxy = server::start(config).await?;
    println!(
        "bedrock-meter demo: simulator {}, proxy {}, metrics {}/metrics",
        simulator.url(),
        proxy.url(),
        proxy.admin_url()
    );

    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut traffic = tokio::task::JoinSet::new();
    for (i, (app, model, input, output, cache)) in TRAFFIC.into_iter().enumerate() {
        let client = sdk_client(&proxy.url(), app, creds.clone())?;
        traffic.spawn(async move {
            let mut n: u32 = 0;
            loop {
                // Vary each call a little so the table moves; still deterministic.
                let prompt = format!(
                    "[[sim input={} output={} cache_read={cache} delay_ms=40]] demo call {n}",
                    input + n % 7 * 10,
                    output + n % 5 * 3,
                );
                let message = Message::builder()
                    .role(ConversationRole::User)
                    .content(ContentBlock::Text(prompt))
                    .build();
                if let Ok(message) = message {
                    let _ = client
                        .converse()
                        .model_id(model)
                        .messages(message)
                        .send()
                        .await;
                }
                n = n.wrapping_add(1);
                tokio::time::sleep(Duration::from_millis(150 + 40 * i as u64)).await;
            }
        });
    }

    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        print_table(&proxy.state.meter.metrics.render()?);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    traffic.abort_all();
    println!("final:");
    print_table(&proxy.state.meter.metrics.render()?);
    proxy.shutdown().await;
    simulator.shutdown();
    Ok(())
}

fn sdk_client(endpoint: &str, app: &str, creds: Credentials) -> Result<Client, DemoError> {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(aws_sdk_bedrockruntime::config::BehaviorVersion::latest())
        .region(aws_sdk_bedrockruntime::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .app_name(AppName::new(app.to_owned())?)
        .build();
    Ok(Client::from_conf(config))
}

fn print_table(text: &[u8]) {
    let samples = scrape::parse(&String::from_utf8_lossy(text));
    let mut rows: BTreeMap<(String, String), [f64; 6]> = BTreeMap::new();
    for s in &samples {
        let (Some(app), Some(model)) = (s.labels.get("app"), s.labels.get("model")) else {
            continue;
        };
        let row = rows.entry((app.clone(), model.clone())).or_default();
        match (s.name.as_str(), s.labels.get("type").map(String::as_str)) {
            ("bedrock_requests_total", _) => row[0] += s.value,
            ("bedrock_tokens_total", Some("input")) => row[1] += s.value,
            ("bedrock_tokens_total", Some("output")) => row[2] += s.value,
            ("bedrock_tokens_total", Some("cache_read" | "cache_write")) => row[3] += s.value,
            ("bedrock_cost_usd_total", _) => row[4] += s.value,
            ("bedrock_output_tokens_count", _) => row[5] += s.value,
            _ => {}
        }
    }
    println!(
        "{:<10} {:<50} {:>6} {:>10} {:>9} {:>9} {:>11} {:>8}",
        "app", "model", "reqs", "input", "output", "cache", "cost_usd", "avg_out"
    );
    let mut total = [0.0; 6];
    for ((app, model), r) in &rows {
        let avg = if r[5] > 0.0 { r[2] / r[5] } else { 0.0 };
        println!(
            "{app:<10} {model:<50} {:>6} {:>10} {:>9} {:>9} {:>11.6} {avg:>8.1}",
            r[0], r[1], r[2], r[3], r[4]
        );
        for (t, v) in total.iter_mut().zip(r) {
            *t += v;
        }
    }
    println!(
        "{:<10} {:<50} {:>6} {:>10} {:>9} {:>9} {:>11.6}",
        "TOTAL", "", total[0], total[1], total[2], total[3], total[4]
    );
}
