//! The AWS wire protocols on Nimbus's one endpoint. The other side is any AWS client (SDKs, the AWS
//! CLI, `nimbus` subcommands); nothing it sends is trusted until it is SigV4-verified and parsed into
//! the model's types. Requests are routed by the signing service of their credential scope: `lambda`
//! (REST-JSON, routed on the path) and `logs` (JSON 1.1, routed on `X-Amz-Target`).

mod code_url;
mod error;
pub mod iam;
mod lambda;
mod logs;
pub(crate) mod query;
mod sqs;
mod sts;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use nimbus_model::limits::CODE_REQUEST_BYTES_MAX;

pub use code_url::CodeUrls;
pub use error::ApiError;

use crate::auth::{self, Caller};
use crate::credentials::Credentials;
use crate::invoke::Invoker;
use nimbus_store::Store;

/// Everything request handlers share.
pub struct ApiState {
    pub store: Arc<Store>,
    pub credentials: Arc<Credentials>,
    pub invoker: Arc<Invoker>,
    pub sqs: Arc<crate::sqs::Sqs>,
    pub async_queue: crate::events::async_invoke::AsyncQueue,
    pub mappings: crate::events::mappings::Mappings,
    pub arns: crate::arn::Arns,
    pub code_urls: CodeUrls,
    pub auth_required: bool,
    pub account_concurrency: u32,
    /// IAM principals' compiled policies, and the decision of their requests.
    pub policies: Arc<crate::policy_cache::PolicyCache>,
}

pub type SharedState = Arc<ApiState>;

/// The request id of the request being served; also the invocation's `aws_request_id` on Invoke.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub fn router(state: SharedState) -> Router {
    Router::new()
        .merge(lambda::routes())
        .route("/", axum::routing::post(json_protocol))
        .route(code_url::PATH, axum::routing::get(code_url::download))
        .fallback(unknown)
        // `authenticate` already bounds every body; axum's own 2 MB default would refuse valid invokes.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Gives every request an id and every response the `x-amzn-RequestId` header.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// Buffers the body (bounded) and verifies the request's SigV4 signature before any handler runs.
/// Code downloads carry their own signature (a presigned URL of ours), as S3's presigned URLs do.
async fn authenticate(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with(code_url::PREFIX) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match Limited::new(body, CODE_REQUEST_BYTES_MAX).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return ApiError::too_large(format!("Request must be smaller than {CODE_REQUEST_BYTES_MAX} bytes"))
                .into_response();
        }
    };
    if state.auth_required {
        let verified = auth::verify(&parts, &bytes, std::time::SystemTime::now(), |key| state.credentials.lookup(key));
        match verified {
            Ok(caller) => {
                if matches!(caller.principal, auth::Principal::Function) && changes_functions(&parts) {
                    return session_refused(&caller).into_response();
                }
                parts.extensions.insert(caller);
            }
            Err(e) => {
                let error = ApiError::from(e);
                return match query_service(&parts) {
                    Some(service) => query::error_response(service, &error),
                    None => error.into_response(),
                };
            }
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Whether a request changes Lambda resources (functions, versions, aliases, tags, concurrency,
/// mappings, event invoke configs): every Lambda REST call but reads and invokes. The JSON-protocol
/// services on `/` (SQS, Logs) are data a function works with, not this.
fn changes_functions(parts: &axum::http::request::Parts) -> bool {
    let path = parts.uri.path();
    let reads = matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD);
    let invokes = path.ends_with("/invocations") || path.ends_with("/invoke-async") || path.ends_with("/invoke-async/");
    !reads && !invokes && path != "/"
}

/// A function's session credential may read and invoke functions and use queues and logs, but not
/// change functions: Nimbus has no roles yet to say which function may, and a function that could
/// would undo its own limits (its `nimbus:network` tag) or make another function without them. AWS's
/// basic execution role grants no Lambda changes either.
fn session_refused(caller: &Caller) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "AccessDeniedException",
        format!(
            "User: {} is not authorized to perform this action: a function's session credential may read and \
             invoke functions, not change them",
            caller.access_key_id
        ),
    )
}

/// The query-protocol service (IAM, STS) a request is signed for, read from its credential scope
/// (`Credential=<key>/<date>/<region>/<service>/aws4_request`), so that even a request that failed
/// authentication gets its error in the protocol its client parses.
fn query_service(parts: &axum::http::request::Parts) -> Option<query::Service> {
    let auth = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    query::Service::from_signing_name(credential.split('/').nth(3)?)
}

/// JSON-protocol services share `POST /` and are told apart by `X-Amz-Target`; the query-protocol
/// services (IAM, STS) share it too and are told apart by the signing service of their credential
/// scope (or, with authentication off, by the form's `Version`).
async fn json_protocol(State(state): State<SharedState>, request: Request) -> Response {
    let target = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let caller = request.extensions().get::<Caller>().cloned();
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let body = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let service = match &caller {
        Some(c) => query::Service::from_signing_name(&c.service),
        None if target.is_empty() => query::Form::parse(&body).ok().and_then(|f| match f.get("Version") {
            Some("2010-05-08") => Some(query::Service::Iam),
            Some("2011-06-15") => Some(query::Service::Sts),
            _ => None,
        }),
        None => None,
    };
    match service {
        Some(query::Service::Iam) => return iam::dispatch(&state, &body, caller.as_ref(), &request_id),
        Some(query::Service::Sts) => return sts::dispatch(&state, &body, caller.as_ref(), &request_id),
        None => {}
    }
    match target.split_once('.') {
        Some(("Logs_20140328", operation)) => logs::dispatch(&state, operation, &body).await,
        Some(("AmazonSQS", operation)) => sqs::dispatch(&state, operation, &body, caller.as_ref()).await,
        _ => {
            let service = caller.map(|c| c.service).unwrap_or_default();
            ApiError::unknown_operation("POST", &format!("/ (service {service:?}, target {target:?})"))
                .json_protocol()
                .into_response()
        }
    }
}

async fn unknown(request: Request) -> Response {
    ApiError::unknown_operation(request.method().as_str(), request.uri().path()).into_response()
}
