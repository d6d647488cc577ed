//! RFC 3339 timestamps, parsed without a date-time crate: the ledger's `time` field and the
//! `--from`/`--to` bounds.

use std::fmt;

use crate::civil::{civil_from_days, days_from_civil, is_leap};

/// An instant, as seconds and nanoseconds since 1970-01-01T00:00:00Z. Orders chronologically.
///
/// Only [`Timestamp::parse_rfc3339`] and [`Timestamp::parse_bound`] make one, so the year is
/// always within 0000..=9999 (give or take a day of UTC offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    /// Parses an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`.
    ///
    /// Any number of fraction digits is accepted; digits past nanoseconds are ignored. `t`, `z`
    /// and a space separator (RFC 3339 section 5.6) are accepted too. A leap second (`:60`) is
    /// read as the first second of the next minute.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        let days = parse_date(b.get(..10)?)?;
        if !matches!(b.get(10)?, b'T' | b't' | b' ') {
            return None;
        }
        let time = b.get(11..19)?;
        if time[2] != b':' || time[5] != b':' {
            return None;
        }
        let (h, mi, se) = (
            digits(&time[0..2])?,
            digits(&time[3..5])?,
            digits(&time[6..8])?,
        );
        if h > 23 || mi > 59 || se > 60 {
            return None;
        }
        let mut rest = &b[19..];
        let mut nanos: u32 = 0;
        if let Some(after) = rest.strip_prefix(b".") {
            let n = after.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            let mut scale: u32 = 100_000_000;
            for &c in after.iter().take(n.min(9)) {
                nanos += u32::from(c - b'0') * scale;
                scale /= 10;
            }
            rest = &after[n..];
        }
        let offset = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let offset = oh * 3_600 + om * 60;
                if *sign == b'-' { -offset } else { offset }
            }
            _ => return None,
        };
        let secs = days * 86_400 + h * 3_600 + mi * 60 + se - offset;
        Some(Timestamp { secs, nanos })
    }

    /// Parses a period bound: an RFC 3339 date-time, or a date `YYYY-MM-DD` meaning midnight
    /// UTC at its start.
    pub fn parse_bound(s: &str) -> Option<Timestamp> {
        if s.len() == 10 {
            let days = parse_date(s.as_bytes())?;
            return Some(Timestamp {
                secs: days * 86_400,
                nanos: 0,
            });
        }
        Timestamp::parse_rfc3339(s)
    }

    /// Whole seconds since the Unix epoch (negative before 1970).
    pub fn unix_secs(self) -> i64 {
        self.secs
    }

    /// Nanoseconds past [`Timestamp::unix_secs`], below 1,000,000,000.
    pub fn subsec_nanos(self) -> u32 {
        self.nanos
    }
}

/// RFC 3339 in UTC with `Z`; the fraction is shown only when nonzero, without trailing zeros.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, sod) = (self.secs.div_euclid(86_400), self.secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3_600,
            sod / 60 % 60,
            sod % 60
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

