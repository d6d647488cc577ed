//! What calls are billed in besides tokens: generated images (by quality and size), seconds of
//! video, rerank search units and guardrail policy units — what a call used, what the card
//! charges for each, and the arithmetic. Like tokens, every price is integer micro-dollars and
//! every cost integer pico-dollars, so sums are exact.

use super::model_id::{Arn, split_profile};

/// Image quality, as image requests name it (`imageGenerationConfig.quality`); Standard when
/// the request names none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quality {
    #[default]
    Standard,
    Premium,
}

impl Quality {
    pub fn parse(s: &str) -> Option<Quality> {
        if s.eq_ignore_ascii_case("standard") {
            Some(Quality::Standard)
        } else if s.eq_ignore_ascii_case("premium") {
            Some(Quality::Premium)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Standard => "standard",
            Quality::Premium => "premium",
        }
    }
}

/// The guardrail policies ApplyGuardrail reports units for, in the order of its `usage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    Topic,
    Content,
    Word,
    SensitiveInformation,
    SensitiveInformationFree,
    ContextualGrounding,
    ContentImage,
    AutomatedReasoning,
}

impl Policy {
    pub const ALL: [Policy; 8] = [
        Policy::Topic,
        Policy::Content,
        Policy::Word,
        Policy::SensitiveInformation,
        Policy::SensitiveInformationFree,
        Policy::ContextualGrounding,
        Policy::ContentImage,
        Policy::AutomatedReasoning,
    ];

    /// The rate card key (`[guardrails]`), also the ledger's name for it.
    pub fn key(self) -> &'static str {
        match self {
            Policy::Topic => "topic_policy",
            Policy::Content => "content_policy",
            Policy::Word => "word_policy",
            Policy::SensitiveInformation => "sensitive_information_policy",
            Policy::SensitiveInformationFree => "sensitive_information_policy_free",
            Policy::ContextualGrounding => "contextual_grounding_policy",
            Policy::ContentImage => "content_policy_image",
            Policy::AutomatedReasoning => "automated_reasoning_policy",
        }
    }

    /// Image units are images; every other policy counts text units (up to 1,000 characters).
    pub fn unit(self) -> Unit {
        match self {
            Policy::ContentImage => Unit::GuardrailImage,
            _ => Unit::GuardrailTextUnit,
        }
    }
}

/// Units per guardrail policy, indexed like [`Policy::ALL`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyUnits(pub [u64; 8]);

impl PolicyUnits {
    pub fn get(&self, p: Policy) -> u64 {
        self.0[p as usize]
    }

    pub fn set(&mut self, p: Policy, n: u64) {
        self.0[p as usize] = n;
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }

    /// Both counts added up, policy by policy.
    pub fn plus(self, other: PolicyUnits) -> PolicyUnits {
        let mut sum = self;
        for (s, o) in sum.0.iter_mut().zip(other.0) {
            *s = s.saturating_add(o);
        }
        sum
    }
}

/// What a call used besides tokens. All zero for a call billed only per token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Units {
    /// Images generated.
    pub images: u64,
    /// Their quality and size (width × height in pixels; 0 when the request does not say),
    /// which choose the price band.
    pub image_quality: Quality,
    pub image_pixels: u64,
    /// Seconds of video asked for (Nova Reel: billed when Bedrock accepts the job).
    pub video_seconds: u64,
    /// Rerank search units (queries, as AWS counts them).
    pub search_units: u64,
    /// Guardrail units per policy.
    pub guardrail: PolicyUnits,
    /// Speech tokens a speech-to-speech model (Nova Sonic) heard and spoke; its text tokens are
    /// ordinary input and output tokens.
    pub speech_input_tokens: u64,
    pub speech_output_tokens: u64,
}

impl Units {
    pub fn is_empty(&self) -> bool {
        self.images == 0
            && self.video_seconds == 0
            && self.search_units == 0
            && self.guardrail.is_empty()
            && self.speech_input_tokens == 0
            && self.speech_output_tokens == 0
    }

    /// `self` with what `later` reports added: counts add up, and the image quality and size
    /// are `later`'s when it says.
    pub fn and(self, later: Units) -> Units {
        let sized = later.image_pixels > 0 || later.image_quality != Quality::Standard;
        Units {
            images: self.images.saturating_add(later.images),
            image_quality: if sized {
                later.image_quality
            } else {
                self.image_quality
            },
            image_pixels: if sized {
                later.image_pixels
            } else {
                self.image_pixels
            },
            video_seconds: self.video_seconds.saturating_add(later.video_seconds),
            search_units: self.search_units.saturating_add(later.search_units),
            guardrail: self.guardrail.plus(later.guardrail),
            speech_input_tokens: self
                .speech_input_tokens
                .saturating_add(later.speech_input_tokens),
            speech_output_tokens: self
                .speech_output_tokens
                .saturating_add(later.speech_output_tokens),
        }
    }

