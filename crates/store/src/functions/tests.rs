use std::collections::BTreeMap;

use nimbus_model::{
    Architecture, Description, EnvVars, EphemeralStorageMb, FunctionConfig, FunctionName, Handler, MemoryMb, RoleArn,
    Runtime, Tags, TimeoutSecs, Version,
};

use super::*;

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path()).unwrap()
}

fn name(s: &str) -> FunctionName {
    FunctionName::parse(s).unwrap()
}

fn v(n: u32) -> VersionId {
    VersionId::Published(Version::new(n).unwrap())
}

fn config(handler: &str) -> FunctionConfig {
    FunctionConfig {
        runtime: Runtime::parse("python3.12").unwrap(),
        handler: Handler::parse(handler).unwrap(),
        role: RoleArn::parse("arn:aws:iam::123456789012:role/service-role/lambda").unwrap(),
        memory: MemoryMb::new(256).unwrap(),
        timeout: TimeoutSecs::new(30).unwrap(),
        ephemeral_storage: EphemeralStorageMb::new(1024).unwrap(),
        environment: EnvVars::parse(BTreeMap::from([
            ("GREETING".to_owned(), "grüß \"dich\"".to_owned()),
            ("EMPTY".to_owned(), String::new()),
        ]))
        .unwrap(),
        description: Description::parse("a test function").unwrap(),
        architecture: Architecture::Arm64,
        logging: Default::default(),
    }
}

fn code(bytes: &[u8]) -> CodeInfo {
    CodeInfo { digest: CodeDigest::of(bytes), size_bytes: bytes.len() as u64 }
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    Tags::parse(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap()
}

fn new(n: &str, publish: bool) -> NewFunction {
    NewFunction {
        name: name(n),
        config: config("app.handler"),
        code: code(n.as_bytes()),
        tags: tags(&[("team", "core")]),
        publish,
        now_ms: 1_000,
    }
}

#[test]
fn store_is_send_and_sync() {
    fn assert<T: Send + Sync>() {}
    assert::<Store>();
}

#[cfg(unix)]
#[test]
fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.create_function(new("f", false)).unwrap();
    for file in ["nimbus.db", "nimbus.db-wal", "logs.db"] {
        let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

#[test]
fn create_get_and_reopen_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (latest, v1) = store.create_function(new("f", true)).unwrap();
    let v1 = v1.unwrap();
    assert_eq!(latest.version, VersionId::Latest);
    assert_eq!(v1.version, v(1));
    assert_eq!(latest.config, config("app.handler"));
    assert_eq!(latest.revision_id.len(), 36);
    assert_eq!(latest.revision_id.as_bytes()[14], b'4', "a v4 uuid: {}", latest.revision_id);
    assert_ne!(latest.revision_id, v1.revision_id);
    assert_eq!(store.get_function(&name("f"), &VersionId::Latest).unwrap(), latest);
    assert_eq!(store.get_function(&name("f"), &v(1)).unwrap(), v1);
    drop(store);

    let store = open(&dir);
    assert_eq!(store.get_function(&name("f"), &VersionId::Latest).unwrap(), latest);
    assert_eq!(store.get_function(&name("f"), &v(1)).unwrap(), v1);
    assert!(matches!(
        store.get_function(&name("f"), &v(2)),
        Err(StoreError::NotFound { what: "function", name }) if name == "f:2"
    ));
    assert!(matches!(store.get_function(&name("g"), &VersionId::Latest), Err(StoreError::NotFound { .. })));
}

#[test]
fn duplicate_create_conflicts_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (latest, _) = store.create_function(new("f", false)).unwrap();
    let mut again = new("f", true);
    again.config = config("other.handler");
    again.tags = tags(&[("x", "y")]);
    let err = store.create_function(again).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { what: "function", ref name } if name == "f"), "{err}");
    assert_eq!(store.get_function(&name("f"), &VersionId::Latest).unwrap(), latest);
    assert_eq!(store.list_versions(&name("f"), None, 10).unwrap(), vec![latest.clone()]);
    // The refused Publish did not consume a version number either.
    let published = store.publish_version(&name("f"), None, None, None, 2_000).unwrap();
    assert_eq!(published.version, v(1));
}

