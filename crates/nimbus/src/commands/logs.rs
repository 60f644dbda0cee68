//! `nimbus logs NAME [--follow]`: the function's log group through the CloudWatch Logs API
//! (FilterLogEvents); `--follow` keeps polling for new events until interrupted.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::{check, connect};
use crate::ClientArgs;

const POLL_INTERVAL: Duration = Duration::from_millis(500);

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    name: String,
    /// Keep printing new events as they arrive.
    #[arg(long, short)]
    follow: bool,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = connect(&args.client)?;
    let group = format!("/aws/lambda/{}", args.name);
    let mut seen: HashSet<String> = HashSet::new();
    let mut since: i64 = 0;
    loop {
        let mut token: Option<String> = None;
        loop {
            let mut request = json!({ "logGroupName": group, "startTime": since });
            if let Some(t) = &token {
                request["nextToken"] = t.clone().into();
            }
            let headers =
                [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "Logs_20140328.FilterLogEvents")];
            let response = client.send(Method::POST, "/", &headers, request.to_string().into_bytes()).await?;
            let response = match check(response, "FilterLogEvents") {
                Ok(r) => r,
                // A function that has not run yet has no log group; following waits for it.
                Err(_) if args.follow => break,
                Err(e) => return Err(e),
            };
            let page: Value = serde_json::from_slice(&response.body)?;
            for event in page["events"].as_array().into_iter().flatten() {
                // Polls overlap at `since` (startTime is inclusive); only events at that instant can
                // repeat, so only their ids are remembered.
                let id = event["eventId"].as_str().unwrap_or_default().to_owned();
                let ts = event["timestamp"].as_i64().unwrap_or(0);
                if ts < since || (ts == since && seen.contains(&id)) {
                    continue;
                }
                if ts > since {
                    since = ts;
                    seen.clear();
                }
                seen.insert(id);
                println!("{}", event["message"].as_str().unwrap_or_default());
            }
            match page["nextToken"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