/// `YYYY-MM-DD` (exactly 10 bytes) to days since 1970-01-01, checking the day of the month.
fn parse_date(b: &[u8]) -> Option<i64> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// A run of ASCII digits (at most 4, so it cannot overflow) as a number.
fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 4 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, &c| n * 10 + i64::from(c - b'0')))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap_or_else(|| panic!("should parse: {s}"))
    }

    #[test]
    fn parses_epoch_and_known_instants() {
        assert_eq!(ts("1970-01-01T00:00:00Z").unix_secs(), 0);
        assert_eq!(ts("2000-03-01T00:00:00Z").unix_secs(), 951_868_800);
        assert_eq!(ts("2026-11-23T10:00:00Z").unix_secs(), 1_795_428_000);
        assert_eq!(ts("1969-12-31T23:59:59Z").unix_secs(), -1);
        assert_eq!(ts("0000-01-01T00:00:00Z").unix_secs(), -62_167_219_200);
        assert_eq!(ts("9999-12-31T23:59:59Z").unix_secs(), 253_402_300_799);
    }

    #[test]
    fn leap_years() {
        // 2024 is a leap year, 2100 and 1900 are not, 2000 is.
        assert_eq!(
            ts("2024-03-01T00:00:00Z").unix_secs() - ts("2024-02-28T00:00:00Z").unix_secs(),
            2 * 86_400
        );
        assert!(Timestamp::parse_rfc3339("2024-02-29T12:00:00Z").is_some());
        assert!(Timestamp::parse_rfc3339("2000-02-29T12:00:00Z").is_some());
        assert!(Timestamp::parse_rfc3339("2026-02-29T12:00:00Z").is_none());
        assert!(Timestamp::parse_rfc3339("2100-02-29T12:00:00Z").is_none());
        assert!(Timestamp::parse_rfc3339("1900-02-29T12:00:00Z").is_none());
        assert!(Timestamp::parse_bound("2028-02-29").is_some());
        assert!(Timestamp::parse_bound("2027-02-29").is_none());
        assert_eq!(
            ts("2025-01-01T00:00:00Z").unix_secs() - ts("2024-01-01T00:00:00Z").unix_secs(),
            366 * 86_400
        );
    }

    #[test]
    fn fractions_of_any_precision() {
        assert_eq!(ts("2026-11-23T10:00:00.123Z").subsec_nanos(), 123_000_000);
        assert_eq!(ts("2026-11-23T10:00:00.1Z").subsec_nanos(), 100_000_000);
        assert_eq!(ts("2026-11-23T10:00:00.000000001Z").subsec_nanos(), 1);
        assert_eq!(
            ts("2026-11-23T10:00:00.1234567899999Z").subsec_nanos(),
            123_456_789
        );
        assert_eq!(ts("2026-11-23T10:00:00Z").subsec_nanos(), 0);
        assert!(ts("2026-11-23T10:00:00.001Z") > ts("2026-11-23T10:00:00Z"));
        assert!(ts("2026-11-23T10:00:00.999Z") < ts("2026-11-23T10:00:01Z"));
        assert!(Timestamp::parse_rfc3339("2026-11-23T10:00:00.Z").is_none());
    }

    #[test]
    fn offsets_and_separators() {
        let utc = ts("2026-11-23T10:00:00Z");
        assert_eq!(ts("2026-11-23T11:30:00+01:30"), utc);
        assert_eq!(ts("2026-11-23T05:00:00-05:00"), utc);
        assert_eq!(ts("2026-11-23T10:00:00-00:00"), utc);
        assert_eq!(ts("2026-11-23t10:00:00z"), utc);
        assert_eq!(ts("2026-11-23 10:00:00Z"), utc);
        assert_eq!(ts("2026-11-24T00:30:00+14:30").unix_secs(), utc.unix_secs());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T10:00:00",
            "2026-11-23T10:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T10:60:00Z",
            "2026-11-23T10:00:61Z",
            "2026-13-01T10:00:00Z",
            "2026-00-01T10:00:00Z",
            "2026-04-31T10:00:00Z",
            "2026-11-00T10:00:00Z",
            "2026/11/23T10:00:00Z",
            "2026-11-23X10:00:00Z",
            "2026-11-23T10:00:00ZZ",
            "2026-11-23T10:00:00+0100",
            "2026-11-23T10:00:00+24:00",
            "2026-11-23T10:00:00 Z",
            "+026-11-23T10:00:00Z",
            "2026-1a-23T10:00:00Z",
            "2026-11-23T10:00:00.12a3Z",
            "２026-11-23T10:00:00Z",
            "2026-11-23T10:00:00Zé",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_none(), "accepted {bad:?}");
        }
    }

    #[test]
    fn leap_second_rolls_over() {
        assert_eq!(ts("2016-12-31T23:59:60Z"), ts("2017-01-01T00:00:00Z"));
    }

    #[test]
    fn bounds_accept_dates_as_midnight_utc() {
        assert_eq!(
            Timestamp::parse_bound("2026-11-23"),
            Some(ts("2026-11-23T00:00:00Z"))
        );
        assert_eq!(
            Timestamp::parse_bound("2026-11-23T10:00:00.5Z"),
            Some(ts("2026-11-23T10:00:00.500Z"))
        );
        assert!(Timestamp::parse_bound("2026-11-3").is_none());
        assert!(Timestamp::parse_bound("yesterday").is_none());
        assert!(Timestamp::parse_bound("20261123").is_none());
    }

    #[test]
    fn displays_as_utc_rfc3339() {
        assert_eq!(
            ts("2026-11-23T10:00:00Z").to_string(),
            "2026-11-23T10:00:00Z"
        );
        assert_eq!(
            ts("2026-11-23T10:00:00.120Z").to_string(),
            "2026-11-23T10:00:00.12Z"
        );
        assert_eq!(
            ts("2026-11-23T11:00:00.000000001+01:00").to_string(),
            "2026-11-23T10:00:00.000000001Z"
        );
        assert_eq!(
            ts("1969-12-31T23:59:59Z").to_string(),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(
            ts("2024-02-29T23:59:59Z").to_string(),
            "2024-02-29T23:59:59Z"
        );
        assert_eq!(
            ts("0000-01-01T00:00:00Z").to_string(),
            "0000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        // Every day from 1600 to 2400 converts back to itself and months are contiguous.
        let (start, end) = (days_from_civil(1600, 1, 1), days_from_civil(2400, 12, 31));
        let mut prev = civil_from_days(start - 1);
        for days in start..=end {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!(d >= 1 && d <= days_in_month(y, m));
            if d == 1 {
                assert_eq!(prev.2, days_in_month(prev.0, prev.1));
            }
            prev = (y, m, d);
        }
    }

    #[test]
    fn corrupted_times_never_panic() {
        for good in ["2026-11-23T10:00:00.123+01:30", "2024-02-29"] {
            let b = good.as_bytes();
            for cut in 0..=b.len() {
                let s = String::from_utf8_lossy(&b[..cut]);
                let _ = (Timestamp::parse_rfc3339(&s), Timestamp::parse_bound(&s));
            }
            for i in 0..b.len() {
                for c in ['0', '9', '-', ':', '.', 'T', 'Z', '+', 'é'] {
                    let mut s = good.to_string();
                    s.replace_range(i..=i, c.encode_utf8(&mut [0; 4]));
                    if let Some(t) = Timestamp::parse_bound(&s) {
                        let _ = t.to_string();
                    }
                }
            }
        }
    }
}
