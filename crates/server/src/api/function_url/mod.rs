//! Function URLs on Nimbus's one listener. The other side is any HTTP client — a browser, a webhook,
//! `curl` — and for AuthType `NONE` it is anonymous: nothing it sends is trusted. The edge
//! ([`edge`]) picks URL requests by their `Host` before SigV4 authentication; everything else goes on
//! to the AWS APIs unchanged.
//!
//! A URL request: url-id → config (403 `{"Message":"Forbidden"}` when none) → CORS preflight answered
//! here → body read (at most 6 MB, within the server's body budget and deadline, `api::body`) → access: `NONE` needs the function's
//! resource policy to allow `lambda:InvokeFunctionUrl` (and `lambda:InvokeFunction`, for URLs created
//! since October 2025, i.e. all of Nimbus's) to anonymous callers, decided by `nimbus_model::policy`;
//! `AWS_IAM` needs a valid SigV4 signature for service `lambda` by an identity `authz` lets invoke
//! → payload 2.0 event
//! ([`event`]) → `Invoker::invoke` → the answer interpreted ([`response`]) with CORS headers ([`cors`]);
//! `RESPONSE_STREAM` URLs send the function's bytes as they come ([`streaming`]).

mod cache;
pub(crate) mod cors;
pub(crate) mod event;
mod hosts;
pub(crate) mod response;
mod streaming;

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nimbus_model::limits::SYNC_REQUEST_BYTES_MAX;
use nimbus_model::policy::{self, Action, PolicyDocument, PrincipalKind, RequestContext};
use nimbus_model::{InvokeMode, Qualifier, UrlAuthType};
use nimbus_store::UrlConfig;

pub use cache::{UrlCache, function_policy};
pub use hosts::{BaseError, HostMatch, PublicBase, UrlHosts};

use super::body::{self, BodyError};
use super::{RequestId, SharedState};
use crate::environment::Outcome;
use crate::invoke::{InvokeError, InvokeRequest, Started};

/// AWS's rule of October 2025: URLs created since then need `lambda:InvokeFunction` as well as
/// `lambda:InvokeFunctionUrl` (2025-10-01T00:00:00Z).
const INVOKE_FUNCTION_REQUIRED_SINCE_MS: i64 = 1_759_276_800_000;

static INVOKE_FUNCTION_URL: Action = Action::from_static("lambda:InvokeFunctionUrl");
static INVOKE_FUNCTION: Action = Action::from_static("lambda:InvokeFunction");

fn message(status: StatusCode, text: &str) -> Response {
    let body = serde_json::json!({ "Message": text }).to_string();
    (status, [("content-type", "application/json")], body).into_response()
}

/// API Gateway's error body (`message`, lower-case).
fn message_lower(status: StatusCode, text: &str) -> Response {
    let body = serde_json::json!({ "message": text }).to_string();
    (status, [("content-type", "application/json")], body).into_response()
}

fn forbidden() -> Response {
    message(StatusCode::FORBIDDEN, "Forbidden")
}

/// What Lambda answers when the function failed, timed out or answered with something that is not
/// a response.
fn bad_gateway() -> Response {
    (StatusCode::BAD_GATEWAY, [("content-type", "application/json")], "Internal Server Error").into_response()
}

/// The edge: URL hosts are served here, anything else continues to the AWS APIs.
pub async fn edge(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let bare = host.map(|h| h.to_ascii_lowercase());
    let bare = bare.as_deref().map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name));
    match bare.and_then(|h| crate::api::apigateway::hosts::classify(h.strip_suffix('.').unwrap_or(h), &state.region)) {
        Some(crate::api::apigateway::hosts::ApiHost::Api(id)) => {
            return crate::api::apigateway::serve::serve(&state, &id, request).await;
        }
        Some(crate::api::apigateway::hosts::ApiHost::Malformed) => {
            return message_lower(StatusCode::NOT_FOUND, "Not Found");
        }
        None => {}
    }
    match state.url_hosts.classify(host) {
        HostMatch::Api => next.run(request).await,
        HostMatch::Malformed => forbidden(),
        HostMatch::Url(id) => match state.url_cache.resolve(&state.store, &id) {
            Ok(Some(url)) => serve(&state, url, request).await,
            Ok(None) => forbidden(),
            Err(e) => {
                tracing::error!(error = %e, "reading a function URL config");
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        },
    }
}

