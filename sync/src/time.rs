//! Time as the core sees it: milliseconds handed in by the caller, hybrid logical clock stamps,
//! and civil dates in the roster's time zone (for duty days and book periods).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch, as handed in by the caller. The core never reads a clock.
pub type Millis = u64;

/// A hybrid-logical-clock stamp: physical milliseconds plus a counter that orders events
/// stamped in the same millisecond or behind a peer's clock. Ties between nodes are broken by
/// the signer's key, which every event carries beside its stamp, so the order is total.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Stamp {
    /// Physical time in milliseconds (the largest seen by this clock).
    pub ms: Millis,
    /// Logical counter within `ms`.
    pub counter: u32,
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.ms, self.counter)
    }
}

/// A hybrid logical clock. Stamps it issues are strictly increasing and never behind any stamp
/// it has observed, so an event stamped after receiving another is ordered after it even when
/// the two nodes' wall clocks disagree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hlc {
    last: Stamp,
}

impl Hlc {
    /// A clock that has issued and seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next stamp at wall time `now`.
    pub fn tick(&mut self, now: Millis) -> Stamp {
        self.last = if now > self.last.ms {
            Stamp {
                ms: now,
                counter: 0,
            }
        } else {
            Stamp {
                ms: self.last.ms,
                counter: self.last.counter.saturating_add(1),
            }
        };
        self.last
    }

    /// Take note of a stamp seen on an incoming event.
    pub fn observe(&mut self, seen: Stamp) {
        if seen > self.last {
            self.last = seen;
        }
    }

    /// The last stamp issued or observed.
    pub fn last(&self) -> Stamp {
        self.last
    }
}

/// A calendar date (proleptic Gregorian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month 1–12.
    pub month: u32,
    /// Day of month 1–31.
    pub day: u32,
}

const DAY_MS: i64 = 86_400_000;

impl Date {
    /// The local date at `ms` for a zone `utc_offset_minutes` east of UTC.
    pub fn at(ms: Millis, utc_offset_minutes: i32) -> Date {
        let local = ms as i64 + i64::from(utc_offset_minutes) * 60_000;
        Self::from_days(local.div_euclid(DAY_MS))
    }

    /// Days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    pub fn from_days(z: i64) -> Date {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// ISO weekday, 1 = Monday … 7 = Sunday.
    pub fn weekday(self) -> u8 {
        // 1970-01-01 was a Thursday (4).
        ((self.days() + 3).rem_euclid(7) + 1) as u8
    }

    /// ISO 8601 week-numbering year and week.
    pub fn iso_week(self) -> (i32, u32) {
        let thursday = Date::from_days(self.days() - i64::from(self.weekday()) + 4);
        let jan1 = Date {
            year: thursday.year,
            month: 1,
            day: 1,
        };
        let week = (thursday.days() - jan1.days()) / 7 + 1;
        (thursday.year, week as u32)
    }

    /// Parse `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Date> {
        let mut it = s.split('-');
        let year = it.next()?.parse().ok()?;
        let month = it.next()?.parse().ok()?;
        let day = it.next()?.parse().ok()?;
        if it.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let d = Date { year, month, day };
        (Date::from_days(d.days()) == d).then_some(d)
    }

    /// Midnight at the start of this date, in epoch ms, for the given zone.
    pub fn start_ms(self, utc_offset_minutes: i32) -> i64 {
        self.days() * DAY_MS - i64::from(utc_offset_minutes) * 60_000
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlc_never_goes_backwards_even_when_the_wall_clock_does() {
        let mut c = Hlc::new();
        let a = c.tick(1_000);
        let b = c.tick(900);
        assert!(b > a);
        c.observe(Stamp {
            ms: 5_000,
            counter: 3,
        });
        let d = c.tick(2_000);
        assert!(
            d > Stamp {
                ms: 5_000,
                counter: 3
            }
        );
    }

    #[test]
    fn civil_dates_round_trip_and_weekdays_are_right() {
        for days in -1_000..40_000 {
            assert_eq!(Date::from_days(days).days(), days);
        }
        // 2026-12-04 is a Friday; in Beijing time 2026-12-04T20:00Z is already the 5th.
        let d = Date::parse("2026-12-04").unwrap();
        assert_eq!(d.weekday(), 5);
        assert_eq!(Date::at(d.start_ms(0) as u64 + 20 * 3_600_000, 480).day, 5);
        assert_eq!(Date::parse("2021-01-03").unwrap().iso_week(), (2020, 53));
        assert_eq!(Date::parse("2026-12-31").unwrap().iso_week(), (2026, 53));
        assert!(Date::parse("2026-02-30").is_none());
    }
}
