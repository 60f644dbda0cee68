//! The environment's init: a child of the zygote (the Nimbus binary re-executed once as
//! `nimbus __sandbox-zygote`), pid 1 of the environment's pid namespace, in its own mount, ipc, uts and
//! cgroup namespaces and already in its network namespace and cgroups (see `spawn.rs`).
//!
//! It reads its [`InitConfig`] from fd 3, builds the root (a tmpfs with read-only bind mounts, the
//! code at /var/task, a sized /tmp (an ext4 disk, or a tmpfs), fresh /proc, minimal /dev and /etc),
//! pivots into it, then forks the runtime: no capabilities, an unprivileged uid, `no_new_privs`, Lambda's rlimits and the
//! seccomp filter, then exec. It stays as pid 1, with the same uid and no capabilities, to reap orphans
//! (a runtime exec'd as pid 1 would have to reap its own, which most do not) and to forward SIGTERM and
//! friends to every process of the environment (a pid 1 ignores signals it has no handler for). When
//! the runtime ends, init writes how it ended to fd 4 (`exit N` / `signal N`) and exits; the kernel then
//! kills whatever else is left in the namespace.
//!
//! A waiting child of a slot with a [`PrestartConfig`] also starts the runtime early: once the base is
//! built it adds the mounts the interpreter needs, forks it (same credentials, rlimits and seccomp as
//! below) chrooted into the new root, and keeps the write end of the pipe it waits on. At activation
//! init adds only the environment's own mounts, pivots (a chrooted process is already inside the new
//! root, so pivot_root leaves it where it is), and writes the function's directory and environment to
//! that pipe instead of forking: a cold start then pays for the function's own init only.

use std::ffi::{CString, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork};
use serde::{Deserialize, Serialize};

pub(crate) const CONFIG_FD: i32 = 3;
pub(crate) const STATUS_FD: i32 = 4;
/// Init's end of the pipe a pre-started runtime waits on.
pub(crate) const PRESTART_GO_FD: i32 = 5;
/// The descriptor a pre-started runtime reads its function from (`crate::PRESTART_FD_VAR` names it).
pub(crate) const PRESTART_WAIT_FD: i32 = 3;
/// Init's exit code when it could not build the environment.
pub(crate) const SETUP_FAILED: i32 = 125;

/// The part of the root every environment shares, built by a waiting child ahead of demand.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BaseConfig {
    /// An empty host directory to mount the new root on (inside the private mount namespace).
    pub root: PathBuf,
    pub steps: Vec<Step>,
    /// A runtime to start once the base is built, before any function is known.
    pub prestart: Option<PrestartConfig>,
}

/// A runtime started ahead of demand (see `crate::Prestart`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PrestartConfig {
    /// Its mounts beyond the base: /tmp (replaced or resized at launch when the environment's size
    /// differs), the interpreter's directories, /var/runtime.
    pub steps: Vec<Step>,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub creds: Creds,
}

/// Who a runtime runs as and under which limits.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub nofile: u64,
    pub seccomp: bool,
}

/// A runtime a waiting child started; it waits for its function on a pipe init holds at
/// [`PRESTART_GO_FD`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prestarted {
    pub pid: Pid,
}
/// What makes one environment: the rest of its root and its runtime.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InitConfig {
    pub steps: Vec<Step>,
    pub hostname: String,
    pub creds: Creds,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    /// Build the root, report `probe ok` and exit: proves the machine allows the tier.
    pub probe: bool,
}

