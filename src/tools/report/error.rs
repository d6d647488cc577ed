//! The errors of `report`: bad arguments, and failures to open, read or write.

use std::io;

use crate::time::Timestamp;

/// Why `report` failed; [`ReportError::is_usage`] tells the caller's mistakes from I/O.
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
