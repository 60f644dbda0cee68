//! Create/Get/List/Update/DeleteEventSourceMapping for SQS queues. The API records the mapping in a
//! transitional state (`Creating`, `Updating`, `Disabling`, `Deleting`) and answers 202, as Lambda
//! does; the supervisor in `events::mappings` settles the state and runs the pollers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_model::{FunctionName, Qualifier};
use nimbus_store::MappingRecord;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{parse_json, target};
use crate::api::{ApiError, SharedState};
use crate::clock;
use crate::events::filter::Pattern;
use crate::sqs::QueueSettings;

/// Lambda's limits for SQS sources.
const BATCH_MAX_STANDARD: i64 = 10_000;
const BATCH_MAX_FIFO: i64 = 10;
const FILTERS_MAX: usize = 5;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FilterIn {
    pattern: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FilterCriteriaIn {
    filters: Option<Vec<FilterIn>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScalingIn {
    maximum_concurrency: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MappingIn {
    event_source_arn: Option<String>,
    function_name: Option<String>,
    enabled: Option<bool>,
    batch_size: Option<i64>,
    maximum_batching_window_in_seconds: Option<i64>,
    filter_criteria: Option<FilterCriteriaIn>,
    function_response_types: Option<Vec<String>>,
    scaling_config: Option<ScalingIn>,
    starting_position: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListMappingsQuery {
    #[serde(rename = "EventSourceArn")]
    event_source_arn: Option<String>,
    #[serde(rename = "FunctionName")]
    function_name: Option<String>,
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<i64>,
}

fn to_json(state: &SharedState, m: &MappingRecord) -> Value {
    let qualifier = m.qualifier.as_deref().and_then(|q| Qualifier::parse(q).ok());
    let mut out = json!({
        "UUID": m.uuid,
        "BatchSize": m.batch_size,
        "MaximumBatchingWindowInSeconds": m.batching_window_s,
        "EventSourceArn": m.source_arn,
        "FunctionArn": state.arns.function(&m.function, qualifier.as_ref()),
        "LastModified": m.last_modified_ms as f64 / 1000.0,
        "State": m.state,
        "StateTransitionReason": m.state_reason,
        "FunctionResponseTypes": if m.report_batch_item_failures { vec!["ReportBatchItemFailures"] } else { vec![] },
        "EventSourceMappingArn": format!("arn:aws:lambda:{}:{}:event-source-mapping:{}", state.arns.region, state.arns.account, m.uuid),
    });
    if !m.filters.is_empty() {
        out["FilterCriteria"] =
            json!({ "Filters": m.filters.iter().map(|p| json!({ "Pattern": p })).collect::<Vec<_>>() });
    }
    if let Some(c) = m.max_concurrency {
        out["ScalingConfig"] = json!({ "MaximumConcurrency": c });
    }
    out
}

/// The mapping's function and qualifier, and the timeout (seconds) of the version it resolves to.
fn function_of(state: &SharedState, raw: &str) -> Result<(FunctionName, Option<String>, u64), ApiError> {
    let (name, qualifier) = target(state, raw, None)?;
    let record = state.invoker.resolve(&name, qualifier.as_ref())?;
    let timeout_s = record.config.timeout.as_millis() / 1000;
    Ok((name, qualifier.map(|q| q.to_string()), timeout_s))
}

/// Lambda refuses a queue whose messages would become visible again while the function may still be
/// working on them (they would be handled twice). It checks when the mapping is created or pointed at
/// another function, not when the function's timeout changes later.
fn check_visibility(visibility_timeout_s: i64, function_timeout_s: u64) -> Result<(), ApiError> {
    if i128::from(visibility_timeout_s) < i128::from(function_timeout_s) {
        return Err(ApiError::invalid(format!(
            "Queue visibility timeout: {visibility_timeout_s} seconds is less than Function timeout: \
             {function_timeout_s} seconds"
        )));
    }
    Ok(())
}

/// Applies the members given to `m` (a new mapping's defaults, or the stored one on update); a new
/// function is checked against the queue's `visibility_timeout_s`.
fn apply(
    state: &SharedState,
    m: &mut MappingRecord,
    input: MappingIn,
    fifo: bool,
    visibility_timeout_s: i64,
) -> Result<(), ApiError> {
    if let Some(b) = input.batch_size {
        let max = if fifo { BATCH_MAX_FIFO } else { BATCH_MAX_STANDARD };
        if !(1..=max).contains(&b) {
            return Err(ApiError::invalid(format!(
                "BatchSize must be between 1 and {max} for this event source, got {b}."
            )));
        }
        m.batch_size = b as u32;
    }
    if let Some(w) = input.maximum_batching_window_in_seconds {
        if !(0..=300).contains(&w) {
            return Err(ApiError::invalid(format!(
                "MaximumBatchingWindowInSeconds must be between 0 and 300, got {w}."
            )));
        }
        if fifo && w > 0 {
            return Err(ApiError::invalid("Batching window is not supported for FIFO queues."));
        }
        m.batching_window_s = w as u32;
    }
    if m.batch_size > 10 && m.batching_window_s == 0 {
        return Err(ApiError::invalid(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
        ));
    }
    if let Some(types) = input.function_response_types {
        for t in &types {
            if t != "ReportBatchItemFailures" {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '[{t}]' at 'functionResponseTypes' failed to satisfy constraint: Member must satisfy enum value set: [ReportBatchItemFailures]"
                )));
            }
        }
        m.report_batch_item_failures = !types.is_empty();
    }
    if let Some(scaling) = input.scaling_config {
        m.max_concurrency = match scaling.maximum_concurrency {
            None => None,
            Some(c) if (2..=1000).contains(&c) => Some(c as u32),
            Some(c) => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{c}' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value between 2 and 1000"
                )));
            }
        };
    }
    if let Some(criteria) = input.filter_criteria {
        let filters = criteria.filters.unwrap_or_default();
        if filters.len() > FILTERS_MAX {
            return Err(ApiError::invalid(format!("At most {FILTERS_MAX} filters are allowed for this event source.")));
        }
        let mut patterns = Vec::new();
        for f in filters {
            let p = f.pattern.unwrap_or_default();
            Pattern::parse(&p).map_err(|e| ApiError::invalid(e.to_string()))?;
            patterns.push(p);
        }
        m.filters = patterns;
    }
    if let Some(f) = input.function_name {
        let (name, qualifier, timeout_s) = function_of(state, &f)?;
        check_visibility(visibility_timeout_s, timeout_s)?;
        m.function = name;
        m.qualifier = qualifier;
    }
    if let Some(enabled) = input.enabled {
        m.enabled = enabled;
    }
    Ok(())
}

