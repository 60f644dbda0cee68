//! Resource-based policies of functions, versions and aliases (AddPermission, RemovePermission,
//! GetPolicy). Each statement is kept as the JSON AWS renders (the API layer renders it, the policy
//! evaluator reads it); the store only keeps them in order, unique by `Sid`, under a revision id.
//! Triggers remove a version's or alias's policy with it, so no delete path can leave one behind.

use nimbus_model::FunctionName;
use rusqlite::{OptionalExtension as _, Transaction, params};

use crate::db::{Store, new_revision_id};
use crate::error::{Result, StoreError};
use crate::functions::VersionId;

pub(crate) const META_POLICIES_V1: &str = "
-- qualifier: '' for the unqualified function, '$LATEST', a version number or an alias name.
CREATE TABLE function_policies (
    function     TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier    TEXT NOT NULL,
    revision_id  TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
) STRICT;

-- seq keeps statements in the order they were added, as GetPolicy lists them.
CREATE TABLE policy_statements (
    seq        INTEGER PRIMARY KEY,
    function   TEXT NOT NULL,
    qualifier  TEXT NOT NULL,
    sid        TEXT NOT NULL,
    statement  TEXT NOT NULL,
    UNIQUE (function, qualifier, sid),
    FOREIGN KEY (function, qualifier) REFERENCES function_policies(function, qualifier) ON DELETE CASCADE
) STRICT;

CREATE TRIGGER policies_follow_aliases AFTER DELETE ON aliases BEGIN
    DELETE FROM function_policies WHERE function = OLD.function AND qualifier = OLD.name;
END;
CREATE TRIGGER policies_follow_versions AFTER DELETE ON function_versions BEGIN
    DELETE FROM function_policies WHERE function = OLD.function
        AND qualifier = CASE OLD.version WHEN 0 THEN '$LATEST' ELSE CAST(OLD.version AS TEXT) END;
END;
";

/// What a policy belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyScope {
    Function,
    Version(VersionId),
    Alias(String),
}

impl PolicyScope {
    fn key(&self) -> String {
        match self {
            Self::Function => String::new(),
            Self::Version(v) => v.to_string(),
            Self::Alias(a) => a.clone(),
        }
    }
}

/// A policy's statements (rendered JSON, in the order added) and its revision id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    pub statements: Vec<String>,
    pub revision_id: String,
}

/// The revision id of what the policy belongs to; `NotFound` when it does not exist.
fn target_revision(tx: &Transaction<'_>, function: &FunctionName, scope: &PolicyScope) -> Result<String> {
    let found = match scope {
        PolicyScope::Function => tx
            .prepare_cached("SELECT revision_id FROM function_versions WHERE function = ?1 AND version = 0")
            .and_then(|mut s| s.query_row(params![function.as_str()], |r| r.get::<_, String>(0)).optional()),
        PolicyScope::Version(v) => {
            let n = match v {
                VersionId::Latest => 0,
                VersionId::Published(v) => i64::from(v.get()),
            };
            tx.prepare_cached("SELECT revision_id FROM function_versions WHERE function = ?1 AND version = ?2")
                .and_then(|mut s| s.query_row(params![function.as_str(), n], |r| r.get::<_, String>(0)).optional())
        }
        PolicyScope::Alias(a) => tx
            .prepare_cached("SELECT revision_id FROM aliases WHERE function = ?1 AND name = ?2")
            .and_then(|mut s| s.query_row(params![function.as_str(), a], |r| r.get::<_, String>(0)).optional()),
    }
    .map_err(StoreError::sqlite("find policy target"))?;
    found.ok_or_else(|| StoreError::NotFound {
        what: if matches!(scope, PolicyScope::Alias(_)) { "alias" } else { "function" },
        name: match scope {
            PolicyScope::Function => function.to_string(),
            other => format!("{function}:{}", other.key()),
        },
    })
}

