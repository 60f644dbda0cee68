"""GET /items"""
from items import all_items, respond


def handler(event, context):
    return respond(200, {"items": all_items()})
