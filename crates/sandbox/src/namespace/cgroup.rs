//! A thin cgroupfs layer, v1 and v2, decided per controller.
//!
//! Nimbus creates its environments' cgroups under its OWN cgroup of each controller (found through
//! `/proc/self/cgroup` and `/proc/self/mountinfo`), so it needs no more rights than over its own
//! subtree and works inside a delegated cgroup too. The layout is the same in both versions:
//!
//! ```text
//! <own cgroup>/nimbus-<server pid>/slot-<n>              every controller, from the slot's making
//! <own pids cgroup>/nimbus-<server pid>/fn-<name>/slot-<n>  pids, from the launch (see below)
//! ```
//!
//! Processes and threads are bounded three times: each environment's own `pids.max` (Lambda's 1024),
//! each function's (`fn-<name>`, [`Budget::function`]), which its environments are moved under at
//! launch, so a function invoking itself does not get 1024 more per environment, and all of Nimbus's
//! environments together (`nimbus-<pid>`, [`Budget::host`], from the host's `pid_max` and
//! `threads-max`), so the host keeps tasks for everything else. The move needs the pids controller in
//! a hierarchy of its own (cgroup v1, as on hybrid machines): in a v2 tree a move would leave the
//! environment's memory charged where it was; there only the environment's and Nimbus's bounds apply.
//!
//! A machine may be hybrid (this kind is: v1 controllers plus a near-empty v2 mount), so each
//! controller is looked up on its own: a v1 hierarchy that carries it wins, otherwise the v2 tree if
//! its `cgroup.controllers` lists it. The freezer exists in v2 without being listed (`cgroup.freeze`).
//! `nimbus-<pid>` directories whose server is gone are the leftovers of a crash; [`Cgroups::detect`]
//! callers remove them with [`Cgroups::remove_leftovers`].

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The controllers the namespace tier uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Controller {
    Memory,
    Pids,
    Cpu,
    Freezer,
}

impl Controller {
    pub const ALL: [Controller; 4] = [Controller::Memory, Controller::Pids, Controller::Cpu, Controller::Freezer];

    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Pids => "pids",
            Self::Cpu => "cpu",
            Self::Freezer => "freezer",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Where one controller lives: its version and Nimbus's own cgroup directory in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub version: Version,
    pub own: PathBuf,
}

/// One line of `/proc/self/mountinfo` that mounts a cgroup filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub version: Version,
    /// The mount's root inside the hierarchy (usually `/`).
    pub root: String,
    pub mount_point: PathBuf,
    /// v1: the controllers the hierarchy carries (from the super options).
    pub controllers: Vec<String>,
}

