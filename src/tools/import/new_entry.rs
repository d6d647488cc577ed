//! New `[[model]]` entries for the models the card cannot price, built from the source prices.

use std::fmt::Write as _;

use super::source::{Fact, LITELLM_LONG_CONTEXT_THRESHOLD, SourceRates};
use crate::money::micros_to_usd_string;
use crate::pricing::model_id::split_profile;
use crate::pricing::units::{Multiplier, Scope};

/// A `[[model]]` block for a model the card does not have, and a one-line summary.
pub(super) fn new_entry(id: &str, facts: &[&Fact], review: &mut Vec<String>) -> (String, String) {
    let find = |pred: &dyn Fn(&Fact) -> bool| facts.iter().copied().find(|f| pred(f));
    let list = find(&|f| f.region.is_none() && split_profile(&f.call_id).0 == Scope::Global);
    let geo: Vec<&Fact> = facts
        .iter()
        .copied()
        .filter(|f| f.region.is_none() && split_profile(&f.call_id).0 == Scope::Geo)
        .collect();
    let gov = find(&|f| f.region.is_none() && split_profile(&f.call_id).0 == Scope::UsGov);
    let Some(base) = list
        .or_else(|| geo.first().copied())
        .or(gov)
        .or_else(|| facts.first().copied())
    else {
        return (String::new(), String::new());
    };
    let mut profiles = Vec::new();
    if list.is_some() {
        if let Some(g) = geo.first()
            && g.rates != base.rates
        {
            if geo.iter().any(|o| o.rates != g.rates) {
                review.push(format!(
                    "! {id}: the source's geographic profiles disagree with each other; the card prices them all at {}",
                    g.key
                ));
            }
            match ratio(&base.rates, &g.rates) {
                Some(m) => profiles.push(format!("geo = {m}")),
                None => review.push(format!(
                    "! {id}: {} is not a single multiple of the list price; add a profile price by hand",
                    g.key
                )),
            }
        }
        if let Some(g) = gov
            && g.rates != base.rates
        {
            match ratio(&base.rates, &g.rates) {
                Some(m) => profiles.push(format!("us-gov = {m}")),
                None => review.push(format!(
                    "! {id}: {} is not a single multiple of the list price; add a profile price by hand",
                    g.key
                )),
            }
        }
    }
    let regions: Vec<&Fact> = facts
        .iter()
        .copied()
        .filter(|f| f.region.is_some() && f.rates != base.rates)
        .collect();
    new_entry_block(id, base, &profiles, &regions)
}

pub(super) fn new_entry_block(
    id: &str,
    base: &Fact,
    profiles: &[String],
    regions: &[&Fact],
) -> (String, String) {
    let r = &base.rates;
    let mut block = String::new();
    let mut summary = Vec::new();
    let _ = writeln!(
        block,
        "[[model]]\nid = {}",
        toml::Value::String(id.to_owned())
    );
    let mut rate = |block: &mut String, key: &str, v: u64| {
        let _ = writeln!(block, "{key} = {}", micros_to_usd_string(v));
        summary.push(format!("{key} {}", micros_to_usd_string(v)));
    };
    rate(&mut block, "input", r.input);
    rate(&mut block, "output", r.output);
    match (r.cache_read, r.cache_write) {
        (None, None) => {
            block.push_str("caching = false\n");
            summary.push("caching = false".into());
        }
        (read, write) => {
            rate(&mut block, "cache_read", read.unwrap_or(r.input));
            if write.is_none() {
                block
                    .push_str("# No cache write price in the source: the input rate is assumed.\n");
            }
            rate(&mut block, "cache_write", write.unwrap_or(r.input));
            if let Some(w) = r.cache_write_1h {
                rate(&mut block, "cache_write_1h", w);
            }
        }
    }
    if !profiles.is_empty() {
        let p = profiles.join(", ");
        let _ = writeln!(block, "profiles = {{ {p} }}");
        summary.push(format!("profiles {p}"));
    }
    if let Some(long) = r.long {
        let mut parts = vec![format!("threshold = {LITELLM_LONG_CONTEXT_THRESHOLD}")];
        for (key, v) in [
            ("input", long.input),
            ("output", long.output),
            ("cache_read", long.cache_read),
            ("cache_write", long.cache_write),
        ] {
            if let Some(v) = v {
                parts.push(format!("{key} = {}", micros_to_usd_string(v)));
            }
        }
        let _ = writeln!(block, "long_context = {{ {} }}", parts.join(", "));
        summary.push("long_context".into());
    }
    for f in regions {
        let (Some(region), fr) = (&f.region, &f.rates) else {
            continue;
        };
        let _ = writeln!(block, "[model.regions.{region}]");
        let _ = writeln!(block, "input = {}", micros_to_usd_string(fr.input));
        let _ = writeln!(block, "output = {}", micros_to_usd_string(fr.output));
        for (key, v) in [
            ("cache_read", fr.cache_read),
            ("cache_write", fr.cache_write),
            ("cache_write_1h", fr.cache_write_1h),
        ] {
            if let Some(v) = v {
                let _ = writeln!(block, "{key} = {}", micros_to_usd_string(v));
            }
        }
        summary.push(format!("region {region}"));
    }
    (block, summary.join(", "))
}

/// The multiplier `to = from × m` for every rate both state, if there is one (four decimals).
pub(super) fn ratio(from: &SourceRates, to: &SourceRates) -> Option<Multiplier> {
    if from.input == 0 {
        return None;
    }
    let m = u32::try_from(
        (u128::from(to.input) * 10_000 + u128::from(from.input) / 2) / u128::from(from.input),
    )
    .ok()
    .filter(|m| *m <= 1000 * 10_000)?;
    let m = Multiplier::from_ten_thousandths(m);
    let pairs = [
        (Some(from.input), Some(to.input)),
        (Some(from.output), Some(to.output)),
        (from.cache_read, to.cache_read),
        (from.cache_write, to.cache_write),
        (from.cache_write_1h, to.cache_write_1h),
    ];
    pairs
        .iter()
        .all(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => m.apply(*a) == *b,
            (None, None) => true,
            _ => false,
        })
        .then_some(m)
}
