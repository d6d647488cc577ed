//! Command line: the clap definitions and their value parsers. Every flag of `serve`, and the
//! rate card and log format flags, also reads the environment variable named beside it; the
//! other flags of the one-shot commands (`demo`, `estimate`) are flags only. `config` turns
//! `serve`'s flags into a validated configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "bedrock-meter",
    version,
    about = "Live usage-metering proxy for Amazon Bedrock"
)]
pub struct Cli {
    /// Log format on stderr. The level comes from BEDROCK_METER_LOG (default `info`; `debug`
    /// logs one line per request).
    #[arg(
        long,
        global = true,
        env = "BEDROCK_METER_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the metering proxy.
    Serve(Box<ServeArgs>),
    /// Run the built-in Bedrock Runtime simulator (no AWS account needed).
    #[cfg(feature = "simulator")]
    Simulate {
        #[arg(
            long,
            env = "BEDROCK_METER_SIMULATOR_LISTEN",
            default_value = "127.0.0.1:9000"
        )]
        listen: SocketAddr,
    },
    /// Simulator + proxy + synthetic multi-app traffic, with a live cost table.
    #[cfg(feature = "simulator")]
    Demo(DemoArgs),
    /// Totals per app and model from a usage ledger, for a time range.
    Report {
        /// The ledger file written by `serve --ledger` (`-` for stdin).
        ledger: PathBuf,
        #[command(flatten)]
        args: crate::tools::report::ReportArgs,
    },
    /// The savings advisor: per app and model, the cost levers (prompt caching, Batch, output
    /// discipline, right-sizing, retrieval, Provisioned Throughput) with their basis and
    /// dollars per month.
    Advise {
        /// The ledger file written by `serve --ledger` (`-` for stdin).
        ledger: PathBuf,
        #[command(flatten)]
        args: crate::tools::advise::AdviseArgs,
    },
    /// Pre-flight cost estimate: characters ÷ 4 input tokens, output capped by max tokens.
    Estimate(EstimateArgs),
    /// Rate card tools.
    Rates {
        #[command(subcommand)]
        command: RatesCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum RatesCommand {
    /// Validate a rate card: errors as file:line (exit 1); warnings for missing cache rates and
    /// for prices last updated more than 90 days ago.
    Check { file: PathBuf },
    /// Compare LiteLLM's model_prices_and_context_window.json (its Bedrock entries) with a rate
    /// card and print what would change; optionally write the proposed card for review.
    Import {
        /// LiteLLM's price file, downloaded.
        source: PathBuf,
        /// The card to compare with.
        #[arg(long, default_value = "rates/bedrock.toml")]
        card: PathBuf,
        /// Write the proposed card here (the current card is never modified).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address for Bedrock Runtime clients.
    #[arg(long, env = "BEDROCK_METER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address for /metrics, /healthz, /readyz and /rates.
    #[arg(
        long,
        env = "BEDROCK_METER_ADMIN_LISTEN",
        default_value = "127.0.0.1:9464"
    )]
    pub admin_listen: SocketAddr,
    /// TLS on the proxy listener: the certificate chain (PEM, leaf first). Needs --tls-key.
    /// Both files reload on change and on SIGHUP.
    #[arg(
        long,
        env = "BEDROCK_METER_TLS_CERT",
        requires = "tls_key",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "BEDROCK_METER_TLS_KEY",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS on the proxy listener: client certificates must chain to a CA in this PEM
    /// file, or the handshake fails. Needs --tls-cert.
    #[arg(
        long,
        env = "BEDROCK_METER_TLS_CLIENT_CA",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// TLS on the admin listener: its certificate chain (PEM). Needs --admin-tls-key.
    #[arg(
        long,
        env = "BEDROCK_METER_ADMIN_TLS_CERT",
        requires = "admin_tls_key",
        value_name = "FILE"
    )]
    pub admin_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --admin-tls-cert.
    #[arg(
        long,
        env = "BEDROCK_METER_ADMIN_TLS_KEY",
        requires = "admin_tls_cert",
        value_name = "FILE"
    )]
    pub admin_tls_key: Option<PathBuf>,
    /// Mutual TLS on the admin listener (for example, only Prometheus's client certificate).
    #[arg(
        long,
        env = "BEDROCK_METER_ADMIN_TLS_CLIENT_CA",
        requires = "admin_tls_cert",
        value_name = "FILE"
    )]
    pub admin_tls_client_ca: Option<PathBuf>,
    /// AWS Region used when the client's SigV4 credential scope names none.
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Upstream base URL [default: https://bedrock-runtime.{region}.amazonaws.com].
    #[arg(long, env = "BEDROCK_METER_UPSTREAM")]
    pub upstream: Option<String>,
    /// Rate card file.
    #[arg(
        long,
        env = "BEDROCK_METER_RATES",
        default_value = "rates/bedrock.toml"
    )]
    pub rates: PathBuf,
    /// Keys mode: only clients signing with a virtual key from this file are served, and each
    /// is attributed to its key's app. Reloads on SIGHUP and on change.
    #[arg(long, env = "BEDROCK_METER_KEYS")]
    pub keys: Option<PathBuf>,
    /// Budgets and rate limits per app (TOML, docs/limits.md): a call that would pass one gets
    /// 429 ThrottlingException and is not forwarded. Reloads on SIGHUP and on change.
    #[arg(long, env = "BEDROCK_METER_LIMITS", value_name = "FILE")]
    pub limits: Option<PathBuf>,
    /// Share the limits' counters between replicas through this Redis
    /// (redis://[:PASSWORD@]HOST:PORT[/DB]); without it each replica enforces them alone.
    #[arg(long, env = "BEDROCK_METER_REDIS", value_name = "URL")]
    pub redis: Option<String>,
    /// Seconds to wait for Redis before a limit check fails open (or closed).
    #[arg(long, env = "BEDROCK_METER_REDIS_TIMEOUT", default_value = "0.25", value_parser = seconds)]
    pub redis_timeout: Duration,
    /// Refuse calls (503 ServiceUnavailableException) while Redis does not answer, instead of
    /// forwarding them unchecked.
    #[arg(long, env = "BEDROCK_METER_LIMITS_FAIL_CLOSED")]
    pub limits_fail_closed: bool,
    /// Allow open mode (no client authentication) on a non-loopback address.
    #[arg(long, env = "BEDROCK_METER_ALLOW_OPEN")]
    pub allow_open: bool,
    /// Usage ledger: one JSON line per recorded request, appended to FILE (`-` for stdout).
    /// Reopened on SIGHUP, for logrotate.
    #[arg(long, env = "BEDROCK_METER_LEDGER", value_name = "FILE|-")]
    pub ledger: Option<String>,
    /// The secret that keys the ledger's prompt-prefix fingerprints: give every replica the
    /// same one so `advise` sees a prefix reused across replicas and restarts [default: a
    /// random key per process].
    #[arg(
        long,
        env = "BEDROCK_METER_FINGERPRINT_KEY",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub fingerprint_key: Option<String>,
    /// Read each request body for its output ceiling and stable prompt prefix: the ledger's
    /// `max_tokens` and `prefix`, and the live prefix-reuse series. One parse of the body that
    /// builds nothing; off saves it.
    #[arg(long, env = "BEDROCK_METER_REQUEST_FACTS", default_value_t = true, action = clap::ArgAction::Set, value_name = "true|false")]
    pub request_facts: bool,
    /// Ledger lines queued for writing before new ones are dropped (and counted).
    #[arg(long, env = "BEDROCK_METER_LEDGER_QUEUE", default_value_t = crate::meter::ledger::DEFAULT_QUEUE, value_parser = ledger_queue)]
    pub ledger_queue: usize,
    /// Add `x-bedrock-meter-cost-usd` (the call's cost in USD) to metered non-streaming
    /// responses.
    #[arg(long, env = "BEDROCK_METER_COST_HEADER", default_value_t = true, action = clap::ArgAction::Set, value_name = "true|false")]
    pub cost_header: bool,
    /// Name the app in each call's Bedrock request metadata (recorded in model invocation
    /// logs): `requestMetadata` in Converse and ConverseStream bodies, the
    /// X-Amzn-Bedrock-Request-Metadata header of InvokeModel calls; the client's own tags kept.
    #[arg(long, env = "BEDROCK_METER_REQUEST_METADATA", default_value_t = true, action = clap::ArgAction::Set, value_name = "true|false")]
    pub request_metadata: bool,
    /// The request metadata key that carries the app; a client's value for it is replaced.
    #[arg(long, env = "BEDROCK_METER_REQUEST_METADATA_KEY", default_value = "app", value_parser = metadata_key, value_name = "KEY")]
    pub request_metadata_key: String,
    /// Sign each app's calls with its own session of this IAM role (STS AssumeRole, session
    /// name = the app, session tag app = the app), so AWS's own cost and log attribution sees
    /// the app. The meter's credentials need sts:AssumeRole and sts:TagSession on it.
    #[arg(long, env = "BEDROCK_METER_ASSUME_ROLE", value_name = "ROLE_ARN", value_parser = role_arn)]
    pub assume_role: Option<String>,
    /// Lifetime asked for each app's session, in seconds (STS allows 900 up to the role's
    /// maximum session duration, at most 43200); sessions are renewed 5 minutes before expiry.
    #[arg(long, env = "BEDROCK_METER_ASSUME_ROLE_DURATION", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(900..=43200), value_name = "SECONDS")]
    pub assume_role_duration: u32,
    /// STS endpoint for --assume-role [default: the Region's, https://sts.{region}.amazonaws.com].
    #[arg(long, env = "BEDROCK_METER_STS_ENDPOINT", value_name = "URL")]
    pub sts_endpoint: Option<String>,
    /// Largest request body accepted, in bytes (Bedrock's own limit is 25 MB).
    #[arg(long, env = "BEDROCK_METER_MAX_BODY", default_value_t = crate::config::defaults::DEFAULT_MAX_BODY)]
    pub max_body: usize,
    /// Bytes of request and response bodies held in memory at once, across all requests; past
    /// it new requests get 503 ServiceUnavailableException (SDKs retry). 0: no limit.
    #[arg(long, env = "BEDROCK_METER_MAX_BUFFERED_BYTES", default_value_t = crate::proxy::budget::DEFAULT_MAX_BUFFERED)]
    pub max_buffered_bytes: usize,
    /// Distinct `app` label values before new ones fold into `other`.
    #[arg(long, env = "BEDROCK_METER_MAX_APPS", default_value_t = 200)]
    pub max_apps: usize,
    /// Distinct `model` label values before new ones fold into `other`.
    #[arg(long, env = "BEDROCK_METER_MAX_MODELS", default_value_t = 200)]
    pub max_models: usize,
    /// Requests in flight at once; past it the proxy answers 429 ThrottlingException (SDKs back
    /// off and retry) instead of queueing without bound. 0: no limit.
    #[arg(long, env = "BEDROCK_METER_MAX_IN_FLIGHT", default_value_t = crate::config::defaults::DEFAULT_MAX_IN_FLIGHT, value_parser = max_in_flight)]
    pub max_in_flight: usize,
    /// Seconds a response body may go without a byte from the upstream (between stream frames).
    #[arg(
        long,
        env = "BEDROCK_METER_UPSTREAM_IDLE_TIMEOUT",
        default_value = "60", value_parser = seconds
    )]
    pub upstream_idle_timeout: Duration,
    /// Seconds a client gets to send its request headers (HTTP/1.1).
    #[arg(
        long,
        env = "BEDROCK_METER_CLIENT_HEADER_TIMEOUT",
        default_value = "10", value_parser = seconds
    )]
    pub client_header_timeout: Duration,
    /// Seconds a client gets to send its whole request body.
    #[arg(
        long,
        env = "BEDROCK_METER_CLIENT_BODY_TIMEOUT",
        default_value = "60", value_parser = seconds
    )]
    pub client_body_timeout: Duration,
    /// Seconds a response is still read after its client left, to catch the usage Bedrock
    /// already sent (0: stop at once).
    #[arg(long, env = "BEDROCK_METER_ABANDONED_GRACE", default_value = "2", value_parser = seconds_or_zero)]
    pub abandoned_grace: Duration,
    /// On SIGTERM: seconds /readyz answers 503 while requests are still accepted, so a load
    /// balancer stops sending new ones.
    #[arg(long, env = "BEDROCK_METER_SHUTDOWN_DELAY", default_value = "0", value_parser = seconds_or_zero)]
    pub shutdown_delay: Duration,
    /// On SIGTERM: seconds open requests and streams get to finish before they are closed.
    #[arg(long, env = "BEDROCK_METER_DRAIN_TIMEOUT", default_value = "30", value_parser = seconds_or_zero)]
    pub drain_timeout: Duration,
    /// Seconds to wait for a TCP connection to the upstream.
    #[arg(long, env = "BEDROCK_METER_CONNECT_TIMEOUT", default_value = "5", value_parser = seconds)]
    pub connect_timeout: Duration,
    /// Speak HTTP/2 to the upstream for every operation (h2 by ALPN over TLS, h2 with prior
    /// knowledge over http://), not only for the bidirectional streams that need it. Off by
    /// default: HTTP/1.1 costs less CPU per call (bench/RESULTS.md).
    #[arg(long, env = "BEDROCK_METER_UPSTREAM_HTTP2", default_value_t = false, action = clap::ArgAction::Set, value_name = "true|false")]
    pub upstream_http2: bool,
    /// Seconds to wait for the upstream's response headers (non-streaming calls generate the
    /// whole answer first, so this must cover the slowest model call).
    #[arg(long, env = "BEDROCK_METER_UPSTREAM_TIMEOUT", default_value = "300", value_parser = seconds)]
    pub upstream_timeout: Duration,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_parser = seconds_or_zero)]
    pub duration: Option<Duration>,
    /// Rate card file.
    #[arg(
        long,
        env = "BEDROCK_METER_RATES",
        default_value = "rates/bedrock.toml"
    )]
    pub rates: PathBuf,
    /// Admin address of the demo's proxy (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub admin_listen: SocketAddr,
}

