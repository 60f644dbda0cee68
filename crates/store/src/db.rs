//! Opening the store: the two SQLite files, their pragmas and migrations, and the connections every
//! query goes through.
//!
//! Durability. Both files run in WAL mode, where an application crash never loses a committed
//! transaction; the two differ only in what a power cut or kernel crash may take:
//!
//! - `nimbus.db` (functions, versions; later aliases, mappings and the async event journal) uses
//!   `synchronous=FULL`: the WAL is fsynced at every commit, so once a call returns, the API may report
//!   success and the change survives even losing power. Writes here are few, so the fsync is cheap.
//! - `logs.db` uses `synchronous=NORMAL`: commits are synced at checkpoints only, so a power cut may drop
//!   the last moments of logs, which is acceptable for logs and spares one fsync per batch.
//!
//! Logs live in their own file because SQLite has one writer per database: a burst of log batches or a
//! retention sweep then never makes CreateFunction or an async invoke wait for the write lock.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use rusqlite_migration::{M, Migrations};

use crate::code::CodeStore;
use crate::error::{Result, StoreError};

/// How long a statement waits for another process's write lock before failing with `SQLITE_BUSY`.
/// Within this process writers queue on a mutex instead, so this only matters if two servers share a
/// data directory or an operator runs `sqlite3` against it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle read connections kept for reuse; more are opened under load and closed afterwards.
const IDLE_READERS_MAX: usize = 4;
/// Distinct statements each connection keeps prepared; above the number of queries this crate has, so
/// none is ever re-prepared.
const STATEMENT_CACHE: usize = 64;

const META_FUNCTIONS_V1: &str = "
CREATE TABLE functions (
    name          TEXT PRIMARY KEY NOT NULL,
    created_ms    INTEGER NOT NULL,
    -- The highest version number ever published. Deleting a version never lowers it, so a number is
    -- never reused, as on AWS.
    last_version  INTEGER NOT NULL DEFAULT 0,
    -- Function-level tags: a JSON object of strings.
    tags          TEXT NOT NULL DEFAULT '{}'
) STRICT;

-- $LATEST is version 0, so ORDER BY version lists it first, as ListVersionsByFunction does.
CREATE TABLE function_versions (
    function          TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version           INTEGER NOT NULL CHECK (version >= 0),
    runtime           TEXT NOT NULL,
    handler           TEXT NOT NULL,
    role              TEXT NOT NULL,
    memory_mb         INTEGER NOT NULL,
    timeout_s         INTEGER NOT NULL,
    ephemeral_mb      INTEGER NOT NULL,
    environment       TEXT NOT NULL,  -- JSON object of strings
    description       TEXT NOT NULL,
    architecture      TEXT NOT NULL,
    code_sha256       TEXT NOT NULL,  -- lowercase hex, the code store's file name
    code_size         INTEGER NOT NULL,
    revision_id       TEXT NOT NULL,
    last_modified_ms  INTEGER NOT NULL,
    PRIMARY KEY (function, version)
) STRICT;
";

