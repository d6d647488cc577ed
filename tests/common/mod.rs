//! Test fixtures: the simulator and the proxy on loopback port 0, a real
//! `aws-sdk-bedrockruntime` client pointed at the proxy, and a `/metrics` scraper.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod pki;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{AppName, BehaviorVersion, Region};
use aws_sdk_bedrockruntime::types::{ContentBlock, ConversationRole, Message};
use bedrock_meter::pricing::RateCard;
use bedrock_meter::proxy::forward::upstream::Upstream;
use bedrock_meter::server::{self, ProxyConfig, Running};
use bedrock_meter::simulator::{Simulator, SimulatorConfig};
use bedrock_meter::tools::scrape::{self, Sample};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;

/// The proxy's own (fake) AWS credentials; the simulator checks every forwarded request is
/// signed with them.
pub fn proxy_credentials() -> Credentials {
    Credentials::new("AKIDPROXYTEST", "proxy-secret-key", None, None, "test")
}

/// What the client signs with (open mode: the proxy strips it and re-signs).
pub fn client_credentials() -> Credentials {
    Credentials::new("AKIDCLIENTTEST", "client-secret-key", None, None, "test")
}

pub fn shipped_card() -> RateCard {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rates/bedrock.toml");
    RateCard::load(&path).unwrap().card
}

pub struct Harness {
    pub simulator: Simulator,
    pub proxy: Running,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(|_| {}).await
    }

    /// Starts the simulator and a proxy in front of it; `tweak` adjusts the proxy config.
    pub async fn start_with(tweak: impl FnOnce(&mut ProxyConfig)) -> Harness {
        Self::start_with_simulator(|c, _| tweak(c)).await
    }

    /// [`Harness::start_with`], with the simulator's URL for `tweak` (its STS, say).
    pub async fn start_with_simulator(tweak: impl FnOnce(&mut ProxyConfig, &str)) -> Harness {
        let simulator = Simulator::start(SimulatorConfig {
            listen: loopback(),
            expect_credentials: Some(proxy_credentials()),
            ..SimulatorConfig::default()
        })
        .await
        .unwrap();
        let url = simulator.url();
        let proxy = start_proxy(&url, |c| tweak(c, &url)).await;
        Harness { simulator, proxy }
    }

    pub fn client(&self, app: &str) -> Client {
        sdk_client(&self.proxy.url(), Some(app))
    }

    pub async fn metrics(&self) -> Metrics {
        scrape_metrics(&self.proxy).await
    }
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub async fn start_proxy(upstream: &str, tweak: impl FnOnce(&mut ProxyConfig)) -> Running {
    let mut config = ProxyConfig::new(
        shipped_card(),
        SharedCredentialsProvider::new(proxy_credentials()),
        Upstream::parse(Some(upstream)).unwrap(),
    );
    config.listen = loopback();
    config.admin_listen = loopback();
    // The whole suite can run over an HTTP/2 upstream (`.ci/run` runs part of it so).
    config.upstream_http2 = std::env::var_os("BEDROCK_METER_TEST_UPSTREAM_HTTP2").is_some();
    tweak(&mut config);
    server::start(config).await.unwrap()
}

/// A real SDK client for `endpoint`, retries off so each call is exactly one request.
pub fn sdk_client(endpoint: &str, app: Option<&str>) -> Client {
    let mut config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(client_credentials())
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_bedrockruntime::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(app) = app {
        config = config.app_name(AppName::new(app.to_owned()).unwrap());
    }
    Client::from_conf(config.build())
}

pub fn user_message(text: &str) -> Message {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text.to_owned()))
        .build()
        .unwrap()
}

pub struct Metrics(pub Vec<Sample>);

impl Metrics {
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        scrape::sum(&self.0, name, labels)
    }

    pub fn tokens(&self, app: &str, model: &str, kind: &str) -> u64 {
        self.value(
            "bedrock_tokens_total",
            &[("app", app), ("model", model), ("type", kind)],
        ) as u64
    }

    /// Cost in pico-dollars (1e-12 USD), rounded from the exported USD value.
    pub fn cost_pico(&self, app: &str, model: &str, kind: &str) -> u64 {
        let usd = self.value(
            "bedrock_cost_usd_total",
            &[("app", app), ("model", model), ("type", kind)],
        );
        (usd * 1e12).round() as u64
    }

    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.0.iter().any(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    pub fn requests(&self, labels: &[(&str, &str)]) -> u64 {
        self.value("bedrock_requests_total", labels) as u64
    }
}

pub async fn scrape_metrics(proxy: &Running) -> Metrics {
    let (status, _, body) = http_get(&format!("{}/metrics", proxy.admin_url())).await;
    assert_eq!(status, 200);
    Metrics(scrape::parse(std::str::from_utf8(&body).unwrap()))
}

