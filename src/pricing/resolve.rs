//! From a call to its price: which card entry applies to a model id as called (with the Region,
//! latency mode and time of the request), and the quote for its usage at a service tier.
//!
//! `RateCard::resolve` runs once per request when the model id is known; `Resolved::quote` runs
//! when the usage is known. Both are pure, and `quote` does not allocate.

use std::sync::Arc;
use std::time::SystemTime;

use super::card::RateCard;
use super::entry::{LongContext, ModelPrice};
use super::model_id::{Arn, split_profile};
use super::price::price;
use super::units::{Call, Cost, Multiplier, Rates, Scope, Tier, Usage};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Latency {
    Standard,
    Optimized,
    /// Optimized was asked for but the card has no such price: priced as standard.
    Unsupported,
}

/// A call matched to its card entry. Cheap to clone (an `Arc` and a few words).
#[derive(Clone, Debug)]
pub struct Resolved {
    entry: Arc<ModelPrice>,
    provisioned: bool,
    scope: Scope,
    profile: Multiplier,
    region: Option<usize>,
    latency: Latency,
}

/// The price of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quote {
    /// `None`: provisioned throughput, imported models or the Reserved tier — the tokens are
    /// counted but have no per-token price.
    pub cost: Option<Cost>,
    /// The per-1M-token rates `cost` was computed with.
    pub rates: Option<Rates>,
    /// The tier asked for is not offered by this model in the card; priced at the default tier.
    pub tier_unsupported: bool,
    /// Latency-optimized inference was asked for but the card has no such price for this
    /// model; priced at standard latency.
    pub latency_unsupported: bool,
    /// Cache tokens were reported for a model the card says does not cache (they are priced at
    /// the input rate).
    pub uncached_model_with_cache_tokens: bool,
    /// The prompt exceeded the model's long-context threshold: the whole request was priced at
    /// the long-context rates.
    pub long_context: bool,
    /// Pico-dollars saved by cache reads: the cache-read tokens at the input rate that applied,
    /// minus what they cost.
    pub cache_savings: u64,
}

impl RateCard {
    /// The entry pricing `call`, or `None` if the model is unknown to the card (unpriced).
    ///
    /// Lookup order: a card `[[arn]]` mapping of the exact id; the exact id among the entries;
    /// a foundation-model or inference-profile ARN reduced to its id; the id with its
    /// cross-region profile prefix stripped. Provisioned-model and imported-model ARNs that the
    /// card does not map resolve as provisioned (no per-token price).
    pub fn resolve(&self, call: &Call<'_>) -> Option<Resolved> {
        let mut id = call.model_id;
        let mut provisioned = false;
        if let Some(target) = self.arn_target(id) {
            provisioned = target.provisioned;
            match target.model.as_deref() {
                Some(model) => id = model,
                None => return Some(self.provisioned_placeholder()),
            }
        }
        let mut region = call.region;
        if let Some(arn) = Arn::parse(id) {
            if region.is_none() && !arn.region.is_empty() {
                region = Some(arn.region);
            }
            match arn.resource_type {
                "foundation-model" | "inference-profile" if !arn.resource_id.is_empty() => {
                    id = arn.resource_id;
                }
                "provisioned-model" | "imported-model" => {
                    return Some(self.provisioned_placeholder());
                }
                _ => return None,
            }
        }
        let (scope, bare) = split_profile(id);
        let entries = self
            .entries(id)
            .or_else(|| (bare != id).then(|| self.entries(bare)).flatten())?;
        let entry = in_force(entries, call.at)
            .or_else(|| if provisioned { entries.first() } else { None })?
            .clone();
        let region = region.and_then(|r| {
            entry
                .regions
                .binary_search_by(|p| p.region.as_str().cmp(r))
                .ok()
        });
        let latency = match (call.latency_optimized, entry.latency_optimized.is_some()) {
            (false, _) => Latency::Standard,
            (true, true) => Latency::Optimized,
            (true, false) => Latency::Unsupported,
        };
        Some(Resolved {
            profile: entry.profiles.multiplier(scope),
            entry,
            provisioned,
            scope,
            region,
            latency,
        })
    }

    fn provisioned_placeholder(&self) -> Resolved {
        Resolved {
            entry: self.placeholder(),
            provisioned: true,
            scope: Scope::InRegion,
            profile: Multiplier::ONE,
            region: None,
            latency: Latency::Standard,
        }
    }
}

/// The last entry whose `effective_from` is not after `at` (entries are sorted by date, undated
/// first).
fn in_force(entries: &[Arc<ModelPrice>], at: SystemTime) -> Option<&Arc<ModelPrice>> {
    entries
        .iter()
        .rev()
        .find(|e| e.effective_from.as_ref().is_none_or(|d| d.at() <= at))
}

impl Resolved {
    /// The card entry (for a provisioned ARN the card does not map, a placeholder with id
    /// `provisioned`).
    pub fn model(&self) -> &ModelPrice {
        &self.entry
    }

    pub fn model_arc(&self) -> &Arc<ModelPrice> {
        &self.entry
    }

