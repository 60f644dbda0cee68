//! Event source mappings at run time: a supervisor that moves mappings through AWS's states (Creating →
//! Enabled, Updating → Enabled/Disabled, Disabling → Disabled, Deleting → gone) and keeps one poller per
//! enabled SQS mapping, and the pollers themselves.
//!
//! A poller runs `MaximumConcurrency` workers (5 when unset, the number of pollers Lambda starts with).
//! Each receives a batch (up to `BatchSize`, waiting up to `MaximumBatchingWindowInSeconds` to fill it),
//! drops and deletes the records no filter matches, and invokes the function through the one invoke
//! path with the SQS event. Success deletes the batch (all of it, or all but the `batchItemFailures`
//! the function reported when `ReportBatchItemFailures` is on); anything else leaves the messages to
//! reappear after the queue's visibility timeout, and to reach its dead-letter queue once received
//! `maxReceiveCount` times. FIFO queues hand out a group only while none of it is in flight, so workers
//! keep each group's order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nimbus_model::Qualifier;
use nimbus_store::{MappingRecord, QueueRecord, ReceivedMessage, Store};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::filter::{self, Pattern};
use crate::arn::Arns;
use crate::invoke::{InvokeError, InvokeRequest, Invoker};
use crate::sqs::{Sqs, decode_attributes};

/// Workers per mapping when `ScalingConfig.MaximumConcurrency` is not set.
const WORKERS_DEFAULT: u32 = 5;
/// How long one receive waits for messages (a long poll; shutdown interrupts it).
const POLL_WAIT: Duration = Duration::from_secs(5);
/// After a failure that is not the function's (queue missing, throttled, Nimbus error).
const BACKOFF: Duration = Duration::from_millis(500);
/// The supervisor re-reads the mappings at least this often.
const RECONCILE: Duration = Duration::from_secs(2);

/// The API's handle: tells the supervisor that mappings changed.
#[derive(Clone)]
pub struct Mappings {
    changed: Arc<Notify>,
}

impl Mappings {
    pub fn changed(&self) {
        self.changed.notify_one();
    }
}

struct Ctx {
    store: Arc<Store>,
    invoker: Arc<Invoker>,
    sqs: Arc<Sqs>,
    arns: Arns,
}

pub fn start(
    store: Arc<Store>,
    invoker: Arc<Invoker>,
    sqs: Arc<Sqs>,
    arns: Arns,
    shutdown: watch::Receiver<bool>,
) -> (Mappings, tokio::task::JoinHandle<()>) {
    let changed = Arc::new(Notify::new());
    let ctx = Arc::new(Ctx { store, invoker, sqs, arns });
    let task = tokio::spawn(supervise(ctx, changed.clone(), shutdown));
    (Mappings { changed }, task)
}

struct Running {
    record: MappingRecord,
    stop: watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        for w in self.workers {
            let _ = w.await;
        }
    }
}

/// The settled state a transitional one leads to.
fn settled(record: &MappingRecord) -> Option<&'static str> {
    match record.state.as_str() {
        "Creating" | "Enabling" | "Updating" | "Disabling" => Some(if record.enabled { "Enabled" } else { "Disabled" }),
        _ => None,
    }
}

async fn supervise(ctx: Arc<Ctx>, changed: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    let mut running: HashMap<String, Running> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let records = match ctx.store.list_mappings(None, None, None, usize::MAX) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reading event source mappings");
                Vec::new()
            }
        };
        let mut present = HashSet::new();
        for mut record in records {
            if record.state == "Deleting" {
                if let Some(r) = running.remove(&record.uuid) {
                    r.stop().await;
                }
                if let Err(e) = ctx.store.delete_mapping(&record.uuid) {
                    tracing::warn!(uuid = record.uuid, error = %e, "deleting an event source mapping");
                }
                continue;
            }
            present.insert(record.uuid.clone());
            if let Some(state) = settled(&record) {
                record.state = state.into();
                record.state_reason = "USER_INITIATED".into();
                if let Err(e) = ctx.store.put_mapping(&record) {
                    tracing::warn!(uuid = record.uuid, error = %e, "updating an event source mapping's state");
                }
            }
            let wanted = record.enabled && record.state == "Enabled";
            let current = running.get(&record.uuid).map(|r| &r.record);
            let same = current.is_some_and(|c| same_polling(c, &record));
            if (!wanted || !same)
                && let Some(r) = running.remove(&record.uuid)
            {
                r.stop().await;
            }
            if wanted && !same {
                running.insert(record.uuid.clone(), spawn_poller(&ctx, record));
            }
        }
        let gone: Vec<String> = running.keys().filter(|k| !present.contains(*k)).cloned().collect();
        for uuid in gone {
            if let Some(r) = running.remove(&uuid) {
                r.stop().await;
            }
        }
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(RECONCILE) => {}
            _ = shutdown.changed() => {}
        }
    }
    for (_, r) in running.drain() {
        r.stop().await;
    }
}

