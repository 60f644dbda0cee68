//! Starting environments' inits through a zygote, ahead of demand.
//!
//! Executing the (large) Nimbus binary once per environment and copying the multi-threaded server's
//! page tables cost milliseconds per cold start, and so does joining a cgroup v1 hierarchy (the first
//! migration after a quiet while waits for an RCU grace period: 5-13 ms measured here). So Nimbus
//! starts one helper at start-up, the zygote: the Nimbus binary re-executed as
//! `nimbus __sandbox-zygote`, single-threaded and small. Ahead of demand, Nimbus sends it a *slot*'s
//! descriptors (a control socket, the netns and the cgroups' `cgroup.procs`) over a SEQPACKET socket;
//! the zygote clones a child into new mount, pid, ipc and uts namespaces (with a pidfd) and sends the
//! pid and pidfd back. The child starts a session of its own, joins its cgroups by writing "0" to each
//! `cgroup.procs`, then a new cgroup namespace rooted there, joins the network namespace (rootless, the
//! zygote has put it there already: see `user.rs`), asks to die with the zygote, and waits on its
//! control socket. At launch, Nimbus sends it the environment's stdout, stderr, config memfd and status
//! pipe ([`activate`]); it puts them in place and becomes the environment's init ([`super::init`])
//! without an exec (which closes every other descriptor it inherited, the zygote's among them). The
//! zygote is single-threaded, so its children may run ordinary Rust code.
//!
//! The zygote ignores SIGCHLD (the kernel reaps the inits); Nimbus watches each init's pidfd and learns
//! how its runtime ended from the status pipe. The zygote dies with the thread that spawned it
//! (`PR_SET_PDEATHSIG`), a long-lived one, and its inits die with it.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, sendmsg, socketpair,
};

use super::init::{CONFIG_FD, Prestarted, STATUS_FD};

/// The argument that makes the Nimbus binary run the zygote ([`super::helper_main`]).
pub const ZYGOTE_ARG: &str = "__sandbox-zygote";
/// The zygote's second argument when each environment gets a user namespace of its own (`user.rs`).
const NESTED_ARG: &str = "nested";
const SOCKET_FD: RawFd = 3;
/// At most this many descriptors travel with one request (the control socket, the netns, the cgroups).
const FDS_MAX: usize = 16;

/// What a waiting child is made with.
pub(crate) struct SlotFds {
    pub netns: Option<OwnedFd>,
    pub cgroup_procs: Vec<OwnedFd>,
}

/// What a new waiting child is given to prepare itself with.
pub(crate) struct BaseFds {
    /// The [`super::init::BaseConfig`] memfd.
    pub base: OwnedFd,
    /// The environment's stdout and stderr, in place before its runtime starts (a pre-started one
    /// writes to them from its first line).
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// The descriptors a waiting child gets when it becomes an environment's init.
pub(crate) struct InitFds {
    pub config: OwnedFd,
    pub status: OwnedFd,
}

/// A child waiting, in its namespaces and cgroups, to become an init.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub pid: i32,
    pub pidfd: OwnedFd,
    control: OwnedFd,
}

/// Gives a new waiting child the shared part of the root to build while it waits, and its output.
pub(crate) fn send_base(waiting: &Waiting, fds: BaseFds) -> io::Result<()> {
    let raw = [fds.base.as_raw_fd(), fds.stdout.as_raw_fd(), fds.stderr.as_raw_fd()];
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    sendmsg::<()>(waiting.control.as_raw_fd(), &[IoSlice::new(b"bs")], &cmsgs, MsgFlags::empty(), None)
        .map_err(io::Error::from)?;
    Ok(())
}

/// Hands a waiting child its descriptors: from here on it is the environment's init.
pub(crate) fn activate(waiting: Waiting, fds: InitFds) -> io::Result<(i32, OwnedFd)> {
    let raw = [fds.config.as_raw_fd(), fds.status.as_raw_fd()];
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    sendmsg::<()>(waiting.control.as_raw_fd(), &[IoSlice::new(b"go")], &cmsgs, MsgFlags::empty(), None)
        .map_err(io::Error::from)?;
    Ok((waiting.pid, waiting.pidfd))
}

