//! The `process` tier: each environment is a child process in a session (and process group) of its
//! own, with its own scratch directory. Freezing stops the whole process group with SIGSTOP; destroying
//! kills it with SIGKILL. Nothing here stops a function from reading the host's files or escaping its
//! process group: this tier is for development and portability, and the server says so at start.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::net::unix::pipe;

use crate::{ExitDescription, Instance, LaunchSpec, Network, PathView, Prepared, Sandbox, SandboxError};

pub struct ProcessSandbox {
    root: PathBuf,
}

impl ProcessSandbox {
    /// Uses `root` for scratch directories, removing whatever a previous run left there.
    pub fn new(root: &Path) -> Result<Self, SandboxError> {
        if root.exists() {
            // Leftovers of a crashed run hold no state anyone may rely on: a new environment starts clean.
            let _ = std::fs::remove_dir_all(root);
        }
        std::fs::create_dir_all(root)
            .map_err(|source| SandboxError::CreateScratch { path: root.to_owned(), source })?;
        Ok(Self { root: root.to_owned() })
    }
}

impl Sandbox for ProcessSandbox {
    fn tier(&self) -> &'static str {
        "process"
    }

    fn path_view(&self) -> PathView {
        PathView::default()
    }

    fn scratch_dir(&self, id: &str) -> PathBuf {
        self.root.join(id).join("tmp")
    }

    /// The Runtime API listens on a free loopback port of the host; the API is the server's own.
    /// Nothing is started ahead of demand in this tier: `prestart` is not used.
    fn prepare(&self, _id: &str, _prestart: Option<&crate::Prestart>) -> Result<(Network, Prepared), SandboxError> {
        let runtime_api = std::net::TcpListener::bind(("127.0.0.1", 0))
            .map_err(|source| SandboxError::Network { what: "bind the Runtime API listener", source })?;
        Ok((Network { runtime_api, api: None }, Prepared::default()))
    }

    fn launch(&self, spec: &LaunchSpec, _prepared: Prepared) -> Result<Box<dyn Instance>, SandboxError> {
        let scratch = self.scratch_dir(&spec.id);
        std::fs::create_dir_all(&scratch)
            .map_err(|source| SandboxError::CreateScratch { path: scratch.clone(), source })?;
        let (out_read, out_write) = make_pipe()?;
        let (err_read, err_write) = make_pipe()?;

        let mut command = tokio::process::Command::new(&spec.program);
        command
            .args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out_write))
            .stderr(Stdio::from(err_write))
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
        // async-signal-safe; it allocates nothing and touches no locks.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(|| {
                // If the server dies, its environments die with it instead of running on unowned.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let mut child =
            command.spawn().map_err(|source| SandboxError::Spawn { program: spec.program.clone(), source })?;
        let pid = child.id().unwrap_or(0);
        // The child is reaped by its own task so that waiting never holds the instance; everything else
        // addresses the environment by its process group.
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let description = match child.wait().await {
                Ok(status) => describe(status),
                Err(_) => ExitDescription::Unknown,
            };
            let _ = exit_tx.send(description);
        });
        let output = Some((
            pipe::Receiver::from_owned_fd(out_read).map_err(|source| SandboxError::Pipe { source })?,
            pipe::Receiver::from_owned_fd(err_read).map_err(|source| SandboxError::Pipe { source })?,
        ));
        Ok(Box::new(ProcessInstance {
            pid,
            exit: Some(exit_rx),
            output,
            scratch_root: self.root.join(&spec.id),
            peak_bytes: AtomicU64::new(0),
            destroyed: false,
        }))
    }
}

fn make_pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SandboxError::Pipe { source: std::io::Error::from(e) })
}

struct ProcessInstance {
    pid: u32,
    exit: Option<tokio::sync::oneshot::Receiver<ExitDescription>>,
    output: Option<(pipe::Receiver, pipe::Receiver)>,
    scratch_root: PathBuf,
    peak_bytes: AtomicU64,
    destroyed: bool,
}

impl ProcessInstance {
    fn signal_group(&self, signal: Signal, name: &'static str) -> Result<(), SandboxError> {
        killpg(Pid::from_raw(self.pid as i32), signal).map_err(|source| SandboxError::Signal {
            pgid: self.pid,
            signal: name,
            source,
        })
    }
}

impl Instance for ProcessInstance {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn take_output(&mut self) -> Option<(pipe::Receiver, pipe::Receiver)> {
        self.output.take()
    }

