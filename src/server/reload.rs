//! Reload: re-reads a configuration file (rate card, keys) on SIGHUP and whenever its contents
//! change, and hands it to a loader that validates before swapping anything in. Each kind of
//! file says how it loads and where a valid one goes ([`Watched`]); [`watch_file`] does the
//! rest the same way for all of them: warnings and refusals logged, a broken file refused whole
//! with the previous one kept, and `bedrock_config_reloads_total` counted.
//!
//! Change is detected by polling the contents rather than with file-system events: it works the
//! same on every file system, through the symlink swaps Kubernetes uses for mounted ConfigMaps,
//! and after an editor replaces the file. The files are small, so a read every few seconds is
//! nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::metrics::ConfigFile;
use crate::proxy::State;

/// How often a watched file is compared with what was last loaded.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// A configuration file the proxy reloads while it runs.
pub trait Watched: 'static {
    /// What a valid file loads into.
    type Value;
    /// The file's name in log lines (`rate card`, `keys`).
    const NAME: &'static str;
    /// Its `file` label in the reload metrics.
    const FILE: ConfigFile;
    /// Reads and validates the whole file: the value and its warnings, or every error found.
    fn load(path: &Path) -> Result<(Self::Value, Vec<String>), Vec<String>>;
    /// Swaps a valid value into the proxy's state (requests in flight keep the one they started
    /// with) and says what was loaded, for the log line.
    fn install(state: &State, value: Self::Value) -> String;
}

/// Watches `path` (see [`watch`]) and installs each valid version of it into the proxy's
/// state; a file that fails validation is refused whole and the previous version stays.
pub fn watch_file<W: Watched>(
    state: Arc<State>,
    path: PathBuf,
    interval: Duration,
    stop: CancellationToken,
) -> JoinHandle<()> {
    state.meter.metrics.watch_file(W::FILE);
    watch(path, interval, stop, move |path| match W::load(path) {
        Ok((value, warnings)) => {
            for w in &warnings {
                tracing::warn!("{}: {w}", W::NAME);
            }
            let loaded = W::install(&state, value);
            state.meter.metrics.reloaded(W::FILE, true);
            tracing::info!("{} reloaded: {loaded}", W::NAME);
        }
        Err(errors) => {
            for e in &errors {
                tracing::warn!("{} not reloaded, the previous version stays: {e}", W::NAME);
            }
            state.meter.metrics.reloaded(W::FILE, false);
        }
    })
}

/// Calls `reload` with `path` on every SIGHUP and whenever the file's contents differ from the
/// last contents seen. A file that cannot be read is left to the loader only on SIGHUP (a
/// rename in progress must not trigger a failed reload every tick).
pub fn watch<F>(
    path: PathBuf,
    interval: Duration,
    stop: CancellationToken,
    mut reload: F,
) -> JoinHandle<()>
where
    F: FnMut(&Path) + Send + 'static,
{
    let arg = path.clone();
    watch_all(vec![path], interval, stop, move || reload(&arg))
}

/// [`watch`] for a set of files loaded together (a certificate and its key): `reload` runs on
/// SIGHUP and whenever any of them changed and all of them can be read. Rotating a pair file by
/// file may load a mismatched pair in between; the loader refuses it and the next change, the
/// second file, loads the new pair.
pub fn watch_all<F>(
    paths: Vec<PathBuf>,
    interval: Duration,
    stop: CancellationToken,
    mut reload: F,
) -> JoinHandle<()>
where
    F: FnMut() + Send + 'static,
    // Runs on the blocking pool (see below).
{
    // The contents to compare with are taken now, not when the task first runs: a change made
    // right after start-up must count as a change.
    let mut last: Vec<Option<Vec<u8>>> = paths.iter().map(|p| std::fs::read(p).ok()).collect();
    tokio::spawn(async move {
        // Without a signal handler (an unusual sandbox), change polling still works.
        let mut hangup = signal(SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        let shown = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        loop {
            let forced = tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => false,
                Some(()) = next_hangup(&mut hangup) => true,
            };
            let mut now = Vec::with_capacity(paths.len());
            for path in &paths {
                now.push(tokio::fs::read(path).await.ok());
            }
            let readable = now.iter().all(Option::is_some);
            let changed = readable && now != last;
            if forced || changed {
                // Loading parses and validates whole files (and may read them from a slow
                // mount): the blocking pool's work, not a runtime worker's, which serves
                // requests meanwhile.
                match tokio::task::spawn_blocking(move || {
                    reload();
                    reload
                })
                .await
                {
                    Ok(r) => reload = r,
                    Err(e) => {
                        tracing::error!(file = %shown, "reloading stopped: the loader failed: {e}");
                        return;
                    }
                }
                if readable {
                    last = now;
                }
            }
        }
    })
}

async fn next_hangup(hangup: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hangup {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const TICK: Duration = Duration::from_millis(20);

    // Paused time: a sleep in the test lets the watcher run every tick that falls within it,
    // each one finished (blocking reads and loads included) before the clock moves on.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn reloads_on_change_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, "a").unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let s = seen.clone();
        let task = watch(path.clone(), TICK, stop.clone(), move |p| {
            s.lock().unwrap().push(std::fs::read_to_string(p).unwrap());
        });
        tokio::time::sleep(TICK * 10).await;
        assert!(seen.lock().unwrap().is_empty());
        // Replaced atomically, as editors and ConfigMap updates do.
        std::fs::write(dir.path().join("tmp"), "b").unwrap();
        std::fs::rename(dir.path().join("tmp"), &path).unwrap();
        tokio::time::sleep(TICK * 10).await;
        assert_eq!(*seen.lock().unwrap(), vec!["b".to_string()]);
        stop.cancel();
        task.await.unwrap();
    }

    /// The loader runs on the blocking pool: on a one-thread runtime, a loader that blocks
    /// until the runtime's other task releases it would otherwise wait in vain.
    #[tokio::test(flavor = "current_thread")]
    async fn the_loader_does_not_block_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, "a").unwrap();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(None));
        let r = released.clone();
        let mut started_tx = Some(started_tx);
        let stop = CancellationToken::new();
        let task = watch(path.clone(), TICK, stop.clone(), move |_| {
            if let Some(tx) = started_tx.take() {
                let _ = tx.send(());
                let got = release_rx.recv_timeout(Duration::from_secs(5)).is_ok();
                *r.lock().unwrap() = Some(got);
            }
        });
        std::fs::write(&path, "b").unwrap();
        started_rx.await.unwrap();
        release_tx.send(()).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while released.lock().unwrap().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the loader never ended"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            *released.lock().unwrap(),
            Some(true),
            "the loader blocked the runtime: the test could not release it"
        );
        stop.cancel();
        task.await.unwrap();
    }
}