#[derive(Args, Debug)]
pub struct EstimateArgs {
    /// Model id as the app would call it (profile prefixes and ARNs are looked up as the proxy
    /// does).
    #[arg(long)]
    pub model: String,
    /// Characters of prompt text; estimated as one token per 4 characters, rounded up.
    #[arg(long, default_value_t = 0)]
    pub input_chars: u64,
    /// Output tokens expected (the call's maxTokens gives an upper bound) [default: 0, only the
    /// input is estimated].
    #[arg(long)]
    pub output_tokens: Option<u64>,
    /// AWS Region the call would be made in (some models are priced by Region).
    #[arg(long)]
    pub region: Option<String>,
    /// Service tier: default, priority, flex.
    #[arg(long, value_parser = parse_tier)]
    pub tier: Option<crate::pricing::Tier>,
    /// Images generated per call (image models: Nova Canvas, Titan Image, Stability).
    #[arg(long, default_value_t = 0)]
    pub images: u64,
    /// Image quality: standard or premium.
    #[arg(long, default_value = "standard", value_parser = parse_quality)]
    pub quality: crate::pricing::billing_units::Quality,
    /// Image size, WIDTHxHEIGHT [default: 1024x1024].
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,
    /// Seconds of video per call (Nova Reel).
    #[arg(long, default_value_t = 0)]
    pub video_seconds: u64,
    /// Rerank search units per call (one per query of up to 100 documents).
    #[arg(long, default_value_t = 0)]
    pub search_units: u64,
    /// Calls, to estimate a batch or a day's traffic.
    #[arg(long, default_value_t = 1)]
    pub calls: u64,
    /// Rate card file.
    #[arg(
        long,
        env = "BEDROCK_METER_RATES",
        default_value = "rates/bedrock.toml"
    )]
    pub rates: PathBuf,
}

