//! Request bodies, read only once the headers are authenticated (see `authenticate`), and only within
//! bounds: the operation's own limit (refused before a byte is read when `Content-Length` says more),
//! a budget of bytes being received at once by the whole server and one per environment (requests
//! arriving on an environment's in-netns API listener carry its [`EnvironmentBodies`]), and a deadline
//! by which the body must have arrived. The other side is any API client, or a function: a stalled
//! or oversized upload costs the server at most its share of a budget, never unbounded memory.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use nimbus_model::limits;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;

/// The body bytes all requests may be receiving at once.
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl BodyBudget {
    pub fn new(total: usize) -> Self {
        Self { bytes: Arc::new(Semaphore::new(total)), total }
    }
}

/// The body budget of one environment, put on every request its in-netns API listener receives.
#[derive(Clone)]
pub struct EnvironmentBodies(Arc<Semaphore>);

impl Default for EnvironmentBodies {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(limits::ENVIRONMENT_BODY_BYTES_IN_FLIGHT_MAX)))
    }
}

impl EnvironmentBodies {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves this environment's budget for a body of at most `limit` bytes (its declared length,
    /// `size_hint().exact()`, where it has one) and returns the reservation with the deadline the body must arrive by. The
    /// Runtime API's reports (`/response`, `/error`) draw on it too.
    pub async fn reserve(
        &self,
        declared: Option<u64>,
        limit: usize,
    ) -> Result<(OwnedSemaphorePermit, Duration), BodyError> {
        let want = match declared {
            Some(declared) => usize::try_from(declared).unwrap_or(usize::MAX).min(limit),
            None => limit,
        };
        let wait = Duration::from_millis(limits::BODY_BUDGET_WAIT_MS);
        let permit = reserve(&self.0, want.min(limits::ENVIRONMENT_BODY_BYTES_IN_FLIGHT_MAX), wait).await?;
        Ok((permit, deadline(want)))
    }
}

/// How long a body of `len` bytes may take to arrive.
pub fn deadline(len: usize) -> Duration {
    Duration::from_secs(limits::BODY_DEADLINE_BASE_SECS + len as u64 / limits::BODY_BYTES_PER_SEC_MIN)
}

/// The most an operation's request body may hold, and its name for the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationLimit {
    pub bytes: usize,
    pub operation: &'static str,
}

/// The body limit of the operation a request addresses: exact for the operations that carry payloads
/// (Invoke, InvokeAsync, code uploads), generous bounds for the rest (see `limits.rs`).
pub fn limit_for(parts: &Parts) -> OperationLimit {
    let segments: Vec<&str> = parts.uri.path().trim_end_matches('/').split('/').skip(1).collect();
    let method = &parts.method;
    let (bytes, operation) = match segments[..] {
        [""] | [] => (limits::JSON_PROTOCOL_REQUEST_BYTES_MAX, "JSON protocol"),
        ["2015-03-31", "functions", _, "invocations"] if method == Method::POST => {
            (limits::SYNC_REQUEST_BYTES_MAX, "InvokeFunction")
        }
        ["2014-11-13", "functions", _, "invoke-async"] if method == Method::POST => {
            (limits::INVOKE_ASYNC_PAYLOAD_BYTES_MAX, "InvokeAsync")
        }
        ["2015-03-31", "functions"] if method == Method::POST => (limits::CODE_REQUEST_BYTES_MAX, "CreateFunction"),
        ["2015-03-31", "functions", _, "code"] if method == Method::PUT => {
            (limits::CODE_REQUEST_BYTES_MAX, "UpdateFunctionCode")
        }
        _ => (limits::OTHER_REQUEST_BYTES_MAX, "this"),
    };
    OperationLimit { bytes, operation }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("Request must be smaller than {} bytes for the {} operation", .0.bytes, .0.operation)]
    TooLarge(OperationLimit),
    /// The server (or the environment the request comes from) is receiving as much as it may.
    #[error("Rate exceeded")]
    Busy,
    #[error("The request body did not arrive within {0:?}; the connection is closed.")]
    TimedOut(Duration),
    #[error("Could not read the request body")]
    Broken(#[source] axum::Error),
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(_) => ApiError::too_large(e.to_string()),
            BodyError::Busy => {
                let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", e.to_string());
                error.reason = Some("CallerRateLimitExceeded");
                error
            }
            BodyError::TimedOut(_) => {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, "RequestTimeoutException", e.to_string())
            }
            BodyError::Broken(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequestContentException", e.to_string())
            }
        }
    }
}

/// Refuses, before anything is read, a body its `Content-Length` says is over the operation's limit.
pub fn check_declared(body: &Body, limit: OperationLimit) -> Result<(), BodyError> {
    match HttpBody::size_hint(body).exact() {
        Some(declared) if declared > limit.bytes as u64 => Err(BodyError::TooLarge(limit)),
        _ => Ok(()),
    }
}

