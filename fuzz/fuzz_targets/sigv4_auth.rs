//! Keys mode's authentication: the `Authorization` parser, the header precheck and the signature
//! check over the body, with arbitrary headers and bodies. No panic, and nothing is accepted
//! without the right secret: a request passes only if it was signed with the key's secret (and
//! session token), over this body, within the allowed clock skew — or carries a bearer token of
//! the keys file.
//!
//! Input: byte 0 (bit 0: sign the request here, bit 1: then overwrite one byte of its
//! `Authorization`, bit 2: then change the body, bit 3: use the key with a session token, bits
//! 4-7: sign that many 2-minute steps before "now"), then lines up to an empty line, then the
//! body. Signing: secret, session token, `POS BYTE` of the overwrite, path, extra headers
//! (`name: value`). Not signing: `Authorization`, `x-amz-date`, path, extra headers.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use bedrock_meter::proxy::identify::{KeyStore, Keys, Verdict, verify_body};
use bedrock_meter::aws::sigv4;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request, header};
use libfuzzer_sys::fuzz_target;

const KEYS: &str = r#"
[[key]]
access_key_id = "AKIDCHECKOUT01"
secret_access_key = "checkout-secret"
app = "checkout"

[[key]]
access_key_id = "AKIDSESSION01"
secret_access_key = "session-secret"
session_token = "session-token"
app = "search"

[[key]]
bearer_token = "fuzz-bearer-token-0123456789"
app = "batch"
"#;
const BEARER: &str = "fuzz-bearer-token-0123456789";
/// (access key id, secret, session token) of the two SigV4 keys.
const CHECKOUT: (&str, &str, Option<&str>) = ("AKIDCHECKOUT01", "checkout-secret", None);
const SESSION: (&str, &str, Option<&str>) =
    ("AKIDSESSION01", "session-secret", Some("session-token"));
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

fn store() -> &'static KeyStore {
    static STORE: OnceLock<KeyStore> = OnceLock::new();
    STORE.get_or_init(|| KeyStore::new(Keys::parse(KEYS, "keys.toml").unwrap().keys))
}

/// Runs the whole keys-mode check as the proxy does: precheck on the headers, then the
/// signature over the body.
fn accepted(p: &Parts, body: &[u8], now: SystemTime) -> Option<Verdict> {
    match store().precheck(&p.headers, now) {
        Ok(Verdict::Signed { app, credentials }) => verify_body(p, body, &credentials, now)
            .is_ok()
            .then_some(Verdict::Signed { app, credentials }),
        Ok(bearer @ Verdict::Bearer { .. }) => Some(bearer),
        // Only the connection's client certificate can prove an app that way, never headers.
        Ok(Verdict::Certificate { app, .. }) => {
            panic!("headers alone passed as a client certificate, as {app}: {p:?}")
        }
        Err(_) => None,
    }
}

fn request(path: &str) -> Parts {
    let uri = format!("http://127.0.0.1:8080{path}");
    let builder = Request::builder().method("POST");
    let builder = match uri.parse::<http::Uri>() {
        Ok(u) if !path.is_empty() => builder.uri(u),
        _ => builder.uri("http://127.0.0.1:8080/model/amazon.nova-micro-v1%3A0/converse"),
    };
    let mut p = builder.body(()).unwrap().into_parts().0;
    p.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    p
}

/// Adds `name: value` lines; returns how many were valid headers.
fn add_headers<'a>(p: &mut Parts, lines: impl Iterator<Item = &'a str>) -> usize {
    let mut added = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim_start()),
        ) {
            p.headers.append(n, v);
            added += 1;
        }
    }
    added
}

/// Whether signing with `secret` is signing with `real`. SigV4's first HMAC key is
/// `"AWS4" + secret`, and HMAC pads a key no longer than its 64-byte block with zero bytes, so
/// trailing NULs on such a key change nothing: `"s3cret\0"` signs exactly as `"s3cret"` does.
/// Knowing either means knowing the secret, so this is not a way in.
fn same_hmac_key(secret: &str, real: &str) -> bool {
    const BLOCK: usize = 64;
    let key = |s: &str| format!("AWS4{s}");
    let (k, r) = (key(secret), key(real));
    if k.len() <= BLOCK && r.len() <= BLOCK {
        k.trim_end_matches('\0') == r.trim_end_matches('\0')
    } else {
        k == r
    }
}

