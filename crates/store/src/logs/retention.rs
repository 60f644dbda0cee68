//! Log retention, as CloudWatch Logs has it: a group keeps its events forever unless it has a retention
//! policy (`PutRetentionPolicy`), and then events older than the policy's days are deleted by the
//! server's periodic sweep ([`Store::expire_logs`]).

use nimbus_model::LogRetentionDays;
use rusqlite::{Transaction, params};

use super::require_group;
use crate::db::Store;
use crate::error::{Result, StoreError};

pub(crate) const LOGS_RETENTION_V2: &str = "ALTER TABLE log_groups ADD COLUMN retention_days INTEGER;";

impl Store {
    /// CreateLogGroup: a group before any function logged to it, so a retention policy can be put first.
    pub fn create_log_group(&self, group: &str, now_ms: i64) -> Result<()> {
        self.logs.write(|tx| {
            let created = tx
                .prepare_cached(
                    "INSERT INTO log_groups (name, created_ms) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                )
                .and_then(|mut stmt| stmt.execute(params![group, now_ms]))
                .map_err(StoreError::sqlite("create log group"))?;
            if created == 0 {
                return Err(StoreError::Conflict { what: "log group", name: group.to_owned() });
            }
            Ok(())
        })
    }

    /// PutRetentionPolicy (`Some`) and DeleteRetentionPolicy (`None`).
    pub fn set_log_retention(&self, group: &str, days: Option<LogRetentionDays>) -> Result<()> {
        self.logs.write(|tx| {
            let group_id = require_group(tx, group)?;
            tx.prepare_cached("UPDATE log_groups SET retention_days = ?2 WHERE id = ?1")
                .and_then(|mut stmt| stmt.execute(params![group_id, days.map(LogRetentionDays::get)]))
                .map_err(StoreError::sqlite("set log retention"))?;
            Ok(())
        })
    }

    /// The retention sweep: in every group with a policy, deletes the events older than it, and streams
    /// left empty that have had nothing ingested since. One transaction per group keeps each hold on the
    /// logs write lock short. Returns how many events were deleted.
    pub fn expire_logs(&self, now_ms: i64) -> Result<u64> {
        let groups: Vec<(i64, i64)> = self.logs.read(|tx| {
            tx.prepare_cached("SELECT id, retention_days FROM log_groups WHERE retention_days IS NOT NULL")
                .and_then(|mut stmt| stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
                .map_err(StoreError::sqlite("list log groups with retention"))
        })?;
        let mut deleted: u64 = 0;
        for (group_id, days) in groups {
            let days = LogRetentionDays::new(days)
                .map_err(|e| StoreError::corrupt("log_groups", group_id.to_string(), e.to_string()))?;
            let older_than_ms = now_ms.saturating_sub(days.as_millis());
            deleted += self.logs.write(|tx| prune_group(tx, group_id, older_than_ms))?;
        }
        Ok(deleted)
    }
}

fn prune_group(tx: &Transaction<'_>, group_id: i64, older_than_ms: i64) -> Result<u64> {
    // Measuring what goes reads only the rows being deleted anyway, unlike re-summing what stays.
    let per_stream: Vec<(i64, i64)> = tx
        .prepare_cached(
            "SELECT stream_id, sum(length(CAST(message AS BLOB))) FROM log_events
             WHERE group_id = ?1 AND timestamp_ms < ?2 GROUP BY stream_id",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![group_id, older_than_ms], |row| Ok((row.get(0)?, row.get(1)?)))?.collect()
        })
        .map_err(StoreError::sqlite("measure expired logs"))?;
    let deleted = tx
        .prepare_cached("DELETE FROM log_events WHERE group_id = ?1 AND timestamp_ms < ?2")
        .and_then(|mut stmt| stmt.execute(params![group_id, older_than_ms]))
        .map_err(StoreError::sqlite("delete expired logs"))?;
    let mut total: i64 = 0;
    for (stream_id, bytes) in per_stream {
        total = total.saturating_add(bytes);
        tx.prepare_cached(
            "UPDATE log_streams SET stored_bytes = max(stored_bytes - ?2, 0),
                 first_event_ms = (SELECT min(timestamp_ms) FROM log_events WHERE stream_id = ?1),
                 last_event_ms = (SELECT max(timestamp_ms) FROM log_events WHERE stream_id = ?1)
             WHERE id = ?1",
        )
        .and_then(|mut stmt| stmt.execute(params![stream_id, bytes]))
        .map_err(StoreError::sqlite("update pruned stream"))?;
    }
    tx.prepare_cached("UPDATE log_groups SET stored_bytes = max(stored_bytes - ?2, 0) WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![group_id, total]))
        .map_err(StoreError::sqlite("update pruned group"))?;
    tx.prepare_cached(
        "DELETE FROM log_streams WHERE group_id = ?1 AND first_event_ms IS NULL AND last_ingestion_ms < ?2",
    )
    .and_then(|mut stmt| stmt.execute(params![group_id, older_than_ms]))
    .map_err(StoreError::sqlite("delete empty streams"))?;
    Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
}
