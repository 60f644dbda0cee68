import os

invocations = 0  # module state survives between invocations in one environment


def handler(event, context):
    global invocations
    invocations += 1
    print(f"hello from {context.function_name}, invocation {invocations} of pid {os.getpid()}")
    return {"event": event, "invocations": invocations, "request_id": context.aws_request_id}
