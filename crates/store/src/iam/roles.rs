//! IAM roles: trust policy, description, maximum session duration, tags.

use nimbus_model::iam::{IamPath, IamTags, MaxSessionDuration, RoleName};
use rusqlite::{OptionalExtension as _, Row, params};

use super::{EntityKind, conflict, count, entity_id, parse_tags, tags_json};
use crate::db::Store;
use crate::error::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamRole {
    pub id: String,
    pub name: RoleName,
    pub path: IamPath,
    pub created_ms: i64,
    /// The trust policy (AssumeRolePolicyDocument) as the caller sent it.
    pub trust_policy: String,
    pub description: Option<String>,
    pub max_session: MaxSessionDuration,
    pub tags: IamTags,
}

#[derive(Debug, Clone)]
pub struct NewRole {
    pub id: String,
    pub name: RoleName,
    pub path: IamPath,
    pub trust_policy: String,
    pub description: Option<String>,
    pub max_session: MaxSessionDuration,
    pub tags: IamTags,
    pub now_ms: i64,
}

/// What UpdateRole, UpdateAssumeRolePolicy and the tag operations change; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct RoleUpdate {
    pub trust_policy: Option<String>,
    pub description: Option<String>,
    pub max_session: Option<MaxSessionDuration>,
    pub tags: Option<IamTags>,
}

const COLUMNS: &str = "id, name, path, created_ms, trust_policy, description, max_session_s, tags";

type RawRole = (String, String, String, i64, String, Option<String>, i64, String);

fn row(r: &Row<'_>) -> rusqlite::Result<RawRole> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

fn to_role(raw: RawRole) -> Result<IamRole> {
    let (id, name, path, created_ms, trust_policy, description, max_session_s, tags) = raw;
    let bad = |e: nimbus_model::ValidationError| StoreError::corrupt("iam_roles", &id, e);
    Ok(IamRole {
        name: RoleName::parse(&name).map_err(bad)?,
        path: IamPath::parse(&path).map_err(bad)?,
        max_session: MaxSessionDuration::new(max_session_s).map_err(bad)?,
        tags: parse_tags("iam_roles", &id, &tags)?,
        created_ms,
        trust_policy,
        description,
        id,
    })
}

impl Store {
    pub fn create_role(&self, role: &NewRole) -> Result<IamRole> {
        self.iam_write(|tx| {
            if count(tx, "SELECT count(*) FROM iam_roles WHERE name = ?1", role.name.as_str())? > 0 {
                return Err(StoreError::Conflict { what: "role", name: role.name.to_string() });
            }
            tx.prepare_cached(&format!("INSERT INTO iam_roles ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"))
                .and_then(|mut s| {
                    s.execute(params![
                        role.id,
                        role.name.as_str(),
                        role.path.as_str(),
                        role.now_ms,
                        role.trust_policy,
                        role.description,
                        i64::from(role.max_session.get()),
                        tags_json(&role.tags)
                    ])
                })
                .map_err(StoreError::sqlite("insert role"))?;
            Ok(())
        })?;
        Ok(IamRole {
            id: role.id.clone(),
            name: role.name.clone(),
            path: role.path.clone(),
            created_ms: role.now_ms,
            trust_policy: role.trust_policy.clone(),
            description: role.description.clone(),
            max_session: role.max_session,
            tags: role.tags.clone(),
        })
    }

    pub fn get_role(&self, name: &RoleName) -> Result<IamRole> {
        self.meta.read(|tx| {
            tx.prepare_cached(&format!("SELECT {COLUMNS} FROM iam_roles WHERE name = ?1"))
                .and_then(|mut s| s.query_row([name.as_str()], row).optional())
                .map_err(StoreError::sqlite("read role"))?
                .map(to_role)
                .transpose()?
                .ok_or_else(|| StoreError::NotFound { what: "role", name: name.to_string() })
        })
    }

    /// A role by its unique id (AROA…), for sessions.
    pub fn role_by_id(&self, id: &str) -> Result<Option<IamRole>> {
        self.meta.read(|tx| {
            tx.prepare_cached(&format!("SELECT {COLUMNS} FROM iam_roles WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id], row).optional())
                .map_err(StoreError::sqlite("read role"))?
                .map(to_role)
                .transpose()
        })
    }

    pub fn list_roles(&self, path_prefix: &str) -> Result<Vec<IamRole>> {
        self.meta.read(|tx| {
            tx.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM iam_roles WHERE substr(path, 1, length(?1)) = ?1 ORDER BY name"
            ))
            .and_then(|mut s| s.query_map([path_prefix], row)?.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(StoreError::sqlite("list roles"))?
            .into_iter()
            .map(to_role)
            .collect()
        })
    }

    pub fn update_role(&self, name: &RoleName, update: &RoleUpdate) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, EntityKind::Role, name.as_str())?;
            tx.prepare_cached(
                "UPDATE iam_roles SET trust_policy = coalesce(?2, trust_policy),
                     description = coalesce(?3, description), max_session_s = coalesce(?4, max_session_s),
                     tags = coalesce(?5, tags)
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    update.trust_policy,
                    update.description,
                    update.max_session.map(|m| i64::from(m.get())),
                    update.tags.as_ref().map(tags_json)
                ])
            })
            .map_err(StoreError::sqlite("update role"))?;
            Ok(())
        })
    }

    /// Every execution role named by a function version, distinct, sorted.
    pub fn function_roles(&self) -> Result<Vec<String>> {
        self.meta.read(|tx| {
            tx.prepare_cached("SELECT DISTINCT role FROM function_versions ORDER BY role")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>())
                .map_err(StoreError::sqlite("list function roles"))
        })
    }

    /// DeleteRole: refused while the role has inline or attached policies. Its sessions end with it.
    pub fn delete_role(&self, name: &RoleName) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, EntityKind::Role, name.as_str())?;
            if count(tx, "SELECT count(*) FROM iam_inline_policies WHERE entity_id = ?1", &id)? > 0 {
                return Err(conflict("Cannot delete entity, must delete policies first."));
            }
            if count(tx, "SELECT count(*) FROM iam_attachments WHERE entity_id = ?1", &id)? > 0 {
                return Err(conflict("Cannot delete entity, must detach all policies first."));
            }
            tx.prepare_cached("DELETE FROM sts_sessions WHERE principal_id = ?1")
                .and_then(|mut s| s.execute([&id]))
                .map_err(StoreError::sqlite("delete role sessions"))?;
            tx.prepare_cached("DELETE FROM iam_roles WHERE id = ?1")
                .and_then(|mut s| s.execute([&id]))
                .map_err(StoreError::sqlite("delete role"))?;
            Ok(())
        })
    }
}
