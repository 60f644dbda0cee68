//! Converting function rows to and from the model's types. Loading re-parses every column with the
//! model's own parsers, so a record read back is exactly as valid as one that came through the API, and
//! a row that is not becomes `StoreError::Corrupt` instead of a panic or a silently wrong value.

use std::collections::BTreeMap;

use nimbus_model::{
    Architecture, Description, EnvVars, EphemeralStorageMb, FunctionConfig, FunctionName, Handler, MemoryMb, RoleArn,
    Runtime, Tags, TimeoutSecs, Version,
};
use rusqlite::{OptionalExtension as _, Row, Transaction, params};

use super::{CodeInfo, FunctionRecord, VersionId, not_found};
use crate::code::CodeDigest;
use crate::db::new_revision_id;
use crate::error::{Result, StoreError};

/// A `SELECT` of whole version records (with the function's tags), followed by the given clauses.
macro_rules! select_versions {
    ($rest:literal) => {
        concat!(
            "SELECT v.function, v.version, v.runtime, v.handler, v.role, v.memory_mb, v.timeout_s,
                 v.ephemeral_mb, v.environment, v.description, v.architecture, v.code_sha256, v.code_size,
                 v.revision_id, v.last_modified_ms, f.tags, f.dead_letter_target, v.logging
             FROM function_versions v JOIN functions f ON f.name = v.function ",
            $rest
        )
    };
}
pub(super) use select_versions;

/// One row of [`select_versions!`], as SQLite returned it.
pub(super) struct Raw {
    function: String,
    version: i64,
    runtime: String,
    handler: String,
    role: String,
    memory_mb: i64,
    timeout_s: i64,
    ephemeral_mb: i64,
    environment: String,
    description: String,
    architecture: String,
    code_sha256: String,
    code_size: i64,
    revision_id: String,
    last_modified_ms: i64,
    tags: String,
    dead_letter_target: Option<String>,
    logging: String,
}

impl Raw {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Raw> {
        Ok(Raw {
            function: row.get(0)?,
            version: row.get(1)?,
            runtime: row.get(2)?,
            handler: row.get(3)?,
            role: row.get(4)?,
            memory_mb: row.get(5)?,
            timeout_s: row.get(6)?,
            ephemeral_mb: row.get(7)?,
            environment: row.get(8)?,
            description: row.get(9)?,
            architecture: row.get(10)?,
            code_sha256: row.get(11)?,
            code_size: row.get(12)?,
            revision_id: row.get(13)?,
            last_modified_ms: row.get(14)?,
            tags: row.get(15)?,
            dead_letter_target: row.get(16)?,
            logging: row.get(17)?,
        })
    }

    pub(super) fn into_record(self) -> Result<FunctionRecord> {
        let key = format!("{}:{}", self.function, self.version);
        let bad = |column: &str, reason: &dyn std::fmt::Display| {
            StoreError::corrupt("function_versions", key.clone(), format!("{column}: {reason}"))
        };
        let name = FunctionName::parse(&self.function).map_err(|e| bad("function", &e))?;
        let version = match self.version {
            0 => VersionId::Latest,
            n => VersionId::Published(u32::try_from(n).ok().and_then(Version::new).ok_or_else(|| bad("version", &n))?),
        };
        let environment: BTreeMap<String, String> =
            serde_json::from_str(&self.environment).map_err(|e| bad("environment", &e))?;
        let config = FunctionConfig {
            runtime: Runtime::parse(&self.runtime).map_err(|e| bad("runtime", &e))?,
            handler: Handler::parse(&self.handler).map_err(|e| bad("handler", &e))?,
            role: RoleArn::parse(&self.role).map_err(|e| bad("role", &e))?,
            memory: MemoryMb::new(self.memory_mb).map_err(|e| bad("memory_mb", &e))?,
            timeout: TimeoutSecs::new(self.timeout_s).map_err(|e| bad("timeout_s", &e))?,
            ephemeral_storage: EphemeralStorageMb::new(self.ephemeral_mb).map_err(|e| bad("ephemeral_mb", &e))?,
            environment: EnvVars::parse(environment).map_err(|e| bad("environment", &e))?,
            description: Description::parse(&self.description).map_err(|e| bad("description", &e))?,
            architecture: Architecture::parse_list(std::slice::from_ref(&self.architecture))
                .map_err(|e| bad("architecture", &e))?,
            logging: serde_json::from_str(&self.logging).map_err(|e| bad("logging", &e))?,
        };
        let code = CodeInfo {
            digest: CodeDigest::from_hex(&self.code_sha256).ok_or_else(|| bad("code_sha256", &"not a hex SHA-256"))?,
            size_bytes: u64::try_from(self.code_size).map_err(|e| bad("code_size", &e))?,
        };
        let tags: BTreeMap<String, String> = serde_json::from_str(&self.tags)
            .map_err(|e| StoreError::corrupt("functions", self.function.clone(), format!("tags: {e}")))?;
        let tags = Tags::parse(tags)
            .map_err(|e| StoreError::corrupt("functions", self.function.clone(), format!("tags: {e}")))?;
        Ok(FunctionRecord {
            name,
            version,
            config,
            code,
            revision_id: self.revision_id,
            last_modified_ms: self.last_modified_ms,
            tags,
            dead_letter_target: self.dead_letter_target,
        })
    }
}