#[test]
fn list_functions_pages_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for n in ["delta", "alpha", "echo", "bravo", "charlie"] {
        store.create_function(new(n, true)).unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<FunctionName> = None;
    loop {
        let page = store.list_functions(after.as_ref(), 2).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        assert!(page.iter().all(|r| r.version == VersionId::Latest));
        after = page.last().map(|r| r.name.clone());
        seen.extend(page.into_iter().map(|r| r.name.to_string()));
    }
    assert_eq!(seen, ["alpha", "bravo", "charlie", "delta", "echo"]);
}

#[test]
fn updates_change_the_revision_and_honour_preconditions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (latest, _) = store.create_function(new("f", false)).unwrap();

    let err = store.update_function_code(&name("f"), code(b"v2"), Some("stale"), false, 2_000).unwrap_err();
    assert!(
        matches!(&err, StoreError::PreconditionFailed { expected, actual }
            if expected == "stale" && *actual == latest.revision_id),
        "{err}"
    );
    assert_eq!(store.get_function(&name("f"), &VersionId::Latest).unwrap(), latest);

    let (updated, none) =
        store.update_function_code(&name("f"), code(b"v2"), Some(&latest.revision_id), false, 2_000).unwrap();
    assert!(none.is_none());
    assert_eq!(updated.code, code(b"v2"));
    assert_eq!(updated.last_modified_ms, 2_000);
    assert_ne!(updated.revision_id, latest.revision_id);

    let mut changed = config("app.other");
    changed.memory = MemoryMb::new(1024).unwrap();
    changed.environment = EnvVars::default();
    assert!(matches!(
        store.update_function_config(&name("f"), changed.clone(), Some(&latest.revision_id), 3_000),
        Err(StoreError::PreconditionFailed { .. })
    ));
    let reconfigured =
        store.update_function_config(&name("f"), changed.clone(), Some(&updated.revision_id), 3_000).unwrap();
    assert_eq!(reconfigured.config, changed);
    assert_eq!(reconfigured.code, code(b"v2"));
    assert_ne!(reconfigured.revision_id, updated.revision_id);
    drop(store);
    assert_eq!(open(&dir).get_function(&name("f"), &VersionId::Latest).unwrap(), reconfigured);

    let missing = open(&dir).update_function_config(&name("nope"), changed, None, 1);
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
}

#[test]
fn publishing_dedupes_unchanged_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let f = name("f");
    store.create_function(new("f", false)).unwrap();
    let v1 = store.publish_version(&f, None, None, None, 2_000).unwrap();
    assert_eq!(v1.version, v(1));
    assert_eq!(store.publish_version(&f, None, None, None, 3_000).unwrap(), v1);

    // A changed configuration publishes; changing it back to what version 2 has does not again.
    let latest = store.get_function(&f, &VersionId::Latest).unwrap();
    store.update_function_config(&f, config("app.v2"), None, 4_000).unwrap();
    let v2 = store.publish_version(&f, None, None, None, 5_000).unwrap();
    assert_eq!((v2.version, v2.config.handler.as_str()), (v(2), "app.v2"));
    store.update_function_config(&f, config("app.v2"), None, 6_000).unwrap();
    assert_eq!(store.publish_version(&f, None, None, None, 7_000).unwrap().version, v(2));
    assert_eq!(store.get_function(&f, &v(1)).unwrap(), v1, "versions are immutable");

    // The description a version would get is part of the snapshot.
    let described = Description::parse("release 3").unwrap();
    let v3 = store.publish_version(&f, None, None, Some(described.clone()), 8_000).unwrap();
    assert_eq!((v3.version, &v3.config.description), (v(3), &described));
    assert_eq!(store.get_function(&f, &VersionId::Latest).unwrap().config.description.as_str(), "a test function");

    // CodeSha256 is checked against $LATEST's, in AWS's base64 form.
    let err = store.publish_version(&f, Some("AAAA"), None, None, 9_000).unwrap_err();
    assert!(matches!(&err, StoreError::CodeShaMismatch { actual, .. } if *actual == latest.code.digest.to_base64()));
    let sha = latest.code.digest.to_base64();
    assert!(store.publish_version(&f, Some(&sha), Some("stale"), None, 9_000).is_err());

    // UpdateFunctionCode with Publish: a new version for new code, the existing one for the same code.
    let (_, v4) = store.update_function_code(&f, code(b"new"), None, true, 10_000).unwrap();
    assert_eq!(v4.as_ref().map(|r| (r.version, r.code)), Some((v(4), code(b"new"))));
    let (_, same) = store.update_function_code(&f, code(b"new"), None, true, 11_000).unwrap();
    assert_eq!(same, v4);
}

