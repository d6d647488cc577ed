//! The keys file (keys mode): virtual credentials, each naming the app it belongs to.
//!
//! ```toml
//! [[key]]
//! access_key_id = "AKIDCHECKOUT01"
//! secret_access_key = "..."
//! session_token = "..."        # optional
//! app = "checkout"
//!
//! [[key]]
//! bearer_token = "..."         # a Bedrock API key, for AWS_BEARER_TOKEN_BEDROCK clients
//! app = "search"
//! region = "us-west-2"         # optional: bearer requests carry no region (else --region)
//!
//! [[key]]
//! client_cert = "spiffe://mesh.example/ns/ledger/sa/api"   # mutual TLS (--tls-client-ca)
//! app = "ledger"
//! region = "eu-west-1"         # optional, as for bearer_token
//! tags = { team = "payments", cost-center = "4711" }   # optional, with --assume-role
//! ```
//!
//! `tags` are the session tags the app's STS session carries besides `app` (`--assume-role`);
//! every key of one app gives the same tags, since the app has one session.
//!
//! Parsed in two steps like the rate card (serde types that reject unknown keys, then
//! validation), so every problem is reported with its line. Bearer tokens are held only as their
//! SHA-256 digests: a lookup never compares secret bytes one by one.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use aws_credential_types::Credentials;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::certificate::ClientCertificate;
use crate::file_error::{FileError, FileErrors, line_of};
use crate::names::{valid_app, valid_region};

/// Bearer tokens shorter than this are refused: they would be guessable.
pub const MIN_BEARER_LEN: usize = 16;

/// A SigV4 virtual key.
#[derive(Clone, Debug)]
pub struct SigV4Key {
    pub app: Arc<str>,
    pub credentials: Credentials,
}

/// A key proven without a signature (a bearer token, a client certificate): the app, and the
/// Region its calls go to when the key names one.
#[derive(Clone, Debug)]
pub struct BearerKey {
    pub app: Arc<str>,
    pub region: Option<Arc<str>>,
}

/// Every key in a keys file, indexed for lookup.
#[derive(Debug, Default)]
pub struct Keys {
    sigv4: HashMap<String, SigV4Key>,
    bearer: HashMap<[u8; 32], BearerKey>,
    /// By a name the client certificate carries (URI or DNS SAN, or subject common name).
    certificate: HashMap<String, BearerKey>,
    /// The session tags of apps whose keys give some (`--assume-role`).
    tags: HashMap<Arc<str>, SessionTags>,
}

/// Session tags besides `app`, sorted by key.
pub type SessionTags = Arc<[(String, String)]>;

/// STS allows 50 session tags; the meter's own `app` is one of them.
pub const MAX_TAGS: usize = 49;

/// An error or warning in the keys file, at its line. Never contains a secret.
pub type KeysError = FileError;
/// Every error found in a keys file.
pub type KeysErrors = FileErrors;

/// A loaded file and what validation had to say about it.
#[derive(Debug)]
pub struct LoadedKeys {
    pub keys: Keys,
    pub warnings: Vec<KeysError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    key: Vec<Spanned<RawKey>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    app: Spanned<String>,
    access_key_id: Option<Spanned<String>>,
    secret_access_key: Option<Spanned<String>>,
    session_token: Option<Spanned<String>>,
    bearer_token: Option<Spanned<String>>,
    client_cert: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    tags: Option<Spanned<std::collections::BTreeMap<String, String>>>,
}

