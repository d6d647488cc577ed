//! `bedrock-meter report LEDGER`: totals per app and model from a usage ledger, for a period.
//!
//! The ledger is the proxy's JSON Lines record of every request (`--ledger`). [`aggregate`]
//! reads it once, line by line, and sums tokens and exact pico-dollar costs per group;
//! [`render`] writes the result as a table, CSV or JSON; [`run`] does both. See
//! docs/report.md for the ledger line format and the output columns.
//!
//! What is asked ([`ReportArgs`], [`Query`], [`Format`]) and [`ReportError`] live in files of
//! their own below both the reader and the writers, so no file here imports this one.
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
mod error;
mod query;
mod render;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

pub use crate::money::Pico;
pub use crate::time::Timestamp;
pub use aggregate::{CostByType, MAX_LINE, Report, Row, SkippedLine, Tokens, Totals, aggregate};
pub(crate) use aggregate::{money, read_line};
pub use error::ReportError;
pub use query::{Format, GroupBy, GroupKey, Query, ReportArgs};
pub use render::render;

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
