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
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use http_body_util::{BodyExt, Limited};
use std::time::{Duration, Instant};

use nimbus_model::limits::{
    STREAM_CAPPED_BYTES_PER_SEC, STREAM_UNCAPPED_BYTES, STREAMED_RESPONSE_BYTES_MAX, SYNC_RESPONSE_BYTES_MAX,
};
use tokio::sync::{mpsc, oneshot};

use crate::api::body::EnvironmentBodies;
use crate::environment::{ResponseStream, StreamSlot};

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
    /// A streamed response (`Lambda-Runtime-Function-Response-Mode: streaming`) begins: the driver
    /// answers with where it goes (`None`: the caller takes a buffered answer).
    StreamStart {
        request_id: String,
        reply: oneshot::Sender<Result<Option<StreamSlot>, Ack>>,
    },
    /// A streamed response ended: its body was complete, or the runtime reported an error in its
    /// trailers, or it passed the limit.
    StreamEnd {
        request_id: String,
        end: StreamEnd,
        reply: oneshot::Sender<Ack>,
    },
}

/// How a streamed response ended.
#[derive(Debug)]
pub enum StreamEnd {
    /// The body as collected when the caller did not stream (empty when it did).
    Complete {
        buffered: Bytes,
    },
    /// `Lambda-Runtime-Function-Error-Type` / `-Body` trailers (or a body cut off mid-way).
    Error {
        error_type: Option<String>,
        body: Bytes,
    },
    TooLarge {
        limit: usize,
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

/// The environment's body budget, put on every request by its listener (absent in unit tests).
type Bodies = Option<Extension<EnvironmentBodies>>;

async fn response(
    State(tx): State<mpsc::Sender<RuntimeMsg>>,
    request_id: Result<Path<String>, PathRejection>,
    bodies: Bodies,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(Path(request_id)) = request_id else { return invalid_request_id() };
    let streaming = headers
        .get("lambda-runtime-function-response-mode")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"streaming"));
    if streaming {
        // Not held against the environment's body budget: a streamed body is never buffered beyond
        // a few chunks (or the sync limit for a caller that does not stream).
        return streamed_response(&tx, request_id, &headers, body).await;
    }
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
    request_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    bodies: Bodies,
    body: Body,
) -> Response {
    let Ok(Path(request_id)) = request_id else { return invalid_request_id() };
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

/// Chunks in flight between a streaming runtime and its caller; a slow caller slows the runtime's
/// upload rather than growing a buffer.
const STREAM_CHUNKS_IN_FLIGHT: usize = 16;

/// A streamed response: its bytes go to the caller as they arrive (or are collected, within the sync
/// limit, for a caller that does not stream); the error trailers, if any, end it as a function error.
async fn streamed_response(
    tx: &mpsc::Sender<RuntimeMsg>,
    request_id: String,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let (reply, rx) = oneshot::channel();
    if tx.send(RuntimeMsg::StreamStart { request_id: request_id.clone(), reply }).await.is_err() {
        return container_error();
    }
    let slot = match rx.await {
        Ok(Ok(slot)) => slot,
        Ok(Err(ack)) => return ack_response(Ok(ack)),
        Err(_) => return container_error(),
    };
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (chunk_tx, chunk_rx) = mpsc::channel(STREAM_CHUNKS_IN_FLIGHT);
    let sink = slot
        .and_then(|s| s.take())
        .and_then(|caller| caller.send(ResponseStream { content_type, chunks: chunk_rx }).ok())
        .map(|()| chunk_tx);
    let limit = if sink.is_some() { STREAMED_RESPONSE_BYTES_MAX } else { SYNC_RESPONSE_BYTES_MAX };
    let mut buffered = bytes::BytesMut::new();
    let mut total = 0usize;
    // When the response passed the uncapped bytes (the bandwidth cap's clock).
    let mut capped_since: Option<Instant> = None;
    let mut body = body;
    let end = loop {
        match body.frame().await {
            None => break StreamEnd::Complete { buffered: buffered.split().freeze() },
            Some(Err(_)) => {
                break StreamEnd::Error {
                    error_type: Some("Runtime.TruncatedResponse".into()),
                    body: Bytes::from_static(b"The response stream was cut off."),
                };
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    total += data.len();
                    if total > limit {
                        break StreamEnd::TooLarge { limit };
                    }
                    match &sink {
                        // A caller that went away no longer reads; the rest is drained and dropped.
                        Some(sink) => {
                            let delay =
                                pace(total, data.len(), capped_since.get_or_insert_with(Instant::now).elapsed());
                            if total <= STREAM_UNCAPPED_BYTES {
                                capped_since = None;
                            }
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            let _ = sink.send(data).await;
                        }
                        None => buffered.extend_from_slice(&data),
                    }
                }
                Err(frame) => {
                    if let Some(trailers) = frame.into_trailers().ok()
                        && let Some(error_type) = error_type_header(&trailers)
                    {
                        let body = trailers
                            .get("lambda-runtime-function-error-body")
                            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).ok())
                            .map(Bytes::from)
                            .unwrap_or_default();
                        break StreamEnd::Error { error_type: Some(error_type), body };
                    }
                }
            },
        }
    };
    drop(sink);
    let too_large = matches!(end, StreamEnd::TooLarge { .. });
    let (reply, rx) = oneshot::channel();
    if tx.send(RuntimeMsg::StreamEnd { request_id, end, reply }).await.is_err() {
        return container_error();
    }
    match rx.await {
        Ok(Ack::Accepted) if too_large => ack_response(Ok(Ack::TooLarge)),
        other => ack_response(other.map_err(|_| ())),
    }
}

