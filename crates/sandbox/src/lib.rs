//! Execution-environment sandboxes. A sandbox turns a [`LaunchSpec`] (a program, its arguments and
//! environment, the code and runtime directories, a memory size and a scratch size) into a running
//! [`Instance`] it can freeze, thaw, measure and destroy. It knows nothing about Lambda: the server
//! decides what to launch.
//!
//! Tiers:
//! - [`process`]: a plain child process in its own session with its own working and temporary
//!   directories. Portable, and it isolates nothing; the server says so loudly at start.
//! - [`namespace`]: namespaces (mount, pid, ipc, uts, net, cgroup), a read-only root built from bind
//!   mounts, a sized tmpfs `/tmp`, cgroup limits (memory, pids, cpu) and freezer, an unprivileged uid
//!   without capabilities, `no_new_privs` and seccomp.
//!
//! Launching is two steps: [`Sandbox::prepare`] makes the environment's network and hands the server
//! the listeners it must serve there (the Runtime API, and Nimbus's API where the tier has a network
//! of its own); [`Sandbox::launch`] starts the program.
//!
//! This is the only crate allowed `unsafe` (clone, pre-exec hooks, ioctls); each block carries a
//! SAFETY argument.

mod error;
pub mod namespace;
pub mod process;

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

pub use error::SandboxError;
pub use namespace::NamespaceSandbox;
pub use process::ProcessSandbox;

/// What to run in a new environment.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// A short name for logs, scratch directories and cgroups (e.g. the environment id).
    pub id: String,
    /// The program, as the environment sees it (see [`Sandbox::path_view`]).
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The complete environment: nothing of the server's own environment is inherited.
    pub env: Vec<(OsString, OsString)>,
    /// The working directory, as the environment sees it.
    pub cwd: PathBuf,
    /// The function's code on the host; read-only, at [`PathView::task_root`] where the tier maps it.
    pub code_dir: PathBuf,
    /// Nimbus's runtime files (bootstraps) on the host; read-only, at [`PathView::runtime_dir`].
    pub runtime_dir: PathBuf,
    /// More host paths the program needs (interpreters outside the system directories), visible
    /// read-only at the same paths.
    pub ro_paths: Vec<PathBuf>,
    /// Memory the environment is sized for, in MB; tiers that can enforce it do.
    pub memory_mb: u32,
    /// Size of the environment's scratch directory, in MB; tiers that can enforce it do.
    pub scratch_mb: u32,
    /// The interpreter this environment may take already started (see [`Prestart`]); `program` and
    /// `args` are what it runs when none is ready or the tier starts none.
    pub prestart: Option<Prestart>,
    /// The network it reaches besides its loopback; the namespace tier enforces it (the process tier
    /// shares the host's network and cannot).
    pub egress: Egress,
    /// Environments with the same group (the server uses the function's name) share one bound on
    /// their processes and threads beyond each one's own, where the tier can enforce it (namespace:
    /// a pids cgroup per group), so a function invoking itself cannot multiply its share of the host.
    pub group: String,
}

/// Which network an environment reaches besides its own loopback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Egress {
    /// The outside network (where the tier can connect it).
    #[default]
    Outside,
    /// Its loopback only: its Runtime API and Nimbus's API.
    LoopbackOnly,
}

/// An interpreter a tier may start ahead of demand, before it knows which function it will run: the
/// same program, arguments, environment and read-only paths for every environment of a kind. Tiers
/// that do (the namespace tier) start it as the environment's runtime would be started, with
/// [`PRESTART_FD_VAR`] set to the descriptor on which it then waits. Once the environment's own
/// mounts are in place, that descriptor yields the function's working directory and complete
/// environment (`cwd\0KEY=VALUE\0KEY=VALUE…`) and reaches end of file; an end of file with nothing
/// before it means the environment was abandoned. The interpreter must then put that environment in
/// place of its own and change to that directory before it loads any of the function's code.
///
/// The caller decides when the function's environment may replace the interpreter's (nothing the
/// interpreter reads at start differs); the tier only matches the kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prestart {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// What the interpreter starts with: only what every environment of the kind shares.
    pub env: Vec<(OsString, OsString)>,
    /// Nimbus's runtime files and the interpreter's own directories (as [`LaunchSpec::runtime_dir`]
    /// and [`LaunchSpec::ro_paths`]); the same for every environment of the kind.
    pub runtime_dir: PathBuf,
    pub ro_paths: Vec<PathBuf>,
}

/// The environment variable naming the descriptor a pre-started interpreter waits on.
pub const PRESTART_FD_VAR: &str = "_NIMBUS_PRESTART_FD";

/// Where the host paths of a [`LaunchSpec`] appear inside an environment (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct PathView {
    pub task_root: Option<PathBuf>,
    pub runtime_dir: Option<PathBuf>,
    /// Where host paths under `/tmp` (the interpreters', [`LaunchSpec::ro_paths`]) are shown, when the
    /// tier gives environments a `/tmp` of their own over the host's.
    pub host_tmp: Option<PathBuf>,
}