    /// The count of each unit kind (the `unit` label of `bedrock_units_total`).
    pub fn counts(&self) -> [(Unit, u64); 7] {
        let of = |u: Unit| {
            Policy::ALL
                .iter()
                .filter(|p| p.unit() == u)
                .fold(0u64, |sum, p| sum.saturating_add(self.guardrail.get(*p)))
        };
        [
            (Unit::Image, self.images),
            (Unit::VideoSecond, self.video_seconds),
            (Unit::SearchUnit, self.search_units),
            (Unit::GuardrailTextUnit, of(Unit::GuardrailTextUnit)),
            (Unit::GuardrailImage, of(Unit::GuardrailImage)),
            (Unit::SpeechInputToken, self.speech_input_tokens),
            (Unit::SpeechOutputToken, self.speech_output_tokens),
        ]
    }
}

/// What a model AWS bills per unit is billed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerUnit {
    Image,
    /// Per input image, besides its input tokens (Titan Multimodal Embeddings).
    InputImage,
    VideoSecond,
    SearchUnit,
}

/// Model id prefixes (after any profile prefix, an ARN reduced to its id) that AWS bills per
/// unit rather than per token.
pub const PER_UNIT_MODELS: [(&str, PerUnit); 8] = [
    ("amazon.nova-canvas", PerUnit::Image),
    ("amazon.titan-embed-image", PerUnit::InputImage),
    ("amazon.titan-image-generator", PerUnit::Image),
    ("stability.", PerUnit::Image),
    ("amazon.nova-reel", PerUnit::VideoSecond),
    ("luma.ray", PerUnit::VideoSecond),
    ("cohere.rerank", PerUnit::SearchUnit),
    ("amazon.rerank", PerUnit::SearchUnit),
];

/// What a model id is billed in, if AWS bills it per unit.
pub fn per_unit(model_id: &str) -> Option<PerUnit> {
    let id = Arn::parse(model_id).map_or(model_id, |a| a.resource_id);
    let base = split_profile(id).1;
    PER_UNIT_MODELS
        .iter()
        .find(|(prefix, _)| base.starts_with(prefix))
        .map(|(_, unit)| *unit)
}

/// The kinds of non-token units, as the `unit` metric label names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    Image,
    VideoSecond,
    SearchUnit,
    GuardrailTextUnit,
    GuardrailImage,
    SpeechInputToken,
    SpeechOutputToken,
}

impl Unit {
    pub const ALL: [Unit; 7] = [
        Unit::Image,
        Unit::VideoSecond,
        Unit::SearchUnit,
        Unit::GuardrailTextUnit,
        Unit::GuardrailImage,
        Unit::SpeechInputToken,
        Unit::SpeechOutputToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Image => "image",
            Unit::VideoSecond => "video_second",
            Unit::SearchUnit => "search_unit",
            Unit::GuardrailTextUnit => "guardrail_text_unit",
            Unit::GuardrailImage => "guardrail_image",
            Unit::SpeechInputToken => "speech_input_token",
            Unit::SpeechOutputToken => "speech_output_token",
        }
    }
}

/// The cost of a call's non-token units, in pico-dollars, by the `type` label
/// `bedrock_cost_usd_total` gives each: `image`, `video`, `rerank`, `guardrail`,
/// `speech_input`, `speech_output`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnitCost {
    pub image: u64,
    pub video: u64,
    pub rerank: u64,
    pub guardrail: u64,
    pub speech_input: u64,
    pub speech_output: u64,
}

impl UnitCost {
    /// The cost `type` labels, in this order.
    pub const TYPES: [&'static str; 6] = [
        "image",
        "video",
        "rerank",
        "guardrail",
        "speech_input",
        "speech_output",
    ];

