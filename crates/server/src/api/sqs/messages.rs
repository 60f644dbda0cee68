//! SQS message operations: send (one or a batch), receive with long polling, delete and visibility changes.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Deps, error_codes, parse, queue_of};
use crate::sqs::{
    AttributeValue, BATCH_ENTRIES_MAX, MAX_WAIT_SECONDS, MESSAGE_BYTES_MAX, Outgoing, QueueSettings, SqsError,
    WireAttribute, decode_attributes, parse_attributes,
};

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

pub(super) async fn send_message(state: &Deps<'_>, body: &[u8], sender: &str) -> Result<Value, SqsError> {
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

pub(super) async fn send_message_batch(state: &Deps<'_>, body: &[u8], sender: &str) -> Result<Value, SqsError> {
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
        // The server cannot take anything now (data disk below its reserve): the whole request fails.
        Err(e @ SqsError::ServiceUnavailable(_)) => return Err(e),
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
fn system_attributes(_state: &Deps<'_>, m: &nimbus_store::ReceivedMessage) -> BTreeMap<&'static str, String> {
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

pub(super) async fn receive_message(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
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

pub(super) async fn delete_message(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
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

pub(super) async fn delete_message_batch(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
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

pub(super) async fn change_visibility(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
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

pub(super) async fn change_visibility_batch(state: &Deps<'_>, body: &[u8]) -> Result<Value, SqsError> {
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
