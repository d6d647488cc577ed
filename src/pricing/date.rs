//! Dates in a rate card (`updated`, `effective_from`): a TOML date such as `2026-12-01` (midnight
//! UTC), or a date-time with or without an offset (no offset = UTC), optionally quoted.

use std::fmt;
use std::time::{Duration, SystemTime};

use toml::value::{Datetime, Offset};

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
        let mut secs = days_from_civil(i64::from(d.year), u32::from(d.month), u32::from(d.day))
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
        let at = instant(secs).ok_or_else(|| format!("{dt} is out of range"))?;
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

/// Midnight UTC of a calendar date, or `None` if there is no such date.
pub fn utc_date(year: i32, month: u32, day: u32) -> Option<SystemTime> {
    instant(days_from_civil(i64::from(year), month, day)? * 86_400)
}

/// Whole days from `earlier` to `later` (negative if `later` is before `earlier`).
pub(crate) fn days_between(earlier: SystemTime, later: SystemTime) -> i64 {
    let secs = match later.duration_since(earlier) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    secs.div_euclid(86_400)
}

fn instant(secs_since_epoch: i64) -> Option<SystemTime> {
    if secs_since_epoch >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs_since_epoch.unsigned_abs()))
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(secs_since_epoch.unsigned_abs()))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(crate::civil::days_from_civil(
        year,
        i64::from(month),
        i64::from(day),
    ))
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if crate::civil::is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn whole_days() {
        let a = utc_date(2026, 11, 23).unwrap();
        let b = utc_date(2027, 2, 21).unwrap();
        assert_eq!(days_between(a, b), 90);
        assert_eq!(days_between(b, a), -90);
        assert_eq!(days_between(a, a + Duration::from_secs(86_399)), 0);
    }
}
