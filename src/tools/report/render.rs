//! Writing a [`Report`]: an aligned table for people, CSV and JSON for programs.

use std::io::{self, BufWriter, Write};

use serde::Serialize;

use super::aggregate::{Report, Row, Totals};
use super::error::ReportError;
use super::query::{Format, GroupBy};
use crate::money::{Pico, percent};
use crate::time::Timestamp;

/// Fraction digits of money in the table (micro-dollars); CSV and JSON are exact.
const TABLE_DECIMALS: u32 = 6;

/// Writes the report in `format`.
pub fn render(report: &Report, format: Format, out: &mut impl Write) -> Result<(), ReportError> {
    let mut w = BufWriter::new(out);
    match format {
        Format::Table => table(report, &mut w),
        Format::Csv => csv(report, &mut w),
        Format::Json => json(report, &mut w),
    }
    .and_then(|()| w.flush())
    .map_err(ReportError::Write)
}

/// The key columns of a grouping, by header name.
fn key_columns(by: GroupBy) -> &'static [&'static str] {
    match by {
        GroupBy::AppModel => &["app", "model"],
        GroupBy::App => &["app"],
        GroupBy::Model => &["model"],
    }
}

/// The key cells of a row, in [`key_columns`] order.
fn keys(row: &Row) -> Vec<&str> {
    row.app
        .iter()
        .chain(&row.model)
        .map(String::as_str)
        .collect()
}

/// Key cells of the TOTAL row: `TOTAL` then blanks.
fn total_keys(by: GroupBy) -> Vec<&'static str> {
    let mut k = vec![""; key_columns(by).len()];
    k[0] = "TOTAL";
    k
}

fn table(report: &Report, w: &mut impl Write) -> io::Result<()> {
    let keys_n = key_columns(report.by).len();
    let header = key_columns(report.by).iter().copied().chain([
        "requests",
        "errors",
        "input",
        "output",
        "cache_read",
        "cache_write",
        "cost_usd",
        "output_share",
        "cache_savings_usd",
    ]);
    let cells = |keys: Vec<&str>, t: &Totals| -> Vec<String> {
        let money = |p: Option<Pico>, unpriced: &str| match p {
            Some(p) => p.usd_rounded(TABLE_DECIMALS),
            None => unpriced.to_string(),
        };
        let cost = t.cost_usd();
        keys.into_iter()
            .map(printable)
            .chain([
                t.requests.to_string(),
                t.errors.to_string(),
                t.tokens.input.to_string(),
                t.tokens.output.to_string(),
                t.tokens.cache_read.to_string(),
                t.tokens.cache_write.to_string(),
                money(cost, "unpriced"),
                t.output_share()
                    .map_or_else(|| "-".to_string(), |s| format!("{}%", percent(s))),
                money(cost.map(|_| t.cache_savings), "-"),
            ])
            .collect()
    };
    let mut lines: Vec<Vec<String>> = vec![header.map(String::from).collect()];
    lines.extend(report.rows.iter().map(|r| cells(keys(r), &r.totals)));
    lines.push(cells(total_keys(report.by), &report.total));

    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|l| l.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in &lines {
        let mut text = String::new();
        for (c, (cell, width)) in line.iter().zip(&widths).enumerate() {
            if c > 0 {
                text.push_str("  ");
            }
            if c < keys_n {
                text.push_str(&format!("{cell:<width$}"));
            } else {
                text.push_str(&format!("{cell:>width$}"));
            }
        }
        writeln!(w, "{}", text.trim_end())?;
    }

    writeln!(w)?;
    let bound = |t: Option<Timestamp>, open: &str, closed: &str| match t {
        Some(t) => format!("{t} ({closed})"),
        None => open.to_string(),
    };
    if report.from.is_none() && report.to.is_none() {
        writeln!(w, "period: whole ledger")?;
    } else {
        writeln!(
            w,
            "period: from {} to {}",
            bound(report.from, "start of ledger", "inclusive"),
            bound(report.to, "end of ledger", "exclusive")
        )?;
    }
    let unpriced = report.total.unpriced_requests();
    if unpriced > 0 {
        writeln!(
            w,
            "unpriced: {unpriced} request{} to models without a price: tokens counted, cost not in TOTAL",
            if unpriced == 1 { "" } else { "s" }
        )?;
    }
    Ok(())
}

