"""IAM over the query protocol, driven by boto3 and the AWS CLI: users and access keys, groups, roles,
managed policies with versions, attachments, inline policies, the AWS managed policies, and IAM's
errors (NoSuchEntity, EntityAlreadyExists, DeleteConflict, LimitExceeded, ValidationError,
MalformedPolicyDocument)."""

import json

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, error_code, http_status, unique_name

TRUST_LAMBDA = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})
ALLOW_ALL_LOGS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}],
}
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


@pytest.fixture(scope="module")
def iam(server):
    return server.client("iam")


@pytest.fixture(scope="module")
def sts(server):
    return server.client("sts")


def expect(code: str, status: int, fn, *args, **kw) -> str:
    with pytest.raises(ClientError) as err:
        fn(*args, **kw)
    assert (error_code(err.value), http_status(err.value)) == (code, status), err.value.response
    return err.value.response["Error"]["Message"]


def test_users_and_their_errors(iam):
    name = unique_name("user")
    created = iam.create_user(UserName=name, Path="/ci/", Tags=[{"Key": "team", "Value": "a"}])["User"]
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/ci/{name}"
    assert created["UserId"].startswith("AIDA") and len(created["UserId"]) == 21
    got = iam.get_user(UserName=name)["User"]
    assert (got["UserId"], got["Path"], got["Tags"]) == (created["UserId"], "/ci/", [{"Key": "team", "Value": "a"}])
    msg = expect("EntityAlreadyExists", 409, iam.create_user, UserName=name.upper())
    assert msg == f"User with name {name.upper()} already exists."
    assert expect("NoSuchEntity", 404, iam.get_user, UserName="nobody-here") == \
        "The user with name nobody-here cannot be found."
    assert [u["UserName"] for u in iam.list_users(PathPrefix="/ci/")["Users"]] == [name]
    iam.update_user(UserName=name, NewPath="/")
    assert iam.get_user(UserName=name)["User"]["Path"] == "/"
    iam.tag_user(UserName=name, Tags=[{"Key": "env", "Value": "dev"}])
    iam.untag_user(UserName=name, TagKeys=["team"])
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "env", "Value": "dev"}]
    iam.delete_user(UserName=name)
    expect("NoSuchEntity", 404, iam.delete_user, UserName=name)


def test_bad_names_are_validation_errors(server):
    raw = server.client("iam", validate=False)
    msg = expect("ValidationError", 400, raw.create_user, UserName="bad name")
    assert "Member must satisfy regular expression pattern" in msg
    expect("ValidationError", 400, raw.create_user, UserName="x" * 65)
    expect("ValidationError", 400, raw.create_group, GroupName="g", Path="no-slash")


def test_access_keys_secret_shown_once_quota_and_refused_after_delete(server, iam):
    name = unique_name("keys")
    iam.create_user(UserName=name)
    first = iam.create_access_key(UserName=name)["AccessKey"]
    assert first["AccessKeyId"].startswith("AKIA") and len(first["SecretAccessKey"]) == 40
    second = iam.create_access_key(UserName=name)["AccessKey"]
    assert expect("LimitExceeded", 409, iam.create_access_key, UserName=name) == \
        "Cannot exceed quota for AccessKeysPerUser: 2"
    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert {k["AccessKeyId"] for k in listed} == {first["AccessKeyId"], second["AccessKeyId"]}
    assert all("SecretAccessKey" not in k for k in listed)

    as_user = server.client("sts", key=first["AccessKeyId"], secret=first["SecretAccessKey"])
    me = as_user.get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}" and me["Account"] == ACCOUNT

    expect("DeleteConflict", 409, iam.delete_user, UserName=name)
    iam.update_access_key(UserName=name, AccessKeyId=first["AccessKeyId"], Status="Inactive")
    assert expect("InvalidClientTokenId", 403, as_user.get_caller_identity) == \
        "The security token included in the request is invalid."
    iam.update_access_key(UserName=name, AccessKeyId=first["AccessKeyId"], Status="Active")
    assert as_user.get_caller_identity()["Arn"].endswith(f":user/{name}")

    # The user's own key lists the user's own keys without UserName.
    own = server.client("iam", key=second["AccessKeyId"], secret=second["SecretAccessKey"])
    for key in (first, second):
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)
    expect("InvalidClientTokenId", 403, as_user.get_caller_identity)
    expect("InvalidClientTokenId", 403, own.list_access_keys)
    expect("NoSuchEntity", 404, iam.delete_access_key, UserName=name, AccessKeyId=first["AccessKeyId"])


