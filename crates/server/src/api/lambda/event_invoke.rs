//! Put/Update/Get/Delete/ListFunctionEventInvokeConfig(s): retries, maximum event age and destinations
//! of asynchronous invocations (the dispatcher in `events::async_invoke` reads them), and the
//! validation of destination and dead-letter ARNs shared with CreateFunction/UpdateFunctionConfiguration.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_model::{FunctionName, FunctionRef, Qualifier};
use nimbus_store::EventInvokeConfig;
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::{page_json, page_size};
use super::shapes::{ListQuery, QualifierQuery};
use super::{parse_json, target};
use crate::api::{ApiError, SharedState};
use crate::clock;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationIn {
    destination: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationConfigIn {
    on_success: Option<DestinationIn>,
    on_failure: Option<DestinationIn>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigIn {
    maximum_retry_attempts: Option<i64>,
    maximum_event_age_in_seconds: Option<i64>,
    destination_config: Option<DestinationConfigIn>,
}

/// A destination of an async invocation: an SQS queue or a Lambda function of this server (not the
/// function itself). SNS topics, EventBridge buses and S3 buckets are AWS destinations Nimbus cannot
/// deliver to yet, so they are refused rather than silently dropped.
pub fn check_destination(state: &SharedState, function: &FunctionName, arn: &str) -> Result<(), ApiError> {
    if arn.starts_with("arn:aws:sqs:") {
        return match state.sqs.name_from_arn(arn) {
            Some(_) => Ok(()),
            None => {
                Err(ApiError::invalid(format!("The destination ARN {arn} is not a queue of this region and account.")))
            }
        };
    }
    if arn.starts_with("arn:aws:lambda:") {
        let parsed =
            FunctionRef::parse(arn).map_err(|_| ApiError::invalid(format!("The destination ARN {arn} is invalid.")))?;
        if parsed.account.as_ref().is_some_and(|a| a.as_str() != state.arns.account)
            || parsed.region.as_ref().is_some_and(|r| r.as_str() != state.arns.region)
        {
            return Err(ApiError::invalid(format!(
                "The destination ARN {arn} is not a function of this region and account."
            )));
        }
        if parsed.name == *function {
            return Err(ApiError::invalid("You can't specify the function as a destination for itself."));
        }
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "The destination ARN {arn} is not supported: Nimbus delivers to SQS queues and Lambda functions."
    )))
}

/// `DeadLetterConfig.TargetArn`: an SQS queue (SNS topics are not served yet). Empty clears it.
pub fn check_dead_letter_target(state: &SharedState, arn: &str) -> Result<(), ApiError> {
    if arn.is_empty() || state.sqs.name_from_arn(arn).is_some() {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "The provided target ARN {arn} is invalid: Nimbus supports SQS queues of this region and account as dead-letter targets."
    )))
}

/// The `DeadLetterConfig` of CreateFunction/UpdateFunctionConfiguration, checked: `Some("")` clears it.
pub fn dead_letter_target(
    state: &SharedState,
    config: Option<super::shapes::DeadLetterConfigIn>,
) -> Result<Option<String>, ApiError> {
    let Some(config) = config else { return Ok(None) };
    let target = config.target_arn.unwrap_or_default();
    check_dead_letter_target(state, &target)?;
    Ok(Some(target))
}

/// Stores a new function's dead-letter target and shows it in the records CreateFunction answers with.
pub fn record_dead_letter(
    state: &SharedState,
    latest: &mut nimbus_store::FunctionRecord,
    published: Option<&mut nimbus_store::FunctionRecord>,
    target: Option<String>,
) -> Result<(), ApiError> {
    let Some(target) = target.filter(|t| !t.is_empty()) else { return Ok(()) };
    state.store.set_dead_letter_target(&latest.name, Some(&target))?;
    latest.dead_letter_target = Some(target.clone());
    if let Some(p) = published {
        p.dead_letter_target = Some(target);
    }
    Ok(())
}

/// The function and qualifier a request names; the version or alias must exist. Unqualified is
/// `$LATEST`, as AWS reports it.
fn resolve(state: &SharedState, raw: &str, query: Option<&str>) -> Result<(FunctionName, Qualifier), ApiError> {
    let (name, qualifier) = target(state, raw, query)?;
    state.invoker.resolve(&name, qualifier.as_ref())?;
    Ok((name, qualifier.unwrap_or(Qualifier::Latest)))
}

