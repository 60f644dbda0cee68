//! The exact text of Lambda's platform log lines. Tools parse these (REPORT especially), so the format
//! is AWS's; the fields of REPORT are separated by tabs (⇥ below):
//! ```text
//! START RequestId: 8f5c… Version: $LATEST
//! END RequestId: 8f5c…
//! REPORT RequestId: 8f5c… ⇥ Duration: 12.34 ms ⇥ Billed Duration: 13 ms ⇥ Memory Size: 128 MB ⇥ Max Memory Used: 40 MB ⇥ Init Duration: 150.00 ms
//! ```

use std::fmt::Write;
use std::time::Duration;

use rand::Rng;

pub fn start_line(request_id: &str, version: &str) -> String {
    format!("START RequestId: {request_id} Version: {version}")
}

pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}")
}

/// How durations are rounded up for billing: 1 ms today, 100 ms classically.
#[derive(Debug, Clone, Copy)]
pub struct Billing {
    pub granularity_ms: u64,
}

impl Billing {
    pub fn billed_ms(self, duration: Duration) -> u64 {
        let g = self.granularity_ms.max(1);
        let ms = duration.as_secs_f64() * 1000.0;
        let billed = (ms / g as f64).ceil() as u64 * g;
        billed.max(g)
    }
}

pub struct ReportLine<'a> {
    pub request_id: &'a str,
    pub duration: Duration,
    pub billing: Billing,
    pub memory_size_mb: u32,
    pub max_memory_used_bytes: u64,
    /// Only on the invocation that paid for a cold start.
    pub init_duration: Option<Duration>,
    /// `Some("timeout")` or `Some("error")` when the environment failed, with its error type.
    pub status: Option<(&'a str, Option<&'a str>)>,
}

impl ReportLine<'_> {
    pub fn render(&self) -> String {
        let mut line = format!(
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
            self.request_id,
            self.duration.as_secs_f64() * 1000.0,
            self.billing.billed_ms(self.duration),
            self.memory_size_mb,
            self.max_memory_used_bytes.div_ceil(1024 * 1024),
        );
        if let Some(init) = self.init_duration {
            let _ = write!(line, "Init Duration: {:.2} ms\t", init.as_secs_f64() * 1000.0);
        }
        if let Some((status, error_type)) = self.status {
            let _ = write!(line, "Status: {status}\t");
            if let Some(t) = error_type {
                let _ = write!(line, "Error Type: {t}\t");
            }
        }
        line
    }
}

/// A new log stream name, one per environment: `2024/01/31/[$LATEST]<32 hex digits>`.
pub fn stream_name(date: time::Date, version: &str) -> String {
    let mut id = [0u8; 16];
    rand::rng().fill(&mut id[..]);
    format!("{:04}/{:02}/{:02}/[{version}]{}", date.year(), u8::from(date.month()), date.day(), hex::encode(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_rounds_up_to_the_granularity() {
        let ms = Billing { granularity_ms: 1 };
        assert_eq!(ms.billed_ms(Duration::from_micros(12_340)), 13);
        assert_eq!(ms.billed_ms(Duration::from_micros(100)), 1);
        assert_eq!(ms.billed_ms(Duration::from_millis(5)), 5);
        let classic = Billing { granularity_ms: 100 };
        assert_eq!(classic.billed_ms(Duration::from_millis(101)), 200);
    }

    #[test]
    fn report_line_matches_lambda() {
        let line = ReportLine {
            request_id: "abc",
            duration: Duration::from_micros(12_340),
            billing: Billing { granularity_ms: 1 },
            memory_size_mb: 128,
            max_memory_used_bytes: 40 * 1024 * 1024 - 5,
            init_duration: Some(Duration::from_millis(150)),
            status: None,
        };
        assert_eq!(
            line.render(),
            "REPORT RequestId: abc\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 150.00 ms\t"
        );
    }

    #[test]
    fn stream_names_look_like_lambdas() {
        let name = stream_name(time::macros::date!(2024 - 01 - 31), "$LATEST");
        assert!(name.starts_with("2024/01/31/[$LATEST]"));
        assert_eq!(name.len(), "2024/01/31/[$LATEST]".len() + 32);
    }
}
