//! TLS on the meter's listeners: the real SDK over TLS with a test CA, HTTP/2 and HTTP/1.1 by
//! ALPN on one port, a rotated certificate picked up while open connections carry on, a bad pair
//! refused, a bearer key over TLS (the real SDK, and boto3 when it is installed), and mutual TLS:
//! clients without a certificate from the CA refused in the handshake, and a certificate named in
//! the keys file proving its app.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pki::*;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::Token;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::auth::http::HTTP_BEARER_AUTH_SCHEME_ID;
use bedrock_meter::proxy::identify::Keys;
use bedrock_meter::server::tls::TlsFiles;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const NOVA_MICRO: &str = "amazon.nova-micro-v1:0";
/// Nova Micro, $0.035 / $0.14 per 1M tokens: pico-dollars per token.
const NOVA_MICRO_RATES: (u64, u64) = (35_000, 140_000);
const BEARER: &str = "bedrock-api-key-batch-0123456789";
const MESH_ID: &str = "spiffe://mesh.test/ns/ledger/sa/api";

// ------------------------------------------------------------------------ clients

/// A rustls client trusting the test CA, offering `alpn`, with a client certificate if given.
fn tls_client(ca_pem: &str, client: Option<&Pair>, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(pair) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(pair.cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(pair.key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<TlsStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    connector.connect(name, tcp).await
}

/// The leaf certificate the server presented.
fn served_cert(stream: &TlsStream) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// An HTTP/1.1 connection over `stream`, kept open for as many requests as the test sends.
async fn http1(stream: TlsStream) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

fn converse_request(url_path: &str, app: Option<&str>) -> http::Request<Full<Bytes>> {
    let mut req = http::Request::post(url_path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json");
    if let Some(app) = app {
        req = req.header("x-bedrock-meter-app", app);
    }
    req.body(Full::new(Bytes::from_static(
        br#"{"messages":[{"role":"user","content":[{"text":"Say hello over TLS."}]}]}"#,
    )))
    .unwrap()
}

const CONVERSE_PATH: &str = "/model/amazon.nova-micro-v1%3A0/converse";

/// Status, `x-amzn-ErrorType` and the usage's (input, output) tokens of a Converse answer.
async fn answer(
    resp: http::Response<hyper::body::Incoming>,
) -> (u16, Option<String>, Option<(u64, u64)>) {
    let status = resp.status().as_u16();
    let error_type = resp
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let usage = json.get("usage").map(|u| {
        (
            u["inputTokens"].as_u64().unwrap(),
            u["outputTokens"].as_u64().unwrap(),
        )
    });
    (status, error_type, usage)
}

/// The Region of the meter's signature on a request the simulator received.
fn signed_region(seen: &bedrock_meter::simulator::SeenRequest) -> String {
    let auth = &seen
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1;
    auth.split('/').nth(2).unwrap().to_owned()
}

fn assert_priced(m: &Metrics, app: &str, (input, output): (u64, u64)) {
    assert_eq!(m.tokens(app, NOVA_MICRO, "input"), input);
    assert_eq!(m.tokens(app, NOVA_MICRO, "output"), output);
    assert_eq!(
        m.cost_pico(app, NOVA_MICRO, "input"),
        input * NOVA_MICRO_RATES.0
    );
    assert_eq!(
        m.cost_pico(app, NOVA_MICRO, "output"),
        output * NOVA_MICRO_RATES.1
    );
}

// ------------------------------------------------------------------------ tests

#[tokio::test]
async fn the_sdk_over_tls_is_metered_exactly_and_the_admin_listener_serves_tls_too() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("bedrock-meter test CA");
    let (cert, key) = write_pair(&dir.path().join("proxy"), &pki.server("meter"));
    let (admin_cert, admin_key) = write_pair(&dir.path().join("admin"), &pki.server("admin"));
    let h = Harness::start_with(|c| {
        c.tls = Some(files(cert, key, None));
        c.admin_tls = Some(files(admin_cert, admin_key, None));
    })
    .await;
    assert!(h.proxy.url().starts_with("https://"));
    assert!(h.proxy.admin_url().starts_with("https://"));

    let client = sdk_over_tls(&h, &pki.ca_pem, "checkout");
    let out = client
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("Hello over TLS."))
        .send()
        .await
        .unwrap();
    let usage = out.usage().unwrap();
    let whole = (usage.input_tokens() as u64, usage.output_tokens() as u64);
    let mut stream = client
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("Stream to me over TLS, please."))
        .send()
        .await
        .unwrap();
    let mut streamed = None;
    while let Some(event) = stream.stream.recv().await.unwrap() {
        if let aws_sdk_bedrockruntime::types::ConverseStreamOutput::Metadata(m) = event {
            let u = m.usage().unwrap();
            streamed = Some((u.input_tokens() as u64, u.output_tokens() as u64));
        }
    }
    let streamed = streamed.unwrap();

    // /metrics over TLS, from the admin listener's own certificate.
    let connector = tls_client(&pki.ca_pem, None, &[b"http/1.1"]);
    let tls = connect(&connector, h.proxy.admin_addr).await.unwrap();
    assert_eq!(
        served_cert(&tls),
        der_of(&std::fs::read_to_string(dir.path().join("admin/tls.crt")).unwrap())
    );
    let mut send = http1(tls).await;
    let resp = send
        .send_request(
            http::Request::get("/metrics")
                .header("host", "127.0.0.1")
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let m = Metrics(bedrock_meter::tools::scrape::parse(
        std::str::from_utf8(&body).unwrap(),
    ));
    assert_eq!(m.requests(&[("app", "checkout")]), 2);
    assert_priced(&m, "checkout", (whole.0 + streamed.0, whole.1 + streamed.1));
    assert_eq!(
        m.value(
            "bedrock_tls_handshake_failures_total",
            &[("listener", "proxy")]
        ),
        0.0
    );
}

#[tokio::test]
async fn alpn_chooses_h2_or_http1_on_one_port_and_plain_http_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("bedrock-meter test CA");
    let (cert, key) = write_pair(dir.path(), &pki.server("meter"));
    // The raw requests below are not signed: open mode calls this Region for them.
    let h = Harness::start_with(|c| {
        c.tls = Some(files(cert, key, None));
        c.region = Some("us-east-1".into());
    })
    .await;

    // A client offering both gets HTTP/2, as the JavaScript SDK does.
    let both = tls_client(&pki.ca_pem, None, &[b"h2", b"http/1.1"]);
    let tls = connect(&both, h.proxy.addr).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = converse_request(
        &format!("https://127.0.0.1:{}{CONVERSE_PATH}", h.proxy.addr.port()),
        Some("h2-app"),
    );
    req.headers_mut().remove("host");
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let (status, _, h2_usage) = answer(resp).await;
    assert_eq!(status, 200);

    // A client offering only HTTP/1.1 gets it, on the same port.
    let one = tls_client(&pki.ca_pem, None, &[b"http/1.1"]);
    let tls = connect(&one, h.proxy.addr).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut send = http1(tls).await;
    let resp = send
        .send_request(converse_request(CONVERSE_PATH, Some("h1-app")))
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_11);
    let (status, _, h1_usage) = answer(resp).await;
    assert_eq!(status, 200);

    // Plain HTTP to the TLS port never reaches the handler: no request is metered.
    let plain = http_get_status(&format!("http://{}/ping", h.proxy.addr)).await;
    assert_eq!(plain, None);

    let m = h.metrics().await;
    assert_priced(&m, "h2-app", h2_usage.unwrap());
    assert_priced(&m, "h1-app", h1_usage.unwrap());
    assert_eq!(m.requests(&[]), 2);
    assert_eq!(
        m.value(
            "bedrock_tls_handshake_failures_total",
            &[("listener", "proxy")]
        ),
        1.0
    );
}

