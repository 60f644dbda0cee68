//! The measurements. Each is a plain loop of real API requests against the running server, timed
//! on the client with `Instant` around the request, and summarised as percentiles.
//!
//! - **Warm latency** ([`warm`]): sequential invokes on one kept-alive connection after a warmup,
//!   so every one reuses the same idle environment. The client's time is split into signing and
//!   round trip, and each round trip is paired (by request id) with the `Duration` of its REPORT
//!   line, which Nimbus measures from handing the event to the runtime to receiving its response.
//!   Round trip minus Duration is what Nimbus adds around the function: HTTP, SigV4 verification,
//!   resolving the function, the pool, waking the environment, logging.
//! - **API floor** ([`dry_run`]): `InvocationType: DryRun` takes the same path up to resolving the
//!   function and stops before the pool, so warm latency minus this is the invoke path proper.
//! - **Cold start** ([`cold`]): UpdateFunctionConfiguration (a new environment variable) retires the
//!   function's environments, then one invoke is timed. The client's time to the response and
//!   Nimbus's `x-nimbus-init-duration-ms` (launch to the runtime's first `/next`) are both reported.
//! - **Throughput** ([`throughput`]): `c` threads, each with its own connection, invoke back to back.
//!   Every thread first makes one invoke (so the pool has scaled out), then they run a ramp, then
//!   the completions inside a fixed window are counted. CPU time of the server, of the environment
//!   processes and of this client during the window shows where the machine's cores went.
//! - **CreateFunction rate** ([`create_rate`]): sequential CreateFunction calls of a tiny zip, then
//!   DeleteFunction of each.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http::Method;
use serde_json::{Value, json};

use crate::control::{Control, create_body};
use crate::functions::FunctionSpec;
use crate::server::{self, Server};
use crate::sign::Signer;
use crate::stats::Summary;
use crate::wire::{Connection, Response, expect_status};

const INIT_HEADER: &str = "x-nimbus-init-duration-ms";

/// One client of the Invoke API: a connection, a signer and a function.
pub struct Invoker {
    conn: Connection,
    signer: Signer,
    path: String,
}

/// One timed request: signing and the round trip (write to last byte read) measured apart.
pub struct Timed {
    pub sign: Duration,
    pub round_trip: Duration,
    pub response: Response,
}

impl Invoker {
    pub fn new(addr: SocketAddr, signer: Signer, function: &str) -> anyhow::Result<Invoker> {
        let mut conn = Connection::new(addr);
        conn.connect()?;
        Ok(Invoker { conn, signer, path: format!("/2015-03-31/functions/{function}/invocations") })
    }

    pub fn invoke(&mut self, payload: &[u8], extra: &[(&str, &str)]) -> anyhow::Result<Timed> {
        let start = Instant::now();
        let headers = self.signer.headers("POST", &self.path, extra, payload)?;
        let signed = Instant::now();
        let response = self.conn.request("POST", &self.path, &headers, payload)?;
        let done = Instant::now();
        Ok(Timed { sign: signed - start, round_trip: done - signed, response })
    }

    pub fn connects(&self) -> u64 {
        self.conn.connects
    }
}

/// Fails unless `timed` is a successful synchronous invoke that echoed `payload`.
fn check_echo(timed: &Timed, payload: &[u8]) -> anyhow::Result<()> {
    let response = &timed.response;
    expect_status(response, 200, "Invoke")?;
    if let Some(error) = response.header("x-amz-function-error") {
        bail!("Invoke: function error {error}: {}", String::from_utf8_lossy(&response.body));
    }
    let sent: Value = serde_json::from_slice(payload).context("the payload is JSON")?;
    let got: Value = serde_json::from_slice(&response.body)
        .with_context(|| format!("the echo answered non-JSON: {}", String::from_utf8_lossy(&response.body)))?;
    if sent != got {
        bail!("the echo answered {got} to {sent}");
    }
    Ok(())
}

