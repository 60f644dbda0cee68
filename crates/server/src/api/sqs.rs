//! The SQS API (JSON 1.0, `X-Amz-Target: AmazonSQS.<Operation>`), as botocore's `sqs` 2012-11-05 model
//! defines it. botocore (and so the AWS CLI) no longer sends SQS's older query protocol: the model lists
//! only `json`, so that protocol is not served.
//!
//! Errors carry both codes SQS sends: `__type` (`com.amazonaws.sqs#QueueDoesNotExist`, the modelled
//! shape, which picks the SDK's exception class) and the `x-amzn-query-error` header
//! (`AWS.SimpleQueueService.NonExistentQueue;Sender`, the code query-era clients compare against).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::SharedState;
use crate::auth::Caller;
use crate::clock;
use crate::sqs::{
    AttributeValue, BATCH_ENTRIES_MAX, MAX_WAIT_SECONDS, MESSAGE_BYTES_MAX, Outgoing, QueueSettings, SqsError,
    WireAttribute, decode_attributes, parse_attributes, parse_redrive,
};

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const LIST_QUEUES_MAX: usize = 1000;

pub async fn dispatch(state: &SharedState, operation: &str, body: &[u8], caller: Option<&Caller>) -> Response {
    let sender = caller.map_or("AIDANIMBUS", |c| c.access_key_id.as_str()).to_owned();
    let result = match operation {
        "CreateQueue" => create_queue(state, body).await,
        "GetQueueUrl" => get_queue_url(state, body).await,
        "ListQueues" => list_queues(state, body).await,
        "DeleteQueue" => delete_queue(state, body).await,
        "GetQueueAttributes" => get_queue_attributes(state, body).await,
        "SetQueueAttributes" => set_queue_attributes(state, body).await,
        "PurgeQueue" => purge_queue(state, body).await,
        "SendMessage" => send_message(state, body, &sender).await,
        "SendMessageBatch" => send_message_batch(state, body, &sender).await,
        "ReceiveMessage" => receive_message(state, body).await,
        "DeleteMessage" => delete_message(state, body).await,
        "DeleteMessageBatch" => delete_message_batch(state, body).await,
        "ChangeMessageVisibility" => change_visibility(state, body).await,
        "ChangeMessageVisibilityBatch" => change_visibility_batch(state, body).await,
        "TagQueue" => tag_queue(state, body).await,
        "UntagQueue" => untag_queue(state, body).await,
        "ListQueueTags" => list_queue_tags(state, body).await,
        "ListDeadLetterSourceQueues" => list_dead_letter_sources(state, body).await,
        other => Err(SqsError::UnsupportedOperation(format!("AmazonSQS.{other}"))),
    };
    match result {
        Ok(value) => ([("content-type", CONTENT_TYPE)], value.to_string()).into_response(),
        Err(e) => error_response(&e),
    }
}

