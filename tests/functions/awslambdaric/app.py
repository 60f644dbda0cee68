"""Handler run by awslambdaric (see bootstrap beside this file).

Event {"fail": "message"} raises; {"sleep": s} sleeps; anything else is echoed with context facts.
"""

import os
import time
import uuid

ENV_ID = uuid.uuid4().hex
COUNT = 0


def handler(event, context):
    global COUNT
    COUNT += 1
    ev = event if isinstance(event, dict) else {}
    if "sleep" in ev:
        time.sleep(float(ev["sleep"]))
    if "fail" in ev:
        raise RuntimeError(ev["fail"])
    print("awslambdaric handled", context.aws_request_id, flush=True)
    return {
        "runtime": "awslambdaric",
        "event": event,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env_id": ENV_ID,
        "pid": os.getpid(),
        "count": COUNT,
    }
