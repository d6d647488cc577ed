//! Server: builds the shared state from a validated configuration, binds the proxy and admin
//! listeners and runs them until shut down. Tests start it in-process on port 0.

pub mod admin;
pub mod listener;
pub mod reload;
pub mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::request::FingerprintKey;
use crate::aws::credentials::CredentialCache;
use crate::aws::sessions::Sessions;
use crate::meter::Meter;
use crate::meter::labels::LabelGuard;
use crate::meter::ledger::{self, Ledger};
use crate::metrics::{ConfigFile, Metrics};
use crate::pricing::RateCard;
use crate::proxy::budget::ByteBudget;
use crate::proxy::forward::upstream;
use crate::proxy::identify::{KeyStore, Keys};
use crate::proxy::limits::Limiter;
use crate::proxy::limits::file::LimitsFile;
use crate::proxy::{self, State};
use admin::Admin;
use reload::Watched;

pub use crate::config::{DEFAULT_MAX_BODY, DEFAULT_MAX_IN_FLIGHT, MAX_IN_FLIGHT, ProxyConfig};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("metrics set-up failed: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot open the ledger: {0}")]
    Ledger(std::io::Error),
    #[error("TLS set-up failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{0}")]
    Invalid(String),
}

/// The AWS default credential chain (environment, profile, web identity, SSO, container,
/// instance metadata), as the AWS SDKs load it.
async fn default_credentials(
    region: Option<&str>,
) -> Result<SharedCredentialsProvider, StartError> {
    // The loader's region only steers credential providers (STS for web identity, SSO); an
    // explicit one also keeps it from probing the instance metadata service at start-up.
    let sdk_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(
            region.unwrap_or("us-east-1").to_owned(),
        ))
        .load()
        .await;
    sdk_config
        .credentials_provider()
        .ok_or_else(|| StartError::Invalid("no AWS credential provider could be configured".into()))
}

/// A running proxy. Dropping it does not stop it; call [`Running::shutdown`].
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Whether each listener speaks TLS, for the URLs.
    tls: bool,
    admin_tls: bool,
    pub state: Arc<State>,
    admin: Arc<Admin>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn admin_url(&self) -> String {
        let scheme = if self.admin_tls { "https" } else { "http" };
        format!("{scheme}://{}", self.admin_addr)
    }

    /// Stops accepting, lets open connections finish (bounded), writes out the ledger, and
    /// returns when done.
    pub async fn shutdown(self) {
        self.shutdown_after(Duration::ZERO).await;
    }

    /// Graceful shutdown for load balancers: `/readyz` answers 503 at once while both
    /// listeners keep serving for `delay` (so the balancer stops sending new requests), then
    /// they stop accepting, open requests and streams get the drain deadline to finish, every
    /// request is recorded, and the ledger is written out.
    pub async fn shutdown_after(self, delay: Duration) {
        self.admin.ready.store(false, Ordering::Relaxed);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        // Responses closed at the deadline record themselves as they drop; wait for that
        // (bounded by the grace an abandoned response is read for).
        let deadline =
            tokio::time::Instant::now() + self.state.abandoned_grace + Duration::from_secs(1);
        while self.state.meter.metrics.in_flight_total() > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(limits) = &self.state.limits {
            limits.flush(Duration::from_secs(2)).await;
        }
        self.state.flush_ledger().await;
    }
}

