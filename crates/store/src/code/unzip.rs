//! Checking and extracting deployment packages. We do not use the zip crate's `extract`: it re-roots
//! absolute names instead of refusing them, enforces none of our limits, and leaves mode-less entries
//! 0600/0700. Here every entry is judged before anything is written, and extraction counts the bytes
//! it really inflates rather than trusting the sizes the archive declares.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Cursor, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use super::{CodeError, CodeLimits, EntryProblem, MAX_COMPONENT_BYTES, MAX_PATH_BYTES};

/// File-type bits of a Unix mode, as zip's "external attributes" carry them.
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// The two modes files get, the ones AWS's packaging docs ask for. Functions run as a uid that does not
/// own these files, so owner-only bits (0700, 0600) would lock them out; setuid and friends are dropped.
const FILE_MODE: u32 = 0o644;
const EXECUTABLE_MODE: u32 = 0o755;
const DIR_MODE: u32 = 0o755;

const COPY_BUFFER_BYTES: usize = 64 * 1024;

/// What a full pass over a package found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Scanned {
    pub entries: usize,
    /// Bytes actually inflated: file contents plus symlink targets.
    pub unzipped_bytes: u64,
}

/// Checks `zip` completely (names, types, symlinks, limits, every byte inflated and its CRC) without
/// writing anything.
pub(super) fn scan(zip: &[u8], limits: &CodeLimits) -> Result<Scanned, CodeError> {
    walk(zip, limits, None)
}

/// Extracts `zip` into `dest`, which must not exist yet, with the same checks as [`scan`]. On error,
/// `dest` may hold a partial tree for the caller to delete.
pub(super) fn extract(zip: &[u8], limits: &CodeLimits, dest: &Path) -> Result<Scanned, CodeError> {
    walk(zip, limits, Some(dest))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File { executable: bool },
    Symlink,
}

/// One entry that passed the metadata checks.
struct Planned {
    index: usize,
    /// The name as the archive spells it, for error messages.
    name: String,
    /// The normalized relative path: components joined by '/', never empty.
    rel: String,
    kind: Kind,
}

