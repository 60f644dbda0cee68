//! `nimbus-bench --event-plane`: the event plane's rates against the real binary.
//!
//! - async invokes accepted per second: `clients` threads send `Invoke` with `InvocationType=Event`
//!   (each 202 means the event was committed to the journal with an fsync) for `window` seconds; then
//!   the time until every accepted event has run, read from the OnSuccess destination queue, gives the
//!   rate at which they were processed;
//! - queue messages processed per second through an event source mapping to the provided echo
//!   function, at batch size 10 and 100: the queue is filled first (that rate is printed too), then
//!   the mapping is created and the time until the queue is empty is measured.
//!
//! Like the rest of the benchmark it prints numbers and asserts nothing about speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http::Method;
use serde_json::{Value, json};

use crate::control::Control;
use crate::functions::FunctionSpec;
use crate::server::Server;
use crate::sign::Signer;
use crate::wire::Connection;

const SQS_JSON: (&str, &str) = ("content-type", "application/x-amz-json-1.0");
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, serde::Serialize)]
pub struct EventPlaneReport {
    pub clients: usize,
    pub async_accepted: u64,
    pub async_accept_secs: f64,
    pub async_accepted_per_sec: f64,
    pub async_failed: u64,
    /// From the first accepted event to the last one's OnSuccess record.
    pub async_processed_secs: f64,
    pub async_processed_per_sec: f64,
    pub mappings: Vec<MappingRun>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MappingRun {
    pub batch_size: u32,
    pub messages: u64,
    pub send_secs: f64,
    pub sent_per_sec: f64,
    pub drain_secs: f64,
    pub processed_per_sec: f64,
}

fn sqs(control: &Control, operation: &str, body: Value) -> anyhow::Result<Value> {
    let target = format!("AmazonSQS.{operation}");
    let response =
        control.send(Method::POST, "/", &[SQS_JSON, ("x-amz-target", &target)], body.to_string().into_bytes())?;
    if response.status.as_u16() != 200 {
        bail!("{operation}: HTTP {}: {}", response.status, String::from_utf8_lossy(&response.body));
    }
    serde_json::from_slice(&response.body).with_context(|| format!("{operation}: the answer is not JSON"))
}

fn create_queue(control: &Control, name: &str) -> anyhow::Result<String> {
    let out = sqs(control, "CreateQueue", json!({ "QueueName": name }))?;
    out["QueueUrl"].as_str().map(str::to_owned).context("CreateQueue answered no QueueUrl")
}

/// Messages in the queue, visible and in flight.
fn queue_depth(control: &Control, url: &str) -> anyhow::Result<u64> {
    let out = sqs(control, "GetQueueAttributes", json!({ "QueueUrl": url, "AttributeNames": ["All"] }))?;
    let n = |k: &str| out["Attributes"][k].as_str().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(n("ApproximateNumberOfMessages") + n("ApproximateNumberOfMessagesNotVisible"))
}

fn lambda(control: &Control, method: Method, path: &str, body: Value, status: u16) -> anyhow::Result<Value> {
    let response =
        control.send(method, path, &[("content-type", "application/json")], body.to_string().into_bytes())?;
    if response.status.as_u16() != status {
        bail!("{path}: HTTP {}: {}", response.status, String::from_utf8_lossy(&response.body));
    }
    Ok(serde_json::from_slice(&response.body).unwrap_or(Value::Null))
}

/// `clients` threads run `request(i)` until `stop`; returns (ok, failed) counts.
fn hammer(
    server: &Server,
    signer: &Signer,
    clients: usize,
    until: impl Fn(u64) -> bool + Sync,
    request: impl Fn(u64) -> (String, String, Vec<(String, String)>, Vec<u8>) + Sync,
) -> (u64, u64) {
    let next = Arc::new(AtomicU64::new(0));
    let ok = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                let mut conn = Connection::new(server.addr);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if stop.load(Ordering::Relaxed) || until(i) {
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                    let (method, path, extra, body) = request(i);
                    let extra: Vec<(&str, &str)> = extra.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                    let result = signer
                        .headers(&method, &path, &extra, &body)
                        .and_then(|headers| conn.request(&method, &path, &headers, &body));
                    match result {
                        Ok(r) if r.status < 300 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
    });
    (ok.into_inner(), failed.into_inner())
}

fn wait_depth(control: &Control, url: &str, done: impl Fn(u64) -> bool) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let depth = queue_depth(control, url)?;
        if done(depth) {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("gave up after {DRAIN_TIMEOUT:?}: queue {url} still holds {depth} messages");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[allow(clippy::too_many_arguments)]
pub fn measure(
    server: &Server,
    signer: &Signer,
    spec: &FunctionSpec,
    memory_mb: u32,
    clients: usize,
    window: Duration,
    messages: u64,
    progress: impl Fn(String),
) -> anyhow::Result<EventPlaneReport> {
    let control = Control::new(&server.url)?;
    control.create_function(spec, memory_mb)?;
    let function = spec.name.as_str();

    // Async invokes, with OnSuccess to a queue so that "processed" can be observed from outside.
    let done_url = create_queue(&control, "bench-async-done")?;
    let done_arn = "arn:aws:sqs:us-east-1:000000000000:bench-async-done";
    lambda(
        &control,
        Method::PUT,
        &format!("/2019-09-25/functions/{function}/event-invoke-config"),
        json!({ "MaximumRetryAttempts": 0, "DestinationConfig": { "OnSuccess": { "Destination": done_arn } } }),
        200,
    )?;
    progress(format!("async invokes: {clients} clients for {:.0} s", window.as_secs_f64()));
    let path = format!("/2015-03-31/functions/{function}/invocations");
    let started = Instant::now();
    let (accepted, failed) = hammer(
        server,
        signer,
        clients,
        |_| started.elapsed() >= window,
        |i| {
            let headers = vec![("x-amz-invocation-type".to_owned(), "Event".to_owned())];
            ("POST".into(), path.clone(), headers, format!("{{\"n\":{i}}}").into_bytes())
        },
    );
    let accept_secs = started.elapsed().as_secs_f64();
    progress(format!("{accepted} accepted; waiting for them to run"));
    let processed_at = wait_depth(&control, &done_url, |depth| depth >= accepted)?;
    let processed_secs = (processed_at - started).as_secs_f64();

    let mut mappings = Vec::new();
    for batch_size in [10u32, 100] {
        let name = format!("bench-esm-{batch_size}");
        let url = create_queue(&control, &name)?;
        progress(format!("batch size {batch_size}: sending {messages} messages"));
        let batches = messages.div_ceil(10);
        let send_started = Instant::now();
        let (sent, send_failed) = hammer(
            server,
            signer,
            clients,
            |i| i >= batches,
            |i| {
                let entries: Vec<Value> = (0..10)
                    .map(|j| json!({ "Id": format!("m{j}"), "MessageBody": format!("{{\"n\":{}}}", i * 10 + j) }))
                    .collect();
                let body = json!({ "QueueUrl": url, "Entries": entries }).to_string().into_bytes();
                let headers = vec![
                    ("content-type".to_owned(), SQS_JSON.1.to_owned()),
                    ("x-amz-target".to_owned(), "AmazonSQS.SendMessageBatch".to_owned()),
                ];
                ("POST".into(), "/".into(), headers, body)
            },
        );
        if send_failed > 0 {
            bail!("{send_failed} SendMessageBatch calls failed");
        }
        let send_secs = send_started.elapsed().as_secs_f64();
        let total = sent * 10;
        progress(format!("batch size {batch_size}: draining {total} messages through a mapping"));
        let window_s = if batch_size > 10 { 1 } else { 0 };
        let drain_started = Instant::now();
        let mapping = lambda(
            &control,
            Method::POST,
            "/2015-03-31/event-source-mappings",
            json!({ "EventSourceArn": format!("arn:aws:sqs:us-east-1:000000000000:{name}"), "FunctionName": function,
                    "BatchSize": batch_size, "MaximumBatchingWindowInSeconds": window_s }),
            202,
        )?;
        let drained_at = wait_depth(&control, &url, |depth| depth == 0)?;
        let drain_secs = (drained_at - drain_started).as_secs_f64();
        if let Some(uuid) = mapping["UUID"].as_str() {
            lambda(&control, Method::DELETE, &format!("/2015-03-31/event-source-mappings/{uuid}"), json!({}), 202)?;
        }
        mappings.push(MappingRun {
            batch_size,
            messages: total,
            send_secs,
            sent_per_sec: total as f64 / send_secs,
            drain_secs,
            processed_per_sec: total as f64 / drain_secs,
        });
    }
    Ok(EventPlaneReport {
        clients,
        async_accepted: accepted,
        async_accept_secs: accept_secs,
        async_accepted_per_sec: accepted as f64 / accept_secs,
        async_failed: failed,
        async_processed_secs: processed_secs,
        async_processed_per_sec: accepted as f64 / processed_secs,
        mappings,
    })
}

pub fn print(r: &EventPlaneReport) {
    println!("Event plane ({} client threads)", r.clients);
    println!(
        "  async invokes accepted (202, journaled):  {:>9.0} /s   ({} in {:.1} s, {} failed)",
        r.async_accepted_per_sec, r.async_accepted, r.async_accept_secs, r.async_failed
    );
    println!(
        "  async invokes run to OnSuccess:           {:>9.0} /s   (all done {:.1} s after the first)",
        r.async_processed_per_sec, r.async_processed_secs
    );
    for m in &r.mappings {
        println!(
            "  SQS -> mapping -> echo, batch {:>3}:       {:>9.0} msg/s (drained {} in {:.1} s; sent at {:.0} msg/s)",
            m.batch_size, m.processed_per_sec, m.messages, m.drain_secs, m.sent_per_sec
        );
    }
}