#[test]
fn versions_list_in_order_and_numbers_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let f = name("f");
    store.create_function(new("f", true)).unwrap();
    for i in 2..=4 {
        store.update_function_code(&f, code(format!("code {i}").as_bytes()), None, true, i64::from(i)).unwrap();
    }
    let ids = |after: Option<&VersionId>, limit| -> Vec<VersionId> {
        store.list_versions(&f, after, limit).unwrap().into_iter().map(|r| r.version).collect()
    };
    assert_eq!(ids(None, 10), [VersionId::Latest, v(1), v(2), v(3), v(4)]);
    assert_eq!(ids(None, 2), [VersionId::Latest, v(1)]);
    assert_eq!(ids(Some(&v(1)), 2), [v(2), v(3)]);
    assert_eq!(ids(Some(&v(4)), 2), []);

    store.delete_function(&f, Some(Version::new(4).unwrap())).unwrap();
    store.delete_function(&f, Some(Version::new(2).unwrap())).unwrap();
    assert!(matches!(
        store.delete_function(&f, Some(Version::new(2).unwrap())),
        Err(StoreError::NotFound { ref name, .. }) if name == "f:2"
    ));
    assert_eq!(ids(None, 10), [VersionId::Latest, v(1), v(3)]);
    store.update_function_code(&f, code(b"code 5"), None, false, 5).unwrap();
    drop(store);
    let store = open(&dir);
    assert_eq!(store.publish_version(&f, None, None, None, 6).unwrap().version, v(5));
    assert!(matches!(store.list_versions(&name("nope"), None, 10), Err(StoreError::NotFound { .. })));
}

#[test]
fn deleting_a_function_removes_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let f = name("f");
    store.create_function(new("f", true)).unwrap();
    store.create_function(new("keep", true)).unwrap();
    store.delete_function(&f, None).unwrap();
    assert!(matches!(store.get_function(&f, &VersionId::Latest), Err(StoreError::NotFound { .. })));
    assert!(matches!(store.get_function(&f, &v(1)), Err(StoreError::NotFound { .. })));
    assert!(matches!(store.delete_function(&f, None), Err(StoreError::NotFound { .. })));
    assert_eq!(store.list_functions(None, 10).unwrap().len(), 1);
    // A function created again under the same name is a new function, numbered from 1.
    let (_, again) = store.create_function(new("f", true)).unwrap();
    assert_eq!(again.unwrap().version, v(1));
}

#[test]
fn tags_belong_to_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let f = name("f");
    let (latest, _) = store.create_function(new("f", true)).unwrap();
    let replaced = tags(&[("team", "platform"), ("cost-center", "42")]);
    store.set_tags(&f, &replaced).unwrap();
    for version in [VersionId::Latest, v(1)] {
        assert_eq!(store.get_function(&f, &version).unwrap().tags, replaced);
    }
    assert_eq!(store.get_function(&f, &VersionId::Latest).unwrap().revision_id, latest.revision_id);
    store.set_tags(&f, &Tags::default()).unwrap();
    drop(store);
    let store = open(&dir);
    assert!(store.get_function(&f, &VersionId::Latest).unwrap().tags.is_empty());
    assert!(matches!(store.set_tags(&name("nope"), &replaced), Err(StoreError::NotFound { .. })));
}

