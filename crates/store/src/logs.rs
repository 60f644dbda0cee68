//! Function logs, shaped like CloudWatch Logs: groups (`/aws/lambda/NAME`), streams (one per execution
//! environment) and events. They live in `logs.db`; see [`crate::db`] for why.
//!
//! Deleting a function does not delete its log group, as on AWS; retention (PutRetentionPolicy) is in [`retention`].

mod pattern;
mod read;
mod retention;

pub(crate) use retention::LOGS_RETENTION_V2;
#[cfg(test)]
mod tests;

use nimbus_model::LogRetentionDays;
use rusqlite::{OptionalExtension as _, ToSql, Transaction, params};

use crate::db::Store;
use crate::error::{Result, StoreError};
use crate::functions::limit_param;

/// An event as a function's environment produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub timestamp_ms: i64,
    pub message: String,
}

/// Events for one stream, as [`Store::append_log_batches`] takes them.
#[derive(Debug, Clone, Copy)]
pub struct LogBatch<'a> {
    pub group: &'a str,
    pub stream: &'a str,
    pub events: &'a [LogEvent],
}

/// An event as stored; `id` is unique across the whole logs database and serves as AWS's `eventId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogEvent {
    pub id: i64,
    pub stream: String,
    pub timestamp_ms: i64,
    pub ingestion_ms: i64,
    pub message: String,
}

/// What DescribeLogGroups reports about one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupInfo {
    pub name: String,
    pub created_ms: i64,
    /// UTF-8 bytes of the group's messages.
    pub stored_bytes: u64,
    /// `None`: events are kept forever.
    pub retention: Option<LogRetentionDays>,
}

/// What DescribeLogStreams reports about one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStreamInfo {
    pub name: String,
    pub created_ms: i64,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub last_ingestion_ms: i64,
    /// UTF-8 bytes of the stream's messages.
    pub stored_bytes: u64,
}

/// The smallest string greater than every string that starts with `prefix`, so that a prefix search is
/// the index range `prefix <= name < bound`. SQLite compares text as UTF-8 bytes, which orders like code
/// points, so incrementing the last character that can be incremented is enough. `None` means there is
/// no upper bound (an empty prefix, or one made only of U+10FFFF).
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => 0xE000,
            n => n,
        };
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn stored_bytes(value: i64, table: &'static str, key: &str) -> Result<u64> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(table, key, format!("stored_bytes {value}")))
}

