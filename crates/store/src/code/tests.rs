use std::collections::HashSet;
use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, System, ZipWriter};

use super::unzip::{CopyError, copy_capped};
use super::*;

/// One entry of a test zip.
enum E<'a> {
    /// Contents and the Unix permission bits (`None`: no mode at all, as zips made on Windows have).
    File(&'a [u8], Option<u32>),
    Dir,
    Link(&'a str),
    /// Raw external attributes, for modes the writer's helpers will not produce.
    Raw(&'a [u8], u32),
}

fn zip_of(entries: &[(&str, E<'_>)]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, entry) in entries {
        match entry {
            E::File(data, mode) => {
                let options = match mode {
                    Some(mode) => deflated.unix_permissions(*mode),
                    None => deflated.system(System::Dos).external_attributes(0),
                };
                writer.start_file(*name, options).unwrap();
                writer.write_all(data).unwrap();
            }
            E::Dir => writer.add_directory(*name, SimpleFileOptions::default()).unwrap(),
            E::Link(target) => writer.add_symlink(*name, *target, SimpleFileOptions::default()).unwrap(),
            E::Raw(data, attributes) => {
                writer.start_file(*name, deflated.system(System::Unix).external_attributes(*attributes)).unwrap();
                writer.write_all(data).unwrap();
            }
        }
    }
    writer.finish().unwrap().into_inner()
}

fn store() -> (tempfile::TempDir, CodeStore) {
    store_with(CodeLimits::default())
}

fn store_with(limits: CodeLimits) -> (tempfile::TempDir, CodeStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = CodeStore::with_limits(&dir.path().join("code"), limits).unwrap();
    (dir, store)
}

fn small_limits() -> CodeLimits {
    CodeLimits { max_zipped_bytes: MAX_ZIPPED_BYTES, max_unzipped_bytes: 1 << 20, max_entries: 100 }
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Replaces every occurrence of `from` with `to` (same length) in the zip's bytes: the way to write
/// names and sizes that the zip crate's writer refuses to produce.
fn patch(zip: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= zip.len() {
        if &zip[i..i + from.len()] == from {
            zip[i..i + from.len()].copy_from_slice(to);
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found >= 2, "expected the name in the local and the central header, found {found}");
}

/// Offsets of every local (PK\3\4) and central (PK\1\2) header.
fn headers(zip: &[u8], signature: [u8; 4]) -> Vec<usize> {
    (0..zip.len().saturating_sub(3)).filter(|&i| zip[i..i + 4] == signature).collect()
}

const LOCAL: [u8; 4] = [0x50, 0x4b, 0x03, 0x04];
const CENTRAL: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];

/// Rewrites the declared uncompressed size of every entry, in both headers.
fn lie_about_size(zip: &mut [u8], size: u32) {
    for at in headers(zip, LOCAL) {
        zip[at + 22..at + 26].copy_from_slice(&size.to_le_bytes());
    }
    for at in headers(zip, CENTRAL) {
        zip[at + 24..at + 28].copy_from_slice(&size.to_le_bytes());
    }
}

fn assert_refused(store: &CodeStore, zip: &[u8], expected: EntryProblem) {
    match store.put_zip(zip) {
        Err(CodeError::InvalidEntry { problem, entry }) => {
            assert_eq!(problem, expected, "entry {entry:?}");
        }
        other => panic!("expected {expected:?}, got {other:?}"),
    }
    assert!(names_in(&store.blobs_dir()).is_empty(), "nothing may be stored");
    assert!(names_in(&store.tmp_dir()).is_empty(), "no temp file may remain");
}

fn put_then_unpack(store: &CodeStore, zip: &[u8]) -> PathBuf {
    let stored = store.put_zip(zip).unwrap();
    store.unpacked(&stored.digest).unwrap()
}

#[test]
fn round_trip() {
    let (_dir, store) = store();
    let zip = zip_of(&[
        ("bootstrap", E::File(b"#!/bin/sh\necho hi\n", Some(0o755))),
        ("lib/", E::Dir),
        ("lib/handler.py", E::File(b"def handler(e, c):\n    return 1\n", Some(0o644))),
        ("lib/alias.py", E::Link("handler.py")),
        ("deep/er/file.txt", E::File(b"implied directories", Some(0o644))),
    ]);
    let stored = store.put_zip(&zip).unwrap();
    assert_eq!(stored.size_bytes, zip.len() as u64);
    assert_eq!(stored.unzipped_bytes, 18 + 32 + "handler.py".len() as u64 + 19);
    assert_eq!(store.read_zip(&stored.digest).unwrap(), zip);
    assert_eq!(fs::read(store.zip_path(&stored.digest)).unwrap(), zip);

    let tree = store.unpacked(&stored.digest).unwrap();
    assert_eq!(tree, store.root().join("unpacked").join(stored.digest.to_hex()));
    assert_eq!(fs::read(tree.join("bootstrap")).unwrap(), b"#!/bin/sh\necho hi\n");
    assert_eq!(fs::read_to_string(tree.join("lib/alias.py")).unwrap(), "def handler(e, c):\n    return 1\n");
    assert_eq!(fs::read_link(tree.join("lib/alias.py")).unwrap(), Path::new("handler.py"));
    assert_eq!(fs::read_to_string(tree.join("deep/er/file.txt")).unwrap(), "implied directories");
    assert_eq!(mode(&tree), 0o755);
    assert_eq!(mode(&tree.join("lib")), 0o755);
    assert_eq!(mode(&tree.join("deep/er")), 0o755);
    assert_eq!(mode(&tree.join("bootstrap")), 0o755);
    assert_eq!(mode(&tree.join("lib/handler.py")), 0o644);

    // A second call, and a store reopened on the same root, find the tree already there.
    assert_eq!(store.unpacked(&stored.digest).unwrap(), tree);
    let reopened = CodeStore::open(store.root()).unwrap();
    assert_eq!(reopened.unpacked(&stored.digest).unwrap(), tree);
    assert!(names_in(&store.tmp_dir()).is_empty());
}

#[test]
fn digest_is_base64_of_sha256_and_names_the_file() {
    let (_dir, store) = store();
    let zip = zip_of(&[("index.js", E::File(b"exports.handler = async () => 1;", Some(0o644)))]);
    let stored = store.put_zip(&zip).unwrap();
    let sha: [u8; 32] = Sha256::digest(&zip).into();
    assert_eq!(stored.digest.to_base64(), base64::engine::general_purpose::STANDARD.encode(sha));
    assert_eq!(stored.digest.to_base64().len(), 44);
    assert_eq!(stored.digest, CodeDigest::from_bytes(sha));

    let hex = stored.digest.to_hex();
    assert_eq!(hex.len(), 64);
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(CodeDigest::from_hex(&hex), Some(stored.digest));
    assert_eq!(CodeDigest::from_hex(&hex.to_uppercase()), Some(stored.digest));
    assert_eq!(CodeDigest::from_hex(&hex[1..]), None);
    assert_eq!(CodeDigest::from_hex(&format!("g{}", &hex[1..])), None);
    assert_eq!(store.zip_path(&stored.digest).file_name().unwrap().to_str().unwrap(), format!("{hex}.zip"));
    assert_eq!(stored.digest.to_string(), hex);
}

#[test]
fn putting_the_same_bytes_twice_is_a_no_op() {
    let (_dir, store) = store();
    let zip = zip_of(&[("a.py", E::File(b"x = 1", Some(0o644)))]);
    let first = store.put_zip(&zip).unwrap();
    let second = store.put_zip(&zip).unwrap();
    assert_eq!(first, second);
    assert_eq!(names_in(&store.blobs_dir()), vec![format!("{}.zip", first.digest.to_hex())]);
    assert!(names_in(&store.tmp_dir()).is_empty());
}

#[test]
fn executable_bits_survive_and_other_modes_are_normalized() {
    let (_dir, store) = store();
    let zip = zip_of(&[
        ("bootstrap", E::File(b"#!/bin/sh", Some(0o755))),
        ("owner-only-exec", E::File(b"x", Some(0o700))),
        ("private", E::File(b"x", Some(0o600))),
        ("read-only", E::File(b"x", Some(0o400))),
        ("setuid", E::Raw(b"x", (0o104_755) << 16)),
        ("windows.txt", E::File(b"x", None)),
        ("from-windows/bootstrap", E::File(b"x", None)),
        ("locked/", E::Dir),
    ]);
    let tree = put_then_unpack(&store, &zip);
    assert_eq!(mode(&tree.join("bootstrap")), 0o755);
    assert_eq!(mode(&tree.join("owner-only-exec")), 0o755);
    assert_eq!(mode(&tree.join("private")), 0o644);
    assert_eq!(mode(&tree.join("read-only")), 0o644);
    assert_eq!(mode(&tree.join("setuid")), 0o755);
    assert_eq!(mode(&tree.join("windows.txt")), 0o644);
    // AWS does not guess either: a bootstrap zipped without modes is not executable.
    assert_eq!(mode(&tree.join("from-windows/bootstrap")), 0o644);
    assert_eq!(mode(&tree.join("from-windows")), 0o755);
    assert_eq!(mode(&tree.join("locked")), 0o755);
}

#[test]
fn names_that_climb_or_are_absolute_are_refused() {
    let (dir, store) = store();
    let cases: [(&str, EntryProblem); 5] = [
        ("../evil", EntryProblem::ParentComponent),
        ("a/../../evil", EntryProblem::ParentComponent),
        ("a/../b", EntryProblem::ParentComponent),
        ("/abs", EntryProblem::AbsolutePath),
        ("/etc/cron.d/x", EntryProblem::AbsolutePath),
    ];
    for (name, problem) in cases {
        let zip = zip_of(&[("ok.txt", E::File(b"fine", Some(0o644))), (name, E::File(b"evil", Some(0o644)))]);
        assert_refused(&store, &zip, problem);
    }
    assert!(!dir.path().join("evil").exists());
    let long = "x".repeat(256);
    assert_refused(&store, &zip_of(&[(&long, E::File(b"", Some(0o644)))]), EntryProblem::NameTooLong);
}

#[test]
fn names_with_nul_are_refused() {
    let (_dir, store) = store();
    let mut zip = zip_of(&[("evilXname", E::File(b"x", Some(0o644)))]);
    patch(&mut zip, b"evilXname", b"evil\0name");
    assert_refused(&store, &zip, EntryProblem::NulInName);
}

#[test]
fn symlinks_that_escape_are_refused() {
    let (_dir, store) = store();
    let escapes = |target: &str| EntryProblem::SymlinkEscapes { target: target.to_owned() };
    assert_refused(&store, &zip_of(&[("link", E::Link("../../etc"))]), escapes("../../etc"));
    assert_refused(&store, &zip_of(&[("link", E::Link(".."))]), escapes(".."));
    assert_refused(&store, &zip_of(&[("a/b/link", E::Link("../../../x"))]), escapes("../../../x"));
    assert_refused(
        &store,
        &zip_of(&[("link", E::Link("/etc/passwd"))]),
        EntryProblem::AbsoluteSymlink { target: "/etc/passwd".to_owned() },
    );
    // Each link alone stays inside, but `a/l` is the root, so `m` would be the root's parent.
    assert_refused(
        &store,
        &zip_of(&[("a/l", E::Link("..")), ("m", E::Link("a/l/.."))]),
        EntryProblem::SymlinkIndirect { target: "a/l/..".to_owned() },
    );
    assert_refused(&store, &zip_of(&[("empty", E::Link(""))]), EntryProblem::BadSymlinkTarget);
}

#[test]
fn symlinks_inside_the_package_are_kept() {
    let (_dir, store) = store();
    let zip = zip_of(&[
        ("node_modules/pkg/bin/cli.js", E::File(b"#!/usr/bin/env node", Some(0o755))),
        ("node_modules/.bin/cli", E::Link("../pkg/bin/cli.js")),
        ("a/b/up-to-root", E::Link("../../")),
        ("current", E::Link(".")),
        ("dangling", E::Link("not/there")),
    ]);
    let tree = put_then_unpack(&store, &zip);
    assert_eq!(fs::read_to_string(tree.join("node_modules/.bin/cli")).unwrap(), "#!/usr/bin/env node");
    assert!(tree.join("a/b/up-to-root/node_modules").is_dir());
    assert_eq!(fs::read_link(tree.join("dangling")).unwrap(), Path::new("not/there"));
}

#[test]
fn entries_through_a_symlink_or_file_are_refused() {
    let (_dir, store) = store();
    // Written through, `l/x` would land wherever `l` points.
    assert_refused(
        &store,
        &zip_of(&[("l", E::Link("sub")), ("l/x", E::File(b"x", Some(0o644)))]),
        EntryProblem::InsideNonDirectory { ancestor: "l".to_owned() },
    );
    assert_refused(
        &store,
        &zip_of(&[("f/g", E::File(b"x", Some(0o644))), ("f", E::File(b"x", Some(0o644)))]),
        EntryProblem::InsideNonDirectory { ancestor: "f".to_owned() },
    );
}

#[test]
fn duplicate_names_are_refused() {
    let (_dir, store) = store();
    // The writer refuses exact duplicates, so the second name is patched in afterwards.
    let mut zip = zip_of(&[("one.py", E::File(b"first", Some(0o644))), ("two.py", E::File(b"second", Some(0o644)))]);
    patch(&mut zip, b"two.py", b"one.py");
    match store.put_zip(&zip) {
        Err(CodeError::InvalidEntry { entry, problem: EntryProblem::Duplicate }) => assert_eq!(entry, "one.py"),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // Different spellings of one path are duplicates too.
    let same_path = zip_of(&[("a/b.py", E::File(b"1", Some(0o644))), ("a/./b.py", E::File(b"2", Some(0o644)))]);
    assert_refused(&store, &same_path, EntryProblem::Duplicate);
    let file_and_dir = zip_of(&[("x", E::File(b"1", Some(0o644))), ("x/", E::Dir)]);
    assert_refused(&store, &file_and_dir, EntryProblem::Duplicate);
}

#[test]
fn special_files_are_refused() {
    let (_dir, store) = store();
    let fifo = zip_of(&[("pipe", E::Raw(b"", 0o010_644 << 16))]);
    assert_refused(&store, &fifo, EntryProblem::SpecialFile { mode: 0o010_644 });
    let device = zip_of(&[("disk", E::Raw(b"", 0o060_600 << 16))]);
    assert_refused(&store, &device, EntryProblem::SpecialFile { mode: 0o060_600 });
}

#[test]
fn a_bomb_is_stopped_at_the_unzipped_cap() {
    let (_dir, store) = store_with(small_limits());
    let zeros = vec![0u8; 2 << 20];
    let zip = zip_of(&[("bomb", E::File(&zeros, Some(0o644)))]);
    assert!(zip.len() < 16 * 1024, "a 2 MiB run of zeros deflates to {} bytes", zip.len());
    let err = store.put_zip(&zip).unwrap_err();
    assert!(matches!(err, CodeError::UnzippedTooLarge { limit: 1_048_576, .. }), "{err:?}");
    assert_eq!(
        err.aws_error(),
        AwsError {
            status: 400,
            code: "InvalidParameterValueException",
            message: "Unzipped size must be smaller than 1048576 bytes".to_owned()
        }
    );
    assert!(names_in(&store.blobs_dir()).is_empty());

    // The cap is on the total, not per entry.
    let third = vec![7u8; 400 * 1024];
    let zip = zip_of(&[
        ("a", E::File(&third, Some(0o644))),
        ("b", E::File(&third, Some(0o644))),
        ("c", E::File(&third, Some(0o644))),
    ]);
    assert!(matches!(store.put_zip(&zip), Err(CodeError::UnzippedTooLarge { .. })));
}

#[test]
fn a_header_that_lies_about_the_size_does_not_get_past_the_cap() {
    let (_dir, store) = store_with(CodeLimits { max_unzipped_bytes: 64 * 1024, ..small_limits() });
    let zeros = vec![0u8; 1 << 20];
    let mut zip = zip_of(&[("liar", E::File(&zeros, Some(0o644)))]);
    lie_about_size(&mut zip, 100);
    // The declared 100 bytes pass the up-front check; inflating must still stop early. zip 9.8 itself
    // fails an entry that inflates past its declared size; were it not to, our own count would.
    match store.put_zip(&zip) {
        Err(CodeError::UnreadableEntry { entry, .. } | CodeError::UnzippedTooLarge { entry, .. }) => {
            assert_eq!(entry, "liar");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(names_in(&store.blobs_dir()).is_empty());
}

#[test]
fn the_cap_counts_bytes_actually_produced() {
    // A reader with no end stands in for a decompressor whose headers said it was small.
    let mut endless = std::io::repeat(0xAB);
    let mut out = Vec::new();
    let mut buffer = vec![0u8; 4096];
    match copy_capped(&mut endless, &mut out, 10_000, &mut buffer) {
        Err(CopyError::OverBudget { read }) => assert!(read > 10_000 && read <= 10_000 + 4096),
        other => panic!("expected OverBudget, got {other:?}"),
    }
    assert!(out.len() <= 10_000, "wrote {} bytes past a 10000-byte budget", out.len());

    let mut exact = Cursor::new(vec![1u8; 10_000]);
    let mut out = Vec::new();
    assert_eq!(copy_capped(&mut exact, &mut out, 10_000, &mut buffer).unwrap(), 10_000);
    assert_eq!(out.len(), 10_000);
}

#[test]
fn corrupt_and_non_zip_input_is_refused() {
    let (_dir, store) = store();
    let could_not_unzip = AwsError {
        status: 400,
        code: "InvalidParameterValueException",
        message: "Could not unzip uploaded file. Please check your file, then try to upload again.".to_owned(),
    };
    let err = store.put_zip(b"this is not a zip file at all, just some text").unwrap_err();
    assert!(matches!(err, CodeError::NotAZip { .. }), "{err:?}");
    assert_eq!(err.aws_error(), could_not_unzip);

    let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let zip = zip_of(&[("data.bin", E::File(&data, Some(0o644)))]);
    let truncated = &zip[..zip.len() - 30];
    assert!(matches!(store.put_zip(truncated), Err(CodeError::NotAZip { .. })));

    // Damage in the compressed data is only found by inflating it: a CRC or deflate error.
    let mut damaged = zip.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    damaged[middle + 1] ^= 0x55;
    let err = store.put_zip(&damaged).unwrap_err();
    assert!(matches!(err, CodeError::UnreadableEntry { .. }), "{err:?}");
    assert_eq!(err.aws_error(), could_not_unzip);

    // A compression method this build cannot inflate (12 is bzip2).
    let mut bzip = zip_of(&[("x", E::File(b"hello hello hello", Some(0o644)))]);
    for at in headers(&bzip, LOCAL) {
        bzip[at + 8..at + 10].copy_from_slice(&12u16.to_le_bytes());
    }
    for at in headers(&bzip, CENTRAL) {
        bzip[at + 10..at + 12].copy_from_slice(&12u16.to_le_bytes());
    }
    let err = store.put_zip(&bzip).unwrap_err();
    assert!(matches!(err, CodeError::UnreadableEntry { .. }), "{err:?}");
    assert!(names_in(&store.blobs_dir()).is_empty());
}

#[test]
fn an_empty_zip_is_refused_as_aws_does() {
    let (_dir, store) = store();
    let empty = zip_of(&[]);
    assert_eq!(empty.len(), 22, "just the end-of-central-directory record");
    for zip in [&empty[..], &[], &zip_of(&[("./", E::Dir)])[..]] {
        let err = store.put_zip(zip).unwrap_err();
        assert!(matches!(err, CodeError::Empty), "{err:?}");
        assert_eq!(err.aws_error().message, "Uploaded file must be a non-empty zip");
        assert_eq!(err.aws_error().code, "InvalidParameterValueException");
    }
    // A package of nothing but directories is odd but not empty.
    assert!(store.put_zip(&zip_of(&[("dir/", E::Dir)])).is_ok());
}

#[test]
fn size_and_count_limits() {
    let (_dir, store) = store_with(CodeLimits { max_zipped_bytes: 100, max_unzipped_bytes: 1 << 20, max_entries: 3 });
    let big = zip_of(&[("a", E::File(&[1u8; 300], Some(0o644))), ("b", E::File(&[2u8; 300], Some(0o644)))]);
    assert!(big.len() > 100);
    let err = store.put_zip(&big).unwrap_err();
    assert!(matches!(err, CodeError::ZipTooLarge { limit: 100, .. }), "{err:?}");
    let aws = err.aws_error();
    assert_eq!((aws.status, aws.code), (413, "RequestEntityTooLargeException"));
    assert_eq!(aws.message, "Zipped size must be smaller than 100 bytes");

    let (_dir, store) = store_with(CodeLimits { max_entries: 3, ..small_limits() });
    let many = zip_of(&[
        ("a", E::File(b"", Some(0o644))),
        ("b", E::File(b"", Some(0o644))),
        ("c/", E::Dir),
        ("d", E::File(b"", Some(0o644))),
    ]);
    assert!(matches!(store.put_zip(&many), Err(CodeError::TooManyEntries { count: 4, limit: 3 })));
}

#[test]
fn the_default_limits_are_the_aws_ones() {
    let limits = CodeStore::open(tempfile::tempdir().unwrap().path()).unwrap().limits();
    assert_eq!(limits.max_zipped_bytes, 52_428_800);
    assert_eq!(limits.max_unzipped_bytes, 262_144_000);
    assert_eq!(limits.max_entries, 65_535);
}

#[test]
fn concurrent_unpacking_extracts_once_and_agrees() {
    let (_dir, store) = store();
    let files: Vec<(String, Vec<u8>)> =
        (0..200).map(|i| (format!("pkg/m{i}.py"), vec![b'a' + (i % 26) as u8; 2000])).collect();
    let entries: Vec<(&str, E<'_>)> = files.iter().map(|(n, d)| (n.as_str(), E::File(d, Some(0o644)))).collect();
    let stored = store.put_zip(&zip_of(&entries)).unwrap();

    let trees: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| store.unpacked(&stored.digest).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(trees.windows(2).all(|w| w[0] == w[1]));
    for (name, data) in &files {
        assert_eq!(&fs::read(trees[0].join(name)).unwrap(), data);
    }
    assert_eq!(names_in(&store.unpacked_dir()), vec![stored.digest.to_hex()]);
    assert!(names_in(&store.tmp_dir()).is_empty());
    assert!(store.unpacking.lock().unwrap().is_empty(), "finished work leaves no lock behind");
}

#[test]
fn open_removes_what_a_crash_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("code");
    let stored = {
        let store = CodeStore::open(&root).unwrap();
        store.put_zip(&zip_of(&[("keep.py", E::File(b"x", Some(0o644)))])).unwrap()
    };
    // What an interrupted upload and an interrupted extraction leave.
    fs::write(root.join("tmp/zip-1-0"), b"half a zip").unwrap();
    fs::create_dir_all(root.join("tmp/tree-1-1/deep/er")).unwrap();
    fs::write(root.join("tmp/tree-1-1/deep/er/f"), b"half a tree").unwrap();
    fs::set_permissions(root.join("tmp/tree-1-1/deep"), fs::Permissions::from_mode(0o500)).unwrap();

    let store = CodeStore::open(&root).unwrap();
    assert!(names_in(&store.tmp_dir()).is_empty());
    assert_eq!(store.read_zip(&stored.digest).unwrap().len() as u64, stored.size_bytes);
}

#[test]
fn garbage_collection_removes_only_unreferenced_code() {
    let (_dir, store) = store();
    let a = store.put_zip(&zip_of(&[("a.py", E::File(b"a", Some(0o644)))])).unwrap().digest;
    let b = store.put_zip(&zip_of(&[("b.py", E::File(b"b", Some(0o644)))])).unwrap().digest;
    let c = store.put_zip(&zip_of(&[("c.py", E::File(b"c", Some(0o644)))])).unwrap().digest;
    store.unpacked(&a).unwrap();
    store.unpacked(&b).unwrap();
    fs::write(store.blobs_dir().join("README"), b"not ours").unwrap();

    let keep = HashSet::from([b]);
    assert_eq!(store.remove_unreferenced(&keep).unwrap(), 2);
    assert!(matches!(store.read_zip(&a), Err(CodeError::NotFound { .. })));
    assert!(matches!(store.unpacked(&a), Err(CodeError::NotFound { .. })));
    assert!(matches!(store.read_zip(&c), Err(CodeError::NotFound { .. })));
    assert!(store.unpacked(&b).unwrap().join("b.py").is_file());
    assert!(store.blobs_dir().join("README").is_file());
    assert_eq!(names_in(&store.unpacked_dir()), vec![b.to_hex()]);
    assert!(names_in(&store.tmp_dir()).is_empty());
    assert_eq!(store.remove_unreferenced(&keep).unwrap(), 0);
}

#[test]
fn damaged_or_missing_blobs_are_service_errors() {
    let (_dir, store) = store();
    let stored = store.put_zip(&zip_of(&[("a.py", E::File(b"a", Some(0o644)))])).unwrap();
    let other = zip_of(&[("b.py", E::File(b"b", Some(0o644)))]);
    fs::write(store.zip_path(&stored.digest), &other).unwrap();
    let err = store.unpacked(&stored.digest).unwrap_err();
    assert!(matches!(err, CodeError::CorruptBlob { actual, .. } if actual == CodeDigest::of(&other)), "{err:?}");
    assert_eq!((err.aws_error().status, err.aws_error().code), (500, "ServiceException"));
    assert!(names_in(&store.unpacked_dir()).is_empty());

    let missing = CodeDigest::of(b"never stored");
    let err = store.unpacked(&missing).unwrap_err();
    assert!(matches!(err, CodeError::NotFound { digest } if digest == missing));
    assert_eq!(err.aws_error().status, 500);
}

#[test]
fn a_tree_that_fails_to_unpack_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("code");
    let zip = zip_of(&[("small.txt", E::File(b"ok", Some(0o644))), ("big", E::File(&[0u8; 300_000], Some(0o644)))]);
    let stored = CodeStore::open(&root).unwrap().put_zip(&zip).unwrap();
    // The same blob under stricter limits (an operator lowered them) is refused, and no tree or temp
    // directory is left behind.
    let strict = CodeStore::with_limits(&root, CodeLimits { max_unzipped_bytes: 100_000, ..small_limits() }).unwrap();
    let err = strict.unpacked(&stored.digest).unwrap_err();
    assert!(matches!(err, CodeError::UnzippedTooLarge { .. }), "{err:?}");
    assert!(names_in(&strict.unpacked_dir()).is_empty());
    assert!(names_in(&strict.tmp_dir()).is_empty());
}

#[test]
fn io_errors_map_to_service_exception() {
    let err = CodeError::Io {
        op: "write",
        path: PathBuf::from("/data/code/tmp/x"),
        source: std::io::Error::other("disk full"),
    };
    let aws = err.aws_error();
    assert_eq!((aws.status, aws.code), (500, "ServiceException"));
    assert!(!aws.message.contains("/data"), "paths stay in the log: {}", aws.message);
    assert!(err.to_string().contains("/data/code/tmp/x"));
}

#[test]
fn unpacked_trees_are_trusted_only_within_the_boot_that_wrote_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("code");
    let boot = |id: Option<&str>| CodeStore::open_at_boot(&root, CodeLimits::default(), id.map(str::to_owned)).unwrap();
    let store = boot(Some("boot-a"));
    let digest = store.put_zip(&zip_of(&[("f.py", E::File(b"x", Some(0o644)))])).unwrap().digest;
    let tree = store.unpacked(&digest).unwrap();
    let marker = tree.join("f.py");

    // A restart within the same boot keeps the tree: the kernel still holds everything written.
    let store = boot(Some("boot-a"));
    assert!(marker.is_file());
    // After a reboot the tree may have lost data that never reached the disk, so it is dropped; the
    // blob stays and the tree comes back on demand.
    let store2 = boot(Some("boot-b"));
    assert!(!tree.exists());
    assert_eq!(store2.unpacked(&digest).unwrap(), tree);
    assert!(marker.is_file());
    // Where the boot cannot be known, no tree is trusted.
    boot(None);
    assert!(!tree.exists());
    assert!(store.read_zip(&digest).is_ok());
    assert!(names_in(&store.tmp_dir()).is_empty());
}

#[test]
fn directories_implied_by_deep_names_count_against_the_entry_limit() {
    // Found by review for the unzip fuzz target: one entry whose 4 KB name is "d/d/d/…/f" implies
    // 2,000 directories, which the entry count alone never saw.
    let limits = CodeLimits { max_entries: 10, ..small_limits() };
    let deep = format!("{}f", "d/".repeat(100));
    let zip = zip_of(&[(deep.as_str(), E::File(b"x", Some(0o644)))]);
    let (_dir, store) = store_with(limits);
    let err = store.put_zip(&zip).unwrap_err();
    assert!(matches!(err, CodeError::TreeTooLarge { nodes: 101, limit: 20 }), "{err:?}");
    let aws = err.aws_error();
    assert_eq!((aws.status, aws.code), (400, "InvalidParameterValueException"));
    assert!(aws.message.starts_with(COULD_NOT_UNZIP), "{}", aws.message);

    // A tree as deep as the limit allows still unpacks, and so does a wide one with few directories.
    let ok = format!("{}f", "d/".repeat(19));
    let zip = zip_of(&[(ok.as_str(), E::File(b"x", Some(0o644)))]);
    put_then_unpack(&store, &zip);
    let names: Vec<String> = (0..10).map(|i| format!("lib/m{i}.py")).collect();
    let entries: Vec<(&str, E<'_>)> = names.iter().map(|n| (n.as_str(), E::File(b"", Some(0o644)))).collect();
    put_then_unpack(&store, &zip_of(&entries));
}
