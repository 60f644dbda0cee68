//! The CloudWatch Logs API (JSON 1.1, `X-Amz-Target: Logs_20140328.<Operation>`) over the function logs
//! Nimbus stores, enough for `aws logs tail`, `filter-log-events`, `get-log-events` and
//! `describe-log-streams`/`-groups`, plus the group operations users run on Lambda's log groups
//! (`create-log-group`, `put-retention-policy`, `delete-retention-policy`, `delete-log-group`).
//!
//! The other side is any credentialed client, a function's session credential included, so no request
//! may hold the server: every operation runs off the async workers (`spawn_blocking`), the reads that
//! scan events at most [`LOG_READS_MAX`] at once (the rest wait without holding a thread); a page is at
//! most 10,000 events and 1 MB, a FilterLogEvents call scans a bounded number of events and bytes and
//! says where to go on (`nextToken`), and its pattern is at most 1,024 characters, as on AWS.

use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use nimbus_model::LogRetentionDays;
use nimbus_model::limits::LOGS_FILTER_PATTERN_CHARS_MAX;
use nimbus_model::policy::Action;

use nimbus_store::Store;

use super::{ApiError, SharedState};
use crate::arn::Arns;
use crate::authz::{self, Identity};

/// Logs' page limits: 50 groups or streams, 10,000 events.
const GROUPS_PAGE_MAX: usize = 50;
const EVENTS_PAGE_MAX: usize = nimbus_model::limits::LOGS_EVENTS_PAGE_MAX;
const LOG_GROUP_NAME_BYTES_MAX: usize = 512;

/// Event reads (GetLogEvents, FilterLogEvents) running at once. Each holds a blocking thread, a read
/// connection and up to a 1 MB page while it runs; the bound keeps the sum small however many clients
/// read, and leaves the blocking pool to everything else.
pub const LOG_READS_MAX: usize = 4;
static LOG_READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(LOG_READS_MAX);

/// One row per Logs operation Nimbus serves: its IAM action and what it acts on, as AWS's Service
/// Authorization Reference gives them. `dispatch` matches on this enum, so every served operation is
/// authorized from its row.
macro_rules! operations {
    ($( $op:ident $target:ident; )+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum LogsOperation { $($op),+ }

        impl LogsOperation {
            #[cfg(test)]
            pub const ALL: &'static [LogsOperation] = &[$(LogsOperation::$op),+];

            pub fn parse(name: &str) -> Option<LogsOperation> {
                match name { $(stringify!($op) => Some(LogsOperation::$op),)+ _ => None }
            }

            /// Its IAM action: `logs:<Operation>`.
            pub fn action(self) -> Action {
                match self { $(LogsOperation::$op => Action::from_static(concat!("logs:", stringify!($op)))),+ }
            }

            pub fn target(self) -> LogsTarget {
                match self { $(LogsOperation::$op => LogsTarget::$target),+ }
            }
        }
    };
}

/// What a Logs operation acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogsTarget {
    /// The account's groups: AWS names the resource `arn:aws:logs:<region>:<account>:log-group::log-stream:`.
    Groups,
    /// `arn:aws:logs:<region>:<account>:log-group:<logGroupName>`.
    Group,
    /// `arn:aws:logs:<region>:<account>:log-group:<logGroupName>:log-stream:<logStreamName>`.
    Stream,
}

operations! {
    DescribeLogGroups Groups;
    DescribeLogStreams Group;
    GetLogEvents Stream;
    FilterLogEvents Group;
    DeleteLogGroup Group;
    CreateLogGroup Group;
    PutRetentionPolicy Group;
    DeleteRetentionPolicy Group;
}

/// The resource ARN `op` acts on, from the request body (names missing from it are empty; the handler
/// refuses such a request with its own error).
pub fn resource(arns: &crate::arn::Arns, op: LogsOperation, body: &[u8]) -> String {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Names {
        log_group_name: Option<String>,
        log_stream_name: Option<String>,
    }
    let names: Names = serde_json::from_slice(body).unwrap_or_default();
    let base = format!("arn:aws:logs:{}:{}:log-group:", arns.region, arns.account);
    let group = names.log_group_name.unwrap_or_default();
    match op.target() {
        LogsTarget::Groups => format!("{base}:log-stream:"),
        LogsTarget::Group => format!("{base}{group}"),
        LogsTarget::Stream => format!("{base}{group}:log-stream:{}", names.log_stream_name.unwrap_or_default()),
    }
}

