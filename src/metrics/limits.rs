//! The series of budgets and rate limits (`--limits`): what each app's counters held when this
//! replica last saw them, the limits in force, refusals, soft-threshold crossings, and the
//! store's health. Registered with the other families in [`super::Metrics`].

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::proxy::limits::file::{Kind, NANO_PER_USD};

#[derive(Clone)]
pub struct LimitMetrics {
    value: GaugeVec,
    warn_value: GaugeVec,
    spent: GaugeVec,
    reserved: GaugeVec,
    refusals: IntCounterVec,
    warnings: IntCounterVec,
    pub in_flight: IntGauge,
    pub unavailable: IntCounter,
    pub reloads: IntCounterVec,
}

/// What one counter held when a request was checked against it.
pub struct Seen<'a> {
    pub app: &'a str,
    /// The model the limit is over, or `None` for the app as a whole.
    pub model: Option<&'a str>,
    pub kind: Kind,
    pub limit: u64,
    pub warn: u64,
    pub spent: u64,
    pub reserved: u64,
}

/// A count as exported: dollars for the dollar limits.
fn exported(kind: Kind, n: u64) -> f64 {
    if kind.is_usd() {
        n as f64 / NANO_PER_USD as f64
    } else {
        n as f64
    }
}

impl LimitMetrics {
    pub fn register(registry: &Registry) -> Result<LimitMetrics, prometheus::Error> {
        let labels = &["app", "scope", "limit"];
        let gauge = |name: &str, help: &str| {
            let g = GaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let in_flight = IntGauge::new(
            "bedrock_limit_reservations_in_flight",
            "Reservations this replica made that are not settled in the limits store yet.",
        )?;
        registry.register(Box::new(in_flight.clone()))?;
        let unavailable = IntCounter::new(
            "bedrock_limits_unavailable_total",
            "Limit checks and settlements the limits store (Redis) did not answer; checks then \
             fail open (forwarded) or closed (--limits-fail-closed).",
        )?;
        registry.register(Box::new(unavailable.clone()))?;
        Ok(LimitMetrics {
            value: gauge(
                "bedrock_limit_value",
                "A limit in force (USD for daily_usd and monthly_usd, else requests or tokens \
                 per minute), by app, scope (`app` or the model it is over) and limit.",
            )?,
            warn_value: gauge(
                "bedrock_limit_warn_value",
                "The soft threshold of a limit (warn_percent of it), in the limit's unit.",
            )?,
            spent: gauge(
                "bedrock_limit_spent",
                "Settled use of a limit in its current window across all replicas, as this \
                 replica last saw it.",
            )?,
            reserved: gauge(
                "bedrock_limit_reserved",
                "Use of a limit held by calls in flight across all replicas (their worst case), \
                 as this replica last saw it, this replica's last call included.",
            )?,
            refusals: counter(
                "bedrock_limit_refusals_total",
                "Calls refused with 429 before forwarding because they would pass a limit.",
                &["app", "limit"],
            )?,
            warnings: counter(
                "bedrock_limit_warnings_total",
                "Calls that took a limit's use past its soft threshold (warn_percent).",
                &["app", "limit"],
            )?,
            in_flight,
            unavailable,
            reloads: counter(
                "bedrock_limits_reloads_total",
                "Limits file reloads by result; a failed reload keeps the previous limits.",
                &["result"],
            )?,
        })
    }

    /// What a check saw, `amount` included when the call was admitted.
    pub fn seen(&self, seen: &Seen<'_>) {
        let scope = seen.model.unwrap_or("app");
        let labels = &[seen.app, scope, seen.kind.as_str()];
        let kind = seen.kind;
        self.value
            .with_label_values(labels)
            .set(exported(kind, seen.limit));
        self.warn_value
            .with_label_values(labels)
            .set(exported(kind, seen.warn));
        self.spent
            .with_label_values(labels)
            .set(exported(kind, seen.spent));
        self.reserved
            .with_label_values(labels)
            .set(exported(kind, seen.reserved));
    }

    pub fn refused(&self, app: &str, kind: Kind) {
        self.refusals.with_label_values(&[app, kind.as_str()]).inc();
    }

    pub fn warned(&self, app: &str, kind: Kind) {
        self.warnings.with_label_values(&[app, kind.as_str()]).inc();
    }
}
