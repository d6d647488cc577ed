//! `bedrock-meter report LEDGER`: totals per app and model from a usage ledger, for a period.
//!
//! The ledger is the proxy's JSON Lines record of every request (`--ledger`). [`aggregate`]
//! reads it once, line by line, and sums tokens and exact pico-dollar costs per group;
//! [`render`] writes the result as a table, CSV or JSON; [`run`] does both. See
//! docs/report.md for the ledger line format and the output columns.
//!
//! Wiring into the command line:
//!
//! ```no_run
//! use bedrock_meter::tools::report::{self, ReportArgs};
//!
//! #[derive(clap::Parser)]
//! struct Report {
//!     /// Ledger file, or `-` for standard input.
//!     ledger: std::path::PathBuf,
//!     #[command(flatten)]
//!     args: ReportArgs,
//! }
//!
//! # fn main() -> Result<(), report::ReportError> {
//! let cmd = <Report as clap::Parser>::parse();
//! let input = report::open(&cmd.ledger)?;
//! report::run(input, &cmd.args, &mut std::io::stdout().lock(), &mut std::io::stderr())
//! # }
//! ```

mod aggregate;
mod render;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::str::FromStr;

use clap::ValueEnum;

pub use crate::money::Pico;
pub use crate::time::Timestamp;
pub use aggregate::{CostByType, MAX_LINE, Report, Row, SkippedLine, Tokens, Totals, aggregate};
pub use render::render;

/// Options of `bedrock-meter report` (everything but the ledger path). Derives [`clap::Args`],
/// so it can be flattened into a subcommand.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct ReportArgs {
    /// Start of the period, inclusive: an RFC 3339 time (2026-11-23T10:00:00Z) or a date
    /// (2026-11-23, midnight UTC).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the period, exclusive: an RFC 3339 time or a date (midnight UTC).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// What to group by: app, model, or both (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "KEYS",
        default_value = "app,model"
    )]
    pub by: Vec<GroupKey>,
}

impl Default for ReportArgs {
    fn default() -> Self {
        ReportArgs {
            from: None,
            to: None,
            format: Format::Table,
            by: vec![GroupKey::App, GroupKey::Model],
        }
    }
}

impl ReportArgs {
    /// Checks the period and grouping.
    pub fn query(&self) -> Result<Query, ReportError> {
        let bound = |flag: &'static str, value: &Option<String>| {
            value
                .as_deref()
                .map(|s| {
                    Timestamp::parse_bound(s).ok_or_else(|| ReportError::Time {
                        flag,
                        value: s.to_string(),
                    })
                })
                .transpose()
        };
        let (from, to) = (bound("--from", &self.from)?, bound("--to", &self.to)?);
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(ReportError::EmptyPeriod { from, to });
        }
        Ok(Query {
            from,
            to,
            by: GroupBy::from_keys(&self.by),
        })
    }
}

/// Output format of the report.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for people; money rounded to micro-dollars.
    #[default]
    Table,
    /// Comma-separated values with a header row; money exact.
    Csv,
    /// One JSON object; money as exact decimal strings.
    Json,
}

/// One key of `--by`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKey {
    App,
    Model,
}

macro_rules! value_enum_str {
    ($t:ty) => {
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t as ValueEnum>::from_str(s, true)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.to_possible_value() {
                    Some(v) => f.write_str(v.get_name()),
                    None => Ok(()),
                }
            }
        }
    };
}
value_enum_str!(Format);
value_enum_str!(GroupKey);

/// How requests are grouped into rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupBy {
    #[default]
    AppModel,
    App,
    Model,
}

impl GroupBy {
    /// The grouping for a `--by` list; an empty list means app and model.
    pub fn from_keys(keys: &[GroupKey]) -> GroupBy {
        match (
            keys.contains(&GroupKey::App),
            keys.contains(&GroupKey::Model),
        ) {
            (true, false) => GroupBy::App,
            (false, true) => GroupBy::Model,
            _ => GroupBy::AppModel,
        }
    }

    pub fn has_app(self) -> bool {
        self != GroupBy::Model
    }

    pub fn has_model(self) -> bool {
        self != GroupBy::App
    }
}

/// What to sum: the period (`from` inclusive, `to` exclusive; `None` is unbounded) and the
/// grouping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub by: GroupBy,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "invalid {flag} value {value:?}: expected an RFC 3339 time such as 2026-11-23T10:00:00Z or a date such as 2026-11-23"
    )]
    Time { flag: &'static str, value: String },
    #[error("empty period: --to ({to}) must be later than --from ({from})")]
    EmptyPeriod { from: Timestamp, to: Timestamp },
    #[error("cannot read ledger {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("reading the ledger: {0}")]
    Read(#[source] io::Error),
    #[error("writing the report: {0}")]
    Write(#[source] io::Error),
}

impl ReportError {
    /// True for mistakes in the arguments (bad time, empty period), as opposed to I/O failures.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ReportError::Time { .. } | ReportError::EmptyPeriod { .. }
        )
    }
}

/// Opens a ledger for [`run`]: a file, or standard input for `-`.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>, ReportError> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::stdin().lock()));
    }
    let open_error = |source| ReportError::Open {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(open_error)?;
    if file.metadata().map_err(open_error)?.is_dir() {
        return Err(open_error(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        )));
    }
    Ok(Box::new(BufReader::with_capacity(64 * 1024, file)))
}

/// Reads the ledger, writes the report to `out` and any warning about skipped lines to `err`.
pub fn run(
    input: impl BufRead,
    args: &ReportArgs,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), ReportError> {
    let query = args.query()?;
    let report = aggregate(input, &query)?;
    render(&report, args.format, out)?;
    if let Some(warning) = skipped_warning(&report) {
        writeln!(err, "warning: {warning}").map_err(ReportError::Write)?;
    }
    Ok(())
}

/// `skipped 2 malformed lines (first at line 17: ...)`, or `None` when none was skipped.
pub fn skipped_warning(report: &Report) -> Option<String> {
    let first = report.first_skipped.as_ref()?;
    let n = report.skipped_lines;
    Some(format!(
        "skipped {n} malformed ledger line{} (first at line {}: {})",
        if n == 1 { "" } else { "s" },
        first.line,
        render::printable(&first.reason)
    ))
}

#[cfg(test)]
mod tests;
