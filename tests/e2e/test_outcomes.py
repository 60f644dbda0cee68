"""Invocation outcomes exactly as Lambda reports them: function errors, timeouts, crashes, init failures,
payload limits. A function error is a 200 with X-Amz-Function-Error, never a Nimbus error."""

import json

import pytest
from botocore.exceptions import ClientError

from helpers import (create_function, error_code, http_status, invoke, node_zip, python_zip, report_lines,
                     unique_name, wait_updated)

SIX_MB = 6 * 1024 * 1024  # 6291456: the synchronous request payload limit


def assert_unhandled(inv):
    assert inv.status == 200, inv.status
    assert inv.function_error == "Unhandled", (inv.function_error, inv.raw)
    assert inv.headers.get("x-amz-function-error") == "Unhandled"
    body = inv.payload
    assert isinstance(body, dict) and "errorMessage" in body, inv.raw
    return body


def test_python_exception_is_unhandled_function_error(lam, server):
    name = unique_name("out-raise")
    create_function(lam, name, python_zip())
    inv = invoke(lam, name, {"raise": "boom from python"}, server=server, LogType="Tail")
    body = assert_unhandled(inv)
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "boom from python"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"], body
    assert any("probe.py" in line for line in body["stackTrace"])
    assert "boom from python" in inv.log_result
    # The environment survives a handled exception: the next invoke is warm and works.
    ok = invoke(lam, name, {}, server=server)
    assert ok.function_error is None
    assert ok.payload["count"] == 2


def test_node_exception_is_unhandled_function_error(lam, server):
    name = unique_name("out-raise-node")
    create_function(lam, name, node_zip(), runtime="nodejs20.x")
    body = assert_unhandled(invoke(lam, name, {"raise": "boom from node"}, server=server))
    assert body["errorType"] == "Error"
    assert body["errorMessage"] == "boom from node"
    # AWS's Node runtime calls the stack `trace`; accept the generic name too.
    trace = body.get("trace", body.get("stackTrace"))
    assert isinstance(trace, list) and trace, body

    cb = unique_name("out-raise-node-cb")
    create_function(lam, cb, node_zip(), runtime="nodejs20.x", handler="probe.callbackHandler")
    body = assert_unhandled(invoke(lam, cb, {"raise": "callback error"}, server=server))
    assert body["errorType"] == "Error" and body["errorMessage"] == "callback error"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_timeout_kills_the_environment(lam, server):
    name = unique_name("out-timeout")
    create_function(lam, name, python_zip(), Timeout=1)
    warm = invoke(lam, name, {}, server=server)
    assert warm.function_error is None, warm.raw

    inv = invoke(lam, name, {"sleep": 5}, server=server, LogType="Tail")
    body = assert_unhandled(inv)
    # AWS: {"errorMessage": "<time> <request id> Task timed out after 1.00 seconds"} (newer runtimes add
    # errorType "Sandbox.Timedout" and a "RequestId: … Error: Task timed out …" wording); the stable part:
    assert "Task timed out after 1.00 seconds" in body["errorMessage"], body
    assert "Task timed out after 1.00 seconds" in inv.log_result
    assert report_lines(inv.log_result), inv.log_result

    after = invoke(lam, name, {}, server=server)
    assert after.function_error is None, after.raw
    assert after.payload["env_id"] != warm.payload["env_id"], "a timed-out environment must not be reused"
    assert after.payload["count"] == 1


def test_python_process_exit_is_runtime_exit_error(lam, server):
    name = unique_name("out-exit")
    create_function(lam, name, python_zip())
    warm = invoke(lam, name, {}, server=server)
    inv = invoke(lam, name, {"exit": 1}, server=server)
    body = assert_unhandled(inv)
    assert body["errorType"] == "Runtime.ExitError"
    # AWS: "RequestId: <id> Error: Runtime exited with error: exit status 1"
    assert "Runtime exited with error: exit status 1" in body["errorMessage"], body
    assert inv.request_id in body["errorMessage"]

    after = invoke(lam, name, {}, server=server)
    assert after.function_error is None, after.raw
    assert after.payload["env_id"] != warm.payload["env_id"]


