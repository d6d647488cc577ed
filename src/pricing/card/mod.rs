//! The rate card: `rates/*.toml` parsed in two steps (raw serde types that reject unknown keys,
//! then validated prices), plus the date checks `rates check` runs. `docs/rate-card.md` is the
//! format's reference; how a call finds its entry is in `resolve.rs`.

mod raw;
#[cfg(test)]
mod tests;
mod validate;

use crate::file_error::{FileError, FileErrors};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::billing_units::GuardrailRates;
use super::date::{self, CardDate};
use super::entry::ModelPrice;
use super::model_id::split_profile;

pub use super::model_id::PROFILE_PREFIXES;

/// `rates check` warns when a card's `updated` date is more than this many days old.
pub const STALE_AFTER_DAYS: i64 = 90;

#[derive(Debug)]
pub struct RateCard {
    pub version: String,
    updated: Option<CardDate>,
    updated_line: usize,
    /// Entries by id, each list sorted by `effective_from` (undated first).
    models: HashMap<String, Vec<Arc<ModelPrice>>>,
    arns: HashMap<String, ArnMapping>,
    /// `[guardrails]`: the price of guardrail policy units, whatever model the call used.
    guardrails: GuardrailRates,
    /// `[[ladder]]`: the next cheaper model of each model on a right-sizing ladder.
    cheaper: HashMap<String, String>,
    placeholder: Arc<ModelPrice>,
    pub(crate) file: String,
    pub(crate) text: String,
}

impl Default for RateCard {
    fn default() -> Self {
        RateCard {
            version: String::new(),
            updated: None,
            updated_line: 0,
            models: HashMap::new(),
            arns: HashMap::new(),
            guardrails: GuardrailRates::default(),
            cheaper: HashMap::new(),
            placeholder: Arc::new(ModelPrice::placeholder(
                "provisioned",
                "Provisioned throughput (no per-token price)",
            )),
            file: String::new(),
            text: String::new(),
        }
    }
}

/// An `[[arn]]` entry: an opaque ARN (application inference profile, provisioned, custom or
/// imported model) and what it is priced as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArnMapping {
    pub arn: String,
    /// The model or profile id it is priced as (for `provisioned`, the model it serves).
    pub model: Option<String>,
    /// Provisioned throughput: tokens counted, no per-token price.
    pub provisioned: bool,
}

/// A card together with what validation had to say about it.
#[derive(Debug)]
pub struct LoadedCard {
    pub card: RateCard,
    pub warnings: Vec<CardError>,
}

/// A problem in a rate card file, located by line (1-based).
pub type CardError = FileError;
/// Every error found in a card (the checker reports them all, not just the first).
pub type CardErrors = FileErrors;

impl RateCard {
    /// Reads and validates a card file.
    pub fn load(path: &Path) -> Result<LoadedCard, CardErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            FileErrors(vec![FileError {
                file: file.clone(),
                line: 0,
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(&text, &file)
    }

    /// Number of `[[model]]` entries (a model with dated successors counts once per entry).
    pub fn len(&self) -> usize {
        self.models.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// When the card's prices were last checked (`updated`).
    pub fn updated(&self) -> Option<&CardDate> {
        self.updated.as_ref()
    }

    /// All entries, sorted by id, then by `effective_from` (undated first).
    pub fn models(&self) -> Vec<Arc<ModelPrice>> {
        let mut v: Vec<_> = self.models.values().flatten().cloned().collect();
        v.sort_by(|a, b| {
            a.id.cmp(&b.id).then_with(|| {
                let at = |m: &ModelPrice| m.effective_from.as_ref().map(CardDate::at);
                at(a).cmp(&at(b))
            })
        });
        v
    }

    /// Date-dependent warnings for `rates check`: prices last `updated` more than
    /// [`STALE_AFTER_DAYS`] days before `now`, a missing or future `updated` date.
    pub fn age_warnings(&self, now: SystemTime) -> Vec<CardError> {
        let at = |line: usize, message: String| FileError {
            file: self.file.clone(),
            line,
            message,
        };
        let Some(updated) = &self.updated else {
            return vec![at(
                1,
                "no `updated` date, so the age of these prices is unknown; add e.g. `updated = 2026-11-23` when you check them".into(),
            )];
        };
        let age = date::days_between(updated.at(), now);
        if age > STALE_AFTER_DAYS {
            vec![at(
                self.updated_line,
                format!(
                    "prices last updated {updated}, {age} days ago (more than {STALE_AFTER_DAYS}): check them against the sources (`bedrock-meter rates import` shows what changed) and bump `updated`"
                ),
            )]
        } else if age < -1 {
            vec![at(
                self.updated_line,
                format!("`updated` {updated} is in the future"),
            )]
        } else {
            Vec::new()
        }
    }

    /// Guardrail prices (`[guardrails]`), per 1,000 units of each policy.
    pub fn guardrail_rates(&self) -> &GuardrailRates {
        &self.guardrails
    }

    /// The next cheaper model of `model_id` on its `[[ladder]]`, as the client would call it:
    /// an inference profile's prefix (`us.`, `global.`) is kept.
    pub fn cheaper(&self, model_id: &str) -> Option<String> {
        if let Some(next) = self.cheaper.get(model_id) {
            return Some(next.clone());
        }
        let (_, base) = crate::pricing::split_profile(model_id);
        let next = self.cheaper.get(base)?;
        let prefix = &model_id[..model_id.len() - base.len()];
        Some(format!("{prefix}{next}"))
    }

    pub(crate) fn entries(&self, id: &str) -> Option<&[Arc<ModelPrice>]> {
        self.models.get(id).map(Vec::as_slice)
    }

    pub(crate) fn arn_target(&self, id: &str) -> Option<&ArnMapping> {
        if self.arns.is_empty() {
            return None;
        }
        self.arns.get(id)
    }

    pub(crate) fn placeholder(&self) -> Arc<ModelPrice> {
        self.placeholder.clone()
    }

    /// Every id in the card, without profile prefixes, sorted and deduplicated.
    pub(crate) fn base_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.models.keys().map(|id| split_profile(id).1).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}
