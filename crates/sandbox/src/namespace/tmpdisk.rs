//! A disk-backed `/tmp` for environments: an ext4 filesystem on a loop device whose backing file is a
//! sparse image in `<data>/sandbox/tmp`, exactly `EphemeralStorage` MB.
//!
//! Why not a tmpfs: tmpfs pages are charged to the environment's memory cgroup and cannot be reclaimed
//! (there is no swap), so a 128 MB function that writes 300 MB to /tmp is OOM-killed, where on Lambda
//! /tmp is storage apart from memory. An ext4 /tmp's page cache is charged too while it is resident, but
//! it is reclaimable: it is written back to the image and dropped under pressure. Writing past the size
//! still fails with ENOSPC, as the function expects.
//!
//! Making a disk (truncate + mkfs.ext4 + attach, 10-40 ms) is done when a slot is made, ahead of demand,
//! at [`super::SLOT_TMP_MB`]; only an environment of another size makes its own at launch.
//!
//! Lifecycle: the image is unlinked as soon as its loop device holds it, so the data directory never
//! keeps images of environments that are gone, whatever happens to Nimbus (a leftover file exists only
//! if Nimbus dies between creating and attaching one; [`TmpDisks::start`] removes those). The device is
//! attached with `LO_FLAGS_AUTOCLEAR`: the kernel detaches it when its last user closes it. Its users
//! are Nimbus's descriptor ([`TmpDisk`], held until the environment is reaped or its slot dropped, so
//! that the device cannot be detached and reused before the environment's init has mounted it) and the
//! mount in the environment's mount namespace, which goes when the namespace's last process ends. So
//! the device, and the image's space with it, is gone when both are; after a crash, when the
//! environments die (the next start thaws and kills frozen ones with the cgroup leftovers). `LOOP_CLR_FD`
//! on our leftovers at start covers a device bound without autoclear by anything else.
//!
//! The loop ioctls are written here rather than taken from the `loopdev` crate: its releases (0.4,
//! 2021; the `loopdev-3` fork) generate their bindings with bindgen at build time (libclang, not
//! installed here) and have no `LOOP_CONFIGURE`, which attaches a file with its flags in one call (with
//! `LOOP_SET_FD` + `LOOP_SET_STATUS64` a crash in between leaves a device bound without autoclear).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

const MKFS: &str = "mkfs.ext4";
/// No journal (a crash loses the environment anyway), no reserved blocks and no room kept for growing
/// the filesystem (the function gets as much of its size as ext4 allows: ~96%, the rest is inode tables
/// and bitmaps), inode tables left to the kernel (the image is sparse: never-written tables read as
/// zeros), no discard pass over a fresh file, 4 KiB blocks as the loop device's. Measured 10-40 ms.
const MKFS_ARGS: &[&str] =
    &["-q", "-F", "-b", "4096", "-m", "0", "-O", "^has_journal,^resize_inode", "-E", "lazy_itable_init=1,nodiscard"];
/// The mount's data options: the kernel must not zero the inode tables in the background (that writes
/// megabytes to every image for nothing: a sparse image's unwritten tables read as zeros already).
pub(crate) const MOUNT_DATA: &str = "noinit_itable";
/// The loop device's logical block size: the filesystem's block size, so that direct I/O to the image
/// is always aligned.
const LOOP_BLOCK_SIZE_BYTES: u32 = 4096;
/// A free device can be taken by another process between LOOP_CTL_GET_FREE and LOOP_CONFIGURE.
const ATTACH_ATTEMPTS: u32 = 8;
/// The size of the disk made at start to prove that disks work here.
const TRIAL_MB: u32 = 16;
/// Sizes of /tmp, other than the slots', kept a spare disk of (see [`Spares`]).
const SPARE_SIZES_MAX: usize = 4;

// <linux/loop.h>
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_DIRECT_IO: u32 = 16;
const LO_NAME_SIZE: usize = 64;
const LO_KEY_SIZE: usize = 32;

/// `struct loop_info64` of <linux/loop.h>.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; LO_KEY_SIZE],
    lo_init: [u64; 2],
}

/// `struct loop_config` of <linux/loop.h> (Linux 5.8).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