/// Serves one Logs request after deciding it (`authz`) from its operation's row.
pub async fn dispatch(state: &SharedState, operation: &str, body: &[u8], identity: Option<&Identity>) -> Response {
    let Some(op) = LogsOperation::parse(operation) else {
        return ApiError::unknown_operation("POST", &format!("Logs_20140328.{operation}"))
            .json_protocol()
            .into_response();
    };
    if let Err(denied) = authz::authorize(identity, &op.action(), &resource(&state.arns, op, body)) {
        // CloudWatch Logs answers AccessDeniedException with 400, as all its client errors.
        let mut e = ApiError::access_denied(denied.message).json_protocol();
        e.status = axum::http::StatusCode::BAD_REQUEST;
        return e.into_response();
    }
    serve(Deps { store: state.store.clone(), arns: state.arns.clone() }, op, body).await
}

/// The parts of the API state the Logs operations use. Kept separate from [`SharedState`] so the fuzz
/// targets can run the real handlers on a store alone.
#[derive(Clone)]
pub(crate) struct Deps {
    pub store: std::sync::Arc<Store>,
    pub arns: Arns,
}

/// Serves an operation by name without authorization: the fuzz targets' entry point.
pub(crate) async fn respond(state: Deps, operation: &str, body: &[u8]) -> Response {
    match LogsOperation::parse(operation) {
        Some(op) => serve(state, op, body).await,
        None => ApiError::unknown_operation("POST", &format!("Logs_20140328.{operation}"))
            .json_protocol()
            .into_response(),
    }
}

async fn serve(state: Deps, op: LogsOperation, body: &[u8]) -> Response {
    use LogsOperation as Op;
    // The event reads wait for their turn here, on the async side, without holding a thread.
    let _turn = match op {
        Op::GetLogEvents | Op::FilterLogEvents => Some(LOG_READS.acquire().await),
        _ => None,
    };
    let body = body.to_vec();
    // Store calls can be long (a scan, a large delete): never on an async worker, where they would
    // stall every request queued on it.
    let result = tokio::task::spawn_blocking(move || {
        let (state, body) = (&state, body.as_slice());
        match op {
            Op::DescribeLogGroups => describe_log_groups(state, body),
            Op::DescribeLogStreams => describe_log_streams(state, body),
            Op::GetLogEvents => get_log_events(state, body),
            Op::FilterLogEvents => filter_log_events(state, body),
            Op::DeleteLogGroup => delete_log_group(state, body),
            Op::CreateLogGroup => create_log_group(state, body),
            Op::PutRetentionPolicy => put_retention_policy(state, body),
            Op::DeleteRetentionPolicy => delete_retention_policy(state, body),
        }
    })
    .await
    .unwrap_or_else(|e| Err(ApiError::service(format!("logs request failed: {e}"))));
    match result {
        Ok(value) => ([("content-type", "application/x-amz-json-1.1")], value.to_string()).into_response(),
        Err(mut e) => {
            // JSON-protocol services answer every client error with 400.
            if e.status.is_client_error() {
                e.status = axum::http::StatusCode::BAD_REQUEST;
            }
            if e.code == "ResourceNotFoundException" {
                e.message = "The specified log group does not exist.".into();
            } else if e.code == "ResourceConflictException" {
                e.code = "ResourceAlreadyExistsException";
                e.message = "The specified log group already exists".into();
            } else if e.code == "InvalidParameterValueException" || e.code == "InvalidRequestContentException" {
                e.code = "InvalidParameterException";
            }
            e.json_protocol().into_response()
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("Invalid request: {e}")))
}

