//! The driver task of one environment. It alone owns the environment's state: the runtime process,
//! the runtime's pending `/next` calls, the invocation in flight, its deadline, and the process's
//! output. Everything reaches it as a message (commands from the invoke path, reports from the
//! Runtime API, output, exit, timers), so there is nothing to lock.
//!
//! Lifecycle: launched → init (until the runtime's first `/next`, capped by the init timeout) → idle
//! (frozen) ⇄ busy → ended. Any failure that leaves the runtime in an unknown state (timeout, crash,
//! init failure) ends the environment; the next invocation gets a fresh one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nimbus_sandbox::{ExitDescription, Instance};
use nimbus_store::LogEvent;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::launch::LaunchContext;
use super::{Command, Invocation, InvokeReport, Outcome};
use crate::clock;
use crate::logs::{self, ReportLine};
use crate::pool::EnvId;
use crate::runtime_api::{Ack, NextEvent, RuntimeMsg};

/// AWS returns "the last 4 KB of the execution log" with `LogType: Tail`.
const LOG_TAIL_BYTES: usize = 4096;
/// Lines longer than this are split, so a function printing without newlines cannot grow our buffers.
const LOG_LINE_BYTES_MAX: usize = 256 * 1024;
/// How many `/next` calls may wait at once (clients with internal concurrency poll from several tasks).
const NEXT_WAITERS_MAX: usize = 8;
/// How long an environment may take to stop after SIGTERM at shutdown before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

pub(super) struct Parts {
    pub id: EnvId,
    pub instance: Box<dyn Instance>,
    pub runtime_rx: mpsc::Receiver<RuntimeMsg>,
    pub commands: mpsc::Receiver<Command>,
    pub ctx: LaunchContext,
    pub plan_memory_mb: u32,
    pub version: String,
    pub group: Arc<str>,
    pub stream: Arc<str>,
    pub session_key: String,
    pub server: JoinHandle<()>,
    pub launched_at: Instant,
    pub init_timeout: Duration,
    /// Told when init finishes (provisioned concurrency reports readiness from it).
    pub ready: tokio::sync::watch::Sender<bool>,
    /// Launched ahead of invocations: no invocation reports its init as a cold start.
    pub ahead_of_time: bool,
}

enum Init {
    Running {
        deadline: tokio::time::Instant,
    },
    /// Init finished; the duration is reported on the first invocation's REPORT line.
    Done {
        unreported: Option<Duration>,
    },
    /// The runtime reported `/init/error` with this report; it is expected to exit.
    Failed {
        payload: Bytes,
        error_type: String,
    },
}

struct Current {
    request_id: String,
    reply: oneshot::Sender<InvokeReport>,
    started: Instant,
    deadline: tokio::time::Instant,
    timeout: Duration,
    init_duration: Option<Duration>,
    tail: Option<Vec<u8>>,
}

/// Why the driver stopped.
enum End {
    Shutdown,
    Broken,
}

pub(super) struct Driver {
    p: Parts,
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
    stdout_buf: Vec<u8>,
    stderr_buf: Vec<u8>,
    exit: Option<oneshot::Receiver<ExitDescription>>,
    init: Init,
    waiters: VecDeque<oneshot::Sender<NextEvent>>,
    queued: Option<Invocation>,
    /// Output collected for the queued invocation's log tail while init runs (AWS's tail of a cold
    /// start shows the init output too).
    queued_tail: Option<Vec<u8>>,
    current: Option<Current>,
    frozen: bool,
    pending_logs: Vec<LogEvent>,
    /// The function's output may only fill so much of `logs.db` (see `logs::LogBudget`).
    log_budget: logs::LogBudget,
}

