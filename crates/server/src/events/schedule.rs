//! EventBridge rules' `ScheduleExpression`: `rate(N unit)` and AWS's six-field
//! `cron(minutes hours day-of-month month day-of-week year)`, in UTC.
//!
//! Parsing is AWS's validation: `rate(1 minute)` is singular and `rate(5 minutes)` plural; in cron
//! exactly one of day-of-month and day-of-week is `?`; `L` and `W` belong to day-of-month, `L` and `#`
//! to day-of-week (1 = Sunday); years run 1970–2199. The text comes from API callers: it is bounded and
//! checked character by character, and anything else is refused.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Parameter ScheduleExpression is not valid.")]
pub struct ScheduleError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expression {
    /// Every `period_s` seconds, counted from the rule's creation.
    Rate { period_s: u64 },
    /// A validated cron expression (evaluated by [`Cron`] when firing is added).
    Cron,
}

const MAX_LEN: usize = 256;

pub fn parse(text: &str) -> Result<Expression, ScheduleError> {
    if text.len() > MAX_LEN {
        return Err(ScheduleError);
    }
    if let Some(inner) = text.strip_prefix("rate(").and_then(|t| t.strip_suffix(')')) {
        return parse_rate(inner);
    }
    if let Some(inner) = text.strip_prefix("cron(").and_then(|t| t.strip_suffix(')')) {
        check_cron(inner)?;
        return Ok(Expression::Cron);
    }
    Err(ScheduleError)
}

fn parse_rate(inner: &str) -> Result<Expression, ScheduleError> {
    let mut words = inner.split(' ');
    let (Some(n), Some(unit), None) = (words.next(), words.next(), words.next()) else { return Err(ScheduleError) };
    if !n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with('0') {
        return Err(ScheduleError);
    }
    let n: u64 = n.parse().map_err(|_| ScheduleError)?;
    let seconds = match (unit, n == 1) {
        ("minute", true) | ("minutes", false) => 60,
        ("hour", true) | ("hours", false) => 3600,
        ("day", true) | ("days", false) => 86_400,
        _ => return Err(ScheduleError),
    };
    Ok(Expression::Rate { period_s: n.checked_mul(seconds).ok_or(ScheduleError)? })
}

#[derive(Clone, Copy)]
struct FieldSpec {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Extra characters allowed: `?`, `L`, `W`, `#`.
    question: bool,
    last: bool,
    weekday: bool,
    hash: bool,
}

const MONTHS: &[&str] = &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const fn spec(min: u32, max: u32) -> FieldSpec {
    FieldSpec { min, max, names: &[], question: false, last: false, weekday: false, hash: false }
}

fn check_cron(inner: &str) -> Result<(), ScheduleError> {
    let fields: Vec<&str> = inner.split(' ').collect();
    let [minutes, hours, dom, month, dow, year] = fields[..] else { return Err(ScheduleError) };
    // Exactly one of the day fields is `?` (AWS: a value or `*` in one needs `?` in the other).
    if (dom == "?") == (dow == "?") {
        return Err(ScheduleError);
    }
    check_field(minutes, spec(0, 59))?;
    check_field(hours, spec(0, 23))?;
    check_field(dom, FieldSpec { question: true, last: true, weekday: true, ..spec(1, 31) })?;
    check_field(month, FieldSpec { names: MONTHS, ..spec(1, 12) })?;
    check_field(dow, FieldSpec { names: DAYS, question: true, last: true, hash: true, ..spec(1, 7) })?;
    check_field(year, spec(1970, 2199))
}

fn value(text: &str, spec: FieldSpec) -> Result<u32, ScheduleError> {
    if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(spec.min + i as u32);
    }
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScheduleError);
    }
    let v: u32 = text.parse().map_err(|_| ScheduleError)?;
    if v < spec.min || v > spec.max { Err(ScheduleError) } else { Ok(v) }
}

