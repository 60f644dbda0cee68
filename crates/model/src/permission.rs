//! One statement of a function's resource-based policy, as AddPermission takes it apart and as AWS
//! writes it back (the `Statement` of AddPermission's response, one element of GetPolicy's document).
//!
//! AWS does not store the request: it stores an IAM policy statement, and the JSON form is what
//! clients see and what the policy evaluator reads. So the request is validated here once and rendered
//! in AWS's exact key order (`Sid`, `Effect`, `Principal`, `Action`, `Resource`, `Condition`; inside
//! `Condition`: `StringEquals`, `ArnLike`, `Bool`), which serde's derive keeps.

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::error::ValidationError;
use crate::url::UrlAuthType;

/// `StatementId`: 1-100 characters of `[a-zA-Z0-9-_]` (RemovePermission also accepts `.`, which
/// statements added by other AWS services may carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementId(String);

impl StatementId {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::parse_with(s, "statementId", false)
    }

    /// RemovePermission's `NamespacedStatementId`.
    pub fn parse_namespaced(s: &str) -> Result<Self, ValidationError> {
        Self::parse_with(s, "statementId", true)
    }

    fn parse_with(s: &str, field: &str, dots: bool) -> Result<Self, ValidationError> {
        if s.is_empty() {
            return Err(ValidationError::too_short(field, s, 1));
        }
        if s.chars().count() > 100 {
            return Err(ValidationError::too_long(field, s, 100));
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || (dots && c == '.')) {
            let pattern = if dots { "([a-zA-Z0-9-_.]+)" } else { "([a-zA-Z0-9-_]+)" };
            return Err(ValidationError::pattern(field, s, pattern));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `Action`: `lambda:Name`, `lambda:*` or `*` (botocore: `(lambda:[*]|lambda:[a-zA-Z]+|[*])`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaAction(String);

impl LambdaAction {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = s == "*"
            || s.strip_prefix("lambda:")
                .is_some_and(|rest| rest == "*" || (!rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphabetic())));
        if !ok {
            return Err(ValidationError::pattern("action", s, "(lambda:[*]|lambda:[a-zA-Z]+|[*])"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a statement grants to. AWS turns an account id into that account's root ARN and a service
/// name into a `Service` principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `*`: anyone, including unauthenticated callers of a function URL.
    Any,
    /// An account id or an IAM ARN, rendered `{"AWS": "<arn>"}`.
    Aws(String),
    /// A service principal such as `s3.amazonaws.com`, rendered `{"Service": "<name>"}`.
    Service(String),
}

impl Principal {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let invalid = || {
            ValidationError::invalid("The provided principal was invalid. Please check the principal and try again.")
        };
        if s.is_empty() || s.len() > 2048 || s.chars().any(char::is_whitespace) {
            return Err(ValidationError::pattern("principal", s, "[^\\s]+"));
        }
        if s == "*" {
            return Ok(Self::Any);
        }
        if s.len() == 12 && s.chars().all(|c| c.is_ascii_digit()) {
            return Ok(Self::Aws(format!("arn:aws:iam::{s}:root")));
        }
        if let Some(rest) = s.strip_prefix("arn:") {
            // arn:partition:iam::account:resource
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            if parts.len() == 5 && parts[0].starts_with("aws") && parts[1] == "iam" && !parts[4].is_empty() {
                return Ok(Self::Aws(s.to_owned()));
            }
            return Err(invalid());
        }
        let service_chars = s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if service_chars && s.contains('.') && !s.starts_with('.') && !s.ends_with('.') {
            return Ok(Self::Service(s.to_owned()));
        }
        Err(invalid())
    }
}

impl Serialize for Principal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Any => serializer.serialize_str("*"),
            Self::Aws(arn) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("AWS", arn)?;
                map.end()
            }
            Self::Service(name) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("Service", name)?;
                map.end()
            }
        }
    }
}

/// The optional conditions AddPermission can attach, each validated to botocore's constraints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub source_arn: Option<String>,
    pub source_account: Option<String>,
    pub principal_org_id: Option<String>,
    pub event_source_token: Option<String>,
    pub function_url_auth_type: Option<UrlAuthType>,
    pub invoked_via_function_url: bool,
}

