//! The asynchronous invocation journal and the per-function settings that steer it.
//!
//! An `Event` invocation is a row of `async_events` from the moment the API accepts it (the 202 is sent
//! only after the transaction that inserted it committed, with `synchronous=FULL`) until its outcome has
//! been handled: the row is deleted in the same transaction that records a follow-up event (a
//! destination function's invocation), or after a queue destination has been written. Delivery is
//! therefore at least once. A dispatcher claims due rows by writing its run id into `claimed_by`; a
//! server that starts releases every claim a previous (dead) run left behind.

use nimbus_model::FunctionName;
use rusqlite::{OptionalExtension as _, Row, Transaction, params};

use crate::db::Store;
use crate::error::{Result, StoreError};
use crate::functions::limit_param;

pub(crate) const META_ASYNC_V1: &str = "
CREATE TABLE async_events (
    id              INTEGER PRIMARY KEY,
    request_id      TEXT NOT NULL,
    function        TEXT NOT NULL,
    qualifier       TEXT,             -- as the caller gave it; NULL when unqualified
    payload         BLOB NOT NULL,
    client_context  TEXT,
    created_ms      INTEGER NOT NULL, -- when accepted: MaximumEventAgeInSeconds counts from here
    attempts        INTEGER NOT NULL DEFAULT 0,  -- invocations that ran to an outcome
    throttles       INTEGER NOT NULL DEFAULT 0,  -- times it was throttled (not counted as attempts)
    due_ms          INTEGER NOT NULL, -- not to be run before
    claimed_by      TEXT              -- run id of the dispatcher running it now
) STRICT;
CREATE INDEX async_events_due ON async_events (due_ms, id) WHERE claimed_by IS NULL;
CREATE INDEX async_events_claimed ON async_events (claimed_by) WHERE claimed_by IS NOT NULL;

-- One row per function and qualifier ('$LATEST' stands for the unqualified function, as on AWS).
CREATE TABLE event_invoke_configs (
    function          TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier         TEXT NOT NULL,
    max_retries       INTEGER,
    max_age_s         INTEGER,
    on_success        TEXT,
    on_failure        TEXT,
    last_modified_ms  INTEGER NOT NULL,
    PRIMARY KEY (function, qualifier)
) STRICT;

-- The legacy DeadLetterConfig.TargetArn of CreateFunction/UpdateFunctionConfiguration.
ALTER TABLE functions ADD COLUMN dead_letter_target TEXT;
";

/// Claims go per function (round-robin, each within its share): this index lets the claim seek from
/// one function with waiting events to the next, and read only the first few of each.
pub(crate) const META_ASYNC_FAIR_V7: &str = "
CREATE INDEX async_events_by_function ON async_events (function, due_ms, id) WHERE claimed_by IS NULL;
";

/// An event accepted for asynchronous invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAsyncEvent {
    pub request_id: String,
    pub function: FunctionName,
    pub qualifier: Option<String>,
    pub payload: Vec<u8>,
    pub client_context: Option<String>,
    pub now_ms: i64,
}

/// A journal row as the dispatcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncEvent {
    pub id: i64,
    pub request_id: String,
    pub function: FunctionName,
    pub qualifier: Option<String>,
    pub payload: Vec<u8>,
    pub client_context: Option<String>,
    pub created_ms: i64,
    pub attempts: u32,
    pub throttles: u32,
}

/// PutFunctionEventInvokeConfig's settings for one function and qualifier. `None` means "not set"
/// (AWS then applies its default: 2 retries, 6 hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInvokeConfig {
    pub function: FunctionName,
    pub qualifier: String,
    pub max_retries: Option<u32>,
    pub max_age_s: Option<u32>,
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
    pub last_modified_ms: i64,
}

fn insert_event(tx: &Transaction<'_>, e: &NewAsyncEvent) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO async_events (request_id, function, qualifier, payload, client_context, created_ms, due_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![e.request_id, e.function.as_str(), e.qualifier, e.payload, e.client_context, e.now_ms])
    })
    .map_err(StoreError::sqlite("insert async event"))?;
    Ok(())
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<AsyncEventRaw> {
    Ok(AsyncEventRaw {
        id: row.get(0)?,
        request_id: row.get(1)?,
        function: row.get(2)?,
        qualifier: row.get(3)?,
        payload: row.get(4)?,
        client_context: row.get(5)?,
        created_ms: row.get(6)?,
        attempts: row.get(7)?,
        throttles: row.get(8)?,
    })
}

