//! The queue service behind the SQS API, the SQS destinations of async invocations and the SQS event
//! source mappings: queue settings, message attributes and their digests, sending, and receiving with
//! long polling. Messages live in the store (`queues.db`); this module adds what is not SQL.
//!
//! Long polling waits on one `Notify` per queue, woken by every send to that queue; a waiter also
//! re-checks at least every [`RECHECK`], which covers messages whose delay or visibility timeout ends.
//! `Notify` holds at most one stored permit, so the wake-up mechanism is bounded whatever the traffic.

pub mod digest;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use nimbus_store::{
    ChangeVisibility, NewMessage, QueueRecord, ReceiveParams, ReceivedMessage, Redrive, SendOutcome, Store, StoreError,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock;

/// How often a long poll re-checks its queue without being woken.
const RECHECK: Duration = Duration::from_millis(250);
pub const MAX_WAIT_SECONDS: i64 = 20;
pub const BATCH_ENTRIES_MAX: usize = 10;
pub const MESSAGE_ATTRIBUTES_MAX: usize = 10;
/// SQS's limit on one message and on a whole SendMessageBatch request.
pub const MESSAGE_BYTES_MAX: usize = 1_048_576;

#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("The specified queue does not exist.")]
    QueueDoesNotExist,
    #[error("A queue already exists with the same name and a different value for attribute {0}")]
    QueueNameExists(String),
    #[error("Unknown Attribute {0}.")]
    InvalidAttributeName(String),
    #[error("{0}")]
    InvalidAttributeValue(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("The request must contain the parameter {0}.")]
    MissingParameter(&'static str),
    #[error("The input receipt handle \"{0}\" is not a valid receipt handle.")]
    ReceiptHandleIsInvalid(String),
    #[error("Message does not exist or is not available for visibility timeout change.")]
    MessageNotInflight,
    #[error("Maximum number of entries per request are {BATCH_ENTRIES_MAX}. You have sent {0}.")]
    TooManyEntriesInBatchRequest(usize),
    #[error("There should be at least one entry in the request.")]
    EmptyBatchRequest,
    #[error("Id {0} repeated.")]
    BatchEntryIdsNotDistinct(String),
    #[error(
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long."
    )]
    InvalidBatchEntryId(String),
    #[error("Batch requests cannot be longer than {MESSAGE_BYTES_MAX} bytes. You have sent {0} bytes.")]
    BatchRequestTooLong(usize),
    #[error("Only one PurgeQueue operation on {0} is allowed every 60 seconds.")]
    PurgeQueueInProgress(String),
    #[error("{0}")]
    InvalidMessageContents(String),
    #[error("Nimbus does not implement {0}")]
    UnsupportedOperation(String),
    /// Refused by `authz`; the message is AWS's "User: … is not authorized to perform: …".
    #[error("{0}")]
    AccessDenied(String),
    /// The data disk is below its reserve (`disk.rs`): SQS's answer when it cannot take a request now.
    #[error("The request has failed due to a temporary failure of the server: {0}")]
    ServiceUnavailable(#[from] crate::disk::BelowReserve),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("queue worker: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// One message attribute, as SQS takes and returns it (Binary values are bytes here, base64 on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeValue {
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

/// The wire (and stored) JSON shape of a message attribute value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireAttribute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_list_values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_list_values: Option<Vec<String>>,
}

pub type Attributes = BTreeMap<String, AttributeValue>;

impl AttributeValue {
    pub fn string(value: impl Into<String>) -> Self {
        Self { data_type: "String".into(), string_value: Some(value.into()), binary_value: None }
    }

    pub fn number(value: impl ToString) -> Self {
        Self { data_type: "Number".into(), string_value: Some(value.to_string()), binary_value: None }
    }

    pub fn to_wire(&self) -> WireAttribute {
        WireAttribute {
            data_type: Some(self.data_type.clone()),
            string_value: self.string_value.clone(),
            binary_value: self.binary_value.as_ref().map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            string_list_values: None,
            binary_list_values: None,
        }
    }

