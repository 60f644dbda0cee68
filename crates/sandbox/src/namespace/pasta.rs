//! The outside network of an environment: one `pasta` (from the `passt` package) per network
//! namespace, started when the namespace's slot is made, off the cold start.
//!
//! pasta is a user-mode network: it gives the namespace a tap interface and turns what the namespace
//! sends into ordinary socket calls of its own in the host's namespace (no veth, no NAT rules, no
//! forwarding sysctl: nothing of the host's network configuration changes). The options say what the
//! namespace may reach:
//! - `--tcp-ports/--udp-ports none`: nothing outside is forwarded into the namespace;
//! - `--tcp-ns/--udp-ns none`: nothing of the namespace is forwarded out, so no port of the host's
//!   loopback is reachable as the namespace's own;
//! - `--no-map-gw`: the gateway address is not the host's loopback (pasta's default), so services
//!   bound to the host's 127.0.0.1 stay out of reach; the namespace's 127.0.0.1 is its own;
//! - `--address/--netmask/--gateway`: the namespace gets a link-local address of its own
//!   ([`NS_ADDR`], as Lambda's environments have a 169.254 address) instead of a copy of the host's,
//!   so the machine's own non-loopback addresses are reached like any other host;
//! - `--dns-forward` [`GATEWAY`]: DNS queries to pasta's address go to the host's resolver, even one
//!   on the host's loopback (only then do environments' `resolv.conf` name it; see `resolv_conf`);
//! - `--ipv4-only`: Lambda functions outside a VPC reach the outside over IPv4 (it also saves pasta
//!   about 10 MB per environment).
//!
//! pasta refuses to stay root and becomes `nobody` unless told `--runas 0`; as `nobody` it may not
//! enter a namespace that root made. So it runs as uid 0 with only `CAP_SYS_ADMIN` and
//! `CAP_NET_BIND_SERVICE` left, under its own seccomp filter, in mount, ipc and uts namespaces of its
//! own with an empty read-only root (pasta does all of that itself).
//!
//! Lifetime: pasta runs in the foreground as Nimbus's child, started by one long-lived thread with
//! `PR_SET_PDEATHSIG` = SIGKILL, so it dies with Nimbus however Nimbus ends; an [`Uplink`] kills and
//! reaps it when dropped (the environment's end, or a slot never used). Killing it removes the tap
//! interface, and with it every route out of the namespace.

use std::fs::File;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The namespace's address, its gateway (pasta itself; `--no-map-gw` keeps it from being the host) and
/// the prefix length of the link between them.
pub const NS_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 2);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
const PREFIX_LEN: &str = "30";
/// The name of pasta's interface in the namespace.
pub const NS_IFNAME: &str = "eth0";
/// How long pasta may take to connect a namespace (measured: 25 ms p50, 50 ms at most, on a busy machine).
const CONNECT_TIMEOUT_MS: u64 = 2000;
const CONNECT_POLL_MS: u64 = 1;
/// A TEST-NET-2 address: a UDP socket can be connected to it (no packet is sent) once the namespace
/// has a default route.
const ROUTE_PROBE: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 1), 9));
/// The descriptor number the namespace has in pasta (`--netns /proc/self/fd/3`).
const NETNS_FD: i32 = 3;
/// pasta starts at the lowest priority: a slot is made while another environment's cold start may be
/// running, and pasta's start (~25 ms of CPU, most of it setting up its buffers) must not take a core
/// from it. [`Uplink::serve`] gives it the normal priority when its environment is launched. Only the
/// host's root may raise a priority again, so a rootless Nimbus (see `user.rs`) starts pasta at the
/// normal one.
const PREPARING_NICE: libc::c_int = 19;
const SERVING_NICE: libc::c_int = 0;
/// Start requests waiting for the launcher thread (slot makers block beyond that; there are few).
const REQUESTS_MAX: usize = 4;
/// Of pasta's error output, this much is kept for an error message.
const STDERR_KEPT_BYTES: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum PastaError {
    #[error(
        "pasta is not installed (looked in PATH and {}); install the `passt` package (Debian, Ubuntu: apt-get install passt) for functions to reach the outside network",
        super::PROGRAM_DIRS.join(", ")
    )]
    Missing,
    #[error("start the pasta launcher thread: {source}")]
    StartLauncher { source: io::Error },
    #[error("the pasta launcher thread is gone")]
    LauncherGone,
    #[error("duplicate the network namespace descriptor for pasta: {source}")]
    DuplicateNetns { source: io::Error },
    #[error("make pasta's error pipe: {source}")]
    Pipe { source: io::Error },
    #[error("start {program}: {source}")]
    Spawn { program: PathBuf, source: io::Error },
    #[error("wait for pasta: {source}")]
    Wait { source: io::Error },
    #[error("give pasta the normal priority: {source}")]
    Priority { source: io::Error },
    #[error("pasta ended ({status}) before the namespace was connected: {stderr}")]
    Ended { status: ExitStatus, stderr: String },
    #[error("pasta did not connect the namespace within {CONNECT_TIMEOUT_MS} ms: {stderr}")]
    Timeout { stderr: String },
}