/// Whether two versions of a mapping poll the same way (state and timestamps aside).
fn same_polling(a: &MappingRecord, b: &MappingRecord) -> bool {
    a.function == b.function
        && a.qualifier == b.qualifier
        && a.source_arn == b.source_arn
        && a.batch_size == b.batch_size
        && a.batching_window_s == b.batching_window_s
        && a.filters == b.filters
        && a.report_batch_item_failures == b.report_batch_item_failures
        && a.max_concurrency == b.max_concurrency
}

fn spawn_poller(ctx: &Arc<Ctx>, record: MappingRecord) -> Running {
    let (stop, stopping) = watch::channel(false);
    let filters: Vec<Pattern> = record.filters.iter().filter_map(|f| Pattern::parse(f).ok()).collect();
    let filters = Arc::new(filters);
    let workers = (0..record.max_concurrency.unwrap_or(WORKERS_DEFAULT).max(1))
        .map(|_| {
            let worker = Worker { ctx: ctx.clone(), mapping: record.clone(), filters: filters.clone() };
            tokio::spawn(worker.run(stopping.clone()))
        })
        .collect();
    Running { record, stop, workers }
}

struct Worker {
    ctx: Arc<Ctx>,
    mapping: MappingRecord,
    filters: Arc<Vec<Pattern>>,
}

