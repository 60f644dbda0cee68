//! Serving HTTP APIs on Nimbus's listener: `http://<api-id>.execute-api.localhost:<port>/<stage>/<path>`
//! (no stage segment for `$default`). The other side is any HTTP client, anonymous (routes have
//! authorization `NONE`): nothing it sends is trusted. The `Host` picks the API (`hosts`), the first
//! path segment a named stage (else `$default`), the stage's deployment the routes, and
//! `nimbus_model::http_api::select` the route in API Gateway's precedence. The function is invoked only
//! if its resource policy lets `apigateway.amazonaws.com` invoke it from this API's source ARN, as on
//! AWS; the event is payload 2.0 (`function_url::event`, with the route's context) or 1.0
//! (`payload_v1`), and the answer is mapped by the format's rules. Errors are API Gateway's
//! `{"message": …}` bodies: 404 Not Found, 413, 500 Internal Server Error (no permission, the function
//! failed or answered something that is not a response), 503 on the integration timeout.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_model::Cors;
use nimbus_model::http_api::{ApiCors, HttpApi, RouteKey, select};
use nimbus_model::policy::{self, Action, PrincipalKind, RequestContext};
use nimbus_model::{FunctionRef, Qualifier};
use nimbus_store::{PolicyScope, StoreError, VersionId};

use super::control::function_arn;
use super::payload_v1;
use crate::api::body::{self, BodyError};
use crate::api::function_url::{cors, event, function_policy, response};
use crate::api::{RequestId, SharedState};
use crate::environment::Outcome;
use crate::invoke::{InvokeError, InvokeRequest};

/// HTTP APIs' request payload quota (Lambda's own 6 MB then bounds the event).
pub const PAYLOAD_MAX: usize = 10 * 1024 * 1024;
const APIGATEWAY: &str = "apigateway.amazonaws.com";
static INVOKE_FUNCTION: Action = Action::from_static("lambda:InvokeFunction");

fn message(status: StatusCode, text: &str) -> Response {
    let body = serde_json::json!({ "message": text }).to_string();
    (status, [("content-type", "application/json")], body).into_response()
}

fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found")
}

