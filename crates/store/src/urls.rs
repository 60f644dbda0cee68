//! Function URL configs: one per function (`$LATEST`) or alias, each with a url-id that is chosen
//! once and kept (it is the URL's host name, so it must survive restarts). An alias's URL goes with
//! the alias (trigger), a function's with the function (foreign key).

use nimbus_model::{Cors, FunctionName, InvokeMode, UrlAuthType, UrlId};
use rusqlite::{OptionalExtension as _, Row, Transaction, params};

use crate::db::Store;
use crate::error::{Result, StoreError};

pub(crate) const META_URLS_V1: &str = "
-- qualifier: '' for the unqualified function ($LATEST) or an alias name.
CREATE TABLE function_urls (
    function     TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier    TEXT NOT NULL,
    url_id       TEXT NOT NULL UNIQUE,
    auth_type    TEXT NOT NULL CHECK (auth_type IN ('NONE', 'AWS_IAM')),
    invoke_mode  TEXT NOT NULL CHECK (invoke_mode IN ('BUFFERED', 'RESPONSE_STREAM')),
    cors         TEXT,  -- the Cors object as JSON; NULL when none was given
    created_ms   INTEGER NOT NULL,
    modified_ms  INTEGER NOT NULL,
    PRIMARY KEY (function, qualifier)
) STRICT;

CREATE TRIGGER urls_follow_aliases AFTER DELETE ON aliases BEGIN
    DELETE FROM function_urls WHERE function = OLD.function AND qualifier = OLD.name;
END;
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlConfig {
    pub function: FunctionName,
    /// `None` for the function itself, or an alias name.
    pub alias: Option<String>,
    pub url_id: UrlId,
    pub auth_type: UrlAuthType,
    pub invoke_mode: InvokeMode,
    pub cors: Option<Cors>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// What UpdateFunctionUrlConfig changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UrlUpdate {
    pub auth_type: Option<UrlAuthType>,
    pub invoke_mode: Option<InvokeMode>,
    pub cors: Option<Cors>,
}

type RawUrl = (String, String, String, String, String, Option<String>, i64, i64);

const SELECT: &str =
    "SELECT function, qualifier, url_id, auth_type, invoke_mode, cors, created_ms, modified_ms FROM function_urls";

fn raw(row: &Row<'_>) -> rusqlite::Result<RawUrl> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?))
}

fn to_config(raw: RawUrl) -> Result<UrlConfig> {
    let (function, qualifier, url_id, auth_type, invoke_mode, cors, created_ms, modified_ms) = raw;
    let corrupt = |reason: String| StoreError::corrupt("function_urls", &function, reason);
    Ok(UrlConfig {
        url_id: UrlId::parse(&url_id).ok_or_else(|| corrupt(format!("url id {url_id}")))?,
        auth_type: UrlAuthType::parse(&auth_type).map_err(|e| corrupt(e.to_string()))?,
        invoke_mode: InvokeMode::parse(&invoke_mode).map_err(|e| corrupt(e.to_string()))?,
        cors: cors.map(|c| serde_json::from_str(&c)).transpose().map_err(|e| corrupt(e.to_string()))?,
        alias: (!qualifier.is_empty()).then_some(qualifier),
        function: FunctionName::parse(&function).map_err(|e| corrupt(e.to_string()))?,
        created_ms,
        modified_ms,
    })
}

fn load(tx: &Transaction<'_>, function: &FunctionName, qualifier: &str) -> Result<Option<UrlConfig>> {
    tx.prepare_cached(&format!("{SELECT} WHERE function = ?1 AND qualifier = ?2"))
        .and_then(|mut s| s.query_row(params![function.as_str(), qualifier], raw).optional())
        .map_err(StoreError::sqlite("read function url"))?
        .map(to_config)
        .transpose()
}

fn not_found(function: &FunctionName, alias: Option<&str>) -> StoreError {
    StoreError::NotFound {
        what: "function url config",
        name: alias.map_or_else(|| function.to_string(), |a| format!("{function}:{a}")),
    }
}

fn cors_json(cors: Option<&Cors>) -> Result<Option<String>> {
    cors.map(serde_json::to_string).transpose().map_err(|e| StoreError::corrupt("function_urls", "cors", e))
}

