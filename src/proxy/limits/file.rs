//! The limits file (`--limits FILE`): dollar budgets per UTC day and calendar month, and
//! requests and tokens per minute, per app and optionally per app × model.
//!
//! ```toml
//! warn_percent = 80          # optional (default 80): the soft threshold that only warns
//! bytes_per_token = 3        # optional (default 3): request bytes per estimated input token
//! default_max_tokens = 4096  # optional (default 4096): output ceiling of a request naming none
//!
//! [default]                  # every app not under [apps], each on counters of its own
//! requests_per_minute = 600
//! tokens_per_minute = 400000
//! daily_usd = "20"
//! monthly_usd = "300"
//!
//! [apps.checkout]            # fields not given fall back to [default]
//! monthly_usd = "500"
//!
//! [apps.checkout.models."anthropic.claude-opus-4-1-20250805-v1:0"]
//! daily_usd = "10"           # this app's calls to this model, on counters of their own
//! ```
//!
//! Parsed in two steps like the rate card (serde types that reject unknown keys, then
//! validation), so every problem is reported with its line.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::file_error::{FileError, FileErrors, line_of};
use crate::money::Pico;
use crate::names::valid_app;

/// What a limit counts, and over which window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    RequestsPerMinute,
    TokensPerMinute,
    DailyUsd,
    MonthlyUsd,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::RequestsPerMinute,
        Kind::TokensPerMinute,
        Kind::DailyUsd,
        Kind::MonthlyUsd,
    ];

    /// The field in the file, and the `limit` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RequestsPerMinute => "requests_per_minute",
            Kind::TokensPerMinute => "tokens_per_minute",
            Kind::DailyUsd => "daily_usd",
            Kind::MonthlyUsd => "monthly_usd",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    pub fn is_usd(self) -> bool {
        matches!(self, Kind::DailyUsd | Kind::MonthlyUsd)
    }
}

/// Nano-dollars per USD: dollar limits and amounts are counted in nano-dollars, which Redis's
/// Lua numbers (doubles) hold exactly up to $9 million.
pub const NANO_PER_USD: u64 = 1_000_000_000;
/// The largest dollar limit, in nano-dollars (below 2^53).
pub const MAX_NANO: u64 = 9_000_000 * NANO_PER_USD;
/// The largest count limit (requests or tokens per minute).
pub const MAX_COUNT: u64 = 1_000_000_000_000;

/// One table's limits, by [`Kind`]: counts, or nano-dollars for the dollar kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rules([Option<u64>; 4]);

impl Rules {
    pub fn get(&self, kind: Kind) -> Option<u64> {
        self.0[kind.index()]
    }