/// One step of building the root; `dst` paths are absolute paths inside the new root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Step {
    /// A read-only, nosuid, nodev bind mount of a host file or directory. A directory shown at another
    /// path than its own (the code at /var/task, the data dir's runtime files at /var/runtime, an
    /// interpreter under the host's /tmp) is mounted as a read-only overlay of it instead, so that the
    /// environment's mountinfo does not name its host path (see [`overlay_read_only`]).
    Bind {
        src: PathBuf,
        dst: PathBuf,
    },
    /// A read-only file of `contents` over a file of /proc (the host's kernel command line, its memory),
    /// as lxcfs does; what the environment sees there is what Lambda's would show.
    ProcFile {
        dst: PathBuf,
        contents: String,
    },
    Symlink {
        target: PathBuf,
        dst: PathBuf,
    },
    Dir {
        dst: PathBuf,
        mode: u32,
    },
    File {
        dst: PathBuf,
        contents: String,
        mode: u32,
    },
    Tmpfs {
        dst: PathBuf,
        size_mb: u32,
        mode: u32,
    },
    /// A new size for a tmpfs mounted earlier (a pre-started slot's /tmp).
    Resize {
        dst: PathBuf,
        size_mb: u32,
    },
    /// An ext4 filesystem on a loop device Nimbus attached (see `tmpdisk.rs`; Nimbus keeps it open,
    /// so the path names that disk until the environment is gone), mounted nosuid and nodev, its root
    /// given `mode` and emptied of mkfs's lost+found: it looks like the tmpfs it replaces.
    Disk {
        device: PathBuf,
        dst: PathBuf,
        mode: u32,
    },
    /// Lazily unmounts what is mounted at `dst` (a slot's /tmp, when the environment has its own).
    Unmount {
        dst: PathBuf,
    },
    Proc {
        dst: PathBuf,
    },
    /// A small read-only /dev with the host's null, zero, full, random, urandom and tty.
    Dev {
        dst: PathBuf,
    },
}

/// Where a [`Step::ProcFile`] is written before it is bound: an empty directory of every root.
const PROC_FILE_STAGE: &str = "/opt";

const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Builds the shared part of the root in a waiting child: everything stays private to its mount
/// namespace, and the root stays writable for the environment's own mount points.
pub(crate) fn build_base(base: &BaseConfig) -> Result<(), String> {
    let none: Option<&str> = None;
    // Nothing mounted from here on propagates back to the host.
    ctx(mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none), || "make / private".into())?;
    let root = &base.root;
    ctx(
        mount(
            Some("tmpfs"),
            root,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("size=1m,nr_inodes=4096,mode=0755"),
        ),
        || format!("mount the root tmpfs on {}", root.display()),
    )?;
    for step in &base.steps {
        apply_step(root, step)?;
    }
    Ok(())
}

