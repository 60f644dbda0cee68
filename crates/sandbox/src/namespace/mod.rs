//! The `namespace` tier: each environment is a tree of processes in its own mount, pid, ipc, uts,
//! cgroup and network namespaces, under its own cgroups, in a root built from read-only bind mounts.
//!
//! ```text
//! Nimbus ──(slot fds)──► zygote `nimbus __sandbox-zygote` ──clone3(NEWNS|NEWPID|NEWIPC|NEWUTS[|NEWUSER])──►
//!   │ serves 127.0.0.1:9001 (Runtime API)           waiting child: own session, joins the env's cgroups,
//!   │ and 127.0.0.1:9000 (API) inside the           a new cgroup ns and the netns, builds the shared root
//!   │ env's netns; sets limits; freezes              └─(at launch) becomes init, pid 1: the env's own
//!                                                      mounts, pivot_root, drops to uid 993
//!                                                      └─fork─► runtime: no caps, no_new_privs, seccomp,
//!                                                               rlimits, exec
//! ```
//!
//! What an environment sees: `/usr`, `/lib*`, `/bin`, `/sbin` of the host (read-only; merged-/usr
//! symlinks kept as symlinks), the interpreters' prefixes the launch spec lists, `/var/task` (the code),
//! `/var/runtime` (Nimbus's bootstraps), an empty `/opt`, a `/tmp` of `EphemeralStorage` MB, fresh
//! `/proc`, a `/dev` with null, zero, full, random, urandom and tty, and an `/etc` with generated
//! passwd, group, hosts, nsswitch.conf and resolv.conf plus the host's certificates and loader cache.
//! Nothing of the data directory, other functions or the host's home directories.
//!
//! Limits: memory = `MemorySize` (no swap), pids 1024 (and per function and for all environments
//! together, see [`cgroup::Budget`]), CPU in proportion to memory (1769 MB = 1 vCPU, capped by the
//! host) once init is done (init runs unthrottled), freezer between invocations, `RLIMIT_NOFILE` 1024.
//!
//! What it sees of the host is what Lambda shows: a guest kernel's `/proc/cmdline`, a `/proc/meminfo` of
//! its own memory, no host path in its mountinfo (overlays, see `init.rs`), and host paths under `/tmp`
//! at [`HOST_TMP_VIEW`] instead, so its `/tmp` starts empty.
//!
//! `/tmp` is an ext4 filesystem on a loop device backed by a sparse image in `<data>/sandbox/tmp`
//! (`tmpdisk.rs`): full at its size (ENOSPC), and what a function keeps there is page cache that can be
//! written back and reclaimed, so it does not count toward its memory the way a tmpfs's pages do (a
//! 128 MB function can keep 300 MB there, as on Lambda). Each slot's disk is made with the slot at
//! `SLOT_TMP_MB` (512); another size is a spare made after the last launch of that size, or made at
//! launch. Where disks cannot be made (no loop devices, no
//! `mkfs.ext4`, not root; said once at start) `/tmp` is a tmpfs, whose pages do count toward memory.
//!
//! Environments are made ahead of demand as *slots* (see `Slot`); a slot of a [`Prestart`] kind also
//! has the runtime (a Python or Node interpreter with its bootstrap) already running in it, waiting for
//! its function (see `init.rs`).
//!
//! The tier runs as root, or rootless: an unprivileged Nimbus enters a user namespace of its own at
//! start and gives each environment another (see [`user`]). Where namespaces or mounts are refused,
//! [`NamespaceSandbox::probe`] fails and the server falls back to the process tier.
//!
//! Network: each environment's namespace has its own loopback with the Runtime API and Nimbus's API,
//! and, where `pasta` is installed, an interface to the outside network through a pasta of its own
//! ([`pasta`]), as Lambda functions reach the internet. [`crate::Egress::LoopbackOnly`] disconnects it
//! before the environment starts. Without pasta, environments reach loopback only (said once at start).

pub mod cgroup;
mod init;
pub mod net;
pub mod pasta;
pub mod seccomp;
mod spawn;
mod tmpdisk;
pub mod user;

use std::ffi::OsString;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::unix::pipe;

use init::{BaseConfig, Creds, InitConfig, PrestartConfig, Step};

/// The first argument that makes the Nimbus binary run the sandbox's helper (the zygote that starts
/// every environment's init); `main` must hand it to [`helper_main`] before doing anything else.
pub const HELPER_ARG: &str = spawn::ZYGOTE_ARG;

/// Runs the sandbox's helper process. Never returns.
pub fn helper_main() -> ! {
    spawn::zygote_main()
}

use crate::{
    Egress, ExitDescription, Instance, LaunchSpec, Network, PathView, Prepared, Prestart, Sandbox, SandboxError,
};

/// Lambda's function user: `sbx_user1051`, uid 993, gid 990.
pub const SANDBOX_UID: u32 = 993;
pub const SANDBOX_GID: u32 = 990;
const SANDBOX_USER: &str = "sbx_user1051";
/// Lambda's limits on open files and processes/threads per environment.
pub const NOFILE: u64 = 1024;
pub const PIDS_MAX: u32 = 1024;
pub const TASK_ROOT: &str = "/var/task";
pub const RUNTIME_DIR: &str = "/var/runtime";
/// Environments kept ready ahead of demand (see [`Slot`]), per kind: plain, and each kind of
/// pre-started runtime.
const SLOTS_READY: usize = 2;
/// How long a refill waits after a slot was taken while others are still ready (see `refill`): about
/// the time a launch spends in its own mounts and pivot_root on a busy machine.
const REFILL_DELAY_MS: u64 = 30;
/// Kinds of pre-started runtimes kept (each has its own slots); more kinds get plain slots.
const PRESTART_KINDS_MAX: usize = 4;
/// The size of every slot's /tmp, made ahead of demand: the most common size (Lambda's default
/// `EphemeralStorage`); an environment of another size gets its /tmp made (disk) or resized (tmpfs) at
/// launch.
const SLOT_TMP_MB: u32 = 512;

/// Where the host programs the tier runs (pasta, mkfs.ext4, newuidmap) are looked for after `PATH`: a
/// service manager or cron may give Nimbus a short one, without the sbin directories.
pub(crate) const PROGRAM_DIRS: &[&str] = &["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"];

/// The host program `name`, from `PATH` or [`PROGRAM_DIRS`].
pub(crate) fn host_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(PROGRAM_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Host directories every environment sees read-only (those that exist; symlinks stay symlinks).
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/// Files of the host's /etc that name resolution, TLS and the dynamic loader read.
const ETC_SHARED: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/crypto-policies",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/protocols",
    "/etc/services",
    "/etc/mime.types",
    "/etc/host.conf",
    "/etc/gai.conf",
];