async fn serve(state: &SharedState, url: cache::ResolvedUrl, request: Request) -> Response {
    let config = &*url.config;
    let (parts, body) = request.into_parts();
    if let Some(cors) = &config.cors
        && cors::is_preflight(&parts.method, &parts.headers)
    {
        let mut response = StatusCode::OK.into_response();
        response.headers_mut().extend(cors::preflight(cors, &parts.headers));
        return response;
    }
    let too_large = || {
        message(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("Request must be smaller than {SYNC_REQUEST_BYTES_MAX} bytes for the InvokeFunction operation"),
        )
    };
    // The same bounds as every API body: the operation's limit, the server-wide budget of bytes in
    // flight, and a deadline for slow senders.
    let limit = body::OperationLimit { bytes: SYNC_REQUEST_BYTES_MAX, operation: "InvokeFunction" };
    let body = match body::read(body, limit, &state.bodies, None).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge(_)) => return too_large(),
        Err(BodyError::Busy) => return message(StatusCode::TOO_MANY_REQUESTS, "Rate Exceeded."),
        Err(BodyError::TimedOut(_)) => return message(StatusCode::REQUEST_TIMEOUT, "Request Timeout"),
        Err(BodyError::Broken(_)) => return message(StatusCode::BAD_REQUEST, "Bad Request"),
    };
    let source_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "127.0.0.1".to_owned(), |c| c.0.ip().to_string());
    let caller = match config.auth_type {
        UrlAuthType::None => {
            if !public_access_allowed(state, config, url.policy.as_ref(), &source_ip) {
                return message(
                    StatusCode::FORBIDDEN,
                    "Forbidden. For troubleshooting Function URL authorization issues, see: \
                     https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html",
                );
            }
            None
        }
        UrlAuthType::AwsIam => match iam_caller(state, config, &parts, &body) {
            Ok(caller) => Some(caller),
            Err(response) => return *response,
        },
    };
    let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let domain = state.url_hosts.domain(&config.url_id);
    let protocol = format!("{:?}", parts.version);
    let (scheme, port) = state.url_hosts.scheme_and_port();
    let event = event::build(&event::EventInput {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        protocol: &protocol,
        headers: &parts.headers,
        body: &body,
        source_ip,
        scheme,
        port,
        url_id: config.url_id.as_str(),
        domain: &domain,
        request_id: &request_id,
        epoch_ms: crate::clock::now_ms(),
        caller: caller.as_ref(),
        route: None,
    });
    let payload = Bytes::from(event.to_string());
    if payload.len() > SYNC_REQUEST_BYTES_MAX {
        return too_large();
    }
    let invocation = InvokeRequest {
        request_id,
        function: config.function.clone(),
        qualifier: config.alias.clone().map(Qualifier::Alias),
        payload,
        want_log_tail: false,
        client_context: None,
        stream: None,
    };
    let result = match config.invoke_mode {
        InvokeMode::Buffered => state.invoker.invoke(invocation).await.map(Answer::Buffered),
        InvokeMode::ResponseStream => match state.invoker.invoke_streaming(invocation).await {
            Started::Streaming { stream, .. } => Ok(Answer::Streamed(stream)),
            Started::Finished(result) => result.map(Answer::Buffered),
        },
    };
    let mut response = match result {
        Ok(Answer::Buffered(result)) => answer(&result.outcome),
        Ok(Answer::Streamed(stream)) => streaming::answer(stream).await.unwrap_or_else(bad_gateway),
        Err(InvokeError::Throttled(_)) => message(StatusCode::TOO_MANY_REQUESTS, "Rate Exceeded."),
        Err(InvokeError::NotFound { .. }) => forbidden(),
        Err(e) => {
            tracing::error!(error = %e, "function URL invocation");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    if let Some(cors) = &config.cors {
        let added = cors::actual(cors, &parts.headers);
        for (name, _) in &added {
            response.headers_mut().remove(name);
        }
        response.headers_mut().extend(added);
    }
    response
}

enum Answer {
    Buffered(crate::invoke::InvokeResult),
    /// A RESPONSE_STREAM URL's function began streaming.
    Streamed(crate::environment::ResponseStream),
}

/// The function's outcome as the URL's HTTP answer.
fn answer(outcome: &Outcome) -> Response {
    let Outcome::Success { payload } = outcome else { return bad_gateway() };
    match response::interpret(payload) {
        Ok(answer) => {
            let mut response = Response::new(Body::from(answer.body));
            *response.status_mut() = answer.status;
            let headers = response.headers_mut();
            for (name, value) in answer.headers {
                headers.append(name, value);
            }
            response
        }
        Err(e) => {
            tracing::debug!(error = %e, "a function URL's function answered with a malformed response");
            bad_gateway()
        }
    }
}

/// Whether the function's resource policy lets anyone call a `NONE` URL: `lambda:InvokeFunctionUrl`
/// with `lambda:FunctionUrlAuthType` = `NONE`, and (October 2025 on) `lambda:InvokeFunction` with
/// `lambda:InvokedViaFunctionUrl` = `true`.
fn public_access_allowed(
    state: &SharedState,
    config: &UrlConfig,
    document: Option<&PolicyDocument>,
    source_ip: &str,
) -> bool {
    let Some(document) = document else { return false };
    let qualifier = config.alias.clone().map(Qualifier::Alias);
    let resource = state.arns.function(&config.function, qualifier.as_ref());
    let anonymous = policy::Principal {
        arn: String::new(),
        account: String::new(),
        user_id: String::new(),
        kind: PrincipalKind::Anonymous,
    };
    let allowed = |action: &Action, via_url: bool| {
        let mut ctx = RequestContext::new(anonymous.clone(), action.clone(), resource.clone());
        ctx.set("lambda:FunctionUrlAuthType", "NONE").set("aws:SourceIp", source_ip);
        if via_url {
            ctx.set("lambda:InvokedViaFunctionUrl", "true");
        }
        let policies = policy::Policies { resource: Some(document), ..Default::default() };
        policy::evaluate(&policies, &ctx).is_allowed()
    };
    allowed(&INVOKE_FUNCTION_URL, false)
        && (config.created_ms < INVOKE_FUNCTION_REQUIRED_SINCE_MS || allowed(&INVOKE_FUNCTION, true))
}

/// An `AWS_IAM` URL's caller: a SigV4 signature for service `lambda` by a credential Nimbus knows,
/// whose identity may perform `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` on the URL's
/// function (decided by `authz`, as every API request is).
fn iam_caller(
    state: &SharedState,
    config: &UrlConfig,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<event::IamCaller, Box<Response>> {
    let caller = crate::auth::verify(parts, body, std::time::SystemTime::now(), |key| state.credentials.lookup(key))
        .map_err(|e| match e {
            crate::auth::AuthError::MissingAuthentication => Box::new(forbidden()),
            other => Box::new(message(StatusCode::FORBIDDEN, &other.to_string())),
        })?;
    if caller.service != "lambda" {
        return Err(Box::new(message(
            StatusCode::FORBIDDEN,
            &format!("Credential should be scoped to correct service: 'lambda'. (signed for '{}')", caller.service),
        )));
    }
    let identity = super::identify(state, &caller).ok_or_else(|| Box::new(forbidden()))?;
    let resource = state.arns.function(&config.function, config.alias.clone().map(Qualifier::Alias).as_ref());
    for action in [&INVOKE_FUNCTION_URL, &INVOKE_FUNCTION] {
        crate::authz::authorize(Some(&identity), action, &resource)
            .map_err(|denied| Box::new(message(StatusCode::FORBIDDEN, &denied.message)))?;
    }
    let principal = identity.principal();
    let account = state.arns.account.clone();
    Ok(event::IamCaller {
        access_key: caller.access_key_id.clone(),
        caller_id: principal.user_id.clone(),
        user_id: principal.user_id.clone(),
        account_id: account,
        user_arn: principal.arn.clone(),
    })
}