fn parse_quality(s: &str) -> Result<crate::pricing::billing_units::Quality, String> {
    crate::pricing::billing_units::Quality::parse(s)
        .ok_or_else(|| format!("{s:?} is not an image quality (standard, premium)"))
}

/// `WIDTHxHEIGHT` as a pixel count.
fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not WIDTHxHEIGHT (e.g. 1280x720)");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u64, u64) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if w == 0 || h == 0 {
        return Err(bad());
    }
    Ok(w.saturating_mul(h))
}

fn parse_tier(s: &str) -> Result<crate::pricing::Tier, String> {
    crate::pricing::Tier::parse(s)
        .ok_or_else(|| format!("{s:?} is not a service tier (default, priority, flex, reserved)"))
}

/// The longest duration any flag takes: a year. Deadlines are computed as now + duration, and
/// a bound keeps that arithmetic from overflowing.
pub const MAX_SECONDS: u64 = 365 * 24 * 60 * 60;

/// A positive number of seconds, at most [`MAX_SECONDS`].
pub fn seconds(s: &str) -> Result<Duration, String> {
    match seconds_or_zero(s)? {
        Duration::ZERO => Err("must be a positive number of seconds".into()),
        d => Ok(d),
    }
}

/// A number of seconds, 0 or more, at most [`MAX_SECONDS`].
pub fn seconds_or_zero(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=MAX_SECONDS as f64).contains(&v) {
        return Err(format!(
            "must be between 0 and {MAX_SECONDS} seconds (a year)"
        ));
    }
    Duration::try_from_secs_f64(v).map_err(|e| e.to_string())
}