pub struct Options {
    /// The Nimbus binary; it must run [`helper_main`] when its first argument is [`HELPER_ARG`].
    pub init_exe: PathBuf,
    /// Nimbus's data directory: never visible inside environments; the tier keeps its state there.
    pub data_dir: PathBuf,
}

pub struct NamespaceSandbox {
    data_dir: PathBuf,
    /// Slots whose init starts the runtime at launch.
    slots: Arc<SlotPool>,
    /// Slots with a runtime already started, one pool per kind, made on the first launch of the kind.
    prestarted: std::sync::Mutex<Vec<(Prestart, Arc<SlotPool>)>>,
    host_cpus: u32,
}

/// An environment made ahead of demand: its network namespace with the two listeners, its cgroups, and
/// a child of the zygote already in both (and in its own namespaces), waiting to become its init. The
/// kernel work with variable latency (netns creation, cgroup v1 migration) is off the cold start.
#[derive(Debug)]
pub(crate) struct Slot {
    net: net::EnvNet,
    cgroup: Option<Arc<cgroup::EnvCgroup>>,
    waiting: spawn::Waiting,
    /// The read ends of the environment's stdout and stderr (the child holds the write ends).
    output: (OwnedFd, OwnedFd),
    /// The kind of runtime the child started ahead, if any.
    prestart: Option<Prestart>,
    /// The disk the child mounts as /tmp ([`SLOT_TMP_MB`]); `None`: a tmpfs /tmp (see `tmp_steps`).
    tmp: Option<tmpdisk::TmpDisk>,
    took: Duration,
}

struct SlotMaker {
    cgroups: Option<cgroup::Cgroups>,
    spawner: spawn::Spawner,
    /// Connects slots to the outside network; `None` where pasta is missing or does not work.
    pasta: Option<pasta::Pasta>,
    /// Makes disk-backed /tmps; `None`: environments get a tmpfs /tmp (said at start).
    disks: Option<Arc<tmpdisk::TmpDisks>>,
    /// Disks of other sizes made ahead (see [`tmpdisk::Spares`]); `None` with `disks`.
    spares: Option<tmpdisk::Spares>,
    /// A disk could not be made for the last slot (said once, until one can again).
    disk_failing: AtomicBool,
    next: AtomicU64,
}

impl SlotMaker {
    /// A slot whose waiting child builds `base` (the root every environment shares, and the runtime
    /// of `prestart`'s kind if it has one) before it is needed.
    fn make(&self, base: &BaseConfig, prestart: Option<&Prestart>) -> Result<Slot, SandboxError> {
        let started = Instant::now();
        let net = net::create(self.pasta.as_ref())?;
        let name = format!("slot-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let cgroup = match &self.cgroups {
            Some(c) => Some(Arc::new(
                c.create(&name, &cgroup::Limits { pids: PIDS_MAX })
                    .map_err(|source| SandboxError::Cgroup { source })?,
            )),
            None => None,
        };
        let tmp = self.disk(&name, SLOT_TMP_MB);
        let slot_base = match &tmp {
            Some(disk) => with_disk(base, disk),
            None => base.clone(),
        };
        let made = (|| {
            let cgroup_procs = match &cgroup {
                Some(c) => c.procs_files().map_err(|source| SandboxError::Cgroup { source })?,
                None => Vec::new(),
            };
            let netns = net.netns.try_clone().map_err(|source| SandboxError::Network { what: "netns", source })?;
            let waiting = self
                .spawner
                .spawn(spawn::SlotFds { netns: Some(netns), cgroup_procs })
                .map_err(|source| SandboxError::Namespace { what: clone_what(), source: explain_clone(source) })?;
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let fds = spawn::BaseFds { base: config_memfd(&slot_base)?, stdout: out_w, stderr: err_w };
            spawn::send_base(&waiting, fds)
                .map_err(|source| SandboxError::Namespace { what: "hand a waiting init its base", source })?;
            Ok((waiting, (out_r, err_r)))
        })();
        match made {
            Ok((waiting, output)) => {
                tracing::debug!(
                    slot_ms = ms(started.elapsed()),
                    netns_ms = ms(net.took - net.connect_took),
                    pasta_ms = ms(net.connect_took),
                    "environment slot made"
                );
                Ok(Slot { net, cgroup, waiting, output, prestart: prestart.cloned(), tmp, took: started.elapsed() })
            }
            Err(e) => {
                if let Some(c) = &cgroup {
                    c.remove();
                }
                Err(e)
            }
        }
    }
}

/// What the zygote's clone of a slot is called in errors.
fn clone_what() -> &'static str {
    if user::nested() {
        "clone an environment into new namespaces, a user namespace among them (rootless)"
    } else {
        "clone an environment into new namespaces"
    }
}

/// clone3's ENOSPC means a namespace limit, not a disk: say which.
fn explain_clone(e: std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => std::io::Error::new(
            e.kind(),
            "ENOSPC: a limit on namespaces is reached or 0 (/proc/sys/user/max_user_namespaces and friends)",
        ),
        _ => e,
    }
}

impl SlotMaker {
    /// A disk for a /tmp of `size_mb`, or `None` for a tmpfs: disks are off, or making one failed (said
    /// once until one is made again; a full data disk or exhausted loop devices need not stop launches).
    fn disk(&self, name: &str, size_mb: u32) -> Option<tmpdisk::TmpDisk> {
        match self.disks.as_ref()?.make(name, size_mb) {
            Ok(disk) => {
                if self.disk_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("/tmp disks are made again");
                }
                Some(disk)
            }
            Err(e) => {
                if !self.disk_failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, size_mb, "cannot make a /tmp disk: environments get a tmpfs /tmp, which counts toward their memory, until one can be made");
                }
                None
            }
        }
    }
}

/// `base` for a slot whose /tmp is `disk`: mounted while the slot waits, where a tmpfs /tmp would be
/// (a pre-started runtime's comes before its read-only paths, so that one under the host's /tmp shows
/// on top of it; a plain slot's is the last of the base, before the launch's read-only paths).
fn with_disk(base: &BaseConfig, disk: &tmpdisk::TmpDisk) -> BaseConfig {
    let mut base = base.clone();
    let step = disk_step(disk);
    match &mut base.prestart {
        Some(p) => {
            match p.steps.iter_mut().find(|s| matches!(s, Step::Tmpfs { dst, .. } if dst == Path::new("/tmp"))) {
                Some(tmpfs) => *tmpfs = step,
                None => p.steps.insert(0, step),
            }
        }
        None => base.steps.push(step),
    }
    base
}

/// Keeps a few slots of one kind ready; a background thread refills it.
struct SlotPool {
    maker: Arc<SlotMaker>,
    base: BaseConfig,
    prestart: Option<Prestart>,
    ready: std::sync::Mutex<Vec<Slot>>,
    wanted: std::sync::Condvar,
    target: usize,
}