pub async fn start(config: ProxyConfig) -> Result<Running, StartError> {
    // The command line bounds these already; a caller building the config in code gets the
    // same refusal rather than a panic.
    if config.max_in_flight > MAX_IN_FLIGHT {
        return Err(StartError::Invalid(format!(
            "max_in_flight must be at most {MAX_IN_FLIGHT}"
        )));
    }
    if !(1..=ledger::MAX_QUEUE).contains(&config.ledger_queue) {
        return Err(StartError::Invalid(format!(
            "ledger_queue must be between 1 and {}",
            ledger::MAX_QUEUE
        )));
    }
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    };
    let proxy_listener = bind(config.listen).await?;
    let admin_listener = bind(config.admin_listen).await?;
    let local = |l: &TcpListener, addr| {
        l.local_addr()
            .map_err(|source| StartError::Bind { addr, source })
    };
    let addr = local(&proxy_listener, config.listen)?;
    let admin_addr = local(&admin_listener, config.admin_listen)?;

    let metrics = Metrics::new()?;
    metrics.set_rate_card(&config.rates.version);
    let ledger = match config.ledger {
        Some(target) => Some(
            Ledger::open(target, config.ledger_queue, metrics.ledger_dropped())
                .map_err(StartError::Ledger)?,
        ),
        None => None,
    };
    let meter = Arc::new(Meter {
        metrics,
        labels: LabelGuard::new(config.max_apps, config.max_models),
        ledger,
        prefixes: Default::default(),
    });
    let stop = CancellationToken::new();
    let provider = match config.credentials {
        Some(p) => p,
        None => default_credentials(config.region.as_deref()).await?,
    };
    let sessions = config
        .assume_role
        .as_ref()
        .map(|role| Sessions::new(role, provider.clone()));
    let credentials = CredentialCache::new(provider);
    credentials.spawn_refresher(stop.clone());
    let keys = config.keys.map(|k| {
        meter.metrics.set_keys_loaded(k.len());
        Arc::new(KeyStore::new(k))
    });
    let buffers = ByteBudget::new(config.max_buffered, meter.metrics.buffered_bytes());
    let limits_path = config.limits.as_ref().and_then(|l| l.path.clone());
    let limits = match config.limits {
        None => None,
        Some(l) => {
            let metrics = meter.metrics.limits.clone();
            tracing::info!("limits: {}", l.file.summary());
            Some(match l.redis {
                None => Limiter::local(l.file, l.fail_closed, metrics),
                Some(redis) => Limiter::redis(l.file, redis, l.fail_closed, metrics)
                    .map_err(StartError::Invalid)?,
            })
        }
    };
    let state = Arc::new(State {
        meter,
        rates: ArcSwap::from_pointee(config.rates),
        credentials,
        keys,
        client: upstream::client(config.connect_timeout, config.upstream_http2)?,
        duplex: upstream::duplex_client(config.connect_timeout)?,
        upstream: config.upstream,
        region: config.region,
        max_body: config.max_body,
        buffers,
        upstream_timeout: config.upstream_timeout,
        cost_header: config.cost_header,
        in_flight: (config.max_in_flight > 0)
            .then(|| Arc::new(tokio::sync::Semaphore::new(config.max_in_flight))),
        max_in_flight: config.max_in_flight,
        upstream_idle_timeout: config.upstream_idle_timeout,
        client_body_timeout: config.client_body_timeout,
        abandoned_grace: config.abandoned_grace,
        metadata_key: config.metadata_key.map(String::into_boxed_str),
        sessions,
        limits,
        fingerprint_key: config.request_facts.then(|| {
            config
                .fingerprint_key
                .as_deref()
                .map_or_else(FingerprintKey::random, FingerprintKey::from_secret)
        }),
    });
    let admin = Arc::new(Admin {
        state: state.clone(),
        ready: AtomicBool::new(true),
    });

    let limits = listener::Limits {
        header_timeout: config.client_header_timeout,
        drain: config.drain_timeout,
    };
    let mut tasks = Vec::new();
    let proxy_tls = tls_listener(
        &state,
        "proxy",
        config.tls,
        config.reload_interval,
        &stop,
        &mut tasks,
    )?;
    let admin_tls = tls_listener(
        &state,
        "admin",
        config.admin_tls,
        config.reload_interval,
        &stop,
        &mut tasks,
    )?;
    let (tls, admin_tls_on) = (proxy_tls.is_some(), admin_tls.is_some());
    let proxy_state = state.clone();
    tasks.push(tokio::spawn(listener::serve(
        proxy_listener,
        proxy_tls,
        move |req, _peer| {
            let state = proxy_state.clone();
            async move { Ok(proxy::handle(state, req).await) }
        },
        stop.clone(),
        limits,
    )));
    let admin_handle = admin.clone();
    tasks.push(tokio::spawn(listener::serve(
        admin_listener,
        admin_tls,
        move |req, _peer| {
            let admin = admin_handle.clone();
            async move { Ok(admin::handle(admin, req).await) }
        },
        stop.clone(),
        limits,
    )));
    if state.meter.ledger.is_some() {
        tasks.push(reopen_ledger_on_hangup(&state, &stop));
    }
    if let Some(path) = config.rates_path {
        tasks.push(reload::watch_file::<RatesFile>(
            state.clone(),
            path,
            config.reload_interval,
            stop.clone(),
        ));
    }
    if let (Some(path), Some(_)) = (config.keys_path, &state.keys) {
        tasks.push(reload::watch_file::<KeysFile>(
            state.clone(),
            path,
            config.reload_interval,
            stop.clone(),
        ));
    }
    if let (Some(path), Some(_)) = (limits_path, &state.limits) {
        tasks.push(reload::watch_file::<LimitsWatched>(
            state.clone(),
            path,
            config.reload_interval,
            stop.clone(),
        ));
    }
    tracing::info!(
        %addr,
        %admin_addr,
        mode = if state.keys.is_some() { "keys" } else { "open" },
        tls,
        admin_tls = admin_tls_on,
        "bedrock-meter listening"
    );
    Ok(Running {
        addr,
        admin_addr,
        tls,
        admin_tls: admin_tls_on,
        state,
        admin,
        stop,
        tasks,
    })
}

