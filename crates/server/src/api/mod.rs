//! The AWS wire protocols on Nimbus's one endpoint. The other side is any AWS client (SDKs, the AWS
//! CLI, `nimbus` subcommands); nothing it sends is trusted until it is SigV4-verified and parsed into
//! the model's types. The services served are one list (`service.rs`): Lambda (REST-JSON, routed on the
//! path), API Gateway v2 (REST-JSON under `/v2/`, `apigateway`),
//! CloudWatch Logs and SQS (JSON, routed on `X-Amz-Target`), S3 (REST-XML, routed on its scope
//! or host to `crate::s3`, before anything here reads the request); a request's credential scope must
//! name the service it addresses and the server's region. Bodies are read only after the headers are
//! authenticated, within bounds (`body.rs`). Requests whose `Host` names a function URL are taken
//! aside first, before authentication (`function_url`), and so are those naming an HTTP API
//! (`apigateway::serve`).

pub mod apigateway;
pub mod body;
mod code_url;
mod error;
pub mod function_url;
pub mod iam;
mod events;
mod lambda;
pub(crate) mod logs;
pub(crate) mod query;
pub mod service;
pub(crate) mod sqs;
mod sts;

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
    /// S3, served by s3s on the same listener (`crate::s3`).
    pub s3: crate::s3::S3Edge,
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
    /// Renders function URLs and recognises their hosts.
    pub url_hosts: function_url::UrlHosts,
    /// URL configs and their compiled policies, while `nimbus.db` is unchanged.
    pub url_cache: function_url::UrlCache,
    /// HTTP APIs as serving reads them, while `nimbus.db` is unchanged.
    pub api_cache: apigateway::ApiCache,
    pub auth_required: bool,
    pub account_concurrency: u32,
    /// IAM principals' compiled policies, and the decision of their requests.
    pub policies: Arc<crate::policy_cache::PolicyCache>,
    /// The region credential scopes must name (see `service::check_scope`).
    pub region: String,
    /// Request body bytes being received at once, server-wide.
    pub bodies: body::BodyBudget,
    /// Functions being created or updated (`State`/`LastUpdateStatus`).
    pub lifecycle: crate::lifecycle::Lifecycle,
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
        .route("/v2/{*rest}", axum::routing::any(apigateway::dispatch))
        .fallback(unknown)
        // `authenticate` already bounds every body; axum's own 2 MB default would refuse valid invokes.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        // Function URLs are told apart by their Host before authentication: a NONE URL is public.
        .layer(middleware::from_fn_with_state(state.clone(), function_url::edge))
        .layer(middleware::from_fn_with_state(state.clone(), s3_edge))
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

/// S3 requests (by their scope or host, `s3::addressed`) go to the S3 service, which authenticates
/// them from the headers and streams their bodies itself (they may be 5 GB: `body.rs` bounds do not
/// apply); everything else goes on to `authenticate`.
async fn s3_edge(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if crate::s3::addressed(&parts) {
        return state.s3.call(Request::from_parts(parts, body)).await;
    }
    next.run(Request::from_parts(parts, body)).await
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
                Err(e) => return auth_error(&parts, e),
            };
        let caller = checked.caller();
        if let Err(e) = service::check_scope(&caller, &parts, &state.region) {
            return auth_error(&parts, e);
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
            Err(e) => return auth_error(&parts, e),
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// An authentication failure in the protocol the client speaks (the query protocol's XML for IAM and
/// STS, told by the credential scope; JSON otherwise).
fn auth_error(parts: &axum::http::request::Parts, e: auth::AuthError) -> Response {
    let error = ApiError::from(e);
    match query_service(parts) {
        Some(service) => query::error_response(service, &error),
        None => error.into_response(),
    }
}

/// Who a verified caller is, for `authz`: root, or the function whose environment holds the session
/// credential. Each operation's own table then decides from its action and resource.
///
/// IAM users and role sessions are decided by their policies; a function's environment is a session
/// of its execution role (`arn:aws:sts::<account>:assumed-role/<role>/<function>`), so what it may
/// call is exactly what the role's policies allow, read when each request arrives (a policy change
/// applies to running environments at once).
fn identify(state: &ApiState, caller: &Caller) -> Option<Identity> {
    let account = &state.arns.account;
    match &caller.principal {
        auth::Principal::Root => Some(Identity::Root(authz::root_principal(account))),
        auth::Principal::Function => {
            let owner = state.credentials.session_owner(&caller.access_key_id)?;
            let principal = authz::function_session_principal(account, &owner.role_arn, &owner.function);
            Some(Identity::Iam { principal, policies: state.policies.role_by_arn(&owner.role_arn) })
        }
        other => Some(Identity::Iam {
            principal: state.policies.policy_principal(other)?,
            policies: state.policies.compiled(other),
        }),
    }
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
    let identity = request.extensions().get::<Identity>().cloned();
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
        Some(query::Service::Iam) => {
            return iam::dispatch(&state, &body, caller.as_ref(), identity.as_ref(), &request_id);
        }
        Some(query::Service::Sts) => {
            return sts::dispatch(&state, &body, caller.as_ref(), identity.as_ref(), &request_id);
        }
        None => {}
    }
    match service::Service::from_target(&target) {
        Some((service::Service::Logs, operation)) => logs::dispatch(&state, operation, &body, identity.as_ref()).await,
        Some((service::Service::Sqs, operation)) => {
            sqs::dispatch(&state, operation, &body, caller.as_ref(), identity.as_ref()).await
        }
        Some((service::Service::Events, operation)) => {
            events::dispatch(&state, operation, &body, identity.as_ref()).await
        }
        Some((service::Service::Lambda | service::Service::S3 | service::Service::ApiGateway, _)) | None => {
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
