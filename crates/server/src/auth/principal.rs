//! Who signed a request, once its key is known: the root, an IAM user, an assumed-role session, or
//! (until execution roles replace them) a function environment's own session credential.

use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The account's root key pair: may do anything, never decided by policies.
    Root,
    /// An IAM user's access key, or a session it made with GetSessionToken.
    User { id: String, name: String, arn: String },
    /// An AssumeRole session.
    AssumedRole(Arc<RoleSession>),
    /// A function environment's session credential of today (fixed rights, see `api::session_refused`).
    Function,
}

/// An assumed role's session: `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSession {
    pub role_id: String,
    pub role_name: String,
    pub role_arn: String,
    pub session_name: String,
    pub arn: String,
    /// The session policy given to AssumeRole, which intersects the role's policies.
    pub session_policy: Option<String>,
}

impl Principal {
    /// The ARN GetCallerIdentity and AWS's denial messages name.
    pub fn arn(&self, account: &str) -> String {
        match self {
            Principal::Root | Principal::Function => format!("arn:aws:iam::{account}:root"),
            Principal::User { arn, .. } => arn.clone(),
            Principal::AssumedRole(session) => session.arn.clone(),
        }
    }

    /// GetCallerIdentity's `UserId`: the account for root, the user's id, `role id:session name`.
    pub fn user_id(&self, account: &str) -> String {
        match self {
            Principal::Root | Principal::Function => account.to_owned(),
            Principal::User { id, .. } => id.clone(),
            Principal::AssumedRole(session) => format!("{}:{}", session.role_id, session.session_name),
        }
    }
}