/// (`__type` shape name, query-protocol code, status).
fn error_codes(e: &SqsError) -> (&'static str, &'static str, StatusCode) {
    let bad = StatusCode::BAD_REQUEST;
    match e {
        SqsError::QueueDoesNotExist => ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", bad),
        SqsError::QueueNameExists(_) => ("QueueNameExists", "QueueAlreadyExists", bad),
        SqsError::InvalidAttributeName(_) => ("InvalidAttributeName", "InvalidAttributeName", bad),
        SqsError::InvalidAttributeValue(_) => ("InvalidAttributeValue", "InvalidAttributeValue", bad),
        SqsError::InvalidParameterValue(_) => ("InvalidParameterValueException", "InvalidParameterValue", bad),
        SqsError::MissingParameter(_) => ("MissingRequiredParameterException", "MissingParameter", bad),
        SqsError::ReceiptHandleIsInvalid(_) => ("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", bad),
        SqsError::MessageNotInflight => ("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", bad),
        SqsError::TooManyEntriesInBatchRequest(_) => {
            ("TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", bad)
        }
        SqsError::EmptyBatchRequest => ("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", bad),
        SqsError::BatchEntryIdsNotDistinct(_) => {
            ("BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", bad)
        }
        SqsError::InvalidBatchEntryId(_) => ("InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", bad),
        SqsError::BatchRequestTooLong(_) => ("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", bad),
        SqsError::PurgeQueueInProgress(_) => {
            ("PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress", bad)
        }
        SqsError::InvalidMessageContents(_) => ("InvalidMessageContents", "InvalidMessageContents", bad),
        SqsError::UnsupportedOperation(_) => {
            ("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", bad)
        }
        SqsError::Store(s) if s.is_busy() => {
            ("ServiceUnavailable", "ServiceUnavailable", StatusCode::SERVICE_UNAVAILABLE)
        }
        SqsError::Store(_) | SqsError::Join(_) => ("InternalError", "InternalError", StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn error_response(e: &SqsError) -> Response {
    let (shape, query_code, status) = error_codes(e);
    if status.is_server_error() {
        tracing::error!(error = %e, "SQS request failed");
    }
    let fault = if status.is_server_error() { "Receiver" } else { "Sender" };
    let body = json!({ "__type": format!("com.amazonaws.sqs#{shape}"), "message": e.to_string() });
    let mut response = (status, [("content-type", CONTENT_TYPE)], body.to_string()).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{query_code};{fault}")) {
        response.headers_mut().insert("x-amzn-query-error", v);
    }
    if let Ok(v) = HeaderValue::from_str(shape) {
        response.headers_mut().insert("x-amzn-errortype", v);
    }
    response
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, SqsError> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body)
        .map_err(|e| SqsError::InvalidParameterValue(format!("Could not parse the request: {e}")))
}

async fn queue_of(state: &SharedState, url: Option<&str>) -> Result<nimbus_store::QueueRecord, SqsError> {
    let url = url.ok_or(SqsError::MissingParameter("QueueUrl"))?;
    let name = state.sqs.name_from_url(url)?;
    state.sqs.queue(name).await
}

// ---- queues ---------------------------------------------------------------------------------------------

const SETTABLE: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

fn check_range(name: &str, value: &str, min: i64, max: i64) -> Result<String, SqsError> {
    match value.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n.to_string()),
        _ => Err(SqsError::InvalidAttributeValue(format!("Invalid value for the parameter {name}."))),
    }
}

fn check_bool(name: &str, value: &str) -> Result<String, SqsError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok("true".into()),
        "false" => Ok("false".into()),
        _ => Err(SqsError::InvalidAttributeValue(format!("Invalid value for the parameter {name}."))),
    }
}

/// Validates attributes given to CreateQueue/SetQueueAttributes into their stored (normalised) form.
fn normalize_attributes(
    state: &SharedState,
    given: &BTreeMap<String, String>,
    fifo: bool,
    creating: bool,
) -> Result<BTreeMap<String, String>, SqsError> {
    let mut out = BTreeMap::new();
    for (name, value) in given {
        let v = match name.as_str() {
            "DelaySeconds" => check_range(name, value, 0, 900)?,
            "MaximumMessageSize" => check_range(name, value, 1024, MESSAGE_BYTES_MAX as i64)?,
            "MessageRetentionPeriod" => check_range(name, value, 60, 1_209_600)?,
            "ReceiveMessageWaitTimeSeconds" => check_range(name, value, 0, MAX_WAIT_SECONDS)?,
            "VisibilityTimeout" => check_range(name, value, 0, 43_200)?,
            "KmsDataKeyReusePeriodSeconds" => check_range(name, value, 60, 86_400)?,
            "SqsManagedSseEnabled" => check_bool(name, value)?,
            "RedrivePolicy" if value.is_empty() => String::new(),
            "RedrivePolicy" => {
                let (arn, count) = parse_redrive(value)?;
                let dlq = state.sqs.name_from_arn(&arn).ok_or_else(|| {
                    SqsError::InvalidParameterValue(format!(
                        "Value {value} for parameter RedrivePolicy is invalid. Reason: Dead-letter target does not exist."
                    ))
                })?;
                if dlq.ends_with(".fifo") != fifo {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "Value {value} for parameter RedrivePolicy is invalid. Reason: Dead-letter queue must be same type of queue as the source.."
                    )));
                }
                json!({ "deadLetterTargetArn": arn, "maxReceiveCount": count }).to_string()
            }
            "FifoQueue" => {
                if !creating {
                    return Err(SqsError::InvalidAttributeName(name.clone()));
                }
                check_bool(name, value)?
            }
            "ContentBasedDeduplication" | "DeduplicationScope" | "FifoThroughputLimit" if !fifo => {
                return Err(SqsError::InvalidAttributeName(name.clone()));
            }
            "ContentBasedDeduplication" => check_bool(name, value)?,
            "DeduplicationScope" if matches!(value.as_str(), "queue" | "messageGroup") => value.clone(),
            "FifoThroughputLimit" if matches!(value.as_str(), "perQueue" | "perMessageGroupId") => value.clone(),
            "DeduplicationScope" | "FifoThroughputLimit" => {
                return Err(SqsError::InvalidAttributeValue(format!("Invalid value for the parameter {name}.")));
            }
            "Policy" | "RedriveAllowPolicy" | "KmsMasterKeyId" => value.clone(),
            _ => return Err(SqsError::InvalidAttributeName(name.clone())),
        };
        out.insert(name.clone(), v);
    }
    Ok(out)
}

