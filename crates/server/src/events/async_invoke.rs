//! Asynchronous invocation: the durable journal in front (an accepted event is committed before the
//! 202), and the dispatcher behind it that runs due events through the one invoke path, retries them,
//! and delivers their outcome to destinations.
//!
//! ```text
//! API ──accept──► journal writer (one task, group commit) ──► async_events (nimbus.db, FULL)
//!                                                                 │ claim due rows (run id)
//!                                  dispatcher ◄───────────────────┘
//!                                      │ at most `concurrency` at once, each on its own task
//!                                      ▼
//!                              Invoker::invoke ──► outcome
//!   success ─► OnSuccess ─┐    function error / timeout / crash ─► retry after base·2^n, up to
//!                         │    MaximumRetryAttempts; then OnFailure + DeadLetterConfig
//!                         ▼    throttled / internal error ─► retry with backoff, not counted
//!   finish: delete the row (with a destination function's event inserted in the same transaction)
//! ```
//!
//! At least once: a row is deleted only after its outcome was handled, so a crash re-runs it. At start
//! the dispatcher releases every claim of a previous run.
//!
//! Fair: any client (a function's session credential included) may queue events for any function it
//! may invoke, so claims are per function (`Store::claim_async_events`): round-robin, each function
//! within its share of `concurrency`, so one function's backlog delays only itself. Its events still
//! age out after `MaximumEventAgeInSeconds` (6 h by default) into the failure destination, and
//! DeleteFunction drops those still waiting.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nimbus_model::{FunctionName, FunctionRef, Qualifier};
use nimbus_store::{AsyncEvent, EventInvokeConfig, NewAsyncEvent, Store, StoreError};
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};

use crate::arn::Arns;
use crate::clock;
use crate::environment::Outcome;
use crate::invoke::{InvokeError, InvokeRequest, InvokeResult, Invoker};
use crate::sqs::{AttributeValue, Attributes, Sqs};

/// AWS's defaults: 2 retries, events kept 6 hours.
pub const MAX_RETRIES_DEFAULT: u32 = 2;
pub const MAX_EVENT_AGE_DEFAULT_S: u32 = 21_600;
/// Events waiting for the journal writer; a full queue makes the API wait (backpressure), never drop.
const JOURNAL_QUEUE: usize = 4096;
/// Events written per transaction at most.
const JOURNAL_BATCH_MAX: usize = 512;
/// The dispatcher looks for due events at least this often.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Throttled and system-failed events back off from 1 s to 5 min (not counted as retries).
const THROTTLE_BACKOFF_MIN_MS: i64 = 1_000;
const THROTTLE_BACKOFF_MAX_MS: i64 = 300_000;
/// A store error while dispatching is retried after this long.
const STORE_RETRY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct AsyncSettings {
    /// The delay before the first retry; the second waits twice as long (AWS: 1 min, then 2 min).
    pub retry_base: Duration,
    /// Events run at once.
    pub concurrency: usize,
}

