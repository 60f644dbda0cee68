"""The SQS-compatible queue service on Nimbus's endpoint, driven with boto3 and the AWS CLI exactly as
code written for AWS SQS drives it."""

import hashlib
import json
import struct
import threading
import time

import pytest
from botocore.exceptions import ClientError

from eventplane import queue_arn
from helpers import error_code, unique_name


@pytest.fixture(scope="module")
def sqs(server):
    return server.client("sqs")


def md5_of_attributes(attrs: dict) -> str:
    """The SQS algorithm, written from its documentation: sorted names, each of name, type and value
    length-prefixed (4-byte big-endian), with a transport byte 1 (string) or 2 (binary) before the value."""
    h = hashlib.md5()

    def put(b: bytes):
        h.update(struct.pack(">I", len(b)))
        h.update(b)

    for name in sorted(attrs):
        a = attrs[name]
        put(name.encode())
        put(a["DataType"].encode())
        if "StringValue" in a:
            h.update(b"\x01")
            put(a["StringValue"].encode())
        else:
            h.update(b"\x02")
            put(a["BinaryValue"])
    return h.hexdigest()


def test_create_get_list_delete(sqs, server):
    name = unique_name("q")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert url == f"{server.url}/000000000000/{name}"
    # Creating again with the same attributes answers the same URL; different ones are refused.
    assert sqs.create_queue(QueueName=name)["QueueUrl"] == url
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "5"})
    assert e.value.response["Error"]["QueryErrorCode"] == "QueueNameExists"
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix=name)["QueueUrls"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as e:
        sqs.get_queue_url(QueueName=name)
    # The code query-era code compares against, as AWS sends it in x-amzn-query-error.
    assert error_code(e.value) == "AWS.SimpleQueueService.NonExistentQueue"
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix=name)


def test_list_queues_pages(sqs):
    prefix = unique_name("page")
    urls = sorted(sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(5))
    got = []
    for page in sqs.get_paginator("list_queues").paginate(QueueNamePrefix=prefix, PaginationConfig={"PageSize": 2}):
        got.extend(page.get("QueueUrls", []))
    assert got == urls


def test_send_receive_delete_with_digests(sqs):
    url = sqs.create_queue(QueueName=unique_name("msgs"))["QueueUrl"]
    attrs = {
        "color": {"DataType": "String", "StringValue": "blue"},
        "size": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe"},
        "custom": {"DataType": "String.custom", "StringValue": "x"},
    }
    body = "héllo \U0001F600"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attrs)
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attrs)

    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"],
                              WaitTimeSeconds=1)["Messages"]
    assert len(got) == 1
    m = got[0]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == body
    assert m["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert m["MessageAttributes"] == attrs
    assert m["MD5OfMessageAttributes"] == md5_of_attributes(attrs)
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    assert abs(int(m["Attributes"]["SentTimestamp"]) - time.time() * 1000) < 60_000
    assert {"SenderId", "ApproximateFirstReceiveTimestamp"} <= set(m["Attributes"])

    # Only the attributes asked for, and the digest covers exactly those.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["color"], WaitTimeSeconds=1)["Messages"][0]
    assert again["MessageAttributes"] == {"color": attrs["color"]}
    assert again["MD5OfMessageAttributes"] == md5_of_attributes({"color": attrs["color"]})
    assert "Attributes" not in again
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)


def test_visibility_timeout_and_receive_count(sqs):
    url = sqs.create_queue(QueueName=unique_name("vis"), Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="v")
    first = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    second = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], WaitTimeSeconds=3)["Messages"][0]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    # The old receipt handle no longer changes anything.
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=5)
    assert e.value.response["Error"]["QueryErrorCode"] == "ReceiptHandleIsInvalid"
    with pytest.raises(ClientError) as e:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert e.value.response["Error"]["QueryErrorCode"] == "ReceiptHandleIsInvalid"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])


def test_long_poll_wakes_on_send(sqs, server):
    url = sqs.create_queue(QueueName=unique_name("long"))["QueueUrl"]
    sender = server.client("sqs")

    def send_later():
        time.sleep(1.0)
        sender.send_message(QueueUrl=url, MessageBody="late")

    t = threading.Thread(target=send_later)
    start = time.monotonic()
    t.start()
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
    elapsed = time.monotonic() - start
    t.join()
    assert got["Messages"][0]["Body"] == "late"
    assert 0.8 < elapsed < 5, elapsed
    # An empty long poll returns after its wait.
    start = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert 0.9 < time.monotonic() - start < 4


