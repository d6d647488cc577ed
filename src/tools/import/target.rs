//! Which card literal each source price bears on: where a rate of a resolved
//! entry is written in the card (or why it is derived), and the votes of the source prices.

use std::collections::BTreeMap;

use super::edit::CardDoc;
use super::literal::{Kind, Literal, RateTable};
use super::source::{Fact, LITELLM_LONG_CONTEXT_THRESHOLD};
use crate::money::micros_to_usd_string as usd;
use crate::pricing::entry::{Adjust, ModelPrice};
use crate::pricing::resolve::Resolved;
use crate::pricing::units::{Multiplier, Tier};

#[derive(Clone, Debug)]
pub(super) struct Edit {
    pub label: String,
    pub kind: Kind,
    pub from: Option<u64>,
    pub to: u64,
}

/// The source prices that bear on one card literal.
pub(super) struct Votes {
    pub label: String,
    pub kind: Kind,
    /// The literal as written (`None`: not written; a fallback applies).
    pub from: Option<u64>,
    /// What the card charges from it now.
    pub have: u64,
    /// (price, source key)
    pub votes: Vec<(u64, String)>,
}

pub(super) struct Target {
    pub key: Literal,
    pub label: String,
    pub from: Option<u64>,
}

/// The card literal a default-tier, short-context rate of `resolved` comes from, or why it is
/// derived (and so not rewritten).
pub(super) fn provenance(
    resolved: &Resolved,
    kind: Kind,
    card: &CardDoc,
) -> Result<Target, String> {
    let e = resolved.model();
    let label = entry_label(e);
    if resolved.profile_multiplier() != Multiplier::ONE {
        return Err(format!(
            "the card's {} × {} for {} profiles",
            base_value(e, resolved, kind),
            resolved.profile_multiplier(),
            resolved.scope().as_str()
        ));
    }
    let Some(model) = card.model_index(e) else {
        return Err("not stated in the card".into());
    };
    let at = |table| Literal { model, table, kind };
    if let Some(region) = resolved.region_override()
        && let Some(rp) = e.region(region)
    {
        let key = at(RateTable::Region(region.to_owned()));
        if card.states(&key) {
            return Ok(Target {
                key,
                label: format!("{label} [{region}]"),
                from: kind.get_adjust(&rp.adjust),
            });
        }
        if rp.adjust.multiplier != Multiplier::ONE {
            return Err(format!(
                "the card's {region} price is a multiplier ({})",
                rp.adjust.multiplier
            ));
        }
    }
    let key = at(RateTable::Base);
    if card.states(&key) {
        return Ok(Target {
            key,
            label,
            from: Some(kind.get(&e.rates)),
        });
    }
    if e.caching {
        Ok(Target {
            key,
            label,
            from: None,
        })
    } else {
        Err("not stated in the card".into())
    }
}

pub(super) fn base_value(e: &ModelPrice, resolved: &Resolved, kind: Kind) -> String {
    let base = resolved
        .region_override()
        .and_then(|r| e.region(r))
        .map_or(e.rates, |rp| rp.adjust.apply(e.rates));
    usd(kind.get(&base))
}

impl Kind {
    pub(super) fn get_adjust(self, a: &Adjust) -> Option<u64> {
        match self {
            Kind::Input => a.input,
            Kind::Output => a.output,
            Kind::CacheRead => a.cache_read,
            Kind::CacheWrite => a.cache_write,
            Kind::CacheWrite1h => a.cache_write_1h,
        }
    }
}

pub(super) fn entry_label(e: &ModelPrice) -> String {
    match &e.effective_from {
        Some(d) => format!("{} (from {d})", e.id),
        None => e.id.clone(),
    }
}

/// Long-context rates: compared when the card has a `long_context` table; otherwise noted.
pub(super) fn long_context_votes(
    fact: &Fact,
    resolved: &Resolved,
    card: &CardDoc,
    votes: &mut BTreeMap<Literal, Votes>,
    notes: &mut Vec<String>,
) {
    let Some(long) = fact.rates.long else {
        return;
    };
    let e = resolved.model();
    let Some(lc) = &e.long_context else {
        let note = format!(
            "{}: the source has prices above {LITELLM_LONG_CONTEXT_THRESHOLD} prompt tokens; the card has no long_context (add one if Bedrock bills it)",
            e.id
        );
        if !notes.contains(&note) {
            notes.push(note);
        }
        return;
    };
    if lc.threshold != LITELLM_LONG_CONTEXT_THRESHOLD {
        let note = format!(
            "{}: the card's long_context threshold is {}, the source's {LITELLM_LONG_CONTEXT_THRESHOLD}",
            e.id, lc.threshold
        );
        if !notes.contains(&note) {
            notes.push(note);
        }
        return;
    }
    let Some(rates) = resolved.rates(Tier::Default, true) else {
        return;
    };
    let model = card.model_index(e);
    let pairs = [
        (Kind::Input, long.input),
        (Kind::Output, long.output),
        (Kind::CacheRead, long.cache_read),
        (Kind::CacheWrite, long.cache_write),
    ];
    for (kind, want) in pairs {
        let Some(want) = want else { continue };
        if kind.is_cache() && !e.caching {
            continue;
        }
        let have = kind.get(&rates);
        let key = model.map(|model| Literal {
            model,
            table: RateTable::LongContext,
            kind,
        });
        match key {
            Some(key) if card.states(&key) && resolved.profile_multiplier() == Multiplier::ONE => {
                votes
                    .entry(key)
                    .or_insert_with(|| Votes {
                        label: format!("{} long_context", entry_label(e)),
                        kind,
                        from: kind.get_adjust(&lc.adjust),
                        have,
                        votes: Vec::new(),
                    })
                    .votes
                    .push((want, fact.key.clone()));
            }
            _ if have != want => notes.push(format!(
                "{} long_context {}: card {}, source {} (derived; review by hand)",
                fact.call_id,
                kind.name(),
                usd(have),
                usd(want)
            )),
            _ => {}
        }
    }
}
