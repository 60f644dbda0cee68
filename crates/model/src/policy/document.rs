//! A parsed, validated, compiled policy document.

use std::sync::Arc;

use serde_json::Value;

use super::condition::{self, Condition};
use super::error::PolicyError;
use super::pattern::Pattern;
use super::principal::Principals;

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
    statements: Vec<Statement>,
    index: ActionIndex,
}

/// Which statements can match an action of a service, so that evaluation looks only at those (a
/// principal's policies are mostly about other services). Indices are in document order.
#[derive(Debug, Default)]
struct ActionIndex {
    /// Lowercased service prefix → statements whose `Action` names that service literally.
    by_service: std::collections::HashMap<String, Vec<usize>>,
    /// Statements that may match any service: `NotAction`, `*`, a wildcard in the service prefix.
    always: Vec<usize>,
}

/// Bounds on hostile documents, far above what AWS's size limits let through (a 20 KB Lambda policy
/// cannot hold more), so no legitimate document meets them.
const STATEMENTS_MAX: usize = 1_000;
const VALUES_MAX: usize = 10_000;
const TEXT_BYTES_MAX: usize = 1 << 20;

/// One statement, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    /// `Action` (`negated`: false) or `NotAction` (true); patterns lowercased, each with the first
    /// character (lowercased ASCII) of the action names it can match, when that is fixed.
    pub(crate) actions: Vec<(Option<u8>, Pattern)>,
    pub(crate) not_action: bool,
    /// `Resource`/`NotResource`; `None` when absent (resource policies may leave it out: the policy is
    /// attached to its resource).
    pub(crate) resources: Option<Vec<Pattern>>,
    pub(crate) not_resource: bool,
    pub(crate) principals: Option<Principals>,
    pub(crate) not_principal: bool,
    pub(crate) conditions: Vec<Condition>,
    /// The lowercased service prefixes `Action` names; `None` when it may match any service.
    services: Option<Vec<String>>,
    /// The first characters (lowercased ASCII) an action's name can start with to match `Action`, as a
    /// bit set; `None` when any can (`NotAction`, a wildcard or non-ASCII first character). A cheap
    /// filter before the patterns, for statements about the request's own service.
    pub(crate) name_starts: Option<u128>,
}

impl PolicyDocument {
    /// Parses and validates `text` as a policy of `kind`, with AWS's `MalformedPolicyDocument`
    /// messages for what AWS refuses. Unknown action names are accepted, as AWS accepts them.
    /// Size limits are not checked here (see [`super::limits`]); hostile nesting and counts are.
    pub fn parse(kind: PolicyKind, text: &str) -> Result<PolicyDocument, PolicyError> {
        if text.len() > TEXT_BYTES_MAX {
            return Err(PolicyError::TooLarge);
        }
        let value: Value = serde_json::from_str(text).map_err(|_| PolicyError::Syntax)?;
        let Value::Object(top) = &value else { return Err(PolicyError::Syntax) };
        for key in top.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::UnknownField { field: key.clone() });
            }
        }
        let version = match top.get("Version") {
            None => PolicyVersion::V2008_10_17,
            Some(Value::String(v)) if v == "2012-10-17" => PolicyVersion::V2012_10_17,
            Some(Value::String(v)) if v == "2008-10-17" => PolicyVersion::V2008_10_17,
            Some(_) => return Err(PolicyError::Version),
        };
        let id = match top.get("Id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(PolicyError::Syntax),
        };
        let raw: Vec<&Value> = match top.get("Statement") {
            None => return Err(PolicyError::MissingField { field: "Statement" }),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => return Err(PolicyError::Syntax),
        };
        if raw.is_empty() {
            return Err(PolicyError::Syntax);
        }
        if raw.len() > STATEMENTS_MAX {
            return Err(PolicyError::TooLarge);
        }
        let variables = version == PolicyVersion::V2012_10_17;
        let mut budget = VALUES_MAX;
        let mut statements = Vec::with_capacity(raw.len());
        for value in raw {
            statements.push(compile_statement(kind, value, variables, &mut budget)?);
        }
        let mut sids: Vec<&str> =
            statements.iter().filter_map(|s| s.sid.as_deref()).filter(|s| !s.is_empty()).collect();
        sids.sort_unstable();
        if sids.windows(2).any(|w| w[0] == w[1]) {
            return Err(PolicyError::DuplicateSid);
        }
        let mut index = ActionIndex::default();
        for (i, statement) in statements.iter().enumerate() {
            match &statement.services {
                None => index.always.push(i),
                Some(services) => {
                    for service in services {
                        let list = index.by_service.entry(service.clone()).or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
            }
        }
        Ok(PolicyDocument { inner: Arc::new(Compiled { kind, version, id, text: text.to_owned(), statements, index }) })
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
        self.inner.statements.len()
    }

    /// The `index`th statement's Sid and Effect, in document order.
    pub fn statement(&self, index: usize) -> Option<StatementInfo<'_>> {
        self.inner.statements.get(index).map(|s| StatementInfo { sid: s.sid.as_deref(), effect: s.effect })
    }

    /// The statements that can match an action of `service` (lowercased), in document order.
    pub(crate) fn candidates<'a>(&'a self, service: &str) -> impl Iterator<Item = (usize, &'a Statement)> + 'a {
        let index = &self.inner.index;
        let listed = index.by_service.get(service).map_or(&[][..], Vec::as_slice);
        Merged { a: listed, b: &index.always }.map(move |i| (i, &self.inner.statements[i]))
    }
}