fn check_parsers(p: &Parts, now: SystemTime) {
    let Some(value) = p
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    if let Ok(a) = sigv4::parse_authorization(value) {
        assert_eq!(a.signature.len(), 64);
        assert!(a.signature.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(a.signed_headers.contains(&"host"));
        assert!(!a.access_key_id.is_empty() && !a.region.is_empty() && !a.service.is_empty());
        assert!(a.date.len() == 8 && a.date.bytes().all(|b| b.is_ascii_digit()));
    }
    if let Ok((a, time)) = sigv4::precheck(&p.headers, now, MAX_SKEW) {
        assert_eq!(sigv4::parse_authorization(value).ok(), Some(a));
        let skew = now.duration_since(time).unwrap_or_else(|e| e.duration());
        assert!(skew <= MAX_SKEW);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (rest, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n');
    let mut line = || lines.next().unwrap_or("");
    // A fixed "now" keeps every run reproducible.
    let now = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z

    if flags & 1 == 0 {
        // Whatever a client might send, unsigned by us.
        let (auth, date, path) = (line(), line(), line());
        let mut p = request(path);
        add_headers(&mut p, lines);
        if let Ok(v) = HeaderValue::from_str(auth) {
            p.headers.insert(header::AUTHORIZATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(date) {
            p.headers.insert("x-amz-date", v);
        }
        check_parsers(&p, now);
        match accepted(&p, body, now) {
            None => {}
            Some(Verdict::Bearer { app, .. }) => {
                let value = p.headers[header::AUTHORIZATION].to_str().unwrap();
                let (_, token) = value.split_once(' ').unwrap();
                assert_eq!(token.trim(), BEARER);
                assert_eq!(&*app, "batch");
            }
            Some(Verdict::Signed { app, .. }) => {
                panic!("a signature nobody computed was accepted, as {app}: {p:?}")
            }
            Some(Verdict::Certificate { .. }) => unreachable!("accepted() panics first"),
        }
        return;
    }

    // Signed here, with a secret and session token that may or may not be the key's.
    let (secret, token, overwrite, path) = (line(), line(), line(), line());
    let key = if flags & 8 == 0 { CHECKOUT } else { SESSION };
    let token = (!token.is_empty()).then_some(token);
    let mut p = request(path);
    let extra = add_headers(&mut p, lines);
    let signed_at = now - Duration::from_secs(u64::from(flags >> 4) * 120);
    let creds = Credentials::new(key.0, secret, token.map(str::to_owned), None, "fuzz");
    if sigv4::sign(&mut p, body, &creds, "us-east-1", signed_at).is_err() {
        return;
    }
    let original = p.headers[header::AUTHORIZATION].clone();
    let mut mutated = false;
    if flags & 2 != 0 {
        let mut nums = overwrite
            .split(' ')
            .map(|n| n.parse::<usize>().unwrap_or(0));
        let (pos, byte) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
        let mut bytes = original.as_bytes().to_vec();
        let i = pos % bytes.len();
        bytes[i] = byte as u8;
        if let Ok(v) = HeaderValue::from_bytes(&bytes) {
            mutated = v != original;
            p.headers.insert(header::AUTHORIZATION, v);
        }
    }
    let mut body = body.to_vec();
    let tampered = flags & 4 != 0;
    if tampered {
        match body.first_mut() {
            Some(b) => *b ^= 0x5a,
            None => body.push(b'x'),
        }
    }
    check_parsers(&p, now);

    let right = same_hmac_key(secret, key.1) && token == key.2;
    let in_window = now.duration_since(signed_at).unwrap_or_default() <= MAX_SKEW;
    match accepted(&p, &body, now) {
        Some(Verdict::Bearer { .. }) => panic!("a SigV4 request passed as a bearer token"),
        Some(Verdict::Certificate { .. }) => unreachable!("accepted() panics first"),
        Some(Verdict::Signed { app, .. }) => {
            assert!(
                right,
                "accepted as {app} with secret {secret:?} token {token:?}"
            );
            assert!(!tampered, "accepted a body that was not signed");
            assert!(in_window, "accepted a signature from {signed_at:?}");
            if mutated {
                // Only a change that kept the header's meaning (whitespace) may pass.
                let now_value = p.headers[header::AUTHORIZATION].to_str().unwrap();
                assert_eq!(
                    sigv4::parse_authorization(now_value).ok(),
                    sigv4::parse_authorization(original.to_str().unwrap()).ok()
                );
            }
        }
        None => {
            // A plain request signed with the right secret in time is never refused.
            assert!(
                !(right && in_window && !tampered && !mutated && extra == 0),
                "refused a good signature: {p:?}"
            );
        }
    }
});
