//! Tests of `identify`.

use super::*;
use http::{HeaderValue, Method, Request};

fn store() -> KeyStore {
    let text = r#"
[[key]]
access_key_id = "AKIDCHECKOUT01"
secret_access_key = "checkout-secret"
app = "checkout"

[[key]]
bearer_token = "bedrock-api-key-0123456789"
app = "batch"
"#;
    KeyStore::new(Keys::parse(text, "k").unwrap().keys)
}

fn signed(akid: &str, secret: &str, time: SystemTime, body: &[u8]) -> Parts {
    let (mut parts, ()) = Request::builder()
        .method(Method::POST)
        .uri("http://127.0.0.1:8080/model/amazon.nova-micro-v1%3A0/converse")
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts();
    let creds = Credentials::new(akid, secret, None, None, "t");
    sigv4::sign(&mut parts, body, &creds, "us-east-1", time).unwrap();
    parts
}

fn check(
    store: &KeyStore,
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
) -> Result<Arc<str>, AuthFailure> {
    match store.precheck(&parts.headers, now)? {
        Verdict::Bearer { app, .. } | Verdict::Certificate { app, .. } => Ok(app),
        Verdict::Signed { app, credentials } => {
            verify_body(parts, body, &credentials, now)?;
            Ok(app)
        }
    }
}

#[test]
fn sigv4_and_bearer() {
    let store = store();
    let now = SystemTime::now();
    let body = br#"{"messages":[]}"#;
    let good = signed("AKIDCHECKOUT01", "checkout-secret", now, body);
    assert_eq!(check(&store, &good, body, now).as_deref(), Ok("checkout"));
    assert_eq!(
        check(&store, &good, b"{}", now),
        Err(AuthFailure::BadSignature)
    );
    let wrong = signed("AKIDCHECKOUT01", "guess", now, body);
    assert_eq!(
        check(&store, &wrong, body, now),
        Err(AuthFailure::BadSignature)
    );
    let unknown = signed("AKIDNOBODY", "checkout-secret", now, body);
    assert_eq!(
        check(&store, &unknown, body, now),
        Err(AuthFailure::UnknownKey)
    );
    let stale = signed(
        "AKIDCHECKOUT01",
        "checkout-secret",
        now - Duration::from_secs(16 * 60),
        body,
    );
    let failure = check(&store, &stale, body, now).unwrap_err();
    assert_eq!(failure.reason(), "expired");
    assert!(
        failure.to_string().starts_with("Signature expired: "),
        "{failure}"
    );
    assert_eq!(failure.status_and_type().1, "InvalidSignatureException");

    let mut bearer = signed("AKIDCHECKOUT01", "checkout-secret", now, body);
    bearer.headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer bedrock-api-key-0123456789"),
    );
    assert_eq!(check(&store, &bearer, body, now).as_deref(), Ok("batch"));
    bearer.headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("bearer bedrock-api-key-0123456780"),
    );
    assert_eq!(
        check(&store, &bearer, body, now),
        Err(AuthFailure::UnknownBearerToken)
    );
    bearer.headers.remove(header::AUTHORIZATION);
    assert_eq!(check(&store, &bearer, body, now), Err(AuthFailure::Missing));
}

#[test]
fn other_services_are_refused() {
    let store = store();
    let now = SystemTime::now();
    let mut parts = signed("AKIDCHECKOUT01", "checkout-secret", now, b"");
    let auth = parts.headers[header::AUTHORIZATION]
        .to_str()
        .unwrap()
        .replace("/bedrock/", "/s3/");
    parts
        .headers
        .insert(header::AUTHORIZATION, auth.parse().unwrap());
    assert_eq!(
        check(&store, &parts, b"", now),
        Err(AuthFailure::WrongService)
    );
}

#[test]
fn reload_swaps_keys() {
    let store = store();
    let now = SystemTime::now();
    let parts = signed("AKIDCHECKOUT01", "checkout-secret", now, b"");
    assert!(check(&store, &parts, b"", now).is_ok());
    let text = "[[key]]\naccess_key_id = \"AKIDCHECKOUT01\"\nsecret_access_key = \"rotated\"\napp = \"checkout\"\n";
    store.replace(Keys::parse(text, "k").unwrap().keys);
    assert_eq!(
        check(&store, &parts, b"", now),
        Err(AuthFailure::BadSignature)
    );
    assert_eq!(store.len(), 1);
}