impl Store {
    /// Creates the URL config of the function (`alias` None) or of an alias, which must exist.
    /// `Conflict` when it already has one.
    pub fn create_url_config(&self, config: &UrlConfig) -> Result<UrlConfig> {
        let qualifier = config.alias.clone().unwrap_or_default();
        let function = &config.function;
        self.meta.write(|tx| {
            let exists = match &config.alias {
                None => tx
                    .prepare_cached("SELECT 1 FROM functions WHERE name = ?1")
                    .and_then(|mut s| s.query_row(params![function.as_str()], |_| Ok(())).optional()),
                Some(alias) => tx
                    .prepare_cached("SELECT 1 FROM aliases WHERE function = ?1 AND name = ?2")
                    .and_then(|mut s| s.query_row(params![function.as_str(), alias], |_| Ok(())).optional()),
            }
            .map_err(StoreError::sqlite("find url target"))?;
            if exists.is_none() {
                return Err(StoreError::NotFound {
                    what: if config.alias.is_some() { "alias" } else { "function" },
                    name: function.to_string(),
                });
            }
            if load(tx, function, &qualifier)?.is_some() {
                return Err(StoreError::Conflict { what: "function url config", name: function.to_string() });
            }
            tx.prepare_cached(
                "INSERT INTO function_urls (function, qualifier, url_id, auth_type, invoke_mode, cors, created_ms, modified_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    function.as_str(),
                    qualifier,
                    config.url_id.as_str(),
                    config.auth_type.as_str(),
                    config.invoke_mode.as_str(),
                    cors_json(config.cors.as_ref()).ok().flatten(),
                    config.created_ms,
                    config.modified_ms
                ])
            })
            .map_err(StoreError::sqlite("insert function url"))?;
            load(tx, function, &qualifier)?.ok_or_else(|| not_found(function, config.alias.as_deref()))
        })
    }

    pub fn get_url_config(&self, function: &FunctionName, alias: Option<&str>) -> Result<UrlConfig> {
        self.meta.read(|tx| load(tx, function, alias.unwrap_or_default())?.ok_or_else(|| not_found(function, alias)))
    }

    pub fn update_url_config(
        &self,
        function: &FunctionName,
        alias: Option<&str>,
        update: UrlUpdate,
        now_ms: i64,
    ) -> Result<UrlConfig> {
        let qualifier = alias.unwrap_or_default();
        self.meta.write(|tx| {
            let current = load(tx, function, qualifier)?.ok_or_else(|| not_found(function, alias))?;
            let cors = update.cors.or(current.cors);
            tx.prepare_cached(
                "UPDATE function_urls SET auth_type = ?3, invoke_mode = ?4, cors = ?5, modified_ms = ?6
                 WHERE function = ?1 AND qualifier = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    function.as_str(),
                    qualifier,
                    update.auth_type.unwrap_or(current.auth_type).as_str(),
                    update.invoke_mode.unwrap_or(current.invoke_mode).as_str(),
                    cors_json(cors.as_ref()).ok().flatten(),
                    now_ms
                ])
            })
            .map_err(StoreError::sqlite("update function url"))?;
            load(tx, function, qualifier)?.ok_or_else(|| not_found(function, alias))
        })
    }

    pub fn delete_url_config(&self, function: &FunctionName, alias: Option<&str>) -> Result<()> {
        self.meta.write(|tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM function_urls WHERE function = ?1 AND qualifier = ?2")
                .and_then(|mut s| s.execute(params![function.as_str(), alias.unwrap_or_default()]))
                .map_err(StoreError::sqlite("delete function url"))?;
            if deleted == 0 {
                return Err(not_found(function, alias));
            }
            Ok(())
        })
    }

    /// Up to `limit` URL configs of `function` whose qualifier sorts after `after`.
    pub fn list_url_configs(
        &self,
        function: &FunctionName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<UrlConfig>> {
        self.meta.read(|tx| {
            let rows = tx
                .prepare_cached(&format!(
                    "{SELECT} WHERE function = ?1 AND (?2 IS NULL OR qualifier > ?2) ORDER BY qualifier LIMIT ?3"
                ))
                .and_then(|mut s| {
                    s.query_map(params![function.as_str(), after, i64::try_from(limit).unwrap_or(i64::MAX)], raw)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(StoreError::sqlite("list function urls"))?;
            rows.into_iter().map(to_config).collect()
        })
    }

    /// The URL config a request's host names, if any.
    pub fn url_config_by_id(&self, url_id: &UrlId) -> Result<Option<UrlConfig>> {
        self.meta.read(|tx| {
            tx.prepare_cached(&format!("{SELECT} WHERE url_id = ?1"))
                .and_then(|mut s| s.query_row(params![url_id.as_str()], raw).optional())
                .map_err(StoreError::sqlite("find function url"))?
                .map(to_config)
                .transpose()
        })
    }
}

impl Store {
    /// The generation of `nimbus.db`: it changes when any write transaction on it has committed, so a
    /// cache of anything read from it is good while the generation it was read under stands (read it
    /// before the queries whose results are kept).
    pub fn meta_generation(&self) -> u64 {
        self.meta.generation()
    }
}
