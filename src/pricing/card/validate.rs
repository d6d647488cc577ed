//! Validation: from the raw TOML shapes to checked entries and a [`RateCard`], collecting every
//! error and warning with the line it is about.

use crate::file_error::{FileError, FileErrors, line_of};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use toml::Spanned;

use super::raw::{RawAdjust, RawCard, RawGuardrails, RawModel};
use super::{ArnMapping, CardError, CardErrors, LoadedCard, RateCard};
use crate::pricing::billing_units::{
    GuardrailRates, ImageBand, PerUnit, Policy, Quality, UnitPrices, per_unit,
};
use crate::pricing::date::CardDate;
use crate::pricing::entry::{Adjust, LongContext, ModelPrice, Profiles, RegionPrice, Tiers};
use crate::pricing::model_id::split_profile;
use crate::pricing::units::{Multiplier, Rates};

/// Collects located errors and warnings while validating.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<CardError>,
    warnings: Vec<CardError>,
}

impl Checker<'_> {
    fn at(&self, span: Option<Range<usize>>, message: String) -> FileError {
        FileError {
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
                let a = self.rates_table(
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
        Adjust {
            multiplier: self
                .opt_multiplier(&format!("{what} multiplier"), multiplier)
                .unwrap_or(Multiplier::ONE),
            input: self.opt_rate(&format!("{what} input"), input),
            output: self.opt_rate(&format!("{what} output"), output),
            cache_read: self.opt_rate(&format!("{what} cache_read"), cache_read),
            cache_write: self.opt_rate(&format!("{what} cache_write"), cache_write),
            cache_write_1h: self.opt_rate(&format!("{what} cache_write_1h"), cache_write_1h),
        }
    }

    fn model(&mut self, m: &RawModel, id: &str) -> ModelPrice {
        let units = self.unit_prices(m, id);
        let (input, output, per_token) = match (&m.input, &m.output) {
            (Some(i), Some(o)) => (
                self.rate(&format!("{id}: input"), i),
                self.rate(&format!("{id}: output"), o),
                true,
            ),
            (None, None) if !units.is_empty() => (0, 0, false),
            (None, None) => {
                self.error(
                    Some(m.id.span()),
                    format!("{id}: needs `input` and `output` (USD per 1M tokens), or a unit price (`per_image`, `per_video_second`, `per_search_unit`)"),
                );
                (0, 0, true)
            }
            (Some(given), None) | (None, Some(given)) => {
                let missing = if m.input.is_none() { "input" } else { "output" };
                self.error(
                    Some(given.span()),
                    format!("{id}: missing field `{missing}` (`input` and `output` go together; a model priced only per unit has neither)"),
                );
                (0, 0, true)
            }
        };
        if !per_token && (m.cache_read.is_some() || m.cache_write.is_some()) {
            self.error(
                Some(m.id.span()),
                format!("{id}: cache rates without token rates"),
            );
        }
        self.required_units(m, id, &units);
        let cache_read = self.opt_rate(&format!("{id}: cache_read"), m.cache_read.as_ref());
        let cache_write = self.opt_rate(&format!("{id}: cache_write"), m.cache_write.as_ref());
        let cache_write_1h =
            self.opt_rate(&format!("{id}: cache_write_1h"), m.cache_write_1h.as_ref());
        let caching = per_token && m.caching.as_ref().is_none_or(|c| *c.get_ref());
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
            per_token,
            units,
        }
    }

    /// A price per unit (image, second, search unit): USD, at most six decimals, at most $1,000.
    fn unit_price(&mut self, what: &str, value: &Spanned<f64>) -> u64 {
        let usd = *value.get_ref();
        if usd.is_finite() && usd > 1_000.0 {
            self.error(
                Some(value.span()),
                format!("{what} is over $1,000 per unit; is the unit wrong?"),
            );
            return 0;
        }
        self.rate(what, value)
    }

    fn unit_prices(&mut self, m: &RawModel, id: &str) -> UnitPrices {
        let mut images = Vec::new();
        for band in m.per_image.iter().flat_map(|b| b.get_ref()) {
            let b = band.get_ref();
            let quality = match &b.quality {
                None => Quality::Standard,
                Some(q) => Quality::parse(q.get_ref()).unwrap_or_else(|| {
                    self.error(
                        Some(q.span()),
                        format!(
                            "{id}: per_image quality {:?} is not \"standard\" or \"premium\"",
                            q.get_ref()
                        ),
                    );
                    Quality::Standard
                }),
            };
            let max_pixels = b.max_pixels.as_ref().and_then(|p| match u64::try_from(*p.get_ref()) {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    self.error(
                        Some(p.span()),
                        format!("{id}: per_image max_pixels must be a positive number of pixels (width × height)"),
                    );
                    None
                }
            });
            let price = self.unit_price(&format!("{id}: per_image usd"), &b.usd);
            if images
                .iter()
                .any(|o: &ImageBand| o.quality == quality && o.max_pixels == max_pixels)
            {
                self.error(
                    Some(band.span()),
                    format!(
                        "{id}: per_image has two {} bands for the same size",
                        quality.as_str()
                    ),
                );
            }
            images.push(ImageBand {
                quality,
                max_pixels,
                price,
            });
        }
        images.sort_by_key(|b| (b.quality, b.max_pixels.is_none(), b.max_pixels));
        if let Some(per_image) = &m.per_image {
            for q in [Quality::Standard, Quality::Premium] {
                let of: Vec<_> = images.iter().filter(|b| b.quality == q).collect();
                if !of.is_empty() && of.iter().all(|b| b.max_pixels.is_some()) {
                    self.error(
                        Some(per_image.span()),
                        format!("{id}: per_image has no {} band without max_pixels, so larger images would have no price", q.as_str()),
                    );
                }
            }
            if images.is_empty() {
                self.error(Some(per_image.span()), format!("{id}: per_image is empty"));
            }
        }
        UnitPrices {
            images,
            video_second: m
                .per_video_second
                .as_ref()
                .map(|v| self.unit_price(&format!("{id}: per_video_second"), v)),
            search_unit: m
                .per_search_unit
                .as_ref()
                .map(|v| self.unit_price(&format!("{id}: per_search_unit"), v)),
            speech_input: self.opt_rate(&format!("{id}: speech_input"), m.speech_input.as_ref()),
            speech_output: self.opt_rate(&format!("{id}: speech_output"), m.speech_output.as_ref()),
        }
    }

    /// Models of a family AWS bills per unit must carry that unit's price: without it every
    /// call would be unpriced.
    fn required_units(&mut self, m: &RawModel, id: &str, units: &UnitPrices) {
        let (has, key) = match per_unit(id) {
            None => return,
            Some(PerUnit::Image | PerUnit::InputImage) => (!units.images.is_empty(), "per_image"),
            Some(PerUnit::VideoSecond) => (units.video_second.is_some(), "per_video_second"),
            Some(PerUnit::SearchUnit) => (units.search_unit.is_some(), "per_search_unit"),
        };
        if !has {
            self.error(
                Some(m.id.span()),
                format!("{id}: AWS bills this model per unit: it needs `{key}`"),
            );
        }
    }

    fn guardrails(&mut self, raw: &RawGuardrails) -> GuardrailRates {
        let mut rates = GuardrailRates::default();
        for (slot, (policy, value)) in rates
            .0
            .iter_mut()
            .zip(Policy::ALL.iter().zip(raw.in_order()))
        {
            *slot = value.map(|v| self.unit_price(&format!("guardrails.{}", policy.key()), v));
        }
        rates
    }
}

