//! Echo function for the end-to-end suite, written the way a user writes a Rust Lambda function.
//!
//! Answers `{"event": <the event>, "context": {...facts from the Runtime API and env...}, "pid": n}`.
//! An event `{"fail": "message"}` makes the handler return `Err`, which the runtime client reports to
//! `/runtime/invocation/{id}/error`; `{"sleep_ms": n}` sleeps first (used for concurrency checks).

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
struct EchoFailure(String);

impl std::fmt::Display for EchoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EchoFailure {}

// The way lambda_runtime's docs show to name an error type in the Runtime API error report.
impl From<EchoFailure> for Diagnostic {
    fn from(e: EchoFailure) -> Diagnostic {
        Diagnostic {
            error_type: "EchoFailure".into(),
            error_message: e.0,
        }
    }
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, EchoFailure> {
    let (payload, ctx) = event.into_parts();
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(msg) = payload.get("fail").and_then(Value::as_str) {
        return Err(EchoFailure(msg.to_string()));
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    println!("rust_echo handled {}", ctx.request_id);
    Ok(json!({
        "event": payload,
        "context": {
            "runtime": "lambda_runtime",
            "aws_request_id": ctx.request_id,
            "invoked_function_arn": ctx.invoked_function_arn,
            "remaining_ms": ctx.deadline.saturating_sub(now_ms),
            "function_name": ctx.env_config.function_name,
            "function_version": ctx.env_config.version,
            "memory_limit_in_mb": ctx.env_config.memory,
            "log_group_name": ctx.env_config.log_group,
            "log_stream_name": ctx.env_config.log_stream,
        },
        "pid": std::process::id(),
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
