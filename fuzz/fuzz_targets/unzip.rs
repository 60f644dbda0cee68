//! The deployment-package checker and extractor on hostile zips. Whatever the bytes: no panic; `scan`
//! and `extract` agree; nothing is written outside the target directory, no symlink leads out of it;
//! no more bytes than the limit are written and no more files and directories than the limits allow.
#![no_main]

use std::fs;
use std::path::{Component, Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use nimbus_store::code::CodeLimits;
use nimbus_store::code::fuzzing::{extract, scan};

/// Small limits, so that the fuzzer reaches them.
const LIMITS: CodeLimits = CodeLimits { max_zipped_bytes: 1 << 20, max_unzipped_bytes: 64 * 1024, max_entries: 32 };

fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { shm.to_owned() } else { std::env::temp_dir() }
}

fuzz_target!(|data: &[u8]| {
    let scanned = scan(data, &LIMITS);
    let outer = tempfile::tempdir_in(scratch()).expect("tempdir");
    let dest = outer.path().join("task");
    let extracted = extract(data, &LIMITS, &dest);
    match (&scanned, &extracted) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "scan and extract disagree"),
        (Err(_), Err(_)) => {}
        _ => panic!("scan gave {scanned:?} but extract gave {extracted:?}"),
    }
    // Nothing may appear beside the target, whatever happened.
    let beside: Vec<_> = fs::read_dir(outer.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(beside.is_empty() || beside == ["task"], "extraction wrote beside its target: {beside:?}");
    let Ok((entries, unzipped)) = extracted else { return };
    assert!(entries <= LIMITS.max_entries);
    assert!(unzipped <= LIMITS.max_unzipped_bytes);

    let root = fs::canonicalize(&dest).unwrap();
    let (mut nodes, mut bytes) = (0usize, 0u64);
    let mut stack = vec![dest.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            nodes += 1;
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                assert!(stays_inside(&dest, path.parent().unwrap(), &target), "{path:?} -> {target:?} escapes");
                if let Ok(resolved) = fs::canonicalize(&path) {
                    assert!(resolved.starts_with(&root), "{path:?} resolves to {resolved:?}");
                }
            } else if meta.is_dir() {
                stack.push(path);
            } else {
                assert!(meta.is_file(), "{path:?} is neither file, directory nor symlink");
                bytes += meta.len();
            }
        }
    }
    assert!(bytes <= LIMITS.max_unzipped_bytes, "{bytes} bytes written");
    // Directories implied by deeper names are inodes too; the tree may hold as many again as entries.
    assert!(nodes <= 2 * LIMITS.max_entries, "{nodes} files, directories and links for {entries} entries");
});

/// Whether `target`, read relative to `dir`, stays within `root` when followed as text.
fn stays_inside(root: &Path, dir: &Path, target: &Path) -> bool {
    let mut depth = dir.strip_prefix(root).unwrap().components().count();
    for c in target.components() {
        match c {
            Component::ParentDir if depth == 0 => return false,
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}
