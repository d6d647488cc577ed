//! The cost levers, each worked out for one app and model from its measured traffic and priced
//! exactly with the rate card, then scaled from the period to a 30-day month. docs/advise.md
//! gives every rule and formula; the tests check them against figures computed by hand.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::groups::Group;
use crate::money::usd;
use crate::pricing::{Call, RateCard, Resolved, Tier, Usage};

pub use crate::meter::prefixes::MIN_CACHE_TOKENS;

/// A prompt cache holds a prefix this long after its last use (Bedrock's default TTL).
pub const CACHE_TTL_MS: i64 = crate::meter::prefixes::CACHE_TTL_SECS as i64 * 1000;
/// Calls at or above which the output ceiling lever applies: the share cut at their ceiling.
pub const MAX_TOKEN_STOP_SHARE_PERCENT: u64 = 10;
/// The share of output spend the output discipline lever counts on saving: the midpoint of the
/// 20–40% reported for prompt-level output controls.
pub const OUTPUT_SAVING_PERCENT: u128 = 30;
/// Batch inference costs half of on-demand.
pub const BATCH_SAVING_PERCENT: u128 = 50;
/// Batch jobs take at least 100 records; fewer calls are not worth a job.
pub const BATCH_MIN_CALLS: u64 = 100;
/// "Classification-sized": at most this many output and input tokens per call on average.
pub const SMALL_OUTPUT: u64 = 100;
pub const SMALL_INPUT: u64 = 4000;
/// Long context: calls averaging at least this many prompt tokens.
pub const LONG_PROMPT: u64 = 50_000;
/// Retrieval sends this many times fewer input tokens (the low end of the 10–25× reported).
pub const RAG_REDUCTION: u128 = 10;
/// A model is "steady" when it had calls in at least this share of the period's hours.
pub const STEADY_HOURS_PERCENT: u64 = 90;
/// Seconds in the month savings are scaled to.
pub const MONTH_SECS: u128 = 30 * 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Caching,
    Batch,
    OutputDiscipline,
    RightSizing,
    Retrieval,
    ProvisionedThroughput,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Caching => "caching",
            Kind::Batch => "batch",
            Kind::OutputDiscipline => "output_discipline",
            Kind::RightSizing => "right_sizing",
            Kind::Retrieval => "retrieval",
            Kind::ProvisionedThroughput => "provisioned_throughput",
        }
    }
}

/// One lever for one app and model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lever {
    pub app: String,
    pub model: String,
    pub kind: Kind,
    /// Pico-dollars saved over the period, and per 30-day month at the observed volume;
    /// `None` where the card has no price to compute it with.
    pub period_saving: Option<u128>,
    pub month_saving: Option<u128>,
    /// The measurement the lever rests on.
    pub basis: String,
    /// What to check before pulling it.
    pub caveat: String,
}

/// The period's length in milliseconds, at least one.
pub fn scale(pico: u128, period_ms: u128) -> u128 {
    pico * MONTH_SECS * 1000 / period_ms.max(1)
}

fn percent(part: u64, whole: u64) -> u64 {
    (part * 100).checked_div(whole).unwrap_or(0)
}

