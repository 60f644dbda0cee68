"""Probe function for the end-to-end suite (python3.x runtimes, handler `probe.handler`).

It is written like any Lambda function and reports what it saw, so tests can assert on the runtime
contract. The event steers it:

    {"sleep": 1.5}             sleep before answering (seconds)
    {"print": "text"}          print a line to stdout (shows up in logs / LogResult)
    {"raise": "message"}       raise ValueError(message)
    {"exit": 1}                os._exit(code) mid-invocation (the runtime process dies)
    {"response_bytes": n}      answer with a JSON string of n bytes (response size limit)
    {"call_lambda": true}      call GetFunction on itself with boto3 (credentials injected by Nimbus)
    anything else              echoed back under "event"

The answer: {"event", "context": {...}, "env": {...}, "env_id", "pid", "pid_start", "count",
"tmp_file_env_id", ...}. `env_id` is random per process (per execution environment), `count` is a
module-level counter: together they show warm reuse and scale-out.
"""

import json
import os
import sys
import tempfile
import time
import uuid

ENV_ID = uuid.uuid4().hex
COUNT = 0
INIT_PID = os.getpid()

# Init-time behaviour driven by environment variables (set with the function's Environment):
#   PROBE_INIT_FAIL_ONCE=<path>: if <path> does not exist, create it and fail init; succeed afterwards.
_marker = os.environ.get("PROBE_INIT_FAIL_ONCE")
if _marker:
    if not os.path.exists(_marker):
        with open(_marker, "w") as f:
            f.write(ENV_ID)
        raise RuntimeError("probe init fails once (marker %s created)" % _marker)

print("probe init env_id=%s pid=%d" % (ENV_ID, INIT_PID), flush=True)

ENV_KEYS = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "_HANDLER",
    "TZ",
]


def _pid_start_ticks():
    """Start time of this process in clock ticks (field 22 of /proc/self/stat): pid + start = identity."""
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _tmp_state(function_name):
    """Read what an earlier invocation in this environment left in /tmp, then leave our mark.

    Uses tempfile.gettempdir(), i.e. /tmp, or TMPDIR where a sandbox tier points it elsewhere.
    """
    path = os.path.join(tempfile.gettempdir(), "nimbus-probe-%s" % function_name)
    try:
        with open(path) as f:
            before = f.read()
    except OSError:
        before = None
    with open(path, "w") as f:
        f.write(ENV_ID)
    return before


def _plain(value):
    """A JSON-able view of a context attribute (a dict, or an object with attributes)."""
    if value is None or isinstance(value, (dict, list, str, int, float, bool)):
        return value
    return {k: getattr(value, k) for k in dir(value)
            if not k.startswith("_") and not callable(getattr(value, k))}


def _context_facts(context):
    cc = context.client_context
    client_context = None
    if cc is not None:
        client_context = {
            "custom": _plain(getattr(cc, "custom", None)),
            "env": _plain(getattr(cc, "env", None)),
            "client": _plain(getattr(cc, "client", None)),
        }
    return {
        "aws_request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "client_context": client_context,
    }


def handler(event, context):
    global COUNT
    COUNT += 1
    ev = event if isinstance(event, dict) else {}

    if "print" in ev:
        print(ev["print"], flush=True)
    if "stderr" in ev:
        print(ev["stderr"], file=sys.stderr, flush=True)
    if "sleep" in ev:
        time.sleep(float(ev["sleep"]))
    if "raise" in ev:
        raise ValueError(ev["raise"])
    if "exit" in ev:
        sys.stdout.flush()
        os._exit(int(ev["exit"]))
    if "response_bytes" in ev:
        return "x" * (int(ev["response_bytes"]) - 2)  # the JSON string adds two quotes
    if "event_len" in ev:
        return {"len": len(json.dumps(event))}

    result = {
        "event": event,
        "context": _context_facts(context),
        "env": {k: os.environ.get(k) for k in ENV_KEYS},
        "user_env": {k: v for k, v in os.environ.items() if k.startswith("PROBE_")},
        "env_id": ENV_ID,
        "pid": os.getpid(),
        "pid_start": _pid_start_ticks(),
        "count": COUNT,
        "tmp_file_env_id": _tmp_state(context.function_name),
        "task_root_listing": sorted(os.listdir(os.environ.get("LAMBDA_TASK_ROOT", "."))),
    }

    if ev.get("call_lambda"):
        import boto3  # provided by the runtime (as on AWS), not by the function's zip

        client = boto3.client("lambda")
        got = client.get_function(FunctionName=context.function_name)
        result["boto3"] = {
            "version": boto3.__version__,
            "function_name": got["Configuration"]["FunctionName"],
            "function_arn": got["Configuration"]["FunctionArn"],
            "access_key_id": boto3.Session().get_credentials().access_key,
        }
    return result