impl Default for AsyncSettings {
    fn default() -> Self {
        Self { retry_base: Duration::from_secs(60), concurrency: 64 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error(transparent)]
    BelowReserve(#[from] crate::disk::BelowReserve),
    #[error("the async journal is not running (server shutting down)")]
    Stopped,
    #[error("writing the event to the journal: {0}")]
    Store(#[from] StoreError),
}

type JournalEntry = (NewAsyncEvent, oneshot::Sender<Result<(), StoreError>>);

/// The API's handle: accepts events durably and wakes the dispatcher.
#[derive(Clone)]
pub struct AsyncQueue {
    journal: mpsc::Sender<JournalEntry>,
    /// Events are refused while the data disk is below its reserve.
    disk: Arc<crate::disk::DataDisk>,
}

impl AsyncQueue {
    /// Returns once `event` is committed to disk.
    pub async fn accept(&self, event: NewAsyncEvent) -> Result<(), AcceptError> {
        self.disk.check("async Invoke")?;
        let (reply, written) = oneshot::channel();
        self.journal.send((event, reply)).await.map_err(|_| AcceptError::Stopped)?;
        written.await.map_err(|_| AcceptError::Stopped)?.map_err(AcceptError::from)
    }
}

/// Starts the journal writer and the dispatcher; both end when `shutdown` turns true (the writer once
/// every sender is gone).
pub fn start(
    store: Arc<Store>,
    invoker: Arc<Invoker>,
    sqs: Arc<Sqs>,
    arns: Arns,
    settings: AsyncSettings,
    disk: Arc<crate::disk::DataDisk>,
    shutdown: watch::Receiver<bool>,
) -> (AsyncQueue, tokio::task::JoinHandle<()>) {
    let (journal, entries) = mpsc::channel(JOURNAL_QUEUE);
    let wake = Arc::new(Notify::new());
    let writer = tokio::spawn(journal_writer(store.clone(), entries, wake.clone(), shutdown.clone()));
    let dispatcher = Dispatcher {
        store,
        invoker,
        sqs,
        arns,
        settings: settings.clone(),
        wake,
        done: Notify::new(),
        permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        run: uuid::Uuid::new_v4().to_string(),
    };
    let task = tokio::spawn(async move {
        Arc::new(dispatcher).run(shutdown).await;
        let _ = writer.await;
    });
    (AsyncQueue { journal, disk }, task)
}

/// Writes queued events in batches: every event waiting when a commit starts shares its fsync. Ends at
/// shutdown, which comes after the HTTP server has finished its requests, so no accept is waiting.
async fn journal_writer(
    store: Arc<Store>,
    mut entries: mpsc::Receiver<JournalEntry>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(JOURNAL_BATCH_MAX);
    loop {
        let received = tokio::select! {
            n = entries.recv_many(&mut batch, JOURNAL_BATCH_MAX) => n,
            _ = shutdown.wait_for(|stop| *stop) => 0,
        };
        if received == 0 {
            return;
        }
        let (events, replies): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        let s = store.clone();
        let result = tokio::task::spawn_blocking(move || s.enqueue_async_events(&events)).await;
        let result: Result<(), String> = match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "writing async events to the journal");
        }
        for reply in replies {
            let answer = result.clone().map_err(|reason| StoreError::Corrupt {
                table: "async_events",
                key: "journal batch".into(),
                reason,
            });
            let _ = reply.send(answer);
        }
        wake.notify_one();
    }
}

struct Dispatcher {
    store: Arc<Store>,
    invoker: Arc<Invoker>,
    sqs: Arc<Sqs>,
    arns: Arns,
    settings: AsyncSettings,
    wake: Arc<Notify>,
    /// An event finished: a function below its share again may have events to claim.
    done: Notify,
    permits: Arc<Semaphore>,
    run: String,
}

/// Why an event ended without success (AWS's `requestContext.condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::RetriesExhausted => "RetriesExhausted",
            Self::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// What is known about the last attempt, for the destination record.
struct Attempt {
    status: u16,
    executed_version: Option<String>,
    function_error: Option<&'static str>,
    response: Option<Bytes>,
    error_message: String,
}

impl Dispatcher {
    async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let store = self.store.clone();
        let run = self.run.clone();
        match tokio::task::spawn_blocking(move || store.release_async_claims(&run)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(events = n, "re-queued async events a previous run had in flight"),
            Ok(Err(e)) => tracing::error!(error = %e, "releasing async event claims"),
            Err(e) => tracing::error!(error = %e, "releasing async event claims"),
        }
        loop {
            if *shutdown.borrow() {
                return;
            }
            let free = self.permits.available_permits();
            if free == 0 {
                // Wait for a running event to finish (or shutdown).
                tokio::select! {
                    permit = self.permits.clone().acquire_owned() => drop(permit),
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let store = self.store.clone();
            let run = self.run.clone();
            let concurrency = self.settings.concurrency;
            let claimed =
                tokio::task::spawn_blocking(move || store.claim_async_events(&run, clock::now_ms(), free, concurrency))
                    .await;
            let events = match claimed {
                Ok(Ok(events)) => events,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "claiming async events");
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming async events");
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
            };
            let full = events.len() == free;
            for event in events {
                let Ok(permit) = self.permits.clone().acquire_owned().await else { return };
                let this = self.clone();
                tokio::spawn(async move {
                    this.handle(event).await;
                    drop(permit);
                    // A function's share may have room again.
                    this.done.notify_one();
                });
            }
            if full {
                continue;
            }
            let wait = match self.store.next_async_due_ms() {
                Ok(Some(due)) => {
                    Duration::from_millis((due - clock::now_ms()).clamp(0, IDLE_POLL.as_millis() as i64) as u64)
                }
                Ok(None) => IDLE_POLL,
                Err(e) => {
                    tracing::error!(error = %e, "reading the async journal");
                    IDLE_POLL
                }
            };
            // Due now but not claimed: held back by their functions' shares, which only a running event
            // finishing (or a new event changing the shares) can change.
            let wait = if wait.is_zero() { IDLE_POLL } else { wait };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = self.done.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    fn config_for(&self, event: &AsyncEvent) -> Option<EventInvokeConfig> {
        let qualifier = event.qualifier.as_deref().unwrap_or("$LATEST");
        match self.store.get_event_invoke_config(&event.function, qualifier) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, function = %event.function, "reading the event invoke config");
                None
            }
        }
    }

