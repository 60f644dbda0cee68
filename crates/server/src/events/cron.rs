//! Evaluating AWS's six-field cron expressions (validated by `schedule::parse`) in UTC: the next
//! minute at or after a given time that the expression names. Hand-written (rather than `croner`,
//! which dependencies.md suggests) because AWS's `L`, `W`, `#` and day-of-week numbering (1 = Sunday)
//! are a few lines here, and it avoids another dependency tree for one function.
//!
//! The search walks days (at most [`SEARCH_DAYS`] ahead), and within a matching day takes the first
//! listed hour and minute, so it costs a few thousand cheap checks at worst, never a minute-by-minute scan.

use time::{Date, Duration, OffsetDateTime, Time, Weekday};

/// How far ahead a firing is looked for (an expression naming only Feb 29 of a leap year still fires).
const SEARCH_DAYS: i64 = 366 * 9;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: DayRule,
    months: u64,
    years: Vec<(u32, u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayRule {
    /// Day-of-month items (day-of-week is `?`).
    Month(Vec<MonthDay>),
    /// Day-of-week items (day-of-month is `?`), 1 = Sunday.
    Week(Vec<WeekDay>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MonthDay {
    Set(u64),
    Last,
    LastWeekday,
    NearestWeekday(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WeekDay {
    Set(u64),
    /// The last such weekday of the month.
    Last(u8),
    /// The nth such weekday of the month.
    Nth(u8, u8),
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn number(text: &str, names: &[&str], base: u32) -> Option<u32> {
    names.iter().position(|n| n.eq_ignore_ascii_case(text)).map(|i| base + i as u32).or_else(|| text.parse().ok())
}

/// Items `*`, `a`, `a-b`, with an optional `/step`, as (from, to, step) triples.
fn ranges(field: &str, min: u32, max: u32, names: &[&str]) -> Option<Vec<(u32, u32, u32)>> {
    field
        .split(',')
        .map(|item| {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, s.parse().ok()?),
                None => (item, 1),
            };
            let (from, to) = match range {
                "*" => (min, max),
                r => match r.split_once('-') {
                    Some((a, b)) => (number(a, names, min)?, number(b, names, min)?),
                    None => {
                        let a = number(r, names, min)?;
                        (a, if item.contains('/') { max } else { a })
                    }
                },
            };
            Some((from, to, step))
        })
        .collect()
}

fn bits(list: &[(u32, u32, u32)]) -> u64 {
    let mut out = 0;
    for &(from, to, step) in list {
        let mut v = from;
        while v <= to && v < 64 {
            out |= 1 << v;
            v += step.max(1);
        }
    }
    out
}

fn in_ranges(list: &[(u32, u32, u32)], v: u32) -> bool {
    list.iter().any(|&(from, to, step)| v >= from && v <= to && (v - from).is_multiple_of(step.max(1)))
}

impl Cron {
    /// Reads the inside of `cron(…)`; `None` if it is not valid (callers validate with `schedule` first).
    pub fn parse(inner: &str) -> Option<Cron> {
        let fields: Vec<&str> = inner.split(' ').collect();
        let [minutes, hours, dom, month, dow, year] = fields[..] else { return None };
        let days = if dom == "?" {
            DayRule::Week(
                dow.split(',')
                    .map(|item| {
                        if let Some((d, n)) = item.split_once('#') {
                            return Some(WeekDay::Nth(number(d, &DAYS, 1)? as u8, n.parse().ok()?));
                        }
                        if item == "L" {
                            return Some(WeekDay::Set(1 << 7));
                        }
                        if let Some(d) = item.strip_suffix('L') {
                            return Some(WeekDay::Last(number(d, &DAYS, 1)? as u8));
                        }
                        Some(WeekDay::Set(bits(&ranges(item, 1, 7, &DAYS)?)))
                    })
                    .collect::<Option<_>>()?,
            )
        } else {
            DayRule::Month(
                dom.split(',')
                    .map(|item| match item {
                        "L" => Some(MonthDay::Last),
                        "LW" => Some(MonthDay::LastWeekday),
                        _ => match item.strip_suffix('W') {
                            Some(d) => Some(MonthDay::NearestWeekday(d.parse().ok()?)),
                            None => Some(MonthDay::Set(bits(&ranges(item, 1, 31, &[])?))),
                        },
                    })
                    .collect::<Option<_>>()?,
            )
        };
        Some(Cron {
            minutes: bits(&ranges(minutes, 0, 59, &[])?),
            hours: bits(&ranges(hours, 0, 23, &[])?),
            days,
            months: bits(&ranges(month, 1, 12, &MONTHS)?),
            years: ranges(year, 1970, 2199, &[])?,
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let last = date.month().length(date.year());
        let day = date.day();
        match &self.days {
            DayRule::Month(items) => items.iter().any(|item| match *item {
                MonthDay::Set(set) => set & (1 << day) != 0,
                MonthDay::Last => day == last,
                MonthDay::LastWeekday => nearest_weekday(date, last) == day,
                MonthDay::NearestWeekday(d) => d <= last && nearest_weekday(date, d) == day,
            }),
            DayRule::Week(items) => {
                // 1 = Sunday … 7 = Saturday.
                let dow = date.weekday().number_days_from_sunday() + 1;
                items.iter().any(|item| match *item {
                    // A bare `L` in day-of-week means Saturday (the last day of the week).
                    WeekDay::Set(set) => set & (1 << dow) != 0 || (set & (1 << 7) != 0 && dow == 7),
                    WeekDay::Last(d) => d == dow && day + 7 > last,
                    WeekDay::Nth(d, n) => d == dow && (day - 1) / 7 + 1 == n,
                })
            }
        }
    }

    /// The first firing at or after `from` (to the minute), if one comes within the search window.
    pub fn next_at_or_after(&self, from: OffsetDateTime) -> Option<OffsetDateTime> {
        let from = from.replace_second(0).ok()?.replace_nanosecond(0).ok()?;
        let start_minutes = u32::from(from.hour()) * 60 + u32::from(from.minute());
        let mut date = from.date();
        for offset in 0..SEARCH_DAYS {
            let year_ok = in_ranges(&self.years, date.year() as u32);
            if year_ok && self.months & (1 << u8::from(date.month())) != 0 && self.day_matches(date) {
                let after = if offset == 0 { start_minutes } else { 0 };
                for hour in (after / 60)..24 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    let first = if hour == after / 60 { after % 60 } else { 0 };
                    if let Some(minute) = (first..60).find(|m| self.minutes & (1 << m) != 0) {
                        let t = Time::from_hms(hour as u8, minute as u8, 0).ok()?;
                        return Some(date.with_time(t).assume_utc());
                    }
                }
            }
            date = date.checked_add(Duration::DAY)?;
        }
        None
    }
}

/// The weekday (Mon–Fri) nearest to day `d` of `date`'s month, without leaving the month.
fn nearest_weekday(date: Date, d: u8) -> u8 {
    let Ok(target) = Date::from_calendar_date(date.year(), date.month(), d) else { return 0 };
    let last = date.month().length(date.year());
    match target.weekday() {
        Weekday::Saturday if d == 1 => 3,
        Weekday::Saturday => d - 1,
        Weekday::Sunday if d == last => d - 2,
        Weekday::Sunday => d + 1,
        _ => d,
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn next_firings_against_a_fixed_clock() {
        // 2026-12-06 is a Sunday.
        let now = datetime!(2026-12-06 21:37:30 UTC);
        let cases = [
            ("0 10 * * ? *", datetime!(2026-12-07 10:00 UTC)),
            ("0/15 * * * ? *", datetime!(2026-12-06 21:45 UTC)),
            ("37 21 * * ? *", datetime!(2026-12-06 21:37 UTC)),
            ("0 18 ? * MON-FRI *", datetime!(2026-12-07 18:00 UTC)),
            ("0 8 1 * ? *", datetime!(2027-01-01 08:00 UTC)),
            ("0 12 L * ? *", datetime!(2026-12-31 12:00 UTC)),
            // The 2nd Monday of the month (day-of-week 2 = Monday).
            ("0 9 ? * 2#2 *", datetime!(2026-12-14 09:00 UTC)),
            // The last Friday.
            ("0 9 ? * 6L *", datetime!(2026-12-25 09:00 UTC)),
            // Nearest weekday to the 5th of January 2027 (a Tuesday) and to 2027-05-01 (a Saturday → Mon 3rd).
            ("0 9 5W 1 ? *", datetime!(2027-01-05 09:00 UTC)),
            ("0 9 1W 5 ? *", datetime!(2027-05-03 09:00 UTC)),
            // The last weekday of January 2027 (Sunday 31st → Friday 29th).
            ("0 9 LW 1 ? 2027", datetime!(2027-01-29 09:00 UTC)),
            ("0 2 ? JAN,JUN SUN 2028-2030", datetime!(2028-01-02 02:00 UTC)),
            ("0 0 29 2 ? *", datetime!(2028-02-29 00:00 UTC)),
            ("0/5 8-17 ? * MON-FRI *", datetime!(2026-12-07 08:00 UTC)),
        ];
        for (expr, expected) in cases {
            let cron = Cron::parse(expr).unwrap_or_else(|| panic!("{expr}"));
            assert_eq!(cron.next_at_or_after(now), Some(expected), "{expr}");
        }
        assert_eq!(Cron::parse("0 0 1 1 ? 1999").unwrap().next_at_or_after(now), None);
    }
}
