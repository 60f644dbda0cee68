//! IAM and STS state in `nimbus.db`: users and their access keys, groups, roles, customer managed
//! policies with their versions, attachments, inline policies, and STS sessions.
//!
//! Entities are keyed by their unique id (`AIDA…`, `AGPA…`, `AROA…`, `ANPA…`), so renaming a user or
//! group (UpdateUser, UpdateGroup) touches one row, and attachments and inline policies can name any
//! kind of entity with one column. Names are unique ignoring case, as IAM compares them.
//!
//! Secrets. SigV4 verification recomputes the caller's signature, which needs the secret access key
//! itself (its signing key is derived per day, region and service), so a secret is kept as the root
//! key is in the 0600 `credentials` file: in this 0600 database, returned by no API after
//! CreateAccessKey (only [`Store::access_key_secret`], for the verifier, reads it).
//!
//! AWS managed policies (`arn:aws:iam::aws:policy/…`) are not rows: the server knows them. An
//! attachment of one is a row naming its ARN like any other.

mod policies;
mod principals;
mod roles;
mod sessions;

use std::collections::BTreeMap;

use nimbus_model::iam::IamTags;
use rusqlite::{OptionalExtension as _, Transaction};

use crate::error::{Result, StoreError};

pub use policies::{ManagedPolicy, NewPolicy, PolicyVersion, PrincipalPolicy};
pub use principals::{AccessKeyRecord, IamGroup, IamUser, KeyLastUsed, KeySecret, NewUser};
pub use roles::{IamRole, NewRole, RoleUpdate};
pub use sessions::{SessionPrincipal, StsSession};

pub(crate) const META_IAM_V1: &str = "
CREATE TABLE iam_users (
    id          TEXT PRIMARY KEY NOT NULL,               -- AIDA…
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    path        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    tags        TEXT NOT NULL DEFAULT '{}'               -- JSON object of strings
) STRICT;

-- No cascade from users: DeleteUser refuses while a user has keys, as IAM does.
CREATE TABLE iam_access_keys (
    access_key_id  TEXT PRIMARY KEY NOT NULL,            -- AKIA…
    user_id        TEXT NOT NULL REFERENCES iam_users(id),
    secret         TEXT NOT NULL,
    active         INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_ms     INTEGER NOT NULL,
    last_used_ms   INTEGER,
    last_used_service TEXT,
    last_used_region  TEXT
) STRICT;
CREATE INDEX iam_access_keys_by_user ON iam_access_keys (user_id);

CREATE TABLE iam_groups (
    id          TEXT PRIMARY KEY NOT NULL,               -- AGPA…
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    path        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE iam_group_members (
    group_id  TEXT NOT NULL REFERENCES iam_groups(id),
    user_id   TEXT NOT NULL REFERENCES iam_users(id),
    PRIMARY KEY (group_id, user_id)
) STRICT;
CREATE INDEX iam_group_members_by_user ON iam_group_members (user_id);

CREATE TABLE iam_roles (
    id             TEXT PRIMARY KEY NOT NULL,            -- AROA…
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    path           TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    trust_policy   TEXT NOT NULL,
    description    TEXT,
    max_session_s  INTEGER NOT NULL,
    tags           TEXT NOT NULL DEFAULT '{}'
) STRICT;

CREATE TABLE iam_policies (
    id               TEXT PRIMARY KEY NOT NULL,          -- ANPA…
    arn              TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL UNIQUE COLLATE NOCASE,
    path             TEXT NOT NULL,
    description      TEXT,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    default_version  INTEGER NOT NULL,
    -- The highest version number ever made; deleted numbers are not reused, as on AWS.
    last_version     INTEGER NOT NULL,
    tags             TEXT NOT NULL DEFAULT '{}'
) STRICT;

CREATE TABLE iam_policy_versions (
    policy_id   TEXT NOT NULL REFERENCES iam_policies(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL CHECK (version >= 1),
    document    TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (policy_id, version)
) STRICT;

-- entity_id is a user, group or role id; policy_arn a customer managed or AWS managed policy.
CREATE TABLE iam_attachments (
    entity_id   TEXT NOT NULL,
    policy_arn  TEXT NOT NULL,
    PRIMARY KEY (entity_id, policy_arn)
) STRICT;
CREATE INDEX iam_attachments_by_policy ON iam_attachments (policy_arn);

CREATE TABLE iam_inline_policies (
    entity_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    document   TEXT NOT NULL,
    PRIMARY KEY (entity_id, name)
) STRICT;

-- Temporary credentials (AssumeRole, GetSessionToken). principal_id is the role's or user's id.
CREATE TABLE sts_sessions (
    access_key_id   TEXT PRIMARY KEY NOT NULL,           -- ASIA…
    secret          TEXT NOT NULL,
    session_token   TEXT NOT NULL,
    principal_id    TEXT NOT NULL,
    session_name    TEXT,
    session_policy  TEXT,
    tags            TEXT NOT NULL DEFAULT '{}',
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL
) STRICT;
CREATE INDEX sts_sessions_by_expiry ON sts_sessions (expires_ms);
";

/// The three kinds of IAM identity that policies attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    User,
    Group,
    Role,
}

impl EntityKind {
    fn table(self) -> &'static str {
        match self {
            EntityKind::User => "iam_users",
            EntityKind::Group => "iam_groups",
            EntityKind::Role => "iam_roles",
        }
    }

    /// The word IAM's messages use ("The user with name bob cannot be found.").
    pub fn noun(self) -> &'static str {
        match self {
            EntityKind::User => "user",
            EntityKind::Group => "group",
            EntityKind::Role => "role",
        }
    }

    /// The name of the attached-policy quota in IAM's LimitExceeded message.
    fn quota(self) -> &'static str {
        match self {
            EntityKind::User => "PoliciesPerUser",
            EntityKind::Group => "PoliciesPerGroup",
            EntityKind::Role => "PoliciesPerRole",
        }
    }
}