const LOGS_V1: &str = "
CREATE TABLE log_groups (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    created_ms    INTEGER NOT NULL,
    stored_bytes  INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE log_streams (
    id                 INTEGER PRIMARY KEY,
    group_id           INTEGER NOT NULL REFERENCES log_groups(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    created_ms         INTEGER NOT NULL,
    first_event_ms     INTEGER,
    last_event_ms      INTEGER,
    last_ingestion_ms  INTEGER NOT NULL,
    stored_bytes       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (group_id, name)
) STRICT;
-- DescribeLogStreams orderBy=LastEventTime; a stream without events sorts first.
CREATE INDEX log_streams_by_last_event
    ON log_streams (group_id, coalesce(last_event_ms, -9223372036854775808), name);

-- group_id is stored on each event (not only reached through its stream) so FilterLogEvents can walk
-- one index over a whole group in (timestamp, id) order.
CREATE TABLE log_events (
    id            INTEGER PRIMARY KEY,
    group_id      INTEGER NOT NULL REFERENCES log_groups(id) ON DELETE CASCADE,
    stream_id     INTEGER NOT NULL REFERENCES log_streams(id) ON DELETE CASCADE,
    timestamp_ms  INTEGER NOT NULL,
    ingestion_ms  INTEGER NOT NULL,
    message       TEXT NOT NULL
) STRICT;
CREATE INDEX log_events_by_stream ON log_events (stream_id, timestamp_ms, id);
CREATE INDEX log_events_by_group ON log_events (group_id, timestamp_ms, id);
";

/// A version's `LoggingConfig` in its AWS wire form (JSON); `{}` is the default (`Text`).
const META_LOGGING_V1: &str = "ALTER TABLE function_versions ADD COLUMN logging TEXT NOT NULL DEFAULT '{}';";

fn meta_migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(META_FUNCTIONS_V1).comment("functions and their versions"),
        M::up(crate::concurrency::META_CONCURRENCY_V2).comment("reserved concurrency"),
        M::up(crate::async_events::META_ASYNC_V1).comment("async event journal, event invoke configs, DLQ target"),
        M::up(crate::mappings::META_MAPPINGS_V1).comment("event source mappings"),
        M::up(crate::aliases::META_ALIASES_V1).comment("aliases"),
        M::up(crate::provisioned::META_PROVISIONED_V1).comment("provisioned concurrency"),
        M::up(crate::policies::META_POLICIES_V1).comment("resource-based policies of functions, versions, aliases"),
        M::up(crate::urls::META_URLS_V1).comment("function URL configs"),
        M::up(crate::iam::META_IAM_V1).comment("IAM users, keys, groups, roles, policies; STS sessions"),
        M::up(crate::async_events::META_ASYNC_FAIR_V7).comment("async events by function, for fair claims"),
        M::up(crate::http_apis::META_HTTP_APIS_V1).comment("API Gateway HTTP APIs"),
        M::up(META_LOGGING_V1).comment("each version's LoggingConfig"),
        M::up(crate::event_rules::META_EVENT_RULES_V1).comment("EventBridge buses, rules and targets"),
    ])
}

fn logs_migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(LOGS_V1).comment("log groups, streams and events"),
        M::up(crate::logs::LOGS_RETENTION_V2).comment("log group retention policies"),
    ])
}

/// Nimbus's durable state: SQLite metadata, logs, and the content-addressed code blobs.
///
/// Every method is synchronous and short (indexed queries on prepared statements); async callers may
/// call them directly, or on a blocking thread for the few that write many rows (`append_logs` of a big
/// batch, `expire_logs`, `delete_log_group`).
#[derive(Debug)]
pub struct Store {
    pub(crate) meta: Db,
    pub(crate) logs: Db,
    pub(crate) queues: Db,
    pub(crate) s3: Db,
    /// Function versions and aliases read from `meta`, valid while its generation stands.
    pub(crate) catalog: crate::catalog::Catalog,
    /// Bumped after every write to the IAM tables (see `iam`).
    pub(crate) iam_generation: AtomicU64,
    code: CodeStore,
}

impl Store {
    /// Opens (creating as needed) the store under `data_dir`: `nimbus.db`, `logs.db`, `queues.db`, `s3.db` and
    /// `code/`, and brings every database's schema up to date.
    pub fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            op: "create data directory",
            path: data_dir.to_owned(),
            source,
        })?;
        let meta = Db::open(&data_dir.join("nimbus.db"), "FULL", &meta_migrations())?;
        let logs = Db::open(&data_dir.join("logs.db"), "NORMAL", &logs_migrations())?;
        let queues = Db::open(&data_dir.join("queues.db"), "FULL", &crate::queues::migrations())?;
        let s3 = Db::open(&data_dir.join("s3.db"), "FULL", &crate::s3::migrations())?;
        let code = CodeStore::open(&data_dir.join("code"))?;
        Ok(Store { meta, logs, queues, s3, catalog: Default::default(), iam_generation: AtomicU64::new(0), code })
    }

    /// The zip blobs that function versions reference by digest.
    pub fn code(&self) -> &CodeStore {
        &self.code
    }
}

