"""Hostile clients and functions against the services Nimbus serves (CloudWatch Logs, SQS, async Invoke)
and its data dir: each test makes the attack against the real binary with boto3, mostly from inside a
function with its session credential, and shows the platform still serving everyone else (a bystander
in a loop never fails) and the bound that holds (sizes, counts, modes; never timings).

The findings are the hostile review's 02, 03, 04, 06, 07 (DeleteFunction) , 10 and 12.
"""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest
from botocore.exceptions import ClientError

from helpers import create_function, error_code, http_status, invoke, make_zip, unique_name

# One function with every attack, run with its session credential (boto3 reads AWS_ENDPOINT_URL).
HOSTILE = r'''
import json, os, time
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ONE_TRY = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)


def code_of(e):
    return {"code": e.response["Error"]["Code"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
            "message": e.response["Error"].get("Message", "")}


def handler(event, context):
    if "log" in event:
        line = "L" * event["log"]["size"]
        for i in range(event["log"]["n"]):
            print("%06d %s" % (i, line), flush=True)
        return {"logged": event["log"]["n"]}
    if "filter" in event:
        logs = boto3.client("logs", config=ONE_TRY)
        pages = []
        for _ in range(event["filter"]["rounds"]):
            token = None
            while True:
                kw = {"logGroupName": event["filter"]["group"], "filterPattern": event["filter"]["pattern"]}
                if token:
                    kw["nextToken"] = token
                page = logs.filter_log_events(**kw)
                pages.append([len(page["events"]), sum(len(e["message"].encode()) + 26 for e in page["events"])])
                token = page.get("nextToken")
                if not token:
                    break
        return {"pages": pages}
    if "tags" in event:
        sqs = boto3.client("sqs", config=ONE_TRY)
        try:
            sqs.tag_queue(QueueUrl=event["queue"], Tags=event["tags"])
            return {"ok": True}
        except ClientError as e:
            return code_of(e)
    if "policy_bytes" in event:
        sqs = boto3.client("sqs", config=ONE_TRY)
        policy = json.dumps({"Version": "2012-10-17", "Id": "x" * event["policy_bytes"]})
        try:
            sqs.set_queue_attributes(QueueUrl=event["queue"], Attributes={"Policy": policy})
            return {"ok": True, "size": len(policy)}
        except ClientError as e:
            return dict(code_of(e), size=len(policy))
    if "send" in event:
        sqs = boto3.client("sqs", config=ONE_TRY)
        try:
            sqs.send_message(QueueUrl=event["send"], MessageBody=event.get("body", "x"))
            return {"ok": True}
        except ClientError as e:
            return code_of(e)
    if "flood" in event:
        lam = boto3.client("lambda", config=ONE_TRY)
        for i in range(event["flood"]["n"]):
            lam.invoke(FunctionName=event["flood"]["function"], InvocationType="Event",
                       Payload=json.dumps(dict(event["flood"]["payload"], n=i)).encode())
        return {"queued": event["flood"]["n"]}
    if "report_to" in event:
        # An async event: say that it ran, and how many of `count` had run by then.
        sqs = boto3.client("sqs", config=ONE_TRY)
        time.sleep(event.get("sleep", 0))
        body = {"event": event}
        if "count" in event:
            attrs = sqs.get_queue_attributes(QueueUrl=event["count"], AttributeNames=["ApproximateNumberOfMessages"])
            body["counted"] = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
        sqs.send_message(QueueUrl=event["report_to"], MessageBody=json.dumps(body))
        return body
    return {"event": event}
'''


def hostile_zip(extra: str = "") -> bytes:
    return make_zip({"hostile.py": HOSTILE + extra})


def make_hostile(lam, name: str, **kw) -> None:
    create_function(lam, name, hostile_zip(), handler="hostile.handler", Timeout=kw.pop("Timeout", 120), **kw)


class Bystander:
    """Invokes a function in a loop (and lists functions) until stopped; every call must succeed. Its
    client waits at most 20 s for an answer (a normal one takes milliseconds): a server held by an attack
    makes it fail."""

    def __init__(self, srv, name: str):
        self.lam = srv.client("lambda", read_timeout=20)
        self.name = name
        self.calls = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                inv = invoke(self.lam, self.name, {"ping": self.calls})
                if inv.status != 200 or inv.function_error:
                    self.failures.append(f"invoke: {inv.status} {inv.raw[:200]!r}")
                self.lam.list_functions(MaxItems=5)
                self.calls += 1
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                self.failures.append(f"{type(e).__name__}: {e}")

    def __enter__(self) -> "Bystander":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the bystander is stuck"
        assert not self.failures, f"the bystander failed while under attack: {self.failures[:5]}"
        assert self.calls > 0