fn to_json(state: &SharedState, c: &EventInvokeConfig) -> Value {
    let qualifier = Qualifier::parse(&c.qualifier).unwrap_or(Qualifier::Latest);
    let dest = |d: &Option<String>| match d {
        Some(arn) => json!({ "Destination": arn }),
        None => json!({}),
    };
    let mut out = json!({
        "LastModified": c.last_modified_ms as f64 / 1000.0,
        "FunctionArn": state.arns.function(&c.function, Some(&qualifier)),
        "DestinationConfig": { "OnSuccess": dest(&c.on_success), "OnFailure": dest(&c.on_failure) },
    });
    if let Some(n) = c.max_retries {
        out["MaximumRetryAttempts"] = n.into();
    }
    if let Some(n) = c.max_age_s {
        out["MaximumEventAgeInSeconds"] = n.into();
    }
    out
}

fn parse_config(
    state: &SharedState,
    name: &FunctionName,
    qualifier: &Qualifier,
    body: &[u8],
) -> Result<EventInvokeConfig, ApiError> {
    let input: ConfigIn = parse_json(body)?;
    if let Some(n) = input.maximum_retry_attempts
        && !(0..=2).contains(&n)
    {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 2"
        )));
    }
    if let Some(n) = input.maximum_event_age_in_seconds
        && !(60..=21_600).contains(&n)
    {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 21600"
        )));
    }
    let dests = input.destination_config.unwrap_or_default();
    let pick = |d: Option<DestinationIn>| d.and_then(|d| d.destination).filter(|d| !d.is_empty());
    let on_success = pick(dests.on_success);
    let on_failure = pick(dests.on_failure);
    for arn in on_success.iter().chain(on_failure.iter()) {
        check_destination(state, name, arn)?;
    }
    Ok(EventInvokeConfig {
        function: name.clone(),
        qualifier: qualifier.to_string(),
        max_retries: input.maximum_retry_attempts.map(|n| n as u32),
        max_age_s: input.maximum_event_age_in_seconds.map(|n| n as u32),
        on_success,
        on_failure,
        last_modified_ms: clock::now_ms(),
    })
}

async fn write(
    state: SharedState,
    raw: String,
    q: QualifierQuery,
    body: Bytes,
    merge: bool,
) -> Result<Response, ApiError> {
    let (name, qualifier) = resolve(&state, &raw, q.qualifier.as_deref())?;
    let config = parse_config(&state, &name, &qualifier, &body)?;
    if merge && state.store.get_event_invoke_config(&name, &config.qualifier)?.is_none() {
        return Err(not_configured(&state, &name, &qualifier));
    }
    let stored = state.store.put_event_invoke_config(&config, merge)?;
    Ok(Json(to_json(&state, &stored)).into_response())
}

fn not_configured(state: &SharedState, name: &FunctionName, qualifier: &Qualifier) -> ApiError {
    ApiError::not_found(format!(
        "The function {} doesn't have an EventInvokeConfig",
        state.arns.function(name, Some(qualifier))
    ))
}

pub async fn put(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<QualifierQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(state, raw, q, body, false).await
}

pub async fn update(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<QualifierQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(state, raw, q, body, true).await
}

pub async fn get(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<QualifierQuery>,
) -> Result<Response, ApiError> {
    let (name, qualifier) = resolve(&state, &raw, q.qualifier.as_deref())?;
    match state.store.get_event_invoke_config(&name, &qualifier.to_string())? {
        Some(c) => Ok(Json(to_json(&state, &c)).into_response()),
        None => Err(not_configured(&state, &name, &qualifier)),
    }
}

pub async fn delete(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<QualifierQuery>,
) -> Result<Response, ApiError> {
    let (name, qualifier) = resolve(&state, &raw, q.qualifier.as_deref())?;
    match state.store.delete_event_invoke_config(&name, &qualifier.to_string()) {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(nimbus_store::StoreError::NotFound { .. }) => Err(not_configured(&state, &name, &qualifier)),
        Err(e) => Err(e.into()),
    }
}

pub async fn list(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let (name, _) = resolve(&state, &raw, None)?;
    let limit = page_size(q.max_items, 50, 50)?;
    let configs =
        state.store.list_event_invoke_configs(&name, q.marker.as_deref().filter(|m| !m.is_empty()), limit + 1)?;
    let out = page_json(configs, limit, "FunctionEventInvokeConfigs", |c| c.qualifier.clone(), |c| to_json(&state, c));
    Ok(Json(out).into_response())
}
