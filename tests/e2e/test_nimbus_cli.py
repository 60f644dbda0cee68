"""The CLI for people: `nimbus deploy|invoke|ls` (thin clients of the HTTP API) against a running server.
`nimbus logs` is covered in test_logs.py."""

import json

from helpers import python_zip, read_function_source, unique_name, wait_updated


def json_in_output(text: str):
    """The JSON document a command printed: all of stdout, or else the last line that parses."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    raise AssertionError(f"no JSON in output:\n{text}")


def test_nimbus_deploy_creates_then_updates(server, lam, tmp_path):
    name = unique_name("cli-deploy")
    src = tmp_path / "fn"
    src.mkdir()
    (src / "probe.py").write_text(read_function_source("python", "probe.py"))
    (src / "first.txt").write_text("1")

    server.nimbus("deploy", str(src), "--name", name, "--runtime", "python3.12", "--handler", "probe.handler")
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["Runtime"] == "python3.12" and cfg["Handler"] == "probe.handler"
    resp = lam.invoke(FunctionName=name, Payload=b'{"via": "deploy"}')
    body = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp, body
    assert body["event"] == {"via": "deploy"}
    assert "first.txt" in body["task_root_listing"] and "probe.py" in body["task_root_listing"]

    # Same command again: an update of the code, not a conflict.
    (src / "second.txt").write_text("2")
    server.nimbus("deploy", str(src), "--name", name, "--runtime", "python3.12", "--handler", "probe.handler")
    wait_updated(lam, name)
    updated = lam.get_function_configuration(FunctionName=name)
    assert updated["CodeSha256"] != cfg["CodeSha256"]
    body = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert "second.txt" in body["task_root_listing"]
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]].count(name) == 1


def test_nimbus_invoke_prints_the_response(server, lam):
    name = unique_name("cli-invoke")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role="arn:aws:iam::000000000000:role/x",
                        Handler="probe.handler", Code={"ZipFile": python_zip()})
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    proc = server.nimbus("invoke", name, "--payload", json.dumps({"from": "nimbus invoke", "n": 5}))
    out = json_in_output(proc.stdout)
    assert out["event"] == {"from": "nimbus invoke", "n": 5}
    assert out["context"]["function_name"] == name

    # Without --payload it sends an empty object.
    out = json_in_output(server.nimbus("invoke", name).stdout)
    assert out["event"] == {}


def test_nimbus_invoke_reports_function_errors(server, lam):
    name = unique_name("cli-invoke-err")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role="arn:aws:iam::000000000000:role/x",
                        Handler="probe.handler", Code={"ZipFile": python_zip()})
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    proc = server.nimbus("invoke", name, "--payload", json.dumps({"raise": "cli sees this"}), check=False)
    # Whatever the exit code, the person sees the error (like `aws lambda invoke`, which exits 0).
    assert "cli sees this" in proc.stdout + proc.stderr
    assert "ValueError" in proc.stdout + proc.stderr


def test_nimbus_ls_lists_functions(server, lam):
    names = [unique_name("cli-ls") for _ in range(2)]
    for name in names:
        lam.create_function(FunctionName=name, Runtime="python3.12", Role="arn:aws:iam::000000000000:role/x",
                            Handler="probe.handler", Code={"ZipFile": python_zip()})
    out = server.nimbus("ls").stdout
    for name in names:
        assert name in out


def test_nimbus_cli_needs_valid_credentials(server):
    import subprocess

    from helpers import nimbus_bin

    env = server.nimbus_env(secret="wrong-secret-000000000000000000000000000")
    proc = subprocess.run([str(nimbus_bin()), "ls", "--endpoint-url", server.url], capture_output=True,
                          text=True, env=env, timeout=60, stdin=subprocess.DEVNULL, cwd=server.workdir)
    assert proc.returncode != 0
    assert "signature" in (proc.stdout + proc.stderr).lower()
