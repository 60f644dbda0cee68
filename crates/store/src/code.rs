//! Content-addressed function code: deployment packages (zips) stored once per SHA-256, and unpacked once
//! into the directory that becomes `/var/task`.
//!
//! Layout under the store's root (`<data_dir>/code`):
//!
//! ```text
//! blobs/<hex sha256>.zip     the package exactly as uploaded; GetFunction's Code.Location serves it
//! unpacked/<hex sha256>/     its extracted tree, created on first use
//! tmp/                       work in progress; emptied by `CodeStore::open`
//! unpacked.boot_id           the boot the trees in unpacked/ were written in (see below)
//! ```
//!
//! Nothing under `blobs/` or `unpacked/` is ever visible half-written: every file or tree is built under
//! `tmp/` and renamed into place. A zip is checked completely (parse, limits, hostile names and symlinks,
//! real inflated size) before a single byte of it is stored, so a stored blob always unpacks.
//!
//! Durability differs on purpose. A blob is the only copy of a customer's code, so it is fsynced before
//! it is renamed in. A tree is a cache of its blob, and fsyncing each of its files (thousands, for a
//! node_modules) took 1.5 to 10 s for 5,000 small files on this project's machines, against 0.5 s for the
//! unpacking itself, and would be paid on a cold start. Instead, trees are trusted only within the boot that wrote them: a process crash loses nothing the kernel already has,
//! and after a reboot (which could have been a power cut) `open` discards them all, to be unpacked again
//! on first use.
//!
//! Every method does blocking filesystem IO; async callers run them on a blocking thread.

mod unzip;

#[cfg(test)]
mod tests;

/// Entry points for the `cargo fuzz` targets in `fuzz/`: the zip checker and extractor exactly as
/// [`CodeStore`] runs them, without the blob store around them. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    use super::{CodeError, CodeLimits, unzip};

    /// What a package holds once checked: entries and real inflated bytes.
    pub type Scanned = (usize, u64);

    pub fn scan(zip: &[u8], limits: &CodeLimits) -> Result<Scanned, CodeError> {
        unzip::scan(zip, limits).map(|s| (s.entries, s.unzipped_bytes))
    }

    pub fn extract(zip: &[u8], limits: &CodeLimits, dest: &Path) -> Result<Scanned, CodeError> {
        unzip::extract(zip, limits, dest).map(|s| (s.entries, s.unzipped_bytes))
    }
}

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// Zipped deployment package, "50 MB (zipped, when uploaded through the Lambda API or SDKs)".
/// Source: <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>. AWS counts it in
/// MiB: its error for a larger upload reads "Zipped size must be smaller than 52428800 bytes".
pub const MAX_ZIPPED_BYTES: u64 = 52_428_800;

/// Unzipped deployment package, "250 MB (unzipped)", the contents of the package (and its layers).
/// Source: <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>. AWS reports it as
/// "Unzipped size must be smaller than 262144000 bytes".
pub const MAX_UNZIPPED_BYTES: u64 = 262_144_000;

/// Entries in one package. AWS documents no such limit; this one is ours. It is the classic zip format's
/// own ceiling (a 16-bit entry count; more needs zip64), above real packages (a large node_modules tree
/// or a scientific Python stack is tens of thousands of files, and must still fit in 250 MB), and it
/// bounds what a hostile archive of empty entries costs in inodes and extraction time; the unpacked tree
/// may hold twice as many files, directories and links (entries plus the directories their names imply,
/// which an entry count alone does not see). (It cannot bound parsing: the zip crate reads the whole
/// central directory before it can be counted, about 180 bytes of memory an entry, so some 100 MB for
/// the 550,000 empty entries a 50 MB zip can hold.)
pub const MAX_ENTRIES: usize = 65_535;

/// Linux's own bounds on a path (`PATH_MAX`, including its NUL) and on one component (`NAME_MAX`).
/// Names beyond them cannot be created, so they are refused up front as the zip's fault, not ours.
const MAX_PATH_BYTES: usize = 4095;
const MAX_COMPONENT_BYTES: usize = 255;

/// The limits one store enforces. Production uses [`CodeLimits::default`] (the AWS values); tests lower
/// them so that a bomb need not really inflate to 250 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLimits {
    pub max_zipped_bytes: u64,
    pub max_unzipped_bytes: u64,
    pub max_entries: usize,
}