    /// Validates one attribute as SendMessage receives it.
    pub fn from_wire(name: &str, wire: &WireAttribute) -> Result<Self, SqsError> {
        let data_type = wire.data_type.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
            SqsError::InvalidParameterValue(format!(
                "The message attribute '{name}' must contain a non-empty message attribute type."
            ))
        })?;
        let base = data_type.split('.').next().unwrap_or_default();
        let invalid_type = || {
            SqsError::InvalidParameterValue(format!(
                "The type of message attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
            ))
        };
        if wire.string_list_values.as_ref().is_some_and(|l| !l.is_empty())
            || wire.binary_list_values.as_ref().is_some_and(|l| !l.is_empty())
        {
            return Err(SqsError::UnsupportedOperation("message attribute list values".into()));
        }
        match base {
            "String" | "Number" => {
                let value = wire.string_value.clone().filter(|v| !v.is_empty()).ok_or_else(|| {
                    SqsError::InvalidParameterValue(format!(
                        "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{data_type}'."
                    ))
                })?;
                if base == "Number" && value.trim().parse::<f64>().is_err() {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "Can't cast the value of message (user) attribute '{name}' to a number."
                    )));
                }
                Ok(Self { data_type, string_value: Some(value), binary_value: None })
            }
            "Binary" => {
                let encoded = wire.binary_value.clone().unwrap_or_default();
                let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()).map_err(|_| {
                    SqsError::InvalidParameterValue(format!(
                        "The message attribute '{name}' has an invalid binary value."
                    ))
                })?;
                if bytes.is_empty() {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{data_type}'."
                    )));
                }
                Ok(Self { data_type, string_value: None, binary_value: Some(bytes) })
            }
            _ => Err(invalid_type()),
        }
    }

    /// Bytes counted against the message size limit: name, type and value.
    fn size(&self, name: &str) -> usize {
        name.len()
            + self.data_type.len()
            + self.string_value.as_ref().map_or(0, String::len)
            + self.binary_value.as_ref().map_or(0, Vec::len)
    }
}

/// Parses what SendMessage got as `MessageAttributes` (names checked, at most 10).
pub fn parse_attributes(wire: Option<&BTreeMap<String, WireAttribute>>) -> Result<Attributes, SqsError> {
    let Some(wire) = wire else { return Ok(Attributes::new()) };
    if wire.len() > MESSAGE_ATTRIBUTES_MAX {
        return Err(SqsError::InvalidParameterValue(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MESSAGE_ATTRIBUTES_MAX}].",
            wire.len()
        )));
    }
    let mut out = Attributes::new();
    for (name, value) in wire {
        let lower = name.to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 256
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && !lower.starts_with("aws.")
            && !lower.starts_with("amazon.");
        if !valid {
            return Err(SqsError::InvalidParameterValue(format!("Message (user) attribute name '{name}' is invalid.")));
        }
        out.insert(name.clone(), AttributeValue::from_wire(name, value)?);
    }
    Ok(out)
}

fn encode_attributes(attrs: &Attributes) -> Option<String> {
    if attrs.is_empty() {
        return None;
    }
    let wire: BTreeMap<&String, WireAttribute> = attrs.iter().map(|(k, v)| (k, v.to_wire())).collect();
    serde_json::to_string(&wire).ok()
}

/// Reads back what [`encode_attributes`] stored.
pub fn decode_attributes(stored: Option<&str>) -> Attributes {
    let Some(text) = stored else { return Attributes::new() };
    let wire: BTreeMap<String, WireAttribute> = serde_json::from_str(text).unwrap_or_default();
    wire.iter().filter_map(|(k, v)| AttributeValue::from_wire(k, v).ok().map(|a| (k.clone(), a))).collect()
}

/// The characters SQS accepts in a message body: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD |
/// #x10000 to #x10FFFF.
pub fn check_body(body: &str) -> Result<(), SqsError> {
    if body.is_empty() {
        return Err(SqsError::MissingParameter("MessageBody"));
    }
    let bad = body.chars().find(|&c| {
        let c = c as u32;
        !(c == 0x9
            || c == 0xA
            || c == 0xD
            || (0x20..=0xD7FF).contains(&c)
            || (0xE000..=0xFFFD).contains(&c)
            || c >= 0x10000)
    });
    match bad {
        Some(c) => Err(SqsError::InvalidMessageContents(format!(
            "Invalid characters found. Deleted message body or attribute contains characters outside the allowed set: U+{:04X}",
            c as u32
        ))),
        None => Ok(()),
    }
}