impl Conditions {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(arn) = &self.source_arn {
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            if arn.len() > 10_000 || parts.len() < 6 || parts[0] != "arn" || !parts[1].starts_with("aws") {
                return Err(ValidationError::pattern(
                    "sourceArn",
                    arn,
                    "arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1})?:(\\d{12})?:(.*)",
                ));
            }
        }
        if let Some(account) = &self.source_account
            && !(account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(ValidationError::pattern("sourceAccount", account, "\\d{12}"));
        }
        if let Some(org) = &self.principal_org_id {
            let ok = org.len() >= 12
                && org.len() <= 34
                && org
                    .strip_prefix("o-")
                    .is_some_and(|r| r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
            if !ok {
                return Err(ValidationError::pattern("principalOrgID", org, "o-[a-z0-9]{10,32}"));
            }
        }
        if let Some(token) = &self.event_source_token {
            let ok = !token.is_empty()
                && token.len() <= 256
                && token.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                return Err(ValidationError::pattern("eventSourceToken", token, "[a-zA-Z0-9._\\-]+"));
            }
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Serialize for Conditions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut equals: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &self.source_account {
            equals.push(("AWS:SourceAccount", a));
        }
        if let Some(o) = &self.principal_org_id {
            equals.push(("aws:PrincipalOrgID", o));
        }
        if let Some(t) = &self.event_source_token {
            equals.push(("lambda:EventSourceToken", t));
        }
        if let Some(auth) = self.function_url_auth_type {
            equals.push(("lambda:FunctionUrlAuthType", auth.as_str()));
        }
        let mut map = serializer.serialize_map(None)?;
        if !equals.is_empty() {
            map.serialize_entry("StringEquals", &Ordered(&equals))?;
        }
        if let Some(arn) = &self.source_arn {
            map.serialize_entry("ArnLike", &Ordered(&[("AWS:SourceArn", arn.as_str())]))?;
        }
        if self.invoked_via_function_url {
            map.serialize_entry("Bool", &Ordered(&[("lambda:InvokedViaFunctionUrl", "true")]))?;
        }
        map.end()
    }
}

/// A JSON object whose keys keep the order given.
struct Ordered<'a>(&'a [(&'a str, &'a str)]);

impl Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// One `Allow` statement of a function's (or version's, or alias's) policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyStatement {
    #[serde(rename = "Sid", serialize_with = "as_str")]
    pub sid: StatementId,
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    #[serde(rename = "Principal")]
    pub principal: Principal,
    #[serde(rename = "Action", serialize_with = "action_str")]
    pub action: LambdaAction,
    /// The ARN of the function, version or alias the policy belongs to.
    #[serde(rename = "Resource")]
    pub resource: String,
    #[serde(rename = "Condition", skip_serializing_if = "Conditions::is_empty")]
    pub conditions: Conditions,
}

fn as_str<S: serde::Serializer>(sid: &StatementId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(sid.as_str())
}

fn action_str<S: serde::Serializer>(action: &LambdaAction, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(action.as_str())
}

impl PolicyStatement {
    pub fn allow(
        sid: StatementId,
        principal: Principal,
        action: LambdaAction,
        resource: String,
        conditions: Conditions,
    ) -> Result<Self, ValidationError> {
        conditions.validate()?;
        Ok(Self { sid, effect: "Allow", principal, action, resource, conditions })
    }