fn internal() -> Response {
    message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

fn to_cors(c: &ApiCors) -> Cors {
    Cors {
        allow_credentials: c.allow_credentials,
        allow_headers: c.allow_headers.clone(),
        allow_methods: c.allow_methods.clone(),
        allow_origins: c.allow_origins.clone(),
        expose_headers: c.expose_headers.clone(),
        max_age: c.max_age,
    }
}

/// One request to the API `api_id`.
pub async fn serve(state: &SharedState, api_id: &str, request: Request) -> Response {
    let api = match state.api_cache.resolve(&state.store, api_id) {
        Ok(Some(api)) if !api.disable_execute_api_endpoint => api,
        Ok(_) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "reading an HTTP API");
            return internal();
        }
    };
    let (parts, body) = request.into_parts();
    let cors = api.cors_configuration.as_ref().map(to_cors);
    if let Some(cors) = &cors
        && cors::is_preflight(&parts.method, &parts.headers)
    {
        // API Gateway answers preflights itself when the API has a CORS configuration.
        let mut response = StatusCode::NO_CONTENT.into_response();
        response.headers_mut().extend(cors::preflight(cors, &parts.headers));
        return response;
    }
    let full_path = parts.uri.path().to_owned();
    let Some((stage, path)) = stage_of(&api, &full_path) else { return not_found() };
    let limit = body::OperationLimit { bytes: PAYLOAD_MAX, operation: "HTTP API" };
    let body = match body::read(body, limit, &state.bodies, None).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge(_)) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
        Err(BodyError::Busy) => return message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
        Err(BodyError::TimedOut(_)) => return message(StatusCode::REQUEST_TIMEOUT, "Request Timeout"),
        Err(BodyError::Broken(_)) => return message(StatusCode::BAD_REQUEST, "Bad Request"),
    };
    let stage_def = api.stages.iter().find(|s| s.stage_name == stage);
    let Some(stage_def) = stage_def else { return not_found() };
    let Some(deployment) =
        stage_def.deployment_id.as_ref().and_then(|id| api.deployments.iter().find(|d| &d.deployment_id == id))
    else {
        return not_found();
    };
    let keys: Vec<(RouteKey, usize)> = deployment
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| RouteKey::parse(&r.route_key).ok().map(|k| (k, i)))
        .collect();
    let Some((index, path_parameters)) = select(keys.iter().map(|(k, i)| (k, *i)), parts.method.as_str(), &path) else {
        return not_found();
    };
    let route = &deployment.routes[index];
    let integration = route
        .target
        .as_deref()
        .and_then(|t| t.strip_prefix("integrations/"))
        .and_then(|id| deployment.integrations.iter().find(|i| i.integration_id == id));
    let Some(integration) = integration else { return internal() };
    let Some(function) = function_arn(&integration.integration_uri).and_then(|a| FunctionRef::parse(a).ok()) else {
        return internal();
    };
    let arn_prefix =
        format!("arn:aws:execute-api:{}:{}:{}/{}", state.arns.region, state.arns.account, api.api_id, stage);
    // The source ARN API Gateway invokes with names the route (its path template, as the statements
    // CDK and the console add, `<api-id>/*/*/items/{id}`); `$default` for the `$default` route.
    let source_arn = match route.route_key.split_once(' ') {
        Some((_, route_path)) => format!("{arn_prefix}/{}{route_path}", parts.method.as_str()),
        None => format!("{arn_prefix}/$default"),
    };
    match invoke_allowed(state, &function, &source_arn) {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(%source_arn, function = %function.name, "no resource-policy statement lets API Gateway invoke");
            return internal();
        }
        Err(e) => {
            tracing::error!(error = %e, "reading a function policy");
            return internal();
        }
    }
    let caller = if route.authorization_type == "AWS_IAM" {
        // execute-api:Invoke is decided on the requested path (`<api-id>/<stage>/<METHOD>/<path>`).
        let route_arn = format!("{arn_prefix}/{}{path}", parts.method.as_str());
        match iam_caller(state, &parts, &body, &route_arn) {
            Ok(caller) => Some(caller),
            Err(response) => return *response,
        }
    } else {
        None
    };
    let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let source_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "127.0.0.1".to_owned(), |c| c.0.ip().to_string());
    let domain = super::hosts::domain(state, &api.api_id);
    let protocol = format!("{:?}", parts.version);
    let epoch_ms = crate::clock::now_ms();
    let resource = match route.route_key.split_once(' ') {
        Some((_, p)) => p.to_owned(),
        None => route.route_key.clone(),
    };
    let v1 = integration.payload_format_version == "1.0";
    let event = if v1 {
        payload_v1::build(&payload_v1::V1Input {
            method: parts.method.as_str(),
            path: &full_path,
            query: parts.uri.query(),
            protocol: &protocol,
            headers: &parts.headers,
            body: &body,
            source_ip: &source_ip,
            account_id: &state.arns.account,
            api_id: &api.api_id,
            domain: &domain,
            request_id: &request_id,
            epoch_ms,
            stage,
            route_key: &route.route_key,
            resource: &resource,
            path_parameters: &path_parameters,
            stage_variables: &stage_def.stage_variables,
            caller: caller.as_ref(),
        })
    } else {
        let route_context = event::RouteContext {
            account_id: &state.arns.account,
            route_key: &route.route_key,
            stage,
            path_parameters: &path_parameters,
            stage_variables: &stage_def.stage_variables,
        };
        event::build(&event::EventInput {
            method: &parts.method,
            path: &full_path,
            query: parts.uri.query(),
            protocol: &protocol,
            headers: &parts.headers,
            body: &body,
            source_ip,
            scheme: "http",
            port: state.url_hosts.listener_port(),
            url_id: &api.api_id,
            domain: &domain,
            request_id: &request_id,
            epoch_ms,
            caller: caller.as_ref(),
            route: Some(&route_context),
        })
    };
    let payload = Bytes::from(event.to_string());
    if payload.len() > nimbus_model::limits::SYNC_REQUEST_BYTES_MAX {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    }
    let invocation = InvokeRequest {
        request_id,
        function: function.name.clone(),
        qualifier: function.qualifier.clone(),
        payload,
        want_log_tail: false,
        client_context: None,
        stream: None,
    };
    // The invocation runs on a task of its own (`Invoker::invoke`), so giving up at the integration
    // timeout leaves it to finish and release its environment.
    let timeout = Duration::from_millis(u64::try_from(integration.timeout_in_millis).unwrap_or(30_000));
    let mut response = match tokio::time::timeout(timeout, state.invoker.invoke(invocation)).await {
        Err(_) => message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Ok(Ok(result)) => answer(&result.outcome, v1),
        Ok(Err(InvokeError::Throttled(_))) => message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "HTTP API invocation");
            internal()
        }
    };
    if let Some(cors) = &cors {
        let added = cors::actual(cors, &parts.headers);
        for (name, _) in &added {
            response.headers_mut().remove(name);
        }
        response.headers_mut().extend(added);
    }
    response
}

/// The stage a path addresses and the path within it: a named stage's first segment, else `$default`.
fn stage_of<'a>(api: &'a HttpApi, path: &'a str) -> Option<(&'a str, String)> {
    let rest = path.strip_prefix('/')?;
    let (first, tail) = rest.split_once('/').map_or((rest, ""), |(f, t)| (f, t));
    if let Some(stage) = api.stages.iter().find(|s| s.stage_name != "$default" && s.stage_name == first) {
        return Some((stage.stage_name.as_str(), format!("/{tail}")));
    }
    api.stages.iter().any(|s| s.stage_name == "$default").then(|| ("$default", path.to_owned()))
}

