"""Writes the fuzz targets' seed corpora (fuzz/seeds/<target>/) from real clients: requests botocore signs
(at the fuzz target's fixed clock, with its keys), request bodies boto3 serializes for SQS and Logs,
zips Python's zipfile writes, the Runtime API requests the official runtime clients send, and AWS's
filter-pattern examples. Run it with the project venv's Python: `.venv/bin/python fuzz/seeds.py`.
The output is committed; rerun only to change the seeds.
"""

import datetime
import hashlib
import io
import json
import os
import shutil
import stat
import zipfile

import boto3
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seeds")
NOW = datetime.datetime(2026, 12, 6, 12, 0, 0, tzinfo=datetime.timezone.utc)  # fuzz_targets/sigv4.rs NOW
HOST = "127.0.0.1:9001"
ROOT = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SESSION = Credentials("ASIAFUZZSESSION", "fuzzSessionSecretKey0123456789abcdefghij", "FwoGZXIvYXdzEFUZZSESSIONTOKEN")

botocore.auth.get_current_datetime = lambda: NOW.replace(tzinfo=None)


def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def raw(method, target, headers, body=b""):
    head = f"{method} {target}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + (body if isinstance(body, bytes) else body.encode())


def signed(method, path, body=b"", headers=None, service="lambda", creds=ROOT, presign=False, s3=False):
    url = f"http://{HOST}{path}"
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if presign:
        auth = (botocore.auth.S3SigV4QueryAuth if s3 else botocore.auth.SigV4QueryAuth)(
            creds, service, "us-east-1", expires=3600
        )
    else:
        auth = (botocore.auth.S3SigV4Auth if s3 else botocore.auth.SigV4Auth)(creds, service, "us-east-1")
    auth.add_auth(req)
    p = req.prepare()
    target = p.url.split(HOST, 1)[1]
    hdrs = {"Host": HOST, **{k: v for k, v in p.headers.items()}}
    return raw(method, target, hdrs, p.body or b"")


def sigv4():
    t = "sigv4"
    write(t, "list_functions", signed("GET", "/2015-03-31/functions/"))
    write(t, "invoke", signed("POST", "/2015-03-31/functions/f/invocations", b'{"a": 1}'))
    write(t, "invoke_session", signed("POST", "/2015-03-31/functions/f/invocations", b"{}", creds=SESSION))
    write(
        t,
        "get_function_query",
        signed("GET", "/2015-03-31/functions/my-fn?Qualifier=%24LATEST&x=a%20b", headers={"User-Agent": "aws-cli/2"}),
    )
    write(
        t,
        "sqs_json",
        signed(
            "POST",
            "/",
            b'{"QueueName": "q"}',
            headers={"X-Amz-Target": "AmazonSQS.CreateQueue", "Content-Type": "application/x-amz-json-1.0"},
            service="sqs",
        ),
    )
    write(t, "presigned", signed("GET", "/2015-03-31/functions/f", presign=True))
    write(t, "presigned_session", signed("GET", "/2015-03-31/functions/f", presign=True, creds=SESSION))
    write(t, "presigned_s3", signed("GET", "/code/abc.zip", presign=True, service="s3", s3=True))
    write(t, "s3_put", signed("PUT", "/bucket/key", b"hello", service="s3", s3=True))
    write(
        t,
        "unsigned_payload",
        signed("PUT", "/bucket/key", b"hello", headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}, service="s3", s3=True),
    )


def capture(service, calls):
    """The X-Amz-Target operation and body of each call, as boto3 serializes them (nothing is sent)."""
    client = boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=f"http://{HOST}",
        aws_access_key_id=ROOT.access_key,
        aws_secret_access_key=ROOT.secret_key,
    )
    seen = []

    class Captured(Exception):
        pass

    def grab(request, **_):
        seen.append((request.headers["X-Amz-Target"].decode().split(".", 1)[1], request.body or b""))
        raise Captured()

    client.meta.events.register("before-send", grab)
    for name, kwargs in calls:
        try:
            getattr(client, name)(**kwargs)
        except Captured:
            pass
    return seen


