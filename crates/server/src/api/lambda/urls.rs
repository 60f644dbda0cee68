//! Create/Get/Update/Delete/ListFunctionUrlConfig(s). A URL belongs to the function (`$LATEST`) or
//! to an alias, never to a version number (botocore's `FunctionUrlQualifier`). Serving them is
//! `api::function_url`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_model::{Cors, FunctionName, InvokeMode, Qualifier, UrlAuthType, UrlId, ValidationError};
use nimbus_store::{StoreError, UrlConfig, UrlUpdate};
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::{page_json, page_size};
use super::{parse_json, target};
use crate::api::{ApiError, SharedState};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UrlIn {
    auth_type: Option<String>,
    cors: Option<Cors>,
    invoke_mode: Option<String>,
}

#[derive(Deserialize)]
pub struct UrlQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<i64>,
}

/// The function and alias a URL request names; versions (and `$LATEST` spelled out) are refused.
fn url_target(state: &SharedState, raw: &str, query: Option<&str>) -> Result<(FunctionName, Option<String>), ApiError> {
    let refuse = |q: &str| -> ApiError {
        ValidationError::constraint(
            "qualifier",
            q,
            "Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)",
        )
        .into()
    };
    if let Some(q) = query.filter(|q| q.starts_with('$') || q.bytes().all(|b| b.is_ascii_digit())) {
        return Err(refuse(q));
    }
    let (name, qualifier) = target(state, raw, query)?;
    match qualifier {
        None => Ok((name, None)),
        Some(Qualifier::Alias(a)) => Ok((name, Some(a))),
        Some(other) => Err(refuse(&other.to_string())),
    }
}

/// `2021-10-27T10:09:07.372000Z`: Lambda's URL timestamps carry microseconds.
fn timestamp(ms: i64) -> String {
    let iso = crate::clock::lambda_timestamp(ms);
    // lambda_timestamp: 2024-01-31T12:34:56.789+0000
    format!("{}000Z", iso.trim_end_matches("+0000"))
}

fn config_json(state: &SharedState, c: &UrlConfig, with_modified: bool) -> Value {
    let qualifier = c.alias.clone().map(Qualifier::Alias);
    let mut out = json!({
        "FunctionUrl": state.url_hosts.url(&c.url_id),
        "FunctionArn": state.arns.function(&c.function, qualifier.as_ref()),
        "AuthType": c.auth_type.as_str(),
        "CreationTime": timestamp(c.created_ms),
        "InvokeMode": c.invoke_mode.as_str(),
    });
    if with_modified {
        out["LastModifiedTime"] = timestamp(c.modified_ms).into();
    }
    if let Some(cors) = &c.cors {
        out["Cors"] = serde_json::to_value(cors).unwrap_or(Value::Null);
    }
    out
}

fn url_error(state: &SharedState, name: &FunctionName, alias: Option<&str>, e: StoreError) -> ApiError {
    let arn = state.arns.function(name, alias.map(|a| Qualifier::Alias(a.to_owned())).as_ref());
    match e {
        StoreError::NotFound { what: "function url config", .. } => {
            ApiError::not_found("The resource you requested does not exist.")
        }
        StoreError::NotFound { .. } => ApiError::not_found(format!("Function not found: {arn}")),
        StoreError::Conflict { .. } => ApiError::conflict(format!(
            "Failed to create function url config for [functionArn = {arn}]. Error message:  FunctionUrlConfig exists for this Lambda function"
        )),
        other => other.into(),
    }
}

fn cors(input: Option<Cors>) -> Result<Option<Cors>, ApiError> {
    Ok(input.map(Cors::validate).transpose()?)
}

pub async fn create(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<UrlQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (name, alias) = url_target(&state, &raw, q.qualifier.as_deref())?;
    let input: UrlIn = parse_json(&body)?;
    let auth_type = match input.auth_type.as_deref() {
        Some(a) => UrlAuthType::parse(a)?,
        None => {
            return Err(ApiError::validation(
                "1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null",
            ));
        }
    };
    let now = crate::clock::now_ms();
    let config = UrlConfig {
        function: name.clone(),
        alias: alias.clone(),
        url_id: UrlId::from_random(rand::random()),
        auth_type,
        invoke_mode: input.invoke_mode.as_deref().map(InvokeMode::parse).transpose()?.unwrap_or_default(),
        cors: cors(input.cors)?,
        created_ms: now,
        modified_ms: now,
    };
    let created = state.store.create_url_config(&config).map_err(|e| url_error(&state, &name, alias.as_deref(), e))?;
    Ok((StatusCode::CREATED, Json(config_json(&state, &created, false))).into_response())
}

pub async fn get(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<UrlQuery>,
) -> Result<Response, ApiError> {
    let (name, alias) = url_target(&state, &raw, q.qualifier.as_deref())?;
    check_function(&state, &name, alias.as_deref())?;
    let config = state
        .store
        .get_url_config(&name, alias.as_deref())
        .map_err(|e| url_error(&state, &name, alias.as_deref(), e))?;
    Ok(Json(config_json(&state, &config, true)).into_response())
}

pub async fn update(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<UrlQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (name, alias) = url_target(&state, &raw, q.qualifier.as_deref())?;
    let input: UrlIn = parse_json(&body)?;
    let update = UrlUpdate {
        auth_type: input.auth_type.as_deref().map(UrlAuthType::parse).transpose()?,
        invoke_mode: input.invoke_mode.as_deref().map(InvokeMode::parse).transpose()?,
        cors: cors(input.cors)?,
    };
    check_function(&state, &name, alias.as_deref())?;
    let config = state
        .store
        .update_url_config(&name, alias.as_deref(), update, crate::clock::now_ms())
        .map_err(|e| url_error(&state, &name, alias.as_deref(), e))?;
    Ok(Json(config_json(&state, &config, true)).into_response())
}

pub async fn delete(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<UrlQuery>,
) -> Result<Response, ApiError> {
    let (name, alias) = url_target(&state, &raw, q.qualifier.as_deref())?;
    check_function(&state, &name, alias.as_deref())?;
    state
        .store
        .delete_url_config(&name, alias.as_deref())
        .map_err(|e| url_error(&state, &name, alias.as_deref(), e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let (name, qualifier) = target(&state, &raw, None)?;
    if qualifier.is_some() {
        return Err(ApiError::invalid("ListFunctionUrlConfigs takes an unqualified function name"));
    }
    check_function(&state, &name, None)?;
    let limit = page_size(q.max_items, 50, 50)?;
    let configs = state.store.list_url_configs(&name, q.marker.as_deref(), limit + 1)?;
    let out = page_json(
        configs,
        limit,
        "FunctionUrlConfigs",
        |c| c.alias.clone().unwrap_or_default(),
        |c| config_json(&state, c, true),
    );
    Ok(Json(out).into_response())
}

/// A missing function (or alias) is "Function not found", a missing URL config the generic message.
fn check_function(state: &SharedState, name: &FunctionName, alias: Option<&str>) -> Result<(), ApiError> {
    let found = match alias {
        None => state.store.get_function(name, &nimbus_store::VersionId::Latest).map(|_| ()),
        Some(a) => state.store.get_alias(name, a).map(|_| ()),
    };
    found.map_err(|e| match e {
        StoreError::NotFound { .. } => {
            url_error(state, name, alias, StoreError::NotFound { what: "function", name: String::new() })
        }
        other => other.into(),
    })
}