/// A queue's settings, read from its stored attributes (which were validated when set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    pub visibility_timeout_s: i64,
    pub delay_s: i64,
    pub retention_s: i64,
    pub max_message_bytes: usize,
    pub receive_wait_s: i64,
    pub redrive: Option<(String, u32)>,
    pub content_based_dedup: bool,
}

fn attr_i64(attrs: &BTreeMap<String, String>, name: &str, default: i64) -> i64 {
    attrs.get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

impl QueueSettings {
    pub fn of(queue: &QueueRecord) -> Self {
        let a = &queue.attributes;
        let redrive = a.get("RedrivePolicy").and_then(|p| parse_redrive(p).ok());
        Self {
            visibility_timeout_s: attr_i64(a, "VisibilityTimeout", 30),
            delay_s: attr_i64(a, "DelaySeconds", 0),
            retention_s: attr_i64(a, "MessageRetentionPeriod", 345_600),
            max_message_bytes: usize::try_from(attr_i64(a, "MaximumMessageSize", MESSAGE_BYTES_MAX as i64))
                .unwrap_or(MESSAGE_BYTES_MAX),
            receive_wait_s: attr_i64(a, "ReceiveMessageWaitTimeSeconds", 0),
            redrive,
            content_based_dedup: a.get("ContentBasedDeduplication").is_some_and(|v| v == "true"),
        }
    }

    /// `MessageRetentionPeriod` in milliseconds: messages sent longer ago than this are gone.
    pub fn retention_ms(&self) -> i64 {
        self.retention_s * 1000
    }
}

/// `RedrivePolicy`: `{"deadLetterTargetArn": "...", "maxReceiveCount": 5}` (the count may be a string).
pub fn parse_redrive(text: &str) -> Result<(String, u32), SqsError> {
    let invalid = |why: &str| {
        SqsError::InvalidAttributeValue(format!("Value {text} for parameter RedrivePolicy is invalid. Reason: {why}"))
    };
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|_| invalid("Redrive policy is not a valid JSON map."))?;
    let arn = v
        .get("deadLetterTargetArn")
        .and_then(|a| a.as_str())
        .ok_or_else(|| invalid("Redrive policy does not contain mandatory attribute: deadLetterTargetArn."))?;
    let count = match v.get("maxReceiveCount") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => return Err(invalid("Redrive policy does not contain mandatory attribute: maxReceiveCount.")),
    };
    let count = count
        .filter(|c| (1..=1000).contains(c))
        .ok_or_else(|| invalid("Invalid value for maxReceiveCount: must be an integer from 1 to 1000."))?;
    Ok((arn.to_owned(), count as u32))
}

/// What SendMessage(Batch) hands over for one message.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub body: String,
    pub attributes: Attributes,
    pub system_attributes: Attributes,
    pub delay_s: Option<i64>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub message_id: String,
    pub md5_body: String,
    pub md5_attributes: Option<String>,
    pub md5_system: Option<String>,
    pub sequence: Option<String>,
}

/// The queue service.
pub struct Sqs {
    store: Arc<Store>,
    region: String,
    account: String,
    endpoint: String,
    waiters: Mutex<HashMap<i64, Arc<Notify>>>,
    /// Sends are refused while the data disk is below its reserve.
    disk: Arc<crate::disk::DataDisk>,
}

