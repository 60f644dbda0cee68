//! EventBridge's custom event buses, rules and targets. The API layer validates patterns, schedule
//! expressions and target specifications; the store keeps them as given (the pattern and expression as
//! text, a target as its JSON), so that what DescribeRule and ListTargetsByRule return is what was put.
//! The `default` bus always exists and has no row.

use rusqlite::{OptionalExtension as _, params};

use crate::db::Store;
use crate::error::{Result, StoreError};

pub(crate) const META_EVENT_RULES_V1: &str = "
CREATE TABLE event_buses (
    name        TEXT PRIMARY KEY,
    created_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE event_rules (
    bus          TEXT NOT NULL,
    name         TEXT NOT NULL,
    enabled      INTEGER NOT NULL,
    pattern      TEXT,
    schedule     TEXT,
    description  TEXT,
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (bus, name)
) STRICT;

CREATE TABLE event_targets (
    bus   TEXT NOT NULL,
    rule  TEXT NOT NULL,
    id    TEXT NOT NULL,
    spec  TEXT NOT NULL,     -- the target as PutTargets gave it, JSON
    PRIMARY KEY (bus, rule, id),
    FOREIGN KEY (bus, rule) REFERENCES event_rules(bus, name) ON DELETE CASCADE
) STRICT;
";

pub const DEFAULT_BUS: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRecord {
    pub bus: String,
    pub name: String,
    pub enabled: bool,
    pub pattern: Option<String>,
    pub schedule: Option<String>,
    pub description: Option<String>,
    pub created_ms: i64,
}

/// A rule with its targets (id, spec), as delivery reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleWithTargets {
    pub rule: RuleRecord,
    pub targets: Vec<(String, String)>,
}

fn rule_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RuleRecord> {
    Ok(RuleRecord {
        bus: row.get(0)?,
        name: row.get(1)?,
        enabled: row.get::<_, i64>(2)? != 0,
        pattern: row.get(3)?,
        schedule: row.get(4)?,
        description: row.get(5)?,
        created_ms: row.get(6)?,
    })
}

const RULE_COLUMNS: &str = "bus, name, enabled, pattern, schedule, description, created_ms";

fn bus_exists(tx: &rusqlite::Transaction<'_>, bus: &str) -> Result<bool> {
    if bus == DEFAULT_BUS {
        return Ok(true);
    }
    Ok(tx
        .query_row("SELECT 1 FROM event_buses WHERE name = ?1", [bus], |_| Ok(()))
        .optional()
        .map_err(StoreError::sqlite("read event bus"))?
        .is_some())
}

fn missing_bus(bus: &str) -> StoreError {
    StoreError::NotFound { what: "Event bus", name: bus.to_owned() }
}

impl Store {
    pub fn create_event_bus(&self, name: &str, now_ms: i64) -> Result<()> {
        self.meta.write(|tx| {
            if bus_exists(tx, name)? {
                return Err(StoreError::Conflict { what: "Event bus", name: name.to_owned() });
            }
            tx.execute("INSERT INTO event_buses (name, created_ms) VALUES (?1, ?2)", params![name, now_ms])
                .map_err(StoreError::sqlite("insert event bus"))?;
            Ok(())
        })
    }

    /// The bus's creation time (`None` for the default bus, which has none); NotFound if absent.
    pub fn event_bus(&self, name: &str) -> Result<Option<i64>> {
        self.meta.read(|tx| {
            if name == DEFAULT_BUS {
                return Ok(None);
            }
            tx.query_row("SELECT created_ms FROM event_buses WHERE name = ?1", [name], |r| r.get(0))
                .optional()
                .map_err(StoreError::sqlite("read event bus"))?
                .map(Some)
                .ok_or_else(|| missing_bus(name))
        })
    }

    /// Custom buses, by name.
    pub fn list_event_buses(&self) -> Result<Vec<(String, i64)>> {
        self.meta.read(|tx| {
            let mut stmt = tx
                .prepare("SELECT name, created_ms FROM event_buses ORDER BY name")
                .map_err(StoreError::sqlite("list event buses"))?;
            let rows =
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(StoreError::sqlite("list event buses"))?;
            rows.collect::<rusqlite::Result<_>>().map_err(StoreError::sqlite("list event buses"))
        })
    }

    /// Deletes a custom bus with its rules and targets (AWS deletes a missing bus without error).
    pub fn delete_event_bus(&self, name: &str) -> Result<()> {
        self.meta.write(|tx| {
            tx.execute("DELETE FROM event_rules WHERE bus = ?1", [name]).map_err(StoreError::sqlite("delete rules"))?;
            tx.execute("DELETE FROM event_buses WHERE name = ?1", [name]).map_err(StoreError::sqlite("delete bus"))?;
            Ok(())
        })
    }

