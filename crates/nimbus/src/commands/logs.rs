//! `nimbus logs NAME [--follow]`: the function's log group through the CloudWatch Logs API
//! (FilterLogEvents); `--follow` keeps polling for new events until interrupted.
//!
//! Lambda's log group appears with a function's first log lines, which the server writes a moment
//! after the invocation answered: `nimbus invoke f && nimbus logs f` would find no group yet. So a
//! missing group is waited for, up to [`GROUP_WAIT`], when the function exists (a function that does not
//! exist fails at once, with GetFunction's error); `--follow` keeps waiting as long as it follows.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::{check, connect, segment};
use crate::ClientArgs;

const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long a first read waits for the log group of a function that exists.
const GROUP_WAIT: Duration = Duration::from_secs(10);

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
    let mut waiting_since: Option<tokio::time::Instant> = None;
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
            let missing = response.error_type() == Some("ResourceNotFoundException");
            let response = match check(response, "FilterLogEvents") {
                Ok(r) => r,
                Err(e) if missing => {
                    // No group yet: wait for it if the function exists (its first lines may still be on
                    // their way), within GROUP_WAIT unless following.
                    let first = waiting_since.is_none();
                    let started = *waiting_since.get_or_insert_with(tokio::time::Instant::now);
                    if first {
                        let path = format!("/2015-03-31/functions/{}", segment(&args.name));
                        check(client.send(Method::GET, &path, &[], Vec::new()).await?, "GetFunction")?;
                    }
                    if !args.follow && started.elapsed() >= GROUP_WAIT {
                        return Err(e);
                    }
                    break;
                }
                Err(e) => return Err(e),
            };
            waiting_since = None;
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
        if !args.follow && waiting_since.is_none() {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
