//! Roles: trust policy (`AssumeRolePolicyDocument`), description, maximum session duration, tags.

use nimbus_model::iam::{IamTags, MaxSessionDuration, RoleName};
use nimbus_model::policy::{PolicyKind, limits};
use nimbus_store::iam::{IamRole, NewRole, RoleUpdate};

use super::{Cx, encode_document, invalid, path, path_prefix, policy_document, store_error, tags, write_tags};
use crate::api::ApiError;
use crate::api::query::{Form, Xml, iso_time, page, truncation, validation};

type Result<T> = std::result::Result<T, ApiError>;

fn role_name(form: &Form) -> Result<RoleName> {
    RoleName::parse(form.required("RoleName")?).map_err(invalid)
}

/// A trust policy: IAM's grammar for trust policies, at most the default quota's size.
fn trust_policy(text: &str) -> Result<String> {
    policy_document(text, PolicyKind::Trust, limits::TRUST_POLICY_CHARS, || {
        format!("Cannot exceed quota for ACLSizePerRole: {}", limits::TRUST_POLICY_CHARS)
    })?;
    Ok(text.to_owned())
}

/// `Description`: at most 1000 characters of `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`.
fn description(form: &Form) -> Result<Option<String>> {
    let Some(d) = form.get("Description") else { return Ok(None) };
    if d.chars().count() > 1000 {
        return Err(validation(format!(
            "1 validation error detected: Value '{d}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000"
        )));
    }
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{a1}'..='\u{ff}');
    if !d.chars().all(allowed) {
        return Err(validation(format!(
            r"1 validation error detected: Value '{d}' at 'description' failed to satisfy constraint: Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*"
        )));
    }
    Ok(Some(d.to_owned()))
}

fn max_session(form: &Form) -> Result<Option<MaxSessionDuration>> {
    form.int("MaxSessionDuration")?.map(MaxSessionDuration::new).transpose().map_err(invalid)
}

pub fn role_arn(cx: &Cx<'_>, role: &IamRole) -> String {
    cx.arn("role", &role.path, &role.name)
}

fn write_role(cx: &Cx<'_>, x: &mut Xml, role: &IamRole) {
    x.text("Path", &role.path)
        .text("RoleName", &role.name)
        .text("RoleId", &role.id)
        .text("Arn", role_arn(cx, role))
        .text("CreateDate", iso_time(role.created_ms))
        .text("AssumeRolePolicyDocument", encode_document(&role.trust_policy))
        .opt("Description", role.description.as_deref())
        .text("MaxSessionDuration", role.max_session.get());
    write_tags(x, &role.tags);
}

pub fn create_role(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let name = role_name(form)?;
    let new = NewRole {
        id: super::new_id("AROA"),
        path: path(form)?,
        trust_policy: trust_policy(form.required("AssumeRolePolicyDocument")?)?,
        description: description(form)?,
        max_session: max_session(form)?.unwrap_or_default(),
        tags: tags(form)?,
        now_ms: cx.now_ms,
        name,
    };
    let role = cx.state.store.create_role(&new).map_err(store_error)?;
    let mut x = Xml::new();
    x.node("Role", |x| write_role(cx, x, &role));
    Ok(Some(x))
}

pub fn get_role(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let role = cx.state.store.get_role(&role_name(form)?).map_err(store_error)?;
    let mut x = Xml::new();
    x.node("Role", |x| {
        write_role(cx, x, &role);
        x.node("RoleLastUsed", |_| {});
    });
    Ok(Some(x))
}

pub fn list_roles(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let roles = cx.state.store.list_roles(&path_prefix(form)?).map_err(store_error)?;
    let (roles, next) = page(roles, form)?;
    let mut x = Xml::new();
    // ListRoles leaves tags out, as IAM does.
    x.members("Roles", &roles, |x, role| write_role(cx, x, &IamRole { tags: IamTags::default(), ..role.clone() }));
    truncation(&mut x, next);
    Ok(Some(x))
}

pub fn update_role(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let update = RoleUpdate { description: description(form)?, max_session: max_session(form)?, ..Default::default() };
    cx.state.store.update_role(&role_name(form)?, &update).map_err(store_error)?;
    Ok(Some(Xml::new()))
}

pub fn update_role_description(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let name = role_name(form)?;
    let update = RoleUpdate { description: Some(description(form)?.unwrap_or_default()), ..Default::default() };
    cx.state.store.update_role(&name, &update).map_err(store_error)?;
    let role = cx.state.store.get_role(&name).map_err(store_error)?;
    let mut x = Xml::new();
    x.node("Role", |x| write_role(cx, x, &role));
    Ok(Some(x))
}

pub fn delete_role(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    cx.state.store.delete_role(&role_name(form)?).map_err(store_error)?;
    Ok(None)
}

pub fn update_assume_role_policy(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let name = role_name(form)?;
    let update =
        RoleUpdate { trust_policy: Some(trust_policy(form.required("PolicyDocument")?)?), ..Default::default() };
    cx.state.store.update_role(&name, &update).map_err(store_error)?;
    Ok(None)
}

pub fn tag_role(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let name = role_name(form)?;
    let role = cx.state.store.get_role(&name).map_err(store_error)?;
    let merged = role.tags.merged(&tags(form)?).map_err(|e| super::limit_exceeded(e.message))?;
    cx.state.store.update_role(&name, &RoleUpdate { tags: Some(merged), ..Default::default() }).map_err(store_error)?;
    Ok(None)
}

pub fn untag_role(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let name = role_name(form)?;
    let keys = form.list("TagKeys");
    IamTags::check_keys(&keys).map_err(invalid)?;
    let role = cx.state.store.get_role(&name).map_err(store_error)?;
    let update = RoleUpdate { tags: Some(role.tags.without(&keys)), ..Default::default() };
    cx.state.store.update_role(&name, &update).map_err(store_error)?;
    Ok(None)
}

pub fn list_role_tags(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let role = cx.state.store.get_role(&role_name(form)?).map_err(store_error)?;
    let tags: Vec<_> = role.tags.iter().collect();
    let (tags, next) = page(tags, form)?;
    let mut x = Xml::new();
    x.members("Tags", tags, |x, (k, v)| {
        x.text("Key", k).text("Value", v);
    });
    truncation(&mut x, next);
    Ok(Some(x))
}