impl SlotPool {
    fn start(maker: Arc<SlotMaker>, base: BaseConfig, prestart: Option<Prestart>, target: usize) -> Arc<Self> {
        let pool = Arc::new(Self {
            maker,
            base,
            prestart,
            ready: std::sync::Mutex::new(Vec::new()),
            wanted: std::sync::Condvar::new(),
            target,
        });
        let weak = Arc::downgrade(&pool);
        let spawned = std::thread::Builder::new().name("nimbus-slots".into()).spawn(move || refill(&weak));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the environment slot pool; environments are made on demand");
        }
        pool
    }

    /// A ready slot, or one made now.
    fn take(&self) -> Result<Slot, SandboxError> {
        let taken = self.ready.lock().map(|mut r| r.pop()).unwrap_or(None);
        self.wanted.notify_one();
        if let Some(mut slot) = taken
            && slot_alive(&mut slot)
        {
            return Ok(slot);
        }
        self.make()
    }

    fn make(&self) -> Result<Slot, SandboxError> {
        self.maker.make(&self.base, self.prestart.as_ref())
    }

    /// Drops the ready slots (their children end when their control sockets close).
    fn drain(&self) {
        if let Ok(mut ready) = self.ready.lock() {
            ready.clear();
        }
    }
}

/// A waiting child can have been killed (say, by a sweep); its pidfd is then readable. A slot whose
/// pasta ended would give its environment no network (and no interface to disconnect): not used either.
fn slot_alive(slot: &mut Slot) -> bool {
    let mut poll = [nix::poll::PollFd::new(slot.waiting.pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
    let child_waiting = matches!(nix::poll::poll(&mut poll, nix::poll::PollTimeout::ZERO), Ok(0));
    child_waiting && slot.net.uplink.as_mut().is_none_or(pasta::Uplink::running)
}

fn refill(pool: &std::sync::Weak<SlotPool>) {
    let mut failures = 0u32;
    loop {
        let Some(pool) = pool.upgrade() else { return };
        let still_ready = {
            let Ok(mut ready) = pool.ready.lock() else { return };
            while ready.len() >= pool.target {
                let (r, _) = match pool.wanted.wait_timeout(ready, Duration::from_secs(1)) {
                    Ok(r) => r,
                    Err(_) => return,
                };
                ready = r;
                if std::sync::Arc::strong_count(&pool) == 1 {
                    return;
                }
            }
            ready.len()
        };
        // A slot was just taken for a cold start. Making the next one (a network namespace, pasta, a
        // dozen mounts) contends with that start for the kernel's mount and network locks, so it waits
        // for the start to get through them, unless no slot is left (a burst, which needs it now).
        if still_ready > 0 {
            std::thread::sleep(Duration::from_millis(REFILL_DELAY_MS));
        }
        match pool.make() {
            Ok(slot) => {
                failures = 0;
                if let Ok(mut ready) = pool.ready.lock() {
                    ready.push(slot);
                }
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %e, "preparing an environment slot");
                }
                drop(pool);
                std::thread::sleep(Duration::from_millis(100 * u64::from(failures.min(50))));
            }
        }
    }
}

