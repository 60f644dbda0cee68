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
//! ([`nested`]) every environment gets a user namespace of its own too (see `spawn.rs`): 993 and 990
//! inside map to 0 of Nimbus's namespace, which is Nimbus's user on the host. The environment's mount,
//! pid, ipc, uts and cgroup namespaces belong to that user namespace, so init may build its root there;
//! its network namespace stays Nimbus's (the zygote joins it for the clone), so nothing inside may
//! reconfigure it.
//!
//! The function therefore runs as Nimbus's own user on the host. Its namespaces, seccomp and the
//! read-only mounts keep it from Nimbus's processes and files, but the kernel's per-user limits (processes
//! under RLIMIT_NPROC, inotify instances, epoll watches, pipe pages, message queues) are counted for
//! that one user across Nimbus and every environment, so a function can use up what Nimbus needs. The
//! server says so at start; subordinate ids (`newuidmap`) would give functions a user of their own.
//!
//! What this mode cannot give (the kernel reserves these to the host's root): cgroups, unless the
//! service manager delegated Nimbus a subtree (systemd `Delegate=yes`, or a directory chowned to its
//! user: see `cgroup.rs`, which works under Nimbus's own cgroup); dropping supplementary groups (the
//! namespace's `setgroups` is denied, so run Nimbus as a user without them); a negative
//! `oom_score_adj` for init; and raising a process's priority again (pasta starts at the normal one).
//!
//! A Nimbus started as root in a user namespace that maps 993 and 990 (a rootless container with a
//! range of ids) needs none of this: its environments run as the container's 993, a user of their own.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why entering a user namespace failed, if it was tried and failed; the tier reports it.
static ENTER_FAILED: OnceLock<String> = OnceLock::new();
/// Whether this process entered a user namespace of its own (see [`enter_if_unprivileged`]).
static ENTERED: AtomicBool = AtomicBool::new(false);

/// Enters a user namespace of this process's own when it is not root, mapping its uid and gid to 0.
/// Must run while the process has a single thread (the kernel refuses otherwise). A failure before the
/// namespace exists is kept for [`enter_failure`] and leaves the process as it was; a failure after
/// (its id maps refused) leaves it unmapped, where nothing works: it ends the process.
pub fn enter_if_unprivileged() {
    if nix::unistd::geteuid().is_root() {
        return;
    }
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
        let _ = ENTER_FAILED.set(format!("unshare(CLONE_NEWUSER): {e}"));
        return;
    }
    if let Err(e) = write_own_maps(uid, gid) {
        eprintln!("nimbus: entered a user namespace but cannot map its ids ({e}); start Nimbus with --sandbox process");
        std::process::exit(1);
    }
    ENTERED.store(true, Ordering::Relaxed);
}

/// Why a non-root Nimbus has no user namespace of its own, if it tried.
pub fn enter_failure() -> Option<&'static str> {
    ENTER_FAILED.get().map(String::as_str)
}

fn write_own_maps(uid: u32, gid: u32) -> io::Result<()> {
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), &text)
            .map_err(|e| io::Error::new(e.kind(), format!("write {text:?} to /proc/self/{file}: {e}")))
    };
    // An unprivileged writer of gid_map must give up setgroups(2) first.
    write("setgroups", "deny".into())?;
    write("uid_map", format!("0 {uid} 1"))?;
    write("gid_map", format!("0 {gid} 1"))
}

/// Whether each environment needs a user namespace of its own to run as uid 993: Nimbus entered one at
/// start (only its own ids exist there), or runs in one that does not map 993 and 990. Decided in the
/// server; the zygote is told (it is a new process, and it starts with no environment).
pub fn nested() -> bool {
    ENTERED.load(Ordering::Relaxed) || !maps_function_ids()
}

fn maps_function_ids() -> bool {
    let read = |file: &str| std::fs::read_to_string(format!("/proc/self/{file}")).unwrap_or_default();
    maps(&read("uid_map"), super::SANDBOX_UID) && maps(&read("gid_map"), super::SANDBOX_GID)
}

/// Whether `id` lies in one of a map's ranges (`inside outside count` per line).
fn maps(map: &str, id: u32) -> bool {
    map.lines().any(|line| {
        let n: Vec<u64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        matches!(n[..], [inside, _, count] if (inside..inside + count).contains(&u64::from(id)))
    })
}

/// Whether this is the host's root: root in the initial user namespace, which maps every id to itself.
/// Only it may raise a process's priority again, for one.
pub fn host_root() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    nix::unistd::geteuid().is_root() && is_initial_map(&map)
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

    #[test]
    fn the_function_ids_are_mapped_only_inside_a_range() {
        assert!(maps("         0          0 4294967295\n", 993));
        assert!(maps("         0     100000      65536\n", 993), "a rootless container's range");
        assert!(!maps("         0       1000          1\n", 993), "Nimbus's own namespace: only 0");
        assert!(maps("         0       1000          1\n       993     200000          1\n", 993));
        assert!(!maps("       994     200000         10\n", 993));
        assert!(!maps("", 993));
    }
}
