//! AWS's policy evaluation logic over compiled documents.

use super::context::RequestContext;
use super::document::{Effect, PolicyDocument, Statement};
use super::principal::Match;

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
        let who = match &ctx.principal.kind {
            _ if !ctx.principal.arn.is_empty() => ctx.principal.arn.as_str(),
            super::PrincipalKind::Service { name } => name.as_str(),
            super::PrincipalKind::Federated { provider } => provider.as_str(),
            _ => "anonymous",
        };
        let (action, resource) = (&ctx.action, &ctx.resource);
        let why = match self {
            Decision::Allow(_) => return None,
            Decision::ExplicitDeny(at) => {
                let kind = match at.source {
                    PolicySource::Identity(_) => "an identity-based policy",
                    PolicySource::Resource => "a resource-based policy",
                    PolicySource::Boundary => "a permissions boundary",
                    PolicySource::Session(_) => "a session policy",
                };
                format!("with an explicit deny in {kind}")
            }
            Decision::ImplicitDeny(reason) => {
                let kind = match reason {
                    DenyReason::NoIdentityAllow => "identity-based policy",
                    DenyReason::NoResourceAllow => "resource-based policy",
                    DenyReason::NoBoundaryAllow => "permissions boundary",
                    DenyReason::NoSessionAllow => "session policy",
                };
                format!("because no {kind} allows the {action} action")
            }
        };
        Some(format!("User: {who} is not authorized to perform: {action} on resource: {resource} {why}"))
    }
}

/// Decides one request: an explicit deny in any applicable policy wins; otherwise an allow from an
/// identity-based policy (within the boundary and session policies, if any) or from the resource's
/// policy; otherwise an implicit deny.
///
/// Same-account rules: a resource policy allow that names the principal itself (its own ARN, or `*`)
/// grants access on its own, whatever its boundary and session policies; one that names a session's
/// role ARN grants within the session policies and boundary; one that names only the principal's
/// account (`arn:aws:iam::<acct>:root` or the bare id) delegates to the account, so the principal's
/// identity policies must allow. Cross-account requests need both an identity and a resource allow.
/// Services and anonymous callers (no account) are allowed only by a resource policy.
/// Root is decided like any principal; callers that give root full rights do not call this.
pub fn evaluate(policies: &Policies<'_>, ctx: &RequestContext) -> Decision {
    let action = ctx.action.as_str().to_lowercase();
    let service = action.split_once(':').map_or("", |(s, _)| s);
    let name_start = action.split_once(':').and_then(|(_, n)| n.bytes().next()).filter(u8::is_ascii);
    let request = Request { ctx, action: &action, service, name_start };

    // 1. An explicit deny anywhere wins.
    for (source, doc) in applicable(policies) {
        if let Some(statement) = request.first(doc, Effect::Deny) {
            return Decision::ExplicitDeny(StatementRef { source, statement: statement.0 });
        }
    }

    // 2. Allows.
    let identity = policies.identity.iter().enumerate().find_map(|(i, doc)| {
        request
            .first(doc, Effect::Allow)
            .map(|(statement, _)| StatementRef { source: PolicySource::Identity(i), statement })
    });
    let resource = policies.resource.and_then(|doc| {
        request.best(doc).map(|(statement, how)| (StatementRef { source: PolicySource::Resource, statement }, how))
    });
    let boundary_allows = policies.boundary.is_none_or(|doc| request.first(doc, Effect::Allow).is_some());
    let session_allows =
        policies.session.is_none_or(|docs| docs.iter().any(|doc| request.first(doc, Effect::Allow).is_some()));

    let who = &ctx.principal;
    // Services and anonymous callers have no identity policies: only a resource policy can grant.
    if who.account.is_empty() {
        return match resource {
            Some((at, _)) => Decision::Allow(at),
            None => Decision::ImplicitDeny(DenyReason::NoResourceAllow),
        };
    }
    let same_account = ctx.resource_account().is_none_or(|acct| acct == who.account);
    // The identity side: an identity allow, within the boundary and the session policies.
    let identity_side = match identity {
        None => Err(DenyReason::NoIdentityAllow),
        Some(_) if !boundary_allows => Err(DenyReason::NoBoundaryAllow),
        Some(_) if !session_allows => Err(DenyReason::NoSessionAllow),
        Some(at) => Ok(at),
    };
    if same_account {
        match resource {
            // Naming the principal itself (its own ARN): granted, whatever the boundary or session policies.
            Some((at, Match::Direct)) => return Decision::Allow(at),
            // Naming a session's role: the session's own limits still apply.
            Some((at, Match::Role)) if boundary_allows && session_allows => return Decision::Allow(at),
            // Naming only the account delegates to the identity side, below.
            _ => {}
        }
        match identity_side {
            Ok(at) => Decision::Allow(at),
            Err(reason) => Decision::ImplicitDeny(reason),
        }
    } else {
        // Across accounts both sides must allow.
        match (identity_side, resource) {
            (Err(reason), _) => Decision::ImplicitDeny(reason),
            (Ok(_), None) => Decision::ImplicitDeny(DenyReason::NoResourceAllow),
            (Ok(at), Some(_)) => Decision::Allow(at),
        }
    }
}