impl Keys {
    pub fn load(path: &Path) -> Result<LoadedKeys, KeysErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            FileErrors(vec![FileError {
                file: file.clone(),
                line: 0,
                message: format!("cannot read the keys file: {e}"),
            }])
        })?;
        let mut loaded = Keys::parse(&text, &file)?;
        loaded.warnings.extend(permission_warning(path, &file));
        Ok(loaded)
    }

    pub fn parse(text: &str, file: &str) -> Result<LoadedKeys, KeysErrors> {
        let err = |span: Option<Range<usize>>, message: String| FileError {
            file: file.to_owned(),
            line: span.map_or(0, |s| line_of(text, s.start)),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            // toml's own message quotes the offending line, which may hold a secret.
            let message = format!("not a valid keys file: {}", e.message());
            FileErrors(vec![err(e.span(), message)])
        })?;

        let mut keys = Keys::default();
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        if raw.key.is_empty() {
            warnings.push(err(
                None,
                "no [[key]] entries: every request will be refused".into(),
            ));
        }
        for entry in raw.key {
            let span = entry.span();
            let entry = entry.into_inner();
            let app = entry.app.get_ref();
            if !valid_app(app) {
                errors.push(err(
                    Some(entry.app.span()),
                    format!("app {app:?} must match [A-Za-z0-9._-]{{1,64}}"),
                ));
                continue;
            }
            let app: Arc<str> = Arc::from(app.as_str());
            if let Some(tags) = entry.tags {
                let tags_span = tags.span();
                match session_tags(tags.into_inner()) {
                    Err(message) => {
                        errors.push(err(Some(tags_span), message));
                        continue;
                    }
                    Ok(tags) => match keys.tags.get(&app) {
                        Some(seen) if *seen != tags => {
                            errors.push(err(
                                Some(tags_span),
                                format!(
                                    "app {app:?} has keys with different tags: it has one session, so every key of it gives the same tags"
                                ),
                            ));
                            continue;
                        }
                        Some(_) => {}
                        None => {
                            keys.tags.insert(app.clone(), tags);
                        }
                    },
                }
            }
            let region = match entry.region {
                Some(r) if entry.bearer_token.is_none() && entry.client_cert.is_none() => {
                    errors.push(err(
                        Some(r.span()),
                        "region goes with bearer_token or client_cert (a SigV4 signature names its own)"
                            .into(),
                    ));
                    continue;
                }
                Some(r) if !valid_region(r.get_ref()) => {
                    errors.push(err(
                        Some(r.span()),
                        format!("region {:?} is not an AWS Region id", r.get_ref()),
                    ));
                    continue;
                }
                r => r.map(|r| Arc::from(r.into_inner().as_str())),
            };
            if let Some(name) = entry.client_cert {
                if entry.access_key_id.is_some()
                    || entry.secret_access_key.is_some()
                    || entry.bearer_token.is_some()
                    || entry.session_token.is_some()
                {
                    errors.push(err(
                        Some(span),
                        "a client_cert key gives no access_key_id, secret_access_key, session_token or bearer_token"
                            .into(),
                    ));
                    continue;
                }
                let (name_span, name) = (name.span(), name.into_inner());
                if name.is_empty() || name.len() > 512 || name.chars().any(char::is_control) {
                    errors.push(err(
                        Some(name_span),
                        "client_cert must be 1 to 512 printable characters: a URI or DNS name, or the subject's common name"
                            .into(),
                    ));
                    continue;
                }
                if keys
                    .certificate
                    .insert(name.clone(), BearerKey { app, region })
                    .is_some()
                {
                    errors.push(err(
                        Some(name_span),
                        format!("client_cert {name:?} appears twice"),
                    ));
                }
                continue;
            }
            match (
                entry.access_key_id,
                entry.secret_access_key,
                entry.bearer_token,
            ) {
                (Some(id), Some(secret), None) => {
                    let (id_span, id) = (id.span(), id.into_inner());
                    if id.is_empty()
                        || id.len() > 128
                        || !id.bytes().all(|b| b.is_ascii_alphanumeric())
                    {
                        errors.push(err(
                            Some(id_span),
                            format!("access_key_id {id:?} must be 1 to 128 letters and digits"),
                        ));
                        continue;
                    }
                    if secret.get_ref().is_empty() {
                        errors.push(err(
                            Some(secret.span()),
                            "secret_access_key is empty".into(),
                        ));
                        continue;
                    }
                    if keys.sigv4.contains_key(&id) {
                        errors.push(err(
                            Some(id_span),
                            format!("access_key_id {id:?} appears twice"),
                        ));
                        continue;
                    }
                    let token = entry.session_token.map(Spanned::into_inner);
                    let credentials =
                        Credentials::new(&id, secret.into_inner(), token, None, "keys-file");
                    keys.sigv4.insert(id, SigV4Key { app, credentials });
                }
                (None, None, Some(token)) => {
                    if let Some(t) = entry.session_token {
                        errors.push(err(
                            Some(t.span()),
                            "session_token goes with access_key_id, not bearer_token".into(),
                        ));
                        continue;
                    }
                    if token.get_ref().len() < MIN_BEARER_LEN {
                        errors.push(err(
                            Some(token.span()),
                            format!("bearer_token is shorter than {MIN_BEARER_LEN} characters"),
                        ));
                        continue;
                    }
                    let digest = bearer_digest(token.get_ref());
                    if keys
                        .bearer
                        .insert(digest, BearerKey { app, region })
                        .is_some()
                    {
                        errors.push(err(Some(token.span()), "bearer_token appears twice".into()));
                    }
                }
                (None, None, None) => errors.push(err(
                    Some(span),
                    "a key needs access_key_id and secret_access_key, bearer_token, or client_cert"
                        .into(),
                )),
                (_, _, Some(_)) => errors.push(err(
                    Some(span),
                    "a key gives either bearer_token or access_key_id/secret_access_key, not both"
                        .into(),
                )),
                (Some(_), None, None) | (None, Some(_), None) => errors.push(err(
                    Some(span),
                    "access_key_id and secret_access_key go together".into(),
                )),
            }
        }
        if errors.is_empty() {
            Ok(LoadedKeys { keys, warnings })
        } else {
            Err(FileErrors(errors))
        }
    }

    pub fn sigv4(&self, access_key_id: &str) -> Option<&SigV4Key> {
        self.sigv4.get(access_key_id)
    }

    pub fn bearer(&self, token: &str) -> Option<&BearerKey> {
        self.bearer.get(&bearer_digest(token))
    }

    /// The key a verified client certificate proves, by the first of its names (in
    /// [`ClientCertificate`]'s order) that the file lists.
    pub fn certificate(&self, cert: &ClientCertificate) -> Option<&BearerKey> {
        cert.names().iter().find_map(|n| self.certificate.get(n))
    }

    /// Whether any key is proven by a client certificate (they need `--tls-client-ca`).
    pub fn has_certificate_keys(&self) -> bool {
        !self.certificate.is_empty()
    }

    /// Apps of bearer keys that name no Region (their calls need `--region`).
    pub fn bearer_apps_without_region(&self) -> Vec<&str> {
        let mut apps: Vec<&str> = self
            .bearer
            .values()
            .filter(|k| k.region.is_none())
            .map(|k| &*k.app)
            .collect();
        apps.sort_unstable();
        apps
    }

    /// The session tags an app's keys give, besides `app`.
    pub fn tags(&self, app: &str) -> Option<SessionTags> {
        self.tags.get(app).cloned()
    }

    /// Number of keys of every kind.
    pub fn len(&self) -> usize {
        self.sigv4.len() + self.bearer.len() + self.certificate.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Session tags as STS takes them: keys of 1 to 128 and values of up to 256 letters, digits,
/// spaces and `_ . : / = + - @`; keys unique whatever their case; not `app`, which is the
/// meter's.
fn session_tags(tags: std::collections::BTreeMap<String, String>) -> Result<SessionTags, String> {
    let allowed = |s: &str| {
        s.chars().all(|c| {
            c.is_alphanumeric()
                || c == ' '
                || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
        })
    };
    if tags.len() > MAX_TAGS {
        return Err(format!(
            "tags: at most {MAX_TAGS} (STS allows 50 session tags, and app is one)"
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (key, value) in &tags {
        if key.is_empty() || key.chars().count() > 128 || !allowed(key) {
            return Err(format!(
                "tag key {key:?} must be 1 to 128 letters, digits, spaces and _ . : / = + - @"
            ));
        }
        if value.chars().count() > 256 || !allowed(value) {
            return Err(format!(
                "tag {key:?}: the value must be up to 256 letters, digits, spaces and _ . : / = + - @"
            ));
        }
        if key.eq_ignore_ascii_case("app") {
            return Err("tag key \"app\" is the meter's: it always carries the app".into());
        }
        if !seen.insert(key.to_lowercase()) {
            return Err(format!(
                "tag key {key:?} appears twice (tag keys ignore case)"
            ));
        }
    }
    Ok(tags.into_iter().collect())
}

fn bearer_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Secrets readable by every local user deserve a warning.
#[cfg(unix)]
fn permission_warning(path: &Path, file: &str) -> Option<KeysError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o004 != 0).then(|| FileError {
        file: file.to_owned(),
        line: 0,
        message: format!(
            "the keys file is readable by every user (mode {:o}); chmod 600 it",
            mode & 0o777
        ),
    })
}

#[cfg(not(unix))]
fn permission_warning(_: &Path, _: &str) -> Option<KeysError> {
    None
}

#[cfg(test)]
mod tests;
