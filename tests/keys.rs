//! Keys mode end to end: apps sign with virtual keys through the real SDK; the proxy verifies,
//! attributes, refuses, and re-signs with its own credentials. The simulator checks every
//! request it receives is signed with the proxy's credentials and counts them, so "never reached
//! the upstream" is asserted, not assumed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{AppName, BehaviorVersion, Region, Token};
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::auth::http::HTTP_BEARER_AUTH_SCHEME_ID;
use bedrock_meter::aws::sigv4;
use bedrock_meter::proxy::identify::Keys;
use bytes::Bytes;
use common::*;

const NOVA_MICRO: &str = "amazon.nova-micro-v1:0";
const BEARER: &str = "bedrock-api-key-batch-0123456789";

const KEYS: &str = r#"
[[key]]
access_key_id = "AKIDCHECKOUT01"
secret_access_key = "checkout-virtual-secret"
app = "checkout"

[[key]]
access_key_id = "AKIDSEARCH01"
secret_access_key = "search-virtual-secret"
session_token = "search-virtual-session"
app = "search"

[[key]]
bearer_token = "bedrock-api-key-batch-0123456789"
app = "batch"
region = "us-west-2"
"#;

fn keys(text: &str) -> Keys {
    Keys::parse(text, "keys.toml").unwrap().keys
}

async fn keys_harness(text: &str) -> Harness {
    let keys = keys(text);
    Harness::start_with(|c| c.keys = Some(keys)).await
}

/// A real SDK client signing with `credentials`; `app` is what the client claims to be.
fn signing_client(h: &Harness, credentials: Credentials, app: Option<&str>) -> Client {
    let mut config = base_config(h).credentials_provider(credentials);
    if let Some(app) = app {
        config = config.app_name(AppName::new(app.to_owned()).unwrap());
    }
    Client::from_conf(config.build())
}

/// A client authenticating as `AWS_BEARER_TOKEN_BEDROCK` does: `Authorization: Bearer ...`.
fn bearer_client(h: &Harness, token: &str) -> Client {
    let config = base_config(h)
        .bearer_token(Token::new(token, None))
        .auth_scheme_preference([HTTP_BEARER_AUTH_SCHEME_ID]);
    Client::from_conf(config.build())
}

fn base_config(h: &Harness) -> aws_sdk_bedrockruntime::config::Builder {
    aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(h.proxy.url())
        .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
}

fn key(id: &str, secret: &str, token: Option<&str>) -> Credentials {
    Credentials::new(id, secret, token.map(str::to_owned), None, "test")
}

async fn converse(client: &Client, prompt: &str) -> Result<u64, (String, String)> {
    client
        .converse()
        .model_id(NOVA_MICRO)
        .messages(user_message(prompt))
        .send()
        .await
        .map(|out| out.usage().unwrap().output_tokens() as u64)
        .map_err(|e| {
            let e = e.into_service_error();
            (
                e.code().unwrap_or("").to_owned(),
                e.message().unwrap_or("").to_owned(),
            )
        })
}

/// A hand-signed Converse request, for what the SDK will not do (tamper, back-date).
fn hand_signed(
    h: &Harness,
    credentials: &Credentials,
    signed_body: &[u8],
    time: SystemTime,
) -> (String, Vec<(String, String)>) {
    let url = format!("{}/model/amazon.nova-micro-v1%3A0/converse", h.proxy.url());
    let (mut parts, ()) = http::Request::builder()
        .method("POST")
        .uri(&url)
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts();
    sigv4::sign(&mut parts, signed_body, credentials, "us-east-1", time).unwrap();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    (url, headers)
}

async fn send_raw(
    url: &str,
    headers: &[(String, String)],
    body: &'static str,
) -> (u16, String, String) {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, head, body) = http_request("POST", url, &headers, Bytes::from(body)).await;
    let error_type = head
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, error_type, message)
}

const BODY: &str =
    r#"{"messages":[{"role":"user","content":[{"text":"[[sim input=10 output=5]] hi"}]}]}"#;

