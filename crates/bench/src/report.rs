//! The report: what was measured (as data, for `--json`) and its readable rendering, with the
//! targets of issue 4 checked against the numbers.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Serialize;
use serde_json::Value;

use crate::functions::Kind;
use crate::measure::{ColdRun, CreateRun, ThroughputRun, WarmRun};
use crate::server::{EnvMemory, StopReport};
use crate::stats::Summary;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    pub date_utc: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub nimbus_version: String,
    /// `git describe --always --dirty` of the checkout holding the benchmarked binary (empty when
    /// it is not in one); `-dirty` means the binary may hold uncommitted changes.
    pub git_commit: String,
    /// Share of all cores other processes used in the second before the run.
    pub busy_before_run_pct: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub invokes: usize,
    pub warmup: usize,
    pub cold_starts: usize,
    /// The pause before each cold start, in milliseconds.
    pub cold_gap_ms: u64,
    pub concurrency: Vec<usize>,
    pub ramp_secs: f64,
    pub window_secs: f64,
    pub memory_mb: u32,
    pub creates: usize,
    pub server_args: Vec<String>,
    /// The isolation tier the server ran environments in.
    pub sandbox_tier: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionReport {
    pub kind: Kind,
    pub name: String,
    pub runtime: &'static str,
    pub warm: WarmRun,
    pub cold: Option<ColdRun>,
    pub throughput: Vec<ThroughputRun>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MemoryReport {
    /// Nimbus's resident memory right after start, with nothing deployed.
    pub server_rss_idle_kib: u64,
    pub server_rss_deployed_kib: u64,
    pub server_rss_before_scale_out_kib: u64,
    pub environments_before_scale_out: usize,
    pub server_rss_after_scale_out_kib: u64,
    pub environments_after_scale_out: usize,
    /// Idle (frozen) environment processes after the throughput runs, by runtime.
    pub idle_environments: BTreeMap<String, EnvMemory>,
}

impl MemoryReport {
    /// Growth of Nimbus's own RSS per environment added by the scale-out. An upper bound: the
    /// growth also holds whatever the load itself left allocated (buffers, allocator arenas).
    pub fn server_kib_per_environment(&self) -> Option<f64> {
        let added = self.environments_after_scale_out.checked_sub(self.environments_before_scale_out)?;
        (added > 0).then(|| {
            (self.server_rss_after_scale_out_kib as f64 - self.server_rss_before_scale_out_kib as f64) / added as f64
        })
    }

    /// What Nimbus itself spends per idle environment: the server's growth plus, in the namespace
    /// tier, the environment's `nimbus-init` process (its PSS, which shares the binary's pages).
    pub fn nimbus_kib_per_environment(&self) -> Option<f64> {
        let init = self.idle_environments.get("nimbus-init").map_or(0, |e| e.mean_pss_kib);
        self.server_kib_per_environment().map(|server| server + init as f64)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PythonClientReport {
    /// One result per run: without, then with TCP_NODELAY on the client socket.
    Ran(Vec<Value>),
    Skipped(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthNoneReport {
    pub warm: WarmRun,
    pub dry_run: Summary,
    pub throughput: ThroughputRun,
    pub server_stop: StopReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub functions: Vec<FunctionReport>,
    pub dry_run: Option<Summary>,
    pub api_client_warm: Option<Summary>,
    pub python_http_client: Option<PythonClientReport>,
    pub memory: Option<MemoryReport>,
    pub create: Option<CreateRun>,
    pub server_stop: Option<StopReport>,
    pub auth_none: Option<AuthNoneReport>,
    pub notes: Vec<String>,
    pub targets: Vec<TargetCheck>,
}

impl Report {
    pub fn new(settings: Settings) -> Report {
        Report {
            machine: Machine::default(),
            settings,
            functions: Vec::new(),
            dry_run: None,
            api_client_warm: None,
            python_http_client: None,
            memory: None,
            create: None,
            server_stop: None,
            auth_none: None,
            notes: Vec::new(),
            targets: Vec::new(),
        }
    }

    pub fn all_clean(&self) -> bool {
        self.server_stop.as_ref().is_none_or(|s| s.clean) && self.auth_none.as_ref().is_none_or(|a| a.server_stop.clean)
    }

    fn function(&self, kind: Kind) -> Option<&FunctionReport> {
        self.functions.iter().find(|f| f.kind == kind)
    }

    /// The targets of issue 4 ("on the 2-core development machine, warm, loopback").
    pub fn check_targets(&mut self) {
        let mut checks = Vec::new();
        if let Some(p) = self.function(Kind::Provided) {
            let o = &p.warm.overhead;
            checks.push(check(
                "provided warm overhead p50 < 150 us",
                format!("{:.0} us", o.p50_us),
                o.count > 0 && o.p50_us < 150.0,
            ));
            checks.push(check(
                "provided warm overhead p99 < 1 ms",
                format!("{:.0} us", o.p99_us),
                o.count > 0 && o.p99_us < 1000.0,
            ));
            if let Some(t) = p.throughput.iter().find(|t| t.concurrency == 16) {
                checks.push(check(
                    "provided >= 10,000 invokes/s at c=16",
                    format!("{:.0}/s", t.per_sec),
                    t.per_sec >= 10_000.0,
                ));
            }
            if let Some(c) = &p.cold {
                checks.push(check(
                    "provided cold start p50 < 10 ms",
                    format!("{:.2} ms", c.client.p50_us / 1000.0),
                    c.client.count > 0 && c.client.p50_us < 10_000.0,
                ));
            }
        }
        if let Some(c) = self.function(Kind::Python).and_then(|p| p.cold.as_ref()) {
            checks.push(check(
                "python cold start p50 < 25 ms",
                format!("{:.2} ms", c.client.p50_us / 1000.0),
                c.client.count > 0 && c.client.p50_us < 25_000.0,
            ));
        }
        if let Some(per_env) = self.memory.as_ref().and_then(MemoryReport::nimbus_kib_per_environment) {
            checks.push(check(
                "Nimbus memory per idle environment < 256 KiB",
                format!("{per_env:.0} KiB (upper bound)"),
                per_env < 256.0,
            ));
        }
        self.targets = checks;
    }
}

fn check(target: &str, measured: String, met: bool) -> TargetCheck {
    TargetCheck { target: target.to_owned(), measured, met }
}

/// Facts about the machine and the binary, for the record.
pub fn machine(nimbus: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    let output = |program: &Path, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    Machine {
        date_utc: utc_now(),
        cpu_model,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gib: memory_kib / (1024.0 * 1024.0),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        nimbus_version: output(nimbus, &["--version"]),
        git_commit: {
            let dir = nimbus.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let dir = dir.to_string_lossy();
            output(Path::new("git"), &["-C", dir.as_ref(), "describe", "--always", "--dirty"])
        },
        busy_before_run_pct: 0.0,
    }
}

/// `YYYY-MM-DD HH:MM` in UTC, from the system clock (days-to-civil, proleptic Gregorian).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

fn us(v: f64) -> String {
    format!("{v:.0}")
}

fn ms(v_us: f64) -> String {
    format!("{:.2}", v_us / 1000.0)
}

/// Prints a table with right-aligned columns (the first left-aligned).
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.len());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!("{cell:<w$}", w = widths[0]));
            } else {
                out.push_str(&format!("  {cell:>w$}", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

pub fn print(report: &Report) {
    let m = &report.machine;
    let s = &report.settings;
    println!("Nimbus benchmark, {}", m.date_utc);
    println!(
        "  {} ({}), {} CPUs, {} ({:.1} GiB), Linux {}",
        m.nimbus_version,
        if m.git_commit.is_empty() { "not in a git checkout" } else { m.git_commit.as_str() },
        m.cpus,
        m.cpu_model,
        m.memory_gib,
        m.kernel
    );
    println!(
        "  {} warm invokes after {} warmup; {} cold starts {} ms apart; throughput {:.1} s windows after a {:.1} s ramp; MemorySize {} MB",
        s.invokes, s.warmup, s.cold_starts, s.cold_gap_ms, s.window_secs, s.ramp_secs, s.memory_mb
    );
    println!("  sandbox tier: {}", s.sandbox_tier);
    if !s.server_args.is_empty() {
        println!("  server started with extra arguments: {}", s.server_args.join(" "));
    }
    println!();

    println!("Warm invoke latency, sequential, one keep-alive connection, SigV4-signed (microseconds)");
    println!("  client = signing + round trip; overhead = round trip - the invocation's REPORT Duration");
    let rows: Vec<Vec<String>> = report
        .functions
        .iter()
        .map(|f| {
            let w = &f.warm;
            vec![
                f.kind.label().to_owned(),
                us(w.client.p50_us),
                us(w.client.p90_us),
                us(w.client.p99_us),
                us(w.client.max_us),
                us(w.sign.p50_us),
                us(w.function.p50_us),
                us(w.function.p99_us),
                us(w.overhead.p50_us),
                us(w.overhead.p90_us),
                us(w.overhead.p99_us),
                us(w.overhead.max_us),
            ]
        })
        .collect();
    table(
        &[
            "function",
            "client p50",
            "p90",
            "p99",
            "max",
            "signing p50",
            "Duration p50",
            "p99",
            "overhead p50",
            "p90",
            "p99",
            "max",
        ],
        &rows,
    );
    for f in &report.functions {
        if f.warm.cold_starts > 0 || f.warm.paired < f.warm.client.count || f.warm.connections > 1 {
            println!(
                "  note: {}: {} cold starts during the warm run, {} of {} REPORT lines found, {} connections",
                f.kind.label(),
                f.warm.cold_starts,
                f.warm.paired,
                f.warm.client.count,
                f.warm.connections
            );
        }
    }
    println!();

    println!("Reference points for the provided echo (microseconds, round trip)");
    let mut rows = Vec::new();
    if let Some(d) = &report.dry_run {
        rows.push(summary_row("DryRun invoke (API + SigV4 + resolve, no environment)", d));
    }
    if let Some(p) = report.function(Kind::Provided) {
        rows.push(summary_row("warm invoke, this client, signed", &p.warm.round_trip));
    }
    if let Some(a) = &report.auth_none {
        rows.push(summary_row("warm invoke, server --auth none, unsigned", &a.warm.round_trip));
        rows.push(summary_row("  its overhead (round trip - Duration)", &a.warm.overhead));
        rows.push(summary_row("DryRun invoke, --auth none", &a.dry_run));
    }
    if let Some(a) = &report.api_client_warm {
        rows.push(summary_row("warm invoke via nimbus::client::ApiClient (reqwest, incl. signing)", a));
    }
    table(&["", "p50", "p90", "p99", "max"], &rows);
    match &report.python_http_client {
        Some(PythonClientReport::Ran(runs)) => {
            for run in runs {
                let rt = &run["round_trip_ms"];
                let f = |k: &str| rt[k].as_f64().unwrap_or(0.0) * 1000.0;
                println!(
                    "  Python http.client, TCP_NODELAY {:<3}  p50 {:>6}  p90 {:>6}  p99 {:>6}  max {:>6}   stalls > 20 ms: {} of {}",
                    if run["tcp_nodelay"].as_bool() == Some(true) { "on" } else { "off" },
                    us(f("p50")),
                    us(f("p90")),
                    us(f("p99")),
                    us(f("max")),
                    run["stalls_over_20ms"],
                    run["count"]
                );
            }
        }
        Some(PythonClientReport::Skipped(why)) => println!("  Python http.client: SKIPPED: {why}"),
        None => {}
    }
    println!();

    println!("Cold starts: a configuration change retires the environments, then one invoke (milliseconds)");
    println!("  client = time to the response; init = x-nimbus-init-duration-ms (launch to first /next)");
    let rows: Vec<Vec<String>> = report
        .functions
        .iter()
        .filter_map(|f| f.cold.as_ref().map(|c| (f, c)))
        .map(|(f, c)| {
            vec![
                f.kind.label().to_owned(),
                ms(c.client.p50_us),
                ms(c.client.p99_us),
                ms(c.client.max_us),
                ms(c.init.p50_us),
                ms(c.init.p99_us),
                ms(c.outside_init.p50_us),
                c.not_cold.to_string(),
            ]
        })
        .collect();
    table(&["function", "client p50", "p99", "max", "init p50", "p99", "client - init p50", "not cold"], &rows);
    println!();

    println!("Throughput: c clients back to back, each on its own connection, signed");
    println!("  CPU per invoke (microseconds) of the server, its descendants (environments, zygote, inits), this");
    println!("  client, and anything else on the machine (other: should be near 0, else the run was disturbed);");
    println!("  envs = environments alive at the end of the window (of every function so far)");
    let mut rows = Vec::new();
    for f in &report.functions {
        for t in &f.throughput {
            rows.push(throughput_row(f.kind.label(), t));
        }
    }
    if let Some(a) = &report.auth_none {
        rows.push(throughput_row("provided, --auth none, unsigned", &a.throughput));
    }
    table(
        &[
            "function",
            "c",
            "invokes/s",
            "p50 us",
            "p99 us",
            "CPU server",
            "envs",
            "client",
            "other",
            "busy %",
            "envs",
            "errors",
        ],
        &rows,
    );
    println!();

    if let Some(mem) = &report.memory {
        println!("Memory");
        println!(
            "  Nimbus RSS: {} KiB at start, {} KiB with the functions deployed, {} KiB with {} environments, {} KiB with {} environments",
            mem.server_rss_idle_kib,
            mem.server_rss_deployed_kib,
            mem.server_rss_before_scale_out_kib,
            mem.environments_before_scale_out,
            mem.server_rss_after_scale_out_kib,
            mem.environments_after_scale_out
        );
        if let Some(per_env) = mem.server_kib_per_environment() {
            println!(
                "  Nimbus RSS growth per added environment: {per_env:.0} KiB (upper bound: includes what the load left allocated)"
            );
        }
        for (kind, e) in &mem.idle_environments {
            println!(
                "  idle {kind} process: {} of them, mean RSS {} KiB, mean PSS {} KiB",
                e.count, e.mean_rss_kib, e.mean_pss_kib
            );
        }
        if let Some(total) = mem.nimbus_kib_per_environment() {
            println!(
                "  Nimbus's own memory per idle environment: {total:.0} KiB (server RSS growth + one nimbus-init's PSS)"
            );
        }
        println!();
    }

    if let Some(c) = &report.create {
        println!(
            "Control plane: {} sequential CreateFunction ({} byte zip): {:.0}/s (p50 {} us, p99 {} us); DeleteFunction {:.0}/s (p50 {} us)",
            c.count,
            c.zip_bytes,
            c.create_per_sec,
            us(c.create.p50_us),
            us(c.create.p99_us),
            c.delete_per_sec,
            us(c.delete.p50_us)
        );
        println!();
    }

    if !report.targets.is_empty() {
        println!("Targets (issue 4)");
        let rows: Vec<Vec<String>> = report
            .targets
            .iter()
            .map(|t| vec![t.target.clone(), t.measured.clone(), if t.met { "met" } else { "NOT met" }.to_owned()])
            .collect();
        table(&["target", "measured", ""], &rows);
        println!();
    }

    let stops = report
        .server_stop
        .iter()
        .map(|s| ("server", s))
        .chain(report.auth_none.iter().map(|a| ("--auth none server", &a.server_stop)));
    for (which, stop) in stops {
        println!(
            "SIGTERM: {which} exited {} in {:.0} ms, {} leaked processes{}",
            stop.exit_code.map_or("by signal".to_owned(), |c| format!("with code {c}")),
            stop.stop_ms,
            stop.leaked_processes,
            if stop.clean { "" } else { "  <-- NOT CLEAN" }
        );
    }
    for note in &report.notes {
        println!("note: {note}");
    }
}

fn summary_row(label: &str, s: &Summary) -> Vec<String> {
    vec![label.to_owned(), us(s.p50_us), us(s.p90_us), us(s.p99_us), us(s.max_us)]
}

fn throughput_row(label: &str, t: &ThroughputRun) -> Vec<String> {
    vec![
        label.to_owned(),
        t.concurrency.to_string(),
        format!("{:.0}", t.per_sec),
        us(t.latency.p50_us),
        us(t.latency.p99_us),
        us(t.cpu.server_us),
        us(t.cpu.environments_us),
        us(t.cpu.bench_client_us),
        us(t.cpu.other_us),
        format!("{:.0}", t.cpu.machine_busy_pct),
        t.environments.to_string(),
        format!(
            "{}{}",
            t.errors,
            if t.throttled > 0 { format!(" (+{} throttled)", t.throttled) } else { String::new() }
        ),
    ]
}