/// `--request-metadata-key`: a key Bedrock accepts that needs no escaping in JSON.
fn metadata_key(s: &str) -> Result<String, String> {
    if crate::proxy::forward::metadata::valid_key(s) {
        Ok(s.to_owned())
    } else {
        Err("must be 1 to 256 letters, digits and _ - . : @ / = +".into())
    }
}

/// `--assume-role`: an IAM role ARN, `arn:PARTITION:iam::ACCOUNT:role/NAME`.
fn role_arn(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let ok = matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty()));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
        ))
    }
}

/// `--max-in-flight`: what a semaphore can hold.
fn max_in_flight(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if n > crate::config::defaults::MAX_IN_FLIGHT {
        return Err(format!(
            "must be at most {}",
            crate::config::defaults::MAX_IN_FLIGHT
        ));
    }
    Ok(n)
}

/// `--ledger-queue`: its slots are allocated up front, so it is bounded.
fn ledger_queue(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if !(1..=crate::meter::ledger::MAX_QUEUE).contains(&n) {
        return Err(format!(
            "must be between 1 and {}",
            crate::meter::ledger::MAX_QUEUE
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        for good in [
            "arn:aws:iam::123456789012:role/bedrock-apps",
            "arn:aws-us-gov:iam::123456789012:role/path/to/r",
        ] {
            assert_eq!(role_arn(good), Ok(good.to_owned()));
        }
        for bad in [
            "bedrock-apps",
            "arn:aws:iam::12345:role/r",
            "arn:aws:iam::123456789012:user/u",
            "arn:aws:sts::123456789012:role/r",
            "arn:aws:iam::123456789012:role/",
        ] {
            assert!(role_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(seconds_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(
            seconds_or_zero("31536000"),
            Ok(Duration::from_secs(MAX_SECONDS))
        );
        assert_eq!(
            seconds("0"),
            Err("must be a positive number of seconds".into())
        );
        for bad in ["1e300", "31536001", "-1", "inf", "NaN"] {
            assert_eq!(
                seconds_or_zero(bad),
                Err("must be between 0 and 31536000 seconds (a year)".into()),
                "{bad}"
            );
        }
        assert_eq!(
            seconds("soon"),
            Err("\"soon\" is not a number of seconds".into())
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(max_in_flight("0"), Ok(0));
        assert_eq!(
            max_in_flight(&usize::MAX.to_string()),
            Err(format!(
                "must be at most {}",
                crate::config::defaults::MAX_IN_FLIGHT
            ))
        );
        assert_eq!(ledger_queue("1"), Ok(1));
        assert_eq!(
            ledger_queue("0"),
            Err(format!(
                "must be between 1 and {}",
                crate::meter::ledger::MAX_QUEUE
            ))
        );
        assert_eq!(
            ledger_queue("18446744073709551615"),
            Err(format!(
                "must be between 1 and {}",
                crate::meter::ledger::MAX_QUEUE
            ))
        );
    }
}
