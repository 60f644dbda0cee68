use std::path::PathBuf;

/// A sandbox operation that failed, with the facts needed to understand why.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("create scratch directory {path}: {source}")]
    CreateScratch { path: PathBuf, source: std::io::Error },
    #[error("create output pipe: {source}")]
    Pipe { source: std::io::Error },
    #[error("spawn {program}: {source}")]
    Spawn { program: PathBuf, source: std::io::Error },
    #[error("signal process group {pgid} with {signal}: {source}")]
    Signal { pgid: u32, signal: &'static str, source: nix::Error },
    #[error("{what}: {source}")]
    Network { what: &'static str, source: std::io::Error },
    #[error("outside network: {0}")]
    Outside(#[from] crate::namespace::pasta::PastaError),
    #[error("cgroups: {source}")]
    Cgroup { source: std::io::Error },
    #[error("{what}: {source}")]
    Namespace { what: &'static str, source: std::io::Error },
    #[error("the namespace tier is unavailable: {0}")]
    Unavailable(String),
}