/// Managed policies attached to one entity at most (IAM's default quota).
pub const ATTACHED_POLICIES_MAX: i64 = 10;

/// The id of the entity of `kind` named `name`, or NotFound.
pub(crate) fn entity_id(tx: &Transaction<'_>, kind: EntityKind, name: &str) -> Result<String> {
    let sql = format!("SELECT id FROM {} WHERE name = ?1", kind.table());
    tx.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row([name], |r| r.get::<_, String>(0)).optional())
        .map_err(StoreError::sqlite("find iam entity"))?
        .ok_or_else(|| StoreError::NotFound { what: kind.noun(), name: name.to_owned() })
}

fn count(tx: &Transaction<'_>, sql: &str, param: &str) -> Result<i64> {
    tx.prepare_cached(sql)
        .and_then(|mut stmt| stmt.query_row([param], |r| r.get::<_, i64>(0)))
        .map_err(StoreError::sqlite("count iam rows"))
}

fn tags_json(tags: &IamTags) -> String {
    serde_json::to_string(tags.as_map()).unwrap_or_else(|_| "{}".to_owned())
}

fn parse_tags(table: &'static str, key: &str, json: &str) -> Result<IamTags> {
    let map: BTreeMap<String, String> = serde_json::from_str(json).map_err(|e| StoreError::corrupt(table, key, e))?;
    IamTags::from_map(map).map_err(|e| StoreError::corrupt(table, key, e))
}

fn conflict(message: impl Into<String>) -> StoreError {
    StoreError::DeleteConflict { message: message.into() }
}

fn limit(message: impl Into<String>) -> StoreError {
    StoreError::LimitExceeded { message: message.into() }
}

