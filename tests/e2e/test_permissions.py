"""Resource-based policies: AddPermission, GetPolicy and RemovePermission on functions, versions and
aliases, through the AWS CLI and boto3, compared with the statements and errors AWS documents."""

import json

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, create_function, error_code, function_arn, http_status, python_zip, unique_name


@pytest.fixture(scope="module")
def fn(lam):
    name = unique_name("perm")
    create_function(lam, name, python_zip())
    return name


def test_add_permission_renders_aws_statement(server, fn):
    out = server.aws("lambda", "add-permission", "--function-name", fn, "--statement-id", "s3invoke",
                     "--action", "lambda:InvokeFunction", "--principal", "s3.amazonaws.com",
                     "--source-arn", "arn:aws:s3:::my-bucket-1xpuxmplzrlbh", "--source-account", "123456789012")
    # AWS's own example (AddPermission in the Lambda developer guide), key order included.
    expected = (
        '{"Sid":"s3invoke","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},'
        '"Action":"lambda:InvokeFunction","Resource":"' + function_arn(fn) + '",'
        '"Condition":{"StringEquals":{"AWS:SourceAccount":"123456789012"},'
        '"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::my-bucket-1xpuxmplzrlbh"}}}'
    )
    assert out["Statement"] == expected

    out = server.aws("lambda", "add-permission", "--function-name", fn, "--statement-id", "xaccount",
                     "--action", "lambda:GetFunction", "--principal", "210987654321")
    statement = json.loads(out["Statement"])
    assert statement == {
        "Sid": "xaccount", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
        "Action": "lambda:GetFunction", "Resource": function_arn(fn),
    }

    policy = server.aws("lambda", "get-policy", "--function-name", fn)
    assert policy["RevisionId"]
    document = json.loads(policy["Policy"])
    assert document["Version"] == "2012-10-17"
    assert document["Id"] == "default"
    assert [s["Sid"] for s in document["Statement"]] == ["s3invoke", "xaccount"]
    assert json.dumps(document["Statement"][0], separators=(",", ":")) == expected


def test_function_url_statements(lam, fn):
    url = lam.add_permission(FunctionName=fn, StatementId="FunctionURLAllowPublicAccess",
                             Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE")
    assert json.loads(url["Statement"]) == {
        "Sid": "FunctionURLAllowPublicAccess", "Effect": "Allow", "Principal": "*",
        "Action": "lambda:InvokeFunctionUrl", "Resource": function_arn(fn),
        "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
    }
    invoke = lam.add_permission(FunctionName=fn, StatementId="FunctionURLInvokeAllowPublicAccess",
                                Action="lambda:InvokeFunction", Principal="*", InvokedViaFunctionUrl=True)
    assert json.loads(invoke["Statement"])["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
    org = lam.add_permission(FunctionName=fn, StatementId="org", Action="lambda:*",
                             Principal="arn:aws:iam::123456789012:role/caller", PrincipalOrgID="o-a1b2c3d4e5")
    assert json.loads(org["Statement"])["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}


def test_errors(lam, lam_raw, fn):
    lam.add_permission(FunctionName=fn, StatementId="dup", Action="lambda:InvokeFunction",
                       Principal="sns.amazonaws.com")
    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=fn, StatementId="dup", Action="lambda:InvokeFunction",
                           Principal="sns.amazonaws.com")
    assert error_code(e.value) == "ResourceConflictException"
    assert http_status(e.value) == 409
    assert "The statement id (sid) provided already exists" in str(e.value)

    with pytest.raises(ClientError) as e:
        lam.remove_permission(FunctionName=fn, StatementId="nope")
    assert error_code(e.value) == "ResourceNotFoundException"
    assert "Statement nope is not found in resource policy." in str(e.value)

    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=unique_name("missing"), StatementId="a", Action="lambda:InvokeFunction",
                           Principal="*")
    assert error_code(e.value) == "ResourceNotFoundException"
    assert "Function not found" in str(e.value)

    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=fn, StatementId="rev", Action="lambda:InvokeFunction",
                           Principal="*", RevisionId="not-the-revision")
    assert error_code(e.value) == "PreconditionFailedException"
    assert http_status(e.value) == 412

    cases = [
        ({"Action": "s3:GetObject", "Principal": "*"}, "ValidationException"),
        ({"Action": "lambda:InvokeFunction", "Principal": "not a principal"}, "ValidationException"),
        ({"Action": "lambda:InvokeFunction", "Principal": "nodots"}, "InvalidParameterValueException"),
        ({"Action": "lambda:InvokeFunction", "Principal": "*", "SourceAccount": "12"}, "ValidationException"),
        ({"Action": "lambda:InvokeFunction", "Principal": "*", "FunctionUrlAuthType": "OPEN"}, "ValidationException"),
    ]
    for params, code in cases:
        with pytest.raises(ClientError) as e:
            lam_raw.add_permission(FunctionName=fn, StatementId="bad", **params)
        assert error_code(e.value) == code, params
        assert http_status(e.value) == 400