def test_batches(sqs):
    url = sqs.create_queue(QueueName=unique_name("batch"))["QueueUrl"]
    resp = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": f"m{i}", "MessageBody": f"body {i}"} for i in range(10)])
    assert len(resp["Successful"]) == 10 and not resp.get("Failed")
    assert {s["Id"] for s in resp["Successful"]} == {f"m{i}" for i in range(10)}
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"x{i}", "MessageBody": "b"} for i in range(11)])
    assert e.value.response["Error"]["QueryErrorCode"] == "TooManyEntriesInBatchRequest"
    with pytest.raises(ClientError) as e:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "b"}, {"Id": "a", "MessageBody": "c"}])
    assert e.value.response["Error"]["QueryErrorCode"] == "BatchEntryIdsNotDistinct"

    msgs = []
    while len(msgs) < 10:
        msgs.extend(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []))
    vis = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": f"c{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 60} for i, m in enumerate(msgs)])
    assert len(vis["Successful"]) == 10
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
    assert len(deleted["Successful"]) == 10
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                   "ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_attributes_delay_and_purge(sqs):
    url = sqs.create_queue(QueueName=unique_name("attrs"), Attributes={"DelaySeconds": "1"})["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["DelaySeconds"] == "1"
    assert attrs["VisibilityTimeout"] == "30"
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert attrs["QueueArn"] == queue_arn(url.rsplit("/", 1)[1])
    sqs.send_message(QueueUrl=url, MessageBody="delayed")
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])[
        "Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3)["Messages"][0]["Body"] == "delayed"

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "0", "MessageRetentionPeriod": "120"})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds", "MessageRetentionPeriod"])
    assert got["Attributes"] == {"DelaySeconds": "0", "MessageRetentionPeriod": "120"}
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "99999"})
    assert e.value.response["Error"]["QueryErrorCode"] == "InvalidAttributeValue"

    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"p{i}")
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress):
        sqs.purge_queue(QueueUrl=url)


def test_redrive_policy_moves_to_the_dead_letter_queue(sqs):
    dlq_url = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url = sqs.create_queue(QueueName=unique_name("src"),
                           Attributes={"RedrivePolicy": policy, "VisibilityTimeout": "0"})["QueueUrl"]
    got = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    assert got == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(2):
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"] == "poison"
    # The third receive exceeds maxReceiveCount: the message moves instead of coming back.
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    dead = sqs.receive_message(QueueUrl=dlq_url, MessageSystemAttributeNames=["All"], WaitTimeSeconds=1)["Messages"][0]
    assert dead["Body"] == "poison"
    assert dead["Attributes"]["DeadLetterQueueSourceArn"] == queue_arn(url.rsplit("/", 1)[1])
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"] == [url]


def test_fifo_order_groups_and_deduplication(sqs):
    name = unique_name("order") + ".fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})[
        "QueueUrl"]
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="no group")
    assert error_code(e.value) == "MissingParameter"
    seqs = []
    for i in range(3):
        for group in ("a", "b"):
            r = sqs.send_message(QueueUrl=url, MessageBody=f"{group}{i}", MessageGroupId=group)
            seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs)
    dup = sqs.send_message(QueueUrl=url, MessageBody="a0", MessageGroupId="a")  # same content: deduplicated
    explicit = sqs.send_message(QueueUrl=url, MessageBody="a0", MessageGroupId="a", MessageDeduplicationId="other")
    assert dup["MessageId"] != explicit["MessageId"]

    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    by_group = {}
    for m in first:
        by_group.setdefault(m["Attributes"]["MessageGroupId"], []).append(m["Body"])
    assert by_group == {"a": ["a0", "a1", "a2", "a0"], "b": ["b0", "b1", "b2"]}
    # Both groups are in flight: nothing more until they are deleted or time out.
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    for m in first:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)

    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=unique_name("notfifo"), Attributes={"FifoQueue": "true"})
    assert error_code(e.value) == "InvalidParameterValue"


def test_fifo_group_blocks_until_deleted(sqs):
    url = sqs.create_queue(QueueName=unique_name("blk") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g", MessageDeduplicationId=f"d{i}")
    one = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    assert [m["Body"] for m in one] == ["m0"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=one[0]["ReceiptHandle"])
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]] == ["m1", "m2"]


def test_bad_input(sqs, server):
    raw = server.client("sqs", validate=False)
    url = sqs.create_queue(QueueName=unique_name("bad"))["QueueUrl"]
    with pytest.raises(ClientError) as e:
        raw.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert error_code(e.value) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        raw.send_message(QueueUrl=url, MessageBody="bad \x01 char")
    assert e.value.response["Error"]["QueryErrorCode"] == "InvalidMessageContents"
    with pytest.raises(ClientError) as e:
        raw.create_queue(QueueName="bad name!")
    assert error_code(e.value) == "InvalidParameterValue"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=url + "-missing", MessageBody="x")
    with pytest.raises(ClientError) as e:
        raw.get_queue_attributes(QueueUrl=url, AttributeNames=["Bogus"])
    assert e.value.response["Error"]["QueryErrorCode"] == "InvalidAttributeName"


def test_tags(sqs):
    url = sqs.create_queue(QueueName=unique_name("tags"), tags={"team": "core"})["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags={"env": "test"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "core", "env": "test"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "test"}


def test_aws_cli(server):
    name = unique_name("cli")
    url = server.aws("sqs", "create-queue", "--queue-name", name)["QueueUrl"]
    sent = server.aws("sqs", "send-message", "--queue-url", url, "--message-body", "from the cli",
                      "--message-attributes", '{"k": {"DataType": "String", "StringValue": "v"}}')
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"from the cli").hexdigest()
    got = server.aws("sqs", "receive-message", "--queue-url", url, "--message-attribute-names", "All",
                     "--wait-time-seconds", "1")
    m = got["Messages"][0]
    assert m["Body"] == "from the cli" and m["MessageAttributes"]["k"]["StringValue"] == "v"
    server.aws("sqs", "delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"])
    attrs = server.aws("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All")["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert url in server.aws("sqs", "list-queues")["QueueUrls"]
    server.aws("sqs", "delete-queue", "--queue-url", url)
    proc = server.aws("sqs", "get-queue-url", "--queue-name", name, check=False, parse=False)
    assert proc.returncode != 0 and "NonExistentQueue" in proc.stderr
