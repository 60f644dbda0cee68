//! Starting an environment's init with clone3(2): new mount, pid, ipc, uts and cgroup namespaces and a
//! pidfd in one call. Between clone and exec the child only makes raw system calls (it is a copy of a
//! multi-threaded process): it joins its cgroups by writing "0" to each `cgroup.procs` Nimbus opened
//! for it (so everything it does from the first instruction on is charged and limited there), joins its
//! network namespace, puts its descriptors in place, asks to be killed if Nimbus dies, and executes the
//! Nimbus binary as `__sandbox-init`.
//!
//! All clones happen on one long-lived thread: `PR_SET_PDEATHSIG` fires when the *thread* that created
//! the process exits, so a short-lived (blocking-pool) thread would take its environments with it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;

use super::init::{CONFIG_FD, INIT_ARG, STATUS_FD};

/// The descriptors a new init gets; all are duplicated into place in the child.
pub(crate) struct InitFds {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub config: OwnedFd,
    pub status: OwnedFd,
    pub netns: Option<OwnedFd>,
    pub cgroup_procs: Vec<OwnedFd>,
}

pub(crate) struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

type Job = (InitFds, mpsc::SyncSender<io::Result<Spawned>>);

/// The long-lived thread all inits are cloned from.
pub(crate) struct Spawner {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Spawner {
    pub fn start(init_exe: &Path) -> io::Result<Self> {
        let exe = CString::new(init_exe.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "init path contains NUL"))?;
        let devnull = OwnedFd::from(std::fs::File::open("/dev/null")?);
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new().name("nimbus-spawner".into()).spawn(move || {
            let argv0 = c"nimbus-sandbox-init".to_owned();
            let arg1 = CString::new(INIT_ARG).unwrap_or_default();
            for (fds, reply) in rx {
                let result = clone_init(&exe, &argv0, &arg1, &devnull, fds);
                let _ = reply.send(result);
            }
        })?;
        Ok(Self { jobs: Mutex::new(tx) })
    }

    pub fn spawn(&self, fds: InitFds) -> io::Result<Spawned> {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        self.jobs
            .lock()
            .map_err(|_| io::Error::other("spawner lock poisoned"))?
            .send((fds, reply_tx))
            .map_err(|_| io::Error::other("the spawner thread is gone"))?;
        reply_rx.recv().map_err(|_| io::Error::other("the spawner thread is gone"))?
    }
}

/// Moves `fd` above the descriptors the child fills in (0–4), so that no dup2 there overwrites a
/// source descriptor before it is used.
fn high(fd: &OwnedFd) -> io::Result<OwnedFd> {
    let raw = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)).map_err(io::Error::from)?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    #[allow(unsafe_code)]
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// struct clone_args of clone3(2), as of Linux 5.7.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

#[allow(unsafe_code)]
fn clone_init(exe: &CString, argv0: &CString, arg1: &CString, devnull: &OwnedFd, fds: InitFds) -> io::Result<Spawned> {
    let stdin = high(devnull)?;
    let stdout = high(&fds.stdout)?;
    let stderr = high(&fds.stderr)?;
    let config = high(&fds.config)?;
    let status = high(&fds.status)?;
    let netns = fds.netns.as_ref().map(high).transpose()?;
    let procs: Vec<OwnedFd> = fds.cgroup_procs.iter().map(high).collect::<io::Result<_>>()?;
    let procs_raw: Vec<RawFd> = procs.iter().map(AsRawFd::as_raw_fd).collect();
    let moves: [(RawFd, RawFd); 5] = [
        (stdin.as_raw_fd(), 0),
        (stdout.as_raw_fd(), 1),
        (stderr.as_raw_fd(), 2),
        (config.as_raw_fd(), CONFIG_FD),
        (status.as_raw_fd(), STATUS_FD),
    ];
    let netns_raw = netns.as_ref().map(AsRawFd::as_raw_fd);
    let argv: [*const libc::c_char; 3] = [argv0.as_ptr(), arg1.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];

    // No CLONE_NEWUSER: the tier runs as root (see the module docs of `namespace`).
    let flags = libc::CLONE_PIDFD
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWCGROUP;
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: flags as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM gives the child a copy of this thread's memory, like fork. The
    // child branch below makes only async-signal-safe raw system calls on memory prepared above and
    // leaves through execve or _exit, never returning into Rust code that could touch locks held by
    // other threads of the parent.
    let pid = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see above: raw system calls only, then execve or _exit.
        unsafe {
            for fd in &procs_raw {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    libc::_exit(121);
                }
            }
            if let Some(ns) = netns_raw
                && libc::setns(ns, libc::CLONE_NEWNET) != 0
            {
                libc::_exit(122);
            }
            for (from, to) in moves {
                if libc::dup2(from, to) < 0 {
                    libc::_exit(123);
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                libc::_exit(124);
            }
            libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(126);
        }
    }
    // SAFETY: CLONE_PIDFD stored a new descriptor for the child in `pidfd`; nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Spawned { pid: pid as i32, pidfd })
}
