"""Logs: the CloudWatch Logs API on the same endpoint (boto3 and the AWS CLI) and `nimbus logs`."""

import queue
import re
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import create_function, invoke, nimbus_bin, python_zip, report_lines, unique_name, wait_for_logs


@pytest.fixture(scope="module")
def logged_fn(lam, server, logs):
    """A function invoked twice (cold, then warm), each printing a marker; returns (name, invocations)."""
    name = unique_name("logs-fn")
    create_function(lam, name, python_zip())
    markers = [f"log-marker-{i}-{uuid.uuid4().hex}" for i in range(2)]
    invs = [invoke(lam, name, {"print": m}, server=server) for m in markers]
    for inv in invs:
        assert inv.function_error is None, inv.raw
    wait_for_logs(logs, name, markers + [f"REPORT RequestId: {invs[1].request_id}"])
    return name, invs, markers


def test_filter_log_events_has_platform_lines_and_output(logs, logged_fn):
    name, invs, markers = logged_fn
    events = wait_for_logs(logs, name, markers)
    text = "\n".join(e["message"] for e in events)
    for inv in invs:
        assert f"START RequestId: {inv.request_id} Version: $LATEST" in text
        assert f"END RequestId: {inv.request_id}" in text
    for m in markers:
        assert m in text
    for e in events:
        assert isinstance(e["timestamp"], int) and e["timestamp"] > 1_600_000_000_000  # epoch milliseconds
        assert e["logStreamName"]
        assert e.get("eventId")

    reports = {m["id"]: m for m in report_lines(text)}
    cold, warm = reports[invs[0].request_id], reports[invs[1].request_id]
    for r in (cold, warm):
        assert int(r["memory"]) == 128
        assert int(r["max_used"]) > 0, "Max Memory Used is measured, so never 0"
        assert float(r["duration"]) >= 0
        assert int(r["billed"]) >= float(r["duration"])
    # 1 ms billing granularity: a warm invocation's billed duration is its duration rounded up. (A cold
    # one may also bill the init phase, as AWS does for managed runtimes since 2025, so only >= there.)
    assert int(warm["billed"]) <= float(warm["duration"]) + 1
    assert cold["init"] is not None and float(cold["init"]) > 0
    assert warm["init"] is None


def test_one_log_stream_per_environment(lam, logs, server):
    name = unique_name("logs-streams")
    create_function(lam, name, python_zip(), Timeout=30)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda i: invoke(lam, name, {"sleep": 1, "i": i}, server=server), range(3)))
    stream_names = {r.payload["context"]["log_stream_name"] for r in results}
    assert len(stream_names) == 3
    wait_for_logs(logs, name, [f"REPORT RequestId: {r.request_id}" for r in results])

    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert {s["logStreamName"] for s in streams} == stream_names
    for r in results:
        stream = r.payload["context"]["log_stream_name"]
        events = logs.get_log_events(logGroupName=f"/aws/lambda/{name}", logStreamName=stream,
                                     startFromHead=True)["events"]
        text = "\n".join(e["message"] for e in events)
        assert f"START RequestId: {r.request_id}" in text
        others = [o.request_id for o in results if o is not r]
        assert not any(o in text for o in others), "a stream holds only its own environment's invocations"


def test_log_group_is_listed(logs, logged_fn):
    name, _, _ = logged_fn
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [f"/aws/lambda/{name}"]


def test_aws_cli_logs_commands(server, logged_fn):
    name, invs, markers = logged_fn
    group = f"/aws/lambda/{name}"
    out = server.aws("logs", "filter-log-events", "--log-group-name", group)
    text = "\n".join(e["message"] for e in out["events"])
    assert all(m in text for m in markers)
    assert f"END RequestId: {invs[0].request_id}" in text

    streams = server.aws("logs", "describe-log-streams", "--log-group-name", group)["logStreams"]
    assert len(streams) == 1, "two sequential invokes ran in one environment: one stream"
    stream = streams[0]["logStreamName"]
    assert "[$LATEST]" in stream, f"AWS names streams YYYY/MM/DD/[$LATEST]<id>, got {stream}"

    got = server.aws("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
                     "--start-from-head")
    msgs = [e["message"] for e in got["events"]]
    assert any(m.startswith(f"START RequestId: {invs[0].request_id}") for m in msgs)
    assert any(markers[1] in m for m in msgs)


