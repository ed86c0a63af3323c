//! Opening hours and clock arithmetic in local civil time.

use crate::scenario::Hours;
use lawmesh_sync::time::{Date, Millis};

/// A minute.
pub const MINUTE: Millis = 60_000;
/// An hour.
pub const HOUR: Millis = 60 * MINUTE;
/// A day.
pub const DAY: Millis = 24 * HOUR;

/// `HH:MM` → minutes after midnight (`24:00` allowed).
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

/// Opening hours, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpeningHours {
    open: u32,
    close: u32,
    days: [bool; 7],
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl OpeningHours {
    /// Parse `time = "08:30-17:30"`, `days = "mon-fri"` (or a list like `mon,wed,fri`).
    pub fn parse(h: &Hours) -> Option<OpeningHours> {
        let (a, b) = h.time.split_once('-')?;
        let (open, close) = (parse_hhmm(a)?, parse_hhmm(b)?);
        if open >= close {
            return None;
        }
        let mut days = [false; 7];
        for part in h.days.split(',') {
            let day = |s: &str| WEEKDAYS.iter().position(|d| *d == s.trim());
            match part.split_once('-') {
                Some((x, y)) => {
                    let (x, y) = (day(x)?, day(y)?);
                    if x > y {
                        return None;
                    }
                    days[x..=y].iter_mut().for_each(|d| *d = true);
                }
                None => days[day(part)?] = true,
            }
        }
        Some(OpeningHours { open, close, days })
    }

    /// Open all the time.
    pub fn always() -> OpeningHours {
        OpeningHours {
            open: 0,
            close: 24 * 60,
            days: [true; 7],
        }
    }

    /// Is the site open at local time `t`?
    pub fn is_open(&self, t: Millis, utc_offset_minutes: i32) -> bool {
        let date = Date::at(t, utc_offset_minutes);
        let minute = minute_of_day(t, utc_offset_minutes);
        self.days[usize::from(date.weekday() - 1)] && minute >= self.open && minute < self.close
    }

    /// `t` if open then, else the next opening time.
    pub fn next_open(&self, t: Millis, utc_offset_minutes: i32) -> Millis {
        if self.is_open(t, utc_offset_minutes) {
            return t;
        }
        let mut date = Date::at(t, utc_offset_minutes);
        for _ in 0..8 {
            let start = day_start(date, utc_offset_minutes);
            let opening = start + Millis::from(self.open) * MINUTE;
            if self.days[usize::from(date.weekday() - 1)] && opening >= t {
                return opening;
            }
            date = Date::from_days(date.days() + 1);
        }
        t
    }
}

/// Midnight at the start of `date`, epoch ms.
pub fn day_start(date: Date, utc_offset_minutes: i32) -> Millis {
    date.start_ms(utc_offset_minutes).max(0) as Millis
}

/// Minutes since local midnight.
pub fn minute_of_day(t: Millis, utc_offset_minutes: i32) -> u32 {
    let local = t as i64 + i64::from(utc_offset_minutes) * 60_000;
    (local.rem_euclid(DAY as i64) / MINUTE as i64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_office_opens_on_monday_morning_after_a_friday_evening() {
        let h = OpeningHours::parse(&Hours {
            time: "08:30-17:30".into(),
            days: "mon-fri".into(),
        })
        .unwrap();
        let friday = Date::parse("2027-03-05").unwrap();
        let evening = day_start(friday, 480) + 18 * HOUR;
        assert!(!h.is_open(evening, 480));
        let monday = Date::parse("2027-03-08").unwrap();
        assert_eq!(
            h.next_open(evening, 480),
            day_start(monday, 480) + 8 * HOUR + 30 * MINUTE
        );
        assert!(h.is_open(day_start(monday, 480) + 9 * HOUR, 480));
    }
}
