//! Provisioned concurrency configs (PutProvisionedConcurrencyConfig): how many environments of a
//! version or alias to keep initialised. The pool does the keeping; this is what survives a restart.

use nimbus_model::FunctionName;
use rusqlite::{OptionalExtension as _, params};

use crate::db::Store;
use crate::error::{Result, StoreError};

pub(crate) const META_PROVISIONED_V1: &str = "
CREATE TABLE provisioned_concurrency (
    function          TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier         TEXT NOT NULL,  -- a version number or an alias name, as the caller gave it
    requested         INTEGER NOT NULL CHECK (requested >= 1),
    last_modified_ms  INTEGER NOT NULL,
    PRIMARY KEY (function, qualifier)
) STRICT;
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedConfig {
    pub function: FunctionName,
    pub qualifier: String,
    pub requested: u32,
    pub last_modified_ms: i64,
}

type Row = (String, String, i64, i64);

fn to_config(raw: Row) -> Result<ProvisionedConfig> {
    let (function, qualifier, requested, last_modified_ms) = raw;
    Ok(ProvisionedConfig {
        function: FunctionName::parse(&function)
            .map_err(|e| StoreError::corrupt("provisioned_concurrency", &function, e))?,
        qualifier,
        requested: u32::try_from(requested)
            .map_err(|e| StoreError::corrupt("provisioned_concurrency", &function, e))?,
        last_modified_ms,
    })
}

impl Store {
    pub fn put_provisioned(&self, config: &ProvisionedConfig) -> Result<()> {
        self.meta.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO provisioned_concurrency (function, qualifier, requested, last_modified_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (function, qualifier) DO UPDATE
                 SET requested = excluded.requested, last_modified_ms = excluded.last_modified_ms",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    config.function.as_str(),
                    config.qualifier,
                    i64::from(config.requested),
                    config.last_modified_ms
                ])
            })
            .map(|_| ())
            .map_err(StoreError::sqlite("write provisioned concurrency"))
        })
    }

    pub fn get_provisioned(&self, function: &FunctionName, qualifier: &str) -> Result<Option<ProvisionedConfig>> {
        self.meta.read(|tx| {
            tx.prepare_cached(
                "SELECT function, qualifier, requested, last_modified_ms FROM provisioned_concurrency
                 WHERE function = ?1 AND qualifier = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![function.as_str(), qualifier], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
            })
            .map_err(StoreError::sqlite("read provisioned concurrency"))?
            .map(to_config)
            .transpose()
        })
    }

    /// Every config of `function`, or of all functions when `None` (to restore them at start).
    pub fn list_provisioned(&self, function: Option<&FunctionName>) -> Result<Vec<ProvisionedConfig>> {
        self.meta.read(|tx| {
            let rows = tx
                .prepare_cached(
                    "SELECT function, qualifier, requested, last_modified_ms FROM provisioned_concurrency
                     WHERE ?1 IS NULL OR function = ?1 ORDER BY function, qualifier",
                )
                .and_then(|mut stmt| {
                    stmt.query_map([function.map(FunctionName::as_str)], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect::<rusqlite::Result<Vec<Row>>>()
                })
                .map_err(StoreError::sqlite("list provisioned concurrency"))?;
            rows.into_iter().map(to_config).collect()
        })
    }

    /// Removes the config; returns whether there was one.
    pub fn delete_provisioned(&self, function: &FunctionName, qualifier: &str) -> Result<bool> {
        self.meta.write(|tx| {
            tx.prepare_cached("DELETE FROM provisioned_concurrency WHERE function = ?1 AND qualifier = ?2")
                .and_then(|mut stmt| stmt.execute(params![function.as_str(), qualifier]))
                .map(|n| n > 0)
                .map_err(StoreError::sqlite("delete provisioned concurrency"))
        })
    }
}