def test_missing_log_group(logs):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=f"/aws/lambda/{unique_name('nolog')}")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_retention_policy_and_log_group_creation(logs, logged_fn, server):
    """PutRetentionPolicy/DeleteRetentionPolicy on a function's group (boto3 and the AWS CLI), and
    CreateLogGroup ahead of a function's first log line, as users script them on AWS."""
    from botocore.exceptions import ClientError

    name, _, _ = logged_fn
    group = f"/aws/lambda/{name}"

    def described(g):
        [info] = logs.describe_log_groups(logGroupNamePrefix=g)["logGroups"]
        return info

    assert "retentionInDays" not in described(group), "events are kept forever until a policy is put"
    logs.put_retention_policy(logGroupName=group, retentionInDays=14)
    assert described(group)["retentionInDays"] == 14
    server.aws("logs", "put-retention-policy", "--log-group-name", group, "--retention-in-days", "30")
    assert described(group)["retentionInDays"] == 30
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in described(group)

    def error(call, **kw):
        with pytest.raises(ClientError) as e:
            call(**kw)
        return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]

    assert error(logs.put_retention_policy, logGroupName=group, retentionInDays=2) == ("InvalidParameterException", 400)
    missing = f"/aws/lambda/{unique_name('nolog')}"
    assert error(logs.put_retention_policy, logGroupName=missing, retentionInDays=1) == ("ResourceNotFoundException", 400)
    assert error(logs.create_log_group, logGroupName="bad name!") == ("InvalidParameterException", 400)

    logs.create_log_group(logGroupName=missing)
    assert described(missing)["storedBytes"] == 0
    assert error(logs.create_log_group, logGroupName=missing) == ("ResourceAlreadyExistsException", 400)
    logs.put_retention_policy(logGroupName=missing, retentionInDays=1)
    assert described(missing)["retentionInDays"] == 1
    logs.delete_log_group(logGroupName=missing)
    assert logs.describe_log_groups(logGroupNamePrefix=missing)["logGroups"] == []


def test_nimbus_logs_subcommand(server, logged_fn):
    name, invs, markers = logged_fn
    proc = server.nimbus("logs", name)
    out = proc.stdout
    assert all(m in out for m in markers), out
    assert f"START RequestId: {invs[0].request_id}" in out
    assert f"REPORT RequestId: {invs[1].request_id}" in out


def test_nimbus_logs_right_after_the_first_invoke_waits_for_the_group(server, lam):
    """The log group appears with the first lines, written just after the invocation answered: `nimbus
    logs` run at once waits for it (bounded) instead of failing with "log group does not exist"."""
    for _ in range(3):
        fresh = unique_name("logs-first")
        create_function(lam, fresh, python_zip())
        inv = server.nimbus("invoke", fresh, "--payload", "{}")
        assert inv.returncode == 0, inv.stderr
        out = server.nimbus("logs", fresh)
        assert "START RequestId: " in out.stdout, out.stdout + out.stderr


def test_nimbus_logs_of_a_missing_function_fails_at_once(server):
    """No group and no function: GetFunction's error, not a wait for a group that cannot come."""
    proc = server.nimbus("logs", unique_name("logs-nosuch"), check=False)
    assert proc.returncode != 0
    assert "GetFunction failed: ResourceNotFoundException" in proc.stderr, proc.stderr


@pytest.mark.timeout(90)
def test_nimbus_logs_follow_streams_new_lines(server, lam, logged_fn):
    name, _, _ = logged_fn
    cmd = [str(nimbus_bin()), "logs", name, "--follow", "--endpoint-url", server.url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=server.nimbus_env(), stdin=subprocess.DEVNULL, cwd=server.workdir)
    lines: "queue.Queue[str]" = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    try:
        time.sleep(1.0)  # let it catch up with what is there already
        assert proc.poll() is None, f"`nimbus logs --follow` exited early: {proc.stderr.read()}"
        marker = f"follow-marker-{uuid.uuid4().hex}"
        inv = invoke(lam, name, {"print": marker}, server=server)
        assert inv.function_error is None
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if marker in line:
                break
        assert any(marker in s for s in seen), f"--follow never printed the new line; got:\n{''.join(seen)}"
        assert proc.poll() is None, "--follow keeps running"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_report_format_on_the_wire(logs, logged_fn):
    name, invs, _ = logged_fn
    events = wait_for_logs(logs, name, [f"REPORT RequestId: {invs[0].request_id}"])
    report = next(e["message"] for e in events if e["message"].startswith(f"REPORT RequestId: {invs[0].request_id}"))
    assert re.match(
        r"REPORT RequestId: [0-9a-f-]+\tDuration: \d+\.\d{2} ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d{2} ms", report), repr(report)
