//! Per-app AWS identity end to end: `--assume-role` sessions and request metadata. The meter
//! asks the simulator's STS for each app's session with the real `aws-sdk-sts` client; the
//! simulator checks every Bedrock call's signature against the session that signed it (or the
//! meter's own credentials) and refuses a call signed by one app's session for another app.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{AppName, BehaviorVersion, Region};
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::primitives::Blob;
use bedrock_meter::aws::sessions::AssumeRole;
use bedrock_meter::config::ProxyConfig;
use bedrock_meter::proxy::identify::Keys;
use bedrock_meter::simulator::{AssumedRole, METER_IDENTITY, Simulator, SimulatorConfig};
use common::*;

const NOVA_MICRO: &str = "amazon.nova-micro-v1:0";
const ROLE: &str = "arn:aws:iam::123456789012:role/bedrock-apps";

const KEYS: &str = r#"
[[key]]
access_key_id = "AKIDCHECKOUT01"
secret_access_key = "checkout-virtual-secret"
app = "checkout"
tags = { team = "payments", cost-center = "4711" }

[[key]]
access_key_id = "AKIDSEARCH01"
secret_access_key = "search-virtual-secret"
app = "search"
"#;

async fn simulator(lifetime: Option<Duration>) -> Simulator {
    Simulator::start(SimulatorConfig {
        listen: loopback(),
        expect_credentials: Some(proxy_credentials()),
        sts_session_lifetime: lifetime,
    })
    .await
    .unwrap()
}

/// A meter in keys mode in front of `sim`, with `--assume-role` against the simulator's STS.
async fn meter(
    sim: &Simulator,
    tweak: impl FnOnce(&mut ProxyConfig),
) -> bedrock_meter::server::Running {
    let keys = Keys::parse(KEYS, "keys.toml").unwrap().keys;
    let sts = sim.url();
    start_proxy(&sim.url(), |c| {
        c.keys = Some(keys);
        c.assume_role = Some(AssumeRole {
            role_arn: ROLE.to_owned(),
            duration: Duration::from_secs(3600),
            endpoint: Some(sts),
            region: "us-east-1".to_owned(),
        });
        tweak(c);
    })
    .await
}

fn client(meter: &bedrock_meter::server::Running, id: &str, secret: &str) -> Client {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(meter.url())
        .credentials_provider(Credentials::new(id, secret, None, None, "test"))
        .app_name(AppName::new("ignored-in-keys-mode").unwrap())
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled());
    Client::from_conf(config.build())
}

fn checkout(meter: &bedrock_meter::server::Running) -> Client {
    client(meter, "AKIDCHECKOUT01", "checkout-virtual-secret")
}

fn search(meter: &bedrock_meter::server::Running) -> Client {
    client(meter, "AKIDSEARCH01", "search-virtual-secret")
}

async fn converse(client: &Client) -> Result<(), (String, String)> {
    client
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim input=100 output=20]] hi"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            let e = e.into_service_error();
            (
                e.code().unwrap_or("").to_owned(),
                e.message().unwrap_or("").to_owned(),
            )
        })
}