impl Sqs {
    pub fn new(
        store: Arc<Store>,
        region: &str,
        account: &str,
        endpoint: &str,
        disk: Arc<crate::disk::DataDisk>,
    ) -> Self {
        Self {
            disk,
            store,
            region: region.to_owned(),
            account: account.to_owned(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            waiters: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn queue_url(&self, name: &str) -> String {
        format!("{}/{}/{name}", self.endpoint, self.account)
    }

    pub fn queue_arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account)
    }

    /// The queue name in an ARN of this region and account.
    pub fn name_from_arn<'a>(&self, arn: &'a str) -> Option<&'a str> {
        let rest = arn.strip_prefix("arn:aws:sqs:")?;
        let mut parts = rest.splitn(3, ':');
        let (region, account, name) = (parts.next()?, parts.next()?, parts.next()?);
        (region == self.region && account == self.account && !name.is_empty()).then_some(name)
    }

    /// The queue a `QueueUrl` names: its last path segment, after this account's id. The host is not
    /// checked (clients reach the same server as `localhost`, `127.0.0.1`, …).
    pub fn name_from_url<'a>(&self, url: &'a str) -> Result<&'a str, SqsError> {
        let path = url.split_once("://").map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
        let mut segments = path.trim_matches('/').split('/');
        match (segments.next(), segments.next(), segments.next()) {
            (Some(account), Some(name), None) if account == self.account && !name.is_empty() => Ok(name),
            (Some(name), None, None) if !name.is_empty() && !url.contains("://") => Ok(name),
            _ => Err(SqsError::QueueDoesNotExist),
        }
    }

    pub async fn queue(&self, name: &str) -> Result<QueueRecord, SqsError> {
        // Every SQS call starts here: a SQLite read off the async workers, so that no queue's row (at
        // most ~100 KB of bounded tags and attributes) or a busy database holds a worker.
        let (store, name) = (self.store.clone(), name.to_owned());
        match tokio::task::spawn_blocking(move || store.get_queue(&name)).await? {
            Ok(q) => Ok(q),
            Err(StoreError::NotFound { .. }) => Err(SqsError::QueueDoesNotExist),
            Err(e) => Err(e.into()),
        }
    }

    fn notifier(&self, queue_id: i64) -> Arc<Notify> {
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        waiters.entry(queue_id).or_default().clone()
    }

    pub fn forget(&self, queue_id: i64) {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner).remove(&queue_id);
    }

    /// Validates and stores messages (all or none), then wakes the queue's long polls.
    pub async fn send(
        &self,
        queue: &QueueRecord,
        sender_id: &str,
        messages: Vec<Outgoing>,
    ) -> Result<Vec<Sent>, SqsError> {
        self.disk.check("SQS send")?;
        let settings = QueueSettings::of(queue);
        let mut rows = Vec::with_capacity(messages.len());
        let mut sent = Vec::with_capacity(messages.len());
        for m in messages {
            check_body(&m.body)?;
            let size = m.body.len() + m.attributes.iter().map(|(k, v)| v.size(k)).sum::<usize>();
            if size > settings.max_message_bytes {
                return Err(SqsError::InvalidParameterValue(format!(
                    "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
                    settings.max_message_bytes
                )));
            }
            let delay_s = match (m.delay_s, queue.fifo) {
                (Some(d), _) if !(0..=900).contains(&d) => {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "Value {d} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
                    )));
                }
                (Some(d), true) if d != 0 => {
                    return Err(SqsError::InvalidParameterValue(format!(
                        "Value {d} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type."
                    )));
                }
                (Some(d), _) => d,
                (None, _) => settings.delay_s,
            };
            let (group_id, dedup_id) = if queue.fifo {
                let group = m.group_id.clone().ok_or(SqsError::MissingParameter("MessageGroupId"))?;
                check_token("MessageGroupId", &group)?;
                let dedup = match (&m.dedup_id, settings.content_based_dedup) {
                    (Some(d), _) => {
                        check_token("MessageDeduplicationId", d)?;
                        d.clone()
                    }
                    (None, true) => {
                        use sha2::Digest;
                        hex::encode(sha2::Sha256::digest(m.body.as_bytes()))
                    }
                    (None, false) => {
                        return Err(SqsError::InvalidParameterValue(
                            "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
                        ));
                    }
                };
                (Some(group), Some(dedup))
            } else {
                if let Some(g) = &m.group_id {
                    check_token("MessageGroupId", g)?;
                }
                if m.dedup_id.is_some() {
                    return Err(SqsError::InvalidParameterValue(
                        "The request include parameter MessageDeduplicationId that is not valid for this queue type"
                            .into(),
                    ));
                }
                (m.group_id.clone(), None)
            };
            let message_id = uuid::Uuid::new_v4().to_string();
            let md5_body = digest::body(&m.body);
            let md5_attributes = digest::attributes(&m.attributes);
            let md5_system = digest::attributes(&m.system_attributes);
            rows.push(NewMessage {
                message_id: message_id.clone(),
                md5_body: md5_body.clone(),
                attributes: encode_attributes(&m.attributes),
                md5_attributes: md5_attributes.clone(),
                system_attributes: encode_attributes(&m.system_attributes),
                md5_system: md5_system.clone(),
                sender_id: sender_id.to_owned(),
                delay_ms: delay_s * 1000,
                group_id,
                dedup_id,
                body: m.body,
            });
            sent.push(Sent { message_id, md5_body, md5_attributes, md5_system, sequence: None });
        }
        let store = self.store.clone();
        let (id, fifo) = (queue.id, queue.fifo);
        let outcomes: Vec<SendOutcome> =
            tokio::task::spawn_blocking(move || store.send_messages(id, fifo, clock::now_ms(), &rows)).await?.map_err(
                |e| match e {
                    StoreError::NotFound { .. } => SqsError::QueueDoesNotExist,
                    other => other.into(),
                },
            )?;
        for (s, o) in sent.iter_mut().zip(outcomes) {
            s.message_id = o.message_id;
            s.sequence = o.sequence.map(|n| format!("{n:020}"));
        }
        self.notifier(queue.id).notify_waiters();
        Ok(sent)
    }

    /// Sends one message to the queue an ARN names (destinations and dead-letter queues).
    pub async fn send_to_arn(&self, arn: &str, body: String, attributes: Attributes) -> Result<Sent, SqsError> {
        let name = self.name_from_arn(arn).ok_or(SqsError::QueueDoesNotExist)?;
        let queue = self.queue(name).await?;
        let group_id = queue.fifo.then(|| "nimbus".to_owned());
        let dedup_id = queue.fifo.then(|| uuid::Uuid::new_v4().to_string());
        let outgoing =
            Outgoing { body, attributes, system_attributes: Attributes::new(), delay_s: None, group_id, dedup_id };
        let mut sent = self.send(&queue, "nimbus", vec![outgoing]).await?;
        sent.pop().ok_or(SqsError::QueueDoesNotExist)
    }

    /// Receives up to `max` messages, waiting up to `wait` for the first to arrive.
    pub async fn receive(
        &self,
        queue: &QueueRecord,
        max: usize,
        visibility_s: Option<i64>,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, SqsError> {
        let settings = QueueSettings::of(queue);
        let redrive = settings.redrive.as_ref().and_then(|(arn, count)| {
            self.name_from_arn(arn)
                .map(|name| Redrive { dead_letter_queue: name.to_owned(), max_receive_count: *count })
        });
        let params = ReceiveParams {
            now_ms: 0,
            max,
            visibility_ms: visibility_s.unwrap_or(settings.visibility_timeout_s) * 1000,
            retention_ms: settings.retention_ms(),
            fifo: queue.fifo,
            redrive,
            source_arn: self.queue_arn(&queue.name),
        };
        let deadline = tokio::time::Instant::now() + wait;
        let notify = self.notifier(queue.id);
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let store = self.store.clone();
            let mut p = params.clone();
            let id = queue.id;
            let got = tokio::task::spawn_blocking(move || {
                p.now_ms = clock::now_ms();
                store.receive_messages(id, &p)
            })
            .await??;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let _ = tokio::time::timeout((deadline - now).min(RECHECK), notified).await;
        }
    }

    /// A receipt handle: which queue and message row, and the token of that receive.
    pub fn receipt_handle(&self, queue_id: i64, m: &ReceivedMessage) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{queue_id}:{}:{}", m.row_id, m.receipt_token))
    }

    pub fn parse_receipt(&self, queue_id: i64, handle: &str) -> Result<(i64, String), SqsError> {
        let invalid = || SqsError::ReceiptHandleIsInvalid(handle.to_owned());
        let raw = base64::engine::general_purpose::STANDARD.decode(handle.as_bytes()).map_err(|_| invalid())?;
        let text = String::from_utf8(raw).map_err(|_| invalid())?;
        let mut parts = text.splitn(3, ':');
        let (q, row, token) = (parts.next(), parts.next(), parts.next());
        let q: i64 = q.and_then(|q| q.parse().ok()).ok_or_else(invalid)?;
        let row: i64 = row.and_then(|r| r.parse().ok()).ok_or_else(invalid)?;
        let token = token.filter(|t| !t.is_empty()).ok_or_else(invalid)?;
        if q != queue_id {
            return Err(invalid());
        }
        Ok((row, token.to_owned()))
    }

    pub async fn delete(&self, queue_id: i64, handles: Vec<(i64, String)>) -> Result<usize, SqsError> {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || store.delete_messages(queue_id, &handles)).await??)
    }

    pub async fn change_visibility(
        &self,
        queue_id: i64,
        entries: Vec<(i64, String, i64)>,
    ) -> Result<Vec<ChangeVisibility>, SqsError> {
        let store = self.store.clone();
        let result =
            tokio::task::spawn_blocking(move || store.change_visibility(queue_id, clock::now_ms(), &entries)).await??;
        if result.contains(&ChangeVisibility::Changed) {
            self.notifier(queue_id).notify_waiters();
        }
        Ok(result)
    }
}