fn queue_name_valid(name: &str) -> bool {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    !base.is_empty() && name.len() <= 80 && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[derive(Deserialize)]
struct CreateQueueIn {
    #[serde(rename = "QueueName")]
    queue_name: Option<String>,
    #[serde(rename = "Attributes")]
    attributes: Option<BTreeMap<String, String>>,
    #[serde(rename = "tags")]
    tags: Option<BTreeMap<String, String>>,
}

async fn create_queue(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: CreateQueueIn = parse(body)?;
    let name = input.queue_name.ok_or(SqsError::MissingParameter("QueueName"))?;
    if !queue_name_valid(&name) {
        return Err(SqsError::InvalidParameterValue(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length".into(),
        ));
    }
    let given = input.attributes.unwrap_or_default();
    let fifo_attr = given.get("FifoQueue").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let fifo = name.ends_with(".fifo");
    if fifo_attr != fifo {
        return Err(SqsError::InvalidParameterValue(if fifo {
            "A queue whose name ends with .fifo must be created with the attribute FifoQueue set to true.".into()
        } else {
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.".into()
        }));
    }
    let attrs = normalize_attributes(state, &given, fifo, true)?;
    let mut stored = attrs.clone();
    stored.retain(|_, v| !v.is_empty());
    let tags = input.tags.unwrap_or_default();
    let (queue, created) = state.store.create_queue(&name, fifo, &stored, &tags, clock::now_ms())?;
    if !created {
        // The same name with different attribute values is refused; the same ones answer the URL.
        for (k, v) in &attrs {
            let current = queue.attributes.get(k).cloned().unwrap_or_else(|| default_attribute(k).unwrap_or_default());
            if current != *v {
                return Err(SqsError::QueueNameExists(k.clone()));
            }
        }
    }
    Ok(json!({ "QueueUrl": state.sqs.queue_url(&name) }))
}

fn default_attribute(name: &str) -> Option<String> {
    Some(
        match name {
            "DelaySeconds" | "ReceiveMessageWaitTimeSeconds" => "0",
            "MaximumMessageSize" => "1048576",
            "MessageRetentionPeriod" => "345600",
            "VisibilityTimeout" => "30",
            "SqsManagedSseEnabled" => "true",
            "ContentBasedDeduplication" => "false",
            "DeduplicationScope" => "queue",
            "FifoThroughputLimit" => "perQueue",
            _ => return None,
        }
        .to_owned(),
    )
}

#[derive(Deserialize)]
struct QueueNameIn {
    #[serde(rename = "QueueName")]
    queue_name: Option<String>,
    #[serde(rename = "QueueOwnerAWSAccountId")]
    owner: Option<String>,
}

async fn get_queue_url(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: QueueNameIn = parse(body)?;
    let name = input.queue_name.ok_or(SqsError::MissingParameter("QueueName"))?;
    if input.owner.is_some_and(|o| o != state.sqs.account()) {
        return Err(SqsError::QueueDoesNotExist);
    }
    let queue = state.sqs.queue(&name).await?;
    Ok(json!({ "QueueUrl": state.sqs.queue_url(&queue.name) }))
}

#[derive(Deserialize)]
struct ListQueuesIn {
    #[serde(rename = "QueueNamePrefix")]
    prefix: Option<String>,
    #[serde(rename = "NextToken")]
    next_token: Option<String>,
    #[serde(rename = "MaxResults")]
    max_results: Option<i64>,
}

async fn list_queues(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: ListQueuesIn = parse(body)?;
    let limit = match input.max_results {
        None => LIST_QUEUES_MAX,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(SqsError::InvalidParameterValue(format!(
                "Value {n} for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000."
            )));
        }
    };
    let after = match input.next_token.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| SqsError::InvalidParameterValue("Invalid NextToken value.".into()))?,
        ),
        None => None,
    };
    let mut queues = state.store.list_queues(input.prefix.as_deref().unwrap_or(""), after.as_deref(), limit + 1)?;
    let more = queues.len() > limit;
    queues.truncate(limit);
    let urls: Vec<String> = queues.iter().map(|q| state.sqs.queue_url(&q.name)).collect();
    let mut out = json!({});
    if !urls.is_empty() {
        out["QueueUrls"] = json!(urls);
    }
    if more
        && input.max_results.is_some()
        && let Some(last) = queues.last()
    {
        out["NextToken"] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&last.name).into();
    }
    Ok(out)
}

