//! The AWS wire protocols on Nimbus's one endpoint. The other side is any AWS client (SDKs, the AWS
//! CLI, `nimbus` subcommands); nothing it sends is trusted until it is SigV4-verified and parsed into
//! the model's types. The services served are one list (`service.rs`): Lambda (REST-JSON, routed on the
//! path), CloudWatch Logs and SQS (JSON, routed on `X-Amz-Target`); a request's credential scope must
//! name the service it addresses and the server's region. Bodies are read only after the headers are
//! authenticated, within bounds (`body.rs`).

pub mod body;
mod code_url;
mod error;
mod events;
mod lambda;
mod logs;
pub mod service;
mod sqs;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

pub use code_url::CodeUrls;
pub use error::ApiError;

use crate::auth::{self, Caller};
use crate::authz::{self, Identity};
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
    /// EventBridge's compiled rules and delivery.
    pub rules: Arc<crate::events::bus::Rules>,
    pub arns: crate::arn::Arns,
    pub code_urls: CodeUrls,
    pub auth_required: bool,
    pub account_concurrency: u32,
    /// The region credential scopes must name (see `service::check_scope`).
    pub region: String,
    /// Request body bytes being received at once, server-wide.
    pub bodies: body::BodyBudget,
}

pub type SharedState = Arc<ApiState>;

/// The request id of the request being served; also the invocation's `aws_request_id` on Invoke.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub fn router(state: SharedState) -> Router {
    Router::new()
        .merge(lambda::routes(&state))
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

/// Authenticates a request before any handler runs, and before its body is read as far as the
/// headers allow (`auth::check_headers`: the key, its session token, the date, the scope, and the whole
/// signature when the client signed a payload hash): a request that fails them is refused before a
/// byte of its body is buffered. The body is then read within its operation's limit, the body budgets
/// and a deadline (`body::read`), and the signature checked over it where the body is what was signed.
/// Code downloads carry their own signature (a presigned URL of ours), as S3's presigned URLs do.
async fn authenticate(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with(code_url::PREFIX) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let limit = body::limit_for(&parts);
    let checked = if state.auth_required {
        let checked =
            match auth::check_headers(&parts, std::time::SystemTime::now(), |key| state.credentials.lookup(key)) {
                Ok(checked) => checked,
                Err(e) => return ApiError::from(e).into_response(),
            };
        let caller = checked.caller();
        if let Err(e) = service::check_scope(&caller, &parts, &state.region) {
            return ApiError::from(e).into_response();
        }
        Some(checked)
    } else {
        None
    };
    let environment = parts.extensions.get::<body::EnvironmentBodies>();
    let bytes = match body::read(body, limit, &state.bodies, environment).await {
        Ok(bytes) => bytes,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Some(checked) = checked {
        match checked.finish(&parts, &bytes) {
            Ok(caller) => {
                let Some(identity) = identify(&state, &caller) else {
                    // Revoked between verification and here: as if it never verified.
                    return ApiError::from(auth::AuthError::UnknownAccessKey { access_key_id: caller.access_key_id })
                        .into_response();
                };
                parts.extensions.insert(identity);
                parts.extensions.insert(caller);
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Who a verified caller is, for `authz`: root, or the function whose environment holds the session
/// credential. Each operation's own table then decides from its action and resource.
fn identify(state: &ApiState, caller: &Caller) -> Option<Identity> {
    let account = &state.arns.account;
    if !caller.session {
        return Some(Identity::Root(authz::root_principal(account)));
    }
    let owner = state.credentials.session_owner(&caller.access_key_id)?;
    Some(Identity::FunctionSession(authz::function_session_principal(account, &owner.role_arn, &owner.function)))
}

/// JSON-protocol services share `POST /` and are told apart by `X-Amz-Target`.
async fn json_protocol(State(state): State<SharedState>, request: Request) -> Response {
    let target = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let caller = request.extensions().get::<Caller>().cloned();
    let identity = request.extensions().get::<Identity>().cloned();
    let body = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    match service::Service::from_target(&target) {
        Some((service::Service::Logs, operation)) => logs::dispatch(&state, operation, &body, identity.as_ref()).await,
        Some((service::Service::Sqs, operation)) => {
            sqs::dispatch(&state, operation, &body, caller.as_ref(), identity.as_ref()).await
        }
        Some((service::Service::Events, operation)) => {
            events::dispatch(&state, operation, &body, identity.as_ref()).await
        }
        Some((service::Service::Lambda, _)) | None => {
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