/// The system attributes of a received message (all of them; callers pick).
pub fn system_attributes(m: &ReceivedMessage) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    out.insert("SenderId", m.sender_id.clone());
    out.insert("SentTimestamp", m.sent_ms.to_string());
    out.insert("ApproximateReceiveCount", m.receive_count.to_string());
    out.insert("ApproximateFirstReceiveTimestamp", m.first_receive_ms.to_string());
    if let Some(g) = &m.group_id {
        out.insert("MessageGroupId", g.clone());
    }
    if let Some(d) = &m.dedup_id {
        out.insert("MessageDeduplicationId", d.clone());
    }
    if let Some(s) = m.sequence {
        out.insert("SequenceNumber", format!("{s:020}"));
    }
    if let Some(src) = &m.dlq_source {
        out.insert("DeadLetterQueueSourceArn", src.clone());
    }
    let trace = decode_attributes(m.system_attributes.as_deref());
    if let Some(t) = trace.get("AWSTraceHeader").and_then(|a| a.string_value.clone()) {
        out.insert("AWSTraceHeader", t);
    }
    out
}

/// MessageGroupId and MessageDeduplicationId: at most 128 characters of `[A-Za-z0-9]` and punctuation.
fn check_token(parameter: &str, value: &str) -> Result<(), SqsError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation());
    if ok {
        Ok(())
    } else {
        Err(SqsError::InvalidParameterValue(format!(
            "Value {value} for parameter {parameter} is invalid. Reason: {parameter} can only include alphanumeric and punctuation characters. 1 to 128 in length."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqs() -> Sqs {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let disk = Arc::new(crate::disk::DataDisk::new(dir.path().to_owned(), 0));
        std::mem::forget(dir);
        Sqs::new(store, "us-east-1", "000000000000", "http://127.0.0.1:9001/", disk)
    }

    #[test]
    fn urls_and_arns() {
        let s = sqs();
        assert_eq!(s.queue_url("q"), "http://127.0.0.1:9001/000000000000/q");
        assert_eq!(s.name_from_url("http://localhost:1/000000000000/q").unwrap(), "q");
        assert!(s.name_from_url("http://localhost:1/111111111111/q").is_err());
        assert_eq!(s.name_from_arn("arn:aws:sqs:us-east-1:000000000000:q.fifo"), Some("q.fifo"));
        assert_eq!(s.name_from_arn("arn:aws:sqs:eu-west-1:000000000000:q"), None);
    }

    #[test]
    fn redrive_policy_forms() {
        assert_eq!(parse_redrive(r#"{"deadLetterTargetArn":"a","maxReceiveCount":"3"}"#).unwrap(), ("a".into(), 3));
        assert_eq!(parse_redrive(r#"{"deadLetterTargetArn":"a","maxReceiveCount":3}"#).unwrap(), ("a".into(), 3));
        assert!(parse_redrive(r#"{"deadLetterTargetArn":"a"}"#).is_err());
    }

    #[test]
    fn bodies() {
        assert!(check_body("ok \u{1F600}").is_ok());
        assert!(check_body("bad \u{1}").is_err());
        assert!(check_body("").is_err());
    }
}
