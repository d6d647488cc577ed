//! `bedrock-meter advise LEDGER`: the savings advisor. From the meter's own ledger, for each
//! app and model, which cost lever to pull — prompt caching, Batch, output discipline,
//! right-sizing, retrieval instead of long context, Provisioned Throughput — with the measurement it rests on, the dollars per
//! month it saves at the observed volume (priced exactly with the rate card), and the caveat.
//! Ranked by dollars. docs/advise.md gives the rules.

mod groups;
mod html;
pub mod levers;

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::ValueEnum;
use serde_json::{Value, json};

use crate::pricing::RateCard;
use crate::time::{Timestamp, rfc3339_millis};
use crate::tools::report::{ReportArgs, ReportError};
pub use groups::{Group, Ledger};
pub use levers::{Kind, Lever};

/// Options of `bedrock-meter advise` (everything but the ledger path).
#[derive(clap::Args, Clone, Debug)]
pub struct AdviseArgs {
    /// Start of the period, inclusive: an RFC 3339 time or a date (midnight UTC). Without it,
    /// the period starts at the first call in the ledger.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the period, exclusive. Without it, the period ends at the last call.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AdviseFormat::Table)]
    pub format: AdviseFormat,
    /// Rate card the levers are priced with.
    #[arg(
        long,
        env = "BEDROCK_METER_RATES",
        default_value = "rates/bedrock.toml"
    )]
    pub rates: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdviseFormat {
    /// The levers ranked, for people.
    #[default]
    Table,
    /// Everything, exact amounts as decimal strings.
    Json,
    /// One self-contained HTML page with charts (no network needed to view it).
    Html,
}

/// What the advisor found: the period, each app and model's spend, and the levers ranked.
pub struct Advice {
    pub from_ms: i64,
    pub to_ms: i64,
    pub groups: Vec<Group>,
    pub levers: Vec<Lever>,
    pub skipped_lines: u64,
}

impl Advice {
    fn period_ms(&self) -> u128 {
        u128::try_from(self.to_ms - self.from_ms)
            .unwrap_or(0)
            .max(1)
    }
}

fn ms(t: Timestamp) -> i64 {
    t.unix_secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)
}

/// Reads the ledger and works out every lever.
pub fn advise(
    input: impl BufRead,
    args: &AdviseArgs,
    card: &RateCard,
) -> Result<Advice, ReportError> {
    // The period is checked as `report` checks it.
    let period = ReportArgs {
        from: args.from.clone(),
        to: args.to.clone(),
        ..ReportArgs::default()
    }
    .query()?;
    let (from, to) = (period.from, period.to);
    let ledger = groups::read(input, from, to, card)?;
    let from_ms = from.map(ms).or(ledger.first_ms).unwrap_or(0);
    // Without --to, the period ends a millisecond after the last call, so it holds it.
    let to_ms = to
        .map(ms)
        .or(ledger.last_ms.map(|l| l + 1))
        .unwrap_or(from_ms + 1);
    let mut advice = Advice {
        from_ms,
        to_ms,
        groups: ledger.groups,
        levers: Vec::new(),
        skipped_lines: ledger.skipped_lines,
    };
    let end_secs = u64::try_from(to_ms / 1000).unwrap_or(0);
    let period = advice.period_ms();
    let mut levers: Vec<Lever> = advice
        .groups
        .iter()
        .flat_map(|g| levers::levers(g, card, period, end_secs))
        .collect();
    // Most dollars first; levers without a price last; ties in a stable order.
    levers.sort_by(|a, b| {
        b.month_saving
            .cmp(&a.month_saving)
            .then_with(|| (&a.app, &a.model, a.kind).cmp(&(&b.app, &b.model, b.kind)))
    });
    advice.levers = levers;
    Ok(advice)
}

/// `advise`: reads the ledger, writes the advice in the format asked for.
pub fn run(
    input: impl BufRead,
    args: &AdviseArgs,
    card: &RateCard,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), ReportError> {
    let advice = advise(input, args, card)?;
    match args.format {
        AdviseFormat::Table => write_table(&advice, out),
        AdviseFormat::Json => {
            let text = serde_json::to_string_pretty(&to_json(&advice))
                .map_err(|e| ReportError::Write(std::io::Error::other(e)))?;
            writeln!(out, "{text}")
        }
        AdviseFormat::Html => out.write_all(html::page(&advice).as_bytes()),
    }
    .map_err(ReportError::Write)?;
    if advice.skipped_lines > 0 {
        writeln!(
            err,
            "warning: skipped {} malformed ledger line{}",
            advice.skipped_lines,
            if advice.skipped_lines == 1 { "" } else { "s" }
        )
        .map_err(ReportError::Write)?;
    }
    Ok(())
}

fn time_text(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    rfc3339_millis(t)
}

/// The JSON form: exact amounts as decimal strings, `null` where a lever has no price.
pub fn to_json(a: &Advice) -> Value {
    let period = a.period_ms();
    let money = |p: u128| Value::String(levers::usd_exact(p));
    let total: u128 = a.groups.iter().map(|g| g.cost).sum();
    json!({
        "period": {
            "from": time_text(a.from_ms),
            "to": time_text(a.to_ms),
            "days": format!("{:.3}", period as f64 / 86_400_000.0),
        },
        "spend_usd": money(total),
        "spend_usd_month": money(levers::scale(total, period)),
        "savings_usd_month": money(a.levers.iter().filter_map(|l| l.month_saving).sum()),
        "groups": a.groups.iter().map(|g| {
            let tokens = g.input_cost + g.output_cost + g.cache_read_cost + g.cache_write_cost;
            json!({
                "app": g.app,
                "model": g.model,
                "calls": g.calls,
                "streamed": g.streamed,
                "spend_usd": money(g.cost),
                "spend_usd_month": money(levers::scale(g.cost, period)),
                "output_usd": money(g.output_cost),
                "output_share_percent": (g.output_cost * 100).checked_div(tokens).unwrap_or(0),
                "max_token_stops": g.max_token_stops,
                "unpriced_calls": g.unpriced,
            })
        }).collect::<Vec<_>>(),
        "levers": a.levers.iter().enumerate().map(|(i, l)| json!({
            "rank": i + 1,
            "app": l.app,
            "model": l.model,
            "lever": l.kind.as_str(),
            "savings_usd_month": l.month_saving.map(money),
            "savings_usd_period": l.period_saving.map(money),
            "basis": l.basis,
            "caveat": l.caveat,
        })).collect::<Vec<_>>(),
    })
}

fn write_table(a: &Advice, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "Period {} to {}; savings per 30-day month at the observed volume.",
        time_text(a.from_ms),
        time_text(a.to_ms)
    )?;
    if a.levers.is_empty() {
        return writeln!(out, "No lever applies to this traffic.");
    }
    let rows: Vec<[String; 5]> = a
        .levers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            [
                (i + 1).to_string(),
                l.kind.as_str().to_owned(),
                format!("{} / {}", l.app, l.model),
                l.month_saving.map_or_else(
                    || "not priced".to_owned(),
                    |p| format!("${}", levers::usd_short(p)),
                ),
                l.basis.clone(),
            ]
        })
        .collect();
    let header = ["#", "lever", "app / model", "per month", "basis"];
    let width = |c: usize| {
        rows.iter()
            .map(|r| r[c].chars().count())
            .chain([header[c].len()])
            .max()
            .unwrap_or(0)
    };
    let w: Vec<usize> = (0..4).map(width).collect();
    let header = header.map(str::to_owned);
    for r in std::iter::once(&header).chain(&rows) {
        writeln!(
            out,
            "{:>w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        )?;
    }
    Ok(())
}