impl PathView {
    /// The code directory `host` as the environment sees it.
    pub fn code(&self, host: &Path) -> PathBuf {
        self.task_root.clone().unwrap_or_else(|| host.to_owned())
    }

    /// The runtime directory `host` as the environment sees it.
    pub fn runtime(&self, host: &Path) -> PathBuf {
        self.runtime_dir.clone().unwrap_or_else(|| host.to_owned())
    }

    /// A host path of the interpreters (a [`LaunchSpec::ro_paths`] entry, the program) as the
    /// environment sees it: where it is, except under the host's `/tmp` where the tier shows it at
    /// [`Self::host_tmp`].
    pub fn host(&self, host: &Path) -> PathBuf {
        match (&self.host_tmp, host.strip_prefix("/tmp")) {
            (Some(view), Ok(rest)) => view.join(rest),
            _ => host.to_owned(),
        }
    }
}

/// The listeners an environment's network offers; the server serves them.
#[derive(Debug)]
pub struct Network {
    /// Where the runtime finds its Runtime API (`AWS_LAMBDA_RUNTIME_API` is its local address).
    pub runtime_api: TcpListener,
    /// Nimbus's own API inside the environment's network, when the tier gives it one (otherwise the
    /// environment reaches the server's public listener).
    pub api: Option<TcpListener>,
}

/// What [`Sandbox::prepare`] made for [`Sandbox::launch`].
#[derive(Debug, Default)]
pub struct Prepared {
    slot: Option<namespace::Slot>,
}

pub trait Sandbox: Send + Sync + 'static {
    /// The tier's name as `--sandbox` spells it.
    fn tier(&self) -> &'static str;
    /// How host paths appear inside environments.
    fn path_view(&self) -> PathView;
    /// The scratch directory (`TMPDIR`) of environment `id`, as the program sees it.
    fn scratch_dir(&self, id: &str) -> PathBuf;
    /// Makes environment `id`'s network and its listeners; with `prestart`, the tier may hand over an
    /// environment whose interpreter is already running (its [`LaunchSpec`] must then name the same).
    fn prepare(&self, id: &str, prestart: Option<&Prestart>) -> Result<(Network, Prepared), SandboxError>;
    /// Starts the program. Its stdout and stderr are returned as non-blocking pipes.
    fn launch(&self, spec: &LaunchSpec, prepared: Prepared) -> Result<Box<dyn Instance>, SandboxError>;
    /// Removes what the tier keeps for itself, once every instance is gone (server shutdown).
    fn cleanup(&self) {}
}

/// One running environment.
pub trait Instance: Send + Sync {
    fn pid(&self) -> u32;
    /// The read ends of the program's stdout and stderr; taken once by the server's log reader.
    fn take_output(&mut self) -> Option<(tokio::net::unix::pipe::Receiver, tokio::net::unix::pipe::Receiver)>;
    /// Suspends every process of the environment (between invocations).
    fn freeze(&self) -> Result<(), SandboxError>;
    /// Resumes a frozen environment.
    fn thaw(&self) -> Result<(), SandboxError>;
    /// Tells the tier that the runtime finished its init (the namespace tier then applies the CPU
    /// share of the memory size; init runs unthrottled, as on Lambda).
    fn init_done(&self) {}
    /// The most memory the environment has held so far, in bytes, as measured by the kernel.
    fn peak_memory_bytes(&self) -> u64;
    /// Whether the kernel killed a process of the environment for exceeding its memory.
    fn oom_killed(&self) -> bool {
        false
    }
    /// Resolves when the environment's main process exits, with a description such as "exit status 1"
    /// or "signal: killed", as Lambda words it. Taken once.
    fn take_exit(&mut self) -> Option<tokio::sync::oneshot::Receiver<ExitDescription>>;
    /// Asks every process of the environment to stop (SIGTERM); [`Instance::destroy`] follows after a
    /// grace period.
    fn terminate(&self) {}
    /// Kills every process of the environment and removes its scratch space. Idempotent.
    fn destroy(&mut self);
}

/// How an environment's main process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitDescription {
    Exited(i32),
    Signaled(String),
    Unknown,
}

impl ExitDescription {
    /// Lambda's words for a signal number ("killed", "segmentation fault", …).
    pub fn signaled(signal: i32) -> Self {
        use nix::sys::signal::Signal;
        match Signal::try_from(signal) {
            Ok(Signal::SIGKILL) => Self::Signaled("killed".into()),
            Ok(Signal::SIGSEGV) => Self::Signaled("segmentation fault".into()),
            Ok(Signal::SIGABRT) => Self::Signaled("aborted".into()),
            Ok(Signal::SIGTERM) => Self::Signaled("terminated".into()),
            Ok(other) => Self::Signaled(other.as_str().to_ascii_lowercase()),
            Err(_) => Self::Unknown,
        }
    }
}

impl std::fmt::Display for ExitDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited(code) => write!(f, "exit status {code}"),
            Self::Signaled(name) => write!(f, "signal: {name}"),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}
