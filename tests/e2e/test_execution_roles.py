"""Execution roles and least privilege, end to end with boto3: CreateFunction refuses a role Lambda cannot
assume; a function acts with exactly its role's policies (AccessDenied inside the handler until the policy
is attached, then allowed without redeploying); a function cannot widen its own role; an IAM user allowed
to invoke one function can invoke it and nothing else; an explicit deny beats an allow."""

import json

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, LAMBDA_TRUST, error_code, http_status, make_zip, unique_name

# A function that makes one AWS call named by its event and reports the outcome.
CALLER = '''
import boto3
from botocore.exceptions import ClientError

def handler(event, context):
    client = boto3.client(event["service"])
    try:
        getattr(client, event["call"])(**event.get("args", {}))
        return {"ok": True}
    except ClientError as e:
        return {"ok": False, "code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"]}
'''
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


@pytest.fixture(scope="module")
def iam(server):
    return server.client("iam")


def make_role(iam, trust=LAMBDA_TRUST) -> str:
    name = unique_name("exec")
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]


def make_function(lam, role_arn: str, name: str | None = None) -> str:
    name = name or unique_name("caller")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": CALLER})}, Timeout=30)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


def call(lam, name: str, event: dict) -> dict:
    out = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    payload = json.loads(out["Payload"].read())
    assert "FunctionError" not in out, payload
    return payload


def expect(code: str, status: int, fn, *args, **kw) -> str:
    with pytest.raises(ClientError) as err:
        fn(*args, **kw)
    assert (error_code(err.value), http_status(err.value)) == (code, status), err.value.response
    return err.value.response["Error"]["Message"]


def test_create_function_refuses_a_role_lambda_cannot_assume(lam, iam):
    zip_bytes = make_zip({"app.py": CALLER})
    missing = f"arn:aws:iam::{ACCOUNT}:role/{unique_name('missing')}"
    untrusting = make_role(iam, json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}))
    for role in (missing, untrusting):
        msg = expect("InvalidParameterValueException", 400, lam.create_function, FunctionName=unique_name("f"),
                     Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": zip_bytes})
        assert msg == "The role defined for the function cannot be assumed by Lambda."
    name = make_function(lam, make_role(iam))
    expect("InvalidParameterValueException", 400, lam.update_function_configuration, FunctionName=name,
           Role=untrusting)


def test_a_function_acts_with_exactly_its_role(server, lam, iam):
    role_arn = make_role(iam)
    role = role_arn.rsplit("/", 1)[1]
    iam.attach_role_policy(RoleName=role, PolicyArn=BASIC)
    sqs = server.client("sqs")
    queue_url = sqs.create_queue(QueueName=unique_name("q"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = make_function(lam, role_arn)
    send = {"service": "sqs", "call": "send_message", "args": {"QueueUrl": queue_url, "MessageBody": "hi"}}

    denied = call(lam, name, send)
    assert denied["ok"] is False and "AccessDenied" in denied["code"], denied
    assert denied["message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{name} is not authorized to perform: "
        f"sqs:SendMessage on resource: {queue_arn} because no identity-based policy allows the sqs:SendMessage action")

    iam.put_role_policy(RoleName=role, PolicyName="send", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}]}))
    # The same function, not redeployed (its environment may well be the same warm one).
    assert call(lam, name, send) == {"ok": True}
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"][0]["Body"] == "hi"

    # It cannot widen its own role, nor make another function.
    widen = call(lam, name, {"service": "iam", "call": "attach_role_policy",
                             "args": {"RoleName": role, "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}})
    assert widen["ok"] is False and widen["code"] == "AccessDenied", widen
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == \
        [{"PolicyName": "AWSLambdaBasicExecutionRole", "PolicyArn": BASIC}]
    inline = call(lam, name, {"service": "iam", "call": "put_role_policy", "args": {
        "RoleName": role, "PolicyName": "all", "PolicyDocument": json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})}})
    assert inline["ok"] is False and inline["code"] == "AccessDenied", inline


def user_client(server, iam, policy: dict):
    user = unique_name("invoker")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return user, server.client("lambda", key=key["AccessKeyId"], secret=key["SecretAccessKey"])


def test_a_user_allowed_to_invoke_one_function_invokes_it_and_nothing_else(server, lam, iam):
    role_arn = make_role(iam)
    allowed, other = make_function(lam, role_arn), make_function(lam, role_arn)
    allowed_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{allowed}"
    other_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{other}"
    user, as_user = user_client(server, iam, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": allowed_arn}]})
    assert as_user.invoke(FunctionName=allowed, Payload=b'{"service": "sts", "call": "get_caller_identity"}')[
        "StatusCode"] == 200
    msg = expect("AccessDeniedException", 403, as_user.invoke, FunctionName=other, Payload=b"{}")
    assert msg == (f"User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: lambda:InvokeFunction "
                   f"on resource: {other_arn} because no identity-based policy allows the lambda:InvokeFunction action")
    expect("AccessDeniedException", 403, as_user.list_functions)
    expect("AccessDeniedException", 403, as_user.delete_function, FunctionName=allowed)
    assert lam.get_function(FunctionName=allowed)["Configuration"]["FunctionName"] == allowed


def test_an_explicit_deny_beats_an_allow(server, lam, iam):
    role_arn = make_role(iam)
    open_fn, closed_fn = make_function(lam, role_arn), make_function(lam, role_arn)
    closed_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{closed_fn}"
    user, as_user = user_client(server, iam, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "lambda:InvokeFunction", "Resource": closed_arn}]})
    assert as_user.invoke(FunctionName=open_fn, Payload=b'{"service": "sts", "call": "get_caller_identity"}')[
        "StatusCode"] == 200
    msg = expect("AccessDeniedException", 403, as_user.invoke, FunctionName=closed_fn, Payload=b"{}")
    assert msg == (f"User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: lambda:InvokeFunction "
                   f"on resource: {closed_arn} with an explicit deny in an identity-based policy")
    assert any(f["FunctionName"] == open_fn for f in as_user.list_functions()["Functions"])


def test_creating_a_function_needs_pass_role_on_its_role(server, lam, iam):
    role_arn = make_role(iam)
    user, as_user = user_client(server, iam, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:GetFunction"], "Resource": "*"}]})
    create = dict(Runtime="python3.12", Role=role_arn, Handler="app.handler",
                  Code={"ZipFile": make_zip({"app.py": CALLER})})
    msg = expect("AccessDeniedException", 403, as_user.create_function, FunctionName=unique_name("f"), **create)
    assert msg == (f"User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: iam:PassRole on "
                   f"resource: {role_arn} because no identity-based policy allows the iam:PassRole action")
    iam.put_user_policy(UserName=user, PolicyName="pass", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": role_arn}]}))
    name = unique_name("f")
    assert as_user.create_function(FunctionName=name, **create)["Role"] == role_arn


def test_an_sqs_mapping_needs_a_role_that_may_poll_the_queue(server, lam, iam):
    role_arn = make_role(iam)
    role = role_arn.rsplit("/", 1)[1]
    iam.attach_role_policy(RoleName=role, PolicyArn=BASIC)
    name = make_function(lam, role_arn)
    sqs = server.client("sqs")
    queue_url = sqs.create_queue(QueueName=unique_name("polled"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    msg = expect("InvalidParameterValueException", 400, lam.create_event_source_mapping, FunctionName=name,
                 EventSourceArn=queue_arn)
    assert msg == "The provided execution role does not have permissions to call ReceiveMessage on SQS"
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole")
    mapping = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=queue_arn, Enabled=False)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