def test_remove_and_revisions(lam):
    name = unique_name("permrev")
    create_function(lam, name, python_zip())
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=name)
    assert error_code(e.value) == "ResourceNotFoundException"
    assert "The resource you requested does not exist." in str(e.value)

    lam.add_permission(FunctionName=name, StatementId="a", Action="lambda:InvokeFunction", Principal="*")
    first = lam.get_policy(FunctionName=name)["RevisionId"]
    lam.add_permission(FunctionName=name, StatementId="b", Action="lambda:InvokeFunction", Principal="*",
                       RevisionId=first)
    second = lam.get_policy(FunctionName=name)["RevisionId"]
    assert second != first
    with pytest.raises(ClientError) as e:
        lam.remove_permission(FunctionName=name, StatementId="a", RevisionId=first)
    assert error_code(e.value) == "PreconditionFailedException"
    lam.remove_permission(FunctionName=name, StatementId="a", RevisionId=second)
    statements = json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["b"]
    lam.remove_permission(FunctionName=name, StatementId="b")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=name)
    assert error_code(e.value) == "ResourceNotFoundException"


def test_versions_and_aliases_have_their_own_policies(lam):
    name = unique_name("permq")
    create_function(lam, name, python_zip())
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)

    on_alias = lam.add_permission(FunctionName=name, Qualifier="live", StatementId="alias",
                                  Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                                  SourceArn=f"arn:aws:events:us-east-1:{ACCOUNT}:rule/r")
    assert json.loads(on_alias["Statement"])["Resource"] == function_arn(name, "live")
    lam.add_permission(FunctionName=f"{name}:{version}", StatementId="version", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com")
    with pytest.raises(ClientError):
        lam.get_policy(FunctionName=name)
    alias_policy = json.loads(lam.get_policy(FunctionName=name, Qualifier="live")["Policy"])
    assert [s["Sid"] for s in alias_policy["Statement"]] == ["alias"]
    version_policy = json.loads(lam.get_policy(FunctionName=name, Qualifier=version)["Policy"])
    assert version_policy["Statement"][0]["Resource"] == function_arn(name, version)

    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName=name, Qualifier="nosuch", StatementId="x",
                           Action="lambda:InvokeFunction", Principal="*")
    assert error_code(e.value) == "ResourceNotFoundException"

    # The policy goes with its alias: a new alias of the same name starts without one.
    lam.delete_alias(FunctionName=name, Name="live")
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=name, Qualifier="live")
    assert error_code(e.value) == "ResourceNotFoundException"
    # And with the function.
    lam.delete_function(FunctionName=name)
    create_function(lam, name, python_zip())
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName=name, Qualifier="1")
    assert error_code(e.value) == "ResourceNotFoundException"
