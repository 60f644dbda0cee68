//! The identity policies of IAM principals, compiled once and kept per principal until the next IAM
//! write (`Store::iam_generation`), and the decision of a request by an IAM user or role session
//! against them with the policy evaluator (`nimbus_model::policy`). Root is never decided here: it may
//! do anything, as on AWS.
//!
//! What is trusted: the principal comes from a verified signature (`auth`); the documents were
//! validated when they were stored, and are parsed again here so that a damaged row is logged and
//! ignored (it then grants nothing) rather than trusted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_model::policy::{
    self, Action, Decision, Policies, PolicyDocument, PolicyKind, PrincipalKind, RequestContext,
};
use nimbus_store::Store;

use crate::api::iam::managed;
use crate::auth::Principal;

/// Principals whose compiled policies are kept; past this the cache starts over.
const CACHED_PRINCIPALS_MAX: usize = 4096;

/// A principal's compiled policies.
#[derive(Debug, Default)]
pub struct Compiled {
    pub identity: Vec<PolicyDocument>,
    /// The session policy of an assumed-role session, if it was given one.
    pub session: Option<Vec<PolicyDocument>>,
}

pub struct PolicyCache {
    store: Arc<Store>,
    account: String,
    cache: Mutex<(u64, HashMap<String, Arc<Compiled>>)>,
}

/// A request refused, with AWS's message; each protocol turns it into its own AccessDenied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    pub message: String,
}

impl PolicyCache {
    pub fn new(store: Arc<Store>, account: &str) -> Self {
        Self { store, account: account.to_owned(), cache: Mutex::new((0, HashMap::new())) }
    }

    /// The evaluator's view of a principal; `None` for root (never decided) and for a function's
    /// session credential of today (decided by its fixed rights elsewhere).
    pub fn policy_principal(&self, principal: &Principal) -> Option<policy::Principal> {
        let account = self.account.clone();
        match principal {
            Principal::Root | Principal::Function => None,
            Principal::User { id, name, arn } => Some(policy::Principal {
                arn: arn.clone(),
                account,
                user_id: id.clone(),
                kind: PrincipalKind::User { name: name.clone() },
            }),
            Principal::AssumedRole(session) => Some(policy::Principal {
                arn: session.arn.clone(),
                account,
                user_id: format!("{}:{}", session.role_id, session.session_name),
                kind: PrincipalKind::AssumedRole {
                    role_arn: session.role_arn.clone(),
                    session_name: session.session_name.clone(),
                },
            }),
        }
    }

    /// The compiled policies of a user or role session, from the cache while no IAM write happened.
    pub fn compiled(&self, principal: &Principal) -> Arc<Compiled> {
        let (key, entity, session_policy) = match principal {
            Principal::User { id, .. } => (id.clone(), id.as_str(), None),
            Principal::AssumedRole(s) => match &s.session_policy {
                Some(p) => (format!("{}\0{p}", s.role_id), s.role_id.as_str(), Some(p.as_str())),
                None => (s.role_id.clone(), s.role_id.as_str(), None),
            },
            Principal::Root | Principal::Function => return Arc::default(),
        };
        let generation = self.store.iam_generation();
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.0 == generation
                && let Some(found) = cache.1.get(&key)
            {
                return found.clone();
            }
        }
        let compiled = Arc::new(self.compile(entity, session_policy));
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.0 != generation || cache.1.len() >= CACHED_PRINCIPALS_MAX {
            *cache = (generation, HashMap::new());
        }
        cache.1.insert(key, compiled.clone());
        compiled
    }

    /// The compiled policies of the role with this ARN (a function's execution role), from the cache;
    /// none when the role does not exist (then nothing is allowed, as for a deleted role on AWS).
    pub fn role_by_arn(&self, role_arn: &str) -> Arc<Compiled> {
        let key = format!("arn\0{role_arn}");
        let generation = self.store.iam_generation();
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.0 == generation
                && let Some(found) = cache.1.get(&key)
            {
                return found.clone();
            }
        }
        let role = crate::execution_role::split_role_arn(role_arn, &self.account).and_then(|(path, name)| {
            match self.store.get_role(&name) {
                Ok(role) if role.path == path => Some(role),
                Ok(_) | Err(nimbus_store::StoreError::NotFound { .. }) => None,
                Err(error) => {
                    tracing::error!(%error, "reading an execution role failed; its session is granted nothing");
                    None
                }
            }
        });
        let compiled = Arc::new(match role {
            Some(role) => self.compile(&role.id, None),
            None => Compiled::default(),
        });
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.0 != generation || cache.1.len() >= CACHED_PRINCIPALS_MAX {
            *cache = (generation, HashMap::new());
        }
        cache.1.insert(key, compiled.clone());
        compiled
    }

    fn compile(&self, entity: &str, session_policy: Option<&str>) -> Compiled {
        let stored = match self.store.principal_policies(entity) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(%error, "reading a principal's policies failed; it is granted nothing");
                return Compiled { identity: Vec::new(), session: session_policy.map(|_| Vec::new()) };
            }
        };
        let identity = stored
            .iter()
            .filter_map(|p| {
                let text = match &p.document {
                    Some(text) => text.as_str(),
                    None => managed::find(&p.source)?.document,
                };
                parse_stored(PolicyKind::Identity, text, &p.source)
            })
            .collect();
        let session =
            session_policy.map(|text| parse_stored(PolicyKind::Session, text, "session policy").into_iter().collect());
        Compiled { identity, session }
    }

    /// Decides a request of a user or role session; root and today's function sessions pass (they are
    /// decided elsewhere). `context` adds the request's condition keys.
    pub fn decide(
        &self,
        principal: &Principal,
        action: &Action,
        resource: &str,
        context: impl FnOnce(&mut RequestContext),
    ) -> Result<(), Denied> {
        let Some(who) = self.policy_principal(principal) else { return Ok(()) };
        let compiled = self.compiled(principal);
        let mut ctx = RequestContext::new(who, action.clone(), resource);
        context(&mut ctx);
        decide_compiled(&compiled, ctx)
    }
}

