"""Cold starts from pre-started interpreters (namespace tier): a Python or Node runtime started ahead of
demand must give the function exactly what a freshly started one gives it (environment, working
directory, argv, module path), keep nothing of one environment for the next, and step aside (a fresh
start) when the function sets a variable its interpreter reads while it starts."""

import json

import pytest

from helpers import create_function, invoke, make_zip, report_lines, unique_name, wait_updated

# Whether the runtime was pre-started shows in its exec-time environment (/proc/self/environ): a
# pre-started interpreter was executed before its function was known, with the variable naming the
# descriptor it waited on, and only its in-process environment was replaced.
PY_PROBE = """
import os, sys
STATE = {"count": 0}

def handler(event, context):
    STATE["count"] += 1
    seen = {"leak_env": os.environ.get("LEAKED"), "leak_global": STATE.get("leaked"),
            "leak_file": os.path.exists("/tmp/leaked")}
    if event.get("leave_traces"):
        os.environ["LEAKED"] = "1"
        STATE["leaked"] = True
        open("/tmp/leaked", "w").close()
    with open("/proc/self/environ", "rb") as f:
        prestarted = b"_NIMBUS_PRESTART_FD=" in f.read()
    return {"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv, "path": sys.path,
            "prestarted": prestarted, "count": STATE["count"], "seen": seen}
"""

NODE_PROBE = """
const fs = require('fs');
exports.handler = async () => ({
  env: { ...process.env },
  cwd: process.cwd(),
  argv: process.argv,
  paths: module.paths,
  prestarted: fs.readFileSync('/proc/self/environ').includes('_NIMBUS_PRESTART_FD='),
});
"""

# Values that differ between any two environments or functions by design.
PER_ENVIRONMENT = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_LOG_STREAM_NAME",
                   "_X_AMZN_TRACE_ID", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_LOG_GROUP_NAME"}


@pytest.fixture(autouse=True)
def namespace_only(server):
    if server.sandbox != "namespace":
        pytest.skip("pre-started interpreters are a namespace-tier feature")


def cold_invoke(lam, server, name, variables, event=None):
    """Changes the configuration (which retires the environments), then invokes: a cold start."""
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
    wait_updated(lam, name)
    inv = invoke(lam, name, event or {}, server=server, LogType="Tail")
    assert inv.status == 200 and inv.function_error is None, inv.raw
    assert "x-nimbus-init-duration-ms" in inv.headers, "a configuration change must make the next invoke cold"
    return inv


def comparable(env):
    return {k: v for k, v in env.items() if k not in PER_ENVIRONMENT}


def test_python_prestarted_function_sees_what_a_fresh_start_gives_it(lam, server):
    name = unique_name("cold-py")
    create_function(lam, name, make_zip({"probe.py": PY_PROBE}), Environment={"Variables": {"TABLE": "t1"}})
    pre = cold_invoke(lam, server, name, {"TABLE": "t1"})
    # PYTHONDONTWRITEBYTECODE is read by the interpreter as it starts: that function starts fresh.
    fresh = cold_invoke(lam, server, name, {"TABLE": "t1", "PYTHONDONTWRITEBYTECODE": "1"})
    a, b = pre.payload, fresh.payload
    assert a["prestarted"] is True and b["prestarted"] is False, (a["prestarted"], b["prestarted"])
    assert not any(k.startswith("_NIMBUS") for k in a["env"]), sorted(a["env"])
    assert a["env"]["TABLE"] == "t1" and a["env"]["_HANDLER"] == "probe.handler"
    assert b["env"].pop("PYTHONDONTWRITEBYTECODE") == "1"
    assert comparable(a["env"]) == comparable(b["env"])
    assert sorted(a["env"]) == sorted(b["env"]), "the same variables, only per-environment values differ"
    assert (a["cwd"], a["argv"], a["path"]) == (b["cwd"], b["argv"], b["path"])
    assert a["cwd"] == "/var/task" and a["path"][0] == "/var/task"
    # Init Duration is the function's own init, reported on the cold start.
    assert report_lines(pre.log_result)[0]["init"] is not None, pre.log_result


def test_node_prestarted_function_sees_what_a_fresh_start_gives_it(lam, server):
    name = unique_name("cold-node")
    create_function(lam, name, make_zip({"index.js": NODE_PROBE}), runtime="nodejs20.x", handler="index.handler")
    pre = cold_invoke(lam, server, name, {"TABLE": "t1"})
    # UV_THREADPOOL_SIZE may be read by libuv before the bootstrap runs: that function starts fresh.
    fresh = cold_invoke(lam, server, name, {"TABLE": "t1", "UV_THREADPOOL_SIZE": "4"})
    a, b = pre.payload, fresh.payload
    assert a["prestarted"] is True and b["prestarted"] is False, (a["prestarted"], b["prestarted"])
    assert not any(k.startswith("_NIMBUS") for k in a["env"]), sorted(a["env"])
    assert b["env"].pop("UV_THREADPOOL_SIZE") == "4"
    assert comparable(a["env"]) == comparable(b["env"])
    assert (a["cwd"], a["argv"], a["paths"]) == (b["cwd"], b["argv"], b["paths"])
    assert a["cwd"] == "/var/task"


def test_nothing_of_one_environment_reaches_the_next(lam, server):
    name = unique_name("cold-leak")
    create_function(lam, name, make_zip({"probe.py": PY_PROBE}))
    first = cold_invoke(lam, server, name, {"ROUND": "1"}, {"leave_traces": True}).payload
    again = invoke(lam, name, {}, server=server).payload
    assert again["seen"] == {"leak_env": "1", "leak_global": True, "leak_file": True}, "same environment, warm"
    second = cold_invoke(lam, server, name, {"ROUND": "2"}).payload
    assert first["prestarted"] and second["prestarted"]
    assert second["count"] == 1 and second["seen"] == {"leak_env": None, "leak_global": None, "leak_file": False}


def test_a_function_setting_startup_variables_gets_them_applied(lam, server):
    # PYTHONPATH is only honoured by an interpreter started with it: such a function must start fresh.
    name = unique_name("cold-pythonpath")
    code = {"probe.py": "import helper\ndef handler(e, c):\n    return helper.VALUE\n",
            "lib/helper.py": "VALUE = 'from lib'\n"}
    create_function(lam, name, make_zip(code), Environment={"Variables": {"PYTHONPATH": "/var/task/lib"}})
    inv = invoke(lam, name, {}, server=server)
    assert inv.function_error is None, inv.raw
    assert json.loads(inv.raw) == "from lib"
