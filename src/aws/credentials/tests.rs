//! Tests of `credentials`.

use super::*;
use aws_credential_types::provider::future::ProvideCredentials as ProvideFuture;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug)]
struct Counting {
    calls: Arc<AtomicU32>,
    lifetime: Duration,
}

impl ProvideCredentials for Counting {
    fn provide_credentials<'a>(&'a self) -> ProvideFuture<'a>
    where
        Self: 'a,
    {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        ProvideFuture::ready(Ok(Credentials::new(
            format!("AKID{n}"),
            "secret",
            None,
            Some(SystemTime::now() + self.lifetime),
            "test",
        )))
    }
}

#[tokio::test]
async fn caches_until_close_to_expiry() {
    let calls = Arc::new(AtomicU32::new(0));
    let cache = CredentialCache::new(SharedCredentialsProvider::new(Counting {
        calls: calls.clone(),
        lifetime: Duration::from_secs(3600),
    }));
    for _ in 0..5 {
        assert_eq!(cache.get().await.unwrap().access_key_id(), "AKID0");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Credentials that expire within MIN_VALIDITY are fetched again on use.
    let calls = Arc::new(AtomicU32::new(0));
    let cache = CredentialCache::new(SharedCredentialsProvider::new(Counting {
        calls: calls.clone(),
        lifetime: Duration::from_secs(5),
    }));
    cache.get().await.unwrap();
    assert_eq!(cache.get().await.unwrap().access_key_id(), "AKID1");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn refresher_renews_ahead_of_expiry_at_most_once_per_floor() {
    let calls = Arc::new(AtomicU32::new(0));
    let cache = CredentialCache::new(SharedCredentialsProvider::new(Counting {
        calls: calls.clone(),
        // Inside REFRESH_AHEAD however often they are fetched, as IMDS hands them out
        // near rotation. (Expiry is wall-clock time, which paused tokio time leaves alone.)
        lifetime: Duration::from_secs(200),
    }));
    cache.get().await.unwrap();
    let stop = CancellationToken::new();
    cache.spawn_refresher(stop.clone());
    let settle = || async {
        for _ in 0..1000 {
            tokio::task::yield_now().await;
        }
    };
    // The fetch `get` just made counts: no second one before the floor.
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    for expected in 2..=7 {
        tokio::time::advance(REFRESH_FLOOR).await;
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), expected);
    }
    stop.cancel();
    settle().await;
    tokio::time::advance(REFRESH_FLOOR * 10).await;
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 7);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn refresher_waits_until_refresh_ahead_for_long_lived_credentials() {
    let calls = Arc::new(AtomicU32::new(0));
    let cache = CredentialCache::new(SharedCredentialsProvider::new(Counting {
        calls: calls.clone(),
        lifetime: Duration::from_secs(3600),
    }));
    cache.get().await.unwrap();
    let stop = CancellationToken::new();
    cache.spawn_refresher(stop.clone());
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    tokio::time::advance(Duration::from_secs(3000)).await;
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    stop.cancel();
}
