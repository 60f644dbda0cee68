//! The IAM API (botocore's `iam` model, query protocol, version 2010-05-08): users and access keys,
//! groups, roles, managed and inline policies. The other side is any IAM client (AWS CLI, SDKs,
//! infrastructure tools) whose request verified with a key Nimbus holds; the form is parsed here into
//! the model's IAM types, policy documents by the policy module's parser, before the store sees them.
//!
//! Files: `users.rs` (users, access keys, groups), `roles.rs`, `policies.rs` (managed policies and
//! versions, attachments, inline policies), `managed.rs` (the AWS managed policies Nimbus knows).

pub mod managed;
mod policies;
mod roles;
mod users;

use axum::http::StatusCode;
use axum::response::Response;
use nimbus_model::ValidationError;
use nimbus_model::iam::{IamPath, IamTags};
use nimbus_model::policy::{PolicyDocument, PolicyKind, chars_without_whitespace};
use nimbus_store::StoreError;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::query::{self, Form, Service, Xml};
use super::{ApiError, SharedState};
use crate::auth::{Caller, Principal};
use crate::authz::{self, Identity};

/// What every IAM handler is given.
pub struct Cx<'a> {
    pub state: &'a SharedState,
    pub caller: Option<&'a Caller>,
    /// Who decides the request (`authz`); `None` with authentication off.
    pub identity: Option<&'a Identity>,
    pub now_ms: i64,
}

impl Cx<'_> {
    pub fn account(&self) -> &str {
        &self.state.arns.account
    }

    pub fn principal(&self) -> &Principal {
        self.caller.map(|c| &c.principal).unwrap_or(&Principal::Root)
    }

    /// `arn:aws:iam::<account>:<kind><path><name>`
    pub fn arn(&self, kind: &str, path: &IamPath, name: impl std::fmt::Display) -> String {
        format!("arn:aws:iam::{}:{kind}{path}{name}", self.account())
    }
}

type Handler = fn(&Cx<'_>, &Form) -> Result<Option<Xml>, ApiError>;

/// The operation's handler, by `Action`.
fn handler(action: &str) -> Option<Handler> {
    Some(match action {
        "CreateUser" => users::create_user,
        "GetUser" => users::get_user,
        "ListUsers" => users::list_users,
        "UpdateUser" => users::update_user,
        "DeleteUser" => users::delete_user,
        "TagUser" => users::tag_user,
        "UntagUser" => users::untag_user,
        "ListUserTags" => users::list_user_tags,
        "CreateAccessKey" => users::create_access_key,
        "ListAccessKeys" => users::list_access_keys,
        "UpdateAccessKey" => users::update_access_key,
        "DeleteAccessKey" => users::delete_access_key,
        "GetAccessKeyLastUsed" => users::get_access_key_last_used,
        "CreateGroup" => users::create_group,
        "GetGroup" => users::get_group,
        "ListGroups" => users::list_groups,
        "DeleteGroup" => users::delete_group,
        "AddUserToGroup" => users::add_user_to_group,
        "RemoveUserFromGroup" => users::remove_user_from_group,
        "ListGroupsForUser" => users::list_groups_for_user,
        "CreateRole" => roles::create_role,
        "GetRole" => roles::get_role,
        "ListRoles" => roles::list_roles,
        "UpdateRole" => roles::update_role,
        "UpdateRoleDescription" => roles::update_role_description,
        "DeleteRole" => roles::delete_role,
        "UpdateAssumeRolePolicy" => roles::update_assume_role_policy,
        "TagRole" => roles::tag_role,
        "UntagRole" => roles::untag_role,
        "ListRoleTags" => roles::list_role_tags,
        "CreatePolicy" => policies::create_policy,
        "GetPolicy" => policies::get_policy,
        "ListPolicies" => policies::list_policies,
        "DeletePolicy" => policies::delete_policy,
        "CreatePolicyVersion" => policies::create_policy_version,
        "GetPolicyVersion" => policies::get_policy_version,
        "ListPolicyVersions" => policies::list_policy_versions,
        "DeletePolicyVersion" => policies::delete_policy_version,
        "SetDefaultPolicyVersion" => policies::set_default_policy_version,
        "AttachUserPolicy" => policies::attach_user_policy,
        "AttachGroupPolicy" => policies::attach_group_policy,
        "AttachRolePolicy" => policies::attach_role_policy,
        "DetachUserPolicy" => policies::detach_user_policy,
        "DetachGroupPolicy" => policies::detach_group_policy,
        "DetachRolePolicy" => policies::detach_role_policy,
        "ListAttachedUserPolicies" => policies::list_attached_user_policies,
        "ListAttachedGroupPolicies" => policies::list_attached_group_policies,
        "ListAttachedRolePolicies" => policies::list_attached_role_policies,
        "ListEntitiesForPolicy" => policies::list_entities_for_policy,
        "PutUserPolicy" => policies::put_user_policy,
        "PutGroupPolicy" => policies::put_group_policy,
        "PutRolePolicy" => policies::put_role_policy,
        "GetUserPolicy" => policies::get_user_policy,
        "GetGroupPolicy" => policies::get_group_policy,
        "GetRolePolicy" => policies::get_role_policy,
        "DeleteUserPolicy" => policies::delete_user_policy,
        "DeleteGroupPolicy" => policies::delete_group_policy,
        "DeleteRolePolicy" => policies::delete_role_policy,
        "ListUserPolicies" => policies::list_user_policies,
        "ListGroupPolicies" => policies::list_group_policies,
        "ListRolePolicies" => policies::list_role_policies,
        _ => return None,
    })
}

/// Serves one IAM request. The store calls are short and synchronous, as elsewhere in the API.
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
        let Some(handler) = handler(&action) else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!("Could not find operation {action} for version 2010-05-08"),
            ));
        };
        let now_ms = crate::clock::now_ms();
        let cx = Cx { state, caller, identity, now_ms };
        authorize(&cx, &action, &form)?;
        let result = handler(&cx, &form)?;
        Ok((action, result))
    })();
    match result {
        Ok((action, result)) => query::respond(Service::Iam, &action, request_id, result),
        Err(e) => query::error_response(Service::Iam, &e),
    }
}

