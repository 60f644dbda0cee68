"""Crash safety: SIGKILL the server while messages and async invocations stream in, restart it on the same
data dir, and check that everything it accepted was processed at least once — none lost — including
the failing path through retries to the OnFailure destination and the queue's dead-letter queue."""

import json
import threading
import time

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from eventplane import SERVER_ARGS, SERVER_ENV, create_recorder, queue_arn, records, wait_until
from helpers import NimbusServer, unique_name

N = 60


def accepted_ids(rec_dir, function):
    """Ids the function saw: from async events ({"id"}) and from SQS records (body {"id"})."""
    seen = set()
    for inv in records(rec_dir, function):
        ev = inv["event"]
        if "Records" in ev:
            seen.update(json.loads(r["body"])["id"] for r in ev["Records"])
        elif "id" in ev:
            seen.add(ev["id"])
    return seen


class Producer(threading.Thread):
    """Sends async invokes and queue messages until told to stop (or the server dies); remembers what the
    server acknowledged."""

    def __init__(self, srv, function, queue_url, n, prefix, pace=0.01):
        super().__init__(daemon=True)
        self.lam = srv.lambda_client()
        self.sqs = srv.client("sqs")
        self.function, self.queue_url, self.n, self.prefix, self.pace = function, queue_url, n, prefix, pace
        self.acked_invokes, self.acked_messages = set(), set()

    def run(self):
        for i in range(self.n):
            eid = f"{self.prefix}-inv-{i}"
            try:
                payload = {"id": eid, **({"fail": True} if self.prefix.startswith("fail") else {})}
                r = self.lam.invoke(FunctionName=self.function, InvocationType="Event", Payload=json.dumps(payload))
                if r["StatusCode"] == 202:
                    self.acked_invokes.add(eid)
                mid = f"{self.prefix}-msg-{i}"
                self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"id": mid}))
                self.acked_messages.add(mid)
            except (BotoCoreError, ClientError):
                return  # the server is gone
            time.sleep(self.pace)


def start_mid_stream_kill(srv, producer, after):
    producer.start()
    wait_until(lambda: len(producer.acked_messages) >= after, timeout=60, interval=0.02,
               what=f"{after} acknowledged messages")
    srv._kill()  # SIGKILL, and the function processes with it
    producer.join(timeout=30)


@pytest.mark.timeout(240)
def test_nothing_accepted_is_lost_across_sigkill(server_factory, tmp_path):
    rec_dir = tmp_path / "records"
    rec_dir.mkdir()
    srv = server_factory(extra_args=SERVER_ARGS, extra_env=SERVER_ENV)
    lam, sqs = srv.lambda_client(), srv.client("sqs")
    fn = unique_name("crash-ok")
    create_recorder(lam, fn, rec_dir)
    qname = unique_name("crash-q")
    url = sqs.create_queue(QueueName=qname)["QueueUrl"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=fn, BatchSize=10)

    producer = Producer(srv, fn, url, N, "ok")
    start_mid_stream_kill(srv, producer, after=N // 2)
    assert producer.acked_invokes and producer.acked_messages

    srv.start()  # same data dir, new process
    expected = producer.acked_invokes | producer.acked_messages
    wait_until(lambda: expected <= accepted_ids(rec_dir, fn), timeout=60,
               what=f"all {len(expected)} acknowledged events to be processed after the restart")
    sqs = srv.client("sqs")
    url = sqs.get_queue_url(QueueName=qname)["QueueUrl"]

    def drained():
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return a["ApproximateNumberOfMessages"] == "0" and a["ApproximateNumberOfMessagesNotVisible"] == "0"

    wait_until(drained, timeout=60, what="the queue to drain")


@pytest.mark.timeout(240)
def test_failures_reach_their_destinations_across_sigkill(server_factory, tmp_path):
    rec_dir = tmp_path / "records"
    rec_dir.mkdir()
    srv = server_factory(extra_args=SERVER_ARGS, extra_env=SERVER_ENV)
    lam, sqs = srv.lambda_client(), srv.client("sqs")
    fn = unique_name("crash-fail")
    create_recorder(lam, fn, rec_dir, env={"FAIL_BATCH": "1"}, Timeout=1)
    on_failure = unique_name("crash-onfail")
    sqs.create_queue(QueueName=on_failure)
    lam.put_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=2,
                                         DestinationConfig={"OnFailure": {"Destination": queue_arn(on_failure)}})
    dlq = unique_name("crash-dlq")
    sqs.create_queue(QueueName=dlq)
    qname = unique_name("crash-src")
    url = sqs.create_queue(QueueName=qname, Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": queue_arn(dlq), "maxReceiveCount": 2})})["QueueUrl"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=fn, BatchSize=10)

    n = 20
    producer = Producer(srv, fn, url, n, "fail", pace=0.02)
    start_mid_stream_kill(srv, producer, after=n // 2)
    srv.start()
    sqs = srv.client("sqs")
    failed_urls = (sqs.get_queue_url(QueueName=on_failure)["QueueUrl"], sqs.get_queue_url(QueueName=dlq)["QueueUrl"])
    delivered_invokes, dead_messages = set(), set()

    def collect():
        for target_url, into in zip(failed_urls, (delivered_invokes, dead_messages)):
            resp = sqs.receive_message(QueueUrl=target_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for m in resp.get("Messages", []):
                body = json.loads(m["Body"])
                # OnFailure holds destination records; the DLQ holds the original messages.
                into.add(body["requestPayload"]["id"] if "requestPayload" in body else body["id"])
                if "requestPayload" in body:
                    assert body["requestContext"]["condition"] == "RetriesExhausted"
                sqs.delete_message(QueueUrl=target_url, ReceiptHandle=m["ReceiptHandle"])
        return producer.acked_invokes <= delivered_invokes and producer.acked_messages <= dead_messages

    wait_until(collect, timeout=90, interval=0, what="every failed event at its destination")
    # Each failing async event was tried at least three times (first try and two retries), the
    # interrupted ones possibly more; each message at least twice before its dead-letter move.
    invocations = records(rec_dir, fn)
    tries = {}
    for inv in invocations:
        if "id" in inv["event"]:
            tries[inv["event"]["id"]] = tries.get(inv["event"]["id"], 0) + 1
    assert all(tries.get(i, 0) >= 3 for i in producer.acked_invokes), tries