async fn invoke(client: &Client, metadata: Option<&str>) -> Result<(), (String, String)> {
    let body = r#"{"messages":[{"role":"user","content":[{"text":"[[sim input=30 output=5]]"}]}]}"#;
    let mut call = client
        .invoke_model()
        .model_id(NOVA_MICRO)
        .body(Blob::new(body));
    if let Some(m) = metadata {
        call = call.request_metadata(m);
    }
    call.send().await.map(|_| ()).map_err(|e| {
        let e = e.into_service_error();
        (
            e.code().unwrap_or("").to_owned(),
            e.message().unwrap_or("").to_owned(),
        )
    })
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn each_app_is_signed_by_its_own_session() {
    let sim = simulator(None).await;
    let meter = meter(&sim, |_| {}).await;
    let (checkout, search) = (checkout(&meter), search(&meter));
    for _ in 0..3 {
        converse(&checkout).await.unwrap();
    }
    invoke(&search, None).await.unwrap();
    invoke(&search, None).await.unwrap();

    let stats = sim.stats();
    // One session per app, asked once and cached, named after the app and tagged with it.
    let mut assumed = stats.assumed_roles.clone();
    assumed.sort_by(|a, b| a.session_name.cmp(&b.session_name));
    assert_eq!(
        assumed,
        vec![
            AssumedRole {
                role_arn: ROLE.to_owned(),
                session_name: "checkout".to_owned(),
                tags: tags(&[
                    ("app", "checkout"),
                    ("cost-center", "4711"),
                    ("team", "payments")
                ]),
                duration_seconds: 3600,
            },
            AssumedRole {
                role_arn: ROLE.to_owned(),
                session_name: "search".to_owned(),
                tags: tags(&[("app", "search")]),
                duration_seconds: 3600,
            },
        ]
    );
    // Every Bedrock call was signed by its app's session (the simulator verified each
    // signature with that session's secret and token), none by the meter's own key.
    assert_eq!(stats.signed_by, counts(&[("checkout", 3), ("search", 2)]));
    assert_eq!(stats.signatures_invalid, 0);
    assert_eq!(stats.identity_mismatches, 0);
    assert_eq!(
        stats.metadata_apps,
        counts(&[("checkout", 3), ("search", 2)])
    );
    let m = scrape_metrics(&meter).await;
    assert_eq!(m.value("bedrock_assume_role_failures_total", &[]), 0.0);
    assert_eq!(m.requests(&[("app", "checkout"), ("status", "200")]), 3);
    assert_eq!(m.requests(&[("app", "search"), ("status", "200")]), 2);
}

#[tokio::test]
async fn sts_down_means_traffic_flows_under_the_meters_identity_and_is_counted() {
    let sim = simulator(None).await;
    let meter = meter(&sim, |_| {}).await;
    let checkout = checkout(&meter);
    sim.set_sts_down(true);
    for _ in 0..3 {
        converse(&checkout).await.unwrap();
    }
    let stats = sim.stats();
    assert!(stats.assumed_roles.is_empty());
    assert_eq!(stats.signed_by, counts(&[(METER_IDENTITY, 3)]));
    let m = scrape_metrics(&meter).await;
    assert_eq!(
        m.value("bedrock_assume_role_failures_total", &[("app", "checkout")]),
        3.0
    );
    assert_eq!(m.requests(&[("app", "checkout"), ("status", "200")]), 3);

    // STS is back: once the backoff (one second, doubling after each failed try) has passed,
    // the app gets its session again. Every call signed meanwhile by the meter is counted.
    sim.set_sts_down(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sim.stats().assumed_roles.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no session after STS came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        converse(&checkout).await.unwrap();
    }
    let stats = sim.stats();
    assert_eq!(stats.assumed_roles.len(), 1);
    let by_meter = stats.signed_by[METER_IDENTITY];
    assert!(by_meter >= 3);
    assert_eq!(stats.signed_by.get("checkout"), Some(&1));
    let m = scrape_metrics(&meter).await;
    assert_eq!(
        m.value("bedrock_assume_role_failures_total", &[("app", "checkout")]),
        by_meter as f64
    );
    assert_eq!(
        m.requests(&[("app", "checkout"), ("status", "200")]),
        by_meter + 1
    );
}

#[tokio::test]
async fn a_session_near_expiry_is_renewed_in_the_background() {
    // Sessions of 200 s are inside the meter's five-minute renewal window from the start: the
    // call after the first still signs with the current session and starts a renewal.
    let sim = simulator(Some(Duration::from_secs(200))).await;
    let meter = meter(&sim, |_| {}).await;
    let checkout = checkout(&meter);
    converse(&checkout).await.unwrap();
    assert_eq!(sim.stats().assumed_roles.len(), 1);
    converse(&checkout).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sim.stats().assumed_roles.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no renewal");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = sim.stats();
    assert!(
        stats
            .assumed_roles
            .iter()
            .all(|a| a.session_name == "checkout")
    );
    assert_eq!(stats.signed_by, counts(&[("checkout", 2)]));
    assert_eq!(stats.signatures_invalid, 0);
}

#[tokio::test]
async fn request_metadata_names_the_app_merged_with_the_clients() {
    let h = Harness::start().await;
    let app = h.client("checkout");
    // Converse: the client's tags kept, its `app` replaced by the meter's.
    app.converse()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim input=10 output=2]] hi"))
        .request_metadata("team", "payments")
        .request_metadata("app", "spoofed")
        .send()
        .await
        .unwrap();
    let expected = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    assert_eq!(
        h.simulator.stats().last_metadata,
        expected(&[("app", "checkout"), ("team", "payments")])
    );
    // A stream with none gets the member.
    let out = app
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message("[[sim input=10 output=2]] hi"))
        .send()
        .await
        .unwrap();
    let mut events = out.stream;
    while events.recv().await.unwrap().is_some() {}
    assert_eq!(
        h.simulator.stats().last_metadata,
        expected(&[("app", "checkout")])
    );
    // InvokeModel: the header, merged the same way.
    invoke(&app, Some(r#"{"run":"7","app":"x"}"#))
        .await
        .unwrap();
    assert_eq!(
        h.simulator.stats().last_metadata,
        expected(&[("app", "checkout"), ("run", "7")])
    );
    invoke(&app, None).await.unwrap();
    assert_eq!(
        h.simulator.stats().last_metadata,
        expected(&[("app", "checkout")])
    );
    assert_eq!(
        h.simulator.stats().metadata_apps,
        counts(&[("checkout", 4)])
    );

    // A header that is no JSON object is refused by the meter, metered once, never forwarded.
    let before = h.simulator.stats().requests;
    let err = invoke(&app, Some("run=7")).await.unwrap_err();
    assert_eq!(err.0, "ValidationException");
    assert!(
        err.1
            .starts_with("X-Amzn-Bedrock-Request-Metadata must be a JSON object of strings"),
        "{}",
        err.1
    );
    assert_eq!(h.simulator.stats().requests, before);
    let m = h.metrics().await;
    assert_eq!(m.requests(&[("app", "checkout"), ("status", "400")]), 1);
    assert_eq!(m.requests(&[("app", "checkout"), ("status", "200")]), 4);
}

#[tokio::test]
async fn request_metadata_can_be_turned_off() {
    let h = Harness::start_with(|c| c.metadata_key = None).await;
    let app = h.client("checkout");
    converse(&app).await.unwrap();
    invoke(&app, None).await.unwrap();
    let stats = h.simulator.stats();
    assert_eq!(stats.metadata_apps, counts(&[("", 2)]));
    assert_eq!(stats.last_metadata, None);
}

#[tokio::test]
async fn a_key_of_its_own_choosing() {
    let h = Harness::start_with(|c| c.metadata_key = Some("bedrock-meter:app".to_owned())).await;
    let app = h.client("checkout");
    converse(&app).await.unwrap();
    let stats = h.simulator.stats();
    let last = stats.last_metadata.unwrap();
    assert_eq!(
        last.get("bedrock-meter:app").map(String::as_str),
        Some("checkout")
    );
    assert_eq!(last.len(), 1);
}
