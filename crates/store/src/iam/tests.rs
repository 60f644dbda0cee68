use nimbus_model::iam::*;

use super::*;
use crate::{Store, StoreError};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn user(store: &Store, name: &str) -> IamUser {
    store
        .create_user(&NewUser {
            id: format!("AIDA{}", name.to_uppercase()),
            name: UserName::parse(name).unwrap(),
            path: IamPath::root(),
            tags: IamTags::default(),
            now_ms: 1,
        })
        .unwrap()
}

#[test]
fn users_are_unique_ignoring_case_and_deleted_only_when_bare() {
    let (_dir, store) = store();
    let bob = user(&store, "bob");
    let again = store.create_user(&NewUser {
        id: "AIDAX".into(),
        name: UserName::parse("BOB").unwrap(),
        path: IamPath::root(),
        tags: IamTags::default(),
        now_ms: 1,
    });
    assert!(matches!(again, Err(StoreError::Conflict { what: "user", .. })));
    store.create_access_key(&bob.name, "AKIA1", "s1", 2).unwrap();
    store.create_access_key(&bob.name, "AKIA2", "s2", 2).unwrap();
    assert!(matches!(store.create_access_key(&bob.name, "AKIA3", "s3", 2), Err(StoreError::LimitExceeded { .. })));
    assert!(matches!(store.delete_user(&bob.name), Err(StoreError::DeleteConflict { .. })));
    let secret = store.access_key_secret("AKIA1").unwrap().unwrap();
    assert_eq!((secret.secret.as_str(), secret.active, secret.user.id.as_str()), ("s1", true, bob.id.as_str()));
    store.set_access_key_active(&bob.name, "AKIA1", false).unwrap();
    assert!(!store.access_key_secret("AKIA1").unwrap().unwrap().active);
    store.delete_access_key(&bob.name, "AKIA1").unwrap();
    store.delete_access_key(&bob.name, "AKIA2").unwrap();
    let group = store.create_group("AGPA1", &GroupName::parse("devs").unwrap(), &IamPath::root(), 1).unwrap();
    store.set_group_member(&group.name, &bob.name, true).unwrap();
    assert!(matches!(store.delete_user(&bob.name), Err(StoreError::DeleteConflict { .. })));
    assert!(matches!(store.delete_group(&group.name), Err(StoreError::DeleteConflict { .. })));
    assert_eq!(store.groups_for_user(&bob.name).unwrap(), vec![group.clone()]);
    store.set_group_member(&group.name, &bob.name, false).unwrap();
    store.delete_user(&bob.name).unwrap();
    assert!(store.access_key_secret("AKIA1").unwrap().is_none());
    assert!(matches!(store.get_user(&bob.name), Err(StoreError::NotFound { what: "user", .. })));
}

#[test]
fn policy_versions_defaults_attachments_and_principal_policies() {
    let (_dir, store) = store();
    let bob = user(&store, "bob");
    let arn = "arn:aws:iam::000000000000:policy/p";
    let policy = store
        .create_policy(&NewPolicy {
            id: "ANPA1".into(),
            arn: arn.into(),
            name: PolicyName::parse("p").unwrap(),
            path: IamPath::root(),
            description: None,
            document: "v1".into(),
            tags: IamTags::default(),
            now_ms: 1,
        })
        .unwrap();
    assert_eq!((policy.default_version, policy.attachment_count), (1, 0));
    for n in 2..=5 {
        assert_eq!(store.create_policy_version(arn, &format!("v{n}"), n == 3, 2).unwrap(), n);
    }
    assert!(matches!(store.create_policy_version(arn, "v6", false, 2), Err(StoreError::LimitExceeded { .. })));
    assert!(matches!(store.delete_policy_version(arn, 3), Err(StoreError::DeleteConflict { .. })));
    store.delete_policy_version(arn, 5).unwrap();
    assert_eq!(store.create_policy_version(arn, "v6", false, 2).unwrap(), 6, "numbers are not reused");

    store.attach_policy(EntityKind::User, "bob", arn).unwrap();
    store.attach_policy(EntityKind::User, "bob", "arn:aws:iam::aws:policy/ReadOnlyAccess").unwrap();
    store.put_inline_policy(EntityKind::User, "bob", "mine", "inline-doc").unwrap();
    let group = store.create_group("AGPA1", &GroupName::parse("g").unwrap(), &IamPath::root(), 1).unwrap();
    store.put_inline_policy(EntityKind::Group, "g", "theirs", "group-doc").unwrap();
    store.set_group_member(&group.name, &bob.name, true).unwrap();
    let docs: Vec<_> = store.principal_policies(&bob.id).unwrap().into_iter().map(|p| p.document).collect();
    assert_eq!(
        docs,
        vec![Some("inline-doc".into()), Some("v3".into()), None, Some("group-doc".into())],
        "inline, the default version, AWS managed (resolved by the server), then the group's"
    );
    assert!(matches!(store.delete_policy(arn), Err(StoreError::DeleteConflict { .. })));
    assert_eq!(store.policy_entities(arn).unwrap(), vec![(EntityKind::User, "bob".into(), bob.id.clone())]);
    store.detach_policy(EntityKind::User, "bob", arn).unwrap();
    assert!(matches!(store.detach_policy(EntityKind::User, "bob", arn), Err(StoreError::NotFound { .. })));
    assert!(matches!(store.delete_policy(arn), Err(StoreError::DeleteConflict { .. })), "has versions");
    for v in [1, 2, 4, 6] {
        store.delete_policy_version(arn, v).unwrap();
    }
    store.delete_policy(arn).unwrap();
}

#[test]
fn roles_and_sessions() {
    let (_dir, store) = store();
    let role = store
        .create_role(&NewRole {
            id: "AROA1".into(),
            name: RoleName::parse("r").unwrap(),
            path: IamPath::root(),
            trust_policy: "{}".into(),
            description: None,
            max_session: MaxSessionDuration::default(),
            tags: IamTags::default(),
            now_ms: 1,
        })
        .unwrap();
    store
        .update_role(
            &role.name,
            &RoleUpdate { max_session: Some(MaxSessionDuration::new(7200).unwrap()), ..Default::default() },
        )
        .unwrap();
    assert_eq!(store.get_role(&role.name).unwrap().max_session.get(), 7200);
    let session = StsSession {
        access_key_id: "ASIA1".into(),
        secret: "s".into(),
        session_token: "t".into(),
        principal: SessionPrincipal::Role { role_id: role.id.clone(), session_name: "me".into() },
        session_policy: None,
        tags: "{}".into(),
        created_ms: 1,
        expires_ms: 100,
    };
    store.create_session(&session).unwrap();
    assert_eq!(store.session("ASIA1").unwrap(), Some(session));
    assert_eq!(store.expire_sessions(100).unwrap(), 0);
    store.put_inline_policy(EntityKind::Role, "r", "p", "doc").unwrap();
    assert!(matches!(store.delete_role(&role.name), Err(StoreError::DeleteConflict { .. })));
    store.delete_inline_policy(EntityKind::Role, "r", "p").unwrap();
    let before = store.iam_generation();
    store.delete_role(&role.name).unwrap();
    assert!(store.iam_generation() > before);
    assert_eq!(store.session("ASIA1").unwrap(), None, "a role's sessions end with it");
}