def worst_pattern() -> str:
    """Any-of terms that match nothing, as many as 1,024 characters hold (the review's attack)."""
    out, i = [], 0
    while len(" ".join(out + [f"?zq{i}"])) <= 1024:
        out.append(f"?zq{i}")
        i += 1
    return " ".join(out)


def wait_for_events(logs, group: str, at_least: int) -> None:
    import time
    for _ in range(300):
        try:
            n = 0
            token = None
            while True:
                kw = {"logGroupName": group, "filterPattern": "LLLL"}
                if token:
                    kw["nextToken"] = token
                page = logs.filter_log_events(**kw)
                n += len(page["events"])
                token = page.get("nextToken")
                if not token:
                    break
            if n >= at_least:
                return
        except ClientError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{group} never had {at_least} events")


def page_bytes(events: list[dict]) -> int:
    return sum(len(e["message"].encode()) + 26 for e in events)


# -- 02: FilterLogEvents -----------------------------------------------------------------------------------


def test_filter_patterns_are_bounded_and_the_worst_one_holds_no_one(server_factory):
    srv = server_factory()
    lam, logs = srv.lambda_client(), srv.logs_client()
    spammer, bystander = unique_name("spammer"), unique_name("bystander")
    make_hostile(lam, spammer)
    make_hostile(lam, bystander)
    group = f"/aws/lambda/{spammer}"
    # 3,000 lines of 1 KB: what the review searched with hundreds of terms per line.
    assert invoke(lam, spammer, {"log": {"n": 3000, "size": 1000}}).payload == {"logged": 3000}
    wait_for_events(logs, group, 3000)

    # AWS's bound on the pattern: 1,024 characters.
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=group, filterPattern="?a " * 342)
    assert error_code(e.value) == "InvalidParameterException" and http_status(e.value) == 400
    assert "less than or equal to 1024" in str(e.value)

    pattern = worst_pattern()
    assert len(pattern) <= 1024 and pattern.count("?") > 150
    pages: list[list[int]] = []
    errors: list[str] = []

    def from_root() -> None:
        client = srv.logs_client()
        try:
            for _ in range(3):
                token = None
                while True:
                    kw = {"logGroupName": group, "filterPattern": pattern}
                    if token:
                        kw["nextToken"] = token
                    page = client.filter_log_events(**kw)
                    pages.append([len(page["events"]), page_bytes(page["events"])])
                    token = page.get("nextToken")
                    if not token:
                        break
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    def from_function() -> None:
        try:
            out = invoke(srv.lambda_client(), spammer, {"filter": {"group": group, "pattern": pattern, "rounds": 3}})
            assert out.function_error is None, out.raw
            pages.extend(out.payload["pages"])
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    with Bystander(srv, bystander):
        attackers = [threading.Thread(target=from_root) for _ in range(3)]
        attackers += [threading.Thread(target=from_function) for _ in range(2)]
        for t in attackers:
            t.start()
        for t in attackers:
            t.join(timeout=600)
    assert not errors, errors
    assert pages, "the attack ran"
    # Every page within AWS's bounds; nothing matched.
    assert all(n == 0 and size <= 1024 * 1024 for n, size in pages), pages[:5]


# -- 03: GetLogEvents / FilterLogEvents pages ------------------------------------------------------------


