//! The source: LiteLLM's price file read into one Bedrock price per model id (and Region), each
//! keyed the way the card is looked up.

use std::collections::BTreeMap;

use super::literal::Kind;
use crate::names::valid_region;
use crate::pricing::model_id::split_profile;
use crate::pricing::units::Scope;

/// One Bedrock price from the source, keyed the way the card is looked up.
#[derive(Debug)]
pub(super) struct Fact {
    pub key: String,
    /// The id to price in the card: `global.<id>` for a bare source key.
    pub call_id: String,
    pub region: Option<String>,
    pub rates: SourceRates,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SourceRates {
    pub input: u64,
    pub output: u64,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
    pub cache_write_1h: Option<u64>,
    pub long: Option<LongRates>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct LongRates {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
}

/// The Region a card's base rates are for.
pub(super) const BASE_REGION: &str = "us-east-1";

/// LiteLLM's long-context keys are `…_above_200k_tokens`.
pub(super) const LITELLM_LONG_CONTEXT_THRESHOLD: u64 = 200_000;

impl SourceRates {
    pub(super) fn get(&self, kind: Kind) -> Option<u64> {
        match kind {
            Kind::Input => Some(self.input),
            Kind::Output => Some(self.output),
            Kind::CacheRead => self.cache_read,
            Kind::CacheWrite => self.cache_write,
            Kind::CacheWrite1h => self.cache_write_1h,
        }
    }
}

/// (model or profile id, Region)
pub(super) type CallKey = (String, Option<String>);

pub(super) fn read_facts(
    object: &serde_json::Map<String, serde_json::Value>,
    notes: &mut Vec<String>,
) -> Vec<Fact> {
    // (call id, region) → candidates; the best-ranked key wins.
    let mut by_call: BTreeMap<CallKey, Vec<(u8, Fact)>> = BTreeMap::new();
    for (key, entry) in object {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let provider = entry.get("litellm_provider").and_then(|v| v.as_str());
        if !matches!(provider, Some("bedrock" | "bedrock_converse")) {
            continue;
        }
        let mode = entry.get("mode").and_then(|v| v.as_str());
        if !matches!(mode, None | Some("chat" | "completion" | "embedding")) {
            continue;
        }
        let Some((id, region, rank)) = normalize_key(key) else {
            continue;
        };
        let mut rounded = Vec::new();
        let mut rate = |field: &str| {
            let v = entry.get(field)?.as_f64()?;
            let (micros, exact) = per_token_to_micros(v)?;
            if !exact {
                rounded.push(field.to_owned());
            }
            Some(micros)
        };
        let Some(input) = rate("input_cost_per_token") else {
            continue;
        };
        let long = LongRates {
            input: rate("input_cost_per_token_above_200k_tokens"),
            output: rate("output_cost_per_token_above_200k_tokens"),
            cache_read: rate("cache_read_input_token_cost_above_200k_tokens"),
            cache_write: rate("cache_creation_input_token_cost_above_200k_tokens"),
        };
        let rates = SourceRates {
            input,
            output: rate("output_cost_per_token").unwrap_or(0),
            cache_read: rate("cache_read_input_token_cost"),
            cache_write: rate("cache_creation_input_token_cost"),
            cache_write_1h: rate("cache_creation_input_token_cost_above_1hr"),
            long: (long != LongRates::default()).then_some(long),
        };
        if !rounded.is_empty() {
            notes.push(format!(
                "{key}: {} rounded to a micro-dollar per 1M tokens",
                rounded.join(", ")
            ));
        }
        let (scope, _) = split_profile(&id);
        let call_id = if scope == Scope::InRegion && region.is_none() {
            format!("global.{id}")
        } else {
            id
        };
        by_call
            .entry((call_id.clone(), region.clone()))
            .or_default()
            .push((
                rank,
                Fact {
                    key: key.clone(),
                    call_id,
                    region,
                    rates,
                },
            ));
    }
    let mut facts = Vec::new();
    for (_, mut candidates) in by_call {
        candidates.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.key.cmp(&b.1.key)));
        let mut it = candidates.into_iter();
        let Some((_, best)) = it.next() else {
            continue;
        };
        for (_, other) in it {
            if other.rates != best.rates {
                notes.push(format!(
                    "{} and {} disagree; {} is used",
                    best.key, other.key, best.key
                ));
            }
        }
        facts.push(best);
    }
    facts
}

/// A source key as (model or profile id, Region, rank: lower is preferred among keys naming
/// the same price).
pub(super) fn normalize_key(key: &str) -> Option<(String, Option<String>, u8)> {
    let mut rest = key;
    let mut region = None;
    let mut rank = 0;
    if let Some(r) = rest.strip_prefix("bedrock/") {
        rest = r;
        rank = 2;
        loop {
            if let Some(r) = rest
                .strip_prefix("converse/")
                .or_else(|| rest.strip_prefix("invoke/"))
            {
                rest = r;
                continue;
            }
            match rest.split_once('/') {
                Some((first, r)) if region.is_none() && valid_region(first) => {
                    region = Some(first.to_owned());
                    rest = r;
                }
                _ => break,
            }
        }
    }
    let plausible = !rest.is_empty()
        && rest.contains('.')
        && !rest.contains('/')
        && !rest.contains('@')
        && !rest.contains(char::is_whitespace);
    if !plausible {
        return None;
    }
    // A `global.` key is the list price itself; prefer it to the bare key, and both to keys
    // routed through `bedrock/`.
    if rank == 0 && !rest.starts_with("global.") {
        rank = 1;
    }
    Some((rest.to_owned(), region, rank))
}

/// USD per token as micro-dollars per 1M tokens, and whether that was exact.
pub(super) fn per_token_to_micros(usd_per_token: f64) -> Option<(u64, bool)> {
    if !usd_per_token.is_finite() || usd_per_token < 0.0 {
        return None;
    }
    let micros = usd_per_token * 1e12;
    if micros > 1e12 {
        return None;
    }
    let rounded = micros.round();
    Some((
        rounded as u64,
        (micros - rounded).abs() <= 1e-6 * micros.max(1.0),
    ))
}