    pub fn by_type(&self) -> [(&'static str, u64); 6] {
        [
            ("image", self.image),
            ("video", self.video),
            ("rerank", self.rerank),
            ("guardrail", self.guardrail),
            ("speech_input", self.speech_input),
            ("speech_output", self.speech_output),
        ]
    }

    pub fn total(&self) -> u64 {
        self.by_type()
            .iter()
            .fold(0u64, |sum, (_, pico)| sum.saturating_add(*pico))
    }
}

/// One price band of a model's images: the price of an image of this quality whose pixel count
/// is at most `max_pixels` (`None`: any size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageBand {
    pub quality: Quality,
    pub max_pixels: Option<u64>,
    /// Micro-dollars per image.
    pub price: u64,
}

/// A model's prices per non-token unit, in micro-dollars per unit. Empty for token models.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitPrices {
    /// Sorted by quality, then by `max_pixels` (the unbounded band last).
    pub images: Vec<ImageBand>,
    pub video_second: Option<u64>,
    pub search_unit: Option<u64>,
    /// Micro-dollars per 1M speech tokens heard and spoken (Nova Sonic), like token rates.
    pub speech_input: Option<u64>,
    pub speech_output: Option<u64>,
}

impl UnitPrices {
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
            && self.video_second.is_none()
            && self.search_unit.is_none()
            && self.speech_input.is_none()
            && self.speech_output.is_none()
    }

    /// The price of one image of this quality and size: the first band of that quality that
    /// holds it. A request that names no size (0 pixels) is priced at the smallest band.
    pub fn image(&self, quality: Quality, pixels: u64) -> Option<u64> {
        self.images
            .iter()
            .filter(|b| b.quality == quality)
            .find(|b| b.max_pixels.is_none_or(|max| pixels <= max))
            .map(|b| b.price)
    }
}

/// Guardrail prices: micro-dollars per 1,000 units of each policy (`[guardrails]` in the card).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardrailRates(pub [Option<u64>; 8]);

impl GuardrailRates {
    pub fn get(&self, p: Policy) -> Option<u64> {
        self.0[p as usize]
    }
}

/// What pricing a call's units found: their cost, and the units no price was found for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnitQuote {
    pub cost: UnitCost,
    /// The cost types priced (bit `i` for `UnitCost::TYPES[i]`), even at $0.
    pub priced: u8,
    /// A unit was used whose price the card lacks (its cost is not in `cost`).
    pub unpriced: bool,
}

/// Prices `units` with a model's unit prices (`None`: the model is not in the card) and the
/// card's guardrail rates. A unit with no price is left out of the cost and flagged, never
/// priced at zero.
pub fn price_units(
    units: &Units,
    model: Option<&UnitPrices>,
    guardrails: &GuardrailRates,
) -> UnitQuote {
    let mut q = UnitQuote::default();
    let mut each = |bit: u8, count: u64, price: Option<u64>| -> u64 {
        if count == 0 {
            return 0;
        }
        match price {
            Some(micros) => {
                q.priced |= bit;
                count.saturating_mul(micros).saturating_mul(1_000_000)
            }
            None => {
                q.unpriced = true;
                0
            }
        }
    };
    q.cost.image = each(
        1,
        units.images,
        model.and_then(|m| m.image(units.image_quality, units.image_pixels)),
    );
    q.cost.video = each(2, units.video_seconds, model.and_then(|m| m.video_second));
    q.cost.rerank = each(4, units.search_units, model.and_then(|m| m.search_unit));
    // Per 1M tokens, like token rates: micro-dollars per 1M tokens are pico-dollars per token.
    let mut per_token = |bit: u8, count: u64, rate: Option<u64>| -> u64 {
        if count == 0 {
            return 0;
        }
        match rate {
            Some(pico) => {
                q.priced |= bit;
                count.saturating_mul(pico)
            }
            None => {
                q.unpriced = true;
                0
            }
        }
    };
    q.cost.speech_input = per_token(
        16,
        units.speech_input_tokens,
        model.and_then(|m| m.speech_input),
    );
    q.cost.speech_output = per_token(
        32,
        units.speech_output_tokens,
        model.and_then(|m| m.speech_output),
    );
    for p in Policy::ALL {
        let n = units.guardrail.get(p);
        if n == 0 {
            continue;
        }
        match guardrails.get(p) {
            // Micro-dollars per 1,000 units: n × r / 1,000 micro-dollars = n × r × 1,000 pico.
            Some(r) => {
                let cost = n.saturating_mul(r).saturating_mul(1_000);
                q.cost.guardrail = q.cost.guardrail.saturating_add(cost);
                q.priced |= 8;
            }
            None => q.unpriced = true,
        }
    }
    q
}

#[cfg(test)]
mod tests;