// The kernel's sizes; a layout mistake must not reach an ioctl.
const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

#[derive(Debug, thiserror::Error)]
pub enum TmpDiskError {
    #[error(
        "Nimbus is not the host's root (rootless, or in a user namespace): attaching loop devices and mounting ext4 need it"
    )]
    NotRoot,
    #[error("{MKFS} is not installed (looked in PATH and {}); install e2fsprogs", super::PROGRAM_DIRS.join(", "))]
    MkfsMissing,
    #[error("create the image directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("create the image {path} of {size_mb} MB: {source}")]
    CreateImage { path: PathBuf, size_mb: u32, source: io::Error },
    #[error("start {program} on {path}: {source}")]
    MkfsSpawn { program: PathBuf, path: PathBuf, source: io::Error },
    #[error("{program} on {path} failed ({status}): {stderr}")]
    Mkfs { program: PathBuf, path: PathBuf, status: ExitStatus, stderr: String },
    #[error("open /dev/loop-control: {source}")]
    LoopControl { source: io::Error },
    #[error("find a free loop device (LOOP_CTL_GET_FREE): {source}")]
    LoopFree { source: io::Error },
    #[error("open {device}: {source}")]
    OpenDevice { device: PathBuf, source: io::Error },
    #[error("attach {path} to {device} (LOOP_CONFIGURE): {source}")]
    Attach { path: PathBuf, device: PathBuf, source: io::Error },
    #[error("no free loop device stayed free for {path} in {ATTACH_ATTEMPTS} attempts")]
    NoFreeDevice { path: PathBuf },
    #[error("trial mount of {device} (ext4) in a private mount namespace: {source}")]
    TrialMount { device: PathBuf, source: io::Error },
}

/// Makes disks for environments' /tmp. Shared by every slot pool.
#[derive(Debug)]
pub(crate) struct TmpDisks {
    dir: PathBuf,
    mkfs: PathBuf,
    control: File,
    next: AtomicU64,
}

/// One environment's /tmp device: attached, its image already unlinked. Dropping it closes Nimbus's
/// descriptor; the device detaches once the environment's mount of it is gone too.
#[derive(Debug)]
pub(crate) struct TmpDisk {
    device: PathBuf,
    size_mb: u32,
    /// Keeps the device bound to this disk's image until the environment has mounted it.
    _open: File,
}

impl TmpDisk {
    pub fn device(&self) -> &Path {
        &self.device
    }

    pub fn size_mb(&self) -> u32 {
        self.size_mb
    }
}

/// Disks of sizes other than the slots' made ahead: once an environment of some size made its disk at
/// launch, one more of that size is made in the background, so the next environment of that size (the
/// same function's, most likely) skips mkfs. One per size, for the [`SPARE_SIZES_MAX`] sizes launched
/// last; an older size's spare is dropped (its device detaches).
#[derive(Debug)]
pub(crate) struct Spares {
    ready: Arc<Mutex<Vec<TmpDisk>>>,
    wanted: mpsc::SyncSender<u32>,
}

