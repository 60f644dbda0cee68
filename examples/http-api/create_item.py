"""POST /items  {"name": "..."}"""
import base64
import json
import time
import uuid

from items import put, respond


def handler(event, context):
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    try:
        name = json.loads(raw)["name"]
    except (ValueError, KeyError, TypeError):
        return respond(400, {"message": 'send {"name": "..."}'})
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        return respond(400, {"message": "name must be a string of 1 to 200 characters"})
    item = {"id": uuid.uuid4().hex[:8], "name": name, "created": int(time.time() * 1000)}
    put(item)
    return respond(201, item)
