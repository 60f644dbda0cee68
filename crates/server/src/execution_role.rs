//! Execution roles: a function's `Role` must be a role of this account that trusts Lambda
//! (`lambda.amazonaws.com` may `sts:AssumeRole` it), as CreateFunction and UpdateFunctionConfiguration
//! check on AWS; and the upgrade of installations whose functions name roles made before IAM existed
//! in Nimbus.

use nimbus_model::RoleArn;
use nimbus_model::iam::{IamPath, IamTags, MaxSessionDuration, RoleName};
use nimbus_model::policy::{self, Action, Policies, PolicyDocument, PolicyKind, PrincipalKind, RequestContext};
use nimbus_store::Store;
use nimbus_store::iam::{EntityKind, IamRole, NewRole};

use crate::api::ApiError;

/// The trust policy of a role that Lambda may assume.
pub const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The rights a function's credentials had before execution roles carried policies (read and invoke
/// functions, use SQS and CloudWatch Logs); given to the roles the upgrade creates, so existing
/// functions keep working unchanged.
pub const PRE_IAM_SESSION_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadAndInvokeFunctions","Effect":"Allow","Action":["lambda:Get*","lambda:List*","lambda:InvokeFunction","lambda:InvokeAsync"],"Resource":"*"},{"Sid":"QueuesAndLogs","Effect":"Allow","Action":["sqs:*","logs:*"],"Resource":"*"}]}"#;

/// The inline policy name the upgrade gives those rights.
pub const PRE_IAM_POLICY_NAME: &str = "nimbus-pre-iam-function-rights";

fn cannot_assume() -> ApiError {
    ApiError::invalid("The role defined for the function cannot be assumed by Lambda.")
}

/// `arn:aws:iam::<account>:role/<path…/>name` → (path, name), for this account's roles only.
pub fn split_role_arn(arn: &str, account: &str) -> Option<(IamPath, RoleName)> {
    let rest = arn.strip_prefix(&format!("arn:aws:iam::{account}:role/"))?;
    let (path, name) = match rest.rsplit_once('/') {
        Some((path, name)) => (IamPath::parse(&format!("/{path}/")).ok()?, name),
        None => (IamPath::root(), rest),
    };
    Some((path, RoleName::parse(name).ok()?))
}

/// The role a function names, if it exists in this account and trusts Lambda; otherwise AWS's
/// InvalidParameterValueException.
pub fn assumable_by_lambda(store: &Store, account: &str, role: &RoleArn) -> Result<IamRole, ApiError> {
    let (path, name) = split_role_arn(role.as_str(), account).ok_or_else(cannot_assume)?;
    let found = match store.get_role(&name) {
        Ok(found) => found,
        Err(nimbus_store::StoreError::NotFound { .. }) => return Err(cannot_assume()),
        Err(other) => return Err(other.into()),
    };
    if found.path != path {
        return Err(cannot_assume());
    }
    let trust = PolicyDocument::parse(PolicyKind::Trust, &found.trust_policy).map_err(|_| cannot_assume())?;
    let lambda = policy::Principal {
        arn: String::new(),
        account: String::new(),
        user_id: String::new(),
        kind: PrincipalKind::Service { name: "lambda.amazonaws.com".to_owned() },
    };
    let ctx = RequestContext::new(lambda, Action::from_static("sts:AssumeRole"), role.as_str());
    let policies = Policies { resource: Some(&trust), ..Default::default() };
    if policy::evaluate(&policies, &ctx).is_allowed() { Ok(found) } else { Err(cannot_assume()) }
}

/// Whether the caller may hand `role` to a function (`iam:PassRole` on the role, as CreateFunction and
/// UpdateFunctionConfiguration check on AWS): without it, a user allowed to create functions could run
/// code with any role's rights.
pub fn may_pass(identity: Option<&crate::authz::Identity>, role: &RoleArn) -> Result<(), ApiError> {
    crate::authz::authorize(identity, &Action::from_static("iam:PassRole"), role.as_str())
        .map_err(|denied| ApiError::access_denied(denied.message))
}