impl Worker {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let Some(queue_name) = self.ctx.sqs.name_from_arn(&self.mapping.source_arn).map(str::to_owned) else {
            tracing::warn!(
                uuid = self.mapping.uuid,
                source = self.mapping.source_arn,
                "not an SQS queue of this server"
            );
            return;
        };
        loop {
            if *stop.borrow() {
                return;
            }
            let queue = match self.ctx.sqs.queue(&queue_name).await {
                Ok(q) => q,
                Err(_) => {
                    tokio::select! {
                        _ = tokio::time::sleep(BACKOFF * 4) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            };
            let batch = tokio::select! {
                batch = self.gather(&queue) => batch,
                _ = stop.changed() => return,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(uuid = self.mapping.uuid, error = %e, "receiving from the event source");
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            };
            if batch.is_empty() {
                continue;
            }
            self.process(&queue, batch).await;
        }
    }

    /// Up to `BatchSize` messages: the first receive long-polls; then, within the batching window,
    /// more receives fill the batch.
    async fn gather(&self, queue: &QueueRecord) -> Result<Vec<ReceivedMessage>, crate::sqs::SqsError> {
        let size = self.mapping.batch_size.max(1) as usize;
        let mut batch = self.ctx.sqs.receive(queue, size.min(10), None, POLL_WAIT).await?;
        if batch.is_empty() {
            return Ok(batch);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(self.mapping.batching_window_s));
        while batch.len() < size {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            let more = self.ctx.sqs.receive(queue, (size - batch.len()).min(10), None, deadline - now).await?;
            batch.extend(more);
        }
        Ok(batch)
    }

    fn record(&self, queue: &QueueRecord, m: &ReceivedMessage) -> Value {
        let mut attributes = serde_json::Map::new();
        for (k, v) in crate::sqs::system_attributes(m) {
            if k != "DeadLetterQueueSourceArn" {
                attributes.insert(k.into(), v.into());
            }
        }
        let message_attributes: serde_json::Map<String, Value> = decode_attributes(m.attributes.as_deref())
            .into_iter()
            .map(|(k, a)| {
                let mut v = json!({ "stringListValues": [], "binaryListValues": [], "dataType": a.data_type });
                if let Some(s) = a.string_value {
                    v["stringValue"] = s.into();
                }
                if let Some(b) = a.binary_value {
                    use base64::Engine;
                    v["binaryValue"] = base64::engine::general_purpose::STANDARD.encode(b).into();
                }
                (k, v)
            })
            .collect();
        let mut record = json!({
            "messageId": m.message_id,
            "receiptHandle": self.ctx.sqs.receipt_handle(queue.id, m),
            "body": m.body,
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": m.md5_body,
            "eventSource": "aws:sqs",
            "eventSourceARN": self.mapping.source_arn,
            "awsRegion": self.ctx.arns.region,
        });
        if let Some(md5) = &m.md5_attributes {
            record["md5OfMessageAttributes"] = md5.clone().into();
        }
        record
    }

    async fn process(&self, queue: &QueueRecord, batch: Vec<ReceivedMessage>) {
        let mut keep = Vec::new();
        let mut dropped = Vec::new();
        for m in batch {
            let record = self.record(queue, &m);
            let mut filtered = record.clone();
            if let Ok(body) = serde_json::from_str::<Value>(&m.body) {
                filtered["body"] = body;
            }
            if filter::passes(&self.filters, &filtered) {
                keep.push((m, record));
            } else {
                dropped.push((m.row_id, m.receipt_token));
            }
        }
        if !dropped.is_empty()
            && let Err(e) = self.ctx.sqs.delete(queue.id, dropped).await
        {
            tracing::warn!(uuid = self.mapping.uuid, error = %e, "deleting filtered-out messages");
        }
        if keep.is_empty() {
            return;
        }
        let records: Vec<Value> = keep.iter().map(|(_, r)| r.clone()).collect();
        let payload = json!({ "Records": records }).to_string();
        let qualifier = self.mapping.qualifier.as_deref().and_then(|q| Qualifier::parse(q).ok());
        let request = InvokeRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            function: self.mapping.function.clone(),
            qualifier,
            payload: Bytes::from(payload),
            want_log_tail: false,
            client_context: None,
            stream: None,
        };
        let handles: Vec<(String, (i64, String))> =
            keep.iter().map(|(m, _)| (m.message_id.clone(), (m.row_id, m.receipt_token.clone()))).collect();
        let done = match self.ctx.invoker.invoke(request).await {
            Ok(result) if !result.outcome.is_function_error() => {
                if self.mapping.report_batch_item_failures {
                    match failed_items(result.outcome.payload(), &handles) {
                        Some(failed) => {
                            handles.into_iter().filter(|(id, _)| !failed.contains(id)).map(|(_, h)| h).collect()
                        }
                        None => Vec::new(),
                    }
                } else {
                    handles.into_iter().map(|(_, h)| h).collect()
                }
            }
            Ok(_) => Vec::new(),
            Err(e) => {
                if !matches!(e, InvokeError::Throttled(_)) {
                    tracing::warn!(uuid = self.mapping.uuid, error = %e, "invoking the mapping's function");
                }
                tokio::time::sleep(BACKOFF).await;
                Vec::new()
            }
        };
        if !done.is_empty()
            && let Err(e) = self.ctx.sqs.delete(queue.id, done).await
        {
            tracing::warn!(uuid = self.mapping.uuid, error = %e, "deleting processed messages");
        }
    }
}

/// The message ids a `ReportBatchItemFailures` response names; `None` when the response is not a
/// valid report (then the whole batch counts as failed, as on AWS). An empty or null response, or an
/// empty list, means every record succeeded.
fn failed_items(payload: &Bytes, batch: &[(String, (i64, String))]) -> Option<HashSet<String>> {
    let value: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(_) => return if payload.is_empty() { Some(HashSet::new()) } else { None },
    };
    let list = match value.get("batchItemFailures") {
        None | Some(Value::Null) => return Some(HashSet::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return None,
    };
    let ids: HashSet<&str> = batch.iter().map(|(id, _)| id.as_str()).collect();
    let mut failed = HashSet::new();
    for item in list {
        let id = item.get("itemIdentifier").and_then(Value::as_str).filter(|s| !s.is_empty())?;
        if !ids.contains(id) {
            return None;
        }
        failed.insert(id.to_owned());
    }
    Some(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_item_failures() {
        let batch = vec![("a".to_string(), (1, "t".to_string())), ("b".to_string(), (2, "t".to_string()))];
        let p = |s: &str| Bytes::from(s.to_owned());
        assert_eq!(failed_items(&p(r#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#), &batch).unwrap().len(), 1);
        assert!(failed_items(&p(r#"{"batchItemFailures":[]}"#), &batch).unwrap().is_empty());
        assert!(failed_items(&p("null"), &batch).unwrap().is_empty());
        assert!(failed_items(&p(r#"{"batchItemFailures":[{"itemIdentifier":"zzz"}]}"#), &batch).is_none());
        assert!(failed_items(&p(r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#), &batch).is_none());
    }
}
