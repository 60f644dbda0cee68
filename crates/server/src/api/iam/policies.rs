//! Managed policies (customer and AWS), their versions, attachments to users, groups and roles, and
//! inline policies.

use nimbus_model::iam::{PolicyName, UserName};
use nimbus_model::policy::{PolicyKind, chars_without_whitespace, limits};
use nimbus_store::StoreError;
use nimbus_store::iam::{EntityKind, ManagedPolicy, NewPolicy};

use super::managed::{self, AwsPolicy};
use super::{Cx, encode_document, invalid, no_such_entity, path, path_prefix, policy_document, store_error, tags};
use crate::api::ApiError;
use crate::api::query::{Form, Xml, iso_time, page, truncation, validation};

type Result<T> = std::result::Result<T, ApiError>;

fn policy_arn(form: &Form) -> Result<String> {
    let arn = form.required("PolicyArn")?;
    if !(20..=2048).contains(&arn.len()) {
        return Err(validation(format!(
            "1 validation error detected: Value '{arn}' at 'policyArn' failed to satisfy constraint: Member must have length {}",
            if arn.len() < 20 { "greater than or equal to 20" } else { "less than or equal to 2048" }
        )));
    }
    if !arn.starts_with("arn:") || arn.split(':').count() < 6 {
        return Err(super::invalid_input(format!("ARN {arn} is not valid.")));
    }
    Ok(arn.to_owned())
}

/// `v3` → 3.
fn version_id(form: &Form) -> Result<u32> {
    let id = form.required("VersionId")?;
    id.strip_prefix('v').and_then(|n| n.parse::<u32>().ok()).filter(|n| *n >= 1).ok_or_else(|| {
        validation(format!(
            r"1 validation error detected: Value '{id}' at 'versionId' failed to satisfy constraint: Member must satisfy regular expression pattern: v[1-9][0-9]*(\.[A-Za-z0-9-]*)?"
        ))
    })
}

fn managed_document(text: &str) -> Result<String> {
    policy_document(text, PolicyKind::Identity, limits::MANAGED_POLICY_CHARS, || {
        format!("Cannot exceed quota for PolicySize: {}", limits::MANAGED_POLICY_CHARS)
    })?;
    Ok(text.to_owned())
}

fn write_customer(x: &mut Xml, p: &ManagedPolicy, with_description: bool) {
    x.text("PolicyName", &p.name)
        .text("PolicyId", &p.id)
        .text("Arn", &p.arn)
        .text("Path", &p.path)
        .text("DefaultVersionId", format!("v{}", p.default_version))
        .text("AttachmentCount", p.attachment_count)
        .text("PermissionsBoundaryUsageCount", 0)
        .text("IsAttachable", true);
    if with_description {
        x.opt("Description", p.description.as_deref());
    }
    x.text("CreateDate", iso_time(p.created_ms)).text("UpdateDate", iso_time(p.updated_ms));
    super::write_tags(x, &p.tags);
}

fn write_aws(x: &mut Xml, p: &AwsPolicy, attachments: u32, with_description: bool) {
    x.text("PolicyName", p.name)
        .text("PolicyId", p.id)
        .text("Arn", p.arn())
        .text("Path", p.path)
        .text("DefaultVersionId", p.version)
        .text("AttachmentCount", attachments)
        .text("PermissionsBoundaryUsageCount", 0)
        .text("IsAttachable", true);
    if with_description {
        x.text("Description", p.description);
    }
    x.text("CreateDate", iso_time(p.created * 1000)).text("UpdateDate", iso_time(p.updated * 1000));
}

pub fn create_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let name = PolicyName::parse(form.required("PolicyName")?).map_err(invalid)?;
    let path = path(form)?;
    let new = NewPolicy {
        id: super::new_id("ANPA"),
        arn: cx.arn("policy", &path, &name),
        document: managed_document(form.required("PolicyDocument")?)?,
        description: form.get("Description").map(str::to_owned),
        tags: tags(form)?,
        now_ms: cx.now_ms,
        name,
        path,
    };
    if new.description.as_ref().is_some_and(|d| d.chars().count() > 1000) {
        return Err(validation(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000",
        ));
    }
    let policy = cx.state.store.create_policy(&new).map_err(store_error)?;
    let mut x = Xml::new();
    x.node("Policy", |x| write_customer(x, &policy, false));
    Ok(Some(x))
}

pub fn get_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let arn = policy_arn(form)?;
    let mut x = Xml::new();
    if let Some(aws) = managed::find(&arn) {
        let attachments = cx.state.store.attachment_count(&arn).map_err(store_error)?;
        x.node("Policy", |x| write_aws(x, aws, attachments, true));
    } else {
        let policy = cx.state.store.get_policy(&arn).map_err(store_error)?;
        x.node("Policy", |x| write_customer(x, &policy, true));
    }
    Ok(Some(x))
}

