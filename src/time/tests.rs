//! Tests of the calendar arithmetic, the ledger's timestamp format and RFC 3339 parsing.

use super::*;

#[test]
fn round_trips_over_eight_centuries() {
    // Every day from 1600 to 2400 converts back to itself and months are contiguous.
    let (start, end) = (days_from_civil(1600, 1, 1), days_from_civil(2400, 12, 31));
    let mut prev = civil_from_days(start - 1);
    for days in start..=end {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
        assert_eq!(days_from_date(y, m, d), Some(days));
        assert!(d >= 1 && d <= days_in_month(y, m));
        if d == 1 {
            assert_eq!(prev.2, days_in_month(prev.0, prev.1));
        }
        prev = (y, m, d);
    }
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 2, 29), 11_016);
    assert!(is_leap(2000) && !is_leap(1900) && is_leap(2024));
}

#[test]
fn dates_that_do_not_exist() {
    assert_eq!(days_from_date(2026, 2, 29), None);
    assert_eq!(days_from_date(2026, 4, 31), None);
    assert_eq!(days_from_date(2026, 13, 1), None);
    assert_eq!(days_from_date(2026, 0, 1), None);
    assert_eq!(days_from_date(2026, 1, 0), None);
    assert!(utc_date(2026, 2, 29).is_none());
    assert!(utc_date(2028, 2, 29).is_some());
    assert_eq!(utc_date(1970, 1, 1), Some(UNIX_EPOCH));
    assert_eq!(
        system_time(-86_400),
        UNIX_EPOCH.checked_sub(Duration::from_secs(86_400))
    );
}

#[test]
fn whole_days() {
    let a = utc_date(2026, 11, 23).unwrap();
    let b = utc_date(2027, 2, 21).unwrap();
    assert_eq!(days_between(a, b), 90);
    assert_eq!(days_between(b, a), -90);
    assert_eq!(days_between(a, a + Duration::from_secs(86_399)), 0);
}

#[test]
fn ledger_times_have_milliseconds() {
    let at = |ms| UNIX_EPOCH + Duration::from_millis(ms);
    assert_eq!(
        rfc3339_millis(at(1_795_428_000_123)),
        "2026-11-23T10:00:00.123Z"
    );
    assert_eq!(rfc3339_millis(at(0)), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        rfc3339_millis(at(951_868_799_999)),
        "2000-02-29T23:59:59.999Z"
    );
    assert_eq!(
        rfc3339_millis(UNIX_EPOCH - Duration::from_secs(1)),
        "1970-01-01T00:00:00.000Z"
    );
    let t = at(1_795_428_000_123) + Duration::from_nanos(999_999);
    assert_eq!(
        Timestamp::parse_rfc3339(&rfc3339_millis(t)).map(|t| (t.unix_secs(), t.subsec_nanos())),
        Some((1_795_428_000, 123_000_000))
    );
}

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
    assert_eq!(ts("2026-11-23T10:30:60Z"), ts("2026-11-23T10:31:00Z"));
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
