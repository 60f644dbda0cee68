"""Whole Lambda responses compared field by field with what AWS answers.

Where each expected value comes from:
- shapes and member names: botocore's `lambda` 2015-03-31 service model (FunctionConfiguration,
  GetFunctionResponse, the error shapes);
- the lifecycle values (`State: Pending`, `StateReason: "The function is being created."`,
  `StateReasonCode: Creating`; an update's `LastUpdateStatus: InProgress` with the same reason and code
  `Creating`; no `LastUpdateStatus` in CreateFunction's answer): AWS's "Lambda function states" guide
  and recorded `aws lambda create-function` / `update-function-code` output;
- the conflict messages: AWS's ResourceConflictException texts as recorded from the CLI
  ("The operation cannot be performed at this time. The function is currently in the following
  state: Pending", "… An update is in progress for resource: <function ARN>");
- `RuntimeVersionConfig.RuntimeVersionArn`: AWS's form `arn:aws:lambda:<region>::runtime:<64 hex>`;
- `LoggingConfig` defaults (`Text`, `/aws/lambda/<name>`), `SnapStart` and `EphemeralStorage`
  defaults: recorded CreateFunction output;
- GetFunction without tags has no `Tags` member (recorded get-function output).
"""

import io
import re
import zipfile

import pytest
from botocore.exceptions import ClientError

from helpers import (ACCOUNT, REGION, ROLE, code_sha256, create_function, error_code, function_arn,
                     http_status, python_zip, read_function_source, unique_name)

LAST_MODIFIED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RUNTIME_VERSION_ARN_RE = re.compile(rf"^arn:aws:lambda:{REGION}::runtime:[0-9a-f]{{64}}$")


def body(resp: dict) -> dict:
    return {k: v for k, v in resp.items() if k != "ResponseMetadata"}


def expected_configuration(name: str, code: bytes, resp: dict, **overrides) -> dict:
    """A FunctionConfiguration as AWS answers for a python3.12 zip function with default settings.
    The values AWS makes up (RevisionId, LastModified, RuntimeVersionArn) are checked for their form
    and then taken from the response."""
    assert UUID_RE.match(resp["RevisionId"]), resp["RevisionId"]
    assert LAST_MODIFIED_RE.match(resp["LastModified"]), resp["LastModified"]
    assert RUNTIME_VERSION_ARN_RE.match(resp["RuntimeVersionConfig"]["RuntimeVersionArn"]), resp
    expected = {
        "FunctionName": name,
        "FunctionArn": function_arn(name),
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "probe.handler",
        "CodeSize": len(code),
        "Description": "",
        "Timeout": 3,
        "MemorySize": 128,
        "LastModified": resp["LastModified"],
        "CodeSha256": code_sha256(code),
        "Version": "$LATEST",
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": resp["RevisionId"],
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "RuntimeVersionConfig": {"RuntimeVersionArn": resp["RuntimeVersionConfig"]["RuntimeVersionArn"]},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"},
        "State": "Active",
        "LastUpdateStatus": "Successful",
    }
    expected.update(overrides)
    return {k: v for k, v in expected.items() if v is not None}


PENDING = {"State": "Pending", "StateReason": "The function is being created.", "StateReasonCode": "Creating",
           "LastUpdateStatus": None}
IN_PROGRESS = {"State": "Active", "LastUpdateStatus": "InProgress",
               "LastUpdateStatusReason": "The function is being created.", "LastUpdateStatusReasonCode": "Creating"}