fn load(tx: &Transaction<'_>, function: &FunctionName, qualifier: &str) -> Result<Option<PolicyRecord>> {
    let revision = tx
        .prepare_cached("SELECT revision_id FROM function_policies WHERE function = ?1 AND qualifier = ?2")
        .and_then(|mut s| s.query_row(params![function.as_str(), qualifier], |r| r.get::<_, String>(0)).optional())
        .map_err(StoreError::sqlite("read policy"))?;
    let Some(revision_id) = revision else { return Ok(None) };
    let statements = tx
        .prepare_cached("SELECT statement FROM policy_statements WHERE function = ?1 AND qualifier = ?2 ORDER BY seq")
        .and_then(|mut s| {
            s.query_map(params![function.as_str(), qualifier], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(StoreError::sqlite("read policy statements"))?;
    Ok((!statements.is_empty()).then_some(PolicyRecord { statements, revision_id }))
}

fn check_revision(expected: Option<&str>, actual: &str) -> Result<()> {
    match expected {
        Some(e) if e != actual => {
            Err(StoreError::PreconditionFailed { expected: e.to_owned(), actual: actual.to_owned() })
        }
        _ => Ok(()),
    }
}

impl Store {
    /// Adds one statement; returns the policy's new revision id. `Conflict` when the Sid is taken,
    /// `PreconditionFailed` when `expected_revision` is not the policy's (or, before it has one, its
    /// function's or alias's) revision id.
    pub fn add_policy_statement(
        &self,
        function: &FunctionName,
        scope: &PolicyScope,
        sid: &str,
        statement: &str,
        expected_revision: Option<&str>,
    ) -> Result<String> {
        let qualifier = scope.key();
        self.meta.write(|tx| {
            let target = target_revision(tx, function, scope)?;
            let current = load(tx, function, &qualifier)?;
            check_revision(expected_revision, current.as_ref().map_or(target.as_str(), |p| p.revision_id.as_str()))?;
            let taken = tx
                .prepare_cached("SELECT 1 FROM policy_statements WHERE function = ?1 AND qualifier = ?2 AND sid = ?3")
                .and_then(|mut s| s.query_row(params![function.as_str(), qualifier, sid], |_| Ok(())).optional())
                .map_err(StoreError::sqlite("find policy statement"))?;
            if taken.is_some() {
                return Err(StoreError::Conflict { what: "statement", name: sid.to_owned() });
            }
            let revision_id = new_revision_id(tx)?;
            tx.prepare_cached(
                "INSERT INTO function_policies (function, qualifier, revision_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (function, qualifier) DO UPDATE SET revision_id = excluded.revision_id",
            )
            .and_then(|mut s| s.execute(params![function.as_str(), qualifier, revision_id]))
            .map_err(StoreError::sqlite("write policy"))?;
            tx.prepare_cached(
                "INSERT INTO policy_statements (function, qualifier, sid, statement) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![function.as_str(), qualifier, sid, statement]))
            .map_err(StoreError::sqlite("insert policy statement"))?;
            Ok(revision_id)
        })
    }

    /// Removes one statement; `NotFound { what: "statement" }` when there is none with that Sid.
    pub fn remove_policy_statement(
        &self,
        function: &FunctionName,
        scope: &PolicyScope,
        sid: &str,
        expected_revision: Option<&str>,
    ) -> Result<()> {
        let qualifier = scope.key();
        self.meta.write(|tx| {
            target_revision(tx, function, scope)?;
            let Some(current) = load(tx, function, &qualifier)? else {
                return Err(StoreError::NotFound { what: "statement", name: sid.to_owned() });
            };
            check_revision(expected_revision, &current.revision_id)?;
            let deleted = tx
                .prepare_cached("DELETE FROM policy_statements WHERE function = ?1 AND qualifier = ?2 AND sid = ?3")
                .and_then(|mut s| s.execute(params![function.as_str(), qualifier, sid]))
                .map_err(StoreError::sqlite("delete policy statement"))?;
            if deleted == 0 {
                return Err(StoreError::NotFound { what: "statement", name: sid.to_owned() });
            }
            let revision_id = new_revision_id(tx)?;
            tx.prepare_cached("UPDATE function_policies SET revision_id = ?3 WHERE function = ?1 AND qualifier = ?2")
                .and_then(|mut s| s.execute(params![function.as_str(), qualifier, revision_id]))
                .map_err(StoreError::sqlite("write policy"))?;
            Ok(())
        })
    }

    /// The policy of `scope`: `NotFound` when the function, version or alias does not exist, `None`
    /// when it has no statement.
    pub fn function_policy(&self, function: &FunctionName, scope: &PolicyScope) -> Result<Option<PolicyRecord>> {
        let qualifier = scope.key();
        self.meta.read(|tx| {
            target_revision(tx, function, scope)?;
            load(tx, function, &qualifier)
        })
    }
}