    /// Creates or updates a rule (an update keeps its creation time, which anchors its rate).
    pub fn put_event_rule(&self, rule: &RuleRecord) -> Result<()> {
        self.meta.write(|tx| {
            if !bus_exists(tx, &rule.bus)? {
                return Err(missing_bus(&rule.bus));
            }
            tx.execute(
                "INSERT INTO event_rules (bus, name, enabled, pattern, schedule, description, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (bus, name) DO UPDATE SET enabled = excluded.enabled, pattern = excluded.pattern,
                     schedule = excluded.schedule, description = excluded.description",
                params![
                    rule.bus,
                    rule.name,
                    rule.enabled,
                    rule.pattern,
                    rule.schedule,
                    rule.description,
                    rule.created_ms
                ],
            )
            .map_err(StoreError::sqlite("put rule"))?;
            Ok(())
        })
    }

    pub fn event_rule(&self, bus: &str, name: &str) -> Result<RuleRecord> {
        self.meta.read(|tx| {
            tx.query_row(
                &format!("SELECT {RULE_COLUMNS} FROM event_rules WHERE bus = ?1 AND name = ?2"),
                [bus, name],
                rule_from_row,
            )
            .optional()
            .map_err(StoreError::sqlite("read rule"))?
            .ok_or_else(|| StoreError::NotFound { what: "Rule", name: name.to_owned() })
        })
    }

