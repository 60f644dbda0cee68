//! Aliases: named pointers to a function version, optionally splitting traffic with a second version
//! (`RoutingConfig.AdditionalVersionWeights`).

use nimbus_model::{Description, FunctionName, Version};
use rusqlite::{OptionalExtension as _, Row, Transaction, params};

use crate::db::{Store, new_revision_id};
use crate::error::{Result, StoreError};
use crate::functions::VersionId;

pub(crate) const META_ALIASES_V1: &str = "
CREATE TABLE aliases (
    function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 0),  -- 0 is $LATEST
    description     TEXT NOT NULL,
    extra_version   INTEGER,                                -- the routing config's second version
    extra_weight    REAL CHECK (extra_weight IS NULL OR (extra_weight >= 0 AND extra_weight <= 1)),
    revision_id     TEXT NOT NULL,
    PRIMARY KEY (function, name)
) STRICT;
";

/// Traffic to an alias's second version: `weight` of invocations (0.0–1.0) go to `version`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Routing {
    pub version: Version,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AliasRecord {
    pub function: FunctionName,
    pub name: String,
    pub version: VersionId,
    pub description: Description,
    pub routing: Option<Routing>,
    pub revision_id: String,
}

/// What an UpdateAlias changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct AliasUpdate {
    pub version: Option<VersionId>,
    pub description: Option<Description>,
    /// `Some(None)` removes the routing config.
    pub routing: Option<Option<Routing>>,
}

fn column(v: VersionId) -> i64 {
    match v {
        VersionId::Latest => 0,
        VersionId::Published(v) => i64::from(v.get()),
    }
}

fn version_from(function: &str, n: i64) -> Result<VersionId> {
    if n == 0 {
        return Ok(VersionId::Latest);
    }
    u32::try_from(n)
        .ok()
        .and_then(Version::new)
        .map(VersionId::Published)
        .ok_or_else(|| StoreError::corrupt("aliases", function, format!("version {n}")))
}

/// An `aliases` row as SQLite returns it: function, name, version, description, extra version, extra
/// weight, revision id.
type RawAlias = (String, String, i64, String, Option<i64>, Option<f64>, String);

