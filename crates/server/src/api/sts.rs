//! STS (botocore's `sts` model, query protocol, version 2011-06-15): GetCallerIdentity, AssumeRole,
//! GetSessionToken. The other side is any STS client whose request verified; AssumeRole is decided by
//! the policy evaluator against the role's trust policy and the caller's identity policies, as AWS
//! decides it. Temporary credentials are rows in the store (`sts_sessions`) that `credentials::lookup`
//! resolves, refused from their expiry on with `ExpiredToken`.

use axum::http::StatusCode;
use axum::response::Response;
use nimbus_model::iam::{IamTags, RoleName, RoleSessionName};
use nimbus_model::policy::{Action, Policies, PolicyDocument, PolicyKind, limits};
use nimbus_store::StoreError;
use nimbus_store::iam::{SessionPrincipal, StsSession};

use super::query::{self, Form, Service, Xml, iso_time, validation};
use super::{ApiError, SharedState};
use crate::auth::{Caller, Principal};
use crate::authz::Identity;

type Result<T> = std::result::Result<T, ApiError>;

/// AssumeRole's and GetSessionToken's shortest session.
const DURATION_MIN: i64 = 900;
/// A role session that assumes another role gets at most an hour ("role chaining").
const CHAINED_MAX: i64 = 3600;
/// GetSessionToken: default 12 hours, at most 36 (root: at most 1).
const SESSION_TOKEN_DEFAULT: i64 = 43_200;
const SESSION_TOKEN_MAX: i64 = 129_600;

pub fn dispatch(
    state: &SharedState,
    body: &[u8],
    caller: Option<&Caller>,
    identity: Option<&Identity>,
    request_id: &str,
) -> Response {
    let result = (|| {
        let form = Form::parse(body)?;
        let action = form.required("Action")?.to_owned();
        let principal = caller.map(|c| &c.principal).unwrap_or(&Principal::Root);
        let now_ms = crate::clock::now_ms();
        let result = match action.as_str() {
            "GetCallerIdentity" => get_caller_identity(state, identity),
            "AssumeRole" => assume_role(state, principal, identity, &form, now_ms),
            "GetSessionToken" => get_session_token(state, principal, &form, now_ms),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!("Could not find operation {action} for version 2011-06-15"),
            )),
        }?;
        Ok((action, result))
    })();
    match result {
        Ok((action, result)) => query::respond(Service::Sts, &action, request_id, Some(result)),
        Err(e) => query::error_response(Service::Sts, &e),
    }
}

fn access_denied(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", message)
}

/// Needs no permission, as on AWS. A function's environment is its role's session.
fn get_caller_identity(state: &SharedState, identity: Option<&Identity>) -> Result<Xml> {
    let account = &state.arns.account;
    let root = crate::authz::root_principal(account);
    let who = identity.map_or(&root, Identity::principal);
    let mut x = Xml::new();
    x.text("UserId", &who.user_id).text("Account", account).text("Arn", &who.arn);
    Ok(x)
}

fn duration(form: &Form, default: i64, max: i64) -> Result<i64> {
    let secs = form.int("DurationSeconds")?.unwrap_or(default);
    if secs < DURATION_MIN {
        return Err(validation(format!(
            "1 validation error detected: Value '{secs}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {DURATION_MIN}"
        )));
    }
    if secs > max {
        return Err(validation(format!(
            "1 validation error detected: Value '{secs}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to {max}"
        )));
    }
    Ok(secs)
}

/// `arn:aws:iam::<account>:role/<path><name>` → the role's name, if it is this account's role ARN.
fn role_name_of(arn: &str, account: &str) -> Option<String> {
    let rest = arn.strip_prefix(&format!("arn:aws:iam::{account}:role/"))?;
    Some(rest.rsplit('/').next()?.to_owned())
}