    fn freeze(&self) -> Result<(), SandboxError> {
        self.signal_group(Signal::SIGSTOP, "SIGSTOP")
    }

    fn thaw(&self) -> Result<(), SandboxError> {
        self.signal_group(Signal::SIGCONT, "SIGCONT")
    }

    fn terminate(&self) {
        let _ = self.signal_group(Signal::SIGCONT, "SIGCONT");
        let _ = self.signal_group(Signal::SIGTERM, "SIGTERM");
    }

    fn peak_memory_bytes(&self) -> u64 {
        let measured = tree_memory_bytes(self.pid);
        self.peak_bytes.fetch_max(measured, Ordering::Relaxed).max(measured)
    }

    fn take_exit(&mut self) -> Option<tokio::sync::oneshot::Receiver<ExitDescription>> {
        self.exit.take()
    }

    fn destroy(&mut self) {
        if self.destroyed {
            return;
        }
        self.destroyed = true;
        // SIGKILL ends stopped processes too, so a frozen environment needs no thaw first.
        let _ = self.signal_group(Signal::SIGKILL, "SIGKILL");
        let _ = std::fs::remove_dir_all(&self.scratch_root);
    }
}

impl Drop for ProcessInstance {
    fn drop(&mut self) {
        self.destroy();
    }
}

fn describe(status: std::process::ExitStatus) -> ExitDescription {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return ExitDescription::Exited(code);
    }
    status.signal().map_or(ExitDescription::Unknown, ExitDescription::signaled)
}

/// Memory held by a process tree: the larger of the main process's own peak (VmHWM) and the sum of the
/// current resident sizes of it and its descendants. The process tier has no cgroup to ask for the
/// tree's peak, so this is sampled whenever the server asks (after each invocation).
pub(crate) fn tree_memory_bytes(root: u32) -> u64 {
    let mut total_rss = 0u64;
    let mut root_hwm = 0u64;
    let mut stack = vec![root];
    let mut seen = 0;
    while let Some(pid) = stack.pop() {
        seen += 1;
        if seen > 4096 {
            break; // A fork bomb must not turn a measurement into a long walk.
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("VmRSS:") {
                total_rss += parse_kb(v);
            } else if pid == root
                && let Some(v) = line.strip_prefix("VmHWM:")
            {
                root_hwm = parse_kb(v);
            }
        }
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            stack.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    total_rss.max(root_hwm)
}

/// Parses "   1234 kB" into bytes.
fn parse_kb(value: &str) -> u64 {
    value.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0) * 1024
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn spec(dir: &Path, script: &str) -> LaunchSpec {
        LaunchSpec {
            id: "env-1".into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("GREETING".into(), "hi".into())],
            cwd: dir.to_owned(),
            code_dir: dir.to_owned(),
            runtime_dir: dir.to_owned(),
            ro_paths: Vec::new(),
            memory_mb: 128,
            scratch_mb: 512,
            prestart: None,
            egress: crate::Egress::Outside,
            group: "test".into(),
        }
    }

    #[tokio::test]
    async fn runs_measures_and_reports_exit() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = ProcessSandbox::new(&dir.path().join("envs")).unwrap();
        let mut instance =
            sandbox.launch(&spec(dir.path(), "echo $GREETING; echo oops >&2; exit 3"), Prepared::default()).unwrap();
        let (mut out, mut err) = instance.take_output().unwrap();
        let mut text = String::new();
        out.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "hi\n");
        let mut text = String::new();
        err.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "oops\n");
        assert_eq!(instance.take_exit().unwrap().await.unwrap(), ExitDescription::Exited(3));
    }

    #[tokio::test]
    async fn destroy_kills_the_whole_group_even_when_frozen() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = ProcessSandbox::new(&dir.path().join("envs")).unwrap();
        let mut instance = sandbox.launch(&spec(dir.path(), "sleep 30 & sleep 30"), Prepared::default()).unwrap();
        let exit = instance.take_exit().unwrap();
        let _output = instance.take_output();
        assert!(instance.peak_memory_bytes() > 0);
        instance.freeze().unwrap();
        instance.thaw().unwrap();
        instance.freeze().unwrap();
        instance.destroy();
        assert_eq!(exit.await.unwrap(), ExitDescription::Signaled("killed".into()));
        assert!(!dir.path().join("envs/env-1").exists());
    }
}
