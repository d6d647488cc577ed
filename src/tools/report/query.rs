//! What a report is asked for: the `report` flags ([`ReportArgs`]), checked into a [`Query`]
//! (period and grouping), and the output [`Format`]. Shared by the reader and the writers, so
//! it depends on neither.

use std::fmt;
use std::str::FromStr;

use clap::ValueEnum;

use super::error::ReportError;
use crate::time::Timestamp;

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
