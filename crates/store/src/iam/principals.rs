//! IAM users, their access keys, and groups with their members.

use nimbus_model::iam::{GroupName, IamPath, IamTags, UserName};
use rusqlite::{OptionalExtension as _, Row, params};

use super::{EntityKind, conflict, count, entity_id, limit, parse_tags, tags_json};
use crate::db::Store;
use crate::error::{Result, StoreError};

/// Access keys one user may have (IAM's quota).
pub const ACCESS_KEYS_PER_USER: i64 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamUser {
    pub id: String,
    pub name: UserName,
    pub path: IamPath,
    pub created_ms: i64,
    pub tags: IamTags,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub name: UserName,
    pub path: IamPath,
    pub tags: IamTags,
    pub now_ms: i64,
}

/// An access key as ListAccessKeys shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub user_name: UserName,
    pub active: bool,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
}

/// GetAccessKeyLastUsed's facts: the owner, and when, where and for which service the key was last used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLastUsed {
    pub user: UserName,
    pub last_used_ms: Option<i64>,
    pub service: Option<String>,
    pub region: Option<String>,
}

/// What the SigV4 verifier needs to know about a user's access key.
#[derive(Clone)]
pub struct KeySecret {
    pub secret: String,
    pub active: bool,
    pub user: IamUser,
}

// By hand, so that the secret never reaches a log line through `{:?}`.
impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySecret").field("active", &self.active).field("user", &self.user).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamGroup {
    pub id: String,
    pub name: GroupName,
    pub path: IamPath,
    pub created_ms: i64,
}

const USER_COLUMNS: &str = "id, name, path, created_ms, tags";

fn user_row(r: &Row<'_>) -> rusqlite::Result<(String, String, String, i64, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_user((id, name, path, created_ms, tags): (String, String, String, i64, String)) -> Result<IamUser> {
    let bad = |e: nimbus_model::ValidationError| StoreError::corrupt("iam_users", &id, e);
    Ok(IamUser {
        name: UserName::parse(&name).map_err(bad)?,
        path: IamPath::parse(&path).map_err(bad)?,
        tags: parse_tags("iam_users", &id, &tags)?,
        created_ms,
        id,
    })
}

fn to_group((id, name, path, created_ms): (String, String, String, i64)) -> Result<IamGroup> {
    let bad = |e: nimbus_model::ValidationError| StoreError::corrupt("iam_groups", &id, e);
    Ok(IamGroup {
        name: GroupName::parse(&name).map_err(bad)?,
        path: IamPath::parse(&path).map_err(bad)?,
        created_ms,
        id,
    })
}

