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

const S3_MULTIPART_V2: &str = "
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    bucket      TEXT NOT NULL REFERENCES buckets(name),
    key         TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    headers     TEXT NOT NULL          -- the object's headers to be, JSON
) STRICT;
CREATE INDEX uploads_by_key ON uploads (bucket, key, created_ms);

CREATE TABLE parts (
    upload_id    TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    file         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    etag         TEXT NOT NULL,        -- hex MD5 of the part
    modified_ms  INTEGER NOT NULL,
    checksums    TEXT NOT NULL,        -- JSON
    PRIMARY KEY (upload_id, number)
) STRICT, WITHOUT ROWID;
";

const S3_OBJECT_TAGS_V3: &str = "
ALTER TABLE objects ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';   -- JSON object; a new PUT resets it
";

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(S3_V1).comment("buckets and objects"),
        M::up(S3_MULTIPART_V2).comment("multipart uploads and their parts"),
        M::up(S3_OBJECT_TAGS_V3).comment("object tags"),
    ])
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub id: String,
    pub bucket: String,
    pub key: String,
    pub created_ms: i64,
    pub headers: String,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub number: i32,
    pub file: String,
    pub size: i64,
    pub etag: String,
    pub modified_ms: i64,
    pub checksums: String,
}

fn upload_not_found(id: &str) -> StoreError {
    StoreError::NotFound { what: "upload", name: id.to_owned() }
}

fn read_upload(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<Option<UploadRecord>> {
    tx.prepare_cached("SELECT id, bucket, key, created_ms, headers FROM uploads WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![id], |row| {
                Ok(UploadRecord {
                    id: row.get(0)?,
                    bucket: row.get(1)?,
                    key: row.get(2)?,
                    created_ms: row.get(3)?,
                    headers: row.get(4)?,
                })
            })
            .optional()
        })
        .map_err(StoreError::sqlite("read upload"))
}