#[derive(Deserialize)]
struct QueueUrlIn {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
}

async fn delete_queue(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: QueueUrlIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    match state.store.delete_queue(&queue.name) {
        Ok(()) => {}
        Err(nimbus_store::StoreError::NotFound { .. }) => return Err(SqsError::QueueDoesNotExist),
        Err(e) => return Err(e.into()),
    }
    state.sqs.forget(queue.id);
    Ok(json!({}))
}

async fn purge_queue(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: QueueUrlIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let store = state.store.clone();
    let id = queue.id;
    match tokio::task::spawn_blocking(move || store.purge_queue(id, clock::now_ms())).await?? {
        Some(_) => Ok(json!({})),
        None => Err(SqsError::PurgeQueueInProgress(state.sqs.queue_arn(&queue.name))),
    }
}

#[derive(Deserialize)]
struct GetAttributesIn {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
    #[serde(rename = "AttributeNames")]
    attribute_names: Option<Vec<String>>,
}

const READABLE: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

async fn get_queue_attributes(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: GetAttributesIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let names = input.attribute_names.unwrap_or_default();
    let all = names.iter().any(|n| n == "All");
    for n in &names {
        if n != "All" && !SETTABLE.contains(&n.as_str()) && !READABLE.contains(&n.as_str()) {
            return Err(SqsError::InvalidAttributeName(n.clone()));
        }
    }
    let wanted = |n: &str| all || names.iter().any(|x| x == n);
    let mut out = BTreeMap::new();
    let mut full: BTreeMap<String, String> = BTreeMap::new();
    for name in [
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "SqsManagedSseEnabled",
    ] {
        full.insert(name.into(), default_attribute(name).unwrap_or_default());
    }
    if queue.fifo {
        full.insert("FifoQueue".into(), "true".into());
        for name in ["ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"] {
            full.insert(name.into(), default_attribute(name).unwrap_or_default());
        }
    }
    full.extend(queue.attributes.clone());
    if READABLE.iter().take(3).any(|n| wanted(n)) {
        let store = state.store.clone();
        let id = queue.id;
        let counts = tokio::task::spawn_blocking(move || store.queue_counts(id, clock::now_ms())).await??;
        full.insert("ApproximateNumberOfMessages".into(), counts.visible.to_string());
        full.insert("ApproximateNumberOfMessagesNotVisible".into(), counts.in_flight.to_string());
        full.insert("ApproximateNumberOfMessagesDelayed".into(), counts.delayed.to_string());
    }
    full.insert("CreatedTimestamp".into(), (queue.created_ms / 1000).to_string());
    full.insert("LastModifiedTimestamp".into(), (queue.modified_ms / 1000).to_string());
    full.insert("QueueArn".into(), state.sqs.queue_arn(&queue.name));
    for (k, v) in full {
        if wanted(&k) {
            out.insert(k, v);
        }
    }
    if out.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "Attributes": out }))
}

