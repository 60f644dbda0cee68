"""Helpers shared by the event-plane tests (async invocations, SQS, event source mappings, crashes)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from helpers import NimbusServer, create_function, make_zip, read_function_source

# Short retry delays: the server's first async retry waits this long, the second twice as long.
RETRY_BASE_MS = 200
SERVER_ARGS = ("--async-retry-base-ms", str(RETRY_BASE_MS))
# The recorder function writes into a host directory, which only the process tier lets it see.
SERVER_ENV = {"NIMBUS_SANDBOX": "process"}


# Fixtures for a test module of the event plane: `from eventplane import srv, lam, sqs, rec_dir` gives it one
# server of its own (module scope), clients of it, and a fresh directory for the recorder per test.
@pytest.fixture(scope="module")
def srv(request, tmp_path_factory):
    name = request.module.__name__.removeprefix("test_")
    s = NimbusServer(tmp_path_factory.mktemp(f"nimbus-{name}"), extra_args=SERVER_ARGS, extra_env=SERVER_ENV).start()
    yield s
    s.teardown()


@pytest.fixture(scope="module")
def lam(srv):
    return srv.lambda_client()


@pytest.fixture(scope="module")
def sqs(srv):
    return srv.client("sqs")


@pytest.fixture
def rec_dir(tmp_path):
    d = tmp_path / "records"
    d.mkdir()
    return d


def recorder_zip() -> bytes:
    return make_zip({"recorder.py": read_function_source("python", "recorder.py")})


def create_recorder(lam, name: str, record_dir: Path, env: dict | None = None, **kw) -> dict:
    variables = {"RECORD_DIR": str(record_dir), **(env or {})}
    return create_function(lam, name, recorder_zip(), handler="recorder.handler",
                           Environment={"Variables": variables}, Timeout=kw.pop("Timeout", 30), **kw)


def records(record_dir: Path, function: str | None = None) -> list[dict]:
    """Every invocation the recorder wrote down (optionally of one function), oldest first."""
    out = []
    for path in sorted(record_dir.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if function is None or rec["function"] == function:
            out.append(rec)
    out.sort(key=lambda r: r.get("ts", 0))
    return out


def wait_until(check, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    """Polls `check()` until it returns something truthy (returned), or fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:000000000000:{name}"


def drain(sqs, url: str, expect: int, timeout: float = 30, attributes: bool = True) -> list[dict]:
    """Receives (and deletes) messages until `expect` arrived."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        kw = {"MessageAttributeNames": ["All"], "MessageSystemAttributeNames": ["All"]} if attributes else {}
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kw)
        for m in resp.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert len(got) >= expect, f"expected {expect} messages from {url}, got {len(got)}"
    return got