    /// Provisioned throughput or an imported model: tokens are counted, not priced.
    pub fn is_provisioned(&self) -> bool {
        self.provisioned
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The multiplier of the call's profile scope.
    pub fn profile_multiplier(&self) -> Multiplier {
        self.profile
    }

    /// The Region whose card override applies, if any.
    pub fn region_override(&self) -> Option<&str> {
        self.region
            .and_then(|i| self.entry.regions.get(i))
            .map(|r| r.region.as_str())
    }

    /// Latency-optimized was asked for but the card has no such price for the model.
    pub fn latency_unsupported(&self) -> bool {
        self.latency == Latency::Unsupported
    }

    /// The per-1M-token rates at `tier`, at long-context rates if `long_context` (and the model
    /// has them); `None` when there is no per-token price (provisioned, Reserved).
    pub fn rates(&self, tier: Tier, long_context: bool) -> Option<Rates> {
        if self.provisioned || tier == Tier::Reserved {
            return None;
        }
        let long = self.entry.long_context.as_ref().filter(|_| long_context);
        Some(self.rates_for(tier, long).0)
    }

    /// Prices `usage` at `tier`. See `docs/rate-card.md` for the order the rules apply in.
    pub fn quote(&self, usage: &Usage, tier: Tier) -> Quote {
        let e = &*self.entry;
        let long = e
            .long_context
            .as_ref()
            .filter(|lc| usage.prompt_total() > lc.threshold);
        let mut quote = Quote {
            latency_unsupported: self.latency == Latency::Unsupported,
            uncached_model_with_cache_tokens: !e.caching
                && (usage.cache_read > 0 || usage.cache_write > 0),
            long_context: long.is_some(),
            ..Quote::default()
        };
        if self.provisioned || tier == Tier::Reserved {
            return quote;
        }
        let (rates, tier_unsupported) = self.rates_for(tier, long);
        let cost = price(usage, &rates);
        quote.tier_unsupported = tier_unsupported;
        quote.cache_savings = usage
            .cache_read
            .saturating_mul(rates.input)
            .saturating_sub(cost.cache_read);
        quote.cost = Some(cost);
        quote.rates = Some(rates);
        quote
    }

    /// Base → Region → latency-optimized → long context → tier → profile multiplier; then a
    /// model without caching has its cache tokens priced at the input rate.
    fn rates_for(&self, tier: Tier, long: Option<&LongContext>) -> (Rates, bool) {
        let e = &*self.entry;
        let mut r = e.rates;
        if let Some(rp) = self.region.and_then(|i| e.regions.get(i)) {
            r = rp.adjust.apply(r);
        }
        if self.latency == Latency::Optimized
            && let Some(a) = &e.latency_optimized
        {
            r = a.apply(r);
        }
        if let Some(lc) = long {
            r = lc.adjust.apply(r);
        }
        let offered = match tier {
            Tier::Default | Tier::Reserved => None,
            Tier::Priority => Some(e.tiers.priority.as_ref()),
            Tier::Flex => Some(e.tiers.flex.as_ref()),
        };
        let unsupported = matches!(offered, Some(None));
        if let Some(Some(a)) = offered {
            r = a.apply(r);
        }
        r = r.scaled(self.profile);
        if !e.caching {
            r.cache_read = r.input;
            r.cache_write = r.input;
            r.cache_write_1h = r.input;
        }
        (r, unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_parse() {
        for (s, t) in [
            ("default", Tier::Default),
            ("Standard", Tier::Default),
            (" PRIORITY ", Tier::Priority),
            ("flex", Tier::Flex),
            ("Reserved", Tier::Reserved),
        ] {
            assert_eq!(Tier::parse(s), Some(t), "{s}");
        }
        assert_eq!(Tier::parse("batch"), None);
        assert_eq!(Tier::parse(""), None);
        for t in Tier::ALL {
            assert_eq!(Tier::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(split_profile("us.a.b"), (Scope::Geo, "a.b"));
        assert_eq!(split_profile("us-gov.a.b"), (Scope::UsGov, "a.b"));
        assert_eq!(split_profile("global.a.b"), (Scope::Global, "a.b"));
        assert_eq!(split_profile("apac.a"), (Scope::Geo, "a"));
        assert_eq!(split_profile("a.b"), (Scope::InRegion, "a.b"));
        assert_eq!(split_profile("usa.b"), (Scope::InRegion, "usa.b"));
    }

    #[test]
    fn arns() {
        let a = Arn::parse("arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-micro-v1:0")
            .unwrap();
        assert_eq!(
            (a.region, a.resource_type, a.resource_id),
            ("eu-west-1", "foundation-model", "amazon.nova-micro-v1:0")
        );
        assert!(Arn::parse("arn:aws:s3:::foundation-model/x").is_none());
        assert!(Arn::parse("arn:aws:bedrock:us-east-1:1:no-slash").is_none());
        assert!(Arn::parse("amazon.nova-micro-v1:0").is_none());
    }
}
