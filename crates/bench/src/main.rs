//! `nimbus-bench`: starts the real `nimbus` release binary, deploys echo functions through the
//! Lambda API, measures, prints a report, and stops the server with SIGTERM.
//!
//! What it measures, for a `provided.al2023`, a `python3.12` and a `nodejs20.x` echo function
//! (see `measure.rs` for how each number is taken):
//! - warm invoke latency p50/p90/p99/max from the client, split into signing and round trip, and
//!   each invoke's REPORT `Duration`, so that Nimbus's own overhead (round trip − Duration) shows;
//! - cold-start time p50/p99, as the client sees it and as Nimbus reports it (init duration);
//! - throughput at several concurrencies, with the CPU time each party spent per invoke;
//! - memory of Nimbus and of idle environments, CreateFunction/DeleteFunction rates;
//! - reference points: a DryRun invoke (the API path without an environment), the same warm
//!   invokes through `nimbus::client::ApiClient`, a second server with `--auth none`, and Python's
//!   plain `http.client` (`http_client_latency.py`), the client DESIGN.md warns about.
//!
//! Benchmarks print numbers; they assert nothing about speed. The run fails only when something is
//! wrong (an echo that does not echo, a server that does not start or stop cleanly).

mod control;
mod events;
mod functions;
mod measure;
mod report;
mod server;
mod sign;
mod stats;
mod wire;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::control::Control;
use crate::functions::{FunctionSpec, Kind};
use crate::measure::Invoker;
use crate::report::{AuthNoneReport, FunctionReport, MemoryReport, PythonClientReport, Report, Settings};
use crate::server::Server;
use crate::sign::Signer;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "nimbus-bench",
    about = "Benchmarks the real nimbus binary: warm and cold invoke latency, throughput, memory"
)]
pub struct Args {
    /// The nimbus binary to benchmark.
    #[arg(long, default_value = "target/release/nimbus")]
    nimbus: PathBuf,
    /// The provided-runtime echo function; by default the `echo-bootstrap` next to this program.
    #[arg(long)]
    echo_bootstrap: Option<PathBuf>,
    /// Runtimes to benchmark (provided, python, node).
    #[arg(long, value_delimiter = ',', default_value = "provided,python,node")]
    runtimes: Vec<String>,
    /// Measured sequential warm invokes per function.
    #[arg(long, default_value_t = 2000)]
    invokes: usize,
    /// Unmeasured invokes before them.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Cold starts per function.
    #[arg(long, default_value_t = 30)]
    cold_starts: usize,
    /// Pause before each cold start, so that what the server prepares ahead of demand (namespace
    /// slots, pre-started runtimes) is ready and idle: a cold start as a function sees one after a
    /// quiet moment. 0 measures them back to back, a burst that outruns that preparation.
    #[arg(long, default_value_t = 500)]
    cold_gap_ms: u64,
    /// Concurrencies of the throughput runs.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    concurrency: Vec<usize>,
    /// Seconds every throughput run goes unmeasured after all its clients have been served once.
    #[arg(long, default_value_t = 1.0)]
    ramp_secs: f64,
    /// Seconds of each throughput measurement window.
    #[arg(long, default_value_t = 5.0)]
    window_secs: f64,
    /// CreateFunction calls for the create rate (0 skips it).
    #[arg(long, default_value_t = 100)]
    creates: usize,
    /// MemorySize of the functions (1769 MB is where Lambda gives a function one full vCPU).
    #[arg(long, default_value_t = 1769)]
    memory_mb: u32,
    /// EphemeralStorage of the functions in MB (their /tmp size); unset: the default, 512. Another size
    /// costs the namespace tier a /tmp disk made at launch.
    #[arg(long)]
    ephemeral_storage_mb: Option<u32>,
    /// Skip the second server started with `--auth none`.
    #[arg(long)]
    no_auth_none: bool,
    /// Skip the Python `http.client` latency run.
    #[arg(long)]
    no_python_http_client: bool,
    /// The Python that runs http_client_latency.py (needs botocore).
    #[arg(long, default_value = "python3")]
    python: String,
    /// An extra argument for `nimbus serve` (repeatable), e.g. `--server-arg=--no-freeze`, to
    /// measure a configuration against the default one.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Print the report as one JSON object (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file (with the readable report on stdout).
    #[arg(long)]
    json_file: Option<PathBuf>,
    /// Measure the event plane instead: async invokes accepted and run per second, and SQS messages
    /// processed per second through an event source mapping (batch 10 and 100).
    #[arg(long)]
    event_plane: bool,
    /// Messages sent per mapping run of `--event-plane`.
    #[arg(long, default_value_t = 5000)]
    event_messages: u64,
    /// Client threads of `--event-plane`.
    #[arg(long, default_value_t = 16)]
    event_clients: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.event_plane {
        return match run_event_plane(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nimbus-bench: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(report) => {
            if let Some(path) = &args.json_file {
                let written = serde_json::to_string_pretty(&report)
                    .map_err(anyhow::Error::from)
                    .and_then(|text| Ok(std::fs::write(path, text + "\n")?));
                if let Err(e) = written {
                    eprintln!("nimbus-bench: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("nimbus-bench: cannot render the report as JSON: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                report::print(&report);
            }
            if report.all_clean() {
                ExitCode::SUCCESS
            } else {
                eprintln!("nimbus-bench: a server did not stop cleanly (see the report)");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("nimbus-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--event-plane`: one server, the provided echo function, the rates of `events.rs`.
fn run_event_plane(args: &Args) -> anyhow::Result<()> {
    let echo_bootstrap = match &args.echo_bootstrap {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("locate this program")?.with_file_name("echo-bootstrap"),
    };
    let spec = functions::spec(Kind::Provided, &echo_bootstrap)?;
    progress(format!("starting {}", args.nimbus.display()));
    let server = Server::start(&args.nimbus, true, &args.server_args)?;
    let signer =
        Signer::new(&server.addr.to_string(), Some((server::ACCESS_KEY_ID, server::SECRET_ACCESS_KEY)), server::REGION);
    let window = Duration::from_secs_f64(args.window_secs);
    let result = events::measure(
        &server,
        &signer,
        &spec,
        args.memory_mb,
        args.event_clients.max(1),
        window,
        args.event_messages.max(10),
        progress,
    );
    let log_tail = server.log_tail();
    let stop = server.stop().context("stop the server")?;
    let report = result.with_context(|| format!("the server's last log lines:\n{log_tail}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        events::print(&report);
        println!("  server stopped cleanly: {}", stop.clean);
    }
    Ok(())
}

fn progress(message: impl AsRef<str>) {
    eprintln!("nimbus-bench: {}", message.as_ref());
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let echo_bootstrap = match &args.echo_bootstrap {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("locate this program")?.with_file_name("echo-bootstrap"),
    };
    let mut notes = Vec::new();
    let mut kinds = Vec::new();
    for name in &args.runtimes {
        let kind = match name.as_str() {
            "provided" => Kind::Provided,
            "python" => Kind::Python,
            "node" => Kind::Node,
            other => anyhow::bail!("unknown runtime {other:?} (provided, python, node)"),
        };
        let interpreter = match kind {
            Kind::Python => Some("python3"),
            Kind::Node => Some("node"),
            Kind::Provided => None,
        };
        if let Some(program) = interpreter
            && !runs(program, &["--version"])
        {
            notes.push(format!("SKIPPED {}: no `{program}` on PATH", kind.label()));
            continue;
        }
        kinds.push(kind);
    }
    let specs: Vec<FunctionSpec> =
        kinds.iter().map(|kind| functions::spec(*kind, &echo_bootstrap)).collect::<anyhow::Result<_>>()?;
    let window = Duration::from_secs_f64(args.window_secs);
    let ramp = Duration::from_secs_f64(args.ramp_secs);

    // Other processes' CPU use skews every number on a 2-core machine; the report says so.
    let idle_check = machine_busy_pct(Duration::from_secs(1));
    if idle_check > 10.0 {
        let warning = format!(
            "the machine was {idle_check:.0}% busy before the run started: other processes compete for the CPU \
             and every number below is pessimistic (see the `other` CPU column)"
        );
        progress(format!("WARNING: {warning}"));
        notes.push(warning);
    }
    progress(format!("starting {}", args.nimbus.display()));
    let server = Server::start(&args.nimbus, true, &args.server_args)?;
    progress(format!("server pid {} at {} (data in {})", server.pid, server.url, server.data_dir().display()));
    let result = measure_signed(args, &server, &specs, ramp, window, &mut notes);
    let log_tail = server.log_tail();
    let stop = server.stop().context("stop the server")?;
    let mut report = result.with_context(|| format!("the server's last log lines:\n{log_tail}"))?;
    report.server_stop = Some(stop);

    if !args.no_auth_none
        && let Some(provided) = specs.iter().find(|s| s.kind == Kind::Provided)
    {
        report.auth_none = Some(measure_auth_none(args, provided, ramp, window)?);
    }
    report.notes.extend(notes);
    report.machine = report::machine(&args.nimbus);
    report.machine.busy_before_run_pct = idle_check;
    report.check_targets();
    Ok(report)
}

/// Everything measured against the SigV4 server.
fn measure_signed(
    args: &Args,
    server: &Server,
    specs: &[FunctionSpec],
    ramp: Duration,
    window: Duration,
    notes: &mut Vec<String>,
) -> anyhow::Result<Report> {
    let control = Control::new(&server.url)?;
    let signer =
        Signer::new(&server.addr.to_string(), Some((server::ACCESS_KEY_ID, server::SECRET_ACCESS_KEY)), server::REGION);
    let mut memory = MemoryReport { server_rss_idle_kib: server.rss_kib(), ..MemoryReport::default() };
    for spec in specs {
        progress(format!("deploying {} ({} byte zip)", spec.name, spec.zip.len()));
        control.create_function(spec, args.memory_mb)?;
        if let Some(size_mb) = args.ephemeral_storage_mb {
            control.set_ephemeral_storage(&spec.name, size_mb)?;
        }
    }
    if let Some(size_mb) = args.ephemeral_storage_mb {
        notes.push(format!("the functions' EphemeralStorage is {size_mb} MB"));
    }
    memory.server_rss_deployed_kib = server.rss_kib();

    let mut reports: Vec<FunctionReport> = Vec::new();
    for spec in specs {
        progress(format!(
            "warm latency: {} ({} invokes after {} warmup)",
            spec.kind.label(),
            args.invokes,
            args.warmup
        ));
        let mut invoker = Invoker::new(server.addr, signer.clone(), &spec.name)?;
        let warm = measure::warm(&mut invoker, &control, &spec.name, args.invokes, args.warmup)?;
        reports.push(FunctionReport {
            kind: spec.kind,
            name: spec.name.clone(),
            runtime: spec.runtime,
            warm,
            cold: None,
            throughput: Vec::new(),
        });
    }

    let mut report = Report::new(settings(args));
    report.settings.sandbox_tier = server.sandbox.clone();
    if let Some(provided) = specs.iter().find(|s| s.kind == Kind::Provided) {
        let mut invoker = Invoker::new(server.addr, signer.clone(), &provided.name)?;
        progress("API floor: DryRun invokes");
        report.dry_run = Some(measure::dry_run(&mut invoker, args.invokes)?);
        progress("warm latency through nimbus::client::ApiClient");
        report.api_client_warm = Some(measure::warm_api_client(&control, &provided.name, args.invokes / 2)?);
        if !args.no_python_http_client {
            progress("warm latency through Python http.client");
            report.python_http_client = Some(python_http_client(args, server, &provided.name));
        }
    }

    for (spec, fr) in specs.iter().zip(reports.iter_mut()) {
        progress(format!("cold starts: {} ({} of them)", spec.kind.label(), args.cold_starts));
        let mut invoker = Invoker::new(server.addr, signer.clone(), &spec.name)?;
        fr.cold = Some(measure::cold(
            &mut invoker,
            &control,
            &spec.name,
            args.cold_starts,
            std::time::Duration::from_millis(args.cold_gap_ms),
        )?);
    }

    memory.server_rss_before_scale_out_kib = server.rss_kib();
    memory.environments_before_scale_out = server::environment_count(&server.processes());
    for (spec, fr) in specs.iter().zip(reports.iter_mut()) {
        for &c in &args.concurrency {
            progress(format!(
                "throughput: {} at concurrency {c} ({:.0} s)",
                spec.kind.label(),
                ramp.as_secs_f64() + window.as_secs_f64()
            ));
            fr.throughput.push(measure::throughput(server, &signer, &spec.name, c, ramp, window)?);
        }
    }
    // Let the last responses' environments go back to idle (frozen) before reading memory.
    std::thread::sleep(Duration::from_millis(500));
    let envs = server.processes();
    memory.server_rss_after_scale_out_kib = server.rss_kib();
    memory.environments_after_scale_out = server::environment_count(&envs);
    memory.idle_environments = server::env_memory_by_kind(&envs);
    report.memory = Some(memory);

    if args.creates > 0
        && let Some(spec) = specs.iter().find(|s| s.kind == Kind::Python).or(specs.first())
    {
        progress(format!("CreateFunction rate ({} functions)", args.creates));
        report.create = Some(measure::create_rate(server.addr, &signer, spec, args.memory_mb, args.creates)?);
    }
    if specs.is_empty() {
        notes.push("no function was benchmarked".into());
    }
    report.functions = reports;
    Ok(report)
}

/// The provided echo against a server that verifies no signatures, with unsigned requests: the
/// difference to the signed numbers is SigV4 on both sides.
fn measure_auth_none(
    args: &Args,
    provided: &FunctionSpec,
    ramp: Duration,
    window: Duration,
) -> anyhow::Result<AuthNoneReport> {
    progress("starting a second server with --auth none");
    let server = Server::start(&args.nimbus, false, &args.server_args)?;
    let measured = (|| -> anyhow::Result<_> {
        let control = Control::new(&server.url)?;
        control.create_function(provided, args.memory_mb)?;
        let unsigned = Signer::new(&server.addr.to_string(), None, server::REGION);
        progress("warm latency, unsigned");
        let mut invoker = Invoker::new(server.addr, unsigned.clone(), &provided.name)?;
        let warm = measure::warm(&mut invoker, &control, &provided.name, args.invokes, args.warmup)?;
        let dry_run = measure::dry_run(&mut invoker, args.invokes)?;
        let c = args.concurrency.iter().copied().find(|c| *c == 16).unwrap_or(16);
        progress(format!("throughput, unsigned, at concurrency {c}"));
        let throughput = measure::throughput(&server, &unsigned, &provided.name, c, ramp, window)?;
        Ok((warm, dry_run, throughput))
    })();
    let log_tail = server.log_tail();
    let stop = server.stop().context("stop the --auth none server")?;
    let (warm, dry_run, throughput) = measured.with_context(|| format!("the server's last log lines:\n{log_tail}"))?;
    Ok(AuthNoneReport { warm, dry_run, throughput, server_stop: stop })
}

/// Runs `http_client_latency.py` against `function`; a missing Python or botocore is a skip.
fn python_http_client(args: &Args, server: &Server, function: &str) -> PythonClientReport {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("http_client_latency.py");
    let n = args.invokes.min(1000).to_string();
    let warmup = args.warmup.min(100).to_string();
    let mut runs = Vec::new();
    for nodelay in [false, true] {
        let mut command = Command::new(&args.python);
        command
            .arg(&script)
            .args(["--endpoint", &server.url, "--function", function])
            .args(["--n", &n, "--warmup", &warmup, "--json"])
            .env("AWS_ACCESS_KEY_ID", server::ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", server::SECRET_ACCESS_KEY)
            .env("AWS_DEFAULT_REGION", server::REGION);
        if nodelay {
            command.arg("--nodelay");
        }
        let output = match command.output() {
            Ok(output) => output,
            Err(e) => {
                return PythonClientReport::Skipped(format!("cannot run {}: {e}", args.python));
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            return PythonClientReport::Skipped(format!(
                "{} {} exited {}: {stderr}",
                args.python,
                script.display(),
                output.status
            ));
        }
        match serde_json::from_slice(&output.stdout) {
            Ok(value) => runs.push(value),
            Err(e) => {
                return PythonClientReport::Skipped(format!("{} printed no JSON ({e})", script.display()));
            }
        }
    }
    PythonClientReport::Ran(runs)
}

fn settings(args: &Args) -> Settings {
    Settings {
        invokes: args.invokes,
        warmup: args.warmup,
        cold_starts: args.cold_starts,
        cold_gap_ms: args.cold_gap_ms,
        concurrency: args.concurrency.clone(),
        ramp_secs: args.ramp_secs,
        window_secs: args.window_secs,
        memory_mb: args.memory_mb,
        creates: args.creates,
        server_args: args.server_args.clone(),
        sandbox_tier: String::new(),
    }
}

/// How busy the whole machine is over `period`, in percent of all cores.
fn machine_busy_pct(period: Duration) -> f64 {
    let (busy0, total0) = server::machine_cpu_secs();
    std::thread::sleep(period);
    let (busy1, total1) = server::machine_cpu_secs();
    if total1 > total0 { 100.0 * (busy1 - busy0) / (total1 - total0) } else { 0.0 }
}

/// Whether `program args` runs and succeeds.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}
