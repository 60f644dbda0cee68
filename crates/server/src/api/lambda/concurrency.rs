//! PutFunctionConcurrency, GetFunctionConcurrency and DeleteFunctionConcurrency: reserved concurrency,
//! which both caps a function and sets aside part of the account's concurrency for it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_model::limits::UNRESERVED_CONCURRENCY_MIN;
use nimbus_store::VersionId;
use serde::Deserialize;
use serde_json::json;

use super::{parse_json, target};
use crate::api::{ApiError, SharedState};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutIn {
    reserved_concurrent_executions: Option<i64>,
}

fn unqualified(state: &SharedState, raw: &str) -> Result<nimbus_model::FunctionName, ApiError> {
    let (name, qualifier) = target(state, raw, None)?;
    if qualifier.is_some() {
        return Err(ApiError::invalid("Reserved concurrency applies to the function, not to a version or alias."));
    }
    // The function must exist; the error names its ARN as AWS does.
    state.store.get_function(&name, &VersionId::Latest).map_err(|e| match e {
        nimbus_store::StoreError::NotFound { .. } => {
            ApiError::not_found(format!("Function not found: {}", state.arns.function(&name, None)))
        }
        other => other.into(),
    })?;
    Ok(name)
}

pub async fn put(State(state): State<SharedState>, Path(raw): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let name = unqualified(&state, &raw)?;
    let input: PutIn = parse_json(&body)?;
    let requested = input
        .reserved_concurrent_executions
        .ok_or_else(|| ApiError::invalid("ReservedConcurrentExecutions is required"))?;
    if requested < 0 {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{requested}' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0"
        )));
    }
    let others: u64 = state
        .store
        .all_reserved_concurrency()?
        .into_iter()
        .filter(|(f, _)| f != name.as_str())
        .map(|(_, r)| u64::from(r))
        .sum();
    let account = u64::from(state.account_concurrency);
    let minimum = UNRESERVED_CONCURRENCY_MIN.min(state.account_concurrency) as u64;
    if others + requested as u64 + minimum > account {
        return Err(ApiError::invalid(format!(
            "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{minimum}]."
        )));
    }
    let reserved = requested as u32;
    state.store.set_reserved_concurrency(&name, Some(reserved))?;
    state.invoker.set_reserved(&name, Some(reserved)).await;
    Ok(Json(json!({ "ReservedConcurrentExecutions": reserved })).into_response())
}

pub async fn get(State(state): State<SharedState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let name = unqualified(&state, &raw)?;
    let body = match state.store.reserved_concurrency(&name)? {
        Some(r) => json!({ "ReservedConcurrentExecutions": r }),
        None => json!({}),
    };
    Ok(Json(body).into_response())
}

pub async fn delete(State(state): State<SharedState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let name = unqualified(&state, &raw)?;
    state.store.set_reserved_concurrency(&name, None)?;
    state.invoker.set_reserved(&name, None).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