/// An SQS mapping polls as the function's execution role, so the role must allow receiving, deleting
/// and reading the queue's attributes, as Lambda checks when the mapping is created.
fn role_may_poll(state: &SharedState, function: &nimbus_model::FunctionName, queue_arn: &str) -> Result<(), ApiError> {
    let record = state.store.get_function(function, &nimbus_store::VersionId::Latest)?;
    let role = record.config.role.as_str();
    let principal = crate::authz::function_session_principal(&state.arns.account, role, function.as_str());
    let policies = state.policies.role_by_arn(role);
    for (action, name) in [
        (nimbus_model::policy::Action::from_static("sqs:ReceiveMessage"), "ReceiveMessage"),
        (nimbus_model::policy::Action::from_static("sqs:DeleteMessage"), "DeleteMessage"),
        (nimbus_model::policy::Action::from_static("sqs:GetQueueAttributes"), "GetQueueAttributes"),
    ] {
        let ctx = nimbus_model::policy::RequestContext::new(principal.clone(), action, queue_arn);
        if crate::policy_cache::decide_compiled(&policies, ctx).is_err() {
            return Err(ApiError::invalid(format!(
                "The provided execution role does not have permissions to call {name} on SQS"
            )));
        }
    }
    Ok(())
}

pub async fn create(State(state): State<SharedState>, body: Bytes) -> Result<Response, ApiError> {
    let input: MappingIn = parse_json(&body)?;
    let source = input.event_source_arn.clone().ok_or_else(|| ApiError::invalid("EventSourceArn is required"))?;
    let function = input.function_name.clone().ok_or_else(|| ApiError::invalid("FunctionName is required"))?;
    if input.starting_position.is_some() {
        return Err(ApiError::invalid("StartingPosition is not valid for SQS event sources."));
    }
    let queue_name = state.sqs.name_from_arn(&source).ok_or_else(|| {
        ApiError::invalid(format!(
            "Nimbus supports SQS event sources of this region and account only; {source} is not one."
        ))
    })?;
    let queue = state.sqs.queue(queue_name).await.map_err(|_| {
        ApiError::invalid(format!(
            "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue does not exist ({source})."
        ))
    })?;
    let (name, qualifier, timeout_s) = function_of(&state, &function)?;
    let visibility_timeout_s = QueueSettings::of(&queue).visibility_timeout_s;
    check_visibility(visibility_timeout_s, timeout_s)?;
    role_may_poll(&state, &name, &source)?;
    let mut record = MappingRecord {
        uuid: uuid::Uuid::new_v4().to_string(),
        function: name,
        qualifier,
        source_arn: source,
        batch_size: 10,
        batching_window_s: 0,
        enabled: true,
        state: "Creating".into(),
        state_reason: "USER_INITIATED".into(),
        filters: Vec::new(),
        report_batch_item_failures: false,
        max_concurrency: None,
        last_result: "No records processed".into(),
        last_modified_ms: clock::now_ms(),
    };
    let input = MappingIn { function_name: None, ..input };
    apply(&state, &mut record, input, queue.fifo, visibility_timeout_s)?;
    let existing = state.store.list_mappings(Some(&record.function), Some(&record.source_arn), None, 1)?;
    if let Some(other) = existing.first()
        && other.qualifier == record.qualifier
    {
        return Err(ApiError::conflict(format!(
            "An event source mapping with SQS arn (\" {} \") and function (\" {} \") already exists. Please update or delete the existing mapping with UUID {}",
            record.source_arn, record.function, other.uuid
        )));
    }
    state.store.put_mapping(&record)?;
    state.mappings.changed();
    Ok((StatusCode::ACCEPTED, Json(to_json(&state, &record))).into_response())
}