/// Starts pasta processes from one long-lived thread (a child's death signal is tied to the thread
/// that started it, so that thread must live as long as the children may).
pub struct Pasta {
    program: PathBuf,
    requests: mpsc::SyncSender<Request>,
    /// Whether pasta starts at [`PREPARING_NICE`] (see there).
    lowered: bool,
}

struct Request {
    netns: OwnedFd,
    reply: mpsc::SyncSender<Result<Running, PastaError>>,
}

/// A started pasta and the read end of its error output.
struct Running {
    child: Child,
    stderr: File,
}

/// A namespace's connection to the outside: the pasta serving it. Dropping it ends pasta, which takes
/// the namespace's interface and routes with it.
#[derive(Debug)]
pub struct Uplink {
    child: Child,
    lowered: bool,
    /// Kept open: pasta's writes to a closed pipe would fail with SIGPIPE.
    _stderr: File,
}

impl std::fmt::Debug for Pasta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pasta").field("program", &self.program).finish_non_exhaustive()
    }
}

impl Pasta {
    /// Finds pasta and starts the thread that launches it.
    pub fn start() -> Result<Self, PastaError> {
        let program = super::host_program("pasta").ok_or(PastaError::Missing)?;
        let (requests, incoming) = mpsc::sync_channel::<Request>(REQUESTS_MAX);
        let exe = program.clone();
        let lowered = super::user::host_root();
        std::thread::Builder::new()
            .name("nimbus-pasta".into())
            .spawn(move || {
                // Ends when the last `Pasta` is dropped; the death signal then ends every pasta left.
                for request in incoming {
                    let _ = request.reply.send(spawn(&exe, &request.netns, lowered));
                }
            })
            .map_err(|source| PastaError::StartLauncher { source })?;
        Ok(Self { program, requests, lowered })
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Connects `netns`, which must be the namespace the calling thread is in (it waits, there, for the
    /// route pasta configures).
    pub fn connect(&self, netns: &OwnedFd) -> Result<Uplink, PastaError> {
        let netns = netns.try_clone().map_err(|source| PastaError::DuplicateNetns { source })?;
        let (reply, replied) = mpsc::sync_channel(1);
        self.requests.send(Request { netns, reply }).map_err(|_| PastaError::LauncherGone)?;
        let Running { mut child, stderr } = replied.recv().map_err(|_| PastaError::LauncherGone)??;
        let deadline = Instant::now() + Duration::from_millis(CONNECT_TIMEOUT_MS);
        loop {
            if routed() {
                return Ok(Uplink { child, lowered: self.lowered, _stderr: stderr });
            }
            if let Some(status) = child.try_wait().map_err(|source| PastaError::Wait { source })? {
                return Err(PastaError::Ended { status, stderr: said(stderr) });
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PastaError::Timeout { stderr: said(stderr) });
            }
            std::thread::sleep(Duration::from_millis(CONNECT_POLL_MS));
        }
    }
}

impl Uplink {
    /// Gives pasta the normal scheduling priority: its environment is running and its traffic counts.
    pub fn serve(&self) -> Result<(), PastaError> {
        if !self.lowered {
            return Ok(());
        }
        // The child is ours to reap, so its pid names this pasta.
        let pid = self.child.id();
        // SAFETY: setpriority reads only its integer arguments.
        #[allow(unsafe_code)]
        let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, pid, SERVING_NICE) };
        if done != 0 {
            return Err(PastaError::Priority { source: io::Error::last_os_error() });
        }
        Ok(())
    }

    /// Whether pasta still runs (a slot whose pasta died has no way out and is not used).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills pasta now; it is reaped when the uplink is dropped.
    pub fn cut(&mut self) {
        let _ = self.child.kill();
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        // The child is ours to reap, so its pid cannot have been reused before this kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the calling thread's namespace has a route out.
fn routed() -> bool {
    UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).and_then(|s| s.connect(ROUTE_PROBE)).is_ok()
}

