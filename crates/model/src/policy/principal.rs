//! `Principal` / `NotPrincipal` of resource and trust policies, compiled.

use serde_json::Value;

use super::context::{Principal, PrincipalKind};
use super::error::PolicyError;

/// One entry of a `Principal` element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous callers included.
    Anyone,
    /// An account (its id, or `arn:aws:iam::<id>:root`): delegates to the account's own policies.
    Account(String),
    /// A user, role, assumed-role session or federated user ARN.
    Arn(String),
    Service(String),
    Federated(String),
    CanonicalUser(String),
}

/// How a principal matched a statement's `Principal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Match {
    No,
    /// Only through its account: in the same account this grants nothing by itself (the principal's
    /// identity policies must allow), as AWS treats a resource policy naming the account.
    Account,
    /// Named through its role's ARN: the session's policies and boundary still limit the grant.
    Role,
    /// Named itself (its own ARN, `*`, its service or provider).
    Direct,
}

#[derive(Debug, Clone)]
pub(crate) struct Principals {
    entries: Vec<Entry>,
}

impl Principals {
    pub(crate) fn compile(value: &Value) -> Result<Principals, PolicyError> {
        let mut entries = Vec::new();
        match value {
            Value::String(s) if s == "*" => entries.push(Entry::Anyone),
            Value::String(s) => return Err(PolicyError::Principal { principal: s.clone() }),
            Value::Object(types) => {
                for (kind, values) in types {
                    let values: Vec<&Value> = match values {
                        Value::Array(items) => items.iter().collect(),
                        one => vec![one],
                    };
                    for v in values {
                        let Value::String(s) = v else { return Err(PolicyError::Syntax) };
                        let bad = || PolicyError::Principal { principal: s.clone() };
                        entries.push(match kind.as_str() {
                            "AWS" => aws_entry(s).ok_or_else(bad)?,
                            "Service" if !s.is_empty() => Entry::Service(s.clone()),
                            "Federated" if !s.is_empty() => Entry::Federated(s.clone()),
                            "CanonicalUser" if !s.is_empty() => Entry::CanonicalUser(s.clone()),
                            _ => return Err(bad()),
                        });
                    }
                }
            }
            _ => return Err(PolicyError::Syntax),
        }
        if entries.is_empty() {
            return Err(PolicyError::EmptyField { field: "Principal" });
        }
        Ok(Principals { entries })
    }

    /// How well `who` matches these entries (the best of them).
    pub(crate) fn matches(&self, who: &Principal) -> Match {
        self.entries.iter().map(|e| entry_match(e, who)).max().unwrap_or(Match::No)
    }

    /// For `NotPrincipal`: whether `who` is excluded. AWS checks every identity in the principal's
    /// chain (its account, its role, its session), so a caller is excluded only when each one is listed:
    /// a statement excluding only a user's ARN still applies to that user through its account.
    pub(crate) fn excludes(&self, who: &Principal) -> bool {
        let listed = |pred: &dyn Fn(&Entry) -> bool| self.entries.iter().any(pred);
        let account = || listed(&|e| matches!(e, Entry::Anyone) || matches!(e, Entry::Account(a) if *a == who.account));
        let own = || listed(&|e| matches!(e, Entry::Anyone) || matches!(e, Entry::Arn(a) if *a == who.arn));
        match &who.kind {
            PrincipalKind::Root => account(),
            PrincipalKind::User { .. } | PrincipalKind::FederatedUser { .. } => account() && own(),
            PrincipalKind::AssumedRole { role_arn, .. } => {
                account()
                    && own()
                    && listed(&|e| matches!(e, Entry::Anyone) || matches!(e, Entry::Arn(a) if a == role_arn))
            }
            PrincipalKind::Service { .. } | PrincipalKind::Federated { .. } | PrincipalKind::Anonymous => {
                self.matches(who) == Match::Direct
            }
        }
    }
}

/// An `AWS` principal: `*`, a 12-digit account id, or an IAM/STS ARN of a known kind.
fn aws_entry(s: &str) -> Option<Entry> {
    if s == "*" {
        return Some(Entry::Anyone);
    }
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Entry::Account(s.to_owned()));
    }
    let rest = s.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    if !partition.starts_with("aws") {
        return None;
    }
    let (service, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix(':')?; // IAM and STS ARNs have no region
    let (account, resource) = rest.split_once(':')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) || s.contains('*') {
        return None;
    }
    let ok = match service {
        "iam" => resource == "root" || resource.starts_with("user/") || resource.starts_with("role/"),
        "sts" => resource.starts_with("assumed-role/") || resource.starts_with("federated-user/"),
        _ => false,
    };
    if !ok {
        return None;
    }
    Some(if resource == "root" { Entry::Account(account.to_owned()) } else { Entry::Arn(s.to_owned()) })
}

fn entry_match(entry: &Entry, who: &Principal) -> Match {
    let kind = &who.kind;
    match entry {
        Entry::Anyone => Match::Direct,
        Entry::Account(a) if *a == who.account && !who.account.is_empty() => {
            // The root user is its account.
            if matches!(kind, PrincipalKind::Root) { Match::Direct } else { Match::Account }
        }
        Entry::Arn(a) if *a == who.arn => Match::Direct,
        Entry::Arn(a) => match kind {
            PrincipalKind::AssumedRole { role_arn, .. } if a == role_arn => Match::Role,
            _ => Match::No,
        },
        Entry::Service(s) => match kind {
            PrincipalKind::Service { name } if name == s => Match::Direct,
            _ => Match::No,
        },
        Entry::Federated(f) => match kind {
            PrincipalKind::Federated { provider } if provider == f => Match::Direct,
            _ => Match::No,
        },
        Entry::Account(_) | Entry::CanonicalUser(_) => Match::No,
    }
}