    /// These rules, with `fallback`'s where these give none.
    fn or(self, fallback: &Rules) -> Rules {
        let mut out = self;
        for (mine, theirs) in out.0.iter_mut().zip(fallback.0) {
            *mine = mine.or(theirs);
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

/// `[default]` or one app's table.
#[derive(Clone, Debug, Default)]
struct Table {
    rules: Rules,
    models: HashMap<Box<str>, Rules>,
}

/// A validated limits file.
#[derive(Clone, Debug)]
pub struct LimitsFile {
    /// The soft threshold, in percent of each limit.
    pub warn_percent: u64,
    /// Request bytes per estimated input token.
    pub bytes_per_token: u64,
    /// The output ceiling of a request that names none.
    pub default_max_tokens: u64,
    default: Table,
    apps: HashMap<Box<str>, Table>,
}

/// One limit that applies to a request: over the app as a whole (`model: None`) or over its
/// calls to one model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applies<'a> {
    pub model: Option<&'a str>,
    pub kind: Kind,
    pub limit: u64,
}

impl LimitsFile {
    /// A file with no limits at all.
    pub fn empty() -> LimitsFile {
        LimitsFile {
            warn_percent: 80,
            bytes_per_token: 3,
            default_max_tokens: 4096,
            default: Table::default(),
            apps: HashMap::new(),
        }
    }

    /// The limits an app's call to `model` is held to, app-wide first.
    pub fn applying<'a>(&'a self, app: &str, model: Option<&'a str>) -> Vec<Applies<'a>> {
        let table = self.apps.get(app);
        let app_rules = table.map_or(self.default.rules, |t| t.rules.or(&self.default.rules));
        let mut out = Vec::new();
        push(&mut out, None, &app_rules);
        if let Some(model) = model {
            let own = table.and_then(|t| t.models.get(model));
            let default = self.default.models.get(model);
            let rules = match (own, default) {
                (Some(o), Some(d)) => Some(o.or(d)),
                (Some(r), None) | (None, Some(r)) => Some(*r),
                (None, None) => None,
            };
            if let Some(rules) = rules {
                push(&mut out, Some(model), &rules);
            }
        }
        out
    }

    /// The soft threshold of a limit.
    pub fn warn_at(&self, limit: u64) -> u64 {
        // Limits are below 2^53, so this cannot overflow.
        limit / 100 * self.warn_percent + limit % 100 * self.warn_percent / 100
    }

    /// How many apps and app × model pairs the file names, for the log line.
    pub fn summary(&self) -> String {
        let models: usize =
            self.apps.values().map(|t| t.models.len()).sum::<usize>() + self.default.models.len();
        format!(
            "{} apps, {} model limits, default {}",
            self.apps.len(),
            models,
            if self.default.rules.is_empty() {
                "none"
            } else {
                "set"
            }
        )
    }

    pub fn load(path: &Path) -> Result<LimitsFile, FileErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            FileErrors(vec![FileError {
                file: file.clone(),
                line: 0,
                message: format!("cannot read the limits file: {e}"),
            }])
        })?;
        LimitsFile::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<LimitsFile, FileErrors> {
        let err = |span: Option<Range<usize>>, message: String| FileError {
            file: file.to_owned(),
            line: span.map_or(0, |s| line_of(text, s.start)),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            FileErrors(vec![err(
                e.span(),
                format!("not a valid limits file: {}", e.message()),
            )])
        })?;
        let mut errors = Vec::new();
        let mut out = LimitsFile::empty();
        let mut bounded = |field: Option<Spanned<i64>>, name: &str, range: Range<i64>| {
            let value = field?;
            let n = *value.get_ref();
            if range.contains(&n) {
                u64::try_from(n).ok()
            } else {
                errors.push(err(
                    Some(value.span()),
                    format!(
                        "{name} must be between {} and {}",
                        range.start,
                        range.end - 1
                    ),
                ));
                None
            }
        };
        if let Some(n) = bounded(raw.warn_percent, "warn_percent", 1..101) {
            out.warn_percent = n;
        }
        if let Some(n) = bounded(raw.bytes_per_token, "bytes_per_token", 1..65) {
            out.bytes_per_token = n;
        }
        if let Some(n) = bounded(raw.default_max_tokens, "default_max_tokens", 1..10_000_001) {
            out.default_max_tokens = n;
        }
        if let Some(table) = raw.default {
            out.default = table_of(table, &err, &mut errors);
        }
        for (app, table) in raw.apps {
            if !valid_app(app.get_ref()) {
                errors.push(err(
                    Some(app.span()),
                    format!("app {:?} must match [A-Za-z0-9._-]{{1,64}}", app.get_ref()),
                ));
                continue;
            }
            let table = table_of(table, &err, &mut errors);
            out.apps.insert(app.into_inner().into_boxed_str(), table);
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            errors.sort_by_key(|e| e.line);
            Err(FileErrors(errors))
        }
    }
}