struct AsyncEventRaw {
    id: i64,
    request_id: String,
    function: String,
    qualifier: Option<String>,
    payload: Vec<u8>,
    client_context: Option<String>,
    created_ms: i64,
    attempts: i64,
    throttles: i64,
}

impl AsyncEventRaw {
    fn into_event(self) -> Result<AsyncEvent> {
        let key = self.id.to_string();
        Ok(AsyncEvent {
            function: FunctionName::parse(&self.function)
                .map_err(|e| StoreError::corrupt("async_events", key.clone(), format!("function: {e}")))?,
            attempts: u32::try_from(self.attempts)
                .map_err(|e| StoreError::corrupt("async_events", key.clone(), format!("attempts: {e}")))?,
            throttles: u32::try_from(self.throttles)
                .map_err(|e| StoreError::corrupt("async_events", key, format!("throttles: {e}")))?,
            id: self.id,
            request_id: self.request_id,
            qualifier: self.qualifier,
            payload: self.payload,
            client_context: self.client_context,
            created_ms: self.created_ms,
        })
    }
}

type ConfigRaw = (String, String, Option<i64>, Option<i64>, Option<String>, Option<String>, i64);

fn config_from_row(row: &Row<'_>) -> rusqlite::Result<ConfigRaw> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

fn config_into(raw: ConfigRaw) -> Result<EventInvokeConfig> {
    let (function, qualifier, max_retries, max_age_s, on_success, on_failure, last_modified_ms) = raw;
    let key = format!("{function}:{qualifier}");
    let bad = |col: &str, e: &dyn std::fmt::Display| {
        StoreError::corrupt("event_invoke_configs", key.clone(), format!("{col}: {e}"))
    };
    Ok(EventInvokeConfig {
        function: FunctionName::parse(&function).map_err(|e| bad("function", &e))?,
        qualifier,
        max_retries: max_retries.map(u32::try_from).transpose().map_err(|e| bad("max_retries", &e))?,
        max_age_s: max_age_s.map(u32::try_from).transpose().map_err(|e| bad("max_age_s", &e))?,
        on_success,
        on_failure,
        last_modified_ms,
    })
}

fn function_exists(tx: &Transaction<'_>, name: &FunctionName) -> Result<bool> {
    tx.prepare_cached("SELECT 1 FROM functions WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([name.as_str()], |_| Ok(())).optional())
        .map(|found| found.is_some())
        .map_err(StoreError::sqlite("find function"))
}

impl Store {
    /// Writes accepted events durably, all in one transaction (the API batches concurrent requests into
    /// one commit, so one fsync covers many 202s).
    pub fn enqueue_async_events(&self, events: &[NewAsyncEvent]) -> Result<()> {
        self.meta.write(|tx| {
            for e in events {
                insert_event(tx, e)?;
            }
            Ok(())
        })
    }

    /// Releases every claim not held by `run`: those of a previous run that died (or was stopped) with
    /// events in flight. Returns how many were released.
    pub fn release_async_claims(&self, run: &str) -> Result<usize> {
        self.meta.write(|tx| {
            tx.prepare_cached(
                "UPDATE async_events SET claimed_by = NULL WHERE claimed_by IS NOT NULL AND claimed_by != ?1",
            )
            .and_then(|mut stmt| stmt.execute([run]))
            .map_err(StoreError::sqlite("release async claims"))
        })
    }

    /// Claims up to `limit` events due at `now_ms` for dispatcher `run`, fairly across functions: no
    /// function holds more than its share of the dispatcher's `concurrency` (an equal part among the
    /// functions with events due or running, and never more than three quarters of it, so that a
    /// function arriving later finds room at once), and claims go round-robin (every function's oldest
    /// due event before anyone's second). One function's backlog thus waits for its own share only,
    /// as each function has its own queue on AWS. The rows read are the claimed ones plus at most a
    /// share per function with events waiting (an index seek per function), not the whole backlog.
    pub fn claim_async_events(
        &self,
        run: &str,
        now_ms: i64,
        limit: usize,
        concurrency: usize,
    ) -> Result<Vec<AsyncEvent>> {
        let concurrency = concurrency.max(1);
        let one_max = (concurrency * 3 / 4).max(1);
        self.meta.write(|tx| {
            let raws = tx
                .prepare_cached(
                    "UPDATE async_events SET claimed_by = :run
                     WHERE id IN (
                       WITH RECURSIVE
                         fns(f) AS (
                           SELECT (SELECT MIN(function) FROM async_events WHERE claimed_by IS NULL)
                           UNION ALL
                           SELECT (SELECT MIN(function) FROM async_events WHERE claimed_by IS NULL AND function > fns.f)
                           FROM fns WHERE fns.f IS NOT NULL
                         ),
                         busy(f, n) AS (
                           SELECT function, COUNT(*) FROM async_events WHERE claimed_by = :run GROUP BY function
                         ),
                         due(id, f, due_ms, rn) AS (
                           SELECT e.id, e.function, e.due_ms,
                                  ROW_NUMBER() OVER (PARTITION BY e.function ORDER BY e.due_ms, e.id)
                           FROM fns JOIN async_events e ON e.id IN (
                             SELECT id FROM async_events
                             WHERE function = fns.f AND claimed_by IS NULL AND due_ms <= :now
                             ORDER BY due_ms, id LIMIT :one_max)
                         ),
                         active(n) AS (SELECT COUNT(*) FROM (SELECT f FROM busy UNION SELECT f FROM due)),
                         share(cap) AS (SELECT MAX(1, MIN(:one_max, (:conc + n - 1) / MAX(n, 1))) FROM active)
                       SELECT due.id FROM due LEFT JOIN busy ON busy.f = due.f, share
                       WHERE due.rn + COALESCE(busy.n, 0) <= share.cap
                       ORDER BY due.rn + COALESCE(busy.n, 0), due.due_ms, due.id
                       LIMIT :limit)
                     RETURNING id, request_id, function, qualifier, payload, client_context, created_ms, attempts,
                               throttles",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(
                        rusqlite::named_params! {
                            ":run": run,
                            ":now": now_ms,
                            ":limit": limit_param(limit),
                            ":one_max": limit_param(one_max),
                            ":conc": limit_param(concurrency),
                        },
                        event_from_row,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(StoreError::sqlite("claim async events"))?;
            let mut events = raws.into_iter().map(AsyncEventRaw::into_event).collect::<Result<Vec<_>>>()?;
            events.sort_by_key(|e| e.id);
            Ok(events)
        })
    }

    /// When the earliest unclaimed event is due, if there is one.
    pub fn next_async_due_ms(&self) -> Result<Option<i64>> {
        self.meta.read(|tx| {
            tx.prepare_cached("SELECT MIN(due_ms) FROM async_events WHERE claimed_by IS NULL")
                .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, Option<i64>>(0)))
                .map_err(StoreError::sqlite("next async due"))
        })
    }

    /// Events in the journal: (unclaimed, claimed).
    pub fn async_event_counts(&self) -> Result<(u64, u64)> {
        self.meta.read(|tx| {
            tx.prepare_cached(
                "SELECT COUNT(*) FILTER (WHERE claimed_by IS NULL), COUNT(*) FILTER (WHERE claimed_by IS NOT NULL)
                 FROM async_events",
            )
            .and_then(|mut stmt| {
                stmt.query_row([], |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)))
            })
            .map_err(StoreError::sqlite("count async events"))
        })
    }

    /// Puts a claimed event back to run again at `due_ms` with the given counters.
    pub fn reschedule_async_event(&self, id: i64, attempts: u32, throttles: u32, due_ms: i64) -> Result<()> {
        self.meta.write(|tx| {
            tx.prepare_cached(
                "UPDATE async_events SET claimed_by = NULL, attempts = ?2, throttles = ?3, due_ms = ?4 WHERE id = ?1",
            )
            .and_then(|mut stmt| stmt.execute(params![id, attempts, throttles, due_ms]))
            .map_err(StoreError::sqlite("reschedule async event"))?;
            Ok(())
        })
    }

    /// Removes a handled event, recording `follow_up` events (destination invocations) in the same
    /// transaction, so an outcome is never lost between the two.
    pub fn finish_async_event(&self, id: i64, follow_up: &[NewAsyncEvent]) -> Result<()> {
        self.meta.write(|tx| {
            for e in follow_up {
                insert_event(tx, e)?;
            }
            tx.prepare_cached("DELETE FROM async_events WHERE id = ?1")
                .and_then(|mut stmt| stmt.execute([id]))
                .map_err(StoreError::sqlite("delete async event"))?;
            Ok(())
        })
    }

    /// Creates or replaces (`merge == false`, Put) or merges into (`merge == true`, Update: only the
    /// fields given change) the config of `function`/`qualifier`. The function must exist.
    pub fn put_event_invoke_config(&self, config: &EventInvokeConfig, merge: bool) -> Result<EventInvokeConfig> {
        self.meta.write(|tx| {
            if !function_exists(tx, &config.function)? {
                return Err(StoreError::NotFound { what: "function", name: config.function.to_string() });
            }
            let mut stored = config.clone();
            if merge && let Some(old) = read_config(tx, &config.function, &config.qualifier)? {
                stored.max_retries = config.max_retries.or(old.max_retries);
                stored.max_age_s = config.max_age_s.or(old.max_age_s);
                stored.on_success = config.on_success.clone().or(old.on_success);
                stored.on_failure = config.on_failure.clone().or(old.on_failure);
            }
            tx.prepare_cached(
                "INSERT INTO event_invoke_configs
                     (function, qualifier, max_retries, max_age_s, on_success, on_failure, last_modified_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (function, qualifier) DO UPDATE SET max_retries = ?3, max_age_s = ?4,
                     on_success = ?5, on_failure = ?6, last_modified_ms = ?7",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    stored.function.as_str(),
                    stored.qualifier,
                    stored.max_retries,
                    stored.max_age_s,
                    stored.on_success,
                    stored.on_failure,
                    stored.last_modified_ms
                ])
            })
            .map_err(StoreError::sqlite("write event invoke config"))?;
            Ok(stored)
        })
    }

    pub fn get_event_invoke_config(
        &self,
        function: &FunctionName,
        qualifier: &str,
    ) -> Result<Option<EventInvokeConfig>> {
        self.meta.read(|tx| read_config(tx, function, qualifier))
    }

    /// Deletes a config; `NotFound` if there was none.
    pub fn delete_event_invoke_config(&self, function: &FunctionName, qualifier: &str) -> Result<()> {
        self.meta.write(|tx| {
            let n = tx
                .prepare_cached("DELETE FROM event_invoke_configs WHERE function = ?1 AND qualifier = ?2")
                .and_then(|mut stmt| stmt.execute(params![function.as_str(), qualifier]))
                .map_err(StoreError::sqlite("delete event invoke config"))?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "event invoke config",
                    name: format!("{function}:{qualifier}"),
                });
            }
            Ok(())
        })
    }

    /// A page of a function's configs in qualifier order, after `after`.
    pub fn list_event_invoke_configs(
        &self,
        function: &FunctionName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventInvokeConfig>> {
        self.meta.read(|tx| {
            if !function_exists(tx, function)? {
                return Err(StoreError::NotFound { what: "function", name: function.to_string() });
            }
            let raws = tx
                .prepare_cached(
                    "SELECT function, qualifier, max_retries, max_age_s, on_success, on_failure, last_modified_ms
                     FROM event_invoke_configs WHERE function = ?1 AND qualifier > ?2 ORDER BY qualifier LIMIT ?3",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(
                        params![function.as_str(), after.unwrap_or(""), limit_param(limit)],
                        config_from_row,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(StoreError::sqlite("list event invoke configs"))?;
            raws.into_iter().map(config_into).collect()
        })
    }

    /// Sets (or with `None` clears) the function's legacy dead-letter target.
    pub fn set_dead_letter_target(&self, function: &FunctionName, target: Option<&str>) -> Result<()> {
        self.meta.write(|tx| {
            let n = tx
                .prepare_cached("UPDATE functions SET dead_letter_target = ?2 WHERE name = ?1")
                .and_then(|mut stmt| stmt.execute(params![function.as_str(), target]))
                .map_err(StoreError::sqlite("set dead letter target"))?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "function", name: function.to_string() });
            }
            Ok(())
        })
    }
}

