//! Functions and their versions: `$LATEST`, which changes, and published versions, which are immutable
//! snapshots of its code and configuration.

mod rows;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;

use nimbus_model::{Description, FunctionConfig, FunctionName, Tags, Version};
use rusqlite::{OptionalExtension as _, Transaction, params};

use crate::code::CodeDigest;
use crate::db::{Store, new_revision_id};
use crate::error::{Result, StoreError};
use rows::{Raw, code_size, config_params, insert_version, load, load_latest, select_versions, tags_json};

/// Which version of a function a record is: `$LATEST` or a published number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VersionId {
    Latest,
    Published(Version),
}

impl VersionId {
    /// The `version` column: `$LATEST` is 0, which sorts it before every published version.
    fn to_column(self) -> i64 {
        match self {
            VersionId::Latest => 0,
            VersionId::Published(v) => i64::from(v.get()),
        }
    }
}

impl From<Version> for VersionId {
    fn from(v: Version) -> Self {
        VersionId::Published(v)
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionId::Latest => f.write_str("$LATEST"),
            VersionId::Published(v) => write!(f, "{v}"),
        }
    }
}

/// The deployment package a version runs; the zip itself is in the [`crate::CodeStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub digest: CodeDigest,
    pub size_bytes: u64,
}

/// One version of a function as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRecord {
    pub name: FunctionName,
    pub version: VersionId,
    pub config: FunctionConfig,
    pub code: CodeInfo,
    /// A UUID that changes whenever this version changes (only `$LATEST` ever does).
    pub revision_id: String,
    pub last_modified_ms: i64,
    /// The function's tags; they belong to the function, so every version reports the same ones.
    pub tags: Tags,
    /// The legacy `DeadLetterConfig.TargetArn` (kept per function, so every version reports it).
    pub dead_letter_target: Option<String>,
}

/// What CreateFunction stores.
#[derive(Debug, Clone)]
pub struct NewFunction {
    pub name: FunctionName,
    pub config: FunctionConfig,
    pub code: CodeInfo,
    pub tags: Tags,
    /// Also publish version 1, as `Publish: true` asks.
    pub publish: bool,
    pub now_ms: i64,
}

/// `NotFound` for a function, or for one version of it as `name:version` (the API layer turns either
/// into the ARN AWS quotes in its message).
fn not_found(name: &FunctionName, version: VersionId) -> StoreError {
    let name = match version {
        VersionId::Latest => name.to_string(),
        VersionId::Published(v) => format!("{name}:{v}"),
    };
    StoreError::NotFound { what: "function", name }
}

fn check_revision(latest: &FunctionRecord, expected: Option<&str>) -> Result<()> {
    match expected {
        Some(expected) if expected != latest.revision_id => {
            Err(StoreError::PreconditionFailed { expected: expected.to_owned(), actual: latest.revision_id.clone() })
        }
        _ => Ok(()),
    }
}

/// Publishes `latest` as the next version, unless the newest published version already is exactly what
/// would be published (same code, same configuration including the description it would get), in which
/// case that version is returned: "Lambda doesn't publish a version if the function's configuration and
/// code haven't changed since the last version."
fn publish(
    tx: &Transaction<'_>,
    latest: &FunctionRecord,
    description: Option<Description>,
    now_ms: i64,
) -> Result<FunctionRecord> {
    let name = &latest.name;
    let mut config = latest.config.clone();
    if let Some(description) = description {
        config.description = description;
    }
    let newest = tx
        .prepare_cached(select_versions!("WHERE v.function = ?1 AND v.version > 0 ORDER BY v.version DESC LIMIT 1"))
        .and_then(|mut stmt| stmt.query_row([name.as_str()], Raw::from_row).optional())
        .map_err(StoreError::sqlite("read newest version"))?
        .map(Raw::into_record)
        .transpose()?;
    if let Some(newest) = newest
        && newest.code == latest.code
        && newest.config == config
    {
        return Ok(newest);
    }
    let number: i64 = tx
        .prepare_cached("UPDATE functions SET last_version = last_version + 1 WHERE name = ?1 RETURNING last_version")
        .and_then(|mut stmt| stmt.query_row([name.as_str()], |row| row.get(0)))
        .map_err(StoreError::sqlite("number version"))?;
    let version = u32::try_from(number)
        .ok()
        .and_then(Version::new)
        .ok_or_else(|| StoreError::corrupt("functions", name.as_str(), format!("last_version {number}")))?;
    let version = VersionId::Published(version);
    let revision_id = insert_version(tx, name, version, &config, latest.code, now_ms)?;
    Ok(FunctionRecord {
        name: name.clone(),
        version,
        config,
        code: latest.code,
        revision_id,
        last_modified_ms: now_ms,
        tags: latest.tags.clone(),
        dead_letter_target: latest.dead_letter_target.clone(),
    })
}

