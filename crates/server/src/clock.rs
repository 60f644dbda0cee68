//! Wall-clock helpers. Durations are measured with `Instant`; these are only for timestamps that leave
//! the process (log events, deadlines handed to runtimes, API dates).

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `2024-01-31T12:34:56.789+0000`, the format of Lambda's `LastModified`.
pub fn lambda_timestamp(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `2024-01-31T12:34:56.789Z`, as Lambda prefixes platform log lines such as timeouts.
pub fn iso_millis(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let t = t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

pub fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::lambda_timestamp(1_706_704_496_789), "2024-01-31T12:34:56.789+0000");
        assert_eq!(super::iso_millis(1_706_704_496_789), "2024-01-31T12:34:56.789Z");
    }
}
