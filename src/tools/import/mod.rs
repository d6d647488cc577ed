//! `rates import`: reads LiteLLM's public `model_prices_and_context_window.json`, keeps its
//! Bedrock prices, and proposes an updated card as a reviewable diff against the current one.
//!
//! How source keys are read:
//! - only entries with `litellm_provider` `bedrock` or `bedrock_converse`, a per-token
//!   `input_cost_per_token`, and a text `mode` (chat, completion, embedding, or none);
//! - `bedrock/`, `bedrock/converse/`, `bedrock/invoke/` and `bedrock/REGION/` key prefixes are
//!   read; other `/` paths (commitment terms, image sizes) and Vertex-style `@` ids are skipped;
//! - a bare key (`anthropic.claude-…`) is the model's list price, which is what a card prices
//!   `global.<id>` at; a `us.`/`eu.`/… key is compared with that profile; `bedrock/REGION/<id>`
//!   with the bare id called in that Region.
//!
//! What is proposed: a rate that the card states literally (the matched entry's own value, or a
//! Region override's, with no profile multiplier on top) is rewritten in place, or inserted
//! into the entry when the card left it to a fallback; models the card cannot price are
//! appended as new `[[model]]` entries. Everything else that still disagrees once those edits
//! are made (prices derived through a multiplier, conflicting source prices) is listed for a
//! person to review; nothing is deleted.

mod edit;
#[cfg(test)]
mod import_tests;
mod literal;
mod new_entry;
mod source;
mod target;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::SystemTime;

use self::edit::CardDoc;
use self::literal::{Kind, Literal};
use self::new_entry::new_entry;
use self::source::{BASE_REGION, Fact, SourceRates, read_facts};
use self::target::{Edit, Votes, entry_label, long_context_votes, provenance};
use crate::money::micros_to_usd_string;
use crate::pricing::card::RateCard;
use crate::pricing::model_id::split_profile;
use crate::pricing::units::{Call, Multiplier, Tier};

/// What an import found and the card it proposes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Bedrock prices read from the source (after skipping duplicates and other kinds).
    pub source_prices: usize,
    /// Models the card cannot price, appended to the proposed card.
    pub added: Vec<String>,
    /// Rates rewritten (or inserted) in the proposed card.
    pub changed: Vec<String>,
    /// Models in the card that the source does not list (kept).
    pub not_in_source: Vec<String>,
    /// Disagreements left for a person: not changed in the proposed card.
    pub review: Vec<String>,
    pub notes: Vec<String>,
    proposed: String,
}

impl ImportReport {
    /// The proposed card (the current card's text with the changes applied and new models
    /// appended; comments and layout kept).
    pub fn proposed_toml(&self) -> &str {
        &self.proposed
    }

    /// True when the proposed card differs from the current one.
    pub fn has_changes(&self) -> bool {
        !self.added.is_empty() || !self.changed.is_empty()
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "LiteLLM import: {} read; {} added, {} changed, {} not in the source, {} to review",
            plural(self.source_prices, "Bedrock price"),
            plural(self.added.len(), "model"),
            plural(self.changed.len(), "rate"),
            plural(self.not_in_source.len(), "model"),
            self.review.len()
        )?;
        for (title, lines) in [
            ("added (appended to the card):", &self.added),
            ("changed:", &self.changed),
            ("not in the source (kept in the card):", &self.not_in_source),
            ("to review by hand (not changed):", &self.review),
            ("notes:", &self.notes),
        ] {
            if lines.is_empty() {
                continue;
            }
            writeln!(f, "{title}")?;
            for line in lines {
                writeln!(f, "  {line}")?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a LiteLLM model price file: {0}")]
    Source(String),
    #[error("the proposed card does not validate (please report this): {0}")]
    Proposed(String),
}

/// Imports against the prices in force now. See [`import_litellm_at`].
pub fn import_litellm(json: &str, current: &RateCard) -> Result<ImportReport, ImportError> {
    import_litellm_at(json, current, SystemTime::now())
}

/// Compares LiteLLM's Bedrock prices with `current`'s prices in force at `at` (Standard tier,
/// no latency optimization, short context except for the long-context rates) and proposes an
/// updated card.
pub fn import_litellm_at(
    json: &str,
    current: &RateCard,
    at: SystemTime,
) -> Result<ImportReport, ImportError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| ImportError::Source(e.to_string()))?;
    let object = value
        .as_object()
        .ok_or_else(|| ImportError::Source("the top level is not a JSON object".into()))?;
    let mut report = ImportReport::default();
    let facts = read_facts(object, &mut report.notes);
    report.source_prices = facts.len();
    let mut doc = CardDoc::parse(&current.text).map_err(ImportError::Proposed)?;