fn limit(requested: Option<i64>, max: usize) -> Result<usize, ApiError> {
    match requested {
        None => Ok(max),
        Some(n) if n >= 1 && (n as usize) <= max => Ok(n as usize),
        Some(n) => Err(ApiError::invalid(format!("limit {n} is out of range 1..={max}"))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeGroupsIn {
    log_group_name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

fn describe_log_groups(state: &Deps, body: &[u8]) -> Result<Value, ApiError> {
    let input: DescribeGroupsIn = parse(body)?;
    let limit = limit(input.limit, GROUPS_PAGE_MAX)?;
    let mut groups = state.store.describe_log_groups(
        input.log_group_name_prefix.as_deref(),
        input.next_token.as_deref(),
        limit + 1,
    )?;
    let next = (groups.len() > limit).then(|| {
        groups.truncate(limit);
        groups.last().map(|g| g.name.clone())
    });
    let list: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut group = json!({ "logGroupName": g.name, "creationTime": g.created_ms, "storedBytes": g.stored_bytes,
                    "arn": state.arns.log_group(&g.name), "metricFilterCount": 0, "logGroupClass": "STANDARD" });
            if let Some(days) = g.retention {
                group["retentionInDays"] = days.get().into();
            }
            group
        })
        .collect();
    let mut out = json!({ "logGroups": list });
    if let Some(Some(token)) = next {
        out["nextToken"] = token.into();
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeStreamsIn {
    log_group_name: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    next_token: Option<String>,
    limit: Option<i64>,
}

fn describe_log_streams(state: &Deps, body: &[u8]) -> Result<Value, ApiError> {
    let input: DescribeStreamsIn = parse(body)?;
    let group = input.log_group_name.ok_or_else(|| ApiError::invalid("logGroupName is required"))?;
    let by_last_event = match input.order_by.as_deref() {
        None | Some("LogStreamName") => false,
        Some("LastEventTime") => true,
        Some(other) => return Err(ApiError::invalid(format!("Invalid orderBy: {other}"))),
    };
    if by_last_event && input.log_stream_name_prefix.is_some() {
        return Err(ApiError::invalid("Cannot order by LastEventTime with a logStreamNamePrefix."));
    }
    let limit = limit(input.limit, GROUPS_PAGE_MAX)?;
    let (streams, next) = state.store.describe_log_streams(
        &group,
        input.log_stream_name_prefix.as_deref(),
        by_last_event,
        input.descending.unwrap_or(false),
        input.next_token.as_deref(),
        limit,
    )?;
    let list: Vec<Value> = streams
        .iter()
        .map(|s| {
            let mut v = json!({
                "logStreamName": s.name,
                "creationTime": s.created_ms,
                "lastIngestionTime": s.last_ingestion_ms,
                "uploadSequenceToken": "1",
                "arn": format!("{}:log-stream:{}", state.arns.log_group(&group).trim_end_matches(":*"), s.name),
                "storedBytes": s.stored_bytes,
            });
            if let Some(first) = s.first_event_ms {
                v["firstEventTimestamp"] = first.into();
            }
            if let Some(last) = s.last_event_ms {
                v["lastEventTimestamp"] = last.into();
            }
            v
        })
        .collect();
    let mut out = json!({ "logStreams": list });
    if let Some(token) = next {
        out["nextToken"] = token.into();
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetEventsIn {
    log_group_name: Option<String>,
    log_stream_name: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

fn get_log_events(state: &Deps, body: &[u8]) -> Result<Value, ApiError> {
    let input: GetEventsIn = parse(body)?;
    let group = input.log_group_name.ok_or_else(|| ApiError::invalid("logGroupName is required"))?;
    let stream = input.log_stream_name.ok_or_else(|| ApiError::invalid("logStreamName is required"))?;
    let limit = limit(input.limit, EVENTS_PAGE_MAX)?;
    let (events, forward, backward) = state.store.get_log_events(
        &group,
        &stream,
        input.start_time,
        input.end_time,
        input.start_from_head.unwrap_or(false),
        input.next_token.as_deref(),
        limit,
    )?;
    let events: Vec<Value> = events
        .iter()
        .map(|e| json!({ "timestamp": e.timestamp_ms, "message": e.message, "ingestionTime": e.ingestion_ms }))
        .collect();
    Ok(json!({ "events": events, "nextForwardToken": forward, "nextBackwardToken": backward }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterEventsIn {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

fn filter_log_events(state: &Deps, body: &[u8]) -> Result<Value, ApiError> {
    let input: FilterEventsIn = parse(body)?;
    let group = input
        .log_group_name
        .or(input.log_group_identifier)
        .ok_or_else(|| ApiError::invalid("logGroupName is required"))?;
    let limit = limit(input.limit, EVENTS_PAGE_MAX)?;
    if input.filter_pattern.as_ref().is_some_and(|p| p.chars().count() > LOGS_FILTER_PATTERN_CHARS_MAX) {
        // AWS's validation message; the value is left out, as AWS does for values too long to echo.
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value at 'filterPattern' failed to satisfy constraint: Member must \
             have length less than or equal to {LOGS_FILTER_PATTERN_CHARS_MAX}"
        )));
    }
    let (events, next) = state.store.filter_log_events(
        &group,
        input.log_stream_names.as_deref(),
        input.log_stream_name_prefix.as_deref(),
        input.start_time,
        input.end_time,
        input.filter_pattern.as_deref().filter(|p| !p.is_empty()),
        input.next_token.as_deref(),
        limit,
    )?;
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({ "logStreamName": e.stream, "timestamp": e.timestamp_ms, "message": e.message,
                    "ingestionTime": e.ingestion_ms, "eventId": e.id.to_string() })
        })
        .collect();
    let mut out = json!({ "events": events, "searchedLogStreams": [] });
    if let Some(token) = next {
        out["nextToken"] = token.into();
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupIn {
    log_group_name: Option<String>,
}

fn delete_log_group(state: &Deps, body: &[u8]) -> Result<Value, ApiError> {
    let input: GroupIn = parse(body)?;
    let group = input.log_group_name.ok_or_else(|| ApiError::invalid("logGroupName is required"))?;
    state.store.delete_log_group(&group)?;
    Ok(json!({}))
}

/// CloudWatch Logs' rule for group names: 1 to 512 of `[.\-_/#A-Za-z0-9]`.
fn log_group_name(name: Option<String>) -> Result<String, ApiError> {
    let name = name.ok_or_else(|| ApiError::invalid("logGroupName is required"))?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#');
    if name.is_empty() || name.len() > LOG_GROUP_NAME_BYTES_MAX || !name.chars().all(allowed) {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must \
             satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+ and have length between 1 and \
             {LOG_GROUP_NAME_BYTES_MAX}"
        )));
    }
    Ok(name)
}

fn create_log_group(state: &Deps, body: &[u8]) -> Result<Value, ApiError> {
    let input: GroupIn = parse(body)?;
    let group = log_group_name(input.log_group_name)?;
    state.store.create_log_group(&group, crate::clock::now_ms())?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetentionIn {
    log_group_name: Option<String>,
    retention_in_days: Option<i64>,
}

fn put_retention_policy(state: &Deps, body: &[u8]) -> Result<Value, ApiError> {
    let input: RetentionIn = parse(body)?;
    let group = log_group_name(input.log_group_name)?;
    let days = input.retention_in_days.ok_or_else(|| ApiError::invalid("retentionInDays is required"))?;
    let days = LogRetentionDays::new(days).map_err(|e| ApiError::invalid(e.message))?;
    state.store.set_log_retention(&group, Some(days))?;
    Ok(json!({}))
}

fn delete_retention_policy(state: &Deps, body: &[u8]) -> Result<Value, ApiError> {
    let input: GroupIn = parse(body)?;
    let group = log_group_name(input.log_group_name)?;
    state.store.set_log_retention(&group, None)?;
    Ok(json!({}))
}

#[cfg(test)]
mod operation_tests {
    use super::*;

    #[test]
    fn every_operation_has_its_iam_action_and_resource() {
        let arns = crate::arn::Arns { region: "us-east-1".into(), account: "123456789012".into() };
        for op in LogsOperation::ALL {
            let name = format!("{op:?}");
            assert_eq!(LogsOperation::parse(&name), Some(*op));
            assert_eq!(op.action().as_str(), format!("logs:{name}"));
        }
        let body = br#"{"logGroupName": "/aws/lambda/f", "logStreamName": "2026/12/06/[$LATEST]ab"}"#;
        let group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f";
        assert_eq!(resource(&arns, LogsOperation::FilterLogEvents, body), group);
        assert_eq!(
            resource(&arns, LogsOperation::GetLogEvents, body),
            format!("{group}:log-stream:2026/12/06/[$LATEST]ab")
        );
        assert_eq!(
            resource(&arns, LogsOperation::DescribeLogGroups, body),
            "arn:aws:logs:us-east-1:123456789012:log-group::log-stream:"
        );
    }
}
