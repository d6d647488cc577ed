//! Metrics: every Prometheus series the meter exports, registered once in one struct.
//!
//! Call sites never spell a metric name. Per-(app, model) and per-(app, model, operation,
//! status) handles are created once and cached, so the hot path hashes no label values. Costs
//! are kept as exact integer pico-dollars and turned into USD only when Prometheus scrapes.
//!
//! The families with a series per (app, model) — requests, tokens, cost, token histograms —
//! are the bulk of a scrape (tens of thousands of lines with a few thousand pairs), so they are
//! plain atomics rendered straight to text with each series' label prefix formatted once; the
//! `prometheus` registry (which builds an intermediate protobuf model per scrape) renders the
//! small families.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use dashmap::DashMap;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::api::{Operation, StopReason};
use crate::money::pico_to_usd;
use crate::pricing::billing_units::{Unit, UnitCost, Units};
use crate::pricing::{Cost, Tier, TokenType, Usage};

const OUTPUT_TOKEN_BUCKETS: [f64; 13] = [
    16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0,
    65536.0,
];
const INPUT_TOKEN_BUCKETS: [f64; 10] = [
    16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 131072.0, 262144.0, 1048576.0,
];
const DURATION_BUCKETS: [f64; 14] = [
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];
const TTFT_BUCKETS: [f64; 13] = [
    0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
];
/// The proxy's own time is microseconds; the top buckets catch pathological stalls.
/// Fine below 50 µs, where a healthy proxy is, so `histogram_quantile` reads it closely.
const OVERHEAD_BUCKETS: [f64; 17] = [
    0.000_002_5,
    0.000_005,
    0.000_007_5,
    0.000_01,
    0.000_015,
    0.000_02,
    0.000_025,
    0.000_035,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.05,
];

mod exposition;
mod limits;
mod series;

pub use exposition::Exposition;
use exposition::{push_label_value, push_u64};
pub use limits::{LimitMetrics, Seen as LimitSeen};
use series::{CostCell, RequestKey, TokenHistogram};
pub use series::{RequestSeries, Series};

/// The configuration files that reload while the proxy runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFile {
    RateCard,
    Keys,
    Limits,
}

pub struct Metrics {
    registry: Registry,
    duration: HistogramVec,
    ttft: HistogramVec,
    overhead: Vec<Histogram>,
    unpriced: IntCounterVec,
    usage_missing: IntCounterVec,
    rate_card_info: IntGaugeVec,
    in_flight: Vec<IntGauge>,
    label_overflow: IntCounterVec,
    stream_exceptions: IntCounterVec,
    auth_failures: IntCounterVec,
    assume_role_failures: IntCounterVec,
    rate_card_reloads: IntCounterVec,
    keys_reloads: IntCounterVec,
    tls_reloads: IntCounterVec,
    tls_handshake_failures: IntCounterVec,
    tls_expiry: IntGaugeVec,
    keys_loaded: IntGauge,
    ledger_dropped: IntCounter,
    service_tier: IntCounterVec,
    stop_reasons: IntCounterVec,
    prefix_requests: IntCounterVec,
    prefix_reused: IntCounterVec,
    pricing_anomalies: IntCounterVec,
    routed: IntCounterVec,
    proxy_throttled: IntCounter,
    buffer_full: IntCounter,
    buffered_bytes: IntGauge,
    /// Budgets and rate limits (`--limits`).
    pub limits: LimitMetrics,
    series: DashMap<(Arc<str>, Arc<str>), Arc<Series>>,
    request_series: DashMap<RequestKey, Arc<RequestSeries>>,
    /// Every `Series` and `RequestSeries`, in creation order, for rendering.
    rendered: Mutex<Rendered>,
}

