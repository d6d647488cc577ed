//! SigV4 for Bedrock Runtime (signing name `bedrock`): signing a forwarded request with the
//! proxy's credentials, and verifying a request the way AWS would.
//!
//! Both directions use the `aws-sigv4` signer with its default settings, which are the ones the
//! SDKs use for Bedrock: path percent-encoded twice in the canonical request, normalised, no
//! `x-amz-content-sha256` header, payload hash = SHA-256 of the body. Verification rebuilds the
//! request from exactly the `SignedHeaders` list, signs it at the request's own `x-amz-date` and
//! compares signatures in constant time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign as sigv4_sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderValue, header, request::Parts};
use subtle::ConstantTimeEq;

use crate::civil::{civil_from_days, days_from_civil};

pub const SERVICE: &str = "bedrock";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigV4Error {
    #[error("missing Authorization header")]
    Missing,
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    /// The request time is more than the allowed skew from now (AWS's wording, so operators
    /// recognise it).
    #[error("{}", expired_message(.request_time, .server_time, .skew_minutes))]
    Expired {
        request_time: String,
        server_time: String,
        skew_minutes: i64,
    },
    #[error("the security token included in the request is invalid")]
    BadSessionToken,
    #[error("the request signature does not match")]
    Mismatch,
    #[error("signing failed: {0}")]
    Signing(String),
}

impl SigV4Error {
    /// Low-cardinality name for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "missing",
            SigV4Error::Malformed(_) => "malformed",
            SigV4Error::Expired { .. } => "expired",
            SigV4Error::BadSessionToken => "bad_session_token",
            SigV4Error::Mismatch => "mismatch",
            SigV4Error::Signing(_) => "signing",
        }
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key_id: &'a str,
    /// `YYYYMMDD` from the credential scope.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

/// Parses a SigV4 `Authorization` header value.
pub fn parse_authorization(value: &str) -> Result<Authorization<'_>, SigV4Error> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .ok_or(SigV4Error::Malformed("algorithm is not AWS4-HMAC-SHA256"))?;
    if !rest.starts_with(' ') {
        return Err(SigV4Error::Malformed("algorithm is not AWS4-HMAC-SHA256"));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        } else if !part.is_empty() {
            return Err(SigV4Error::Malformed("unexpected component"));
        }
    }
    let credential = credential.ok_or(SigV4Error::Malformed("no Credential"))?;
    let signed = signed.ok_or(SigV4Error::Malformed("no SignedHeaders"))?;
    let signature = signature.ok_or(SigV4Error::Malformed("no Signature"))?;

    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope.as_slice() else {
        return Err(SigV4Error::Malformed("credential scope"));
    };
    if *terminator != "aws4_request"
        || access_key_id.is_empty()
        || region.is_empty()
        || service.is_empty()
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SigV4Error::Malformed("credential scope"));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigV4Error::Malformed("signature is not 64 hex digits"));
    }
    let signed_headers: Vec<&str> = signed.split(';').collect();
    // SigV4 lists header names in lower case; AWS refuses anything else, and so do we (a
    // `Content-Type` here would otherwise match the lower-cased header and pass).
    if signed_headers
        .iter()
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(SigV4Error::Malformed(
            "SignedHeaders must be lower-case names",
        ));
    }
    if !signed_headers.contains(&"host") {
        return Err(SigV4Error::Malformed("SignedHeaders must list host"));
    }
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// The region named by a SigV4 `Authorization` header's credential scope, if any.
pub fn region_of(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    parse_authorization(value).ok().map(|a| a.region)
}

/// Signs `parts` for `host` with `credentials`, replacing whatever auth the client sent.
///
/// Signed: `host`, `content-type` and every `x-amz*` header (AWS requires those signed); other
/// headers travel unsigned so nothing a hop may rewrite can invalidate the signature.
pub fn sign(
    parts: &mut Parts,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), SigV4Error> {
    let headers = &mut parts.headers;
    headers.remove(header::AUTHORIZATION);
    headers.remove(X_AMZ_DATE);
    headers.remove(X_AMZ_SECURITY_TOKEN);
    headers.remove(X_AMZ_CONTENT_SHA256);
    let host = parts
        .uri
        .authority()
        .ok_or_else(|| SigV4Error::Signing("upstream URI has no authority".into()))?
        .as_str()
        .to_owned();
    let host_value =
        HeaderValue::from_str(&host).map_err(|e| SigV4Error::Signing(e.to_string()))?;
    headers.insert(header::HOST, host_value);

    let signable: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n == "host" || n == "content-type" || n.starts_with("x-amz")
        })
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let uri = parts.uri.to_string();
    let instructions = {
        let identity: Identity = credentials.clone().into();
        let params = signing_params(&identity, region, time)?;
        let request = SignableRequest::new(
            parts.method.as_str(),
            uri.as_str(),
            signable.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| SigV4Error::Signing(e.to_string()))?;
        sigv4_sign(request, &params)
            .map_err(|e| SigV4Error::Signing(e.to_string()))?
            .into_parts()
            .0
    };
    let (new_headers, _query) = instructions.into_parts();
    for h in new_headers {
        let mut value =
            HeaderValue::from_str(h.value()).map_err(|e| SigV4Error::Signing(e.to_string()))?;
        value.set_sensitive(h.sensitive());
        parts.headers.insert(h.name(), value);
    }
    Ok(())
}