impl NamespaceSandbox {
    /// Sets the tier up: its mount point, cgroups (removing a crashed run's leftovers), the spawner
    /// thread and the network namespace pool. Call [`Self::probe`] before trusting it.
    pub fn new(options: Options) -> Result<Self, SandboxError> {
        if !nix::unistd::geteuid().is_root() {
            let why = match user::enter_failure() {
                Some(e) => format!("Nimbus is not root and cannot make a user namespace ({e})"),
                None => "Nimbus is not root and did not enter a user namespace of its own".into(),
            };
            return Err(SandboxError::Unavailable(why));
        }
        let state = options.data_dir.join("sandbox");
        let root_mount = state.join("root");
        std::fs::create_dir_all(&root_mount)
            .map_err(|source| SandboxError::Namespace { what: "create the root mount point", source })?;
        let cgroups = match cgroup::Cgroups::detect() {
            Ok(c) => {
                let removed = c.remove_leftovers();
                if removed > 0 {
                    tracing::info!(removed, "removed cgroups left by an earlier Nimbus run");
                }
                let budget = c.budget();
                tracing::info!(
                    environments = budget.host,
                    per_function = budget.function,
                    per_function_enforced = c.per_function_pids(),
                    per_environment = PIDS_MAX,
                    "tasks (processes and threads) functions may have"
                );
                for controller in cgroup::Controller::ALL {
                    if !c.has(controller) {
                        tracing::warn!(
                            controller = controller.name(),
                            "cgroup controller unavailable: environments are not limited by it"
                        );
                    }
                }
                for (controller, place) in c.places() {
                    tracing::debug!(controller = controller.name(), version = ?place.version, own = %place.own.display(), "cgroup");
                }
                Some(c)
            }
            Err(e) => {
                let hint = if !user::host_root() {
                    "rootless: let the service manager delegate Nimbus its cgroup (systemd: Delegate=yes), or \
                     chown Nimbus's own cgroup of each controller to its user"
                } else {
                    ""
                };
                tracing::warn!(error = %e, hint, "no cgroups: environments get no memory, CPU or pids limits and no freezer");
                None
            }
        };
        // After the cgroup leftovers: killing a crashed run's environments releases the disks they hold.
        let disks = match tmpdisk::TmpDisks::start(&state.join("tmp")) {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                tracing::warn!(error = %e, "namespace tier: /tmp is a tmpfs, which counts toward a function's memory (no disk-backed /tmp)");
                None
            }
        };
        if !user::nested() && !user::host_root() {
            tracing::info!("rootless: functions run as uid 993 of Nimbus's user namespace, a host user of their own");
        }
        if user::nested() {
            tracing::warn!(
                "rootless: functions run as Nimbus's own user on the host (its user has no subordinate ids \
                 in /etc/subuid and /etc/subgid, or newuidmap is missing). \
                 Namespaces, seccomp and read-only mounts keep them from Nimbus and each other, but the \
                 kernel's per-user limits (processes, inotify instances, epoll watches, pipe pages) are \
                 shared with Nimbus: a function can use up what Nimbus needs"
            );
        }
        let spawner = spawn::Spawner::start(&options.init_exe, user::nested())
            .map_err(|source| SandboxError::Namespace { what: "start the sandbox zygote", source })?;
        let host_cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        let pasta = outside_network();
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let base = BaseConfig {
            root: root_mount,
            steps: base_steps(&resolv_conf(&host_resolv, pasta.is_some())),
            prestart: None,
        };
        let maker = Arc::new(SlotMaker {
            cgroups,
            spawner,
            pasta,
            spares: disks.clone().and_then(|d| {
                tmpdisk::Spares::start(d)
                    .inspect_err(|e| tracing::warn!(error = %e, "no spare /tmp disks: other sizes are made at launch"))
                    .ok()
            }),
            disks,
            disk_failing: AtomicBool::new(false),
            next: AtomicU64::new(1),
        });
        Ok(Self {
            data_dir: options.data_dir.clone(),
            slots: SlotPool::start(maker, base, None, SLOTS_READY),
            prestarted: std::sync::Mutex::new(Vec::new()),
            host_cpus,
        })
    }

    /// The pool of slots with `prestart`'s runtime started ahead, made on first use; the plain pool
    /// when there are already [`PRESTART_KINDS_MAX`] kinds.
    fn pool_for(&self, prestart: &Prestart) -> Arc<SlotPool> {
        let Ok(mut pools) = self.prestarted.lock() else { return self.slots.clone() };
        if let Some((_, pool)) = pools.iter().find(|(kind, _)| kind == prestart) {
            return pool.clone();
        }
        if pools.len() >= PRESTART_KINDS_MAX {
            return self.slots.clone();
        }
        let mut steps = vec![tmp_step(SLOT_TMP_MB)];
        steps.extend(ro_steps(&self.data_dir, &prestart.ro_paths, &prestart.runtime_dir));
        let mut env = prestart.env.clone();
        env.push((crate::PRESTART_FD_VAR.into(), init::PRESTART_WAIT_FD.to_string().into()));
        let program = seen_at(&prestart.program);
        let config = PrestartConfig { steps, program, args: prestart.args.clone(), env, creds: CREDS };
        let base = BaseConfig { prestart: Some(config), ..self.slots.base.clone() };
        let pool = SlotPool::start(self.slots.maker.clone(), base, Some(prestart.clone()), SLOTS_READY);
        pools.push((prestart.clone(), pool.clone()));
        pool
    }

    /// Builds one environment root for real (namespaces, mounts, pivot_root) and waits for it: proves
    /// that this machine allows the tier.
    pub fn probe(&self) -> Result<(), SandboxError> {
        let started = Instant::now();
        let slot = self.slots.make()?;
        let config = InitConfig {
            steps: vec![tmp_step(64)],
            hostname: "localhost".into(),
            creds: CREDS,
            program: "/bin/true".into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            probe: true,
        };
        let (out_r, err_r) = slot.output;
        let (status_r, status_w) = pipe()?;
        let fds = spawn::InitFds { config: config_memfd(&config)?, status: status_w };
        let cgroup = slot.cgroup.clone();
        let (_, pidfd) = spawn::activate(slot.waiting, fds)
            .map_err(|source| SandboxError::Namespace { what: "start an init", source })?;
        let mut status = String::new();
        let _ = std::fs::File::from(status_r).read_to_string(&mut status);
        // The pidfd turns readable when init has ended.
        let mut poll = [nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
        let waited = nix::poll::poll(&mut poll, nix::poll::PollTimeout::from(5000u16));
        let mut stderr = String::new();
        drop(out_r);
        let _ = std::fs::File::from(err_r).read_to_string(&mut stderr);
        if !status.lines().any(|l| l == "probe ok") {
            let why = match status.lines().find_map(|l| l.strip_prefix("setup-error ")) {
                Some(e) => e.to_owned(),
                None => format!("init ended with {waited:?} {}", stderr.trim()),
            };
            return Err(SandboxError::Unavailable(why));
        }
        if let Some(c) = cgroup {
            c.remove();
        }
        tracing::debug!(took_ms = started.elapsed().as_secs_f64() * 1000.0, "namespace tier probe");
        Ok(())
    }
}

impl NamespaceSandbox {
    /// The steps that give an environment its /tmp of `spec.scratch_mb`, and the disks to hold until it
    /// is gone. Nothing else is mounted under /tmp: read-only paths under the host's /tmp are shown
    /// elsewhere (see [`seen_at`]), so a new environment's /tmp is empty.
    fn tmp_steps(
        &self,
        spec: &LaunchSpec,
        slot_disk: Option<tmpdisk::TmpDisk>,
        prestarted: bool,
    ) -> (Vec<Step>, Vec<tmpdisk::TmpDisk>) {
        let size_mb = spec.scratch_mb;
        let Some(slot_disk) = slot_disk else {
            // A tmpfs; a pre-started slot has one mounted already, which only gets its size.
            let step = if prestarted { Step::Resize { dst: "/tmp".into(), size_mb } } else { tmp_step(size_mb) };
            return (vec![step], Vec::new());
        };
        if slot_disk.size_mb() == size_mb {
            return (Vec::new(), vec![slot_disk]); // mounted while the slot waited
        }
        // Another size: a disk of the environment's own, in place of the slot's: the spare made after
        // the last launch of this size, or one made now (the one part of making disks that can be on a
        // cold start, and only for a non-default size).
        let maker = &self.slots.maker;
        let spare = maker.spares.as_ref().and_then(|s| s.take(size_mb));
        tracing::debug!(env = %spec.id, size_mb, spare = spare.is_some(), "a /tmp disk of the environment's own size");
        let own = spare.or_else(|| maker.disk(&spec.id, size_mb));
        let mut steps = vec![Step::Unmount { dst: "/tmp".into() }];
        steps.push(match &own {
            Some(disk) => disk_step(disk),
            None => tmp_step(size_mb),
        });
        (steps, [Some(slot_disk), own].into_iter().flatten().collect())
    }
}

/// pasta, once it has connected one namespace for real; otherwise says loudly that environments reach
/// loopback only, and why.
fn outside_network() -> Option<pasta::Pasta> {
    let tried = pasta::Pasta::start()
        .map_err(SandboxError::from)
        .and_then(|p| net::create(Some(&p)).map(|trial| (p, trial.connect_took)));
    match tried {
        Ok((p, took)) => {
            tracing::info!(pasta = %p.program().display(), connect_ms = ms(took), "functions reach the outside network through pasta");
            Some(p)
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                hint = tun_hint().unwrap_or_default(),
                "namespace tier: functions reach only their own loopback (their Runtime API and Nimbus's API), not the outside network"
            );
            None
        }
    }
}

/// Why a rootless pasta may have failed: it opens /dev/net/tun as Nimbus's user, which udev allows
/// (mode 0666) and a machine without udev may not.
fn tun_hint() -> Option<&'static str> {
    let refused = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
    refused.then_some(
        "Nimbus's user may not open /dev/net/tun: make it mode 0666, as udev does (`chmod 0666 /dev/net/tun`)",
    )
}