/// Decides a request against a principal's compiled policies, adding the time keys
/// (`aws:CurrentTime`, `aws:EpochTime`).
pub fn decide_compiled(compiled: &Compiled, mut ctx: RequestContext) -> Result<(), Denied> {
    let now = crate::clock::now_ms();
    ctx.set("aws:CurrentTime", crate::api::query::iso_time(now));
    ctx.set("aws:EpochTime", (now / 1000).to_string());
    let policies =
        Policies { identity: &compiled.identity, session: compiled.session.as_deref(), ..Default::default() };
    decision(&policies, &ctx)
}

/// A decision as a result, with AWS's message on denial.
pub fn decision(policies: &Policies<'_>, ctx: &RequestContext) -> Result<(), Denied> {
    let decision: Decision = policy::evaluate(policies, ctx);
    match decision.denial_message(ctx) {
        None => Ok(()),
        Some(message) => Err(Denied { message }),
    }
}

fn parse_stored(kind: PolicyKind, text: &str, source: &str) -> Option<PolicyDocument> {
    match PolicyDocument::parse(kind, text) {
        Ok(doc) => Some(doc),
        Err(error) => {
            tracing::error!(%error, source, "a stored policy no longer parses; it grants nothing");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_model::iam::{IamPath, IamTags, PolicyName, UserName};
    use nimbus_store::iam::{EntityKind, NewPolicy, NewUser};

    fn user_with_policies(store: &Store, n: usize) -> Principal {
        let name = UserName::parse("bob").unwrap();
        let user = store
            .create_user(&NewUser {
                id: "AIDABOB".into(),
                name,
                path: IamPath::root(),
                tags: IamTags::default(),
                now_ms: 1,
            })
            .unwrap();
        for i in 0..n {
            let arn = format!("arn:aws:iam::000000000000:policy/p{i}");
            let document = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["sqs:SendMessage","logs:Put*"],"Resource":"arn:aws:sqs:us-east-1:000000000000:q{i}"}}]}}"#
            );
            store
                .create_policy(&NewPolicy {
                    id: format!("ANPA{i}"),
                    arn: arn.clone(),
                    name: PolicyName::parse(&format!("p{i}")).unwrap(),
                    path: IamPath::root(),
                    description: None,
                    document,
                    tags: IamTags::default(),
                    now_ms: 1,
                })
                .unwrap();
            store.attach_policy(EntityKind::User, "bob", &arn).unwrap();
        }
        crate::credentials::user_principal("000000000000", &user)
    }

    #[test]
    fn decisions_follow_policy_changes_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let bob = user_with_policies(&store, 10);
        let cache = PolicyCache::new(store.clone(), "000000000000");
        let send = Action::from_static("sqs:SendMessage");
        assert!(cache.decide(&bob, &send, "arn:aws:sqs:us-east-1:000000000000:q3", |_| {}).is_ok());
        let denied = cache.decide(&bob, &send, "arn:aws:sqs:us-east-1:000000000000:other", |_| {}).unwrap_err();
        assert!(denied.message.starts_with("User: arn:aws:iam::000000000000:user/bob is not authorized"), "{denied}");
        store
            .put_inline_policy(
                EntityKind::User,
                "bob",
                "deny",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"sqs:*","Resource":"*"}]}"#,
            )
            .unwrap();
        assert!(cache.decide(&bob, &send, "arn:aws:sqs:us-east-1:000000000000:q3", |_| {}).is_err());
    }

    /// The cost of deciding a request for a principal with ten attached policies, warm cache
    /// (`cargo test -p nimbus-server --release decision_cost -- --ignored --nocapture`). Prints, asserts nothing.
    #[test]
    #[ignore]
    fn decision_cost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let bob = user_with_policies(&store, 10);
        let cache = PolicyCache::new(store, "000000000000");
        let send = Action::from_static("sqs:SendMessage");
        let mut samples = Vec::with_capacity(20_000);
        for i in 0..20_000 {
            let resource = format!("arn:aws:sqs:us-east-1:000000000000:q{}", i % 12);
            let start = std::time::Instant::now();
            let _ = cache.decide(&bob, &send, &resource, |_| {});
            samples.push(start.elapsed());
        }
        samples.sort();
        println!("decide, 10 attached policies: p50 {:?} p99 {:?}", samples[10_000], samples[19_800]);
    }
}
