//! Users, their access keys and tags; groups and membership.

use nimbus_model::iam::{GroupName, IamTags, UserName};
use nimbus_store::iam::{IamGroup, IamUser, NewUser};

use super::{Cx, invalid, no_such_entity, path, path_prefix, store_error, tags, write_tags};
use crate::api::ApiError;
use crate::api::query::{Form, Xml, iso_time, page, truncation, validation};
use crate::auth::Principal;

type Result<T> = std::result::Result<T, ApiError>;

fn user_name(form: &Form) -> Result<UserName> {
    UserName::parse(form.required("UserName")?).map_err(invalid)
}

fn group_name(form: &Form) -> Result<GroupName> {
    GroupName::parse(form.required("GroupName")?).map_err(invalid)
}

/// `UserName`, or the calling user's own when omitted (as IAM does for a user's credentials).
fn user_or_caller(cx: &Cx<'_>, form: &Form) -> Result<Option<UserName>> {
    if form.get("UserName").is_some() {
        return user_name(form).map(Some);
    }
    match cx.principal() {
        Principal::User { name, .. } => UserName::parse(name).map(Some).map_err(invalid),
        Principal::Root => Ok(None),
        _ => Err(validation("Must specify userName when calling with non-User credentials")),
    }
}

fn write_user(cx: &Cx<'_>, x: &mut Xml, user: &IamUser) {
    x.text("Path", &user.path)
        .text("UserName", &user.name)
        .text("UserId", &user.id)
        .text("Arn", cx.arn("user", &user.path, &user.name))
        .text("CreateDate", iso_time(user.created_ms));
    write_tags(x, &user.tags);
}

fn write_group(cx: &Cx<'_>, x: &mut Xml, group: &IamGroup) {
    x.text("Path", &group.path)
        .text("GroupName", &group.name)
        .text("GroupId", &group.id)
        .text("Arn", cx.arn("group", &group.path, &group.name))
        .text("CreateDate", iso_time(group.created_ms));
}

pub fn create_user(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let new = NewUser {
        id: super::new_id("AIDA"),
        name: user_name(form)?,
        path: path(form)?,
        tags: tags(form)?,
        now_ms: cx.now_ms,
    };
    let user = cx.state.store.create_user(&new).map_err(store_error)?;
    let mut x = Xml::new();
    x.node("User", |x| write_user(cx, x, &user));
    Ok(Some(x))
}

pub fn get_user(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let mut x = Xml::new();
    match user_or_caller(cx, form)? {
        Some(name) => {
            let user = cx.state.store.get_user(&name).map_err(store_error)?;
            x.node("User", |x| write_user(cx, x, &user));
        }
        // The root's own: IAM answers with the account as the user id and the root ARN.
        None => {
            x.node("User", |x| {
                x.text("UserId", cx.account())
                    .text("Arn", format!("arn:aws:iam::{}:root", cx.account()))
                    .text("CreateDate", iso_time(0));
            });
        }
    }
    Ok(Some(x))
}

pub fn list_users(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let users = cx.state.store.list_users(&path_prefix(form)?).map_err(store_error)?;
    let (users, next) = page(users, form)?;
    let mut x = Xml::new();
    x.members("Users", &users, |x, u| {
        x.text("Path", &u.path)
            .text("UserName", &u.name)
            .text("UserId", &u.id)
            .text("Arn", cx.arn("user", &u.path, &u.name))
            .text("CreateDate", iso_time(u.created_ms));
    });
    truncation(&mut x, next);
    Ok(Some(x))
}

pub fn update_user(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let name = user_name(form)?;
    let new_name = form.get("NewUserName").map(UserName::parse).transpose().map_err(invalid)?;
    let new_path = form.get("NewPath").map(nimbus_model::iam::IamPath::parse).transpose().map_err(invalid)?;
    cx.state.store.update_user(&name, new_name.as_ref(), new_path.as_ref()).map_err(store_error)?;
    Ok(None)
}

pub fn delete_user(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    cx.state.store.delete_user(&user_name(form)?).map_err(store_error)?;
    Ok(None)
}

pub fn tag_user(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let name = user_name(form)?;
    let user = cx.state.store.get_user(&name).map_err(store_error)?;
    let merged = user.tags.merged(&tags(form)?).map_err(|e| super::limit_exceeded(e.message))?;
    cx.state.store.set_user_tags(&name, &merged).map_err(store_error)?;
    Ok(None)
}

pub fn untag_user(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let name = user_name(form)?;
    let keys = form.list("TagKeys");
    IamTags::check_keys(&keys).map_err(invalid)?;
    let user = cx.state.store.get_user(&name).map_err(store_error)?;
    cx.state.store.set_user_tags(&name, &user.tags.without(&keys)).map_err(store_error)?;
    Ok(None)
}

pub fn list_user_tags(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let user = cx.state.store.get_user(&user_name(form)?).map_err(store_error)?;
    let mut x = Xml::new();
    x.members("Tags", user.tags.iter(), |x, (k, v)| {
        x.text("Key", k).text("Value", v);
    });
    x.text("IsTruncated", false);
    Ok(Some(x))
}

pub fn create_access_key(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let Some(name) = user_or_caller(cx, form)? else {
        return Err(validation(
            "Nimbus keeps the root key pair in its data directory's credentials file; create access keys for IAM users",
        ));
    };
    let key_id = format!("AKIA{}", crate::credentials::random_id(16));
    let secret = crate::credentials::new_secret();
    cx.state.store.create_access_key(&name, &key_id, &secret, cx.now_ms).map_err(store_error)?;
    let mut x = Xml::new();
    x.node("AccessKey", |x| {
        x.text("UserName", &name)
            .text("AccessKeyId", &key_id)
            .text("Status", "Active")
            .text("SecretAccessKey", &secret)
            .text("CreateDate", iso_time(cx.now_ms));
    });
    Ok(Some(x))
}