/// CSV columns after the keys; the same names as the JSON fields of [`Fields`].
const CSV_COLUMNS: [&str; 12] = [
    "requests",
    "errors",
    "unpriced_requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "cost_usd",
    "output_cost_usd",
    "output_share_pct",
    "cache_savings_usd",
];

/// One row's values, shared by CSV and JSON: money exact, absent when unpriced.
#[derive(Serialize)]
struct Fields {
    requests: u64,
    errors: u64,
    unpriced_requests: u64,
    input_tokens: u128,
    output_tokens: u128,
    cache_read_tokens: u128,
    cache_write_tokens: u128,
    cache_write_1h_tokens: u128,
    cost_usd: Option<String>,
    output_cost_usd: Option<String>,
    output_share_pct: Option<f64>,
    /// `output_share_pct` in hundredths of a percent, for CSV's exact two decimals.
    #[serde(skip)]
    output_share: Option<u128>,
    cache_savings_usd: Option<String>,
}

impl Fields {
    fn new(t: &Totals) -> Fields {
        let cost = t.cost_usd();
        let share = t.output_share();
        Fields {
            requests: t.requests,
            errors: t.errors,
            unpriced_requests: t.unpriced_requests(),
            input_tokens: t.tokens.input,
            output_tokens: t.tokens.output,
            cache_read_tokens: t.tokens.cache_read,
            cache_write_tokens: t.tokens.cache_write,
            cache_write_1h_tokens: t.tokens.cache_write_1h,
            cost_usd: cost.map(|c| c.to_string()),
            output_cost_usd: cost.map(|_| t.cost_by_type.output.to_string()),
            // Hundredths of a percent / 100 is the nearest double to the two-decimal value,
            // so it prints as exactly that decimal (62.5, 57.75).
            output_share_pct: share.map(|s| s as f64 / 100.0),
            output_share: share,
            cache_savings_usd: cost.map(|_| t.cache_savings.to_string()),
        }
    }

    fn csv_cells(&self) -> [String; 12] {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            self.requests.to_string(),
            self.errors.to_string(),
            self.unpriced_requests.to_string(),
            self.input_tokens.to_string(),
            self.output_tokens.to_string(),
            self.cache_read_tokens.to_string(),
            self.cache_write_tokens.to_string(),
            self.cache_write_1h_tokens.to_string(),
            opt(&self.cost_usd),
            opt(&self.output_cost_usd),
            self.output_share.map(percent).unwrap_or_default(),
            opt(&self.cache_savings_usd),
        ]
    }
}

fn csv(report: &Report, w: &mut impl Write) -> io::Result<()> {
    let header: Vec<&str> = key_columns(report.by)
        .iter()
        .chain(&CSV_COLUMNS)
        .copied()
        .collect();
    writeln!(w, "{}", header.join(","))?;
    let mut line = |keys: Vec<&str>, t: &Totals| -> io::Result<()> {
        let values = Fields::new(t).csv_cells();
        let cells: Vec<String> = keys.into_iter().map(csv_quote).chain(values).collect();
        writeln!(w, "{}", cells.join(","))
    };
    for row in &report.rows {
        line(keys(row), &row.totals)?;
    }
    line(total_keys(report.by), &report.total)
}

/// RFC 4180 quoting, only where needed.
fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    from: Option<String>,
    to: Option<String>,
    by: &'static [&'static str],
    rows: Vec<JsonRow<'a>>,
    total: Fields,
    skipped_lines: u64,
    first_skipped_line: Option<u64>,
}

#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(flatten)]
    fields: Fields,
}

fn json(report: &Report, w: &mut impl Write) -> io::Result<()> {
    let doc = JsonReport {
        from: report.from.map(|t| t.to_string()),
        to: report.to.map(|t| t.to_string()),
        by: key_columns(report.by),
        rows: report
            .rows
            .iter()
            .map(|r| JsonRow {
                app: r.app.as_deref(),
                model: r.model.as_deref(),
                fields: Fields::new(&r.totals),
            })
            .collect(),
        total: Fields::new(&report.total),
        skipped_lines: report.skipped_lines,
        first_skipped_line: report.first_skipped.as_ref().map(|s| s.line),
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

/// `s` with control characters escaped, safe to print on a terminal.
pub(super) fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
