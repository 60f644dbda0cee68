"""Conformance: AWS's official runtime clients, unmodified, run as functions against Nimbus's Runtime API.

- Rust: tests/functions/rust_echo, built with the `lambda_runtime` crate (its binary is the `bootstrap`)
- Python: `awslambdaric` (PyPI) packaged into a provided.al2023 zip with a bootstrap that runs it
- shell: tests/functions/shell/bootstrap, the curl loop of AWS's custom-runtime tutorial

Each answers sequential and concurrent invokes and reports a function error correctly.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import (awslambdaric_zip, create_function, function_arn, invoke, rust_echo_zip, shell_zip, unique_name,
                     wait_for_logs)

CLIENTS = {
    # id: (zip builder, runtime, handler)
    "rust_lambda_runtime": (rust_echo_zip, "provided.al2023", "bootstrap"),
    "python_awslambdaric": (awslambdaric_zip, "provided.al2023", "app.handler"),
    "shell_curl": (shell_zip, "provided.al2", "function.handler"),
}


@pytest.fixture(scope="module", params=sorted(CLIENTS))
def runtime_fn(request, lam):
    build, runtime, handler = CLIENTS[request.param]
    name = unique_name(f"conf-{request.param.split('_')[0]}")
    create_function(lam, name, build(), runtime=runtime, handler=handler, Timeout=20, MemorySize=256)
    return request.param, name


def echoed_event(kind, payload):
    if kind == "rust_lambda_runtime":
        return payload["event"]
    if kind == "python_awslambdaric":
        return payload["event"]
    return payload["echo"]


def echoed_request_id(kind, payload):
    if kind == "rust_lambda_runtime":
        return payload["context"]["aws_request_id"]
    if kind == "python_awslambdaric":
        return payload["aws_request_id"]
    return payload["request_id"]


def test_sequential_invokes(lam, server, runtime_fn):
    kind, name = runtime_fn
    for i in range(5):
        event = {"seq": i, "text": f"hello {i}", "nested": {"list": [i, i + 1]}}
        inv = invoke(lam, name, event, server=server, LogType="Tail")
        assert inv.status == 200, inv.raw
        assert inv.function_error is None, inv.raw
        assert echoed_event(kind, inv.payload) == event
        assert echoed_request_id(kind, inv.payload) == inv.request_id
        assert f"START RequestId: {inv.request_id}" in inv.log_result
        assert f"REPORT RequestId: {inv.request_id}" in inv.log_result


def test_context_reaches_the_client(lam, server, runtime_fn):
    kind, name = runtime_fn
    inv = invoke(lam, name, {"ctx": 1}, server=server)
    p = inv.payload
    if kind == "rust_lambda_runtime":
        ctx = p["context"]
        assert ctx["function_name"] == name
        assert ctx["memory_limit_in_mb"] == 256
        assert ctx["function_version"] == "$LATEST"
        assert ctx["invoked_function_arn"] == function_arn(name)
        assert 0 < ctx["remaining_ms"] <= 20_000
        assert ctx["log_group_name"] == f"/aws/lambda/{name}"
    elif kind == "python_awslambdaric":
        assert p["function_name"] == name
        assert int(p["memory_limit_in_mb"]) == 256
        assert p["invoked_function_arn"] == function_arn(name)
        assert 0 < p["remaining_ms"] <= 20_000
    else:
        assert p["function_name"] == name
        assert p["memory"] == "256"


@pytest.mark.timeout(180)
def test_concurrent_invokes(lam, logs, server, runtime_fn):
    kind, name = runtime_fn
    n = 3

    def call(i):
        # The sleep makes the invocations overlap, so they need separate environments.
        return invoke(lam, name, {"i": i, "sleep": 1, "sleep_ms": 1000}, server=server)

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(call, range(n)))
    for i, inv in enumerate(results):
        assert inv.status == 200 and inv.function_error is None, inv.raw
        assert echoed_event(kind, inv.payload)["i"] == i
        assert echoed_request_id(kind, inv.payload) == inv.request_id
    # One environment per concurrent invocation: each has a log stream of its own (pids tell them apart only
    # on the process tier; in the namespace tier every environment has its own pid namespace).
    starts = [f"START RequestId: {inv.request_id}" for inv in results]
    events = wait_for_logs(logs, name, starts)
    streams = {e["logStreamName"] for e in events for s in starts if e["message"].startswith(s)}
    assert len(streams) == n, "one environment per concurrent invocation"


def test_function_error(lam, server, runtime_fn):
    kind, name = runtime_fn
    inv = invoke(lam, name, {"fail": "conformance failure"}, server=server)
    assert inv.status == 200
    assert inv.function_error == "Unhandled", inv.raw
    body = inv.payload
    assert isinstance(body, dict) and body.get("errorType"), inv.raw
    if kind == "rust_lambda_runtime":
        # lambda_runtime reports the Diagnostic the handler's error converts into.
        assert body["errorMessage"] == "conformance failure"
        assert body["errorType"] == "EchoFailure"
    elif kind == "python_awslambdaric":
        assert body["errorMessage"] == "conformance failure"
        assert body["errorType"] == "RuntimeError"
        assert isinstance(body["stackTrace"], list)
    else:
        assert body["errorMessage"] == "shell function failed on purpose"
        assert body["errorType"] == "ShellError"

    # The environment keeps serving after a function error.
    ok = invoke(lam, name, {"after": "error"}, server=server)
    assert ok.function_error is None, ok.raw
    assert echoed_event(kind, ok.payload) == {"after": "error"}
