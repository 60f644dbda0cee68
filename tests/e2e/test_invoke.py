"""Invoke: the three invocation types, log tail, client context, the runtime contract a function sees."""

import base64
import json
import uuid

import pytest

from helpers import (ACCOUNT, REGION, ROOT_KEY, create_function, function_arn, invoke, make_zip, node_zip,
                     python_zip, report_lines, shell_zip, unique_name, wait_for_logs)


@pytest.fixture(scope="module")
def py_fn(lam):
    name = unique_name("inv-py")
    create_function(lam, name, python_zip(), Timeout=30, MemorySize=256,
                    Environment={"Variables": {"PROBE_COLOR": "blue", "PROBE_EMPTY": ""}})
    return name


def test_python_request_response_echo(lam, server, py_fn):
    event = {"hello": "world", "n": [1, 2, 3], "nested": {"ok": True}, "unicode": "żółw 🐢"}
    inv = invoke(lam, py_fn, event, server=server)
    assert inv.status == 200
    assert inv.function_error is None, inv.raw
    assert inv.executed_version == "$LATEST"
    assert inv.headers.get("x-amz-executed-version") == "$LATEST"
    assert inv.payload["event"] == event


def test_python_context_facts(lam, server, py_fn):
    inv = invoke(lam, py_fn, {"ctx": True}, server=server)
    ctx = inv.payload["context"]
    # On AWS the Invoke response's x-amzn-RequestId is the invocation's aws_request_id.
    assert ctx["aws_request_id"] == inv.request_id
    assert 0 < ctx["remaining_ms"] <= 30_000
    assert ctx["function_name"] == py_fn
    assert ctx["function_version"] == "$LATEST"
    assert int(ctx["memory_limit_in_mb"]) == 256
    assert ctx["invoked_function_arn"] == function_arn(py_fn)
    assert ctx["log_group_name"] == f"/aws/lambda/{py_fn}"
    assert ctx["log_stream_name"], "log stream name must be set"


def test_invoked_function_arn_follows_what_the_caller_used(lam, server, py_fn):
    inv = invoke(lam, py_fn, {}, server=server, Qualifier="$LATEST")
    assert inv.payload["context"]["invoked_function_arn"] == function_arn(py_fn, "$LATEST")
    by_arn = invoke(lam, function_arn(py_fn), {}, server=server)
    assert by_arn.payload["context"]["invoked_function_arn"] == function_arn(py_fn)


def test_environment_contract(lam, server, py_fn):
    inv = invoke(lam, py_fn, {}, server=server)
    env = inv.payload["env"]
    assert inv.payload["user_env"] == {"PROBE_COLOR": "blue", "PROBE_EMPTY": ""}
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == py_fn
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{py_fn}"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == inv.payload["context"]["log_stream_name"]
    assert env["AWS_REGION"] == REGION
    assert env["AWS_DEFAULT_REGION"] == REGION
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["_HANDLER"] == "probe.handler"
    assert env["TZ"] == ":UTC"
    assert env["AWS_LAMBDA_RUNTIME_API"], "AWS_LAMBDA_RUNTIME_API must be set"
    assert env["LAMBDA_TASK_ROOT"], "LAMBDA_TASK_ROOT must be set"
    assert "probe.py" in inv.payload["task_root_listing"]
    assert env["AWS_ENDPOINT_URL"] and env["AWS_ENDPOINT_URL"].startswith("http://")
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SESSION_TOKEN"]


def test_boto3_inside_function_calls_back_with_session_credentials(lam, server, py_fn):
    inv = invoke(lam, py_fn, {"call_lambda": True}, server=server)
    assert inv.function_error is None, inv.raw
    got = inv.payload["boto3"]
    assert got["function_name"] == py_fn
    assert got["function_arn"] == function_arn(py_fn)
    # A per-environment session credential, never the root one.
    assert got["access_key_id"] != ROOT_KEY
    assert inv.payload["env"]["AWS_ACCESS_KEY_ID"] != ROOT_KEY


def test_event_invocation_is_accepted_and_runs(lam, logs, py_fn):
    marker = f"event-marker-{uuid.uuid4().hex}"
    resp = lam.invoke(FunctionName=py_fn, InvocationType="Event",
                      Payload=json.dumps({"print": marker}).encode())
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    assert resp["ResponseMetadata"]["RequestId"]
    # It really ran: its output reaches the function's log group.
    wait_for_logs(logs, py_fn, [marker])


