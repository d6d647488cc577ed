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
///
/// Every Bedrock Runtime call has the same simple shape (no query, a path normalisation leaves
/// alone): [`fast`] signs it with `aws-sigv4`'s key derivation and signature functions, the
/// derived key cached for the day, and the canonical request streamed into the hash instead of
/// built from a fresh header map. The result is byte for byte what `aws-sigv4`'s request
/// signer produces (property-tested against it below); any other shape goes through that
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

/// The hex SHA-256 of a request body, as SigV4 signs it.
pub struct PayloadHash([u8; 64]);

impl PayloadHash {
    pub fn of(body: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        PayloadHash(fast::hex(&Sha256::digest(body)))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
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
    let host_value = HeaderValue::from_str(host).map_err(|e| SigV4Error::Signing(e.to_string()))?;
    headers.insert(header::HOST, host_value);
    Ok(())
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

/// SigV4 for the shape of a Bedrock Runtime call, with `aws-sigv4`'s default rules: path
/// percent-encoded twice (the client's already-encoded path is encoded once more), payload
/// hash = SHA-256 of the body, header values trimmed of spaces with inner runs of spaces
/// collapsed, values of a repeated header joined with `,`, and `user-agent`,
/// `x-amzn-trace-id`, `authorization` and `transfer-encoding` never signed. The key
/// derivation and the signature are `aws-sigv4`'s own functions.
mod fast {
    use std::borrow::Cow;
    use std::cell::RefCell;
    use std::time::SystemTime;

    use aws_credential_types::Credentials;
    use aws_sigv4::sign::v4;
    use http::{HeaderName, HeaderValue, Uri, header, request::Parts};
    use sha2::{Digest, Sha256};

    use super::{ALGORITHM, SERVICE, SigV4Error, X_AMZ_DATE, X_AMZ_SECURITY_TOKEN, offered};

    /// Offered headers `aws-sigv4` leaves out of the signature anyway.
    const NEVER_SIGNED: [&str; 4] = [
        "authorization",
        "user-agent",
        "x-amzn-trace-id",
        "transfer-encoding",
    ];

    const HEX: &[u8; 16] = b"0123456789abcdef";
    const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

    /// The fast path applies: no query, and a path that normalising would leave as it is (no
    /// empty, `.` or `..` segments).
    pub(super) fn applies(uri: &Uri) -> bool {
        if uri.query().is_some() {
            return false;
        }
        let Some(rest) = uri.path().strip_prefix('/') else {
            return false;
        };
        rest.is_empty()
            || !rest
                .split('/')
                .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    }

    /// Feeds the path, percent-encoded once more, to the hash: runs of unreserved bytes go in
    /// whole.
    fn hash_canonical_path(h: &mut Sha256, path: &str) {
        let bytes = path.as_bytes();
        let mut run = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
                continue;
            }
            h.update(&bytes[run..i]);
            h.update([
                b'%',
                HEX_UPPER[usize::from(b >> 4)],
                HEX_UPPER[usize::from(b & 15)],
            ]);
            run = i + 1;
        }
        h.update(&bytes[run..]);
    }