def slow_zip(tag: str) -> bytes:
    """The probe function plus 96 MB of zeros (a few hundred KB zipped): unpacking it takes long
    enough that the request after CreateFunction/UpdateFunctionCode meets the operation under way.
    `tag` makes its digest new, so no earlier unpack is reused."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("probe.py", read_function_source("python", "probe.py"))
        z.writestr("tag.txt", tag)
        for i in range(12):
            z.writestr(f"ballast/{i}.bin", b"\0" * (8 * 1024 * 1024))
    return buf.getvalue()


def conflict(fn) -> dict:
    with pytest.raises(ClientError) as e:
        fn()
    assert error_code(e.value) == "ResourceConflictException", e.value.response
    assert http_status(e.value) == 409
    return e.value.response


def test_create_answers_pending_then_the_waiter_sees_active(lam):
    name = unique_name("fid-create")
    code = python_zip()
    created = lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="probe.handler",
                                  Code={"ZipFile": code})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert body(created) == expected_configuration(name, code, created, **PENDING)

    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    got = lam.get_function_configuration(FunctionName=name)
    assert body(got) == expected_configuration(name, code, got)
    # The revision id is renewed when the function becomes Active.
    assert got["RevisionId"] != created["RevisionId"]

    # GetFunction: Configuration and Code, and no Tags member for a function without tags.
    whole = lam.get_function(FunctionName=name)
    assert set(body(whole)) == {"Configuration", "Code"}
    assert whole["Configuration"] == body(got)
    assert whole["Code"]["RepositoryType"] == "S3"


def test_update_answers_in_progress_then_the_waiter_sees_successful(lam):
    name = unique_name("fid-update")
    code = python_zip()
    create_function(lam, name, code)
    before = lam.get_function_configuration(FunctionName=name)

    upd = lam.update_function_configuration(FunctionName=name, Description="second")
    assert body(upd) == expected_configuration(name, code, upd, Description="second", **IN_PROGRESS)
    assert upd["RevisionId"] != before["RevisionId"]
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    after = lam.get_function_configuration(FunctionName=name)
    assert body(after) == expected_configuration(name, code, after, Description="second")
    assert after["RevisionId"] != upd["RevisionId"]

    code2 = python_zip({"extra.txt": "two"})
    upd2 = lam.update_function_code(FunctionName=name, ZipFile=code2)
    assert body(upd2) == expected_configuration(name, code2, upd2, Description="second", **IN_PROGRESS)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    done = lam.get_function_configuration(FunctionName=name)
    assert body(done) == expected_configuration(name, code2, done, Description="second")


def test_invoke_while_pending_and_update_while_in_progress_conflict(lam):
    name = unique_name("fid-busy")
    code = slow_zip(name)
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="probe.handler",
                        Code={"ZipFile": code})
    # Unpacking 96 MB is still under way when the next request arrives.
    err = conflict(lambda: lam.invoke(FunctionName=name, Payload=b"{}"))
    assert err["Error"]["Message"] == ("The operation cannot be performed at this time. "
                                       "The function is currently in the following state: Pending")
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200

    lam.update_function_code(FunctionName=name, ZipFile=slow_zip(name + "-2"))
    err = conflict(lambda: lam.update_function_configuration(FunctionName=name, Timeout=9))
    assert err["Error"]["Message"] == ("The operation cannot be performed at this time. "
                                       f"An update is in progress for resource: {function_arn(name)}")
    # Invocations go on during an update, as on AWS.
    assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert lam.update_function_configuration(FunctionName=name, Timeout=9)["Timeout"] == 9


def test_executed_version_only_for_synchronous_invokes(lam):
    name = unique_name("fid-exec")
    create_function(lam, name, python_zip())
    sync = lam.invoke(FunctionName=name, Payload=b"{}")
    assert sync["ExecutedVersion"] == "$LATEST"
    event = lam.invoke(FunctionName=name, Payload=b"{}", InvocationType="Event")
    assert event["StatusCode"] == 202
    assert "ExecutedVersion" not in event
    assert "x-amz-executed-version" not in event["ResponseMetadata"]["HTTPHeaders"]


def test_published_version_and_qualified_get(lam):
    name = unique_name("fid-version")
    code = python_zip()
    create_function(lam, name, code)
    v1 = lam.publish_version(FunctionName=name)
    expected = expected_configuration(name, code, v1, Version="1", FunctionArn=function_arn(name, "1"))
    assert body(v1) == expected
    got = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert body(got) == expected_configuration(name, code, got, Version="1", FunctionArn=function_arn(name, "1"))
    with pytest.raises(ClientError) as e:
        lam.get_function_configuration(FunctionName=name, Qualifier="3")
    assert error_code(e.value) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == (
        f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:3")


def error_of(fn) -> dict:
    with pytest.raises(ClientError) as e:
        fn()
    return {"Code": error_code(e.value), "Status": http_status(e.value), "Message": e.value.response["Error"]["Message"]}


def test_create_reports_every_constraint_violation_at_once(lam_raw):
    # AWS's model-constraint wording ("N validation errors detected: …; …"); the limits are botocore's
    # (Timeout min 1, EphemeralStorageSize min 512) and the FunctionName pattern is the model's today.
    name = unique_name("fid-valid")
    got = error_of(lambda: lam_raw.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE,
                                                   Handler="probe.handler", Code={"ZipFile": python_zip()},
                                                   Timeout=0, EphemeralStorage={"Size": 100}))
    assert got == {"Code": "ValidationException", "Status": 400, "Message": (
        "2 validation errors detected: "
        "Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1; "
        "Value '100' at 'ephemeralStorage.size' failed to satisfy constraint: "
        "Member must have value greater than or equal to 512")}
    got = error_of(lambda: lam_raw.create_function(FunctionName="bad name!", Runtime="python3.12", Role=ROLE,
                                                   Handler="probe.handler", Code={"ZipFile": python_zip()}))
    assert got == {"Code": "ValidationException", "Status": 400, "Message": (
        "1 validation error detected: Value 'bad name!' at 'functionName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: "
        r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?"
        r"(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?")}
    got = error_of(lambda: lam_raw.create_function(FunctionName=name, Runtime="python3.12",
                                                   Handler="probe.handler", Code={"ZipFile": python_zip()}))
    assert got == {"Code": "ValidationException", "Status": 400, "Message": (
        "1 validation error detected: Value null at 'role' failed to satisfy constraint: Member must not be null")}


def test_logging_config_is_kept_as_given(lam, lam_raw):
    # botocore's LoggingConfig shape; with JSON, AWS reports INFO for a level not given.
    name = unique_name("fid-logging")
    code = python_zip()
    create_function(lam, name, code, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG",
                                                    "LogGroup": "/custom/group"})
    got = lam.get_function_configuration(FunctionName=name)
    assert body(got) == expected_configuration(name, code, got, LoggingConfig={
        "LogFormat": "JSON", "ApplicationLogLevel": "DEBUG", "SystemLogLevel": "INFO", "LogGroup": "/custom/group"})
    lam.update_function_configuration(FunctionName=name, LoggingConfig={"LogFormat": "Text"})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    got = lam.get_function_configuration(FunctionName=name)
    assert got["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/custom/group"}
    got = error_of(lambda: lam_raw.update_function_configuration(
        FunctionName=name, LoggingConfig={"LogFormat": "XML"}))
    assert got == {"Code": "ValidationException", "Status": 400, "Message": (
        "1 validation error detected: Value 'XML' at 'loggingConfig.logFormat' failed to satisfy constraint: "
        "Member must satisfy enum value set: [JSON, Text]")}


def test_list_functions_all_versions(lam, lam_raw):
    name = unique_name("fid-list")
    code = python_zip()
    create_function(lam, name, code)
    lam.publish_version(FunctionName=name)
    seen = []
    for page in lam.get_paginator("list_functions").paginate(FunctionVersion="ALL",
                                                             PaginationConfig={"PageSize": 1}):
        seen += [(f["FunctionName"], f["Version"], f["FunctionArn"]) for f in page["Functions"]]
    mine = [s for s in seen if s[0] == name]
    assert mine == [(name, "$LATEST", function_arn(name)), (name, "1", function_arn(name, "1"))]
    plain = [f for f in lam.list_functions()["Functions"] if f["FunctionName"] == name]
    assert [f["Version"] for f in plain] == ["$LATEST"]
    got = error_of(lambda: lam_raw.list_functions(FunctionVersion="SOME"))
    assert got == {"Code": "ValidationException", "Status": 400, "Message": (
        "1 validation error detected: Value 'SOME' at 'functionVersion' failed to satisfy constraint: "
        "Member must satisfy enum value set: [ALL]")}


def test_account_id_setting_is_kept_in_the_data_dir(server_factory):
    import subprocess

    from helpers import nimbus_bin
    account = "123456789012"
    srv = server_factory(extra_args=("--account-id", account))
    lam = srv.lambda_client()
    name = unique_name("fid-account")
    # The suite's role, made in this server's account (a role of another account cannot be assumed).
    created = create_function(lam, name, python_zip(), role=f"arn:aws:iam::{account}:role/nimbus-e2e")
    assert created["FunctionArn"] == f"arn:aws:lambda:{REGION}:{account}:function:{name}"
    assert (srv.data_dir / "account-id").read_text().strip() == account

    # Started again without the flag: the data dir's account.
    srv.extra_args = ()
    srv.restart()
    lam = srv.lambda_client()
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"].split(":")[4] == account
    srv.stop_cleanly()

    # Another account would rename every stored ARN: refused before anything starts.
    proc = subprocess.run([str(nimbus_bin()), "serve", "--data-dir", str(srv.data_dir), "--listen", "127.0.0.1:0",
                           "--account-id", "999999999999"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"holds account {account}" in proc.stderr
    srv.start()


def test_update_configuration_validates_before_looking_the_function_up(lam_raw):
    # Model constraints (botocore: Timeout min 1, MemorySize min 128) come before the lookup, all at once.
    name = unique_name("fid-upd-missing")
    got = error_of(lambda: lam_raw.update_function_configuration(FunctionName=name, Timeout=0, MemorySize=64))
    assert got == {"Code": "ValidationException", "Status": 400, "Message": (
        "2 validation errors detected: "
        "Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1; "
        "Value '64' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128")}
    got = error_of(lambda: lam_raw.update_function_configuration(FunctionName=name, Timeout=5))
    assert got == {"Code": "ResourceNotFoundException", "Status": 404,
                   "Message": f"Function not found: {function_arn(name)}"}