fn push<'a>(out: &mut Vec<Applies<'a>>, model: Option<&'a str>, rules: &Rules) {
    for kind in Kind::ALL {
        if let Some(limit) = rules.get(kind) {
            out.push(Applies { model, kind, limit });
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    warn_percent: Option<Spanned<i64>>,
    bytes_per_token: Option<Spanned<i64>>,
    default_max_tokens: Option<Spanned<i64>>,
    default: Option<RawTable>,
    #[serde(default)]
    apps: std::collections::BTreeMap<Spanned<String>, RawTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    requests_per_minute: Option<Spanned<i64>>,
    tokens_per_minute: Option<Spanned<i64>>,
    daily_usd: Option<Spanned<Usd>>,
    monthly_usd: Option<Spanned<Usd>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    // Spelled out rather than `#[serde(flatten)]`: flattening loses the spans.
    requests_per_minute: Option<Spanned<i64>>,
    tokens_per_minute: Option<Spanned<i64>>,
    daily_usd: Option<Spanned<Usd>>,
    monthly_usd: Option<Spanned<Usd>>,
    #[serde(default)]
    models: std::collections::BTreeMap<Spanned<String>, RawRules>,
}

/// A dollar amount as written: a string (`"12.50"`, exact) or a TOML number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Usd {
    Text(String),
    Integer(i64),
    Float(f64),
}

type Err<'a> = dyn Fn(Option<Range<usize>>, String) -> FileError + 'a;

fn table_of(raw: RawTable, err: &Err<'_>, errors: &mut Vec<FileError>) -> Table {
    let mut table = Table {
        rules: rules_of(
            RawRules {
                requests_per_minute: raw.requests_per_minute,
                tokens_per_minute: raw.tokens_per_minute,
                daily_usd: raw.daily_usd,
                monthly_usd: raw.monthly_usd,
            },
            err,
            errors,
        ),
        models: HashMap::new(),
    };
    for (model, rules) in raw.models {
        let id = model.get_ref();
        if id.is_empty()
            || id.len() > crate::api::MAX_MODEL_ID_LEN
            || id.contains(char::is_whitespace)
        {
            errors.push(err(
                Some(model.span()),
                format!("model {id:?} is not a model id"),
            ));
            continue;
        }
        let rules = rules_of(rules, err, errors);
        table
            .models
            .insert(model.into_inner().into_boxed_str(), rules);
    }
    table
}

fn rules_of(raw: RawRules, err: &Err<'_>, errors: &mut Vec<FileError>) -> Rules {
    let mut rules = Rules::default();
    let mut count = |kind: Kind, field: Option<Spanned<i64>>| {
        let Some(value) = field else { return };
        match u64::try_from(*value.get_ref()) {
            Ok(n) if n <= MAX_COUNT => rules.0[kind.index()] = Some(n),
            _ => errors.push(err(
                Some(value.span()),
                format!("{} must be between 0 and {MAX_COUNT}", kind.as_str()),
            )),
        }
    };
    count(Kind::RequestsPerMinute, raw.requests_per_minute);
    count(Kind::TokensPerMinute, raw.tokens_per_minute);
    for (kind, field) in [
        (Kind::DailyUsd, raw.daily_usd),
        (Kind::MonthlyUsd, raw.monthly_usd),
    ] {
        let Some(value) = field else { continue };
        let span = value.span();
        match nano_of(value.get_ref()) {
            Some(n) if n <= MAX_NANO => rules.0[kind.index()] = Some(n),
            _ => errors.push(err(
                Some(span),
                format!(
                    "{} must be a USD amount from 0 to 9000000 with at most 9 decimals, e.g. \"250\" or \"0.50\"",
                    kind.as_str()
                ),
            )),
        }
    }
    rules
}

/// A dollar amount in nano-dollars, if it is one with no finer digits.
fn nano_of(usd: &Usd) -> Option<u64> {
    let text = match usd {
        Usd::Text(s) => s.clone(),
        Usd::Integer(n) => u64::try_from(*n).ok()?.to_string(),
        // The shortest text that reads back as the same double: what the user wrote.
        Usd::Float(f) if f.is_finite() && *f >= 0.0 => format!("{f}"),
        Usd::Float(_) => return None,
    };
    let pico = Pico::parse_usd(&text)?.0;
    (pico % 1000 == 0)
        .then(|| u64::try_from(pico / 1000).ok())
        .flatten()
}

#[cfg(test)]
mod tests;
