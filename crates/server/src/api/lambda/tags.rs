//! TagResource, UntagResource and ListTags on function ARNs.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_model::{FunctionName, TagKey, Tags};
use nimbus_store::VersionId;
use serde_json::json;

use super::shapes::{TagResourceIn, tags_json};
use super::{parse_json, target};
use crate::api::{ApiError, SharedState};

/// Tags belong to functions, named by their unqualified ARN.
fn function_of(state: &SharedState, arn: &str) -> Result<FunctionName, ApiError> {
    if !arn.starts_with("arn:") {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{arn}' at 'resource' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:\\d{{12}}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?|layer:[a-zA-Z0-9-_]+)"
        )));
    }
    let (name, qualifier) = target(state, arn, None)?;
    if qualifier.is_some() {
        return Err(ApiError::invalid(
            "Tags are not supported on function versions or aliases; use the unqualified function ARN.",
        ));
    }
    Ok(name)
}

pub async fn list(State(state): State<SharedState>, Path(arn): Path<String>) -> Result<Response, ApiError> {
    let name = function_of(&state, &arn)?;
    let record = state.store.get_function(&name, &VersionId::Latest)?;
    Ok(Json(json!({ "Tags": tags_json(&record) })).into_response())
}

pub async fn tag(State(state): State<SharedState>, Path(arn): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let name = function_of(&state, &arn)?;
    let input: TagResourceIn = parse_json(&body)?;
    let added = Tags::parse(input.tags.unwrap_or_default())?;
    let record = state.store.get_function(&name, &VersionId::Latest)?;
    let merged = record.tags.merged(&added)?;
    state.store.set_tags(&name, &merged)?;
    retire_on_network_change(&state, &name, &record.tags, &merged).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn untag(
    State(state): State<SharedState>,
    Path(arn): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let name = function_of(&state, &arn)?;
    // `tagKeys` repeats: `?tagKeys=a&tagKeys=b`.
    let keys = form_urlencoded_pairs(query.as_deref().unwrap_or_default())
        .into_iter()
        .filter(|(k, _)| k == "tagKeys")
        .map(|(_, v)| TagKey::parse(&v))
        .collect::<Result<Vec<_>, _>>()?;
    let record = state.store.get_function(&name, &VersionId::Latest)?;
    let remaining = record.tags.without(&keys);
    state.store.set_tags(&name, &remaining)?;
    retire_on_network_change(&state, &name, &record.tags, &remaining).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The `nimbus:network` tag is read when an environment is launched; a change retires the warm
/// environments of every version (tags belong to the function), as a configuration update does, and
/// launches its provisioned ones again, with the new setting.
async fn retire_on_network_change(state: &SharedState, name: &FunctionName, before: &Tags, after: &Tags) {
    if before.network_access() != after.network_access() {
        state.invoker.retire(name, None).await;
        crate::restore_provisioned(&state.store, &state.invoker, Some(name)).await;
    }
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default()
}
