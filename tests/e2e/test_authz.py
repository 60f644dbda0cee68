"""Authorization of API requests (issue 14 item 1): a function's own session credential may read and invoke
functions, never change them, and the decision comes from the matched operation, not from the path's text.
Names that look like route segments (a function called `invocations`, an alias called `versions`) are names.

The attacker is a function that hands its environment's credentials out; the test then uses them from outside
against every Lambda write operation, while another function is invoked in a loop and must never fail."""

import threading
import uuid

import pytest
from botocore.exceptions import ClientError

from helpers import (ACCOUNT, ROLE, create_function, error_code, function_arn, http_status, invoke, make_zip,
                     python_zip, unique_name)

ROUTE_NAMES = ["invocations", "versions", "aliases", "code", "configuration", "concurrency", "policy"]

STEAL = """
import os
def handler(event, context):
    return {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
"""

ROLE_NAME = ROLE.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def attacker(lam, server):
    name = unique_name("authz-attacker")
    create_function(lam, name, make_zip({"steal.py": STEAL}), handler="steal.handler", Timeout=30)
    creds = invoke(lam, name, {}).payload
    session = server.lambda_client(key=creds["AWS_ACCESS_KEY_ID"], secret=creds["AWS_SECRET_ACCESS_KEY"],
                                   session_token=creds["AWS_SESSION_TOKEN"])
    return name, session


@pytest.fixture(scope="module")
def victims(lam):
    """Functions named like route segments, and one with aliases named like them; each has version 1."""
    names = ROUTE_NAMES + [unique_name("authz-victim")]
    for name in names:
        create_function(lam, name, python_zip(), Timeout=10)
        lam.publish_version(FunctionName=name)
    for alias in ROUTE_NAMES:
        lam.create_alias(FunctionName=names[-1], Name=alias, FunctionVersion="1")
    return names


@pytest.fixture
def steady_loop(lam):
    """Another function invoked back to back while the test runs; every invocation must succeed."""
    name = unique_name("authz-steady")
    create_function(lam, name, python_zip(), Timeout=10)
    stop, failures, count = threading.Event(), [], [0]

    def run():
        while not stop.is_set():
            try:
                inv = invoke(lam, name, {"n": count[0]})
                if inv.status != 200 or inv.function_error:
                    failures.append(inv.raw)
            except Exception as e:  # noqa: BLE001 - any failure is what this loop reports
                failures.append(repr(e))
            count[0] += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(60)
    assert not thread.is_alive()
    assert count[0] > 0
    assert failures == []


def denied_message(attacker_name: str, action: str, resource: str) -> str:
    principal = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE_NAME}/{attacker_name}"
    return (f"User: {principal} is not authorized to perform: lambda:{action} on resource: {resource} "
            f"because no identity-based policy allows the lambda:{action} action")


def assert_denied(attacker_name: str, action: str, resource: str, call):
    with pytest.raises(ClientError) as exc:
        call()
    assert error_code(exc.value) == "AccessDeniedException", (action, resource, exc.value.response)
    assert http_status(exc.value) == 403
    assert exc.value.response["Error"]["Message"] == denied_message(attacker_name, action, resource)


def function_writes(session, name: str):
    """(IAM action, resource, call) for every Lambda write operation on function `name`."""
    arn = function_arn(name)
    zip_bytes = make_zip({"x.py": "def handler(e, c):\n    return 1\n"})
    return [
        ("DeleteFunction", arn, lambda: session.delete_function(FunctionName=name)),
        ("DeleteFunction", function_arn(name, "1"), lambda: session.delete_function(FunctionName=name, Qualifier="1")),
        ("UpdateFunctionConfiguration", arn,
         lambda: session.update_function_configuration(FunctionName=name, Timeout=9)),
        ("UpdateFunctionCode", arn, lambda: session.update_function_code(FunctionName=name, ZipFile=zip_bytes)),
        ("PublishVersion", arn, lambda: session.publish_version(FunctionName=name)),
        ("CreateAlias", arn, lambda: session.create_alias(FunctionName=name, Name="stolen", FunctionVersion="1")),
        ("PutFunctionConcurrency", arn,
         lambda: session.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)),
        ("DeleteFunctionConcurrency", arn, lambda: session.delete_function_concurrency(FunctionName=name)),
        ("PutProvisionedConcurrencyConfig", function_arn(name, "1"),
         lambda: session.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                                            ProvisionedConcurrentExecutions=1)),
        ("DeleteProvisionedConcurrencyConfig", function_arn(name, "1"),
         lambda: session.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")),
        ("TagResource", arn, lambda: session.tag_resource(Resource=arn, Tags={"stolen": "yes"})),
        ("UntagResource", arn, lambda: session.untag_resource(Resource=arn, TagKeys=["nimbus:network"])),
        ("PutFunctionEventInvokeConfig", arn,
         lambda: session.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)),
        ("UpdateFunctionEventInvokeConfig", arn,
         lambda: session.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)),
        ("DeleteFunctionEventInvokeConfig", arn,
         lambda: session.delete_function_event_invoke_config(FunctionName=name)),
    ]