/// One SQLite file: a single writer connection (SQLite allows one writer at a time anyway, so queueing
/// on a mutex costs nothing and avoids `SQLITE_BUSY`) and a pool of read connections, which in WAL mode
/// read a consistent snapshot without blocking or being blocked by the writer.
pub(crate) struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Bumped after every write transaction, committed or not: what was read before may be stale.
    generation: AtomicU64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Db {
    fn open(path: &Path, synchronous: &str, migrations: &Migrations<'_>) -> Result<Db> {
        create_private(path)?;
        let mut writer = Connection::open(path).map_err(StoreError::sqlite("open database"))?;
        writer.busy_timeout(BUSY_TIMEOUT).map_err(StoreError::sqlite("set busy_timeout"))?;
        // journal_mode answers with the mode it ended up in; a filesystem that cannot do WAL (some
        // network mounts) would silently stay in rollback mode, where readers block the writer.
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(StoreError::sqlite("enable WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io {
                op: "enable write-ahead logging for",
                path: path.to_owned(),
                source: std::io::Error::other(format!("SQLite kept journal_mode={mode}")),
            });
        }
        writer.pragma_update(None, "synchronous", synchronous).map_err(StoreError::sqlite("set synchronous"))?;
        writer.pragma_update(None, "foreign_keys", "ON").map_err(StoreError::sqlite("enable foreign keys"))?;
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrations.to_latest(&mut writer).map_err(|source| StoreError::Migrate { path: path.to_owned(), source })?;
        let db = Db {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
        };
        // Opening one reader now surfaces permission problems at startup rather than on the first query.
        let reader = db.open_reader()?;
        db.return_reader(reader);
        Ok(db)
    }

    fn open_reader(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(StoreError::sqlite("open reader"))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(StoreError::sqlite("set busy_timeout"))?;
        // A reader opened read-write (so it can use the WAL's shared memory) but refusing writes: a bug
        // that writes through a reader fails loudly instead of racing the writer.
        conn.pragma_update(None, "query_only", "ON").map_err(StoreError::sqlite("set query_only"))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn return_reader(&self, conn: Connection) {
        let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS_MAX {
            idle.push(conn);
        }
    }

    /// Runs `f` in a read transaction, so that several statements see one snapshot.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        let result = (|| {
            let tx = conn.transaction().map_err(StoreError::sqlite("begin read"))?;
            let value = f(&tx)?;
            tx.finish().map_err(StoreError::sqlite("end read"))?;
            Ok(value)
        })();
        // A connection is only pooled again once its transaction is over; after an error the dropped
        // transaction has rolled back, so it is clean either way.
        if conn.is_autocommit() {
            self.return_reader(conn);
        }
        result
    }

    /// Runs `f` in one write transaction, committed if `f` returns `Ok` and rolled back otherwise.
    /// `BEGIN IMMEDIATE` takes the write lock up front, so a read-check-write sequence inside `f` (such
    /// as a revision-id precondition) cannot be interleaved with another process's write.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        // A panic while holding the lock poisons it, but the connection is still sound: the panicking
        // transaction was rolled back when it unwound.
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let result = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(StoreError::sqlite("begin write"))?;
            let value = f(&tx)?;
            tx.commit().map_err(StoreError::sqlite("commit"))?;
            Ok(value)
        })();
        // Bumped while the write lock is still held and after the transaction is over, so that anyone
        // who read the old generation before querying is told their result may predate this write.
        self.generation.fetch_add(1, Ordering::Release);
        result
    }

    /// Which writes have finished: read it before a query whose result is to be reused, and reuse the
    /// result only while it is unchanged.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// Creates an empty database file readable by its owner only, if there is none yet. Function
/// environments and logs routinely hold secrets, and SQLite gives the `-wal` and `-shm` files it creates
/// later the same mode as the database file. An existing file keeps whatever mode the operator chose.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io { op: "create database", path: path.to_owned(), source }),
    }
}

/// A fresh RFC 4122 version 4 UUID, as AWS formats `RevisionId`. The randomness comes from SQLite's
/// generator, which is seeded from the operating system; revision ids need to be unique, not secret.
pub(crate) fn new_revision_id(conn: &Connection) -> Result<String> {
    let bytes: Vec<u8> = conn
        .prepare_cached("SELECT randomblob(16)")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(StoreError::sqlite("generate revision id"))?;
    let mut b = [0u8; 16];
    for (slot, byte) in b.iter_mut().zip(bytes) {
        *slot = byte;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = |range: std::ops::Range<usize>| b[range].iter().map(|x| format!("{x:02x}")).collect::<String>();
    Ok(format!("{}-{}-{}-{}-{}", hex(0..4), hex(4..6), hex(6..8), hex(8..10), hex(10..16)))
}
