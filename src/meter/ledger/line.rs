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

use crate::api::Operation;
use crate::money::usd;
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
    pub latency: Duration,
    pub rate_card: Arc<str>,
}

/// One ledger line. Field order is the order on the line. The three type names show in
/// `report`'s reasons for skipping a line ("expected struct LineTokens"), so they stay.
///
/// Deserializing leaves `request_id`, `operation`, `tier`, `latency_ms` and `rate_card` at
/// their defaults, whatever the line holds: `report` does not use them.
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
    #[serde(skip_deserializing)]
    pub operation: &'a str,
    /// Written only for calls to a prompt router.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub router: Option<Cow<'a, str>>,
    pub status: u16,
    #[serde(skip_deserializing)]
    pub tier: Option<&'a str>,
    pub tokens: LineTokens,
    /// Exact USD decimal; `None` when the model is unpriced.
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
}

impl<'a> From<&'a Record> for Line<'a> {
    fn from(r: &'a Record) -> Self {
        let usd = |pico| Some(Cow::Owned(usd(pico)));
        Line {
            time: Cow::Owned(rfc3339_millis(r.time)),
            request_id: r.request_id.as_deref(),
            app: Cow::Borrowed(&r.app),
            model: Cow::Borrowed(&r.model),
            operation: r.operation.as_str(),
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
            cost_usd: r.cost.and_then(|c| usd(c.total())),
            cost_usd_by_type: r.cost.map(|c| LineCostByType {
                input: usd(c.input),
                output: usd(c.output),
                cache_read: usd(c.cache_read),
                cache_write: usd(c.cache_write),
            }),
            cache_savings_usd: r.cache_savings.and_then(usd),
            latency_ms: (r.latency.as_secs_f64() * 1e6).round() / 1e3,
            rate_card: &r.rate_card,
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
        assert_eq!(
            (line.request_id, line.operation, line.rate_card),
            (None, "", "")
        );
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
