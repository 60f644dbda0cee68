//! SQS-compatible queues and their messages, in `queues.db` (WAL, `synchronous=FULL`: a message whose
//! SendMessage was answered survives a power cut).
//!
//! The store does what must be atomic: receiving (pick visible messages, count the receive, hide them
//! for the visibility timeout, hand out a fresh receipt token, or move them to the dead-letter queue once
//! they were received `maxReceiveCount` times), FIFO group order and deduplication. The API layer parses
//! and validates attributes, computes digests and encodes message attributes; the store keeps those as
//! given.
//!
//! A receipt handle names the message row and the token of its latest receive: `DeleteMessage` with an
//! older handle succeeds without deleting, as SQS documents.

use std::collections::{BTreeMap, HashSet};

use rusqlite::{OptionalExtension as _, Row, Transaction, params};
use rusqlite_migration::{M, Migrations};

use crate::db::Store;
use crate::error::{Result, StoreError};
use crate::functions::limit_param;

const QUEUES_V1: &str = "
CREATE TABLE queues (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    fifo           INTEGER NOT NULL,
    attributes     TEXT NOT NULL,     -- JSON object of the settable attributes, as strings
    tags           TEXT NOT NULL DEFAULT '{}',
    created_ms     INTEGER NOT NULL,
    modified_ms    INTEGER NOT NULL,
    next_sequence  INTEGER NOT NULL DEFAULT 1,
    purged_ms      INTEGER
) STRICT;

CREATE TABLE messages (
    id                 INTEGER PRIMARY KEY,
    queue_id           INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    message_id         TEXT NOT NULL,
    body               TEXT NOT NULL,
    md5_body           TEXT NOT NULL,
    attributes         TEXT,          -- message attributes, JSON as the API encodes them
    md5_attributes     TEXT,
    system_attributes  TEXT,
    md5_system         TEXT,
    sender_id          TEXT NOT NULL,
    sent_ms            INTEGER NOT NULL,
    visible_ms         INTEGER NOT NULL,
    receive_count      INTEGER NOT NULL DEFAULT 0,
    first_receive_ms   INTEGER,
    receipt            TEXT,          -- token of the latest receive
    group_id           TEXT,
    dedup_id           TEXT,
    sequence           INTEGER,
    dlq_source         TEXT           -- ARN of the queue it was moved from as a dead letter
) STRICT;
CREATE INDEX messages_by_visibility ON messages (queue_id, visible_ms, id);
CREATE INDEX messages_by_age ON messages (queue_id, sent_ms);

CREATE TABLE fifo_dedup (
    queue_id    INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    dedup_id    TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    PRIMARY KEY (queue_id, dedup_id)
) STRICT;
CREATE INDEX fifo_dedup_by_expiry ON fifo_dedup (queue_id, expires_ms);
";

/// The dead-letter target ARN in a queue's stored attributes (RedrivePolicy is stored as the JSON the API
/// normalised it to; `json_valid` keeps a row that is not from failing every write). The index and the
/// query use this same expression, so ListDeadLetterSourceQueues reads the index, not every queue's row.
macro_rules! dlq_target {
    () => {
        "json_extract(CASE WHEN json_valid(json_extract(attributes, '$.RedrivePolicy'))
                      THEN json_extract(attributes, '$.RedrivePolicy') END, '$.deadLetterTargetArn')"
    };
}

const QUEUES_DLQ_V2: &str = concat!("CREATE INDEX queues_by_dead_letter_target ON queues (", dlq_target!(), ", name);");

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(QUEUES_V1).comment("queues, messages, FIFO deduplication"),
        M::up(QUEUES_DLQ_V2).comment("queues by dead-letter target"),
    ])
}

