//! Dates in a rate card (`updated`, `effective_from`): a TOML date such as `2026-12-01` (midnight
//! UTC), or a date-time with or without an offset (no offset = UTC), optionally quoted.

use std::fmt;
use std::time::SystemTime;

use toml::value::{Datetime, Offset};

pub(crate) use crate::time::days_between;
pub use crate::time::utc_date;
use crate::time::{days_from_date, system_time};

/// A card date as written, with the instant it denotes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CardDate {
    at: SystemTime,
    text: String,
}

impl CardDate {
    /// The instant: midnight UTC for a bare date.
    pub fn at(&self) -> SystemTime {
        self.at
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn from_value(v: &toml::Value) -> Result<CardDate, String> {
        let dt = match v {
            toml::Value::Datetime(dt) => *dt,
            toml::Value::String(s) => s
                .trim()
                .parse::<Datetime>()
                .map_err(|e| format!("{s:?} is not a date: {e}"))?,
            other => {
                return Err(format!(
                    "must be a date such as 2026-12-01, not a {}",
                    other.type_str()
                ));
            }
        };
        CardDate::from_datetime(&dt)
    }

    fn from_datetime(dt: &Datetime) -> Result<CardDate, String> {
        let d = dt
            .date
            .ok_or_else(|| format!("{dt} has no date; write e.g. 2026-12-01"))?;
        let mut secs = days_from_date(i64::from(d.year), i64::from(d.month), i64::from(d.day))
            .ok_or_else(|| format!("{dt} is not a valid date"))?
            * 86_400;
        if let Some(t) = dt.time {
            secs += i64::from(t.hour) * 3600
                + i64::from(t.minute) * 60
                + i64::from(t.second.unwrap_or(0));
        }
        if let Some(Offset::Custom { minutes }) = dt.offset {
            secs -= i64::from(minutes) * 60;
        }
        let at = system_time(secs).ok_or_else(|| format!("{dt} is out of range"))?;
        Ok(CardDate {
            at,
            text: dt.to_string(),
        })
    }
}

impl fmt::Display for CardDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn date(s: &str) -> Result<CardDate, String> {
        let v: toml::Table = toml::from_str(&format!("d = {s}")).unwrap();
        CardDate::from_value(&v["d"])
    }

    #[test]
    fn parses_dates_and_instants() {
        let d = date("2026-12-01").unwrap();
        assert_eq!(d.at(), utc_date(2026, 12, 1).unwrap());
        assert_eq!(d.as_str(), "2026-12-01");
        assert_eq!(
            date("\"2026-12-01\"").unwrap().at(),
            utc_date(2026, 12, 1).unwrap()
        );
        let noon_cet = date("2026-12-01T12:00:00+01:00").unwrap();
        assert_eq!(
            noon_cet.at(),
            utc_date(2026, 12, 1).unwrap() + Duration::from_secs(11 * 3600)
        );
        assert_eq!(
            utc_date(1970, 1, 1).unwrap(),
            SystemTime::UNIX_EPOCH,
            "epoch"
        );
        assert_eq!(
            utc_date(2000, 3, 1)
                .unwrap()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            951_868_800
        );
        assert!(date("12:00:00").is_err());
        assert!(date("\"tomorrow\"").is_err());
        assert!(date("3").is_err());
        assert!(utc_date(2026, 2, 29).is_none());
        assert!(utc_date(2028, 2, 29).is_some());
    }
}
