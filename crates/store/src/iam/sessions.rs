//! STS sessions: temporary credentials from AssumeRole and GetSessionToken, kept until they expire.

use rusqlite::{OptionalExtension as _, params};

use crate::db::Store;
use crate::error::{Result, StoreError};

/// Whose session it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionPrincipal {
    /// AssumeRole: the role's id and the session's name.
    Role { role_id: String, session_name: String },
    /// GetSessionToken: the user's id.
    User { user_id: String },
}

#[derive(Clone, PartialEq, Eq)]
pub struct StsSession {
    pub access_key_id: String,
    pub secret: String,
    pub session_token: String,
    pub principal: SessionPrincipal,
    /// The session policy AssumeRole was given (`Policy`), which intersects the role's.
    pub session_policy: Option<String>,
    /// Session tags, a JSON object of strings.
    pub tags: String,
    pub created_ms: i64,
    pub expires_ms: i64,
}

// By hand, so that the secret and token never reach a log line through `{:?}`.
impl std::fmt::Debug for StsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsSession")
            .field("access_key_id", &self.access_key_id)
            .field("principal", &self.principal)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub fn create_session(&self, session: &StsSession) -> Result<()> {
        let (principal_id, session_name) = match &session.principal {
            SessionPrincipal::Role { role_id, session_name } => (role_id.as_str(), Some(session_name.as_str())),
            SessionPrincipal::User { user_id } => (user_id.as_str(), None),
        };
        self.iam_write(|tx| {
            tx.prepare_cached(
                "INSERT INTO sts_sessions (access_key_id, secret, session_token, principal_id, session_name,
                     session_policy, tags, created_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    session.access_key_id,
                    session.secret,
                    session.session_token,
                    principal_id,
                    session_name,
                    session.session_policy,
                    session.tags,
                    session.created_ms,
                    session.expires_ms
                ])
            })
            .map_err(StoreError::sqlite("insert session"))?;
            Ok(())
        })
    }

    /// A session by its access key id, expired or not (the caller tells the two apart, since an expired
    /// one is answered `ExpiredToken`, not as unknown).
    pub fn session(&self, access_key_id: &str) -> Result<Option<StsSession>> {
        self.meta.read(|tx| {
            tx.prepare_cached(
                "SELECT secret, session_token, principal_id, session_name, session_policy, tags, created_ms,
                     expires_ms
                 FROM sts_sessions WHERE access_key_id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([access_key_id], |r| {
                    let principal_id: String = r.get(2)?;
                    let session_name: Option<String> = r.get(3)?;
                    let principal = match session_name {
                        Some(session_name) => SessionPrincipal::Role { role_id: principal_id, session_name },
                        None => SessionPrincipal::User { user_id: principal_id },
                    };
                    Ok(StsSession {
                        access_key_id: access_key_id.to_owned(),
                        secret: r.get(0)?,
                        session_token: r.get(1)?,
                        principal,
                        session_policy: r.get(4)?,
                        tags: r.get(5)?,
                        created_ms: r.get(6)?,
                        expires_ms: r.get(7)?,
                    })
                })
                .optional()
            })
            .map_err(StoreError::sqlite("read session"))
        })
    }

    /// Forgets sessions that expired before `before_ms` (kept a while past expiry so that their use is
    /// still answered `ExpiredToken`). Returns how many went. No principal changes, so the IAM
    /// generation is left alone and caches of live keys stay.
    pub fn expire_sessions(&self, before_ms: i64) -> Result<usize> {
        self.meta.write(|tx| {
            tx.prepare_cached("DELETE FROM sts_sessions WHERE expires_ms < ?1")
                .and_then(|mut s| s.execute([before_ms]))
                .map_err(StoreError::sqlite("expire sessions"))
        })
    }
}