    async fn handle(&self, event: AsyncEvent) {
        let config = self.config_for(&event);
        let max_retries = config.as_ref().and_then(|c| c.max_retries).unwrap_or(MAX_RETRIES_DEFAULT);
        let max_age_ms = i64::from(config.as_ref().and_then(|c| c.max_age_s).unwrap_or(MAX_EVENT_AGE_DEFAULT_S)) * 1000;
        let now = clock::now_ms();
        if now - event.created_ms > max_age_ms {
            let attempt = Attempt {
                status: 200,
                executed_version: None,
                function_error: None,
                response: None,
                error_message: "Event age exceeded".into(),
            };
            return self.finish(&event, config.as_ref(), Condition::EventAgeExceeded, attempt).await;
        }
        let qualifier = match event.qualifier.as_deref().map(Qualifier::parse).transpose() {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(request_id = event.request_id, error = %e, "dropping an async event with a bad qualifier");
                return self.delete(&event, Vec::new()).await;
            }
        };
        let request = InvokeRequest {
            request_id: event.request_id.clone(),
            function: event.function.clone(),
            qualifier,
            payload: Bytes::from(event.payload.clone()),
            want_log_tail: false,
            client_context: event.client_context.clone(),
            stream: None,
        };
        match self.invoker.invoke(request).await {
            Ok(result) if !result.outcome.is_function_error() => {
                let attempt = attempt_of(&result);
                self.finish(&event, config.as_ref(), Condition::Success, attempt).await;
            }
            Ok(result) => {
                let attempts = event.attempts + 1;
                let attempt = attempt_of(&result);
                if attempts > max_retries {
                    return self.finish(&event, config.as_ref(), Condition::RetriesExhausted, attempt).await;
                }
                let delay = self.settings.retry_base.as_millis() as i64 * (1_i64 << (attempts - 1).min(20));
                tracing::info!(
                    request_id = event.request_id,
                    function = %event.function,
                    attempt = attempts,
                    delay_ms = delay,
                    "async invocation failed ({}); retrying",
                    attempt.error_message
                );
                self.reschedule(&event, attempts, event.throttles, clock::now_ms() + delay).await;
            }
            Err(InvokeError::NotFound { arn }) => {
                tracing::warn!(request_id = event.request_id, %arn, "dropping an async event: the function no longer exists");
                self.delete(&event, Vec::new()).await;
            }
            Err(e) => {
                // Throttled, or Nimbus failed: not the function's fault, so not counted as a retry.
                let throttles = event.throttles.saturating_add(1);
                let delay =
                    (THROTTLE_BACKOFF_MIN_MS << throttles.min(12).saturating_sub(1)).min(THROTTLE_BACKOFF_MAX_MS);
                let delay = delay.min((self.settings.retry_base.as_millis() as i64).max(1) * 2);
                tracing::info!(request_id = event.request_id, error = %e, delay_ms = delay, "async invocation deferred");
                self.reschedule(&event, event.attempts, throttles, clock::now_ms() + delay).await;
            }
        }
    }

    async fn reschedule(&self, event: &AsyncEvent, attempts: u32, throttles: u32, due_ms: i64) {
        let store = self.store.clone();
        let id = event.id;
        loop {
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.reschedule_async_event(id, attempts, throttles, due_ms)).await {
                Ok(Ok(())) => break,
                Ok(Err(e)) => tracing::error!(error = %e, "rescheduling an async event"),
                Err(e) => tracing::error!(error = %e, "rescheduling an async event"),
            }
            tokio::time::sleep(STORE_RETRY).await;
        }
        self.wake.notify_one();
    }

    async fn delete(&self, event: &AsyncEvent, follow_up: Vec<NewAsyncEvent>) {
        let id = event.id;
        loop {
            let s = self.store.clone();
            let f = follow_up.clone();
            match tokio::task::spawn_blocking(move || s.finish_async_event(id, &f)).await {
                Ok(Ok(())) => break,
                Ok(Err(e)) => tracing::error!(error = %e, "finishing an async event"),
                Err(e) => tracing::error!(error = %e, "finishing an async event"),
            }
            tokio::time::sleep(STORE_RETRY).await;
        }
        if !follow_up.is_empty() {
            self.wake.notify_one();
        }
    }

    /// Delivers the outcome to the configured destinations (and, on failure, the dead-letter queue),
    /// then deletes the event. Queue deliveries happen first: if the server dies in between, the event
    /// runs again (at least once) rather than losing its record.
    async fn finish(
        &self,
        event: &AsyncEvent,
        config: Option<&EventInvokeConfig>,
        condition: Condition,
        attempt: Attempt,
    ) {
        let destination = match condition {
            Condition::Success => config.and_then(|c| c.on_success.clone()),
            _ => config.and_then(|c| c.on_failure.clone()),
        };
        if condition != Condition::Success {
            tracing::warn!(
                request_id = event.request_id,
                function = %event.function,
                condition = condition.as_str(),
                "async invocation failed for good: {}",
                attempt.error_message
            );
        }
        let mut follow_up = Vec::new();
        if let Some(dest) = destination {
            let record = self.destination_record(event, condition, &attempt);
            if dest.starts_with("arn:aws:sqs:") {
                if let Err(e) = self.sqs.send_to_arn(&dest, record.to_string(), Attributes::new()).await {
                    tracing::warn!(request_id = event.request_id, destination = dest, error = %e, "destination delivery failed");
                }
            } else if let Some((function, qualifier)) = self.function_of(&dest) {
                follow_up.push(NewAsyncEvent {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    function,
                    qualifier,
                    payload: record.to_string().into_bytes(),
                    client_context: None,
                    now_ms: clock::now_ms(),
                });
            } else {
                tracing::warn!(request_id = event.request_id, destination = dest, "unsupported destination");
            }
        }
        if condition != Condition::Success {
            self.dead_letter(event, &attempt).await;
        }
        self.delete(event, follow_up).await;
    }

    async fn dead_letter(&self, event: &AsyncEvent, attempt: &Attempt) {
        let target = match self.store.get_function(&event.function, &nimbus_store::VersionId::Latest) {
            Ok(record) => record.dead_letter_target,
            Err(_) => None,
        };
        let Some(target) = target else { return };
        let mut attrs = Attributes::new();
        attrs.insert("RequestID".into(), AttributeValue::string(&event.request_id));
        attrs.insert("ErrorCode".into(), AttributeValue::number(attempt.status));
        let message: String = attempt.error_message.chars().take(1024).collect();
        attrs.insert(
            "ErrorMessage".into(),
            AttributeValue::string(if message.is_empty() { "Unhandled".into() } else { message }),
        );
        let body = String::from_utf8_lossy(&event.payload).into_owned();
        if let Err(e) = self.sqs.send_to_arn(&target, body, attrs).await {
            tracing::warn!(request_id = event.request_id, target, error = %e, "dead-letter delivery failed");
        }
    }

    fn function_of(&self, arn: &str) -> Option<(FunctionName, Option<String>)> {
        let parsed = FunctionRef::parse(arn).ok()?;
        if parsed.account.as_ref().is_some_and(|a| a.as_str() != self.arns.account)
            || parsed.region.as_ref().is_some_and(|r| r.as_str() != self.arns.region)
        {
            return None;
        }
        Some((parsed.name, parsed.qualifier.map(|q| q.to_string())))
    }

    /// AWS's destination record.
    fn destination_record(&self, event: &AsyncEvent, condition: Condition, attempt: &Attempt) -> Value {
        let qualifier = Qualifier::parse(event.qualifier.as_deref().unwrap_or("$LATEST")).unwrap_or(Qualifier::Latest);
        let request_payload: Value = serde_json::from_slice(&event.payload)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&event.payload).into_owned()));
        let mut response_context = json!({ "statusCode": attempt.status });
        if let Some(v) = &attempt.executed_version {
            response_context["executedVersion"] = v.clone().into();
        }
        if let Some(fe) = attempt.function_error {
            response_context["functionError"] = fe.into();
        }
        let mut record = json!({
            "version": "1.0",
            "timestamp": clock::iso_millis(clock::now_ms()),
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": self.arns.function(&event.function, Some(&qualifier)),
                "condition": condition.as_str(),
                "approximateInvokeCount": event.attempts + u32::from(condition != Condition::EventAgeExceeded),
            },
            "requestPayload": request_payload,
            "responseContext": response_context,
        });
        if let Some(response) = &attempt.response {
            record["responsePayload"] = serde_json::from_slice(response)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(response).into_owned()));
        }
        record
    }
}

fn attempt_of(result: &InvokeResult) -> Attempt {
    let payload = result.outcome.payload().clone();
    let error_message = match &result.outcome {
        Outcome::Success { .. } => String::new(),
        _ => serde_json::from_slice::<Value>(&payload)
            .ok()
            .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&payload).chars().take(1024).collect()),
    };
    Attempt {
        status: 200,
        executed_version: Some(result.executed_version.clone()),
        function_error: result.outcome.is_function_error().then_some("Unhandled"),
        response: Some(payload),
        error_message,
    }
}
