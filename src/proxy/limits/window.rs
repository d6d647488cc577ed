//! The fixed UTC windows limits count in: the minute, the day and the calendar month a request
//! arrives in. Every replica derives the same window from the clock, so the window is part of
//! a counter's key and a new window starts at zero without anyone resetting anything.

use std::time::{SystemTime, UNIX_EPOCH};

use super::file::Kind;
use crate::time::{civil_from_days, days_from_civil};

/// The window of one limit that a moment falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Its number: minutes, days or months since the Unix epoch.
    pub id: i64,
    /// When it ends (and the limit resets), in Unix seconds.
    pub ends: i64,
}

/// How long a counter outlives its window: a call reserved near the end of one settles
/// into it after it ended.
const KEEP_AFTER_END: i64 = 3600;

impl Window {
    pub fn of(kind: Kind, now: SystemTime) -> Window {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2));
        match kind {
            Kind::RequestsPerMinute | Kind::TokensPerMinute => {
                let id = secs.div_euclid(60);
                Window {
                    id,
                    ends: (id + 1) * 60,
                }
            }
            Kind::DailyUsd => {
                let id = secs.div_euclid(86_400);
                Window {
                    id,
                    ends: (id + 1) * 86_400,
                }
            }
            Kind::MonthlyUsd => {
                let (y, m, _) = civil_from_days(secs.div_euclid(86_400));
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                Window {
                    id: (y - 1970) * 12 + (m - 1),
                    ends: days_from_civil(ny, nm, 1) * 86_400,
                }
            }
        }
    }

    /// Seconds a counter of this window is kept from `now`.
    pub fn ttl(&self, now: SystemTime) -> i64 {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        (self.ends - secs).max(1) + KEEP_AFTER_END
    }

    /// Seconds from `now` until the window ends.
    pub fn resets_in(&self, now: SystemTime) -> u64 {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        u64::try_from(self.ends - secs).unwrap_or(0).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn windows_and_their_ends() {
        // 2026-12-31T23:59:30Z
        let t = at(1_798_761_570);
        let minute = Window::of(Kind::TokensPerMinute, t);
        assert_eq!(minute.ends, 1_798_761_600);
        assert_eq!(minute.resets_in(t), 30);
        let day = Window::of(Kind::DailyUsd, t);
        assert_eq!(day.ends, 1_798_761_600);
        let month = Window::of(Kind::MonthlyUsd, t);
        assert_eq!(month.id, (2026 - 1970) * 12 + 11);
        // 2027-01-01T00:00:00Z
        assert_eq!(month.ends, 1_798_761_600);
        assert_eq!(month.ttl(t), 30 + KEEP_AFTER_END);
        let next = Window::of(Kind::MonthlyUsd, at(1_798_761_600));
        assert_eq!(next.id, month.id + 1);
        // February of a leap year ends on the 29th: 2028-03-01T00:00:00Z.
        let feb = Window::of(Kind::MonthlyUsd, at(1_832_976_000 + 86_400 * 10));
        assert_eq!(feb.ends, 1_835_481_600);
    }
}
