//! SQS queue operations: create, look up, list, delete, purge, attributes, tags and dead-letter sources.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use nimbus_model::limits::{
    SQS_ATTRIBUTE_BYTES_MAX, SQS_POLICY_BYTES_MAX, SQS_TAG_KEY_CHARS_MAX, SQS_TAG_VALUE_CHARS_MAX,
    SQS_TAGS_PER_QUEUE_MAX,
};

use super::{Deps, parse, queue_of};

const LIST_QUEUES_MAX: usize = 1000;
use crate::clock;
use crate::sqs::{MAX_WAIT_SECONDS, MESSAGE_BYTES_MAX, QueueSettings, SqsError, parse_redrive};

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
    state: &Deps<'_>,
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
            "RedrivePolicy" if value.len() > SQS_ATTRIBUTE_BYTES_MAX => {
                return Err(SqsError::InvalidParameterValue(format!(
                    "Value for parameter RedrivePolicy is invalid. Reason: longer than {SQS_ATTRIBUTE_BYTES_MAX} bytes."
                )));
            }
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
            "Policy" if value.len() > SQS_POLICY_BYTES_MAX => {
                return Err(SqsError::InvalidAttributeValue(format!(
                    "Invalid value for the parameter Policy. Reason: Policy size exceeds {SQS_POLICY_BYTES_MAX} bytes."
                )));
            }
            "RedriveAllowPolicy" | "KmsMasterKeyId" if value.len() > SQS_ATTRIBUTE_BYTES_MAX => {
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

pub(super) async fn create_queue(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
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
    check_tags(&name, &tags)?;
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

pub(super) async fn get_queue_url(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
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

pub(super) async fn list_queues(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
    let input: ListQueuesIn = parse(body)?;
    let limit = max_results(input.max_results)?;
    let after = next_token(input.next_token.as_deref())?;
    let mut names = state.store.list_queue_names(input.prefix.as_deref().unwrap_or(""), after.as_deref(), limit + 1)?;
    let more = names.len() > limit;
    names.truncate(limit);
    let urls: Vec<String> = names.iter().map(|name| state.sqs.queue_url(name)).collect();
    let mut out = json!({});
    if !urls.is_empty() {
        out["QueueUrls"] = json!(urls);
    }
    if more
        && input.max_results.is_some()
        && let Some(last) = names.last()
    {
        out["NextToken"] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last).into();
    }
    Ok(out)
}

fn max_results(given: Option<i64>) -> Result<usize, SqsError> {
    match given {
        None => Ok(LIST_QUEUES_MAX),
        Some(n) if (1..=1000).contains(&n) => Ok(n as usize),
        Some(n) => Err(SqsError::InvalidParameterValue(format!(
            "Value {n} for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000."
        ))),
    }
}

fn next_token(given: Option<&str>) -> Result<Option<String>, SqsError> {
    match given.filter(|t| !t.is_empty()) {
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| SqsError::InvalidParameterValue("Invalid NextToken value.".into())),
        None => Ok(None),
    }
}

#[derive(Deserialize)]
struct QueueUrlIn {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
}

pub(super) async fn delete_queue(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
    let input: QueueUrlIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    // Off the async workers: every message of the queue goes with it.
    let (store, doomed) = (state.store.clone(), queue.name.clone());
    match tokio::task::spawn_blocking(move || store.delete_queue(&doomed)).await? {
        Ok(()) => {}
        Err(nimbus_store::StoreError::NotFound { .. }) => return Err(SqsError::QueueDoesNotExist),
        Err(e) => return Err(e.into()),
    }
    state.sqs.forget(queue.id);
    Ok(json!({}))
}

pub(super) async fn purge_queue(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
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

pub(super) async fn get_queue_attributes(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
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
        let retention_ms = QueueSettings::of(&queue).retention_ms();
        let counts =
            tokio::task::spawn_blocking(move || store.queue_counts(id, clock::now_ms(), retention_ms)).await??;
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

pub(super) async fn set_queue_attributes(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
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

/// SQS's tag rules: a key of 1 to 128 characters, a value of at most 256, at most 50 tags on a queue
/// (after the new ones are merged in). Checked before anything is written.
fn check_tags(queue: &str, tags: &BTreeMap<String, String>) -> Result<(), SqsError> {
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > SQS_TAG_KEY_CHARS_MAX {
            return Err(SqsError::InvalidParameterValue(format!(
                "Tag keys must be between 1 and {SQS_TAG_KEY_CHARS_MAX} characters in length."
            )));
        }
        if value.chars().count() > SQS_TAG_VALUE_CHARS_MAX {
            return Err(SqsError::InvalidParameterValue(format!(
                "Tag values may only be up to {SQS_TAG_VALUE_CHARS_MAX} characters in length."
            )));
        }
    }
    if tags.len() > SQS_TAGS_PER_QUEUE_MAX {
        return Err(SqsError::InvalidParameterValue(format!("Too many tags added for queue {queue}.")));
    }
    Ok(())
}

pub(super) async fn tag_queue(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
    let input: TagIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let given = input.tags.unwrap_or_default();
    check_tags(&queue.name, &given)?;
    let mut tags = queue.tags.clone();
    tags.extend(given);
    check_tags(&queue.name, &tags)?;
    state.store.set_queue_tags(&queue.name, &tags)?;
    Ok(json!({}))
}

pub(super) async fn untag_queue(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
    let input: TagIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let mut tags = queue.tags.clone();
    for k in input.tag_keys.unwrap_or_default() {
        tags.remove(&k);
    }
    state.store.set_queue_tags(&queue.name, &tags)?;
    Ok(json!({}))
}

pub(super) async fn list_queue_tags(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
    let input: TagIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    if queue.tags.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "Tags": queue.tags }))
}

#[derive(Deserialize)]
struct DeadLetterSourcesIn {
    #[serde(rename = "QueueUrl")]
    queue_url: Option<String>,
    #[serde(rename = "MaxResults")]
    max_results: Option<i64>,
    #[serde(rename = "NextToken")]
    next_token: Option<String>,
}

/// Pages as ListQueues does (at most 1,000 a page); reads an index of dead-letter targets, never the
/// other queues' rows (finding 04: it used to read and parse every queue).
pub(super) async fn list_dead_letter_sources(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
    let input: DeadLetterSourcesIn = parse(body)?;
    let queue = queue_of(state, input.queue_url.as_deref()).await?;
    let limit = max_results(input.max_results)?;
    let after = next_token(input.next_token.as_deref())?;
    let arn = state.sqs.queue_arn(&queue.name);
    let mut names = state.store.dead_letter_sources(&arn, after.as_deref(), limit + 1)?;
    let more = names.len() > limit;
    names.truncate(limit);
    let urls: Vec<String> = names.iter().map(|name| state.sqs.queue_url(name)).collect();
    let mut out = json!({ "queueUrls": urls });
    if more && let Some(last) = names.last() {
        out["NextToken"] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last).into();
    }
    Ok(out)
}