impl Driver {
    pub(super) fn new(mut p: Parts) -> Self {
        let (stdout, stderr) = match p.instance.take_output() {
            Some((o, e)) => (Some(o), Some(e)),
            None => (None, None),
        };
        let exit = p.instance.take_exit();
        let deadline = tokio::time::Instant::from_std(p.launched_at + p.init_timeout);
        Self {
            p,
            stdout,
            stderr,
            stdout_buf: Vec::new(),
            stderr_buf: Vec::new(),
            exit,
            init: Init::Running { deadline },
            waiters: VecDeque::new(),
            queued: None,
            queued_tail: None,
            current: None,
            frozen: false,
            pending_logs: Vec::new(),
            log_budget: logs::LogBudget::new(Instant::now()),
        }
    }

    pub(super) async fn run(mut self) {
        let end = loop {
            let step = self.step().await;
            self.flush_logs().await;
            if let Some(end) = step {
                break end;
            }
        };
        self.finish(end).await;
    }

    async fn step(&mut self) -> Option<End> {
        let init_deadline = match self.init {
            Init::Running { deadline } => Some(deadline),
            _ => None,
        };
        let invoke_deadline = self.current.as_ref().map(|c| c.deadline);
        let idle = self.queued.is_none() && self.current.is_none();
        let mut out_chunk = [0u8; 8192];
        let mut err_chunk = [0u8; 8192];
        let mut shutdown = self.p.ctx.shutdown.clone();
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => Some(End::Shutdown),
            command = self.p.commands.recv(), if idle => match command {
                Some(Command::Invoke(invocation)) => self.accept(invocation),
                None => Some(End::Shutdown),
            },
            Some(msg) = self.p.runtime_rx.recv() => self.on_runtime(msg),
            n = read_some(&mut self.stdout, &mut out_chunk) => {
                self.on_output(Stream::Out, &out_chunk[..n]);
                None
            }
            n = read_some(&mut self.stderr, &mut err_chunk) => {
                self.on_output(Stream::Err, &err_chunk[..n]);
                None
            }
            exit = wait_exit(&mut self.exit) => Some(self.on_exit(exit)),
            _ = sleep_until(init_deadline) => Some(self.on_init_timeout()),
            _ = sleep_until(invoke_deadline) => Some(self.on_timeout()),
        }
    }

    fn accept(&mut self, invocation: Invocation) -> Option<End> {
        if let Init::Failed { payload, error_type } = &self.init {
            // The runtime already failed init; it will exit. Report that failure to this invocation.
            let (payload, error_type) = (payload.clone(), error_type.clone());
            self.queued = Some(invocation);
            self.fail_queued(Outcome::InitError { payload }, Some(("error", error_type)));
            return Some(End::Broken);
        }
        self.queued_tail = invocation.want_log_tail.then(Vec::new);
        self.queued = Some(invocation);
        self.dispatch();
        None
    }

    /// Hands the queued invocation to a waiting `/next`, once init is done and nothing is in flight.
    fn dispatch(&mut self) {
        if self.current.is_some() || !matches!(self.init, Init::Done { .. }) {
            return;
        }
        let Some(invocation) = self.queued.take() else { return };
        while let Some(waiter) = self.waiters.pop_front() {
            if waiter.is_closed() {
                continue;
            }
            self.thaw();
            let started = Instant::now();
            let deadline_ms = clock::now_ms() + invocation.timeout.as_millis() as i64;
            let event = NextEvent {
                request_id: invocation.request_id.clone(),
                deadline_ms,
                invoked_function_arn: invocation.invoked_function_arn.clone(),
                trace_id: trace_id(),
                client_context: invocation.client_context.clone(),
                cognito_identity: invocation.cognito_identity.clone(),
                payload: invocation.payload.clone(),
            };
            if waiter.send(event).is_err() {
                continue;
            }
            let init_duration = match &mut self.init {
                Init::Done { unreported } => unreported.take(),
                _ => None,
            };
            let mut current = Current {
                request_id: invocation.request_id,
                reply: invocation.reply,
                started,
                deadline: tokio::time::Instant::from_std(started + invocation.timeout),
                timeout: invocation.timeout,
                init_duration,
                tail: self.queued_tail.take().or_else(|| invocation.want_log_tail.then(Vec::new)),
            };
            let start = logs::start_line(&current.request_id, &self.p.version);
            push_line(&mut self.pending_logs, current.tail.as_mut(), start);
            self.current = Some(current);
            return;
        }
        self.queued = Some(invocation);
    }

    fn on_runtime(&mut self, msg: RuntimeMsg) -> Option<End> {
        match msg {
            RuntimeMsg::Next { reply } => {
                if let Init::Running { .. } = self.init {
                    let elapsed = self.p.launched_at.elapsed();
                    // The last phase of a cold start (the sandbox logs the earlier ones at debug level).
                    tracing::debug!(env = self.p.id, init_ms = elapsed.as_secs_f64() * 1000.0, "runtime initialised");
                    self.init = Init::Done { unreported: (!self.p.ahead_of_time).then_some(elapsed) };
                    self.p.ready.send_replace(true);
                    self.p.instance.init_done();
                }
                if self.waiters.len() >= NEXT_WAITERS_MAX {
                    return None; // Dropping the reply answers this extra /next with a 500.
                }
                self.waiters.push_back(reply);
                self.dispatch();
                if self.current.is_none() && self.queued.is_none() {
                    self.freeze();
                }
                None
            }
            RuntimeMsg::Response { request_id, body, reply } => {
                let ack = self.complete_if_current(&request_id, || Outcome::Success { payload: body }, None);
                let _ = reply.send(ack);
                None
            }
            RuntimeMsg::ResponseTooLarge { request_id, reply } => {
                let payload = Outcome::platform_error(
                    "Function.ResponseSizeTooLarge",
                    format!(
                        "Response payload size exceeded maximum allowed payload size ({} bytes).",
                        nimbus_model::limits::SYNC_RESPONSE_BYTES_MAX
                    ),
                );
                let ack = self.complete_if_current(&request_id, || Outcome::ResponseTooLarge { payload }, None);
                let _ = reply.send(if ack == Ack::Accepted { Ack::TooLarge } else { ack });
                None
            }
            RuntimeMsg::Error { request_id, error_type, body, reply } => {
                let payload = error_report(&body, error_type.as_deref());
                let ack = self.complete_if_current(&request_id, || Outcome::FunctionError { payload }, None);
                let _ = reply.send(ack);
                None
            }
            RuntimeMsg::InitError { error_type, body, reply } => {
                if !matches!(self.init, Init::Running { .. }) {
                    let _ = reply.send(Ack::InvalidStateTransition);
                    return None;
                }
                let payload = error_report(&body, error_type.as_deref());
                let error_type = report_error_type(&payload).unwrap_or_else(|| "Runtime.Unknown".to_owned());
                let init_ms = self.p.launched_at.elapsed().as_secs_f64() * 1000.0;
                self.pending_logs.push(log_event(format!(
                    "INIT_REPORT Init Duration: {init_ms:.2} ms\tPhase: init\tStatus: error\tError Type: {error_type}"
                )));
                let _ = reply.send(Ack::Accepted);
                if self.queued.is_some() {
                    self.fail_queued(Outcome::InitError { payload }, Some(("error", error_type)));
                    return Some(End::Broken);
                }
                self.init = Init::Failed { payload, error_type };
                None
            }
        }
    }

    /// Completes the invocation in flight if `request_id` names it.
    fn complete_if_current(
        &mut self,
        request_id: &str,
        outcome: impl FnOnce() -> Outcome,
        status: Option<(&str, String)>,
    ) -> Ack {
        match &self.current {
            Some(c) if c.request_id == request_id => {
                self.complete(outcome(), status, Vec::new());
                Ack::Accepted
            }
            _ => Ack::InvalidRequestId,
        }
    }

    /// Finishes the invocation in flight: collects its remaining output, writes END and REPORT, and
    /// answers the invoke path.
    fn complete(&mut self, outcome: Outcome, status: Option<(&str, String)>, platform_lines: Vec<String>) {
        if self.current.is_none() {
            return;
        }
        // Output still in the pipes belongs to this invocation (and its log tail): read it first.
        self.drain_output();
        let Some(mut current) = self.current.take() else { return };
        let duration = current.started.elapsed();
        for line in platform_lines {
            push_line(&mut self.pending_logs, current.tail.as_mut(), line);
        }
        push_line(&mut self.pending_logs, current.tail.as_mut(), logs::end_line(&current.request_id));
        let report = ReportLine {
            request_id: &current.request_id,
            duration,
            billing: self.p.ctx.billing,
            memory_size_mb: self.p.plan_memory_mb,
            max_memory_used_bytes: self.p.instance.peak_memory_bytes(),
            init_duration: current.init_duration,
            status: status.as_ref().map(|(s, t)| (*s, Some(t.as_str()))),
        }
        .render();
        push_line(&mut self.pending_logs, current.tail.as_mut(), report);
        let log_tail = current.tail.take().map(|mut t| {
            let cut = t.len().saturating_sub(LOG_TAIL_BYTES);
            t.drain(..cut);
            t
        });
        if !outcome.environment_survives() {
            // Kill before answering, so whoever sees the outcome never sees the environment still running.
            self.p.instance.destroy();
        }
        let report = InvokeReport { outcome, log_tail, init_duration: current.init_duration, duration };
        let _ = current.reply.send(report);
    }

    /// Fails a queued invocation that never reached the runtime (init failed or timed out).
    fn fail_queued(&mut self, outcome: Outcome, status: Option<(&str, String)>) {
        let Some(invocation) = self.queued.take() else { return };
        let mut tail = self.queued_tail.take().or_else(|| invocation.want_log_tail.then(Vec::new));
        let start = logs::start_line(&invocation.request_id, &self.p.version);
        push_line(&mut self.pending_logs, tail.as_mut(), start);
        self.current = Some(Current {
            request_id: invocation.request_id,
            reply: invocation.reply,
            started: Instant::now(),
            deadline: tokio::time::Instant::now() + invocation.timeout,
            timeout: invocation.timeout,
            init_duration: Some(self.p.launched_at.elapsed()),
            tail,
        });
        self.complete(outcome, status, Vec::new());
    }

    fn on_exit(&mut self, exit: ExitDescription) -> End {
        // Killed by the kernel for exceeding the memory size: Lambda's Runtime.OutOfMemory.
        let error_type = if self.p.instance.oom_killed() { "Runtime.OutOfMemory" } else { "Runtime.ExitError" };
        if let Some(current) = &self.current {
            let message = format!("RequestId: {} Error: Runtime exited with error: {exit}", current.request_id);
            let payload = Outcome::platform_error(error_type, message.clone());
            let lines = vec![format!("{message}\n{error_type}")];
            self.complete(Outcome::Crashed { payload }, Some(("error", error_type.into())), lines);
        } else if let Some(invocation) = &self.queued {
            let (payload, error_type) = match &self.init {
                Init::Failed { payload, error_type } => (payload.clone(), error_type.clone()),
                _ => {
                    let message =
                        format!("RequestId: {} Error: Runtime exited with error: {exit}", invocation.request_id);
                    (Outcome::platform_error(error_type, message), error_type.to_owned())
                }
            };
            self.fail_queued(Outcome::InitError { payload }, Some(("error", error_type)));
        }
        End::Broken
    }

    fn on_init_timeout(&mut self) -> End {
        let init_secs = self.p.init_timeout.as_secs_f64();
        self.pending_logs.push(log_event(format!(
            "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: timeout",
            init_secs * 1000.0
        )));
        if let Some(invocation) = &self.queued {
            let message =
                format!("RequestId: {} Error: Task timed out after {init_secs:.2} seconds", invocation.request_id);
            let payload = Outcome::platform_error("Sandbox.Timedout", message);
            self.fail_queued(Outcome::InitTimeout { payload }, Some(("timeout", "Sandbox.Timedout".into())));
        }
        End::Broken
    }

    fn on_timeout(&mut self) -> End {
        let Some(current) = &self.current else { return End::Broken };
        let seconds = current.timeout.as_secs_f64();
        let request_id = current.request_id.clone();
        let line =
            format!("{} {request_id} Task timed out after {seconds:.2} seconds", clock::iso_millis(clock::now_ms()));
        let payload = Outcome::platform_error(
            "Sandbox.Timedout",
            format!("RequestId: {request_id} Error: Task timed out after {seconds:.2} seconds"),
        );
        self.complete(Outcome::Timeout { payload }, Some(("timeout", "Sandbox.Timedout".into())), vec![line]);
        End::Broken
    }

    fn on_output(&mut self, stream: Stream, chunk: &[u8]) {
        let buf = match stream {
            Stream::Out => &mut self.stdout_buf,
            Stream::Err => &mut self.stderr_buf,
        };
        if chunk.is_empty() {
            // End of file: whatever is left is a last line without a newline.
            let rest = std::mem::take(buf);
            self.emit_lines(rest, true);
            match stream {
                Stream::Out => self.stdout = None,
                Stream::Err => self.stderr = None,
            }
            return;
        }
        buf.extend_from_slice(chunk);
        let data = std::mem::take(buf);
        let rest = self.emit_lines(data, false);
        match stream {
            Stream::Out => self.stdout_buf = rest,
            Stream::Err => self.stderr_buf = rest,
        }
    }

    /// Turns complete lines of `data` into log events and returns the unfinished remainder.
    fn emit_lines(&mut self, data: Vec<u8>, flush_partial: bool) -> Vec<u8> {
        let mut rest = &data[..];
        while let Some(pos) = rest
            .iter()
            .position(|&b| b == b'\n')
            .or_else(|| (rest.len() >= LOG_LINE_BYTES_MAX || (flush_partial && !rest.is_empty())).then_some(rest.len()))
        {
            // Decided before the line is even decoded: dropping must stay cheaper than keeping.
            let admit = self.log_budget.admit(pos as u64 + 1, Instant::now());
            let (notice, keep) = match admit {
                logs::Admit::Keep { notice } => (notice, true),
                logs::Admit::Drop { notice } => (notice, false),
            };
            let line = keep.then(|| String::from_utf8_lossy(&rest[..pos]).into_owned());
            rest = &rest[(pos + 1).min(rest.len())..];
            let mut tail = match self.current.as_mut() {
                Some(c) => c.tail.as_mut(),
                None => self.queued_tail.as_mut(),
            };
            if let Some(notice) = notice {
                push_line(&mut self.pending_logs, tail.as_deref_mut(), notice);
            }
            if let Some(line) = line {
                push_line(&mut self.pending_logs, tail, line);
            }
        }
        rest.to_vec()
    }

    /// Reads whatever output is already in the pipes. A runtime writes its output before it posts the
    /// response, so after this every line of the invocation is accounted to it.
    fn drain_output(&mut self) {
        let mut chunk = [0u8; 8192];
        for stream in [Stream::Out, Stream::Err] {
            // Read the descriptor itself: tokio's `try_read` answers WouldBlock without reading while its
            // reactor has not yet seen the pipe become readable, which would push the invocation's last
            // lines past its END.
            let reader = match stream {
                Stream::Out => self.stdout.as_ref(),
                Stream::Err => self.stderr.as_ref(),
            }
            .and_then(|p| std::os::fd::AsFd::as_fd(p).try_clone_to_owned().ok())
            .map(std::fs::File::from);
            let Some(mut reader) = reader else { continue };
            loop {
                match std::io::Read::read(&mut reader, &mut chunk) {
                    Ok(0) => {
                        self.on_output(stream, &[]);
                        break;
                    }
                    Ok(n) => self.on_output(stream, &chunk[..n]),
                    Err(_) => break,
                }
            }
        }
        for stream in [Stream::Out, Stream::Err] {
            let buf = match stream {
                Stream::Out => std::mem::take(&mut self.stdout_buf),
                Stream::Err => std::mem::take(&mut self.stderr_buf),
            };
            self.emit_lines(buf, true);
        }
    }

    fn freeze(&mut self) {
        if self.p.ctx.freeze_idle && !self.frozen {
            match self.p.instance.freeze() {
                Ok(()) => self.frozen = true,
                Err(e) => tracing::warn!(env = self.p.id, error = %e, "freezing idle environment"),
            }
        }
    }

    fn thaw(&mut self) {
        if self.frozen {
            if let Err(e) = self.p.instance.thaw() {
                tracing::warn!(env = self.p.id, error = %e, "thawing environment");
            }
            self.frozen = false;
        }
    }

    async fn flush_logs(&mut self) {
        if !self.pending_logs.is_empty() {
            let events = std::mem::take(&mut self.pending_logs);
            self.p.ctx.logs.append(&self.p.group, &self.p.stream, events).await;
        }
    }

    async fn finish(mut self, end: End) {
        if let End::Shutdown = end {
            // SIGTERM first, as Lambda does at shutdown; whatever is still running after the grace
            // period is killed.
            self.thaw();
            self.p.instance.terminate();
            if let Some(exit) = self.exit.as_mut() {
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, exit).await;
            }
        }
        self.p.instance.destroy();
        self.drain_output();
        if let Some(count) = self.log_budget.finish() {
            self.pending_logs.push(log_event(count));
        }
        self.flush_logs().await;
        self.p.server.abort();
        self.p.ctx.credentials.revoke(&self.p.session_key);
        if let End::Broken = end {
            self.p.ctx.pool_events.exited(self.p.id).await;
        }
        tracing::debug!(env = self.p.id, "environment ended");
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Out,
    Err,
}

