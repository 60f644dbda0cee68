"""Restart: a new server on the same data dir keeps every function; root credentials created on first start."""

import os
import re
import stat

import pytest
from botocore.exceptions import ClientError

from helpers import (code_sha256, create_function, function_arn, invoke, node_zip, python_zip, shell_zip,
                     unique_name)


@pytest.mark.timeout(180)
def test_functions_survive_a_restart(server_factory):
    srv = server_factory()
    lam = srv.lambda_client()
    specs = {
        unique_name("rs-py"): (python_zip({"data.txt": "kept"}), "python3.12", "probe.handler",
                               {"Environment": {"Variables": {"PROBE_KEPT": "yes"}}, "MemorySize": 256,
                                "Timeout": 12, "Description": "python one", "Tags": {"t": "py"}}),
        unique_name("rs-node"): (node_zip(), "nodejs20.x", "probe.handler", {"Tags": {"t": "node"}}),
        unique_name("rs-sh"): (shell_zip(), "provided.al2023", "x.handler", {}),
    }
    before = {}
    for name, (code, runtime, handler, kw) in specs.items():
        create_function(lam, name, code, runtime=runtime, handler=handler, **kw)
        assert invoke(lam, name, {"before": True}, server=srv).function_error is None
        before[name] = lam.get_function(FunctionName=name)
    published = unique_name("rs-pub")
    create_function(lam, published, python_zip(), Publish=True)
    deleted = unique_name("rs-del")
    create_function(lam, deleted, python_zip())
    lam.delete_function(FunctionName=deleted)

    srv.restart()  # SIGTERM (clean exit, no leftovers checked), then a new process on the same data dir
    lam = srv.lambda_client()

    listed = {f["FunctionName"] for p in lam.get_paginator("list_functions").paginate() for f in p["Functions"]}
    assert set(specs) | {published} <= listed
    assert deleted not in listed
    for name, (code, runtime, handler, kw) in specs.items():
        got = lam.get_function(FunctionName=name)
        old = before[name]["Configuration"]
        cfg = got["Configuration"]
        for key in ("FunctionArn", "Runtime", "Handler", "CodeSha256", "CodeSize", "MemorySize", "Timeout",
                    "Description", "Environment", "LastModified", "RevisionId", "Version"):
            assert cfg.get(key) == old.get(key), (name, key, cfg.get(key), old.get(key))
        assert cfg["CodeSha256"] == code_sha256(code)
        assert cfg["State"] == "Active"
        assert got.get("Tags", {}) == kw.get("Tags", {})
        assert lam.list_tags(Resource=function_arn(name))["Tags"] == kw.get("Tags", {})
        inv = invoke(lam, name, {"after": "restart"}, server=srv)
        assert inv.status == 200 and inv.function_error is None, (name, inv.raw)

    py = next(n for n in specs if n.startswith("rs-py"))
    inv = invoke(lam, py, {}, server=srv)
    assert inv.payload["user_env"] == {"PROBE_KEPT": "yes"}
    assert "data.txt" in inv.payload["task_root_listing"]
    assert inv.payload["count"] == 2  # a fresh environment after the restart: first invoke above, this one

    assert lam.get_function_configuration(FunctionName=published, Qualifier="1")["Version"] == "1"
    assert invoke(lam, published, {}, server=srv, Qualifier="1").executed_version == "1"

    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=py, Runtime="python3.12", Role="arn:aws:iam::000000000000:role/x",
                            Handler="probe.handler", Code={"ZipFile": python_zip()})
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"


def printed_credentials(log: str):
    key = re.search(r"AWS_ACCESS_KEY_ID\s*[=:]\s*['\"]?([A-Za-z0-9]+)", log)
    secret = re.search(r"AWS_SECRET_ACCESS_KEY\s*[=:]\s*['\"]?([A-Za-z0-9/+=]+)", log)
    assert key and secret, f"the server should print the credentials to export; its output:\n{log}"
    return key.group(1), secret.group(1)


def test_root_credentials_created_on_first_start(server_factory):
    srv = server_factory(credentials=False)
    key, secret = printed_credentials(srv.log_text())

    # Kept in the data dir, readable by the owner only.
    holders = []
    for root, _, files in os.walk(srv.data_dir):
        for f in files:
            path = os.path.join(root, f)
            try:
                with open(path, "rb") as fh:
                    if secret.encode() in fh.read():
                        holders.append(path)
            except OSError:
                pass
    assert holders, "no file in the data dir holds the generated secret"
    for path in holders:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600, f"{path} has mode {oct(mode)}, want 0o600"

    # They work, and the root ones from the tests do not.
    srv.key, srv.secret = key, secret
    lam = srv.lambda_client()
    name = unique_name("creds")
    create_function(lam, name, python_zip())
    assert invoke(lam, name, {"k": 1}, server=srv).payload["event"] == {"k": 1}
    with pytest.raises(ClientError) as e:
        srv.lambda_client(key="AKIANIMBUSE2ETEST001", secret="nimbusE2eSecretKey/0123456789+abcdefghij").list_functions()
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"

    # A restart reuses them instead of making new ones (if it prints them again, they are the same).
    srv.restart()
    if "AWS_SECRET_ACCESS_KEY" in srv.log_text():
        assert printed_credentials(srv.log_text()) == (key, secret)
    assert name in [f["FunctionName"] for f in srv.lambda_client().list_functions()["Functions"]]
