//! Entry points for the `cargo fuzz` targets in `fuzz/` (see docs/FUZZING.md). Not an API: each one
//! runs the server's own parsing code on bytes a hostile client or function controls, with only as
//! much around it as that code needs (a store for the SQS and Logs handlers, a stand-in driver for the
//! Runtime API). The SigV4 target needs nothing here: `auth::verify` is public.

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::response::Response;
use http_body_util::BodyExt;
use nimbus_store::Store;
use tokio::sync::oneshot;
use tower::ServiceExt;

use crate::runtime_api::{Ack, NextEvent, RuntimeMsg};

/// The account and region every harness serves, as the seed corpora's queue URLs and ARNs spell them.
pub const ACCOUNT: &str = "000000000000";
pub const REGION: &str = "us-east-1";
/// The endpoint in queue URLs.
pub const ENDPOINT: &str = "http://127.0.0.1:9001";

async fn into_parts(response: Response) -> (u16, Bytes) {
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    (status, body)
}

/// The event-filter language: parse `pattern`; if it is valid and `event` is JSON, match it.
/// `None` when either is refused.
pub fn filter(pattern: &str, event: &[u8]) -> Option<bool> {
    let pattern = crate::events::filter::Pattern::parse(pattern).ok()?;
    let event: serde_json::Value = serde_json::from_slice(event).ok()?;
    Some(pattern.matches(&event))
}

/// The SQS JSON API on a real store: the same handlers `AmazonSQS.*` requests reach.
pub struct SqsHarness {
    store: Arc<Store>,
    sqs: Arc<crate::sqs::Sqs>,
}

impl SqsHarness {
    /// Opens a store in `dir` (which must be empty or a previous harness's).
    pub fn open(dir: &Path) -> Result<Self, nimbus_store::StoreError> {
        let store = Arc::new(Store::open(dir)?);
        // No reserve: the harness never refuses a send for disk space.
        let disk = Arc::new(crate::disk::DataDisk::new(dir.to_path_buf(), 0));
        let sqs = Arc::new(crate::sqs::Sqs::new(store.clone(), REGION, ACCOUNT, ENDPOINT, disk));
        Ok(Self { store, sqs })
    }

    /// One request: `operation` as in `X-Amz-Target: AmazonSQS.<operation>`, `body` its JSON.
    /// Returns the status and body sent back.
    pub async fn request(&self, operation: &str, body: &[u8]) -> (u16, Bytes) {
        let deps = crate::api::sqs::Deps { sqs: &self.sqs, store: &self.store };
        into_parts(crate::api::sqs::respond(&deps, operation, body, None).await).await
    }
}

/// The CloudWatch Logs JSON API on a real store.
pub struct LogsHarness {
    store: Arc<Store>,
    arns: crate::arn::Arns,
}

impl LogsHarness {
    /// Opens a store in `dir` and writes a log group `/aws/lambda/f` with two streams of events, so
    /// reads have something to page through.
    pub fn open(dir: &Path) -> Result<Self, nimbus_store::StoreError> {
        let store = Store::open(dir)?;
        let events = |n: i64| -> Vec<nimbus_store::LogEvent> {
            (0..n)
                .map(|i| nimbus_store::LogEvent {
                    timestamp_ms: 1_700_000_000_000 + i * 1000,
                    message: format!("START RequestId: {i} ERROR [level=warn] latency={} ms \"quoted\"\n", i * 7),
                })
                .collect()
        };
        let now = crate::clock::now_ms();
        store.append_logs("/aws/lambda/f", "2024/01/01/[$LATEST]aaaa", &events(30), now)?;
        store.append_logs("/aws/lambda/f", "2024/01/02/[$LATEST]bbbb", &events(5), now)?;
        store.append_logs("/aws/lambda/g", "2024/01/02/[1]cccc", &events(2), now)?;
        Ok(Self { store: Arc::new(store), arns: crate::arn::Arns { region: REGION.into(), account: ACCOUNT.into() } })
    }

