//! The one decision point for API requests: may this principal perform this action on this resource?
//!
//! The edge (each protocol's operation table: `api::lambda::operations`, `api::sqs::operations`,
//! `api::logs`) turns a request into its IAM action and resource ARN from the matched operation, never
//! from path text; this module decides. Root may do anything (as on AWS). A function's session
//! credential acts as an assumed-role session of the function's role and is decided by the policy
//! engine (`nimbus_model::policy`, the one evaluator) against [`FUNCTION_SESSION_POLICY`], the fixed
//! rights such credentials have until execution roles carry real policies: read and invoke functions,
//! use SQS, CloudWatch Logs and S3, nothing else.

use std::sync::OnceLock;

use nimbus_model::policy::{
    Action, Policies, PolicyDocument, PolicyKind, Principal, PrincipalKind, RequestContext, evaluate,
};

/// Who a verified request comes from, as the decision needs it.
#[derive(Debug, Clone)]
pub enum Identity {
    /// The root key pair: full rights.
    Root(Principal),
    /// An execution environment's session credential: the function's role, session named after the function.
    FunctionSession(Principal),
    /// An IAM user, a role session (AssumeRole), or a function's environment acting as a session of
    /// its execution role: decided by the evaluator against its compiled identity policies (and
    /// session policy), as `policy_cache` found them when the request arrived.
    Iam { principal: Principal, policies: std::sync::Arc<crate::policy_cache::Compiled> },
}

impl Identity {
    pub fn principal(&self) -> &Principal {
        match self {
            Identity::Root(p) | Identity::FunctionSession(p) | Identity::Iam { principal: p, .. } => p,
        }
    }
}

/// `arn:aws:iam::<account>:root`
pub fn root_principal(account: &str) -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{account}:root"),
        account: account.to_owned(),
        user_id: account.to_owned(),
        kind: PrincipalKind::Root,
    }
}

/// The assumed-role session a function's environment acts as:
/// `arn:aws:sts::<account>:assumed-role/<role name>/<function name>`, as Lambda names it.
pub fn function_session_principal(account: &str, role_arn: &str, function: &str) -> Principal {
    // The role's name is the last segment of its ARN's path (`role/path/name`).
    let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
    Principal {
        arn: format!("arn:aws:sts::{account}:assumed-role/{role_name}/{function}"),
        account: account.to_owned(),
        user_id: format!("{}:{function}", role_unique_id(role_arn)),
        kind: PrincipalKind::AssumedRole { role_arn: role_arn.to_owned(), session_name: function.to_owned() },
    }
}

/// A stable `AROA…` unique id for a role ARN (AWS's role ids are opaque; this one only has to be
/// stable and look like one).
fn role_unique_id(role_arn: &str) -> String {
    use sha2::Digest;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = sha2::Sha256::digest(role_arn.as_bytes());
    let tail: String = digest.iter().take(17).map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect();
    format!("AROA{tail}")
}

/// A refused request, with AWS's message; each protocol maps it to its own AccessDenied error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    pub message: String,
}

/// What a function's session credential may do, written as the identity policy its role would carry.
pub const FUNCTION_SESSION_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ReadAndInvokeFunctions",
      "Effect": "Allow",
      "Action": ["lambda:Get*", "lambda:List*", "lambda:InvokeFunction", "lambda:InvokeAsync"],
      "Resource": "*"
    },
    {
      "Sid": "QueuesAndLogs",
      "Effect": "Allow",
      "Action": ["sqs:*", "logs:*"],
      "Resource": "*"
    },
    {
      "Sid": "Objects",
      "Effect": "Allow",
      "Action": ["s3:*"],
      "Resource": "*"
    }
  ]
}"#;

/// The session policy, compiled once.
fn function_session_policy() -> &'static [PolicyDocument] {
    static POLICY: OnceLock<[PolicyDocument; 1]> = OnceLock::new();
    POLICY.get_or_init(|| {
        [PolicyDocument::parse(PolicyKind::Identity, FUNCTION_SESSION_POLICY).expect("the built-in policy is valid")]
    })
}

/// Decides one request. `None` identity means authentication is off (`--no-auth`): everything passes.
pub fn authorize(identity: Option<&Identity>, action: &Action, resource: &str) -> Result<(), Denied> {
    let principal = match identity {
        None | Some(Identity::Root(_)) => return Ok(()),
        Some(Identity::Iam { principal, policies }) => {
            let ctx = RequestContext::new(principal.clone(), action.clone(), resource);
            return crate::policy_cache::decide_compiled(policies, ctx).map_err(|d| Denied { message: d.message });
        }
        Some(Identity::FunctionSession(principal)) => principal,
    };
    let ctx = RequestContext::new(principal.clone(), action.clone(), resource);
    let policies = Policies { identity: function_session_policy(), ..Default::default() };
    let decision = evaluate(&policies, &ctx);
    match decision.denial_message(&ctx) {
        None => Ok(()),
        Some(message) => Err(Denied { message }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_session_reads_invokes_and_uses_queues_and_logs_only() {
        let principal = function_session_principal("000000000000", "arn:aws:iam::000000000000:role/app/runner", "f");
        assert_eq!(principal.arn, "arn:aws:sts::000000000000:assumed-role/runner/f");
        let session = Identity::FunctionSession(principal);
        let root = Identity::Root(root_principal("000000000000"));
        let fn_arn = "arn:aws:lambda:us-east-1:000000000000:function:invocations";
        let cases = [
            ("lambda:InvokeFunction", true),
            ("lambda:InvokeAsync", true),
            ("lambda:GetFunction", true),
            ("lambda:ListFunctions", true),
            ("lambda:GetAlias", true),
            ("sqs:SendMessage", true),
            ("logs:FilterLogEvents", true),
            ("lambda:DeleteFunction", false),
            ("lambda:UpdateAlias", false),
            ("lambda:DeleteAlias", false),
            ("lambda:CreateFunction", false),
            ("lambda:TagResource", false),
            ("lambda:PutFunctionConcurrency", false),
            ("iam:PassRole", false),
        ];
        for (action, allowed) in cases {
            let action = Action::parse(action).unwrap();
            assert_eq!(authorize(Some(&session), &action, fn_arn).is_ok(), allowed, "{action}");
            assert!(authorize(Some(&root), &action, fn_arn).is_ok(), "{action}");
            assert!(authorize(None, &action, fn_arn).is_ok(), "{action}");
        }
        let denied = authorize(Some(&session), &Action::from_static("lambda:DeleteFunction"), fn_arn).unwrap_err();
        assert_eq!(
            denied.message,
            "User: arn:aws:sts::000000000000:assumed-role/runner/f is not authorized to perform: \
             lambda:DeleteFunction on resource: arn:aws:lambda:us-east-1:000000000000:function:invocations \
             because no identity-based policy allows the lambda:DeleteFunction action"
        );
    }
}