def test_node_process_exit_is_runtime_exit_error(lam, server):
    name = unique_name("out-exit-node")
    create_function(lam, name, node_zip(), runtime="nodejs20.x")
    body = assert_unhandled(invoke(lam, name, {"exit": 3}, server=server))
    assert body["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 3" in body["errorMessage"], body
    assert invoke(lam, name, {}, server=server).function_error is None


def test_import_error_then_fixed_code_works(lam, server):
    name = unique_name("out-import")
    broken = python_zip({"probe.py": "import definitely_not_a_module_nimbus\n\ndef handler(e, c):\n    return 1\n"})
    create_function(lam, name, broken)
    inv = invoke(lam, name, {}, server=server, LogType="Tail")
    body = assert_unhandled(inv)
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"].startswith("Unable to import module 'probe'"), body
    assert "definitely_not_a_module_nimbus" in body["errorMessage"]
    assert "Runtime.ImportModuleError" in inv.log_result

    # Still broken on the next invoke (the init is retried, fails again the same way).
    again = assert_unhandled(invoke(lam, name, {}, server=server))
    assert again["errorType"] == "Runtime.ImportModuleError"

    lam.update_function_code(FunctionName=name, ZipFile=python_zip())
    wait_updated(lam, name)
    fixed = invoke(lam, name, {"fixed": True}, server=server)
    assert fixed.function_error is None, fixed.raw
    assert fixed.payload["event"] == {"fixed": True}


def test_missing_handler_function(lam, server):
    name = unique_name("out-nohandler")
    create_function(lam, name, python_zip(), handler="probe.no_such_handler")
    body = assert_unhandled(invoke(lam, name, {}, server=server))
    assert body["errorType"] == "Runtime.HandlerNotFound"
    assert "no_such_handler" in body["errorMessage"]


def test_init_failure_is_retried_on_next_invoke(server_factory, tmp_path):
    # The probe remembers "init failed once" in a host file, across environments: only the process tier
    # lets a function see the host's files.
    server = server_factory(extra_args=("--sandbox", "process"))
    lam = server.lambda_client()
    name = unique_name("out-initonce")
    marker = tmp_path / "init-failed-once"
    create_function(lam, name, python_zip(), Environment={"Variables": {"PROBE_INIT_FAIL_ONCE": str(marker)}})
    first = invoke(lam, name, {}, server=server)
    body = assert_unhandled(first)
    assert "probe init fails once" in body["errorMessage"], body
    assert marker.exists(), "the failing init ran"

    second = invoke(lam, name, {"second": True}, server=server)
    assert second.function_error is None, second.raw
    assert second.payload["event"] == {"second": True}
    assert second.payload["count"] == 1


@pytest.mark.slow
def test_request_over_6mb_is_rejected_with_413(lam, server):
    name = unique_name("out-bigreq")
    create_function(lam, name, python_zip())
    payload = json.dumps({"blob": "a" * SIX_MB}).encode()
    assert len(payload) > SIX_MB
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=payload)
    # AWS answers 413 RequestEntityTooLargeException ("Request must be smaller than 6291456 bytes for the
    # InvokeFunction operation"), not the RequestTooLargeException that botocore's model also lists.
    assert http_status(e.value) == 413
    assert error_code(e.value) == "RequestEntityTooLargeException"
    assert e.value.response["ResponseMetadata"]["RequestId"]
    # Nothing ran: the function still has a fresh environment count afterwards.
    ok = invoke(lam, name, {}, server=server)
    assert ok.function_error is None and ok.payload["count"] == 1


@pytest.mark.slow
def test_response_over_6mb_is_a_function_error(lam, server):
    name = unique_name("out-bigresp")
    create_function(lam, name, python_zip(), MemorySize=512)
    inv = invoke(lam, name, {"response_bytes": SIX_MB + 200}, server=server)
    body = assert_unhandled(inv)
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert body["errorMessage"] == "Response payload size exceeded maximum allowed payload size (6291556 bytes)."

    under = invoke(lam, name, {"response_bytes": 1024 * 1024}, server=server)
    assert under.function_error is None
    assert len(under.raw) == 1024 * 1024
