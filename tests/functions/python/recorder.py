"""Recorder function for the event-plane tests (handler `recorder.handler`).

Every invocation writes one file into $RECORD_DIR (named after the function and a fresh uuid) holding
{"function", "request_id", "event", "ts"}, before doing anything else, so a test can count what the function
saw even across server crashes. The event steers it:

    {"fail": true}               raise after recording (a function error)
    {"sleep": 0.5}               sleep first (seconds)
    {"Records": [...]}           an SQS batch: records whose body is JSON with "fail": true are reported
                                 in batchItemFailures; with env FAIL_BATCH=1 the whole batch raises
anything else answers {"ok": true, "echo": event}.
"""

import json
import os
import time
import uuid


def _record(context, event):
    directory = os.environ["RECORD_DIR"]
    path = os.path.join(directory, "%s-%s.json" % (context.function_name, uuid.uuid4().hex))
    with open(path + ".tmp", "w") as f:
        json.dump({"function": context.function_name, "request_id": context.aws_request_id, "event": event,
                   "ts": time.time()}, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(path + ".tmp", path)


def _body(record):
    try:
        return json.loads(record.get("body", ""))
    except ValueError:
        return None


def handler(event, context):
    if isinstance(event, dict) and event.get("sleep"):
        time.sleep(float(event["sleep"]))
    _record(context, event)
    if isinstance(event, dict) and "Records" in event:
        if os.environ.get("FAIL_BATCH") == "1":
            raise RuntimeError("batch failed on purpose")
        failures = []
        for record in event["Records"]:
            body = _body(record)
            if isinstance(body, dict) and body.get("fail"):
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}
    if isinstance(event, dict) and event.get("fail"):
        raise RuntimeError("failed on purpose: %s" % event.get("id"))
    return {"ok": True, "echo": event}