/// Every lever that applies to `g`, unranked.
pub fn levers(g: &Group, card: &RateCard, period_ms: u128, end_secs: u64) -> Vec<Lever> {
    let at = UNIX_EPOCH + Duration::from_secs(end_secs);
    let resolve = |id: &str| {
        card.resolve(&Call {
            model_id: id,
            region: None,
            latency_optimized: false,
            at,
        })
    };
    let own = resolve(&g.model);
    let lever = |kind, saving: Option<u128>, basis: String, caveat: String| Lever {
        app: g.app.clone(),
        model: g.model.clone(),
        kind,
        period_saving: saving,
        month_saving: saving.map(|s| scale(s, period_ms)),
        basis,
        caveat,
    };
    let mut out = Vec::new();
    if let Some(own) = &own
        && let Some(l) = caching(g, own)
    {
        out.push(lever(Kind::Caching, Some(l.0), l.1, l.2));
    }
    let token_cost = g.input_cost + g.output_cost + g.cache_read_cost + g.cache_write_cost;
    if g.calls >= BATCH_MIN_CALLS && g.streamed == 0 && token_cost > 0 {
        out.push(lever(
            Kind::Batch,
            Some(token_cost * BATCH_SAVING_PERCENT / 100),
            format!(
                "all {} calls were non-streaming; ${} of token spend in the period",
                g.calls,
                usd_short(token_cost)
            ),
            "Batch inference is half the on-demand price but returns within 24 hours, in jobs of at least 100 records, for the models Batch supports in your Region: only for work that need not answer in real time (nightly, backfills, evaluations).".into(),
        ));
    }
    if g.stop_known > 0
        && g.output_cost > 0
        && percent(g.max_token_stops, g.stop_known) >= MAX_TOKEN_STOP_SHARE_PERCENT
    {
        let ceiling = g
            .max_tokens_sum
            .checked_div(g.max_tokens_n)
            .map(|avg| format!(" (they asked for {avg} tokens on average)"))
            .unwrap_or_default();
        out.push(lever(
            Kind::OutputDiscipline,
            Some(g.output_cost * OUTPUT_SAVING_PERCENT / 100),
            format!(
                "{} of {} calls ({}%) stopped at their output ceiling{ceiling}; output is {}% of this spend",
                g.max_token_stops,
                g.stop_known,
                percent(g.max_token_stops, g.stop_known),
                share(g.output_cost, token_cost)
            ),
            "Answers cut at the ceiling were still paid in full: ask for shorter, structured answers and set the ceiling to what is used. The saving assumed is 30% of output spend, the midpoint of the 20–40% reported for output controls, not a measurement.".into(),
        ));
    }
    if let Some(cheaper) = &g.cheaper
        && g.calls > 0
        && g.cost_priced_at_both > g.cost_at_cheaper
    {
        let (avg_in, avg_out) = (g.tokens.prompt_total() / g.calls, g.tokens.output / g.calls);
        if avg_out <= SMALL_OUTPUT && avg_in <= SMALL_INPUT {
            out.push(lever(
                Kind::RightSizing,
                Some(g.cost_priced_at_both - g.cost_at_cheaper),
                format!(
                    "{} calls averaging {avg_in} input and {avg_out} output tokens: classification-sized for this model; the same tokens on {cheaper} cost ${} instead of ${}",
                    g.calls,
                    usd_short(g.cost_at_cheaper),
                    usd_short(g.cost_priced_at_both)
                ),
                format!("Run your evals on {cheaper} first and route only the calls it answers as well (a prompt router can do the routing)."),
            ));
        }
    }
    if g.calls > 0 && g.input_cost > 0 {
        let avg_prompt = g.tokens.prompt_total() / g.calls;
        if avg_prompt >= LONG_PROMPT {
            out.push(lever(
                Kind::Retrieval,
                Some(g.input_cost - g.input_cost / RAG_REDUCTION),
                format!(
                    "{} calls averaging {avg_prompt} prompt tokens; ${} of input spend in the period",
                    g.calls,
                    usd_short(g.input_cost)
                ),
                "Retrieving the passages a question needs instead of sending the whole context cuts input tokens 10–25× at volume; the saving assumes 10×, the low end. It needs a retrieval pipeline and evals that the answers hold up.".into(),
            ));
        }
    }
    let period_hours = u64::try_from(period_ms / 3_600_000)
        .unwrap_or(u64::MAX)
        .max(1);
    let active = g.hours.len() as u64;
    if period_hours >= 24 && percent(active, period_hours) >= STEADY_HOURS_PERCENT {
        let minutes = u128::from(period_hours) * 60;
        let per_minute =
            (u128::from(g.tokens.prompt_total()) + u128::from(g.tokens.output)) / minutes;
        out.push(lever(
            Kind::ProvisionedThroughput,
            None,
            format!(
                "calls in {active} of the period's {period_hours} hours ({}%), {per_minute} tokens per minute on average",
                percent(active, period_hours)
            ),
            "Steady volume is what Provisioned Throughput (per model unit per hour, 1- or 6-month terms) pays off on. The rate card has no Provisioned Throughput price, so no saving is computed: compare a quote with this volume, and commit only after about 90 days of sustained measured use.".into(),
        ));
    }
    out
}

