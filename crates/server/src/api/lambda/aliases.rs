//! CreateAlias, GetAlias, ListAliases, UpdateAlias and DeleteAlias.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_model::{Description, FunctionName, Qualifier, ValidationError};
use nimbus_store::{AliasRecord, AliasUpdate, Routing, StoreError, VersionId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::{page_json, page_size};
use super::{parse_json, target};
use crate::api::{ApiError, SharedState};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RoutingIn {
    additional_version_weights: Option<BTreeMap<String, f64>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasIn {
    name: Option<String>,
    function_version: Option<String>,
    description: Option<String>,
    routing_config: Option<RoutingIn>,
    revision_id: Option<String>,
}

#[derive(Deserialize)]
pub struct ListAliasesQuery {
    #[serde(rename = "FunctionVersion")]
    function_version: Option<String>,
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<i64>,
}

fn alias_json(state: &SharedState, a: &AliasRecord) -> Value {
    let mut out = json!({
        "AliasArn": state.arns.function(&a.function, Some(&Qualifier::Alias(a.name.clone()))),
        "Name": a.name,
        "FunctionVersion": a.version.to_string(),
        "Description": a.description.as_str(),
        "RevisionId": a.revision_id,
    });
    if let Some(r) = a.routing {
        out["RoutingConfig"] = json!({ "AdditionalVersionWeights": { r.version.to_string(): r.weight } });
    }
    out
}

fn alias_name(raw: &str) -> Result<String, ApiError> {
    match Qualifier::parse(raw) {
        Ok(Qualifier::Alias(name)) => Ok(name),
        _ => Err(ValidationError::constraint(
            "name",
            raw,
            "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
        )
        .into()),
    }
}

fn version(raw: &str) -> Result<VersionId, ApiError> {
    match Qualifier::parse(raw)? {
        Qualifier::Latest => Ok(VersionId::Latest),
        Qualifier::Version(v) => Ok(VersionId::Published(v)),
        Qualifier::Alias(_) => Err(ApiError::invalid(format!("Invalid FunctionVersion: {raw}"))),
    }
}

fn routing(input: Option<RoutingIn>) -> Result<Option<Option<Routing>>, ApiError> {
    let Some(input) = input else { return Ok(None) };
    let weights = input.additional_version_weights.unwrap_or_default();
    match weights.len() {
        0 => Ok(Some(None)),
        1 => {
            let (v, &weight) = weights.iter().next().ok_or_else(|| ApiError::invalid("empty routing"))?;
            let VersionId::Published(version) = version(v)? else {
                return Err(ApiError::invalid("RoutingConfig may not route to $LATEST"));
            };
            if !(0.0..=1.0).contains(&weight) {
                return Err(ApiError::invalid(format!("Invalid weight {weight}: it must be between 0.0 and 1.0")));
            }
            Ok(Some(Some(Routing { version, weight })))
        }
        _ => Err(ApiError::invalid("RoutingConfig supports one additional version")),
    }
}

fn function(state: &SharedState, raw: &str) -> Result<FunctionName, ApiError> {
    let (name, qualifier) = target(state, raw, None)?;
    if qualifier.is_some() {
        return Err(ApiError::invalid("Aliases belong to the unqualified function"));
    }
    state.store.get_function(&name, &VersionId::Latest).map_err(|e| not_found(state, &name, None, e))?;
    Ok(name)
}

fn not_found(state: &SharedState, name: &FunctionName, alias: Option<&str>, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { what: "alias", .. } => ApiError::not_found(format!(
            "Alias not found: {}",
            state.arns.function(name, Some(&Qualifier::Alias(alias.unwrap_or_default().to_owned())))
        )),
        StoreError::NotFound { name: missing, .. } => ApiError::not_found(format!(
            "Function not found: arn:aws:lambda:{}:{}:function:{missing}",
            state.arns.region, state.arns.account
        )),
        StoreError::Conflict { .. } => ApiError::conflict(format!(
            "Alias already exists: {}",
            state.arns.function(name, Some(&Qualifier::Alias(alias.unwrap_or_default().to_owned())))
        )),
        other => other.into(),
    }
}

pub async fn create(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = function(&state, &raw)?;
    let input: AliasIn = parse_json(&body)?;
    let alias = alias_name(input.name.as_deref().ok_or_else(|| ApiError::invalid("Name is required"))?)?;
    let version =
        version(input.function_version.as_deref().ok_or_else(|| ApiError::invalid("FunctionVersion is required"))?)?;
    let description = Description::parse(input.description.as_deref().unwrap_or_default())?;
    let routing = routing(input.routing_config)?.flatten();
    let record = state
        .store
        .create_alias(&name, &alias, version, description, routing)
        .map_err(|e| not_found(&state, &name, Some(&alias), e))?;
    Ok((StatusCode::CREATED, Json(alias_json(&state, &record))).into_response())
}

pub async fn get(
    State(state): State<SharedState>,
    Path((raw, alias)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let name = function(&state, &raw)?;
    let record = state.store.get_alias(&name, &alias).map_err(|e| not_found(&state, &name, Some(&alias), e))?;
    Ok(Json(alias_json(&state, &record)).into_response())
}

pub async fn list(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<ListAliasesQuery>,
) -> Result<Response, ApiError> {
    let name = function(&state, &raw)?;
    let limit = page_size(q.max_items, 10_000, nimbus_model::limits::LIST_PAGE_ITEMS_MAX)?;
    let filter = q.function_version.as_deref().map(version).transpose()?;
    let aliases = state.store.list_aliases(&name, filter, q.marker.as_deref(), limit + 1)?;
    let out = page_json(aliases, limit, "Aliases", |a| a.name.clone(), |a| alias_json(&state, a));
    Ok(Json(out).into_response())
}

pub async fn update(
    State(state): State<SharedState>,
    Path((raw, alias)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = function(&state, &raw)?;
    let input: AliasIn = parse_json(&body)?;
    let update = AliasUpdate {
        version: input.function_version.as_deref().map(version).transpose()?,
        description: input.description.as_deref().map(Description::parse).transpose()?,
        routing: routing(input.routing_config)?,
    };
    let before = state.store.get_alias(&name, &alias).map_err(|e| not_found(&state, &name, Some(&alias), e))?;
    let record = state
        .store
        .update_alias(&name, &alias, update, input.revision_id.as_deref())
        .map_err(|e| not_found(&state, &name, Some(&alias), e))?;
    // Provisioned concurrency on an alias follows it to its new version.
    if before.version != record.version
        && let Some(config) = state.store.get_provisioned(&name, &alias)?
    {
        let old = state.store.get_function(&name, &before.version)?;
        let new = state.store.get_function(&name, &record.version)?;
        state.invoker.provision(old, 0).await;
        state.invoker.provision(new, config.requested as usize).await;
    }
    Ok(Json(alias_json(&state, &record)).into_response())
}

pub async fn delete(
    State(state): State<SharedState>,
    Path((raw, alias)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let name = function(&state, &raw)?;
    state.store.delete_alias(&name, &alias).map_err(|e| not_found(&state, &name, Some(&alias), e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