/// The layout of a mounted Kubernetes secret: `tls.crt` and `tls.key` are symlinks through
/// `..data`, which the kubelet (or cert-manager's csi driver) swaps in one rename.
struct MountedSecret {
    dir: PathBuf,
    version: usize,
}

impl MountedSecret {
    fn new(dir: &Path, pair: &Pair) -> MountedSecret {
        let mut secret = MountedSecret {
            dir: dir.to_owned(),
            version: 0,
        };
        secret.swap_in(&pair.cert, &pair.key);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name)).unwrap();
        }
        secret
    }

    fn swap_in(&mut self, cert: &str, key: &str) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        write_pair(
            &self.dir.join(&version),
            &Pair {
                cert: cert.to_owned(),
                key: key.to_owned(),
            },
        );
        let link = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &link).unwrap();
        std::fs::rename(&link, self.dir.join("..data")).unwrap();
    }

    fn files(&self) -> TlsFiles {
        files(self.dir.join("tls.crt"), self.dir.join("tls.key"), None)
    }
}

#[tokio::test]
async fn a_rotated_pair_is_picked_up_without_dropping_open_connections_and_a_bad_pair_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("bedrock-meter test CA");
    let (first, second, third) = (
        pki.server("first"),
        pki.server("second"),
        pki.server("third"),
    );
    let mut secret = MountedSecret::new(dir.path(), &first);
    let h = Harness::start_with(|c| {
        c.tls = Some(secret.files());
        c.reload_interval = Duration::from_millis(50);
        c.region = Some("us-east-1".into());
    })
    .await;
    let connector = tls_client(&pki.ca_pem, None, &[b"http/1.1"]);

    let open = connect(&connector, h.proxy.addr).await.unwrap();
    assert_eq!(served_cert(&open), der_of(&first.cert));
    let mut open = http1(open).await;
    let resp = open
        .send_request(converse_request(CONVERSE_PATH, Some("rotation")))
        .await
        .unwrap();
    let (status, _, before) = answer(resp).await;
    assert_eq!(status, 200);

    // The secret is rotated: new connections get the new certificate...
    secret.swap_in(&second.cert, &second.key);
    wait_for(
        &h,
        "bedrock_tls_reloads_total",
        &[("listener", "proxy"), ("result", "ok")],
        1.0,
    )
    .await;
    let fresh = connect(&connector, h.proxy.addr).await.unwrap();
    assert_eq!(served_cert(&fresh), der_of(&second.cert));
    // ...and the connection opened before the rotation carries on.
    let resp = open
        .send_request(converse_request(CONVERSE_PATH, Some("rotation")))
        .await
        .unwrap();
    let (status, _, after) = answer(resp).await;
    assert_eq!(status, 200);

    // A certificate with another certificate's key is refused, and the pair in use stays.
    secret.swap_in(&third.cert, &second.key);
    wait_for(
        &h,
        "bedrock_tls_reloads_total",
        &[("listener", "proxy"), ("result", "error")],
        1.0,
    )
    .await;
    let fresh = connect(&connector, h.proxy.addr).await.unwrap();
    assert_eq!(served_cert(&fresh), der_of(&second.cert));

    let (before, after) = (before.unwrap(), after.unwrap());
    let m = h.metrics().await;
    assert_eq!(m.requests(&[("app", "rotation")]), 2);
    assert_priced(&m, "rotation", (before.0 + after.0, before.1 + after.1));
    assert_eq!(
        m.value(
            "bedrock_tls_reloads_total",
            &[("listener", "proxy"), ("result", "ok")]
        ),
        1.0
    );
}