impl Store {
    /// Stores a new function's `$LATEST` (and version 1 if `publish`), all in one transaction: a name that
    /// exists already is a `Conflict` and leaves nothing behind.
    pub fn create_function(&self, new: NewFunction) -> Result<(FunctionRecord, Option<FunctionRecord>)> {
        self.meta.write(|tx| {
            let tags = tags_json(&new.name, &new.tags)?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO functions (name, created_ms, tags) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
                )
                .and_then(|mut stmt| stmt.execute(params![new.name.as_str(), new.now_ms, tags]))
                .map_err(StoreError::sqlite("insert function"))?;
            if inserted == 0 {
                return Err(StoreError::Conflict { what: "function", name: new.name.to_string() });
            }
            let revision_id = insert_version(tx, &new.name, VersionId::Latest, &new.config, new.code, new.now_ms)?;
            let latest = FunctionRecord {
                name: new.name,
                version: VersionId::Latest,
                config: new.config,
                code: new.code,
                revision_id,
                last_modified_ms: new.now_ms,
                tags: new.tags,
                dead_letter_target: None,
            };
            let published = if new.publish { Some(publish(tx, &latest, None, new.now_ms)?) } else { None };
            Ok((latest, published))
        })
    }

    pub fn get_function(&self, name: &FunctionName, version: &VersionId) -> Result<FunctionRecord> {
        self.meta.read(|tx| load(tx, name, *version)?.ok_or_else(|| not_found(name, *version)))
    }

    /// The `$LATEST` of up to `limit` functions whose names sort after `after`, in name order: one page
    /// of ListFunctions, whose `Marker` is the last name of the previous page.
    pub fn list_functions(&self, after: Option<&FunctionName>, limit: usize) -> Result<Vec<FunctionRecord>> {
        self.meta.read(|tx| {
            let after = after.map_or("", FunctionName::as_str);
            let raws = tx
                .prepare_cached(select_versions!(
                    "WHERE v.version = 0 AND v.function > ?1 ORDER BY v.function LIMIT ?2"
                ))
                .and_then(|mut stmt| {
                    stmt.query_map(params![after, limit_param(limit)], Raw::from_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(StoreError::sqlite("list functions"))?;
            raws.into_iter().map(Raw::into_record).collect()
        })
    }

    /// Points `$LATEST` at new code, then publishes it if asked (returning the existing version if the
    /// newest one is identical).
    pub fn update_function_code(
        &self,
        name: &FunctionName,
        code: CodeInfo,
        expected_revision: Option<&str>,
        publish_version: bool,
        now_ms: i64,
    ) -> Result<(FunctionRecord, Option<FunctionRecord>)> {
        self.meta.write(|tx| {
            let mut latest = load_latest(tx, name)?;
            check_revision(&latest, expected_revision)?;
            let revision_id = new_revision_id(tx)?;
            tx.prepare_cached(
                "UPDATE function_versions SET code_sha256 = ?3, code_size = ?4, revision_id = ?5,
                     last_modified_ms = ?6
                 WHERE function = ?1 AND version = ?2",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![name.as_str(), 0, code.digest.to_hex(), code_size(code)?, revision_id, now_ms])
            })
            .map_err(StoreError::sqlite("update function code"))?;
            latest.code = code;
            latest.revision_id = revision_id;
            latest.last_modified_ms = now_ms;
            let published = if publish_version { Some(publish(tx, &latest, None, now_ms)?) } else { None };
            Ok((latest, published))
        })
    }

    /// Gives `$LATEST` a new revision id and returns it: Lambda renews it when a create or an update
    /// finishes (Pending → Active, InProgress → Successful), not only when the request is taken.
    pub fn renew_revision(&self, name: &FunctionName) -> Result<String> {
        self.meta.write(|tx| {
            load_latest(tx, name)?;
            let revision_id = new_revision_id(tx)?;
            tx.prepare_cached("UPDATE function_versions SET revision_id = ?3 WHERE function = ?1 AND version = ?2")
                .and_then(|mut stmt| stmt.execute(params![name.as_str(), 0, revision_id]))
                .map_err(StoreError::sqlite("renew revision"))?;
            Ok(revision_id)
        })
    }

    /// Replaces `$LATEST`'s whole configuration; the caller has already merged the partial update.
    pub fn update_function_config(
        &self,
        name: &FunctionName,
        config: FunctionConfig,
        expected_revision: Option<&str>,
        now_ms: i64,
    ) -> Result<FunctionRecord> {
        self.meta.write(|tx| {
            let mut latest = load_latest(tx, name)?;
            check_revision(&latest, expected_revision)?;
            let revision_id = new_revision_id(tx)?;
            let cols = config_params(name, &config)?;
            tx.prepare_cached(
                "UPDATE function_versions SET runtime = ?3, handler = ?4, role = ?5, memory_mb = ?6,
                     timeout_s = ?7, ephemeral_mb = ?8, environment = ?9, description = ?10,
                     architecture = ?11, revision_id = ?12, last_modified_ms = ?13, logging = ?14
                 WHERE function = ?1 AND version = ?2",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    name.as_str(),
                    0,
                    cols.runtime,
                    cols.handler,
                    cols.role,
                    cols.memory_mb,
                    cols.timeout_s,
                    cols.ephemeral_mb,
                    cols.environment,
                    cols.description,
                    cols.architecture,
                    revision_id,
                    now_ms,
                    cols.logging,
                ])
            })
            .map_err(StoreError::sqlite("update function configuration"))?;
            latest.config = config;
            latest.revision_id = revision_id;
            latest.last_modified_ms = now_ms;
            Ok(latest)
        })
    }

    /// PublishVersion. `expected_code_sha` is AWS's base64 `CodeSha256`; a mismatch is
    /// `CodeShaMismatch`, a stale `expected_revision` is `PreconditionFailed`.
    pub fn publish_version(
        &self,
        name: &FunctionName,
        expected_code_sha: Option<&str>,
        expected_revision: Option<&str>,
        description: Option<Description>,
        now_ms: i64,
    ) -> Result<FunctionRecord> {
        self.meta.write(|tx| {
            let latest = load_latest(tx, name)?;
            check_revision(&latest, expected_revision)?;
            let actual = latest.code.digest.to_base64();
            if let Some(expected) = expected_code_sha
                && expected != actual
            {
                return Err(StoreError::CodeShaMismatch { expected: expected.to_owned(), actual });
            }
            publish(tx, &latest, description, now_ms)
        })
    }

    /// `$LATEST` first, then published versions in ascending order, starting after `after`.
    pub fn list_versions(
        &self,
        name: &FunctionName,
        after: Option<&VersionId>,
        limit: usize,
    ) -> Result<Vec<FunctionRecord>> {
        self.meta.read(|tx| {
            let after = after.map_or(-1, |v| v.to_column());
            let raws = tx
                .prepare_cached(select_versions!(
                    "WHERE v.function = ?1 AND v.version > ?2 ORDER BY v.version LIMIT ?3"
                ))
                .and_then(|mut stmt| {
                    stmt.query_map(params![name.as_str(), after, limit_param(limit)], Raw::from_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(StoreError::sqlite("list versions"))?;
            // An empty page of an existing function is fine; of a missing one it is NotFound, and
            // $LATEST's existence is what says which (it lives exactly as long as the function).
            if raws.is_empty() && load(tx, name, VersionId::Latest)?.is_none() {
                return Err(not_found(name, VersionId::Latest));
            }
            raws.into_iter().map(Raw::into_record).collect()
        })
    }

    /// Deletes one published version, or with `None` the function with all its versions. Logs stay, as
    /// on AWS. The code blobs stay too, until the next [`Store::referenced_code`]-driven collection.
    pub fn delete_function(&self, name: &FunctionName, version: Option<Version>) -> Result<()> {
        self.meta.write(|tx| {
            let deleted = match version {
                None => tx
                    .prepare_cached("DELETE FROM functions WHERE name = ?1")
                    .and_then(|mut stmt| stmt.execute([name.as_str()])),
                Some(v) => tx
                    .prepare_cached("DELETE FROM function_versions WHERE function = ?1 AND version = ?2")
                    .and_then(|mut stmt| stmt.execute(params![name.as_str(), i64::from(v.get())])),
            }
            .map_err(StoreError::sqlite("delete function"))?;
            if deleted == 0 {
                let version = version.map_or(VersionId::Latest, VersionId::Published);
                return Err(not_found(name, version));
            }
            // Its waiting async events go with it, as Lambda discards a deleted function's queue (those
            // running now end as "function not found" and are dropped by the dispatcher).
            match version {
                None => tx
                    .prepare_cached("DELETE FROM async_events WHERE function = ?1 AND claimed_by IS NULL")
                    .and_then(|mut stmt| stmt.execute([name.as_str()])),
                Some(v) => tx
                    .prepare_cached(
                        "DELETE FROM async_events WHERE function = ?1 AND qualifier = ?2 AND claimed_by IS NULL",
                    )
                    .and_then(|mut stmt| stmt.execute(params![name.as_str(), v.get().to_string()])),
            }
            .map_err(StoreError::sqlite("delete the function's async events"))?;
            Ok(())
        })
    }

    /// Replaces the function's tags (the caller computes the new set with `Tags::merged`/`without`).
    /// The revision id is left alone: tags describe the resource, not the code or configuration.
    pub fn set_tags(&self, name: &FunctionName, tags: &Tags) -> Result<()> {
        let tags = tags_json(name, tags)?;
        self.meta.write(|tx| {
            let updated = tx
                .prepare_cached("UPDATE functions SET tags = ?2 WHERE name = ?1")
                .and_then(|mut stmt| stmt.execute(params![name.as_str(), tags]))
                .map_err(StoreError::sqlite("update tags"))?;
            if updated == 0 {
                return Err(not_found(name, VersionId::Latest));
            }
            Ok(())
        })
    }

    /// How many functions exist and the total size of their stored code (every version counts), as
    /// GetAccountSettings reports under `AccountUsage`.
    pub fn function_totals(&self) -> Result<(u64, u64)> {
        self.meta.read(|tx| {
            tx.prepare_cached(
                "SELECT (SELECT COUNT(*) FROM functions), (SELECT COALESCE(SUM(code_size), 0) FROM function_versions)",
            )
            .and_then(|mut stmt| {
                stmt.query_row([], |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)))
            })
            .map_err(StoreError::sqlite("count functions"))
        })
    }

    /// Every digest some version of some function runs. Code collection must also keep blobs uploaded
    /// but not yet recorded here (an upload in flight), e.g. by sparing recently written ones.
    pub fn referenced_code(&self) -> Result<HashSet<CodeDigest>> {
        self.meta.read(|tx| {
            let hexes = tx
                .prepare_cached("SELECT DISTINCT code_sha256 FROM function_versions")
                .and_then(|mut stmt| {
                    stmt.query_map([], |row| row.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(StoreError::sqlite("list referenced code"))?;
            hexes
                .into_iter()
                .map(|hex| {
                    CodeDigest::from_hex(&hex).ok_or_else(|| {
                        StoreError::corrupt("function_versions", hex.clone(), "code_sha256 is not a digest")
                    })
                })
                .collect()
        })
    }
}

/// SQLite's LIMIT is signed; a limit beyond it means "all".
pub(crate) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