fn alias_from_row(row: &Row<'_>) -> rusqlite::Result<RawAlias> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

fn to_record(raw: RawAlias) -> Result<AliasRecord> {
    let (function, name, version, description, extra_version, extra_weight, revision_id) = raw;
    let routing = match (extra_version, extra_weight) {
        (Some(v), Some(weight)) => match version_from(&function, v)? {
            VersionId::Published(version) => Some(Routing { version, weight }),
            VersionId::Latest => return Err(StoreError::corrupt("aliases", &function, "routing to $LATEST")),
        },
        _ => None,
    };
    Ok(AliasRecord {
        function: FunctionName::parse(&function).map_err(|e| StoreError::corrupt("aliases", &function, e))?,
        version: version_from(&function, version)?,
        description: Description::parse(&description).map_err(|e| StoreError::corrupt("aliases", &function, e))?,
        routing,
        revision_id,
        name,
    })
}

const SELECT: &str =
    "SELECT function, name, version, description, extra_version, extra_weight, revision_id FROM aliases";

fn load(tx: &Transaction<'_>, function: &FunctionName, name: &str) -> Result<Option<AliasRecord>> {
    tx.prepare_cached(&format!("{SELECT} WHERE function = ?1 AND name = ?2"))
        .and_then(|mut stmt| stmt.query_row(params![function.as_str(), name], alias_from_row).optional())
        .map_err(StoreError::sqlite("read alias"))?
        .map(to_record)
        .transpose()
}

fn alias_not_found(function: &FunctionName, name: &str) -> StoreError {
    StoreError::NotFound { what: "alias", name: format!("{function}:{name}") }
}

/// Versions an alias points at must exist.
fn check_version(tx: &Transaction<'_>, function: &FunctionName, version: VersionId) -> Result<()> {
    let exists = tx
        .prepare_cached("SELECT 1 FROM function_versions WHERE function = ?1 AND version = ?2")
        .and_then(|mut stmt| stmt.query_row(params![function.as_str(), column(version)], |_| Ok(())).optional())
        .map_err(StoreError::sqlite("find version"))?;
    match exists {
        Some(()) => Ok(()),
        None => Err(StoreError::NotFound { what: "function", name: format!("{function}:{version}") }),
    }
}

impl Store {
    pub fn create_alias(
        &self,
        function: &FunctionName,
        name: &str,
        version: VersionId,
        description: Description,
        routing: Option<Routing>,
    ) -> Result<AliasRecord> {
        self.meta.write(|tx| {
            check_version(tx, function, version)?;
            if let Some(r) = routing {
                check_version(tx, function, VersionId::Published(r.version))?;
            }
            if load(tx, function, name)?.is_some() {
                return Err(StoreError::Conflict { what: "alias", name: format!("{function}:{name}") });
            }
            let revision_id = new_revision_id(tx)?;
            tx.prepare_cached(
                "INSERT INTO aliases (function, name, version, description, extra_version, extra_weight, revision_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    function.as_str(),
                    name,
                    column(version),
                    description.as_str(),
                    routing.map(|r| i64::from(r.version.get())),
                    routing.map(|r| r.weight),
                    revision_id
                ])
            })
            .map_err(StoreError::sqlite("insert alias"))?;
            load(tx, function, name)?.ok_or_else(|| alias_not_found(function, name))
        })
    }

    pub fn get_alias(&self, function: &FunctionName, name: &str) -> Result<AliasRecord> {
        self.meta.read(|tx| load(tx, function, name)?.ok_or_else(|| alias_not_found(function, name)))
    }

    /// Up to `limit` aliases of `function` whose names sort after `after`, optionally only those
    /// pointing at `version`.
    pub fn list_aliases(
        &self,
        function: &FunctionName,
        version: Option<VersionId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AliasRecord>> {
        self.meta.read(|tx| {
            let raws = tx
                .prepare_cached(&format!(
                    "{SELECT} WHERE function = ?1 AND name > ?2 AND (?3 IS NULL OR version = ?3) ORDER BY name LIMIT ?4"
                ))
                .and_then(|mut stmt| {
                    stmt.query_map(
                        params![
                            function.as_str(),
                            after.unwrap_or(""),
                            version.map(column),
                            i64::try_from(limit).unwrap_or(i64::MAX)
                        ],
                        alias_from_row,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(StoreError::sqlite("list aliases"))?;
            raws.into_iter().map(to_record).collect()
        })
    }

    pub fn update_alias(
        &self,
        function: &FunctionName,
        name: &str,
        update: AliasUpdate,
        expected_revision: Option<&str>,
    ) -> Result<AliasRecord> {
        self.meta.write(|tx| {
            let current = load(tx, function, name)?.ok_or_else(|| alias_not_found(function, name))?;
            if let Some(expected) = expected_revision
                && expected != current.revision_id
            {
                return Err(StoreError::PreconditionFailed {
                    expected: expected.to_owned(),
                    actual: current.revision_id,
                });
            }
            let version = update.version.unwrap_or(current.version);
            let routing = update.routing.unwrap_or(current.routing);
            check_version(tx, function, version)?;
            if let Some(r) = routing {
                check_version(tx, function, VersionId::Published(r.version))?;
            }
            let description = update.description.unwrap_or(current.description);
            let revision_id = new_revision_id(tx)?;
            tx.prepare_cached(
                "UPDATE aliases SET version = ?3, description = ?4, extra_version = ?5, extra_weight = ?6,
                 revision_id = ?7 WHERE function = ?1 AND name = ?2",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    function.as_str(),
                    name,
                    column(version),
                    description.as_str(),
                    routing.map(|r| i64::from(r.version.get())),
                    routing.map(|r| r.weight),
                    revision_id
                ])
            })
            .map_err(StoreError::sqlite("update alias"))?;
            load(tx, function, name)?.ok_or_else(|| alias_not_found(function, name))
        })
    }

    pub fn delete_alias(&self, function: &FunctionName, name: &str) -> Result<()> {
        self.meta.write(|tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM aliases WHERE function = ?1 AND name = ?2")
                .and_then(|mut stmt| stmt.execute(params![function.as_str(), name]))
                .map_err(StoreError::sqlite("delete alias"))?;
            if deleted == 0 {
                return Err(alias_not_found(function, name));
            }
            Ok(())
        })
    }

    /// The aliases that point at `version` (directly or through their routing config), which AWS
    /// refuses to let a DeleteFunction of that version orphan.
    pub fn aliases_of_version(&self, function: &FunctionName, version: Version) -> Result<Vec<String>> {
        self.meta.read(|tx| {
            tx.prepare_cached(
                "SELECT name FROM aliases WHERE function = ?1 AND (version = ?2 OR extra_version = ?2) ORDER BY name",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![function.as_str(), i64::from(version.get())], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(StoreError::sqlite("find aliases of a version"))
        })
    }
}