def test_a_functions_credential_can_change_no_function_whatever_its_name(lam, attacker, victims, steady_loop):
    attacker_name, session = attacker
    for name in victims + [attacker_name]:
        for action, resource, call in function_writes(session, name):
            assert_denied(attacker_name, action, resource, call)

    victim = victims[-1]
    for alias in ROUTE_NAMES:
        # The original attack: PUT/DELETE …/functions/<any>/aliases/invocations passed as an "invoke".
        assert_denied(attacker_name, "UpdateAlias", function_arn(victim),
                      lambda: session.update_alias(FunctionName=victim, Name=alias, FunctionVersion="$LATEST"))
        assert_denied(attacker_name, "DeleteAlias", function_arn(victim),
                      lambda: session.delete_alias(FunctionName=victim, Name=alias))

    for name in ["invocations", unique_name("authz-new")]:
        assert_denied(attacker_name, "CreateFunction", function_arn(name),
                      lambda: session.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE,
                                                      Handler="x.handler", Code={"ZipFile": python_zip()}))
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"
    assert_denied(attacker_name, "CreateEventSourceMapping", "*",
                  lambda: session.create_event_source_mapping(FunctionName=victim, EventSourceArn=queue))
    mapping = str(uuid.uuid4())
    esm = f"arn:aws:lambda:us-east-1:{ACCOUNT}:event-source-mapping:{mapping}"
    assert_denied(attacker_name, "UpdateEventSourceMapping", esm,
                  lambda: session.update_event_source_mapping(UUID=mapping, BatchSize=1))
    assert_denied(attacker_name, "DeleteEventSourceMapping", esm,
                  lambda: session.delete_event_source_mapping(UUID=mapping))

    # Nothing changed: every victim, its version, its aliases and its settings are as they were.
    for name in victims:
        cfg = lam.get_function(FunctionName=name)["Configuration"]
        assert cfg["Timeout"] == 10
        assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST", "1"]
        assert lam.list_tags(Resource=function_arn(name))["Tags"] == {}
        assert "Concurrency" not in lam.get_function(FunctionName=name)
    aliases = {a["Name"]: a["FunctionVersion"] for a in lam.list_aliases(FunctionName=victims[-1])["Aliases"]}
    assert aliases == {alias: "1" for alias in ROUTE_NAMES}


def test_a_functions_credential_still_reads_and_invokes(lam, attacker, victims, steady_loop):
    _, session = attacker
    for name in victims:
        assert session.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name
        assert session.get_function_configuration(FunctionName=name, Qualifier="1")["Version"] == "1"
        inv = invoke(session, name, {"from": "session"})
        assert inv.status == 200 and inv.function_error is None, inv.raw
        assert inv.payload["event"] == {"from": "session"}
    victim = victims[-1]
    for alias in ROUTE_NAMES:
        assert session.get_alias(FunctionName=victim, Name=alias)["FunctionVersion"] == "1"
        inv = invoke(session, victim, {"alias": alias}, Qualifier=alias)
        assert inv.status == 200 and inv.executed_version == "1", inv.raw
    listed = {f["FunctionName"] for f in session.list_functions()["Functions"]}
    assert set(victims) <= listed
    assert session.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] > 0


def test_root_still_changes_functions_named_like_routes(lam, victims):
    victim = victims[-1]
    lam.update_alias(FunctionName=victim, Name="invocations", FunctionVersion="$LATEST")
    assert lam.get_alias(FunctionName=victim, Name="invocations")["FunctionVersion"] == "$LATEST"
    lam.delete_alias(FunctionName=victim, Name="invocations")
    lam.delete_function(FunctionName="invocations")
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName="invocations")
    assert error_code(exc.value) == "ResourceNotFoundException"
