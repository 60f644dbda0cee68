"""The AWS CLI (v1, from the test venv) against Nimbus with --endpoint-url: the commands from the README."""

import base64
import functools
import json
import re
import subprocess
import zipfile

from helpers import code_sha256, function_arn, python_zip, unique_name, venv_tool


@functools.lru_cache(maxsize=None)
def raw_payload_args() -> tuple[str, ...]:
    """The README's command uses AWS CLI v2 (`--cli-binary-format raw-in-base64-out`); the v1 CLI that
    PyPI has (tests/requirements.txt) passes --payload raw already and does not know that option."""
    out = subprocess.run([venv_tool("aws"), "--version"], capture_output=True, text=True, timeout=60)
    m = re.match(r"aws-cli/(\d+)\.", (out.stdout or out.stderr).strip())
    return ("--cli-binary-format", "raw-in-base64-out") if m and int(m.group(1)) >= 2 else ()


def test_aws_cli_create_invoke_list_delete(server, tmp_path):
    name = unique_name("cli-aws")
    code = python_zip()
    zip_path = tmp_path / "fn.zip"
    zip_path.write_bytes(code)
    with zipfile.ZipFile(zip_path) as zf:
        assert "probe.py" in zf.namelist()

    created = server.aws("lambda", "create-function", "--function-name", name, "--runtime", "python3.12",
                         "--handler", "probe.handler", "--zip-file", f"fileb://{zip_path}",
                         "--role", "arn:aws:iam::000000000000:role/x", "--timeout", "10",
                         "--environment", "Variables={PROBE_FROM=cli}")
    assert created["FunctionArn"] == function_arn(name)
    assert created["CodeSha256"] == code_sha256(code)
    server.aws("lambda", "wait", "function-active-v2", "--function-name", name, parse=False)

    out = tmp_path / "out.json"
    meta = server.aws("lambda", "invoke", "--function-name", name, "--payload", '{"a":1}',
                      *raw_payload_args(), "--log-type", "Tail", str(out))
    assert meta["StatusCode"] == 200
    assert meta["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in meta
    log = base64.b64decode(meta["LogResult"]).decode()
    assert "START RequestId:" in log and "REPORT RequestId:" in log
    body = json.loads(out.read_text())
    assert body["event"] == {"a": 1}
    assert body["user_env"] == {"PROBE_FROM": "cli"}

    listed = server.aws("lambda", "list-functions")
    assert name in [f["FunctionName"] for f in listed["Functions"]]

    got = server.aws("lambda", "get-function", "--function-name", name)
    assert got["Configuration"]["Timeout"] == 10

    server.aws("lambda", "delete-function", "--function-name", name, parse=False)
    listed = server.aws("lambda", "list-functions")
    assert name not in [f["FunctionName"] for f in listed["Functions"]]
    proc = server.aws("lambda", "get-function", "--function-name", name, parse=False, check=False)
    assert proc.returncode != 0
    assert "ResourceNotFoundException" in proc.stderr


def test_aws_cli_function_error_is_reported(server, tmp_path):
    name = unique_name("cli-aws-err")
    zip_path = tmp_path / "fn.zip"
    zip_path.write_bytes(python_zip())
    server.aws("lambda", "create-function", "--function-name", name, "--runtime", "python3.12",
               "--handler", "probe.handler", "--zip-file", f"fileb://{zip_path}",
               "--role", "arn:aws:iam::000000000000:role/x")
    server.aws("lambda", "wait", "function-active-v2", "--function-name", name, parse=False)
    out = tmp_path / "err.json"
    meta = server.aws("lambda", "invoke", "--function-name", name, "--payload", '{"raise":"cli boom"}',
                      *raw_payload_args(), str(out))
    assert meta["StatusCode"] == 200
    assert meta["FunctionError"] == "Unhandled"
    body = json.loads(out.read_text())
    assert body["errorMessage"] == "cli boom" and body["errorType"] == "ValueError"
