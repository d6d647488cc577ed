//! Demo: the built-in simulator and the proxy in one process, synthetic traffic from several
//! apps through the real AWS SDK, and a live table of what the meter saw. Needs no AWS account.
//!
//! The traffic mixes all four metered operations, cache reads and writes, a little throttling,
//! an occasional stream cut by an exception, a model the rate card does not price, one app
//! (`support`) whose output tokens drift upward part-way through — the bill spike the alerts
//! exist for — an app (`assistant`) on Bedrock's OpenAI-compatible Chat Completions path,
//! streamed every other call, and one (`design`) generating Nova Canvas images, billed per
//! image. The table is computed from the proxy's own `/metrics`, so what it shows is what
//! Prometheus would scrape.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{ContentBlock, ConversationRole, Message};
use aws_sdk_bedrockruntime::{Client, config::AppName};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;

use crate::cli::DemoArgs;
use crate::pricing::RateCard;
use crate::proxy::forward::upstream::Upstream;
use crate::server::{self, ProxyConfig, Running};
use crate::simulator::{Simulator, SimulatorConfig};
use crate::tools::scrape;

type DemoError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy)]
enum Call {
    Converse,
    ConverseStream,
    InvokeModel,
    InvokeModelWithResponseStream,
    /// InvokeModel on an image model: one standard 1024 × 1024 image.
    Image,
    /// `POST /openai/v1/chat/completions`, streamed every other call, as an OpenAI client
    /// sends it (a bearer key, the app in `x-bedrock-meter-app`).
    ChatCompletions,
}

/// One synthetic workload: an app calling a model in a loop.
struct Workload {
    app: &'static str,
    model: &'static str,
    call: Call,
    input: u32,
    output: u32,
    cache_read: u32,
    cache_write: u32,
    /// Pause between calls.
    every_ms: u64,
    /// Every n-th call carries this fault directive (0: never).
    fault_every: u32,
    fault: &'static str,
    /// Output tokens grow to this many times `output` during the drift window.
    drift: u32,
}

const fn w(app: &'static str, model: &'static str, call: Call, io: (u32, u32)) -> Workload {
    Workload {
        app,
        model,
        call,
        input: io.0,
        output: io.1,
        cache_read: 0,
        cache_write: 0,
        every_ms: 300,
        fault_every: 0,
        fault: "",
        drift: 1,
    }
}

fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            every_ms: 150,
            ..w(
                "checkout",
                "amazon.nova-micro-v1:0",
                Call::Converse,
                (600, 80),
            )
        },
        Workload {
            cache_read: 400,
            cache_write: 50,
            fault_every: 12,
            fault: "fault=throttle",
            ..w(
                "checkout",
                "us.anthropic.claude-3-5-haiku-20241022-v1:0",
                Call::ConverseStream,
                (1200, 150),
            )
        },
        Workload {
            every_ms: 200,
            ..w(
                "search",
                "amazon.nova-lite-v1:0",
                Call::Converse,
                (2000, 60),
            )
        },
        Workload {
            cache_read: 1500,
            every_ms: 400,
            ..w(
                "search",
                "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                Call::InvokeModel,
                (3000, 400),
            )
        },
        Workload {
            every_ms: 350,
            drift: 3,
            ..w(
                "support",
                "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
                Call::ConverseStream,
                (2500, 300),
            )
        },
        Workload {
            fault_every: 15,
            fault: "fault=midstream after=2",
            ..w(
                "support",
                "meta.llama3-1-70b-instruct-v1:0",
                Call::InvokeModelWithResponseStream,
                (1500, 300),
            )
        },
        Workload {
            every_ms: 2_000,
            ..w(
                "research",
                "acme.unlisted-model-v1:0",
                Call::Converse,
                (800, 200),
            )
        },
        Workload {
            every_ms: 250,
            ..w(
                "assistant",
                "openai.gpt-oss-20b-1:0",
                Call::ChatCompletions,
                (900, 120),
            )
        },
        Workload {
            every_ms: 1_000,
            ..w("design", "amazon.nova-canvas-v1:0", Call::Image, (0, 0))
        },
    ]
}

