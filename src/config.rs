//! Configuration in two testable steps: the command line (`cli`, clap definitions with their
//! value parsers) becomes a validated [`ProxyConfig`] here, through `TryFrom`, before anything is
//! started. Every check that needs no network runs here — the rate card and keys file are
//! loaded and validated, the upstream and Region checked, open mode refused on a non-loopback
//! address — so a wrong configuration is refused with one clear message and exit code 2.

pub mod defaults;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;

pub use defaults::{DEFAULT_MAX_BODY, DEFAULT_MAX_IN_FLIGHT, MAX_IN_FLIGHT};

use crate::aws::sessions::AssumeRole;
use crate::cli::ServeArgs;
use crate::meter::ledger;
use crate::names::valid_region;
use crate::pricing::RateCard;
use crate::proxy::forward::upstream::Upstream;
use crate::proxy::identify::Keys;
use crate::proxy::limits::RedisOptions;
use crate::proxy::limits::file::LimitsFile;
use crate::server::tls::TlsFiles;

/// A validated configuration for the proxy: `serve`'s flags turned into it by
/// [`ServeConfig::try_from`]; tests and the demo build it directly.
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// TLS on the proxy listener and on the admin listener (None: plain HTTP).
    pub tls: Option<TlsFiles>,
    pub admin_tls: Option<TlsFiles>,
    pub region: Option<String>,
    pub upstream: Upstream,
    pub rates: RateCard,
    /// The rate card's file, watched for changes (None: the card never reloads).
    pub rates_path: Option<PathBuf>,
    /// Keys mode: the virtual keys, and their file to watch.
    pub keys: Option<Keys>,
    pub keys_path: Option<PathBuf>,
    /// The usage ledger, when wanted.
    pub ledger: Option<ledger::Target>,
    pub ledger_queue: usize,
    /// The secret keying the ledger's prefix fingerprints (`None`: a random key per process).
    pub fingerprint_key: Option<String>,
    /// Read each request body for its output ceiling and stable prefix (the ledger's facts and
    /// the live prefix-reuse series).
    pub request_facts: bool,
    /// Add `x-bedrock-meter-cost-usd` to metered non-streaming responses.
    pub cost_header: bool,
    /// The request metadata key that names the app in forwarded calls (`None`: off).
    pub metadata_key: Option<String>,
    /// Per-app STS sessions (`--assume-role`).
    pub assume_role: Option<AssumeRole>,
    /// Budgets and rate limits per app (`--limits`).
    pub limits: Option<LimitsConfig>,
    /// Requests in flight at once before new ones get 429 (0: no limit).
    pub max_in_flight: usize,
    /// Longest silence from the upstream while a response body is read.
    pub upstream_idle_timeout: Duration,
    /// Longest time for a client to send its request headers (HTTP/1.1) and its body.
    pub client_header_timeout: Duration,
    pub client_body_timeout: Duration,
    /// How long a response whose client left is still read, to catch its usage.
    pub abandoned_grace: Duration,
    /// How long connections get to finish once shutdown starts.
    pub drain_timeout: Duration,
    /// How often watched files are checked for changes (SIGHUP reloads at once).
    pub reload_interval: Duration,
    /// The proxy's own AWS credentials; `None`: the AWS default chain, loaded at start-up.
    pub credentials: Option<SharedCredentialsProvider>,
    pub max_body: usize,
    /// Bytes of bodies held in memory at once, across requests (0: no limit).
    pub max_buffered: usize,
    pub max_apps: usize,
    pub max_models: usize,
    pub connect_timeout: Duration,
    /// HTTP/2 upstream for every operation (bidirectional streams always use it).
    pub upstream_http2: bool,
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
            tls: None,
            admin_tls: None,
            region: None,
            upstream,
            rates,
            rates_path: None,
            keys: None,
            keys_path: None,
            reload_interval: crate::server::reload::DEFAULT_INTERVAL,
            ledger: None,
            ledger_queue: ledger::DEFAULT_QUEUE,
            fingerprint_key: None,
            request_facts: true,
            cost_header: true,
            metadata_key: Some("app".to_owned()),
            assume_role: None,
            limits: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            upstream_idle_timeout: Duration::from_secs(60),
            client_header_timeout: Duration::from_secs(10),
            client_body_timeout: Duration::from_secs(60),
            abandoned_grace: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(30),
            credentials: Some(credentials),
            max_body: DEFAULT_MAX_BODY,
            max_buffered: crate::proxy::budget::DEFAULT_MAX_BUFFERED,
            max_apps: 200,
            max_models: 200,
            connect_timeout: Duration::from_secs(5),
            upstream_http2: false,
            upstream_timeout: Duration::from_secs(300),
        }
    }
}

/// Budgets and rate limits: the file, where its counters live, and what happens when that
/// store does not answer.
pub struct LimitsConfig {
    pub file: LimitsFile,
    /// Watched for changes (None: never reloads).
    pub path: Option<PathBuf>,
    /// Shared through Redis; `None`: counted in this process alone.
    pub redis: Option<RedisOptions>,
    /// Refuse calls while the store does not answer (else forward them unchecked).
    pub fail_closed: bool,
}

/// `serve`'s whole configuration: the proxy's, and what only the process needs.
pub struct ServeConfig {
    pub proxy: ProxyConfig,
    /// How long `/readyz` answers 503 before the listeners stop, on shutdown.
    pub shutdown_delay: Duration,
    /// What the rate card and keys file loaders warned about, to be logged at start.
    pub warnings: Vec<String>,
}