fn payload(phase: &str, i: usize) -> Vec<u8> {
    json!({ "bench": phase, "i": i }).to_string().into_bytes()
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct WarmRun {
    /// Signing plus round trip: what a caller with this client waits.
    pub client: Summary,
    pub sign: Summary,
    pub round_trip: Summary,
    /// REPORT `Duration` of the same invocations (ms resolution 0.01).
    pub function: Summary,
    /// Per invocation: round trip minus its REPORT Duration.
    pub overhead: Summary,
    /// Invocations whose REPORT line was found (the rest are left out of `function`/`overhead`).
    pub paired: usize,
    /// Invocations that unexpectedly paid for a cold start.
    pub cold_starts: usize,
    /// TCP connections opened (1 means keep-alive held throughout).
    pub connections: u64,
}

/// `n` sequential warm invokes after `warmup` unmeasured ones.
pub fn warm(
    invoker: &mut Invoker,
    control: &Control,
    function: &str,
    n: usize,
    warmup: usize,
) -> anyhow::Result<WarmRun> {
    for i in 0..warmup {
        let p = payload("warmup", i);
        let timed = invoker.invoke(&p, &[])?;
        check_echo(&timed, &p).context("warmup")?;
    }
    let mut signs = Vec::with_capacity(n);
    let mut trips = Vec::with_capacity(n);
    let mut clients = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut cold_starts = 0;
    for i in 0..n {
        let p = payload("warm", i);
        let timed = invoker.invoke(&p, &[])?;
        check_echo(&timed, &p)?;
        if timed.response.header(INIT_HEADER).is_some() {
            cold_starts += 1;
        }
        let id =
            timed.response.header("x-amzn-requestid").context("the invoke answer has no x-amzn-RequestId")?.to_owned();
        signs.push(timed.sign);
        trips.push(timed.round_trip);
        clients.push(timed.sign + timed.round_trip);
        ids.push(id);
    }
    let durations = control.report_durations(function, &ids)?;
    let mut function_us = Vec::with_capacity(n);
    let mut overhead_us = Vec::with_capacity(n);
    for (id, trip) in ids.iter().zip(&trips) {
        if let Some(ms) = durations.get(id) {
            function_us.push(ms * 1000.0);
            overhead_us.push(trip.as_secs_f64() * 1e6 - ms * 1000.0);
        }
    }
    Ok(WarmRun {
        client: Summary::of_durations(&clients),
        sign: Summary::of_durations(&signs),
        round_trip: Summary::of_durations(&trips),
        paired: function_us.len(),
        function: Summary::of_micros(function_us),
        overhead: Summary::of_micros(overhead_us),
        cold_starts,
        connections: invoker.connects(),
    })
}

/// `n` DryRun invokes: authentication, parsing and resolving the function, no environment.
pub fn dry_run(invoker: &mut Invoker, n: usize) -> anyhow::Result<Summary> {
    let mut trips = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let p = payload("dry", i);
        let timed = invoker.invoke(&p, &[("x-amz-invocation-type", "DryRun")])?;
        expect_status(&timed.response, 204, "Invoke (DryRun)")?;
        if i >= n / 10 {
            trips.push(timed.round_trip);
        }
    }
    Ok(Summary::of_durations(&trips))
}

/// `n` warm invokes through `nimbus::client::ApiClient` (reqwest on tokio, signing included).
pub fn warm_api_client(control: &Control, function: &str, n: usize) -> anyhow::Result<Summary> {
    let path = format!("/2015-03-31/functions/{function}/invocations");
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let p = payload("apiclient", i);
        let start = Instant::now();
        let response = control.send(Method::POST, &path, &[], p)?;
        let elapsed = start.elapsed();
        if response.status.as_u16() != 200 {
            bail!("Invoke through ApiClient: HTTP {}: {}", response.status, String::from_utf8_lossy(&response.body));
        }
        if i >= n / 10 {
            samples.push(elapsed);
        }
    }
    Ok(Summary::of_durations(&samples))
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ColdRun {
    /// Client round trip of the invoke that paid for the cold start.
    pub client: Summary,
    /// `x-nimbus-init-duration-ms`: environment launch to the runtime's first `/next`.
    pub init: Summary,
    /// Client time minus init: what the rest of the invoke path costs on a cold start.
    pub outside_init: Summary,
    /// Invokes that came back without the cold-start header (should be 0).
    pub not_cold: usize,
}