/// The demo's running parts.
pub struct Demo {
    pub simulator: Simulator,
    pub proxy: Running,
    stop: CancellationToken,
    traffic: tokio::task::JoinSet<()>,
    started: Instant,
}

impl Demo {
    /// Starts the simulator, the proxy and the traffic. `drift` is when the drifting app's
    /// output starts to grow and when it reaches its peak, counted from now.
    pub async fn start(
        card: RateCard,
        admin_listen: SocketAddr,
        drift: (Duration, Duration),
    ) -> Result<Demo, DemoError> {
        let simulator = Simulator::start(SimulatorConfig::default()).await?;
        // The proxy signs for the simulator; these are not AWS credentials of anyone.
        let creds = Credentials::new("demo", "demo", None, None, "demo");
        let mut config = ProxyConfig::new(
            card,
            SharedCredentialsProvider::new(creds.clone()),
            Upstream::parse(Some(&simulator.url()))?,
        );
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.admin_listen = admin_listen;
        config.region = Some("us-east-1".into());
        let proxy = server::start(config).await?;

        let stop = CancellationToken::new();
        let started = Instant::now();
        let mut traffic = tokio::task::JoinSet::new();
        let http = HttpClient::builder(TokioExecutor::new()).build_http();
        for workload in workloads() {
            let client = sdk_client(&proxy.url(), workload.app, creds.clone())?;
            let (http, url) = (http.clone(), proxy.url());
            let stop = stop.clone();
            traffic.spawn(async move {
                let mut n: u32 = 0;
                while !stop.is_cancelled() {
                    let directive = directive(&workload, n, started.elapsed(), drift);
                    match workload.call {
                        Call::ChatCompletions => {
                            chat(&http, &url, &workload, directive, n % 2 == 1).await;
                        }
                        _ => call(&client, &workload, directive).await,
                    }
                    n = n.wrapping_add(1);
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(workload.every_ms)) => {}
                    }
                }
            });
        }
        Ok(Demo {
            simulator,
            proxy,
            stop,
            traffic,
            started,
        })
    }

    /// Stops the traffic: every app finishes its call in progress, so nothing is abandoned.
    pub async fn stop_traffic(&mut self) {
        self.stop.cancel();
        while self.traffic.join_next().await.is_some() {}
    }

    /// The table of what the meter has seen, from its own `/metrics` rendering.
    pub fn table(&self) -> Result<Table, DemoError> {
        let text = self.proxy.state.meter.metrics.render()?;
        Ok(Table::from_metrics(&String::from_utf8_lossy(&text)))
    }

    pub async fn shutdown(mut self) {
        self.stop_traffic().await;
        self.proxy.shutdown().await;
        self.simulator.shutdown();
    }
}

pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    let card = RateCard::load(&args.rates)?.card;
    // Drift from a third to two thirds of a bounded run; else from 20 s to 60 s.
    let drift = match args.duration {
        Some(d) => (d / 3, d * 2 / 3),
        None => (Duration::from_secs(20), Duration::from_secs(60)),
    };
    let mut demo = Demo::start(card, args.admin_listen, drift).await?;
    let live = std::io::stdout().is_terminal();
    let header = format!(
        "bedrock-meter demo: simulator {} -> proxy {} | metrics {}/metrics",
        demo.simulator.url(),
        demo.proxy.url(),
        demo.proxy.admin_url()
    );
    println!("{header}");
    let deadline = args.duration.map(|d| Instant::now() + d);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    loop {
        let stop = tokio::select! {
            _ = tick.tick() => false,
            _ = tokio::signal::ctrl_c() => true,
            () = until(deadline) => true,
        };
        if stop {
            break;
        }
        let table = demo.table()?.render();
        let elapsed = demo.started.elapsed().as_secs();
        if live {
            // Redraw in place: clear the screen, cursor home.
            print!("\x1b[2J\x1b[H{header}\n{elapsed:>4} s (Ctrl-C to stop)\n\n{table}");
        } else {
            print!("\n{elapsed:>4} s\n{table}");
        }
        let _ = std::io::stdout().flush();
    }
    demo.stop_traffic().await;
    println!(
        "\nfinal, after {:.1} s:",
        demo.started.elapsed().as_secs_f64()
    );
    print!("{}", demo.table()?.render());
    demo.shutdown().await;
    Ok(())
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn directive(w: &Workload, n: u32, elapsed: Duration, drift: (Duration, Duration)) -> String {
    // Vary each call a little so the table moves; still deterministic.
    let mut output = w.output + n % 5 * 3;
    if w.drift > 1 {
        let (from, to) = drift;
        let progress = if elapsed <= from {
            0.0
        } else if elapsed >= to || to <= from {
            1.0
        } else {
            (elapsed - from).as_secs_f64() / (to - from).as_secs_f64()
        };
        output = (f64::from(output) * (1.0 + progress * f64::from(w.drift - 1))) as u32;
    }
    let fault = if w.fault_every > 0 && n % w.fault_every == w.fault_every - 1 {
        w.fault
    } else {
        ""
    };
    format!(
        "[[sim input={} output={output} cache_read={} cache_write={} chunks=4 delay_ms=40 gap_ms=10 {fault}]] demo call {n}",
        w.input + n % 7 * 10,
        w.cache_read,
        w.cache_write,
    )
}

/// A Chat Completions call through the meter's OpenAI-compatible path, read to its end.
async fn chat(
    http: &HttpClient<HttpConnector, Full<Bytes>>,
    url: &str,
    w: &Workload,
    prompt: String,
    stream: bool,
) {
    let body = serde_json::json!({
        "model": w.model,
        "stream": stream,
        "messages": [{"role": "user", "content": prompt}],
    })
    .to_string();
    let Ok(request) = http::Request::post(format!("{url}/openai/v1/chat/completions"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::AUTHORIZATION, "Bearer demo-key")
        .header(crate::names::APP_HEADER, w.app)
        .body(Full::new(Bytes::from(body)))
    else {
        return;
    };
    if let Ok(response) = http.request(request).await {
        let _ = response.into_body().collect().await;
    }
}

async fn call(client: &Client, w: &Workload, prompt: String) {
    match w.call {
        Call::ChatCompletions => {}
        Call::Image => {
            let body = serde_json::json!({
                "taskType": "TEXT_IMAGE",
                "textToImageParams": {"text": prompt},
                "imageGenerationConfig": {
                    "numberOfImages": 1, "quality": "standard", "width": 1024, "height": 1024
                },
            })
            .to_string();
            let _ = client
                .invoke_model()
                .model_id(w.model)
                .body(Blob::new(body))
                .send()
                .await;
        }
        Call::Converse | Call::ConverseStream => {
            let Ok(message) = Message::builder()
                .role(ConversationRole::User)
                .content(ContentBlock::Text(prompt))
                .build()
            else {
                return;
            };
            if matches!(w.call, Call::Converse) {
                let _ = client
                    .converse()
                    .model_id(w.model)
                    .messages(message)
                    .send()
                    .await;
            } else if let Ok(out) = client
                .converse_stream()
                .model_id(w.model)
                .messages(message)
                .send()
                .await
            {
                let mut events = out.stream;
                while let Ok(Some(_)) = events.recv().await {}
            }
        }
        Call::InvokeModel | Call::InvokeModelWithResponseStream => {
            let body = serde_json::json!({
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 4096,
                "messages": [{"role": "user", "content": prompt}],
            })
            .to_string();
            if matches!(w.call, Call::InvokeModel) {
                let _ = client
                    .invoke_model()
                    .model_id(w.model)
                    .body(Blob::new(body))
                    .send()
                    .await;
            } else if let Ok(out) = client
                .invoke_model_with_response_stream()
                .model_id(w.model)
                .body(Blob::new(body))
                .send()
                .await
            {
                let mut events = out.body;
                while let Ok(Some(_)) = events.recv().await {}
            }
        }
    }
}

fn sdk_client(endpoint: &str, app: &str, creds: Credentials) -> Result<Client, DemoError> {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(aws_sdk_bedrockruntime::config::BehaviorVersion::latest())
        .region(aws_sdk_bedrockruntime::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        // One request per call, so the table counts calls as the apps made them.
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
        .app_name(AppName::new(app.to_owned())?)
        .build();
    Ok(Client::from_conf(config))
}

/// Per (app, model): what the meter counted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Row {
    pub requests: f64,
    pub errors: f64,
    pub input: f64,
    pub output: f64,
    pub cache: f64,
    pub cost_usd: f64,
    /// Requests with usage (the denominator of the average output).
    pub metered: f64,
    /// Whether any cost was recorded (unpriced models have tokens only).
    pub priced: bool,
}

impl Row {
    fn add(&mut self, o: &Row) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.input += o.input;
        self.output += o.output;
        self.cache += o.cache;
        self.cost_usd += o.cost_usd;
        self.metered += o.metered;
        self.priced |= o.priced;
    }
}

