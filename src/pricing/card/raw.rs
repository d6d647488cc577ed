//! The card's TOML shapes as serde reads them: every table rejects unknown keys and keeps the
//! spans of its values, so that validation can name the line of each problem.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCard {
    pub version: Spanned<String>,
    pub currency: Option<Spanned<String>>,
    pub updated: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub model: Vec<Spanned<RawModel>>,
    #[serde(default)]
    pub arn: Vec<Spanned<RawArn>>,
    pub guardrails: Option<Spanned<RawGuardrails>>,
    #[serde(default)]
    pub ladder: Vec<Spanned<RawLadder>>,
}

/// `[[ladder]]`: a family's models from the dearest to the cheapest, for `advise`'s
/// right-sizing lever.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLadder {
    pub name: Spanned<String>,
    pub models: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    pub id: Spanned<String>,
    pub name: Option<Spanned<String>>,
    /// Required for a model priced per token; absent for one priced only per unit.
    pub input: Option<Spanned<f64>>,
    pub output: Option<Spanned<f64>>,
    pub cache_read: Option<Spanned<f64>>,
    pub cache_write: Option<Spanned<f64>>,
    pub cache_write_1h: Option<Spanned<f64>>,
    pub caching: Option<Spanned<bool>>,
    pub effective_from: Option<Spanned<toml::Value>>,
    pub profiles: Option<Spanned<RawProfiles>>,
    pub tiers: Option<Spanned<RawTiers>>,
    pub regions: Option<BTreeMap<String, Spanned<RawAdjust>>>,
    pub latency_optimized: Option<Spanned<RawAdjust>>,
    pub long_context: Option<Spanned<RawLongContext>>,
    pub per_image: Option<Spanned<Vec<Spanned<RawImageBand>>>>,
    pub per_video_second: Option<Spanned<f64>>,
    pub per_search_unit: Option<Spanned<f64>>,
    /// USD per 1M speech tokens heard and spoken (Nova Sonic), like `input` and `output`.
    pub speech_input: Option<Spanned<f64>>,
    pub speech_output: Option<Spanned<f64>>,
}

/// One `per_image` band: USD per image of this quality up to `max_pixels` (none: any size).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImageBand {
    pub quality: Option<Spanned<String>>,
    pub max_pixels: Option<Spanned<i64>>,
    pub usd: Spanned<f64>,
}

/// `[guardrails]`: USD per 1,000 units of each policy, named as ApplyGuardrail's `usage` names
/// them (`contentPolicyUnits` is `content_policy`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGuardrails {
    pub topic_policy: Option<Spanned<f64>>,
    pub content_policy: Option<Spanned<f64>>,
    pub word_policy: Option<Spanned<f64>>,
    pub sensitive_information_policy: Option<Spanned<f64>>,
    pub sensitive_information_policy_free: Option<Spanned<f64>>,
    pub contextual_grounding_policy: Option<Spanned<f64>>,
    pub content_policy_image: Option<Spanned<f64>>,
    pub automated_reasoning_policy: Option<Spanned<f64>>,
}

impl RawGuardrails {
    /// The rates in the order of `Policy::ALL`.
    pub fn in_order(&self) -> [Option<&Spanned<f64>>; 8] {
        [
            self.topic_policy.as_ref(),
            self.content_policy.as_ref(),
            self.word_policy.as_ref(),
            self.sensitive_information_policy.as_ref(),
            self.sensitive_information_policy_free.as_ref(),
            self.contextual_grounding_policy.as_ref(),
            self.content_policy_image.as_ref(),
            self.automated_reasoning_policy.as_ref(),
        ]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfiles {
    pub global: Option<Spanned<f64>>,
    pub geo: Option<Spanned<f64>>,
    #[serde(rename = "us-gov")]
    pub us_gov: Option<Spanned<f64>>,
    #[serde(rename = "in-region")]
    pub in_region: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTiers {
    pub priority: Option<Spanned<RawAdjust>>,
    pub flex: Option<Spanned<RawAdjust>>,
}

/// A multiplier (`priority = 1.75`) or a table of rates with an optional `multiplier`.
pub(super) enum RawAdjust {
    Multiplier(f64),
    Table(RawRates),
}

/// The rates of a table as written. Not the per-token-type container (`units::Tokens`): serde
/// cannot flatten one into a struct that denies unknown fields, and a misspelt rate must stay an
/// error at its line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRates {
    pub multiplier: Option<Spanned<f64>>,
    pub input: Option<Spanned<f64>>,
    pub output: Option<Spanned<f64>>,
    pub cache_read: Option<Spanned<f64>>,
    pub cache_write: Option<Spanned<f64>>,
    pub cache_write_1h: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLongContext {
    pub threshold: Spanned<i64>,
    pub multiplier: Option<Spanned<f64>>,
    pub input: Option<Spanned<f64>>,
    pub output: Option<Spanned<f64>>,
    pub cache_read: Option<Spanned<f64>>,
    pub cache_write: Option<Spanned<f64>>,
    pub cache_write_1h: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArn {
    pub arn: Spanned<String>,
    pub model: Option<Spanned<String>>,
    pub provisioned: Option<bool>,
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