/// Nimbus's end of the zygote.
pub(crate) struct Spawner {
    exe: std::path::PathBuf,
    nested: bool,
    socket: Mutex<OwnedFd>,
}

impl Spawner {
    /// `nested`: see [`super::user::nested`].
    pub fn start(nimbus_exe: &Path, nested: bool) -> io::Result<Self> {
        Ok(Self { exe: nimbus_exe.to_owned(), nested, socket: Mutex::new(start_zygote(nimbus_exe, nested)?) })
    }

    /// Has the zygote start one waiting child; a zygote that died is started again, once.
    pub fn spawn(&self, fds: SlotFds) -> io::Result<Waiting> {
        let mut socket = self.socket.lock().map_err(|_| io::Error::other("zygote socket lock poisoned"))?;
        match exchange(&socket, &fds) {
            Err(e) if is_gone(&e) => {
                tracing::warn!(error = %e, "the sandbox zygote is gone; starting it again");
                *socket = start_zygote(&self.exe, self.nested)?;
                exchange(&socket, &fds)
            }
            other => other,
        }
    }
}

fn is_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN))
        || e.kind() == io::ErrorKind::UnexpectedEof
}

/// Starts the zygote from a thread that lives as long as the zygote does (its death signal is tied to
/// the thread that created it). Returns Nimbus's end of its socket.
fn start_zygote(nimbus_exe: &Path, nested: bool) -> io::Result<OwnedFd> {
    let (ours, theirs) =
        socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(io::Error::from)?;
    let exe = nimbus_exe.to_owned();
    let (started_tx, started_rx) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
    std::thread::Builder::new().name("nimbus-zygote".into()).spawn(move || {
        let mut command = std::process::Command::new(&exe);
        // Every environment's init is a fork of the zygote, and its /proc/1/cmdline is the zygote's:
        // a name, not the path of the Nimbus binary.
        std::os::unix::process::CommandExt::arg0(&mut command, "nimbus-sandbox");
        command.arg(ZYGOTE_ARG).env_clear().stdin(Stdio::null());
        if nested {
            command.arg(NESTED_ARG);
        }
        let theirs_raw = theirs.as_raw_fd();
        // SAFETY: runs in the forked child before exec: dup2(2) and prctl(2) only, both
        // async-signal-safe, on a descriptor the parent keeps open until spawn returns.
        #[allow(unsafe_code)]
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                if libc::dup2(theirs_raw, SOCKET_FD) < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        match command.spawn() {
            Ok(mut child) => {
                drop(theirs);
                let _ = started_tx.send(Ok(()));
                let status = child.wait();
                tracing::warn!(?status, "the sandbox zygote ended");
            }
            Err(e) => {
                let _ = started_tx.send(Err(e));
            }
        }
    })?;
    started_rx.recv().map_err(|_| io::Error::other("the zygote thread ended"))??;
    Ok(ours)
}

/// One request to the zygote: a waiting child made with `fds`.
fn exchange(socket: &OwnedFd, fds: &SlotFds) -> io::Result<Waiting> {
    let (control, theirs) =
        socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(io::Error::from)?;
    let mut raw: Vec<RawFd> = vec![theirs.as_raw_fd()];
    if let Some(ns) = &fds.netns {
        raw.push(ns.as_raw_fd());
    }
    raw.extend(fds.cgroup_procs.iter().map(AsRawFd::as_raw_fd));
    if raw.len() > FDS_MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many descriptors for the zygote"));
    }
    let header = [u8::from(fds.netns.is_some()), fds.cgroup_procs.len() as u8];
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    sendmsg::<()>(socket.as_raw_fd(), &[IoSlice::new(&header)], &cmsgs, MsgFlags::empty(), None)
        .map_err(io::Error::from)?;
    drop(theirs);
    let mut reply = [0u8; 8];
    let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut reply)];
    let msg = recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut cmsg_space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(io::Error::from)?;
    let mut pidfd = None;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: SCM_RIGHTS installed this descriptor in our table; we own it now.
                #[allow(unsafe_code)]
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                pidfd.get_or_insert(owned);
            }
        }
    }
    if msg.bytes == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the sandbox zygote is gone"));
    }
    let value = i32::from_le_bytes([reply[0], reply[1], reply[2], reply[3]]);
    match pidfd {
        Some(pidfd) if value > 0 => Ok(Waiting { pid: value, pidfd, control }),
        _ => Err(io::Error::from_raw_os_error(if value < 0 { -value } else { libc::EIO })),
    }
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

