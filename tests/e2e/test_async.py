"""Asynchronous invocation: durable accept, retries, event invoke configs, destinations and the legacy
dead-letter queue, with boto3 and the AWS CLI."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from eventplane import (create_recorder, drain, queue_arn, records, wait_until,
                        lam, rec_dir, sqs, srv)  # noqa: F401 (fixtures)
from helpers import error_code, function_arn, http_status, unique_name


def test_event_invoke_is_accepted_then_runs(lam, rec_dir):
    name = unique_name("async")
    create_recorder(lam, name, rec_dir)
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": "e1"}))
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    request_id = resp["ResponseMetadata"]["RequestId"]
    seen = wait_until(lambda: records(rec_dir, name), what="the async invocation")
    assert seen[0]["event"] == {"id": "e1"}
    # The invocation keeps the request id the 202 carried, as Lambda's does.
    assert seen[0]["request_id"] == request_id


def test_legacy_invoke_async(lam, rec_dir):
    name = unique_name("invoke-async")
    create_recorder(lam, name, rec_dir)
    resp = lam.invoke_async(FunctionName=name, InvokeArgs=json.dumps({"id": "legacy"}))
    assert resp["Status"] == 202
    seen = wait_until(lambda: records(rec_dir, name), what="the InvokeAsync event")
    assert seen[0]["event"] == {"id": "legacy"}


def test_event_invoke_of_a_missing_function_is_404(lam):
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=unique_name("nope"), InvocationType="Event", Payload=b"{}")
    assert error_code(e.value) == "ResourceNotFoundException"


def test_event_invoke_config_crud(lam, srv, rec_dir):
    name = unique_name("eic")
    other = unique_name("eic-dest")
    create_recorder(lam, name, rec_dir)
    create_recorder(lam, other, rec_dir)
    with pytest.raises(ClientError) as e:
        lam.get_function_event_invoke_config(FunctionName=name)
    assert error_code(e.value) == "ResourceNotFoundException"

    put = lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": function_arn(other)}})
    assert put["FunctionArn"] == function_arn(name, "$LATEST")
    assert put["MaximumRetryAttempts"] == 1
    assert put["DestinationConfig"]["OnFailure"]["Destination"] == function_arn(other)
    assert "LastModified" in put

    # Update merges; Put replaces.
    upd = lam.update_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=120)
    assert upd["MaximumRetryAttempts"] == 1 and upd["MaximumEventAgeInSeconds"] == 120
    got = lam.get_function_event_invoke_config(FunctionName=name)
    assert got["MaximumEventAgeInSeconds"] == 120
    assert got["DestinationConfig"]["OnFailure"]["Destination"] == function_arn(other)
    replaced = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert "MaximumEventAgeInSeconds" not in replaced
    assert replaced["DestinationConfig"]["OnFailure"] == {}

    listed = lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"] for c in listed] == [function_arn(name, "$LATEST")]

    raw = srv.lambda_client(validate=False)
    for bad in ({"MaximumRetryAttempts": 3}, {"MaximumEventAgeInSeconds": 59}):
        with pytest.raises(ClientError) as e:
            raw.put_function_event_invoke_config(FunctionName=name, **bad)
        assert http_status(e.value) == 400
    with pytest.raises(ClientError) as e:
        lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": function_arn(name)}})
    assert error_code(e.value) == "InvalidParameterValueException"

    lam.delete_function_event_invoke_config(FunctionName=name)
    with pytest.raises(ClientError) as e:
        lam.delete_function_event_invoke_config(FunctionName=name)
    assert error_code(e.value) == "ResourceNotFoundException"
    assert lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"] == []


def test_retries_then_on_failure_to_a_function(lam, rec_dir):
    failing = unique_name("fails")
    dest = unique_name("on-failure")
    create_recorder(lam, failing, rec_dir)
    create_recorder(lam, dest, rec_dir)
    lam.put_function_event_invoke_config(
        FunctionName=failing, MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": function_arn(dest)}})
    resp = lam.invoke(FunctionName=failing, InvocationType="Event", Payload=json.dumps({"fail": True, "id": "r1"}))
    request_id = resp["ResponseMetadata"]["RequestId"]

    delivered = wait_until(lambda: records(rec_dir, dest), timeout=30, what="the OnFailure record")
    attempts = records(rec_dir, failing)
    assert len(attempts) == 3, attempts  # the first try and two retries
    assert {a["request_id"] for a in attempts} == {request_id}
    record = delivered[0]["event"]
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": function_arn(failing, "$LATEST"),
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"fail": True, "id": "r1"}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                         "functionError": "Unhandled"}
    assert record["responsePayload"]["errorMessage"] == "failed on purpose: r1"
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["timestamp"].endswith("Z")


def test_no_retries_and_on_success_to_a_queue(lam, sqs, rec_dir):
    name = unique_name("succeeds")
    queue = unique_name("on-success")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    create_recorder(lam, name, rec_dir)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": queue_arn(queue)}})
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": "s1"}))
    msg = drain(sqs, url, 1)[0]
    record = json.loads(msg["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["requestId"] == resp["ResponseMetadata"]["RequestId"]
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"ok": True, "echo": {"id": "s1"}}


def test_dead_letter_config_gets_the_failed_event(lam, sqs, rec_dir):
    name = unique_name("dlq-fn")
    queue = unique_name("dlq")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    created = create_recorder(lam, name, rec_dir, DeadLetterConfig={"TargetArn": queue_arn(queue)})
    assert created["DeadLetterConfig"] == {"TargetArn": queue_arn(queue)}
    assert lam.get_function_configuration(FunctionName=name)["DeadLetterConfig"]["TargetArn"] == queue_arn(queue)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"fail": True, "id": "d1"}))
    msg = drain(sqs, url, 1)[0]
    assert json.loads(msg["Body"]) == {"fail": True, "id": "d1"}
    attrs = msg["MessageAttributes"]
    assert attrs["RequestID"]["StringValue"] == resp["ResponseMetadata"]["RequestId"]
    assert attrs["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert "failed on purpose: d1" in attrs["ErrorMessage"]["StringValue"]
    assert len(records(rec_dir, name)) == 1

    # UpdateFunctionConfiguration can change and clear it; a topic is refused (no SNS yet).
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName=name,
                                          DeadLetterConfig={"TargetArn": "arn:aws:sns:us-east-1:000000000000:t"})
    assert error_code(e.value) == "InvalidParameterValueException"
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    cleared = lam.update_function_configuration(FunctionName=name, DeadLetterConfig={"TargetArn": ""})
    assert "DeadLetterConfig" not in cleared


def test_aws_cli_event_invoke_and_config(srv, lam, rec_dir, tmp_path):
    name = unique_name("cli-async")
    create_recorder(lam, name, rec_dir)
    out = srv.aws("lambda", "put-function-event-invoke-config", "--function-name", name,
                  "--maximum-retry-attempts", "0")
    assert out["MaximumRetryAttempts"] == 0
    outfile = tmp_path / "out.json"
    resp = srv.aws("lambda", "invoke", "--function-name", name, "--invocation-type", "Event",
                   "--payload", '{"id": "cli"}', str(outfile))
    assert resp["StatusCode"] == 202
    seen = wait_until(lambda: records(rec_dir, name), what="the CLI's async invocation")
    assert seen[0]["event"] == {"id": "cli"}
    listed = srv.aws("lambda", "list-function-event-invoke-configs", "--function-name", name)
    assert len(listed["FunctionEventInvokeConfigs"]) == 1


def test_throttled_events_wait_without_using_retries(lam, rec_dir):
    name = unique_name("throttled")
    create_recorder(lam, name, rec_dir)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": "t1"}))
    assert resp["StatusCode"] == 202  # accepted even though every run is throttled now
    time.sleep(1.5)
    assert records(rec_dir, name) == []
    # Throttles are not retries: with MaximumRetryAttempts=0 the event still runs once capacity returns.
    lam.delete_function_concurrency(FunctionName=name)
    seen = wait_until(lambda: records(rec_dir, name), timeout=30, what="the throttled event to run")
    assert seen[0]["event"] == {"id": "t1"}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_event_older_than_its_maximum_age_goes_to_on_failure(lam, sqs, rec_dir):
    """MaximumEventAgeInSeconds (at least 60 s on AWS): an event that could not run in time — here
    because the function is throttled throughout — is given up with condition EventAgeExceeded."""
    name = unique_name("too-old")
    queue = unique_name("on-failure-age")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    create_recorder(lam, name, rec_dir)
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumEventAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": queue_arn(queue)}})
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": "old"}))
    msg = drain(sqs, url, 1, timeout=120)[0]
    record = json.loads(msg["Body"])
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["requestId"] == resp["ResponseMetadata"]["RequestId"]
    assert record["requestPayload"] == {"id": "old"}
    assert records(rec_dir, name) == [], "the function never ran"