fn walk(zip: &[u8], limits: &CodeLimits, dest: Option<&Path>) -> Result<Scanned, CodeError> {
    if zip.is_empty() {
        return Err(CodeError::Empty);
    }
    let mut archive = ZipArchive::new(Cursor::new(zip)).map_err(|e| CodeError::NotAZip { reason: e.to_string() })?;
    // The zip crate keys entries by name, so exact duplicates are collapsed silently: ask for them
    // explicitly, or one of two different files would vanish without a word.
    if archive.has_duplicate_names() {
        let entry = first_duplicate_name(zip, &archive).unwrap_or_else(|| "(unknown)".to_owned());
        return Err(CodeError::InvalidEntry { entry, problem: EntryProblem::Duplicate });
    }
    if archive.is_empty() {
        return Err(CodeError::Empty);
    }
    if archive.len() > limits.max_entries {
        return Err(CodeError::TooManyEntries { count: archive.len(), limit: limits.max_entries });
    }
    let planned = plan(&archive, limits)?;
    if planned.is_empty() {
        // Only root entries such as "./": nothing to run.
        return Err(CodeError::Empty);
    }

    // Directories come first (parents before children: `PathBuf` orders by component), then files,
    // then symlinks. With no symlink on disk while files are written, and no entry inside a file or a
    // symlink (checked in `plan`), no write can be redirected by anything the archive made.
    let dirs = directories(&planned);
    // Directories that deeper names imply cost an inode and a mkdir each, like entries, and one 4 KB name
    // ("d/d/d/…/f") implies 2,000 of them: without this, 6,000 such entries in a 50 MB zip would make
    // 12 million directories. A tree may hold as many directories again as the entry limit.
    let nodes = dirs.len() + planned.iter().filter(|e| e.kind != Kind::Dir).count();
    let node_limit = limits.max_entries.saturating_mul(2);
    if nodes > node_limit {
        return Err(CodeError::TreeTooLarge { nodes, limit: node_limit });
    }
    if let Some(dest) = dest {
        make_dir(dest)?;
        for dir in &dirs {
            make_dir(&dest.join(dir))?;
        }
    }

    let mut buffer = vec![0u8; COPY_BUFFER_BYTES];
    let mut total: u64 = 0;
    let mut links = Vec::new();
    for entry in &planned {
        let unreadable =
            |e: &dyn std::fmt::Display| CodeError::UnreadableEntry { entry: entry.name.clone(), reason: e.to_string() };
        let too_large = |at_least: u64| CodeError::UnzippedTooLarge {
            at_least,
            limit: limits.max_unzipped_bytes,
            entry: entry.name.clone(),
        };
        match entry.kind {
            Kind::Dir => {}
            Kind::File { executable } => {
                let mut reader = archive.by_index(entry.index).map_err(|e| unreadable(&e))?;
                let budget = limits.max_unzipped_bytes.saturating_sub(total);
                let copied = match dest {
                    None => copy_capped(&mut reader, &mut io::sink(), budget, &mut buffer)
                        .map_err(|e| e.into_code_error(&entry.name, total, limits, None)),
                    Some(dest) => {
                        let path = dest.join(&entry.rel);
                        let mut file = OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .mode(0o600)
                            .open(&path)
                            .map_err(CodeError::io("create", &path))?;
                        let copied = copy_capped(&mut reader, &mut file, budget, &mut buffer)
                            .map_err(|e| e.into_code_error(&entry.name, total, limits, Some(&path)))?;
                        let mode = if executable { EXECUTABLE_MODE } else { FILE_MODE };
                        // Set explicitly: the mode given at creation is filtered by the umask.
                        file.set_permissions(Permissions::from_mode(mode))
                            .map_err(CodeError::io("set permissions", &path))?;
                        Ok(copied)
                    }
                }?;
                total += copied;
            }
            Kind::Symlink => {
                let reader = archive.by_index(entry.index).map_err(|e| unreadable(&e))?;
                let mut target = Vec::new();
                // One byte past the longest valid target is enough to know it is too long; reading to
                // the end otherwise also checks the CRC.
                reader.take(MAX_PATH_BYTES as u64 + 1).read_to_end(&mut target).map_err(|e| unreadable(&e))?;
                check_symlink(&entry.rel, &target)
                    .map_err(|problem| CodeError::InvalidEntry { entry: entry.name.clone(), problem })?;
                total += target.len() as u64;
                if total > limits.max_unzipped_bytes {
                    return Err(too_large(total));
                }
                links.push((entry.rel.as_str(), target));
            }
        }
    }

    if let Some(dest) = dest {
        for (rel, target) in &links {
            let path = dest.join(rel);
            std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)
                .map_err(CodeError::io("create symlink", &path))?;
        }
    }
    Ok(Scanned { entries: planned.len(), unzipped_bytes: total })
}

/// Judges every entry from the central directory alone, before anything is inflated or written.
fn plan(archive: &ZipArchive<Cursor<&[u8]>>, limits: &CodeLimits) -> Result<Vec<Planned>, CodeError> {
    let mut planned: Vec<Planned> = Vec::with_capacity(archive.len());
    let mut by_path: HashMap<String, usize> = HashMap::with_capacity(archive.len());
    let mut declared: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index_data(index).map_err(|e| CodeError::NotAZip { reason: e.to_string() })?;
        // Names that are not UTF-8 are CP437 by the zip spec; the crate decodes them.
        let name = match entry.name() {
            Ok(name) => name.into_owned(),
            Err(e) => {
                let entry = String::from_utf8_lossy(entry.name_raw()).into_owned();
                return Err(CodeError::UnreadableEntry { entry, reason: e.to_string() });
            }
        };
        let invalid = |problem| CodeError::InvalidEntry { entry: name.clone(), problem };
        if entry.name_raw().contains(&0) {
            return Err(invalid(EntryProblem::NulInName));
        }
        if entry.encrypted() {
            return Err(invalid(EntryProblem::Encrypted));
        }
        let kind = classify(&name, entry.unix_mode()).map_err(invalid)?;
        let Some(rel) = normalize(&name).map_err(invalid)? else {
            // "./" and the like name the package root itself, which exists anyway.
            if kind == Kind::Dir {
                continue;
            }
            return Err(invalid(EntryProblem::AbsolutePath));
        };
        if kind != Kind::Dir {
            // Refuse a bomb that admits what it is before inflating a byte of it; the real count
            // during inflation catches the ones that lie.
            declared = declared.saturating_add(entry.size());
            if declared > limits.max_unzipped_bytes {
                return Err(CodeError::UnzippedTooLarge {
                    at_least: declared,
                    limit: limits.max_unzipped_bytes,
                    entry: name,
                });
            }
        }
        if by_path.insert(rel.clone(), planned.len()).is_some() {
            return Err(invalid(EntryProblem::Duplicate));
        }
        planned.push(Planned { index, name, rel, kind });
    }
    for entry in &planned {
        for ancestor in ancestors(&entry.rel) {
            if let Some(&i) = by_path.get(ancestor)
                && planned[i].kind != Kind::Dir
            {
                return Err(CodeError::InvalidEntry {
                    entry: entry.name.clone(),
                    problem: EntryProblem::InsideNonDirectory { ancestor: ancestor.to_owned() },
                });
            }
        }
    }
    Ok(planned)
}