fn log_event(message: String) -> LogEvent {
    LogEvent { timestamp_ms: clock::now_ms(), message }
}

fn push_line(logs: &mut Vec<LogEvent>, tail: Option<&mut Vec<u8>>, line: String) {
    if let Some(tail) = tail {
        tail.extend_from_slice(line.as_bytes());
        tail.push(b'\n');
        // Keep only what could still be in the final 4 KB, so a chatty invocation costs bounded memory.
        if tail.len() > 4 * LOG_TAIL_BYTES {
            let cut = tail.len() - LOG_TAIL_BYTES;
            tail.drain(..cut);
        }
    }
    logs.push(log_event(line));
}

/// Normalises an error report from a runtime. Well-formed JSON objects pass through unchanged (Node's
/// runtime puts its stack in `trace`, Python's in `stackTrace`, and AWS passes both on); anything else
/// becomes `{"errorMessage", "errorType"}` built from the body text and the error-type header.
fn error_report(body: &[u8], header_type: Option<&str>) -> Bytes {
    if let Ok(serde_json::Value::Object(_)) = serde_json::from_slice::<serde_json::Value>(body) {
        return Bytes::copy_from_slice(body);
    }
    let message = String::from_utf8_lossy(body).into_owned();
    let error_type = header_type.unwrap_or("Unhandled");
    Outcome::platform_error(error_type, message)
}

fn report_error_type(payload: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    value.get("errorType")?.as_str().map(str::to_owned)
}

/// An X-Ray trace header: `Root=1-<8 hex epoch seconds>-<24 hex>;Parent=<16 hex>;Sampled=0`.
fn trace_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let secs = clock::now_ms() / 1000;
    format!(
        "Root=1-{secs:08x}-{:024x};Parent={:016x};Sampled=0",
        rng.random::<u128>() & ((1u128 << 96) - 1),
        rng.random::<u64>()
    )
}

async fn read_some(pipe: &mut Option<pipe::Receiver>, buf: &mut [u8]) -> usize {
    match pipe {
        Some(p) => p.read(buf).await.unwrap_or(0),
        None => std::future::pending().await,
    }
}

async fn wait_exit(exit: &mut Option<oneshot::Receiver<ExitDescription>>) -> ExitDescription {
    match exit {
        Some(rx) => {
            let description = rx.await.unwrap_or(ExitDescription::Unknown);
            *exit = None;
            description
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