def test_dry_run(lam, py_fn):
    resp = lam.invoke(FunctionName=py_fn, InvocationType="DryRun", Payload=b"{}")
    assert resp["StatusCode"] == 204
    assert resp["Payload"].read() == b""
    assert resp["ResponseMetadata"]["RequestId"]


def test_log_type_tail(lam, server, py_fn):
    marker = f"tail-marker-{uuid.uuid4().hex}"
    inv = invoke(lam, py_fn, {"print": marker}, server=server, LogType="Tail")
    assert inv.function_error is None, inv.raw
    log = inv.log_result
    assert log is not None, "X-Amz-Log-Result missing"
    assert marker in log
    assert f"START RequestId: {inv.request_id} Version: $LATEST" in log
    assert f"END RequestId: {inv.request_id}" in log
    reports = report_lines(log)
    assert len(reports) == 1 and reports[0]["id"] == inv.request_id, log
    assert int(reports[0]["memory"]) == 256
    # At most the last 4 KB, as on AWS.
    assert len(base64.b64decode(inv.headers["x-amz-log-result"])) <= 4096


def test_no_log_result_without_tail(lam, server, py_fn):
    inv = invoke(lam, py_fn, {}, server=server)
    assert inv.log_result is None


def test_client_context_reaches_python(lam, server, py_fn):
    cc = {"custom": {"tenant": "acme"}, "env": {"locale": "en-US"}, "client": {"app_title": "e2e"}}
    inv = invoke(lam, py_fn, {}, server=server,
                 ClientContext=base64.b64encode(json.dumps(cc).encode()).decode())
    got = inv.payload["context"]["client_context"]
    assert got is not None, "client context was dropped"
    assert got["custom"] == {"tenant": "acme"}
    assert got["env"] == {"locale": "en-US"}