/// The caching lever: replays the group's prefixes in time order against a 5-minute cache.
/// Returns (saving in pico-dollars, basis, caveat), or `None` when it saves nothing.
fn caching(g: &Group, own: &Resolved) -> Option<(u128, String, String)> {
    if !own.model().caching {
        return None;
    }
    let price = |usage: Usage| {
        own.quote(&usage, Tier::Default)
            .cost
            .map_or(0, |c| u128::from(c.total()))
    };
    let mut prefixes = g.prefixes.clone();
    prefixes.sort_by_key(|p| p.ms);
    let mut last_seen: HashMap<u64, i64> = HashMap::new();
    let (mut reads, mut writes, mut saved, mut premium) = (0u64, 0u64, 0u128, 0u128);
    let mut uses: HashMap<u64, (u64, u64, bool)> = HashMap::new();
    let mut estimated = false;
    for p in &prefixes {
        let warm = last_seen
            .get(&p.fingerprint)
            .is_some_and(|&t| p.ms - t <= CACHE_TTL_MS);
        last_seen.insert(p.fingerprint, p.ms);
        let entry = uses
            .entry(p.fingerprint)
            .or_insert((0, p.bytes, p.estimated));
        entry.0 += 1;
        if p.cached || p.tokens < MIN_CACHE_TOKENS {
            continue;
        }
        estimated |= p.estimated;
        let tokens = |field: fn(&mut Usage, u64)| {
            let mut u = Usage::default();
            field(&mut u, p.tokens);
            u
        };
        let as_input = price(tokens(|u, n| u.input = n));
        if warm {
            reads += 1;
            saved += as_input.saturating_sub(price(tokens(|u, n| u.cache_read = n)));
        } else {
            writes += 1;
            premium += price(tokens(|u, n| u.cache_write = n)).saturating_sub(as_input);
        }
    }
    if reads == 0 || saved <= premium {
        return None;
    }
    let (top_calls, top_bytes, _) = uses
        .values()
        .copied()
        .max_by_key(|(n, bytes, _)| (*n, *bytes))
        .unwrap_or_default();
    let basis = format!(
        "{reads} of {} calls ({}%) reuse a prefix seen within 5 minutes; the most used prefix, {top_bytes} bytes, is in {top_calls} calls; its {writes} cache write(s) cost ${} more than input, the reads save ${}{}",
        g.calls,
        percent(reads, g.calls),
        usd_short(premium),
        usd_short(saved),
        if estimated {
            " (prefix tokens estimated from bytes)"
        } else {
            ""
        }
    );
    Some((
        saved - premium,
        basis,
        "Put a cache point (Converse `cachePoint`, Anthropic `cache_control`) after the stable prefix. Reads pay only when the prefix is used again within the 5-minute TTL; prefixes under the model's minimum (1,024 tokens counted here) are not cached.".into(),
    ))
}

fn share(part: u128, whole: u128) -> u128 {
    (part * 100).checked_div(whole).unwrap_or(0)
}

/// Dollars with six decimals, for the basis text.
pub fn usd_short(pico: u128) -> String {
    crate::money::Pico(pico).usd_rounded(6)
}

/// The exact USD decimal of an amount that fits in 64 bits (else rounded to micro-dollars).
pub fn usd_exact(pico: u128) -> String {
    match u64::try_from(pico) {
        Ok(p) => usd(p),
        Err(_) => usd_short(pico),
    }
}
