//! Per-app AWS sessions (`--assume-role`): each app's calls are signed with credentials of its
//! own STS session of one role, so AWS's own attribution — IAM principal cost allocation in
//! CUR 2.0, `identity.arn` in model invocation logs, CloudTrail — sees the app, not the meter.
//!
//! A session is `AssumeRole` with `RoleSessionName` = the app and the session tags `app` = the
//! app plus the app's tags from the keys file. Sessions are cached per app (apps are bounded
//! labels, so sessions are bounded by `--max-apps`), renewed in the background five minutes
//! before they expire, and fetched at most once at a time per app. Attribution must never stop
//! traffic: while an app has no usable session (STS refuses or is unreachable), its calls go out
//! under the meter's own identity and the caller counts them; STS is asked again after a
//! backoff that doubles from one second to five minutes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::config::{BehaviorVersion, Region};
use aws_sdk_sts::types::Tag;
use dashmap::DashMap;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::aws::error::error_chain;

/// Renew this long before expiry, in the background, while the current session still signs.
const RENEW_AHEAD: Duration = Duration::from_secs(300);
/// A session this close to expiry is not used.
const MIN_VALIDITY: Duration = Duration::from_secs(15);
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// Longest wait for STS: the first call of an app waits for its session.
const STS_TIMEOUT: Duration = Duration::from_secs(5);

/// `--assume-role` and what goes with it.
#[derive(Clone, Debug)]
pub struct AssumeRole {
    pub role_arn: String,
    /// Lifetime asked for each session (`DurationSeconds`).
    pub duration: Duration,
    /// The STS endpoint; `None`: the Region's.
    pub endpoint: Option<String>,
    /// The Region whose STS endpoint is used.
    pub region: String,
}

/// Every app's session.
pub struct Sessions {
    client: aws_sdk_sts::Client,
    role_arn: String,
    duration_seconds: i32,
    by_app: DashMap<Arc<str>, Arc<Session>>,
}

#[derive(Default)]
struct Session {
    current: ArcSwapOption<Credentials>,
    /// Held while STS is asked, so one fetch runs per app; says when the next may run.
    fetch: Mutex<Backoff>,
}

#[derive(Default)]
struct Backoff {
    /// No fetch before this (after a failure).
    not_before: Option<Instant>,
    /// The wait after the next failure.
    next_wait: Duration,
}

/// Why an app's call goes out under the meter's own identity.
#[derive(Debug, thiserror::Error)]
pub enum NoSession {
    #[error("AssumeRole failed: {0}")]
    Failed(String),
    #[error("AssumeRole failed recently; next try in {0:?}")]
    BackingOff(Duration),
}

impl Sessions {
    /// `provider`: the meter's own credentials, which call STS.
    pub fn new(config: &AssumeRole, provider: SharedCredentialsProvider) -> Arc<Sessions> {
        let mut sts = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(provider)
            .timeout_config(
                aws_sdk_sts::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(STS_TIMEOUT)
                    .build(),
            );
        if let Some(url) = &config.endpoint {
            sts = sts.endpoint_url(url);
        }
        Arc::new(Sessions {
            client: aws_sdk_sts::Client::from_conf(sts.build()),
            role_arn: config.role_arn.clone(),
            duration_seconds: i32::try_from(config.duration.as_secs()).unwrap_or(3600),
            by_app: DashMap::new(),
        })
    }

    /// The credentials to sign `app`'s call with. `tags` gives the app's session tags besides
    /// `app`; it is called only when STS is asked.
    pub async fn get(
        self: &Arc<Self>,
        app: &Arc<str>,
        tags: impl FnOnce() -> Vec<(String, String)>,
    ) -> Result<Arc<Credentials>, NoSession> {
        let session = match self.by_app.get(app) {
            Some(s) => s.clone(),
            None => self.by_app.entry(app.clone()).or_default().clone(),
        };
        if let Some(c) = session.current.load_full() {
            match remaining(&c) {
                left if left > RENEW_AHEAD => return Ok(c),
                left if left > MIN_VALIDITY => {
                    self.renew_in_background(app.clone(), session.clone(), tags());
                    return Ok(c);
                }
                _ => {}
            }
        }
        let mut backoff = session.fetch.lock().await;
        if let Some(c) = session.current.load_full()
            && remaining(&c) > MIN_VALIDITY
        {
            return Ok(c);
        }
        self.fetch(app, &session, &mut backoff, tags()).await
    }

    /// Renews a session that is still valid, unless a fetch is already under way.
    fn renew_in_background(
        self: &Arc<Self>,
        app: Arc<str>,
        session: Arc<Session>,
        tags: Vec<(String, String)>,
    ) {
        let sessions = self.clone();
        tokio::spawn(async move {
            let Ok(mut backoff) = session.fetch.try_lock() else {
                return;
            };
            if session
                .current
                .load_full()
                .is_some_and(|c| remaining(&c) > RENEW_AHEAD)
            {
                return;
            }
            if let Err(e) = sessions.fetch(&app, &session, &mut backoff, tags).await {
                tracing::debug!(app = %app, error = %e, "session renewal did not happen");
            }
        });
    }

    /// Asks STS for a session, unless a recent failure says to wait.
    async fn fetch(
        &self,
        app: &str,
        session: &Session,
        backoff: &mut Backoff,
        tags: Vec<(String, String)>,
    ) -> Result<Arc<Credentials>, NoSession> {
        let now = Instant::now();
        if let Some(at) = backoff.not_before
            && at > now
        {
            return Err(NoSession::BackingOff(at - now));
        }
        match self.assume(app, tags).await {
            Ok(c) => {
                *backoff = Backoff::default();
                let c = Arc::new(c);
                session.current.store(Some(c.clone()));
                Ok(c)
            }
            Err(e) => {
                let wait = backoff.next_wait.max(RETRY_MIN);
                backoff.not_before = Some(now + wait);
                backoff.next_wait = (wait * 2).min(RETRY_MAX);
                tracing::warn!(app, error = %e, retry_in = ?wait, "AssumeRole failed; the app's calls are signed with the meter's own identity meanwhile");
                Err(NoSession::Failed(e))
            }
        }
    }

    async fn assume(&self, app: &str, tags: Vec<(String, String)>) -> Result<Credentials, String> {
        let mut request = self
            .client
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(session_name(app))
            .duration_seconds(self.duration_seconds)
            .tags(tag("app", app)?);
        for (key, value) in &tags {
            request = request.tags(tag(key, value)?);
        }
        let answer = request.send().await.map_err(|e| error_chain(&e))?;
        let c = answer
            .credentials
            .ok_or_else(|| "STS answered without credentials".to_owned())?;
        let expiry = SystemTime::try_from(c.expiration).map_err(|e| e.to_string())?;
        Ok(Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            Some(expiry),
            "AssumeRole",
        ))
    }

    /// Sessions held (one per app that has called).
    pub fn len(&self) -> usize {
        self.by_app.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_app.is_empty()
    }
}

fn tag(key: &str, value: &str) -> Result<Tag, String> {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| e.to_string())
}

/// `RoleSessionName`: the app (its characters are all allowed there), padded to STS's minimum
/// of two characters.
pub fn session_name(app: &str) -> String {
    if app.len() < 2 {
        format!("{app}_")
    } else {
        app.to_owned()
    }
}

/// Time left before expiry; credentials without one never expire.
fn remaining(c: &Credentials) -> Duration {
    c.expiry().map_or(Duration::MAX, |at| {
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_meet_the_minimum() {
        assert_eq!(session_name("a"), "a_");
        assert_eq!(session_name("checkout"), "checkout");
    }
}
