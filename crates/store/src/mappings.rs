//! Event source mappings (CreateEventSourceMapping and friends). A mapping outlives its function, as
//! on AWS: deleting the function leaves the mapping, whose invocations then fail.

use nimbus_model::FunctionName;
use rusqlite::{OptionalExtension as _, Row, params};

use crate::db::Store;
use crate::error::{Result, StoreError};
use crate::functions::limit_param;

pub(crate) const META_MAPPINGS_V1: &str = "
CREATE TABLE event_source_mappings (
    uuid               TEXT PRIMARY KEY NOT NULL,
    function           TEXT NOT NULL,
    qualifier          TEXT,
    source_arn         TEXT NOT NULL,
    batch_size         INTEGER NOT NULL,
    window_s           INTEGER NOT NULL,
    enabled            INTEGER NOT NULL,
    state              TEXT NOT NULL,
    state_reason       TEXT NOT NULL,
    filters            TEXT NOT NULL,   -- JSON array of pattern strings
    report_failures    INTEGER NOT NULL,
    max_concurrency    INTEGER,
    last_result        TEXT NOT NULL,
    last_modified_ms   INTEGER NOT NULL
) STRICT;
CREATE INDEX event_source_mappings_by_function ON event_source_mappings (function, uuid);
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRecord {
    pub uuid: String,
    pub function: FunctionName,
    pub qualifier: Option<String>,
    pub source_arn: String,
    pub batch_size: u32,
    pub batching_window_s: u32,
    pub enabled: bool,
    /// AWS's `State`: Creating, Enabled, Disabled, Enabling, Disabling, Updating, Deleting.
    pub state: String,
    pub state_reason: String,
    /// FilterCriteria patterns, as given (JSON text each).
    pub filters: Vec<String>,
    pub report_batch_item_failures: bool,
    pub max_concurrency: Option<u32>,
    pub last_result: String,
    pub last_modified_ms: i64,
}

const COLUMNS: &str = "uuid, function, qualifier, source_arn, batch_size, window_s, enabled, state, state_reason,
     filters, report_failures, max_concurrency, last_result, last_modified_ms";

type Raw =
    (String, String, Option<String>, String, i64, i64, bool, String, String, String, bool, Option<i64>, String, i64);

fn from_row(row: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
        row.get(13)?,
    ))
}

fn into_record(raw: Raw) -> Result<MappingRecord> {
    let (uuid, function, qualifier, source_arn, batch, window, enabled, state, reason, filters, report, conc, last, ms) =
        raw;
    let bad = |col: &str, e: &dyn std::fmt::Display| {
        StoreError::corrupt("event_source_mappings", uuid.clone(), format!("{col}: {e}"))
    };
    Ok(MappingRecord {
        function: FunctionName::parse(&function).map_err(|e| bad("function", &e))?,
        batch_size: u32::try_from(batch).map_err(|e| bad("batch_size", &e))?,
        batching_window_s: u32::try_from(window).map_err(|e| bad("window_s", &e))?,
        filters: serde_json::from_str(&filters).map_err(|e| bad("filters", &e))?,
        max_concurrency: conc.map(u32::try_from).transpose().map_err(|e| bad("max_concurrency", &e))?,
        uuid,
        qualifier,
        source_arn,
        enabled,
        state,
        state_reason: reason,
        report_batch_item_failures: report,
        last_result: last,
        last_modified_ms: ms,
    })
}

impl Store {
    /// Inserts or replaces a mapping (the API validates and merges updates first).
    pub fn put_mapping(&self, m: &MappingRecord) -> Result<()> {
        let filters = serde_json::to_string(&m.filters)
            .map_err(|e| StoreError::corrupt("event_source_mappings", m.uuid.clone(), format!("filters: {e}")))?;
        self.meta.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO event_source_mappings (uuid, function, qualifier, source_arn, batch_size, window_s,
                     enabled, state, state_reason, filters, report_failures, max_concurrency, last_result,
                     last_modified_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (uuid) DO UPDATE SET function = ?2, qualifier = ?3, source_arn = ?4, batch_size = ?5,
                     window_s = ?6, enabled = ?7, state = ?8, state_reason = ?9, filters = ?10,
                     report_failures = ?11, max_concurrency = ?12, last_result = ?13, last_modified_ms = ?14",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    m.uuid,
                    m.function.as_str(),
                    m.qualifier,
                    m.source_arn,
                    m.batch_size,
                    m.batching_window_s,
                    m.enabled,
                    m.state,
                    m.state_reason,
                    filters,
                    m.report_batch_item_failures,
                    m.max_concurrency,
                    m.last_result,
                    m.last_modified_ms
                ])
            })
            .map_err(StoreError::sqlite("write event source mapping"))?;
            Ok(())
        })
    }

    pub fn get_mapping(&self, uuid: &str) -> Result<MappingRecord> {
        self.meta.read(|tx| {
            let raw = tx
                .prepare_cached(&format!("SELECT {COLUMNS} FROM event_source_mappings WHERE uuid = ?1"))
                .and_then(|mut stmt| stmt.query_row([uuid], from_row).optional())
                .map_err(StoreError::sqlite("read event source mapping"))?;
            let raw =
                raw.ok_or_else(|| StoreError::NotFound { what: "event source mapping", name: uuid.to_owned() })?;
            into_record(raw)
        })
    }

    /// A page of mappings in UUID order after `after`, optionally of one function and/or one source.
    pub fn list_mappings(
        &self,
        function: Option<&FunctionName>,
        source_arn: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<MappingRecord>> {
        self.meta.read(|tx| {
            let raws = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM event_source_mappings
                     WHERE uuid > ?1 AND (?2 IS NULL OR function = ?2) AND (?3 IS NULL OR source_arn = ?3)
                     ORDER BY uuid LIMIT ?4"
                ))
                .and_then(|mut stmt| {
                    stmt.query_map(
                        params![
                            after.unwrap_or(""),
                            function.map(FunctionName::as_str),
                            source_arn,
                            limit_param(limit)
                        ],
                        from_row,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(StoreError::sqlite("list event source mappings"))?;
            raws.into_iter().map(into_record).collect()
        })
    }

    pub fn delete_mapping(&self, uuid: &str) -> Result<()> {
        self.meta.write(|tx| {
            let n = tx
                .prepare_cached("DELETE FROM event_source_mappings WHERE uuid = ?1")
                .and_then(|mut stmt| stmt.execute([uuid]))
                .map_err(StoreError::sqlite("delete event source mapping"))?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "event source mapping", name: uuid.to_owned() });
            }
            Ok(())
        })
    }
}
