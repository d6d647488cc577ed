//! Identify: which application a request belongs to.
//!
//! Open mode trusts what the client declares ([`open`]). Keys mode ([`keys`]) trusts only a
//! proof: a SigV4 signature made with a virtual key from the keys file, a bearer token from it,
//! or a client certificate (mutual TLS) whose name it lists ([`certificate`]). The check is split in two so most refusals cost no body read: [`KeyStore::precheck`]
//! needs only the headers; [`verify_body`] checks the signature over the body afterwards.

pub mod certificate;
pub mod keys;
pub mod open;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use aws_credential_types::Credentials;
use http::{HeaderMap, StatusCode, header, request::Parts};

use crate::aws::sigv4::{self, PayloadHash, SigV4Error};
pub use crate::names::{APP_HEADER, UNAUTHENTICATED};
pub use certificate::ClientCertificate;
pub use keys::{Keys, KeysError, KeysErrors, LoadedKeys};

/// How far a request's signing time may be from the proxy's clock, as AWS allows.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The keys in force; swapped whole on reload, so a request keeps the key it was checked with.
pub struct KeyStore {
    keys: ArcSwap<Keys>,
}

/// Who the headers say the caller is.
pub enum Verdict {
    /// Proven already (a bearer token), with the Region its key names, if any.
    Bearer {
        app: Arc<str>,
        region: Option<Arc<str>>,
    },
    /// Proven by the connection's client certificate, with the Region its key names, if any.
    Certificate {
        app: Arc<str>,
        region: Option<Arc<str>>,
    },
    /// Proven once the signature over the body checks out with these credentials.
    Signed {
        app: Arc<str>,
        credentials: Credentials,
    },
}

/// Why a request was refused. Messages follow AWS's wording and never carry a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthFailure {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("Authorization header is malformed: {0}")]
    Malformed(&'static str),
    #[error("Credential should be scoped to correct service: 'bedrock'.")]
    WrongService,
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error("The security token included in the request is invalid.")]
    BadSessionToken,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    BadSignature,
    #[error("{0}")]
    Expired(String),
    #[error("The API key included in the request is invalid.")]
    UnknownBearerToken,
}

impl AuthFailure {
    /// The `reason` label of `bedrock_auth_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed(_) | AuthFailure::WrongService => "malformed",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::BadSessionToken => "bad_session_token",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::Expired(_) => "expired",
            AuthFailure::UnknownBearerToken => "unknown_bearer_token",
        }
    }

    pub const REASONS: [&'static str; 7] = crate::names::AUTH_FAILURE_REASONS;

    /// Status and `x-amzn-ErrorType`: what AWS answers, so SDKs raise the familiar exception.
    pub fn status_and_type(&self) -> (StatusCode, &'static str) {
        let error_type = match self {
            AuthFailure::Missing => "MissingAuthenticationTokenException",
            AuthFailure::Malformed(_) | AuthFailure::WrongService => "IncompleteSignatureException",
            AuthFailure::UnknownKey
            | AuthFailure::BadSessionToken
            | AuthFailure::UnknownBearerToken => "UnrecognizedClientException",
            AuthFailure::BadSignature | AuthFailure::Expired(_) => "InvalidSignatureException",
        };
        (StatusCode::FORBIDDEN, error_type)
    }
}

impl From<SigV4Error> for AuthFailure {
    fn from(e: SigV4Error) -> Self {
        match e {
            SigV4Error::Missing => AuthFailure::Missing,
            SigV4Error::Malformed(m) => AuthFailure::Malformed(m),
            e @ SigV4Error::Expired { .. } => AuthFailure::Expired(e.to_string()),
            SigV4Error::BadSessionToken => AuthFailure::BadSessionToken,
            SigV4Error::Mismatch | SigV4Error::Signing(_) => AuthFailure::BadSignature,
        }
    }
}

impl KeyStore {
    pub fn new(keys: Keys) -> Self {
        KeyStore {
            keys: ArcSwap::from_pointee(keys),
        }
    }

    /// Replaces the keys; requests already checked keep the key they were checked with.
    pub fn replace(&self, keys: Keys) {
        self.keys.store(Arc::new(keys));
    }

    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session tags the keys file gives an app, besides `app` (`--assume-role`).
    pub fn tags(&self, app: &str) -> Option<keys::SessionTags> {
        self.keys.load().tags(app)
    }

    /// The key a verified client certificate proves, if the keys file lists one of its names.
    /// It takes precedence over the headers: a mesh client's SDK signs with whatever it has.
    pub fn by_certificate(&self, cert: &ClientCertificate) -> Option<Verdict> {
        let keys = self.keys.load();
        let key = keys.certificate(cert)?;
        Some(Verdict::Certificate {
            app: key.app.clone(),
            region: key.region.clone(),
        })
    }

    /// Everything that can be decided from the headers: the scheme, the key, the time window.
    pub fn precheck(&self, headers: &HeaderMap, now: SystemTime) -> Result<Verdict, AuthFailure> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or(AuthFailure::Missing)?
            .to_str()
            .map_err(|_| AuthFailure::Malformed("not ASCII"))?;
        let keys = self.keys.load();
        if let Some(token) = bearer_token(value) {
            let key = keys.bearer(token).ok_or(AuthFailure::UnknownBearerToken)?;
            return Ok(Verdict::Bearer {
                app: key.app.clone(),
                region: key.region.clone(),
            });
        }
        let (auth, _time) = sigv4::precheck(headers, now, MAX_SKEW)?;
        if auth.service != sigv4::SERVICE {
            return Err(AuthFailure::WrongService);
        }
        let key = keys
            .sigv4(auth.access_key_id)
            .ok_or(AuthFailure::UnknownKey)?;
        Ok(Verdict::Signed {
            app: key.app.clone(),
            credentials: key.credentials.clone(),
        })
    }
}

/// The signature check proper, once the body is in hand.
pub fn verify_body(
    parts: &Parts,
    body: &[u8],
    credentials: &Credentials,
    now: SystemTime,
) -> Result<(), AuthFailure> {
    verify_payload(parts, &PayloadHash::of(body), credentials, now)
}

/// [`verify_body`] for a body already hashed (the proxy hashes a body once, for this check and
/// for its own signature).
pub fn verify_payload(
    parts: &Parts,
    payload: &PayloadHash,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<(), AuthFailure> {
    sigv4::verify_hashed(parts, payload, credentials, now, MAX_SKEW).map_err(AuthFailure::from)
}

/// The token of an `Authorization: Bearer TOKEN` header (scheme case-insensitive, RFC 6750).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests;