fn load(state: &SharedState, uuid: &str) -> Result<MappingRecord, ApiError> {
    state.store.get_mapping(uuid).map_err(|e| match e {
        nimbus_store::StoreError::NotFound { .. } => ApiError::not_found(format!(
            "The resource you requested does not exist. (Service: Lambda, Status Code: 404, UUID: {uuid})"
        )),
        other => other.into(),
    })
}

pub async fn get(State(state): State<SharedState>, Path(uuid): Path<String>) -> Result<Response, ApiError> {
    let record = load(&state, &uuid)?;
    Ok(Json(to_json(&state, &record)).into_response())
}

pub async fn update(
    State(state): State<SharedState>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: MappingIn = parse_json(&body)?;
    let mut record = load(&state, &uuid)?;
    if record.state == "Deleting" {
        return Err(ApiError::conflict(format!("The resource you requested is being deleted. (UUID: {uuid})")));
    }
    let fifo = record.source_arn.ends_with(".fifo");
    let was_enabled = record.enabled;
    // Only a new function is checked against the queue; a queue gone since is the poller's problem.
    let visibility_timeout_s = match state.sqs.name_from_arn(&record.source_arn) {
        Some(queue) => {
            state.sqs.queue(queue).await.map(|q| QueueSettings::of(&q).visibility_timeout_s).unwrap_or(i64::MAX)
        }
        None => i64::MAX,
    };
    apply(&state, &mut record, input, fifo, visibility_timeout_s)?;
    record.state = match (was_enabled, record.enabled) {
        (false, true) => "Enabling",
        (true, false) => "Disabling",
        _ => "Updating",
    }
    .into();
    record.state_reason = "USER_INITIATED".into();
    record.last_modified_ms = clock::now_ms();
    state.store.put_mapping(&record)?;
    state.mappings.changed();
    Ok((StatusCode::ACCEPTED, Json(to_json(&state, &record))).into_response())
}

pub async fn delete(State(state): State<SharedState>, Path(uuid): Path<String>) -> Result<Response, ApiError> {
    let mut record = load(&state, &uuid)?;
    record.state = "Deleting".into();
    record.state_reason = "USER_INITIATED".into();
    state.store.put_mapping(&record)?;
    state.mappings.changed();
    Ok((StatusCode::ACCEPTED, Json(to_json(&state, &record))).into_response())
}

pub async fn list(State(state): State<SharedState>, Query(q): Query<ListMappingsQuery>) -> Result<Response, ApiError> {
    let limit = super::paging::page_size(q.max_items, 10_000, 100)?;
    let function = match q.function_name.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Some(target(&state, f, None)?.0),
        None => None,
    };
    let records = state.store.list_mappings(
        function.as_ref(),
        q.event_source_arn.as_deref().filter(|s| !s.is_empty()),
        q.marker.as_deref().filter(|m| !m.is_empty()),
        limit + 1,
    )?;
    let out =
        super::paging::page_json(records, limit, "EventSourceMappings", |r| r.uuid.clone(), |r| to_json(&state, r));
    Ok(Json(out).into_response())
}
