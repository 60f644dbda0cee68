//! A parsed, validated, compiled policy document.

use std::sync::Arc;

use super::error::PolicyError;

/// What a document is for; the grammar differs (a principal is required in resource and trust
/// policies and forbidden elsewhere; trust policies allow only STS assume actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Attached to a user, group or role (inline or managed); also a permissions boundary.
    Identity,
    /// Attached to a resource (a function's policy from AddPermission, a queue policy).
    Resource,
    /// A role's `AssumeRolePolicyDocument`.
    Trust,
    /// Passed to AssumeRole / GetFederationToken (`Policy`, or the documents behind `PolicyArns`).
    Session,
}

/// The policy language version. Policy variables are only substituted under `2012-10-17`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyVersion {
    V2012_10_17,
    /// Also what a document without `Version` is taken as.
    V2008_10_17,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

/// What callers may see of one statement (for messages and listings); the compiled matchers are private.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementInfo<'a> {
    pub sid: Option<&'a str>,
    pub effect: Effect,
}

/// A policy document that parsed and passed AWS's grammar checks, compiled for evaluation.
/// Cheap to clone (shared); build once per stored document version and keep it.
#[derive(Debug, Clone)]
pub struct PolicyDocument {
    inner: Arc<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    kind: PolicyKind,
    version: PolicyVersion,
    id: Option<String>,
    text: String,
}

impl PolicyDocument {
    /// Parses and validates `text` as a policy of `kind`, with AWS's `MalformedPolicyDocument`
    /// messages for what AWS refuses. Unknown action names are accepted, as AWS accepts them.
    /// Size limits are not checked here (see [`super::limits`]); hostile nesting and counts are.
    pub fn parse(kind: PolicyKind, text: &str) -> Result<PolicyDocument, PolicyError> {
        let _ = (kind, text);
        todo!("policy: the parser")
    }

    pub fn kind(&self) -> PolicyKind {
        self.inner.kind
    }

    pub fn version(&self) -> PolicyVersion {
        self.inner.version
    }

    /// The document's `Id`, if any.
    pub fn id(&self) -> Option<&str> {
        self.inner.id.as_deref()
    }

    /// The document exactly as given, for Get…Policy answers (AWS returns what was stored).
    pub fn text(&self) -> &str {
        &self.inner.text
    }

    /// Number of statements (a lone statement object counts as one).
    pub fn statement_count(&self) -> usize {
        todo!("policy: the parser")
    }

    /// The `index`th statement's Sid and Effect, in document order.
    pub fn statement(&self, index: usize) -> Option<StatementInfo<'_>> {
        let _ = index;
        todo!("policy: the parser")
    }
}
