//! S3 buckets and object metadata, in `s3.db` (WAL, `synchronous=FULL`: an object whose PUT was
//! answered survives a power cut). Object bodies are files the server writes under `<data>/s3/`; a row
//! names its body file, and the row is committed only after the file is durable, so a row never points
//! at a partial body. Replacing or deleting a row hands back the file it named, for the caller to remove
//! after the commit (an overwrite is one row update: readers see the old or the new object).
//!
//! The store keeps what the API layer gives it: `headers` is an opaque JSON text (content headers, user
//! metadata, checksums) that only the S3 layer reads.

use rusqlite::{OptionalExtension as _, Row, params};
use rusqlite_migration::{M, Migrations};

use crate::db::Store;
use crate::error::{Result, StoreError};
use crate::functions::limit_param;

const S3_V1: &str = "
CREATE TABLE buckets (
    name          TEXT PRIMARY KEY,
    created_ms    INTEGER NOT NULL,
    tags          TEXT NOT NULL DEFAULT '{}',
    notification  TEXT                 -- the bucket's notification configuration, JSON
) STRICT;

CREATE TABLE objects (
    bucket       TEXT NOT NULL REFERENCES buckets(name),
    key          TEXT NOT NULL,
    file         TEXT NOT NULL,        -- body file name under <data>/s3/objects
    size         INTEGER NOT NULL,
    etag         TEXT NOT NULL,
    modified_ms  INTEGER NOT NULL,
    headers      TEXT NOT NULL,        -- content headers, user metadata, checksums: JSON
    PRIMARY KEY (bucket, key)
) STRICT, WITHOUT ROWID;
";

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(S3_V1).comment("buckets and objects")])
}

/// A bucket's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRecord {
    pub name: String,
    pub created_ms: i64,
}

/// An object's row: what HEAD answers, and where its body lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    pub key: String,
    pub file: String,
    pub size: i64,
    pub etag: String,
    pub modified_ms: i64,
    pub headers: String,
}

const OBJECT_COLUMNS: &str = "key, file, size, etag, modified_ms, headers";

fn object_row(row: &Row<'_>) -> rusqlite::Result<ObjectRecord> {
    Ok(ObjectRecord {
        key: row.get(0)?,
        file: row.get(1)?,
        size: row.get(2)?,
        etag: row.get(3)?,
        modified_ms: row.get(4)?,
        headers: row.get(5)?,
    })
}

fn bucket_not_found(name: &str) -> StoreError {
    StoreError::NotFound { what: "bucket", name: name.to_owned() }
}