#[derive(Debug, Default)]
pub struct Table {
    pub rows: BTreeMap<(String, String), Row>,
    pub total: Row,
    /// (app, model) pairs with tokens but no price.
    pub unpriced: Vec<String>,
}

impl Table {
    pub fn from_metrics(text: &str) -> Table {
        let mut table = Table::default();
        for s in scrape::parse(text) {
            let (Some(app), Some(model)) = (s.labels.get("app"), s.labels.get("model")) else {
                continue;
            };
            let key = (app.clone(), model.clone());
            let row = table.rows.entry(key.clone()).or_default();
            let status_error = s
                .labels
                .get("status")
                .is_some_and(|st| !st.starts_with('2'));
            match (s.name.as_str(), s.labels.get("type").map(String::as_str)) {
                ("bedrock_requests_total", _) => {
                    row.requests += s.value;
                    if status_error {
                        row.errors += s.value;
                    }
                }
                ("bedrock_tokens_total", Some("input")) => row.input += s.value,
                ("bedrock_tokens_total", Some("output")) => row.output += s.value,
                ("bedrock_tokens_total", Some("cache_read" | "cache_write")) => {
                    row.cache += s.value;
                }
                ("bedrock_cost_usd_total", _) => {
                    row.cost_usd += s.value;
                    row.priced = true;
                }
                ("bedrock_output_tokens_count", _) => row.metered += s.value,
                _ => {}
            }
        }
        for (key, row) in &table.rows {
            table.total.add(row);
            if row.metered > 0.0 && !row.priced {
                table.unpriced.push(format!("{}/{}", key.0, key.1));
            }
        }
        table
    }

    pub fn render(&self) -> String {
        let width = self
            .rows
            .keys()
            .map(|(_, m)| m.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<10} {:<width$} {:>6} {:>5} {:>10} {:>9} {:>9} {:>12} {:>8}",
            "app", "model", "reqs", "errs", "input", "output", "cache", "cost_usd", "avg_out"
        );
        let line = |out: &mut String, app: &str, model: &str, r: &Row| {
            let avg = if r.metered > 0.0 {
                r.output / r.metered
            } else {
                0.0
            };
            let cost = if r.priced || r.metered == 0.0 {
                format!("{:.6}", r.cost_usd)
            } else {
                "unpriced".to_owned()
            };
            let _ = writeln!(
                out,
                "{app:<10} {model:<width$} {:>6} {:>5} {:>10} {:>9} {:>9} {cost:>12} {avg:>8.1}",
                r.requests, r.errors, r.input, r.output, r.cache
            );
        };
        for ((app, model), r) in &self.rows {
            line(&mut out, app, model, r);
        }
        line(&mut out, "TOTAL", "", &self.total);
        if !self.unpriced.is_empty() {
            let _ = writeln!(
                out,
                "unpriced (tokens counted, no cost): {}",
                self.unpriced.join(", ")
            );
        }
        out
    }
}