#[tokio::test]
async fn apps_are_attributed_by_their_key_not_by_what_they_claim() {
    let h = keys_harness(KEYS).await;
    // checkout claims to be "search": the key decides.
    let checkout = signing_client(
        &h,
        key("AKIDCHECKOUT01", "checkout-virtual-secret", None),
        Some("search"),
    );
    let search = signing_client(
        &h,
        key(
            "AKIDSEARCH01",
            "search-virtual-secret",
            Some("search-virtual-session"),
        ),
        None,
    );
    assert_eq!(
        converse(&checkout, "[[sim input=100 output=10]]").await,
        Ok(10)
    );
    assert_eq!(
        converse(&checkout, "[[sim input=100 output=20]]").await,
        Ok(20)
    );
    assert_eq!(
        converse(&search, "[[sim input=300 output=40]]").await,
        Ok(40)
    );

    let m = h.metrics().await;
    assert_eq!(m.tokens("checkout", NOVA_MICRO, "input"), 200);
    assert_eq!(m.tokens("checkout", NOVA_MICRO, "output"), 30);
    assert_eq!(m.tokens("search", NOVA_MICRO, "input"), 300);
    assert_eq!(m.tokens("search", NOVA_MICRO, "output"), 40);
    assert_eq!(m.requests(&[("app", "checkout"), ("status", "200")]), 2);
    assert_eq!(m.requests(&[("app", "search"), ("status", "200")]), 1);
    assert_eq!(m.value("bedrock_auth_failures_total", &[]), 0.0);
    assert_eq!(m.value("bedrock_keys_loaded", &[]), 3.0);

    // Upstream saw three requests, each re-signed with the proxy's own credentials.
    let sim = h.simulator.stats();
    assert_eq!(sim.requests, 3);
    assert_eq!((sim.signatures_valid, sim.signatures_invalid), (3, 0));
    let seen = sim.last_request.unwrap();
    let auth = seen
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(auth.contains("Credential=AKIDPROXYTEST/"), "{auth}");
    assert!(
        !seen
            .headers
            .iter()
            .any(|(_, v)| v.contains("search-virtual-session")),
        "the virtual session token must not travel upstream"
    );
}

#[tokio::test]
async fn every_refusal_is_an_aws_shaped_403_and_never_reaches_bedrock() {
    let h = keys_harness(KEYS).await;
    let now = SystemTime::now();
    let checkout = key("AKIDCHECKOUT01", "checkout-virtual-secret", None);

    // Wrong secret, through the SDK.
    let wrong = signing_client(&h, key("AKIDCHECKOUT01", "guessed-secret", None), None);
    let (code, message) = converse(&wrong, "hi").await.unwrap_err();
    assert_eq!(code, "InvalidSignatureException");
    assert!(
        message.starts_with("The request signature we calculated does not match"),
        "{message}"
    );

    // Unknown key, through the SDK.
    let stranger = signing_client(&h, key("AKIDSTRANGER", "whatever", None), None);
    let (code, message) = converse(&stranger, "hi").await.unwrap_err();
    assert_eq!(code, "UnrecognizedClientException");
    assert_eq!(
        message,
        "The security token included in the request is invalid."
    );

    // Wrong session token, through the SDK.
    let token = signing_client(
        &h,
        key("AKIDSEARCH01", "search-virtual-secret", Some("stolen")),
        None,
    );
    let (code, _) = converse(&token, "hi").await.unwrap_err();
    assert_eq!(code, "UnrecognizedClientException");

    // Unknown bearer token, through the SDK.
    let (code, _) = converse(&bearer_client(&h, "not-a-key-of-this-proxy"), "hi")
        .await
        .unwrap_err();
    assert_eq!(code, "UnrecognizedClientException");

    // A body other than the one signed.
    let (url, headers) = hand_signed(&h, &checkout, BODY.as_bytes(), now);
    let tampered =
        r#"{"messages":[{"role":"user","content":[{"text":"[[sim input=99999 output=5]] hi"}]}]}"#;
    let (status, error_type, _) = send_raw(&url, &headers, tampered).await;
    assert_eq!(
        (status, error_type.as_str()),
        (403, "InvalidSignatureException")
    );

    // Signed 20 minutes ago.
    let (url, headers) = hand_signed(
        &h,
        &checkout,
        BODY.as_bytes(),
        now - Duration::from_secs(20 * 60),
    );
    let (status, error_type, message) = send_raw(&url, &headers, BODY).await;
    assert_eq!(
        (status, error_type.as_str()),
        (403, "InvalidSignatureException")
    );
    assert!(message.starts_with("Signature expired: "), "{message}");

    // No Authorization header at all.
    let unsigned: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(k, _)| k != "authorization")
        .collect();
    let (status, error_type, message) = send_raw(&url, &unsigned, BODY).await;
    assert_eq!(
        (status, error_type.as_str(), message.as_str()),
        (
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token"
        )
    );

    // The same hand-signed request, untampered and current, is accepted: the refusals above
    // are about what was wrong with them, not about hand signing.
    let (url, headers) = hand_signed(&h, &checkout, BODY.as_bytes(), now);
    assert_eq!(send_raw(&url, &headers, BODY).await.0, 200);

    let m = h.metrics().await;
    for (reason, n) in [
        ("bad_signature", 2.0),
        ("unknown_key", 1.0),
        ("bad_session_token", 1.0),
        ("unknown_bearer_token", 1.0),
        ("expired", 1.0),
        ("missing", 1.0),
        ("malformed", 0.0),
    ] {
        assert_eq!(
            m.value("bedrock_auth_failures_total", &[("reason", reason)]),
            n,
            "{reason}"
        );
    }
    assert_eq!(
        m.requests(&[("app", "unauthenticated"), ("status", "403")]),
        7
    );
    assert_eq!(m.requests(&[("app", "checkout"), ("status", "200")]), 1);
    assert_eq!(m.tokens("checkout", NOVA_MICRO, "input"), 10);
    assert_eq!(m.value("bedrock_in_flight_requests", &[]), 0.0);
    // Only the one accepted call reached the simulator.
    assert_eq!(h.simulator.stats().requests, 1);
}

