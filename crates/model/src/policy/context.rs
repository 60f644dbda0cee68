//! The facts about one request that policies are evaluated against.

use std::collections::HashMap;

/// An IAM action such as `lambda:InvokeFunction`: service prefix and action name. Matching against
/// policies is case-insensitive, as AWS's is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Action {
    text: std::borrow::Cow<'static, str>,
    colon: usize,
}

impl Action {
    /// An action from a static table (`"lambda:InvokeFunction"`).
    ///
    /// # Panics
    /// If `text` has no `:` (a bug in the table, caught by its tests).
    pub const fn from_static(text: &'static str) -> Action {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() && bytes[i] != b':' {
            i += 1;
        }
        assert!(i > 0 && i + 1 < bytes.len(), "an IAM action is service:name");
        Action { text: std::borrow::Cow::Borrowed(text), colon: i }
    }

    /// Parses `service:name`; `None` when either part is empty or missing.
    pub fn parse(text: &str) -> Option<Action> {
        let colon = text.find(':')?;
        (colon > 0 && colon + 1 < text.len()).then(|| Action { text: text.to_owned().into(), colon })
    }

    /// `lambda` in `lambda:InvokeFunction`.
    pub fn service(&self) -> &str {
        &self.text[..self.colon]
    }

    /// `InvokeFunction` in `lambda:InvokeFunction`.
    pub fn name(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root credentials (`arn:aws:iam::<acct>:root`).
    Root,
    /// An IAM user (`arn:aws:iam::<acct>:user/<path><name>`); `name` is `aws:username`.
    User { name: String },
    /// A role session (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`); `role_arn` is the role's
    /// own ARN (`arn:aws:iam::<acct>:role/<path><role>`), which policies naming the role match.
    AssumedRole { role_arn: String, session_name: String },
    /// A federated user session (`arn:aws:sts::<acct>:federated-user/<name>`).
    FederatedUser { name: String },
    /// An AWS service acting itself (`lambda.amazonaws.com`), matched by `"Service"` principals.
    Service { name: String },
    /// A web-identity or SAML federated principal, matched by `"Federated"` principals.
    Federated { provider: String },
    /// An unsigned request; only `"Principal": "*"` matches it.
    Anonymous,
}

/// The caller of a request, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The caller's ARN (`aws:PrincipalArn` uses the role ARN for role sessions, as AWS does).
    /// Empty for services and anonymous callers.
    pub arn: String,
    /// The caller's 12-digit account (`aws:PrincipalAccount`); empty for services and anonymous callers.
    pub account: String,
    /// AWS's unique id (`aws:userid`): the account id for root, `AIDA…` for users, `AROA…:<session>` for
    /// role sessions.
    pub user_id: String,
    pub kind: PrincipalKind,
}

/// One condition key's values in a request: most keys have one value, some (`aws:TagKeys`,
/// `aws:PrincipalServiceNamesList`) several.
pub type ContextValues = Vec<String>;

/// One request as policies see it: who, what action, on which resource, and the condition keys.
/// A request touching several resources is evaluated once per resource, as AWS does.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub principal: Principal,
    pub action: Action,
    /// The resource's ARN, or `*` for actions that take no resource (ListFunctions).
    pub resource: String,
    /// Keys lowercased (condition keys are case-insensitive); values are compared as each operator
    /// says (String*, Numeric*, Date*, Bool, IpAddress, Arn*). Policy variables (`${aws:username}`)
    /// are resolved from these same keys.
    keys: HashMap<String, ContextValues>,
}

impl RequestContext {
    /// A context with the keys that follow from the principal filled in: `aws:PrincipalArn`,
    /// `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:userid`, and `aws:username` for users.
    /// The caller adds the rest (`aws:CurrentTime`, `aws:EpochTime`, `aws:SecureTransport`,
    /// `aws:SourceIp`, `aws:SourceArn`, `aws:SourceAccount`, request and resource tags, service keys).
    pub fn new(principal: Principal, action: Action, resource: impl Into<String>) -> RequestContext {
        let mut keys = HashMap::with_capacity(8);
        let mut put = |key: &str, value: &str| {
            keys.insert(key.to_owned(), vec![value.to_owned()]);
        };
        let principal_type = match &principal.kind {
            PrincipalKind::Root => Some("Account"),
            PrincipalKind::User { name } => {
                put("aws:username", name);
                Some("User")
            }
            PrincipalKind::AssumedRole { role_arn, .. } => {
                // AWS's aws:PrincipalArn for a role session is the role's ARN.
                put("aws:principalarn", role_arn);
                Some("AssumedRole")
            }
            PrincipalKind::FederatedUser { .. } => Some("FederatedUser"),
            PrincipalKind::Service { .. } | PrincipalKind::Federated { .. } => None,
            PrincipalKind::Anonymous => Some("Anonymous"),
        };
        if let Some(t) = principal_type {
            put("aws:principaltype", t);
        }
        if !principal.arn.is_empty() && !matches!(principal.kind, PrincipalKind::AssumedRole { .. }) {
            put("aws:principalarn", &principal.arn);
        }
        if !principal.account.is_empty() {
            put("aws:principalaccount", &principal.account);
        }
        if !principal.user_id.is_empty() {
            put("aws:userid", &principal.user_id);
        }
        RequestContext { principal, action, resource: resource.into(), keys }
    }

    /// Sets a condition key (any case) to one value, replacing what it had.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.keys.insert(key.to_ascii_lowercase(), vec![value.into()]);
        self
    }

    /// Sets a multi-valued condition key (any case), replacing what it had.
    pub fn set_all(&mut self, key: &str, values: ContextValues) -> &mut Self {
        self.keys.insert(key.to_ascii_lowercase(), values);
        self
    }

    /// A key's values (any case), if the request has the key.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.keys.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }

    /// The 12-digit account that owns the resource (its ARN's account field), if the ARN has one.
    /// Same-account rules compare this with the principal's account.
    pub fn resource_account(&self) -> Option<&str> {
        let account = self.resource.split(':').nth(4)?;
        (!account.is_empty()).then_some(account)
    }
}

impl super::pattern::Variables for RequestContext {
    /// A policy variable resolves only from a single-valued key, as AWS's do.
    fn variable(&self, key: &str) -> Option<&str> {
        match self.keys.get(key).map(Vec::as_slice) {
            Some([one]) => Some(one),
            _ => None,
        }
    }
}

impl super::condition::Keys for RequestContext {
    fn values(&self, key: &str) -> Option<&[String]> {
        self.keys.get(key).map(Vec::as_slice)
    }
}
