//! Rootless mode: the namespace tier for a Nimbus that is not root.
//!
//! A process without privileges may still create a user namespace and be root inside it, with every
//! capability over the namespaces that user namespace owns. So an unprivileged `nimbus serve` enters
//! one of its own at start ([`enter_if_unprivileged`], before any thread exists), mapping its own uid
//! and gid to 0. From then on it makes network namespaces, runs pasta and starts the zygote exactly
//! as a root Nimbus does; the kernel checks file access against its real uid, so it reaches what its
//! user may reach and nothing more.
//!
//! Functions must run as Lambda's uid 993, a host user that is not Nimbus's. Where `/etc/subuid` and
//! `/etc/subgid` give Nimbus's user a range (useradd makes one for every user on Debian and Fedora) and
//! `newuidmap`/`newgidmap` are installed (package uidmap), the namespace maps 0 to Nimbus's uid and 1..
//! to the range, as rootless Podman does: 993 inside is a host user of its own, and everything runs as
//! it does for a root Nimbus.
//!
//! Without subordinate ids only uid 0 exists in the namespace, so ([`nested`]) every environment gets a
//! user namespace of its own too (see `spawn.rs`): 993 and 990 inside map to 0 of Nimbus's namespace,
//! which is Nimbus's user on the host. The environment's mount, pid, ipc, uts and cgroup namespaces
//! belong to that user namespace, so init may build its root there; its network namespace stays
//! Nimbus's (the zygote joins it for the clone), so nothing inside may reconfigure it. The function then
//! runs as Nimbus's own user on the host. Its namespaces, seccomp and the read-only mounts keep it from
//! Nimbus's processes and files, but the kernel's per-user limits (processes under RLIMIT_NPROC, inotify
//! instances, epoll watches, pipe pages, message queues) are counted for that one user across Nimbus and
//! every environment, so a function can use up what Nimbus needs. The server says so at start.
//!
//! What this mode cannot give (the kernel reserves these to the host's root): cgroups, unless the
//! service manager delegated Nimbus a subtree (systemd `Delegate=yes`, or a directory chowned to its
//! user: see `cgroup.rs`, which works under Nimbus's own cgroup); dropping supplementary groups (the
//! namespace's `setgroups` is denied without subordinate ids, so run Nimbus as a user without them);
//! a negative `oom_score_adj` for init; and raising a process's priority again (pasta starts at the
//! normal one).
//!
//! A Nimbus started as root in a user namespace that maps 993 and 990 (a rootless container with a
//! range of ids) needs none of this: its environments run as the container's 993, a user of their own.

use std::io;
use std::sync::OnceLock;

/// Why entering a user namespace failed, if it was tried and failed; the tier reports it.
static ENTER_FAILED: OnceLock<String> = OnceLock::new();

/// Enters a user namespace of this process's own when it is not root: with the subordinate ids
/// `/etc/subuid` and `/etc/subgid` give its user (through the setuid `newuidmap`/`newgidmap`), 0 is its
/// own uid and 1.. the range, so functions run as a host user of their own; without them, only its uid
/// and gid are mapped (to 0), and each environment gets a user namespace of its own as well.
/// Must run while the process has a single thread (the kernel refuses otherwise). A failure before the
/// namespace exists is kept for [`enter_failure`] and leaves the process as it was; a failure after
/// (its id maps refused) leaves it unmapped, where nothing works: it ends the process.
pub fn enter_if_unprivileged() {
    if nix::unistd::geteuid().is_root() {
        return;
    }
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let entered = match Subordinate::of(uid) {
        Some(sub) => enter_with_ranges(uid, gid, &sub),
        None => nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(io::Error::from),
    };
    if let Err(e) = entered {
        let _ = ENTER_FAILED.set(format!("unshare(CLONE_NEWUSER): {e}"));
        return;
    }
    // Whatever newuidmap/newgidmap did not map (they may refuse), Nimbus maps to its own ids.
    if let Err(e) = write_own_maps(uid, gid) {
        eprintln!("nimbus: entered a user namespace but cannot map its ids ({e}); start Nimbus with --sandbox process");
        std::process::exit(1);
    }
}

/// The subordinate id ranges of this process's user and the setuid helpers that map them.
struct Subordinate {
    uids: (u32, u32),
    gids: (u32, u32),
    newuidmap: std::path::PathBuf,
    newgidmap: std::path::PathBuf,
}