pub fn list_access_keys(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let Some(name) = user_or_caller(cx, form)? else {
        let mut x = Xml::new();
        x.members("AccessKeyMetadata", std::iter::empty::<()>(), |_, ()| {});
        x.text("IsTruncated", false);
        return Ok(Some(x));
    };
    let keys = cx.state.store.list_access_keys(&name).map_err(store_error)?;
    let (keys, next) = page(keys, form)?;
    let mut x = Xml::new();
    x.members("AccessKeyMetadata", &keys, |x, k| {
        x.text("UserName", &k.user_name)
            .text("AccessKeyId", &k.access_key_id)
            .text("Status", if k.active { "Active" } else { "Inactive" })
            .text("CreateDate", iso_time(k.created_ms));
    });
    truncation(&mut x, next);
    Ok(Some(x))
}

fn access_key_id(form: &Form) -> Result<String> {
    let id = form.required("AccessKeyId")?;
    if !(16..=128).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(validation(format!(
            r"1 validation error detected: Value '{id}' at 'accessKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w]+"
        )));
    }
    Ok(id.to_owned())
}

/// The user a key request is about: `UserName`, else the key's owner when the caller is root, else
/// the caller.
fn key_user(cx: &Cx<'_>, form: &Form, key_id: &str) -> Result<UserName> {
    if let Some(name) = user_or_caller(cx, form)? {
        return Ok(name);
    }
    cx.state
        .store
        .access_key_owner(key_id)
        .map_err(store_error)?
        .ok_or_else(|| no_such_entity(format!("The Access Key with id {key_id} cannot be found.")))
}

pub fn update_access_key(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let key_id = access_key_id(form)?;
    let active = match form.required("Status")? {
        "Active" => true,
        "Inactive" => false,
        other => {
            return Err(validation(format!(
                "1 validation error detected: Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
            )));
        }
    };
    let user = key_user(cx, form, &key_id)?;
    cx.state.store.set_access_key_active(&user, &key_id, active).map_err(store_error)?;
    Ok(None)
}

pub fn delete_access_key(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let key_id = access_key_id(form)?;
    let user = key_user(cx, form, &key_id)?;
    cx.state.store.delete_access_key(&user, &key_id).map_err(store_error)?;
    Ok(None)
}

/// Nimbus does not record each key's every use (that would be a write per request), so a key reads
/// as never used, which IAM reports as `N/A`.
pub fn get_access_key_last_used(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let key_id = access_key_id(form)?;
    let used = cx.state.store.access_key_last_used(&key_id).map_err(|e| match e {
        nimbus_store::StoreError::NotFound { .. } => {
            ApiError::new(axum::http::StatusCode::FORBIDDEN, "AccessDenied", "Access key not found.")
        }
        other => store_error(other),
    })?;
    let mut x = Xml::new();
    x.text("UserName", &used.user).node("AccessKeyLastUsed", |x| {
        x.opt("LastUsedDate", used.last_used_ms.map(iso_time))
            .text("ServiceName", used.service.as_deref().unwrap_or("N/A"))
            .text("Region", used.region.as_deref().unwrap_or("N/A"));
    });
    Ok(Some(x))
}

pub fn create_group(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let group = cx
        .state
        .store
        .create_group(&super::new_id("AGPA"), &group_name(form)?, &path(form)?, cx.now_ms)
        .map_err(store_error)?;
    let mut x = Xml::new();
    x.node("Group", |x| write_group(cx, x, &group));
    Ok(Some(x))
}

pub fn get_group(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let name = group_name(form)?;
    let group = cx.state.store.get_group(&name).map_err(store_error)?;
    let users = cx.state.store.group_members(&name).map_err(store_error)?;
    let (users, next) = page(users, form)?;
    let mut x = Xml::new();
    x.node("Group", |x| write_group(cx, x, &group));
    x.members("Users", &users, |x, u| write_user(cx, x, u));
    truncation(&mut x, next);
    Ok(Some(x))
}

pub fn list_groups(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let groups = cx.state.store.list_groups(&path_prefix(form)?).map_err(store_error)?;
    let (groups, next) = page(groups, form)?;
    let mut x = Xml::new();
    x.members("Groups", &groups, |x, g| write_group(cx, x, g));
    truncation(&mut x, next);
    Ok(Some(x))
}

pub fn delete_group(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    cx.state.store.delete_group(&group_name(form)?).map_err(store_error)?;
    Ok(None)
}

pub fn add_user_to_group(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    cx.state.store.set_group_member(&group_name(form)?, &user_name(form)?, true).map_err(store_error)?;
    Ok(None)
}

pub fn remove_user_from_group(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    cx.state.store.set_group_member(&group_name(form)?, &user_name(form)?, false).map_err(store_error)?;
    Ok(None)
}

pub fn list_groups_for_user(cx: &Cx<'_>, form: &Form) -> Result<Option<Xml>> {
    let groups = cx.state.store.groups_for_user(&user_name(form)?).map_err(store_error)?;
    let (groups, next) = page(groups, form)?;
    let mut x = Xml::new();
    x.members("Groups", &groups, |x, g| write_group(cx, x, g));
    truncation(&mut x, next);
    Ok(Some(x))
}