def test_log_pages_are_at_most_a_megabyte_and_page_through_everything(server_factory):
    srv = server_factory()
    lam, logs = srv.lambda_client(), srv.logs_client()
    chatty = unique_name("chatty")
    make_hostile(lam, chatty)
    group = f"/aws/lambda/{chatty}"
    # 24 lines of 250 KB (6 MB, within one environment's log burst): 4 fit in a 1 MB page.
    assert invoke(lam, chatty, {"log": {"n": 24, "size": 250_000}}).payload == {"logged": 24}
    wait_for_events(logs, group, 24)
    stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"]

    def big(events: list[dict]) -> list[int]:
        return [int(e["message"][:6]) for e in events if len(e["message"]) > 1000]

    # GetLogEvents forward from the head: every page <= 1 MB; each line exactly once, in order.
    seen, token = [], None
    for _ in range(100):
        kw = {"logGroupName": group, "logStreamName": stream, "startFromHead": True, "limit": 10_000}
        if token:
            kw["nextToken"] = token
        page = logs.get_log_events(**kw)
        assert page_bytes(page["events"]) <= 1024 * 1024
        seen += big(page["events"])
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert seen == list(range(24))

    # Backward from the tail (what GetLogEvents does without startFromHead).
    seen, token = [], None
    for _ in range(100):
        kw = {"logGroupName": group, "logStreamName": stream, "limit": 10_000}
        if token:
            kw["nextToken"] = token
        page = logs.get_log_events(**kw)
        assert page_bytes(page["events"]) <= 1024 * 1024
        seen = big(page["events"]) + seen
        if page["nextBackwardToken"] == token:
            break
        token = page["nextBackwardToken"]
    assert seen == list(range(24))

    # FilterLogEvents, by 8 clients at once: 1 MB pages with a nextToken, nothing lost.
    results: list[list[int]] = []
    errors: list[str] = []

    def read_all() -> None:
        client = srv.logs_client()
        try:
            got, token = [], None
            while True:
                kw = {"logGroupName": group, "filterPattern": "LLLL"}
                if token:
                    kw["nextToken"] = token
                page = client.filter_log_events(**kw)
                assert page_bytes(page["events"]) <= 1024 * 1024
                got += big(page["events"])
                token = page.get("nextToken")
                if not token:
                    break
            results.append(got)
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    readers = [threading.Thread(target=read_all) for _ in range(8)]
    for t in readers:
        t.start()
    for t in readers:
        t.join(timeout=300)
    assert not errors, errors
    assert results == [list(range(24))] * 8


# -- 04: SQS tags and attributes -------------------------------------------------------------------------


def test_sqs_tags_and_attributes_are_bounded_as_on_aws(server_factory):
    srv = server_factory()
    lam, sqs = srv.lambda_client(), srv.client("sqs")
    attacker = unique_name("tagger")
    make_hostile(lam, attacker)
    victim = sqs.create_queue(QueueName=unique_name("victim-jobs"))["QueueUrl"]

    def attack(event: dict) -> dict:
        out = invoke(lam, attacker, event)
        assert out.function_error is None, out.raw
        return out.payload

    # The review's attack: 1 MB tag values on another tenant's queue.
    got = attack({"tags": {"big": "v" * (1 << 20)}, "queue": victim})
    assert (got["code"], got["status"]) == ("InvalidParameterValue", 400), got
    got = attack({"tags": {"k" * 129: "v"}, "queue": victim})
    assert got["code"] == "InvalidParameterValue", got
    got = attack({"tags": {f"t{i}": "v" * 256 for i in range(51)}, "queue": victim})
    assert got["code"] == "InvalidParameterValue" and "Too many tags" in got["message"], got
    # The most AWS allows is accepted; one more tag is not (the count is after merging).
    assert attack({"tags": {f"t{i}": "v" * 256 for i in range(50)}, "queue": victim}) == {"ok": True}
    got = attack({"tags": {"one-more": "v"}, "queue": victim})
    assert got["code"] == "InvalidParameterValue", got
    tags = sqs.list_queue_tags(QueueUrl=victim)["Tags"]
    assert len(tags) == 50 and max(len(v) for v in tags.values()) == 256

    # Policy: 20 KB at most.
    got = attack({"policy_bytes": 30_000, "queue": victim})
    assert (got["code"], got["status"]) == ("InvalidAttributeValue", 400), got
    got = attack({"policy_bytes": 19_000, "queue": victim})
    assert got["ok"], got
    assert len(sqs.get_queue_attributes(QueueUrl=victim, AttributeNames=["Policy"])["Attributes"]["Policy"]) < 20_480

    # The owner's queue keeps working.
    sqs.send_message(QueueUrl=victim, MessageBody="still here")
    assert sqs.receive_message(QueueUrl=victim, WaitTimeSeconds=5)["Messages"][0]["Body"] == "still here"

    # ListDeadLetterSourceQueues: exactly the sources, paged.
    dlq = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    sources = sorted(
        sqs.create_queue(QueueName=unique_name(f"src{i}"), Attributes={"RedrivePolicy": redrive})["QueueUrl"]
        for i in range(3))
    sqs.create_queue(QueueName=unique_name("unrelated"))
    assert sorted(sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"]) == sources
    first = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=2)
    assert len(first["queueUrls"]) == 2 and first["NextToken"]
    rest = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=2, NextToken=first["NextToken"])
    assert sorted(first["queueUrls"] + rest["queueUrls"]) == sources and "NextToken" not in rest
    assert sqs.list_dead_letter_source_queues(QueueUrl=victim)["queueUrls"] == []