/// The checks that need only the headers: the `Authorization` header parses, `x-amz-date` is
/// signed, agrees with the credential scope's date and lies within `max_skew` of `now`. Cheap,
/// so a caller can refuse before reading a body.
pub fn precheck(
    headers: &HeaderMap,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(Authorization<'_>, SystemTime), SigV4Error> {
    let auth_value = headers
        .get(header::AUTHORIZATION)
        .ok_or(SigV4Error::Missing)?
        .to_str()
        .map_err(|_| SigV4Error::Malformed("not ASCII"))?;
    let auth = parse_authorization(auth_value)?;
    if !auth.signed_headers.contains(&X_AMZ_DATE) {
        return Err(SigV4Error::Malformed("x-amz-date is not signed"));
    }
    let amz_date = headers
        .get(X_AMZ_DATE)
        .and_then(|v| v.to_str().ok())
        .ok_or(SigV4Error::Malformed("no x-amz-date header"))?;
    let time = parse_amz_date(amz_date).ok_or(SigV4Error::Malformed("bad x-amz-date"))?;
    if !amz_date.starts_with(auth.date) {
        return Err(SigV4Error::Malformed("scope date differs from x-amz-date"));
    }
    let (skew, future) = match now.duration_since(time) {
        Ok(d) => (d, false),
        Err(e) => (e.duration(), true),
    };
    if skew > max_skew {
        let minutes = i64::try_from(max_skew.as_secs() / 60).unwrap_or(i64::MAX);
        return Err(SigV4Error::Expired {
            request_time: amz_date.to_owned(),
            server_time: format_amz_date(now),
            skew_minutes: if future { -minutes } else { minutes },
        });
    }
    Ok((auth, time))
}

/// Verifies the SigV4 signature of a received request against `credentials` (the secret the
/// caller looked up by the access key id in the header). `now` and `max_skew` bound the request
/// time. The caller checks the access key id, region and service it expects.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    credentials: &Credentials,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), SigV4Error> {
    let (auth, time) = precheck(&parts.headers, now, max_skew)?;

    // HTTP/2 clients carry the host in `:authority`, which hyper exposes on the URI.
    let authority = parts.uri.authority().map(|a| a.as_str());
    let mut signable: Vec<(&str, &str)> = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        if *name == X_AMZ_DATE || *name == X_AMZ_SECURITY_TOKEN {
            continue; // the signer adds these itself, from `time` and the identity
        }
        let mut values = parts.headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            match (*name, authority) {
                ("host", Some(a)) => signable.push(("host", a)),
                _ => return Err(SigV4Error::Mismatch),
            }
        }
        for value in values {
            let value = value.to_str().map_err(|_| SigV4Error::Mismatch)?;
            signable.push((name, value));
        }
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri = format!("https://signing.invalid{path_and_query}");

    // A session token is part of the secret: it must be sent and signed exactly when the
    // credentials have one.
    let token_signed = auth.signed_headers.contains(&X_AMZ_SECURITY_TOKEN);
    let token_sent = parts.headers.get(X_AMZ_SECURITY_TOKEN);
    match (token_signed, token_sent, credentials.session_token()) {
        (true, Some(sent), Some(expected)) => {
            if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(SigV4Error::BadSessionToken);
            }
        }
        (false, None, None) => {}
        // Signed but not sent, or sent but not signed, is a broken signature; a token where the
        // key has none (or none where it has one) is a wrong token.
        (true, None, _) | (false, Some(_), Some(_)) => return Err(SigV4Error::Mismatch),
        _ => return Err(SigV4Error::BadSessionToken),
    }

    let identity: Identity = credentials.clone().into();
    let params = signing_params_with_region(&identity, auth.region, auth.service, time)?;
    let request = SignableRequest::new(
        parts.method.as_str(),
        uri.as_str(),
        signable.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| SigV4Error::Mismatch)?;
    let expected = sigv4_sign(request, &params)
        .map_err(|e| SigV4Error::Signing(e.to_string()))?
        .signature()
        .to_owned();
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch)
    }
}

fn signing_params<'a>(
    identity: &'a Identity,
    region: &'a str,
    time: SystemTime,
) -> Result<aws_sigv4::http_request::SigningParams<'a>, SigV4Error> {
    signing_params_with_region(identity, region, SERVICE, time)
}

fn signing_params_with_region<'a>(
    identity: &'a Identity,
    region: &'a str,
    service: &'a str,
    time: SystemTime,
) -> Result<aws_sigv4::http_request::SigningParams<'a>, SigV4Error> {
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SigV4Error::Signing(e.to_string()))?;
    Ok(params.into())
}

/// Parses SigV4's basic ISO 8601 time, `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + se;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Formats a time as SigV4's `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

fn expired_message(request_time: &str, server_time: &str, skew_minutes: &i64) -> String {
    if *skew_minutes >= 0 {
        format!(
            "Signature expired: {request_time} is now earlier than {server_time} - {skew_minutes} min."
        )
    } else {
        format!(
            "Signature not yet current: {request_time} is still later than {server_time} + {} min.",
            -skew_minutes
        )
    }
}

#[cfg(test)]
mod tests {
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
        for bad in [
            "",
            "20260101T000000",
            "2026010xT000000Z",
            "20261301T000000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }
}