static EXECUTE_API_INVOKE: Action = Action::from_static("execute-api:Invoke");

/// An `AWS_IAM` route's caller: a SigV4 signature for service `execute-api` by a credential Nimbus
/// knows, whose identity `authz` lets perform `execute-api:Invoke` on the route's ARN (the source ARN
/// shape, `arn:aws:execute-api:<region>:<acct>:<api-id>/<stage>/<METHOD>/<path>`). API Gateway answers
/// every refusal with 403 and a `message`.
fn iam_caller(
    state: &SharedState,
    parts: &axum::http::request::Parts,
    body: &[u8],
    route_arn: &str,
) -> Result<event::IamCaller, Box<Response>> {
    let forbidden = |text: &str| Box::new(message(StatusCode::FORBIDDEN, text));
    let caller = crate::auth::verify(parts, body, std::time::SystemTime::now(), |key| state.credentials.lookup(key))
        .map_err(|e| match e {
            crate::auth::AuthError::MissingAuthentication => forbidden("Forbidden"),
            other => forbidden(&other.to_string()),
        })?;
    if caller.service != "execute-api" {
        return Err(forbidden(&format!(
            "Credential should be scoped to correct service: 'execute-api'. (signed for '{}')",
            caller.service
        )));
    }
    let identity = crate::api::identify(state, &caller).ok_or_else(|| forbidden("Forbidden"))?;
    crate::authz::authorize(Some(&identity), &EXECUTE_API_INVOKE, route_arn).map_err(|d| forbidden(&d.message))?;
    let principal = identity.principal();
    Ok(event::IamCaller {
        access_key: caller.access_key_id.clone(),
        caller_id: principal.user_id.clone(),
        user_id: principal.user_id.clone(),
        account_id: state.arns.account.clone(),
        user_arn: principal.arn.clone(),
    })
}

/// Whether the function's resource policy lets API Gateway invoke it for `source_arn`.
fn invoke_allowed(state: &SharedState, function: &FunctionRef, source_arn: &str) -> Result<bool, StoreError> {
    let scope = match &function.qualifier {
        None => PolicyScope::Function,
        Some(Qualifier::Latest) => PolicyScope::Version(VersionId::Latest),
        Some(Qualifier::Version(v)) => PolicyScope::Version(VersionId::Published(*v)),
        Some(Qualifier::Alias(a)) => PolicyScope::Alias(a.clone()),
    };
    let Some(document) = function_policy(&state.store, &function.name, &scope)? else { return Ok(false) };
    let principal = policy::Principal {
        arn: String::new(),
        account: String::new(),
        user_id: String::new(),
        kind: PrincipalKind::Service { name: APIGATEWAY.to_owned() },
    };
    let resource = state.arns.function(&function.name, function.qualifier.as_ref());
    let mut ctx = RequestContext::new(principal, INVOKE_FUNCTION.clone(), resource);
    ctx.set("aws:SourceArn", source_arn).set("aws:SourceAccount", &state.arns.account);
    let policies = policy::Policies { resource: Some(&document), ..Default::default() };
    Ok(policy::evaluate(&policies, &ctx).is_allowed())
}

/// The function's outcome as the route's answer, by the integration's payload format.
fn answer(outcome: &Outcome, v1: bool) -> Response {
    let Outcome::Success { payload } = outcome else { return internal() };
    let interpreted = if v1 { payload_v1::interpret(payload) } else { response::interpret(payload) };
    match interpreted {
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
            tracing::debug!(error = %e, "an HTTP API's function answered with a malformed response");
            internal()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn stages_are_taken_from_the_first_segment() {
        let stage = |name: &str| nimbus_model::http_api::Stage {
            stage_name: name.into(),
            auto_deploy: false,
            deployment_id: None,
            stage_variables: BTreeMap::new(),
            description: None,
            created_ms: 0,
            modified_ms: 0,
        };
        let mut api: HttpApi = serde_json::from_value(serde_json::json!({
            "apiId": "abcde12345", "name": "a", "routeSelectionExpression": "", "apiKeySelectionExpression": "",
            "disableExecuteApiEndpoint": false, "createdMs": 0, "routes": [], "integrations": [], "stages": [],
            "deployments": []
        }))
        .unwrap();
        api.stages = vec![stage("prod")];
        assert_eq!(stage_of(&api, "/prod/items/1"), Some(("prod", "/items/1".into())));
        assert_eq!(stage_of(&api, "/prod"), Some(("prod", "/".into())));
        assert_eq!(stage_of(&api, "/other/x"), None);
        api.stages.push(stage("$default"));
        assert_eq!(stage_of(&api, "/other/x"), Some(("$default", "/other/x".into())));
        assert_eq!(stage_of(&api, "/prod/x"), Some(("prod", "/x".into())));
    }
}