/// Loads a listener's TLS files (a pair that does not load stops start-up) and watches them:
/// a rotated pair is used for new connections, a bad one is refused and counted.
fn tls_listener(
    state: &Arc<State>,
    listener: &'static str,
    files: Option<tls::TlsFiles>,
    interval: Duration,
    stop: &CancellationToken,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<Option<Arc<tls::Tls>>, StartError> {
    let Some(files) = files else {
        return Ok(None);
    };
    let counters = state.meter.metrics.tls_counters(listener);
    let loaded = tls::Tls::load(files, counters)
        .map_err(|e| StartError::Invalid(format!("TLS for the {listener} listener: {e}")))?;
    let loaded = Arc::new(loaded);
    let watched = loaded.clone();
    tasks.push(reload::watch_all(
        loaded.files.paths(),
        interval,
        stop.clone(),
        move || match watched.reload() {
            Ok(()) => tracing::info!(listener, "TLS certificate and key reloaded"),
            Err(e) => tracing::warn!(
                listener,
                "TLS certificate and key not reloaded, the pair in use stays: {e}"
            ),
        },
    ));
    Ok(Some(loaded))
}

/// logrotate moves the ledger away and sends SIGHUP; the next line goes to a new file.
fn reopen_ledger_on_hangup(
    state: &Arc<State>,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    let stop = stop.clone();
    tokio::spawn(async move {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                Some(()) = hangup.recv() => {
                    if let Some(ledger) = &state.meter.ledger {
                        ledger.reopen();
                    }
                }
            }
        }
    })
}

/// The rate card, reloaded when its file changes.
struct RatesFile;

impl Watched for RatesFile {
    type Value = RateCard;
    const NAME: &'static str = "rate card";
    const FILE: ConfigFile = ConfigFile::RateCard;

    fn load(path: &Path) -> Result<(RateCard, Vec<String>), Vec<String>> {
        match RateCard::load(path) {
            Ok(l) => Ok((l.card, l.warnings.iter().map(ToString::to_string).collect())),
            Err(e) => Err(e.0.iter().map(ToString::to_string).collect()),
        }
    }

    fn install(state: &State, card: RateCard) -> String {
        let version = card.version.clone();
        state.meter.metrics.set_rate_card(&version);
        state.rates.store(Arc::new(card));
        format!("version {version}")
    }
}

/// The keys file, reloaded when it changes.
struct KeysFile;

impl Watched for KeysFile {
    type Value = Keys;
    const NAME: &'static str = "keys";
    const FILE: ConfigFile = ConfigFile::Keys;

    fn load(path: &Path) -> Result<(Keys, Vec<String>), Vec<String>> {
        match Keys::load(path) {
            Ok(l) => Ok((l.keys, l.warnings.iter().map(ToString::to_string).collect())),
            Err(e) => Err(e.0.iter().map(ToString::to_string).collect()),
        }
    }

    fn install(state: &State, keys: Keys) -> String {
        let n = keys.len();
        if let Some(store) = &state.keys {
            store.replace(keys);
        }
        state.meter.metrics.set_keys_loaded(n);
        format!("{n} keys")
    }
}

/// The limits file, reloaded when it changes.
struct LimitsWatched;

impl Watched for LimitsWatched {
    type Value = LimitsFile;
    const NAME: &'static str = "limits";
    const FILE: ConfigFile = ConfigFile::Limits;

    fn load(path: &Path) -> Result<(LimitsFile, Vec<String>), Vec<String>> {
        LimitsFile::load(path)
            .map(|file| (file, Vec::new()))
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    fn install(state: &State, file: LimitsFile) -> String {
        let summary = file.summary();
        if let Some(limits) = &state.limits {
            limits.file.store(Arc::new(file));
        }
        summary
    }
}
