//! Reading the ledger and summing it: one pass, one line at a time, exact integers throughout.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, BufRead};

use super::error::ReportError;
use super::query::{GroupBy, Query};
use crate::meter::ledger::line::{Line, LineTokens};
use crate::money::Pico;
use crate::time::Timestamp;

/// Longest ledger line read; a longer one is skipped as malformed without being held in memory.
pub const MAX_LINE: usize = 1024 * 1024;

/// Token counts summed over requests. Each ledger line holds `u64` counts, so `u128` sums
/// cannot overflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u128,
    pub output: u128,
    pub cache_read: u128,
    pub cache_write: u128,
    pub cache_write_1h: u128,
}

/// Cost by token type, summed over priced requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CostByType {
    pub input: Pico,
    pub output: Pico,
    pub cache_read: Pico,
    pub cache_write: Pico,
}

/// Sums over a set of requests: one report row, or the whole report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Requests (ledger lines) counted, failed ones included.
    pub requests: u64,
    /// Requests whose HTTP status was 400 or above.
    pub errors: u64,
    /// Requests that carried a cost (`cost_usd` not null).
    pub priced_requests: u64,
    /// Tokens of all requests, priced or not.
    pub tokens: Tokens,
    /// Sum of `cost_usd` over the priced requests.
    pub cost: Pico,
    /// Sum of `cost_usd_by_type` over the priced requests.
    pub cost_by_type: CostByType,
    /// Sum of `cache_savings_usd` over the priced requests.
    pub cache_savings: Pico,
}

impl Totals {
    /// Requests of models without a price: their tokens are counted, their cost is unknown.
    pub fn unpriced_requests(&self) -> u64 {
        self.requests - self.priced_requests
    }

    /// The cost, or `None` when there are requests and none of them is priced. A set with some
    /// priced requests has the cost of those (see [`Totals::unpriced_requests`]).
    pub fn cost_usd(&self) -> Option<Pico> {
        (self.priced_requests > 0 || self.requests == 0).then_some(self.cost)
    }

    /// The output tokens' share of the cost in hundredths of a percent (6250 is 62.50 %).
    /// `None` when unpriced or the cost is zero.
    pub fn output_share(&self) -> Option<u128> {
        self.cost_usd()?;
        self.cost_by_type.output.share_of(self.cost)
    }

    /// Adds another set's sums to this one.
    pub fn merge(&mut self, o: &Totals) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.priced_requests += o.priced_requests;
        let (t, ot) = (&mut self.tokens, &o.tokens);
        t.input += ot.input;
        t.output += ot.output;
        t.cache_read += ot.cache_read;
        t.cache_write += ot.cache_write;
        t.cache_write_1h += ot.cache_write_1h;
        self.cost.0 += o.cost.0;
        let (b, ob) = (&mut self.cost_by_type, &o.cost_by_type);
        b.input.0 += ob.input.0;
        b.output.0 += ob.output.0;
        b.cache_read.0 += ob.cache_read.0;
        b.cache_write.0 += ob.cache_write.0;
        self.cache_savings.0 += o.cache_savings.0;
    }

    fn add(&mut self, r: &Record) {
        // Counts and u64-bounded amounts per line: none of these sums can overflow before
        // 2^64 lines have been read.
        self.requests += 1;
        self.errors += u64::from(r.status >= 400);
        let t = &mut self.tokens;
        t.input += u128::from(r.tokens.input);
        t.output += u128::from(r.tokens.output);
        t.cache_read += u128::from(r.tokens.cache_read);
        t.cache_write += u128::from(r.tokens.cache_write);
        t.cache_write_1h += u128::from(r.tokens.cache_write_1h);
        if let Some(c) = &r.cost {
            self.priced_requests += 1;
            self.cost.0 += c.total.0;
            let b = &mut self.cost_by_type;
            b.input.0 += c.by_type.input.0;
            b.output.0 += c.by_type.output.0;
            b.cache_read.0 += c.by_type.cache_read.0;
            b.cache_write.0 += c.by_type.cache_write.0;
            self.cache_savings.0 += c.savings.0;
        }
    }
}

/// One report row: the requests of one group. Priced and unpriced requests of the same group
/// are separate rows, so a row's cost is either complete or `unpriced`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The app, when grouping by app.
    pub app: Option<String>,
    /// The model id, when grouping by model.
    pub model: Option<String>,
    /// Whether this row's requests are priced (all of them are, or none is).
    pub priced: bool,
    pub totals: Totals,
}

/// The first malformed line, to point at in the warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based line number in the ledger.
    pub line: u64,
    /// Why it was skipped.
    pub reason: String,
}

/// The result of [`aggregate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub by: GroupBy,
    /// Sorted by cost, highest first (unpriced rows last), then app, then model.
    pub rows: Vec<Row>,
    /// Everything in the period; `total.cost` covers the priced requests only.
    pub total: Totals,
    /// Malformed lines skipped, anywhere in the ledger (in the period or not).
    pub skipped_lines: u64,
    pub first_skipped: Option<SkippedLine>,
}

impl Report {
    /// The sums of one group, its priced and unpriced rows together (zero if it has none).
    /// `app` or `model` is `None` when the report is not grouped by it.
    pub fn group(&self, app: Option<&str>, model: Option<&str>) -> Totals {
        let mut totals = Totals::default();
        for row in &self.rows {
            if row.app.as_deref() == app && row.model.as_deref() == model {
                totals.merge(&row.totals);
            }
        }
        totals
    }
}

