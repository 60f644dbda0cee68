//! Rootless mode: the namespace tier for a Nimbus that is not root.
//!
//! A process without privileges may still create a user namespace and be root inside it, with every
//! capability over the namespaces that user namespace owns. So an unprivileged `nimbus serve` enters
//! one of its own at start ([`enter_if_unprivileged`], before any thread exists), mapping only its own
//! uid and gid to 0. From then on it makes network namespaces, runs pasta and starts the zygote exactly
//! as a root Nimbus does; the kernel checks file access against its real uid, so it reaches what its
//! user may reach and nothing more.
//!
//! Inside that namespace only uid 0 exists, and functions must run as Lambda's uid 993. So in this mode
//! every environment gets a user namespace of its own too (see `spawn.rs`): 993 and 990 inside map to
//! 0 of Nimbus's namespace, which is Nimbus's user on the host. The environment's mount, pid, ipc, uts
//! and cgroup namespaces belong to that user namespace, so init may build its root there; its network
//! namespace stays Nimbus's (init joins it before the clone), so nothing inside may reconfigure it.
//!
//! What this mode cannot give (the kernel reserves these to the host's root): cgroups, unless the
//! service manager delegated Nimbus a subtree (systemd `Delegate=yes`, or a directory chowned to its
//! user: see `cgroup.rs`, which works under Nimbus's own cgroup); dropping supplementary groups (the
//! namespace's `setgroups` is denied, so run Nimbus as a user without them); a negative
//! `oom_score_adj` for init; and raising a process's priority again (pasta starts at the normal one).
//!
//! Which mode applies is read from `/proc/self/uid_map`, so a Nimbus started as root inside someone
//! else's user namespace (a rootless container) takes the same path.

use std::io;
use std::sync::OnceLock;

/// Why entering a user namespace failed, if it was tried and failed; the tier reports it.
static ENTER_FAILED: OnceLock<String> = OnceLock::new();

/// Enters a user namespace of this process's own when it is not root, mapping its uid and gid to 0.
/// Must run while the process has a single thread (the kernel refuses otherwise); a failure is kept
/// for [`enter_failure`] and leaves the process as it was.
pub fn enter_if_unprivileged() {
    if nix::unistd::geteuid().is_root() {
        return;
    }
    if let Err(e) = enter() {
        let _ = ENTER_FAILED.set(e.to_string());
    }
}

/// Why a non-root Nimbus has no user namespace of its own, if it tried.
pub fn enter_failure() -> Option<&'static str> {
    ENTER_FAILED.get().map(String::as_str)
}

fn enter() -> io::Result<()> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("unshare(CLONE_NEWUSER): {e}")))?;
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), &text)
            .map_err(|e| io::Error::new(e.kind(), format!("write {text:?} to /proc/self/{file}: {e}")))
    };
    // An unprivileged writer of gid_map must give up setgroups(2) first.
    write("setgroups", "deny".into())?;
    write("uid_map", format!("0 {uid} 1"))?;
    write("gid_map", format!("0 {gid} 1"))
}

/// Whether this process is outside the host's initial user namespace, so each environment needs a
/// user namespace of its own to run as uid 993.
pub fn nested() -> bool {
    static NESTED: OnceLock<bool> = OnceLock::new();
    *NESTED.get_or_init(|| std::fs::read_to_string("/proc/self/uid_map").map(|m| !is_initial_map(&m)).unwrap_or(false))
}

/// The initial user namespace maps every id to itself: `0 0 4294967295`, one line.
fn is_initial_map(uid_map: &str) -> bool {
    let lines: Vec<Vec<&str>> = uid_map.lines().map(|l| l.split_whitespace().collect()).collect();
    lines == [vec!["0", "0", "4294967295"]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_identity_map_of_every_id_is_the_hosts() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1000          1\n"));
        assert!(!is_initial_map("         0       1000          1\n         1     100000      65536\n"));
        assert!(!is_initial_map(""));
    }
}