#[derive(Deserialize)]
struct SetAttributesIn {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
    #[serde(rename = "Attributes")]
    attributes: Option<BTreeMap<String, String>>,
}

async fn set_queue_attributes(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: SetAttributesIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let given = input.attributes.ok_or(SqsError::MissingParameter("Attributes"))?;
    let attrs = normalize_attributes(state, &given, queue.fifo, false)?;
    let mut merged = queue.attributes.clone();
    for (k, v) in attrs {
        if v.is_empty() {
            merged.remove(&k);
        } else {
            merged.insert(k, v);
        }
    }
    state.store.set_queue_attributes(&queue.name, &merged, clock::now_ms())?;
    Ok(json!({}))
}

#[derive(Deserialize)]
struct TagIn {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
    #[serde(rename = "Tags")]
    tags: Option<BTreeMap<String, String>>,
    #[serde(rename = "TagKeys")]
    tag_keys: Option<Vec<String>>,
}

async fn tag_queue(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: TagIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let mut tags = queue.tags.clone();
    tags.extend(input.tags.unwrap_or_default());
    state.store.set_queue_tags(&queue.name, &tags)?;
    Ok(json!({}))
}

async fn untag_queue(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: TagIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let mut tags = queue.tags.clone();
    for k in input.tag_keys.unwrap_or_default() {
        tags.remove(&k);
    }
    state.store.set_queue_tags(&queue.name, &tags)?;
    Ok(json!({}))
}

async fn list_queue_tags(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: TagIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    if queue.tags.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "Tags": queue.tags }))
}

async fn list_dead_letter_sources(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: QueueUrlIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let arn = state.sqs.queue_arn(&queue.name);
    let all = state.store.list_queues("", None, usize::MAX)?;
    let urls: Vec<String> = all
        .iter()
        .filter(|q| QueueSettings::of(q).redrive.is_some_and(|(target, _)| target == arn))
        .map(|q| state.sqs.queue_url(&q.name))
        .collect();
    Ok(json!({ "queueUrls": urls }))
}

// ---- messages -------------------------------------------------------------------------------------------

#[derive(Deserialize, Clone)]
struct SendIn {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
    #[serde(rename = "Id")]
    id: Option<String>,
    #[serde(rename = "MessageBody")]
    message_body: Option<String>,
    #[serde(rename = "DelaySeconds")]
    delay_seconds: Option<i64>,
    #[serde(rename = "MessageAttributes")]
    message_attributes: Option<BTreeMap<String, WireAttribute>>,
    #[serde(rename = "MessageSystemAttributes")]
    message_system_attributes: Option<BTreeMap<String, WireAttribute>>,
    #[serde(rename = "MessageDeduplicationId")]
    dedup_id: Option<String>,
    #[serde(rename = "MessageGroupId")]
    group_id: Option<String>,
}

fn outgoing(input: SendIn) -> Result<Outgoing, SqsError> {
    let system = input.message_system_attributes.unwrap_or_default();
    for name in system.keys() {
        if name != "AWSTraceHeader" {
            return Err(SqsError::InvalidParameterValue(format!("Message system attribute name '{name}' is invalid.")));
        }
    }
    Ok(Outgoing {
        body: input.message_body.ok_or(SqsError::MissingParameter("MessageBody"))?,
        attributes: parse_attributes(input.message_attributes.as_ref())?,
        system_attributes: parse_attributes_unchecked(&system)?,
        delay_s: input.delay_seconds,
        group_id: input.group_id,
        dedup_id: input.dedup_id,
    })
}

