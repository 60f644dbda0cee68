//! Put/Get/Delete/ListProvisionedConcurrencyConfig(s): environments of a published version (or of the
//! version an alias points at) kept initialised ahead of invocations. Status is IN_PROGRESS until every
//! requested environment has finished init, then READY.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_model::limits::UNRESERVED_CONCURRENCY_MIN;
use nimbus_model::{FunctionName, Qualifier};
use nimbus_store::{FunctionRecord, ProvisionedConfig, StoreError, VersionId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{parse_json, target};
use crate::api::{ApiError, SharedState};
use crate::clock;

#[derive(Deserialize)]
pub struct ProvisionedQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
    #[serde(rename = "List")]
    list: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutIn {
    provisioned_concurrent_executions: Option<i64>,
}

fn config_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ProvisionedConcurrencyConfigNotFoundException",
        "No Provisioned Concurrency Config found for this function",
    )
}

/// The function and the qualifier (a version or an alias) a request names; `$LATEST` is refused.
fn qualified(state: &SharedState, raw: &str, query: Option<&str>) -> Result<(FunctionName, Qualifier), ApiError> {
    let (name, qualifier) = target(state, raw, query)?;
    match qualifier {
        None => Err(ApiError::invalid("Qualifier is required for provisioned concurrency")),
        Some(Qualifier::Latest) => Err(ApiError::invalid(
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
        )),
        Some(q) => Ok((name, q)),
    }
}

/// The version record a version or alias qualifier stands for now.
pub(crate) fn resolve(
    state: &SharedState,
    name: &FunctionName,
    qualifier: &Qualifier,
) -> Result<FunctionRecord, ApiError> {
    let version = match qualifier {
        Qualifier::Latest => VersionId::Latest,
        Qualifier::Version(v) => VersionId::Published(*v),
        Qualifier::Alias(alias) => match state.store.get_alias(name, alias) {
            Ok(a) => a.version,
            Err(StoreError::NotFound { .. }) => {
                return Err(ApiError::not_found(format!(
                    "Function not found: {}",
                    state.arns.function(name, Some(qualifier))
                )));
            }
            Err(e) => return Err(e.into()),
        },
    };
    state.store.get_function(name, &version).map_err(|e| match e {
        StoreError::NotFound { .. } => {
            ApiError::not_found(format!("Function not found: {}", state.arns.function(name, Some(qualifier))))
        }
        other => other.into(),
    })
}

async fn config_json(state: &SharedState, config: &ProvisionedConfig, with_arn: bool) -> Value {
    let qualifier = Qualifier::parse(&config.qualifier).ok();
    let status = match qualifier.as_ref().map(|q| resolve(state, &config.function, q)) {
        Some(Ok(record)) => state.invoker.provisioned_status(&record).await,
        _ => Default::default(),
    };
    let requested = config.requested as usize;
    let mut out = json!({
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": status.ready.min(requested),
        "AllocatedProvisionedConcurrentExecutions": status.ready.min(requested),
        "Status": if status.ready >= requested { "READY" } else { "IN_PROGRESS" },
        "LastModified": clock::lambda_timestamp(config.last_modified_ms),
    });
    if with_arn {
        out["FunctionArn"] = state.arns.function(&config.function, qualifier.as_ref()).into();
    }
    out
}

pub async fn put(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<ProvisionedQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (name, qualifier) = qualified(&state, &raw, q.qualifier.as_deref())?;
    let record = resolve(&state, &name, &qualifier)?;
    let input: PutIn = parse_json(&body)?;
    let requested = input
        .provisioned_concurrent_executions
        .ok_or_else(|| ApiError::invalid("ProvisionedConcurrentExecutions is required"))?;
    if requested < 1 {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{requested}' at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )));
    }
    if let Some(reserved) = state.store.reserved_concurrency(&name)?
        && requested > i64::from(reserved)
    {
        return Err(ApiError::invalid(format!(
            "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function ({reserved})."
        )));
    }
    let others: u64 = state
        .store
        .list_provisioned(None)?
        .iter()
        .filter(|c| !(c.function == name && c.qualifier == qualifier.to_string()))
        .map(|c| u64::from(c.requested))
        .sum();
    let available = u64::from(state.account_concurrency)
        .saturating_sub(u64::from(UNRESERVED_CONCURRENCY_MIN.min(state.account_concurrency)));
    if others + requested as u64 > available {
        return Err(ApiError::invalid(format!(
            "Requested Provisioned Concurrency exceeds the account's available concurrency ({available})."
        )));
    }
    let config = ProvisionedConfig {
        function: name,
        qualifier: qualifier.to_string(),
        requested: requested as u32,
        last_modified_ms: clock::now_ms(),
    };
    state.store.put_provisioned(&config)?;
    state.invoker.provision(record, config.requested as usize).await;
    let mut out = config_json(&state, &config, false).await;
    out["Status"] = "IN_PROGRESS".into();
    Ok((StatusCode::ACCEPTED, Json(out)).into_response())
}

/// GET serves both GetProvisionedConcurrencyConfig (`?Qualifier=`) and the List operation (`?List=ALL`).
pub async fn get(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<ProvisionedQuery>,
) -> Result<Response, ApiError> {
    if q.list.as_deref() == Some("ALL") {
        let (name, _) = target(&state, &raw, None)?;
        state.store.get_function(&name, &VersionId::Latest).map_err(|e| match e {
            StoreError::NotFound { .. } => {
                ApiError::not_found(format!("Function not found: {}", state.arns.function(&name, None)))
            }
            other => other.into(),
        })?;
        let mut configs = Vec::new();
        for config in state.store.list_provisioned(Some(&name))? {
            configs.push(config_json(&state, &config, true).await);
        }
        return Ok(Json(json!({ "ProvisionedConcurrencyConfigs": configs })).into_response());
    }
    let (name, qualifier) = qualified(&state, &raw, q.qualifier.as_deref())?;
    resolve(&state, &name, &qualifier)?;
    let config = state.store.get_provisioned(&name, &qualifier.to_string())?.ok_or_else(config_not_found)?;
    Ok(Json(config_json(&state, &config, false).await).into_response())
}

pub async fn delete(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<ProvisionedQuery>,
) -> Result<Response, ApiError> {
    let (name, qualifier) = qualified(&state, &raw, q.qualifier.as_deref())?;
    let record = resolve(&state, &name, &qualifier)?;
    if !state.store.delete_provisioned(&name, &qualifier.to_string())? {
        return Err(config_not_found());
    }
    state.invoker.provision(record, 0).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
