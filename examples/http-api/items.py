"""The item store the three functions share, honestly small: `create_item` writes each new item as one
line of its own log (`ITEM {json}` on stdout, which Lambda — and Nimbus — keep in the log group
/aws/lambda/items-create_item), and the readers find them with the CloudWatch Logs API (FilterLogEvents),
through boto3 at the AWS_ENDPOINT_URL Nimbus gives every function. Log lines are stored a few
milliseconds after the function returns, so a read right after a write may not see it yet."""

import json
import os

import boto3

GROUP = os.environ.get("ITEMS_LOG_GROUP", "/aws/lambda/items-create_item")
MARK = "ITEM "


def put(item: dict) -> None:
    print(MARK + json.dumps(item), flush=True)


def all_items() -> list[dict]:
    logs = boto3.client("logs")
    items, token = [], None
    while True:
        kw = {"nextToken": token} if token else {}
        try:
            page = logs.filter_log_events(logGroupName=GROUP, filterPattern='"ITEM"', **kw)
        except logs.exceptions.ResourceNotFoundException:
            return []  # nothing created yet
        for event in page["events"]:
            line = event["message"].strip()
            if line.startswith(MARK):
                items.append(json.loads(line[len(MARK):]))
        token = page.get("nextToken")
        if not token:
            return items


def respond(status: int, body) -> dict:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