const KEYS: &str = r#"
[[key]]
bearer_token = "bedrock-api-key-batch-0123456789"
app = "batch"
region = "us-west-2"

[[key]]
access_key_id = "AKIDCHECKOUT01"
secret_access_key = "checkout-virtual-secret"
app = "checkout"

[[key]]
client_cert = "spiffe://mesh.test/ns/ledger/sa/api"
app = "ledger"
region = "us-east-1"
"#;

#[tokio::test]
async fn a_bearer_key_is_accepted_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("bedrock-meter test CA");
    let (cert, key) = write_pair(dir.path(), &pki.server("meter"));
    let keys = Keys::parse(KEYS, "keys.toml").unwrap().keys;
    let h = Harness::start_with(|c| {
        c.tls = Some(files(cert, key, None));
        c.keys = Some(keys);
    })
    .await;
    let bearer = |token: &str| {
        Client::from_conf(
            sdk_config(&h, &pki.ca_pem)
                .bearer_token(Token::new(token, None))
                .auth_scheme_preference([HTTP_BEARER_AUTH_SCHEME_ID])
                .build(),
        )
    };
    let out = bearer(BEARER)
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("A batch job, over TLS."))
        .send()
        .await
        .unwrap();
    let usage = out.usage().unwrap();
    let err = bearer("bedrock-api-key-nobody-00000000")
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("Who am I?"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("UnrecognizedClientException"));

    let m = h.metrics().await;
    assert_priced(
        &m,
        "batch",
        (usage.input_tokens() as u64, usage.output_tokens() as u64),
    );
    assert_eq!(m.requests(&[("app", "batch")]), 1);
    assert_eq!(m.requests(&[("app", "unauthenticated")]), 1);
    // One call reached Bedrock, re-signed by the meter for the Region the key names.
    let sim = h.simulator.stats();
    assert_eq!((sim.requests, sim.signatures_valid), (1, 1));
    assert_eq!(
        signed_region(sim.last_request.as_ref().unwrap()),
        "us-west-2"
    );
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_from_the_ca_and_proves_named_apps() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("bedrock-meter test CA");
    let stranger = Pki::new("someone else's CA");
    let (cert, key) = write_pair(dir.path(), &pki.server("meter"));
    let ca = dir.path().join("clients-ca.crt");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let keys = Keys::parse(KEYS, "keys.toml").unwrap().keys;
    let h = Harness::start_with(|c| {
        c.tls = Some(files(cert, key, Some(ca)));
        c.keys = Some(keys);
    })
    .await;
    let refused = |m: &Metrics| {
        m.value(
            "bedrock_tls_handshake_failures_total",
            &[("listener", "proxy")],
        )
    };

    // No certificate, or one from another CA: refused in the handshake, nothing metered. With
    // TLS 1.3 the client learns it on its first read.
    for client in [None, Some(stranger.client(Some(MESH_ID), "ledger"))] {
        let connector = tls_client(&pki.ca_pem, client.as_ref(), &[b"http/1.1"]);
        let outcome = match connect(&connector, h.proxy.addr).await {
            Err(_) => None,
            Ok(tls) => {
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                send.send_request(converse_request(CONVERSE_PATH, Some("ledger")))
                    .await
                    .ok()
            }
        };
        assert!(
            outcome.is_none(),
            "a client without a valid certificate got an answer"
        );
    }
    let m = h.metrics().await;
    assert_eq!(refused(&m), 2.0);
    assert_eq!(m.requests(&[]), 0);

    // A certificate the keys file names proves its app: no Authorization header needed.
    let ledger = tls_client(
        &pki.ca_pem,
        Some(&pki.client(Some(MESH_ID), "ledger-api")),
        &[b"http/1.1"],
    );
    let mut send = http1(connect(&ledger, h.proxy.addr).await.unwrap()).await;
    let resp = send
        .send_request(converse_request(CONVERSE_PATH, Some("spoofed")))
        .await
        .unwrap();
    let (status, _, ledger_usage) = answer(resp).await;
    assert_eq!(status, 200);

    // A valid certificate the keys file does not name proves nothing by itself: the request
    // still needs a key.
    let other = tls_client(
        &pki.ca_pem,
        Some(&pki.client(Some("spiffe://mesh.test/ns/other/sa/api"), "other")),
        &[b"http/1.1"],
    );
    let mut send = http1(connect(&other, h.proxy.addr).await.unwrap()).await;
    let resp = send
        .send_request(converse_request(CONVERSE_PATH, Some("other")))
        .await
        .unwrap();
    let (status, error_type, _) = answer(resp).await;
    assert_eq!(status, 403);
    assert_eq!(
        error_type.as_deref(),
        Some("MissingAuthenticationTokenException")
    );

    // The ledger's call went out to the Region its key names, signed by the meter.
    let sim = h.simulator.stats();
    assert_eq!((sim.requests, sim.signatures_valid), (1, 1));
    assert_eq!(
        signed_region(sim.last_request.as_ref().unwrap()),
        "us-east-1"
    );
    let m = h.metrics().await;
    assert_priced(&m, "ledger", ledger_usage.unwrap());
    assert_eq!(m.requests(&[("app", "ledger")]), 1);
    assert_eq!(m.requests(&[("app", "spoofed")]), 0);
    assert_eq!(m.requests(&[("app", "unauthenticated")]), 1);
    assert_eq!(refused(&m), 2.0);
}