    /// The statement as AWS writes it: compact JSON in AWS's key order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// GetPolicy's `Policy`: the statements (each already rendered JSON) in a document with Id `default`.
pub fn policy_document<'a>(statements: impl IntoIterator<Item = &'a str>) -> String {
    let joined = statements.into_iter().collect::<Vec<_>>().join(",");
    format!(r#"{{"Version":"2012-10-17","Id":"default","Statement":[{joined}]}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(principal: &str, conditions: Conditions) -> String {
        PolicyStatement::allow(
            StatementId::parse("s1").unwrap(),
            Principal::parse(principal).unwrap(),
            LambdaAction::parse("lambda:InvokeFunction").unwrap(),
            "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            conditions,
        )
        .unwrap()
        .to_json()
    }

    #[test]
    fn statements_render_in_aws_form() {
        let cases = [
            (
                "s3.amazonaws.com",
                Conditions {
                    source_arn: Some("arn:aws:s3:::bucket".into()),
                    source_account: Some("123456789012".into()),
                    ..Default::default()
                },
                r#"{"Sid":"s1","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:000000000000:function:f","Condition":{"StringEquals":{"AWS:SourceAccount":"123456789012"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::bucket"}}}"#,
            ),
            (
                "123456789012",
                Conditions::default(),
                r#"{"Sid":"s1","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:000000000000:function:f"}"#,
            ),
            (
                "*",
                Conditions { function_url_auth_type: Some(UrlAuthType::None), ..Default::default() },
                r#"{"Sid":"s1","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:000000000000:function:f","Condition":{"StringEquals":{"lambda:FunctionUrlAuthType":"NONE"}}}"#,
            ),
            (
                "*",
                Conditions { invoked_via_function_url: true, ..Default::default() },
                r#"{"Sid":"s1","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:000000000000:function:f","Condition":{"Bool":{"lambda:InvokedViaFunctionUrl":"true"}}}"#,
            ),
            (
                "arn:aws:iam::123456789012:role/r",
                Conditions { principal_org_id: Some("o-abcdefghij".into()), ..Default::default() },
                r#"{"Sid":"s1","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/r"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:000000000000:function:f","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij"}}}"#,
            ),
        ];
        for (principal, conditions, want) in cases {
            assert_eq!(stmt(principal, conditions), want, "principal {principal}");
        }
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in ["", "has space", "nodots", "arn:aws:s3:::bucket", "arn:x"] {
            assert!(Principal::parse(bad).is_err(), "principal {bad:?}");
        }
        for bad in ["", "lambda:", "lambda:Invoke1", "s3:GetObject", "lambda:*x"] {
            assert!(LambdaAction::parse(bad).is_err(), "action {bad:?}");
        }
        for good in ["*", "lambda:*", "lambda:InvokeFunctionUrl"] {
            assert!(LambdaAction::parse(good).is_ok(), "action {good:?}");
        }
        for bad in ["", "a.b", "a b", &"x".repeat(101)] {
            assert!(StatementId::parse(bad).is_err(), "sid {bad:?}");
        }
        assert!(StatementId::parse_namespaced("a.b").is_ok());
        let bad_conditions = [
            Conditions { source_account: Some("12345".into()), ..Default::default() },
            Conditions { source_arn: Some("bucket".into()), ..Default::default() },
            Conditions { principal_org_id: Some("org-1".into()), ..Default::default() },
            Conditions { event_source_token: Some("a b".into()), ..Default::default() },
        ];
        for c in bad_conditions {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    /// What AddPermission writes is what the evaluator reads: every statement shape parses as a
    /// resource policy, and the two statements AWS's console adds for a public URL open it.
    #[test]
    fn rendered_statements_are_policies_the_evaluator_reads() {
        use crate::policy::{self, Action, PolicyDocument, PolicyKind, PrincipalKind, RequestContext};
        let url = |action: &str, conditions: Conditions| {
            PolicyStatement::allow(
                StatementId::parse(&action.replace(':', "")).unwrap(),
                Principal::Any,
                LambdaAction::parse(action).unwrap(),
                "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
                conditions,
            )
            .unwrap()
            .to_json()
        };
        let statements = [
            url(
                "lambda:InvokeFunctionUrl",
                Conditions { function_url_auth_type: Some(UrlAuthType::None), ..Default::default() },
            ),
            url("lambda:InvokeFunction", Conditions { invoked_via_function_url: true, ..Default::default() }),
            stmt(
                "s3.amazonaws.com",
                Conditions {
                    source_arn: Some("arn:aws:s3:::bucket".into()),
                    source_account: Some("123456789012".into()),
                    ..Default::default()
                },
            ),
            stmt(
                "arn:aws:iam::123456789012:role/r",
                Conditions { principal_org_id: Some("o-abcdefghij".into()), ..Default::default() },
            )
            .replace(r#""Sid":"s1""#, r#""Sid":"s2""#),
        ];
        let text = policy_document(statements.iter().map(String::as_str));
        let document = PolicyDocument::parse(PolicyKind::Resource, &text).unwrap();
        let anonymous = policy::Principal {
            arn: String::new(),
            account: String::new(),
            user_id: String::new(),
            kind: PrincipalKind::Anonymous,
        };
        let decide = |action: &'static str, keys: &[(&str, &str)]| {
            let mut ctx = RequestContext::new(
                anonymous.clone(),
                Action::from_static(action),
                "arn:aws:lambda:us-east-1:000000000000:function:f",
            );
            for (k, v) in keys {
                ctx.set(k, *v);
            }
            policy::evaluate(&policy::Policies { resource: Some(&document), ..Default::default() }, &ctx).is_allowed()
        };
        assert!(decide("lambda:InvokeFunctionUrl", &[("lambda:FunctionUrlAuthType", "NONE")]));
        assert!(!decide("lambda:InvokeFunctionUrl", &[("lambda:FunctionUrlAuthType", "AWS_IAM")]));
        assert!(decide("lambda:InvokeFunction", &[("lambda:InvokedViaFunctionUrl", "true")]));
        assert!(!decide("lambda:InvokeFunction", &[]), "a public URL does not open Invoke to anyone");
    }

    #[test]
    fn documents_wrap_statements() {
        assert_eq!(
            policy_document(["{\"a\":1}", "{\"b\":2}"]),
            r#"{"Version":"2012-10-17","Id":"default","Statement":[{"a":1},{"b":2}]}"#
        );
    }
}
