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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::time::SystemTime;

use crate::money::micros_to_usd_string;
use crate::names::valid_region;
use crate::pricing::card::RateCard;
use crate::pricing::entry::{ModelPrice, RateSpans};
use crate::pricing::model_id::split_profile;
use crate::pricing::resolve::Resolved;
use crate::pricing::units::{Call, Multiplier, Rates, Scope, Tier};

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

    let call = |id, region| call_at(id, region, at);

    // Pass 1: every source price votes for the card literal it corresponds to (agreeing ones
    // included); a literal is rewritten only when all its votes agree.
    let mut votes: BTreeMap<EditKey, Votes> = BTreeMap::new();
    let mut region_tables: BTreeMap<(usize, String), String> = BTreeMap::new();
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
                && let Some(at) = entry.spans.table_end
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
                        (at, region.to_owned()),
                        region_table(region, &fact.rates, entry.caching),
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
            if let Ok(target) = provenance(&resolved, kind) {
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
        long_context_votes(fact, &resolved, &mut votes, &mut report.notes);
    }
    let mut edits: BTreeMap<EditKey, Edit> = BTreeMap::new();
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

    let mut proposed = apply_edits(&current.text, &edits, &region_tables);
    let mut in_file_order: Vec<(&EditKey, &Edit)> = edits.iter().collect();
    in_file_order.sort_by_key(|(key, edit)| (key.position(), edit.kind));
    for (_, edit) in in_file_order {
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
            let Err(why) = provenance(&resolved, kind) else {
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

/// One Bedrock price from the source, keyed the way the card is looked up.
#[derive(Debug)]
struct Fact {
    key: String,
    /// The id to price in the card: `global.<id>` for a bare source key.
    call_id: String,
    region: Option<String>,
    rates: SourceRates,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SourceRates {
    input: u64,
    output: u64,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
    cache_write_1h: Option<u64>,
    long: Option<LongRates>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LongRates {
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
}

/// The Region a card's base rates are for.
const BASE_REGION: &str = "us-east-1";

/// LiteLLM's long-context keys are `…_above_200k_tokens`.
const LITELLM_LONG_CONTEXT_THRESHOLD: u64 = 200_000;

impl SourceRates {
    fn get(&self, kind: Kind) -> Option<u64> {
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
type CallKey = (String, Option<String>);

fn read_facts(
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
fn normalize_key(key: &str) -> Option<(String, Option<String>, u8)> {
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
fn per_token_to_micros(usd_per_token: f64) -> Option<(u64, bool)> {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Input,
    Output,
    CacheRead,
    CacheWrite,
    CacheWrite1h,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Input,
        Kind::Output,
        Kind::CacheRead,
        Kind::CacheWrite,
        Kind::CacheWrite1h,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Input => "input",
            Kind::Output => "output",
            Kind::CacheRead => "cache_read",
            Kind::CacheWrite => "cache_write",
            Kind::CacheWrite1h => "cache_write_1h",
        }
    }

    fn is_cache(self) -> bool {
        !matches!(self, Kind::Input | Kind::Output)
    }

    fn get(self, r: &Rates) -> u64 {
        match self {
            Kind::Input => r.input,
            Kind::Output => r.output,
            Kind::CacheRead => r.cache_read,
            Kind::CacheWrite => r.cache_write,
            Kind::CacheWrite1h => r.cache_write_1h,
        }
    }

    fn span(self, s: &RateSpans) -> Option<&std::ops::Range<usize>> {
        match self {
            Kind::Input => s.input.as_ref(),
            Kind::Output => s.output.as_ref(),
            Kind::CacheRead => s.cache_read.as_ref(),
            Kind::CacheWrite => s.cache_write.as_ref(),
            Kind::CacheWrite1h => s.cache_write_1h.as_ref(),
        }
    }
}

/// Where an edit goes: over a literal, or a new line inserted into an entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum EditKey {
    Replace { start: usize, end: usize },
    Insert { at: usize, kind: Kind },
}

impl EditKey {
    fn position(&self) -> usize {
        match self {
            EditKey::Replace { start, .. } => *start,
            EditKey::Insert { at, .. } => *at,
        }
    }
}

#[derive(Clone, Debug)]
struct Edit {
    label: String,
    kind: Kind,
    from: Option<u64>,
    to: u64,
}

/// The source prices that bear on one card literal.
struct Votes {
    label: String,
    kind: Kind,
    /// The literal as written (`None`: not written; a fallback applies).
    from: Option<u64>,
    /// What the card charges from it now.
    have: u64,
    /// (price, source key)
    votes: Vec<(u64, String)>,
}

struct Target {
    key: EditKey,
    label: String,
    from: Option<u64>,
}

/// The card literal a default-tier, short-context rate of `resolved` comes from, or why it is
/// derived (and so not rewritten).
fn provenance(resolved: &Resolved, kind: Kind) -> Result<Target, String> {
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
    if let Some(region) = resolved.region_override()
        && let Some(rp) = e.region(region)
    {
        if let Some(span) = kind.span(&rp.adjust.spans) {
            return Ok(Target {
                key: EditKey::Replace {
                    start: span.start,
                    end: span.end,
                },
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
    if let Some(span) = kind.span(&e.spans) {
        return Ok(Target {
            key: EditKey::Replace {
                start: span.start,
                end: span.end,
            },
            label,
            from: Some(kind.get(&e.rates)),
        });
    }
    match e.spans.insert_at {
        Some(at) if e.caching => Ok(Target {
            key: EditKey::Insert { at, kind },
            label,
            from: None,
        }),
        _ => Err("not stated in the card".into()),
    }
}

fn base_value(e: &ModelPrice, resolved: &Resolved, kind: Kind) -> String {
    let base = resolved
        .region_override()
        .and_then(|r| e.region(r))
        .map_or(e.rates, |rp| rp.adjust.apply(e.rates));
    usd(kind.get(&base))
}

impl Kind {
    fn get_adjust(self, a: &crate::pricing::entry::Adjust) -> Option<u64> {
        match self {
            Kind::Input => a.input,
            Kind::Output => a.output,
            Kind::CacheRead => a.cache_read,
            Kind::CacheWrite => a.cache_write,
            Kind::CacheWrite1h => a.cache_write_1h,
        }
    }
}

fn entry_label(e: &ModelPrice) -> String {
    match &e.effective_from {
        Some(d) => format!("{} (from {d})", e.id),
        None => e.id.clone(),
    }
}

/// Long-context rates: compared when the card has a `long_context` table; otherwise noted.
fn long_context_votes(
    fact: &Fact,
    resolved: &Resolved,
    votes: &mut BTreeMap<EditKey, Votes>,
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
    let Some(card) = resolved.rates(Tier::Default, true) else {
        return;
    };
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
        let have = kind.get(&card);
        match kind.span(&lc.adjust.spans) {
            Some(span) if resolved.profile_multiplier() == Multiplier::ONE => {
                votes
                    .entry(EditKey::Replace {
                        start: span.start,
                        end: span.end,
                    })
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

fn apply_edits(
    text: &str,
    edits: &BTreeMap<EditKey, Edit>,
    region_tables: &BTreeMap<(usize, String), String>,
) -> String {
    // (start, end, order, replacement): applied back to front so earlier offsets stay valid;
    // several inserts at one offset end up in `order`.
    let mut patches: Vec<(usize, usize, usize, String)> = Vec::new();
    for (key, edit) in edits {
        match key {
            EditKey::Replace { start, end } => {
                patches.push((*start, *end, 0, micros_to_usd_string(edit.to)));
            }
            EditKey::Insert { at, kind } => {
                let line = format!("{} = {}\n", kind.name(), micros_to_usd_string(edit.to));
                patches.push((*at, *at, *kind as usize, line));
            }
        }
    }
    for (i, ((at, _), table)) in region_tables.iter().enumerate() {
        patches.push((*at, *at, 100 + i, table.clone()));
    }
    patches.sort_by_key(|p| (p.0, p.2));
    let mut out = text.to_owned();
    for (start, end, _, replacement) in patches.into_iter().rev() {
        let ok = start <= end
            && end <= out.len()
            && out.is_char_boundary(start)
            && out.is_char_boundary(end);
        if !ok {
            continue;
        }
        let mut replacement = replacement;
        if start == end && start > 0 && !out[..start].ends_with('\n') {
            replacement.insert(0, '\n');
        }
        out.replace_range(start..end, &replacement);
    }
    out
}

/// A `[model.regions.R]` table with the source's rates (cache rates only for caching models).
fn region_table(region: &str, rates: &SourceRates, caching: bool) -> String {
    let mut t = format!("\n[model.regions.{region}]\n");
    for kind in Kind::ALL {
        if kind.is_cache() && !caching {
            continue;
        }
        if let Some(v) = rates.get(kind) {
            let _ = writeln!(t, "{} = {}", kind.name(), micros_to_usd_string(v));
        }
    }
    t
}

/// A `[[model]]` block for a model the card does not have, and a one-line summary.
fn new_entry(id: &str, facts: &[&Fact], review: &mut Vec<String>) -> (String, String) {
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

fn new_entry_block(
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
fn ratio(from: &SourceRates, to: &SourceRates) -> Option<Multiplier> {
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

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn usd(micros: u64) -> String {
    micros_to_usd_string(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let k = |s: &str| normalize_key(s).map(|(id, r, _)| (id, r));
        assert_eq!(
            k("anthropic.claude-x-v1:0"),
            Some(("anthropic.claude-x-v1:0".into(), None))
        );
        assert_eq!(
            k("bedrock/converse/amazon.nova-lite-v1:0"),
            Some(("amazon.nova-lite-v1:0".into(), None))
        );
        assert_eq!(
            k("bedrock/eu-west-1/meta.llama3-70b-instruct-v1:0"),
            Some((
                "meta.llama3-70b-instruct-v1:0".into(),
                Some("eu-west-1".into())
            ))
        );
        assert_eq!(
            k("bedrock/us-east-1/1-month-commitment/anthropic.claude-v2:1"),
            None
        );
        assert_eq!(
            k("1024-x-1024/50-steps/bedrock/amazon.nova-canvas-v1:0"),
            None
        );
        assert_eq!(k("anthropic.claude-haiku-4-5@20251001"), None);
        assert_eq!(k("gpt-4o"), None);
        // global. beats bare beats bedrock/-routed.
        let rank = |s: &str| normalize_key(s).map(|(_, _, r)| r);
        assert!(rank("global.a.b") < rank("a.b"));
        assert!(rank("a.b") < rank("bedrock/a.b"));
    }

    #[test]
    fn per_token_prices() {
        assert_eq!(per_token_to_micros(3e-06), Some((3_000_000, true)));
        assert_eq!(per_token_to_micros(3.3e-07), Some((330_000, true)));
        assert_eq!(per_token_to_micros(5.46875e-07), Some((546_875, true)));
        assert_eq!(per_token_to_micros(8.75e-09), Some((8_750, true)));
        assert_eq!(per_token_to_micros(1.23456789e-07), Some((123_457, false)));
        assert_eq!(per_token_to_micros(-1.0), None);
    }

    #[test]
    fn ratios() {
        let r = |i, o, cr| SourceRates {
            input: i,
            output: o,
            cache_read: cr,
            ..Default::default()
        };
        assert_eq!(
            ratio(
                &r(300_000, 2_500_000, Some(75_000)),
                &r(330_000, 2_750_000, Some(82_500))
            ),
            Some(Multiplier::from_ten_thousandths(11_000))
        );
        assert_eq!(
            ratio(&r(300_000, 2_500_000, None), &r(330_000, 2_800_000, None)),
            None
        );
        assert_eq!(ratio(&r(0, 1, None), &r(0, 1, None)), None);
    }
}

#[cfg(test)]
mod import_tests {
    use std::path::Path;

    use super::*;
    use crate::pricing::{Call, Tier, Usage, utc_date};

    const EXCERPT: &str = include_str!("../../tests/fixtures/litellm-bedrock-excerpt.json");

    fn shipped() -> RateCard {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rates/bedrock.toml");
        RateCard::load(&path).unwrap().card
    }

    fn now() -> SystemTime {
        utc_date(2026, 11, 23).unwrap()
    }

    #[test]
    fn excerpt_against_the_shipped_card() {
        let card = shipped();
        let r = import_litellm_at(EXCERPT, &card, now()).unwrap();
        assert_eq!(r.source_prices, 14);
        assert_eq!(
            r.added,
            vec![
                "+ amazon.nova-2-pro-preview-20251202-v1:0: input 2.1875, output 17.50, cache_read 0.546875, cache_write 2.1875"
            ]
        );
        assert_eq!(
            r.changed,
            vec![
                "~ mistral.mistral-large-2402-v1:0 input: 4.00 -> 8.00",
                "~ mistral.mistral-large-2402-v1:0 output: 12.00 -> 24.00",
                "~ amazon.titan-text-express-v1 input: 0.20 -> 1.30",
                "~ amazon.titan-text-express-v1 output: 0.60 -> 1.70",
                "~ meta.llama3-70b-instruct-v1:0 [ap-south-1] input: 2.65 -> 3.18 (new Region price)",
                "~ meta.llama3-70b-instruct-v1:0 [ap-south-1] output: 3.50 -> 4.20 (new Region price)",
            ]
        );
        assert!(r.review.is_empty(), "{:#?}", r.review);
        assert_eq!(
            r.notes,
            vec![
                "anthropic.claude-3-5-sonnet-20240620-v1:0: the source has prices above 200000 prompt tokens; the card has no long_context (add one if Bedrock bills it)",
                "anthropic.claude-3-haiku-20240307-v1:0: the source lists cache prices; the card says `caching = false` (kept)",
                "bump `version` and `updated` in the card when you accept these changes",
            ]
        );
        // Everything the excerpt does not list is kept and reported.
        assert_eq!(r.not_in_source.len(), card.base_ids().len() - 8);
        assert!(
            r.not_in_source
                .contains(&"- cohere.command-text-v14".to_owned())
        );
        assert!(!r.not_in_source.iter().any(|l| l.contains("nova-micro")));
        let text = r.to_string();
        assert!(
            text.starts_with("LiteLLM import: 14 Bedrock prices read; 1 model added, 6 rates changed, 46 models not in the source, 0 to review\nadded (appended to the card):\n  + amazon.nova-2-pro"),
            "{text}"
        );

        // The proposed card is the old text with those edits: it parses, prices the changes,
        // and importing the same source again finds nothing more to do.
        let proposed = RateCard::parse(r.proposed_toml(), "proposed.toml")
            .unwrap()
            .card;
        assert!(
            r.proposed_toml()
                .starts_with(&card.text[..card.text.find("# Lookup").unwrap()])
        );
        assert!(r.proposed_toml().contains(
            "output = 5.88\n\n[model.regions.ap-south-1]\ninput = 3.18\noutput = 4.20\n\n# The listed Bedrock price"
        ));
        let llama = proposed
            .resolve(&Call {
                model_id: "meta.llama3-70b-instruct-v1:0",
                region: Some("ap-south-1"),
                latency_optimized: false,
                at: now(),
            })
            .unwrap();
        let usage = Usage {
            input: 1000,
            output: 100,
            ..Usage::default()
        };
        assert_eq!(
            llama.quote(&usage, Tier::Default).cost.unwrap().total(),
            1000 * 3_180_000 + 100 * 4_200_000
        );
        let again = import_litellm_at(EXCERPT, &proposed, now()).unwrap();
        assert!(!again.has_changes(), "{again}");
        assert!(again.review.is_empty(), "{again}");
    }

    const OLD_STYLE: &str = r#"version = "t"
updated = 2026-11-01

# Old style: the bare id is the geographic price, global. an exact entry.
[[model]]
id = "anthropic.claude-sonnet-4-5-20250929-v1:0"
input = 3.30
output = 16.50
cache_read = 0.33
cache_write = 4.125

[[model]]
id = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
input = 3.00
output = 15.00
cache_read = 0.30
cache_write = 3.75

[[model]]
id = "amazon.nova-2-lite-v1:0"
input = 0.30
output = 2.50 # list price
cache_read = 0.075
cache_write = 0.30
profiles = { geo = 1.1 }
"#;

    const SOURCE: &str = r#"{
        "anthropic.claude-sonnet-4-5-20250929-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05, "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06, "cache_creation_input_token_cost_above_1hr": 6e-06},
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3.3e-06, "output_cost_per_token": 1.65e-05, "cache_read_input_token_cost": 3.3e-07, "cache_creation_input_token_cost": 4.125e-06, "cache_creation_input_token_cost_above_1hr": 6.6e-06},
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3.4e-06, "output_cost_per_token": 1.65e-05, "cache_read_input_token_cost": 3.3e-07, "cache_creation_input_token_cost": 4.125e-06, "cache_creation_input_token_cost_above_1hr": 6.6e-06},
        "amazon.nova-2-lite-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3e-07, "output_cost_per_token": 2.6e-06, "cache_read_input_token_cost": 7.5e-08},
        "bedrock/converse/amazon.nova-2-lite-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3e-07, "output_cost_per_token": 2.7e-06, "cache_read_input_token_cost": 7.5e-08},
        "us.amazon.nova-2-lite-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 3.4e-07, "output_cost_per_token": 2.86e-06, "cache_read_input_token_cost": 8.25e-08}
    }"#;

    #[test]
    fn literal_edits_inserts_conflicts_and_derived_prices() {
        let card = RateCard::parse(OLD_STYLE, "old.toml").unwrap().card;
        let r = import_litellm_at(SOURCE, &card, now()).unwrap();
        assert_eq!(
            r.to_string(),
            "LiteLLM import: 5 Bedrock prices read; 0 models added, 3 rates changed, 0 models not in the source, 2 to review
changed:
  ~ anthropic.claude-sonnet-4-5-20250929-v1:0 cache_write_1h: unset -> 6.60
  ~ global.anthropic.claude-sonnet-4-5-20250929-v1:0 cache_write_1h: unset -> 6.00
  ~ amazon.nova-2-lite-v1:0 output: 2.50 -> 2.60
to review by hand (not changed):
  ! us.amazon.nova-2-lite-v1:0 input: card 0.33, source 0.34 (the card's 0.30 × 1.1 for geo profiles)
  ! anthropic.claude-sonnet-4-5-20250929-v1:0 input: the source disagrees with itself (3.40 eu.anthropic.claude-sonnet-4-5-20250929-v1:0, 3.30 us.anthropic.claude-sonnet-4-5-20250929-v1:0); not changed
notes:
  amazon.nova-2-lite-v1:0 and bedrock/converse/amazon.nova-2-lite-v1:0 disagree; amazon.nova-2-lite-v1:0 is used
  bump `version` and `updated` in the card when you accept these changes
"
        );
        let want = OLD_STYLE
            .replace(
                "cache_write = 4.125\n",
                "cache_write = 4.125\ncache_write_1h = 6.60\n",
            )
            .replace(
                "cache_write = 3.75\n",
                "cache_write = 3.75\ncache_write_1h = 6.00\n",
            )
            .replace("output = 2.50 # list price", "output = 2.60 # list price");
        assert_eq!(r.proposed_toml(), want);
    }

    #[test]
    fn bad_sources_are_errors_not_panics() {
        let card = RateCard::parse("version = \"t\"\n", "t.toml").unwrap().card;
        assert!(matches!(
            import_litellm("not json", &card),
            Err(ImportError::Source(_))
        ));
        assert!(matches!(
            import_litellm("[1, 2]", &card),
            Err(ImportError::Source(_))
        ));
        // Odd values are skipped, not trusted.
        let r = import_litellm(
            r#"{"a.b": {"litellm_provider": "bedrock", "input_cost_per_token": -1},
                "c.d": {"litellm_provider": "bedrock", "input_cost_per_token": "cheap"},
                "e.f": "not an object",
                "g.h": {"litellm_provider": "bedrock", "input_cost_per_token": 1e300}}"#,
            &card,
        )
        .unwrap();
        assert_eq!(r.source_prices, 0);
    }

    #[test]
    fn edits_land_in_odd_layouts() {
        // Multi-byte text, no trailing newline, sub-tables after the keys.
        let text = "version = \"é\"\n[[model]]\nid = \"a.b\"\nname = \"Ünï\" # ü\ninput = 1\noutput = 1\ncache_read = 0.1\n[model.tiers]\nflex = 0.5\n\n# next\n[[model]]\nid = \"c.d\"\ninput = 1\noutput = 1\ncaching = false";
        let card = RateCard::parse(text, "odd.toml").unwrap().card;
        let json = r#"{
            "a.b": {"litellm_provider": "bedrock", "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06, "cache_read_input_token_cost": 1e-07, "cache_creation_input_token_cost": 1.25e-06, "cache_creation_input_token_cost_above_1hr": 2e-06},
            "c.d": {"litellm_provider": "bedrock", "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-06},
            "bedrock/eu-west-3/c.d": {"litellm_provider": "bedrock", "input_cost_per_token": 3e-06, "output_cost_per_token": 1e-06}
        }"#;
        let r = import_litellm_at(json, &card, now()).unwrap();
        assert_eq!(
            r.proposed_toml(),
            "version = \"é\"\n[[model]]\nid = \"a.b\"\nname = \"Ünï\" # ü\ninput = 1\noutput = 1\ncache_read = 0.1\ncache_write = 1.25\ncache_write_1h = 2.00\n[model.tiers]\nflex = 0.5\n\n# next\n[[model]]\nid = \"c.d\"\ninput = 2.00\noutput = 1\ncaching = false\n\n[model.regions.eu-west-3]\ninput = 3.00\noutput = 1.00\n"
        );
        assert!(RateCard::parse(r.proposed_toml(), "p.toml").is_ok());
    }

    #[test]
    fn new_models_get_profiles_from_the_source_ratio() {
        let card = RateCard::parse("version = \"t\"\n", "t.toml").unwrap().card;
        let json = r#"{
            "anthropic.claude-new-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 2e-07, "cache_creation_input_token_cost": 2.5e-06, "cache_creation_input_token_cost_above_1hr": 4e-06},
            "us.anthropic.claude-new-v1:0": {"litellm_provider": "bedrock_converse", "mode": "chat", "input_cost_per_token": 2.2e-06, "output_cost_per_token": 1.1e-05, "cache_read_input_token_cost": 2.2e-07, "cache_creation_input_token_cost": 2.75e-06, "cache_creation_input_token_cost_above_1hr": 4.4e-06},
            "bedrock/eu-west-2/meta.llama-new-v1:0": {"litellm_provider": "bedrock", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
        }"#;
        let r = import_litellm_at(json, &card, now()).unwrap();
        assert_eq!(
            r.added,
            vec![
                "+ anthropic.claude-new-v1:0: input 2.00, output 10.00, cache_read 0.20, cache_write 2.50, cache_write_1h 4.00, profiles geo = 1.1",
                "+ meta.llama-new-v1:0: input 1.00, output 2.00, caching = false",
            ]
        );
        let proposed = RateCard::parse(r.proposed_toml(), "p.toml").unwrap().card;
        let us = proposed
            .resolve(&Call {
                model_id: "us.anthropic.claude-new-v1:0",
                region: None,
                latency_optimized: false,
                at: now(),
            })
            .unwrap();
        assert_eq!(us.rates(Tier::Default, false).unwrap().input, 2_200_000);
        let again = import_litellm_at(json, &proposed, now()).unwrap();
        assert!(!again.has_changes() && again.review.is_empty(), "{again}");
    }
}