fn group_id(tx: &Transaction<'_>, group: &str) -> Result<Option<i64>> {
    tx.prepare_cached("SELECT id FROM log_groups WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([group], |row| row.get(0)).optional())
        .map_err(StoreError::sqlite("find log group"))
}

fn require_group(tx: &Transaction<'_>, group: &str) -> Result<i64> {
    group_id(tx, group)?.ok_or_else(|| StoreError::NotFound { what: "log group", name: group.to_owned() })
}

/// How DescribeLogStreams pages: after a name, or after a (last event time, name) pair.
enum StreamCursor {
    Name(String),
    LastEvent(i64, String),
}

impl StreamCursor {
    fn parse(token: &str, by_last_event: bool) -> Result<StreamCursor> {
        let invalid = || StoreError::InvalidToken { token: token.to_owned() };
        match (by_last_event, token.split_once('/')) {
            (false, Some(("n", name))) => Ok(StreamCursor::Name(name.to_owned())),
            (true, Some(("t", rest))) => {
                let (key, name) = rest.split_once('/').ok_or_else(invalid)?;
                Ok(StreamCursor::LastEvent(key.parse().map_err(|_| invalid())?, name.to_owned()))
            }
            _ => Err(invalid()),
        }
    }
}

/// The sort key of DescribeLogStreams' LastEventTime order; it must read exactly as in the index.
const LAST_EVENT_KEY: &str = "coalesce(last_event_ms, -9223372036854775808)";

impl Store {
    /// Appends one batch of events to a stream in one transaction, creating the group and stream if
    /// this is their first event. `now_ms` becomes every event's ingestion time.
    pub fn append_logs(&self, group: &str, stream: &str, events: &[LogEvent], now_ms: i64) -> Result<()> {
        self.append_log_batches(&[LogBatch { group, stream, events }], now_ms)
    }

    /// Appends several batches, to any streams, in one transaction: the log writer gathers what every
    /// environment printed over a short window and commits it at once, since a commit (the WAL append
    /// and its locking) costs far more than the rows in it. A stream named twice is updated twice, in
    /// order; callers that merge a stream's batches first save those updates.
    pub fn append_log_batches(&self, batches: &[LogBatch<'_>], now_ms: i64) -> Result<()> {
        self.logs.write(|tx| {
            for batch in batches {
                append_stream(tx, batch, now_ms)?;
            }
            Ok(())
        })
    }

    /// Log groups in name order, names starting with `prefix`, after `after` (the last name of the
    /// previous page).
    pub fn describe_log_groups(
        &self,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LogGroupInfo>> {
        let prefix = prefix.unwrap_or("");
        // Every name sorts after the empty string, so no marker means "from the start".
        let after = after.unwrap_or("");
        let upper = prefix_upper_bound(prefix);
        let sql = format!(
            "SELECT name, created_ms, stored_bytes, retention_days FROM log_groups WHERE name > ?1 AND name >= ?2 {}
             ORDER BY name LIMIT ?3",
            if upper.is_some() { "AND name < ?4" } else { "" }
        );
        self.logs.read(|tx| {
            let mut stmt = tx.prepare_cached(&sql).map_err(StoreError::sqlite("prepare describe log groups"))?;
            let limit = limit_param(limit);
            let mut bound: Vec<&dyn ToSql> = vec![&after, &prefix, &limit];
            if let Some(upper) = &upper {
                bound.push(upper);
            }
            let rows = stmt
                .query_map(bound.as_slice(), |row| {
                    Ok((row.get::<_, String>(0)?, row.get(1)?, row.get::<_, i64>(2)?, row.get::<_, Option<i64>>(3)?))
                })
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .map_err(StoreError::sqlite("describe log groups"))?;
            rows.into_iter()
                .map(|(name, created_ms, bytes, days)| {
                    let stored_bytes = stored_bytes(bytes, "log_groups", &name)?;
                    let retention = days
                        .map(|d| {
                            LogRetentionDays::new(d)
                                .map_err(|e| StoreError::corrupt("log_groups", &name, e.to_string()))
                        })
                        .transpose()?;
                    Ok(LogGroupInfo { name, created_ms, stored_bytes, retention })
                })
                .collect()
        })
    }

    /// One page of DescribeLogStreams, ordered by name or by last event time (streams without events
    /// first), either way round, and the token of the next page if there may be one.
    pub fn describe_log_streams(
        &self,
        group: &str,
        prefix: Option<&str>,
        order_by_last_event: bool,
        descending: bool,
        after_token: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<LogStreamInfo>, Option<String>)> {
        let cursor = after_token.map(|t| StreamCursor::parse(t, order_by_last_event)).transpose()?;
        let upper = prefix.and_then(prefix_upper_bound);
        let (cmp, dir) = if descending { ("<", "DESC") } else { (">", "ASC") };
        let mut sql = format!(
            "SELECT name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms, stored_bytes,
                 {LAST_EVENT_KEY} FROM log_streams WHERE group_id = :group"
        );
        if prefix.is_some() {
            sql.push_str(" AND name >= :prefix");
        }
        if upper.is_some() {
            sql.push_str(" AND name < :upper");
        }
        match &cursor {
            Some(StreamCursor::Name(_)) => sql.push_str(&format!(" AND name {cmp} :name")),
            Some(StreamCursor::LastEvent(..)) => sql.push_str(&format!(
                " AND {LAST_EVENT_KEY} {cmp}= :key AND ({LAST_EVENT_KEY} {cmp} :key OR name {cmp} :name)"
            )),
            None => {}
        }
        if order_by_last_event {
            sql.push_str(&format!(" ORDER BY {LAST_EVENT_KEY} {dir}, name {dir}"));
        } else {
            sql.push_str(&format!(" ORDER BY name {dir}"));
        }
        sql.push_str(" LIMIT :limit");

        self.logs.read(|tx| {
            let group_id = require_group(tx, group)?;
            // One row more than asked says whether a next page exists.
            let fetch = limit_param(limit.saturating_add(1));
            let mut bound: Vec<(&str, &dyn ToSql)> = vec![(":group", &group_id), (":limit", &fetch)];
            if let Some(prefix) = &prefix {
                bound.push((":prefix", prefix));
            }
            if let Some(upper) = &upper {
                bound.push((":upper", upper));
            }
            match &cursor {
                Some(StreamCursor::Name(name)) => bound.push((":name", name)),
                Some(StreamCursor::LastEvent(key, name)) => {
                    bound.push((":key", key));
                    bound.push((":name", name));
                }
                None => {}
            }
            let mut stmt = tx.prepare_cached(&sql).map_err(StoreError::sqlite("prepare describe log streams"))?;
            let rows = stmt
                .query_map(bound.as_slice(), |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, Option<i64>>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, i64>(5)?,
                        row.get::<_, i64>(6)?,
                    ))
                })
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .map_err(StoreError::sqlite("describe log streams"))?;
            let more = rows.len() > limit;
            let mut streams = Vec::with_capacity(rows.len().min(limit));
            let mut next = None;
            for (name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms, bytes, key) in
                rows.into_iter().take(limit)
            {
                if more {
                    next = Some(if order_by_last_event { format!("t/{key}/{name}") } else { format!("n/{name}") });
                }
                let stored_bytes = stored_bytes(bytes, "log_streams", &name)?;
                streams.push(LogStreamInfo {
                    name,
                    created_ms,
                    first_event_ms,
                    last_event_ms,
                    last_ingestion_ms,
                    stored_bytes,
                });
            }
            Ok((streams, next))
        })
    }

    /// Deletes a log group with all its streams and events.
    pub fn delete_log_group(&self, group: &str) -> Result<()> {
        self.logs.write(|tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM log_groups WHERE name = ?1")
                .and_then(|mut stmt| stmt.execute([group]))
                .map_err(StoreError::sqlite("delete log group"))?;
            if deleted == 0 {
                return Err(StoreError::NotFound { what: "log group", name: group.to_owned() });
            }
            Ok(())
        })
    }
}