/// The zygote: serves spawn requests on fd 3 until Nimbus closes its end. Never returns.
#[allow(unsafe_code)]
pub(crate) fn zygote_main() -> ! {
    // SAFETY: close_range(2) with integer arguments: nothing beyond stdio and the socket is ours.
    unsafe { libc::syscall(libc::SYS_close_range, (SOCKET_FD + 1) as u32, u32::MAX, 0u32) };
    // Inits are reaped by the kernel; Nimbus follows them through their pidfds.
    // SAFETY: setting a disposition to SIG_IGN is always sound; PR_SET_NAME copies a C string.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        libc::prctl(libc::PR_SET_NAME, c"nimbus-zygote".as_ptr(), 0, 0, 0);
    }
    let devnull = match std::fs::File::open("/dev/null") {
        Ok(f) => OwnedFd::from(f),
        Err(_) => std::process::exit(1),
    };
    // Nested (rootless), the zygote enters each environment's network namespace for its clone and must
    // come back after; it may enter only namespaces of Nimbus's user namespace, which the host's is not.
    // So it lives in an empty one of its own (it needs no network), kept open to come back to.
    let home_netns = std::env::args_os().nth(2).is_some_and(|a| a == NESTED_ARG).then(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(io::Error::from)
            .and_then(|()| std::fs::File::open("/proc/self/ns/net"))
            .unwrap_or_else(|_| std::process::exit(1))
    });
    loop {
        let mut header = [0u8; 2];
        let mut cmsg_space = nix::cmsg_space!([RawFd; FDS_MAX]);
        let mut iov = [IoSliceMut::new(&mut header)];
        let (bytes, fds) = match recvmsg::<()>(SOCKET_FD, &mut iov, Some(&mut cmsg_space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                let mut fds: Vec<OwnedFd> = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for cmsg in cmsgs {
                        if let ControlMessageOwned::ScmRights(raw) = cmsg {
                            // SAFETY: SCM_RIGHTS installed these descriptors in our table.
                            fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                        }
                    }
                }
                (msg.bytes, fds)
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => std::process::exit(0),
        };
        if bytes == 0 {
            std::process::exit(0); // Nimbus closed its end.
        }
        let reply = match spawn_one(header, &fds, &devnull, home_netns.as_ref()) {
            Ok((pid, pidfd)) => {
                let value = pid.to_le_bytes();
                let raw = [pidfd.as_raw_fd()];
                let cmsgs = [ControlMessage::ScmRights(&raw)];
                sendmsg::<()>(SOCKET_FD, &[IoSlice::new(&value)], &cmsgs, MsgFlags::empty(), None)
            }
            Err(errno) => {
                let value = (-errno).to_le_bytes();
                sendmsg::<()>(SOCKET_FD, &[IoSlice::new(&value)], &[], MsgFlags::empty(), None)
            }
        };
        drop(fds);
        if reply.is_err() {
            std::process::exit(0);
        }
    }
}

