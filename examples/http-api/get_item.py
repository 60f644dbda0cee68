"""GET /items/{id}"""
from items import all_items, respond


def handler(event, context):
    item_id = event["pathParameters"]["id"]
    for item in all_items():
        if item["id"] == item_id:
            return respond(200, item)
    return respond(404, {"message": f"no item {item_id}"})