fn check_field(field: &str, spec: FieldSpec) -> Result<(), ScheduleError> {
    if field == "?" {
        return if spec.question { Ok(()) } else { Err(ScheduleError) };
    }
    if spec.last && field == "L" {
        return Ok(());
    }
    for item in field.split(',') {
        // Day-of-month `15W`, `LW`; day-of-week `6L` (last Friday), `6#3` (third Friday).
        if spec.weekday && (item == "LW" || item.strip_suffix('W').is_some_and(|d| value(d, spec).is_ok())) {
            continue;
        }
        if spec.hash
            && let Some((day, nth)) = item.split_once('#')
        {
            value(day, spec)?;
            if !matches!(nth, "1" | "2" | "3" | "4" | "5") {
                return Err(ScheduleError);
            }
            continue;
        }
        if spec.hash && item.strip_suffix('L').is_some_and(|d| value(d, spec).is_ok()) {
            continue;
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            let step: u32 = step.parse().map_err(|_| ScheduleError)?;
            if step == 0 || step > spec.max {
                return Err(ScheduleError);
            }
        }
        if range == "*" {
            continue;
        }
        match range.split_once('-') {
            Some((a, b)) => {
                value(a, spec)?;
                value(b, spec)?;
            }
            None => {
                value(range, spec)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_are_validated_as_aws_does() {
        let valid = [
            ("rate(1 minute)", Some(60)),
            ("rate(5 minutes)", Some(300)),
            ("rate(1 hour)", Some(3600)),
            ("rate(12 hours)", Some(43_200)),
            ("rate(1 day)", Some(86_400)),
            ("rate(7 days)", Some(604_800)),
            ("cron(0 10 * * ? *)", None),
            ("cron(15 12 * * ? *)", None),
            ("cron(0 18 ? * MON-FRI *)", None),
            ("cron(0 8 1 * ? *)", None),
            ("cron(0/15 * * * ? *)", None),
            ("cron(0/10 * ? * MON-FRI *)", None),
            ("cron(0/5 8-17 ? * MON-FRI *)", None),
            ("cron(0 9 ? * 2#1 *)", None),
            ("cron(0 12 L * ? 2026)", None),
            ("cron(0 12 15W * ? *)", None),
            ("cron(0 12 LW * ? *)", None),
            ("cron(0 12 ? * 6L *)", None),
            ("cron(0 2 ? JAN,JUN,DEC SUN 2026-2030)", None),
        ];
        for (text, period) in valid {
            let parsed = parse(text).unwrap_or_else(|_| panic!("{text} refused"));
            match period {
                Some(p) => assert_eq!(parsed, Expression::Rate { period_s: p }, "{text}"),
                None => assert_eq!(parsed, Expression::Cron, "{text}"),
            }
        }
        let invalid = [
            "rate(1 minutes)",
            "rate(5 minute)",
            "rate(0 minutes)",
            "rate(-1 minutes)",
            "rate(01 minutes)",
            "rate(1 second)",
            "rate(1  minute)",
            "rate(5 weeks)",
            "rate(99999999999999999999 days)",
            "cron(0 10 * * * *)",
            "cron(0 10 ? * ? *)",
            "cron(0 10 * * ?)",
            "cron(0 10 * * ? * *)",
            "cron(60 10 * * ? *)",
            "cron(0 24 * * ? *)",
            "cron(0 10 32 * ? *)",
            "cron(0 10 * 13 ? *)",
            "cron(0 10 ? * 8 *)",
            "cron(0 10 ? * 2#6 *)",
            "cron(0 10 * * ? 1969)",
            "cron(0 10 * * ? 2200)",
            "cron(0/0 10 * * ? *)",
            "cron(0 10 L * ? *",
            "cron(0 L * * ? *)",
            "cron(0 10 ? * 2W *)",
            "at(2026-01-01T00:00:00)",
            "",
        ];
        for text in invalid {
            assert_eq!(parse(text), Err(ScheduleError), "{text} accepted");
        }
    }
}
