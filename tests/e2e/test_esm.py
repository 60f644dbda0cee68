"""Event source mappings from SQS queues to functions: the mapping API, the SQS event shape, batching,
filters, partial batch failures, the dead-letter queue and FIFO order — with boto3 and the AWS CLI."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from eventplane import (create_recorder, drain, queue_arn, records, wait_until,
                        lam, rec_dir, sqs, srv)  # noqa: F401 (fixtures)
from helpers import error_code, function_arn, unique_name


def wait_state(lam, uuid, state, timeout=20):
    return wait_until(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == state and True,
                      timeout=timeout, what=f"mapping {uuid} to be {state}")


def all_records(rec_dir, name):
    return [r for inv in records(rec_dir, name) for r in inv["event"].get("Records", [])]


def queue_empty(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return a["ApproximateNumberOfMessages"] == "0" and a["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_mapping_lifecycle_and_validation(lam, sqs, srv, rec_dir):
    name = unique_name("esm-crud")
    create_recorder(lam, name, rec_dir)
    qname = unique_name("esm-q")
    sqs.create_queue(QueueName=qname)
    created = lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=name, BatchSize=5,
                                              ScalingConfig={"MaximumConcurrency": 2})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating"
    assert created["BatchSize"] == 5
    assert created["FunctionArn"] == function_arn(name)
    assert created["EventSourceArn"] == queue_arn(qname)
    assert created["ScalingConfig"] == {"MaximumConcurrency": 2}
    uuid = created["UUID"]
    wait_state(lam, uuid, "Enabled")
    listed = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [uuid]
    assert [m["UUID"] for m in lam.list_event_source_mappings(EventSourceArn=queue_arn(qname))["EventSourceMappings"]] == [uuid]

    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=name)
    assert error_code(e.value) == "ResourceConflictException"

    updated = lam.update_event_source_mapping(UUID=uuid, BatchSize=100, MaximumBatchingWindowInSeconds=1)
    assert updated["State"] == "Updating" and updated["BatchSize"] == 100
    wait_state(lam, uuid, "Enabled")
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=False)["State"] == "Disabling"
    wait_state(lam, uuid, "Disabled")
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=True)["State"] == "Enabling"
    wait_state(lam, uuid, "Enabled")

    for bad in (dict(BatchSize=10_001), dict(BatchSize=0), dict(MaximumBatchingWindowInSeconds=301),
                dict(BatchSize=11, MaximumBatchingWindowInSeconds=0)):
        with pytest.raises(ClientError) as e:
            srv.lambda_client(validate=False).update_event_source_mapping(UUID=uuid, **bad)
        assert error_code(e.value) in ("InvalidParameterValueException", "ValidationException"), bad
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=queue_arn(unique_name("missing")), FunctionName=name)
    assert error_code(e.value) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=unique_name("nofn"))
    assert error_code(e.value) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=name,
                                        FilterCriteria={"Filters": [{"Pattern": "not json"}]})
    assert error_code(e.value) == "InvalidParameterValueException"

    assert lam.delete_event_source_mapping(UUID=uuid)["State"] == "Deleting"

    def gone():
        try:
            lam.get_event_source_mapping(UUID=uuid)
            return False
        except ClientError as e:
            return error_code(e) == "ResourceNotFoundException"

    wait_until(gone, what="the mapping to be deleted")


def test_a_queue_whose_visibility_timeout_is_shorter_than_the_functions_timeout_is_refused(lam, sqs, rec_dir):
    """Messages would reappear while the function still works on them: Lambda refuses the mapping at
    create (and when it is pointed at such a function), not when the function's timeout changes later."""
    slow, quick = unique_name("esm-slow"), unique_name("esm-quick")
    create_recorder(lam, slow, rec_dir, Timeout=60)
    create_recorder(lam, quick, rec_dir, Timeout=30)
    qname = unique_name("esm-vis-q")
    sqs.create_queue(QueueName=qname)  # VisibilityTimeout: 30 s, the default
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=slow)
    assert error_code(e.value) == "InvalidParameterValueException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["Error"]["Message"] == (
        "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds")
    assert lam.list_event_source_mappings(EventSourceArn=queue_arn(qname))["EventSourceMappings"] == []
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=quick, Enabled=False)["UUID"]
    with pytest.raises(ClientError) as e:
        lam.update_event_source_mapping(UUID=uuid, FunctionName=slow)
    assert error_code(e.value) == "InvalidParameterValueException"
    assert lam.get_event_source_mapping(UUID=uuid)["FunctionArn"] == function_arn(quick)
    lam.delete_event_source_mapping(UUID=uuid)