/// System attributes (`AWSTraceHeader`) skip the user-attribute name rules.
fn parse_attributes_unchecked(
    wire: &BTreeMap<String, WireAttribute>,
) -> Result<BTreeMap<String, AttributeValue>, SqsError> {
    wire.iter().map(|(k, v)| Ok((k.clone(), AttributeValue::from_wire(k, v)?))).collect()
}

fn sent_json(sent: &crate::sqs::Sent) -> Value {
    let mut out = json!({ "MessageId": sent.message_id, "MD5OfMessageBody": sent.md5_body });
    if let Some(m) = &sent.md5_attributes {
        out["MD5OfMessageAttributes"] = m.clone().into();
    }
    if let Some(m) = &sent.md5_system {
        out["MD5OfMessageSystemAttributes"] = m.clone().into();
    }
    if let Some(s) = &sent.sequence {
        out["SequenceNumber"] = s.clone().into();
    }
    out
}

async fn send_message(state: &SharedState, body: &[u8], sender: &str) -> Result<Value, SqsError> {
    let input: SendIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let message = outgoing(input)?;
    let sent = state.sqs.send(&queue, sender, vec![message]).await?;
    Ok(sent.first().map(sent_json).unwrap_or_else(|| json!({})))
}

fn check_entry_ids<'a>(ids: impl Iterator<Item = Option<&'a str>>, count: usize) -> Result<Vec<String>, SqsError> {
    if count == 0 {
        return Err(SqsError::EmptyBatchRequest);
    }
    if count > BATCH_ENTRIES_MAX {
        return Err(SqsError::TooManyEntriesInBatchRequest(count));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for id in ids {
        let id = id.unwrap_or_default();
        if id.is_empty() || id.len() > 80 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(SqsError::InvalidBatchEntryId(id.to_owned()));
        }
        if !seen.insert(id.to_owned()) {
            return Err(SqsError::BatchEntryIdsNotDistinct(id.to_owned()));
        }
        out.push(id.to_owned());
    }
    Ok(out)
}

fn failed_entry(id: &str, e: &SqsError) -> Value {
    let (_, code, status) = error_codes(e);
    json!({ "Id": id, "SenderFault": !status.is_server_error(), "Code": code, "Message": e.to_string() })
}

#[derive(Deserialize)]
struct SendBatchIn {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
    #[serde(rename = "Entries")]
    entries: Option<Vec<SendIn>>,
}

async fn send_message_batch(state: &SharedState, body: &[u8], sender: &str) -> Result<Value, SqsError> {
    let input: SendBatchIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let entries = input.entries.unwrap_or_default();
    let ids = check_entry_ids(entries.iter().map(|e| e.id.as_deref()), entries.len())?;
    let total: usize = entries.iter().map(|e| e.message_body.as_ref().map_or(0, String::len)).sum();
    if total > MESSAGE_BYTES_MAX {
        return Err(SqsError::BatchRequestTooLong(total));
    }
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    let mut valid = Vec::new();
    let mut valid_ids = Vec::new();
    for (id, entry) in ids.into_iter().zip(entries) {
        match outgoing(entry) {
            Ok(m) => {
                valid.push(m);
                valid_ids.push(id);
            }
            Err(e) => failed.push(failed_entry(&id, &e)),
        }
    }
    // Entries are sent one by one only when one of them is refused, so the common case is one commit.
    match state.sqs.send(&queue, sender, valid.clone()).await {
        Ok(sent) => {
            for (id, s) in valid_ids.iter().zip(&sent) {
                let mut v = sent_json(s);
                v["Id"] = id.clone().into();
                successful.push(v);
            }
        }
        Err(SqsError::QueueDoesNotExist) => return Err(SqsError::QueueDoesNotExist),
        Err(_) => {
            for (id, m) in valid_ids.iter().zip(valid) {
                match state.sqs.send(&queue, sender, vec![m]).await {
                    Ok(sent) => {
                        if let Some(s) = sent.first() {
                            let mut v = sent_json(s);
                            v["Id"] = id.clone().into();
                            successful.push(v);
                        }
                    }
                    Err(e) => failed.push(failed_entry(id, &e)),
                }
            }
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failed }))
}