pub fn list_policies(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let scope = form.get("Scope").unwrap_or("All");
    if !matches!(scope, "All" | "AWS" | "Local") {
        return Err(validation(format!(
            "1 validation error detected: Value '{scope}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"
        )));
    }
    let only_attached = form.bool("OnlyAttached").unwrap_or(false);
    let prefix = path_prefix(form)?;
    enum Item {
        Aws(&'static AwsPolicy, u32),
        Local(ManagedPolicy),
    }
    let mut items = Vec::new();
    if scope != "Local" {
        for p in managed::POLICIES.iter().filter(|p| p.path.starts_with(prefix.as_str())) {
            items.push(Item::Aws(p, cx.state.store.attachment_count(&p.arn()).map_err(store_error)?));
        }
    }
    if scope != "AWS" {
        items.extend(cx.state.store.list_policies(&prefix).map_err(store_error)?.into_iter().map(Item::Local));
    }
    items.retain(|i| {
        !only_attached
            || match i {
                Item::Aws(_, n) => *n > 0,
                Item::Local(p) => p.attachment_count > 0,
            }
    });
    let (items, next) = page(items, form)?;
    let mut x = Xml::new();
    x.members("Policies", &items, |x, item| match item {
        Item::Aws(p, n) => write_aws(x, p, *n, false),
        Item::Local(p) => write_customer(x, p, false),
    });
    truncation(&mut x, next);
    Ok(Some(x))
}

pub fn delete_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let arn = policy_arn(form)?;
    if managed::find(&arn).is_some() {
        return Err(aws_policy_read_only(&arn));
    }
    cx.state.store.delete_policy(&arn).map_err(store_error)?;
    Ok(None)
}

fn aws_policy_read_only(arn: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "AccessDenied",
        format!("Policy {arn} is an AWS managed policy and cannot be changed."),
    )
}

pub fn create_policy_version(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let arn = policy_arn(form)?;
    if managed::find(&arn).is_some() {
        return Err(aws_policy_read_only(&arn));
    }
    let document = managed_document(form.required("PolicyDocument")?)?;
    let set_default = form.bool("SetAsDefault").unwrap_or(false);
    let version = cx.state.store.create_policy_version(&arn, &document, set_default, cx.now_ms).map_err(store_error)?;
    let mut x = Xml::new();
    x.node("PolicyVersion", |x| {
        x.text("VersionId", format!("v{version}"))
            .text("IsDefaultVersion", set_default)
            .text("CreateDate", iso_time(cx.now_ms));
    });
    Ok(Some(x))
}

fn version_not_found(arn: &str, version: u32) -> ApiError {
    no_such_entity(format!("Policy {arn} version v{version} does not exist or is not attachable."))
}

pub fn get_policy_version(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let arn = policy_arn(form)?;
    let version = version_id(form)?;
    let (document, id, is_default, created) = if let Some(aws) = managed::find(&arn) {
        if format!("v{version}") != aws.version {
            return Err(version_not_found(&arn, version));
        }
        (aws.document.to_owned(), aws.version.to_owned(), true, aws.created * 1000)
    } else {
        let v = cx.state.store.get_policy_version(&arn, version).map_err(|e| match e {
            StoreError::NotFound { what: "policy version", .. } => version_not_found(&arn, version),
            other => store_error(other),
        })?;
        (v.document, format!("v{}", v.version), v.is_default, v.created_ms)
    };
    let mut x = Xml::new();
    x.node("PolicyVersion", |x| {
        x.text("Document", encode_document(&document))
            .text("VersionId", id)
            .text("IsDefaultVersion", is_default)
            .text("CreateDate", iso_time(created));
    });
    Ok(Some(x))
}

pub fn list_policy_versions(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let arn = policy_arn(form)?;
    let versions: Vec<(String, bool, i64)> = if let Some(aws) = managed::find(&arn) {
        vec![(aws.version.to_owned(), true, aws.created * 1000)]
    } else {
        let versions = cx.state.store.list_policy_versions(&arn).map_err(store_error)?;
        versions.into_iter().map(|v| (format!("v{}", v.version), v.is_default, v.created_ms)).collect()
    };
    let (versions, next) = page(versions, form)?;
    let mut x = Xml::new();
    x.members("Versions", &versions, |x, (id, default, created)| {
        x.text("VersionId", id).text("IsDefaultVersion", default).text("CreateDate", iso_time(*created));
    });
    truncation(&mut x, next);
    Ok(Some(x))
}