/// The launch spec's extra read-only paths that may be bound into an environment: absolute, existing,
/// not `/`, not already visible (system directories), not nested in another chosen path, and never the
/// data directory, anything in it or any parent of it (checked on the path and on where it leads).
fn visible_ro_paths(data_dir: &Path, paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut chosen: Vec<PathBuf> = Vec::new();
    for path in paths {
        if !path.is_absolute() || !path.exists() || path == Path::new("/") {
            continue;
        }
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        if [path, &canonical].iter().any(|p| p.starts_with(data_dir) || data_dir.starts_with(p)) {
            tracing::warn!(path = %path.display(), "not exposing a path that contains or lies in the data directory");
            continue;
        }
        if SYSTEM_DIRS.iter().any(|d| path.starts_with(d) || canonical.starts_with(d)) {
            continue; // already visible
        }
        if chosen.iter().any(|c| path.starts_with(c)) {
            continue;
        }
        chosen.retain(|c| !c.starts_with(path));
        chosen.push(path.clone());
    }
    chosen
}

/// The environments' `/etc/resolv.conf`: the host's, unless every nameserver in it listens on the host's
/// loopback (systemd-resolved's 127.0.0.53, a local dnsmasq), which no environment can reach; with
/// pasta, those get pasta's DNS forwarder instead, which passes queries on to the host's resolver.
fn resolv_conf(host: &str, pasta: bool) -> String {
    let nameservers: Vec<&str> =
        host.lines().filter_map(|l| l.trim().strip_prefix("nameserver")).map(str::trim).collect();
    let reachable = nameservers.iter().any(|ns| ns.parse::<std::net::IpAddr>().is_ok_and(|ip| !ip.is_loopback()));
    if !pasta || reachable {
        return if host.is_empty() { "nameserver 127.0.0.1\n".into() } else { host.to_owned() };
    }
    let mut out: String =
        host.lines().filter(|l| !l.trim().starts_with("nameserver")).flat_map(|l| [l, "\n"]).collect();
    out.push_str(&format!("nameserver {}\n", pasta::GATEWAY));
    out
}

fn base_steps(resolv: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for dir in SYSTEM_DIRS.iter().map(Path::new) {
        push_host_path(&mut steps, dir);
    }
    steps.push(Step::Dir { dst: "/etc".into(), mode: 0o755 });
    let files = [
        (
            "/etc/passwd",
            format!(
                "root:x:0:0:root:/root:/sbin/nologin\n{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}::/home/{SANDBOX_USER}:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n"
            ),
        ),
        ("/etc/group", format!("root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_GID}:\nnobody:x:65534:\n")),
        ("/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".into()),
        (
            "/etc/nsswitch.conf",
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"
                .into(),
        ),
        ("/etc/resolv.conf", resolv.to_owned()),
    ];
    for (dst, contents) in files {
        steps.push(Step::File { dst: dst.into(), contents, mode: 0o644 });
    }
    for path in ETC_SHARED.iter().map(Path::new) {
        push_host_path(&mut steps, path);
    }
    // Mount points of the environment's own mounts, an empty /opt, and what is the same everywhere.
    for dir in ["/opt", TASK_ROOT, RUNTIME_DIR, "/tmp"] {
        steps.push(Step::Dir { dst: dir.into(), mode: 0o755 });
    }
    steps.push(Step::Proc { dst: "/proc".into() });
    steps.push(Step::ProcFile { dst: "/proc/cmdline".into(), contents: KERNEL_CMDLINE.into() });
    steps.push(Step::Dev { dst: "/dev".into() });
    steps
}

/// A host path as it is: a symlink is recreated, a directory or file is bound read-only.
fn push_host_path(steps: &mut Vec<Step>, path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            if let Ok(target) = std::fs::read_link(path) {
                steps.push(Step::Symlink { target, dst: path.to_owned() });
            }
        }
        Ok(meta) if meta.is_dir() || meta.is_file() => {
            steps.push(Step::Bind { src: path.to_owned(), dst: path.to_owned() })
        }
        _ => {}
    }
}

/// The function's user, limits and seccomp, for every runtime.
const CREDS: Creds = Creds { uid: SANDBOX_UID, gid: SANDBOX_GID, nofile: NOFILE, seccomp: true };

/// Where the host's read-only paths under its /tmp are shown (see [`seen_at`]).
pub const HOST_TMP_VIEW: &str = "/var/host-tmp";

/// Where a host path of the launch spec (an interpreter, its directories) is seen inside: where it
/// is, except under the host's /tmp, which every environment has a /tmp of its own over. A checkout
/// or virtualenv cloned under /tmp, as CI systems do, is shown under [`HOST_TMP_VIEW`] instead, so a
/// new environment's /tmp is empty. (An interpreter found there runs from its new place: Python and
/// node find their prefixes from where they run; a virtualenv whose base interpreter is under /tmp as
/// well would not, as its `pyvenv.cfg` names that base by its host path.)
/// Files that name such a path by its host path (a `.pth`, a `pyvenv.cfg`) do not follow: the server
/// passes the interpreter's `sys.path` as seen inside to the bootstrap (`NIMBUS_PYTHON_HOST_PATH`).
pub fn seen_at(host: &Path) -> PathBuf {
    PathView { host_tmp: Some(HOST_TMP_VIEW.into()), ..PathView::default() }.host(host)
}

/// The environment's `/proc/meminfo`: Lambda's shows the function's memory as the machine's, not the
/// host's. Written once at launch, so its free and available amounts stay the total (the cgroup's
/// `memory.current` is the live number); a program sizing itself by MemTotal sizes itself right.
fn meminfo(memory_mb: u32) -> String {
    let total_kb = u64::from(memory_mb) * 1024;
    let mut out = String::new();
    for (key, kb) in [
        ("MemTotal", total_kb),
        ("MemFree", total_kb),
        ("MemAvailable", total_kb),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Active", 0),
        ("Inactive", 0),
        ("Active(anon)", 0),
        ("Inactive(anon)", 0),
        ("Active(file)", 0),
        ("Inactive(file)", 0),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", 0),
        ("Mapped", 0),
        ("Shmem", 0),
        ("KReclaimable", 0),
        ("Slab", 0),
        ("SReclaimable", 0),
        ("SUnreclaim", 0),
        ("KernelStack", 0),
        ("PageTables", 0),
        ("CommitLimit", total_kb),
        ("Committed_AS", 0),
    ] {
        out.push_str(&format!("{:<16}{kb:>8} kB\n", format!("{key}:")));
    }
    for key in ["HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp"] {
        out.push_str(&format!("{:<16}{:>8}\n", format!("{key}:"), 0));
    }
    out.push_str(&format!("{:<16}{:>8} kB\n", "Hugepagesize:", 2048));
    out
}