def test_groups_and_membership(iam):
    user, group = unique_name("member"), unique_name("group")
    iam.create_user(UserName=user)
    created = iam.create_group(GroupName=group)["Group"]
    assert created["GroupId"].startswith("AGPA") and created["Arn"] == f"arn:aws:iam::{ACCOUNT}:group/{group}"
    expect("EntityAlreadyExists", 409, iam.create_group, GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=user)
    got = iam.get_group(GroupName=group)
    assert [u["UserName"] for u in got["Users"]] == [user]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=user)["Groups"]] == [group]
    expect("DeleteConflict", 409, iam.delete_group, GroupName=group)
    expect("DeleteConflict", 409, iam.delete_user, UserName=user)
    iam.remove_user_from_group(GroupName=group, UserName=user)
    iam.delete_group(GroupName=group)
    iam.delete_user(UserName=user)
    assert expect("NoSuchEntity", 404, iam.get_group, GroupName=group) == \
        f"The group with name {group} cannot be found."


def test_aws_managed_policies_under_their_real_arns(iam):
    policy = iam.get_policy(PolicyArn=BASIC)["Policy"]
    assert (policy["PolicyName"], policy["Path"], policy["DefaultVersionId"]) == \
        ("AWSLambdaBasicExecutionRole", "/service-role/", "v1")
    doc = iam.get_policy_version(PolicyArn=BASIC, VersionId="v1")["PolicyVersion"]["Document"]
    assert doc["Statement"][0]["Action"] == ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    names = {p["PolicyName"] for p in iam.list_policies(Scope="AWS", MaxItems=1000)["Policies"]}
    assert {"AdministratorAccess", "ReadOnlyAccess", "AWSLambdaBasicExecutionRole", "AWSLambdaSQSQueueExecutionRole",
            "AWSLambdaRole", "AmazonSQSFullAccess", "AmazonS3FullAccess", "AmazonS3ReadOnlyAccess",
            "CloudWatchLogsFullAccess"} <= names

    user = unique_name("attached")
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=BASIC)
    assert iam.list_attached_user_policies(UserName=user)["AttachedPolicies"] == \
        [{"PolicyName": "AWSLambdaBasicExecutionRole", "PolicyArn": BASIC}]
    entities = iam.list_entities_for_policy(PolicyArn=BASIC)
    assert user in [u["UserName"] for u in entities["PolicyUsers"]]
    expect("DeleteConflict", 409, iam.delete_user, UserName=user)
    missing = "arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"
    assert expect("NoSuchEntity", 404, iam.attach_user_policy, UserName=user, PolicyArn=missing) == \
        f"Policy {missing} does not exist or is not attachable."
    iam.detach_user_policy(UserName=user, PolicyArn=BASIC)
    iam.delete_user(UserName=user)


def test_roles_trust_policies_and_inline_policies(iam):
    name = unique_name("role")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_LAMBDA, Description="for tests",
                           MaxSessionDuration=7200, Tags=[{"Key": "k", "Value": "v"}])["Role"]
    assert role["RoleId"].startswith("AROA") and role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{name}"
    got = iam.get_role(RoleName=name)["Role"]
    assert got["AssumeRolePolicyDocument"] == json.loads(TRUST_LAMBDA)
    assert (got["MaxSessionDuration"], got["Description"]) == (7200, "for tests")
    expect("EntityAlreadyExists", 409, iam.create_role, RoleName=name, AssumeRolePolicyDocument=TRUST_LAMBDA)
    msg = expect("MalformedPolicyDocument", 400, iam.create_role, RoleName=unique_name("bad"),
                 AssumeRolePolicyDocument="{not json")
    assert msg
    iam.tag_role(RoleName=name, Tags=[{"Key": "k2", "Value": "v2"}])
    iam.untag_role(RoleName=name, TagKeys=["k"])
    assert iam.list_role_tags(RoleName=name)["Tags"] == [{"Key": "k2", "Value": "v2"}]

    iam.put_role_policy(RoleName=name, PolicyName="logs", PolicyDocument=json.dumps(ALLOW_ALL_LOGS))
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["logs"]
    assert iam.get_role_policy(RoleName=name, PolicyName="logs")["PolicyDocument"] == ALLOW_ALL_LOGS
    iam.attach_role_policy(RoleName=name, PolicyArn=BASIC)
    assert expect("DeleteConflict", 409, iam.delete_role, RoleName=name) == \
        "Cannot delete entity, must delete policies first."
    iam.delete_role_policy(RoleName=name, PolicyName="logs")
    assert expect("DeleteConflict", 409, iam.delete_role, RoleName=name) == \
        "Cannot delete entity, must detach all policies first."
    iam.detach_role_policy(RoleName=name, PolicyArn=BASIC)
    expect("NoSuchEntity", 404, iam.get_role_policy, RoleName=name, PolicyName="logs")
    iam.delete_role(RoleName=name)
    assert expect("NoSuchEntity", 404, iam.get_role, RoleName=name) == f"The role with name {name} cannot be found."


