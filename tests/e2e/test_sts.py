"""STS over the query protocol with boto3: GetCallerIdentity for root, users and role sessions;
AssumeRole decided by the trust policy and the caller's identity policies, with AWS's errors; the
temporary credentials' Expiration; GetSessionToken. (Expiry itself is tested with an injected clock in
auth::sigv4's `expired_temporary_credentials_are_refused`: no test waits 15 minutes.)"""

import datetime
import json

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, error_code, http_status, unique_name


@pytest.fixture(scope="module")
def iam(server):
    return server.client("iam")


def expect(code: str, status: int, fn, *args, **kw) -> str:
    with pytest.raises(ClientError) as err:
        fn(*args, **kw)
    assert (error_code(err.value), http_status(err.value)) == (code, status), err.value.response
    return err.value.response["Error"]["Message"]


def make_user(server, iam, policy: dict | None = None):
    name = unique_name("sts-user")
    iam.create_user(UserName=name)
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, key


def client_for(server, service, creds):
    return server.client(service, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                         session_token=creds.get("SessionToken"))


def trust(principal: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]})


ASSUME_ANY = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}


def test_caller_identity_of_root_and_of_a_user(server, iam):
    root = server.client("sts").get_caller_identity()
    assert (root["Account"], root["Arn"], root["UserId"]) == (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT)
    name, key = make_user(server, iam)
    me = client_for(server, "sts", key).get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}" and me["UserId"].startswith("AIDA")


def test_get_session_token_acts_as_the_user(server, iam):
    name, key = make_user(server, iam)
    before = datetime.datetime.now(datetime.timezone.utc)
    creds = client_for(server, "sts", key).get_session_token(DurationSeconds=900)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    left = (creds["Expiration"] - before).total_seconds()
    assert 890 <= left <= 905, left
    me = client_for(server, "sts", creds).get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    raw = server.client("sts", key=key["AccessKeyId"], secret=key["SecretAccessKey"], validate=False)
    expect("ValidationError", 400, raw.get_session_token, DurationSeconds=899)


def test_assume_role_honours_the_trust_policy_and_duration(server, iam):
    name, key = make_user(server, iam, ASSUME_ANY)
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    trusted = unique_name("trusted")
    role_arn = iam.create_role(RoleName=trusted, AssumeRolePolicyDocument=trust({"AWS": user_arn}),
                               MaxSessionDuration=3600)["Role"]["Arn"]
    other = unique_name("untrusted")
    other_arn = iam.create_role(RoleName=other, AssumeRolePolicyDocument=trust({"Service": "lambda.amazonaws.com"}))[
        "Role"]["Arn"]
    sts = client_for(server, "sts", key)

    before = datetime.datetime.now(datetime.timezone.utc)
    out = sts.assume_role(RoleArn=role_arn, RoleSessionName="ci-run", DurationSeconds=900)
    left = (out["Credentials"]["Expiration"] - before).total_seconds()
    assert 890 <= left <= 905, left
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{trusted}/ci-run"
    me = client_for(server, "sts", out["Credentials"]).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{trusted}/ci-run"
    assert me["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]

    msg = expect("AccessDenied", 403, sts.assume_role, RoleArn=other_arn, RoleSessionName="x1")
    assert msg == f"User: {user_arn} is not authorized to perform: sts:AssumeRole on resource: {other_arn}"
    expect("AccessDenied", 403, sts.assume_role, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/no-such-role",
           RoleSessionName="x1")
    assert expect("ValidationError", 400, sts.assume_role, RoleArn=role_arn, RoleSessionName="x1",
                  DurationSeconds=7200) == "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    raw = server.client("sts", key=key["AccessKeyId"], secret=key["SecretAccessKey"], validate=False)
    expect("ValidationError", 400, raw.assume_role, RoleArn=role_arn, RoleSessionName="bad name")
    assert expect("AccessDenied", 403, server.client("sts").assume_role, RoleArn=role_arn,
                  RoleSessionName="root") == "Roles may not be assumed by root accounts."


def test_assume_role_needs_the_identity_policy_when_the_trust_names_the_account(server, iam):
    """A trust policy naming the account delegates to the caller's identity policies (same account)."""
    name, key = make_user(server, iam)  # no policy at all
    role = unique_name("account-trust")
    role_arn = iam.create_role(RoleName=role,
                               AssumeRolePolicyDocument=trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))["Role"]["Arn"]
    sts = client_for(server, "sts", key)
    expect("AccessDenied", 403, sts.assume_role, RoleArn=role_arn, RoleSessionName="s1")
    iam.put_user_policy(UserName=name, PolicyName="assume", PolicyDocument=json.dumps(ASSUME_ANY))
    assert sts.assume_role(RoleArn=role_arn, RoleSessionName="s1")["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_a_session_acts_with_its_role_policies_intersected_with_the_session_policy(server, iam):
    name, key = make_user(server, iam, ASSUME_ANY)
    role = unique_name("reader")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{name}"}))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    sts = client_for(server, "sts", key)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="reader")["Credentials"]
    as_role = client_for(server, "iam", creds)
    assert "Roles" in as_role.list_roles()
    expect("AccessDenied", 403, as_role.create_user, UserName=unique_name("nope"))
    only_users = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}]}
    narrowed = sts.assume_role(RoleArn=role_arn, RoleSessionName="narrow",
                               Policy=json.dumps(only_users))["Credentials"]
    as_narrow = client_for(server, "iam", narrowed)
    assert "Users" in as_narrow.list_users()
    expect("AccessDenied", 403, as_narrow.list_roles)
    # A session cannot widen its own role: its role grants no IAM writes.
    expect("AccessDenied", 403, as_role.attach_role_policy, RoleName=role,
           PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
