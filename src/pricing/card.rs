//! The rate card: `rates/*.toml` parsed in two steps (raw serde types that reject unknown keys,
//! then validated prices), plus the date checks `rates check` runs. `docs/rate-card.md` is the
//! format's reference; how a call finds its entry is in `resolve.rs`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use super::date::{self, CardDate};
use super::entry::{
    Adjust, Given, LongContext, ModelPrice, Profiles, RateSpans, RegionPrice, Tiers,
};
use super::model_id::split_profile;
use super::units::{Call, Multiplier, Rates, Tier};

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Every error found in a card (the checker reports them all, not just the first).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct CardErrors(pub Vec<CardError>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    version: Spanned<String>,
    currency: Option<Spanned<String>>,
    updated: Option<Spanned<toml::Value>>,
    #[serde(default)]
    model: Vec<Spanned<RawModel>>,
    #[serde(default)]
    arn: Vec<Spanned<RawArn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: Spanned<String>,
    name: Option<Spanned<String>>,
    input: Spanned<f64>,
    output: Spanned<f64>,
    cache_read: Option<Spanned<f64>>,
    cache_write: Option<Spanned<f64>>,
    cache_write_1h: Option<Spanned<f64>>,
    caching: Option<Spanned<bool>>,
    effective_from: Option<Spanned<toml::Value>>,
    profiles: Option<Spanned<RawProfiles>>,
    tiers: Option<Spanned<RawTiers>>,
    regions: Option<BTreeMap<String, Spanned<RawAdjust>>>,
    latency_optimized: Option<Spanned<RawAdjust>>,
    long_context: Option<Spanned<RawLongContext>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfiles {
    global: Option<Spanned<f64>>,
    geo: Option<Spanned<f64>>,
    #[serde(rename = "us-gov")]
    us_gov: Option<Spanned<f64>>,
    #[serde(rename = "in-region")]
    in_region: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiers {
    priority: Option<Spanned<RawAdjust>>,
    flex: Option<Spanned<RawAdjust>>,
}

/// A multiplier (`priority = 1.75`) or a table of rates with an optional `multiplier`.
enum RawAdjust {
    Multiplier(f64),
    Table(RawRates),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRates {
    multiplier: Option<Spanned<f64>>,
    input: Option<Spanned<f64>>,
    output: Option<Spanned<f64>>,
    cache_read: Option<Spanned<f64>>,
    cache_write: Option<Spanned<f64>>,
    cache_write_1h: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLongContext {
    threshold: Spanned<i64>,
    multiplier: Option<Spanned<f64>>,
    input: Option<Spanned<f64>>,
    output: Option<Spanned<f64>>,
    cache_read: Option<Spanned<f64>>,
    cache_write: Option<Spanned<f64>>,
    cache_write_1h: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArn {
    arn: Spanned<String>,
    model: Option<Spanned<String>>,
    provisioned: Option<bool>,
}

impl<'de> Deserialize<'de> for RawAdjust {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAdjust;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a multiplier (a number) or a table of rates")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawAdjust, E> {
                Ok(RawAdjust::Multiplier(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawAdjust, E> {
                Ok(RawAdjust::Multiplier(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawAdjust, E> {
                Ok(RawAdjust::Multiplier(v as f64))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawAdjust, A::Error> {
                RawRates::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawAdjust::Table)
            }
        }
        d.deserialize_any(V)
    }
}

/// Collects located errors and warnings while validating.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<CardError>,
    warnings: Vec<CardError>,
}

impl Checker<'_> {
    fn at(&self, span: Option<Range<usize>>, message: String) -> CardError {
        CardError {
            file: self.file.to_owned(),
            line: span.map_or(0, |s| line_of(self.text, s.start)),
            message,
        }
    }

    fn error(&mut self, span: Option<Range<usize>>, message: String) {
        let e = self.at(span, message);
        self.errors.push(e);
    }

    fn warn(&mut self, span: Option<Range<usize>>, message: String) {
        let w = self.at(span, message);
        self.warnings.push(w);
    }

    /// A price in USD per 1M tokens as micro-dollars; 0 (and an error) if invalid.
    fn rate(&mut self, what: &str, value: &Spanned<f64>) -> u64 {
        match to_micros(*value.get_ref()) {
            Ok(v) => v,
            Err(why) => {
                self.error(Some(value.span()), format!("{what} {why}"));
                0
            }
        }
    }

    fn opt_rate(&mut self, what: &str, value: Option<&Spanned<f64>>) -> Option<u64> {
        value.map(|v| self.rate(what, v))
    }

    fn multiplier(&mut self, what: &str, value: f64, span: Option<Range<usize>>) -> Multiplier {
        match Multiplier::from_f64(value) {
            Ok(m) => m,
            Err(why) => {
                self.error(span, format!("{what} {why}"));
                Multiplier::ONE
            }
        }
    }

    fn opt_multiplier(&mut self, what: &str, value: Option<&Spanned<f64>>) -> Option<Multiplier> {
        value.map(|v| self.multiplier(what, *v.get_ref(), Some(v.span())))
    }

    fn date(&mut self, what: &str, value: &Spanned<toml::Value>) -> Option<CardDate> {
        match CardDate::from_value(value.get_ref()) {
            Ok(d) => Some(d),
            Err(why) => {
                self.error(Some(value.span()), format!("{what} {why}"));
                None
            }
        }
    }

    fn adjust(&mut self, what: &str, raw: &Spanned<RawAdjust>) -> Adjust {
        match raw.get_ref() {
            RawAdjust::Multiplier(m) => {
                Adjust::multiply(self.multiplier(what, *m, Some(raw.span())))
            }
            RawAdjust::Table(t) => {
                let mut a = self.rates_table(
                    what,
                    t.multiplier.as_ref(),
                    [
                        t.input.as_ref(),
                        t.output.as_ref(),
                        t.cache_read.as_ref(),
                        t.cache_write.as_ref(),
                        t.cache_write_1h.as_ref(),
                    ],
                );
                if a.multiplier == Multiplier::ONE
                    && [
                        a.input,
                        a.output,
                        a.cache_read,
                        a.cache_write,
                        a.cache_write_1h,
                    ]
                    .iter()
                    .all(Option::is_none)
                {
                    self.warn(
                        Some(raw.span()),
                        format!("{what} changes nothing (no multiplier, no rates)"),
                    );
                }
                a.spans.insert_at = None;
                a
            }
        }
    }

    fn rates_table(
        &mut self,
        what: &str,
        multiplier: Option<&Spanned<f64>>,
        [input, output, cache_read, cache_write, cache_write_1h]: [Option<&Spanned<f64>>; 5],
    ) -> Adjust {
        let span = |v: Option<&Spanned<f64>>| v.map(Spanned::span);
        Adjust {
            multiplier: self
                .opt_multiplier(&format!("{what} multiplier"), multiplier)
                .unwrap_or(Multiplier::ONE),
            input: self.opt_rate(&format!("{what} input"), input),
            output: self.opt_rate(&format!("{what} output"), output),
            cache_read: self.opt_rate(&format!("{what} cache_read"), cache_read),
            cache_write: self.opt_rate(&format!("{what} cache_write"), cache_write),
            cache_write_1h: self.opt_rate(&format!("{what} cache_write_1h"), cache_write_1h),
            spans: RateSpans {
                input: span(input),
                output: span(output),
                cache_read: span(cache_read),
                cache_write: span(cache_write),
                cache_write_1h: span(cache_write_1h),
                insert_at: None,
                table_end: None,
            },
        }
    }

    fn model(&mut self, m: &RawModel, id: &str) -> ModelPrice {
        let input = self.rate(&format!("{id}: input"), &m.input);
        let output = self.rate(&format!("{id}: output"), &m.output);
        let cache_read = self.opt_rate(&format!("{id}: cache_read"), m.cache_read.as_ref());
        let cache_write = self.opt_rate(&format!("{id}: cache_write"), m.cache_write.as_ref());
        let cache_write_1h =
            self.opt_rate(&format!("{id}: cache_write_1h"), m.cache_write_1h.as_ref());
        let caching = m.caching.as_ref().is_none_or(|c| *c.get_ref());
        if caching {
            for (field, value) in [("cache_read", cache_read), ("cache_write", cache_write)] {
                if value.is_none() {
                    self.warn(
                        Some(m.id.span()),
                        format!("{id}: no {field} rate; cache tokens will be priced at the input rate (set it, or `caching = false`)"),
                    );
                }
            }
        } else if cache_read.is_some() || cache_write.is_some() || cache_write_1h.is_some() {
            self.warn(
                Some(m.id.span()),
                format!("{id}: cache rates are ignored with `caching = false` (cache tokens are priced at the input rate)"),
            );
        }
        let rates = if caching {
            let cache_write = cache_write.unwrap_or(input);
            Rates {
                input,
                output,
                cache_read: cache_read.unwrap_or(input),
                cache_write,
                cache_write_1h: cache_write_1h.unwrap_or(cache_write),
            }
        } else {
            Rates {
                input,
                output,
                cache_read: input,
                cache_write: input,
                cache_write_1h: input,
            }
        };
        let effective_from = m
            .effective_from
            .as_ref()
            .and_then(|d| self.date(&format!("{id}: effective_from"), d));
        let profiles = m.profiles.as_ref().map_or_else(Profiles::default, |p| {
            let p = p.get_ref();
            let mut mult = |key: &str, v: Option<&Spanned<f64>>| {
                self.opt_multiplier(&format!("{id}: profiles.{key}"), v)
            };
            Profiles {
                global: mult("global", p.global.as_ref()),
                geo: mult("geo", p.geo.as_ref()),
                us_gov: mult("us-gov", p.us_gov.as_ref()),
                in_region: mult("in-region", p.in_region.as_ref()),
            }
        });
        let tiers = m.tiers.as_ref().map_or_else(Tiers::default, |t| {
            let t = t.get_ref();
            Tiers {
                priority: t
                    .priority
                    .as_ref()
                    .map(|a| self.adjust(&format!("{id}: tiers.priority"), a)),
                flex: t
                    .flex
                    .as_ref()
                    .map(|a| self.adjust(&format!("{id}: tiers.flex"), a)),
            }
        });
        let mut regions = Vec::new();
        for (region, adjust) in m.regions.iter().flatten() {
            if !crate::names::valid_region(region) {
                self.error(
                    Some(adjust.span()),
                    format!("{id}: regions: {region:?} is not an AWS Region id (e.g. eu-west-1)"),
                );
            }
            regions.push(RegionPrice {
                region: region.clone(),
                adjust: self.adjust(&format!("{id}: regions.{region}"), adjust),
            });
        }
        // BTreeMap order: already sorted by Region, as `ModelPrice::region` requires.
        let latency_optimized = m
            .latency_optimized
            .as_ref()
            .map(|a| self.adjust(&format!("{id}: latency_optimized"), a));
        let long_context = m.long_context.as_ref().map(|lc| {
            let raw = lc.get_ref();
            let threshold = match u64::try_from(*raw.threshold.get_ref()) {
                Ok(t) if t > 0 => t,
                _ => {
                    self.error(
                        Some(raw.threshold.span()),
                        format!("{id}: long_context threshold must be a positive number of tokens"),
                    );
                    0
                }
            };
            LongContext {
                threshold,
                adjust: self.rates_table(
                    &format!("{id}: long_context"),
                    raw.multiplier.as_ref(),
                    [
                        raw.input.as_ref(),
                        raw.output.as_ref(),
                        raw.cache_read.as_ref(),
                        raw.cache_write.as_ref(),
                        raw.cache_write_1h.as_ref(),
                    ],
                ),
            }
        });
        let span = |v: Option<&Spanned<f64>>| v.map(Spanned::span);
        let keys_end = [
            Some(m.id.span()),
            m.name.as_ref().map(Spanned::span),
            Some(m.input.span()),
            Some(m.output.span()),
            span(m.cache_read.as_ref()),
            span(m.cache_write.as_ref()),
            span(m.cache_write_1h.as_ref()),
            m.caching.as_ref().map(Spanned::span),
            m.effective_from.as_ref().map(Spanned::span),
        ]
        .into_iter()
        .flatten()
        .map(|s| s.end)
        .max()
        .unwrap_or(0);
        ModelPrice {
            id: id.to_owned(),
            name: m.name.as_ref().map(|n| n.get_ref().clone()),
            rates,
            caching,
            effective_from,
            profiles,
            regions,
            tiers,
            latency_optimized,
            long_context,
            spans: RateSpans {
                input: Some(m.input.span()),
                output: Some(m.output.span()),
                cache_read: span(m.cache_read.as_ref()),
                cache_write: span(m.cache_write.as_ref()),
                cache_write_1h: span(m.cache_write_1h.as_ref()),
                insert_at: Some(line_end(self.text, keys_end)),
                table_end: Some(entry_end(self.text, keys_end)),
            },
            given: Given {
                cache_read: cache_read.is_some(),
                cache_write: cache_write.is_some(),
                cache_write_1h: cache_write_1h.is_some(),
            },
        }
    }
}

impl RateCard {
    /// Reads and validates a card file.
    pub fn load(path: &Path) -> Result<LoadedCard, CardErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            CardErrors(vec![CardError {
                file: file.clone(),
                line: 0,
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates card text; `file` names it in messages.
    pub fn parse(text: &str, file: &str) -> Result<LoadedCard, CardErrors> {
        let mut c = Checker {
            file,
            text,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let raw: RawCard = toml::from_str(text)
            .map_err(|e| CardErrors(vec![c.at(e.span(), e.message().to_owned())]))?;

        if raw.version.get_ref().trim().is_empty() {
            c.error(Some(raw.version.span()), "version must not be empty".into());
        }
        if let Some(cur) = &raw.currency
            && cur.get_ref() != "USD"
        {
            c.error(
                Some(cur.span()),
                format!("currency must be \"USD\", not {:?}", cur.get_ref()),
            );
        }
        let updated = raw.updated.as_ref().and_then(|d| c.date("updated", d));
        let updated_line = raw
            .updated
            .as_ref()
            .map_or(0, |d| line_of(text, d.span().start));

        let mut models: HashMap<String, Vec<Arc<ModelPrice>>> = HashMap::new();
        let mut first_line: HashMap<(String, Option<SystemTime>), usize> = HashMap::new();
        for entry in &raw.model {
            let m = entry.get_ref();
            let id = m.id.get_ref().trim().to_owned();
            let line = line_of(text, m.id.span().start);
            if id.is_empty() {
                c.error(Some(m.id.span()), "id must not be empty".into());
                continue;
            }
            if id.starts_with("arn:") {
                c.error(
                    Some(m.id.span()),
                    format!("{id}: an ARN is not a model id; map it with an [[arn]] table"),
                );
                continue;
            }
            let price = c.model(m, &id);
            let key = (id.clone(), price.effective_from.as_ref().map(CardDate::at));
            if let Some(prev) = first_line.get(&key) {
                let what = match &price.effective_from {
                    Some(d) => format!("duplicate id with effective_from {d}"),
                    None => "duplicate id".to_owned(),
                };
                c.error(
                    Some(m.id.span()),
                    format!("{id}: {what} (first at line {prev})"),
                );
                continue;
            }
            first_line.insert(key, line);
            models.entry(id).or_default().push(Arc::new(price));
        }
        for list in models.values_mut() {
            list.sort_by_key(|e| e.effective_from.as_ref().map(CardDate::at));
        }

        let mut arns: HashMap<String, ArnMapping> = HashMap::new();
        for entry in &raw.arn {
            let a = entry.get_ref();
            let arn = a.arn.get_ref().trim().to_owned();
            if super::model_id::Arn::parse(&arn).is_none() {
                c.error(
                    Some(a.arn.span()),
                    format!(
                        "{arn:?} is not a Bedrock ARN (arn:aws:bedrock:REGION:ACCOUNT:TYPE/ID)"
                    ),
                );
                continue;
            }
            let provisioned = a.provisioned.unwrap_or(false);
            let model = a.model.as_ref().map(|m| m.get_ref().trim().to_owned());
            match &model {
                None if !provisioned => c.error(
                    Some(a.arn.span()),
                    format!("{arn}: needs `model = \"<model id>\"` or `provisioned = true`"),
                ),
                Some(target) if target.starts_with("arn:") => c.error(
                    a.model.as_ref().map(Spanned::span),
                    format!("{arn}: model must be a model or profile id, not an ARN"),
                ),
                Some(target) if !has_entry(&models, target) => c.error(
                    a.model.as_ref().map(Spanned::span),
                    format!("{arn}: model {target:?} is not priced in this card"),
                ),
                _ => {}
            }
            if arns.contains_key(&arn) {
                c.error(Some(a.arn.span()), format!("{arn}: duplicate arn"));
                continue;
            }
            arns.insert(
                arn.clone(),
                ArnMapping {
                    arn,
                    model,
                    provisioned,
                },
            );
        }

        if !c.errors.is_empty() {
            return Err(CardErrors(c.errors));
        }
        Ok(LoadedCard {
            card: RateCard {
                version: raw.version.into_inner().trim().to_owned(),
                updated,
                updated_line,
                models,
                arns,
                file: file.to_owned(),
                text: text.to_owned(),
                ..RateCard::default()
            },
            warnings: c.warnings,
        })
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

    /// The `[[arn]]` mappings, sorted by ARN.
    pub fn arn_mappings(&self) -> Vec<ArnMapping> {
        let mut v: Vec<_> = self.arns.values().cloned().collect();
        v.sort_by(|a, b| a.arn.cmp(&b.arn));
        v
    }

    /// The entry a model id resolves to now, at the Standard tier and with no Region: its
    /// `rates` are those of the call's profile (e.g. 1.1× for `us.` when the card says so).
    /// `None` for unknown models and for provisioned ones (no per-token price).
    ///
    /// Kept for callers that have not moved to [`RateCard::resolve`] and `Resolved::quote`,
    /// which also price tiers, Regions, long context and 1-hour cache writes.
    pub fn lookup(&self, model_id: &str) -> Option<Arc<ModelPrice>> {
        let resolved = self.resolve(&Call {
            model_id,
            region: None,
            latency_optimized: false,
            at: SystemTime::now(),
        })?;
        let rates = resolved.rates(Tier::Default, false)?;
        let entry = resolved.model_arc();
        if rates == entry.rates {
            return Some(entry.clone());
        }
        let mut priced = ModelPrice::clone(entry);
        priced.rates = rates;
        Some(Arc::new(priced))
    }

    /// Date-dependent warnings for `rates check`: prices last `updated` more than
    /// [`STALE_AFTER_DAYS`] days before `now`, a missing or future `updated` date.
    pub fn age_warnings(&self, now: SystemTime) -> Vec<CardError> {
        let at = |line: usize, message: String| CardError {
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

fn has_entry(models: &HashMap<String, Vec<Arc<ModelPrice>>>, id: &str) -> bool {
    models.contains_key(id) || models.contains_key(split_profile(id).1)
}

/// USD per 1M tokens as integer micro-dollars; at most six decimals, non-negative, finite.
pub(crate) fn to_micros(usd: f64) -> Result<u64, &'static str> {
    if !usd.is_finite() || usd < 0.0 {
        return Err("must be a non-negative number");
    }
    if usd > 1_000_000.0 {
        return Err("is over $1,000,000 per 1M tokens; is the unit wrong?");
    }
    let scaled = usd * 1e6;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 * scaled.max(1.0) {
        return Err("has more than 6 decimal places");
    }
    Ok(rounded as u64)
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The offset just past the last line of content of the `[[model]]` entry containing `offset`:
/// before the next `[[…]]` header, less the comments and blank lines that lead up to it.
fn entry_end(text: &str, offset: usize) -> usize {
    let mut pos = line_end(text, offset);
    let mut next = text.len();
    while pos < text.len() {
        let end = line_end(text, pos);
        if text[pos..end].trim_start().starts_with("[[") {
            next = pos;
            break;
        }
        pos = end;
    }
    // Walk back over trailing blank and comment lines.
    let mut end = next;
    while end > 0 {
        let start = text.as_bytes()[..end - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = text[start..end].trim();
        if !(line.is_empty() || line.starts_with('#')) {
            break;
        }
        end = start;
    }
    end.max(line_end(text, offset))
}

/// The offset just past the end of the line containing `offset`.
fn line_end(text: &str, offset: usize) -> usize {
    let start = offset.min(text.len());
    text.as_bytes()[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| start + i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = r#"
version = "2026-11"
currency = "USD"

[[model]]
id = "anthropic.claude-3-haiku-20240307-v1:0"
input = 0.25
output = 1.25
caching = false

[[model]]
id = "anthropic.claude-sonnet-4-5-20250929-v1:0"
input = 3.30
output = 16.50
cache_read = 0.33
cache_write = 4.125

[[model]]
id = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
input = 3
output = 15
cache_read = 0.3
cache_write = 3.75

[[model]]
id = "amazon.nova-micro-v1:0"
input = 0.035
output = 0.14
cache_read = 0.00875
"#;

    fn card() -> LoadedCard {
        RateCard::parse(CARD, "card.toml").unwrap()
    }

    #[test]
    fn parses_exact_micros_and_fallbacks() {
        let l = card();
        assert_eq!(l.card.version, "2026-11");
        assert_eq!(l.card.len(), 4);
        let nova = l.card.lookup("amazon.nova-micro-v1:0").unwrap();
        assert_eq!(
            nova.rates,
            Rates {
                input: 35_000,
                output: 140_000,
                cache_read: 8_750,
                cache_write: 35_000,
                cache_write_1h: 35_000,
            }
        );
        // One warning: Nova's missing cache_write, at the entry's line.
        assert_eq!(l.warnings.len(), 1);
        assert!(
            l.warnings[0].message.contains("no cache_write"),
            "{:?}",
            l.warnings
        );
        assert_eq!(l.warnings[0].line, 26);
    }

    #[test]
    fn lookup_order() {
        let c = card().card;
        let sonnet = "anthropic.claude-sonnet-4-5-20250929-v1:0";
        let cases = [
            (sonnet.to_owned(), Some(3_300_000)),
            (format!("us.{sonnet}"), Some(3_300_000)),
            (format!("eu.{sonnet}"), Some(3_300_000)),
            (format!("global.{sonnet}"), Some(3_000_000)),
            (
                format!("arn:aws:bedrock:us-east-1::foundation-model/{sonnet}"),
                Some(3_300_000),
            ),
            (
                format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{sonnet}"),
                Some(3_300_000),
            ),
            (
                format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.{sonnet}"),
                Some(3_000_000),
            ),
            (
                "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"
                    .to_owned(),
                None,
            ),
            (
                "arn:aws:s3:::foundation-model/amazon.nova-micro-v1:0".to_owned(),
                None,
            ),
            ("xx.amazon.nova-micro-v1:0".to_owned(), None),
            ("amazon.nova-micro".to_owned(), None),
            // Provisioned throughput has no per-token price: not a priced lookup.
            (
                "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc".to_owned(),
                None,
            ),
        ];
        for (id, want) in cases {
            assert_eq!(c.lookup(&id).map(|p| p.rates.input), want, "{id}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        let bad = "version = \"x\"\n[[model]]\nid = \"a\"\ninput = -1\noutput = 0.1234567\n";
        let e = RateCard::parse(bad, "bad.toml").unwrap_err();
        let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "bad.toml:4: a: input must be a non-negative number",
                "bad.toml:5: a: output has more than 6 decimal places",
            ]
        );

        let e = RateCard::parse(
            "version = \"x\"\n[[model]]\nid = \"a\"\ninput = 1\noutput = 1\nprice = 2\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].line, 6, "{}", e);
        assert!(e.0[0].message.contains("unknown field `price`"), "{e}");

        let e = RateCard::parse("version = \"x\"\n[[model]]\nid = \"a\"\ninput = 1\n", "f")
            .unwrap_err();
        assert!(e.to_string().contains("missing field `output`"), "{e}");

        let dup = "version = \"x\"\n[[model]]\nid = \"a\"\ninput = 1\noutput = 1\ncaching = false\n[[model]]\nid = \"a\"\ninput = 1\noutput = 1\ncaching = false\n";
        let e = RateCard::parse(dup, "f").unwrap_err();
        assert_eq!(e.to_string(), "f:8: a: duplicate id (first at line 3)");
    }

    #[test]
    fn new_keys_are_validated_with_lines() {
        let e = RateCard::parse(
            r#"version = "x"
[[model]]
id = "a"
input = 1
output = 1
caching = false
effective_from = "soon"
profiles = { geo = 1.00001 }
tiers = { priority = 1.75, reserved = 2 }
"#,
            "f",
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.0[0].line, 9, "{e}");
        assert!(e.0[0].message.contains("unknown field `reserved`"), "{e}");

        let e = RateCard::parse(
            r#"version = "x"
updated = 2026-13-01
[[model]]
id = "a"
input = 1
output = 1
caching = false
effective_from = "soon"
profiles = { geo = 1.00001 }
tiers = { flex = "half" }
long_context = { threshold = 0, input = 2 }
[model.regions.Mars]
input = 1
[[arn]]
arn = "arn:aws:bedrock:us-east-1:1:application-inference-profile/x"
model = "b"
[[arn]]
arn = "nope"
model = "a"
[[arn]]
arn = "arn:aws:bedrock:us-east-1:1:provisioned-model/x"
"#,
            "f",
        );
        // The first failure is a TOML-level one (the bad date and the string multiplier are
        // rejected by the parser), reported alone.
        assert_eq!(
            e.unwrap_err().to_string(),
            "f:2: invalid date, expected month between 01 and 12"
        );

        let e = RateCard::parse(
            r#"version = "x"
updated = "2026-13-01"
[[model]]
id = "a"
input = 1
output = 1
caching = false
effective_from = "soon"
profiles = { geo = 1.00001 }
long_context = { threshold = 0, input = 2 }
[model.regions.Mars]
input = 1
[[arn]]
arn = "arn:aws:bedrock:us-east-1:1:application-inference-profile/x"
model = "b"
[[arn]]
arn = "nope"
model = "a"
[[arn]]
arn = "arn:aws:bedrock:us-east-1:1:provisioned-model/x"
"#,
            "f",
        )
        .unwrap_err();
        let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                r#"f:2: updated "2026-13-01" is not a date: invalid date, expected month between 01 and 12"#,
                r#"f:8: a: effective_from "soon" is not a date: invalid datetime, expected year or hour"#,
                "f:9: a: profiles.geo has more than 4 decimal places",
                r#"f:11: a: regions: "Mars" is not an AWS Region id (e.g. eu-west-1)"#,
                "f:10: a: long_context threshold must be a positive number of tokens",
                r#"f:15: arn:aws:bedrock:us-east-1:1:application-inference-profile/x: model "b" is not priced in this card"#,
                r#"f:17: "nope" is not a Bedrock ARN (arn:aws:bedrock:REGION:ACCOUNT:TYPE/ID)"#,
                r#"f:20: arn:aws:bedrock:us-east-1:1:provisioned-model/x: needs `model = "<model id>"` or `provisioned = true`"#,
            ]
        );
    }

    #[test]
    fn dated_successors_are_not_duplicates() {
        let l = RateCard::parse(
            r#"version = "x"
[[model]]
id = "a"
input = 1
output = 1
caching = false
[[model]]
id = "a"
effective_from = 2027-01-01
input = 2
output = 2
caching = false
"#,
            "f",
        )
        .unwrap();
        assert_eq!(l.card.len(), 2);
        assert_eq!(l.card.models().len(), 2);
        let e = RateCard::parse(
            "version = \"x\"\n[[model]]\nid = \"a\"\neffective_from = 2027-01-01\ninput = 1\noutput = 1\ncaching = false\n[[model]]\nid = \"a\"\neffective_from = \"2027-01-01\"\ninput = 1\noutput = 1\ncaching = false\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:9: a: duplicate id with effective_from 2027-01-01 (first at line 3)"
        );
    }

    #[test]
    fn age_warnings() {
        let card = |updated: &str| {
            RateCard::parse(
                &format!("version = \"x\"\n{updated}\n[[model]]\nid = \"a\"\ninput = 1\noutput = 1\ncaching = false\n"),
                "c.toml",
            )
            .unwrap()
            .card
        };
        let now = date::utc_date(2027, 2, 21).unwrap();
        assert!(card("updated = 2026-11-23").age_warnings(now).is_empty());
        let w = card("updated = 2026-11-22").age_warnings(now);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "c.toml:2: prices last updated 2026-11-22, 91 days ago (more than 90): check them against the sources (`bedrock-meter rates import` shows what changed) and bump `updated`"
        );
        let w = card("").age_warnings(now);
        assert!(w[0].message.starts_with("no `updated` date"), "{w:?}");
        let w = card("updated = 2027-03-01").age_warnings(now);
        assert!(w[0].message.contains("in the future"), "{w:?}");
    }

    #[test]
    fn region_ids() {
        for ok in ["eu-west-1", "us-gov-west-1", "ap-southeast-2", "us-east-1"] {
            assert!(crate::names::valid_region(ok), "{ok}");
        }
        for bad in ["Mars", "eu", "eu-west", "eu-west-", "-west-1", "EU-west-1"] {
            assert!(!crate::names::valid_region(bad), "{bad}");
        }
    }

    #[test]
    fn micros() {
        assert_eq!(to_micros(0.00875), Ok(8_750));
        assert_eq!(to_micros(4.125), Ok(4_125_000));
        assert_eq!(to_micros(0.0), Ok(0));
        assert_eq!(to_micros(75.0), Ok(75_000_000));
        assert!(to_micros(0.0000001).is_err());
        assert!(to_micros(f64::NAN).is_err());
    }

    #[test]
    fn shipped_card_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rates/bedrock.toml");
        let l = RateCard::load(&path).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert!(l.card.len() >= 50);
        assert!(l.card.updated().is_some());
        let haiku = l
            .card
            .lookup("us.anthropic.claude-3-haiku-20240307-v1:0")
            .unwrap();
        assert_eq!(
            (haiku.rates.input, haiku.rates.output),
            (250_000, 1_250_000)
        );
    }
}
