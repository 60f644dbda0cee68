//! Each environment's network namespace: only loopback, up, with two listeners Nimbus created inside
//! it before the environment starts — the Runtime API on 127.0.0.1:9001 and Nimbus's own API on
//! 127.0.0.1:9000. Nimbus serves both from the host side (a socket keeps the namespace it was made
//! in), so a function reaches its own Runtime API and the API at `AWS_ENDPOINT_URL`, and nothing of
//! another environment: 127.0.0.1:9001 in its namespace is its own.
//!
//! Where pasta is installed, the namespace is also connected to the outside network (see
//! [`super::pasta`]): an interface with a link-local address and a default route through pasta.
//! 127.0.0.1 stays the namespace's own, so the two listeners are unchanged and nothing on the host's
//! loopback is reachable.
//!
//! A namespace is made on a short-lived thread (`unshare(CLONE_NEWNET)` affects only the calling
//! thread); the thread keeps nothing, and waits there for pasta's route. Namespaces are made ahead of
//! demand, with the rest of an environment's slot (see `Slot` in the parent module).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::pasta::{Pasta, Uplink};
use crate::SandboxError;

pub const RUNTIME_API_ADDR: SocketAddr =
    SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9001));
pub const API_ADDR: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9000));

/// A ready network namespace.
#[derive(Debug)]
pub struct EnvNet {
    /// `/proc/thread-self/ns/net` of the namespace: the environment's init joins it with setns(2).
    pub netns: OwnedFd,
    pub runtime_api: TcpListener,
    pub api: TcpListener,
    /// The pasta connecting the namespace to the outside, if it is connected.
    pub uplink: Option<Uplink>,
    /// How long making it took, and how much of that was pasta's.
    pub took: Duration,
    pub connect_took: Duration,
}

/// Makes a network namespace with loopback up and the two listeners, connected to the outside
/// through `pasta` when given.
pub fn create(pasta: Option<&Pasta>) -> Result<EnvNet, SandboxError> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("nimbus-netns".into())
            .spawn_scoped(scope, || create_on_this_thread(pasta))
            .map_err(|source| SandboxError::Network { what: "start the netns thread", source })?
            .join()
            .map_err(|_| SandboxError::Network { what: "netns thread", source: io::Error::other("panicked") })?
    })
}

fn create_on_this_thread(pasta: Option<&Pasta>) -> Result<EnvNet, SandboxError> {
    let started = Instant::now();
    let io = |what: &'static str| move |source: io::Error| SandboxError::Network { what, source };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| SandboxError::Network { what: "unshare(CLONE_NEWNET)", source: e.into() })?;
    loopback_up().map_err(io("bring loopback up"))?;
    let netns = OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/net").map_err(io("open the netns"))?);
    let runtime_api = TcpListener::bind(RUNTIME_API_ADDR).map_err(io("bind the Runtime API listener"))?;
    let api = TcpListener::bind(API_ADDR).map_err(io("bind the API listener"))?;
    let connecting = Instant::now();
    let uplink = pasta.map(|p| p.connect(&netns)).transpose()?;
    let connect_took = connecting.elapsed();
    Ok(EnvNet { netns, runtime_api, api, uplink, took: started.elapsed(), connect_took })
}

/// `ip link set lo up`, with the two ioctls it amounts to.
#[allow(unsafe_code)]
fn loopback_up() -> io::Result<()> {
    const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
    const SIOCSIFFLAGS: libc::c_ulong = 0x8914;
    // SAFETY: socket(2) with constant arguments; the result is checked before it is owned.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain data for which all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the flags into `req`, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads `req`, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCSIFFLAGS as _, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
