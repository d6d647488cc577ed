//! The ledger's JSON line, the format docs/report.md documents: one type the writer serializes
//! from a [`Record`] and `report` deserializes, so the two sides cannot drift apart.
//!
//! Reading is lenient where a newer or older writer may differ (unknown fields are ignored,
//! missing token counts and amounts default) and the fields `report` does not use are not read
//! at all, so a line is never malformed because of them.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize};

use crate::api::request::Prefix;
use crate::api::{Operation, StopReason};
use crate::money::usd;
use std::collections::BTreeMap;

use crate::pricing::billing_units::{Policy, UnitCost, Units};
use crate::pricing::{Cost, Usage};
use crate::time::rfc3339_millis;

/// One recorded request, as the meter knows it.
#[derive(Clone, Debug)]
pub struct Record {
    pub time: SystemTime,
    pub request_id: Option<Box<str>>,
    pub app: Arc<str>,
    pub model: Arc<str>,
    pub operation: Operation,
    /// The prompt router called, when `model` is the model it chose.
    pub router: Option<Arc<str>>,
    pub status: u16,
    pub tier: Option<&'static str>,
    pub usage: Usage,
    /// None: the model is unpriced (or the request used no per-token pricing).
    pub cost: Option<Cost>,
    pub cache_savings: Option<u64>,
    /// What the call used besides tokens, and what the card priced of it.
    pub units: Units,
    pub unit_cost: Option<UnitCost>,
    pub latency: Duration,
    pub rate_card: Arc<str>,
    /// The client asked for a streamed answer.
    pub stream: bool,
    /// The output ceiling the request set.
    pub max_tokens: Option<u64>,
    /// Why the model stopped, where the answer said.
    pub stop_reason: Option<StopReason>,
    /// The request's stable prefix (system prompt, tools, leading messages).
    pub prefix: Option<Prefix>,
}

/// One ledger line. Field order is the order on the line. The three type names show in
/// `report`'s reasons for skipping a line ("expected struct LineTokens"), so they stay.
///
/// Deserializing leaves `request_id`, `tier`, `latency_ms` and `rate_card` at their defaults,
/// whatever the line holds: neither `report` nor `advise` uses them.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Line<'a> {
    /// RFC 3339 in UTC with milliseconds, as written.
    #[serde(deserialize_with = "borrowed")]
    pub time: Cow<'a, str>,
    #[serde(skip_deserializing)]
    pub request_id: Option<&'a str>,
    #[serde(borrow)]
    pub app: Cow<'a, str>,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// Read back by `advise` (a stream is told by it on lines older than `stream`).
    #[serde(default, borrow)]
    pub operation: Cow<'a, str>,
    /// Written only for calls to a prompt router.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub router: Option<Cow<'a, str>>,
    pub status: u16,
    #[serde(skip_deserializing)]
    pub tier: Option<&'a str>,
    pub tokens: LineTokens,
    /// Non-token units (images, video seconds, search units, guardrail units), when any.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub units: Option<LineUnits>,
    /// Exact USD decimal, tokens and units together; `None` when nothing of the call was
    /// priced.
    #[serde(default, deserialize_with = "borrowed_opt")]
    pub cost_usd: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub cost_usd_by_type: Option<LineCostByType<'a>>,
    #[serde(default, deserialize_with = "borrowed_opt")]
    pub cache_savings_usd: Option<Cow<'a, str>>,
    #[serde(skip_deserializing)]
    pub latency_ms: f64,
    #[serde(skip_deserializing)]
    pub rate_card: &'a str,
    /// Written by every meter since the savings advisor; absent from older lines (`advise`
    /// then tells streams by their operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<LinePrefix<'a>>,
}

/// A request's stable prefix: a keyed fingerprint (16 hex digits), its size in bytes, and its
/// tokens — the cache tokens Bedrock reported for the call when it used the cache, else an
/// estimate of four bytes per token, marked as one.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct LinePrefix<'a> {
    #[serde(borrow)]
    pub fingerprint: Cow<'a, str>,
    pub bytes: u64,
    pub tokens: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tokens_estimated: bool,
}

impl LinePrefix<'_> {
    fn of(prefix: &Prefix, usage: &Usage) -> LinePrefix<'static> {
        let cached = usage.cache_read.saturating_add(usage.cache_write);
        LinePrefix {
            fingerprint: Cow::Owned(format!("{:016x}", prefix.fingerprint)),
            bytes: prefix.bytes,
            tokens: if cached > 0 {
                cached
            } else {
                prefix
                    .bytes
                    .div_ceil(crate::meter::prefixes::BYTES_PER_TOKEN)
            },
            tokens_estimated: cached == 0,
        }
    }
}

/// Token counts of one request; a count missing from a line is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LineTokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub cache_write_1h: u64,
}

/// The cost split by token type, exact USD decimals. The writer sets all four; a reader takes
/// a missing one as absent.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct LineCostByType<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub input: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub output: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub cache_read: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    pub cache_write: Option<Cow<'a, str>>,
    /// The non-token cost types, written only when the call had a cost of that type.
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub image: Option<Cow<'a, str>>,
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub video: Option<Cow<'a, str>>,
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub rerank: Option<Cow<'a, str>>,
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub guardrail: Option<Cow<'a, str>>,
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub speech_input: Option<Cow<'a, str>>,
    #[serde(
        default,
        borrow,
        deserialize_with = "borrowed_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub speech_output: Option<Cow<'a, str>>,
}