/// What an entry is. A trailing '/' makes a directory whatever the mode says (as every unzip does);
/// otherwise the Unix file type decides, and an entry without one (a zip from Windows) is a file.
fn classify(name: &str, mode: Option<u32>) -> Result<Kind, EntryProblem> {
    if name.ends_with('/') {
        return Ok(Kind::Dir);
    }
    let Some(mode) = mode else {
        return Ok(Kind::File { executable: false });
    };
    match mode & S_IFMT {
        S_IFDIR => Ok(Kind::Dir),
        S_IFLNK => Ok(Kind::Symlink),
        S_IFREG | 0 => Ok(Kind::File { executable: mode & 0o111 != 0 }),
        _ => Err(EntryProblem::SpecialFile { mode }),
    }
}

/// The entry's path relative to the package root, or `None` for the root itself. Only '/' separates:
/// Lambda runs on Linux, where a '\' is part of a name, so `a\b` stays one (harmless) name here as it
/// does on AWS. Names are refused, never repaired, so the tree is exactly the one the author zipped.
fn normalize(name: &str) -> Result<Option<String>, EntryProblem> {
    if name.contains('\0') {
        return Err(EntryProblem::NulInName);
    }
    if name.starts_with('/') {
        return Err(EntryProblem::AbsolutePath);
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(EntryProblem::ParentComponent),
            part if part.len() > MAX_COMPONENT_BYTES => return Err(EntryProblem::NameTooLong),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let rel = parts.join("/");
    if rel.len() > MAX_PATH_BYTES {
        return Err(EntryProblem::NameTooLong);
    }
    Ok(Some(rel))
}

/// The proper ancestors of a normalized path, nearest first: "a/b/c" gives "a/b", "a".
fn ancestors(rel: &str) -> impl Iterator<Item = &str> {
    let mut rest = rel;
    std::iter::from_fn(move || {
        let cut = rest.rfind('/')?;
        rest = &rest[..cut];
        Some(rest)
    })
}

/// Every directory the tree needs, explicit or implied by a deeper entry.
fn directories(planned: &[Planned]) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    for entry in planned {
        if entry.kind == Kind::Dir {
            dirs.insert(PathBuf::from(&entry.rel));
        }
        dirs.extend(ancestors(&entry.rel).map(PathBuf::from));
    }
    dirs
}

fn make_dir(path: &Path) -> Result<(), CodeError> {
    DirBuilder::new().mode(DIR_MODE).create(path).map_err(CodeError::io("create directory", path))?;
    // The umask may have taken bits from the mode above.
    fs::set_permissions(path, Permissions::from_mode(DIR_MODE)).map_err(CodeError::io("set permissions", path))
}