impl Default for CodeLimits {
    fn default() -> Self {
        Self { max_zipped_bytes: MAX_ZIPPED_BYTES, max_unzipped_bytes: MAX_UNZIPPED_BYTES, max_entries: MAX_ENTRIES }
    }
}

/// The SHA-256 of a deployment package's zip bytes: its identity in the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeDigest([u8; 32]);

impl CodeDigest {
    /// The digest of some zip bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// What AWS reports as `CodeSha256`: standard base64 (with padding) of the raw digest.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Lowercase hex, 64 characters: the form used in file names and for storing the digest as text.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Parses [`CodeDigest::to_hex`]'s form back (either case). `None` for anything else, which is how
    /// foreign files in the store's directories are told apart from ours.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            *slot = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Self(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for CodeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for CodeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeDigest({})", self.to_hex())
    }
}

/// What [`CodeStore::put_zip`] stored: `CodeSha256` and `CodeSize` for the function's configuration, and
/// the real inflated size (which the layers' share of the 250 MB budget will be added to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCode {
    pub digest: CodeDigest,
    pub size_bytes: u64,
    pub unzipped_bytes: u64,
}

/// Why one zip entry was refused. Each of these is something a legitimate package never needs and an
/// extractor that "fixed" it silently would turn into a different tree than the author built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("its name contains a NUL byte")]
    NulInName,
    #[error("its name is an absolute path")]
    AbsolutePath,
    #[error("its name has a '..' component")]
    ParentComponent,
    #[error("its name is longer than Linux allows (255 bytes a component, 4095 in all)")]
    NameTooLong,
    #[error("another entry has the same name")]
    Duplicate,
    #[error("it lies inside {ancestor:?}, which is a file or a symlink, not a directory")]
    InsideNonDirectory { ancestor: String },
    #[error("it is a special file (mode {mode:o}), not a file, directory or symlink")]
    SpecialFile { mode: u32 },
    #[error("it is encrypted")]
    Encrypted,
    #[error("it is a symlink with an empty, overlong or NUL-containing target")]
    BadSymlinkTarget,
    #[error("it is a symlink to the absolute path {target:?}")]
    AbsoluteSymlink { target: String },
    #[error("it is a symlink to {target:?}, which points outside the package")]
    SymlinkEscapes { target: String },
    #[error("it is a symlink to {target:?}, whose '..' after a name could climb out through another symlink")]
    SymlinkIndirect { target: String },
}

/// Everything that can go wrong storing, reading or unpacking code. Each variant carries the facts;
/// [`CodeError::aws_error`] says what the API answers.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("the zip is {size} bytes, over the {limit}-byte limit")]
    ZipTooLarge { size: u64, limit: u64 },
    #[error("the zip has no entries")]
    Empty,
    #[error("not a readable zip: {reason}")]
    NotAZip { reason: String },
    #[error("the zip has {count} entries, over the limit of {limit}")]
    TooManyEntries { count: usize, limit: usize },
    /// Its entries plus the directories their names imply: each one is an inode and a system call.
    #[error("the zip's tree would hold {nodes} files, directories and links, over the limit of {limit}")]
    TreeTooLarge { nodes: usize, limit: usize },
    #[error("zip entry {entry:?} refused: {problem}")]
    InvalidEntry { entry: String, problem: EntryProblem },
    #[error("zip entry {entry:?} cannot be unpacked: {reason}")]
    UnreadableEntry { entry: String, reason: String },
    #[error("unzipped size reached {at_least} bytes at entry {entry:?}, over the {limit}-byte limit")]
    UnzippedTooLarge { at_least: u64, limit: u64, entry: String },
    #[error("no stored code with digest {digest}")]
    NotFound { digest: CodeDigest },
    #[error("stored code {digest} is corrupt: its bytes hash to {actual}")]
    CorruptBlob { digest: CodeDigest, actual: CodeDigest },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The AWS error a [`CodeError`] becomes on the wire: HTTP status, `x-amzn-ErrorType`, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

/// AWS's message for any package it cannot unpack.
const COULD_NOT_UNZIP: &str = "Could not unzip uploaded file. Please check your file, then try to upload again.";