impl Spares {
    /// Starts the thread that makes spares with `disks`.
    pub fn start(disks: Arc<TmpDisks>) -> io::Result<Self> {
        let ready: Arc<Mutex<Vec<TmpDisk>>> = Arc::default();
        let (wanted, requests) = mpsc::sync_channel::<u32>(SPARE_SIZES_MAX);
        let kept = ready.clone();
        std::thread::Builder::new().name("nimbus-tmp-spares".into()).spawn(move || {
            // Ends when the sandbox is dropped; the spares are dropped with it.
            for size_mb in requests {
                let have = kept.lock().is_ok_and(|r| r.iter().any(|d| d.size_mb == size_mb));
                if have {
                    continue;
                }
                match disks.make("spare", size_mb) {
                    Ok(disk) => {
                        if let Ok(mut r) = kept.lock() {
                            r.push(disk);
                            if r.len() > SPARE_SIZES_MAX {
                                r.remove(0);
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, size_mb, "making a spare /tmp disk"),
                }
            }
        })?;
        Ok(Self { ready, wanted })
    }

    /// The spare of `size_mb`, if one is ready; either way another is made for the next.
    pub fn take(&self, size_mb: u32) -> Option<TmpDisk> {
        let taken = self.ready.lock().ok().and_then(|mut r| {
            let i = r.iter().position(|d| d.size_mb == size_mb)?;
            Some(r.remove(i))
        });
        // A full queue means the thread is busy with enough already.
        let _ = self.wanted.try_send(size_mb);
        taken
    }
}

impl TmpDisks {
    /// Disks in `dir` (created if missing). Removes what an earlier run left there (images, devices still
    /// bound to them), then makes one trial disk and mounts it in a private mount namespace: a machine
    /// without loop devices, ext4 or mkfs.ext4 is found out here, once, and not at a launch.
    pub fn start(dir: &Path) -> Result<Self, TmpDiskError> {
        if !super::user::host_root() {
            return Err(TmpDiskError::NotRoot);
        }
        fs::create_dir_all(dir).map_err(|source| TmpDiskError::CreateDir { path: dir.to_owned(), source })?;
        // The path the kernel reports as a device's backing file is the canonical one.
        let dir = fs::canonicalize(dir).map_err(|source| TmpDiskError::CreateDir { path: dir.to_owned(), source })?;
        let (detached, removed) = remove_leftovers(&dir);
        if detached + removed > 0 {
            tracing::info!(detached, removed, dir = %dir.display(), "removed /tmp disks left by an earlier Nimbus run");
        }
        let mkfs = super::host_program(MKFS).ok_or(TmpDiskError::MkfsMissing)?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/loop-control")
            .map_err(|source| TmpDiskError::LoopControl { source })?;
        let disks = Self { dir, mkfs, control, next: AtomicU64::new(1) };
        let trial = disks.make("trial", TRIAL_MB)?;
        trial_mount(trial.device(), &disks.dir)
            .map_err(|source| TmpDiskError::TrialMount { device: trial.device.clone(), source })?;
        Ok(disks)
    }

    /// A new, empty disk of `size_mb` MB, attached; `name` names its image while it is being made.
    pub fn make(&self, name: &str, size_mb: u32) -> Result<TmpDisk, TmpDiskError> {
        let started = Instant::now();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // `<server pid>-<n>-<slot or environment>.img`; the name is only for people looking.
        let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(64).collect();
        let path = self.dir.join(format!("{}-{n}-{name}.img", std::process::id()));
        let image = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| TmpDiskError::CreateImage { path: path.clone(), size_mb, source })?;
        // From here on the image is removed however this ends: attached, the device holds it.
        let _unlink = Unlink(&path);
        image.set_len(u64::from(size_mb) << 20).map_err(|source| TmpDiskError::CreateImage {
            path: path.clone(),
            size_mb,
            source,
        })?;
        self.mkfs(&path)?;
        let formatted = started.elapsed();
        let (device, open) = self.attach(&image, &path)?;
        tracing::debug!(
            device = %device.display(),
            size_mb,
            mkfs_ms = super::ms(formatted),
            total_ms = super::ms(started.elapsed()),
            "/tmp disk made"
        );
        Ok(TmpDisk { device, size_mb, _open: open })
    }

    fn mkfs(&self, path: &Path) -> Result<(), TmpDiskError> {
        let output = Command::new(&self.mkfs)
            .args(MKFS_ARGS)
            .arg(path)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| TmpDiskError::MkfsSpawn { program: self.mkfs.clone(), path: path.to_owned(), source })?;
        if !output.status.success() {
            return Err(TmpDiskError::Mkfs {
                program: self.mkfs.clone(),
                path: path.to_owned(),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(())
    }

    /// Binds `image` to a free loop device with autoclear and direct I/O (the image's pages would
    /// otherwise be cached twice: by the environment's ext4 and by the host's filesystem under it).
    #[allow(unsafe_code)]
    fn attach(&self, image: &File, path: &Path) -> Result<(PathBuf, File), TmpDiskError> {
        let mut flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
        for _ in 0..ATTACH_ATTEMPTS {
            // SAFETY: ioctl(2) on a descriptor we own; LOOP_CTL_GET_FREE takes no argument and returns
            // a device number or -1.
            let n = unsafe { libc::ioctl(self.control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
            if n < 0 {
                return Err(TmpDiskError::LoopFree { source: io::Error::last_os_error() });
            }
            let device = PathBuf::from(format!("/dev/loop{n}"));
            let open = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&device)
                .map_err(|source| TmpDiskError::OpenDevice { device: device.clone(), source })?;
            let mut info = LoopInfo64 {
                lo_device: 0,
                lo_inode: 0,
                lo_rdevice: 0,
                lo_offset: 0,
                lo_sizelimit: 0,
                lo_number: 0,
                lo_encrypt_type: 0,
                lo_encrypt_key_size: 0,
                lo_flags: flags,
                lo_file_name: [0; LO_NAME_SIZE],
                lo_crypt_name: [0; LO_NAME_SIZE],
                lo_encrypt_key: [0; LO_KEY_SIZE],
                lo_init: [0; 2],
            };
            // What `losetup` shows; the kernel's own record of the backing file is its path.
            let label = path.as_os_str().as_encoded_bytes();
            let keep = label.len().min(LO_NAME_SIZE - 1);
            info.lo_file_name[..keep].copy_from_slice(&label[label.len() - keep..]);
            let config =
                LoopConfig { fd: image.as_raw_fd() as u32, block_size: LOOP_BLOCK_SIZE_BYTES, info, reserved: [0; 8] };
            // SAFETY: LOOP_CONFIGURE reads one `struct loop_config` (laid out as the kernel's, sizes
            // asserted above) from a pointer valid for the call; both descriptors are open.
            let rc = unsafe { libc::ioctl(open.as_raw_fd(), LOOP_CONFIGURE as _, &config as *const LoopConfig) };
            if rc == 0 {
                // LOOP_CONFIGURE needs a writable descriptor (a read-only one makes a read-only device),
                // but Nimbus's must not count as a writer of the device the environment mounts: a
                // kernel built without CONFIG_BLK_DEV_WRITE_MOUNTED refuses to mount a device open for
                // writing. The read-only one is opened before the other closes, so the device is never
                // without an opener (and never detached).
                let hold = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&device)
                    .map_err(|source| TmpDiskError::OpenDevice { device: device.clone(), source })?;
                drop(open);
                return Ok((device, hold));
            }
            let source = io::Error::last_os_error();
            match source.raw_os_error() {
                // Someone else took it between the two calls: ask for another.
                Some(libc::EBUSY) => {}
                // A kernel that refuses direct I/O to this image (its filesystem has none) instead of
                // falling back: cached twice is better than no disk.
                Some(libc::EINVAL) if flags & LO_FLAGS_DIRECT_IO != 0 => {
                    tracing::debug!(path = %path.display(), "loop device without direct I/O");
                    flags &= !LO_FLAGS_DIRECT_IO;
                }
                _ => return Err(TmpDiskError::Attach { path: path.to_owned(), device, source }),
            }
        }
        Err(TmpDiskError::NoFreeDevice { path: path.to_owned() })
    }
}

/// Removes the image file when dropped (it is attached, or its making failed).
struct Unlink<'a>(&'a Path);

impl Drop for Unlink<'_> {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(self.0)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), error = %e, "removing a /tmp disk image");
        }
    }
}