/// In a waiting child whose base is built: adds the runtime's mounts and starts it, chrooted into
/// `root`, reading its function from a pipe whose write end is left at [`PRESTART_GO_FD`].
#[allow(unsafe_code)]
pub(crate) fn prestart(root: &Path, config: &PrestartConfig) -> Result<Prestarted, String> {
    for step in &config.steps {
        apply_step(root, step)?;
    }
    let exec = Exec::new(&config.program, &config.args, &config.env, Path::new("/"), config.creds)?;
    // The child enters the root through a descriptor, not its path: init may pivot_root before the
    // child gets to it, and the host's path is gone then (the descriptor still names the new root).
    let root_dir = ctx(
        nix::fcntl::open(
            root,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ),
        || format!("open {}", root.display()),
    )?;
    let (wait_r, go_w) = ctx(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC), || "pipe".into())?;
    // SAFETY: dup2 onto a fixed descriptor number this process reserves for the pipe; the OwnedFd
    // closed afterwards is the original, not the copy.
    if unsafe { libc::dup2(go_w.as_raw_fd(), PRESTART_GO_FD) } < 0 {
        return Err(format!("dup2 the prestart pipe: {}", std::io::Error::last_os_error()));
    }
    let _ = nix::fcntl::fcntl(
        // SAFETY: PRESTART_GO_FD was just made a copy of `go_w`.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(PRESTART_GO_FD) },
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    drop(go_w);
    // SAFETY: the waiting child is single-threaded (a fork of the single-threaded zygote), so the
    // forked child may run anything.
    match ctx(unsafe { fork() }, || "fork the prestarted runtime".into())? {
        ForkResult::Child => {
            // SAFETY: dup2 onto fd 3, enter the root, then close everything above fd 3; the child owns
            // its table, and the chroot happens while it is still uid 0 (CAP_SYS_CHROOT).
            unsafe {
                if libc::dup2(wait_r.as_raw_fd(), PRESTART_WAIT_FD) < 0
                    || libc::fchdir(root_dir.as_raw_fd()) != 0
                    || libc::chroot(c".".as_ptr()) != 0
                {
                    let _ = writeln!(
                        std::io::stderr(),
                        "nimbus sandbox: cannot enter the environment's root: {}",
                        std::io::Error::last_os_error()
                    );
                    libc::_exit(127);
                }
                libc::syscall(libc::SYS_close_range, (PRESTART_WAIT_FD + 1) as u32, u32::MAX, 0u32);
            }
            let error = exec_runtime(&exec);
            let _ = writeln!(std::io::stderr(), "nimbus sandbox: cannot start {}: {error}", config.program.display());
            // SAFETY: leave the failed child at once.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => Ok(Prestarted { pid: child }),
    }
}

/// Runs the environment's init (in a child of the zygote whose base root is at `root`, descriptors in
/// place). Never returns.
#[allow(unsafe_code)]
pub(crate) fn init_main(root: &Path, base: Result<Option<Prestarted>, String>) -> ! {
    // Nothing of Nimbus's beyond fds 0-4 (and a pre-started runtime's pipe, 5) may reach the
    // function, even a descriptor someone forgot to mark close-on-exec.
    // SAFETY: close_range(2) with integer arguments; fds 6 and up belong to no Rust object here yet.
    unsafe { libc::syscall(libc::SYS_close_range, (PRESTART_GO_FD + 1) as u32, u32::MAX, 0u32) };
    let started = std::time::Instant::now();
    let mut status = StatusWriter::open();
    let prestarted = match base {
        Ok(p) => p,
        Err(e) => status.fail(&e),
    };
    let config = match read_config() {
        Ok(c) => c,
        Err(e) => status.fail(&format!("read config: {e}")),
    };
    if let Err(e) = finish_root(root, &config) {
        status.fail(&e);
    }
    status.line(&format!("root-built {}", started.elapsed().as_micros()));
    if config.probe {
        status.line("probe ok");
        std::process::exit(0);
    }
    match supervise(&config, prestarted, &mut status) {
        Ok(never) => match never {},
        Err(e) => status.fail(&e),
    }
}

struct StatusWriter(Option<std::fs::File>);

impl StatusWriter {
    #[allow(unsafe_code)]
    fn open() -> Self {
        // SAFETY: the spawner dup2'ed the status pipe to STATUS_FD for this process and nothing else in
        // it owns that descriptor.
        let file = unsafe { std::fs::File::from_raw_fd(STATUS_FD) };
        let _ = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
        Self(Some(file))
    }

    fn line(&mut self, text: &str) {
        if let Some(f) = &mut self.0 {
            let _ = f.write_all(format!("{text}\n").as_bytes());
        }
    }

    fn fail(&mut self, message: &str) -> ! {
        let _ = writeln!(std::io::stderr(), "nimbus sandbox init: {message}");
        self.line(&format!("setup-error {}", message.replace('\n', " ")));
        std::process::exit(SETUP_FAILED);
    }
}

#[allow(unsafe_code)]
fn read_config() -> Result<InitConfig, String> {
    // SAFETY: the spawner dup2'ed the config memfd to CONFIG_FD; this takes ownership once, here.
    let mut file = unsafe { std::fs::File::from_raw_fd(CONFIG_FD) };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

fn inside(root: &Path, dst: &Path) -> PathBuf {
    root.join(dst.strip_prefix("/").unwrap_or(dst))
}

fn ctx<T, E: std::fmt::Display>(result: Result<T, E>, what: impl FnOnce() -> String) -> Result<T, String> {
    result.map_err(|e| format!("{}: {e}", what()))
}

fn mkdirs(path: &Path, mode: u32) -> Result<(), String> {
    ctx(std::fs::DirBuilder::new().recursive(true).mode(mode).create(path), || format!("mkdir {}", path.display()))
}

/// The environment's own mounts on top of the base, then the root goes read-only and becomes `/`.
fn finish_root(root: &Path, config: &InitConfig) -> Result<(), String> {
    let none: Option<&str> = None;
    for step in &config.steps {
        apply_step(root, step)?;
    }
    ctx(
        mount(
            none,
            root,
            none,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            none,
        ),
        || "make the root read-only".into(),
    )?;
    ctx(nix::unistd::chdir(root), || "chdir to the new root".into())?;
    ctx(nix::unistd::pivot_root(".", "."), || "pivot_root".into())?;
    ctx(umount2(".", MntFlags::MNT_DETACH), || "detach the host's root".into())?;
    ctx(nix::unistd::chdir("/"), || "chdir /".into())?;
    ctx(nix::unistd::sethostname(&config.hostname), || "sethostname".into())?;
    Ok(())
}

fn apply_step(root: &Path, step: &Step) -> Result<(), String> {
    let none: Option<&str> = None;
    match step {
        Step::Bind { src, dst } => {
            let path = inside(root, dst);
            let meta = ctx(std::fs::metadata(src), || format!("stat {}", src.display()))?;
            if meta.is_dir() {
                mkdirs(&path, 0o755)?;
                // Where the directory is not at its own host path (a symlink on the way counts), its
                // mount would name that path.
                let shown_elsewhere = std::fs::canonicalize(src).map_or(true, |real| &real != dst);
                if shown_elsewhere && overlay_read_only(src, &path).is_ok() {
                    return Ok(());
                }
            } else {
                mkdirs(path.parent().unwrap_or(root), 0o755)?;
                ctx(std::fs::File::create(&path), || format!("create {}", path.display()))?;
            }
            bind_read_only(src, &path)
        }
        Step::ProcFile { dst, contents } => {
            // Written into a small tmpfs of its own, mounted for the moment on the root's empty /opt,
            // bound over the /proc file, then detached from /opt: the bind keeps that tmpfs and its
            // file, and /opt is empty again. (Unlinking a file kept in the root's own tmpfs would
            // leave an orphan inode there, and the root could not be made read-only.)
            let name = dst.file_name().ok_or_else(|| format!("{} names no file", dst.display()))?;
            let stage = inside(root, Path::new(PROC_FILE_STAGE));
            mkdirs(&stage, 0o755)?;
            ctx(
                mount(
                    Some("tmpfs"),
                    &stage,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    Some("size=64k,nr_inodes=8,mode=0755"),
                ),
                || format!("mount a tmpfs for {}", dst.display()),
            )?;
            let staged = stage.join(name);
            let bound = ctx(std::fs::write(&staged, contents), || format!("write {}", staged.display()))
                .and_then(|()| {
                    ctx(std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o444)), || {
                        format!("chmod {}", staged.display())
                    })
                })
                .and_then(|()| bind_read_only(&staged, &inside(root, dst)));
            ctx(umount2(&stage, MntFlags::MNT_DETACH), || format!("detach the tmpfs for {}", dst.display()))?;
            bound
        }
        Step::Symlink { target, dst } => {
            let path = inside(root, dst);
            mkdirs(path.parent().unwrap_or(root), 0o755)?;
            ctx(std::os::unix::fs::symlink(target, &path), || format!("symlink {}", path.display()))
        }
        Step::Dir { dst, mode } => {
            let path = inside(root, dst);
            mkdirs(&path, *mode)?;
            ctx(std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)), || {
                format!("chmod {}", path.display())
            })
        }
        Step::File { dst, contents, mode } => {
            let path = inside(root, dst);
            mkdirs(path.parent().unwrap_or(root), 0o755)?;
            ctx(std::fs::write(&path, contents), || format!("write {}", path.display()))?;
            ctx(std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)), || {
                format!("chmod {}", path.display())
            })
        }
        Step::Tmpfs { dst, size_mb, mode } => {
            let path = inside(root, dst);
            mkdirs(&path, 0o755)?;
            let options = format!("size={size_mb}m,mode={mode:o}");
            ctx(
                mount(
                    Some("tmpfs"),
                    &path,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some(options.as_str()),
                ),
                || format!("mount tmpfs on {}", dst.display()),
            )
        }
        Step::Resize { dst, size_mb } => {
            let path = inside(root, dst);
            let options = format!("size={size_mb}m");
            ctx(
                mount(
                    none,
                    &path,
                    none,
                    MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some(options.as_str()),
                ),
                || format!("resize the tmpfs on {}", dst.display()),
            )
        }
        Step::Disk { device, dst, mode } => {
            let path = inside(root, dst);
            mkdirs(&path, 0o755)?;
            ctx(
                mount(
                    Some(device.as_path()),
                    &path,
                    Some("ext4"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some(super::tmpdisk::MOUNT_DATA),
                ),
                || format!("mount {} (ext4) on {}", device.display(), dst.display()),
            )?;
            ctx(std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)), || {
                format!("chmod {}", dst.display())
            })?;
            match std::fs::remove_dir(path.join("lost+found")) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("remove {}/lost+found: {e}", dst.display()))
                }
                _ => Ok(()),
            }
        }
        Step::Unmount { dst } => {
            ctx(umount2(&inside(root, dst), MntFlags::MNT_DETACH), || format!("unmount {}", dst.display()))
        }
        Step::Proc { dst } => {
            let path = inside(root, dst);
            mkdirs(&path, 0o555)?;
            ctx(
                mount(
                    Some("proc"),
                    &path,
                    Some("proc"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    none,
                ),
                || "mount /proc".into(),
            )
        }
        Step::Dev { dst } => {
            let path = inside(root, dst);
            mkdirs(&path, 0o755)?;
            ctx(
                mount(
                    Some("tmpfs"),
                    &path,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                    Some("size=64k,nr_inodes=64,mode=0755"),
                ),
                || "mount /dev".into(),
            )?;
            for name in DEVICES {
                let host = Path::new("/dev").join(name);
                if !host.exists() {
                    continue;
                }
                let node = path.join(name);
                ctx(std::fs::File::create(&node), || format!("create /dev/{name}"))?;
                ctx(mount(Some(&host), &node, none, MsFlags::MS_BIND, none), || format!("bind /dev/{name}"))?;
            }
            for (link, target) in [
                ("fd", "/proc/self/fd"),
                ("stdin", "/proc/self/fd/0"),
                ("stdout", "/proc/self/fd/1"),
                ("stderr", "/proc/self/fd/2"),
            ] {
                ctx(std::os::unix::fs::symlink(target, path.join(link)), || format!("symlink /dev/{link}"))?;
            }
            ctx(
                mount(
                    none,
                    &path,
                    none,
                    MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                    none,
                ),
                || "make /dev read-only".into(),
            )
        }
    }
}

