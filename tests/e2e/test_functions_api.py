"""The Lambda control plane with boto3: create/get/list/update/delete, tags, versions, account settings."""

import re
import urllib.request

import pytest
from botocore.exceptions import ClientError

from helpers import (ACCOUNT, REGION, ROLE, code_sha256, create_function, error_code, function_arn,
                     http_status, invoke, python_zip, unique_name, wait_updated)

LAST_MODIFIED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def assert_request_id(resp):
    """Every Lambda response carries x-amzn-RequestId (botocore surfaces it as ResponseMetadata.RequestId)."""
    rid = resp["ResponseMetadata"]["RequestId"]
    assert rid, f"no x-amzn-RequestId in {resp['ResponseMetadata']}"
    assert resp["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-requestid") == rid
    return rid


def test_create_function_returns_aws_shaped_configuration(lam):
    name = unique_name("api-create")
    code = python_zip()
    cfg = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="probe.handler",
        Code={"ZipFile": code},
        Description="created by the e2e suite",
        Timeout=7,
        MemorySize=256,
        Environment={"Variables": {"PROBE_GREETING": "hello", "PROBE_N": "42"}},
        EphemeralStorage={"Size": 1024},
        Architectures=["x86_64"],
        Tags={"team": "nimbus", "purpose": "e2e"},
        Publish=False,
    )
    assert_request_id(cfg)
    assert cfg["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert cfg["FunctionName"] == name
    assert cfg["FunctionArn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    assert cfg["Runtime"] == "python3.12"
    assert cfg["Role"] == ROLE
    assert cfg["Handler"] == "probe.handler"
    assert cfg["Description"] == "created by the e2e suite"
    assert cfg["Timeout"] == 7 and isinstance(cfg["Timeout"], int)
    assert cfg["MemorySize"] == 256 and isinstance(cfg["MemorySize"], int)
    assert cfg["Environment"] == {"Variables": {"PROBE_GREETING": "hello", "PROBE_N": "42"}}
    assert cfg["EphemeralStorage"] == {"Size": 1024}
    assert cfg["Architectures"] == ["x86_64"]
    assert cfg["Version"] == "$LATEST"
    assert cfg["CodeSha256"] == code_sha256(code)
    assert cfg["CodeSize"] == len(code)
    assert LAST_MODIFIED_RE.match(cfg["LastModified"]), cfg["LastModified"]
    assert cfg["PackageType"] == "Zip"
    assert UUID_RE.match(cfg["RevisionId"]), cfg["RevisionId"]
    # AWS answers create with Pending and moves to Active; either is fine here, the waiter decides.
    assert cfg["State"] in ("Pending", "Active")

    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    got = lam.get_function_configuration(FunctionName=name)
    assert_request_id(got)
    assert got["State"] == "Active"
    assert got["LastUpdateStatus"] == "Successful"
    for key in ("FunctionName", "FunctionArn", "Runtime", "Role", "Handler", "Description", "Timeout",
                "MemorySize", "Environment", "EphemeralStorage", "Architectures", "Version", "CodeSha256",
                "CodeSize", "PackageType"):
        assert got[key] == cfg[key], key


def test_create_defaults_match_aws(lam):
    name = unique_name("api-defaults")
    create_function(lam, name, python_zip())
    got = lam.get_function_configuration(FunctionName=name)
    # Lambda's documented defaults: 3 s, 128 MB, 512 MB of /tmp, x86_64.
    assert got["Timeout"] == 3
    assert got["MemorySize"] == 128
    assert got["EphemeralStorage"] == {"Size": 512}
    assert got["Architectures"] == ["x86_64"]
    assert got["Description"] == ""


def test_get_function_code_location_downloads_the_same_zip(lam):
    name = unique_name("api-get")
    code = python_zip({"extra.txt": "some extra content\n"})
    create_function(lam, name, code, Tags={"k": "v"})
    resp = lam.get_function(FunctionName=name)
    assert_request_id(resp)
    assert resp["Configuration"]["FunctionName"] == name
    assert resp["Configuration"]["CodeSha256"] == code_sha256(code)
    assert resp["Code"]["RepositoryType"] == "S3"
    location = resp["Code"]["Location"]
    assert location.startswith("http://127.0.0.1:"), location
    # Like AWS's presigned S3 URL: a plain GET, no signing, returns the zip bytes.
    with urllib.request.urlopen(location, timeout=30) as r:
        assert r.status == 200
        downloaded = r.read()
    assert downloaded == code
    assert resp["Tags"] == {"k": "v"}


def test_function_can_be_addressed_by_arn_and_partial_arn(lam):
    name = unique_name("api-arn")
    create_function(lam, name, python_zip())
    by_arn = lam.get_function(FunctionName=function_arn(name))
    assert by_arn["Configuration"]["FunctionName"] == name
    partial = lam.get_function(FunctionName=f"{ACCOUNT}:function:{name}")
    assert partial["Configuration"]["FunctionArn"] == function_arn(name)
    conf = lam.get_function_configuration(FunctionName=function_arn(name))
    assert conf["FunctionName"] == name


def test_update_code_and_configuration_take_effect(lam, server):
    name = unique_name("api-update")
    v1 = python_zip({"version.txt": "one"})
    created = create_function(lam, name, v1, Environment={"Variables": {"PROBE_STAGE": "first"}})
    first = invoke(lam, name, {"x": 1}, server=server)
    assert first.function_error is None, first.raw
    assert first.payload["user_env"]["PROBE_STAGE"] == "first"
    assert "version.txt" in first.payload["task_root_listing"]

    # New code: a new CodeSha256, a new RevisionId, and invocations run it in a new environment.
    v2 = python_zip({"version2.txt": "two"})
    upd = lam.update_function_code(FunctionName=name, ZipFile=v2)
    assert_request_id(upd)
    assert upd["CodeSha256"] == code_sha256(v2)
    assert upd["CodeSize"] == len(v2)
    assert upd["RevisionId"] != created["RevisionId"]
    wait_updated(lam, name)
    second = invoke(lam, name, {"x": 2}, server=server)
    assert second.function_error is None, second.raw
    assert "version2.txt" in second.payload["task_root_listing"]
    assert "version.txt" not in second.payload["task_root_listing"]
    assert second.payload["env_id"] != first.payload["env_id"], "old environment kept running old code"

    # New configuration: also retires the environment.
    upd2 = lam.update_function_configuration(FunctionName=name, MemorySize=512, Timeout=9,
                                             Description="changed",
                                             Environment={"Variables": {"PROBE_STAGE": "second"}})
    assert_request_id(upd2)
    assert upd2["MemorySize"] == 512 and upd2["Timeout"] == 9 and upd2["Description"] == "changed"
    assert upd2["RevisionId"] != upd["RevisionId"]
    wait_updated(lam, name)
    got = lam.get_function_configuration(FunctionName=name)
    assert got["LastUpdateStatus"] == "Successful"
    assert got["MemorySize"] == 512
    assert got["CodeSha256"] == code_sha256(v2)
    third = invoke(lam, name, {"x": 3}, server=server)
    assert third.function_error is None, third.raw
    assert third.payload["user_env"]["PROBE_STAGE"] == "second"
    assert third.payload["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert int(third.payload["context"]["memory_limit_in_mb"]) == 512
    assert third.payload["env_id"] not in (first.payload["env_id"], second.payload["env_id"])


def test_delete_function_then_not_found(lam):
    name = unique_name("api-delete")
    create_function(lam, name, python_zip())
    resp = lam.delete_function(FunctionName=name)
    assert_request_id(resp)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] in (200, 204)
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name)
    assert error_code(e.value) == "ResourceNotFoundException"
    assert http_status(e.value) == 404
    assert e.value.response["ResponseMetadata"]["RequestId"]
    assert name not in [f["FunctionName"] for f in list_all(lam)]
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert error_code(e.value) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=name)
    assert error_code(e.value) == "ResourceNotFoundException"