fn read_parts(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<Vec<PartRecord>> {
    tx.prepare_cached(
        "SELECT number, file, size, etag, modified_ms, checksums FROM parts WHERE upload_id = ?1 ORDER BY number",
    )
    .and_then(|mut stmt| {
        stmt.query_map(params![id], |row| {
            Ok(PartRecord {
                number: row.get(0)?,
                file: row.get(1)?,
                size: row.get(2)?,
                etag: row.get(3)?,
                modified_ms: row.get(4)?,
                checksums: row.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(StoreError::sqlite("list parts"))
}

impl Store {
    pub fn create_upload(&self, upload: &UploadRecord) -> Result<()> {
        self.s3.write(|tx| {
            if !bucket_exists(tx, &upload.bucket)? {
                return Err(bucket_not_found(&upload.bucket));
            }
            tx.prepare_cached("INSERT INTO uploads (id, bucket, key, created_ms, headers) VALUES (?1, ?2, ?3, ?4, ?5)")
                .and_then(|mut stmt| {
                    stmt.execute(params![upload.id, upload.bucket, upload.key, upload.created_ms, upload.headers])
                })
                .map_err(StoreError::sqlite("insert upload"))?;
            Ok(())
        })
    }

    /// The upload, `NotFound { what: "upload" }` if there is none.
    pub fn get_upload(&self, id: &str) -> Result<UploadRecord> {
        self.s3.read(|tx| read_upload(tx, id)?.ok_or_else(|| upload_not_found(id)))
    }

    /// Records a part whose body file is durable; answers the file of the part it replaced.
    pub fn put_part(&self, upload_id: &str, part: &PartRecord) -> Result<Option<String>> {
        self.s3.write(|tx| {
            if read_upload(tx, upload_id)?.is_none() {
                return Err(upload_not_found(upload_id));
            }
            let old = tx
                .prepare_cached("SELECT file FROM parts WHERE upload_id = ?1 AND number = ?2")
                .and_then(|mut stmt| stmt.query_row(params![upload_id, part.number], |row| row.get(0)).optional())
                .map_err(StoreError::sqlite("read part"))?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO parts (upload_id, number, file, size, etag, modified_ms, checksums)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    upload_id,
                    part.number,
                    part.file,
                    part.size,
                    part.etag,
                    part.modified_ms,
                    part.checksums
                ])
            })
            .map_err(StoreError::sqlite("write part"))?;
            Ok(old)
        })
    }

    pub fn list_parts(&self, upload_id: &str) -> Result<Vec<PartRecord>> {
        self.s3.read(|tx| {
            if read_upload(tx, upload_id)?.is_none() {
                return Err(upload_not_found(upload_id));
            }
            read_parts(tx, upload_id)
        })
    }

    /// The bucket's uploads in progress, by key then start time.
    pub fn list_uploads(&self, bucket: &str) -> Result<Vec<UploadRecord>> {
        self.s3.read(|tx| {
            if !bucket_exists(tx, bucket)? {
                return Err(bucket_not_found(bucket));
            }
            tx.prepare_cached(
                "SELECT id, bucket, key, created_ms, headers FROM uploads WHERE bucket = ?1 ORDER BY key, created_ms LIMIT 1000",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![bucket], |row| {
                    Ok(UploadRecord {
                        id: row.get(0)?,
                        bucket: row.get(1)?,
                        key: row.get(2)?,
                        created_ms: row.get(3)?,
                        headers: row.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(StoreError::sqlite("list uploads"))
        })
    }

    /// Ends an upload: answers its parts' files for the caller to remove.
    pub fn abort_upload(&self, upload_id: &str) -> Result<Vec<String>> {
        self.s3.write(|tx| abort_upload_tx(tx, upload_id))
    }

    /// Completes an upload in one transaction: the object row (whose body is durable) replaces any
    /// previous one and the upload ends. Answers the files no row names any more (the parts', and
    /// the replaced object's).
    pub fn complete_upload(&self, upload_id: &str, bucket: &str, object: &ObjectRecord) -> Result<Vec<String>> {
        self.s3.write(|tx| {
            let mut stale = abort_upload_tx(tx, upload_id)?;
            stale.extend(put_object_tx(tx, bucket, object)?);
            Ok(stale)
        })
    }
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

fn put_object_tx(tx: &rusqlite::Transaction<'_>, bucket: &str, object: &ObjectRecord) -> Result<Option<String>> {
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
}

fn abort_upload_tx(tx: &rusqlite::Transaction<'_>, upload_id: &str) -> Result<Vec<String>> {
    if read_upload(tx, upload_id)?.is_none() {
        return Err(upload_not_found(upload_id));
    }
    let files = read_parts(tx, upload_id)?.into_iter().map(|p| p.file).collect();
    tx.prepare_cached("DELETE FROM uploads WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![upload_id]))
        .map_err(StoreError::sqlite("delete upload"))?;
    Ok(files)
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

    /// Deletes an empty bucket: `NotFound` if there is none, `Conflict` if it holds objects. Its
    /// multipart uploads in progress end with it; answers their part files for the caller to remove.
    pub fn delete_bucket(&self, name: &str) -> Result<Vec<String>> {
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
            let parts = tx
                .prepare_cached("SELECT p.file FROM parts p JOIN uploads u ON u.id = p.upload_id WHERE u.bucket = ?1")
                .and_then(|mut stmt| {
                    stmt.query_map(params![name], |row| row.get(0))?.collect::<rusqlite::Result<Vec<String>>>()
                })
                .map_err(StoreError::sqlite("list the bucket's parts"))?;
            tx.prepare_cached("DELETE FROM uploads WHERE bucket = ?1")
                .and_then(|mut stmt| stmt.execute(params![name]))
                .map_err(StoreError::sqlite("delete the bucket's uploads"))?;
            tx.prepare_cached("DELETE FROM buckets WHERE name = ?1")
                .and_then(|mut stmt| stmt.execute(params![name]))
                .map_err(StoreError::sqlite("delete bucket"))?;
            Ok(parts)
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

    /// Sets (or with `None` removes) the bucket's notification configuration, a JSON text the S3
    /// layer writes and reads.
    pub fn set_bucket_notification(&self, name: &str, configuration: Option<&str>) -> Result<()> {
        self.s3.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE buckets SET notification = ?2 WHERE name = ?1")
                .and_then(|mut stmt| stmt.execute(params![name, configuration]))
                .map_err(StoreError::sqlite("set bucket notification"))?;
            if changed == 0 {
                return Err(bucket_not_found(name));
            }
            Ok(())
        })
    }

    pub fn get_bucket_notification(&self, name: &str) -> Result<Option<String>> {
        self.s3.read(|tx| {
            tx.prepare_cached("SELECT notification FROM buckets WHERE name = ?1")
                .and_then(|mut stmt| stmt.query_row(params![name], |row| row.get::<_, Option<String>>(0)).optional())
                .map_err(StoreError::sqlite("read bucket notification"))?
                .ok_or_else(|| bucket_not_found(name))
        })
    }

    /// Replaces a bucket's tags (a JSON object the S3 layer writes).
    pub fn set_bucket_tags(&self, name: &str, tags: &str) -> Result<()> {
        self.s3.write(|tx| {
            let changed = tx
                .prepare_cached("UPDATE buckets SET tags = ?2 WHERE name = ?1")
                .and_then(|mut stmt| stmt.execute(params![name, tags]))
                .map_err(StoreError::sqlite("set bucket tags"))?;
            if changed == 0 {
                return Err(bucket_not_found(name));
            }
            Ok(())
        })
    }

    pub fn get_bucket_tags(&self, name: &str) -> Result<String> {
        self.s3.read(|tx| {
            tx.prepare_cached("SELECT tags FROM buckets WHERE name = ?1")
                .and_then(|mut stmt| stmt.query_row(params![name], |row| row.get(0)).optional())
                .map_err(StoreError::sqlite("read bucket tags"))?
                .ok_or_else(|| bucket_not_found(name))
        })
    }

    /// Replaces an object's tags; `false` if there is no such object.
    pub fn set_object_tags(&self, bucket: &str, key: &str, tags: &str) -> Result<bool> {
        self.s3.write(|tx| {
            if !bucket_exists(tx, bucket)? {
                return Err(bucket_not_found(bucket));
            }
            tx.prepare_cached("UPDATE objects SET tags = ?3 WHERE bucket = ?1 AND key = ?2")
                .and_then(|mut stmt| stmt.execute(params![bucket, key, tags]))
                .map(|changed| changed > 0)
                .map_err(StoreError::sqlite("set object tags"))
        })
    }

    /// An object's tags, `None` if there is no such object.
    pub fn get_object_tags(&self, bucket: &str, key: &str) -> Result<Option<String>> {
        self.s3.read(|tx| {
            if !bucket_exists(tx, bucket)? {
                return Err(bucket_not_found(bucket));
            }
            tx.prepare_cached("SELECT tags FROM objects WHERE bucket = ?1 AND key = ?2")
                .and_then(|mut stmt| stmt.query_row(params![bucket, key], |row| row.get(0)).optional())
                .map_err(StoreError::sqlite("read object tags"))
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
        self.s3.write(|tx| put_object_tx(tx, bucket, object))
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

    /// Every body file a row names (objects and parts): what a startup sweep must keep.
    pub fn s3_object_files(&self) -> Result<std::collections::HashSet<String>> {
        self.s3.read(|tx| {
            tx.prepare_cached("SELECT file FROM objects UNION ALL SELECT file FROM parts")
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
        let upload =
            UploadRecord { id: "u".into(), bucket: "b".into(), key: "k".into(), created_ms: 1, headers: "{}".into() };
        store.create_upload(&upload).unwrap();
        let part = PartRecord {
            number: 1,
            file: "p1".into(),
            size: 1,
            etag: "e".into(),
            modified_ms: 1,
            checksums: "{}".into(),
        };
        assert_eq!(store.put_part("u", &part).unwrap(), None);
        assert_eq!(store.delete_bucket("b").unwrap(), ["p1"]);
        assert!(matches!(store.get_bucket("b"), Err(StoreError::NotFound { .. })));
        assert!(matches!(store.get_upload("u"), Err(StoreError::NotFound { .. })));
    }
}