fn group_row(r: &Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

impl Store {
    pub fn create_user(&self, user: &NewUser) -> Result<IamUser> {
        self.iam_write(|tx| {
            let taken = count(tx, "SELECT count(*) FROM iam_users WHERE name = ?1", user.name.as_str())?;
            if taken > 0 {
                return Err(StoreError::Conflict { what: "user", name: user.name.to_string() });
            }
            tx.prepare_cached("INSERT INTO iam_users (id, name, path, created_ms, tags) VALUES (?1, ?2, ?3, ?4, ?5)")
                .and_then(|mut s| {
                    s.execute(params![
                        user.id,
                        user.name.as_str(),
                        user.path.as_str(),
                        user.now_ms,
                        tags_json(&user.tags)
                    ])
                })
                .map_err(StoreError::sqlite("insert user"))?;
            Ok(())
        })?;
        Ok(IamUser {
            id: user.id.clone(),
            name: user.name.clone(),
            path: user.path.clone(),
            created_ms: user.now_ms,
            tags: user.tags.clone(),
        })
    }

    pub fn get_user(&self, name: &UserName) -> Result<IamUser> {
        self.meta.read(|tx| {
            tx.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM iam_users WHERE name = ?1"))
                .and_then(|mut s| s.query_row([name.as_str()], user_row).optional())
                .map_err(StoreError::sqlite("read user"))?
                .map(to_user)
                .transpose()?
                .ok_or_else(|| StoreError::NotFound { what: "user", name: name.to_string() })
        })
    }

    /// A user by its unique id (AIDA…), for sessions.
    pub fn user_by_id(&self, id: &str) -> Result<Option<IamUser>> {
        self.meta.read(|tx| {
            tx.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM iam_users WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id], user_row).optional())
                .map_err(StoreError::sqlite("read user"))?
                .map(to_user)
                .transpose()
        })
    }

    /// Users whose path starts with `path_prefix`, sorted by name.
    pub fn list_users(&self, path_prefix: &str) -> Result<Vec<IamUser>> {
        self.meta.read(|tx| {
            tx.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM iam_users WHERE substr(path, 1, length(?1)) = ?1 ORDER BY name"
            ))
            .and_then(|mut s| s.query_map([path_prefix], user_row)?.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(StoreError::sqlite("list users"))?
            .into_iter()
            .map(to_user)
            .collect()
        })
    }

    /// UpdateUser: a new name and/or path.
    pub fn update_user(&self, name: &UserName, new_name: Option<&UserName>, new_path: Option<&IamPath>) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, EntityKind::User, name.as_str())?;
            if let Some(new_name) = new_name.filter(|n| !n.as_str().eq_ignore_ascii_case(name.as_str())) {
                let taken = count(tx, "SELECT count(*) FROM iam_users WHERE name = ?1", new_name.as_str())?;
                if taken > 0 {
                    return Err(StoreError::Conflict { what: "user", name: new_name.to_string() });
                }
            }
            tx.prepare_cached(
                "UPDATE iam_users SET name = coalesce(?2, name), path = coalesce(?3, path) WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, new_name.map(UserName::as_str), new_path.map(IamPath::as_str)]))
            .map_err(StoreError::sqlite("update user"))?;
            Ok(())
        })
    }

    pub fn set_user_tags(&self, name: &UserName, tags: &IamTags) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, EntityKind::User, name.as_str())?;
            tx.prepare_cached("UPDATE iam_users SET tags = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, tags_json(tags)]))
                .map_err(StoreError::sqlite("tag user"))?;
            Ok(())
        })
    }

    /// DeleteUser: refused (DeleteConflict, IAM's messages) while the user has access keys, inline or
    /// attached policies, or group memberships.
    pub fn delete_user(&self, name: &UserName) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, EntityKind::User, name.as_str())?;
            if count(tx, "SELECT count(*) FROM iam_access_keys WHERE user_id = ?1", &id)? > 0 {
                return Err(conflict("Cannot delete entity, must delete access keys first."));
            }
            if count(tx, "SELECT count(*) FROM iam_inline_policies WHERE entity_id = ?1", &id)? > 0 {
                return Err(conflict("Cannot delete entity, must delete policies first."));
            }
            if count(tx, "SELECT count(*) FROM iam_attachments WHERE entity_id = ?1", &id)? > 0 {
                return Err(conflict("Cannot delete entity, must detach all policies first."));
            }
            if count(tx, "SELECT count(*) FROM iam_group_members WHERE user_id = ?1", &id)? > 0 {
                return Err(conflict("Cannot delete entity, must remove users from group first."));
            }
            // Sessions a user made with GetSessionToken end with the user.
            tx.prepare_cached("DELETE FROM sts_sessions WHERE principal_id = ?1")
                .and_then(|mut s| s.execute([&id]))
                .map_err(StoreError::sqlite("delete user sessions"))?;
            tx.prepare_cached("DELETE FROM iam_users WHERE id = ?1")
                .and_then(|mut s| s.execute([&id]))
                .map_err(StoreError::sqlite("delete user"))?;
            Ok(())
        })
    }

    /// CreateAccessKey: at most [`ACCESS_KEYS_PER_USER`] per user (LimitExceeded).
    pub fn create_access_key(&self, user: &UserName, access_key_id: &str, secret: &str, now_ms: i64) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, EntityKind::User, user.as_str())?;
            if count(tx, "SELECT count(*) FROM iam_access_keys WHERE user_id = ?1", &id)? >= ACCESS_KEYS_PER_USER {
                return Err(limit(format!("Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}")));
            }
            tx.prepare_cached(
                "INSERT INTO iam_access_keys (access_key_id, user_id, secret, active, created_ms)
                 VALUES (?1, ?2, ?3, 1, ?4)",
            )
            .and_then(|mut s| s.execute(params![access_key_id, id, secret, now_ms]))
            .map_err(StoreError::sqlite("insert access key"))?;
            Ok(())
        })
    }

    pub fn list_access_keys(&self, user: &UserName) -> Result<Vec<AccessKeyRecord>> {
        self.meta.read(|tx| {
            let id = entity_id(tx, EntityKind::User, user.as_str())?;
            tx.prepare_cached(
                "SELECT access_key_id, active, created_ms, last_used_ms FROM iam_access_keys
                 WHERE user_id = ?1 ORDER BY created_ms, access_key_id",
            )
            .and_then(|mut s| {
                s.query_map([&id], |r| {
                    Ok(AccessKeyRecord {
                        access_key_id: r.get(0)?,
                        user_name: user.clone(),
                        active: r.get::<_, i64>(1)? == 1,
                        created_ms: r.get(2)?,
                        last_used_ms: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(StoreError::sqlite("list access keys"))
        })
    }

    /// UpdateAccessKey (Active/Inactive) and DeleteAccessKey: NotFound (`what` = "access key") unless
    /// the key belongs to `user`.
    pub fn set_access_key_active(&self, user: &UserName, access_key_id: &str, active: bool) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, EntityKind::User, user.as_str())?;
            let n = tx
                .prepare_cached("UPDATE iam_access_keys SET active = ?3 WHERE access_key_id = ?1 AND user_id = ?2")
                .and_then(|mut s| s.execute(params![access_key_id, id, i64::from(active)]))
                .map_err(StoreError::sqlite("update access key"))?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "access key", name: access_key_id.to_owned() });
            }
            Ok(())
        })
    }

    pub fn delete_access_key(&self, user: &UserName, access_key_id: &str) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, EntityKind::User, user.as_str())?;
            let n = tx
                .prepare_cached("DELETE FROM iam_access_keys WHERE access_key_id = ?1 AND user_id = ?2")
                .and_then(|mut s| s.execute(params![access_key_id, id]))
                .map_err(StoreError::sqlite("delete access key"))?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "access key", name: access_key_id.to_owned() });
            }
            Ok(())
        })
    }

    /// The user owning an access key, for DeleteAccessKey/UpdateAccessKey without `UserName`.
    pub fn access_key_owner(&self, access_key_id: &str) -> Result<Option<UserName>> {
        self.meta.read(|tx| {
            let name: Option<String> = tx
                .prepare_cached(
                    "SELECT u.name FROM iam_access_keys k JOIN iam_users u ON u.id = k.user_id
                     WHERE k.access_key_id = ?1",
                )
                .and_then(|mut s| s.query_row([access_key_id], |r| r.get(0)).optional())
                .map_err(StoreError::sqlite("find access key owner"))?;
            name.map(|n| UserName::parse(&n).map_err(|e| StoreError::corrupt("iam_users", n.clone(), e))).transpose()
        })
    }

    /// The secret and owner of a user's access key, for SigV4 verification only.
    pub fn access_key_secret(&self, access_key_id: &str) -> Result<Option<KeySecret>> {
        self.meta.read(|tx| {
            let row = tx
                .prepare_cached(
                    "SELECT k.secret, k.active, u.id, u.name, u.path, u.created_ms, u.tags
                     FROM iam_access_keys k JOIN iam_users u ON u.id = k.user_id WHERE k.access_key_id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([access_key_id], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?),
                        ))
                    })
                    .optional()
                })
                .map_err(StoreError::sqlite("read access key"))?;
            row.map(|(secret, active, user)| Ok(KeySecret { secret, active: active == 1, user: to_user(user)? }))
                .transpose()
        })
    }

    /// Records a key's last use (GetAccessKeyLastUsed).
    pub fn record_access_key_use(&self, access_key_id: &str, service: &str, region: &str, now_ms: i64) -> Result<()> {
        self.meta.write(|tx| {
            tx.prepare_cached(
                "UPDATE iam_access_keys SET last_used_ms = ?2, last_used_service = ?3, last_used_region = ?4
                 WHERE access_key_id = ?1",
            )
            .and_then(|mut s| s.execute(params![access_key_id, now_ms, service, region]))
            .map_err(StoreError::sqlite("record access key use"))?;
            Ok(())
        })
    }

    /// A key's owner and last use; NotFound when no user has it.
    pub fn access_key_last_used(&self, access_key_id: &str) -> Result<KeyLastUsed> {
        type Row = (String, Option<i64>, Option<String>, Option<String>);
        self.meta.read(|tx| {
            let row: Option<Row> = tx
                .prepare_cached(
                    "SELECT u.name, k.last_used_ms, k.last_used_service, k.last_used_region
                     FROM iam_access_keys k JOIN iam_users u ON u.id = k.user_id WHERE k.access_key_id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([access_key_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()
                })
                .map_err(StoreError::sqlite("read access key use"))?;
            let (name, ms, service, region) =
                row.ok_or_else(|| StoreError::NotFound { what: "access key", name: access_key_id.to_owned() })?;
            let name = UserName::parse(&name).map_err(|e| StoreError::corrupt("iam_users", name.clone(), e))?;
            Ok(KeyLastUsed { user: name, last_used_ms: ms, service, region })
        })
    }

    pub fn create_group(&self, id: &str, name: &GroupName, path: &IamPath, now_ms: i64) -> Result<IamGroup> {
        self.iam_write(|tx| {
            if count(tx, "SELECT count(*) FROM iam_groups WHERE name = ?1", name.as_str())? > 0 {
                return Err(StoreError::Conflict { what: "group", name: name.to_string() });
            }
            tx.prepare_cached("INSERT INTO iam_groups (id, name, path, created_ms) VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut s| s.execute(params![id, name.as_str(), path.as_str(), now_ms]))
                .map_err(StoreError::sqlite("insert group"))?;
            Ok(())
        })?;
        Ok(IamGroup { id: id.to_owned(), name: name.clone(), path: path.clone(), created_ms: now_ms })
    }

    pub fn get_group(&self, name: &GroupName) -> Result<IamGroup> {
        self.meta.read(|tx| {
            tx.prepare_cached("SELECT id, name, path, created_ms FROM iam_groups WHERE name = ?1")
                .and_then(|mut s| s.query_row([name.as_str()], group_row).optional())
                .map_err(StoreError::sqlite("read group"))?
                .map(to_group)
                .transpose()?
                .ok_or_else(|| StoreError::NotFound { what: "group", name: name.to_string() })
        })
    }

    pub fn list_groups(&self, path_prefix: &str) -> Result<Vec<IamGroup>> {
        self.meta.read(|tx| {
            tx.prepare_cached(
                "SELECT id, name, path, created_ms FROM iam_groups WHERE substr(path, 1, length(?1)) = ?1 ORDER BY name",
            )
            .and_then(|mut s| s.query_map([path_prefix], group_row)?.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(StoreError::sqlite("list groups"))?
            .into_iter()
            .map(to_group)
            .collect()
        })
    }

    /// DeleteGroup: refused while it has members or policies.
    pub fn delete_group(&self, name: &GroupName) -> Result<()> {
        self.iam_write(|tx| {
            let id = entity_id(tx, EntityKind::Group, name.as_str())?;
            if count(tx, "SELECT count(*) FROM iam_group_members WHERE group_id = ?1", &id)? > 0 {
                return Err(conflict("Cannot delete entity, must remove users from group first."));
            }
            if count(tx, "SELECT count(*) FROM iam_inline_policies WHERE entity_id = ?1", &id)? > 0 {
                return Err(conflict("Cannot delete entity, must delete policies first."));
            }
            if count(tx, "SELECT count(*) FROM iam_attachments WHERE entity_id = ?1", &id)? > 0 {
                return Err(conflict("Cannot delete entity, must detach all policies first."));
            }
            tx.prepare_cached("DELETE FROM iam_groups WHERE id = ?1")
                .and_then(|mut s| s.execute([&id]))
                .map_err(StoreError::sqlite("delete group"))?;
            Ok(())
        })
    }

    /// AddUserToGroup (a no-op when already a member) and RemoveUserFromGroup.
    pub fn set_group_member(&self, group: &GroupName, user: &UserName, member: bool) -> Result<()> {
        self.iam_write(|tx| {
            let group_id = entity_id(tx, EntityKind::Group, group.as_str())?;
            let user_id = entity_id(tx, EntityKind::User, user.as_str())?;
            let sql = if member {
                "INSERT OR IGNORE INTO iam_group_members (group_id, user_id) VALUES (?1, ?2)"
            } else {
                "DELETE FROM iam_group_members WHERE group_id = ?1 AND user_id = ?2"
            };
            let n = tx
                .prepare_cached(sql)
                .and_then(|mut s| s.execute([&group_id, &user_id]))
                .map_err(StoreError::sqlite("change group membership"))?;
            if !member && n == 0 {
                return Err(StoreError::NotFound { what: "group member", name: user.to_string() });
            }
            Ok(())
        })
    }

    /// GetGroup's users, sorted by name.
    pub fn group_members(&self, group: &GroupName) -> Result<Vec<IamUser>> {
        self.meta.read(|tx| {
            let id = entity_id(tx, EntityKind::Group, group.as_str())?;
            tx.prepare_cached(
                "SELECT u.id, u.name, u.path, u.created_ms, u.tags FROM iam_group_members m
                 JOIN iam_users u ON u.id = m.user_id WHERE m.group_id = ?1 ORDER BY u.name",
            )
            .and_then(|mut s| s.query_map([&id], user_row)?.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(StoreError::sqlite("list group members"))?
            .into_iter()
            .map(to_user)
            .collect()
        })
    }

    pub fn groups_for_user(&self, user: &UserName) -> Result<Vec<IamGroup>> {
        self.meta.read(|tx| {
            let id = entity_id(tx, EntityKind::User, user.as_str())?;
            tx.prepare_cached(
                "SELECT g.id, g.name, g.path, g.created_ms FROM iam_group_members m
                 JOIN iam_groups g ON g.id = m.group_id WHERE m.user_id = ?1 ORDER BY g.name",
            )
            .and_then(|mut s| s.query_map([&id], group_row)?.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(StoreError::sqlite("list groups for user"))?
            .into_iter()
            .map(to_group)
            .collect()
        })
    }
}