/// Reads a ledger and sums the requests in the query's period by its grouping.
///
/// Malformed lines are skipped and counted, never fatal; blank lines are ignored. Only a read
/// error fails.
pub fn aggregate(mut input: impl BufRead, query: &Query) -> Result<Report, ReportError> {
    let mut groups: HashMap<Box<str>, HashMap<Box<str>, [Totals; 2]>> = HashMap::new();
    let mut total = Totals::default();
    let mut skipped_lines = 0u64;
    let mut first_skipped = None;
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    while let Some(too_long) = read_line(&mut input, &mut buf).map_err(ReportError::Read)? {
        line_no += 1;
        if !too_long && buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = if too_long {
            Err(format!("longer than {MAX_LINE} bytes"))
        } else {
            Record::parse(&buf)
        };
        let record = match parsed {
            Ok(r) => r,
            Err(reason) => {
                skipped_lines += 1;
                first_skipped.get_or_insert(SkippedLine {
                    line: line_no,
                    reason,
                });
                continue;
            }
        };
        if query.from.is_some_and(|from| record.time < from)
            || query.to.is_some_and(|to| record.time >= to)
        {
            continue;
        }
        let app = if query.by.has_app() { &*record.app } else { "" };
        let model = if query.by.has_model() {
            &*record.model
        } else {
            ""
        };
        let by_model = match groups.get_mut(app) {
            Some(m) => m,
            None => groups.entry(app.into()).or_default(),
        };
        let pair = match by_model.get_mut(model) {
            Some(p) => p,
            None => by_model.entry(model.into()).or_default(),
        };
        pair[usize::from(record.cost.is_some())].add(&record);
        total.add(&record);
    }

    let mut rows = Vec::new();
    for (app, by_model) in groups {
        for (model, pair) in by_model {
            for (priced, totals) in [false, true].into_iter().zip(pair) {
                if totals.requests == 0 {
                    continue;
                }
                rows.push(Row {
                    app: query.by.has_app().then(|| app.to_string()),
                    model: query.by.has_model().then(|| model.to_string()),
                    priced,
                    totals,
                });
            }
        }
    }
    rows.sort_by(|a, b| {
        let cost = |r: &Row| r.priced.then_some(r.totals.cost);
        cost(b)
            .cmp(&cost(a))
            .then_with(|| a.app.cmp(&b.app))
            .then_with(|| a.model.cmp(&b.model))
    });
    Ok(Report {
        from: query.from,
        to: query.to,
        by: query.by,
        rows,
        total,
        skipped_lines,
        first_skipped,
    })
}

/// Reads one line (without its `\n`) into `buf`. `None` at end of input; `Some(true)` when the
/// line was longer than [`MAX_LINE`] (then `buf` is left empty and the rest is discarded).
pub(crate) fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let newline = available.iter().position(|&c| c == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if !too_long {
            if buf.len() + chunk.len() > MAX_LINE {
                too_long = true;
                *buf = Vec::new();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = newline.map_or(chunk.len(), |n| n + 1);
        input.consume(used);
        if newline.is_some() {
            return Ok(Some(too_long));
        }
    }
}

/// A valid ledger line.
struct Record<'a> {
    time: Timestamp,
    app: Cow<'a, str>,
    model: Cow<'a, str>,
    status: u16,
    tokens: LineTokens,
    cost: Option<LineCost>,
}

struct LineCost {
    total: Pico,
    by_type: CostByType,
    savings: Pico,
}

impl<'a> Record<'a> {
    /// Parses and checks one line; the error is a reason for the warning.
    fn parse(bytes: &'a [u8]) -> Result<Record<'a>, String> {
        let line: Line<'a> = serde_json::from_slice(bytes).map_err(|e| {
            let message = e.to_string();
            // The position within the line is noise next to the line number.
            match message.rfind(" at line ") {
                Some(i) => message[..i].to_string(),
                None => message,
            }
        })?;
        let time = Timestamp::parse_rfc3339(&line.time)
            .ok_or_else(|| format!("invalid time {:?}", line.time))?;
        let cost = match line.cost_usd.as_deref() {
            None => None,
            Some(total) => {
                let by_type = line
                    .cost_usd_by_type
                    .ok_or("cost_usd is set but cost_usd_by_type is null")?;
                Some(LineCost {
                    total: money("cost_usd", Some(total))?,
                    by_type: CostByType {
                        input: money("cost_usd_by_type.input", by_type.input.as_deref())?,
                        output: money("cost_usd_by_type.output", by_type.output.as_deref())?,
                        cache_read: money(
                            "cost_usd_by_type.cache_read",
                            by_type.cache_read.as_deref(),
                        )?,
                        cache_write: money(
                            "cost_usd_by_type.cache_write",
                            by_type.cache_write.as_deref(),
                        )?,
                    },
                    savings: money("cache_savings_usd", line.cache_savings_usd.as_deref())?,
                })
            }
        };
        Ok(Record {
            time,
            app: line.app,
            model: line.model,
            status: line.status,
            tokens: line.tokens,
            cost,
        })
    }
}

/// One amount of a priced line: absent or null is zero; at most `u64::MAX` pico-dollars
/// (about 18 million USD) per line, which keeps every sum exact.
pub(crate) fn money(field: &str, value: Option<&str>) -> Result<Pico, String> {
    let Some(s) = value else {
        return Ok(Pico(0));
    };
    Pico::parse_usd(s)
        .filter(|p| p.0 <= u128::from(u64::MAX))
        .ok_or_else(|| format!("invalid {field} {s:?}"))
}

#[cfg(test)]
mod tests;
