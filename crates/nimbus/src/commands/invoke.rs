//! `nimbus invoke NAME [--payload JSON]`: a synchronous Invoke; the response goes to stdout, the log
//! tail (with `--log`) to stderr. A function error exits 1.

use std::process::ExitCode;

use base64::Engine;
use http::Method;

use super::{check, connect, segment};
use crate::ClientArgs;

#[derive(clap::Args, Debug)]
pub struct InvokeArgs {
    /// Function name or ARN, optionally `NAME:QUALIFIER`.
    name: String,
    /// The event, as JSON.
    #[arg(long, default_value = "{}")]
    payload: String,
    /// Also print the invocation's last 4 KB of logs to stderr.
    #[arg(long)]
    log: bool,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    serde_json::from_str::<serde_json::Value>(&args.payload)
        .map_err(|e| anyhow::anyhow!("--payload is not JSON: {e}"))?;
    let client = connect(&args.client)?;
    let path = format!("/2015-03-31/functions/{}/invocations", segment(&args.name));
    let mut headers = vec![("content-type", "application/json")];
    if args.log {
        headers.push(("x-amz-log-type", "Tail"));
    }
    let response = client.send(Method::POST, &path, &headers, args.payload.into_bytes()).await?;
    let response = check(response, "Invoke")?;
    if let Some(tail) = response.headers.get("x-amz-log-result").and_then(|v| v.to_str().ok()) {
        let decoded = base64::engine::general_purpose::STANDARD.decode(tail).unwrap_or_default();
        eprint!("{}", String::from_utf8_lossy(&decoded));
    }
    println!("{}", String::from_utf8_lossy(&response.body));
    if response.headers.contains_key("x-amz-function-error") {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
