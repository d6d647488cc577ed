//! What one rate-card entry says: its base rates and the adjustments that apply to some calls
//! (Region, cross-region profile, service tier, latency-optimized inference, long context).
//!
//! Every rate is an integer number of micro-dollars per 1M tokens and every multiplier an integer
//! number of ten-thousandths, so applying an adjustment is integer arithmetic: exact whenever the
//! result fits in micro-dollars, otherwise rounded half up to the nearest micro-dollar per 1M
//! tokens (one pico-dollar per token).

use super::billing_units::UnitPrices;
use super::date::CardDate;
use super::units::{Multiplier, Rates, Scope};

/// A change to a set of rates: every rate times `multiplier` (default 1), then each rate given
/// explicitly replaces the result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjust {
    pub multiplier: Multiplier,
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
    pub cache_write_1h: Option<u64>,
}

impl Adjust {
    /// Only a multiplier.
    pub fn multiply(m: Multiplier) -> Adjust {
        Adjust {
            multiplier: m,
            input: None,
            output: None,
            cache_read: None,
            cache_write: None,
            cache_write_1h: None,
        }
    }

    pub fn apply(&self, rates: Rates) -> Rates {
        let r = rates.scaled(self.multiplier);
        Rates {
            input: self.input.unwrap_or(r.input),
            output: self.output.unwrap_or(r.output),
            cache_read: self.cache_read.unwrap_or(r.cache_read),
            cache_write: self.cache_write.unwrap_or(r.cache_write),
            cache_write_1h: self.cache_write_1h.unwrap_or(r.cache_write_1h),
        }
    }
}

/// Price multipliers by how the model was called (see [`Scope`]); each defaults as documented.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Profiles {
    /// `global.` profiles; default 1.
    pub global: Option<Multiplier>,
    /// Geographic profiles (`us.`, `eu.`, `apac.`, `jp.`, `au.`, `ca.`); default 1.
    pub geo: Option<Multiplier>,
    /// `us-gov.` profiles; default: `geo`.
    pub us_gov: Option<Multiplier>,
    /// The bare model id, called in-Region; default: `geo`.
    pub in_region: Option<Multiplier>,
}

impl Profiles {
    pub fn multiplier(&self, scope: Scope) -> Multiplier {
        let geo = self.geo.unwrap_or(Multiplier::ONE);
        match scope {
            Scope::Global => self.global.unwrap_or(Multiplier::ONE),
            Scope::Geo => geo,
            Scope::UsGov => self.us_gov.unwrap_or(geo),
            Scope::InRegion => self.in_region.unwrap_or(geo),
        }
    }
}

/// Service tiers a model offers besides the default (Standard) one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tiers {
    pub priority: Option<Adjust>,
    pub flex: Option<Adjust>,
}

/// A per-Region price (the Region the request was signed for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionPrice {
    pub region: String,
    pub adjust: Adjust,
}

/// Rates for the whole request once its prompt exceeds `threshold` tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LongContext {
    /// Prompt tokens (input + cache read + cache write) above which the request is long.
    pub threshold: u64,
    pub adjust: Adjust,
}

/// One `[[model]]` entry of a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPrice {
    pub id: String,
    pub name: Option<String>,
    /// Standard tier, no Region override, before any profile multiplier. Missing cache rates
    /// are already filled in (cache rates from `input`, `cache_write_1h` from `cache_write`).
    pub rates: Rates,
    /// False for models that do not cache on Bedrock.
    pub caching: bool,
    /// When this entry's prices start to apply; `None` = always (until a later entry's date).
    pub effective_from: Option<CardDate>,
    pub profiles: Profiles,
    /// Sorted by Region.
    pub regions: Vec<RegionPrice>,
    pub tiers: Tiers,
    pub latency_optimized: Option<Adjust>,
    pub long_context: Option<LongContext>,
    /// False for a model priced only per unit (images, video, rerank): its `rates` are zero.
    pub per_token: bool,
    /// Prices per image, second of video or search unit; empty for a token model.
    pub units: UnitPrices,
}

impl ModelPrice {
    /// A placeholder entry with no per-token price, used for provisioned throughput.
    pub(crate) fn placeholder(id: &str, name: &str) -> ModelPrice {
        ModelPrice {
            id: id.to_owned(),
            name: Some(name.to_owned()),
            rates: Rates::default(),
            caching: true,
            effective_from: None,
            profiles: Profiles::default(),
            regions: Vec::new(),
            tiers: Tiers::default(),
            latency_optimized: None,
            long_context: None,
            per_token: true,
            units: UnitPrices::default(),
        }
    }

    pub fn region(&self, region: &str) -> Option<&RegionPrice> {
        self.regions
            .binary_search_by(|r| r.region.as_str().cmp(region))
            .ok()
            .and_then(|i| self.regions.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_are_exact_or_round_half_up() {
        let m = |v: f64| Multiplier::from_f64(v).unwrap();
        assert_eq!(m(1.1).apply(3_000_000), 3_300_000);
        assert_eq!(m(1.75).apply(150_000), 262_500);
        assert_eq!(m(0.5).apply(35_000), 17_500);
        assert_eq!(m(1.25).apply(800_000), 1_000_000);
        // 0.000001 × 1.5 = 0.0000015 → rounds half up to 0.000002.
        assert_eq!(m(1.5).apply(1), 2);
        assert_eq!(m(0.5).apply(1), 1);
        assert_eq!(m(0.4).apply(1), 0);
        assert_eq!(m(2.0).apply(u64::MAX), u64::MAX);
        assert!(Multiplier::from_f64(1.00001).is_err());
        assert!(Multiplier::from_f64(-1.0).is_err());
        assert!(Multiplier::from_f64(f64::INFINITY).is_err());
        assert_eq!(m(1.1).to_string(), "1.1");
        assert_eq!(m(1.75).to_string(), "1.75");
        assert_eq!(m(2.0).to_string(), "2");
    }

    #[test]
    fn adjust_multiplies_then_replaces() {
        let base = Rates {
            input: 100,
            output: 200,
            cache_read: 10,
            cache_write: 125,
            cache_write_1h: 200,
        };
        let mut a = Adjust::multiply(Multiplier::from_ten_thousandths(20_000));
        a.output = Some(300);
        assert_eq!(
            a.apply(base),
            Rates {
                input: 200,
                output: 300,
                cache_read: 20,
                cache_write: 250,
                cache_write_1h: 400
            }
        );
    }
}