#[tokio::test]
async fn bedrock_api_keys_are_accepted_as_bearer_tokens() {
    let h = keys_harness(KEYS).await;
    assert_eq!(
        converse(&bearer_client(&h, BEARER), "[[sim input=7 output=3]]").await,
        Ok(3)
    );
    let m = h.metrics().await;
    assert_eq!(m.tokens("batch", NOVA_MICRO, "input"), 7);
    assert_eq!(m.tokens("batch", NOVA_MICRO, "output"), 3);
    let sim = h.simulator.stats();
    assert_eq!((sim.requests, sim.signatures_valid), (1, 1));
    // Re-signed with SigV4: the bearer token itself never travels upstream.
    let seen = sim.last_request.unwrap();
    assert!(!seen.headers.iter().any(|(_, v)| v.contains(BEARER)));
    // Sent to the Region the key names (bearer requests carry none).
    let auth = &seen
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1;
    assert!(auth.contains("/us-west-2/bedrock/aws4_request"), "{auth}");
}

#[tokio::test]
async fn keys_reload_on_change_and_a_broken_file_keeps_the_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    std::fs::write(&path, KEYS).unwrap();
    let keys = keys(KEYS);
    let keys_path = path.clone();
    let h = Harness::start_with(|c| {
        c.keys = Some(keys);
        c.keys_path = Some(keys_path);
        c.reload_interval = Duration::from_millis(20);
    })
    .await;
    let old = signing_client(
        &h,
        key("AKIDCHECKOUT01", "checkout-virtual-secret", None),
        None,
    );
    let new = signing_client(&h, key("AKIDCHECKOUT01", "rotated-secret", None), None);

    // A stream in flight across the reload finishes and is metered.
    let stream = old
        .converse_stream()
        .model_id(NOVA_MICRO)
        .messages(user_message(
            "[[sim input=50 output=8 chunks=4 gap_ms=150]]",
        ))
        .send()
        .await
        .unwrap();

    write_atomically(
        &path,
        &KEYS.replace("checkout-virtual-secret", "rotated-secret"),
    );
    wait_for(&h, "bedrock_keys_reloads_total", &[("result", "ok")], 1.0).await;

    let mut events = stream.stream;
    let mut output = 0;
    while let Some(event) = events.recv().await.unwrap() {
        if let aws_sdk_bedrockruntime::types::ConverseStreamOutput::Metadata(m) = event {
            output = m.usage().unwrap().output_tokens();
        }
    }
    assert_eq!(output, 8);

    assert_eq!(
        converse(&old, "hi").await.unwrap_err().0,
        "InvalidSignatureException"
    );
    assert_eq!(converse(&new, "[[sim output=2]]").await, Ok(2));

    // A broken file is refused whole and the rotated keys stay in force.
    write_atomically(&path, "[[key]]\naccess_key_id = \"AKIDX\"\napp = \"x\"\n");
    wait_for(
        &h,
        "bedrock_keys_reloads_total",
        &[("result", "error")],
        1.0,
    )
    .await;
    assert_eq!(converse(&new, "[[sim output=3]]").await, Ok(3));

    let m = h.metrics().await;
    assert_eq!(m.tokens("checkout", NOVA_MICRO, "output"), 8 + 2 + 3);
    assert_eq!(
        m.value("bedrock_keys_reloads_total", &[("result", "ok")]),
        1.0
    );
    assert_eq!(m.value("bedrock_keys_loaded", &[]), 3.0);
    assert_eq!(h.simulator.stats().requests, 3);
}