/// Parses the cgroup mounts out of `/proc/self/mountinfo` text.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let fields: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if fields.len() < 5 || right.len() < 3 {
            continue;
        }
        let version = match right[0] {
            "cgroup" => Version::V1,
            "cgroup2" => Version::V2,
            _ => continue,
        };
        let controllers = match version {
            Version::V1 => right[2]
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                .map(str::to_owned)
                .collect(),
            Version::V2 => Vec::new(),
        };
        mounts.push(CgroupMount {
            version,
            root: unescape(fields[3]),
            mount_point: PathBuf::from(unescape(fields[4])),
            controllers,
        });
    }
    mounts
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let value = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/cgroup`: v1 controller name → path, and the v2 path (`0::/...`).
pub fn parse_proc_cgroup(text: &str) -> (BTreeMap<String, String>, Option<String>) {
    let mut v1 = BTreeMap::new();
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if controllers.is_empty() {
            v2 = Some(path.to_owned());
        } else {
            for c in controllers.split(',') {
                v1.insert(c.to_owned(), path.to_owned());
            }
        }
    }
    (v1, v2)
}

/// Joins a cgroup path to a mount, taking the mount's own root into account.
fn own_dir(mount: &CgroupMount, path: &str) -> Option<PathBuf> {
    let rel = if mount.root == "/" {
        path
    } else {
        let stripped = path.strip_prefix(mount.root.as_str())?;
        if !(stripped.is_empty() || stripped.starts_with('/')) {
            return None;
        }
        stripped
    };
    Some(mount.mount_point.join(rel.trim_start_matches('/')))
}

/// Decides where each controller lives. `v2_controllers` reads a v2 directory's `cgroup.controllers`.
pub fn locate(
    mounts: &[CgroupMount],
    proc_cgroup: &str,
    v2_controllers: impl Fn(&Path) -> Option<String>,
) -> BTreeMap<Controller, Place> {
    let (v1_paths, v2_path) = parse_proc_cgroup(proc_cgroup);
    let mut places = BTreeMap::new();
    let v2_own =
        mounts.iter().filter(|m| m.version == Version::V2).find_map(|m| v2_path.as_deref().and_then(|p| own_dir(m, p)));
    let v2_available = v2_own.as_deref().and_then(&v2_controllers).unwrap_or_default();
    for controller in Controller::ALL {
        let name = controller.name();
        let v1 = mounts
            .iter()
            .filter(|m| m.version == Version::V1 && m.controllers.iter().any(|c| c == name))
            .find_map(|m| v1_paths.get(name).and_then(|p| own_dir(m, p)));
        if let Some(own) = v1 {
            places.insert(controller, Place { version: Version::V1, own });
            continue;
        }
        let Some(own) = &v2_own else { continue };
        // The v2 freezer is part of the core (cgroup.freeze in every non-root cgroup).
        let listed = v2_available.split_whitespace().any(|c| c == name) || controller == Controller::Freezer;
        if listed {
            places.insert(controller, Place { version: Version::V2, own: own.clone() });
        }
    }
    places
}

/// CPU quota per period in microseconds for `memory_mb`, as Lambda allots it: 1769 MB is one vCPU,
/// capped by the host's cores and at least the kernel's 1 ms minimum.
pub fn cpu_quota_us(memory_mb: u32, period_us: u64, host_cpus: u32) -> u64 {
    let vcpus = (f64::from(memory_mb) / 1769.0).min(f64::from(host_cpus.max(1)));
    ((vcpus * period_us as f64).round() as u64).max(1000)
}

pub const CPU_PERIOD_US: u64 = 100_000;

/// Every controller's place, and the per-server directory environments go under.
#[derive(Debug)]
pub struct Cgroups {
    places: BTreeMap<Controller, Place>,
    /// `nimbus-<pid>`.
    base_name: String,
    budget: Budget,
}

/// What one environment is limited to from its creation (memory follows with [`EnvCgroup::set_memory`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub pids: u32,
}

/// The bounds on tasks (processes and threads) above each environment's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// All of Nimbus's environments together.
    pub host: u64,
    /// All environments of one function together.
    pub function: u64,
}

impl Budget {
    /// From the host's limits on tasks (`kernel.pid_max`, `kernel.threads-max`): half of the smaller is
    /// Nimbus's, the rest stays the host's; a function may take a quarter of Nimbus's, so that four
    /// functions at their bound still leave room, but never less than two environments' worth.
    pub fn from_host(pid_max: u64, threads_max: u64, per_env: u32) -> Self {
        let host = (pid_max.min(threads_max) / 2).max(u64::from(per_env) * 4);
        let function = (host / 4).max(u64::from(per_env) * 2);
        Self { host, function }
    }

    /// The host's, read from /proc (Linux's defaults where unreadable).
    pub fn of_host(per_env: u32) -> Self {
        let read = |path: &str, default: u64| read_u64(Path::new(path)).unwrap_or(default);
        Self::from_host(read("/proc/sys/kernel/pid_max", 32_768), read("/proc/sys/kernel/threads-max", 32_768), per_env)
    }
}

impl Cgroups {
    /// Reads this process's cgroups. Returns the controllers found and prepares `nimbus-<pid>` in each.
    pub fn detect() -> io::Result<Self> {
        let mounts = parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo")?);
        let proc_cgroup = fs::read_to_string("/proc/self/cgroup")?;
        let places = locate(&mounts, &proc_cgroup, |dir| fs::read_to_string(dir.join("cgroup.controllers")).ok());
        let budget = Budget::of_host(super::PIDS_MAX);
        let cgroups = Self { places, base_name: format!("nimbus-{}", std::process::id()), budget };
        cgroups.prepare_base()?;
        if let Some(place) = cgroups.places.get(&Controller::Pids) {
            let base = place.own.join(&cgroups.base_name);
            if let Err(e) = write(&base, "pids.max", &budget.host.to_string()) {
                tracing::warn!(error = %e, "cannot bound the tasks of all environments together");
            }
        }
        Ok(cgroups)
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Whether environments can be moved under a per-function pids cgroup (see the module doc). Moving
    /// another user's process (the function's uid) into a v1 cgroup takes the host's root: a rootless
    /// Nimbus, root only in its own user namespace, is refused, and keeps the other two bounds.
    pub fn per_function_pids(&self) -> bool {
        if !host_root() {
            return false;
        }
        match self.places.get(&Controller::Pids) {
            Some(p) => {
                p.version == Version::V1 && self.places.iter().all(|(c, o)| *c == Controller::Pids || o.own != p.own)
            }
            None => false,
        }
    }

    /// Moves environment `env`'s processes into `fn-<group>/<its name>` of the pids hierarchy, made with
    /// the function's bound if it is not there yet. A no-op where [`Self::per_function_pids`] is false.
    pub fn join_function(&self, env: &EnvCgroup, group: &str) -> io::Result<()> {
        if !self.per_function_pids() {
            return Ok(());
        }
        let Some((_, from)) = env.dir(Controller::Pids).cloned() else { return Ok(()) };
        let Some(name) = from.file_name() else { return Ok(()) };
        let base = self.places[&Controller::Pids].own.join(&self.base_name);
        let function = base.join(format!("fn-{group}"));
        // A function's last environment ending removes the directory; a launch racing that makes it again.
        let mut tries = 0;
        let to = loop {
            tries += 1;
            let made = match fs::create_dir(&function) {
                Ok(()) => write(&function, "pids.max", &self.budget.function.to_string()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(e),
            };
            let to = function.join(name);
            match made.and_then(|()| {
                fs::create_dir(&to).or_else(|e| if e.kind() == io::ErrorKind::AlreadyExists { Ok(()) } else { Err(e) })
            }) {
                Ok(()) => break to,
                Err(e) if tries < 3 && e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("create {}: {e}", to.display()))),
            }
        };
        write(&to, "pids.max", &read_string(&from.join("pids.max")).unwrap_or_else(|| super::PIDS_MAX.to_string()))?;
        // Every process of the slot (its waiting child, a pre-started runtime). A slot made just now may
        // not have joined yet (its child writes to cgroup.procs itself, soon after it is cloned): wait
        // for it, then move until nothing is left, so a fork racing a move is moved too.
        let waited = std::time::Instant::now();
        let mut moved_any = false;
        let mut rounds = 0;
        while rounds < 16 {
            let procs = read_string(&from.join("cgroup.procs")).unwrap_or_default();
            if procs.is_empty() {
                if moved_any || waited.elapsed() > Duration::from_secs(2) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            rounds += 1;
            for pid in procs.split_whitespace() {
                match fs::write(to.join("cgroup.procs"), pid) {
                    Ok(()) => moved_any = true,
                    // Gone meanwhile (a pre-started runtime that failed): nothing to move.
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                    Err(e) => return Err(io::Error::new(e.kind(), format!("move {pid} to {}: {e}", to.display()))),
                }
            }
        }
        // The slot's own pids directory stays, empty, until the environment is removed: removing it now
        // (the root of the environment's cgroup namespace) was seen to kill its init.
        env.moved_pids(to);
        Ok(())
    }

    pub fn places(&self) -> &BTreeMap<Controller, Place> {
        &self.places
    }

    pub fn has(&self, controller: Controller) -> bool {
        self.places.contains_key(&controller)
    }

    /// Distinct (version, own dir) pairs: co-mounted v1 controllers and all of v2 share one directory.
    fn own_dirs(&self) -> Vec<(Version, PathBuf)> {
        let mut dirs: Vec<(Version, PathBuf)> = Vec::new();
        for place in self.places.values() {
            if !dirs.iter().any(|(_, d)| d == &place.own) {
                dirs.push((place.version, place.own.clone()));
            }
        }
        dirs
    }

    fn prepare_base(&self) -> io::Result<()> {
        for (version, own) in self.own_dirs() {
            let base = own.join(&self.base_name);
            match fs::create_dir(&base) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("create {}: {e}", base.display()))),
            }
            if version == Version::V2 {
                self.enable_v2_controllers(&own, &base);
            }
        }
        Ok(())
    }

    /// v2 hands controllers down through `cgroup.subtree_control`. A cgroup with processes of its own
    /// cannot enable them ("no internal processes"); then Nimbus moves itself into a leaf
    /// `nimbus-<pid>-server` beside its environments first.
    fn enable_v2_controllers(&self, own: &Path, base: &Path) {
        let wanted: Vec<&str> = self
            .places
            .iter()
            .filter(|(c, p)| p.version == Version::V2 && **c != Controller::Freezer)
            .map(|(c, _)| c.name())
            .collect();
        if wanted.is_empty() {
            return;
        }
        let line = wanted.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
        if fs::write(own.join("cgroup.subtree_control"), &line).is_err() {
            let leaf = own.join(format!("{}-server", self.base_name));
            let moved = fs::create_dir_all(&leaf)
                .and_then(|()| fs::write(leaf.join("cgroup.procs"), std::process::id().to_string()));
            if let Err(e) = moved.and_then(|()| fs::write(own.join("cgroup.subtree_control"), &line)) {
                tracing::warn!(cgroup = %own.display(), error = %e, "cannot enable cgroup v2 controllers {line}");
            }
        }
        if let Err(e) = fs::write(base.join("cgroup.subtree_control"), &line) {
            tracing::warn!(cgroup = %base.display(), error = %e, "cannot enable cgroup v2 controllers {line}");
        }
    }

    /// Creates the cgroups of environment `name` and applies `limits`.
    pub fn create(&self, name: &str, limits: &Limits) -> io::Result<EnvCgroup> {
        let mut dirs = Vec::new();
        for (version, own) in self.own_dirs() {
            let dir = own.join(&self.base_name).join(name);
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("create {}: {e}", dir.display()))),
            }
            dirs.push((version, dir));
        }
        let mut places = BTreeMap::new();
        for (controller, place) in &self.places {
            let dir = place.own.join(&self.base_name).join(name);
            places.insert(*controller, (place.version, dir));
        }
        let env = EnvCgroup {
            places,
            dirs,
            peak_file: OnceLock::new(),
            freezer_file: OnceLock::new(),
            function_pids: OnceLock::new(),
        };
        if let Err(e) = env.apply(limits) {
            env.remove();
            return Err(e);
        }
        Ok(env)
    }

    /// Removes the `nimbus-<pid>` trees of servers that are no longer running, killing what is left in
    /// them first (in every hierarchy, thawing the freezer's, before any directory is removed: a frozen
    /// v1 task cannot die, and it keeps its cgroups in the other hierarchies busy).
    pub fn remove_leftovers(&self) -> usize {
        let mut leftovers = Vec::new();
        for (version, own) in self.own_dirs() {
            let Ok(entries) = fs::read_dir(&own) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = leftover_pid(&name) else { continue };
                if pid == std::process::id() || server_alive(pid) {
                    continue;
                }
                leftovers.push((version, entry.path()));
            }
        }
        for (version, dir) in &leftovers {
            kill_tree(*version, dir);
        }
        for (version, dir) in &leftovers {
            remove_tree(*version, dir);
        }
        leftovers.len()
    }

    /// Removes this server's `nimbus-<pid>` directories (at shutdown, once every environment is gone).
    pub fn remove_base(&self) {
        for (version, own) in self.own_dirs() {
            remove_tree(version, &own.join(&self.base_name));
        }
    }
}

/// Whether this process is root of the host's user namespace (its uid map is the identity of all ids).
fn host_root() -> bool {
    nix::unistd::geteuid().is_root()
        && fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// `nimbus-<pid>` or `nimbus-<pid>-server` → pid.
fn leftover_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("nimbus-")?;
    let digits = rest.strip_suffix("-server").unwrap_or(rest);
    digits.parse().ok()
}

fn server_alive(pid: u32) -> bool {
    // A copy of the binary under another name (`nimbus-before`, a bench's) is a server too; a reused pid
    // is rarely a process whose name starts so.
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim().starts_with("nimbus"))
}

/// Kills (and thaws) whatever is left in a cgroup tree.
fn kill_tree(version: Version, dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                kill_tree(version, &entry.path());
            }
        }
    }
    kill_all(version, dir);
}

/// Kills whatever is left in a cgroup tree (depth first) and removes its directories.
fn remove_tree(version: Version, dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(version, &entry.path());
            }
        }
    }
    kill_all(version, dir);
    let _ = rmdir_retrying(dir, Duration::from_millis(500));
}

fn kill_all(version: Version, dir: &Path) {
    if version == Version::V2 && fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    for _ in 0..3 {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs.split_whitespace().filter_map(|p| p.parse().ok()).collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        // A frozen v1 task dies only once thawed.
        let _ = fs::write(dir.join("freezer.state"), "THAWED");
        let _ = fs::write(dir.join("cgroup.freeze"), "0");
    }
}

fn rmdir_retrying(dir: &Path, budget: Duration) -> io::Result<()> {
    let deadline = std::time::Instant::now() + budget;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// The cgroups of one environment.
#[derive(Debug)]
pub struct EnvCgroup {
    places: BTreeMap<Controller, (Version, PathBuf)>,
    /// Distinct directories (one per hierarchy).
    dirs: Vec<(Version, PathBuf)>,
    /// The files touched around every invocation (the peak read after it, the freezer written before
    /// and after), opened on first use and kept: opening a cgroup file walks its whole path, which cost
    /// more than the read or write itself. `None` inside means the file could not be opened.
    peak_file: OnceLock<Option<fs::File>>,
    freezer_file: OnceLock<Option<fs::File>>,
    /// The pids cgroup under its function's the environment was moved to at launch (its slot's pids
    /// directory is gone then); removed with the environment, and the function's with its last.
    function_pids: OnceLock<PathBuf>,
}

impl EnvCgroup {
    fn dir(&self, controller: Controller) -> Option<&(Version, PathBuf)> {
        self.places.get(&controller)
    }

    fn moved_pids(&self, to: PathBuf) {
        let _ = self.function_pids.set(to);
    }

    /// Every directory the environment's processes may be in: one per hierarchy, and the function's.
    fn all_dirs(&self) -> impl Iterator<Item = (Version, &Path)> {
        self.dirs
            .iter()
            .map(|(v, d)| (*v, d.as_path()))
            .chain(self.function_pids.get().map(|d| (Version::V1, d.as_path())))
    }

    /// Sets the memory limit of a cgroup that had none (v1 keeps limit ≤ memsw limit at every step, so
    /// the limit goes first when coming down from unlimited).
    pub fn set_memory(&self, bytes: u64) -> io::Result<()> {
        let Some((version, dir)) = self.dir(Controller::Memory) else { return Ok(()) };
        match version {
            Version::V1 => {
                write(dir, "memory.limit_in_bytes", &bytes.to_string())?;
                // No swap beyond the limit either, where swap accounting exists.
                let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
            }
            Version::V2 => {
                write(dir, "memory.max", &bytes.to_string())?;
                let _ = fs::write(dir.join("memory.swap.max"), "0");
            }
        }
        Ok(())
    }

    fn apply(&self, limits: &Limits) -> io::Result<()> {
        if let Some((_, dir)) = self.dir(Controller::Pids) {
            write(dir, "pids.max", &limits.pids.to_string())?;
        }
        // The CPU quota follows once init is done (`set_cpu_quota`); until then only the period is set.
        if let Some((Version::V1, dir)) = self.dir(Controller::Cpu) {
            write(dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
        }
        Ok(())
    }

    /// Changes the CPU quota (the init phase runs unthrottled, as Lambda's does).
    pub fn set_cpu_quota(&self, quota_us: Option<u64>) -> io::Result<()> {
        let Some((version, dir)) = self.dir(Controller::Cpu) else { return Ok(()) };
        match (version, quota_us) {
            (Version::V1, Some(q)) => write(dir, "cpu.cfs_quota_us", &q.to_string()),
            (Version::V1, None) => write(dir, "cpu.cfs_quota_us", "-1"),
            (Version::V2, Some(q)) => write(dir, "cpu.max", &format!("{q} {CPU_PERIOD_US}")),
            (Version::V2, None) => write(dir, "cpu.max", &format!("max {CPU_PERIOD_US}")),
        }
    }

    /// Opens each hierarchy's `cgroup.procs` for writing: the new process writes "0" into each to
    /// join its environment's cgroups before it runs anything.
    pub fn procs_files(&self) -> io::Result<Vec<OwnedFd>> {
        self.dirs
            .iter()
            .map(|(_, dir)| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.procs"))
                    .map(OwnedFd::from)
                    .map_err(|e| io::Error::new(e.kind(), format!("open {}/cgroup.procs: {e}", dir.display())))
            })
            .collect()
    }

    pub fn freeze(&self) -> io::Result<()> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> io::Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> io::Result<()> {
        let Some((version, dir)) = self.dir(Controller::Freezer) else {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "no freezer controller"));
        };
        let (file, value) = match (version, frozen) {
            (Version::V1, true) => ("freezer.state", "FROZEN"),
            (Version::V1, false) => ("freezer.state", "THAWED"),
            (Version::V2, true) => ("cgroup.freeze", "1"),
            (Version::V2, false) => ("cgroup.freeze", "0"),
        };
        let kept = self.freezer_file.get_or_init(|| fs::OpenOptions::new().write(true).open(dir.join(file)).ok());
        match kept {
            // A cgroup file takes each write whole, wherever the offset is.
            Some(f) => f
                .write_at(value.as_bytes(), 0)
                .map(drop)
                .map_err(|e| io::Error::new(e.kind(), format!("write {value:?} to {}/{file}: {e}", dir.display()))),
            None => write(dir, file, value),
        }
    }

    pub fn has_freezer(&self) -> bool {
        self.places.contains_key(&Controller::Freezer)
    }

    /// The most memory the environment has held, in bytes (its cgroup's peak).
    pub fn peak_memory_bytes(&self) -> Option<u64> {
        let (version, dir) = self.dir(Controller::Memory)?;
        let (peak, current) = match version {
            Version::V1 => ("memory.max_usage_in_bytes", "memory.usage_in_bytes"),
            Version::V2 => ("memory.peak", "memory.current"),
        };
        let kept = self.peak_file.get_or_init(|| fs::File::open(dir.join(peak)).ok());
        // Kernels before 5.19 have no memory.peak in v2: the current usage is the best there is.
        kept.as_ref().and_then(read_u64_at).or_else(|| read_u64(&dir.join(current)))
    }

    /// How many times the kernel's OOM killer killed a process of this environment.
    pub fn oom_kills(&self) -> u64 {
        let Some((version, dir)) = self.dir(Controller::Memory) else { return 0 };
        let file = match version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
        keyed_value(&text, "oom_kill").unwrap_or(0)
    }

    /// Kills every process in the environment's cgroups (thawing them, so frozen ones die too).
    pub fn kill_all(&self) {
        for (version, dir) in self.all_dirs() {
            kill_all(version, dir);
        }
        let _ = self.thaw();
    }

    /// Whether any process is left.
    pub fn is_empty(&self) -> bool {
        self.all_dirs()
            .all(|(_, dir)| fs::read_to_string(dir.join("cgroup.procs")).map(|p| p.trim().is_empty()).unwrap_or(true))
    }

    /// Removes the directories (after the processes are gone); retries briefly while the kernel
    /// finishes tearing the last task down.
    pub fn remove(&self) {
        for (version, dir) in self.all_dirs() {
            kill_all(version, dir);
            if let Err(e) = rmdir_retrying(dir, Duration::from_secs(2)) {
                tracing::warn!(cgroup = %dir.display(), error = %e, "removing an environment's cgroup");
            }
        }
        // The function's directory goes with its last environment (busy while others are in it).
        if let Some(function) = self.function_pids.get().and_then(|d| d.parent()) {
            let _ = fs::remove_dir(function);
        }
    }
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    fs::write(dir.join(file), value)
        .map_err(|e| io::Error::new(e.kind(), format!("write {value:?} to {}/{file}: {e}", dir.display())))
}

fn read_string(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Reads a number from an open cgroup file from its start, so the same file can be read again.
fn read_u64_at(file: &fs::File) -> Option<u64> {
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

/// `key value` lines (memory.events, memory.oom_control) → the value of `key`.
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_file_is_read_afresh_from_its_start_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.peak");
        fs::write(&path, "4096\n").unwrap();
        let file = fs::File::open(&path).unwrap();
        assert_eq!(read_u64_at(&file), Some(4096));
        fs::write(&path, "1048576\n").unwrap();
        assert_eq!(read_u64_at(&file), Some(1_048_576));
        fs::write(&path, "max\n").unwrap();
        assert_eq!(read_u64_at(&file), None);
    }

    const HYBRID_MOUNTINFO: &str = "\
24 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 24 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
35 30 0:31 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
36 30 0:32 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
37 30 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/1b5c
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn hybrid_machine_uses_v1_for_every_controller_under_its_own_cgroup() {
        let mounts = parse_mountinfo(HYBRID_MOUNTINFO);
        assert_eq!(mounts.len(), 7);
        let places = locate(&mounts, HYBRID_CGROUP, |_| Some(String::new()));
        assert_eq!(
            places[&Controller::Memory],
            Place { version: Version::V1, own: "/sys/fs/cgroup/memory/process_api/1b5c".into() }
        );
        assert_eq!(places[&Controller::Pids], Place { version: Version::V1, own: "/sys/fs/cgroup/pids".into() });
        assert_eq!(places[&Controller::Cpu].own, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(places[&Controller::Freezer].version, Version::V1);
    }

    #[test]
    fn pure_v2_machine_uses_the_unified_tree_for_listed_controllers() {
        let mounts = parse_mountinfo("29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
        let cgroup = "0::/system.slice/nimbus.service\n";
        let own = PathBuf::from("/sys/fs/cgroup/system.slice/nimbus.service");
        let places = locate(&mounts, cgroup, |dir| {
            assert_eq!(dir, own.as_path());
            Some("cpuset cpu io memory hugetlb\n".into())
        });
        assert_eq!(places[&Controller::Memory], Place { version: Version::V2, own: own.clone() });
        assert_eq!(places[&Controller::Cpu].version, Version::V2);
        // The freezer is core in v2; pids is not delegated here.
        assert_eq!(places[&Controller::Freezer].version, Version::V2);
        assert!(!places.contains_key(&Controller::Pids));
    }

    #[test]
    fn mount_roots_and_escapes_are_respected() {
        let mounts = parse_mountinfo("40 30 0:29 /outer /mnt/cg\\040mem rw - cgroup cgroup rw,memory,clone_children\n");
        assert_eq!(mounts[0].mount_point, PathBuf::from("/mnt/cg mem"));
        assert_eq!(mounts[0].controllers, vec!["memory".to_owned(), "clone_children".to_owned()]);
        let places = locate(&mounts, "4:memory:/outer/inner\n", |_| None);
        assert_eq!(places[&Controller::Memory].own, PathBuf::from("/mnt/cg mem/inner"));
        // A path outside the mount's root cannot be reached through it.
        assert!(locate(&mounts, "4:memory:/elsewhere\n", |_| None).is_empty());
    }

    #[test]
    fn cpu_follows_memory_and_is_capped_by_the_host() {
        assert_eq!(cpu_quota_us(1769, CPU_PERIOD_US, 2), 100_000);
        assert_eq!(cpu_quota_us(128, CPU_PERIOD_US, 2), 7_236);
        assert_eq!(cpu_quota_us(10240, CPU_PERIOD_US, 2), 200_000);
        assert_eq!(cpu_quota_us(1, CPU_PERIOD_US, 2), 1000);
    }

    #[test]
    fn task_budgets_follow_the_hosts_limits() {
        // (pid_max, threads-max) → (Nimbus's, a function's)
        let cases = [
            ((32_768, 192_735), (16_384, 4_096)),
            ((4_194_304, 63_000), (31_500, 7_875)),
            // A tiny host still lets a function have two environments, and Nimbus four.
            ((4_096, 4_096), (4_096, 2_048)),
        ];
        for ((pid_max, threads_max), (host, function)) in cases {
            assert_eq!(
                Budget::from_host(pid_max, threads_max, 1024),
                Budget { host, function },
                "{pid_max} {threads_max}"
            );
        }
    }

    #[test]
    fn oom_counters_and_leftover_names_parse() {
        assert_eq!(keyed_value("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill"), Some(2));
        assert_eq!(keyed_value("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n", "oom_kill"), Some(1));
        assert_eq!(leftover_pid("nimbus-123"), Some(123));
        assert_eq!(leftover_pid("nimbus-123-server"), Some(123));
        assert_eq!(leftover_pid("nimbusx"), None);
        assert_eq!(leftover_pid("other"), None);
    }
}