def test_nodejs_async_handler(lam, server):
    name = unique_name("inv-node")
    create_function(lam, name, node_zip(), runtime="nodejs20.x", handler="probe.handler", Timeout=20,
                    Environment={"Variables": {"PROBE_LANG": "js"}})
    event = {"from": "node", "list": [1, "two"]}
    inv = invoke(lam, name, event, server=server)
    assert inv.status == 200 and inv.function_error is None, inv.raw
    p = inv.payload
    assert p["style"] == "async"
    assert p["event"] == event
    assert p["context"]["aws_request_id"] == inv.request_id
    assert p["context"]["function_name"] == name
    assert str(p["context"]["memory_limit_in_mb"]) == "128"
    assert p["context"]["invoked_function_arn"] == function_arn(name)
    assert 0 < p["context"]["remaining_ms"] <= 20_000
    assert p["context"]["log_group_name"] == f"/aws/lambda/{name}"
    assert p["user_env"] == {"PROBE_LANG": "js"}
    assert p["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert p["env"]["_HANDLER"] == "probe.handler"


def test_nodejs_callback_handler(lam, server):
    name = unique_name("inv-node-cb")
    create_function(lam, name, node_zip(), runtime="nodejs20.x", handler="probe.callbackHandler")
    inv = invoke(lam, name, {"cb": 1}, server=server)
    assert inv.function_error is None, inv.raw
    assert inv.payload["style"] == "callback"
    assert inv.payload["event"] == {"cb": 1}
    assert inv.payload["context"]["aws_request_id"] == inv.request_id


def test_nodejs_client_context(lam, server):
    name = unique_name("inv-node-cc")
    create_function(lam, name, node_zip(), runtime="nodejs20.x", handler="probe.handler")
    cc = {"custom": {"tenant": "acme"}, "env": {"locale": "en-US"}}
    inv = invoke(lam, name, {}, server=server,
                 ClientContext=base64.b64encode(json.dumps(cc).encode()).decode())
    got = inv.payload["context"]["client_context"]
    assert got is not None and got["custom"] == {"tenant": "acme"}


def test_provided_al2023_shell_bootstrap(lam, server):
    name = unique_name("inv-provided")
    create_function(lam, name, shell_zip(), runtime="provided.al2023", handler="echo.handler")
    event = {"custom": "runtime", "n": 7}
    inv = invoke(lam, name, event, server=server, LogType="Tail")
    assert inv.status == 200 and inv.function_error is None, inv.raw
    assert inv.payload["echo"] == event
    assert inv.payload["request_id"] == inv.request_id
    assert inv.payload["function_name"] == name
    assert inv.payload["memory"] == "128"
    assert inv.payload["handler"] == "echo.handler"
    assert f"shell handling {inv.request_id}" in inv.log_result


def test_every_current_runtime_id_is_accepted(lam, server):
    """Every current python/nodejs runtime id runs (on the host's interpreter)."""
    for runtime in ("python3.9", "python3.10", "python3.11", "python3.13", "python3.14"):
        name = unique_name("inv-rt")
        create_function(lam, name, python_zip(), runtime=runtime)
        inv = invoke(lam, name, {"rt": runtime}, server=server)
        assert inv.function_error is None, (runtime, inv.raw)
        assert inv.payload["event"] == {"rt": runtime}
        assert inv.payload["env"]["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{runtime}"
    for runtime in ("nodejs18.x", "nodejs22.x", "nodejs24.x"):
        name = unique_name("inv-rt")
        create_function(lam, name, node_zip(), runtime=runtime)
        inv = invoke(lam, name, {"rt": runtime}, server=server)
        assert inv.function_error is None, (runtime, inv.raw)
        assert inv.payload["event"] == {"rt": runtime}


def test_payload_that_is_not_an_object(lam, server, py_fn):
    for value in ([1, 2, 3], "just a string", 42, None):
        inv = invoke(lam, py_fn, raw=json.dumps(value).encode(), server=server)
        assert inv.function_error is None, inv.raw
        assert inv.payload["event"] == value


def test_large_request_under_the_limit_is_accepted(lam, server, py_fn):
    blob = "a" * (5 * 1024 * 1024)
    inv = invoke(lam, py_fn, {"event_len": True, "blob": blob}, server=server)
    assert inv.function_error is None, inv.raw[:500]
    assert inv.payload["len"] == len(json.dumps({"event_len": True, "blob": blob}))


def test_account_in_function_arn(lam, server, py_fn):
    inv = invoke(lam, py_fn, {}, server=server)
    assert inv.payload["context"]["invoked_function_arn"].split(":")[4] == ACCOUNT


SELF_MANAGE = """
import boto3, botocore.exceptions
def handler(event, context):
    lam = boto3.client("lambda")
    out = {"get": lam.get_function(FunctionName=context.function_name)["Configuration"]["FunctionName"]}
    calls = {
        "untag": lambda: lam.untag_resource(Resource=context.invoked_function_arn, TagKeys=["nimbus:network"]),
        "update": lambda: lam.update_function_configuration(FunctionName=context.function_name, Timeout=9),
        "create": lambda: lam.create_function(FunctionName=context.function_name + "-x", Runtime="python3.12",
                                              Role="arn:aws:iam::000000000000:role/x", Handler="a.b",
                                              Code={"ZipFile": b"PK\\x05\\x06" + bytes(18)}),
    }
    for name, call in calls.items():
        try:
            call()
            out[name] = "allowed"
        except botocore.exceptions.ClientError as e:
            out[name] = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
    return out
"""


def test_a_functions_own_credential_reads_and_invokes_but_changes_nothing(lam, server):
    """Without roles, a function's session credential may not change functions: it could otherwise lift
    its own `nimbus:network=none` or make a function without it. Reads (and invokes) still work."""
    name = unique_name("inv-self")
    create_function(lam, name, make_zip({"selfmanage.py": SELF_MANAGE}), handler="selfmanage.handler", Timeout=30,
                    Tags={"nimbus:network": "none"})
    inv = invoke(lam, name, {}, server=server)
    assert inv.function_error is None, inv.raw
    denied = ["AccessDeniedException", 403]
    assert inv.payload == {"get": name, "untag": denied, "update": denied, "create": denied}
    assert lam.list_tags(Resource=function_arn(name))["Tags"] == {"nimbus:network": "none"}
    assert lam.get_function_configuration(FunctionName=name)["Timeout"] == 30