/// What a call used besides tokens (written only for such calls; `report` does not read it).
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct LineUnits {
    #[serde(skip_serializing_if = "is_zero")]
    pub image: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_quality: Option<&'static str>,
    #[serde(skip_serializing_if = "is_zero")]
    pub image_pixels: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub video_second: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub search_unit: u64,
    /// Units by guardrail policy, named as in the rate card's `[guardrails]`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub guardrail: BTreeMap<&'static str, u64>,
    /// Speech tokens heard and spoken (Nova Sonic); its text tokens are in `tokens`.
    #[serde(skip_serializing_if = "is_zero")]
    pub speech_input_token: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub speech_output_token: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl LineUnits {
    fn of(u: &Units) -> Option<LineUnits> {
        if u.is_empty() {
            return None;
        }
        let images = u.images > 0;
        Some(LineUnits {
            image: u.images,
            image_quality: images.then(|| u.image_quality.as_str()),
            image_pixels: if images { u.image_pixels } else { 0 },
            video_second: u.video_seconds,
            search_unit: u.search_units,
            guardrail: Policy::ALL
                .iter()
                .filter(|p| u.guardrail.get(**p) > 0)
                .map(|p| (p.key(), u.guardrail.get(*p)))
                .collect(),
            speech_input_token: u.speech_input_tokens,
            speech_output_token: u.speech_output_tokens,
        })
    }
}

impl<'a> From<&'a Record> for Line<'a> {
    fn from(r: &'a Record) -> Self {
        let usd = |pico| Some(Cow::Owned(usd(pico)));
        let total = match (r.cost, r.unit_cost) {
            (None, None) => None,
            (c, u) => Some(
                c.map_or(0, |c| c.total())
                    .saturating_add(u.map_or(0, |u| u.total())),
            ),
        };
        Line {
            time: Cow::Owned(rfc3339_millis(r.time)),
            request_id: r.request_id.as_deref(),
            app: Cow::Borrowed(&r.app),
            model: Cow::Borrowed(&r.model),
            operation: Cow::Borrowed(r.operation.as_str()),
            router: r.router.as_deref().map(Cow::Borrowed),
            status: r.status,
            tier: r.tier,
            tokens: LineTokens {
                input: r.usage.input,
                output: r.usage.output,
                cache_read: r.usage.cache_read,
                cache_write: r.usage.cache_write,
                cache_write_1h: r.usage.cache_write_1h,
            },
            units: LineUnits::of(&r.units),
            cost_usd: total.and_then(usd),
            cost_usd_by_type: total.map(|_| {
                let c = r.cost.unwrap_or_default();
                let u = r.unit_cost.unwrap_or_default();
                let some = |pico: u64| if pico > 0 { usd(pico) } else { None };
                LineCostByType {
                    input: usd(c.input),
                    output: usd(c.output),
                    cache_read: usd(c.cache_read),
                    cache_write: usd(c.cache_write),
                    image: some(u.image),
                    video: some(u.video),
                    rerank: some(u.rerank),
                    guardrail: some(u.guardrail),
                    speech_input: some(u.speech_input),
                    speech_output: some(u.speech_output),
                }
            }),
            cache_savings_usd: r.cache_savings.and_then(usd),
            latency_ms: (r.latency.as_secs_f64() * 1e6).round() / 1e3,
            rate_card: &r.rate_card,
            stream: Some(r.stream),
            max_tokens: r.max_tokens,
            stop_reason: r.stop_reason.map(|s| Cow::Borrowed(s.as_str())),
            prefix: r.prefix.as_ref().map(|p| LinePrefix::of(p, &r.usage)),
        }
    }
}

/// A string the line holds verbatim. The writer never escapes a time or an amount, and
/// `report` has always refused one that needs unescaping; taking only borrowed strings keeps
/// that.
fn borrowed<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Cow<'a, str>, D::Error> {
    <&'a str>::deserialize(d).map(Cow::Borrowed)
}

/// [`borrowed`], or `null`.
fn borrowed_opt<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    Ok(Option::<&'a str>::deserialize(d)?.map(Cow::Borrowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_writer_writes_reads_back() {
        let text = include_str!("../../../tests/fixtures/ledger-sample.jsonl");
        let first = text.lines().next().unwrap();
        let line: Line = serde_json::from_str(first).unwrap();
        assert_eq!(line.time, "2026-11-23T10:00:00.123Z");
        assert_eq!(line.app, "checkout");
        assert_eq!(line.tokens.output, 350);
        assert_eq!(line.cost_usd.as_deref(), Some("0.009735000000"));
        let by_type = line.cost_usd_by_type.as_ref().unwrap();
        assert_eq!(by_type.output.as_deref(), Some("0.005775000000"));
        assert!(matches!(line.time, Cow::Borrowed(_)));
        // Not read back: report does not use them.
        assert_eq!((line.request_id, line.rate_card), (None, ""));
        assert_eq!(line.operation, "Converse");
    }

    #[test]
    fn names_may_be_escaped_but_times_and_amounts_may_not() {
        let line: Line = serde_json::from_str(
            r#"{"time":"2026-11-23T10:00:00Z","app":"\u0061","model":"m","status":200,"tokens":{}}"#,
        )
        .unwrap();
        assert_eq!(line.app, "a");
        for escaped in [
            r#"{"time":"2026-11-23T10:00:00\u005a","app":"a","model":"m","status":200,"tokens":{}}"#,
            r#"{"time":"2026-11-23T10:00:00Z","app":"a","model":"m","status":200,"tokens":{},"cost_usd":"\u0031"}"#,
        ] {
            let e = serde_json::from_str::<Line>(escaped).unwrap_err();
            assert!(e.to_string().contains("expected a borrowed string"), "{e}");
        }
    }
}