    let call = |id, region| call_at(id, region, at);

    // Pass 1: every source price votes for the card literal it corresponds to (agreeing ones
    // included); a literal is rewritten only when all its votes agree.
    let mut votes: BTreeMap<Literal, Votes> = BTreeMap::new();
    let mut region_tables: BTreeMap<(usize, String), Vec<(Kind, u64)>> = BTreeMap::new();
    let mut region_lines: Vec<String> = Vec::new();
    let mut missing: BTreeMap<String, Vec<&Fact>> = BTreeMap::new();
    let mut caching_noted = BTreeSet::new();
    for fact in &facts {
        let Some(resolved) = current.resolve(&call(&fact.call_id, fact.region.as_deref())) else {
            missing
                .entry(split_profile(&fact.call_id).1.to_owned())
                .or_default()
                .push(fact);
            continue;
        };
        let Some(card_rates) = resolved.rates(Tier::Default, false) else {
            continue;
        };
        let entry = resolved.model();
        if let Some(region) = fact.region.as_deref()
            && region != BASE_REGION
            && resolved.region_override().is_none()
        {
            // A Region the card prices at the base rate: propose a Region table rather than
            // rewriting the base.
            if resolved.profile_multiplier() == Multiplier::ONE
                && let Some(model) = doc.model_index(entry)
            {
                let mut differs = false;
                for kind in Kind::ALL {
                    let Some(want) = fact.rates.get(kind) else {
                        continue;
                    };
                    let have = kind.get(&card_rates);
                    if have != want && (entry.caching || !kind.is_cache()) {
                        differs = true;
                        region_lines.push(format!(
                            "~ {} [{region}] {}: {} -> {} (new Region price)",
                            entry_label(entry),
                            kind.name(),
                            usd(have),
                            usd(want)
                        ));
                    }
                }
                if differs {
                    region_tables.insert(
                        (model, region.to_owned()),
                        region_rates(&fact.rates, entry.caching),
                    );
                }
            }
            continue;
        }
        for kind in Kind::ALL {
            let Some(want) = fact.rates.get(kind) else {
                continue;
            };
            if kind.is_cache() && !entry.caching {
                if caching_noted.insert(entry.id.clone()) {
                    report.notes.push(format!(
                        "{}: the source lists cache prices; the card says `caching = false` (kept)",
                        entry.id
                    ));
                }
                continue;
            }
            if let Ok(target) = provenance(&resolved, kind, &doc) {
                votes
                    .entry(target.key)
                    .or_insert_with(|| Votes {
                        label: target.label,
                        kind,
                        from: target.from,
                        have: kind.get(&card_rates),
                        votes: Vec::new(),
                    })
                    .votes
                    .push((want, fact.key.clone()));
            }
        }
        long_context_votes(fact, &resolved, &doc, &mut votes, &mut report.notes);
    }
    let mut edits: BTreeMap<Literal, Edit> = BTreeMap::new();
    let mut conflicts: Vec<String> = Vec::new();
    for (key, v) in votes {
        let wanted: BTreeSet<u64> = v.votes.iter().map(|(want, _)| *want).collect();
        match wanted.len() {
            1 => {
                let to = wanted.first().copied().unwrap_or(v.have);
                if to != v.have {
                    edits.insert(
                        key,
                        Edit {
                            label: v.label,
                            kind: v.kind,
                            from: v.from,
                            to,
                        },
                    );
                }
            }
            _ => conflicts.push(format!(
                "! {} {}: the source disagrees with itself ({}); not changed",
                v.label,
                v.kind.name(),
                v.votes
                    .iter()
                    .map(|(want, key)| format!("{} {key}", usd(*want)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    // Unchanged, the text is kept as it is: `toml_edit` would end it with a newline.
    let mut proposed = if edits.is_empty() && region_tables.is_empty() {
        current.text.clone()
    } else {
        for (at, edit) in &edits {
            doc.set(at, edit.to);
        }
        for ((model, region), rates) in &region_tables {
            doc.add_region(*model, region, rates);
        }
        doc.to_string()
    };
    for edit in edits.values() {
        report.changed.push(format!(
            "~ {} {}: {} -> {}",
            edit.label,
            edit.kind.name(),
            edit.from.map_or_else(|| "unset".to_owned(), usd),
            usd(edit.to)
        ));
    }
    report.changed.extend(region_lines);
    if !missing.is_empty() {
        if !proposed.ends_with('\n') {
            proposed.push('\n');
        }
        proposed.push_str(
            "\n# ---------------------------------------------------------------------------------------\n\
             # Added by `bedrock-meter rates import` from LiteLLM's price file: review before use.\n\
             # ---------------------------------------------------------------------------------------\n",
        );
    }
    for (id, group) in &missing {
        let (block, summary) = new_entry(id, group, &mut report.review);
        proposed.push('\n');
        proposed.push_str(&block);
        report.added.push(format!("+ {id}: {summary}"));
    }

    let checked = RateCard::parse(&proposed, &current.file)
        .map_err(|e| ImportError::Proposed(e.to_string()))?
        .card;
    let checked_doc = CardDoc::parse(&proposed).map_err(ImportError::Proposed)?;

    // Pass 2: what still disagrees once the edits are made.
    for fact in &facts {
        let Some(resolved) = checked.resolve(&call(&fact.call_id, fact.region.as_deref())) else {
            continue;
        };
        let Some(card_rates) = resolved.rates(Tier::Default, false) else {
            continue;
        };
        if missing.contains_key(split_profile(&fact.call_id).1) {
            continue; // new entries: their irregularities were reported when they were built
        }
        for kind in Kind::ALL {
            let Some(want) = fact.rates.get(kind) else {
                continue;
            };
            let have = kind.get(&card_rates);
            if have == want || (kind.is_cache() && !resolved.model().caching) {
                continue;
            }
            // A literal the source disagrees about is reported once, below.
            let Err(why) = provenance(&resolved, kind, &checked_doc) else {
                continue;
            };
            report.review.push(format!(
                "! {}{} {}: card {}, source {} ({why})",
                fact.call_id,
                fact.region
                    .as_deref()
                    .map(|r| format!(" in {r}"))
                    .unwrap_or_default(),
                kind.name(),
                usd(have),
                usd(want),
            ));
        }
    }
    report.review.extend(conflicts);

    let in_source: BTreeSet<&str> = facts.iter().map(|f| split_profile(&f.call_id).1).collect();
    report.not_in_source = current
        .base_ids()
        .into_iter()
        .filter(|id| !in_source.contains(id))
        .map(|id| format!("- {id}"))
        .collect();
    if report.has_changes() {
        report
            .notes
            .push("bump `version` and `updated` in the card when you accept these changes".into());
    }
    report.proposed = proposed;
    Ok(report)
}

fn call_at<'a>(model_id: &'a str, region: Option<&'a str>, at: SystemTime) -> Call<'a> {
    Call {
        model_id,
        region,
        latency_optimized: false,
        at,
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The source's rates for a new Region table (cache rates only for caching models).
fn region_rates(rates: &SourceRates, caching: bool) -> Vec<(Kind, u64)> {
    Kind::ALL
        .into_iter()
        .filter(|kind| caching || !kind.is_cache())
        .filter_map(|kind| Some((kind, rates.get(kind)?)))
        .collect()
}

fn usd(micros: u64) -> String {
    micros_to_usd_string(micros)
}
