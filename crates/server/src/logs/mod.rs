//! Function logs: the platform lines Lambda writes around each invocation (`START`, `END`, `REPORT`),
//! and the sink that batches every line into the store, where the CloudWatch Logs API reads them.

mod budget;
mod lines;
mod sink;

pub use budget::{Admit, LogBudget};
pub use lines::{Billing, ReportLine, end_line, start_line, stream_name};
pub use sink::LogSink;

/// The log group of a function, as Lambda names it.
pub fn group_name(function: &str) -> String {
    format!("/aws/lambda/{function}")
}