    /// A bus's rules whose names start with `prefix`, by name (NotFound for a missing bus).
    pub fn list_event_rules(&self, bus: &str, prefix: &str) -> Result<Vec<RuleRecord>> {
        self.meta.read(|tx| {
            if !bus_exists(tx, bus)? {
                return Err(missing_bus(bus));
            }
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {RULE_COLUMNS} FROM event_rules WHERE bus = ?1 AND substr(name, 1, length(?2)) = ?2 ORDER BY name"
                ))
                .map_err(StoreError::sqlite("list rules"))?;
            let rows = stmt.query_map([bus, prefix], rule_from_row).map_err(StoreError::sqlite("list rules"))?;
            rows.collect::<rusqlite::Result<_>>().map_err(StoreError::sqlite("list rules"))
        })
    }

    /// Deletes a rule; refused while it has targets (AWS's rule), unless `force`. Missing: no error.
    pub fn delete_event_rule(&self, bus: &str, name: &str, force: bool) -> Result<bool> {
        self.meta.write(|tx| {
            let targets: i64 = tx
                .query_row("SELECT count(*) FROM event_targets WHERE bus = ?1 AND rule = ?2", [bus, name], |r| r.get(0))
                .map_err(StoreError::sqlite("count targets"))?;
            if targets > 0 && !force {
                return Ok(false);
            }
            tx.execute("DELETE FROM event_rules WHERE bus = ?1 AND name = ?2", [bus, name])
                .map_err(StoreError::sqlite("delete rule"))?;
            Ok(true)
        })
    }

    pub fn set_event_rule_enabled(&self, bus: &str, name: &str, enabled: bool) -> Result<()> {
        self.meta.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE event_rules SET enabled = ?3 WHERE bus = ?1 AND name = ?2",
                    params![bus, name, enabled],
                )
                .map_err(StoreError::sqlite("enable rule"))?;
            if n == 0 { Err(StoreError::NotFound { what: "Rule", name: name.to_owned() }) } else { Ok(()) }
        })
    }

    /// Adds or replaces targets (id, spec) of a rule; the total may not exceed `max` (AWS: 5).
    /// Returns false (writing nothing) when it would.
    pub fn put_event_targets(&self, bus: &str, rule: &str, targets: &[(String, String)], max: usize) -> Result<bool> {
        self.meta
            .write(|tx| {
                let exists = tx
                    .query_row("SELECT 1 FROM event_rules WHERE bus = ?1 AND name = ?2", [bus, rule], |_| Ok(()))
                    .optional()
                    .map_err(StoreError::sqlite("read rule"))?;
                if exists.is_none() {
                    return Err(StoreError::NotFound { what: "Rule", name: rule.to_owned() });
                }
                for (id, spec) in targets {
                    tx.execute(
                        "INSERT INTO event_targets (bus, rule, id, spec) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (bus, rule, id) DO UPDATE SET spec = excluded.spec",
                        params![bus, rule, id, spec],
                    )
                    .map_err(StoreError::sqlite("put target"))?;
                }
                let total: i64 = tx
                    .query_row("SELECT count(*) FROM event_targets WHERE bus = ?1 AND rule = ?2", [bus, rule], |r| {
                        r.get(0)
                    })
                    .map_err(StoreError::sqlite("count targets"))?;
                if usize::try_from(total).unwrap_or(usize::MAX) > max {
                    return Err(StoreError::Conflict { what: "Targets over the limit of rule", name: rule.to_owned() });
                }
                Ok(true)
            })
            .or_else(|e| match e {
                StoreError::Conflict { what: "Targets over the limit of rule", .. } => Ok(false),
                e => Err(e),
            })
    }

    /// Removes the named targets; returns the ids that existed.
    pub fn remove_event_targets(&self, bus: &str, rule: &str, ids: &[String]) -> Result<Vec<String>> {
        self.meta.write(|tx| {
            let mut removed = Vec::new();
            for id in ids {
                let n = tx
                    .execute("DELETE FROM event_targets WHERE bus = ?1 AND rule = ?2 AND id = ?3", [bus, rule, id])
                    .map_err(StoreError::sqlite("remove target"))?;
                if n > 0 {
                    removed.push(id.clone());
                }
            }
            Ok(removed)
        })
    }

    pub fn list_event_targets(&self, bus: &str, rule: &str) -> Result<Vec<(String, String)>> {
        self.meta.read(|tx| {
            let mut stmt = tx
                .prepare("SELECT id, spec FROM event_targets WHERE bus = ?1 AND rule = ?2 ORDER BY id")
                .map_err(StoreError::sqlite("list targets"))?;
            let rows = stmt
                .query_map([bus, rule], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(StoreError::sqlite("list targets"))?;
            rows.collect::<rusqlite::Result<_>>().map_err(StoreError::sqlite("list targets"))
        })
    }

    /// Every enabled rule of every bus with its targets (what delivery and the scheduler compile).
    pub fn enabled_event_rules(&self) -> Result<Vec<RuleWithTargets>> {
        self.meta.read(|tx| {
            let mut stmt = tx
                .prepare(&format!("SELECT {RULE_COLUMNS} FROM event_rules WHERE enabled = 1 ORDER BY bus, name"))
                .map_err(StoreError::sqlite("list rules"))?;
            let rules: Vec<RuleRecord> = stmt
                .query_map([], rule_from_row)
                .map_err(StoreError::sqlite("list rules"))?
                .collect::<rusqlite::Result<_>>()
                .map_err(StoreError::sqlite("list rules"))?;
            let mut targets = tx
                .prepare("SELECT id, spec FROM event_targets WHERE bus = ?1 AND rule = ?2 ORDER BY id")
                .map_err(StoreError::sqlite("list targets"))?;
            rules
                .into_iter()
                .map(|rule| {
                    let t = targets
                        .query_map([&rule.bus, &rule.name], |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(StoreError::sqlite("list targets"))?
                        .collect::<rusqlite::Result<_>>()
                        .map_err(StoreError::sqlite("list targets"))?;
                    Ok(RuleWithTargets { rule, targets: t })
                })
                .collect()
        })
    }

    /// Which writes have finished (see `Db::generation`): delivery recompiles its rules when it moves.
    pub fn event_rules_generation(&self) -> u64 {
        self.meta.generation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(bus: &str, name: &str) -> RuleRecord {
        RuleRecord {
            bus: bus.into(),
            name: name.into(),
            enabled: true,
            pattern: Some(r#"{"source":["a"]}"#.into()),
            schedule: None,
            description: None,
            created_ms: 5,
        }
    }

    #[test]
    fn buses_rules_and_targets_keep_their_invariants() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(store.put_event_rule(&rule("orders", "r")), Err(StoreError::NotFound { .. })));
        store.create_event_bus("orders", 1).unwrap();
        assert!(matches!(store.create_event_bus("orders", 2), Err(StoreError::Conflict { .. })));
        assert!(matches!(store.create_event_bus(DEFAULT_BUS, 2), Err(StoreError::Conflict { .. })));
        store.put_event_rule(&rule("orders", "r")).unwrap();
        // An update keeps the creation time (it anchors rates).
        store.put_event_rule(&RuleRecord { created_ms: 99, enabled: false, ..rule("orders", "r") }).unwrap();
        let got = store.event_rule("orders", "r").unwrap();
        assert_eq!((got.created_ms, got.enabled), (5, false));

        let targets: Vec<(String, String)> = (0..4).map(|i| (format!("t{i}"), "{}".to_owned())).collect();
        assert!(store.put_event_targets("orders", "r", &targets, 5).unwrap());
        let more: Vec<(String, String)> = (4..6).map(|i| (format!("t{i}"), "{}".to_owned())).collect();
        assert!(!store.put_event_targets("orders", "r", &more, 5).unwrap());
        assert_eq!(store.list_event_targets("orders", "r").unwrap().len(), 4, "nothing half-written");
        assert!(!store.delete_event_rule("orders", "r", false).unwrap());
        assert_eq!(store.remove_event_targets("orders", "r", &["t0".into(), "nope".into()]).unwrap(), vec!["t0"]);

        store.set_event_rule_enabled("orders", "r", true).unwrap();
        assert_eq!(store.enabled_event_rules().unwrap()[0].targets.len(), 3);
        store.delete_event_bus("orders").unwrap();
        assert!(matches!(store.event_bus("orders"), Err(StoreError::NotFound { .. })));
        assert!(store.enabled_event_rules().unwrap().is_empty());
        assert!(store.list_event_targets("orders", "r").unwrap().is_empty(), "targets go with their rule");
    }
}