impl RateCard {
    /// Parses and validates card text; `file` names it in messages.
    pub fn parse(text: &str, file: &str) -> Result<LoadedCard, CardErrors> {
        let mut c = Checker {
            file,
            text,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let raw: RawCard = toml::from_str(text)
            .map_err(|e| FileErrors(vec![c.at(e.span(), e.message().to_owned())]))?;

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
            if crate::pricing::model_id::Arn::parse(&arn).is_none() {
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

        let guardrails = raw
            .guardrails
            .as_ref()
            .map_or_else(GuardrailRates::default, |g| c.guardrails(g.get_ref()));

        // Each model steps down to one cheaper model at most, so a ladder's rungs above the
        // last are each in one ladder only.
        let mut cheaper: HashMap<String, String> = HashMap::new();
        for ladder in &raw.ladder {
            let l = ladder.get_ref();
            let name = l.name.get_ref();
            let rungs = l.models.get_ref();
            if rungs.len() < 2 {
                c.error(
                    Some(l.models.span()),
                    format!("ladder {name:?}: needs at least two models, dearest first"),
                );
                continue;
            }
            let mut ok = true;
            for rung in rungs {
                if !has_entry(&models, rung.get_ref()) {
                    c.error(
                        Some(rung.span()),
                        format!(
                            "ladder {name:?}: model {:?} is not priced in this card",
                            rung.get_ref()
                        ),
                    );
                    ok = false;
                }
            }
            for pair in rungs.windows(2) {
                let (from, to) = (pair[0].get_ref(), pair[1].get_ref());
                if let Some(seen) = cheaper.get(from)
                    && seen != to
                {
                    c.error(
                        Some(pair[0].span()),
                        format!(
                            "ladder {name:?}: {from} already steps down to {seen} in another ladder"
                        ),
                    );
                    ok = false;
                }
            }
            if ok {
                for pair in rungs.windows(2) {
                    cheaper.insert(pair[0].get_ref().clone(), pair[1].get_ref().clone());
                }
            }
        }

        if !c.errors.is_empty() {
            return Err(FileErrors(c.errors));
        }
        Ok(LoadedCard {
            card: RateCard {
                version: raw.version.into_inner().trim().to_owned(),
                updated,
                updated_line,
                models,
                arns,
                guardrails,
                cheaper,
                file: file.to_owned(),
                text: text.to_owned(),
                ..RateCard::default()
            },
            warnings: c.warnings,
        })
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