def list_all(client):
    out = []
    for page in client.get_paginator("list_functions").paginate():
        out.extend(page["Functions"])
    return out


def test_list_functions_pages_with_marker(server_factory):
    srv = server_factory()  # an empty server, so the counts below are exact
    lam = srv.lambda_client()
    names = sorted(unique_name(f"list{i}") for i in range(5))
    for name in names:
        create_function(lam, name, python_zip(), wait=False)

    seen = []
    pages = 0
    marker = None
    while True:
        args = {"MaxItems": 2}
        if marker:
            args["Marker"] = marker
        page = lam.list_functions(**args)
        assert_request_id(page)
        pages += 1
        assert len(page["Functions"]) <= 2
        seen.extend(f["FunctionName"] for f in page["Functions"])
        marker = page.get("NextMarker")
        if not marker:
            break
        assert pages < 10, "NextMarker never ends"
    assert pages == 3
    assert sorted(seen) == names, "every function exactly once across the pages"

    # botocore's paginator drives Marker/NextMarker the same way.
    paginated = []
    for page in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}):
        paginated.extend(f["FunctionName"] for f in page["Functions"])
    assert sorted(paginated) == names

    everything = lam.list_functions()
    assert sorted(f["FunctionName"] for f in everything["Functions"]) == names
    assert "NextMarker" not in everything or not everything["NextMarker"]
    fn = next(f for f in everything["Functions"] if f["FunctionName"] == names[0])
    assert fn["FunctionArn"] == function_arn(names[0])
    assert fn["Runtime"] == "python3.12" and fn["Version"] == "$LATEST"


