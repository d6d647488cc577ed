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

use crate::time::{civil_from_days, days_from_civil};

pub const SERVICE: &str = "bedrock";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const X_AMZ_DATE: &str = "x-amz-date";
pub const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
pub const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

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
///
/// Every Bedrock Runtime call has the same simple shape (no query, a path normalisation leaves
/// alone): the `fast` module signs it with `aws-sigv4`'s key derivation and signature functions, the
/// derived key cached for the day, and the canonical request streamed into the hash instead of
/// built from a fresh header map. The result is byte for byte what `aws-sigv4`'s request
/// signer produces (property-tested against it in `fast_props.rs`); any other shape goes through that
/// signer itself.
pub fn sign(
    parts: &mut Parts,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), SigV4Error> {
    sign_hashed(parts, &PayloadHash::of(body), credentials, region, time)
}

/// [`sign`] for a body whose hash is already known (the proxy hashes each body once, for
/// verifying the client's signature and for its own).
pub fn sign_hashed(
    parts: &mut Parts,
    payload: &PayloadHash,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), SigV4Error> {
    prepare_headers(parts)?;
    if fast::applies(&parts.uri) {
        return fast::sign(parts, payload, credentials, region, time);
    }
    sign_with_aws_sigv4(parts, payload, credentials, region, time)
}

/// The payload hash a request is signed with: the hex SHA-256 of its body, or for a body that
/// streams (an event stream each way) a name standing for it.
pub struct PayloadHash {
    bytes: [u8; 64],
    len: u8,
}

/// The payload hash of a body the signature does not cover (the SDKs' choice for a request
/// event stream, whose frames carry signatures of their own).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The payload hash some clients name for a request event stream with signed frames.
pub const STREAMING_EVENTS: &str = "STREAMING-AWS4-HMAC-SHA256-EVENTS";

impl PayloadHash {
    pub fn of(body: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        PayloadHash {
            bytes: fast::hex(&Sha256::digest(body)),
            len: 64,
        }
    }

    /// One of the names that stand for a streamed body ([`UNSIGNED_PAYLOAD`],
    /// [`STREAMING_EVENTS`]); `None` for anything longer than a hash.
    pub fn named(name: &str) -> Option<Self> {
        let mut bytes = [0u8; 64];
        bytes
            .get_mut(..name.len())?
            .copy_from_slice(name.as_bytes());
        Some(PayloadHash {
            bytes,
            len: u8::try_from(name.len()).ok()?,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// Drops the client's auth headers and sets `host` to the upstream's authority.
fn prepare_headers(parts: &mut Parts) -> Result<(), SigV4Error> {
    let headers = &mut parts.headers;
    headers.remove(header::AUTHORIZATION);
    headers.remove(X_AMZ_DATE);
    headers.remove(X_AMZ_SECURITY_TOKEN);
    headers.remove(X_AMZ_CONTENT_SHA256);
    let host = parts
        .uri
        .authority()
        .ok_or_else(|| SigV4Error::Signing("upstream URI has no authority".into()))?
        .as_str();
    headers.insert(header::HOST, host_value(host)?);
    Ok(())
}

thread_local! {
    /// The last upstream host on this thread, as a header value: calls go to one host (one per
    /// Region), and a shared value is cloned without copying it.
    static LAST_HOST: std::cell::RefCell<Option<HeaderValue>> =
        const { std::cell::RefCell::new(None) };
}

fn host_value(host: &str) -> Result<HeaderValue, SigV4Error> {
    LAST_HOST.with_borrow_mut(|last| {
        if let Some(value) = last.as_ref().filter(|v| v.as_bytes() == host.as_bytes()) {
            return Ok(value.clone());
        }
        let value = HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(host.as_bytes()))
            .map_err(|e| SigV4Error::Signing(e.to_string()))?;
        *last = Some(value.clone());
        Ok(value)
    })
}

/// The headers handed to the signer: `host`, `content-type` and `x-amz*`.
fn offered(name: &str) -> bool {
    name == "host" || name == "content-type" || name.starts_with("x-amz")
}

/// The request signer of `aws-sigv4`, for every shape (and the reference the fast path is
/// tested against).
fn sign_with_aws_sigv4(
    parts: &mut Parts,
    payload: &PayloadHash,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), SigV4Error> {
    let signable: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter(|(name, _)| offered(name.as_str()))
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
            SignableBody::Precomputed(payload.as_str().to_owned()),
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

pub mod event;
mod fast;
mod verify;

pub use verify::{precheck, verify, verify_hashed};

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
    amz_date(time).as_str().to_owned()
}

/// SigV4's `YYYYMMDDTHHMMSSZ`, as bytes on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmzDate([u8; 16]);

impl AmzDate {
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, `T` and `Z` are ever written.
        std::str::from_utf8(&self.0).unwrap_or("19700101T000000Z")
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// `YYYYMMDD`.
    pub fn day(&self) -> [u8; 8] {
        let mut day = [0u8; 8];
        day.copy_from_slice(&self.0[..8]);
        day
    }
}

thread_local! {
    /// The last second formatted on this thread: every call signed within it shares the date.
    static LAST_DATE: std::cell::Cell<(u64, AmzDate)> =
        const { std::cell::Cell::new((0, AmzDate(*b"19700101T000000Z"))) };
    /// The last `x-amz-date` header value made on this thread, shared by the calls of its second.
    static LAST_DATE_VALUE: std::cell::RefCell<Option<(AmzDate, HeaderValue)>> =
        const { std::cell::RefCell::new(None) };
}

/// `date` as a header value, made once a second per thread.
pub fn amz_date_value(date: AmzDate) -> HeaderValue {
    LAST_DATE_VALUE.with_borrow_mut(|last| match last {
        Some((d, value)) if *d == date => value.clone(),
        _ => {
            let value =
                HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(date.as_bytes()))
                    .unwrap_or_else(|_| HeaderValue::from_static("19700101T000000Z"));
            *last = Some((date, value.clone()));
            value
        }
    })
}

/// `time` as SigV4's date, formatted once a second per thread (no formatting machinery: it is
/// on every call's path).
pub fn amz_date(time: SystemTime) -> AmzDate {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (cached_secs, cached) = LAST_DATE.get();
    if cached_secs == secs {
        return cached;
    }
    let secs_i = i64::try_from(secs).unwrap_or(i64::MAX);
    let (days, rem) = (secs_i.div_euclid(86_400), secs_i.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let mut out = *b"19700101T000000Z";
    let mut put = |at: usize, width: usize, value: i64| {
        let mut v = value.clamp(0, 10_i64.pow(width as u32) - 1);
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(4, 2, m);
    put(6, 2, d);
    put(9, 2, rem / 3_600);
    put(11, 2, rem % 3_600 / 60);
    put(13, 2, rem % 60);
    let date = AmzDate(out);
    LAST_DATE.set((secs, date));
    date
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
mod fast_props;
#[cfg(test)]
mod tests;