fn read_config(tx: &Transaction<'_>, function: &FunctionName, qualifier: &str) -> Result<Option<EventInvokeConfig>> {
    let raw = tx
        .prepare_cached(
            "SELECT function, qualifier, max_retries, max_age_s, on_success, on_failure, last_modified_ms
             FROM event_invoke_configs WHERE function = ?1 AND qualifier = ?2",
        )
        .and_then(|mut stmt| stmt.query_row(params![function.as_str(), qualifier], config_from_row).optional())
        .map_err(StoreError::sqlite("read event invoke config"))?;
    raw.map(config_into).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32, now_ms: i64) -> NewAsyncEvent {
        NewAsyncEvent {
            request_id: format!("req-{n}"),
            function: FunctionName::parse("f").unwrap(),
            qualifier: None,
            payload: format!("{{\"n\":{n}}}").into_bytes(),
            client_context: None,
            now_ms,
        }
    }

    #[test]
    fn claim_reschedule_finish_and_reclaim() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.enqueue_async_events(&[event(1, 100), event(2, 100), event(3, 200)]).unwrap();
        let claimed = store.claim_async_events("run-a", 150, 10, 100).unwrap();
        assert_eq!(claimed.iter().map(|e| e.request_id.as_str()).collect::<Vec<_>>(), ["req-1", "req-2"]);
        assert!(store.claim_async_events("run-a", 150, 10, 100).unwrap().is_empty());
        store.reschedule_async_event(claimed[0].id, 1, 0, 500).unwrap();
        assert_eq!(store.next_async_due_ms().unwrap(), Some(200));
        store.finish_async_event(claimed[1].id, &[event(9, 300)]).unwrap();
        assert_eq!(store.async_event_counts().unwrap(), (3, 0));
        let late = store.claim_async_events("run-a", 1000, 10, 100).unwrap();
        assert_eq!(late.len(), 3);
        assert_eq!(late[0].attempts, 1);
        // A new run takes over what the old one had claimed.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.release_async_claims("run-b").unwrap(), 3);
        assert_eq!(store.claim_async_events("run-b", 1000, 10, 100).unwrap().len(), 3);
    }

    fn event_of(function: &str, n: u32, now_ms: i64) -> NewAsyncEvent {
        NewAsyncEvent { function: FunctionName::parse(function).unwrap(), ..event(n, now_ms) }
    }

    fn functions_of(events: &[AsyncEvent]) -> Vec<&str> {
        events.iter().map(|e| e.function.as_str()).collect()
    }

    #[test]
    fn claims_are_fair_across_functions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // A backlog of 10 for `flood`: alone, it may take three quarters of a concurrency of 4.
        let flood: Vec<_> = (0..10).map(|n| event_of("flood", n, 100)).collect();
        store.enqueue_async_events(&flood).unwrap();
        let first = store.claim_async_events("r", 1000, 4, 4).unwrap();
        assert_eq!(functions_of(&first), ["flood"; 3]);
        assert!(store.claim_async_events("r", 1000, 1, 4).unwrap().is_empty(), "flood is at its share");
        // Another function's event, accepted after the whole backlog, is claimed at once.
        store.enqueue_async_events(&[event_of("victim", 99, 500)]).unwrap();
        assert_eq!(functions_of(&store.claim_async_events("r", 1000, 1, 4).unwrap()), ["victim"]);
        // With two functions active, flood's share is 2: it gets nothing until it is below that.
        store.finish_async_event(first[0].id, &[]).unwrap();
        assert!(store.claim_async_events("r", 1000, 4, 4).unwrap().is_empty());
        store.finish_async_event(first[1].id, &[]).unwrap();
        assert_eq!(functions_of(&store.claim_async_events("r", 1000, 4, 4).unwrap()), ["flood"]);

        // Round-robin: each function's oldest due event before anyone's second.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut events: Vec<_> = (0..5).map(|n| event_of("a", n, 100)).collect();
        events.extend((0..5).map(|n| event_of("b", n, 200)));
        events.push(event_of("c", 0, 300));
        store.enqueue_async_events(&events).unwrap();
        let mut claimed = store.claim_async_events("r", 1000, 4, 64).unwrap();
        claimed.sort_by_key(|e| e.function.as_str().to_owned());
        assert_eq!(functions_of(&claimed), ["a", "a", "b", "c"]);
    }

    #[test]
    fn configs_put_merge_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let f = FunctionName::parse("nope").unwrap();
        let cfg = EventInvokeConfig {
            function: f.clone(),
            qualifier: "$LATEST".into(),
            max_retries: Some(0),
            max_age_s: None,
            on_success: None,
            on_failure: Some("arn:aws:sqs:us-east-1:000000000000:q".into()),
            last_modified_ms: 1,
        };
        assert!(matches!(store.put_event_invoke_config(&cfg, false), Err(StoreError::NotFound { .. })));
    }
}
