//! Execution-environment sandboxes. A sandbox turns a [`LaunchSpec`] (a program, its arguments and
//! environment, a code directory and a scratch directory) into a running [`Instance`] it can freeze,
//! thaw, measure and destroy. It knows nothing about Lambda: the server decides what to launch.
//!
//! Tiers:
//! - [`process`]: a plain child process in its own session with its own working and temporary
//!   directories. Portable, and it isolates nothing; the server says so loudly at start.
//! - `namespace` (next): namespaces, cgroups, seccomp and a read-only root, behind the same trait.
//!
//! This is the only crate allowed `unsafe` (pre-exec hooks); each block carries a SAFETY argument.

mod error;
pub mod process;

use std::ffi::OsString;
use std::path::PathBuf;

pub use error::SandboxError;
pub use process::ProcessSandbox;

/// What to run in a new environment.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// A short name for logs and scratch directories (e.g. the environment id).
    pub id: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The complete environment: nothing of the server's own environment is inherited.
    pub env: Vec<(OsString, OsString)>,
    /// The working directory (the function's code).
    pub cwd: PathBuf,
    /// Memory the environment is sized for, in MB; tiers that can enforce it do.
    pub memory_mb: u32,
    /// Size of the environment's scratch directory, in MB; tiers that can enforce it do.
    pub scratch_mb: u32,
}

/// Where an instance's scratch space lives, so the server can point `TMPDIR` at it before launch.
pub trait Sandbox: Send + Sync + 'static {
    /// The tier's name as `--sandbox` spells it.
    fn tier(&self) -> &'static str;
    /// Prepares a scratch directory for environment `id` and returns the path the program will see.
    fn scratch_dir(&self, id: &str) -> PathBuf;
    /// Starts the program. Its stdout and stderr are returned as non-blocking pipes.
    fn launch(&self, spec: &LaunchSpec) -> Result<Box<dyn Instance>, SandboxError>;
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
    /// The most memory the environment has held so far, in bytes, as measured by the kernel.
    fn peak_memory_bytes(&self) -> u64;
    /// Resolves when the environment's main process exits, with a description such as "exit status 1"
    /// or "signal: killed", as Lambda words it. Taken once.
    fn take_exit(&mut self) -> Option<tokio::sync::oneshot::Receiver<ExitDescription>>;
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

impl std::fmt::Display for ExitDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited(code) => write!(f, "exit status {code}"),
            Self::Signaled(name) => write!(f, "signal: {name}"),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}