# -- 06 / 07: async fairness and DeleteFunction ----------------------------------------------------------


def receive_json(sqs, url: str, wait_s: int = 20) -> list[dict]:
    msgs = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=wait_s, MaxNumberOfMessages=10).get("Messages", [])
    for m in msgs:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in msgs]


def test_one_functions_async_backlog_does_not_hold_another_and_dies_with_it(server_factory):
    srv = server_factory(extra_args=("--async-concurrency", "4"))
    lam, sqs = srv.lambda_client(), srv.client("sqs")
    flooder, slow, victim = unique_name("flooder"), unique_name("slow"), unique_name("victim")
    for name in (flooder, slow, victim):
        make_hostile(lam, name)
    slow_ran = sqs.create_queue(QueueName=unique_name("slow-ran"))["QueueUrl"]
    victim_ran = sqs.create_queue(QueueName=unique_name("victim-ran"))["QueueUrl"]

    # A function (its session credential) queues 30 events of 2 s each for `slow`: a FIFO would make any
    # later event wait for all 30 (15 s at a concurrency of 4).
    backlog = 30
    out = invoke(lam, flooder, {"flood": {"function": slow, "n": backlog,
                                          "payload": {"report_to": slow_ran, "sleep": 2}}})
    assert out.payload == {"queued": backlog}, out.raw
    # The victim's one event, accepted after the whole backlog, counts how many of slow's had run.
    lam.invoke(FunctionName=victim, InvocationType="Event",
               Payload=json.dumps({"report_to": victim_ran, "count": slow_ran}).encode())
    got = []
    for _ in range(6):
        got = receive_json(sqs, victim_ran)
        if got:
            break
    assert got, "the victim's async event never ran"
    # It ran while most of the backlog was still waiting (its share, not its place in line).
    assert got[0]["counted"] <= backlog // 2, got

    # DeleteFunction drops slow's waiting events: a function created again under the same name, invoked
    # async once, sees only its own event (the old ones were ahead of it in slow's queue).
    lam.delete_function(FunctionName=slow)
    again = sqs.create_queue(QueueName=unique_name("slow-again"))["QueueUrl"]
    make_hostile(lam, slow)
    lam.invoke(FunctionName=slow, InvocationType="Event",
               Payload=json.dumps({"report_to": again, "marker": True}).encode())
    seen: list[dict] = []
    for _ in range(6):
        seen += receive_json(sqs, again)
        if any(m["event"].get("marker") for m in seen):
            break
    assert [m["event"].get("marker") for m in seen] == [True], seen


# -- 10: the data disk's reserve -------------------------------------------------------------------------


def test_below_the_disk_reserve_function_driven_writes_are_refused_and_the_rest_serves(server_factory):
    # A reserve larger than any disk: every function-driven durable write is refused.
    srv = server_factory(extra_args=("--disk-reserve-mb", str(1 << 40)))
    lam, sqs = srv.lambda_client(), srv.client("sqs")
    writer, bystander = unique_name("writer"), unique_name("bystander")
    make_hostile(lam, writer)
    make_hostile(lam, bystander)
    queue = sqs.create_queue(QueueName=unique_name("fill"), Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    with Bystander(srv, bystander):
        got = invoke(lam, writer, {"send": queue, "body": "x" * 200_000}).payload
        assert (got["code"], got["status"]) == ("ServiceUnavailable", 503), got
        with pytest.raises(ClientError) as e:
            sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "a", "MessageBody": "x"}])
        assert http_status(e.value) == 503
        with pytest.raises(ClientError) as e:
            lam.invoke(FunctionName=writer, InvocationType="Event", Payload=b"{}")
        assert (error_code(e.value), http_status(e.value)) == ("ServiceException", 500)
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert "below its reserve" in srv.log_text()


# -- 12: the data dir's mode -----------------------------------------------------------------------------


def test_an_existing_open_data_dir_is_made_private(server_factory, tmp_path):
    from helpers import NimbusServer
    srv = NimbusServer(tmp_path / "open")
    os.chmod(srv.data_dir, 0o755)
    (srv.data_dir / "code").mkdir()
    os.chmod(srv.data_dir / "code", 0o755)
    srv.start()
    try:
        for d in (srv.data_dir, srv.data_dir / "code"):
            assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
        assert "made it 0700" in srv.log_text()
        # And it still runs functions.
        lam = srv.lambda_client()
        name = unique_name("private")
        make_hostile(lam, name)
        assert invoke(lam, name, {"x": 1}).payload == {"event": {"x": 1}}
    finally:
        srv.teardown()