/// Every policy that applies, with where it came from.
fn applicable<'a>(policies: &'a Policies<'a>) -> impl Iterator<Item = (PolicySource, &'a PolicyDocument)> + 'a {
    let identity = policies.identity.iter().enumerate().map(|(i, d)| (PolicySource::Identity(i), d));
    let resource = policies.resource.map(|d| (PolicySource::Resource, d));
    let boundary = policies.boundary.map(|d| (PolicySource::Boundary, d));
    let session = policies.session.unwrap_or(&[]).iter().enumerate().map(|(i, d)| (PolicySource::Session(i), d));
    identity.chain(resource).chain(boundary).chain(session)
}

/// A request prepared for matching: its action folded once.
struct Request<'a> {
    ctx: &'a RequestContext,
    action: &'a str,
    /// The action's service prefix, lowercased: only statements that can name it are looked at.
    service: &'a str,
    /// The first byte of the action's name, lowercased, when ASCII (see `Statement::name_starts`).
    name_start: Option<u8>,
}

impl Request<'_> {
    /// The first statement of `effect` that applies, with how the principal matched.
    fn first(&self, doc: &PolicyDocument, effect: Effect) -> Option<(usize, Match)> {
        doc.candidates(self.service).find_map(|(i, st)| {
            if st.effect != effect {
                return None;
            }
            let how = self.principal(st);
            (how != Match::No && self.applies(st)).then_some((i, how))
        })
    }

    /// The Allow statement of a resource policy that matches the principal best.
    fn best(&self, doc: &PolicyDocument) -> Option<(usize, Match)> {
        let mut best: Option<(usize, Match)> = None;
        for (i, st) in doc.candidates(self.service) {
            if st.effect != Effect::Allow {
                continue;
            }
            let how = self.principal(st);
            if how > best.map_or(Match::No, |b| b.1) && self.applies(st) {
                best = Some((i, how));
                if how == Match::Direct {
                    break;
                }
            }
        }
        best
    }

    fn principal(&self, st: &Statement) -> Match {
        match &st.principals {
            // Identity, boundary and session policies apply to their principal.
            None => Match::Direct,
            Some(p) if st.not_principal => {
                if p.excludes(&self.ctx.principal) {
                    Match::No
                } else {
                    Match::Direct
                }
            }
            Some(p) => p.matches(&self.ctx.principal),
        }
    }

    /// Whether the statement's action, resource and conditions match (its principal aside).
    fn applies(&self, st: &Statement) -> bool {
        let vars = self.ctx as &dyn crate::policy::pattern::Variables;
        let action = match (st.name_starts, self.name_start) {
            // No pattern can match an action name starting with this character.
            (Some(mask), Some(b)) if mask & (1u128 << b) == 0 => false,
            _ => st.actions.iter().any(|(first, p)| {
                // A byte compare first: most patterns of a statement start unlike the action's name.
                (first.is_none() || *first == self.name_start) && p.matches(self.action, vars) == Some(true)
            }),
        };
        if action == st.not_action {
            return false;
        }
        if let Some(resources) = &st.resources {
            let hit = resources.iter().any(|p| p.matches(&self.ctx.resource, vars) == Some(true));
            if hit == st.not_resource {
                return false;
            }
        }
        st.conditions.iter().all(|c| c.holds(self.ctx))
    }
}