/// A symlink may point anywhere inside the package, and nowhere else. Its target is checked as text:
/// not absolute, and its '..'s may only come first, and no more of them than the link has directories
/// above it. A '..' after a name is refused because the name could itself be a symlink, and then '..'
/// climbs from wherever that leads (`a/l -> ..` then `m -> a/l/..` escapes, though each looks inside).
/// With '..'s only up front, every step of a resolution stays within real directories of the tree.
fn check_symlink(rel: &str, target: &[u8]) -> Result<(), EntryProblem> {
    if target.is_empty() || target.len() > MAX_PATH_BYTES || target.contains(&0) {
        return Err(EntryProblem::BadSymlinkTarget);
    }
    let shown = || String::from_utf8_lossy(target).into_owned();
    if target.starts_with(b"/") {
        return Err(EntryProblem::AbsoluteSymlink { target: shown() });
    }
    let depth = rel.matches('/').count();
    let mut ups = 0;
    let mut seen_name = false;
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if seen_name => return Err(EntryProblem::SymlinkIndirect { target: shown() }),
            b".." => {
                ups += 1;
                if ups > depth {
                    return Err(EntryProblem::SymlinkEscapes { target: shown() });
                }
            }
            _ => seen_name = true,
        }
    }
    Ok(())
}

#[derive(Debug)]
pub(super) enum CopyError {
    Read(io::Error),
    Write(io::Error),
    /// More than the budget came out; `read` is how much had when we stopped.
    OverBudget {
        read: u64,
    },
}

impl CopyError {
    fn into_code_error(self, entry: &str, before: u64, limits: &CodeLimits, path: Option<&Path>) -> CodeError {
        match self {
            Self::Read(e) => CodeError::UnreadableEntry { entry: entry.to_owned(), reason: e.to_string() },
            Self::OverBudget { read } => CodeError::UnzippedTooLarge {
                at_least: before.saturating_add(read),
                limit: limits.max_unzipped_bytes,
                entry: entry.to_owned(),
            },
            Self::Write(source) => {
                CodeError::Io { op: "write", path: path.map(Path::to_owned).unwrap_or_default(), source }
            }
        }
    }
}

/// Copies until the reader ends, failing as soon as more than `budget` bytes have come out of it. This
/// is what stops a bomb: it counts what the decompressor really produces, whatever the headers claim,
/// and never writes a byte past the budget.
pub(super) fn copy_capped(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    budget: u64,
    buffer: &mut [u8],
) -> Result<u64, CopyError> {
    let mut copied: u64 = 0;
    loop {
        let n = match reader.read(buffer) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        copied += n as u64;
        if copied > budget {
            return Err(CopyError::OverBudget { read: copied });
        }
        writer.write_all(&buffer[..n]).map_err(CopyError::Write)?;
    }
}

/// The first name that occurs twice in the central directory, read from the raw records because the
/// zip crate has already merged the duplicates.
fn first_duplicate_name(zip: &[u8], archive: &ZipArchive<Cursor<&[u8]>>) -> Option<String> {
    const CENTRAL_HEADER_SIGNATURE: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
    const CENTRAL_HEADER_BYTES: usize = 46;
    let start = usize::try_from(archive.central_directory_start()).ok()?;
    let offset = usize::try_from(archive.offset()).ok()?;
    // Whether the crate's offset already includes prepended data is not documented; try both.
    let mut pos = [start, start.checked_add(offset)?]
        .into_iter()
        .find(|&p| zip.get(p..p + 4) == Some(&CENTRAL_HEADER_SIGNATURE[..]))?;
    let mut seen = HashSet::new();
    while zip.get(pos..pos + 4) == Some(&CENTRAL_HEADER_SIGNATURE[..]) {
        let header = zip.get(pos..pos.checked_add(CENTRAL_HEADER_BYTES)?)?;
        let field = |at: usize| usize::from(u16::from_le_bytes([header[at], header[at + 1]]));
        let (name_len, extra_len, comment_len) = (field(28), field(30), field(32));
        let name_start = pos + CENTRAL_HEADER_BYTES;
        let name = zip.get(name_start..name_start.checked_add(name_len)?)?;
        if !seen.insert(name) {
            return Some(String::from_utf8_lossy(name).into_owned());
        }
        pos = name_start + name_len + extra_len + comment_len;
    }
    None
}