impl crate::Store {
    /// Attaches a managed policy to an entity. A customer managed policy must exist; an AWS managed
    /// one (`arn:aws:iam::aws:…`) is checked by the caller, which knows them. Attaching twice is a no-op.
    pub fn attach_policy(&self, kind: EntityKind, name: &str, policy_arn: &str) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, kind, name)?;
            if !policy_arn.starts_with("arn:aws:iam::aws:") {
                let exists = count(tx, "SELECT count(*) FROM iam_policies WHERE arn = ?1", policy_arn)?;
                if exists == 0 {
                    return Err(StoreError::NotFound { what: "policy", name: policy_arn.to_owned() });
                }
            }
            let attached = count(tx, "SELECT count(*) FROM iam_attachments WHERE entity_id = ?1", &id)?;
            let already = tx
                .prepare_cached("SELECT 1 FROM iam_attachments WHERE entity_id = ?1 AND policy_arn = ?2")
                .and_then(|mut s| s.query_row([&id, policy_arn], |_| Ok(())).optional())
                .map_err(StoreError::sqlite("find attachment"))?;
            if already.is_some() {
                return Ok(());
            }
            if attached >= ATTACHED_POLICIES_MAX {
                return Err(limit(format!("Cannot exceed quota for {}: {ATTACHED_POLICIES_MAX}.", kind.quota())));
            }
            tx.prepare_cached("INSERT INTO iam_attachments (entity_id, policy_arn) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute([&id, policy_arn]))
                .map_err(StoreError::sqlite("attach policy"))?;
            Ok(())
        })
    }

    /// Detaches a managed policy; NotFound (`what` = "attachment") when it is not attached.
    pub fn detach_policy(&self, kind: EntityKind, name: &str, policy_arn: &str) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, kind, name)?;
            let n = tx
                .prepare_cached("DELETE FROM iam_attachments WHERE entity_id = ?1 AND policy_arn = ?2")
                .and_then(|mut s| s.execute([&id, policy_arn]))
                .map_err(StoreError::sqlite("detach policy"))?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "attachment", name: policy_arn.to_owned() });
            }
            Ok(())
        })
    }

    /// The ARNs of the managed policies attached to an entity, sorted.
    pub fn attached_policies(&self, kind: EntityKind, name: &str) -> Result<Vec<String>> {
        self.meta.read(|tx| {
            let id = entity_id(tx, kind, name)?;
            tx.prepare_cached("SELECT policy_arn FROM iam_attachments WHERE entity_id = ?1 ORDER BY policy_arn")
                .and_then(|mut s| s.query_map([&id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>())
                .map_err(StoreError::sqlite("list attached policies"))
        })
    }

    /// The entities a managed policy is attached to, as (kind, name, id), sorted by kind then name.
    pub fn policy_entities(&self, policy_arn: &str) -> Result<Vec<(EntityKind, String, String)>> {
        self.meta.read(|tx| {
            let mut out = Vec::new();
            for kind in [EntityKind::Group, EntityKind::User, EntityKind::Role] {
                let sql = format!(
                    "SELECT e.name, e.id FROM iam_attachments a JOIN {} e ON e.id = a.entity_id
                     WHERE a.policy_arn = ?1 ORDER BY e.name",
                    kind.table()
                );
                let rows = tx
                    .prepare_cached(&sql)
                    .and_then(|mut s| {
                        s.query_map([policy_arn], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(StoreError::sqlite("list policy entities"))?;
                out.extend(rows.into_iter().map(|(name, id)| (kind, name, id)));
            }
            Ok(out)
        })
    }

    /// Creates or replaces an entity's inline policy.
    pub fn put_inline_policy(&self, kind: EntityKind, name: &str, policy: &str, document: &str) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, kind, name)?;
            tx.prepare_cached(
                "INSERT INTO iam_inline_policies (entity_id, name, document) VALUES (?1, ?2, ?3)
                 ON CONFLICT (entity_id, name) DO UPDATE SET document = excluded.document",
            )
            .and_then(|mut s| s.execute([&id, policy, document]))
            .map_err(StoreError::sqlite("put inline policy"))?;
            Ok(())
        })
    }

    /// An entity's inline policy document, or NotFound (`what` = "inline policy").
    pub fn inline_policy(&self, kind: EntityKind, name: &str, policy: &str) -> Result<String> {
        self.meta.read(|tx| {
            let id = entity_id(tx, kind, name)?;
            tx.prepare_cached("SELECT document FROM iam_inline_policies WHERE entity_id = ?1 AND name = ?2")
                .and_then(|mut s| s.query_row([&id, policy], |r| r.get(0)).optional())
                .map_err(StoreError::sqlite("read inline policy"))?
                .ok_or_else(|| StoreError::NotFound { what: "inline policy", name: policy.to_owned() })
        })
    }

    pub fn delete_inline_policy(&self, kind: EntityKind, name: &str, policy: &str) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, kind, name)?;
            let n = tx
                .prepare_cached("DELETE FROM iam_inline_policies WHERE entity_id = ?1 AND name = ?2")
                .and_then(|mut s| s.execute([&id, policy]))
                .map_err(StoreError::sqlite("delete inline policy"))?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "inline policy", name: policy.to_owned() });
            }
            Ok(())
        })
    }

    /// The names of an entity's inline policies, sorted.
    pub fn inline_policy_names(&self, kind: EntityKind, name: &str) -> Result<Vec<String>> {
        self.meta.read(|tx| {
            let id = entity_id(tx, kind, name)?;
            tx.prepare_cached("SELECT name FROM iam_inline_policies WHERE entity_id = ?1 ORDER BY name")
                .and_then(|mut s| s.query_map([&id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>())
                .map_err(StoreError::sqlite("list inline policies"))
        })
    }

    /// Which IAM writes have finished; a cache of anything read from the IAM tables (access keys,
    /// sessions, compiled policies) is valid while this is unchanged.
    pub fn iam_generation(&self) -> u64 {
        self.iam_generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A write transaction on the IAM tables; bumps [`Self::iam_generation`] after it, committed or not.
    pub(crate) fn iam_write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let result = self.meta.write(f);
        self.iam_generation.fetch_add(1, std::sync::atomic::Ordering::Release);
        result
    }
}

#[cfg(test)]
mod tests;