def test_managed_policy_versions_and_deletion_rules(iam):
    name = unique_name("policy")
    arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(ALLOW_ALL_LOGS))["Policy"]["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/{name}"
    expect("EntityAlreadyExists", 409, iam.create_policy, PolicyName=name, PolicyDocument=json.dumps(ALLOW_ALL_LOGS))
    for n in range(2, 6):
        v = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(ALLOW_ALL_LOGS), SetAsDefault=n == 3)
        assert v["PolicyVersion"]["VersionId"] == f"v{n}"
    expect("LimitExceeded", 409, iam.create_policy_version, PolicyArn=arn, PolicyDocument=json.dumps(ALLOW_ALL_LOGS))
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    assert expect("DeleteConflict", 409, iam.delete_policy_version, PolicyArn=arn, VersionId="v3") == \
        "Cannot delete the default version of a policy."
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v5")
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions][:2] == [("v5", True), ("v4", False)]

    user = unique_name("holder")
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    assert expect("DeleteConflict", 409, iam.delete_policy, PolicyArn=arn) == \
        "Cannot delete a policy attached to entities."
    iam.detach_user_policy(UserName=user, PolicyArn=arn)
    expect("DeleteConflict", 409, iam.delete_policy, PolicyArn=arn)  # versions besides the default
    for v in ("v1", "v2", "v3", "v4"):
        iam.delete_policy_version(PolicyArn=arn, VersionId=v)
    iam.delete_policy(PolicyArn=arn)
    iam.delete_user(UserName=user)

    too_big = {"Version": "2012-10-17",
               "Statement": [{"Effect": "Allow", "Action": [f"logs:Action{i:05d}" for i in range(400)],
                              "Resource": "*"}]}
    assert expect("LimitExceeded", 409, iam.create_policy, PolicyName=unique_name("big"),
                  PolicyDocument=json.dumps(too_big)) == "Cannot exceed quota for PolicySize: 6144"
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "logs:*", "Resource": "*"}]}
    expect("MalformedPolicyDocument", 400, iam.create_policy, PolicyName=unique_name("bad"),
           PolicyDocument=json.dumps(bad))


def test_a_user_is_decided_by_its_policies(server, iam):
    """Explicit deny beats allow; NotAction; the denial is AWS's message."""
    name = unique_name("decided")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    as_user = server.client("iam", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    arn = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    msg = expect("AccessDenied", 403, as_user.list_users)
    assert msg == (f"User: {arn} is not authorized to perform: iam:ListUsers on resource: "
                   f"arn:aws:iam::{ACCOUNT}:user/ because no "
                   "identity-based policy allows the iam:ListUsers action")
    everything_but_delete = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "NotAction": "iam:Delete*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:ListRoles", "Resource": "*"},
    ]}
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(everything_but_delete))
    assert "Users" in as_user.list_users()
    expect("AccessDenied", 403, as_user.list_roles)
    expect("AccessDenied", 403, as_user.delete_user, UserName="anyone")
    iam.delete_user_policy(UserName=name, PolicyName="p")
    expect("AccessDenied", 403, as_user.list_users)
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)


def test_the_aws_cli_makes_a_role_and_attaches_a_policy(server, tmp_path):
    name = unique_name("cli-role")
    trust = tmp_path / "trust.json"
    trust.write_text(TRUST_LAMBDA)
    created = server.aws("iam", "create-role", "--role-name", name, "--assume-role-policy-document",
                         f"file://{trust}")
    assert created["Role"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{name}"
    server.aws("iam", "attach-role-policy", "--role-name", name, "--policy-arn", BASIC, parse=False)
    attached = server.aws("iam", "list-attached-role-policies", "--role-name", name)
    assert attached["AttachedPolicies"][0]["PolicyArn"] == BASIC
    failed = server.aws("iam", "get-role", "--role-name", "no-such-role-here", check=False, parse=False)
    assert failed.returncode != 0 and "NoSuchEntity" in failed.stderr
    server.aws("iam", "detach-role-policy", "--role-name", name, "--policy-arn", BASIC, parse=False)
    server.aws("iam", "delete-role", "--role-name", name, parse=False)