/// Clones one waiting child. Returns its pid and pidfd, or an errno.
///
/// `home_netns`, the zygote's own network namespace, is given when environments are nested (rootless,
/// see `user.rs`): the child also gets a user namespace of its own, which owns its other new namespaces;
/// the zygote maps uid 993 and gid 990 in it to its own ids before the child goes on. The child could not
/// join the network namespace from inside it (that namespace belongs to Nimbus's user namespace), so the
/// zygote joins it for the clone and returns to `home_netns` after.
#[allow(unsafe_code)]
fn spawn_one(
    header: [u8; 2],
    fds: &[OwnedFd],
    devnull: &OwnedFd,
    home_netns: Option<&std::fs::File>,
) -> Result<(i32, OwnedFd), i32> {
    let nested = home_netns.is_some();
    let has_netns = header[0] == 1;
    let procs = usize::from(header[1]);
    if fds.len() != 1 + usize::from(has_netns) + procs {
        return Err(libc::EINVAL);
    }
    // Nested, an environment without a netns of its own would share the zygote's.
    if nested && !has_netns {
        return Err(libc::EINVAL);
    }
    let control = fds[0].as_raw_fd();
    let netns = has_netns.then(|| fds[1].as_raw_fd());
    let procs_fds: Vec<RawFd> = fds[1 + usize::from(has_netns)..].iter().map(AsRawFd::as_raw_fd).collect();

    let mut flags =
        libc::CLONE_PIDFD | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    // The child waits on `mapped` until its uid and gid maps are written.
    let mapped = if nested {
        flags |= libc::CLONE_NEWUSER;
        Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e as i32)?)
    } else {
        None
    };
    if let (true, Some(ns)) = (nested, netns) {
        // SAFETY: setns(2) on a descriptor the request handed us; the zygote is single-threaded.
        if unsafe { libc::setns(ns, libc::CLONE_NEWNET) } != 0 {
            return Err(last_errno());
        }
    }
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: flags as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM is fork(2) with namespaces; the zygote is single-threaded, so the
    // child may run any code (no lock can be held by another thread).
    let pid = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    let clone_errno = last_errno();
    if pid == 0 {
        // SAFETY: the child owns copies of every descriptor; plain system calls on them.
        unsafe {
            if let Some((read, write)) = mapped {
                drop(write);
                let mut byte = 0u8;
                if libc::read(read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) != 1 {
                    libc::_exit(120);
                }
            }
            // A session of its own: out of Nimbus's process group (a kill(0, …) inside reaches only the
            // environment) and without Nimbus's controlling terminal (/dev/tty opens nothing).
            if libc::setsid() < 0 {
                libc::_exit(119);
            }
            // Nothing of init is the function's to read or trace, from the start (rootless, init has
            // the function's uid, and no change of uid makes it undumpable).
            if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
                libc::_exit(118);
            }
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
            for fd in &procs_fds {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    libc::_exit(121);
                }
            }
            // The cgroup namespace starts at the environment's own cgroups, joined just now: its
            // /proc/self/cgroup is `/`, and nothing above is named.
            if libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
                libc::_exit(117);
            }
            if !nested
                && let Some(ns) = netns
                && libc::setns(ns, libc::CLONE_NEWNET) != 0
            {
                libc::_exit(122);
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                libc::_exit(124);
            }
            libc::prctl(libc::PR_SET_NAME, c"nimbus-slot".as_ptr(), 0, 0, 0);
        }
        become_init(control, devnull);
    }
    if let Some(home) = home_netns {
        // SAFETY: setns(2) back to the zygote's own namespace, through a descriptor it keeps open.
        if unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            // Every later request joins its own namespace first, but a zygote that cannot come home
            // should not go on: Nimbus starts a new one when this one is gone.
            std::process::exit(1);
        }
    }
    if pid < 0 {
        return Err(clone_errno);
    }
    // SAFETY: CLONE_PIDFD stored a new descriptor for the child in `pidfd`; nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    if let Some((_read, write)) = mapped {
        let written = write_id_maps(pid as i32).and_then(|()| {
            nix::unistd::write(&write, &[1u8]).map(drop).map_err(|e| std::io::Error::from_raw_os_error(e as i32))
        });
        if let Err(e) = written {
            // SAFETY: pidfd_send_signal(2) to the child we just made, through its own pidfd.
            unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), libc::SIGKILL, 0usize, 0u32) };
            return Err(e.raw_os_error().unwrap_or(libc::EIO));
        }
    }
    Ok((pid as i32, pidfd))
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Maps the function's uid and gid in a child's new user namespace to the zygote's own (which are
/// Nimbus's user on the host).
fn write_id_maps(pid: i32) -> std::io::Result<()> {
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    std::fs::write(format!("/proc/{pid}/uid_map"), format!("{} {uid} 1", super::SANDBOX_UID))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), format!("{} {gid} 1", super::SANDBOX_GID))
}

