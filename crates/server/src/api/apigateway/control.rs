//! The control-plane handlers: each takes the parsed path labels and the JSON body (camelCase, as
//! botocore's `apigatewayv2` model names the members), changes the API in one store transaction and
//! answers the model's output shape.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use nimbus_model::http_api::{ApiCors, Deployment, HttpApi, Integration, Route, RouteKey, Stage};
use serde::Deserialize;
use serde_json::{Value, json};

use super::GatewayError;
use super::operations::{Matched, Op};
use crate::api::SharedState;

type Answer = Result<(StatusCode, Value), GatewayError>;

const DEFAULT_STAGE: &str = "$default";
/// AWS's quotas for one HTTP API.
const ROUTES_MAX: usize = 300;
const INTEGRATIONS_MAX: usize = 300;
const STAGES_MAX: usize = 10;
const NAME_MAX: usize = 128;
/// HTTP APIs' integration timeout: 50 ms to 30 s, 30 s by default.
const TIMEOUT_DEFAULT_MS: i64 = 30_000;

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest(message.into())
}

fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

fn parse<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, GatewayError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("Invalid request body: {e}")))
}

fn date(ms: i64) -> String {
    crate::clock::iso_millis(ms)
}

pub fn handle(state: &SharedState, m: &Matched, query: Option<&str>, body: &[u8]) -> Answer {
    let api_id = m.api_id.clone().unwrap_or_default();
    let child = m.child.clone().unwrap_or_default();
    let _ = query; // Paging: Nimbus answers every item at once (no nextToken), within the quotas above.
    match m.op {
        Op::CreateApi => create_api(state, parse(body)?),
        Op::GetApis => {
            let items: Vec<Value> = state.store.list_http_apis()?.iter().map(|a| api_json(state, a)).collect();
            Ok((StatusCode::OK, json!({ "items": items })))
        }
        Op::GetApi => Ok((StatusCode::OK, api_json(state, &get(state, &api_id)?))),
        Op::UpdateApi => update_api(state, &api_id, parse(body)?),
        Op::DeleteApi => {
            state.store.delete_http_api(&api_id).map_err(|_| not_found_api(&api_id))?;
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        Op::CreateRoute => create_route(state, &api_id, parse(body)?),
        Op::GetRoutes => {
            let api = get(state, &api_id)?;
            Ok((StatusCode::OK, json!({ "items": api.routes })))
        }
        Op::GetRoute => {
            let api = get(state, &api_id)?;
            let route = api.routes.iter().find(|r| r.route_id == child).ok_or_else(|| not_found("Route", &child))?;
            Ok((StatusCode::OK, json!(route)))
        }
        Op::UpdateRoute => update_route(state, &api_id, &child, parse(body)?),
        Op::DeleteRoute => modify(state, &api_id, |api| {
            let before = api.routes.len();
            api.routes.retain(|r| r.route_id != child);
            if api.routes.len() == before {
                return Err(not_found("Route", &child));
            }
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }),
        Op::CreateIntegration => {
            let input: IntegrationInput = parse(body)?;
            modify(state, &api_id, |api| {
                if api.integrations.len() >= INTEGRATIONS_MAX {
                    return Err(bad("Integrations quota exceeded"));
                }
                let integration = new_integration(input, random_id(7))?;
                api.integrations.push(integration.clone());
                Ok((StatusCode::CREATED, integration_json(&integration)))
            })
        }
        Op::GetIntegrations => {
            let api = get(state, &api_id)?;
            let items: Vec<Value> = api.integrations.iter().map(integration_json).collect();
            Ok((StatusCode::OK, json!({ "items": items })))
        }
        Op::GetIntegration => {
            let api = get(state, &api_id)?;
            let i = api.integrations.iter().find(|i| i.integration_id == child);
            Ok((StatusCode::OK, integration_json(i.ok_or_else(|| not_found("Integration", &child))?)))
        }
        Op::DeleteIntegration => modify(state, &api_id, |api| {
            let target = format!("integrations/{child}");
            if api.routes.iter().any(|r| r.target.as_deref() == Some(target.as_str())) {
                return Err(GatewayError::Conflict(format!(
                    "Cannot delete Integration {child} because it is in use by a Route"
                )));
            }
            let before = api.integrations.len();
            api.integrations.retain(|i| i.integration_id != child);
            if api.integrations.len() == before {
                return Err(not_found("Integration", &child));
            }
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }),
        Op::CreateStage => create_stage(state, &api_id, parse(body)?),
        Op::GetStages => {
            let api = get(state, &api_id)?;
            let items: Vec<Value> = api.stages.iter().map(stage_json).collect();
            Ok((StatusCode::OK, json!({ "items": items })))
        }
        Op::GetStage => {
            let api = get(state, &api_id)?;
            let stage = api.stages.iter().find(|s| s.stage_name == child).ok_or_else(|| not_found("Stage", &child))?;
            Ok((StatusCode::OK, stage_json(stage)))
        }
        Op::DeleteStage => {
            let api = modify(state, &api_id, |api| {
                let before = api.stages.len();
                api.stages.retain(|s| s.stage_name != child);
                if api.stages.len() == before {
                    return Err(not_found("Stage", &child));
                }
                prune_deployments(api);
                Ok(())
            });
            api.map(|()| (StatusCode::NO_CONTENT, Value::Null))
        }
        Op::CreateDeployment => {
            let input: DeploymentInput = parse(body)?;
            modify(state, &api_id, |api| {
                let deployment = snapshot(api, false, input.description.clone());
                if let Some(name) = &input.stage_name {
                    let stage = api
                        .stages
                        .iter_mut()
                        .find(|s| &s.stage_name == name)
                        .ok_or_else(|| bad(format!("Invalid stage identifier specified {name}")))?;
                    if stage.auto_deploy {
                        return Err(bad(format!(
                            "Stage {name} is configured with auto deploy; deployments cannot be created for it"
                        )));
                    }
                    stage.deployment_id = Some(deployment.deployment_id.clone());
                    stage.modified_ms = crate::clock::now_ms();
                }
                api.deployments.push(deployment.clone());
                prune_deployments(api);
                Ok((StatusCode::CREATED, deployment_json(&deployment)))
            })
        }
        Op::GetDeployments => {
            let api = get(state, &api_id)?;
            let items: Vec<Value> = api.deployments.iter().map(deployment_json).collect();
            Ok((StatusCode::OK, json!({ "items": items })))
        }
        Op::GetDeployment => {
            let api = get(state, &api_id)?;
            let d = api.deployments.iter().find(|d| d.deployment_id == child);
            Ok((StatusCode::OK, deployment_json(d.ok_or_else(|| not_found("Deployment", &child))?)))
        }
    }
}

fn not_found_api(api_id: &str) -> GatewayError {
    GatewayError::NotFound(format!("Invalid API identifier specified {api_id}"))
}

fn not_found(kind: &str, id: &str) -> GatewayError {
    GatewayError::NotFound(format!("Invalid {kind} identifier specified {id}"))
}

fn get(state: &SharedState, api_id: &str) -> Result<HttpApi, GatewayError> {
    state.store.get_http_api(api_id).map_err(|e| match e {
        nimbus_store::StoreError::NotFound { .. } => not_found_api(api_id),
        other => other.into(),
    })
}

/// Changes the API in one transaction, then redeploys its AutoDeploy stages, as API Gateway does on
/// every change.
fn modify<T>(
    state: &SharedState,
    api_id: &str,
    change: impl FnOnce(&mut HttpApi) -> Result<T, GatewayError>,
) -> Result<T, GatewayError> {
    state
        .store
        .modify_http_api(api_id, |api| {
            let out = change(api)?;
            auto_deploy(api);
            Ok(out)
        })
        .map_err(|e| match e {
            GatewayError::Store(nimbus_store::StoreError::NotFound { .. }) => not_found_api(api_id),
            other => other,
        })
}

/// A deployment of what the API holds now.
fn snapshot(api: &HttpApi, auto: bool, description: Option<String>) -> Deployment {
    Deployment {
        deployment_id: random_id(6),
        created_ms: crate::clock::now_ms(),
        auto_deployed: auto,
        description,
        routes: api.routes.clone(),
        integrations: api.integrations.clone(),
    }
}

/// Points every AutoDeploy stage at a deployment of the current routes (one new deployment when
/// anything they serve changed).
fn auto_deploy(api: &mut HttpApi) {
    if !api.stages.iter().any(|s| s.auto_deploy) {
        return;
    }
    let current = api.stages.iter().filter(|s| s.auto_deploy).filter_map(|s| s.deployment_id.as_ref()).next();
    let unchanged = current
        .and_then(|id| api.deployments.iter().find(|d| &d.deployment_id == id))
        .is_some_and(|d| d.routes == api.routes && d.integrations == api.integrations);
    let id = if unchanged {
        current.cloned()
    } else {
        let deployment =
            snapshot(api, true, Some("Automatic deployment triggered by changes to the Api configuration".into()));
        let id = deployment.deployment_id.clone();
        api.deployments.push(deployment);
        Some(id)
    };
    let now = crate::clock::now_ms();
    for stage in api.stages.iter_mut().filter(|s| s.auto_deploy) {
        if stage.deployment_id != id {
            stage.deployment_id = id.clone();
            stage.modified_ms = now;
        }
    }
    prune_deployments(api);
}

/// Keeps deployments a stage serves, and the latest 20 others (a bound on the row's size).
fn prune_deployments(api: &mut HttpApi) {
    const KEPT: usize = 20;
    let in_use: Vec<String> = api.stages.iter().filter_map(|s| s.deployment_id.clone()).collect();
    let spare = api.deployments.iter().filter(|d| !in_use.contains(&d.deployment_id)).count();
    let mut drop = spare.saturating_sub(KEPT);
    api.deployments.retain(|d| {
        if drop > 0 && !in_use.contains(&d.deployment_id) {
            drop -= 1;
            return false;
        }
        true
    });
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiInput {
    name: Option<String>,
    protocol_type: Option<String>,
    description: Option<String>,
    cors_configuration: Option<ApiCors>,
    disable_execute_api_endpoint: Option<bool>,
    route_key: Option<String>,
    target: Option<String>,
    version: Option<String>,
    route_selection_expression: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

fn check_name(name: &str) -> Result<(), GatewayError> {
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(bad("Invalid API name specified. Must be between 1 and 128 characters in length."));
    }
    Ok(())
}

fn check_cors(cors: &ApiCors) -> Result<(), GatewayError> {
    if cors.allow_credentials == Some(true) && cors.allow_origins.as_ref().is_some_and(|o| o.iter().any(|o| o == "*")) {
        return Err(bad("allow-credentials is not supported when allow-origin is *."));
    }
    if cors.max_age.is_some_and(|a| !(-1..=86_400).contains(&a)) {
        return Err(bad("Max age must be between -1 and 86400 seconds."));
    }
    Ok(())
}

fn create_api(state: &SharedState, input: ApiInput) -> Answer {
    let name = input.name.ok_or_else(|| bad("Name is required"))?;
    check_name(&name)?;
    match input.protocol_type.as_deref() {
        Some("HTTP") => {}
        Some("WEBSOCKET") => return Err(bad("Nimbus serves only HTTP APIs (ProtocolType HTTP)")),
        Some(other) => return Err(bad(format!("Invalid protocol type specified {other}"))),
        None => return Err(bad("ProtocolType is required")),
    }
    if let Some(cors) = &input.cors_configuration {
        check_cors(cors)?;
    }
    if input.route_key.is_some() && input.target.is_none() {
        return Err(bad("Target is required when a RouteKey is given (quick create)"));
    }
    let now = crate::clock::now_ms();
    let mut api = HttpApi {
        api_id: random_id(10),
        name,
        description: input.description,
        route_selection_expression: input
            .route_selection_expression
            .unwrap_or_else(|| "$request.method $request.path".into()),
        api_key_selection_expression: "$request.header.x-api-key".into(),
        disable_execute_api_endpoint: input.disable_execute_api_endpoint.unwrap_or(false),
        cors_configuration: input.cors_configuration,
        version: input.version,
        tags: input.tags.unwrap_or_default(),
        created_ms: now,
        routes: Vec::new(),
        integrations: Vec::new(),
        stages: Vec::new(),
        deployments: Vec::new(),
    };
    if let Some(target) = input.target {
        // Quick create: an AWS_PROXY integration (payload 2.0), the route and the $default stage.
        let route_key = input.route_key.unwrap_or_else(|| "$default".into());
        RouteKey::parse(&route_key).map_err(|e| bad(e.to_string()))?;
        let integration = new_integration(
            IntegrationInput {
                integration_type: Some("AWS_PROXY".into()),
                integration_uri: Some(target),
                payload_format_version: Some("2.0".into()),
                ..Default::default()
            },
            random_id(7),
        )?;
        api.routes.push(Route {
            route_id: random_id(7),
            route_key,
            target: Some(format!("integrations/{}", integration.integration_id)),
            authorization_type: "NONE".into(),
            api_key_required: false,
        });
        api.integrations.push(integration);
        api.stages.push(Stage {
            stage_name: DEFAULT_STAGE.into(),
            auto_deploy: true,
            deployment_id: None,
            stage_variables: BTreeMap::new(),
            description: None,
            created_ms: now,
            modified_ms: now,
        });
        auto_deploy(&mut api);
    }
    state.store.create_http_api(&api)?;
    Ok((StatusCode::CREATED, api_json(state, &api)))
}

fn update_api(state: &SharedState, api_id: &str, input: ApiInput) -> Answer {
    if input.target.is_some() || input.route_key.is_some() {
        return Err(bad("Nimbus does not support Target or RouteKey on UpdateApi"));
    }
    if let Some(cors) = &input.cors_configuration {
        check_cors(cors)?;
    }
    let api = modify(state, api_id, |api| {
        if let Some(name) = input.name {
            check_name(&name)?;
            api.name = name;
        }
        if input.protocol_type.as_deref().is_some_and(|p| p != "HTTP") {
            return Err(bad("ProtocolType cannot be changed"));
        }
        if let Some(d) = input.description {
            api.description = Some(d);
        }
        if let Some(cors) = input.cors_configuration {
            api.cors_configuration = Some(cors);
        }
        if let Some(d) = input.disable_execute_api_endpoint {
            api.disable_execute_api_endpoint = d;
        }
        if let Some(v) = input.version {
            api.version = Some(v);
        }
        Ok(api.clone())
    })?;
    Ok((StatusCode::OK, api_json(state, &api)))
}

pub fn api_json(state: &SharedState, api: &HttpApi) -> Value {
    let mut v = json!({
        "apiEndpoint": super::hosts::endpoint(state, &api.api_id),
        "apiId": api.api_id,
        "apiKeySelectionExpression": api.api_key_selection_expression,
        "createdDate": date(api.created_ms),
        "disableExecuteApiEndpoint": api.disable_execute_api_endpoint,
        "name": api.name,
        "protocolType": "HTTP",
        "routeSelectionExpression": api.route_selection_expression,
        "tags": api.tags,
    });
    if let Some(d) = &api.description {
        v["description"] = json!(d);
    }
    if let Some(c) = &api.cors_configuration {
        v["corsConfiguration"] = json!(c);
    }
    if let Some(version) = &api.version {
        v["version"] = json!(version);
    }
    v
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RouteInput {
    route_key: Option<String>,
    target: Option<String>,
    authorization_type: Option<String>,
    api_key_required: Option<bool>,
}

fn check_target(api: &HttpApi, target: &str) -> Result<(), GatewayError> {
    let id = target.strip_prefix("integrations/").ok_or_else(|| bad(format!("Invalid target specified {target}")))?;
    if !api.integrations.iter().any(|i| i.integration_id == id) {
        return Err(bad(format!("Invalid integration identifier specified {id}")));
    }
    Ok(())
}

fn check_authorization(kind: Option<&str>) -> Result<String, GatewayError> {
    match kind.unwrap_or("NONE") {
        k @ ("NONE" | "AWS_IAM") => Ok(k.into()),
        other => Err(bad(format!("Nimbus does not support authorization type {other} yet"))),
    }
}

fn create_route(state: &SharedState, api_id: &str, input: RouteInput) -> Answer {
    let key = input.route_key.ok_or_else(|| bad("Route key is required"))?;
    RouteKey::parse(&key).map_err(|e| bad(e.to_string()))?;
    let authorization_type = check_authorization(input.authorization_type.as_deref())?;
    modify(state, api_id, |api| {
        if api.routes.iter().any(|r| r.route_key == key) {
            return Err(GatewayError::Conflict(format!("Route with key {key} already exists for this API")));
        }
        if api.routes.len() >= ROUTES_MAX {
            return Err(bad("Routes quota exceeded"));
        }
        if let Some(t) = &input.target {
            check_target(api, t)?;
        }
        let route = Route {
            route_id: random_id(7),
            route_key: key,
            target: input.target,
            authorization_type,
            api_key_required: input.api_key_required.unwrap_or(false),
        };
        api.routes.push(route.clone());
        Ok((StatusCode::CREATED, json!(route)))
    })
}

fn update_route(state: &SharedState, api_id: &str, route_id: &str, input: RouteInput) -> Answer {
    if let Some(key) = &input.route_key {
        RouteKey::parse(key).map_err(|e| bad(e.to_string()))?;
    }
    let authorization_type = input.authorization_type.as_deref().map(|a| check_authorization(Some(a))).transpose()?;
    modify(state, api_id, |api| {
        if let Some(key) = &input.route_key
            && api.routes.iter().any(|r| &r.route_key == key && r.route_id != route_id)
        {
            return Err(GatewayError::Conflict(format!("Route with key {key} already exists for this API")));
        }
        if let Some(t) = &input.target {
            check_target(api, t)?;
        }
        let route =
            api.routes.iter_mut().find(|r| r.route_id == route_id).ok_or_else(|| not_found("Route", route_id))?;
        if let Some(key) = input.route_key {
            route.route_key = key;
        }
        if let Some(t) = input.target {
            route.target = Some(t);
        }
        if let Some(a) = authorization_type {
            route.authorization_type = a;
        }
        if let Some(k) = input.api_key_required {
            route.api_key_required = k;
        }
        Ok((StatusCode::OK, json!(route)))
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntegrationInput {
    integration_type: Option<String>,
    integration_uri: Option<String>,
    integration_method: Option<String>,
    payload_format_version: Option<String>,
    timeout_in_millis: Option<i64>,
    description: Option<String>,
}

/// The function an integration URI names: a function, version or alias ARN, or API Gateway's
/// `arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<arn>/invocations` form.
pub fn function_arn(uri: &str) -> Option<&str> {
    let arn = match uri.split_once(":lambda:path/2015-03-31/functions/") {
        Some((_, rest)) => rest.strip_suffix("/invocations")?,
        None => uri,
    };
    arn.starts_with("arn:aws:lambda:").then_some(arn)
}

fn new_integration(input: IntegrationInput, id: String) -> Result<Integration, GatewayError> {
    match input.integration_type.as_deref() {
        Some("AWS_PROXY") => {}
        Some(other) => return Err(bad(format!("Nimbus supports only AWS_PROXY integrations, not {other}"))),
        None => return Err(bad("IntegrationType is required")),
    }
    let uri = input.integration_uri.ok_or_else(|| bad("IntegrationUri is required for AWS_PROXY integrations"))?;
    let arn = function_arn(&uri).ok_or_else(|| bad(format!("Invalid integration URI specified {uri}")))?;
    nimbus_model::FunctionRef::parse(arn).map_err(|_| bad(format!("Invalid integration URI specified {uri}")))?;
    let version = input.payload_format_version.ok_or_else(|| {
        bad("PayloadFormatVersion is required for AWS_PROXY integrations of HTTP APIs. Supported values are 1.0 and 2.0")
    })?;
    if version != "1.0" && version != "2.0" {
        return Err(bad(format!(
            "Invalid payload format version specified {version}. Supported values are 1.0 and 2.0"
        )));
    }
    let timeout = input.timeout_in_millis.unwrap_or(TIMEOUT_DEFAULT_MS);
    if !(50..=30_000).contains(&timeout) {
        return Err(bad("Timeout must be between 50 milliseconds and 30 seconds."));
    }
    Ok(Integration {
        integration_id: id,
        integration_type: "AWS_PROXY".into(),
        integration_method: input.integration_method.unwrap_or_else(|| "POST".into()),
        integration_uri: uri,
        payload_format_version: version,
        timeout_in_millis: timeout,
        description: input.description,
    })
}

fn integration_json(i: &Integration) -> Value {
    let mut v = json!(i);
    v["connectionType"] = json!("INTERNET");
    v
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StageInput {
    stage_name: Option<String>,
    auto_deploy: Option<bool>,
    deployment_id: Option<String>,
    stage_variables: Option<BTreeMap<String, String>>,
    description: Option<String>,
}

fn create_stage(state: &SharedState, api_id: &str, input: StageInput) -> Answer {
    let name = input.stage_name.ok_or_else(|| bad("Stage name is required"))?;
    let valid = name == DEFAULT_STAGE
        || (!name.is_empty()
            && name.len() <= 128
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)));
    if !valid {
        return Err(bad(format!(
            "Stage name only allows a-zA-Z0-9_- and must be between 1 and 128 characters in length, or $default: {name}"
        )));
    }
    let variables = input.stage_variables.unwrap_or_default();
    for (k, v) in &variables {
        if k.is_empty() || k.len() > 64 || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(bad(format!("Stage variable name {k} must match [A-Za-z0-9_]{{1,64}}")));
        }
        if v.len() > 2048 {
            return Err(bad(format!("Stage variable value for {k} must be at most 2048 characters")));
        }
    }
    modify(state, api_id, |api| {
        if api.stages.iter().any(|s| s.stage_name == name) {
            return Err(GatewayError::Conflict(format!("Stage already exists: {name}")));
        }
        if api.stages.len() >= STAGES_MAX {
            return Err(bad("Stages quota exceeded"));
        }
        if let Some(d) = &input.deployment_id
            && !api.deployments.iter().any(|x| &x.deployment_id == d)
        {
            return Err(bad(format!("Invalid deployment identifier specified {d}")));
        }
        let now = crate::clock::now_ms();
        api.stages.push(Stage {
            stage_name: name.clone(),
            auto_deploy: input.auto_deploy.unwrap_or(false),
            deployment_id: input.deployment_id,
            stage_variables: variables,
            description: input.description,
            created_ms: now,
            modified_ms: now,
        });
        Ok(())
    })?;
    // Read back: an AutoDeploy stage got its deployment after the change.
    let api = get(state, api_id)?;
    let stage = api.stages.iter().find(|s| s.stage_name == name).ok_or_else(|| not_found("Stage", &name))?;
    Ok((StatusCode::CREATED, stage_json(stage)))
}

fn stage_json(s: &Stage) -> Value {
    let mut v = json!({
        "stageName": s.stage_name,
        "autoDeploy": s.auto_deploy,
        "createdDate": date(s.created_ms),
        "lastUpdatedDate": date(s.modified_ms),
        "stageVariables": s.stage_variables,
        "defaultRouteSettings": { "detailedMetricsEnabled": false },
        "routeSettings": {},
        "tags": {},
    });
    if let Some(d) = &s.deployment_id {
        v["deploymentId"] = json!(d);
    }
    if let Some(d) = &s.description {
        v["description"] = json!(d);
    }
    v
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentInput {
    stage_name: Option<String>,
    description: Option<String>,
}

fn deployment_json(d: &Deployment) -> Value {
    let mut v = json!({
        "deploymentId": d.deployment_id,
        "deploymentStatus": "DEPLOYED",
        "createdDate": date(d.created_ms),
        "autoDeployed": d.auto_deployed,
    });
    if let Some(desc) = &d.description {
        v["description"] = json!(desc);
    }
    v
}