def sqs():
    url = f"http://{HOST}/000000000000/q"
    fifo = f"http://{HOST}/000000000000/q.fifo"
    attrs = {
        "Author": {"DataType": "String", "StringValue": "Ann"},
        "Count": {"DataType": "Number.int", "StringValue": "42"},
        "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
    }
    calls = [
        ("create_queue", {"QueueName": "orders", "Attributes": {"VisibilityTimeout": "60", "DelaySeconds": "0"}}),
        (
            "create_queue",
            {"QueueName": "jobs.fifo", "Attributes": {"FifoQueue": "true", "ContentBasedDeduplication": "true"}},
        ),
        (
            "create_queue",
            {
                "QueueName": "src",
                "Attributes": {"RedrivePolicy": json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "maxReceiveCount": "3"})},
                "tags": {"team": "a"},
            },
        ),
        ("get_queue_url", {"QueueName": "q"}),
        ("list_queues", {"QueueNamePrefix": "q", "MaxResults": 5}),
        ("get_queue_attributes", {"QueueUrl": url, "AttributeNames": ["All"]}),
        ("set_queue_attributes", {"QueueUrl": url, "Attributes": {"ReceiveMessageWaitTimeSeconds": "1", "MaximumMessageSize": "2048"}}),
        ("send_message", {"QueueUrl": url, "MessageBody": "hello", "MessageAttributes": attrs}),
        ("send_message", {"QueueUrl": url, "MessageBody": "x", "DelaySeconds": 0, "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793"}}}),
        ("send_message", {"QueueUrl": fifo, "MessageBody": "f", "MessageGroupId": "g1", "MessageDeduplicationId": "d1"}),
        (
            "send_message_batch",
            {
                "QueueUrl": url,
                "Entries": [
                    {"Id": "a", "MessageBody": "one", "MessageAttributes": {"K": {"DataType": "String", "StringValue": "v"}}},
                    {"Id": "b-2", "MessageBody": "two", "DelaySeconds": 1},
                ],
            },
        ),
        ("receive_message", {"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1, "MessageAttributeNames": ["All"], "AttributeNames": ["All"], "VisibilityTimeout": 5}),
        ("delete_message", {"QueueUrl": url, "ReceiptHandle": "MTo1OmFiY2Q="}),
        ("delete_message_batch", {"QueueUrl": url, "Entries": [{"Id": "a", "ReceiptHandle": "MTo1OmFiY2Q="}]}),
        ("change_message_visibility", {"QueueUrl": url, "ReceiptHandle": "MTo1OmFiY2Q=", "VisibilityTimeout": 10}),
        ("change_message_visibility_batch", {"QueueUrl": url, "Entries": [{"Id": "a", "ReceiptHandle": "MTo1OmFiY2Q=", "VisibilityTimeout": 0}]}),
        ("purge_queue", {"QueueUrl": url}),
        ("tag_queue", {"QueueUrl": url, "Tags": {"k": "v"}}),
        ("untag_queue", {"QueueUrl": url, "TagKeys": ["k"]}),
        ("list_queue_tags", {"QueueUrl": url}),
        ("list_dead_letter_source_queues", {"QueueUrl": f"http://{HOST}/000000000000/dlq"}),
        ("delete_queue", {"QueueUrl": f"http://{HOST}/000000000000/orders"}),
    ]
    for i, (op, body) in enumerate(capture("sqs", calls)):
        write("sqs", f"{i:02}_{op}", op.encode() + b"\n" + body)


def logs():
    g = "/aws/lambda/f"
    calls = [
        ("describe_log_groups", {"logGroupNamePrefix": "/aws/lambda/", "limit": 2}),
        ("describe_log_streams", {"logGroupName": g, "orderBy": "LastEventTime", "descending": True, "limit": 1}),
        ("describe_log_streams", {"logGroupName": g, "logStreamNamePrefix": "2024/01/01"}),
        ("get_log_events", {"logGroupName": g, "logStreamName": "2024/01/01/[$LATEST]aaaa", "startFromHead": True, "limit": 3}),
        ("get_log_events", {"logGroupName": g, "logStreamName": "2024/01/01/[$LATEST]aaaa", "nextToken": "f/00000000000000000000000000000000000000000000000000000005", "startTime": 1700000000000, "endTime": 1700000020000}),
        ("filter_log_events", {"logGroupName": g, "filterPattern": "ERROR", "limit": 5}),
        ("filter_log_events", {"logGroupName": g, "filterPattern": '?ERROR ?WARN -"quoted"', "logStreamNamePrefix": "2024"}),
        ("filter_log_events", {"logGroupName": g, "filterPattern": "[w1, w2, w3, w4=latency*, w5 > 10, ...]"}),
        ("filter_log_events", {"logGroupName": g, "filterPattern": '{ $.level = "warn" && $.n > 5 }'}),
        ("filter_log_events", {"logGroupName": g, "filterPattern": "%[0-9]+ ms%", "logStreamNames": ["2024/01/02/[$LATEST]bbbb"]}),
        ("filter_log_events", {"logGroupIdentifier": g, "startTime": 1700000000000, "endTime": 1700000005000, "nextToken": "abc"}),
        ("create_log_group", {"logGroupName": "/custom/group"}),
        ("put_retention_policy", {"logGroupName": g, "retentionInDays": 14}),
        ("delete_retention_policy", {"logGroupName": g}),
        ("delete_log_group", {"logGroupName": "/aws/lambda/g"}),
    ]
    for i, (op, body) in enumerate(capture("logs", calls)):
        write("logs", f"{i:02}_{op}", op.encode() + b"\n" + body)


def zips():
    def make(name, entries, method=zipfile.ZIP_DEFLATED):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as z:
            for entry in entries:
                z.writestr(*entry)
        write("unzip", name, buf.getvalue())

    def info(name, mode, method=zipfile.ZIP_DEFLATED):
        i = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        i.create_system = 3
        i.compress_type = zipfile.ZIP_STORED if method == zipfile.ZIP_STORED else zipfile.ZIP_DEFLATED
        i.external_attr = mode << 16
        return i

    make("handler", [(info("lambda_function.py", 0o100644), "def handler(event, context):\n    return event\n")])
    make(
        "tree",
        [
            (info("bin/", 0o040755), ""),
            (info("bin/bootstrap", 0o100755), "#!/bin/sh\nexec ./app\n"),
            (info("lib/m.py", 0o100644), "X = 1\n" * 20),
            (info("lib/current", 0o120777), "m.py"),
            (info("up", 0o120777), "lib/../bin"),
        ],
    )
    make("stored", [(info("a.txt", 0o100644, zipfile.ZIP_STORED), "stored " * 10)], method=zipfile.ZIP_STORED)
    make("windows", [(zipfile.ZipInfo("dir\\file.txt"), "no unix mode")])
    make("escape_name", [(info("../evil", 0o100644), "x")])
    make("escape_link", [(info("link", 0o120777), "../../etc/passwd")])
    make("deep", [(info("a/" * 30 + "f", 0o100644), "deep")])
    make("bomb", [(info("zeros", 0o100644), b"\0" * 200_000)])
    make("many", [(info(f"f{i}", 0o100644), "") for i in range(40)])


def runtime_api():
    rid = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
    base = {"Host": "127.0.0.1:9001", "User-Agent": "aws-lambda-python/3.12"}
    err = json.dumps({"errorMessage": "boom", "errorType": "ValueError", "requestId": rid, "stackTrace": ['  File "/var/task/f.py", line 2, in handler\n']})
    seeds = {
        "next": raw("GET", "/2018-06-01/runtime/invocation/next", base),
        "response": raw("POST", f"/2018-06-01/runtime/invocation/{rid}/response", {**base, "Content-Type": "application/json"}, '{"ok": true}'),
        "error": raw("POST", f"/2018-06-01/runtime/invocation/{rid}/error", {**base, "Lambda-Runtime-Function-Error-Type": "Unhandled", "Content-Type": "application/json"}, err),
        "error_text": raw("POST", f"/2018-06-01/runtime/invocation/{rid}/error", {**base, "Lambda-Runtime-Function-Error-Type": "Runtime.Custom"}, "plain text failure"),
        "init_error": raw("POST", "/2018-06-01/runtime/init/error", {**base, "Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"}, json.dumps({"errorMessage": "Unable to import module 'f'", "errorType": "Runtime.ImportModuleError", "stackTrace": []})),
        "node_error": raw("POST", f"/2018-06-01/runtime/invocation/{rid}/error", {**base, "Lambda-Runtime-Function-Error-Type": "TypeError", "Lambda-Runtime-Function-XRay-Error-Cause": "{}"}, json.dumps({"errorType": "TypeError", "errorMessage": "x is not a function", "trace": ["TypeError: x", "    at Runtime.handler (/var/task/index.js:1:1)"]})),
        "context": raw("GET", "/2018-06-01/runtime/invocation/next", {**base, "Lambda-Runtime-Client-Context": "eyJjdXN0b20iOnsiYSI6MX19", "Lambda-Runtime-Cognito-Identity": '{"cognitoIdentityId":"x"}'}),
    }
    for name, data in seeds.items():
        write("runtime_api", name, data)


def filters():
    sqs_event = {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": {"RequestCode": "AAAA", "City": "Seattle", "Temperature": 25, "FileName": "photo.PNG", "Name": "Alice", "Tags": ["a", "b"], "UserID": None},
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183"},
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "awsRegion": "us-east-1",
    }
    # From AWS's "Lambda event filtering" and EventBridge content-filtering documentation.
    patterns = {
        "literal": {"body": {"RequestCode": ["BBBB"]}},
        "numeric": {"body": {"Temperature": [{"numeric": [">", 0, "<=", 100]}]}},
        "prefix": {"body": {"City": [{"prefix": "Sea"}]}},
        "suffix_ic": {"body": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}},
        "anything_but": {"body": {"City": [{"anything-but": ["Seattle", "Boston"]}]}},
        "anything_but_prefix": {"body": {"City": [{"anything-but": {"prefix": "Bos"}}]}},
        "anything_but_ic": {"body": {"Name": [{"anything-but": {"equals-ignore-case": ["alice", "bob"]}}]}},
        "equals_ic": {"body": {"Name": [{"equals-ignore-case": "ALICE"}]}},
        "exists": {"body": {"Address": [{"exists": False}]}},
        "null_and_empty": {"body": {"UserID": [None, ""]}},
        "wildcard": {"body": {"FileName": [{"wildcard": "*.P*G"}]}},
        "or": {"body": {"$or": [{"City": ["Seattle"]}, {"Temperature": [{"numeric": ["<", 0]}]}]}},
        "array": {"body": {"Tags": ["b"]}},
        "metadata": {"eventSource": ["aws:sqs"], "attributes": {"ApproximateReceiveCount": ["1"]}},
    }
    for name, pattern in patterns.items():
        write("filter", name, json.dumps(pattern) + "\n----\n" + json.dumps(sqs_event))


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    sigv4()
    sqs()
    logs()
    zips()
    runtime_api()
    filters()
    for target in sorted(os.listdir(OUT)):
        print(target, len(os.listdir(os.path.join(OUT, target))))
