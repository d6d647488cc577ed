//! Property tests of the SigV4 verifier and the keys-mode precheck: whatever the Authorization
//! header and body, no panic, and no acceptance without the right secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use bedrock_meter::aws::sigv4;
use bedrock_meter::proxy::identify::{KeyStore, Keys, Verdict, verify_body};
use http::request::Parts;
use http::{HeaderValue, Request, header};
use proptest::prelude::*;

const KEYS: &str = r#"
[[key]]
access_key_id = "AKIDCHECKOUT01"
secret_access_key = "checkout-secret"
app = "checkout"
"#;

fn parts(uri: &str) -> Parts {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn signed(secret: &str, body: &[u8], time: SystemTime) -> Parts {
    let mut p = parts("http://127.0.0.1:8080/model/amazon.nova-micro-v1%3A0/converse");
    let creds = Credentials::new("AKIDCHECKOUT01", secret, None, None, "t");
    sigv4::sign(&mut p, body, &creds, "us-east-1", time).unwrap();
    p
}

fn right() -> Credentials {
    Credentials::new("AKIDCHECKOUT01", "checkout-secret", None, None, "t")
}

/// Runs the whole keys-mode check; true when the request would be forwarded.
fn accepted(store: &KeyStore, p: &Parts, body: &[u8], now: SystemTime) -> bool {
    match store.precheck(&p.headers, now) {
        Ok(Verdict::Signed { credentials, .. }) => verify_body(p, body, &credentials, now).is_ok(),
        Ok(Verdict::Bearer { .. } | Verdict::Certificate { .. }) => true,
        Err(_) => false,
    }
}

fn auth_like() -> impl Strategy<Value = String> {
    prop_oneof![
        // Anything at all.
        any::<String>(),
        // Shaped like SigV4, with every part drawn from junk that parses.
        (
            "[A-Z0-9]{0,20}",
            "[0-9]{0,9}",
            "[a-z0-9-]{0,12}",
            "[a-z0-9]{0,8}",
            "[a-z0-9;-]{0,40}",
            "[0-9a-f]{0,70}",
        )
            .prop_map(|(id, date, region, service, signed, sig)| format!(
                "AWS4-HMAC-SHA256 Credential={id}/{date}/{region}/{service}/aws4_request, SignedHeaders={signed}, Signature={sig}"
            )),
        "Bearer [ -~]{0,64}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_authorization_is_never_accepted(
        auth in auth_like(),
        date in prop_oneof![Just(None), "[0-9TZ]{0,18}".prop_map(Some)],
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let store = KeyStore::new(Keys::parse(KEYS, "k").unwrap().keys);
        let now = SystemTime::now();
        let mut p = parts("http://127.0.0.1:8080/model/m/converse");
        if let Ok(v) = HeaderValue::from_str(&auth) {
            p.headers.insert(header::AUTHORIZATION, v);
        }
        if let Some(d) = date.and_then(|d| HeaderValue::from_str(&d).ok()) {
            p.headers.insert("x-amz-date", d);
        }
        prop_assert!(!accepted(&store, &p, &body, now));
        prop_assert!(sigv4::verify(&p, &body, &right(), now, Duration::from_secs(900)).is_err());
    }

    #[test]
    fn only_the_right_secret_and_the_signed_body_pass(
        secret in "[ -~]{1,48}",
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        flip in any::<(usize, u8)>(),
    ) {
        let store = KeyStore::new(Keys::parse(KEYS, "k").unwrap().keys);
        let now = SystemTime::now();
        let p = signed(&secret, &body, now);
        prop_assert_eq!(accepted(&store, &p, &body, now), secret == "checkout-secret");

        let good = signed("checkout-secret", &body, now);
        prop_assert!(accepted(&store, &good, &body, now));
        let mut tampered = body.clone();
        if tampered.is_empty() {
            tampered.push(flip.1);
        } else {
            let i = flip.0 % tampered.len();
            tampered[i] ^= flip.1.max(1);
        }
        prop_assert!(!accepted(&store, &good, &tampered, now));
    }

    #[test]
    fn a_mutated_signature_header_fails_with_any_secret_but_the_right_one(
        pos in any::<usize>(),
        byte in 0x20u8..0x7f,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let now = SystemTime::now();
        let good = signed("checkout-secret", &body, now);
        let auth = good.headers[header::AUTHORIZATION].to_str().unwrap().to_owned();
        let mut bytes = auth.into_bytes();
        let i = pos % bytes.len();
        bytes[i] = byte;
        let mutated = String::from_utf8(bytes).unwrap();
        let mut p = good.clone();
        p.headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&mutated).unwrap());
        let wrong = Credentials::new("AKIDCHECKOUT01", "checkout-secreT", None, None, "t");
        prop_assert!(sigv4::verify(&p, &body, &wrong, now, Duration::from_secs(900)).is_err());
        // With the keys file's secret a mutation passes only if it left the header's meaning
        // intact (whitespace around a comma): no other key id, scope or signature gets through.
        let store = KeyStore::new(Keys::parse(KEYS, "k").unwrap().keys);
        if accepted(&store, &p, &body, now) {
            let original = sigv4::parse_authorization(good.headers[header::AUTHORIZATION].to_str().unwrap()).unwrap();
            let now_parsed = sigv4::parse_authorization(&mutated).unwrap();
            prop_assert_eq!(original, now_parsed);
        }
    }
}
