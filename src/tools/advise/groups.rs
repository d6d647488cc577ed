//! One pass over a ledger: per app and model, what every lever needs — calls, spend by type,
//! streams, stop reasons, prefixes with their times, active hours and days, and what the same
//! calls would have cost one rung down the model's ladder.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::time::{Duration, UNIX_EPOCH};

use crate::meter::ledger::line::Line;
use crate::pricing::{Call, RateCard, Resolved, Tier, Usage};
use crate::time::Timestamp;
use crate::tools::report::{ReportError, money, read_line};

/// One call's stable prefix, as the caching lever replays them.
#[derive(Clone, Copy, Debug)]
pub struct PrefixUse {
    pub ms: i64,
    pub fingerprint: u64,
    pub bytes: u64,
    pub tokens: u64,
    pub estimated: bool,
    /// The call already read its prefix from the cache.
    pub cached: bool,
}

/// Totals of one app and model over the period.
#[derive(Debug, Default)]
pub struct Group {
    pub app: String,
    pub model: String,
    /// Successful calls.
    pub calls: u64,
    pub streamed: u64,
    /// Calls whose answer said why the model stopped, and those cut at their ceiling.
    pub stop_known: u64,
    pub max_token_stops: u64,
    /// The ceilings the calls asked for: their sum and count.
    pub max_tokens_sum: u64,
    pub max_tokens_n: u64,
    pub tokens: Usage,
    /// Pico-dollars: all of it, and its token part by type.
    pub cost: u128,
    pub input_cost: u128,
    pub output_cost: u128,
    pub cache_read_cost: u128,
    pub cache_write_cost: u128,
    /// Calls the card did not price.
    pub unpriced: u64,
    /// The next cheaper model on the ladder, and the calls' token cost there.
    pub cheaper: Option<String>,
    pub cost_at_cheaper: u128,
    /// The token cost of the calls that were priced at both models.
    pub cost_priced_at_both: u128,
    pub prefixes: Vec<PrefixUse>,
    /// Hours (since the epoch) with at least one call.
    pub hours: BTreeSet<i64>,
    /// Spend per UTC day (days since the epoch), for the report's chart.
    pub daily: BTreeMap<i64, u128>,
}

/// Everything read from the ledger.
#[derive(Debug, Default)]
pub struct Ledger {
    pub groups: Vec<Group>,
    /// The first and last call seen (milliseconds since the epoch).
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub skipped_lines: u64,
}

fn ms_of(t: Timestamp) -> i64 {
    t.unix_secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)
}

/// Reads a ledger's successful calls within `[from, to)`, grouped by app and model.
pub fn read(
    mut input: impl BufRead,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    card: &RateCard,
) -> Result<Ledger, ReportError> {
    let mut groups: HashMap<(String, String), Group> = HashMap::new();
    // The cheaper rung's entry of each model, resolved once.
    let mut resolved: HashMap<String, Option<Resolved>> = HashMap::new();
    let mut ledger = Ledger::default();
    let mut buf = Vec::new();
    while let Some(too_long) = read_line(&mut input, &mut buf).map_err(ReportError::Read)? {
        if !too_long && buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Some((line, time)) = (!too_long)
            .then(|| serde_json::from_slice::<Line<'_>>(&buf).ok())
            .flatten()
            .and_then(|l| Timestamp::parse_rfc3339(&l.time).map(|t| (l, t)))
        else {
            ledger.skipped_lines += 1;
            continue;
        };
        if from.is_some_and(|f| time < f) || to.is_some_and(|t| time >= t) {
            continue;
        }
        if !(200..300).contains(&line.status) {
            continue;
        }
        let ms = ms_of(time);
        ledger.first_ms = Some(ledger.first_ms.map_or(ms, |f| f.min(ms)));
        ledger.last_ms = Some(ledger.last_ms.map_or(ms, |l| l.max(ms)));
        let key = (line.app.to_string(), line.model.to_string());
        let g = groups.entry(key.clone()).or_insert_with(|| Group {
            app: key.0.clone(),
            model: key.1.clone(),
            cheaper: card.cheaper(&key.1),
            ..Group::default()
        });
        let cheaper = resolved.entry(key.1.clone()).or_insert_with(|| {
            let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(time.unix_secs()).unwrap_or(0));
            g.cheaper.as_deref().and_then(|id| {
                card.resolve(&Call {
                    model_id: id,
                    region: None,
                    latency_optimized: false,
                    at,
                })
            })
        });
        let t = line.tokens;
        let usage = Usage {
            input: t.input,
            output: t.output,
            cache_read: t.cache_read,
            cache_write: t.cache_write,
            cache_write_1h: t.cache_write_1h,
        };
        g.calls += 1;
        let streamed = line
            .stream
            .unwrap_or_else(|| line.operation.ends_with("Stream"));
        g.streamed += u64::from(streamed);
        if let Some(stop) = line.stop_reason.as_deref() {
            g.stop_known += 1;
            g.max_token_stops += u64::from(stop == "max_tokens");
        }
        if let Some(n) = line.max_tokens {
            g.max_tokens_sum = g.max_tokens_sum.saturating_add(n);
            g.max_tokens_n += 1;
        }
        g.tokens = add(g.tokens, usage);
        let cost = line
            .cost_usd
            .as_deref()
            .and_then(|c| money("cost_usd", Some(c)).ok());
        match cost {
            None => g.unpriced += 1,
            Some(total) => {
                g.cost += total.0;
                *g.daily.entry(ms.div_euclid(86_400_000)).or_default() += total.0;
                if let Some(by) = &line.cost_usd_by_type {
                    let part = |v: &Option<std::borrow::Cow<'_, str>>| {
                        money("", v.as_deref()).map_or(0, |p| p.0)
                    };
                    let (i, o, r, w) = (
                        part(&by.input),
                        part(&by.output),
                        part(&by.cache_read),
                        part(&by.cache_write),
                    );
                    g.input_cost += i;
                    g.output_cost += o;
                    g.cache_read_cost += r;
                    g.cache_write_cost += w;
                    if let Some(c) = cheaper
                        .as_ref()
                        .and_then(|c| c.quote(&usage, Tier::Default).cost)
                    {
                        g.cost_at_cheaper += u128::from(c.total());
                        g.cost_priced_at_both += i + o + r + w;
                    }
                }
            }
        }
        if let Some(p) = &line.prefix
            && let Ok(fingerprint) = u64::from_str_radix(&p.fingerprint, 16)
        {
            g.prefixes.push(PrefixUse {
                ms,
                fingerprint,
                bytes: p.bytes,
                tokens: p.tokens,
                estimated: p.tokens_estimated,
                cached: t.cache_read > 0,
            });
        }
        g.hours.insert(ms.div_euclid(3_600_000));
    }
    let mut out: Vec<Group> = groups.into_values().collect();
    out.sort_by(|a, b| (&a.app, &a.model).cmp(&(&b.app, &b.model)));
    ledger.groups = out;
    Ok(ledger)
}

fn add(a: Usage, b: Usage) -> Usage {
    Usage {
        input: a.input.saturating_add(b.input),
        output: a.output.saturating_add(b.output),
        cache_read: a.cache_read.saturating_add(b.cache_read),
        cache_write: a.cache_write.saturating_add(b.cache_write),
        cache_write_1h: a.cache_write_1h.saturating_add(b.cache_write_1h),
    }
}