/// What pasta wrote before it ended, without the lines about its missing syslog.
fn said(mut stderr: File) -> String {
    let mut text = String::new();
    let _ = (&mut stderr).take(STDERR_KEPT_BYTES).read_to_string(&mut text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("bytes to syslog")).collect();
    if lines.is_empty() { "no message".into() } else { lines.join("; ") }
}

fn args() -> Vec<String> {
    let mut args: Vec<String> = [
        "--foreground",
        "--quiet",
        "--runas",
        "0",
        "--ipv4-only",
        "--config-net",
        "--no-map-gw",
        "--no-netns-quit",
        "--tcp-ports",
        "none",
        "--udp-ports",
        "none",
        "--tcp-ns",
        "none",
        "--udp-ns",
        "none",
    ]
    .map(String::from)
    .to_vec();
    for (flag, value) in [
        ("--address", NS_ADDR.to_string()),
        ("--netmask", PREFIX_LEN.into()),
        ("--gateway", GATEWAY.to_string()),
        ("--dns-forward", GATEWAY.to_string()),
    ] {
        args.extend([flag.to_owned(), value]);
    }
    args.extend(["--ns-ifname".to_owned(), NS_IFNAME.to_owned()]);
    args.extend(["--netns".to_owned(), format!("/proc/self/fd/{NETNS_FD}")]);
    args
}

/// Runs on the launcher thread.
fn spawn(program: &Path, netns: &OwnedFd, lowered: bool) -> Result<Running, PastaError> {
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| PastaError::Pipe { source: e.into() })?;
    // pasta must never block on its error output, which is read only when it fails to start.
    nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
        .map_err(|e| PastaError::Pipe { source: e.into() })?;
    let mut command = Command::new(program);
    command.args(args()).env_clear().stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(write));
    let netns_raw = netns.as_raw_fd();
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: runs in the forked child before exec and calls only async-signal-safe functions
    // (fcntl, dup2, setsid, prctl, setpriority, getppid) on descriptors the parent keeps open until spawn returns.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec set.
            let placed = if netns_raw == NETNS_FD {
                libc::fcntl(NETNS_FD, libc::F_SETFD, 0)
            } else {
                libc::dup2(netns_raw, NETNS_FD)
            };
            if placed < 0 {
                return Err(io::Error::last_os_error());
            }
            // Out of Nimbus's session: a terminal's Ctrl-C is for Nimbus, which ends pasta itself.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if lowered && libc::setpriority(libc::PRIO_PROCESS, 0, PREPARING_NICE) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The launcher thread may have ended before the death signal was armed.
            if libc::getppid() != parent {
                // ESRCH: the parent is gone (a message would allocate, which is not safe here).
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(|source| PastaError::Spawn { program: program.to_owned(), source })?;
    Ok(Running { child, stderr: File::from(read) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasta_forwards_nothing_and_keeps_the_host_loopback_out() {
        let args = args();
        let value = |flag: &str| args.iter().position(|a| a == flag).map(|i| args[i + 1].as_str());
        for flag in ["--tcp-ports", "--udp-ports", "--tcp-ns", "--udp-ns"] {
            assert_eq!(value(flag), Some("none"), "{flag}");
        }
        assert!(args.iter().any(|a| a == "--no-map-gw"));
        assert!(args.iter().any(|a| a == "--foreground"));
        assert_eq!(value("--address"), Some("169.254.1.2"));
        assert_eq!(value("--netns"), Some("/proc/self/fd/3"));
    }
}
