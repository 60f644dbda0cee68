//! The Runtime API (2018-06-01) one execution environment talks to. The other side is the runtime
//! client inside the environment (our Python/Node bootstraps, awslambdaric, the `lambda_runtime` crate,
//! a curl loop): nothing it sends is trusted. Each environment gets its own listener, so a runtime can
//! only ever see its own invocations; requests are turned into [`RuntimeMsg`]s for that environment's
//! driver, which owns all state.
//!
//! `/next` blocks until there is an event and never times out: the official clients treat a closed or
//! timed-out `/next` as fatal.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Limited};
use nimbus_model::limits::SYNC_RESPONSE_BYTES_MAX;
use tokio::sync::{mpsc, oneshot};

/// The event a `/next` call receives.
#[derive(Debug)]
pub struct NextEvent {
    pub request_id: String,
    pub deadline_ms: i64,
    pub invoked_function_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    pub payload: Bytes,
}

/// What a runtime reported; the driver answers each with the status to send back.
#[derive(Debug)]
pub enum RuntimeMsg {
    Next {
        reply: oneshot::Sender<NextEvent>,
    },
    Response {
        request_id: String,
        body: Bytes,
        reply: oneshot::Sender<Ack>,
    },
    /// The response body passed the sync payload limit; the invocation fails as Lambda's does.
    ResponseTooLarge {
        request_id: String,
        reply: oneshot::Sender<Ack>,
    },
    Error {
        request_id: String,
        error_type: Option<String>,
        body: Bytes,
        reply: oneshot::Sender<Ack>,
    },
    InitError {
        error_type: Option<String>,
        body: Bytes,
        reply: oneshot::Sender<Ack>,
    },
}

/// The driver's verdict on a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Accepted,
    /// The request id is not the invocation in flight (unknown, finished, or someone else's).
    InvalidRequestId,
    /// Init errors after init finished, or a second init error.
    InvalidStateTransition,
    TooLarge,
}

const CHANNEL_MESSAGES_MAX: usize = 8;

pub fn channel() -> (mpsc::Sender<RuntimeMsg>, mpsc::Receiver<RuntimeMsg>) {
    mpsc::channel(CHANNEL_MESSAGES_MAX)
}

pub fn router(tx: mpsc::Sender<RuntimeMsg>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(tx)
}

async fn next(State(tx): State<mpsc::Sender<RuntimeMsg>>) -> Response {
    let (reply, rx) = oneshot::channel();
    if tx.send(RuntimeMsg::Next { reply }).await.is_err() {
        return container_error();
    }
    match rx.await {
        Ok(event) => next_response(event),
        // The environment is shutting down; AWS answers 500 and the runtime should exit.
        Err(_) => container_error(),
    }
}

pub(crate) fn next_response(event: NextEvent) -> Response {
    let mut response = Response::new(Body::from(event.payload));
    let headers = response.headers_mut();
    // awslambdaric crashes on a /next response without Content-Type; AWS always sends one.
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", &event.request_id);
    put("lambda-runtime-deadline-ms", &event.deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", &event.invoked_function_arn);
    put("lambda-runtime-trace-id", &event.trace_id);
    if let Some(cc) = &event.client_context {
        put("lambda-runtime-client-context", cc);
    }
    if let Some(ci) = &event.cognito_identity {
        put("lambda-runtime-cognito-identity", ci);
    }
    response
}

async fn response(
    State(tx): State<mpsc::Sender<RuntimeMsg>>,
    request_id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    let Ok(Path(request_id)) = request_id else { return invalid_request_id() };
    let (reply, rx) = oneshot::channel();
    let msg = match read_limited(body).await {
        Ok(body) => RuntimeMsg::Response { request_id, body, reply },
        Err(BodyError::TooLarge) => RuntimeMsg::ResponseTooLarge { request_id, reply },
        Err(BodyError::Broken) => return bad_request("InvalidRequest", "Could not read the request body"),
    };
    ack(&tx, msg, rx).await
}

async fn error(
    State(tx): State<mpsc::Sender<RuntimeMsg>>,
    request_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(Path(request_id)) = request_id else { return invalid_request_id() };
    let (reply, rx) = oneshot::channel();
    let error_type = error_type_header(&headers);
    let body = match read_limited(body).await {
        Ok(body) => body,
        // An oversized error report is still an error: keep its type, drop its body.
        Err(BodyError::TooLarge) => Bytes::new(),
        Err(BodyError::Broken) => return bad_request("InvalidRequest", "Could not read the request body"),
    };
    ack(&tx, RuntimeMsg::Error { request_id, error_type, body, reply }, rx).await
}

async fn init_error(State(tx): State<mpsc::Sender<RuntimeMsg>>, headers: HeaderMap, body: Body) -> Response {
    let (reply, rx) = oneshot::channel();
    let error_type = error_type_header(&headers);
    let body = read_limited(body).await.unwrap_or_default();
    ack(&tx, RuntimeMsg::InitError { error_type, body, reply }, rx).await
}

fn error_type_header(headers: &HeaderMap) -> Option<String> {
    headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn ack(tx: &mpsc::Sender<RuntimeMsg>, msg: RuntimeMsg, rx: oneshot::Receiver<Ack>) -> Response {
    if tx.send(msg).await.is_err() {
        return container_error();
    }
    match rx.await {
        Ok(Ack::Accepted) => {
            (StatusCode::ACCEPTED, [("content-type", "application/json")], r#"{"status":"OK"}"#).into_response()
        }
        Ok(Ack::InvalidRequestId) => invalid_request_id(),
        Ok(Ack::InvalidStateTransition) => (
            StatusCode::FORBIDDEN,
            json_error("InvalidStateTransition", "State transition from Ready to InitError failed for runtime."),
        )
            .into_response(),
        Ok(Ack::TooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            json_error(
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({SYNC_RESPONSE_BYTES_MAX} bytes)."),
            ),
        )
            .into_response(),
        Err(_) => container_error(),
    }
}

enum BodyError {
    TooLarge,
    Broken,
}

async fn read_limited(body: Body) -> Result<Bytes, BodyError> {
    match Limited::new(body, SYNC_RESPONSE_BYTES_MAX).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Broken),
    }
}

fn json_error(error_type: &str, message: &str) -> ([(&'static str, &'static str); 1], String) {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string();
    ([("content-type", "application/json")], body)
}

fn bad_request(error_type: &str, message: &str) -> Response {
    (StatusCode::BAD_REQUEST, json_error(error_type, message)).into_response()
}

/// An id that is not the invocation in flight, including one that is not even text once decoded
/// (`%e9`): axum's own rejection would answer in plain text, and runtimes expect Lambda's JSON.
fn invalid_request_id() -> Response {
    bad_request("InvalidRequestID", "Invalid request ID")
}

fn container_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, json_error("ContainerError", "The execution environment is shutting down."))
        .into_response()
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    use super::*;

    /// Found by the `runtime_api` fuzz target (fuzz/seeds/runtime_api/crash-ac9a918e…): an id that
    /// does not percent-decode to UTF-8 got axum's plain-text 400, not Lambda's JSON error.
    #[tokio::test]
    async fn undecodable_request_ids_get_the_json_error() {
        for path in ["/2018-06-01/runtime/invocation/%e9f4/response", "/2018-06-01/runtime/invocation/%ff/error"] {
            let (tx, _rx) = channel();
            let request = axum::http::Request::post(path).body(Body::from("{}")).unwrap();
            let response = router(tx).oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["errorType"], "InvalidRequestID", "{path}");
            assert_eq!(v["errorMessage"], "Invalid request ID", "{path}");
        }
    }
}
