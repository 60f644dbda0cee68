//! AWS's policy evaluation logic over compiled documents.

use super::context::RequestContext;
use super::document::PolicyDocument;

/// The policies that apply to one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policies<'a> {
    /// The principal's identity-based policies: inline and attached, its groups' for a user.
    pub identity: &'a [PolicyDocument],
    /// The resource's policy (a function's AddPermission statements; a role's trust policy for
    /// `sts:AssumeRole`).
    pub resource: Option<&'a PolicyDocument>,
    /// The principal's permissions boundary: when present, identity-based allows count only
    /// where it allows too.
    pub boundary: Option<&'a PolicyDocument>,
    /// The session's policies (AssumeRole's `Policy` and `PolicyArns`); `None` for a session without
    /// any, `Some(&[])` never happens in practice (a session with policies has at least one). When
    /// present, an allow counts only where one of them allows too.
    pub session: Option<&'a [PolicyDocument]>,
}

/// Which kind of policy a statement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySource {
    /// `Policies::identity[index]`.
    Identity(usize),
    Resource,
    Boundary,
    /// `Policies::session[index]`.
    Session(usize),
}

/// A statement that decided: its policy and its index within that policy's statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementRef {
    pub source: PolicySource,
    pub statement: usize,
}

/// Why a request was implicitly denied: which kind of policy did not allow it. This picks AWS's
/// message ("because no identity-based policy allows the … action").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// Neither an identity-based nor a resource-based policy allows it.
    NoIdentityAllow,
    /// A cross-account request that the resource's policy does not allow.
    NoResourceAllow,
    /// Allowed by identity policies but not by the permissions boundary.
    NoBoundaryAllow,
    /// Allowed by identity policies but not by the session policies.
    NoSessionAllow,
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the statement is the one that granted it (identity or resource policy).
    Allow(StatementRef),
    /// A `Deny` statement matched.
    ExplicitDeny(StatementRef),
    /// Nothing allowed it.
    ImplicitDeny(DenyReason),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// AWS's AccessDenied message for a denial, `None` when allowed:
    /// "User: `<principal arn>` is not authorized to perform: `<action>` on resource: `<resource>` because
    /// no identity-based policy allows the `<action>` action", or "… with an explicit deny in an
    /// identity-based policy", "… in a resource-based policy", "… because no session policy allows …",
    /// "… because no permissions boundary allows …", "… because no resource-based policy allows …".
    pub fn denial_message(&self, ctx: &RequestContext) -> Option<String> {
        let _ = ctx;
        todo!("policy: the evaluator")
    }
}

/// Decides one request: an explicit deny in any applicable policy wins; otherwise an allow from an
/// identity-based policy (within the boundary and session policies, if any) or from the resource's
/// policy; otherwise an implicit deny.
///
/// Same-account rules: a resource policy allow that names the principal (its ARN, its role's ARN, or
/// `*`) grants access on its own (within session policies); one that names only the principal's
/// account (`arn:aws:iam::<acct>:root` or the bare id) delegates to the account, so the principal's
/// identity policies must allow. Cross-account requests need both an identity and a resource allow.
/// Root is decided like any principal; callers that give root full rights do not call this.
pub fn evaluate(policies: &Policies<'_>, ctx: &RequestContext) -> Decision {
    let _ = (policies, ctx);
    todo!("policy: the evaluator")
}