/// Reads `body` within `limit`, the budgets and the deadline. The budget is held while the body
/// arrives and given back once it is in: what handlers keep afterwards is bounded by their own limits
/// (concurrency, queue sizes).
pub async fn read(
    body: Body,
    limit: OperationLimit,
    budget: &BodyBudget,
    environment: Option<&EnvironmentBodies>,
) -> Result<Bytes, BodyError> {
    // A declared length is what will arrive (hyper stops there); without one (chunked) the request
    // may send up to its operation's limit.
    let want = match HttpBody::size_hint(&body).exact() {
        Some(0) => return Ok(Bytes::new()),
        Some(declared) if declared > limit.bytes as u64 => return Err(BodyError::TooLarge(limit)),
        Some(declared) => declared as usize,
        None => limit.bytes,
    };
    let wait = Duration::from_millis(limits::BODY_BUDGET_WAIT_MS);
    let _global = reserve(&budget.bytes, want.min(budget.total), wait).await?;
    let _environment = match environment {
        // A request larger than an environment's whole budget takes all of it.
        Some(env) => Some(reserve(&env.0, want.min(limits::ENVIRONMENT_BODY_BYTES_IN_FLIGHT_MAX), wait).await?),
        None => None,
    };
    let deadline = deadline(want);
    match tokio::time::timeout(deadline, Limited::new(body, want).collect()).await {
        Err(_) => Err(BodyError::TimedOut(deadline)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge(limit)),
        Ok(Err(e)) => Err(BodyError::Broken(axum::Error::new(e))),
    }
}

async fn reserve(bytes: &Arc<Semaphore>, n: usize, wait: Duration) -> Result<OwnedSemaphorePermit, BodyError> {
    let n = u32::try_from(n).map_err(|_| BodyError::Busy)?;
    match tokio::time::timeout(wait, bytes.clone().acquire_many_owned(n)).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(BodyError::Busy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, path: &str) -> Parts {
        axum::http::Request::builder().method(method).uri(path).body(()).unwrap().into_parts().0
    }

    #[test]
    fn operations_have_their_limits() {
        let cases = [
            ("POST", "/2015-03-31/functions/f/invocations", limits::SYNC_REQUEST_BYTES_MAX, "InvokeFunction"),
            ("POST", "/2014-11-13/functions/f/invoke-async/", limits::INVOKE_ASYNC_PAYLOAD_BYTES_MAX, "InvokeAsync"),
            ("POST", "/2015-03-31/functions", limits::CODE_REQUEST_BYTES_MAX, "CreateFunction"),
            ("POST", "/2015-03-31/functions/", limits::CODE_REQUEST_BYTES_MAX, "CreateFunction"),
            ("PUT", "/2015-03-31/functions/f/code", limits::CODE_REQUEST_BYTES_MAX, "UpdateFunctionCode"),
            ("POST", "/", limits::JSON_PROTOCOL_REQUEST_BYTES_MAX, "JSON protocol"),
            ("PUT", "/2015-03-31/functions/f/configuration", limits::OTHER_REQUEST_BYTES_MAX, "this"),
            // A function named like a route segment is still the route it is on.
            ("DELETE", "/2015-03-31/functions/invocations", limits::OTHER_REQUEST_BYTES_MAX, "this"),
            ("GET", "/2015-03-31/functions/f/invocations", limits::OTHER_REQUEST_BYTES_MAX, "this"),
        ];
        for (method, path, bytes, operation) in cases {
            assert_eq!(limit_for(&parts(method, path)), OperationLimit { bytes, operation }, "{method} {path}");
        }
    }

    #[tokio::test]
    async fn bodies_are_bounded_by_their_limit_and_budgets() {
        let limit = OperationLimit { bytes: 10, operation: "Test" };
        let budget = BodyBudget::new(100);
        assert_eq!(read(Body::from("hello"), limit, &budget, None).await.unwrap(), "hello");
        assert!(matches!(read(Body::from("hello world!"), limit, &budget, None).await, Err(BodyError::TooLarge(_))));
        assert!(matches!(check_declared(&Body::from("hello world!"), limit), Err(BodyError::TooLarge(_))));
        // Nothing is held once a body is in.
        assert_eq!(budget.bytes.available_permits(), 100);
        // Over budget, a request waits (bounded) and is then throttled.
        let held = budget.bytes.clone().try_acquire_many_owned(98).unwrap();
        assert!(matches!(read(Body::from("hello"), limit, &budget, None).await, Err(BodyError::Busy)));
        drop(held);
        // An environment's budget bounds its requests on top of the server's.
        let env = EnvironmentBodies::new();
        let _env_held = env.0.clone().try_acquire_many_owned(limits::ENVIRONMENT_BODY_BYTES_IN_FLIGHT_MAX as u32 - 2);
        assert!(matches!(read(Body::from("hello"), limit, &budget, Some(&env)).await, Err(BodyError::Busy)));
        assert_eq!(read(Body::from("hi"), limit, &budget, Some(&env)).await.unwrap(), "hi");
    }
}
