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
//! ```
//!
//! Parsed in two steps like the rate card (serde types that reject unknown keys, then
//! validation), so every problem is reported with its line. Bearer tokens are held only as their
//! SHA-256 digests: a lookup never compares secret bytes one by one.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use aws_credential_types::Credentials;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::names::{valid_app, valid_region};

/// Bearer tokens shorter than this are refused: they would be guessable.
pub const MIN_BEARER_LEN: usize = 16;

/// A SigV4 virtual key.
#[derive(Clone, Debug)]
pub struct SigV4Key {
    pub app: Arc<str>,
    pub credentials: Credentials,
}

/// Every key in a keys file, indexed for lookup.
/// A bearer token's key: the app, and the Region its calls go to when the key names one.
#[derive(Clone, Debug)]
pub struct BearerKey {
    pub app: Arc<str>,
    pub region: Option<Arc<str>>,
}

#[derive(Debug, Default)]
pub struct Keys {
    sigv4: HashMap<String, SigV4Key>,
    bearer: HashMap<[u8; 32], BearerKey>,
}

/// A problem in a keys file, located by line (1-based). Never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeysError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for KeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Every error found in a keys file.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct KeysErrors(pub Vec<KeysError>);

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
    region: Option<Spanned<String>>,
}

impl Keys {
    pub fn load(path: &Path) -> Result<LoadedKeys, KeysErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            KeysErrors(vec![KeysError {
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
        let err = |span: Option<Range<usize>>, message: String| KeysError {
            file: file.to_owned(),
            line: span.map_or(0, |s| line_of(text, s.start)),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            // toml's own message quotes the offending line, which may hold a secret.
            let message = format!("not a valid keys file: {}", e.message());
            KeysErrors(vec![err(e.span(), message)])
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
            let region = match entry.region {
                Some(r) if entry.bearer_token.is_none() => {
                    errors.push(err(
                        Some(r.span()),
                        "region goes with bearer_token (a SigV4 signature names its own)".into(),
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
                    "a key needs access_key_id and secret_access_key, or bearer_token".into(),
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
            Err(KeysErrors(errors))
        }
    }

    pub fn sigv4(&self, access_key_id: &str) -> Option<&SigV4Key> {
        self.sigv4.get(access_key_id)
    }

    pub fn bearer(&self, token: &str) -> Option<&BearerKey> {
        self.bearer.get(&bearer_digest(token))
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

    /// Number of keys of both kinds.
    pub fn len(&self) -> usize {
        self.sigv4.len() + self.bearer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn bearer_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |before| {
        before.bytes().filter(|&b| b == b'\n').count() + 1
    })
}

/// Secrets readable by every local user deserve a warning.
#[cfg(unix)]
fn permission_warning(path: &Path, file: &str) -> Option<KeysError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o004 != 0).then(|| KeysError {
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
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[key]]
access_key_id = "AKIDCHECKOUT01"
secret_access_key = "checkout-secret"
app = "checkout"

[[key]]
access_key_id = "AKIDSEARCH01"
secret_access_key = "search-secret"
session_token = "search-token"
app = "search"

[[key]]
bearer_token = "bedrock-api-key-0123456789"
app = "batch"
region = "eu-west-1"
"#;

    #[test]
    fn parses_both_kinds() {
        let loaded = Keys::parse(GOOD, "keys.toml").unwrap();
        assert!(loaded.warnings.is_empty());
        let keys = loaded.keys;
        assert_eq!(keys.len(), 3);
        let k = keys.sigv4("AKIDCHECKOUT01").unwrap();
        assert_eq!(&*k.app, "checkout");
        assert_eq!(k.credentials.secret_access_key(), "checkout-secret");
        assert_eq!(k.credentials.session_token(), None);
        let s = keys.sigv4("AKIDSEARCH01").unwrap();
        assert_eq!(s.credentials.session_token(), Some("search-token"));
        let bearer = keys.bearer("bedrock-api-key-0123456789").unwrap();
        assert_eq!(
            (&*bearer.app, bearer.region.as_deref()),
            ("batch", Some("eu-west-1"))
        );
        assert_eq!(keys.bearer_apps_without_region(), Vec::<&str>::new());
        assert!(keys.bearer("bedrock-api-key-012345678").is_none());
        assert!(keys.sigv4("AKIDNOPE").is_none());
    }

    #[test]
    fn errors_have_lines_and_no_secrets() {
        let text = r#"[[key]]
access_key_id = "AKID1"
secret_access_key = "s1"
app = "bad app"

[[key]]
access_key_id = "AKID2"
app = "two"

[[key]]
bearer_token = "short-secret"
app = "three"

[[key]]
access_key_id = "AKID1"
secret_access_key = "s1"
app = "four"

[[key]]
access_key_id = "AKID5"
secret_access_key = "s5"
app = "five"

[[key]]
access_key_id = "AKID5"
secret_access_key = "s5"
app = "six"
"#;
        let errors = Keys::parse(text, "k.toml").unwrap_err();
        assert_eq!(
            errors.to_string(),
            [
                r#"k.toml:4: app "bad app" must match [A-Za-z0-9._-]{1,64}"#,
                "k.toml:6: access_key_id and secret_access_key go together",
                "k.toml:11: bearer_token is shorter than 16 characters",
                r#"k.toml:25: access_key_id "AKID5" appears twice"#,
            ]
            .join("\n")
        );
        for e in &errors.0 {
            assert!(!e.to_string().contains("short-secret"), "{e}");
        }
    }

    #[test]
    fn syntax_errors_do_not_echo_the_line() {
        let text = "[[key]]\nsecret_access_key = \"hunter2hunter2\napp = \"x\"\n";
        let errors = Keys::parse(text, "k.toml").unwrap_err();
        assert_eq!(
            errors.to_string(),
            "k.toml:2: not a valid keys file: invalid basic string, expected `\"`"
        );
        assert!(!errors.to_string().contains("hunter2"), "{errors}");
        let unknown = "[[key]]\nsecret = \"x\"\napp = \"a\"\n";
        assert_eq!(
            Keys::parse(unknown, "k.toml").unwrap_err().to_string(),
            "k.toml:2: not a valid keys file: unknown field `secret`, expected one of `app`, \
             `access_key_id`, `secret_access_key`, `session_token`, `bearer_token`, `region`"
        );
    }

    #[test]
    fn mixed_or_incomplete_entries_are_refused() {
        // Each refusal names the file, the line to fix and what is wrong with it: the message
        // is what the operator sees.
        for (text, message) in [
            (
                "[[key]]\napp = \"a\"\n",
                "k.toml:1: a key needs access_key_id and secret_access_key, or bearer_token",
            ),
            (
                "[[key]]\napp = \"a\"\naccess_key_id = \"AKID\"\n",
                "k.toml:1: access_key_id and secret_access_key go together",
            ),
            (
                "[[key]]\napp = \"a\"\naccess_key_id = \"AKID\"\nsecret_access_key = \"s\"\nbearer_token = \"0123456789abcdef\"\n",
                "k.toml:1: a key gives either bearer_token or access_key_id/secret_access_key, not both",
            ),
            (
                "[[key]]\napp = \"a\"\nbearer_token = \"0123456789abcdef\"\nsession_token = \"t\"\n",
                "k.toml:4: session_token goes with access_key_id, not bearer_token",
            ),
            (
                "[[key]]\napp = \"a\"\naccess_key_id = \"AK/ID\"\nsecret_access_key = \"s\"\n",
                r#"k.toml:3: access_key_id "AK/ID" must be 1 to 128 letters and digits"#,
            ),
            (
                "[[key]]\napp = \"a\"\naccess_key_id = \"AKID\"\nsecret_access_key = \"s\"\nregion = \"us-east-1\"\n",
                "k.toml:5: region goes with bearer_token (a SigV4 signature names its own)",
            ),
            (
                "[[key]]\napp = \"a\"\nbearer_token = \"0123456789abcdef\"\nregion = \"Mars\"\n",
                r#"k.toml:4: region "Mars" is not an AWS Region id"#,
            ),
        ] {
            let errors = Keys::parse(text, "k.toml").unwrap_err();
            assert_eq!(errors.to_string(), message, "{text}");
        }
        let empty = Keys::parse("", "k.toml").unwrap();
        assert!(empty.keys.is_empty());
        assert_eq!(
            empty.warnings,
            vec![KeysError {
                file: "k.toml".into(),
                line: 0,
                message: "no [[key]] entries: every request will be refused".into(),
            }]
        );
    }
}