fn new_credentials(
    principal: SessionPrincipal,
    policy: Option<String>,
    tags: &IamTags,
    now_ms: i64,
    secs: i64,
) -> StsSession {
    StsSession {
        access_key_id: format!("ASIA{}", crate::credentials::random_id(16)),
        secret: crate::credentials::new_secret(),
        session_token: crate::credentials::new_session_token(),
        principal,
        session_policy: policy,
        tags: serde_json::to_string(tags.as_map()).unwrap_or_else(|_| "{}".to_owned()),
        created_ms: now_ms,
        expires_ms: now_ms + secs * 1000,
    }
}

fn write_credentials(x: &mut Xml, s: &StsSession) {
    x.node("Credentials", |x| {
        x.text("AccessKeyId", &s.access_key_id)
            .text("SecretAccessKey", &s.secret)
            .text("SessionToken", &s.session_token)
            .text("Expiration", iso_time(s.expires_ms));
    });
}

fn assume_role(
    state: &SharedState,
    principal: &Principal,
    identity: Option<&Identity>,
    form: &Form,
    now_ms: i64,
) -> Result<Xml> {
    let account = &state.arns.account;
    let role_arn = form.required("RoleArn")?;
    if !(20..=2048).contains(&role_arn.len()) {
        return Err(validation(format!(
            "1 validation error detected: Value '{role_arn}' at 'roleArn' failed to satisfy constraint: Member must have length {}",
            if role_arn.len() < 20 { "greater than or equal to 20" } else { "less than or equal to 2048" }
        )));
    }
    let session_name = RoleSessionName::parse(form.required("RoleSessionName")?).map_err(super::iam::invalid)?;
    let tags = IamTags::parse(form.tags("Tags")).map_err(super::iam::invalid)?;
    if !form.list("PolicyArns").is_empty() || form.get("PolicyArns.member.1.arn").is_some() {
        return Err(validation("Nimbus does not support PolicyArns in AssumeRole; pass the session policy as Policy"));
    }
    let policy = form
        .get("Policy")
        .map(|text| {
            if text.chars().count() > limits::SESSION_POLICY_CHARS {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "PackedPolicyTooLarge",
                    format!(
                        "Packed policy consumes {}% of allotted space, please use smaller policy.",
                        text.chars().count() * 100 / limits::SESSION_POLICY_CHARS
                    ),
                ));
            }
            PolicyDocument::parse(PolicyKind::Session, text).map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, nimbus_model::policy::PolicyError::CODE, e.to_string())
            })?;
            Ok(text.to_owned())
        })
        .transpose()?;

    let not_authorized = |who: &str| {
        access_denied(format!("User: {who} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"))
    };
    let (who, compiled) = match identity {
        None | Some(Identity::Root(_)) => return Err(access_denied("Roles may not be assumed by root accounts.")),
        Some(Identity::Iam { principal, policies }) => (principal.clone(), policies.clone()),
        Some(Identity::FunctionSession(p)) => return Err(not_authorized(&p.arn)),
    };
    let caller_arn = who.arn.clone();
    let role = role_name_of(role_arn, account)
        .and_then(|name| RoleName::parse(&name).ok())
        .map(|name| state.store.get_role(&name))
        .transpose()
        .or_else(|e| match e {
            StoreError::NotFound { .. } => Ok(None),
            other => Err(ApiError::from(other)),
        })?
        .filter(|role| format!("arn:aws:iam::{account}:role{}{}", role.path, role.name) == role_arn)
        .ok_or_else(|| not_authorized(&caller_arn))?;

    // The trust policy is the role's resource policy for sts:AssumeRole; the caller's identity
    // policies (and a chained session's session policy) take part as in any same-account request.
    let trust = PolicyDocument::parse(PolicyKind::Trust, &role.trust_policy).map_err(|error| {
        tracing::error!(%error, role = %role.name, "a stored trust policy no longer parses");
        not_authorized(&caller_arn)
    })?;
    let mut ctx = nimbus_model::policy::RequestContext::new(who, Action::from_static("sts:AssumeRole"), role_arn);
    ctx.set("aws:CurrentTime", iso_time(now_ms));
    ctx.set("aws:EpochTime", (now_ms / 1000).to_string());
    ctx.set("sts:RoleSessionName", session_name.as_str());
    for (key, value) in tags.iter() {
        ctx.set(&format!("aws:RequestTag/{key}"), value);
    }
    if !tags.is_empty() {
        ctx.set_all("aws:TagKeys", tags.iter().map(|(k, _)| k.to_owned()).collect());
    }
    let policies = Policies {
        identity: &compiled.identity,
        resource: Some(&trust),
        session: compiled.session.as_deref(),
        ..Default::default()
    };
    crate::policy_cache::decision(&policies, &ctx).map_err(|_| not_authorized(&caller_arn))?;
    // A role's trust policy must allow the caller itself, whatever the identity policies say: either
    // by naming it (which grants on its own, decided above) or by naming its account (which delegates
    // to the identity policies, also decided above). Same-account resource policies do not need this;
    // trust policies do, as on AWS.
    let trust_only = Policies { resource: Some(&trust), ..Default::default() };
    let mut as_account = ctx.clone();
    as_account.principal = nimbus_model::policy::Principal {
        arn: format!("arn:aws:iam::{account}:root"),
        account: account.clone(),
        user_id: account.clone(),
        kind: nimbus_model::policy::PrincipalKind::Root,
    };
    let trusted = nimbus_model::policy::evaluate(&trust_only, &ctx).is_allowed()
        || nimbus_model::policy::evaluate(&trust_only, &as_account).is_allowed();
    if !trusted {
        return Err(not_authorized(&caller_arn));
    }

    // Role sessions (AssumeRole's, a function's) that assume a role are chained.
    let chained = !matches!(principal, Principal::User { .. });
    let max = if chained { CHAINED_MAX } else { i64::from(role.max_session.get()) };
    let secs = form.int("DurationSeconds")?.unwrap_or(3600);
    if secs > max && secs <= 43_200 {
        return Err(validation(if chained {
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
                .to_owned()
        } else {
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.".to_owned()
        }));
    }
    let secs = duration(form, 3600, 43_200)?;
    let session = new_credentials(
        SessionPrincipal::Role { role_id: role.id.clone(), session_name: session_name.to_string() },
        policy.clone(),
        &tags,
        now_ms,
        secs,
    );
    state.store.create_session(&session).map_err(ApiError::from)?;
    let mut x = Xml::new();
    write_credentials(&mut x, &session);
    x.node("AssumedRoleUser", |x| {
        x.text("AssumedRoleId", format!("{}:{session_name}", role.id))
            .text("Arn", format!("arn:aws:sts::{account}:assumed-role/{}/{session_name}", role.name));
    });
    if policy.is_some() || !tags.is_empty() {
        let size = policy.as_deref().map_or(0, str::len) + session.tags.len();
        x.text("PackedPolicySize", size * 100 / limits::SESSION_POLICY_CHARS);
    }
    Ok(x)
}

fn get_session_token(state: &SharedState, principal: &Principal, form: &Form, now_ms: i64) -> Result<Xml> {
    let (user_id, max) = match principal {
        Principal::User { id, .. } => (id.clone(), SESSION_TOKEN_MAX),
        Principal::Root => (state.arns.account.clone(), 3600),
        Principal::AssumedRole(_) | Principal::Function => {
            return Err(access_denied("Cannot call GetSessionToken with session credentials"));
        }
    };
    let secs = duration(form, SESSION_TOKEN_DEFAULT.min(max), max)?;
    let session = new_credentials(SessionPrincipal::User { user_id }, None, &IamTags::default(), now_ms, secs);
    state.store.create_session(&session).map_err(ApiError::from)?;
    let mut x = Xml::new();
    write_credentials(&mut x, &session);
    Ok(x)
}
