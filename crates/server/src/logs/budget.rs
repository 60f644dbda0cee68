//! How much a function may log: a token bucket of bytes per environment, in the driver that turns its
//! output into log lines, before anything is queued for `logs.db`.
//!
//! The other side is the function's own stdout and stderr, untrusted: a loop printing as fast as a pipe
//! goes writes hundreds of MB a second, and every byte kept is a byte of `logs.db` on the data disk.
//! CloudWatch Logs bounds ingestion per log stream (PutLogEvents quotas) and drops what is over it;
//! here each environment (one stream) may write [`BURST_BYTES`] at once and [`RATE_BYTES_PER_S`]
//! sustained. What is over is dropped, and the stream says so: one line when dropping starts, one with
//! the count when lines are kept again (or the environment ends), so a reader sees the gap. Once
//! dropping, lines are kept again only when a second's worth has been earned back, so a steady flood
//! makes one stretch a second, not a pair of notices for every line that fits.

use std::time::Instant;

/// What one environment may write at once: a burst well above what a chatty invocation prints.
pub const BURST_BYTES: u64 = 8 * 1024 * 1024;
/// What it may write sustained, per second (about what one CloudWatch Logs stream ingests).
pub const RATE_BYTES_PER_S: u64 = 1024 * 1024;

/// A line's fate.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Keep it; `notice` (the end of a dropped stretch) goes into the stream before it.
    Keep { notice: Option<String> },
    /// Drop it; `notice` (the start of a dropped stretch) goes into the stream instead.
    Drop { notice: Option<String> },
}

#[derive(Debug)]
pub struct LogBudget {
    burst: u64,
    rate: u64,
    /// Bytes that may still be written now (fractional: refills are continuous).
    tokens: f64,
    last: Instant,
    /// Lines and bytes dropped in the current stretch; `None`: not dropping.
    dropping: Option<(u64, u64)>,
}

impl LogBudget {
    pub fn new(now: Instant) -> Self {
        Self::with(BURST_BYTES, RATE_BYTES_PER_S, now)
    }

    pub fn with(burst: u64, rate: u64, now: Instant) -> Self {
        Self { burst, rate, tokens: burst as f64, last: now, dropping: None }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate as f64).min(self.burst as f64);
        self.last = self.last.max(now);
    }

    /// Decides on one line of `bytes` (its text plus the newline) at `now`.
    pub fn admit(&mut self, bytes: u64, now: Instant) -> Admit {
        self.refill(now);
        // A line costs at least one byte, so empty lines are not free either.
        let cost = bytes.max(1);
        // While dropping, wait for a second's worth (or the whole burst, if smaller) before keeping again.
        let needed = if self.dropping.is_some() { cost.max(self.rate.min(self.burst)) } else { cost };
        if self.tokens >= needed as f64 {
            self.tokens -= cost as f64;
            return Admit::Keep { notice: self.dropping.take().map(|(lines, bytes)| resumed(lines, bytes)) };
        }
        match &mut self.dropping {
            Some((lines, dropped)) => {
                *lines += 1;
                *dropped += cost;
                Admit::Drop { notice: None }
            }
            None => {
                self.dropping = Some((1, cost));
                Admit::Drop { notice: Some(self.throttled()) }
            }
        }
    }

    /// The count of a stretch still being dropped when the environment ends.
    pub fn finish(&mut self) -> Option<String> {
        self.dropping.take().map(|(lines, bytes)| resumed(lines, bytes))
    }

    fn throttled(&self) -> String {
        format!(
            "[nimbus] Log output throttled: this environment wrote more than {} MiB at over {} MiB/s; \
             lines are dropped until it writes less",
            self.burst / (1024 * 1024),
            self.rate as f64 / (1024.0 * 1024.0)
        )
    }
}

fn resumed(lines: u64, bytes: u64) -> String {
    format!("[nimbus] Log output throttled: {lines} lines ({bytes} bytes) were dropped")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_lines_are_dropped_with_one_notice_then_counted_when_kept_again() {
        let t0 = Instant::now();
        let mut b = LogBudget::with(100, 10, t0);
        // (bytes, seconds after t0, expected)
        let cases: &[(u64, u64, &str)] = &[
            (60, 0, "keep"),
            (40, 0, "keep"),
            (1, 0, "drop+notice"),
            (5, 0, "drop"),
            (0, 0, "drop"),
            // Still dropping: a line that would fit is not kept before a second's worth is earned back.
            (1, 0, "drop"),
            // 1 s later: 10 bytes earned.
            (10, 1, "keep+count"),
            (11, 1, "drop+notice"),
            // Long idle: the bucket refills to the burst, no more.
            (100, 60, "keep+count"),
            (1, 60, "drop+notice"),
        ];
        for (i, (bytes, at, expected)) in cases.iter().enumerate() {
            let got = b.admit(*bytes, t0 + Duration::from_secs(*at));
            let kind = match &got {
                Admit::Keep { notice: None } => "keep",
                Admit::Keep { notice: Some(_) } => "keep+count",
                Admit::Drop { notice: None } => "drop",
                Admit::Drop { notice: Some(_) } => "drop+notice",
            };
            assert_eq!(kind, *expected, "case {i}: {got:?}");
        }
        assert_eq!(b.finish().as_deref(), Some("[nimbus] Log output throttled: 1 lines (1 bytes) were dropped"));
        assert_eq!(b.finish(), None);
    }

    #[test]
    fn the_count_covers_every_line_of_the_stretch() {
        let t0 = Instant::now();
        let mut b = LogBudget::with(10, 1, t0);
        assert_eq!(b.admit(10, t0), Admit::Keep { notice: None });
        for _ in 0..3 {
            assert!(matches!(b.admit(4, t0), Admit::Drop { .. }));
        }
        let Admit::Keep { notice: Some(n) } = b.admit(2, t0 + Duration::from_secs(5)) else { panic!() };
        assert_eq!(n, "[nimbus] Log output throttled: 3 lines (12 bytes) were dropped");
    }
}
