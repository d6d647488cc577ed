//! SigV4 for the shape of a Bedrock Runtime call, with `aws-sigv4`'s default rules: path
//! percent-encoded twice (the client's already-encoded path is encoded once more), payload
//! hash = SHA-256 of the body, header values trimmed of spaces with inner runs of spaces
//! collapsed, values of a repeated header joined with `,`, and `user-agent`,
//! `x-amzn-trace-id`, `authorization` and `transfer-encoding` never signed. The key
//! derivation and the signature are `aws-sigv4`'s own functions.
//!
//! Property-tested against `aws-sigv4`'s request signer in `fast_props.rs`, next to this file.

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

/// Text built on the stack up to `N` bytes, on the heap past that.
enum Text<const N: usize> {
    Stack([u8; N], usize),
    Heap(Vec<u8>),
}

impl<const N: usize> Text<N> {
    fn new() -> Self {
        Text::Stack([0; N], 0)
    }

    fn push(&mut self, s: &str) {
        self.push_bytes(s.as_bytes());
    }

    fn push_bytes(&mut self, b: &[u8]) {
        match self {
            Text::Stack(buf, len) => match buf.get_mut(*len..*len + b.len()) {
                Some(room) => {
                    room.copy_from_slice(b);
                    *len += b.len();
                }
                None => {
                    let mut heap = Vec::with_capacity(*len + b.len() + N);
                    heap.extend_from_slice(&buf[..*len]);
                    heap.extend_from_slice(b);
                    *self = Text::Heap(heap);
                }
            },
            Text::Heap(v) => v.extend_from_slice(b),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Text::Stack(buf, len) => &buf[..*len],
            Text::Heap(v) => v,
        }
    }

    fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// Only `&str`s are pushed whole where this is read as text.
    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
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

pub(super) fn sign(
    parts: &mut Parts,
    payload: &super::PayloadHash,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), SigV4Error> {
    let stamp = super::amz_date(time);
    let amz_date = *stamp.as_bytes();
    let date = stamp.day();
    let amz_date_str = stamp.as_str();
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

    let mut names = Text::<128>::new();
    let mut last = "";
    for (name, _) in &signed {
        if *name != last {
            if !names.is_empty() {
                names.push(";");
            }
            names.push(name);
            last = name;
        }
    }
    let names = names.as_str();

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
    creq.update(names);
    creq.update(b"\n");
    creq.update(payload.as_str().as_bytes());
    let creq_hash = hex(&creq.finalize());

    let mut string_to_sign = Text::<192>::new();
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
        string_to_sign.push_bytes(part);
    }
    let signature = with_signing_key(credentials.secret_access_key(), date, region, time, |key| {
        v4::calculate_signature(key, string_to_sign.as_bytes())
    });
    let access_key = credentials.access_key_id();
    let parts_of_authorization = [
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
        names,
        ", Signature=",
        &signature,
    ];
    // Sized exactly, so the header value takes the buffer without another allocation.
    let mut authorization =
        String::with_capacity(parts_of_authorization.iter().map(|p| p.len()).sum());
    for part in parts_of_authorization {
        authorization.push_str(part);
    }

    let bad = |e: http::header::InvalidHeaderValue| SigV4Error::Signing(e.to_string());
    let date_value = super::amz_date_value(stamp);
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