/// Mounts a read-only overlay whose only content is the directory `src` at `dst` (an empty directory,
/// which is the overlay's second, empty layer: a lower-only overlay needs two). The layers are named
/// by descriptor (`/proc/self/fd/N`), so the mount's options, which the environment reads in its
/// mountinfo, carry no host path, as a bind's root field (its path in the host's filesystem) would.
/// Fails where overlayfs is missing; the caller binds instead.
fn overlay_read_only(src: &Path, dst: &Path) -> Result<(), String> {
    use nix::fcntl::{OFlag, open};
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mode = nix::sys::stat::Mode::empty();
    let lower = ctx(open(src, flags, mode), || format!("open {}", src.display()))?;
    let empty = ctx(open(dst, flags, mode), || format!("open {}", dst.display()))?;
    let options = format!("lowerdir=/proc/self/fd/{}:/proc/self/fd/{}", lower.as_raw_fd(), empty.as_raw_fd());
    ctx(
        mount(
            Some("overlay"),
            dst,
            Some("overlay"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        ),
        || format!("mount an overlay of {} on {}", src.display(), dst.display()),
    )
}

/// Binds `src` at `dst`, then makes that mount read-only, nosuid and nodev (keeping noexec and the
/// atime flags of the source mount: a remount must not drop them).
fn bind_read_only(src: &Path, dst: &Path) -> Result<(), String> {
    let none: Option<&str> = None;
    ctx(mount(Some(src), dst, none, MsFlags::MS_BIND, none), || format!("bind {}", src.display()))?;
    let mut flags =
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if let Ok(st) = nix::sys::statvfs::statvfs(dst) {
        use nix::sys::statvfs::FsFlags;
        let f = st.flags();
        for (fs_flag, ms_flag) in [
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if f.contains(fs_flag) {
                flags |= ms_flag;
            }
        }
    }
    ctx(mount(none, dst, none, flags, none), || format!("make {} read-only", dst.display()))
}

/// Signals init waits for: children ending, and those it forwards.
const FORWARDED: &[Signal] =
    &[Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2];

extern "C" fn noop(_: libc::c_int) {}

enum Never {}

#[allow(unsafe_code)]
fn supervise(config: &InitConfig, prestarted: Option<Prestarted>, status: &mut StatusWriter) -> Result<Never, String> {
    // Everything the child needs is prepared before fork, though init is single-threaded anyway.
    let exec = Exec::new(&config.program, &config.args, &config.env, &config.cwd, config.creds)?;

    // A pid 1 receives only signals it handles: install no-op handlers, block them, and take them
    // synchronously with sigwait.
    let mut waited = SigSet::empty();
    waited.add(Signal::SIGCHLD);
    let handler = SigAction::new(SigHandler::Handler(noop), SaFlags::SA_RESTART, SigSet::empty());
    for sig in FORWARDED.iter().chain([Signal::SIGCHLD].iter()) {
        waited.add(*sig);
        // SAFETY: `noop` is async-signal-safe (it does nothing).
        ctx(unsafe { sigaction(*sig, &handler) }, || format!("sigaction {sig}"))?;
    }
    ctx(sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), None), || "block signals".into())?;

    let runtime =
        match prestarted.filter(|p| matches!(waitpid(p.pid, Some(WaitPidFlag::WNOHANG)), Ok(WaitStatus::StillAlive))) {
            Some(p) => {
                // SAFETY: the waiting child left the pipe's write end at PRESTART_GO_FD for init alone.
                let mut go = unsafe { std::fs::File::from_raw_fd(PRESTART_GO_FD) };
                // A write that fails means the runtime just died; its exit is reported below.
                let _ = go.write_all(&function_message(config));
                drop(go);
                status.line("runtime prestarted");
                p.pid
            }
            None => {
                if prestarted.is_some() {
                    // The pre-started runtime is gone (its pipe closes with init's copy): start one now.
                    // SAFETY: closing a descriptor nothing else in this process uses.
                    unsafe { libc::close(PRESTART_GO_FD) };
                }
                // SAFETY: init is single-threaded (it never started a thread), so the child may do anything.
                match ctx(unsafe { fork() }, || "fork the runtime".into())? {
                    ForkResult::Child => {
                        let error = exec_runtime(&exec);
                        let _ = writeln!(
                            std::io::stderr(),
                            "nimbus sandbox: cannot start {}: {error}",
                            config.program.display()
                        );
                        // SAFETY: leave the failed child at once.
                        unsafe { libc::_exit(127) }
                    }
                    ForkResult::Parent { child } => child,
                }
            }
        };

    // Init itself: the OOM killer should pick the runtime, never init; then init drops to the
    // function's uid, keeping no capabilities.
    let _ = std::fs::write("/proc/self/oom_score_adj", "-1000");
    drop_privileges(config.creds)?;
    // Init has been undumpable since the zygote made it (`spawn.rs`): /proc/1/environ, ptrace and
    // pidfd_getfd are not the function's. Rootless, /proc/1's files still belong to the function's host
    // uid (the owner of init's memory's user namespace), so it may write init's oom_score_adj; nothing
    // of init's memory or descriptors.
    // A change of uid clears the death signal: arm it again, so the environment ends with the zygote
    // (which ends with Nimbus).
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(format!("PR_SET_PDEATHSIG: {}", std::io::Error::last_os_error()));
    }

    loop {
        let sig = ctx(waited.wait(), || "sigwait".into())?;
        if sig != Signal::SIGCHLD {
            // To every process of the namespace but init.
            let _ = nix::sys::signal::kill(Pid::from_raw(-1), sig);
            continue;
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == runtime => {
                    status.line(&format!("exit {code}"));
                    std::process::exit(0);
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == runtime => {
                    status.line(&format!("signal {}", sig as i32));
                    std::process::exit(0);
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}

fn cstring(bytes: &[u8]) -> Result<CString, String> {
    CString::new(bytes).map_err(|_| format!("{:?} contains a NUL byte", String::from_utf8_lossy(bytes)))
}

/// What a pre-started runtime reads: its working directory, then its environment, NUL-terminated.
fn function_message(config: &InitConfig) -> Vec<u8> {
    let mut message = config.cwd.as_os_str().as_bytes().to_vec();
    message.push(0);
    for (k, v) in &config.env {
        message.extend_from_slice(k.as_bytes());
        message.push(b'=');
        message.extend_from_slice(v.as_bytes());
        message.push(0);
    }
    message
}

fn drop_privileges(creds: Creds) -> Result<(), String> {
    let (uid, gid) = (Uid::from_raw(creds.uid), Gid::from_raw(creds.gid));
    match nix::unistd::setgroups(&[]) {
        Ok(()) => {}
        // Rootless (see `user.rs`): the user namespace denies setgroups(2); the supplementary groups
        // are then Nimbus's own, which it could not drop either.
        Err(nix::errno::Errno::EPERM) if setgroups_denied() => {}
        Err(e) => return Err(format!("setgroups: {e}")),
    }
    ctx(nix::unistd::setresgid(gid, gid, gid), || "setresgid".into())?;
    // From uid 0 to another uid this clears every capability set; in an environment's own user
    // namespace the uid is already the function's and the capabilities its creator got stay, so they
    // are cleared explicitly as well.
    ctx(nix::unistd::setresuid(uid, uid, uid), || "setresuid".into())?;
    clear_capabilities()
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// capset(2) with empty effective, permitted and inheritable sets.
#[allow(unsafe_code)]
fn clear_capabilities() -> Result<(), String> {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: capset reads a version-3 header and two data structs, both alive for the call.
    if unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) } != 0 {
        return Err(format!("capset: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// A runtime process to start, with everything allocated before the fork.
struct Exec {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: PathBuf,
    creds: Creds,
    filter: Option<seccompiler::BpfProgram>,
}

impl Exec {
    fn new(
        program: &Path,
        args: &[OsString],
        env: &[(OsString, OsString)],
        cwd: &Path,
        creds: Creds,
    ) -> Result<Self, String> {
        let program = cstring(program.as_os_str().as_bytes())?;
        let mut argv = vec![program.clone()];
        for a in args {
            argv.push(cstring(a.as_bytes())?);
        }
        let envp = env
            .iter()
            .map(|(k, v)| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = if creds.seccomp { Some(super::seccomp::build().map_err(|e| e.to_string())?) } else { None };
        Ok(Self { program, argv, envp, cwd: cwd.to_owned(), creds, filter })
    }
}

/// In the forked child: becomes the function's process. Returns only on failure.
#[allow(unsafe_code)]
fn exec_runtime(exec: &Exec) -> String {
    // Default dispositions (the Rust runtime ignores SIGPIPE; init installed handlers) and no mask.
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: restoring the default disposition is always sound.
        let _ = unsafe { sigaction(sig, &default) };
    }
    if let Err(e) = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None) {
        return format!("unblock signals: {e}");
    }
    use nix::sys::resource::{Resource, setrlimit};
    if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, exec.creds.nofile, exec.creds.nofile) {
        return format!("setrlimit NOFILE: {e}");
    }
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    // No capability can come back through exec either (no_new_privs blocks setuid/file caps as well).
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments; unknown capability numbers fail with EINVAL, ignored.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
    if let Err(e) = drop_privileges(exec.creds) {
        return e;
    }
    if let Err(e) = nix::unistd::chdir(&exec.cwd) {
        return format!("chdir {}: {e}", exec.cwd.display());
    }
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return format!("no_new_privs: {}", std::io::Error::last_os_error());
    }
    if let Some(filter) = &exec.filter
        && let Err(e) = super::seccomp::install(filter)
    {
        return e.to_string();
    }
    match nix::unistd::execve(&exec.program, &exec.argv, &exec.envp) {
        Ok(never) => match never {},
        Err(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prestarted_runtime_is_told_its_directory_then_its_environment_in_order() {
        let config = InitConfig {
            steps: Vec::new(),
            hostname: "localhost".into(),
            creds: Creds { uid: 993, gid: 990, nofile: 1024, seccomp: true },
            program: "/usr/bin/python3".into(),
            args: Vec::new(),
            env: vec![("A".into(), "1".into()), ("B".into(), "x=y".into()), ("A".into(), "2".into())],
            cwd: "/var/task".into(),
            probe: false,
        };
        assert_eq!(function_message(&config), b"/var/task\0A=1\0B=x=y\0A=2\0".to_vec());
    }
}
