//! Invoke (RequestResponse, Event, DryRun) and the deprecated InvokeAsync.

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use nimbus_model::limits::{ASYNC_PAYLOAD_BYTES_MAX, INVOKE_ASYNC_PAYLOAD_BYTES_MAX, SYNC_REQUEST_BYTES_MAX};

use super::shapes::QualifierQuery;
use super::target;
use crate::api::{ApiError, RequestId, SharedState};
use crate::invoke::{InvokeRequest, InvokeResult};

/// `X-Amz-Client-Context` is base64 of a JSON object, at most 3583 bytes as sent.
const CLIENT_CONTEXT_BYTES_MAX: usize = 3583;

enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn invoke(
    State(state): State<SharedState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(raw): Path<String>,
    Query(q): Query<QualifierQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = match header(&headers, "x-amz-invocation-type").unwrap_or("RequestResponse") {
        "RequestResponse" => InvocationType::RequestResponse,
        "Event" => InvocationType::Event,
        "DryRun" => InvocationType::DryRun,
        other => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            )));
        }
    };
    let want_log_tail = match header(&headers, "x-amz-log-type").unwrap_or("None") {
        "None" => false,
        "Tail" => true,
        other => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]"
            )));
        }
    };
    let (name, qualifier) = target(&state, &raw, q.qualifier.as_deref())?;
    invocable(&state, &name)?;
    match kind {
        InvocationType::Event if body.len() > ASYNC_PAYLOAD_BYTES_MAX => {
            return Err(ApiError::too_large(format!(
                "{} byte payload is too large for the Event invocation type (limit {ASYNC_PAYLOAD_BYTES_MAX} bytes)",
                body.len()
            )));
        }
        _ if body.len() > SYNC_REQUEST_BYTES_MAX => {
            return Err(ApiError::too_large(format!(
                "Request must be smaller than {SYNC_REQUEST_BYTES_MAX} bytes for the InvokeFunction operation"
            )));
        }
        _ => {}
    }
    // Lambda refuses an event that is not JSON before anything runs.
    if !body.is_empty()
        && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body)
    {
        return Err(ApiError::bad_json(format!("Could not parse payload into json: {e}")));
    }
    let client_context = match header(&headers, "x-amz-client-context") {
        None => None,
        Some(cc) => Some(decode_client_context(cc)?),
    };
    let request = InvokeRequest {
        request_id,
        function: name,
        qualifier,
        // Lambda hands a function `{}` when it was invoked with no payload.
        payload: if body.is_empty() { Bytes::from_static(b"{}") } else { body },
        want_log_tail,
        client_context,
        stream: None,
    };
    match kind {
        InvocationType::DryRun => {
            state.invoker.resolve(&request.function, request.qualifier.as_ref())?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        InvocationType::Event => {
            state.invoker.resolve(&request.function, request.qualifier.as_ref())?;
            accept_event(&state, request).await?;
            // No `X-Amz-Executed-Version`: AWS sends it only for synchronous invocations (the version
            // an asynchronous one runs is chosen when it runs).
            Ok(StatusCode::ACCEPTED.into_response())
        }
        InvocationType::RequestResponse => {
            let result = state.invoker.invoke(request).await?;
            Ok(sync_response(result))
        }
    }
}

/// A function still `Pending` (or `Failed`) cannot be invoked: AWS answers ResourceConflictException.
fn invocable(state: &SharedState, name: &nimbus_model::FunctionName) -> Result<(), ApiError> {
    state.lifecycle.check_invocable(name).map_err(|b| super::functions::busy(state, name, &b))
}

/// Writes an `Event` invocation to the async journal; returns once it is committed to disk, so the
/// 202 that follows is a promise kept across crashes. The dispatcher (`events::async_invoke`) runs it.
async fn accept_event(state: &SharedState, request: InvokeRequest) -> Result<(), ApiError> {
    let event = nimbus_store::NewAsyncEvent {
        request_id: request.request_id,
        function: request.function,
        qualifier: request.qualifier.map(|q| q.to_string()),
        payload: request.payload.to_vec(),
        client_context: request.client_context,
        now_ms: crate::clock::now_ms(),
    };
    state.async_queue.accept(event).await.map_err(|e| {
        if !matches!(e, crate::events::async_invoke::AcceptError::BelowReserve(_)) {
            tracing::error!(error = %e, "accepting an async invocation");
        }
        ApiError::service(format!("The event could not be stored: {e}"))
    })
}

fn sync_response(result: InvokeResult) -> Response {
    let function_error = result.outcome.is_function_error();
    let mut response = Response::new(Body::from(result.outcome.payload().clone()));
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&result.executed_version) {
        headers.insert("x-amz-executed-version", v);
    }
    if function_error {
        headers.insert("x-amz-function-error", HeaderValue::from_static("Unhandled"));
    }
    if let Some(tail) = result.log_tail {
        let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
        if let Ok(v) = HeaderValue::from_str(&encoded) {
            headers.insert("x-amz-log-result", v);
        }
    }
    if let Some(init) = result.init_duration {
        // Not an AWS header: tells benchmarks and curious users that this call paid for a cold start.
        if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", init.as_secs_f64() * 1000.0)) {
            headers.insert("x-nimbus-init-duration-ms", v);
        }
    }
    response
}

fn decode_client_context(encoded: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid("Client context must be a valid Base64-encoded JSON object.");
    if encoded.len() > CLIENT_CONTEXT_BYTES_MAX {
        return Err(ApiError::invalid(format!("Client context must be at most {CLIENT_CONTEXT_BYTES_MAX} bytes")));
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| invalid())?;
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(_)) => String::from_utf8(bytes).map_err(|_| invalid()),
        _ => Err(invalid()),
    }
}

/// InvokeAsync (deprecated): the body is the event, the answer 202 `{"Status": 202}`.
pub async fn invoke_async(
    State(state): State<SharedState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.len() > INVOKE_ASYNC_PAYLOAD_BYTES_MAX {
        return Err(ApiError::too_large(format!(
            "{} byte payload is too large for the Event invocation type (limit {INVOKE_ASYNC_PAYLOAD_BYTES_MAX} bytes)",
            body.len()
        )));
    }
    let (name, qualifier) = target(&state, &raw, None)?;
    invocable(&state, &name)?;
    let request = InvokeRequest {
        request_id,
        function: name,
        qualifier,
        payload: if body.is_empty() { Bytes::from_static(b"{}") } else { body },
        want_log_tail: false,
        client_context: None,
        stream: None,
    };
    state.invoker.resolve(&request.function, request.qualifier.as_ref())?;
    accept_event(&state, request).await?;
    Ok((StatusCode::ACCEPTED, [("content-type", "application/json")], r#"{"Status":202}"#).into_response())
}