    /// One request: `operation` as in `X-Amz-Target: Logs_20140328.<operation>`.
    pub async fn request(&self, operation: &str, body: &[u8]) -> (u16, Bytes) {
        let deps = crate::api::logs::Deps { store: self.store.clone(), arns: self.arns.clone() };
        into_parts(crate::api::logs::respond(deps, operation, body).await).await
    }
}

/// How the stand-in driver answers the reports a runtime sends.
#[derive(Debug, Clone, Copy)]
pub enum DriverAnswer {
    Accepted,
    InvalidRequestId,
    InvalidStateTransition,
    TooLarge,
    /// The driver has gone (the environment is shutting down).
    Gone,
}

/// One request to an environment's Runtime API listener, answered by a stand-in driver that reads
/// error reports the way the real one does (`error_report`, `report_error_type`).
pub async fn runtime_api(request: http::Request<Bytes>, answer: DriverAnswer) -> (u16, Bytes) {
    let (tx, mut rx) = crate::runtime_api::channel();
    let driver = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if matches!(answer, DriverAnswer::Gone) {
                return;
            }
            let ack = match answer {
                DriverAnswer::Accepted | DriverAnswer::Gone => Ack::Accepted,
                DriverAnswer::InvalidRequestId => Ack::InvalidRequestId,
                DriverAnswer::InvalidStateTransition => Ack::InvalidStateTransition,
                DriverAnswer::TooLarge => Ack::TooLarge,
            };
            let reply: oneshot::Sender<Ack> = match msg {
                RuntimeMsg::Next { reply } => {
                    let _ = reply.send(NextEvent {
                        request_id: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
                        deadline_ms: 1_542_409_706_888,
                        invoked_function_arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"),
                        trace_id: "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".into(),
                        client_context: None,
                        cognito_identity: None,
                        payload: Bytes::from_static(b"{}"),
                    });
                    continue;
                }
                RuntimeMsg::StreamStart { reply, .. } => {
                    // As the driver does for a caller that did not ask for a stream: buffer it.
                    let _ = reply.send(if ack == Ack::Accepted { Ok(None) } else { Err(ack) });
                    continue;
                }
                RuntimeMsg::StreamEnd { end: crate::runtime_api::StreamEnd::Error { error_type, body }, reply, .. } => {
                    let payload = crate::environment::error_report(&body, error_type.as_deref());
                    let value: serde_json::Value =
                        serde_json::from_slice(&payload).expect("error_report returned invalid JSON");
                    assert!(value.is_object(), "error_report returned a non-object");
                    reply
                }
                RuntimeMsg::StreamEnd { reply, .. } => reply,
                RuntimeMsg::Response { reply, .. } | RuntimeMsg::ResponseTooLarge { reply, .. } => reply,
                RuntimeMsg::Error { error_type, body, reply, .. }
                | RuntimeMsg::InitError { error_type, body, reply } => {
                    let payload = crate::environment::error_report(&body, error_type.as_deref());
                    // What the driver keeps must be a JSON object: it becomes the invoke's response.
                    let value: serde_json::Value =
                        serde_json::from_slice(&payload).expect("error_report returned invalid JSON");
                    assert!(value.is_object(), "error_report returned a non-object");
                    let _ = crate::environment::report_error_type(&payload);
                    reply
                }
            };
            let _ = reply.send(ack);
        }
    });
    let response = crate::runtime_api::router(tx).oneshot(request.map(axum::body::Body::from)).await;
    driver.abort();
    match response {
        Ok(response) => into_parts(response).await,
        Err(never) => match never {},
    }
}

/// The `/next` response for an event whose fields came from an invoke request (client context and
/// Cognito identity are the caller's bytes). Returns the headers sent.
pub fn next_event_headers(
    request_id: String,
    deadline_ms: i64,
    invoked_function_arn: String,
    client_context: Option<String>,
    cognito_identity: Option<String>,
) -> http::HeaderMap {
    let event = NextEvent {
        request_id,
        deadline_ms,
        invoked_function_arn,
        trace_id: "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".into(),
        client_context,
        cognito_identity,
        payload: Bytes::new(),
    };
    crate::runtime_api::next_response(event).headers().clone()
}
