//! The per-(app, model) and per-(app, model, operation, status) handles, created once and
//! cached so the hot path hashes no label values, and the exact cost collector (integer
//! pico-dollars, summed in 128 bits).

use super::*;

/// Handles for one (app, model) pair.
pub struct Series {
    /// `{app="…",model="…"` — the start of every line of this pair, formatted once.
    pub(super) labels: String,
    pub(super) tokens: [AtomicU64; 4],
    /// `bedrock_units_total` by `Unit`; a unit's series appears once one was counted.
    pub(super) units: [AtomicU64; Unit::ALL.len()],
    pub(super) units_seen: AtomicU8,
    pub(super) cost: CostCell,
    pub(super) output_tokens: TokenHistogram,
    pub(super) input_tokens: TokenHistogram,
    /// `bedrock_service_tier_requests_total` of this model, by tier, created on first use.
    pub(super) tiers: [OnceLock<IntCounter>; Tier::ALL.len()],
    /// `bedrock_unpriced_requests_total` of this model, created on first use.
    pub(super) unpriced: OnceLock<IntCounter>,
    /// `bedrock_stop_reasons_total` of this pair, by reason, created on first use.
    pub(super) stops: [OnceLock<IntCounter>; StopReason::COUNT],
    /// `bedrock_prefix_requests_total` and `bedrock_prefix_reused_total` of this pair, created
    /// on first use.
    pub(super) prefix: OnceLock<(IntCounter, IntCounter)>,
}

/// Handles for one (app, model, operation, status): counting a finished request touches
/// these without hashing label values.
pub struct RequestSeries {
    /// `{app="…",model="…",operation="…",status="…"}`
    pub(super) labels: String,
    pub(super) requests: AtomicU64,
    pub(super) duration: Histogram,
    /// `bedrock_time_to_first_token_seconds` of this (model, operation), created on first use.
    pub(super) ttft: OnceLock<Histogram>,
}

pub(super) type RequestKey = (Arc<str>, Arc<str>, Operation, u16);

/// Cost so far of one (app, model), per cost type (the four token types, then the unit types
/// of `UnitCost::TYPES`), in pico-dollars. 128 bits: a 64-bit sum wraps at about $18.4M, which
/// Prometheus would read as a counter reset; 128 bits never does. No 128-bit atomic is stable,
/// so the sums sit behind a lock taken once per priced request, with nothing else done under it.
#[derive(Default)]
pub(super) struct CostCell {
    pub(super) pico: Mutex<[u128; COST_TYPES]>,
    /// Set once a request priced per token was recorded; unpriced pairs export no token cost
    /// series at all, so an unknown model never shows up as costing $0.
    pub(super) priced: AtomicBool,
    /// The unit cost types priced so far (bit `i` for `UnitCost::TYPES[i]`), exported from then on.
    pub(super) unit_types: AtomicU8,
}

/// Four token types, then the unit cost types.
pub(super) const COST_TYPES: usize = 4 + UnitCost::TYPES.len();

impl CostCell {
    pub(super) fn add(&self, cost: &Cost) {
        let mut sums = self.pico.lock().unwrap_or_else(PoisonError::into_inner);
        for t in TokenType::ALL {
            sums[t as usize] += u128::from(cost.get(t));
        }
        drop(sums);
        self.priced.store(true, Ordering::Relaxed);
    }

    /// Adds the cost of a request's units; `types` are the unit types it priced (bits as in
    /// `unit_types`), exported even when they cost $0 (a free guardrail policy).
    pub(super) fn add_units(&self, cost: &UnitCost, types: u8) {
        let mut sums = self.pico.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, (_, pico)) in cost.by_type().into_iter().enumerate() {
            sums[4 + i] += u128::from(pico);
        }
        drop(sums);
        self.unit_types.fetch_or(types, Ordering::Relaxed);
    }

    pub(super) fn get(&self) -> [u128; COST_TYPES] {
        *self.pico.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A histogram of token counts (integers). Per-bucket counts, made cumulative when rendered;
/// `_count` is rendered as the sum of the buckets, so it always agrees with `le="+Inf"`.
pub(super) struct TokenHistogram {
    pub(super) bounds: &'static [f64],
    /// One per bound, then +Inf.
    pub(super) buckets: Box<[AtomicU64]>,
    pub(super) sum: AtomicU64,
}

impl TokenHistogram {
    pub(super) fn new(bounds: &'static [f64]) -> Self {
        TokenHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    pub(super) fn observe(&self, value: u64) {
        let v = value as f64;
        let i = self.bounds.partition_point(|b| *b < v);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub(super) fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0u64;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            out.push_str(name);
            out.push_str("_bucket");
            out.push_str(labels);
            out.push_str(",le=\"");
            match self.bounds.get(i) {
                // Token bounds are whole numbers: written as integers, as `f64`'s Display does.
                Some(b) => push_u64(out, *b as u64),
                None => out.push_str("+Inf"),
            }
            out.push_str("\"} ");
            push_u64(out, cumulative);
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{name}_sum{labels}}} {}",
            self.sum.load(Ordering::Relaxed) as f64
        );
        out.push_str(name);
        out.push_str("_count");
        out.push_str(labels);
        out.push_str("} ");
        push_u64(out, cumulative);
        out.push('\n');
    }
}