/// `m` cold starts, each forced by a configuration change.
pub fn cold(
    invoker: &mut Invoker,
    control: &Control,
    function: &str,
    m: usize,
    gap: std::time::Duration,
) -> anyhow::Result<ColdRun> {
    let mut client = Vec::with_capacity(m);
    let mut init = Vec::with_capacity(m);
    let mut outside = Vec::with_capacity(m);
    let mut not_cold = 0;
    for i in 0..m {
        std::thread::sleep(gap);
        control
            .set_environment(function, json!({ "BENCH_COLD_START": i.to_string() }))
            .context("force a cold start")?;
        let p = payload("cold", i);
        let timed = invoker.invoke(&p, &[])?;
        check_echo(&timed, &p).context("cold start")?;
        let trip_ms = timed.round_trip.as_secs_f64() * 1000.0;
        client.push(trip_ms * 1000.0);
        match timed.response.header(INIT_HEADER).and_then(|v| v.parse::<f64>().ok()) {
            Some(ms) => {
                init.push(ms * 1000.0);
                outside.push((trip_ms - ms) * 1000.0);
            }
            None => not_cold += 1,
        }
    }
    Ok(ColdRun {
        client: Summary::of_micros(client),
        init: Summary::of_micros(init),
        outside_init: Summary::of_micros(outside),
        not_cold,
    })
}

/// Where CPU time went during a throughput window, per completed invoke, in microseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CpuPerInvoke {
    pub server_us: f64,
    pub environments_us: f64,
    pub bench_client_us: f64,
    /// Busy CPU time of the machine not accounted to the three above (other processes, or
    /// environments that ended during the window).
    pub other_us: f64,
    /// Busy share of all the machine's cores during the window.
    pub machine_busy_pct: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ThroughputRun {
    pub concurrency: usize,
    pub window_secs: f64,
    pub invokes: usize,
    pub per_sec: f64,
    pub latency: Summary,
    pub errors: usize,
    pub throttled: usize,
    pub cold_starts_in_window: usize,
    pub cpu: CpuPerInvoke,
    /// Environments (runtime processes) of all functions when the window closed.
    pub environments: usize,
}

struct CpuSnapshot {
    server: f64,
    envs: f64,
    own: f64,
    machine_busy: f64,
    machine_total: f64,
}

fn snapshot(server: &Server) -> CpuSnapshot {
    let (machine_busy, machine_total) = server::machine_cpu_secs();
    CpuSnapshot {
        server: server.cpu_secs(),
        envs: server::env_cpu_secs(&server.processes()),
        own: server::own_cpu_secs(),
        machine_busy,
        machine_total,
    }
}

/// What one throughput worker saw: (start, end, outcome) per request.
#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Ok { cold: bool },
    Throttled,
    Failed,
}

/// Invokes from `concurrency` threads back to back; counts completions in a `window` after `ramp`.
pub fn throughput(
    server: &Server,
    signer: &Signer,
    function: &str,
    concurrency: usize,
    ramp: Duration,
    window: Duration,
) -> anyhow::Result<ThroughputRun> {
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let body = payload("throughput", 0);
    let (start_snap, end_snap, window_start, window_end, records) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let barrier = barrier.clone();
                let stop = stop.clone();
                let signer = signer.clone();
                let body = &body;
                scope.spawn(move || worker(server.addr, signer, function, body, &barrier, &stop))
            })
            .collect();
        barrier.wait();
        std::thread::sleep(ramp);
        let start_snap = snapshot(server);
        let window_start = Instant::now();
        std::thread::sleep(window);
        let window_end = Instant::now();
        let end_snap = snapshot(server);
        stop.store(true, Ordering::Relaxed);
        let mut records = Vec::new();
        for w in workers {
            match w.join() {
                Ok(r) => records.push(r),
                Err(_) => records.push(Err(anyhow::anyhow!("a worker thread panicked"))),
            }
        }
        (start_snap, end_snap, window_start, window_end, records)
    });
    let mut latencies = Vec::new();
    let (mut invokes, mut errors, mut throttled, mut cold) = (0, 0, 0, 0);
    for record in records {
        for (start, end, outcome) in record? {
            if end < window_start || end > window_end {
                continue;
            }
            match outcome {
                Outcome::Ok { cold: was_cold } => {
                    invokes += 1;
                    cold += usize::from(was_cold);
                    if start >= window_start {
                        latencies.push(end - start);
                    }
                }
                Outcome::Throttled => throttled += 1,
                Outcome::Failed => errors += 1,
            }
        }
    }
    let secs = (window_end - window_start).as_secs_f64();
    let per_invoke = |delta: f64| delta * 1e6 / (invokes.max(1) as f64);
    let machine_total = end_snap.machine_total - start_snap.machine_total;
    let server_us = per_invoke(end_snap.server - start_snap.server);
    let environments_us = per_invoke(end_snap.envs - start_snap.envs);
    let bench_client_us = per_invoke(end_snap.own - start_snap.own);
    let busy_us = per_invoke(end_snap.machine_busy - start_snap.machine_busy);
    Ok(ThroughputRun {
        concurrency,
        window_secs: secs,
        invokes,
        per_sec: invokes as f64 / secs,
        latency: Summary::of_durations(&latencies),
        errors,
        throttled,
        cold_starts_in_window: cold,
        cpu: CpuPerInvoke {
            server_us,
            environments_us,
            bench_client_us,
            other_us: busy_us - server_us - environments_us - bench_client_us,
            machine_busy_pct: if machine_total > 0.0 {
                100.0 * (end_snap.machine_busy - start_snap.machine_busy) / machine_total
            } else {
                0.0
            },
        },
        environments: server::environment_count(&server.processes()),
    })
}