/// SQS's deduplication interval for FIFO queues.
const DEDUP_INTERVAL_MS: i64 = 5 * 60 * 1000;
/// FIFO receives look at most this many messages for a group that is not blocked.
const FIFO_SCAN_MAX: i64 = 20_000;
/// PurgeQueue may run once per 60 s per queue.
const PURGE_INTERVAL_MS: i64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRecord {
    pub id: i64,
    pub name: String,
    pub fifo: bool,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub message_id: String,
    pub body: String,
    pub md5_body: String,
    pub attributes: Option<String>,
    pub md5_attributes: Option<String>,
    pub system_attributes: Option<String>,
    pub md5_system: Option<String>,
    pub sender_id: String,
    pub delay_ms: i64,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// What SendMessage answers: the id (that of the earlier message for a FIFO duplicate) and, on FIFO
/// queues, the sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    pub message_id: String,
    pub sequence: Option<i64>,
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    /// The dead-letter queue's name.
    pub dead_letter_queue: String,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone)]
pub struct ReceiveParams {
    pub now_ms: i64,
    pub max: usize,
    pub visibility_ms: i64,
    pub retention_ms: i64,
    pub fifo: bool,
    pub redrive: Option<Redrive>,
    /// This queue's ARN, recorded on messages moved to the dead-letter queue.
    pub source_arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub row_id: i64,
    pub receipt_token: String,
    pub message_id: String,
    pub body: String,
    pub md5_body: String,
    pub attributes: Option<String>,
    pub md5_attributes: Option<String>,
    pub system_attributes: Option<String>,
    pub sender_id: String,
    pub sent_ms: i64,
    pub receive_count: u32,
    pub first_receive_ms: i64,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub sequence: Option<i64>,
    pub dlq_source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeVisibility {
    Changed,
    /// The message exists under that receipt but is not in flight.
    NotInFlight,
    /// No message has that receipt (deleted, received again since, or never).
    Unknown,
}

type QueueRaw = (i64, String, bool, String, String, i64, i64);

const QUEUE_COLUMNS: &str = "id, name, fifo, attributes, tags, created_ms, modified_ms";

fn queue_row(row: &Row<'_>) -> rusqlite::Result<QueueRaw> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

fn queue_record(raw: QueueRaw) -> Result<QueueRecord> {
    let (id, name, fifo, attributes, tags, created_ms, modified_ms) = raw;
    let bad = |col: &str, e: &dyn std::fmt::Display| StoreError::corrupt("queues", name.clone(), format!("{col}: {e}"));
    Ok(QueueRecord {
        attributes: serde_json::from_str(&attributes).map_err(|e| bad("attributes", &e))?,
        tags: serde_json::from_str(&tags).map_err(|e| bad("tags", &e))?,
        id,
        name,
        fifo,
        created_ms,
        modified_ms,
    })
}

fn to_json(name: &str, value: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::corrupt("queues", name, format!("encoding: {e}")))
}

fn queue_not_found(name: &str) -> StoreError {
    StoreError::NotFound { what: "queue", name: name.to_owned() }
}

fn read_queue(tx: &Transaction<'_>, name: &str) -> Result<Option<QueueRecord>> {
    let raw = tx
        .prepare_cached(&format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE name = ?1"))
        .and_then(|mut stmt| stmt.query_row([name], queue_row).optional())
        .map_err(StoreError::sqlite("read queue"))?;
    raw.map(queue_record).transpose()
}

fn queue_exists(tx: &Transaction<'_>, id: i64) -> Result<bool> {
    tx.prepare_cached("SELECT 1 FROM queues WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([id], |_| Ok(())).optional())
        .map(|f| f.is_some())
        .map_err(StoreError::sqlite("find queue"))
}

impl Store {
    /// Creates a queue, or returns the existing one of that name (`false`): the API decides whether the
    /// attributes differ (`QueueNameExists`).
    pub fn create_queue(
        &self,
        name: &str,
        fifo: bool,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Result<(QueueRecord, bool)> {
        let attrs = to_json(name, attributes)?;
        let tags_text = to_json(name, tags)?;
        self.queues.write(|tx| {
            if let Some(existing) = read_queue(tx, name)? {
                return Ok((existing, false));
            }
            tx.prepare_cached(
                "INSERT INTO queues (name, fifo, attributes, tags, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )
            .and_then(|mut stmt| stmt.execute(params![name, fifo, attrs, tags_text, now_ms]))
            .map_err(StoreError::sqlite("insert queue"))?;
            let queue = read_queue(tx, name)?.ok_or_else(|| queue_not_found(name))?;
            Ok((queue, true))
        })
    }

    pub fn get_queue(&self, name: &str) -> Result<QueueRecord> {
        self.queues.read(|tx| read_queue(tx, name)?.ok_or_else(|| queue_not_found(name)))
    }

    /// Up to `limit` queues whose names start with `prefix`, in name order after `after`.
    pub fn list_queues(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<QueueRecord>> {
        self.queues.read(|tx| {
            let raws = tx
                .prepare_cached(&format!(
                    "SELECT {QUEUE_COLUMNS} FROM queues WHERE name > ?1 AND substr(name, 1, length(?2)) = ?2
                     ORDER BY name LIMIT ?3"
                ))
                .and_then(|mut stmt| {
                    stmt.query_map(params![after.unwrap_or(""), prefix, limit_param(limit)], queue_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(StoreError::sqlite("list queues"))?;
            raws.into_iter().map(queue_record).collect()
        })
    }

    /// Up to `limit` names of queues whose names start with `prefix`, in name order after `after` (the
    /// rows' attributes and tags are not read).
    pub fn list_queue_names(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.queues.read(|tx| {
            tx.prepare_cached(
                "SELECT name FROM queues WHERE name > ?1 AND substr(name, 1, length(?2)) = ?2 ORDER BY name LIMIT ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![after.unwrap_or(""), prefix, limit_param(limit)], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(StoreError::sqlite("list queue names"))
        })
    }

    /// Up to `limit` names of queues whose RedrivePolicy targets `target_arn`, in name order after
    /// `after`: an index range, whatever the number and size of the other queues.
    pub fn dead_letter_sources(&self, target_arn: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.queues.read(|tx| {
            tx.prepare_cached(concat!(
                "SELECT name FROM queues WHERE ",
                dlq_target!(),
                " = ?1 AND name > ?2 ORDER BY name LIMIT ?3"
            ))
            .and_then(|mut stmt| {
                stmt.query_map(params![target_arn, after.unwrap_or(""), limit_param(limit)], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(StoreError::sqlite("list dead-letter sources"))
        })
    }

    /// Deletes a queue and every message in it.
    pub fn delete_queue(&self, name: &str) -> Result<()> {
        self.queues.write(|tx| {
            let n = tx
                .prepare_cached("DELETE FROM queues WHERE name = ?1")
                .and_then(|mut stmt| stmt.execute([name]))
                .map_err(StoreError::sqlite("delete queue"))?;
            if n == 0 {
                return Err(queue_not_found(name));
            }
            Ok(())
        })
    }

    /// Replaces a queue's attributes (the API has merged and validated them).
    pub fn set_queue_attributes(&self, name: &str, attributes: &BTreeMap<String, String>, now_ms: i64) -> Result<()> {
        let attrs = to_json(name, attributes)?;
        self.queues.write(|tx| {
            let n = tx
                .prepare_cached("UPDATE queues SET attributes = ?2, modified_ms = ?3 WHERE name = ?1")
                .and_then(|mut stmt| stmt.execute(params![name, attrs, now_ms]))
                .map_err(StoreError::sqlite("set queue attributes"))?;
            if n == 0 {
                return Err(queue_not_found(name));
            }
            Ok(())
        })
    }

    pub fn set_queue_tags(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        let tags = to_json(name, tags)?;
        self.queues.write(|tx| {
            let n = tx
                .prepare_cached("UPDATE queues SET tags = ?2 WHERE name = ?1")
                .and_then(|mut stmt| stmt.execute(params![name, tags]))
                .map_err(StoreError::sqlite("set queue tags"))?;
            if n == 0 {
                return Err(queue_not_found(name));
            }
            Ok(())
        })
    }

    /// Deletes every message of the queue; `None` when the last purge was less than 60 s ago.
    pub fn purge_queue(&self, queue_id: i64, now_ms: i64) -> Result<Option<usize>> {
        self.queues.write(|tx| {
            let last: Option<Option<i64>> = tx
                .prepare_cached("SELECT purged_ms FROM queues WHERE id = ?1")
                .and_then(|mut stmt| stmt.query_row([queue_id], |row| row.get(0)).optional())
                .map_err(StoreError::sqlite("read queue"))?;
            let Some(last) = last else { return Err(queue_not_found(&queue_id.to_string())) };
            if last.is_some_and(|t| now_ms - t < PURGE_INTERVAL_MS) {
                return Ok(None);
            }
            let n = tx
                .prepare_cached("DELETE FROM messages WHERE queue_id = ?1")
                .and_then(|mut stmt| stmt.execute([queue_id]))
                .map_err(StoreError::sqlite("purge queue"))?;
            tx.prepare_cached("UPDATE queues SET purged_ms = ?2 WHERE id = ?1")
                .and_then(|mut stmt| stmt.execute(params![queue_id, now_ms]))
                .map_err(StoreError::sqlite("record purge"))?;
            Ok(Some(n))
        })
    }

    /// ApproximateNumberOfMessages, …NotVisible and …Delayed; messages past the retention period (which
    /// the next receive or sweep deletes) are not counted.
    pub fn queue_counts(&self, queue_id: i64, now_ms: i64, retention_ms: i64) -> Result<QueueCounts> {
        self.queues.read(|tx| {
            tx.prepare_cached(
                "SELECT COUNT(*) FILTER (WHERE visible_ms <= ?2),
                        COUNT(*) FILTER (WHERE visible_ms > ?2 AND receive_count > 0),
                        COUNT(*) FILTER (WHERE visible_ms > ?2 AND receive_count = 0)
                 FROM messages WHERE queue_id = ?1 AND sent_ms > ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![queue_id, now_ms, now_ms - retention_ms], |row| {
                    Ok(QueueCounts {
                        visible: row.get::<_, i64>(0)? as u64,
                        in_flight: row.get::<_, i64>(1)? as u64,
                        delayed: row.get::<_, i64>(2)? as u64,
                    })
                })
            })
            .map_err(StoreError::sqlite("count messages"))
        })
    }

    /// The retention sweep of one queue: deletes its messages sent `retention_ms` or longer ago and its
    /// expired FIFO deduplication ids, so a queue nobody receives from does not keep them on disk.
    /// Returns how many messages were deleted.
    pub fn expire_messages(&self, queue_id: i64, now_ms: i64, retention_ms: i64) -> Result<usize> {
        self.queues.write(|tx| {
            expire_dedup_ids(tx, queue_id, now_ms)?;
            expire_old_messages(tx, queue_id, now_ms - retention_ms)
        })
    }

    /// Stores messages in one transaction (a batch is all or nothing here; the API validated each entry).
    /// FIFO messages carry a group and a deduplication id: a duplicate within 5 minutes is answered as
    /// sent but not stored again.
    pub fn send_messages(
        &self,
        queue_id: i64,
        fifo: bool,
        now_ms: i64,
        messages: &[NewMessage],
    ) -> Result<Vec<SendOutcome>> {
        self.queues.write(|tx| {
            if !queue_exists(tx, queue_id)? {
                return Err(queue_not_found(&queue_id.to_string()));
            }
            if fifo {
                expire_dedup_ids(tx, queue_id, now_ms)?;
            }
            let mut out = Vec::with_capacity(messages.len());
            for m in messages {
                let mut sequence = None;
                if fifo {
                    if let Some(dedup) = &m.dedup_id {
                        let earlier: Option<(String, i64)> = tx
                            .prepare_cached(
                                "SELECT message_id, sequence FROM fifo_dedup WHERE queue_id = ?1 AND dedup_id = ?2",
                            )
                            .and_then(|mut stmt| {
                                stmt.query_row(params![queue_id, dedup], |row| Ok((row.get(0)?, row.get(1)?))).optional()
                            })
                            .map_err(StoreError::sqlite("check deduplication id"))?;
                        if let Some((message_id, seq)) = earlier {
                            out.push(SendOutcome { message_id, sequence: Some(seq), duplicate: true });
                            continue;
                        }
                    }
                    let seq: i64 = tx
                        .prepare_cached(
                            "UPDATE queues SET next_sequence = next_sequence + 1 WHERE id = ?1 RETURNING next_sequence - 1",
                        )
                        .and_then(|mut stmt| stmt.query_row([queue_id], |row| row.get(0)))
                        .map_err(StoreError::sqlite("number message"))?;
                    if let Some(dedup) = &m.dedup_id {
                        tx.prepare_cached(
                            "INSERT INTO fifo_dedup (queue_id, dedup_id, message_id, sequence, expires_ms)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )
                        .and_then(|mut stmt| {
                            stmt.execute(params![queue_id, dedup, m.message_id, seq, now_ms + DEDUP_INTERVAL_MS])
                        })
                        .map_err(StoreError::sqlite("record deduplication id"))?;
                    }
                    sequence = Some(seq);
                }
                tx.prepare_cached(
                    "INSERT INTO messages (queue_id, message_id, body, md5_body, attributes, md5_attributes,
                         system_attributes, md5_system, sender_id, sent_ms, visible_ms, group_id, dedup_id, sequence)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        queue_id,
                        m.message_id,
                        m.body,
                        m.md5_body,
                        m.attributes,
                        m.md5_attributes,
                        m.system_attributes,
                        m.md5_system,
                        m.sender_id,
                        now_ms,
                        now_ms + m.delay_ms.max(0),
                        m.group_id,
                        m.dedup_id,
                        sequence
                    ])
                })
                .map_err(StoreError::sqlite("insert message"))?;
                out.push(SendOutcome { message_id: m.message_id.clone(), sequence, duplicate: false });
            }
            Ok(out)
        })
    }

    /// Receives up to `p.max` messages: counts the receive, hides them for the visibility timeout and
    /// gives each a new receipt token. Messages already received `maxReceiveCount` times move to the
    /// dead-letter queue instead. Expired messages (older than the retention period) are deleted first.
    pub fn receive_messages(&self, queue_id: i64, p: &ReceiveParams) -> Result<Vec<ReceivedMessage>> {
        self.queues.write(|tx| {
            expire_old_messages(tx, queue_id, p.now_ms - p.retention_ms)?;
            let candidates =
                if p.fifo { fifo_candidates(tx, queue_id, p)? } else { standard_candidates(tx, queue_id, p)? };
            let dlq = match &p.redrive {
                Some(r) => read_queue(tx, &r.dead_letter_queue)?.map(|q| (q.id, r.max_receive_count)),
                None => None,
            };
            let mut out = Vec::new();
            for (row_id, receive_count) in candidates {
                if out.len() >= p.max {
                    break;
                }
                if let Some((dlq_id, max_receives)) = dlq
                    && receive_count >= i64::from(max_receives)
                {
                    move_to_dead_letter_queue(tx, row_id, dlq_id, p)?;
                    continue;
                }
                let received = tx
                    .prepare_cached(
                        "UPDATE messages SET receive_count = receive_count + 1,
                             first_receive_ms = coalesce(first_receive_ms, ?2), visible_ms = ?3,
                             receipt = lower(hex(randomblob(12)))
                         WHERE id = ?1
                         RETURNING id, receipt, message_id, body, md5_body, attributes, md5_attributes,
                             system_attributes, sender_id, sent_ms, receive_count, first_receive_ms, group_id,
                             dedup_id, sequence, dlq_source",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_row(params![row_id, p.now_ms, p.now_ms + p.visibility_ms], |row| {
                            Ok(ReceivedMessage {
                                row_id: row.get(0)?,
                                receipt_token: row.get(1)?,
                                message_id: row.get(2)?,
                                body: row.get(3)?,
                                md5_body: row.get(4)?,
                                attributes: row.get(5)?,
                                md5_attributes: row.get(6)?,
                                system_attributes: row.get(7)?,
                                sender_id: row.get(8)?,
                                sent_ms: row.get(9)?,
                                receive_count: row.get::<_, i64>(10)?.clamp(0, i64::from(u32::MAX)) as u32,
                                first_receive_ms: row.get(11)?,
                                group_id: row.get(12)?,
                                dedup_id: row.get(13)?,
                                sequence: row.get(14)?,
                                dlq_source: row.get(15)?,
                            })
                        })
                    })
                    .map_err(StoreError::sqlite("receive message"))?;
                out.push(received);
            }
            Ok(out)
        })
    }

    /// Deletes messages by (row, receipt token); an outdated token or a message already gone is no
    /// error (SQS answers success). Returns how many were deleted.
    pub fn delete_messages(&self, queue_id: i64, handles: &[(i64, String)]) -> Result<usize> {
        self.queues.write(|tx| {
            let mut n = 0;
            for (row_id, token) in handles {
                n += tx
                    .prepare_cached("DELETE FROM messages WHERE id = ?1 AND queue_id = ?2 AND receipt = ?3")
                    .and_then(|mut stmt| stmt.execute(params![row_id, queue_id, token]))
                    .map_err(StoreError::sqlite("delete message"))?;
            }
            Ok(n)
        })
    }

    /// ChangeMessageVisibility for (row, receipt token, new visibility in ms from now) entries.
    pub fn change_visibility(
        &self,
        queue_id: i64,
        now_ms: i64,
        entries: &[(i64, String, i64)],
    ) -> Result<Vec<ChangeVisibility>> {
        self.queues.write(|tx| {
            let mut out = Vec::with_capacity(entries.len());
            for (row_id, token, timeout_ms) in entries {
                let visible: Option<i64> = tx
                    .prepare_cached("SELECT visible_ms FROM messages WHERE id = ?1 AND queue_id = ?2 AND receipt = ?3")
                    .and_then(|mut stmt| stmt.query_row(params![row_id, queue_id, token], |row| row.get(0)).optional())
                    .map_err(StoreError::sqlite("find message"))?;
                let result = match visible {
                    None => ChangeVisibility::Unknown,
                    Some(v) if v <= now_ms => ChangeVisibility::NotInFlight,
                    Some(_) => {
                        tx.prepare_cached("UPDATE messages SET visible_ms = ?2 WHERE id = ?1")
                            .and_then(|mut stmt| stmt.execute(params![row_id, now_ms + timeout_ms]))
                            .map_err(StoreError::sqlite("change visibility"))?;
                        ChangeVisibility::Changed
                    }
                };
                out.push(result);
            }
            Ok(out)
        })
    }
}

/// Visible messages in visibility order (for messages never received: send order).
/// Deletes the queue's FIFO deduplication ids whose five minutes are over.
fn expire_dedup_ids(tx: &Transaction<'_>, queue_id: i64, now_ms: i64) -> Result<()> {
    tx.prepare_cached("DELETE FROM fifo_dedup WHERE queue_id = ?1 AND expires_ms <= ?2")
        .and_then(|mut stmt| stmt.execute(params![queue_id, now_ms]))
        .map_err(StoreError::sqlite("expire deduplication ids"))?;
    Ok(())
}

/// Deletes the queue's messages sent at or before `cutoff_ms` (past their retention period).
fn expire_old_messages(tx: &Transaction<'_>, queue_id: i64, cutoff_ms: i64) -> Result<usize> {
    tx.prepare_cached("DELETE FROM messages WHERE queue_id = ?1 AND sent_ms <= ?2")
        .and_then(|mut stmt| stmt.execute(params![queue_id, cutoff_ms]))
        .map_err(StoreError::sqlite("expire messages"))
}

fn standard_candidates(tx: &Transaction<'_>, queue_id: i64, p: &ReceiveParams) -> Result<Vec<(i64, i64)>> {
    // Messages that will move to the dead-letter queue do not count against `max`, so look a bit further.
    let limit = (p.max as i64).saturating_mul(4).max(10);
    tx.prepare_cached(
        "SELECT id, receive_count FROM messages WHERE queue_id = ?1 AND visible_ms <= ?2 ORDER BY visible_ms, id LIMIT ?3",
    )
    .and_then(|mut stmt| {
        stmt.query_map(params![queue_id, p.now_ms, limit], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(StoreError::sqlite("select messages"))
}

/// FIFO: messages in send order, skipping every group whose oldest message is in flight or delayed, so
/// a group is handed out in order and only one batch of it is in flight at a time.
fn fifo_candidates(tx: &Transaction<'_>, queue_id: i64, p: &ReceiveParams) -> Result<Vec<(i64, i64)>> {
    let rows: Vec<(i64, Option<String>, i64, i64)> = tx
        .prepare_cached(
            "SELECT id, group_id, visible_ms, receive_count FROM messages WHERE queue_id = ?1 ORDER BY id LIMIT ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![queue_id, FIFO_SCAN_MAX], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(StoreError::sqlite("select messages"))?;
    let mut blocked: HashSet<Option<String>> = HashSet::new();
    let mut out = Vec::new();
    for (id, group, visible_ms, receive_count) in rows {
        if blocked.contains(&group) {
            continue;
        }
        if visible_ms > p.now_ms {
            blocked.insert(group);
            continue;
        }
        out.push((id, receive_count));
        if out.len() >= p.max.saturating_mul(4).max(10) {
            break;
        }
    }
    Ok(out)
}

fn move_to_dead_letter_queue(tx: &Transaction<'_>, row_id: i64, dlq_id: i64, p: &ReceiveParams) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO messages (queue_id, message_id, body, md5_body, attributes, md5_attributes, system_attributes,
             md5_system, sender_id, sent_ms, visible_ms, group_id, dedup_id, sequence, dlq_source)
         SELECT ?2, message_id, body, md5_body, attributes, md5_attributes, system_attributes, md5_system,
             sender_id, sent_ms, ?3, group_id, dedup_id, sequence, ?4
         FROM messages WHERE id = ?1",
    )
    .and_then(|mut stmt| stmt.execute(params![row_id, dlq_id, p.now_ms, p.source_arn]))
    .map_err(StoreError::sqlite("move message to dead-letter queue"))?;
    tx.prepare_cached("DELETE FROM messages WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([row_id]))
        .map_err(StoreError::sqlite("delete moved message"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, group: Option<&str>, dedup: Option<&str>) -> NewMessage {
        NewMessage {
            message_id: id.into(),
            body: format!("body {id}"),
            md5_body: "x".into(),
            attributes: None,
            md5_attributes: None,
            system_attributes: None,
            md5_system: None,
            sender_id: "AIDA".into(),
            delay_ms: 0,
            group_id: group.map(Into::into),
            dedup_id: dedup.map(Into::into),
        }
    }

    fn params(now_ms: i64, max: usize, fifo: bool, redrive: Option<Redrive>) -> ReceiveParams {
        ReceiveParams {
            now_ms,
            max,
            visibility_ms: 1000,
            retention_ms: 1_000_000,
            fifo,
            redrive,
            source_arn: "arn:aws:sqs:us-east-1:000000000000:src".into(),
        }
    }

    #[test]
    fn receive_hides_then_redrives_to_the_dead_letter_queue() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let none = BTreeMap::new();
        let (q, created) = store.create_queue("src", false, &none, &none, 0).unwrap();
        assert!(created);
        let (dlq, _) = store.create_queue("dlq", false, &none, &none, 0).unwrap();
        store.send_messages(q.id, false, 10, &[msg("m1", None, None)]).unwrap();
        let redrive = Some(Redrive { dead_letter_queue: "dlq".into(), max_receive_count: 2 });
        let got = store.receive_messages(q.id, &params(10, 10, false, redrive.clone())).unwrap();
        assert_eq!(got.len(), 1);
        assert!(store.receive_messages(q.id, &params(500, 10, false, redrive.clone())).unwrap().is_empty());
        let again = store.receive_messages(q.id, &params(2000, 10, false, redrive.clone())).unwrap();
        assert_eq!(again[0].receive_count, 2);
        // The old receipt no longer deletes.
        assert_eq!(store.delete_messages(q.id, &[(got[0].row_id, got[0].receipt_token.clone())]).unwrap(), 0);
        assert!(store.receive_messages(q.id, &params(4000, 10, false, redrive)).unwrap().is_empty());
        let dead = store.receive_messages(dlq.id, &params(4000, 10, false, None)).unwrap();
        assert_eq!(dead[0].message_id, "m1");
        assert_eq!(dead[0].dlq_source.as_deref(), Some("arn:aws:sqs:us-east-1:000000000000:src"));
        assert_eq!(store.delete_messages(dlq.id, &[(dead[0].row_id, dead[0].receipt_token.clone())]).unwrap(), 1);
    }

    #[test]
    fn messages_past_retention_are_not_counted_and_the_sweep_deletes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let none = BTreeMap::new();
        let (q, _) = store.create_queue("q.fifo", true, &none, &none, 0).unwrap();
        store.send_messages(q.id, true, 0, &[msg("old", Some("g"), Some("d-old"))]).unwrap();
        store.send_messages(q.id, true, 100, &[msg("new", Some("g"), Some("d-new"))]).unwrap();
        let dedup_rows = || -> i64 {
            store
                .queues
                .read(|tx| Ok(tx.query_row("SELECT count(*) FROM fifo_dedup", [], |r| r.get(0)).unwrap()))
                .unwrap()
        };
        assert_eq!(store.queue_counts(q.id, 150, 1_000).unwrap().visible, 2);
        assert_eq!(store.queue_counts(q.id, 150, 100).unwrap().visible, 1, "the one sent at 0 has expired");
        assert_eq!(store.expire_messages(q.id, 150, 100).unwrap(), 1);
        assert_eq!(store.expire_messages(q.id, 150, 100).unwrap(), 0);
        assert_eq!(dedup_rows(), 2, "deduplication ids live their 5 minutes whatever happens to the message");
        assert_eq!(store.expire_messages(q.id, 300_050, 1_000_000).unwrap(), 0);
        assert_eq!(dedup_rows(), 1);
        let got = store.receive_messages(q.id, &params(300_060, 10, true, None)).unwrap();
        assert_eq!(got.iter().map(|m| m.message_id.as_str()).collect::<Vec<_>>(), ["new"]);
    }

    #[test]
    fn fifo_keeps_group_order_and_deduplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let none = BTreeMap::new();
        let (q, _) = store.create_queue("f.fifo", true, &none, &none, 0).unwrap();
        let sent = store
            .send_messages(
                q.id,
                true,
                0,
                &[msg("a1", Some("a"), Some("d1")), msg("b1", Some("b"), Some("d2")), msg("a2", Some("a"), Some("d3"))],
            )
            .unwrap();
        assert_eq!(sent.iter().map(|s| s.sequence.unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
        let dup = store.send_messages(q.id, true, 1, &[msg("a9", Some("a"), Some("d1"))]).unwrap();
        assert_eq!(dup[0].message_id, "a1");
        assert!(dup[0].duplicate);
        let first = store.receive_messages(q.id, &params(5, 1, true, None)).unwrap();
        assert_eq!(first.iter().map(|m| m.message_id.as_str()).collect::<Vec<_>>(), ["a1"]);
        // Group a is blocked while a1 is in flight; b is not.
        let second = store.receive_messages(q.id, &params(5, 10, true, None)).unwrap();
        assert_eq!(second.iter().map(|m| m.message_id.as_str()).collect::<Vec<_>>(), ["b1"]);
        assert!(store.receive_messages(q.id, &params(5, 10, true, None)).unwrap().is_empty());
        store.delete_messages(q.id, &[(first[0].row_id, first[0].receipt_token.clone())]).unwrap();
        let third = store.receive_messages(q.id, &params(6, 10, true, None)).unwrap();
        assert_eq!(third.iter().map(|m| m.message_id.as_str()).collect::<Vec<_>>(), ["a2"]);
        let counts = store.queue_counts(q.id, 5, 1_000_000).unwrap();
        assert_eq!(counts, QueueCounts { visible: 0, in_flight: 2, delayed: 0 });
    }
}