fn bucket_exists(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<bool> {
    tx.prepare_cached("SELECT 1 FROM buckets WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row(params![name], |_| Ok(())).optional())
        .map(|found| found.is_some())
        .map_err(StoreError::sqlite("read bucket"))
}

impl Store {
    /// Creates a bucket; `false` when it already existed (S3 answers `BucketAlreadyOwnedByYou`).
    pub fn create_bucket(&self, name: &str, now_ms: i64) -> Result<bool> {
        self.s3.write(|tx| {
            if bucket_exists(tx, name)? {
                return Ok(false);
            }
            tx.prepare_cached("INSERT INTO buckets (name, created_ms) VALUES (?1, ?2)")
                .and_then(|mut stmt| stmt.execute(params![name, now_ms]))
                .map_err(StoreError::sqlite("insert bucket"))?;
            Ok(true)
        })
    }

    /// Deletes an empty bucket: `NotFound` if there is none, `Conflict` if it holds objects.
    pub fn delete_bucket(&self, name: &str) -> Result<()> {
        self.s3.write(|tx| {
            if !bucket_exists(tx, name)? {
                return Err(bucket_not_found(name));
            }
            let has_objects = tx
                .prepare_cached("SELECT 1 FROM objects WHERE bucket = ?1 LIMIT 1")
                .and_then(|mut stmt| stmt.query_row(params![name], |_| Ok(())).optional())
                .map_err(StoreError::sqlite("check bucket is empty"))?
                .is_some();
            if has_objects {
                return Err(StoreError::Conflict { what: "non-empty bucket", name: name.to_owned() });
            }
            tx.prepare_cached("DELETE FROM buckets WHERE name = ?1")
                .and_then(|mut stmt| stmt.execute(params![name]))
                .map_err(StoreError::sqlite("delete bucket"))?;
            Ok(())
        })
    }

    pub fn get_bucket(&self, name: &str) -> Result<BucketRecord> {
        self.s3.read(|tx| {
            tx.prepare_cached("SELECT name, created_ms FROM buckets WHERE name = ?1")
                .and_then(|mut stmt| {
                    stmt.query_row(params![name], |row| Ok(BucketRecord { name: row.get(0)?, created_ms: row.get(1)? }))
                        .optional()
                })
                .map_err(StoreError::sqlite("read bucket"))?
                .ok_or_else(|| bucket_not_found(name))
        })
    }

    /// Every bucket, in name order (S3 has at most a few thousand per account).
    pub fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.s3.read(|tx| {
            tx.prepare_cached("SELECT name, created_ms FROM buckets ORDER BY name")
                .and_then(|mut stmt| {
                    stmt.query_map([], |row| Ok(BucketRecord { name: row.get(0)?, created_ms: row.get(1)? }))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(StoreError::sqlite("list buckets"))
        })
    }

    /// Commits an object whose body file is already durable; answers the body file it replaced.
    pub fn put_object(&self, bucket: &str, object: &ObjectRecord) -> Result<Option<String>> {
        self.s3.write(|tx| {
            if !bucket_exists(tx, bucket)? {
                return Err(bucket_not_found(bucket));
            }
            let old = tx
                .prepare_cached("SELECT file FROM objects WHERE bucket = ?1 AND key = ?2")
                .and_then(|mut stmt| stmt.query_row(params![bucket, object.key], |row| row.get(0)).optional())
                .map_err(StoreError::sqlite("read object"))?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO objects (bucket, key, file, size, etag, modified_ms, headers)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    bucket,
                    object.key,
                    object.file,
                    object.size,
                    object.etag,
                    object.modified_ms,
                    object.headers
                ])
            })
            .map_err(StoreError::sqlite("write object"))?;
            Ok(old)
        })
    }

    /// The object, `None` if the bucket has no such key; `NotFound` if there is no such bucket.
    pub fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        self.s3.read(|tx| {
            if !bucket_exists(tx, bucket)? {
                return Err(bucket_not_found(bucket));
            }
            tx.prepare_cached(&format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key = ?2"))
                .and_then(|mut stmt| stmt.query_row(params![bucket, key], object_row).optional())
                .map_err(StoreError::sqlite("read object"))
        })
    }

    /// Removes an object; answers its row (whose body file the caller removes), `None` if it did not exist.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        self.s3.write(|tx| {
            if !bucket_exists(tx, bucket)? {
                return Err(bucket_not_found(bucket));
            }
            let old = tx
                .prepare_cached(&format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key = ?2"))
                .and_then(|mut stmt| stmt.query_row(params![bucket, key], object_row).optional())
                .map_err(StoreError::sqlite("read object"))?;
            if old.is_some() {
                tx.prepare_cached("DELETE FROM objects WHERE bucket = ?1 AND key = ?2")
                    .and_then(|mut stmt| stmt.execute(params![bucket, key]))
                    .map_err(StoreError::sqlite("delete object"))?;
            }
            Ok(old)
        })
    }

    /// Up to `limit` objects whose keys start with `prefix` and sort after `after`, in key (byte) order.
    pub fn list_objects(&self, bucket: &str, prefix: &str, after: &str, limit: usize) -> Result<Vec<ObjectRecord>> {
        self.s3.read(|tx| {
            if !bucket_exists(tx, bucket)? {
                return Err(bucket_not_found(bucket));
            }
            tx.prepare_cached(&format!(
                "SELECT {OBJECT_COLUMNS} FROM objects
                 WHERE bucket = ?1 AND key > ?2 AND substr(key, 1, length(?3)) = ?3
                 ORDER BY key LIMIT ?4"
            ))
            .and_then(|mut stmt| {
                stmt.query_map(params![bucket, after, prefix, limit_param(limit)], object_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(StoreError::sqlite("list objects"))
        })
    }

    /// Every body file a row names: what a startup sweep must keep.
    pub fn s3_object_files(&self) -> Result<std::collections::HashSet<String>> {
        self.s3.read(|tx| {
            tx.prepare_cached("SELECT file FROM objects")
                .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<_>>())
                .map_err(StoreError::sqlite("list object files"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, file: &str) -> ObjectRecord {
        ObjectRecord {
            key: key.into(),
            file: file.into(),
            size: 1,
            etag: "\"e\"".into(),
            modified_ms: 5,
            headers: "{}".into(),
        }
    }

    #[test]
    fn buckets_objects_overwrite_list_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.create_bucket("b", 1).unwrap());
        assert!(!store.create_bucket("b", 2).unwrap());
        assert!(matches!(store.put_object("nope", &object("k", "f")), Err(StoreError::NotFound { .. })));
        assert_eq!(store.put_object("b", &object("a/1", "f1")).unwrap(), None);
        assert_eq!(store.put_object("b", &object("a/1", "f2")).unwrap(), Some("f1".into()));
        store.put_object("b", &object("a/2", "f3")).unwrap();
        store.put_object("b", &object("c", "f4")).unwrap();
        let keys = |v: Vec<ObjectRecord>| v.into_iter().map(|o| o.key).collect::<Vec<_>>();
        assert_eq!(keys(store.list_objects("b", "a/", "", 10).unwrap()), ["a/1", "a/2"]);
        assert_eq!(keys(store.list_objects("b", "", "a/1", 2).unwrap()), ["a/2", "c"]);
        assert!(matches!(store.delete_bucket("b"), Err(StoreError::Conflict { .. })));
        assert_eq!(store.s3_object_files().unwrap().len(), 3);
        for key in ["a/1", "a/2", "c"] {
            assert!(store.delete_object("b", key).unwrap().is_some());
        }
        assert_eq!(store.delete_object("b", "c").unwrap(), None);
        store.delete_bucket("b").unwrap();
        assert!(matches!(store.get_bucket("b"), Err(StoreError::NotFound { .. })));
    }
}