impl CodeError {
    /// The answer AWS gives for the same failure. Where AWS would have accepted a package that Nimbus
    /// refuses on purpose (hostile names, too many entries), the AWS message is kept and Nimbus's reason
    /// is appended, so that SDKs branch the same way and a person still learns what to fix.
    pub fn aws_error(&self) -> AwsError {
        let invalid = |message: String| AwsError { status: 400, code: "InvalidParameterValueException", message };
        match self {
            Self::ZipTooLarge { limit, .. } => AwsError {
                status: 413,
                code: "RequestEntityTooLargeException",
                message: format!("Zipped size must be smaller than {limit} bytes"),
            },
            Self::Empty => invalid("Uploaded file must be a non-empty zip".to_owned()),
            Self::NotAZip { .. } | Self::UnreadableEntry { .. } => invalid(COULD_NOT_UNZIP.to_owned()),
            Self::TooManyEntries { count, limit } => {
                invalid(format!("{COULD_NOT_UNZIP} The zip has {count} entries; at most {limit} are allowed."))
            }
            Self::TreeTooLarge { nodes, limit } => invalid(format!(
                "{COULD_NOT_UNZIP} Its tree would hold {nodes} files, directories and links; at most {limit} are \
                 allowed."
            )),
            Self::InvalidEntry { entry, problem } => {
                invalid(format!("{COULD_NOT_UNZIP} Entry {entry:?} is refused: {problem}."))
            }
            Self::UnzippedTooLarge { limit, .. } => {
                invalid(format!("Unzipped size must be smaller than {limit} bytes"))
            }
            // The rest are Nimbus's own faults (a blob lost or damaged on disk, a full disk): the
            // caller did nothing wrong, and the details belong in the server log, not in the answer.
            Self::NotFound { .. } | Self::CorruptBlob { .. } | Self::Io { .. } => AwsError {
                status: 500,
                code: "ServiceException",
                message: "The function code could not be stored or read; see the Nimbus server log.".to_owned(),
            },
        }
    }

    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| Self::Io { op, path: path.to_owned(), source }
    }
}

/// Content-addressed store of deployment packages and their unpacked trees.
#[derive(Debug)]
pub struct CodeStore {
    root: PathBuf,
    limits: CodeLimits,
    /// One lock per digest being unpacked, so that ten cold starts of one function extract its code
    /// once instead of ten times; different digests unpack in parallel. Across processes the final
    /// rename alone keeps things correct.
    unpacking: Mutex<HashMap<CodeDigest, Arc<Mutex<()>>>>,
}

/// Where the store records the boot its unpacked trees were written in.
const BOOT_ID_FILE: &str = "unpacked.boot_id";

