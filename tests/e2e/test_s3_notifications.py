"""S3 bucket notifications: a configuration with a function and a queue as destinations, AWS's
validation of it, the event record as AWS writes it, and delivery of every acknowledged write's event
across a `kill -9` of the server."""

import json
import threading
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from eventplane import (SERVER_ARGS, SERVER_ENV, create_recorder, drain, lam, queue_arn, rec_dir, records, sqs,
                        srv, wait_until)
from helpers import REGION, create_function, error_code, function_arn, make_zip, unique_name

__all__ = ["lam", "rec_dir", "sqs", "srv"]


def s3_client(server):
    return boto3.client("s3", endpoint_url=server.url, region_name=REGION, aws_access_key_id=server.key,
                        aws_secret_access_key=server.secret,
                        config=Config(retries={"max_attempts": 1, "mode": "standard"},
                                      s3={"addressing_style": "path"}))


def bucket_name(prefix: str) -> str:
    return unique_name(prefix).lower()


def test_a_put_runs_the_function_with_aws_record(srv, lam, rec_dir):
    s3 = s3_client(srv)
    fn = unique_name("s3-fn")
    create_recorder(lam, fn, rec_dir)
    bucket = bucket_name("notify")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{
            "Id": "uploads", "LambdaFunctionArn": function_arn(fn), "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
        }]})
    got = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert got["LambdaFunctionConfigurations"][0]["LambdaFunctionArn"] == function_arn(fn)
    assert got["LambdaFunctionConfigurations"][0]["Filter"]["Key"]["FilterRules"] == [
        {"Name": "Prefix", "Value": "uploads/"}]
    s3.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"ignored")
    etag = s3.put_object(Bucket=bucket, Key="uploads/my photo.jpg", Body=b"12345")["ETag"].strip('"')
    recs = wait_until(lambda: records(rec_dir, fn), what="the notified function to run")
    assert len(recs) == 1
    (record,) = recs[0]["event"]["Records"]
    assert record["eventVersion"] == "2.1"
    assert record["eventSource"] == "aws:s3"
    assert record["awsRegion"] == REGION
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["eventTime"].endswith("Z")
    assert record["s3"]["s3SchemaVersion"] == "1.0"
    assert record["s3"]["configurationId"] == "uploads"
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert record["s3"]["object"]["key"] == "uploads/my+photo.jpg"
    assert record["s3"]["object"]["size"] == 5
    assert record["s3"]["object"]["eTag"] == etag
    assert record["s3"]["object"]["sequencer"]
    assert "x-amz-request-id" in record["responseElements"]


def test_queue_gets_test_event_then_created_and_removed(srv, sqs):
    s3 = s3_client(srv)
    qname = unique_name("s3-q")
    url = sqs.create_queue(QueueName=qname)["QueueUrl"]
    bucket = bucket_name("qnotify")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [
            {"QueueArn": queue_arn(qname), "Events": ["s3:ObjectCreated:Put", "s3:ObjectRemoved:*"],
             "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".txt"}]}}},
        ]})
    (test_event,) = drain(sqs, url, 1)
    body = json.loads(test_event["Body"])
    assert body["Event"] == "s3:TestEvent" and body["Bucket"] == bucket and body["Service"] == "Amazon S3"
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"x")
    s3.put_object(Bucket=bucket, Key="b.bin", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="a.txt")
    got = [json.loads(m["Body"])["Records"][0] for m in drain(sqs, url, 2)]
    assert [(r["eventName"], r["s3"]["object"]["key"]) for r in got] == [
        ("ObjectCreated:Put", "a.txt"), ("ObjectRemoved:Delete", "a.txt")]
    assert "size" not in got[1]["s3"]["object"] and "eTag" not in got[1]["s3"]["object"]


def test_bad_configurations_are_refused(srv, sqs):
    s3 = s3_client(srv)
    bucket = bucket_name("badcfg")
    s3.create_bucket(Bucket=bucket)
    qname = unique_name("s3-q")
    sqs.create_queue(QueueName=qname)
    overlapping = {"QueueConfigurations": [
        {"QueueArn": queue_arn(qname), "Events": ["s3:ObjectCreated:*"]},
        {"QueueArn": queue_arn(qname), "Events": ["s3:ObjectCreated:Put"],
         "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "a/"}]}}},
    ]}
    missing_queue = {"QueueConfigurations": [{"QueueArn": queue_arn("no-such-queue"), "Events": ["s3:ObjectCreated:*"]}]}
    missing_fn = {"LambdaFunctionConfigurations": [
        {"LambdaFunctionArn": function_arn("no-such-function"), "Events": ["s3:ObjectCreated:*"]}]}
    bad_event = {"QueueConfigurations": [{"QueueArn": queue_arn(qname), "Events": ["s3:ObjectEaten:*"]}]}
    for config in [overlapping, missing_queue, missing_fn, bad_event]:
        with pytest.raises(ClientError) as e:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
        assert error_code(e.value) == "InvalidArgument", config
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)


@pytest.mark.timeout(240)
def test_every_acknowledged_put_is_notified_across_sigkill(server_factory, tmp_path):
    rec = tmp_path / "records"
    rec.mkdir()
    server = server_factory(extra_args=SERVER_ARGS, extra_env=SERVER_ENV)
    lam_client = server.lambda_client()
    fn = unique_name("s3-crash")
    create_recorder(lam_client, fn, rec)
    s3 = s3_client(server)
    bucket = bucket_name("crash")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": function_arn(fn), "Events": ["s3:ObjectCreated:*"]}]})
    acked: set[str] = set()

    def produce():
        for i in range(200):
            key = f"k-{i}"
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
            except (BotoCoreError, ClientError):
                return
            acked.add(key)

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(lambda: len(acked) >= 20, timeout=60, interval=0.02, what="20 acknowledged puts")
    server._kill()
    producer.join(timeout=30)
    server.start()
    s3 = s3_client(server)
    for key in acked:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()

    def notified():
        return {r["event"]["Records"][0]["s3"]["object"]["key"] for r in records(rec, fn)}

    wait_until(lambda: acked <= notified(), timeout=90, what=f"all {len(acked)} acknowledged puts to be notified")


WORD_COUNT = (Path(__file__).resolve().parents[2] / "examples" / "s3-pipeline" / "wordcount.py").read_text()


def test_a_function_reads_the_uploaded_object_and_writes_a_derived_one(srv, lam):
    """The upload pipeline of examples/s3-pipeline: objects under uploads/ run a function that reads them with its own session
    credential (SDK defaults from its environment) and writes a word count under processed/."""
    s3 = s3_client(srv)
    fn = unique_name("s3-wc")
    create_function(lam, fn, make_zip({"wordcount.py": WORD_COUNT}), handler="wordcount.handler", Timeout=30)
    bucket = bucket_name("pipeline")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{
            "LambdaFunctionArn": function_arn(fn), "Events": ["s3:ObjectCreated:Put"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}}}]})
    s3.put_object(Bucket=bucket, Key="uploads/a poem.txt", Body=b"so much depends upon a red wheel barrow")

    def counted():
        try:
            return s3.get_object(Bucket=bucket, Key="processed/a poem.txt.count")["Body"].read()
        except ClientError:
            return None

    assert wait_until(counted, timeout=60, what="the derived object") == b"8"
