//! The proxy's own AWS credentials, cached and refreshed before they expire.
//!
//! `aws-config`'s default chain (env, profile, web identity, ECS, IMDS) resolves credentials on
//! every call; SDK clients cache them in their runtime, which the proxy does not use. So the
//! proxy keeps the current credentials in an `ArcSwap` that requests read without locking, and
//! a background task refreshes them ahead of expiry.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::aws::error::error_chain;
use tokio_util::sync::CancellationToken;

/// Refresh this long before expiry, so no request signs with credentials about to lapse.
const REFRESH_AHEAD: Duration = Duration::from_secs(300);
/// Credentials this close to expiry are not used at all.
const MIN_VALIDITY: Duration = Duration::from_secs(15);
/// Fewest seconds between two fetches by the refresher. Credentials handed out close to their
/// rotation (IMDS and ECS do this in the last minutes) are already inside `REFRESH_AHEAD`;
/// without a floor the refresher would ask again at once, forever.
const REFRESH_FLOOR: Duration = Duration::from_secs(10);
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error("no AWS credentials to sign with: {0}")]
pub struct CredentialsError(String);

pub struct CredentialCache {
    provider: SharedCredentialsProvider,
    current: ArcSwapOption<Credentials>,
    /// Serialises fetches so a burst of requests at start-up triggers one, not hundreds, and
    /// holds when the last one was made. Only taken when there are no usable credentials or
    /// by the refresher; the steady-state path never locks.
    fetch: Mutex<Option<Instant>>,
}

impl CredentialCache {
    pub fn new(provider: SharedCredentialsProvider) -> Arc<Self> {
        Arc::new(CredentialCache {
            provider,
            current: ArcSwapOption::empty(),
            fetch: Mutex::new(None),
        })
    }

    /// Current credentials, fetching them first if there are none usable.
    pub async fn get(&self) -> Result<Arc<Credentials>, CredentialsError> {
        if let Some(c) = self.usable() {
            return Ok(c);
        }
        let mut last_fetch = self.fetch.lock().await;
        if let Some(c) = self.usable() {
            return Ok(c);
        }
        *last_fetch = Some(Instant::now());
        self.fetch_now().await
    }

    fn usable(&self) -> Option<Arc<Credentials>> {
        self.current
            .load_full()
            .filter(|c| remaining(c).is_none_or(|left| left > MIN_VALIDITY))
    }

    async fn fetch_now(&self) -> Result<Arc<Credentials>, CredentialsError> {
        let fresh = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| CredentialsError(error_chain(&e)))?;
        let fresh = Arc::new(fresh);
        self.current.store(Some(fresh.clone()));
        Ok(fresh)
    }

    /// Keeps the credentials fresh until `stop` fires.
    pub fn spawn_refresher(self: &Arc<Self>, stop: CancellationToken) {
        let cache = self.clone();
        tokio::spawn(async move {
            let mut backoff = RETRY_MIN;
            loop {
                let wait = match cache.current.load_full().as_deref().map(remaining) {
                    // Static credentials (no expiry) never need refreshing.
                    Some(None) => return,
                    Some(Some(left)) if left > REFRESH_AHEAD => left - REFRESH_AHEAD,
                    _ => match cache.refresh().await {
                        Refresh::Fetched => {
                            backoff = RETRY_MIN;
                            continue;
                        }
                        Refresh::TooSoon(wait) => wait,
                        Refresh::Failed(e) => {
                            tracing::warn!(error = %e, retry_in = ?backoff, "credential refresh failed");
                            let wait = backoff;
                            backoff = (backoff * 2).min(RETRY_MAX);
                            wait
                        }
                    },
                };
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => return,
                }
            }
        });
    }

    /// One fetch by the refresher, unless the last fetch (its own or a request's) was less
    /// than [`REFRESH_FLOOR`] ago.
    async fn refresh(&self) -> Refresh {
        let mut last_fetch = self.fetch.lock().await;
        if let Some(last) = *last_fetch {
            let since = last.elapsed();
            if since < REFRESH_FLOOR {
                return Refresh::TooSoon(REFRESH_FLOOR - since);
            }
        }
        *last_fetch = Some(Instant::now());
        match self.fetch_now().await {
            Ok(_) => Refresh::Fetched,
            Err(e) => Refresh::Failed(e),
        }
    }
}

enum Refresh {
    Fetched,
    TooSoon(Duration),
    Failed(CredentialsError),
}

/// Time left before expiry; `None` for credentials that do not expire.
fn remaining(c: &Credentials) -> Option<Duration> {
    let expiry = c.expiry()?;
    Some(
        expiry
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests;
