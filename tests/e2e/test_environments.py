"""Execution environments: warm reuse, scale-out (one invocation per environment), idle reaping."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import (alive, create_function, environment_processes, invoke, node_zip, python_zip, report_lines,
                     unique_name)


def test_sequential_invokes_reuse_one_warm_environment(lam, server):
    name = unique_name("env-warm")
    create_function(lam, name, python_zip())
    first = invoke(lam, name, {"n": 1}, server=server, LogType="Tail")
    second = invoke(lam, name, {"n": 2}, server=server, LogType="Tail")
    assert first.function_error is None and second.function_error is None, (first.raw, second.raw)
    a, b = first.payload, second.payload
    assert b["env_id"] == a["env_id"], "second invoke should run in the same (warm) environment"
    assert b["pid"] == a["pid"]
    assert (a["count"], b["count"]) == (1, 2), "module-level state survives between invocations"
    assert a["tmp_file_env_id"] is None, "a new environment starts without our /tmp file"
    assert b["tmp_file_env_id"] == a["env_id"], "files in /tmp survive between invocations"
    assert a["context"]["log_stream_name"] == b["context"]["log_stream_name"]

    cold, warm = report_lines(first.log_result), report_lines(second.log_result)
    assert len(cold) == 1 and cold[0]["init"] is not None, f"cold start must report Init Duration:\n{first.log_result}"
    assert len(warm) == 1 and warm[0]["init"] is None, f"warm start must not report Init Duration:\n{second.log_result}"


def test_node_environment_is_reused_too(lam, server):
    name = unique_name("env-warm-node")
    create_function(lam, name, node_zip(), runtime="nodejs20.x")
    a = invoke(lam, name, {}, server=server).payload
    b = invoke(lam, name, {}, server=server).payload
    assert b["env_id"] == a["env_id"] and b["pid"] == a["pid"]
    assert (a["count"], b["count"]) == (1, 2)


@pytest.mark.timeout(180)
def test_concurrent_invokes_scale_out_one_invocation_per_environment(lam, server):
    name = unique_name("env-scale")
    create_function(lam, name, python_zip(), Timeout=30)
    n = 4

    def call(i):
        return invoke(lam, name, {"sleep": 1.0, "i": i}, server=server)

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(call, range(n)))
    for r in results:
        assert r.status == 200 and r.function_error is None, r.raw
    env_ids = {r.payload["env_id"] for r in results}
    pids = {r.payload["pid"] for r in results}
    assert len(env_ids) == n, f"{n} overlapping invocations need {n} environments, got {len(env_ids)}"
    if server.sandbox == "process":
        assert len(pids) == n  # (in the namespace tier each environment has a pid namespace of its own)
    # Each environment handled exactly one of them: its module-level counter is 1.
    assert sorted(r.payload["count"] for r in results) == [1] * n
    assert sorted(r.payload["event"]["i"] for r in results) == list(range(n))
    assert len({r.request_id for r in results}) == n

    # Afterwards the environments are warm: sequential invokes land in one of them and count on.
    again = invoke(lam, name, {}, server=server)
    assert again.payload["env_id"] in env_ids
    assert again.payload["count"] == 2


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_idle_environment_is_reaped(server_factory):
    srv = server_factory(env_idle_secs=2)
    lam = srv.lambda_client()
    name = unique_name("env-reap")
    create_function(lam, name, python_zip())
    first = invoke(lam, name, {}, server=srv, LogType="Tail")
    assert first.function_error is None, first.raw
    pid, start = first.payload["pid"], first.payload["pid_start"]

    # Idle for well past --env-idle-secs: the environment and its process must go away. (Namespace tier:
    # the reported pid is the function's own pid namespace's; its processes are the server's children.)
    def gone():
        if srv.sandbox == "namespace":
            return not environment_processes(srv.proc.pid)
        return not alive(pid, start)

    deadline = time.monotonic() + 30
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.25)
    assert gone(), "the idle environment's process is still running"

    second = invoke(lam, name, {}, server=srv, LogType="Tail")
    assert second.function_error is None, second.raw
    assert second.payload["env_id"] != first.payload["env_id"]
    if srv.sandbox != "namespace":
        # (Namespace tier: every runtime is pid 2 of its own namespace, and pre-started ones can share
        # a start tick; env_id above tells the environments apart.)
        assert second.payload["pid"] != pid or second.payload["pid_start"] != start
    assert second.payload["count"] == 1
    reports = report_lines(second.log_result)
    assert reports and reports[0]["init"] is not None, "a new environment is a cold start (Init Duration)"


def test_environments_are_per_function(lam, server):
    a_name, b_name = unique_name("env-fa"), unique_name("env-fb")
    create_function(lam, a_name, python_zip())
    create_function(lam, b_name, python_zip())
    a = invoke(lam, a_name, {}, server=server).payload
    b = invoke(lam, b_name, {}, server=server).payload
    assert a["env_id"] != b["env_id"]
    assert a["env"]["AWS_LAMBDA_FUNCTION_NAME"] == a_name
    assert b["env"]["AWS_LAMBDA_FUNCTION_NAME"] == b_name