/// Receives one message with `want` descriptors on `control`; a closed socket (the slot was never
/// used) or anything unexpected ends the waiting child.
#[allow(unsafe_code)]
fn receive(control: RawFd, want: usize) -> Vec<OwnedFd> {
    let mut word = [0u8; 2];
    let mut cmsg_space = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut word)];
    let mut got: Vec<OwnedFd> = Vec::new();
    loop {
        match recvmsg::<()>(control, &mut iov, Some(&mut cmsg_space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => {
                if let Ok(cmsgs) = msg.cmsgs() {
                    for cmsg in cmsgs {
                        if let ControlMessageOwned::ScmRights(raw) = cmsg {
                            // SAFETY: SCM_RIGHTS installed these descriptors in our table.
                            got.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                        }
                    }
                }
                if msg.bytes == 0 || got.len() != want {
                    // SAFETY: leaving a child that never became an init.
                    unsafe { libc::_exit(0) };
                }
                return got;
            }
            Err(nix::errno::Errno::EINTR) => continue,
            // SAFETY: as above.
            Err(_) => unsafe { libc::_exit(0) },
        }
    }
}

/// Copies `fd` to the lowest free descriptor from 10 up (close-on-exec), above the fixed numbers
/// (0-5) an init places its descriptors at. Leaves the child when it cannot.
#[allow(unsafe_code)]
fn lift(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` is open in this process for the duration of the call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    match nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)) {
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor nobody else owns.
        Ok(raw) => unsafe { OwnedFd::from_raw_fd(raw) },
        // SAFETY: leaving a child that cannot become an init.
        Err(_) => unsafe { libc::_exit(123) },
    }
}

/// Puts each descriptor at its fixed number (clearing close-on-exec there), consuming them.
#[allow(unsafe_code)]
fn place(fds: Vec<(OwnedFd, RawFd)>) {
    // Lift every source above the targets first, so no dup2 overwrites one still to be used.
    let lifted: Vec<(OwnedFd, RawFd)> = fds.into_iter().map(|(fd, to)| (lift(fd.as_raw_fd()), to)).collect();
    for (from, to) in &lifted {
        // SAFETY: dup2 onto a fixed slot whose previous descriptor, if any, no live OwnedFd names.
        if unsafe { libc::dup2(from.as_raw_fd(), *to) } < 0 {
            // SAFETY: leaving a child that cannot become an init.
            unsafe { libc::_exit(123) };
        }
    }
}

/// In a waiting child: builds the shared part of the root (and starts the runtime early when the
/// slot has one), waits for its environment's descriptors, puts them in place and runs init.
#[allow(unsafe_code)]
fn become_init(control: RawFd, devnull: &OwnedFd) -> ! {
    // The two descriptors kept move out of the way of the fixed numbers first; the copies the zygote
    // left at low numbers are never dropped here, so overwriting them closes nothing anyone owns.
    let control = lift(control);
    let devnull = lift(devnull.as_raw_fd());
    let mut got = receive(control.as_raw_fd(), 3).into_iter();
    let (Some(base_fd), Some(stdout), Some(stderr)) = (got.next(), got.next(), got.next()) else {
        // SAFETY: leaving a child that never became an init.
        unsafe { libc::_exit(123) }
    };
    place(vec![(devnull, 0), (stdout, 1), (stderr, 2)]);
    let mut bytes = Vec::new();
    let base = std::io::Read::read_to_end(&mut std::fs::File::from(base_fd), &mut bytes)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice::<super::init::BaseConfig>(&bytes).map_err(|e| e.to_string()));
    let (root, built) = match base {
        Ok(base) => {
            let built: Result<Option<Prestarted>, String> =
                super::init::build_base(&base).and_then(|()| match &base.prestart {
                    Some(p) => super::init::prestart(&base.root, p).map(Some),
                    None => Ok(None),
                });
            (base.root, built)
        }
        Err(e) => (std::path::PathBuf::new(), Err(format!("read the base config: {e}"))),
    };
    let mut got = receive(control.as_raw_fd(), 2).into_iter();
    let (Some(config), Some(status)) = (got.next(), got.next()) else {
        // SAFETY: as above.
        unsafe { libc::_exit(123) }
    };
    place(vec![(config, CONFIG_FD), (status, STATUS_FD)]);
    // SAFETY: PR_SET_NAME copies a C string.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"nimbus-init".as_ptr(), 0, 0, 0) };
    super::init::init_main(&root, built)
}