/// Decides an IAM request by a user or role session with the evaluator: the action is `iam:<Action>`,
/// the resource the ARN of the entity it names (IAM's resource types: user, group, role, policy), `*`
/// for listings of everything. Entity ARNs are built with the root path `/`, so policies that name
/// users or roles under another path by their full ARN do not match here (a known gap).
fn authorize(cx: &Cx<'_>, action: &str, form: &Form) -> Result<(), ApiError> {
    let Some(caller) = cx.caller else { return Ok(()) };
    if matches!(cx.identity, None | Some(Identity::Root(_))) {
        return Ok(());
    }
    let Some(iam_action) = nimbus_model::policy::Action::parse(&format!("iam:{action}")) else {
        return Ok(());
    };
    let root = IamPath::root();
    let named = |field: &str, kind: &str| form.get(field).map(|name| cx.arn(kind, &root, name));
    // Listings of one kind are on that kind's path prefix, as AWS names them in its denials
    // ("… iam:ListUsers on resource: arn:aws:iam::<account>:user/").
    let listing =
        |kind: &str| Some(format!("arn:aws:iam::{}:{kind}{}", cx.account(), form.get("PathPrefix").unwrap_or("/")));
    let resource = match action {
        "ListUsers" => listing("user"),
        "ListGroups" => listing("group"),
        "ListRoles" => listing("role"),
        "ListPolicies" => listing("policy"),
        "ListGroupsForUser" => named("UserName", "user"),
        _ if action.contains("Group") => named("GroupName", "group"),
        _ if action.contains("Role") => named("RoleName", "role"),
        _ if action.contains("Polic") && !action.contains("User") => {
            form.get("PolicyArn").map(str::to_owned).or_else(|| named("PolicyName", "policy"))
        }
        _ if action.contains("User") || action.contains("AccessKey") => {
            named("UserName", "user").or_else(|| match &caller.principal {
                Principal::User { arn, .. } => Some(arn.clone()),
                _ => None,
            })
        }
        _ => None,
    };
    let resource = resource.unwrap_or_else(|| "*".to_owned());
    authz::authorize(cx.identity, &iam_action, &resource)
        .map_err(|denied| ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", denied.message))
}

/// IAM's answers to what the store refused.
pub fn store_error(e: StoreError) -> ApiError {
    let conflict = |code, message: String| ApiError::new(StatusCode::CONFLICT, code, message);
    match e {
        StoreError::NotFound { what, name } => no_such_entity(match what {
            "user" | "group" | "role" => format!("The {what} with name {name} cannot be found."),
            "policy" => format!("Policy {name} was not found."),
            "access key" => format!("The Access Key with id {name} cannot be found."),
            "attachment" => format!("Policy {name} was not attached."),
            "group member" => format!("The user with name {name} is not a member of the group."),
            _ => format!("The {what} {name} cannot be found."),
        }),
        StoreError::Conflict { what, name } => conflict(
            "EntityAlreadyExists",
            match what {
                "policy" => format!("A policy called {name} already exists. Duplicate names are not allowed."),
                _ => format!("{} with name {name} already exists.", capitalized(what)),
            },
        ),
        StoreError::DeleteConflict { message } => conflict("DeleteConflict", message),
        StoreError::LimitExceeded { message } => conflict("LimitExceeded", message),
        other => ApiError::from(other),
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

pub fn no_such_entity(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NoSuchEntity", message)
}

pub fn invalid_input(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidInput", message)
}

pub fn limit_exceeded(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "LimitExceeded", message)
}

/// A model constraint refused: IAM calls every such error `ValidationError`, except the few the
/// model marks as semantic (`InvalidInput`).
pub fn invalid(e: ValidationError) -> ApiError {
    match e.kind {
        nimbus_model::ValidationKind::Validation => query::validation(e.message),
        nimbus_model::ValidationKind::InvalidParameterValue => invalid_input(e.message),
    }
}

/// A policy document of `kind`, no longer than `max_chars` (IAM's count: without whitespace), that
/// parses; over the size it is `LimitExceeded` with `over_limit`'s message, malformed it is
/// `MalformedPolicyDocument` with AWS's message.
pub fn policy_document(
    text: &str,
    kind: PolicyKind,
    max_chars: usize,
    over_limit: impl FnOnce() -> String,
) -> Result<PolicyDocument, ApiError> {
    if chars_without_whitespace(text) > max_chars {
        return Err(limit_exceeded(over_limit()));
    }
    // A hard bound before parsing, whitespace included, so padding cannot make the parser work.
    if text.len() > 131_072 {
        return Err(limit_exceeded(over_limit()));
    }
    PolicyDocument::parse(kind, text)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, nimbus_model::policy::PolicyError::CODE, e.to_string()))
}

