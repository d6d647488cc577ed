//! Server: builds the shared state from a validated configuration, binds the proxy and admin
//! listeners and runs them until shut down. Tests start it in-process on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Admin};
use crate::forward::credentials::CredentialCache;
use crate::forward::upstream::{self, Upstream};
use crate::labels::LabelGuard;
use crate::listener;
use crate::meter::Meter;
use crate::metrics::Metrics;
use crate::pricing::RateCard;
use crate::proxy::{self, State};

/// A validated configuration (the CLI builds it; tests build it directly).
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub region: Option<String>,
    pub upstream: Upstream,
    pub rates: RateCard,
    pub credentials: SharedCredentialsProvider,
    pub max_body: usize,
    pub max_apps: usize,
    pub max_models: usize,
    pub connect_timeout: Duration,
    pub upstream_timeout: Duration,
}

impl ProxyConfig {
    /// Defaults for everything but what a caller must choose.
    pub fn new(
        rates: RateCard,
        credentials: SharedCredentialsProvider,
        upstream: Upstream,
    ) -> Self {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            region: None,
            upstream,
            rates,
            credentials,
            max_body: DEFAULT_MAX_BODY,
            max_apps: 200,
            max_models: 200,
            connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(300),
        }
    }
}

/// Bedrock's own request size limit.
pub const DEFAULT_MAX_BODY: usize = 25 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("metrics set-up failed: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("TLS set-up failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// A running proxy. Dropping it does not stop it; call [`Running::shutdown`].
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub state: Arc<State>,
    admin: Arc<Admin>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// Stops accepting, lets open connections finish (bounded), and returns when done.
    pub async fn shutdown(self) {
        self.admin.ready.store(false, Ordering::Relaxed);
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

pub async fn start(config: ProxyConfig) -> Result<Running, StartError> {
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
    let meter = Arc::new(Meter {
        metrics,
        labels: LabelGuard::new(config.max_apps, config.max_models),
    });
    let stop = CancellationToken::new();
    let credentials = CredentialCache::new(config.credentials);
    credentials.spawn_refresher(stop.clone());
    let state = Arc::new(State {
        meter,
        rates: ArcSwap::from_pointee(config.rates),
        credentials,
        client: upstream::client(config.connect_timeout)?,
        upstream: config.upstream,
        region: config.region,
        max_body: config.max_body,
        upstream_timeout: config.upstream_timeout,
    });
    let admin = Arc::new(Admin {
        state: state.clone(),
        ready: AtomicBool::new(true),
    });

    let proxy_state = state.clone();
    let proxy_task = tokio::spawn(listener::serve(
        proxy_listener,
        move |req, _peer| proxy::handle(proxy_state.clone(), req),
        stop.clone(),
    ));
    let admin_handle = admin.clone();
    let admin_task = tokio::spawn(listener::serve(
        admin_listener,
        move |req, _peer| admin::handle(admin_handle.clone(), req),
        stop.clone(),
    ));
    tracing::info!(%addr, %admin_addr, "bedrock-meter listening");
    Ok(Running {
        addr,
        admin_addr,
        state,
        admin,
        stop,
        tasks: vec![proxy_task, admin_task],
    })
}
