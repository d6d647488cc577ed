//! Tests of SigV4 parsing, signing and verification.

use super::*;
use http::{Method, Request};

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-west-2/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn creds(secret: &str) -> Credentials {
    Credentials::new("AKIDEXAMPLE", secret, None, None, "test")
}

fn signed_parts(body: &[u8], time: SystemTime) -> Parts {
    let (mut parts, ()) = Request::builder()
        .method(Method::POST)
        .uri("http://127.0.0.1:9/model/amazon.nova-micro-v1%3A0/converse")
        .header("content-type", "application/json")
        .header("user-agent", "app/checkout")
        .body(())
        .unwrap()
        .into_parts();
    sign(&mut parts, body, &creds("s3cret"), "us-east-1", time).unwrap();
    parts
}

#[test]
fn parses_authorization() {
    let a = parse_authorization(AUTH).unwrap();
    assert_eq!(a.access_key_id, "AKIDEXAMPLE");
    assert_eq!(a.region, "us-west-2");
    assert_eq!(a.service, "bedrock");
    assert_eq!(a.date, "20260101");
    assert_eq!(a.signed_headers, vec!["content-type", "host", "x-amz-date"]);
}

#[test]
fn rejects_malformed_authorization() {
    for bad in [
        "",
        "Bearer abc",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256x Credential=a/20260101/r/s/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=a/2026/r/s/aws4_request, SignedHeaders=host, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "AWS4-HMAC-SHA256 Credential=a/20260101/r/s/aws4_request, SignedHeaders=x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "AWS4-HMAC-SHA256 Credential=a/20260101/r/s/aws4_request, SignedHeaders=host, Signature=zz",
    ] {
        assert!(parse_authorization(bad).is_err(), "{bad}");
    }
}

#[test]
fn sign_then_verify_round_trip() {
    let now = SystemTime::now();
    let body = br#"{"messages":[]}"#;
    let mut parts = signed_parts(body, now);
    assert_eq!(region_of(&parts.headers), Some("us-east-1"));
    assert_eq!(parts.headers["host"], "127.0.0.1:9");
    let skew = Duration::from_secs(900);
    assert_eq!(verify(&parts, body, &creds("s3cret"), now, skew), Ok(()));
    assert_eq!(
        verify(&parts, body, &creds("wrong"), now, skew),
        Err(SigV4Error::Mismatch)
    );
    assert_eq!(
        verify(&parts, b"{}", &creds("s3cret"), now, skew),
        Err(SigV4Error::Mismatch)
    );
    assert_eq!(
        verify(
            &parts,
            body,
            &creds("s3cret"),
            now + Duration::from_secs(901),
            skew
        ),
        Err(SigV4Error::Expired {
            request_time: format_amz_date(now),
            server_time: format_amz_date(now + Duration::from_secs(901)),
            skew_minutes: 15,
        })
    );
    // Unsigned headers may change; signed ones may not.
    parts
        .headers
        .insert("user-agent", HeaderValue::from_static("other"));
    assert_eq!(verify(&parts, body, &creds("s3cret"), now, skew), Ok(()));
    parts
        .headers
        .insert("content-type", HeaderValue::from_static("text/plain"));
    assert_eq!(
        verify(&parts, body, &creds("s3cret"), now, skew),
        Err(SigV4Error::Mismatch)
    );
}

#[test]
fn session_token_must_match() {
    let now = SystemTime::now();
    let with_token = Credentials::new("AKIDEXAMPLE", "s3cret", Some("tok".into()), None, "t");
    let (mut parts, ()) = Request::builder()
        .method(Method::POST)
        .uri("http://127.0.0.1:9/model/m/invoke")
        .body(())
        .unwrap()
        .into_parts();
    sign(&mut parts, b"", &with_token, "us-east-1", now).unwrap();
    assert_eq!(parts.headers[X_AMZ_SECURITY_TOKEN], "tok");
    let skew = Duration::from_secs(60);
    assert_eq!(verify(&parts, b"", &with_token, now, skew), Ok(()));
    let other = Credentials::new("AKIDEXAMPLE", "s3cret", Some("tik".into()), None, "t");
    assert_eq!(
        verify(&parts, b"", &other, now, skew),
        Err(SigV4Error::BadSessionToken)
    );
    assert_eq!(
        verify(&parts, b"", &creds("s3cret"), now, skew),
        Err(SigV4Error::BadSessionToken)
    );
}

#[test]
fn amz_date() {
    let t = parse_amz_date("20260101T000000Z").unwrap();
    assert_eq!(
        t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
        1_767_225_600
    );
    let t = parse_amz_date("20000229T123456Z").unwrap();
    assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 951_827_696);
    for t in [0, 951_827_696, 1_767_225_600, 4_102_444_799] {
        let time = UNIX_EPOCH + Duration::from_secs(t);
        assert_eq!(parse_amz_date(&format_amz_date(time)), Some(time), "{t}");
    }
    assert_eq!(
        format_amz_date(UNIX_EPOCH + Duration::from_secs(951_827_696)),
        "20000229T123456Z"
    );
    // Formatted once a second per thread: alternating seconds never serve a stale date.
    for (t, expected) in [
        (951_827_696, "20000229T123456Z"),
        (951_827_697, "20000229T123457Z"),
        (951_827_696, "20000229T123456Z"),
        (1_767_225_599, "20251231T235959Z"),
        (0, "19700101T000000Z"),
        (1_767_225_600, "20260101T000000Z"),
    ] {
        let time = UNIX_EPOCH + Duration::from_millis(t * 1000 + 999);
        assert_eq!(super::amz_date(time).as_str(), expected);
        assert_eq!(super::amz_date(time).day(), expected.as_bytes()[..8]);
    }
    for bad in [
        "",
        "20260101T000000",
        "2026010xT000000Z",
        "20261301T000000Z",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
}
