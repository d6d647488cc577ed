//! The fast signer against `aws-sigv4`'s request signer: the same signature for the same
//! request, on fixed cases and on any request proptest makes.

use super::*;
use http::{Method, Request};

fn creds(secret: &str) -> Credentials {
    Credentials::new("AKIDEXAMPLE", secret, None, None, "test")
}

/// Signs the same request with the fast path and with `aws-sigv4`'s request signer, at a
/// given time.
fn sign_both_at(
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &Credentials,
    time: SystemTime,
) -> (Parts, Parts) {
    let build = || {
        let mut b = Request::builder().method(Method::POST).uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    };
    let (mut fast, mut slow) = (build(), build());
    prepare_headers(&mut fast).unwrap();
    assert!(fast::applies(&fast.uri), "fast path applies to {uri}");
    fast::sign(
        &mut fast,
        &PayloadHash::of(body),
        credentials,
        "us-east-1",
        time,
    )
    .unwrap();
    prepare_headers(&mut slow).unwrap();
    sign_with_aws_sigv4(
        &mut slow,
        &PayloadHash::of(body),
        credentials,
        "us-east-1",
        time,
    )
    .unwrap();
    (fast, slow)
}

fn sign_both(
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &Credentials,
) -> (Parts, Parts) {
    let time = UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 3_723);
    sign_both_at(uri, headers, body, credentials, time)
}

fn assert_same_signature(fast: &Parts, slow: &Parts) {
    for name in [
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "host",
    ] {
        assert_eq!(fast.headers.get(name), slow.headers.get(name), "{name}");
        assert_eq!(
            fast.headers.get(name).map(HeaderValue::is_sensitive),
            slow.headers.get(name).map(HeaderValue::is_sensitive),
            "{name}"
        );
    }
    assert_eq!(fast.headers.len(), slow.headers.len());
}

#[test]
fn fast_signer_matches_aws_sigv4() {
    let body = br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
    let plain = creds("s3cret");
    let token = Credentials::new("AKIDEXAMPLE", "s3cret", Some("tok/en+=".into()), None, "t");
    let long_secret = creds(&"k".repeat(100));
    for c in [&plain, &token, &long_secret] {
        let (fast, slow) = sign_both(
            "http://127.0.0.1:9/model/amazon.nova-micro-v1%3A0/converse",
            &[
                ("content-type", "  application/json   charset  "),
                ("user-agent", "aws-sdk-rust/1.0 os/linux"),
                ("x-amzn-trace-id", "Root=1-abc"),
                ("x-amz-user-agent", "aws-sdk-rust/1.0"),
                ("x-amzn-bedrock-service-tier", "flex"),
                ("x-amz-meta", "b"),
                ("x-amz-meta", "a"),
                ("accept", "*/*"),
            ],
            body,
            c,
        );
        assert_same_signature(&fast, &slow);
    }
    let (fast, slow) = sign_both(
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x/converse-stream",
        &[],
        b"",
        &plain,
    );
    assert_same_signature(&fast, &slow);
    // Shapes left to aws-sigv4's request signer.
    for uri in [
        "http://h/model/a/converse?x=1",
        "http://h/model//converse",
        "http://h/model/./converse",
        "http://h/model/../converse",
        "http://h/model/a/",
    ] {
        let uri: http::Uri = uri.parse().unwrap();
        assert!(!fast::applies(&uri), "{uri}");
    }
    assert!(fast::applies(&"http://h/".parse().unwrap()));
}

#[test]
fn cached_signing_key_follows_day_region_and_secret() {
    // One thread signs across midnight, in two Regions and with rotated credentials: the
    // cached key must never outlive what it was derived from.
    let uri = "http://127.0.0.1:9/model/m/converse";
    let day = UNIX_EPOCH + Duration::from_secs(1_767_225_600 - 1);
    for (secret, time) in [
        ("s3cret", day),
        ("s3cret", day + Duration::from_secs(2)),
        ("rotated", day + Duration::from_secs(3)),
        ("s3cret", day + Duration::from_secs(4)),
    ] {
        let c = creds(secret);
        let (fast, slow) = sign_both_at(uri, &[], b"{}", &c, time);
        assert_same_signature(&fast, &slow);
        let build = || Request::post(uri).body(()).unwrap().into_parts().0;
        let (mut fast, mut slow) = (build(), build());
        prepare_headers(&mut fast).unwrap();
        fast::sign(&mut fast, &PayloadHash::of(b"{}"), &c, "eu-west-1", time).unwrap();
        prepare_headers(&mut slow).unwrap();
        sign_with_aws_sigv4(&mut slow, &PayloadHash::of(b"{}"), &c, "eu-west-1", time).unwrap();
        assert_same_signature(&fast, &slow);
    }
}

proptest::proptest! {
    #[test]
    fn fast_signer_matches_aws_sigv4_on_any_request(
        segments in proptest::collection::vec("[A-Za-z0-9._~!$'()*+,;=:@-]{1,12}|%3A|%2F", 1..5),
        values in proptest::collection::vec("[ -~]{0,24}", 0..4),
        repeated in proptest::collection::vec("[a-z0-9 ]{0,8}", 0..3),
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        with_token in proptest::bool::ANY,
    ) {
        let segments: Vec<String> = segments
            .into_iter()
            .map(|s| if s == "." || s == ".." { "x".into() } else { s })
            .collect();
        let uri = format!("http://127.0.0.1:9/{}", segments.join("/"));
        proptest::prop_assume!(uri.parse::<http::Uri>().is_ok());
        let names = ["content-type", "x-amz-target", "x-amzn-bedrock-trace", "accept"];
        let mut headers: Vec<(&str, &str)> = names
            .iter()
            .zip(&values)
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        headers.extend(repeated.iter().map(|v| ("x-amz-multi", v.as_str())));
        let credentials = if with_token {
            Credentials::new("AKID", "secret", Some("token".into()), None, "t")
        } else {
            Credentials::new("AKID", "secret", None, None, "t")
        };
        let (fast, slow) = sign_both(&uri, &headers, &body, &credentials);
        assert_same_signature(&fast, &slow);
    }
}
