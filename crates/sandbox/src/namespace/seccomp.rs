//! The seccomp filter every function process runs under: everything is allowed except what a function
//! never needs and what would let it reach past its sandbox (mounts, namespaces, ptrace, kernel
//! modules, kexec, bpf, keyrings, perf, userfaultfd, io_uring, clock setting, file leases, …). Refused calls fail with
//! `EPERM`, the way a Lambda function sees them, rather than killing the process.
//!
//! Two things a deny list cannot express with per-syscall rules are handled by a few hand-written
//! instructions in front of seccompiler's program:
//! - `clone3` passes its flags in memory a filter cannot read, so it answers `ENOSYS` and the C
//!   libraries fall back to `clone`, whose flags are checked (no new namespaces);
//! - x32 system calls (numbers with bit 30 set) would otherwise be a second door to the same calls.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};

/// System calls refused outright.
pub const DENIED: &[(&str, libc::c_long)] = &[
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("open_tree", libc::SYS_open_tree),
    ("move_mount", libc::SYS_move_mount),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("ptrace", libc::SYS_ptrace),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("bpf", libc::SYS_bpf),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("setns", libc::SYS_setns),
    ("unshare", libc::SYS_unshare),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
    ("syslog", libc::SYS_syslog),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("fanotify_init", libc::SYS_fanotify_init),
    ("vhangup", libc::SYS_vhangup),
    ("uselib", libc::SYS_uselib),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
];

/// `clone` flags that would create namespaces.
pub const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("build seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    #[error("install seccomp filter: {0}")]
    Install(#[from] seccompiler::Error),
}

fn target_arch() -> TargetArch {
    #[cfg(target_arch = "aarch64")]
    {
        TargetArch::aarch64
    }
    #[cfg(target_arch = "riscv64")]
    {
        TargetArch::riscv64
    }
    #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
    {
        TargetArch::x86_64
    }
}

/// Builds the filter program.
pub fn build() -> Result<BpfProgram, FilterError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (_, nr) in DENIED {
        rules.insert(*nr, Vec::new());
    }
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|flag| {
            SeccompRule::new(vec![SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(*flag),
                *flag,
            )?])
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    // A lease lets a file's owner stall everyone else's open(2) of it for lease-break-time (45 s). Rootless,
    // the function's host uid owns the code and bootstraps every environment reads.
    rules.insert(
        libc::SYS_fcntl,
        vec![SeccompRule::new(vec![SeccompCondition::new(
            1,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            libc::F_SETLEASE as u64,
        )?])?],
    );
    let filter =
        SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), target_arch())?;
    let body: BpfProgram = filter.try_into()?;

    let errno = |e: i32| 0x0005_0000u32 | (e as u32 & 0xffff); // SECCOMP_RET_ERRNO | data
    let nr_offset = 0; // offsetof(struct seccomp_data, nr)
    let mut program = vec![
        // [0] A = syscall number
        sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: nr_offset },
        // [1] x32 call? → [4]
        sock_filter { code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16, jt: 2, jf: 0, k: X32_SYSCALL_BIT },
        // [2] clone3? → [4]
        sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 1,
            jf: 0,
            k: libc::SYS_clone3 as u32,
        },
        // [3] neither: on to seccompiler's program
        sock_filter { code: (libc::BPF_JMP | libc::BPF_JA) as u16, jt: 0, jf: 0, k: 1 },
        // [4] ENOSYS
        sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: errno(libc::ENOSYS) },
    ];
    program.extend(body);
    Ok(program)
}

/// Installs `program` on the calling thread (setting `no_new_privs`, which seccomp requires).
pub fn install(program: &BpfProgram) -> Result<(), FilterError> {
    seccompiler::apply_filter(program)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_builds_and_starts_with_the_clone3_and_x32_guard() {
        let program = build().unwrap();
        assert!(program.len() > DENIED.len(), "one check per denied call at least");
        assert_eq!(program[2].k, libc::SYS_clone3 as u32);
        assert_eq!(program[4].k & 0xffff, libc::ENOSYS as u32);
        // Every denied number is compared somewhere in the program.
        for (name, nr) in DENIED {
            assert!(
                program
                    .iter()
                    .any(|i| i.code == (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16 && i.k == *nr as u32),
                "{name} is not in the filter"
            );
        }
    }

    /// Installs the filter in a forked child and checks what it refuses there.
    #[test]
    #[allow(unsafe_code)]
    fn the_installed_filter_refuses_escapes_and_allows_ordinary_calls() {
        let program = build().unwrap();
        // SAFETY: the child only makes raw system calls (prctl/seccomp through `install`, which does not
        // allocate, then syscall(2)) and leaves with _exit; it touches no lock another thread could hold.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = (|| {
                if install(&program).is_err() {
                    return 10;
                }
                // SAFETY: plain system calls with valid (null or integer) arguments.
                unsafe {
                    if libc::syscall(libc::SYS_getpid) <= 0 {
                        return 11;
                    }
                    if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWNS) != -1 || errno() != libc::EPERM {
                        return 12;
                    }
                    if libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) != -1 || errno() != libc::ENOSYS {
                        return 13;
                    }
                    let flags = libc::CLONE_NEWUSER as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
                    if libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) != -1 || errno() != libc::EPERM {
                        return 14;
                    }
                    if libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0) != -1 || errno() != libc::EPERM {
                        return 15;
                    }
                    if libc::syscall(libc::SYS_mount, c"none".as_ptr(), c"/".as_ptr(), std::ptr::null::<u8>(), 0, 0)
                        != -1
                        || errno() != libc::EPERM
                    {
                        return 16;
                    }
                    // fcntl itself stays: F_GETFL works, F_SETLEASE does not.
                    if libc::fcntl(0, libc::F_GETFL) == -1 && errno() == libc::EPERM {
                        return 17;
                    }
                    if libc::fcntl(0, libc::F_SETLEASE, libc::F_RDLCK) != -1 || errno() != libc::EPERM {
                        return 18;
                    }
                }
                0
            })();
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "child died: {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "check number that failed");
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }
}
