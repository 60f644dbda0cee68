//! IAM policies: parsing, validation and evaluation, pure (no IO, no clock: the caller passes the time
//! as `aws:CurrentTime` in the request context).
//!
//! The other side is whoever wrote the policy text: an IAM user calling `PutRolePolicy`,
//! `CreatePolicy`, `AssumeRole` (session policies), or `AddPermission` (a function's resource policy).
//! None of it is trusted: [`PolicyDocument::parse`] checks AWS's grammar and answers with AWS's
//! `MalformedPolicyDocument` messages ([`PolicyError`]), then compiles the document once (wildcard
//! patterns pre-split, CIDRs, numbers and dates parsed), so [`evaluate`] does no parsing of policies.
//!
//! Evaluation follows AWS's policy evaluation logic: an explicit deny in any policy wins; otherwise the
//! request is allowed by an identity-based policy or a resource-based policy (for a principal of the
//! resource's own account), within the permissions boundary and session policies when there are any;
//! otherwise it is implicitly denied. [`Decision`] says which statement decided, so the caller can
//! answer with AWS's "User: … is not authorized to perform: … because …" message.
//!
//! Size limits are the caller's to check (they depend on where a document is stored); [`limits`]
//! holds AWS's numbers and [`chars_without_whitespace`] counts the way IAM counts.

mod condition;
mod context;
mod document;
mod error;
mod evaluate;
mod pattern;
mod principal;

pub use context::{Action, ContextValues, Principal, PrincipalKind, RequestContext};
pub use document::{Effect, PolicyDocument, PolicyKind, PolicyVersion, StatementInfo};
pub use error::PolicyError;
pub use evaluate::{Decision, DenyReason, Policies, PolicySource, StatementRef, evaluate};

/// AWS's size limits for policy documents, in characters not counting whitespace
/// (see [`chars_without_whitespace`]), except where noted.
pub mod limits {
    /// A customer managed policy (CreatePolicy, CreatePolicyVersion).
    pub const MANAGED_POLICY_CHARS: usize = 6_144;
    /// All inline policies of one user, together.
    pub const USER_INLINE_CHARS: usize = 2_048;
    /// All inline policies of one role, together.
    pub const ROLE_INLINE_CHARS: usize = 10_240;
    /// All inline policies of one group, together.
    pub const GROUP_INLINE_CHARS: usize = 5_120;
    /// A role's trust policy (AWS's default quota; it can be raised to 4,096).
    pub const TRUST_POLICY_CHARS: usize = 2_048;
    /// An inline session policy passed to AssumeRole and friends; this one counts every character.
    pub const SESSION_POLICY_CHARS: usize = 2_048;
    /// A Lambda function's resource-based policy (all its statements), in bytes.
    pub const LAMBDA_RESOURCE_POLICY_BYTES: usize = 20_480;
    /// Managed policies attached to one user, group or role.
    pub const ATTACHED_POLICIES: usize = 10;
    /// Managed session policies passed to one AssumeRole (`PolicyArns`).
    pub const SESSION_POLICY_ARNS: usize = 10;
}

/// A document's length as IAM counts it against its quotas: characters, not counting whitespace.
pub fn chars_without_whitespace(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

#[cfg(test)]
mod tests;