/// The environments' `/proc/cmdline`: a guest kernel's, as a Firecracker microVM boots Lambda's (its
/// documented default boot arguments), never the host's, which can name its disks, its image and
/// options of its own.
const KERNEL_CMDLINE: &str = "console=ttyS0 reboot=k panic=1 pci=off nomodules\n";

/// The runtime's read-only mounts: the interpreters' directories and Nimbus's runtime files.
fn ro_steps(data_dir: &Path, ro_paths: &[PathBuf], runtime_dir: &Path) -> Vec<Step> {
    let mut steps: Vec<Step> = visible_ro_paths(data_dir, ro_paths)
        .into_iter()
        .map(|path| Step::Bind { dst: seen_at(&path), src: path })
        .collect();
    steps.push(Step::Bind { src: runtime_dir.to_owned(), dst: RUNTIME_DIR.into() });
    steps
}

/// A tmpfs /tmp, sized for the environment (where there are no disks: its pages count toward the
/// environment's memory).
fn tmp_step(tmp_mb: u32) -> Step {
    Step::Tmpfs { dst: "/tmp".into(), size_mb: tmp_mb, mode: 0o1777 }
}

/// A disk /tmp, world-writable with the sticky bit, as the tmpfs.
fn disk_step(disk: &tmpdisk::TmpDisk) -> Step {
    Step::Disk { device: disk.device().to_owned(), dst: "/tmp".into(), mode: 0o1777 }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SandboxError::Pipe { source: e.into() })
}

/// A configuration in a memory file the init reads.
#[allow(unsafe_code)]
fn config_memfd(config: &impl serde::Serialize) -> Result<OwnedFd, SandboxError> {
    let json = serde_json::to_vec(config).map_err(|e| SandboxError::Namespace {
        what: "encode the init configuration",
        source: std::io::Error::other(e),
    })?;
    // SAFETY: memfd_create with a valid C string and flags; the result is checked before it is owned.
    let raw = unsafe { libc::memfd_create(c"nimbus-init".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(SandboxError::Namespace { what: "memfd_create", source: std::io::Error::last_os_error() });
    }
    // SAFETY: a fresh descriptor nothing else owns.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    file.write_all(&json)
        .and_then(|()| file.rewind())
        .map_err(|source| SandboxError::Namespace { what: "write the init configuration", source })?;
    Ok(file.into())
}

impl Sandbox for NamespaceSandbox {
    fn tier(&self) -> &'static str {
        "namespace"
    }

    fn path_view(&self) -> PathView {
        PathView {
            task_root: Some(TASK_ROOT.into()),
            runtime_dir: Some(RUNTIME_DIR.into()),
            host_tmp: Some(HOST_TMP_VIEW.into()),
        }
    }

    fn scratch_dir(&self, _id: &str) -> PathBuf {
        "/tmp".into()
    }

    fn prepare(&self, _id: &str, prestart: Option<&Prestart>) -> Result<(Network, Prepared), SandboxError> {
        let started = Instant::now();
        let mut slot = match prestart {
            Some(p) => self.pool_for(p).take()?,
            None => self.slots.take()?,
        };
        let clone = |l: &std::net::TcpListener| {
            l.try_clone().map_err(|source| SandboxError::Network { what: "listener", source })
        };
        let network = Network { runtime_api: clone(&slot.net.runtime_api)?, api: Some(clone(&slot.net.api)?) };
        slot.took = started.elapsed();
        Ok((network, Prepared { slot: Some(slot) }))
    }

    fn launch(&self, spec: &LaunchSpec, prepared: Prepared) -> Result<Box<dyn Instance>, SandboxError> {
        let started = Instant::now();
        let slot = match prepared.slot {
            Some(slot) => slot,
            None => self.slots.take()?,
        };
        let Slot { net, cgroup, waiting, output: (out_r, err_r), prestart, tmp, took: prepare_took } = slot;
        let prestarted = prestart.is_some();
        if prestarted && prestart != spec.prestart {
            drop(waiting);
            if let Some(c) = &cgroup {
                c.kill_all();
                c.remove();
            }
            return Err(SandboxError::Namespace {
                what: "launch",
                source: std::io::Error::other("the slot's pre-started runtime is not the launch spec's"),
            });
        }
        let cleanup = |cgroup: &Option<Arc<cgroup::EnvCgroup>>| {
            if let Some(c) = cgroup {
                c.kill_all();
                c.remove();
            }
        };
        // Disconnected before the environment starts; the killed pasta is reaped with the environment.
        let disconnecting = Instant::now();
        let mut uplink = net.uplink;
        if let (Egress::LoopbackOnly, Some(u)) = (spec.egress, uplink.as_mut())
            && let Err(e) = net::disconnect(&net.netns, u)
        {
            drop(waiting);
            cleanup(&cgroup);
            return Err(e);
        }
        // A pasta that stays serves at the normal priority from now on (it was made at the lowest).
        if let (Egress::Outside, Some(u)) = (spec.egress, uplink.as_ref())
            && let Err(e) = u.serve()
        {
            tracing::warn!(error = %e, "the environment's network runs at the lowest priority");
        }
        let disconnect_took = disconnecting.elapsed();
        if let Some(c) = &cgroup
            && let Err(source) = c.set_memory(u64::from(spec.memory_mb) * 1024 * 1024)
        {
            drop(waiting);
            cleanup(&cgroup);
            return Err(SandboxError::Cgroup { source });
        }
        if let (Some(c), Some(cgroups)) = (&cgroup, &self.slots.maker.cgroups)
            && let Err(source) = cgroups.join_function(c, &spec.group)
        {
            drop(waiting);
            cleanup(&cgroup);
            return Err(SandboxError::Cgroup { source });
        }
        let cgroup_took = started.elapsed() - disconnect_took;
        let (mut steps, disks) = self.tmp_steps(spec, tmp, prestarted);
        let tmp_took = started.elapsed() - cgroup_took - disconnect_took;
        if !prestarted {
            steps.extend(ro_steps(&self.data_dir, &spec.ro_paths, &spec.runtime_dir));
        }
        steps.push(Step::Bind { src: spec.code_dir.clone(), dst: TASK_ROOT.into() });
        steps.push(Step::ProcFile { dst: "/proc/meminfo".into(), contents: meminfo(spec.memory_mb) });
        let config = InitConfig {
            steps,
            hostname: "localhost".into(),
            creds: CREDS,
            program: seen_at(&spec.program),
            args: spec.args.clone(),
            env: spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<(OsString, OsString)>>(),
            cwd: spec.cwd.clone(),
            probe: false,
        };
        let result = (|| {
            let (status_r, status_w) = pipe()?;
            let fds = spawn::InitFds { config: config_memfd(&config)?, status: status_w };
            let spawned = spawn::activate(waiting, fds)
                .map_err(|source| SandboxError::Spawn { program: spec.program.clone(), source })?;
            Ok((status_r, spawned))
        })();
        let (status_r, spawned) = match result {
            Ok(parts) => parts,
            Err(e) => {
                cleanup(&cgroup);
                return Err(e);
            }
        };
        let spawn_took = started.elapsed() - cgroup_took - disconnect_took - tmp_took;
        let output = (|| {
            Ok::<_, std::io::Error>((pipe::Receiver::from_owned_fd(out_r)?, pipe::Receiver::from_owned_fd(err_r)?))
        })()
        .map_err(|source| SandboxError::Pipe { source });
        let (pid, pidfd) = spawned;
        let pidfd = Arc::new(pidfd);
        let shared =
            Arc::new(Shared { exited: AtomicBool::new(false), peak: AtomicU64::new(0), oom: AtomicBool::new(false) });
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(reap(Reap {
            id: spec.id.clone(),
            pidfd: pidfd.clone(),
            status: status_r,
            cgroup: cgroup.clone(),
            uplink,
            disks,
            shared: shared.clone(),
            exit: exit_tx,
            launched: started,
        }));
        tracing::debug!(
            env = %spec.id,
            slot_ms = ms(prepare_took),
            disconnect_ms = ms(disconnect_took),
            memory_limit_ms = ms(cgroup_took),
            tmp_ms = ms(tmp_took),
            activate_ms = ms(spawn_took),
            prestarted,
            "namespace environment launched"
        );
        let mut instance = NamespaceInstance {
            pid: pid as u32,
            pidfd,
            cgroup,
            cpu_quota_us: cgroup::cpu_quota_us(spec.memory_mb, cgroup::CPU_PERIOD_US, self.host_cpus),
            shared,
            exit: Some(exit_rx),
            output: None,
            destroyed: false,
        };
        match output {
            Ok(o) => instance.output = Some(o),
            Err(e) => {
                instance.destroy();
                return Err(e);
            }
        }
        Ok(Box::new(instance))
    }

    fn cleanup(&self) {
        self.slots.drain();
        if let Ok(pools) = self.prestarted.lock() {
            for (_, pool) in pools.iter() {
                pool.drain();
            }
        }
        if let Some(c) = &self.slots.maker.cgroups {
            c.remove_base();
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// What the reaper learnt before the cgroups went away.
struct Shared {
    exited: AtomicBool,
    peak: AtomicU64,
    oom: AtomicBool,
}

struct Reap {
    id: String,
    pidfd: Arc<OwnedFd>,
    status: OwnedFd,
    cgroup: Option<Arc<cgroup::EnvCgroup>>,
    /// Lives as long as the environment's init.
    uplink: Option<pasta::Uplink>,
    /// Its /tmp disk (and a slot's it replaced): held until init is gone, so that no device is detached
    /// and reused while the environment may still be about to mount it (see `tmpdisk.rs`).
    disks: Vec<tmpdisk::TmpDisk>,
    shared: Arc<Shared>,
    exit: tokio::sync::oneshot::Sender<ExitDescription>,
    launched: Instant,
}

/// Follows one init to its end: its status lines, its exit, then the environment's cgroups.
async fn reap(r: Reap) {
    let mut reported = None;
    if let Ok(status) = pipe::Receiver::from_owned_fd(r.status) {
        let mut lines = BufReader::new(status).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(us) = line.strip_prefix("root-built ") {
                tracing::debug!(
                    env = %r.id,
                    root_ms = us.parse::<f64>().unwrap_or(0.0) / 1000.0,
                    since_launch_ms = ms(r.launched.elapsed()),
                    "environment root built, runtime starting"
                );
            } else if line == "runtime prestarted" {
                tracing::debug!(
                    env = %r.id,
                    since_launch_ms = ms(r.launched.elapsed()),
                    "the pre-started runtime has its function"
                );
            } else if let Some(e) = line.strip_prefix("setup-error ") {
                tracing::warn!(env = %r.id, error = e, "environment init failed");
            } else {
                reported = parse_status(&line).or(reported);
            }
        }
    }
    wait_pidfd(&r.pidfd).await;
    // The environment's mount namespace went with its last process: this was the disks' last user.
    drop(r.disks);
    // Init reports how the runtime ended; an init that reported nothing was killed (destroy, or the
    // zygote's end).
    let description = reported.unwrap_or_else(|| ExitDescription::Signaled("killed".into()));
    if let Some(c) = &r.cgroup {
        if let Some(peak) = c.peak_memory_bytes() {
            r.shared.peak.fetch_max(peak, Ordering::Relaxed);
        }
        r.shared.oom.store(c.oom_kills() > 0, Ordering::Relaxed);
    }
    r.shared.exited.store(true, Ordering::Release);
    let _ = r.exit.send(description);
    let (cgroup, uplink) = (r.cgroup, r.uplink);
    if cgroup.is_some() || uplink.is_some() {
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(c) = cgroup {
                c.kill_all();
                c.remove();
            }
            drop(uplink);
        })
        .await;
    }
}

