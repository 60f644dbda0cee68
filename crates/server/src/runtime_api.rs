//! The Runtime API (2018-06-01) one execution environment talks to. The other side is the runtime
//! client inside the environment (our Python/Node bootstraps, awslambdaric, the `lambda_runtime` crate,
//! a curl loop): nothing it sends is trusted. Each environment gets its own listener, so a runtime can
//! only ever see its own invocations; requests are turned into [`RuntimeMsg`]s for that environment's
//! driver, which owns all state.
//!
//! `/next` blocks until there is an event and never times out: the official clients treat a closed or
//! timed-out `/next` as fatal.

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Limited};
use nimbus_model::limits::SYNC_RESPONSE_BYTES_MAX;
use tokio::sync::{mpsc, oneshot};

use crate::api::body::EnvironmentBodies;

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

fn next_response(event: NextEvent) -> Response {
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

/// The environment's body budget, put on every request by its listener (absent in unit tests).
type Bodies = Option<Extension<EnvironmentBodies>>;

async fn response(
    State(tx): State<mpsc::Sender<RuntimeMsg>>,
    Path(request_id): Path<String>,
    bodies: Bodies,
    body: Body,
) -> Response {
    let (reply, rx) = oneshot::channel();
    let msg = match read_limited(body, bodies).await {
        Ok(body) => RuntimeMsg::Response { request_id, body, reply },
        Err(BodyError::TooLarge) => RuntimeMsg::ResponseTooLarge { request_id, reply },
        Err(e) => return e.into_response(),
    };
    ack(&tx, msg, rx).await
}

async fn error(
    State(tx): State<mpsc::Sender<RuntimeMsg>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    bodies: Bodies,
    body: Body,
) -> Response {
    let (reply, rx) = oneshot::channel();
    let error_type = error_type_header(&headers);
    let body = match read_limited(body, bodies).await {
        Ok(body) => body,
        // An oversized error report is still an error: keep its type, drop its body.
        Err(BodyError::TooLarge) => Bytes::new(),
        Err(e) => return e.into_response(),
    };
    ack(&tx, RuntimeMsg::Error { request_id, error_type, body, reply }, rx).await
}

async fn init_error(
    State(tx): State<mpsc::Sender<RuntimeMsg>>,
    headers: HeaderMap,
    bodies: Bodies,
    body: Body,
) -> Response {
    let (reply, rx) = oneshot::channel();
    let error_type = error_type_header(&headers);
    let body = match read_limited(body, bodies).await {
        Ok(body) => body,
        Err(BodyError::TooLarge | BodyError::Broken) => Bytes::new(),
        Err(e) => return e.into_response(),
    };
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
        Ok(Ack::InvalidRequestId) => bad_request("InvalidRequestID", "Invalid request ID"),
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
    /// The environment's body budget is taken (by its own requests: only a runtime misbehaving on
    /// purpose gets here).
    Busy,
    TimedOut,
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        match self {
            BodyError::Busy => {
                (StatusCode::TOO_MANY_REQUESTS, json_error("TooManyRequestsException", "Rate exceeded")).into_response()
            }
            BodyError::TimedOut => {
                (StatusCode::REQUEST_TIMEOUT, json_error("RequestTimeout", "The request body did not arrive in time."))
                    .into_response()
            }
            BodyError::TooLarge | BodyError::Broken => bad_request("InvalidRequest", "Could not read the request body"),
        }
    }
}

/// Reads a report's body, within the sync response limit, the environment's body budget (shared with
/// its API requests) and a deadline, so a runtime cannot make Nimbus hold more than its share.
async fn read_limited(body: Body, bodies: Bodies) -> Result<Bytes, BodyError> {
    let held = match &bodies {
        Some(Extension(bodies)) => Some(
            bodies
                .reserve(axum::body::HttpBody::size_hint(&body).exact(), SYNC_RESPONSE_BYTES_MAX + 1)
                .await
                .map_err(|_| BodyError::Busy)?,
        ),
        None => None,
    };
    let deadline = held.as_ref().map_or(crate::api::body::deadline(SYNC_RESPONSE_BYTES_MAX), |(_, d)| *d);
    match tokio::time::timeout(deadline, Limited::new(body, SYNC_RESPONSE_BYTES_MAX).collect()).await {
        Err(_) => Err(BodyError::TimedOut),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Broken),
    }
}

fn json_error(error_type: &str, message: &str) -> ([(&'static str, &'static str); 1], String) {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string();
    ([("content-type", "application/json")], body)
}

fn bad_request(error_type: &str, message: &str) -> Response {
    (StatusCode::BAD_REQUEST, json_error(error_type, message)).into_response()
}

fn container_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, json_error("ContainerError", "The execution environment is shutting down."))
        .into_response()
}