/// One batch's rows: the group and stream (created on first use), the events, the stream's time range
/// and both byte counters.
fn append_stream(tx: &Transaction<'_>, batch: &LogBatch<'_>, now_ms: i64) -> Result<()> {
    let LogBatch { group, stream, events } = *batch;
    let group_id = match group_id(tx, group)? {
        Some(id) => id,
        None => tx
            .prepare_cached("INSERT INTO log_groups (name, created_ms) VALUES (?1, ?2) RETURNING id")
            .and_then(|mut stmt| stmt.query_row(params![group, now_ms], |row| row.get(0)))
            .map_err(StoreError::sqlite("create log group"))?,
    };
    let stream_id: i64 = tx
        .prepare_cached(
            "INSERT INTO log_streams (group_id, name, created_ms, last_ingestion_ms) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (group_id, name) DO UPDATE SET last_ingestion_ms = excluded.last_ingestion_ms
             RETURNING id",
        )
        .and_then(|mut stmt| stmt.query_row(params![group_id, stream, now_ms], |row| row.get(0)))
        .map_err(StoreError::sqlite("create log stream"))?;
    let (Some(first), Some(last)) =
        (events.iter().map(|e| e.timestamp_ms).min(), events.iter().map(|e| e.timestamp_ms).max())
    else {
        return Ok(());
    };
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO log_events (group_id, stream_id, timestamp_ms, ingestion_ms, message)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(StoreError::sqlite("prepare log insert"))?;
    let mut bytes: i64 = 0;
    for event in events {
        insert
            .execute(params![group_id, stream_id, event.timestamp_ms, now_ms, event.message])
            .map_err(StoreError::sqlite("insert log event"))?;
        bytes = bytes.saturating_add(i64::try_from(event.message.len()).unwrap_or(i64::MAX));
    }
    tx.prepare_cached(
        "UPDATE log_streams SET first_event_ms = min(coalesce(first_event_ms, ?2), ?2),
             last_event_ms = max(coalesce(last_event_ms, ?3), ?3), stored_bytes = stored_bytes + ?4
         WHERE id = ?1",
    )
    .and_then(|mut stmt| stmt.execute(params![stream_id, first, last, bytes]))
    .map_err(StoreError::sqlite("update log stream"))?;
    tx.prepare_cached("UPDATE log_groups SET stored_bytes = stored_bytes + ?2 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![group_id, bytes]))
        .map_err(StoreError::sqlite("update log group"))?;
    Ok(())
}