fn parse_status(line: &str) -> Option<ExitDescription> {
    let (kind, value) = line.split_once(' ')?;
    let n: i32 = value.trim().parse().ok()?;
    match kind {
        "exit" => Some(ExitDescription::Exited(n)),
        "signal" => Some(ExitDescription::signaled(n)),
        _ => None,
    }
}

/// Waits for the process behind `pidfd` to end (the zygote's kernel-side reaping makes that final).
#[allow(unsafe_code)]
async fn wait_pidfd(pidfd: &Arc<OwnedFd>) {
    // SAFETY: the Arc keeps the same open pidfd alive for as long as the AsyncFd holds a clone of it,
    // and an OwnedFd always returns the same descriptor.
    let registered =
        unsafe { tokio::io::unix::AsyncFd::register_with_interest(pidfd.clone(), tokio::io::Interest::READABLE) };
    if let Ok(watch) = registered {
        let _ = watch.readable().await;
    }
}

struct NamespaceInstance {
    pid: u32,
    pidfd: Arc<OwnedFd>,
    cgroup: Option<Arc<cgroup::EnvCgroup>>,
    cpu_quota_us: u64,
    shared: Arc<Shared>,
    exit: Option<tokio::sync::oneshot::Receiver<ExitDescription>>,
    output: Option<(pipe::Receiver, pipe::Receiver)>,
    destroyed: bool,
}

impl NamespaceInstance {
    #[allow(unsafe_code)]
    fn signal(&self, signal: nix::sys::signal::Signal) {
        // SAFETY: pidfd_send_signal(2) with a pidfd we own and no siginfo. A pidfd names this very
        // process even after its pid is reused, so a late signal cannot hit a stranger.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0u32,
            )
        };
    }

    fn live_cgroup(&self) -> Option<&cgroup::EnvCgroup> {
        if self.shared.exited.load(Ordering::Acquire) { None } else { self.cgroup.as_deref() }
    }
}