/// How long to hold a chunk so that what a stream sends past its first [`STREAM_UNCAPPED_BYTES`]
/// goes at most [`STREAM_CAPPED_BYTES_PER_SEC`], as Lambda paces streamed responses. `total` counts
/// `chunk` already; `elapsed` is the time since the stream passed the uncapped bytes.
fn pace(total: usize, chunk: usize, elapsed: Duration) -> Duration {
    if total <= STREAM_UNCAPPED_BYTES {
        return Duration::ZERO;
    }
    // The capped bytes before this chunk may have taken this long; holding this chunk until they
    // have keeps the average at the cap.
    let capped_before = (total - chunk).saturating_sub(STREAM_UNCAPPED_BYTES) as u64;
    let due = Duration::from_secs_f64(capped_before as f64 / STREAM_CAPPED_BYTES_PER_SEC as f64);
    due.saturating_sub(elapsed)
}

fn error_type_header(headers: &HeaderMap) -> Option<String> {
    headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn ack(tx: &mpsc::Sender<RuntimeMsg>, msg: RuntimeMsg, rx: oneshot::Receiver<Ack>) -> Response {
    if tx.send(msg).await.is_err() {
        return container_error();
    }
    ack_response(rx.await.map_err(|_| ()))
}

fn ack_response(ack: Result<Ack, ()>) -> Response {
    match ack {
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

    #[test]
    fn streams_are_paced_past_the_uncapped_bytes() {
        let mb = 1024 * 1024;
        let cases = [
            // Within the first 6 MB: never held.
            (mb, mb, Duration::ZERO, Duration::ZERO),
            (6 * mb, mb, Duration::ZERO, Duration::ZERO),
            // The first capped chunk goes at once; the next waits for the one before it at 2 MB/s.
            (6 * mb + mb, mb, Duration::ZERO, Duration::ZERO),
            (8 * mb, mb, Duration::ZERO, Duration::from_millis(500)),
            (8 * mb, mb, Duration::from_millis(200), Duration::from_millis(300)),
            (10 * mb, mb, Duration::from_secs(5), Duration::ZERO),
        ];
        for (total, chunk, elapsed, want) in cases {
            assert_eq!(pace(total, chunk, elapsed), want, "{total} {chunk} {elapsed:?}");
        }
    }


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