def test_messages_reach_the_function_as_sqs_events(lam, sqs, rec_dir):
    name = unique_name("esm-shape")
    create_recorder(lam, name, rec_dir)
    qname = unique_name("esm-shape-q")
    url = sqs.create_queue(QueueName=qname)["QueueUrl"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=name, BatchSize=10)
    sent = {}
    for i in range(3):
        r = sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": i}),
                             MessageAttributes={"kind": {"DataType": "String", "StringValue": f"k{i}"}})
        sent[r["MessageId"]] = r
    got = wait_until(lambda: len(all_records(rec_dir, name)) >= 3 and all_records(rec_dir, name),
                     what="the records to reach the function")
    assert {r["messageId"] for r in got} == set(sent)
    r = got[0]
    assert r["eventSource"] == "aws:sqs"
    assert r["eventSourceARN"] == queue_arn(qname)
    assert r["awsRegion"] == "us-east-1"
    assert r["md5OfBody"] == sent[r["messageId"]]["MD5OfMessageBody"]
    assert r["md5OfMessageAttributes"] == sent[r["messageId"]]["MD5OfMessageAttributes"]
    assert r["receiptHandle"]
    assert set(r["attributes"]) >= {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                    "ApproximateFirstReceiveTimestamp"}
    assert r["attributes"]["ApproximateReceiveCount"] == "1"
    kind = r["messageAttributes"]["kind"]
    assert kind["dataType"] == "String" and kind["stringValue"].startswith("k")
    assert kind["stringListValues"] == [] and kind["binaryListValues"] == []
    wait_until(lambda: queue_empty(sqs, url), what="the processed messages to be deleted")


def test_batching_window_collects_large_batches(lam, sqs, rec_dir):
    name = unique_name("esm-window")
    create_recorder(lam, name, rec_dir)
    qname = unique_name("esm-window-q")
    url = sqs.create_queue(QueueName=qname)["QueueUrl"]
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=name, BatchSize=100,
                                           MaximumBatchingWindowInSeconds=2, Enabled=False)["UUID"]
    wait_state(lam, uuid, "Disabled")
    for start in range(0, 60, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, start + 10)])
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    wait_until(lambda: len(all_records(rec_dir, name)) >= 60, timeout=30, what="60 records")
    sizes = [len(inv["event"]["Records"]) for inv in records(rec_dir, name)]
    assert max(sizes) > 10, sizes
    assert sorted(r["body"] for r in all_records(rec_dir, name)) == sorted(f"m{i}" for i in range(60))