/// Linux's identifier of the running kernel instance; it changes at every boot. `None` elsewhere, which
/// makes every `open` discard the unpacked trees: correct, just slower.
fn current_boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// Makes temp names unique within this process; the pid makes them unique across processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl CodeStore {
    /// Opens (creating as needed) the store at `root` with the AWS limits.
    ///
    /// Whatever a crash left under `tmp/` is deleted, and so are unpacked trees from an earlier boot (see
    /// the module docs), so call this once per data directory, at startup, before anything else in the
    /// process uses the store.
    pub fn open(root: &Path) -> Result<Self, CodeError> {
        Self::with_limits(root, CodeLimits::default())
    }

    /// [`CodeStore::open`] with other limits.
    pub fn with_limits(root: &Path, limits: CodeLimits) -> Result<Self, CodeError> {
        Self::open_at_boot(root, limits, current_boot_id())
    }

    /// `open`, told which boot this is (`None`: unknown, so no tree on disk can be trusted).
    fn open_at_boot(root: &Path, limits: CodeLimits, boot_id: Option<String>) -> Result<Self, CodeError> {
        let store = Self { root: root.to_owned(), limits, unpacking: Mutex::new(HashMap::new()) };
        for dir in [store.root.clone(), store.blobs_dir(), store.tmp_dir()] {
            fs::create_dir_all(&dir).map_err(CodeError::io("create directory", &dir))?;
        }
        let boot_file = store.root.join(BOOT_ID_FILE);
        let recorded = fs::read_to_string(&boot_file).ok();
        let trees_trusted = boot_id.is_some() && recorded.as_deref().map(str::trim) == boot_id.as_deref();
        let unpacked = store.unpacked_dir();
        if !trees_trusted && unpacked.exists() {
            // Moved into the work area, the old trees vanish at once and are deleted with it below.
            let stale = store.temp_path("stale-unpacked");
            fs::rename(&unpacked, &stale).map_err(CodeError::io("move out", &unpacked))?;
            tracing::info!("discarding unpacked code from an earlier boot; it is unpacked again on first use");
        }
        // Deleting the whole work area (rather than entry by entry) also copes with a half-built tree.
        let tmp = store.tmp_dir();
        fs::remove_dir_all(&tmp).map_err(CodeError::io("remove leftovers", &tmp))?;
        for dir in [&tmp, &unpacked] {
            fs::create_dir_all(dir).map_err(CodeError::io("create directory", dir))?;
        }
        if let Some(boot_id) = boot_id.filter(|_| !trees_trusted) {
            // Recorded only after the old trees are gone: a crash in between just discards them again.
            let tmp_file = store.temp_path("boot");
            write_synced(&tmp_file, boot_id.as_bytes())?;
            fs::rename(&tmp_file, &boot_file).map_err(CodeError::io("rename into place", &boot_file))?;
            sync_dir(&store.root)?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn limits(&self) -> CodeLimits {
        self.limits
    }

    /// Checks a deployment package completely, then stores it under its digest. Storing the same bytes
    /// again is a cheap no-op that returns the same answer.
    pub fn put_zip(&self, zip: &[u8]) -> Result<StoredCode, CodeError> {
        let size_bytes = zip.len() as u64;
        if size_bytes > self.limits.max_zipped_bytes {
            return Err(CodeError::ZipTooLarge { size: size_bytes, limit: self.limits.max_zipped_bytes });
        }
        let scanned = unzip::scan(zip, &self.limits)?;
        let digest = CodeDigest::of(zip);
        let stored = StoredCode { digest, size_bytes, unzipped_bytes: scanned.unzipped_bytes };

        let path = self.zip_path(&digest);
        if path.is_file() {
            // Same name, same bytes: the blob was renamed into place whole, so it is already right.
            return Ok(stored);
        }
        let tmp = self.temp_path("zip");
        let written = write_synced(&tmp, zip).and_then(|()| {
            fs::rename(&tmp, &path).map_err(CodeError::io("rename into place", &path))?;
            sync_dir(&self.blobs_dir())
        });
        if written.is_err() {
            // Best effort: a leftover would be removed by the next open anyway.
            let _ = fs::remove_file(&tmp);
        }
        written?;
        tracing::info!(digest = %digest, size_bytes, unzipped_bytes = stored.unzipped_bytes, entries = scanned.entries, "stored code");
        Ok(stored)
    }

    /// Where the zip of `digest` lives (whether or not it exists), for serving it back as it was uploaded.
    pub fn zip_path(&self, digest: &CodeDigest) -> PathBuf {
        self.blobs_dir().join(format!("{}.zip", digest.to_hex()))
    }

    /// The stored zip's bytes, checked against the digest so that disk damage is never served as code.
    pub fn read_zip(&self, digest: &CodeDigest) -> Result<Vec<u8>, CodeError> {
        let path = self.zip_path(digest);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CodeError::NotFound { digest: *digest },
            _ => CodeError::io("read", &path)(e),
        })?;
        let actual = CodeDigest::of(&bytes);
        if actual != *digest {
            return Err(CodeError::CorruptBlob { digest: *digest, actual });
        }
        Ok(bytes)
    }

    /// The unpacked tree of `digest` (what becomes `/var/task`), extracted on first call. Callers never
    /// see a partial tree: extraction happens under `tmp/` and the finished tree is renamed in.
    pub fn unpacked(&self, digest: &CodeDigest) -> Result<PathBuf, CodeError> {
        let dir = self.unpacked_path(digest);
        if dir.is_dir() {
            return Ok(dir);
        }
        let lock = self.digest_lock(digest);
        let result = {
            let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
            // Whoever held the lock before us may have just finished the same work.
            if dir.is_dir() { Ok(dir) } else { self.extract(digest, dir) }
        };
        self.release_digest_lock(digest, lock);
        result
    }

    /// Deletes every blob and unpacked tree whose digest is not in `keep`, returning how many digests
    /// were removed. `keep` must name all code that any function version references, including code
    /// whose upload is still being recorded, and every tree a live environment runs from.
    pub fn remove_unreferenced(&self, keep: &HashSet<CodeDigest>) -> Result<usize, CodeError> {
        let mut removed = HashSet::new();
        for (digest, path) in self.list(&self.blobs_dir(), |name| name.strip_suffix(".zip"))? {
            if keep.contains(&digest) {
                continue;
            }
            fs::remove_file(&path).map_err(CodeError::io("remove", &path))?;
            removed.insert(digest);
        }
        sync_dir(&self.blobs_dir())?;
        for (digest, path) in self.list(&self.unpacked_dir(), |name| Some(name))? {
            if keep.contains(&digest) {
                continue;
            }
            let lock = self.digest_lock(&digest);
            let result = {
                let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
                // Moving the tree out first makes it vanish at once, so `unpacked` never hands out a
                // directory that is being emptied.
                let doomed = self.temp_path("gc");
                fs::rename(&path, &doomed)
                    .map_err(CodeError::io("move out", &path))
                    .and_then(|()| fs::remove_dir_all(&doomed).map_err(CodeError::io("remove", &doomed)))
            };
            self.release_digest_lock(&digest, lock);
            result?;
            removed.insert(digest);
        }
        if !removed.is_empty() {
            tracing::info!(removed = removed.len(), kept = keep.len(), "removed unreferenced code");
        }
        Ok(removed.len())
    }

    fn extract(&self, digest: &CodeDigest, dir: PathBuf) -> Result<PathBuf, CodeError> {
        let zip = self.read_zip(digest)?;
        let tmp = self.temp_path("tree");
        let result = unzip::extract(&zip, &self.limits, &tmp).and_then(|scanned| {
            match fs::rename(&tmp, &dir) {
                Ok(()) => {}
                // Another process finished the same tree first; theirs is as good as ours.
                Err(_) if dir.is_dir() => {
                    let _ = fs::remove_dir_all(&tmp);
                    return Ok(());
                }
                Err(e) => return Err(CodeError::io("rename into place", &dir)(e)),
            }
            tracing::info!(digest = %digest, entries = scanned.entries, unzipped_bytes = scanned.unzipped_bytes, "unpacked code");
            Ok(())
        });
        if let Err(e) = &result {
            tracing::warn!(digest = %digest, error = %e, "unpacking stored code failed");
            let _ = fs::remove_dir_all(&tmp);
        }
        result.map(|()| dir)
    }

    /// The entries of `dir` whose names `digest_part` maps to a hex digest. Anything else (a file an
    /// operator put there, say) is left alone, with a warning.
    fn list(
        &self,
        dir: &Path,
        digest_part: impl Fn(&str) -> Option<&str>,
    ) -> Result<Vec<(CodeDigest, PathBuf)>, CodeError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).map_err(CodeError::io("list", dir))? {
            let entry = entry.map_err(CodeError::io("list", dir))?;
            let name = entry.file_name();
            match name.to_str().and_then(&digest_part).and_then(CodeDigest::from_hex) {
                Some(digest) => out.push((digest, entry.path())),
                None => tracing::warn!(path = %entry.path().display(), "ignoring a file the code store did not make"),
            }
        }
        Ok(out)
    }

    fn digest_lock(&self, digest: &CodeDigest) -> Arc<Mutex<()>> {
        // A panic while the map was locked cannot leave it inconsistent (each operation is one call).
        let mut map = self.unpacking.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(*digest).or_default())
    }

    fn release_digest_lock(&self, digest: &CodeDigest, lock: Arc<Mutex<()>>) {
        let mut map = self.unpacking.lock().unwrap_or_else(PoisonError::into_inner);
        // Two references (the map's and ours) mean nobody else is waiting: forget the digest so the map
        // only ever holds work in progress.
        if Arc::strong_count(&lock) == 2 {
            map.remove(digest);
        }
    }

    fn unpacked_path(&self, digest: &CodeDigest) -> PathBuf {
        self.unpacked_dir().join(digest.to_hex())
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    fn unpacked_dir(&self) -> PathBuf {
        self.root.join("unpacked")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn temp_path(&self, kind: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir().join(format!("{kind}-{}-{n}", std::process::id()))
    }
}

/// Writes a new file and makes its contents durable before anyone can rename it into view.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CodeError> {
    let mut file = File::create_new(path).map_err(CodeError::io("create", path))?;
    file.write_all(bytes).map_err(CodeError::io("write", path))?;
    file.sync_all().map_err(CodeError::io("sync", path))
}

/// Makes a directory's entries (a rename into it, say) durable.
fn sync_dir(dir: &Path) -> Result<(), CodeError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(CodeError::io("sync directory", dir))
}