/// IAM returns policy documents URL-encoded (RFC 3986); botocore decodes them.
const DOCUMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

pub fn encode_document(text: &str) -> String {
    utf8_percent_encode(text, DOCUMENT).to_string()
}

/// `Path` (default `/`), and `PathPrefix` for listings (default `/`).
pub fn path(form: &Form) -> Result<IamPath, ApiError> {
    form.get("Path").map(IamPath::parse).transpose().map_err(invalid).map(Option::unwrap_or_default)
}

pub fn path_prefix(form: &Form) -> Result<String, ApiError> {
    let prefix = form.get("PathPrefix").unwrap_or("/");
    if prefix.is_empty()
        || prefix.len() > 512
        || !prefix.starts_with('/')
        || !prefix.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        return Err(query::validation(format!(
            r"1 validation error detected: Value '{prefix}' at 'pathPrefix' failed to satisfy constraint: Member must satisfy regular expression pattern: \u002F[\u0021-\u007F]*"
        )));
    }
    Ok(prefix.to_owned())
}

pub fn tags(form: &Form) -> Result<IamTags, ApiError> {
    IamTags::parse(form.tags("Tags")).map_err(invalid)
}

pub fn write_tags(x: &mut Xml, tags: &IamTags) {
    if !tags.is_empty() {
        x.members("Tags", tags.iter(), |x, (k, v)| {
            x.text("Key", k).text("Value", v);
        });
    }
}

/// A fresh unique id: the kind's four-letter prefix and 17 characters, as AWS's are 21 long.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", crate::credentials::random_id(17))
}