/// A plain HTTP/1.1 request; returns status, headers and body.
pub async fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (u16, http::HeaderMap, Bytes) {
    let client: HttpClient<_, Full<Bytes>> = HttpClient::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    (
        status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

pub async fn http_get(url: &str) -> (u16, http::HeaderMap, Bytes) {
    http_request("GET", url, &[], Bytes::new()).await
}

/// A free loopback port (for the binary, which is given addresses rather than listeners).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed and reaped when the test ends, pass or fail.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Replaces a file the way editors and ConfigMap updates do: write aside, then rename.
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Waits (up to 5 s) until the proxy's metric `name` with `labels` sums to `value`.
pub async fn wait_for(h: &Harness, name: &str, labels: &[(&str, &str)], value: f64) {
    for _ in 0..200 {
        if h.metrics().await.value(name, labels) == value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name}{labels:?} never reached {value}");
}

// ------------------------------------------------------------------- a scripted upstream

/// The body a [`Scripted`] upstream answers with.
pub type ScriptBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// A whole body.
pub fn full_body(bytes: impl Into<Bytes>) -> ScriptBody {
    Full::new(bytes.into()).boxed()
}

/// A body the test writes a chunk at a time; it ends when the sender is dropped.
pub fn channel_body() -> (tokio::sync::mpsc::UnboundedSender<Bytes>, ScriptBody) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(hyper::body::Frame::data(c))))
    });
    (tx, http_body_util::StreamBody::new(stream).boxed())
}

/// A stand-in for Bedrock where the simulator cannot say what a test needs (a header, an
/// exception type, a frame held back until the test releases it): answers every request on
/// loopback with what `answer` returns for its head and body.
pub struct Scripted {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Scripted {
    pub async fn start<F>(answer: F) -> Scripted
    where
        F: Fn(http::request::Parts, Bytes) -> http::Response<ScriptBody> + Send + Sync + 'static,
    {
        let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = std::sync::Arc::new(answer);
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let answer = answer.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let answer = answer.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await?.to_bytes();
                                Ok::<_, hyper::Error>(answer(parts, body))
                            }
                        },
                    );
                    // HTTP/1.1 and h2c alike, so the suite also runs over an HTTP/2 upstream.
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(conn), service)
                        .await;
                });
            }
        });
        Scripted { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn event_stream_frame(headers: Vec<(&str, &str)>, payload: &serde_json::Value) -> Bytes {
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let headers = headers
        .into_iter()
        .map(|(k, v)| Header::new(k.to_owned(), HeaderValue::String(v.to_owned().into())))
        .collect();
    let message = Message::new_from_parts(headers, Bytes::from(payload.to_string()));
    let mut buf = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut buf).unwrap();
    Bytes::from(buf)
}

/// An event-stream `event` frame, as Bedrock frames a ConverseStream event.
pub fn event_frame(event_type: &str, payload: &serde_json::Value) -> Bytes {
    event_stream_frame(
        vec![
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// An event-stream `exception` frame of `exception_type`.
pub fn exception_frame(exception_type: &str, payload: &serde_json::Value) -> Bytes {
    event_stream_frame(
        vec![
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
}

/// A 200 event-stream response head with `body`.
pub fn event_stream_response(body: ScriptBody) -> http::Response<ScriptBody> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/vnd.amazon.eventstream")
        .header("x-amzn-requestid", "scripted")
        .body(body)
        .unwrap()
}

/// `GET url`'s status; `None` when nothing answers (yet).
pub async fn http_get_status(url: &str) -> Option<u16> {
    let client: HttpClient<_, Full<Bytes>> = HttpClient::builder(TokioExecutor::new()).build_http();
    client
        .get(url.parse().ok()?)
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// The real binary, `serve` in front of `upstream` with the proxy's credentials from the
/// environment (as users run it), on loopback ports of its own, `extra` flags added; returned
/// once `/readyz` answers 200.
pub struct ServeBinary {
    pub child: Child,
    pub port: u16,
    /// `http://127.0.0.1:PORT` of the admin listener.
    pub admin: String,
}

pub async fn serve_binary(upstream: &str, extra: &[&str]) -> ServeBinary {
    let creds = proxy_credentials();
    let (port, admin_port) = (free_port(), free_port());
    let child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_bedrock-meter"))
            .args(["serve", "--upstream", upstream, "--region", "us-east-1"])
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--admin-listen=127.0.0.1:{admin_port}"))
            .args(extra)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("AWS_ACCESS_KEY_ID", creds.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", creds.secret_access_key())
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let admin = format!("http://127.0.0.1:{admin_port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while http_get_status(&format!("{admin}/readyz")).await != Some(200) {
        assert!(
            std::time::Instant::now() < deadline,
            "bedrock-meter never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ServeBinary { child, port, admin }
}