pub fn delete_policy_version(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let arn = policy_arn(form)?;
    let version = version_id(form)?;
    cx.state.store.delete_policy_version(&arn, version).map_err(|e| match e {
        StoreError::NotFound { what: "policy version", .. } => version_not_found(&arn, version),
        other => store_error(other),
    })?;
    Ok(None)
}

pub fn set_default_policy_version(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let arn = policy_arn(form)?;
    let version = version_id(form)?;
    cx.state.store.set_default_policy_version(&arn, version, cx.now_ms).map_err(|e| match e {
        StoreError::NotFound { what: "policy version", .. } => version_not_found(&arn, version),
        other => store_error(other),
    })?;
    Ok(None)
}

/// The entity named by `UserName`/`GroupName`/`RoleName`, validated as that kind's name.
fn entity(form: &Form, kind: EntityKind) -> Result<String> {
    let name = match kind {
        EntityKind::User => UserName::parse(form.required("UserName")?).map(|n| n.to_string()),
        EntityKind::Group => nimbus_model::iam::GroupName::parse(form.required("GroupName")?).map(|n| n.to_string()),
        EntityKind::Role => nimbus_model::iam::RoleName::parse(form.required("RoleName")?).map(|n| n.to_string()),
    };
    name.map_err(invalid)
}

fn not_attachable(arn: &str) -> ApiError {
    no_such_entity(format!("Policy {arn} does not exist or is not attachable."))
}

fn attach(cx: &Cx<'_>, form: &Form, kind: EntityKind) -> Result<Option<Xml>> {
    let name = entity(form, kind)?;
    let arn = policy_arn(form)?;
    let own = format!("arn:aws:iam::{}:policy/", cx.account());
    if managed::find(&arn).is_none() && !arn.starts_with(&own) {
        return Err(not_attachable(&arn));
    }
    cx.state.store.attach_policy(kind, &name, &arn).map_err(|e| match e {
        StoreError::NotFound { what: "policy", .. } => not_attachable(&arn),
        other => store_error(other),
    })?;
    Ok(None)
}

fn detach(cx: &Cx<'_>, form: &Form, kind: EntityKind) -> Result<Option<Xml>> {
    let name = entity(form, kind)?;
    let arn = policy_arn(form)?;
    cx.state.store.detach_policy(kind, &name, &arn).map_err(store_error)?;
    Ok(None)
}

fn list_attached(cx: &Cx<'_>, form: &Form, kind: EntityKind) -> Result<Option<Xml>> {
    let name = entity(form, kind)?;
    let prefix = path_prefix(form)?;
    let arns = cx.state.store.attached_policies(kind, &name).map_err(store_error)?;
    let attached: Vec<(String, String)> = arns
        .into_iter()
        .filter_map(|arn| {
            // arn:aws:iam::<account>:policy<path><name>
            let rest = arn.split_once(":policy").map(|(_, r)| r.to_owned())?;
            let (path, policy) = rest.rsplit_once('/')?;
            let path = format!("{path}/");
            path.starts_with(prefix.as_str()).then(|| (policy.to_owned(), arn.clone()))
        })
        .collect();
    let (attached, next) = page(attached, form)?;
    let mut x = Xml::new();
    x.members("AttachedPolicies", &attached, |x, (policy, arn)| {
        x.text("PolicyName", policy).text("PolicyArn", arn);
    });
    truncation(&mut x, next);
    Ok(Some(x))
}

pub fn attach_user_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    attach(cx, form, EntityKind::User)
}
pub fn attach_group_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    attach(cx, form, EntityKind::Group)
}
pub fn attach_role_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    attach(cx, form, EntityKind::Role)
}
pub fn detach_user_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    detach(cx, form, EntityKind::User)
}
pub fn detach_group_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    detach(cx, form, EntityKind::Group)
}
pub fn detach_role_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    detach(cx, form, EntityKind::Role)
}
pub fn list_attached_user_policies(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    list_attached(cx, form, EntityKind::User)
}
pub fn list_attached_group_policies(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    list_attached(cx, form, EntityKind::Group)
}
pub fn list_attached_role_policies(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    list_attached(cx, form, EntityKind::Role)
}

pub fn list_entities_for_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let arn = policy_arn(form)?;
    if managed::find(&arn).is_none() {
        cx.state.store.get_policy(&arn).map_err(store_error)?;
    }
    let filter = form.get("EntityFilter");
    let entities = cx.state.store.policy_entities(&arn).map_err(store_error)?;
    let (entities, next) = page(entities, form)?;
    let of = |kind: EntityKind| {
        let wanted = filter.is_none_or(|f| f.eq_ignore_ascii_case(kind.noun()));
        entities.iter().filter(move |(k, _, _)| *k == kind && wanted)
    };
    let mut x = Xml::new();
    x.members("PolicyGroups", of(EntityKind::Group), |x, (_, name, id)| {
        x.text("GroupName", name).text("GroupId", id);
    });
    x.members("PolicyUsers", of(EntityKind::User), |x, (_, name, id)| {
        x.text("UserName", name).text("UserId", id);
    });
    x.members("PolicyRoles", of(EntityKind::Role), |x, (_, name, id)| {
        x.text("RoleName", name).text("RoleId", id);
    });
    truncation(&mut x, next);
    Ok(Some(x))
}