/// Why a configuration was refused: one message, for exit code 2.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl TryFrom<ServeArgs> for ServeConfig {
    type Error = ConfigError;

    fn try_from(args: ServeArgs) -> Result<Self, ConfigError> {
        let refuse = |m: String| Err(ConfigError(m));
        if !args.listen.ip().is_loopback() && !args.allow_open && args.keys.is_none() {
            return refuse(format!(
                "refusing to serve open mode on {}: anyone who can reach this address could call \
                 Bedrock with this proxy's AWS credentials. Listen on a loopback address, or pass \
                 --allow-open (BEDROCK_METER_ALLOW_OPEN=true) when a network policy already limits \
                 who can reach it, or give each app a virtual key with --keys FILE.",
                args.listen
            ));
        }
        if let Some(region) = &args.region
            && !valid_region(region)
        {
            return refuse(format!("--region {region:?} is not an AWS Region id"));
        }
        let upstream =
            Upstream::parse(args.upstream.as_deref()).map_err(|e| ConfigError(e.to_string()))?;
        let loaded = RateCard::load(&args.rates)
            .map_err(|e| ConfigError(format!("rate card rejected:\n{e}")))?;
        let mut warnings: Vec<String> = loaded
            .warnings
            .iter()
            .map(|w| format!("rate card: {w}"))
            .collect();
        let keys = match &args.keys {
            None => None,
            Some(path) => {
                let loaded = Keys::load(path)
                    .map_err(|e| ConfigError(format!("keys file rejected:\n{e}")))?;
                warnings.extend(loaded.warnings.iter().map(|w| format!("keys: {w}")));
                let homeless = loaded.keys.bearer_apps_without_region();
                if args.region.is_none() && !homeless.is_empty() {
                    return refuse(format!(
                        "bearer-token requests carry no AWS Region: give the keys of {} a \
                         `region`, or start bedrock-meter with --region",
                        homeless.join(", ")
                    ));
                }
                if loaded.keys.has_certificate_keys() && args.tls_client_ca.is_none() {
                    warnings.push(
                        "keys: client_cert keys need --tls-client-ca (mutual TLS); without it \
                         no client presents a certificate and those keys prove nothing"
                            .into(),
                    );
                }
                Some(loaded.keys)
            }
        };
        let limits = match &args.limits {
            None => {
                if args.redis.is_some() || args.limits_fail_closed {
                    return Err(ConfigError(
                        "--redis and --limits-fail-closed go with --limits FILE".into(),
                    ));
                }
                None
            }
            Some(path) => {
                let file = LimitsFile::load(path)
                    .map_err(|e| ConfigError(format!("limits file rejected:\n{e}")))?;
                if let Some(url) = &args.redis
                    && let Err(e) = redis::Client::open(url.as_str())
                {
                    return Err(ConfigError(format!("--redis is not a Redis URL: {e}")));
                }
                Some(LimitsConfig {
                    file,
                    path: Some(path.clone()),
                    redis: args.redis.clone().map(|url| RedisOptions {
                        url,
                        timeout: args.redis_timeout,
                    }),
                    fail_closed: args.limits_fail_closed,
                })
            }
        };
        let tls = |cert: Option<PathBuf>, key: Option<PathBuf>, client_ca: Option<PathBuf>| {
            Some(TlsFiles {
                cert: cert?,
                key: key?,
                client_ca,
            })
        };
        // STS sessions work in every Region; the endpoint is the Region's when there is one.
        let sts_region = args
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_owned());
        let proxy = ProxyConfig {
            listen: args.listen,
            admin_listen: args.admin_listen,
            tls: tls(args.tls_cert, args.tls_key, args.tls_client_ca),
            admin_tls: tls(
                args.admin_tls_cert,
                args.admin_tls_key,
                args.admin_tls_client_ca,
            ),
            region: args.region,
            upstream,
            rates: loaded.card,
            rates_path: Some(args.rates),
            keys,
            keys_path: args.keys,
            ledger: args.ledger.as_deref().map(ledger::Target::parse),
            ledger_queue: args.ledger_queue,
            fingerprint_key: args.fingerprint_key,
            request_facts: args.request_facts,
            cost_header: args.cost_header,
            metadata_key: args.request_metadata.then_some(args.request_metadata_key),
            assume_role: args.assume_role.map(|role_arn| AssumeRole {
                role_arn,
                duration: Duration::from_secs(u64::from(args.assume_role_duration)),
                endpoint: args.sts_endpoint,
                region: sts_region,
            }),
            limits,
            max_in_flight: args.max_in_flight,
            upstream_idle_timeout: args.upstream_idle_timeout,
            client_header_timeout: args.client_header_timeout,
            client_body_timeout: args.client_body_timeout,
            abandoned_grace: args.abandoned_grace,
            drain_timeout: args.drain_timeout,
            reload_interval: crate::server::reload::DEFAULT_INTERVAL,
            credentials: None,
            max_body: args.max_body,
            max_buffered: args.max_buffered_bytes,
            max_apps: args.max_apps,
            max_models: args.max_models,
            connect_timeout: args.connect_timeout,
            upstream_http2: args.upstream_http2,
            upstream_timeout: args.upstream_timeout,
        };
        Ok(ServeConfig {
            proxy,
            shutdown_delay: args.shutdown_delay,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests;