impl Instance for NamespaceInstance {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn take_output(&mut self) -> Option<(pipe::Receiver, pipe::Receiver)> {
        self.output.take()
    }

    fn freeze(&self) -> Result<(), SandboxError> {
        match self.live_cgroup() {
            Some(c) if c.has_freezer() => c.freeze().map_err(|source| SandboxError::Cgroup { source }),
            _ => Ok(()),
        }
    }

    fn thaw(&self) -> Result<(), SandboxError> {
        match self.live_cgroup() {
            Some(c) if c.has_freezer() => c.thaw().map_err(|source| SandboxError::Cgroup { source }),
            _ => Ok(()),
        }
    }

    fn init_done(&self) {
        if let Some(c) = self.live_cgroup()
            && let Err(e) = c.set_cpu_quota(Some(self.cpu_quota_us))
        {
            tracing::warn!(error = %e, "setting an environment's CPU quota");
        }
    }

    fn peak_memory_bytes(&self) -> u64 {
        let measured = match self.live_cgroup() {
            Some(c) => c.peak_memory_bytes(),
            None if self.cgroup.is_none() => Some(crate::process::tree_memory_bytes(self.pid)),
            None => None,
        };
        match measured {
            Some(m) => self.shared.peak.fetch_max(m, Ordering::Relaxed).max(m),
            None => self.shared.peak.load(Ordering::Relaxed),
        }
    }

    fn oom_killed(&self) -> bool {
        match self.live_cgroup() {
            Some(c) => c.oom_kills() > 0,
            None => self.shared.oom.load(Ordering::Relaxed),
        }
    }

    fn take_exit(&mut self) -> Option<tokio::sync::oneshot::Receiver<ExitDescription>> {
        self.exit.take()
    }

    fn terminate(&self) {
        let _ = self.thaw();
        // Init forwards it to every process of the environment.
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    fn destroy(&mut self) {
        if self.destroyed {
            return;
        }
        self.destroyed = true;
        // Killing pid 1 of the namespace kills every process in it; the cgroup sweep also thaws a
        // frozen environment, whose processes cannot die before they run again.
        self.signal(nix::sys::signal::Signal::SIGKILL);
        if let Some(c) = self.live_cgroup() {
            c.kill_all();
        }
    }
}

impl Drop for NamespaceInstance {
    fn drop(&mut self) {
        self.destroy();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_paths_never_expose_the_data_dir_and_are_not_duplicated() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let data = root.join("srv/data");
        let venv = root.join("venv");
        let venv_bin = venv.join("bin");
        let other = root.join("opt/python");
        for d in [&data, &venv_bin, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        let sneaky = root.join("sneaky");
        std::os::unix::fs::symlink(&data, &sneaky).unwrap();
        let paths = vec![
            venv_bin.clone(),
            venv.clone(),
            data.join("code"),
            data.clone(),
            root.join("srv"),
            sneaky,
            PathBuf::from("/"),
            PathBuf::from("/usr/lib/python3"),
            PathBuf::from("relative/dir"),
            root.join("missing"),
            other.clone(),
            other.clone(),
        ];
        std::fs::create_dir_all(data.join("code")).unwrap();
        assert_eq!(visible_ro_paths(&data, &paths), vec![venv, other]);
    }

    #[test]
    fn host_paths_under_tmp_are_shown_elsewhere_and_nothing_else_moves() {
        for (host, inside) in [
            ("/tmp/ci/checkout/.venv/bin/python3", "/var/host-tmp/ci/checkout/.venv/bin/python3"),
            ("/tmp", "/var/host-tmp"),
            ("/tmpfoo/bin", "/tmpfoo/bin"),
            ("/usr/bin/python3", "/usr/bin/python3"),
            ("/root/.pyenv/versions/3.11.7", "/root/.pyenv/versions/3.11.7"),
        ] {
            assert_eq!(seen_at(Path::new(host)), PathBuf::from(inside), "{host}");
        }
        let steps = ro_steps(Path::new("/data"), &["/tmp".into()], Path::new("/data/runtimes"));
        assert!(steps.iter().all(|s| !matches!(s, Step::Bind { dst, .. } if dst.starts_with("/tmp"))), "{steps:?}");
    }

    #[test]
    fn meminfo_shows_the_functions_memory_as_the_machines() {
        let text = meminfo(256);
        assert!(text.starts_with("MemTotal:         262144 kB\nMemFree:          262144 kB\n"), "{text}");
        assert!(text.contains("SwapTotal:             0 kB\n") && text.ends_with("Hugepagesize:       2048 kB\n"));
    }

    #[test]
    fn a_host_resolver_on_loopback_is_replaced_by_pastas_forwarder() {
        let local = "# systemd-resolved\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.org\n";
        assert_eq!(
            resolv_conf(local, true),
            "# systemd-resolved\noptions edns0 trust-ad\nsearch example.org\nnameserver 169.254.1.1\n"
        );
        assert_eq!(resolv_conf(local, false), local, "without pasta there is nothing better to offer");
        let mixed = "nameserver 127.0.0.1\nnameserver 10.0.0.2\n";
        assert_eq!(resolv_conf(mixed, true), mixed, "a reachable resolver is kept, as the host has it");
        assert_eq!(resolv_conf("nameserver ::1\n", true), "nameserver 169.254.1.1\n");
        assert_eq!(resolv_conf("", false), "nameserver 127.0.0.1\n");
    }

    #[test]
    fn the_base_root_keeps_merged_usr_symlinks_and_generates_etc() {
        let steps = base_steps("nameserver 192.0.2.53\n");
        for dir in SYSTEM_DIRS.iter().map(Path::new).filter(|d| d.exists()) {
            let expected = if std::fs::symlink_metadata(dir).unwrap().file_type().is_symlink() {
                Step::Symlink { target: std::fs::read_link(dir).unwrap(), dst: dir.to_owned() }
            } else {
                Step::Bind { src: dir.to_owned(), dst: dir.to_owned() }
            };
            assert!(steps.contains(&expected), "{} missing", dir.display());
        }
        let passwd = steps.iter().find_map(|s| match s {
            Step::File { dst, contents, .. } if dst == Path::new("/etc/passwd") => Some(contents.clone()),
            _ => None,
        });
        assert!(passwd.unwrap().contains("sbx_user1051:x:993:990:"));
        assert!(!steps.iter().any(|s| matches!(s, Step::Bind { src, .. } if src == Path::new("/etc"))));
        assert!(steps.contains(&Step::Proc { dst: "/proc".into() }));
    }
}
