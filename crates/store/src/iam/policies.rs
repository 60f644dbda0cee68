//! Customer managed policies and their versions, and the policies that apply to a principal.

use nimbus_model::iam::{IamPath, IamTags, PolicyName};
use rusqlite::{OptionalExtension as _, Row, Transaction, params};

use super::{conflict, count, limit, parse_tags, tags_json};
use crate::db::Store;
use crate::error::{Result, StoreError};

/// Versions one managed policy may have (IAM's quota).
pub const POLICY_VERSIONS_MAX: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicy {
    pub id: String,
    pub arn: String,
    pub name: PolicyName,
    pub path: IamPath,
    pub description: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub default_version: u32,
    pub attachment_count: u32,
    pub tags: IamTags,
}

#[derive(Debug, Clone)]
pub struct NewPolicy {
    pub id: String,
    pub arn: String,
    pub name: PolicyName,
    pub path: IamPath,
    pub description: Option<String>,
    pub document: String,
    pub tags: IamTags,
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub version: u32,
    pub document: String,
    pub created_ms: i64,
    pub is_default: bool,
}

/// One policy that applies to a principal: an inline document, a customer managed policy's default
/// version, or an AWS managed policy, which only the server can resolve (`document` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalPolicy {
    /// The managed policy's ARN, or `inline:<entity id>:<name>` for an inline policy.
    pub source: String,
    pub document: Option<String>,
}

const COLUMNS: &str = "p.id, p.arn, p.name, p.path, p.description, p.created_ms, p.updated_ms, p.default_version, \
     p.tags, (SELECT count(*) FROM iam_attachments a WHERE a.policy_arn = p.arn)";

type RawPolicy = (String, String, String, String, Option<String>, i64, i64, i64, String, i64);

fn row(r: &Row<'_>) -> rusqlite::Result<RawPolicy> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?))
}

fn to_policy(raw: RawPolicy) -> Result<ManagedPolicy> {
    let (id, arn, name, path, description, created_ms, updated_ms, default_version, tags, attachments) = raw;
    let bad = |e: nimbus_model::ValidationError| StoreError::corrupt("iam_policies", &id, e);
    Ok(ManagedPolicy {
        name: PolicyName::parse(&name).map_err(bad)?,
        path: IamPath::parse(&path).map_err(bad)?,
        tags: parse_tags("iam_policies", &id, &tags)?,
        default_version: default_version as u32,
        attachment_count: attachments as u32,
        arn,
        description,
        created_ms,
        updated_ms,
        id,
    })
}