/// boto3 refuses a bearer token over plain HTTP; over TLS, with the client recipe of
/// docs/keys.md, it works through the meter. Runs when boto3 is installed (CI installs it from
/// PyPI; `BEDROCK_METER_PYTHON` names the interpreter) and fails in CI if it is not.
#[tokio::test]
async fn boto3_with_a_bearer_key_over_tls() {
    let python = std::env::var("BEDROCK_METER_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_boto3 = std::process::Command::new(&python)
        .args(["-c", "import boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_boto3 {
        assert!(
            std::env::var("CI").is_err(),
            "boto3 is not installed for {python}; .ci/run installs it"
        );
        eprintln!("skipped: boto3 is not installed for {python}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("bedrock-meter test CA");
    let (cert, key) = write_pair(dir.path(), &pki.server("meter"));
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let keys = Keys::parse(KEYS, "keys.toml").unwrap().keys;
    let h = Harness::start_with(|c| {
        c.tls = Some(files(cert, key, None));
        c.keys = Some(keys);
    })
    .await;

    let out = boto3_converse(&python, h.proxy.url(), Some(ca)).await;
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let usage: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = h.metrics().await;
    assert_priced(
        &m,
        "batch",
        (
            usage["inputTokens"].as_u64().unwrap(),
            usage["outputTokens"].as_u64().unwrap(),
        ),
    );
    assert_eq!(m.requests(&[("app", "batch")]), 1);

    // The same client and key against a meter without TLS: botocore (1.44 and later) refuses
    // to send a bearer token over plain HTTP, so nothing reaches the meter.
    let checks_scheme = std::process::Command::new(&python)
        .args([
            "-c",
            "import inspect, botocore.auth; print('HTTPS endpoint' in inspect.getsource(botocore.auth))",
        ])
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"True"));
    if checks_scheme {
        let keys = Keys::parse(KEYS, "keys.toml").unwrap().keys;
        let plain = Harness::start_with(|c| c.keys = Some(keys)).await;
        let out = boto3_converse(&python, plain.proxy.url(), None).await;
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Bearer authorization requires an HTTPS endpoint."),
            "{stderr}"
        );
        assert_eq!(plain.metrics().await.requests(&[]), 0);
        assert_eq!(plain.simulator.stats().requests, 0);
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs a botocore that refuses bearer tokens over plain HTTP"
        );
    }
}

/// Runs tests/clients/boto3_converse.py against `url`, configured only by the environment.
async fn boto3_converse(
    python: &str,
    url: String,
    ca: Option<std::path::PathBuf>,
) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/boto3_converse.py");
    let python = python.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(python);
        command
            .arg(script)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url)
            .env("AWS_BEARER_TOKEN_BEDROCK", BEARER)
            .env("AWS_DEFAULT_REGION", "us-west-2")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        if let Some(ca) = ca {
            command.env("AWS_CA_BUNDLE", ca);
        }
        command.output().unwrap()
    })
    .await
    .unwrap()
}
