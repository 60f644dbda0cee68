//! API Gateway HTTP APIs: one row per API holding the whole API (routes, integrations, stages,
//! deployments) as the model's JSON document. An API is small (AWS allows 300 routes), and every
//! control-plane change is one read-modify-write of its row in one transaction, so no change is
//! half-written and readers see an API whole.

use nimbus_model::http_api::HttpApi;
use rusqlite::{OptionalExtension as _, Transaction, params};

use crate::db::Store;
use crate::error::{Result, StoreError};

pub(crate) const META_HTTP_APIS_V1: &str = "
CREATE TABLE http_apis (
    api_id      TEXT PRIMARY KEY,
    document    TEXT NOT NULL  -- nimbus_model::http_api::HttpApi as JSON
) STRICT;
";

fn parse(api_id: &str, document: &str) -> Result<HttpApi> {
    serde_json::from_str(document).map_err(|e| StoreError::corrupt("http_apis", api_id, e))
}

fn load(tx: &Transaction<'_>, api_id: &str) -> Result<Option<HttpApi>> {
    tx.prepare_cached("SELECT document FROM http_apis WHERE api_id = ?1")
        .and_then(|mut s| s.query_row(params![api_id], |r| r.get::<_, String>(0)).optional())
        .map_err(StoreError::sqlite("read http api"))?
        .map(|d| parse(api_id, &d))
        .transpose()
}

fn save(tx: &Transaction<'_>, api: &HttpApi) -> Result<()> {
    let document = serde_json::to_string(api).map_err(|e| StoreError::corrupt("http_apis", &api.api_id, e))?;
    tx.prepare_cached("INSERT OR REPLACE INTO http_apis (api_id, document) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![api.api_id, document]))
        .map_err(StoreError::sqlite("write http api"))?;
    Ok(())
}

fn not_found(api_id: &str) -> StoreError {
    StoreError::NotFound { what: "http api", name: api_id.to_owned() }
}

impl Store {
    /// Stores a new API; `Conflict` if its id is taken.
    pub fn create_http_api(&self, api: &HttpApi) -> Result<()> {
        self.meta.write(|tx| {
            if load(tx, &api.api_id)?.is_some() {
                return Err(StoreError::Conflict { what: "http api", name: api.api_id.clone() });
            }
            save(tx, api)
        })
    }

    pub fn get_http_api(&self, api_id: &str) -> Result<HttpApi> {
        self.meta.read(|tx| load(tx, api_id)?.ok_or_else(|| not_found(api_id)))
    }

    pub fn list_http_apis(&self) -> Result<Vec<HttpApi>> {
        self.meta.read(|tx| {
            let rows: Vec<(String, String)> = tx
                .prepare_cached("SELECT api_id, document FROM http_apis ORDER BY api_id")
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(StoreError::sqlite("list http apis"))?;
            rows.iter().map(|(id, d)| parse(id, d)).collect()
        })
    }

    /// Changes an API in one transaction: `change` sees the current API and either edits it (the
    /// edit is saved) or refuses (nothing is written).
    pub fn modify_http_api<T, E: From<StoreError>>(
        &self,
        api_id: &str,
        change: impl FnOnce(&mut HttpApi) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut outcome = None;
        self.meta.write(|tx| {
            let mut api = load(tx, api_id)?.ok_or_else(|| not_found(api_id))?;
            let result = change(&mut api);
            if result.is_ok() {
                save(tx, &api)?;
            }
            outcome = Some(result);
            Ok(())
        })?;
        outcome.unwrap_or_else(|| Err(E::from(not_found(api_id))))
    }

    pub fn delete_http_api(&self, api_id: &str) -> Result<()> {
        self.meta.write(|tx| {
            let n = tx
                .prepare_cached("DELETE FROM http_apis WHERE api_id = ?1")
                .and_then(|mut s| s.execute(params![api_id]))
                .map_err(StoreError::sqlite("delete http api"))?;
            if n == 0 { Err(not_found(api_id)) } else { Ok(()) }
        })
    }
}