type Records = Vec<(Instant, Instant, Outcome)>;

fn worker(
    addr: SocketAddr,
    signer: Signer,
    function: &str,
    body: &[u8],
    barrier: &Barrier,
    stop: &AtomicBool,
) -> anyhow::Result<Records> {
    // Whatever happens, reach the barrier, or the other threads would wait forever.
    let first = Invoker::new(addr, signer, function).and_then(|mut invoker| {
        let timed = invoker.invoke(body, &[])?;
        check_echo(&timed, body).context("first invoke of a throughput worker")?;
        Ok(invoker)
    });
    barrier.wait();
    let mut invoker = first?;
    let mut records = Vec::with_capacity(64 * 1024);
    let mut failures = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        let outcome = match invoker.invoke(body, &[]) {
            Ok(timed) if timed.response.status == 429 => Outcome::Throttled,
            Ok(timed) => match check_echo(&timed, body) {
                Ok(()) => Outcome::Ok { cold: timed.response.header(INIT_HEADER).is_some() },
                Err(_) => Outcome::Failed,
            },
            Err(_) => Outcome::Failed,
        };
        if outcome == Outcome::Failed {
            failures += 1;
            if failures > 1000 {
                bail!("more than 1000 failed invokes in one throughput worker");
            }
        }
        records.push((start, Instant::now(), outcome));
    }
    Ok(records)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CreateRun {
    pub count: usize,
    pub zip_bytes: usize,
    pub create_per_sec: f64,
    pub create: Summary,
    pub delete_per_sec: f64,
    pub delete: Summary,
}

/// `count` sequential CreateFunction calls of `spec`'s zip under new names, then DeleteFunction
/// of each, on one signed keep-alive connection.
pub fn create_rate(
    addr: SocketAddr,
    signer: &Signer,
    spec: &FunctionSpec,
    memory_mb: u32,
    count: usize,
) -> anyhow::Result<CreateRun> {
    let mut conn = Connection::new(addr);
    conn.connect()?;
    let names: Vec<String> = (0..count).map(|i| format!("bench-create-{i}")).collect();
    let mut create = Vec::with_capacity(count);
    let started = Instant::now();
    for name in &names {
        let body = create_body(spec, name, memory_mb).to_string().into_bytes();
        let path = "/2015-03-31/functions";
        let start = Instant::now();
        let headers = signer.headers("POST", path, &[("content-type", "application/json")], &body)?;
        let response = conn.request("POST", path, &headers, &body)?;
        create.push(start.elapsed());
        expect_status(&response, 201, &format!("CreateFunction {name}"))?;
    }
    let create_secs = started.elapsed().as_secs_f64();
    let mut delete = Vec::with_capacity(count);
    let started = Instant::now();
    for name in &names {
        let path = format!("/2015-03-31/functions/{name}");
        let start = Instant::now();
        let headers = signer.headers("DELETE", &path, &[], b"")?;
        let response = conn.request("DELETE", &path, &headers, b"")?;
        delete.push(start.elapsed());
        expect_status(&response, 204, &format!("DeleteFunction {name}"))?;
    }
    let delete_secs = started.elapsed().as_secs_f64();
    Ok(CreateRun {
        count,
        zip_bytes: spec.zip.len(),
        create_per_sec: count as f64 / create_secs,
        create: Summary::of_durations(&create),
        delete_per_sec: count as f64 / delete_secs,
        delete: Summary::of_durations(&delete),
    })
}