    /// Trims spaces (only spaces) and collapses runs of them, as `aws-sigv4` does.
    fn trim_all(value: &str) -> Cow<'_, str> {
        let value = value.trim_matches(' ');
        if !value.contains("  ") {
            return Cow::Borrowed(value);
        }
        let mut out = String::with_capacity(value.len());
        let mut last_space = false;
        for c in value.chars() {
            if c == ' ' && last_space {
                continue;
            }
            last_space = c == ' ';
            out.push(c);
        }
        Cow::Owned(out)
    }

    pub(super) fn hex(bytes: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        for (i, b) in bytes.iter().take(32).enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        out
    }

    struct CachedKey {
        secret: String,
        date: [u8; 8],
        region: String,
        key: Vec<u8>,
    }

    thread_local! {
        /// The last signing key derived on this thread: the four key-derivation HMACs change
        /// only with the day, the Region and the credentials.
        static SIGNING_KEY: RefCell<Option<CachedKey>> = const { RefCell::new(None) };
    }

    fn with_signing_key<R>(
        secret: &str,
        date: [u8; 8],
        region: &str,
        time: SystemTime,
        f: impl FnOnce(&[u8]) -> R,
    ) -> R {
        SIGNING_KEY.with(|cell| {
            let mut cached = cell.borrow_mut();
            let key = match &mut *cached {
                Some(c) if c.date == date && c.region == region && c.secret == secret => c,
                slot => slot.insert(CachedKey {
                    secret: secret.to_owned(),
                    date,
                    region: region.to_owned(),
                    key: v4::generate_signing_key(secret, time, region, SERVICE)
                        .as_ref()
                        .to_vec(),
                }),
            };
            f(&key.key)
        })
    }

    /// `YYYYMMDDTHHMMSSZ` as bytes.
    fn amz_date(time: SystemTime) -> [u8; 16] {
        let formatted = super::format_amz_date(time);
        let mut out = *b"19700101T000000Z";
        if formatted.len() == 16 {
            out.copy_from_slice(formatted.as_bytes());
        }
        out
    }

    pub(super) fn sign(
        parts: &mut Parts,
        payload: &super::PayloadHash,
        credentials: &Credentials,
        region: &str,
        time: SystemTime,
    ) -> Result<(), SigV4Error> {
        let amz_date = amz_date(time);
        let mut date = [0u8; 8];
        date.copy_from_slice(&amz_date[..8]);
        let amz_date_str = std::str::from_utf8(&amz_date).unwrap_or("19700101T000000Z");
        let date_str = amz_date_str.get(..8).unwrap_or("19700101");
        let token = credentials.session_token();

        let mut signed: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(8);
        for (name, value) in &parts.headers {
            let name = name.as_str();
            if !offered(name) || NEVER_SIGNED.contains(&name) {
                continue;
            }
            // As on the aws-sigv4 path: a value that is not visible ASCII travels unsigned.
            let Ok(value) = value.to_str() else {
                continue;
            };
            signed.push((name, trim_all(value)));
        }
        signed.push((X_AMZ_DATE, Cow::Borrowed(amz_date_str)));
        if let Some(token) = token {
            signed.push((X_AMZ_SECURITY_TOKEN, Cow::Borrowed(token)));
        }
        // Stable: the values of a repeated header keep their order.
        signed.sort_by(|a, b| a.0.cmp(b.0));

        let mut names = String::with_capacity(96);
        let mut last = "";
        for (name, _) in &signed {
            if *name != last {
                if !names.is_empty() {
                    names.push(';');
                }
                names.push_str(name);
                last = name;
            }
        }

        let mut creq = Sha256::new();
        creq.update(parts.method.as_str());
        creq.update(b"\n");
        hash_canonical_path(&mut creq, parts.uri.path());
        creq.update(b"\n\n");
        for (i, (name, value)) in signed.iter().enumerate() {
            if i == 0 || signed[i - 1].0 != *name {
                creq.update(name);
                creq.update(b":");
            } else {
                creq.update(b",");
            }
            creq.update(value.as_bytes());
            if signed.get(i + 1).is_none_or(|next| next.0 != *name) {
                creq.update(b"\n");
            }
        }
        creq.update(b"\n");
        creq.update(&names);
        creq.update(b"\n");
        creq.update(payload.0);
        let creq_hash = hex(&creq.finalize());

        let mut string_to_sign = Vec::with_capacity(160);
        for part in [
            ALGORITHM.as_bytes(),
            b"\n",
            &amz_date,
            b"\n",
            &date,
            b"/",
            region.as_bytes(),
            b"/",
            SERVICE.as_bytes(),
            b"/aws4_request\n",
            &creq_hash,
        ] {
            string_to_sign.extend_from_slice(part);
        }
        let signature =
            with_signing_key(credentials.secret_access_key(), date, region, time, |key| {
                v4::calculate_signature(key, &string_to_sign)
            });
        let access_key = credentials.access_key_id();
        let mut authorization =
            String::with_capacity(ALGORITHM.len() + access_key.len() + names.len() + 160);
        for part in [
            ALGORITHM,
            " Credential=",
            access_key,
            "/",
            date_str,
            "/",
            region,
            "/",
            SERVICE,
            "/aws4_request, SignedHeaders=",
            &names,
            ", Signature=",
            &signature,
        ] {
            authorization.push_str(part);
        }

        let bad = |e: http::header::InvalidHeaderValue| SigV4Error::Signing(e.to_string());
        let date_value = HeaderValue::from_bytes(&amz_date).map_err(bad)?;
        let token_value = token
            .map(|t| {
                HeaderValue::from_str(t).map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
            })
            .transpose()
            .map_err(bad)?;
        // Not marked sensitive, as aws-sigv4 leaves it (the token is).
        let auth_value = HeaderValue::try_from(authorization).map_err(bad)?;
        parts
            .headers
            .insert(HeaderName::from_static(X_AMZ_DATE), date_value);
        if let Some(v) = token_value {
            parts
                .headers
                .insert(HeaderName::from_static(X_AMZ_SECURITY_TOKEN), v);
        }
        parts.headers.insert(header::AUTHORIZATION, auth_value);
        Ok(())
    }
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
    verify_hashed(parts, &PayloadHash::of(body), credentials, now, max_skew)
}

/// [`verify`] for a body whose hash is already known.
pub fn verify_hashed(
    parts: &Parts,
    payload: &PayloadHash,
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
        SignableBody::Precomputed(payload.as_str().to_owned()),
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
