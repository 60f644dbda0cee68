//! The Nimbus server under test: the real release binary, started as a user would start it
//! (`serve --listen 127.0.0.1:0 --data-dir TMP --ready-file TMP/ready`), and stopped with SIGTERM,
//! checking that it exits cleanly and leaves no environment processes behind.
//!
//! Also the `/proc` readings the report needs: the server's resident memory and CPU time, and its
//! descendants (the environments' runtime processes and, in the namespace tier, Nimbus's zygote and
//! per-environment init), with their memory and CPU time.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Throwaway credentials for a throwaway server on loopback.
pub const ACCESS_KEY_ID: &str = "AKIDNIMBUSBENCH0001";
pub const SECRET_ACCESS_KEY: &str = "nimbus-bench/secret+only-for-a-temporary-server";
pub const REGION: &str = "us-east-1";

/// How long the server may take to listen, and to exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// `/proc/<pid>/stat` counts CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SEC: f64 = 100.0;

pub struct Server {
    child: Child,
    pub url: String,
    /// The sandbox tier the server reported in its ready file (`process`, `namespace`, ...).
    pub sandbox: String,
    pub addr: SocketAddr,
    pub pid: u32,
    log_path: PathBuf,
    data: tempfile::TempDir,
}

/// How the server ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StopReport {
    pub exit_code: Option<i32>,
    pub clean: bool,
    pub stop_ms: f64,
    /// Environment processes still alive after the server exited (they were killed here).
    pub leaked_processes: usize,
}