def test_tags(lam):
    name = unique_name("api-tags")
    create_function(lam, name, python_zip(), Tags={"a": "1", "b": "2"})
    arn = function_arn(name)
    listed = lam.list_tags(Resource=arn)
    assert_request_id(listed)
    assert listed["Tags"] == {"a": "1", "b": "2"}

    assert_request_id(lam.tag_resource(Resource=arn, Tags={"c": "3", "a": "one"}))
    assert lam.list_tags(Resource=arn)["Tags"] == {"a": "one", "b": "2", "c": "3"}

    assert_request_id(lam.untag_resource(Resource=arn, TagKeys=["b", "missing"]))
    assert lam.list_tags(Resource=arn)["Tags"] == {"a": "one", "c": "3"}
    assert lam.get_function(FunctionName=name)["Tags"] == {"a": "one", "c": "3"}

    with pytest.raises(ClientError) as e:
        lam.list_tags(Resource=function_arn(unique_name("no-such")))
    assert error_code(e.value) == "ResourceNotFoundException"


def test_get_account_settings_shape(lam):
    name = unique_name("api-account")
    code = python_zip()
    create_function(lam, name, code)
    resp = lam.get_account_settings()
    assert_request_id(resp)
    limit, usage = resp["AccountLimit"], resp["AccountUsage"]
    assert limit["CodeSizeZipped"] == 52428800  # 50 MB
    assert limit["CodeSizeUnzipped"] == 262144000  # 250 MB
    for key in ("TotalCodeSize", "ConcurrentExecutions", "UnreservedConcurrentExecutions"):
        assert isinstance(limit[key], int) and limit[key] > 0, key
    assert limit["UnreservedConcurrentExecutions"] <= limit["ConcurrentExecutions"]
    assert isinstance(usage["FunctionCount"], int) and usage["FunctionCount"] >= 1
    assert isinstance(usage["TotalCodeSize"], int) and usage["TotalCodeSize"] >= len(code)


def test_publish_creates_version_one_and_qualifier_invokes_it(lam, server):
    name = unique_name("api-publish")
    cfg = create_function(lam, name, python_zip(), Publish=True)
    assert cfg["Version"] == "1"
    assert cfg["FunctionArn"] == function_arn(name, "1")

    v1 = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert v1["Version"] == "1"
    latest = lam.get_function_configuration(FunctionName=name)
    assert latest["Version"] == "$LATEST"

    inv = invoke(lam, name, {"q": 1}, server=server, Qualifier="1")
    assert inv.status == 200 and inv.function_error is None, inv.raw
    assert inv.executed_version == "1"
    assert inv.payload["context"]["invoked_function_arn"] == function_arn(name, "1")
    assert inv.payload["context"]["function_version"] == "1"
    assert inv.payload["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "1"

    plain = invoke(lam, name, {"q": 2}, server=server)
    assert plain.executed_version == "$LATEST"

    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Qualifier="7", Payload=b"{}")
    assert error_code(e.value) == "ResourceNotFoundException"
    assert http_status(e.value) == 404


def test_region_and_account_in_arns(lam):
    name = unique_name("api-region")
    cfg = create_function(lam, name, python_zip())
    assert cfg["FunctionArn"].split(":")[3] == REGION
    assert cfg["FunctionArn"].split(":")[4] == ACCOUNT