/// IAM's quota for all inline policies of one entity together.
fn inline_quota(kind: EntityKind) -> usize {
    match kind {
        EntityKind::User => limits::USER_INLINE_CHARS,
        EntityKind::Group => limits::GROUP_INLINE_CHARS,
        EntityKind::Role => limits::ROLE_INLINE_CHARS,
    }
}

fn inline_name(form: &Form) -> Result<PolicyName> {
    PolicyName::parse(form.required("PolicyName")?).map_err(invalid)
}

fn inline_not_found(kind: EntityKind, policy: &str) -> ApiError {
    no_such_entity(format!("The {} policy with name {policy} cannot be found.", kind.noun()))
}

fn put_inline(cx: &Cx<'_>, form: &Form, kind: EntityKind) -> Result<Option<Xml>> {
    let name = entity(form, kind)?;
    let policy = inline_name(form)?;
    let text = form.required("PolicyDocument")?;
    let store = &cx.state.store;
    // The quota counts every inline policy of the entity, this one as it will be.
    let mut others = 0;
    for other in store.inline_policy_names(kind, &name).map_err(store_error)? {
        if other != policy.as_str() {
            others += chars_without_whitespace(&store.inline_policy(kind, &name, &other).map_err(store_error)?);
        }
    }
    let quota = inline_quota(kind);
    policy_document(text, PolicyKind::Identity, quota.saturating_sub(others), || {
        format!("Maximum policy size of {quota} bytes exceeded for {} {name}", kind.noun())
    })?;
    store.put_inline_policy(kind, &name, policy.as_str(), text).map_err(store_error)?;
    Ok(None)
}

fn get_inline(cx: &Cx<'_>, form: &Form, kind: EntityKind, name_field: &str) -> Result<Option<Xml>> {
    let name = entity(form, kind)?;
    let policy = inline_name(form)?;
    let document = cx.state.store.inline_policy(kind, &name, policy.as_str()).map_err(|e| match e {
        StoreError::NotFound { what: "inline policy", .. } => inline_not_found(kind, policy.as_str()),
        other => store_error(other),
    })?;
    let mut x = Xml::new();
    x.text(name_field, &name).text("PolicyName", &policy).text("PolicyDocument", encode_document(&document));
    Ok(Some(x))
}

fn delete_inline(cx: &Cx<'_>, form: &Form, kind: EntityKind) -> Result<Option<Xml>> {
    let name = entity(form, kind)?;
    let policy = inline_name(form)?;
    cx.state.store.delete_inline_policy(kind, &name, policy.as_str()).map_err(|e| match e {
        StoreError::NotFound { what: "inline policy", .. } => inline_not_found(kind, policy.as_str()),
        other => store_error(other),
    })?;
    Ok(None)
}

fn list_inline(cx: &Cx<'_>, form: &Form, kind: EntityKind) -> Result<Option<Xml>> {
    let name = entity(form, kind)?;
    let names = cx.state.store.inline_policy_names(kind, &name).map_err(store_error)?;
    let (names, next) = page(names, form)?;
    let mut x = Xml::new();
    x.strings("PolicyNames", &names);
    truncation(&mut x, next);
    Ok(Some(x))
}

pub fn put_user_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    put_inline(cx, form, EntityKind::User)
}
pub fn put_group_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    put_inline(cx, form, EntityKind::Group)
}
pub fn put_role_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    put_inline(cx, form, EntityKind::Role)
}
pub fn get_user_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    get_inline(cx, form, EntityKind::User, "UserName")
}
pub fn get_group_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    get_inline(cx, form, EntityKind::Group, "GroupName")
}
pub fn get_role_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    get_inline(cx, form, EntityKind::Role, "RoleName")
}
pub fn delete_user_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    delete_inline(cx, form, EntityKind::User)
}
pub fn delete_group_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    delete_inline(cx, form, EntityKind::Group)
}
pub fn delete_role_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    delete_inline(cx, form, EntityKind::Role)
}
pub fn list_user_policies(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    list_inline(cx, form, EntityKind::User)
}
pub fn list_group_policies(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    list_inline(cx, form, EntityKind::Group)
}
pub fn list_role_policies(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    list_inline(cx, form, EntityKind::Role)
}