/// Mounts `device` on `target` in a mount namespace of a short-lived thread's own (nothing shows on the
/// host) and unmounts it: proves that the kernel mounts our disks.
fn trial_mount(device: &Path, target: &Path) -> io::Result<()> {
    let (device, target) = (device.to_owned(), target.to_owned());
    std::thread::Builder::new()
        .name("nimbus-tmpdisk".into())
        .spawn(move || -> io::Result<()> {
            use nix::mount::{MntFlags, MsFlags, mount, umount2};
            let none: Option<&str> = None;
            // A thread may leave the process's mount namespace (its filesystem context is unshared
            // with it); the namespace is gone when the thread ends.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
            mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)?;
            let mounted =
                mount(Some(&device), &target, Some("ext4"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(MOUNT_DATA));
            if mounted.is_ok() {
                let _ = umount2(&target, MntFlags::MNT_DETACH);
            }
            mounted.map_err(io::Error::from)
        })?
        .join()
        .map_err(|_| io::Error::other("the trial mount thread panicked"))?
}

/// Detaches loop devices whose backing file lies in `dir` (an earlier run's: a device still mounted by
/// a dying environment is detached by the kernel once that mount is gone) and removes every file in
/// `dir`. Returns (devices, files).
fn remove_leftovers(dir: &Path) -> (usize, usize) {
    let mut detached = 0;
    for (device, backing) in loop_devices() {
        if !in_dir(&backing, dir) {
            continue;
        }
        match detach(&device) {
            Ok(()) => detached += 1,
            Err(e) => tracing::warn!(device = %device.display(), backing, error = %e, "detaching a leftover /tmp disk"),
        }
    }
    let mut removed = 0;
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    (detached, removed)
}