/// Two ascending index lists merged in order.
struct Merged<'a> {
    a: &'a [usize],
    b: &'a [usize],
}

impl Iterator for Merged<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let take_a = match (self.a.first(), self.b.first()) {
            (Some(x), Some(y)) => x < y,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let list = if take_a { &mut self.a } else { &mut self.b };
        let (first, rest) = list.split_first()?;
        *list = rest;
        Some(*first)
    }
}

/// A string or an array of strings, counted against `budget`.
fn strings<'a>(value: &'a Value, budget: &mut usize, field: &'static str) -> Result<Vec<&'a str>, PolicyError> {
    let out: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().map(|v| v.as_str().ok_or(PolicyError::Syntax)).collect::<Result<_, _>>()?,
        _ => return Err(PolicyError::Syntax),
    };
    if out.is_empty() {
        return Err(PolicyError::EmptyField { field });
    }
    *budget = budget.checked_sub(out.len()).ok_or(PolicyError::TooLarge)?;
    Ok(out)
}

fn compile_statement(
    kind: PolicyKind,
    value: &Value,
    variables: bool,
    budget: &mut usize,
) -> Result<Statement, PolicyError> {
    let Value::Object(fields) = value else { return Err(PolicyError::Syntax) };
    for key in fields.keys() {
        if !matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Principal"
                | "NotPrincipal"
                | "Condition"
        ) {
            return Err(PolicyError::UnknownField { field: key.clone() });
        }
    }
    let sid = match fields.get("Sid") {
        None => None,
        Some(Value::String(s)) => {
            // IAM's own documents (identity, session, trust) take alphanumeric Sids; resource policies
            // of other services (Lambda's AddPermission) take more.
            if kind != PolicyKind::Resource && !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(PolicyError::SidFormat);
            }
            Some(s.clone())
        }
        Some(_) => return Err(PolicyError::Syntax),
    };
    let effect = match fields.get("Effect") {
        None => return Err(PolicyError::MissingField { field: "Effect" }),
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(Value::String(e)) => return Err(PolicyError::Effect { effect: e.clone() }),
        Some(_) => return Err(PolicyError::Syntax),
    };

    let (action_value, not_action) = exclusive(fields, "Action", "NotAction")?;
    let Some(action_value) = action_value else { return Err(PolicyError::MissingField { field: "Action" }) };
    let mut actions = Vec::new();
    let mut services = Some(Vec::new());
    let mut name_starts = (!not_action).then_some(0u128);
    for action in strings(action_value, budget, "Action")? {
        // The name's first character, when the pattern fixes it (no wildcard before it).
        let first = action
            .split_once(':')
            .filter(|(vendor, _)| !vendor.contains(['*', '?']))
            .and_then(|(_, name)| name.bytes().next())
            .map(|b| b.to_ascii_lowercase())
            .filter(|b| b.is_ascii() && *b != b'*' && *b != b'?');
        match (&mut name_starts, first) {
            (Some(mask), Some(b)) => *mask |= 1u128 << b,
            _ => name_starts = None,
        }
        let vendor = action.split_once(':').map(|(v, _)| v.to_ascii_lowercase());
        match (&mut services, vendor) {
            (Some(list), Some(v)) if !not_action && !v.contains(['*', '?']) => list.push(v),
            _ => services = None,
        }
        if action != "*" && !action.split_once(':').is_some_and(|(vendor, name)| !vendor.is_empty() && !name.is_empty())
        {
            return Err(PolicyError::ActionVendor);
        }
        if kind == PolicyKind::Trust && !not_action && !trust_action(action) {
            return Err(PolicyError::TrustAction);
        }
        actions.push((first, Pattern::compile(action, true, false, true)));
    }

    let (resource_value, not_resource) = exclusive(fields, "Resource", "NotResource")?;
    let resources = match resource_value {
        None if matches!(kind, PolicyKind::Identity | PolicyKind::Session) => {
            return Err(PolicyError::MissingField { field: "Resource" });
        }
        None => None,
        Some(_) if kind == PolicyKind::Trust => {
            return Err(PolicyError::ProhibitedField { field: if not_resource { "NotResource" } else { "Resource" } });
        }
        Some(value) => {
            let mut patterns = Vec::new();
            for resource in strings(value, budget, "Resource")? {
                if resource != "*" && !(resource.starts_with("arn:") && resource.split(':').count() >= 6) {
                    return Err(PolicyError::ResourceFormat { resource: resource.to_owned() });
                }
                patterns.push(Pattern::compile(resource, true, variables, false));
            }
            Some(patterns)
        }
    };

    let (principal_value, not_principal) = exclusive(fields, "Principal", "NotPrincipal")?;
    let principals = match (kind, principal_value) {
        (PolicyKind::Identity | PolicyKind::Session, Some(_)) => return Err(PolicyError::PrincipalNotAllowed),
        (PolicyKind::Identity | PolicyKind::Session, None) => None,
        (_, None) => return Err(PolicyError::MissingField { field: "Principal" }),
        (_, Some(value)) => Some(Principals::compile(value)?),
    };

    let conditions = match fields.get("Condition") {
        None => Vec::new(),
        Some(block) => condition::compile(block, variables)?,
    };
    *budget = budget.checked_sub(conditions.len()).ok_or(PolicyError::TooLarge)?;

    Ok(Statement {
        sid,
        effect,
        actions,
        not_action,
        resources,
        not_resource,
        principals,
        not_principal,
        conditions,
        services,
        name_starts,
    })
}

/// The value of whichever of a mutually exclusive pair is present, and whether it is the second.
fn exclusive<'a>(
    fields: &'a serde_json::Map<String, Value>,
    first: &'static str,
    second: &'static str,
) -> Result<(Option<&'a Value>, bool), PolicyError> {
    match (fields.get(first), fields.get(second)) {
        (Some(_), Some(_)) => Err(PolicyError::BothFields { first, second }),
        (Some(v), None) => Ok((Some(v), false)),
        (None, Some(v)) => Ok((Some(v), true)),
        (None, None) => Ok((None, false)),
    }
}

/// The actions a trust policy may name: STS's assume and session-tagging actions (wildcards that can
/// only match those count too).
fn trust_action(action: &str) -> bool {
    let lower = action.to_ascii_lowercase();
    lower == "*"
        || lower == "sts:*"
        || lower.starts_with("sts:assumerole")
        || lower == "sts:tagsession"
        || lower == "sts:setsourceidentity"
        || lower == "sts:setcontext"
}