impl Subordinate {
    /// The ranges (start, count) `/etc/subuid` and `/etc/subgid` give `uid`'s user, if each holds
    /// Lambda's ids (993 and 990 inside, where 1.. is the range) and both helpers are installed.
    fn of(uid: u32) -> Option<Self> {
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten()?.name;
        let owners = [name, uid.to_string()];
        let range = |file: &str, needed: u32| {
            let text = std::fs::read_to_string(file).ok()?;
            subordinate_range(&text, &owners).filter(|(_, count)| *count >= needed)
        };
        Some(Self {
            uids: range("/etc/subuid", super::SANDBOX_UID)?,
            gids: range("/etc/subgid", super::SANDBOX_GID)?,
            newuidmap: super::host_program("newuidmap")?,
            newgidmap: super::host_program("newgidmap")?,
        })
    }
}

/// The first `owner:start:count` line of a subordinate id file whose owner is one of `owners` (the user's
/// name or its number), at most 65536 ids.
fn subordinate_range(text: &str, owners: &[String]) -> Option<(u32, u32)> {
    text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let (owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
        if !owners.iter().any(|o| o == owner) {
            return None;
        }
        Some((start.parse().ok()?, count.parse::<u32>().ok()?.min(65_536)))
    })
}

/// unshare(CLONE_NEWUSER), with a child left outside to run newuidmap and newgidmap on this process
/// (a setuid program does not run as root from inside the new namespace). Their failure is not an
/// error here: the caller maps what is still unmapped.
#[allow(unsafe_code)]
fn enter_with_ranges(uid: u32, gid: u32, sub: &Subordinate) -> io::Result<()> {
    let (go_r, go_w) = nix::unistd::pipe().map_err(io::Error::from)?;
    let parent = std::process::id().to_string();
    // SAFETY: the caller guarantees a single thread, so the child may allocate and spawn; it leaves
    // with _exit.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Child => {
            drop(go_w);
            let mut byte = [0u8; 1];
            let go = nix::unistd::read(&go_r, &mut byte).is_ok_and(|n| n == 1);
            let map = |program: &std::path::Path, own: u32, (start, count): (u32, u32)| {
                std::process::Command::new(program)
                    .args([&parent, "0", &own.to_string(), "1", "1", &start.to_string(), &count.to_string()])
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let mapped = go && map(&sub.newuidmap, uid, sub.uids) && map(&sub.newgidmap, gid, sub.gids);
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(if mapped { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(go_r);
            let unshared = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER);
            if unshared.is_ok() {
                let _ = nix::unistd::write(&go_w, &[1u8]);
            }
            drop(go_w);
            let _ = nix::sys::wait::waitpid(child, None);
            unshared.map_err(io::Error::from)
        }
    }
}

/// Why a non-root Nimbus has no user namespace of its own, if it tried.
pub fn enter_failure() -> Option<&'static str> {
    ENTER_FAILED.get().map(String::as_str)
}

/// Maps this process's uid and gid to 0 in its new user namespace, where no map was written yet.
fn write_own_maps(uid: u32, gid: u32) -> io::Result<()> {
    let unmapped =
        |file: &str| std::fs::read_to_string(format!("/proc/self/{file}")).is_ok_and(|m| m.trim().is_empty());
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), &text)
            .map_err(|e| io::Error::new(e.kind(), format!("write {text:?} to /proc/self/{file}: {e}")))
    };
    if unmapped("uid_map") {
        write("uid_map", format!("0 {uid} 1"))?;
    }
    if unmapped("gid_map") {
        // An unprivileged writer of gid_map must give up setgroups(2) first.
        write("setgroups", "deny".into())?;
        write("gid_map", format!("0 {gid} 1"))?;
    }
    Ok(())
}

/// Whether each environment needs a user namespace of its own to run as uid 993: Nimbus runs in one that
/// does not map 993 and 990 (one it entered without subordinate ids maps only its own ids). Decided in the
/// server; the zygote is told (it is a new process, and it starts with no environment).
pub fn nested() -> bool {
    !maps_function_ids()
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
    fn a_users_subordinate_range_is_found_by_name_or_number_and_capped() {
        let text = "alice:100000:65536\nnimbus:165536:65536\n4242:231072:1000000\n";
        let owners = |a: &str, b: &str| [a.to_owned(), b.to_owned()];
        assert_eq!(subordinate_range(text, &owners("nimbus", "999")), Some((165_536, 65_536)));
        assert_eq!(subordinate_range(text, &owners("nobody", "4242")), Some((231_072, 65_536)));
        assert_eq!(subordinate_range(text, &owners("bob", "1")), None);
        assert_eq!(subordinate_range("broken line\nnimbus:x:1\n", &owners("nimbus", "1")), None);
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
