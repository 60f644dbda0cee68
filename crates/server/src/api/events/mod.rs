//! The EventBridge API (JSON 1.1, `X-Amz-Target: AWSEvents.<Operation>`, SigV4 service `events`), as
//! botocore's `events` 2015-10-07 model defines it: buses, rules, targets, TestEventPattern and
//! PutEvents. The other side is any AWS client; bodies are parsed into the shapes below and refused
//! with AWS's `ValidationException` when they do not fit. Errors are `{"__type", "message"}` with 400
//! (500 for Nimbus's own failures), as the JSON 1.1 protocol has them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_store::StoreError;
use serde_json::{Value, json};

use super::SharedState;
use crate::authz::{self, Identity};
use crate::events::bus::BusError;

mod buses;
pub mod operations;
mod put_events;
mod rules;

use operations::EventsOperation;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceAlreadyExists(String),
    #[error("{0}")]
    Validation(String),
    #[error("Event pattern is not valid. Reason: {0}")]
    InvalidEventPattern(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("the store failed: {0}")]
    Store(#[source] StoreError),
    #[error("delivery failed: {0}")]
    Bus(#[source] BusError),
    #[error("a store task failed: {0}")]
    Join(#[source] tokio::task::JoinError),
}

impl From<StoreError> for EventsError {
    fn from(e: StoreError) -> Self {
        EventsError::Store(e)
    }
}

impl From<tokio::task::JoinError> for EventsError {
    fn from(e: tokio::task::JoinError) -> Self {
        EventsError::Join(e)
    }
}

impl EventsError {
    fn code(&self) -> (&'static str, StatusCode) {
        let bad = StatusCode::BAD_REQUEST;
        match self {
            EventsError::ResourceNotFound(_) => ("ResourceNotFoundException", bad),
            EventsError::ResourceAlreadyExists(_) => ("ResourceAlreadyExistsException", bad),
            EventsError::Validation(_) => ("ValidationException", bad),
            EventsError::InvalidEventPattern(_) => ("InvalidEventPatternException", bad),
            EventsError::LimitExceeded(_) => ("LimitExceededException", bad),
            EventsError::AccessDenied(_) => ("AccessDeniedException", bad),
            EventsError::UnknownOperation(_) => ("UnknownOperationException", bad),
            EventsError::Store(e) if e.is_busy() => ("ThrottlingException", bad),
            EventsError::Store(_) | EventsError::Bus(_) | EventsError::Join(_) => {
                ("InternalException", StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

fn error_response(e: &EventsError) -> Response {
    let (code, status) = e.code();
    if status.is_server_error() {
        tracing::error!(error = %e, "EventBridge request failed");
    }
    let body = json!({ "__type": code, "message": e.to_string() });
    (status, [("content-type", CONTENT_TYPE)], body.to_string()).into_response()
}

/// Serves one EventBridge request after deciding it (`authz`) from its operation's row.
pub async fn dispatch(state: &SharedState, operation: &str, body: &[u8], identity: Option<&Identity>) -> Response {
    let Some(op) = EventsOperation::parse(operation) else {
        return error_response(&EventsError::UnknownOperation(format!("AWSEvents.{operation}")));
    };
    let body: Value = match if body.is_empty() { Ok(json!({})) } else { serde_json::from_slice(body) } {
        Ok(v @ Value::Object(_)) => v,
        _ => return error_response(&EventsError::Validation("The request body is not a JSON object.".into())),
    };
    let resource = operations::resource(&state.arns, op, &body);
    if let Err(denied) = authz::authorize(identity, &op.action(), &resource) {
        return error_response(&EventsError::AccessDenied(denied.message));
    }
    use EventsOperation as Op;
    let result = match op {
        Op::CreateEventBus => buses::create(state, &body).await,
        Op::DescribeEventBus => buses::describe(state, &body).await,
        Op::DeleteEventBus => buses::delete(state, &body).await,
        Op::ListEventBuses => buses::list(state, &body).await,
        Op::PutRule => rules::put_rule(state, &body).await,
        Op::DescribeRule => rules::describe_rule(state, &body).await,
        Op::DeleteRule => rules::delete_rule(state, &body).await,
        Op::EnableRule => rules::set_enabled(state, &body, true).await,
        Op::DisableRule => rules::set_enabled(state, &body, false).await,
        Op::ListRules => rules::list_rules(state, &body).await,
        Op::PutTargets => rules::put_targets(state, &body).await,
        Op::RemoveTargets => rules::remove_targets(state, &body).await,
        Op::ListTargetsByRule => rules::list_targets(state, &body).await,
        Op::TestEventPattern => rules::test_event_pattern(&body),
        Op::PutEvents => put_events::put_events(state, &body).await,
    };
    match result {
        Ok(value) => ([("content-type", CONTENT_TYPE)], value.to_string()).into_response(),
        Err(e) => error_response(&e),
    }
}

/// An optional string member; a member of another type is AWS's serialization error.
fn opt_str<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, EventsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(EventsError::Validation(format!("Value for {key} must be a string."))),
    }
}

fn req_str<'a>(body: &'a Value, key: &str, wire: &str) -> Result<&'a str, EventsError> {
    opt_str(body, key)?.ok_or_else(|| {
        EventsError::Validation(format!(
            "1 validation error detected: Value null at '{wire}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// AWS's constraint message for a name (rules: `[\.\-_A-Za-z0-9]+`, 1–64; buses also allow `/`, 1–256).
fn check_name(value: &str, wire: &str, max: usize, slash: bool) -> Result<(), EventsError> {
    let pattern = if slash { r"[/\.\-_A-Za-z0-9]+" } else { r"[\.\-_A-Za-z0-9]+" };
    let fits = value.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c) || (slash && c == '/'));
    if value.is_empty() || value.len() > max {
        return Err(EventsError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{wire}' failed to satisfy constraint: Member must have length \
             less than or equal to {max}"
        )));
    }
    if !fits {
        return Err(EventsError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{wire}' failed to satisfy constraint: Member must satisfy \
             regular expression pattern: {pattern}"
        )));
    }
    Ok(())
}

/// Seconds since the epoch, as JSON 1.1 sends timestamps.
fn epoch_seconds(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, EventsError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}