def test_failed_batches_return_and_reach_the_dead_letter_queue(lam, sqs, rec_dir):
    name = unique_name("esm-fail")
    create_recorder(lam, name, rec_dir, env={"FAIL_BATCH": "1"}, Timeout=1)
    dlq = unique_name("esm-dlq")
    dlq_url = sqs.create_queue(QueueName=dlq)["QueueUrl"]
    qname = unique_name("esm-fail-q")
    url = sqs.create_queue(QueueName=qname, Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": queue_arn(dlq), "maxReceiveCount": 2})})["QueueUrl"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=name, BatchSize=10)
    sqs.send_message(QueueUrl=url, MessageBody="doomed")
    dead = drain(sqs, dlq_url, 1, timeout=30)
    assert dead[0]["Body"] == "doomed"
    seen = all_records(rec_dir, name)
    assert [r["body"] for r in seen] == ["doomed", "doomed"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in seen] == ["1", "2"]


def test_partial_batch_failures(lam, sqs, rec_dir):
    name = unique_name("esm-partial")
    # The queue's 1 s visibility timeout must not be shorter than the function's (Lambda refuses it).
    create_recorder(lam, name, rec_dir, Timeout=1)
    dlq = unique_name("esm-partial-dlq")
    dlq_url = sqs.create_queue(QueueName=dlq)["QueueUrl"]
    qname = unique_name("esm-partial-q")
    url = sqs.create_queue(QueueName=qname, Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": queue_arn(dlq), "maxReceiveCount": 1})})["QueueUrl"]
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=name, BatchSize=10,
                                           FunctionResponseTypes=["ReportBatchItemFailures"], Enabled=False)["UUID"]
    wait_state(lam, uuid, "Disabled")
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": json.dumps({"i": i, "fail": i % 3 == 0})} for i in range(9)])
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    dead = drain(sqs, dlq_url, 3, timeout=30)
    assert sorted(json.loads(m["Body"])["i"] for m in dead) == [0, 3, 6]
    bodies = [json.loads(r["body"])["i"] for r in all_records(rec_dir, name)]
    # Every message reached the function once: the reported failures were not retried past
    # maxReceiveCount=1, and the successes were deleted, not redelivered.
    assert sorted(bodies) == list(range(9))
    assert lam.get_event_source_mapping(UUID=uuid)["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_filter_criteria(lam, sqs, rec_dir):
    name = unique_name("esm-filter")
    create_recorder(lam, name, rec_dir)
    qname = unique_name("esm-filter-q")
    url = sqs.create_queue(QueueName=qname)["QueueUrl"]
    patterns = [
        {"body": {"kind": ["order"], "amount": [{"numeric": [">", 10]}]}},
        {"body": {"kind": [{"prefix": "vip-"}]}},
    ]
    created = lam.create_event_source_mapping(
        EventSourceArn=queue_arn(qname), FunctionName=name, BatchSize=10,
        FilterCriteria={"Filters": [{"Pattern": json.dumps(p)} for p in patterns]})
    assert [json.loads(f["Pattern"]) for f in created["FilterCriteria"]["Filters"]] == patterns
    bodies = [
        {"kind": "order", "amount": 50, "id": "keep-1"},
        {"kind": "order", "amount": 5, "id": "drop-1"},
        {"kind": "refund", "amount": 50, "id": "drop-2"},
        {"kind": "vip-order", "id": "keep-2"},
    ]
    for b in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(b))
    sqs.send_message(QueueUrl=url, MessageBody="not json at all")
    wait_until(lambda: queue_empty(sqs, url), what="every message handled (kept or filtered out)")
    time.sleep(0.5)
    ids = sorted(json.loads(r["body"])["id"] for r in all_records(rec_dir, name))
    assert ids == ["keep-1", "keep-2"]


def test_fifo_order_is_kept_per_group(lam, sqs, rec_dir):
    name = unique_name("esm-fifo")
    create_recorder(lam, name, rec_dir)
    qname = unique_name("esm-fifo-q") + ".fifo"
    url = sqs.create_queue(QueueName=qname, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})[
        "QueueUrl"]
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn(qname), FunctionName=name, BatchSize=3,
                                           Enabled=False)["UUID"]
    wait_state(lam, uuid, "Disabled")
    for i in range(12):
        for g in ("a", "b", "c"):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"g": g, "i": i}), MessageGroupId=g)
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    wait_until(lambda: len(all_records(rec_dir, name)) >= 36, timeout=30, what="36 FIFO records")
    per_group = {}
    for r in all_records(rec_dir, name):  # invocations in the order they ran
        b = json.loads(r["body"])
        per_group.setdefault(b["g"], []).append(b["i"])
    assert per_group == {g: list(range(12)) for g in ("a", "b", "c")}
    with pytest.raises(ClientError) as e:
        lam.update_event_source_mapping(UUID=uuid, BatchSize=20, MaximumBatchingWindowInSeconds=1)
    assert error_code(e.value) == "InvalidParameterValueException"


def test_aws_cli(srv, lam, sqs, rec_dir):
    name = unique_name("esm-cli")
    create_recorder(lam, name, rec_dir)
    qname = unique_name("esm-cli-q")
    url = sqs.create_queue(QueueName=qname)["QueueUrl"]
    created = srv.aws("lambda", "create-event-source-mapping", "--function-name", name,
                      "--event-source-arn", queue_arn(qname), "--batch-size", "1")
    assert created["BatchSize"] == 1
    srv.aws("sqs", "send-message", "--queue-url", url, "--message-body", "via cli")
    wait_until(lambda: [r["body"] for r in all_records(rec_dir, name)] == ["via cli"], what="the CLI message")
    listed = srv.aws("lambda", "list-event-source-mappings", "--function-name", name)
    assert [m["UUID"] for m in listed["EventSourceMappings"]] == [created["UUID"]]
    srv.aws("lambda", "delete-event-source-mapping", "--uuid", created["UUID"])