#[derive(Deserialize)]
struct ReceiveIn {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
    #[serde(rename = "AttributeNames")]
    attribute_names: Option<Vec<String>>,
    #[serde(rename = "MessageSystemAttributeNames")]
    system_attribute_names: Option<Vec<String>>,
    #[serde(rename = "MessageAttributeNames")]
    message_attribute_names: Option<Vec<String>>,
    #[serde(rename = "MaxNumberOfMessages")]
    max_number_of_messages: Option<i64>,
    #[serde(rename = "VisibilityTimeout")]
    visibility_timeout: Option<i64>,
    #[serde(rename = "WaitTimeSeconds")]
    wait_time_seconds: Option<i64>,
}

/// The system attributes of a received message (all of them; callers pick).
fn system_attributes(_state: &SharedState, m: &nimbus_store::ReceivedMessage) -> BTreeMap<&'static str, String> {
    crate::sqs::system_attributes(m)
}

fn attribute_wanted(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| {
        p == "All"
            || p == ".*"
            || p == name
            || p.strip_suffix(".*").is_some_and(|prefix| name.starts_with(&format!("{prefix}.")))
    })
}

async fn receive_message(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: ReceiveIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let max = match input.max_number_of_messages {
        None => 1,
        Some(n) if (1..=10).contains(&n) => n as usize,
        Some(n) => {
            return Err(SqsError::InvalidParameterValue(format!(
                "Value {n} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
            )));
        }
    };
    if let Some(v) = input.visibility_timeout
        && !(0..=43_200).contains(&v)
    {
        return Err(SqsError::InvalidParameterValue(format!(
            "Value {v} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided."
        )));
    }
    let wait = match input.wait_time_seconds {
        None => QueueSettings::of(&queue).receive_wait_s,
        Some(w) if (0..=MAX_WAIT_SECONDS).contains(&w) => w,
        Some(w) => {
            return Err(SqsError::InvalidParameterValue(format!(
                "Value {w} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided."
            )));
        }
    };
    let received = state.sqs.receive(&queue, max, input.visibility_timeout, Duration::from_secs(wait as u64)).await?;
    let mut wanted_system: Vec<String> = input.attribute_names.unwrap_or_default();
    wanted_system.extend(input.system_attribute_names.unwrap_or_default());
    let wanted_user = input.message_attribute_names.unwrap_or_default();
    let messages: Vec<Value> = received
        .iter()
        .map(|m| {
            let mut v = json!({
                "MessageId": m.message_id,
                "ReceiptHandle": state.sqs.receipt_handle(queue.id, m),
                "MD5OfBody": m.md5_body,
                "Body": m.body,
            });
            let sys: BTreeMap<&str, String> = system_attributes(state, m)
                .into_iter()
                .filter(|(k, _)| wanted_system.iter().any(|w| w == "All" || w == k))
                .collect();
            if !sys.is_empty() {
                v["Attributes"] = json!(sys);
            }
            let user = decode_attributes(m.attributes.as_deref());
            if !user.is_empty() && !wanted_user.is_empty() {
                let chosen: BTreeMap<&String, WireAttribute> = user
                    .iter()
                    .filter(|(k, _)| attribute_wanted(&wanted_user, k))
                    .map(|(k, a)| (k, a.to_wire()))
                    .collect();
                if !chosen.is_empty() {
                    v["MessageAttributes"] = json!(chosen);
                    // The digest covers the attributes returned, as SDKs recompute it from them.
                    let returned: BTreeMap<String, AttributeValue> = user
                        .iter()
                        .filter(|(k, _)| attribute_wanted(&wanted_user, k))
                        .map(|(k, a)| (k.clone(), a.clone()))
                        .collect();
                    if let Some(md5) = crate::sqs::digest::attributes(&returned) {
                        v["MD5OfMessageAttributes"] = md5.into();
                    }
                }
            }
            v
        })
        .collect();
    if messages.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "Messages": messages }))
}

#[derive(Deserialize)]
struct DeleteIn {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
    #[serde(rename = "ReceiptHandle")]
    receipt_handle: Option<String>,
    #[serde(rename = "Id")]
    id: Option<String>,
    #[serde(rename = "VisibilityTimeout")]
    visibility_timeout: Option<i64>,
}