/// On start: every role named by an existing function that does not exist is created, trusting
/// Lambda, with the rights function credentials had before roles carried policies; said once in the
/// log. Roles of other accounts cannot be made here and are reported.
pub fn create_missing_roles(store: &Store, account: &str) -> Result<(), nimbus_store::StoreError> {
    let mut created = Vec::new();
    for arn in store.function_roles()? {
        let Some((path, name)) = split_role_arn(&arn, account) else {
            tracing::warn!(role = %arn, "a function names a role outside this account; it cannot be assumed");
            continue;
        };
        match store.get_role(&name) {
            Ok(_) => continue,
            Err(nimbus_store::StoreError::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
        store.create_role(&NewRole {
            id: crate::api::iam::new_id("AROA"),
            name: name.clone(),
            path,
            trust_policy: LAMBDA_TRUST.to_owned(),
            description: Some("Created by Nimbus for functions that named it before IAM roles existed".to_owned()),
            max_session: MaxSessionDuration::default(),
            tags: IamTags::default(),
            now_ms: crate::clock::now_ms(),
        })?;
        store.put_inline_policy(EntityKind::Role, name.as_str(), PRE_IAM_POLICY_NAME, PRE_IAM_SESSION_POLICY)?;
        created.push(arn);
    }
    if !created.is_empty() {
        tracing::warn!(
            roles = %created.join(", "),
            "created {} execution role(s) named by existing functions, trusting Lambda, with the rights function \
             credentials had before IAM (inline policy {PRE_IAM_POLICY_NAME}); narrow them with the IAM API",
            created.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_split_into_path_and_name() {
        let (path, name) = split_role_arn("arn:aws:iam::000000000000:role/a/b/r", "000000000000").unwrap();
        assert_eq!((path.as_str(), name.as_str()), ("/a/b/", "r"));
        let (path, name) = split_role_arn("arn:aws:iam::000000000000:role/r", "000000000000").unwrap();
        assert_eq!((path.as_str(), name.as_str()), ("/", "r"));
        assert!(split_role_arn("arn:aws:iam::111111111111:role/r", "000000000000").is_none());
    }

    fn function(name: &str, role: &str) -> nimbus_store::NewFunction {
        use nimbus_model::*;
        nimbus_store::NewFunction {
            name: FunctionName::parse(name).unwrap(),
            config: FunctionConfig {
                runtime: Runtime::parse("python3.12").unwrap(),
                handler: Handler::parse("app.handler").unwrap(),
                role: RoleArn::parse(role).unwrap(),
                memory: MemoryMb::default(),
                timeout: TimeoutSecs::default(),
                ephemeral_storage: EphemeralStorageMb::default(),
                environment: EnvVars::default(),
                description: Description::default(),
                architecture: Architecture::default(),
                logging: LoggingConfig::default(),
            },
            code: nimbus_store::CodeInfo { digest: nimbus_store::CodeDigest::of(b"zip"), size_bytes: 3 },
            tags: Tags::default(),
            publish: false,
            now_ms: 1,
        }
    }

    #[test]
    fn the_upgrade_creates_missing_roles_once_with_the_old_rights() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_function(function("f", "arn:aws:iam::000000000000:role/svc/old")).unwrap();
        store.create_function(function("g", "arn:aws:iam::000000000000:role/svc/old")).unwrap();
        store.create_function(function("h", "arn:aws:iam::111111111111:role/elsewhere")).unwrap();
        create_missing_roles(&store, "000000000000").unwrap();
        let roles = store.list_roles("/").unwrap();
        assert_eq!(roles.len(), 1, "one role for both functions, none for another account's");
        assert_eq!((roles[0].path.as_str(), roles[0].name.as_str()), ("/svc/", "old"));
        assert_eq!(roles[0].trust_policy, LAMBDA_TRUST);
        let inline = store.inline_policy(EntityKind::Role, "old", PRE_IAM_POLICY_NAME).unwrap();
        assert_eq!(inline, PRE_IAM_SESSION_POLICY);
        create_missing_roles(&store, "000000000000").unwrap();
        assert_eq!(store.list_roles("/").unwrap(), roles, "a second start changes nothing");
    }
}