pub(super) fn load(tx: &Transaction<'_>, name: &FunctionName, version: VersionId) -> Result<Option<FunctionRecord>> {
    let raw = tx
        .prepare_cached(select_versions!("WHERE v.function = ?1 AND v.version = ?2"))
        .and_then(|mut stmt| stmt.query_row(params![name.as_str(), version.to_column()], Raw::from_row).optional())
        .map_err(StoreError::sqlite("read function"))?;
    raw.map(Raw::into_record).transpose()
}

pub(super) fn load_latest(tx: &Transaction<'_>, name: &FunctionName) -> Result<FunctionRecord> {
    load(tx, name, VersionId::Latest)?.ok_or_else(|| not_found(name, VersionId::Latest))
}

pub(super) fn insert_version(
    tx: &Transaction<'_>,
    name: &FunctionName,
    version: VersionId,
    config: &FunctionConfig,
    code: CodeInfo,
    now_ms: i64,
) -> Result<String> {
    let revision_id = new_revision_id(tx)?;
    let cols = config_params(name, config)?;
    tx.prepare_cached(
        "INSERT INTO function_versions (function, version, runtime, handler, role, memory_mb, timeout_s,
             ephemeral_mb, environment, description, architecture, code_sha256, code_size, revision_id,
             last_modified_ms, logging)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            name.as_str(),
            version.to_column(),
            cols.runtime,
            cols.handler,
            cols.role,
            cols.memory_mb,
            cols.timeout_s,
            cols.ephemeral_mb,
            cols.environment,
            cols.description,
            cols.architecture,
            code.digest.to_hex(),
            code_size(code)?,
            revision_id,
            now_ms,
            cols.logging,
        ])
    })
    .map_err(StoreError::sqlite("insert function version"))?;
    Ok(revision_id)
}

pub(super) fn code_size(code: CodeInfo) -> rusqlite::Result<i64> {
    i64::try_from(code.size_bytes).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// A configuration as the values bound to its columns.
pub(super) struct ConfigParams {
    pub runtime: String,
    pub handler: String,
    pub role: String,
    pub memory_mb: i64,
    pub timeout_s: i64,
    pub ephemeral_mb: i64,
    pub environment: String,
    pub description: String,
    pub architecture: &'static str,
    pub logging: String,
}

pub(super) fn config_params(name: &FunctionName, config: &FunctionConfig) -> Result<ConfigParams> {
    Ok(ConfigParams {
        runtime: config.runtime.to_string(),
        handler: config.handler.as_str().to_owned(),
        role: config.role.as_str().to_owned(),
        memory_mb: i64::from(config.memory.get()),
        timeout_s: i64::from(config.timeout.get()),
        ephemeral_mb: i64::from(config.ephemeral_storage.get()),
        environment: to_json(name, "environment", config.environment.as_map())?,
        description: config.description.as_str().to_owned(),
        architecture: config.architecture.as_str(),
        logging: to_json(name, "logging", &config.logging)?,
    })
}

pub(super) fn tags_json(name: &FunctionName, tags: &Tags) -> Result<String> {
    let map: BTreeMap<&str, &str> = tags.iter().collect();
    to_json(name, "tags", &map)
}

/// Encoding a map of strings cannot fail; the error path exists so that it could never panic either.
fn to_json(name: &FunctionName, column: &str, map: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(map)
        .map_err(|e| StoreError::corrupt("function_versions", name.as_str(), format!("encoding {column}: {e}")))
}