#[test]
fn referenced_code_covers_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.create_function(new("a", true)).unwrap();
    store.create_function(new("b", false)).unwrap();
    store.update_function_code(&name("a"), code(b"a2"), None, false, 2).unwrap();
    let refs = store.referenced_code().unwrap();
    let expected: HashSet<_> = [code(b"a"), code(b"a2"), code(b"b")].map(|c| c.digest).into();
    assert_eq!(refs, expected);
}

#[test]
fn a_row_that_no_longer_parses_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.create_function(new("f", false)).unwrap();
    store.create_function(new("g", false)).unwrap();
    let raw = rusqlite::Connection::open(dir.path().join("nimbus.db")).unwrap();
    raw.execute("UPDATE function_versions SET memory_mb = 5 WHERE function = 'f'", []).unwrap();
    raw.execute("UPDATE functions SET tags = 'not json' WHERE name = 'g'", []).unwrap();
    let err = store.get_function(&name("f"), &VersionId::Latest).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { table: "function_versions", key, reason }
            if key == "f:0" && reason.starts_with("memory_mb")),
        "{err}"
    );
    let err = store.get_function(&name("g"), &VersionId::Latest).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { table: "functions", .. }), "{err}");
    assert!(matches!(store.list_functions(None, 10), Err(StoreError::Corrupt { .. })));
}

#[test]
fn concurrent_writers_and_readers_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..10 {
                    let n = format!("f-{t}-{i}");
                    store.create_function(new(&n, i % 2 == 0)).unwrap();
                    store.get_function(&name(&n), &VersionId::Latest).unwrap();
                    store.list_functions(None, 5).unwrap();
                }
            });
        }
    });
    assert_eq!(store.list_functions(None, 1000).unwrap().len(), 80);
}

#[test]
fn current_function_and_alias_follow_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let f = name("cached");
    store.create_function(new("cached", false)).unwrap();
    let first = store.current_function(&f, VersionId::Latest).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &store.current_function(&f, VersionId::Latest).unwrap()),
        "served from memory"
    );

    let updated = store.update_function_config(&f, config("other.handler"), None, 2_000).unwrap();
    let seen = store.current_function(&f, VersionId::Latest).unwrap();
    assert_eq!(*seen, updated);
    assert_ne!(seen.revision_id, first.revision_id);

    store.update_function_code(&f, code(b"new code"), None, false, 3_000).unwrap();
    assert_eq!(store.current_function(&f, VersionId::Latest).unwrap().code, code(b"new code"));

    assert!(matches!(store.current_function(&f, v(1)), Err(StoreError::NotFound { .. })));
    let published = store.publish_version(&f, None, None, None, 4_000).unwrap();
    assert_eq!(*store.current_function(&f, v(1)).unwrap(), published);

    store.set_tags(&f, &tags(&[("team", "edge")])).unwrap();
    assert_eq!(store.current_function(&f, v(1)).unwrap().tags, tags(&[("team", "edge")]));

    store.create_alias(&f, "live", v(1), Description::default(), None).unwrap();
    assert_eq!(store.current_alias(&f, "live").unwrap().version, v(1));
    store.update_function_config(&f, config("third.handler"), None, 5_000).unwrap();
    store.publish_version(&f, None, None, None, 6_000).unwrap();
    let update = crate::AliasUpdate { version: Some(v(2)), ..Default::default() };
    store.update_alias(&f, "live", update, None).unwrap();
    assert_eq!(store.current_alias(&f, "live").unwrap().version, v(2));
    store.delete_alias(&f, "live").unwrap();
    assert!(matches!(store.current_alias(&f, "live"), Err(StoreError::NotFound { .. })));

    store.delete_function(&f, Some(Version::new(1).unwrap())).unwrap();
    assert!(matches!(store.current_function(&f, v(1)), Err(StoreError::NotFound { .. })));
    store.delete_function(&f, None).unwrap();
    assert!(matches!(store.current_function(&f, VersionId::Latest), Err(StoreError::NotFound { .. })));
}
