"""Helpers shared by the event-plane tests (async invocations, SQS, event source mappings, crashes)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from helpers import create_function, make_zip, read_function_source

# Short retry delays: the server's first async retry waits this long, the second twice as long.
RETRY_BASE_MS = 200
SERVER_ARGS = ("--async-retry-base-ms", str(RETRY_BASE_MS))
# The recorder function writes into a host directory, which only the process tier lets it see.
SERVER_ENV = {"NIMBUS_SANDBOX": "process"}


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