/// Bound loop devices and their backing files as the kernel names them (`<path>` or `<path> (deleted)`).
pub(crate) fn loop_devices() -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/sys/block") else { return found };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        if let Ok(backing) = fs::read_to_string(entry.path().join("loop/backing_file")) {
            found.push((Path::new("/dev").join(&name), backing.trim_end_matches('\n').to_owned()));
        }
    }
    found
}

/// Whether a backing file the kernel reports lies directly in `dir`.
fn in_dir(backing: &str, dir: &Path) -> bool {
    let path = Path::new(backing.strip_suffix(" (deleted)").unwrap_or(backing));
    path.parent() == Some(dir)
}

/// LOOP_CLR_FD: detaches a device nobody has open, or marks a busy one to detach at its last close.
#[allow(unsafe_code)]
fn detach(device: &Path) -> io::Result<()> {
    let open = OpenOptions::new().read(true).custom_flags(libc::O_CLOEXEC).open(device)?;
    // SAFETY: ioctl(2) with no argument on a descriptor we own.
    if unsafe { libc::ioctl(open.as_raw_fd(), LOOP_CLR_FD as _, 0) } < 0 {
        let e = io::Error::last_os_error();
        // ENXIO: it was detached meanwhile.
        if e.raw_os_error() != Some(libc::ENXIO) {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn leftovers_are_recognised_by_their_directory_deleted_or_not() {
        let dir = Path::new("/srv/data/sandbox/tmp");
        assert!(in_dir("/srv/data/sandbox/tmp/1-2-slot-3.img", dir));
        assert!(in_dir("/srv/data/sandbox/tmp/1-2-slot-3.img (deleted)", dir));
        assert!(!in_dir("/srv/data/sandbox/tmp2/1-2-slot-3.img", dir));
        assert!(!in_dir("/srv/data/sandbox/tmp/sub/x.img", dir));
        assert!(!in_dir("/srv/other/sandbox/tmp/x.img", dir));
    }

    /// A real disk: made, attached with autoclear, its image unlinked at once, and the device detached
    /// when the last descriptor closes. Needs root, loop devices and mkfs.ext4; skipped (with a note)
    /// where they are missing.
    #[test]
    fn a_disk_leaves_no_image_and_its_device_detaches_when_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let disks = match TmpDisks::start(tmp.path()) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("skipped: no /tmp disks here: {e}");
                return;
            }
        };
        let disk = disks.make("unit", 64).unwrap();
        assert_eq!(disk.size_mb(), 64);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0, "the image is unlinked once attached");
        let name = disk.device().file_name().unwrap().to_string_lossy().into_owned();
        let sys = Path::new("/sys/block").join(&name).join("loop");
        assert_eq!(fs::read_to_string(sys.join("autoclear")).unwrap().trim(), "1");
        assert_eq!(fs::read_to_string(sys.join("dio")).unwrap().trim(), "1", "direct I/O to the image");
        let backing = fs::read_to_string(sys.join("backing_file")).unwrap();
        assert!(in_dir(backing.trim(), &fs::canonicalize(tmp.path()).unwrap()), "{backing}");
        drop(disk);
        let deadline = Instant::now() + Duration::from_secs(5);
        while sys.join("backing_file").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!sys.join("backing_file").exists(), "{name} still bound after its last close");
    }
}
