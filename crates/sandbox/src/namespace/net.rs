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

use super::pasta::{NS_IFNAME, Pasta, Uplink};
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
    refuse_link_local().map_err(io("add the reject route for link-local addresses"))?;
    let netns = OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/net").map_err(io("open the netns"))?);
    let runtime_api = TcpListener::bind(RUNTIME_API_ADDR).map_err(io("bind the Runtime API listener"))?;
    let api = TcpListener::bind(API_ADDR).map_err(io("bind the API listener"))?;
    let connecting = Instant::now();
    let uplink = pasta.map(|p| p.connect(&netns)).transpose()?;
    let connect_took = connecting.elapsed();
    Ok(EnvNet { netns, runtime_api, api, uplink, took: started.elapsed(), connect_took })
}

/// Takes a connected namespace off the outside network before an environment that may not reach it
/// starts: removes the address of pasta's interface, and with it every route but loopback's (a connect
/// out then fails with ENETUNREACH), then kills pasta. Removing the address takes well under a
/// millisecond; reaping pasta does not (the kernel tears its interface down over RCU grace periods,
/// 10-60 ms measured), so the killed pasta is reaped later, with the environment.
pub fn disconnect(netns: &OwnedFd, uplink: &mut Uplink) -> Result<(), SandboxError> {
    let io = |what: &'static str| move |source: io::Error| SandboxError::Network { what, source };
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("nimbus-netns".into())
            .spawn_scoped(scope, || {
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| io("setns(CLONE_NEWNET)")(e.into()))?;
                clear_address(NS_IFNAME).map_err(io("remove the address of pasta's interface"))
            })
            .map_err(io("start the netns thread"))?
            .join()
            .map_err(|_| io("netns thread")(io::Error::other("panicked")))?
    })?;
    uplink.cut();
    Ok(())
}

/// `ip link set lo up`, with the two ioctls it amounts to.
#[allow(unsafe_code)]
fn loopback_up() -> io::Result<()> {
    const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
    const SIOCSIFFLAGS: libc::c_ulong = 0x8914;
    let sock = inet_socket()?;
    let mut req = ifreq(b"lo")?;
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

/// `route add -net 169.254.0.0/16 reject`: a cloud host's instance metadata service (169.254.169.254,
/// which hands out the host's own credentials) and every other link-local address stay out of reach
/// through pasta, which would otherwise connect to them from the host. pasta's own /30 link is more
/// specific, so its gateway (DNS) still answers. The function, without CAP_NET_ADMIN in a namespace
/// owned by the host's user namespace, cannot remove the route.
#[allow(unsafe_code)]
fn refuse_link_local() -> io::Result<()> {
    let sock = inet_socket()?;
    // SAFETY: rtentry is plain data (a null rt_dev means "no device") for which all-zero is valid.
    let mut route: libc::rtentry = unsafe { std::mem::zeroed() };
    route.rt_dst = sockaddr(std::net::Ipv4Addr::new(169, 254, 0, 0));
    route.rt_genmask = sockaddr(std::net::Ipv4Addr::new(255, 255, 0, 0));
    route.rt_flags = libc::RTF_UP | libc::RTF_REJECT;
    // SAFETY: SIOCADDRT reads `route`, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCADDRT as _, &route) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An IPv4 address as the `sockaddr` the route ioctls take.
#[allow(unsafe_code)]
fn sockaddr(ip: std::net::Ipv4Addr) -> libc::sockaddr {
    // SAFETY: sockaddr_in is plain data for which all-zero is a valid value.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_addr.s_addr = u32::from(ip).to_be();
    // SAFETY: both are 16 bytes of plain data (asserted at compile time below), and a sockaddr_in is how
    // an AF_INET sockaddr is laid out.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(addr) }
}

/// `ifconfig NAME 0.0.0.0`: setting the address 0.0.0.0 deletes the interface's IPv4 address.
#[allow(unsafe_code)]
fn clear_address(name: &str) -> io::Result<()> {
    const SIOCSIFADDR: libc::c_ulong = 0x8916;
    let sock = inet_socket()?;
    let mut req = ifreq(name.as_bytes())?;
    // SAFETY: sockaddr_in is plain data for which all-zero is a valid value (0.0.0.0, port 0).
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    // SAFETY: the union member is a sockaddr, the same size as a sockaddr_in (16 bytes, asserted at
    // compile time below); both are plain data.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (&raw const addr).cast::<u8>(),
            (&raw mut req.ifr_ifru.ifru_addr).cast::<u8>(),
            std::mem::size_of::<libc::sockaddr_in>(),
        );
    }
    // SAFETY: SIOCSIFADDR reads `req`, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCSIFADDR as _, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

const _: () = assert!(std::mem::size_of::<libc::sockaddr_in>() == std::mem::size_of::<libc::sockaddr>());

#[allow(unsafe_code)]
fn inet_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the result is checked before it is owned.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// An ifreq naming interface `name` (shorter than IFNAMSIZ), everything else zero.
#[allow(unsafe_code)]
fn ifreq(name: &[u8]) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain data for which all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "interface name too long"));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}