fn policy_id(tx: &Transaction<'_>, arn: &str) -> Result<(String, i64, i64)> {
    tx.prepare_cached("SELECT id, default_version, last_version FROM iam_policies WHERE arn = ?1")
        .and_then(|mut s| s.query_row([arn], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
        .map_err(StoreError::sqlite("find policy"))?
        .ok_or_else(|| StoreError::NotFound { what: "policy", name: arn.to_owned() })
}

impl Store {
    pub fn create_policy(&self, policy: &NewPolicy) -> Result<ManagedPolicy> {
        self.iam_write(|tx| {
            if count(tx, "SELECT count(*) FROM iam_policies WHERE name = ?1", policy.name.as_str())? > 0 {
                return Err(StoreError::Conflict { what: "policy", name: policy.name.to_string() });
            }
            tx.prepare_cached(
                "INSERT INTO iam_policies (id, arn, name, path, description, created_ms, updated_ms,
                     default_version, last_version, tags)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1, 1, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    policy.id,
                    policy.arn,
                    policy.name.as_str(),
                    policy.path.as_str(),
                    policy.description,
                    policy.now_ms,
                    tags_json(&policy.tags)
                ])
            })
            .map_err(StoreError::sqlite("insert policy"))?;
            tx.prepare_cached(
                "INSERT INTO iam_policy_versions (policy_id, version, document, created_ms) VALUES (?1, 1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![policy.id, policy.document, policy.now_ms]))
            .map_err(StoreError::sqlite("insert policy version"))?;
            Ok(())
        })?;
        self.get_policy(&policy.arn)
    }

    pub fn get_policy(&self, arn: &str) -> Result<ManagedPolicy> {
        self.meta.read(|tx| {
            tx.prepare_cached(&format!("SELECT {COLUMNS} FROM iam_policies p WHERE p.arn = ?1"))
                .and_then(|mut s| s.query_row([arn], row).optional())
                .map_err(StoreError::sqlite("read policy"))?
                .map(to_policy)
                .transpose()?
                .ok_or_else(|| StoreError::NotFound { what: "policy", name: arn.to_owned() })
        })
    }

    /// Customer managed policies whose path starts with `path_prefix`, sorted by name.
    pub fn list_policies(&self, path_prefix: &str) -> Result<Vec<ManagedPolicy>> {
        self.meta.read(|tx| {
            tx.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM iam_policies p WHERE substr(p.path, 1, length(?1)) = ?1 ORDER BY p.name"
            ))
            .and_then(|mut s| s.query_map([path_prefix], row)?.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(StoreError::sqlite("list policies"))?
            .into_iter()
            .map(to_policy)
            .collect()
        })
    }

    /// How many entities a policy (customer or AWS managed) is attached to.
    pub fn attachment_count(&self, arn: &str) -> Result<u32> {
        self.meta
            .read(|tx| count(tx, "SELECT count(*) FROM iam_attachments WHERE policy_arn = ?1", arn).map(|n| n as u32))
    }

    /// DeletePolicy: refused while attached, or while it has versions besides the default.
    pub fn delete_policy(&self, arn: &str) -> Result<()> {
        self.iam_write(|tx| {
            let (id, _, _) = policy_id(tx, arn)?;
            if count(tx, "SELECT count(*) FROM iam_attachments WHERE policy_arn = ?1", arn)? > 0 {
                return Err(conflict("Cannot delete a policy attached to entities."));
            }
            if count(tx, "SELECT count(*) FROM iam_policy_versions WHERE policy_id = ?1", &id)? > 1 {
                return Err(conflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the \
                     policy's versions. The default version is deleted with the policy.",
                ));
            }
            tx.prepare_cached("DELETE FROM iam_policies WHERE id = ?1")
                .and_then(|mut s| s.execute([&id]))
                .map_err(StoreError::sqlite("delete policy"))?;
            Ok(())
        })
    }

    /// CreatePolicyVersion: at most [`POLICY_VERSIONS_MAX`] versions (LimitExceeded).
    pub fn create_policy_version(&self, arn: &str, document: &str, set_default: bool, now_ms: i64) -> Result<u32> {
        self.iam_write(|tx| {
            let (id, _, last) = policy_id(tx, arn)?;
            if count(tx, "SELECT count(*) FROM iam_policy_versions WHERE policy_id = ?1", &id)? >= POLICY_VERSIONS_MAX {
                return Err(limit(format!(
                    "A managed policy can have up to {POLICY_VERSIONS_MAX} versions. Before you create a new \
                     version, you must delete an existing version."
                )));
            }
            let version = last + 1;
            tx.prepare_cached(
                "INSERT INTO iam_policy_versions (policy_id, version, document, created_ms) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![id, version, document, now_ms]))
            .map_err(StoreError::sqlite("insert policy version"))?;
            tx.prepare_cached(
                "UPDATE iam_policies SET last_version = ?2, updated_ms = ?3,
                     default_version = CASE WHEN ?4 THEN ?2 ELSE default_version END
                 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, version, now_ms, set_default]))
            .map_err(StoreError::sqlite("update policy"))?;
            Ok(version as u32)
        })
    }

    pub fn get_policy_version(&self, arn: &str, version: u32) -> Result<PolicyVersion> {
        self.meta.read(|tx| {
            let (id, default, _) = policy_id(tx, arn)?;
            tx.prepare_cached(
                "SELECT document, created_ms FROM iam_policy_versions WHERE policy_id = ?1 AND version = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![id, version], |r| {
                    Ok(PolicyVersion {
                        version,
                        document: r.get(0)?,
                        created_ms: r.get(1)?,
                        is_default: i64::from(version) == default,
                    })
                })
                .optional()
            })
            .map_err(StoreError::sqlite("read policy version"))?
            .ok_or_else(|| StoreError::NotFound { what: "policy version", name: format!("v{version}") })
        })
    }

    /// A policy's versions, newest first, as ListPolicyVersions returns them.
    pub fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>> {
        self.meta.read(|tx| {
            let (id, default, _) = policy_id(tx, arn)?;
            tx.prepare_cached(
                "SELECT version, document, created_ms FROM iam_policy_versions WHERE policy_id = ?1 ORDER BY version DESC",
            )
            .and_then(|mut s| {
                s.query_map([&id], |r| {
                    let version: i64 = r.get(0)?;
                    Ok(PolicyVersion {
                        version: version as u32,
                        document: r.get(1)?,
                        created_ms: r.get(2)?,
                        is_default: version == default,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(StoreError::sqlite("list policy versions"))
        })
    }

    /// DeletePolicyVersion: the default version cannot be deleted (DeleteConflict).
    pub fn delete_policy_version(&self, arn: &str, version: u32) -> Result<()> {
        self.iam_write(|tx| {
            let (id, default, _) = policy_id(tx, arn)?;
            if i64::from(version) == default {
                return Err(conflict("Cannot delete the default version of a policy."));
            }
            let n = tx
                .prepare_cached("DELETE FROM iam_policy_versions WHERE policy_id = ?1 AND version = ?2")
                .and_then(|mut s| s.execute(params![id, version]))
                .map_err(StoreError::sqlite("delete policy version"))?;
            if n == 0 {
                return Err(StoreError::NotFound { what: "policy version", name: format!("v{version}") });
            }
            Ok(())
        })
    }

    pub fn set_default_policy_version(&self, arn: &str, version: u32, now_ms: i64) -> Result<()> {
        self.iam_write(|tx| {
            let (id, _, _) = policy_id(tx, arn)?;
            let exists = count(
                tx,
                &format!("SELECT count(*) FROM iam_policy_versions WHERE version = {version} AND policy_id = ?1"),
                &id,
            )?;
            if exists == 0 {
                return Err(StoreError::NotFound { what: "policy version", name: format!("v{version}") });
            }
            tx.prepare_cached("UPDATE iam_policies SET default_version = ?2, updated_ms = ?3 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, version, now_ms]))
                .map_err(StoreError::sqlite("set default policy version"))?;
            Ok(())
        })
    }

    /// Every policy that applies to the principal with unique id `id`: its inline policies and attached
    /// managed policies, and, for a user, those of each of its groups. One snapshot.
    pub fn principal_policies(&self, id: &str) -> Result<Vec<PrincipalPolicy>> {
        self.meta.read(|tx| {
            let mut entities = vec![id.to_owned()];
            entities.extend(
                tx.prepare_cached("SELECT group_id FROM iam_group_members WHERE user_id = ?1 ORDER BY group_id")
                    .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>())
                    .map_err(StoreError::sqlite("list groups of principal"))?,
            );
            let mut out = Vec::new();
            for entity in &entities {
                let inline = tx
                    .prepare_cached("SELECT name, document FROM iam_inline_policies WHERE entity_id = ?1 ORDER BY name")
                    .and_then(|mut s| {
                        s.query_map([entity], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(StoreError::sqlite("list inline policies of principal"))?;
                out.extend(inline.into_iter().map(|(name, document)| PrincipalPolicy {
                    source: format!("inline:{entity}:{name}"),
                    document: Some(document),
                }));
                let attached = tx
                    .prepare_cached(
                        "SELECT a.policy_arn, v.document FROM iam_attachments a
                         LEFT JOIN iam_policies p ON p.arn = a.policy_arn
                         LEFT JOIN iam_policy_versions v ON v.policy_id = p.id AND v.version = p.default_version
                         WHERE a.entity_id = ?1 ORDER BY a.policy_arn",
                    )
                    .and_then(|mut s| {
                        s.query_map([entity], |r| Ok(PrincipalPolicy { source: r.get(0)?, document: r.get(1)? }))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(StoreError::sqlite("list attached policies of principal"))?;
                out.extend(attached);
            }
            Ok(out)
        })
    }
}