async fn delete_message(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: DeleteIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let handle = input.receipt_handle.ok_or(SqsError::MissingParameter("ReceiptHandle"))?;
    let parsed = state.sqs.parse_receipt(queue.id, &handle)?;
    state.sqs.delete(queue.id, vec![parsed]).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
struct BatchIn {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
    #[serde(rename = "Entries")]
    entries: Option<Vec<DeleteIn>>,
}

async fn delete_message_batch(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: BatchIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let entries = input.entries.unwrap_or_default();
    let ids = check_entry_ids(entries.iter().map(|e| e.id.as_deref()), entries.len())?;
    let mut handles = Vec::new();
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (id, e) in ids.iter().zip(&entries) {
        match e.receipt_handle.as_deref().map(|h| state.sqs.parse_receipt(queue.id, h)) {
            Some(Ok(parsed)) => {
                handles.push(parsed);
                successful.push(json!({ "Id": id }));
            }
            Some(Err(err)) => failed.push(failed_entry(id, &err)),
            None => failed.push(failed_entry(id, &SqsError::MissingParameter("ReceiptHandle"))),
        }
    }
    state.sqs.delete(queue.id, handles).await?;
    Ok(json!({ "Successful": successful, "Failed": failed }))
}

fn visibility_param(v: Option<i64>) -> Result<i64, SqsError> {
    match v {
        Some(v) if (0..=43_200).contains(&v) => Ok(v),
        Some(v) => Err(SqsError::InvalidParameterValue(format!(
            "Value {v} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200."
        ))),
        None => Err(SqsError::MissingParameter("VisibilityTimeout")),
    }
}

async fn change_visibility(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: DeleteIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let handle = input.receipt_handle.ok_or(SqsError::MissingParameter("ReceiptHandle"))?;
    let (row, token) = state.sqs.parse_receipt(queue.id, &handle)?;
    let timeout = visibility_param(input.visibility_timeout)?;
    let result = state.sqs.change_visibility(queue.id, vec![(row, token, timeout * 1000)]).await?;
    match result.first() {
        Some(nimbus_store::ChangeVisibility::Changed) => Ok(json!({})),
        Some(nimbus_store::ChangeVisibility::NotInFlight) => Err(SqsError::MessageNotInflight),
        _ => Err(SqsError::ReceiptHandleIsInvalid(handle)),
    }
}

async fn change_visibility_batch(state: &SharedState, body: &[u8]) -> Result<Value, SqsError> {
    let input: BatchIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let entries = input.entries.unwrap_or_default();
    let ids = check_entry_ids(entries.iter().map(|e| e.id.as_deref()), entries.len())?;
    let mut failed = Vec::new();
    let mut todo = Vec::new();
    let mut todo_ids = Vec::new();
    for (id, e) in ids.iter().zip(&entries) {
        let parsed = e
            .receipt_handle
            .as_deref()
            .ok_or(SqsError::MissingParameter("ReceiptHandle"))
            .and_then(|h| state.sqs.parse_receipt(queue.id, h))
            .and_then(|(row, token)| Ok((row, token, visibility_param(e.visibility_timeout)? * 1000)));
        match parsed {
            Ok(entry) => {
                todo.push(entry);
                todo_ids.push((id.clone(), e.receipt_handle.clone().unwrap_or_default()));
            }
            Err(err) => failed.push(failed_entry(id, &err)),
        }
    }
    let results = state.sqs.change_visibility(queue.id, todo).await?;
    let mut successful = Vec::new();
    for ((id, handle), result) in todo_ids.into_iter().zip(results) {
        match result {
            nimbus_store::ChangeVisibility::Changed => successful.push(json!({ "Id": id })),
            nimbus_store::ChangeVisibility::NotInFlight => {
                failed.push(failed_entry(&id, &SqsError::MessageNotInflight))
            }
            nimbus_store::ChangeVisibility::Unknown => {
                failed.push(failed_entry(&id, &SqsError::ReceiptHandleIsInvalid(handle)))
            }
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failed }))
}