impl Server {
    /// Starts `binary serve` with SigV4 (`signed`) or `--auth none`, and waits for its ready file.
    pub fn start(binary: &Path, signed: bool, extra_args: &[String]) -> anyhow::Result<Server> {
        let data = tempfile::Builder::new().prefix("nimbus-bench-").tempdir().context("create a temporary data dir")?;
        let data_dir = data.path().join("data");
        let ready = data.path().join("ready");
        let log_path = data.path().join("server.log");
        let log = File::create(&log_path).context("create the server log file")?;
        let log_err = log.try_clone().context("clone the server log file")?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--ready-file")
            .arg(&ready)
            .args(extra_args)
            .env("NIMBUS_ROOT_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("NIMBUS_ROOT_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        if !signed {
            command.args(["--auth", "none"]);
        }
        let mut child = command.spawn().with_context(|| format!("start {}", binary.display()))?;
        let started = Instant::now();
        let (url, sandbox) = loop {
            if let Ok(text) = std::fs::read_to_string(&ready)
                && let Some(first) = text.lines().next()
                && !first.is_empty()
            {
                // Later lines are `key=value`; `sandbox=` names the isolation tier in use.
                let sandbox = text.lines().find_map(|l| l.strip_prefix("sandbox=")).unwrap_or("unknown");
                break (first.trim().to_owned(), sandbox.trim().to_owned());
            }
            if let Some(status) = child.try_wait().context("poll the server process")? {
                bail!("the server exited ({status}) before it was ready; its log:\n{}", tail(&log_path));
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the server wrote no ready file within {START_TIMEOUT:?}; its log:\n{}", tail(&log_path));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let addr: SocketAddr = url
            .strip_prefix("http://")
            .and_then(|hostport| hostport.parse().ok())
            .with_context(|| format!("the ready file's URL {url:?} is not http://IP:PORT"))?;
        let pid = child.id();
        Ok(Server { child, url, sandbox, addr, pid, log_path, data })
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The last lines of the server's output, for error messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path)
    }

    /// SIGTERM, then waits for the exit; anything left of the environments is reported and killed.
    pub fn stop(mut self) -> anyhow::Result<StopReport> {
        let before: Vec<u32> = descendants(self.pid);
        let started = Instant::now();
        kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM).context("send SIGTERM")?;
        let status = loop {
            if let Some(status) = self.child.try_wait().context("wait for the server")? {
                break Some(status);
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stop_ms = started.elapsed().as_secs_f64() * 1000.0;
        // Environments run in process groups of their own; after the server is gone none may remain.
        std::thread::sleep(Duration::from_millis(100));
        let leaked: Vec<u32> = before.into_iter().filter(|pid| alive(*pid)).collect();
        for pid in &leaked {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
        let exit_code = status.and_then(|s| s.code());
        Ok(StopReport {
            exit_code,
            clean: status.is_some_and(|s| s.success()) && leaked.is_empty(),
            stop_ms,
            leaked_processes: leaked.len(),
        })
    }

    pub fn rss_kib(&self) -> u64 {
        status_kib(self.pid, "VmRSS:")
    }

    /// CPU time (user + system) the server process has used, in seconds.
    pub fn cpu_secs(&self) -> f64 {
        cpu_ticks(self.pid) as f64 / TICKS_PER_SEC
    }

    /// Every descendant of the server: the environments' processes and Nimbus's helpers for them.
    pub fn processes(&self) -> Vec<EnvProcess> {
        descendants(self.pid)
            .into_iter()
            .map(|pid| EnvProcess {
                kind: classify(pid),
                rss_kib: status_kib(pid, "VmRSS:"),
                pss_kib: pss_kib(pid),
                cpu_ticks: cpu_ticks(pid),
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only reached when a run fails half-way: `stop` waited for the child already otherwise.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Process names of Nimbus's own per-environment and per-server helpers.
const PLATFORM_PREFIX: &str = "nimbus-";

#[derive(Debug, Clone)]
pub struct EnvProcess {
    pub kind: String,
    pub rss_kib: u64,
    pub pss_kib: u64,
    pub cpu_ticks: u64,
}

impl EnvProcess {
    /// A function's runtime process, as opposed to a Nimbus helper (zygote, per-environment init).
    pub fn is_runtime(&self) -> bool {
        !self.kind.starts_with(PLATFORM_PREFIX)
    }
}

/// How many environments `processes` hold: one runtime process each.
pub fn environment_count(processes: &[EnvProcess]) -> usize {
    processes.iter().filter(|p| p.is_runtime()).count()
}

/// Environment processes per kind (`python`, `node`, `bootstrap`): count, mean RSS and PSS.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvMemory {
    pub count: usize,
    pub mean_rss_kib: u64,
    pub mean_pss_kib: u64,
}

pub fn env_memory_by_kind(envs: &[EnvProcess]) -> BTreeMap<String, EnvMemory> {
    let mut by_kind: BTreeMap<String, Vec<&EnvProcess>> = BTreeMap::new();
    for env in envs {
        by_kind.entry(env.kind.clone()).or_default().push(env);
    }
    by_kind
        .into_iter()
        .map(|(kind, list)| {
            let n = list.len() as u64;
            let memory = EnvMemory {
                count: list.len(),
                mean_rss_kib: list.iter().map(|e| e.rss_kib).sum::<u64>() / n.max(1),
                mean_pss_kib: list.iter().map(|e| e.pss_kib).sum::<u64>() / n.max(1),
            };
            (kind, memory)
        })
        .collect()
}

/// CPU seconds used by all of `envs`.
pub fn env_cpu_secs(envs: &[EnvProcess]) -> f64 {
    envs.iter().map(|e| e.cpu_ticks).sum::<u64>() as f64 / TICKS_PER_SEC
}

/// CPU seconds this benchmark process has used (all its threads, living and ended).
pub fn own_cpu_secs() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let secs = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            secs(usage.user_time()) + secs(usage.system_time())
        }
        Err(_) => 0.0,
    }
}

/// Busy and total CPU time of the whole machine so far, in seconds (from `/proc/stat`).
pub fn machine_cpu_secs() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    ((total - idle) as f64 / TICKS_PER_SEC, total as f64 / TICKS_PER_SEC)
}

/// Every descendant of `root`, found through `/proc/<pid>/task/*/children`.
fn descendants(root: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
                found.push(child);
                stack.push(child);
            }
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie is dead; it only waits for a parent to collect it.
        Ok(stat) => stat_fields(&stat).first().is_some_and(|state| *state != "Z"),
        Err(_) => false,
    }
}

/// The fields of `/proc/<pid>/stat` after the command name (which may contain spaces), so that
/// index 0 is the state, 11 utime and 12 stime.
fn stat_fields(stat: &str) -> Vec<&str> {
    match stat.rfind(')') {
        Some(end) => stat[end + 1..].split_whitespace().collect(),
        None => Vec::new(),
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields = stat_fields(&stat);
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Proportional set size: shared pages (the interpreter, libc) divided among the processes that
/// map them, which is what one more environment really costs the machine.
fn pss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// What runs in a process: the runtime (`provided`, `python`, `node`), or Nimbus's own helpers
/// (`nimbus-zygote`, `nimbus-slot`, `nimbus-init`: the namespace tier names them with PR_SET_NAME).
/// A runtime started ahead of demand, still waiting in its slot, is a helper too (`nimbus-slot python`).
fn classify(pid: u32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim().starts_with(PLATFORM_PREFIX) {
        return comm.trim().to_owned();
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let parent = stat_fields(&stat).get(1).and_then(|p| p.parse::<u32>().ok());
    let parent_comm = parent.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok());
    if parent_comm.is_some_and(|c| c.trim() == "nimbus-slot") {
        return format!("nimbus-slot {}", runtime_kind(pid));
    }
    runtime_kind(pid)
}

fn runtime_kind(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let program = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let name = Path::new(std::str::from_utf8(program).unwrap_or_default())
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    if name.starts_with("python") {
        "python".into()
    } else if name.starts_with("node") {
        "node".into()
    } else if name == "bootstrap" {
        "provided".into()
    } else if name.is_empty() {
        "unknown".into()
    } else {
        name
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