#[derive(Default)]
struct Rendered {
    series: Vec<Arc<Series>>,
    requests: Vec<Arc<RequestSeries>>,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };

        let duration = histogram(
            "bedrock_request_duration_seconds",
            "Time from receiving the request to the end of the response.",
            &["model", "operation"],
            &DURATION_BUCKETS,
        )?;
        let ttft = histogram(
            "bedrock_time_to_first_token_seconds",
            "Streams: time from receiving the request to the first event frame.",
            &["model", "operation"],
            &TTFT_BUCKETS,
        )?;
        let overhead_vec = histogram(
            "bedrock_proxy_overhead_seconds",
            "Time spent inside the proxy itself, excluding upstream and client waits.",
            &["operation"],
            &OVERHEAD_BUCKETS,
        )?;
        let unpriced = counter(
            "bedrock_unpriced_requests_total",
            "Metered requests for models the rate card has no price for.",
            &["model"],
        )?;
        let usage_missing = counter(
            "bedrock_usage_missing_total",
            "Successful requests whose token usage could not be read.",
            &["operation", "reason"],
        )?;
        let rate_card_info = gauge(
            "bedrock_rate_card_info",
            "The rate card in use (value 1).",
            &["version"],
        )?;
        let in_flight_vec = gauge(
            "bedrock_in_flight_requests",
            "Requests received whose response has not ended yet.",
            &["operation"],
        )?;
        let label_overflow = counter(
            "bedrock_label_overflow_total",
            "Requests whose app or model label was folded into `other` by the series cap.",
            &["label"],
        )?;
        let stream_exceptions = counter(
            "bedrock_stream_exceptions_total",
            "Event streams that ended with a modeled exception frame, by exception type.",
            &["model", "operation", "type"],
        )?;
        let auth_failures = counter(
            "bedrock_auth_failures_total",
            "Requests refused in keys mode, by reason; none of them reached Bedrock.",
            &["reason"],
        )?;
        for reason in crate::names::AUTH_FAILURE_REASONS {
            auth_failures.with_label_values(&[reason]);
        }
        let assume_role_failures = counter(
            "bedrock_assume_role_failures_total",
            "Calls forwarded under the meter's own AWS identity because the app's --assume-role \
             session could not be had (STS refused or was unreachable), by app.",
            &["app"],
        )?;
        let routed = counter(
            "bedrock_routed_requests_total",
            "Calls to a prompt router, by the router called and the model it chose (the model \
             the call is priced and labelled as everywhere else).",
            &["app", "router", "model"],
        )?;
        let rate_card_reloads = counter(
            "bedrock_rate_card_reloads_total",
            "Rate card reloads by result; a failed reload keeps the previous card.",
            &["result"],
        )?;
        let keys_reloads = counter(
            "bedrock_keys_reloads_total",
            "Keys file reloads by result; a failed reload keeps the previous keys.",
            &["result"],
        )?;
        let tls_reloads = counter(
            "bedrock_tls_reloads_total",
            "TLS certificate and key reloads by listener and result; a failed reload keeps the \
             pair in use.",
            &["listener", "result"],
        )?;
        let tls_handshake_failures = counter(
            "bedrock_tls_handshake_failures_total",
            "Connections that did not complete the TLS handshake, by listener (a client \
             certificate refused, no common protocol, plain HTTP on the TLS port, a client that \
             left or stalled).",
            &["listener"],
        )?;
        let tls_expiry = gauge(
            "bedrock_tls_certificate_expiry_timestamp_seconds",
            "When the certificate a TLS listener serves expires, in seconds since the epoch.",
            &["listener"],
        )?;
        let keys_loaded = IntGauge::new(
            "bedrock_keys_loaded",
            "Virtual keys in force (keys mode), both kinds.",
        )?;
        registry.register(Box::new(keys_loaded.clone()))?;
        let ledger_dropped = IntCounter::new(
            "bedrock_ledger_dropped_total",
            "Ledger lines lost because the ledger's queue was full (the requests themselves succeeded and are in every other metric).",
        )?;
        registry.register(Box::new(ledger_dropped.clone()))?;
        let service_tier = counter(
            "bedrock_service_tier_requests_total",
            "Metered requests by the service tier Bedrock served them at (default when it named none).",
            &["model", "tier"],
        )?;
        let stop_reasons = counter(
            "bedrock_stop_reasons_total",
            "Successful calls by why the model stopped, where the answer said (max_tokens: the \
             output ceiling cut the answer).",
            &["app", "model", "reason"],
        )?;
        let prefix_requests = counter(
            "bedrock_prefix_requests_total",
            "Successful calls whose stable prompt prefix (system prompt, tools, leading messages) \
             is big enough to cache: at least 1024 tokens, estimated as bytes / 4.",
            &["app", "model"],
        )?;
        let prefix_reused = counter(
            "bedrock_prefix_reused_total",
            "Of bedrock_prefix_requests_total, the calls whose prefix this replica saw from the \
             same app to the same model within the last 5 minutes (a prompt cache's lifetime).",
            &["app", "model"],
        )?;
        let proxy_throttled = IntCounter::new(
            "bedrock_proxy_throttled_total",
            "Requests the proxy itself answered with 429 because --max-in-flight requests were already in flight.",
        )?;
        registry.register(Box::new(proxy_throttled.clone()))?;
        let buffer_full = IntCounter::new(
            "bedrock_proxy_buffer_full_total",
            "Requests the proxy itself answered with 503 because the bodies it holds in memory reached --max-buffered-bytes.",
        )?;
        registry.register(Box::new(buffer_full.clone()))?;
        let buffered_bytes = IntGauge::new(
            "bedrock_proxy_buffered_bytes",
            "Bytes of request and response bodies the proxy holds in memory now, counted against --max-buffered-bytes.",
        )?;
        registry.register(Box::new(buffered_bytes.clone()))?;
        let pricing_anomalies = counter(
            "bedrock_pricing_anomalies_total",
            "Metered requests priced with a fallback: cache tokens on a model the card says does not cache, a tier or latency-optimized call the card has no price for.",
            &["model", "reason"],
        )?;
        let overhead = Operation::ALL
            .iter()
            .map(|op| overhead_vec.with_label_values(&[op.as_str()]))
            .collect();
        let in_flight = Operation::ALL
            .iter()
            .map(|op| in_flight_vec.with_label_values(&[op.as_str()]))
            .collect();
        let limits = LimitMetrics::register(&registry)?;
        Ok(Metrics {
            registry,
            duration,
            ttft,
            overhead,
            unpriced,
            usage_missing,
            rate_card_info,
            in_flight,
            label_overflow,
            stream_exceptions,
            auth_failures,
            assume_role_failures,
            rate_card_reloads,
            keys_reloads,
            tls_reloads,
            tls_handshake_failures,
            tls_expiry,
            keys_loaded,
            ledger_dropped,
            service_tier,
            stop_reasons,
            prefix_requests,
            prefix_reused,
            pricing_anomalies,
            routed,
            proxy_throttled,
            buffer_full,
            buffered_bytes,
            limits,
            series: DashMap::new(),
            request_series: DashMap::new(),
            rendered: Mutex::new(Rendered::default()),
        })
    }

    /// Cached handles for an (app, model) pair; both labels must already be bounded.
    pub fn series(&self, app: &Arc<str>, model: &Arc<str>) -> Arc<Series> {
        if let Some(s) = self.series.get(&(app.clone(), model.clone())) {
            return s.clone();
        }
        self.series
            .entry((app.clone(), model.clone()))
            .or_insert_with(|| {
                let mut labels = String::from("{app=\"");
                push_label_value(&mut labels, app);
                labels.push_str("\",model=\"");
                push_label_value(&mut labels, model);
                labels.push('"');
                let series = Arc::new(Series {
                    labels,
                    tokens: Default::default(),
                    units: Default::default(),
                    units_seen: AtomicU8::new(0),
                    cost: CostCell::default(),
                    output_tokens: TokenHistogram::new(&OUTPUT_TOKEN_BUCKETS),
                    input_tokens: TokenHistogram::new(&INPUT_TOKEN_BUCKETS),
                    tiers: Default::default(),
                    stops: Default::default(),
                    prefix: OnceLock::new(),
                    unpriced: OnceLock::new(),
                });
                self.rendered_lock().series.push(series.clone());
                series
            })
            .clone()
    }

    fn rendered_lock(&self) -> std::sync::MutexGuard<'_, Rendered> {
        match self.rendered.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Counts one finished request; the handles returned serve its other per-request series.
    /// Both labels must already be bounded.
    pub fn request(
        &self,
        app: &Arc<str>,
        model: &Arc<str>,
        op: Operation,
        status: u16,
        seconds: f64,
    ) -> Arc<RequestSeries> {
        let key = (app.clone(), model.clone(), op, status);
        let handles = match self.request_series.get(&key) {
            Some(h) => h.clone(),
            None => self
                .request_series
                .entry(key)
                .or_insert_with(|| {
                    let mut labels = String::from("{app=\"");
                    push_label_value(&mut labels, app);
                    labels.push_str("\",model=\"");
                    push_label_value(&mut labels, model);
                    let _ = write!(
                        labels,
                        "\",operation=\"{}\",status=\"{status}\"}}",
                        op.as_str()
                    );
                    let series = Arc::new(RequestSeries {
                        labels,
                        requests: AtomicU64::new(0),
                        duration: self.duration.with_label_values(&[model, op.as_str()]),
                        ttft: OnceLock::new(),
                    });
                    self.rendered_lock().requests.push(series.clone());
                    series
                })
                .clone(),
        };
        handles.requests.fetch_add(1, Ordering::Relaxed);
        handles.duration.observe(seconds);
        handles
    }

    /// Adds a request's tokens, and its cost when the model is priced.
    pub fn usage(&self, series: &Series, usage: &Usage, cost: Option<&Cost>) {
        for t in TokenType::ALL {
            series.tokens[t as usize].fetch_add(usage.get(t), Ordering::Relaxed);
        }
        series.output_tokens.observe(usage.output);
        series.input_tokens.observe(usage.prompt_total());
        if let Some(cost) = cost {
            series.cost.add(cost);
        }
    }

    /// Adds a request's non-token units, and the cost of those the card priced (`priced`: the
    /// unit cost types it priced, as bits of `UnitCost::TYPES`).
    pub fn units(&self, series: &Series, units: &Units, cost: &UnitCost, priced: u8) {
        let mut seen = 0u8;
        for (unit, n) in units.counts() {
            if n > 0 {
                series.units[unit as usize].fetch_add(n, Ordering::Relaxed);
                seen |= 1 << unit as u8;
            }
        }
        if seen != 0 {
            series.units_seen.fetch_or(seen, Ordering::Relaxed);
        }
        if priced != 0 {
            series.cost.add_units(cost, priced);
        }
    }

    pub fn unpriced(&self, series: &Series, model: &str) {
        series
            .unpriced
            .get_or_init(|| self.unpriced.with_label_values(&[model]))
            .inc();
    }

    pub fn usage_missing(&self, op: Operation, reason: &'static str) {
        self.usage_missing
            .with_label_values(&[op.as_str(), reason])
            .inc();
    }

    /// `request` is the handles [`Metrics::request`] gave for this request, of `model` and `op`.
    pub fn time_to_first_token(
        &self,
        request: &RequestSeries,
        model: &str,
        op: Operation,
        seconds: f64,
    ) {
        request
            .ttft
            .get_or_init(|| self.ttft.with_label_values(&[model, op.as_str()]))
            .observe(seconds);
    }

    pub fn proxy_overhead(&self, op: Operation, seconds: f64) {
        self.overhead[op.index()].observe(seconds);
    }

    /// Requests in flight, all operations.
    pub fn in_flight_total(&self) -> i64 {
        self.in_flight.iter().map(IntGauge::get).sum()
    }

    pub fn in_flight(&self, op: Operation) -> &IntGauge {
        &self.in_flight[op.index()]
    }

    /// Counts a stream's exception frame; the type comes from upstream, so only the types
    /// Bedrock documents become label values.
    pub fn stream_exception(&self, model: &str, op: Operation, exception_type: &str) {
        const KNOWN: [&str; 6] = [
            "internalServerException",
            "modelStreamErrorException",
            "validationException",
            "throttlingException",
            "serviceUnavailableException",
            "modelTimeoutException",
        ];
        let t = KNOWN
            .iter()
            .find(|k| **k == exception_type)
            .copied()
            .unwrap_or("other");
        self.stream_exceptions
            .with_label_values(&[model, op.as_str(), t])
            .inc();
    }

    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }

    /// A call signed with the meter's own identity because its app had no session.
    pub fn assume_role_failure(&self, app: &str) {
        self.assume_role_failures.with_label_values(&[app]).inc();
    }

    /// Makes the reload series of a watched file visible at zero before its first reload.
    pub fn watch_file(&self, file: ConfigFile) {
        for result in ["ok", "error"] {
            self.reloads(file).with_label_values(&[result]);
        }
    }

    pub fn reloaded(&self, file: ConfigFile, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reloads(file).with_label_values(&[result]).inc();
    }

    fn reloads(&self, file: ConfigFile) -> &IntCounterVec {
        match file {
            ConfigFile::RateCard => &self.rate_card_reloads,
            ConfigFile::Keys => &self.keys_reloads,
            ConfigFile::Limits => &self.limits.reloads,
        }
    }

    /// Why the model stopped, for a call whose answer said. `series` is the (app, model)
    /// handles of this pair.
    pub fn stop_reason(&self, series: &Series, app: &str, model: &str, stop: StopReason) {
        series.stops[stop as usize]
            .get_or_init(|| {
                self.stop_reasons
                    .with_label_values(&[app, model, stop.as_str()])
            })
            .inc();
    }

    /// A call with a cacheable prefix, and whether the prefix was seen lately. Both series
    /// appear with the first such call, so their ratio exists from then on.
    pub fn prefix(&self, series: &Series, app: &str, model: &str, reused: bool) {
        let (calls, reuses) = series.prefix.get_or_init(|| {
            (
                self.prefix_requests.with_label_values(&[app, model]),
                self.prefix_reused.with_label_values(&[app, model]),
            )
        });
        calls.inc();
        if reused {
            reuses.inc();
        }
    }

    /// `series` is the (app, model) handles of `model`.
    pub fn service_tier(&self, series: &Series, model: &str, tier: Tier) {
        series.tiers[tier as usize]
            .get_or_init(|| self.service_tier.with_label_values(&[model, tier.as_str()]))
            .inc();
    }

    pub fn proxy_throttled(&self) {
        self.proxy_throttled.inc();
    }

    pub fn buffer_full(&self) {
        self.buffer_full.inc();
    }

    /// The gauge the byte budget keeps current.
    pub fn buffered_bytes(&self) -> IntGauge {
        self.buffered_bytes.clone()
    }

    /// A call a prompt router sent to `model`.
    pub fn routed(&self, app: &str, router: &str, model: &str) {
        self.routed.with_label_values(&[app, router, model]).inc();
    }

    pub fn pricing_anomaly(&self, model: &str, reason: &'static str) {
        self.pricing_anomalies
            .with_label_values(&[model, reason])
            .inc();
    }

    pub fn ledger_dropped(&self) -> IntCounter {
        self.ledger_dropped.clone()
    }

    /// The counters of a TLS listener (`proxy` or `admin`), every series at 0 from the start.
    pub fn tls_counters(&self, listener: &str) -> crate::server::tls::TlsCounters {
        crate::server::tls::TlsCounters {
            handshake_failures: self.tls_handshake_failures.with_label_values(&[listener]),
            reloads_ok: self.tls_reloads.with_label_values(&[listener, "ok"]),
            reloads_error: self.tls_reloads.with_label_values(&[listener, "error"]),
            expiry: self.tls_expiry.with_label_values(&[listener]),
        }
    }

    pub fn set_keys_loaded(&self, n: usize) {
        self.keys_loaded.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn label_overflow(&self, label: &'static str) {
        self.label_overflow.with_label_values(&[label]).inc();
    }

    pub fn set_rate_card(&self, version: &str) {
        self.rate_card_info.reset();
        self.rate_card_info.with_label_values(&[version]).set(1);
    }
}

#[cfg(test)]
mod tests;
