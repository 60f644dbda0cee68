"""EventBridge (the `events` API) with boto3 and the AWS CLI: rules whose patterns route PutEvents to a
Python function (through the async journal) and to a queue, the target input forms, TestEventPattern,
AWS's errors for bad input, and delivery of everything acknowledged across SIGKILL."""

import json
import threading
import time

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from eventplane import SERVER_ARGS, SERVER_ENV, create_recorder, lam, rec_dir, records, sqs, srv, wait_until  # noqa: F401
from helpers import REGION, error_code, function_arn, unique_name

ACCOUNT_RE = r"\d{12}"


@pytest.fixture(scope="module")
def events(srv):
    return srv.client("events")


@pytest.fixture(scope="module")
def events_raw(srv):
    """Skips botocore's parameter checks, so over-limit input reaches the server."""
    return srv.client("events", validate=False)


def queue_arn_of(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def receive_all(sqs, url, want, timeout=20):
    got = []

    def enough():
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in r.get("Messages", []):
            got.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(got) >= want

    wait_until(enough, timeout=timeout, what=f"{want} messages")
    return got


def test_rules_route_events_to_a_function_and_a_queue(events, lam, sqs, rec_dir):
    fn = unique_name("eb-fn")
    create_recorder(lam, fn, rec_dir)
    url = sqs.create_queue(QueueName=unique_name("eb-q"))["QueueUrl"]
    bus = unique_name("orders")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    assert bus_arn.endswith(f":event-bus/{bus}")
    pattern = {"source": ["shop.orders"], "detail": {"total": [{"numeric": [">", 100]}]}}
    rule_arn = events.put_rule(Name="big-orders", EventBusName=bus, EventPattern=json.dumps(pattern))["RuleArn"]
    assert rule_arn == f"arn:aws:events:{REGION}:{rule_arn.split(':')[4]}:rule/{bus}/big-orders"
    put = events.put_targets(Rule="big-orders", EventBusName=bus, Targets=[
        {"Id": "fn", "Arn": function_arn(fn)},
        {"Id": "q", "Arn": queue_arn_of(sqs, url)},
    ])
    assert put["FailedEntryCount"] == 0 and put["FailedEntries"] == []
    described = events.describe_rule(Name="big-orders", EventBusName=bus)
    assert described["State"] == "ENABLED" and json.loads(described["EventPattern"]) == pattern
    assert {t["Id"] for t in events.list_targets_by_rule(Rule="big-orders", EventBusName=bus)["Targets"]} == {"fn", "q"}

    resp = events.put_events(Entries=[
        {"EventBusName": bus, "Source": "shop.orders", "DetailType": "Order Placed",
         "Detail": json.dumps({"total": 250, "id": "o-1"}), "Resources": ["arn:aws:shop:order/o-1"]},
        {"EventBusName": bus, "Source": "shop.orders", "DetailType": "Order Placed",
         "Detail": json.dumps({"total": 5, "id": "o-2"})},
        {"EventBusName": bus, "Source": "shop.refunds", "DetailType": "Refund", "Detail": json.dumps({"total": 900})},
    ])
    assert resp["FailedEntryCount"] == 0 and all("EventId" in e for e in resp["Entries"])
    first_id = resp["Entries"][0]["EventId"]

    (body,) = receive_all(sqs, url, 1)
    event = json.loads(body)
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert event["version"] == "0" and event["id"] == first_id and event["region"] == REGION
    assert event["detail-type"] == "Order Placed" and event["detail"] == {"total": 250, "id": "o-1"}
    assert event["resources"] == ["arn:aws:shop:order/o-1"]
    assert time.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
    wait_until(lambda: records(rec_dir, fn), timeout=30, what="the function to run")
    assert [r["event"] for r in records(rec_dir, fn)] == [event]

    # A disabled rule delivers nothing; enabled again, it does.
    events.disable_rule(Name="big-orders", EventBusName=bus)
    assert events.describe_rule(Name="big-orders", EventBusName=bus)["State"] == "DISABLED"
    detail = json.dumps({"total": 300, "id": "o-3"})
    events.put_events(Entries=[{"EventBusName": bus, "Source": "shop.orders", "DetailType": "x", "Detail": detail}])
    events.enable_rule(Name="big-orders", EventBusName=bus)
    detail = json.dumps({"total": 400, "id": "o-4"})
    events.put_events(Entries=[{"EventBusName": bus, "Source": "shop.orders", "DetailType": "x", "Detail": detail}])
    (body,) = receive_all(sqs, url, 1)
    assert json.loads(body)["detail"]["id"] == "o-4"

    # A rule with targets is not deleted; without them it is, and its bus after it.
    with pytest.raises(ClientError) as e:
        events.delete_rule(Name="big-orders", EventBusName=bus)
    assert error_code(e.value) == "ValidationException"
    assert e.value.response["Error"]["Message"] == "Rule can't be deleted since it has targets."
    events.remove_targets(Rule="big-orders", EventBusName=bus, Ids=["fn", "q"])
    events.delete_rule(Name="big-orders", EventBusName=bus)
    assert events.list_rules(EventBusName=bus)["Rules"] == []
    events.delete_event_bus(Name=bus)
    assert bus not in [b["Name"] for b in events.list_event_buses()["EventBuses"]]


def test_target_inputs(events, sqs):
    url = sqs.create_queue(QueueName=unique_name("eb-in"))["QueueUrl"]
    arn = queue_arn_of(sqs, url)
    rule = unique_name("inputs")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [rule]}))
    events.put_targets(Rule=rule, Targets=[
        {"Id": "const", "Arn": arn, "Input": json.dumps({"constant": True})},
        {"Id": "path", "Arn": arn, "InputPath": "$.detail.instance"},
        {"Id": "json", "Arn": arn, "InputTransformer": {
            "InputPathsMap": {"instance": "$.detail.instance", "state": "$.detail.state"},
            "InputTemplate": '{"instance": "<instance>", "state": <state>, "rule": "<aws.events.rule-name>"}'}},
        {"Id": "text", "Arn": arn, "InputTransformer": {
            "InputPathsMap": {"instance": "$.detail.instance", "state": "$.detail.state"},
            "InputTemplate": '"<instance> is in state <state>"'}},
    ])
    events.put_events(Entries=[{"Source": rule, "DetailType": "t",
                                "Detail": json.dumps({"instance": "i-123", "state": "running"})}])
    bodies = sorted(receive_all(sqs, url, 4))
    assert bodies == sorted([
        '{"constant": true}',
        '"i-123"',
        '{"instance": "i-123", "state": "running", "rule": "%s"}' % rule,
        '"i-123 is in state running"',
    ])


def test_test_event_pattern(events):
    event = json.dumps({"id": "1", "account": "123456789012", "source": "aws.ec2", "time": "2026-01-01T00:00:00Z",
                        "region": REGION, "detail-type": "EC2 Instance State-change Notification",
                        "resources": [], "detail": {"state": "running", "ip": "10.0.0.7"}})
    cases = [
        ({"source": ["aws.ec2"]}, True),
        ({"detail": {"state": [{"anything-but": "running"}]}}, False),
        ({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}}, True),
        ({"$or": [{"source": ["x"]}, {"detail-type": [{"wildcard": "EC2 *"}]}]}, True),
    ]
    for pattern, expected in cases:
        assert events.test_event_pattern(EventPattern=json.dumps(pattern), Event=event)["Result"] is expected, pattern
    with pytest.raises(ClientError) as e:
        events.test_event_pattern(EventPattern='{"source": "aws.ec2"}', Event=event)
    assert error_code(e.value) == "InvalidEventPatternException"
    assert e.value.response["Error"]["Message"].startswith("Event pattern is not valid. Reason: ")


@pytest.mark.parametrize("kw, code, message", [
    ({"EventPattern": '{"a": [{"numeric": ["<", 1, ">", 5]}]}'}, "InvalidEventPatternException", None),
    ({"EventPattern": "not json"}, "InvalidEventPatternException", None),
    ({"ScheduleExpression": "rate(1 minutes)"}, "ValidationException", "Parameter ScheduleExpression is not valid."),
    ({"ScheduleExpression": "rate(5 minute)"}, "ValidationException", "Parameter ScheduleExpression is not valid."),
    ({"ScheduleExpression": "cron(0 10 * * * *)"}, "ValidationException", "Parameter ScheduleExpression is not valid."),
    ({"ScheduleExpression": "cron(0 10 * * ?)"}, "ValidationException", "Parameter ScheduleExpression is not valid."),
    ({}, "ValidationException", "Parameter(s) EventPattern or ScheduleExpression must be specified."),
    ({"ScheduleExpression": "rate(5 minutes)", "EventBusName": "nope"}, "ValidationException",
     "ScheduleExpression is supported only on the default event bus."),
    ({"EventPattern": '{"source": ["x"]}', "EventBusName": "nope"}, "ResourceNotFoundException",
     "Event bus nope does not exist."),
])
def test_bad_rules_are_refused_as_aws_does(events, kw, code, message):
    with pytest.raises(ClientError) as e:
        events.put_rule(Name=unique_name("bad"), **kw)
    assert error_code(e.value) == code and e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if message:
        assert e.value.response["Error"]["Message"] == message


def test_bad_targets_and_entries(events, events_raw):
    rule = unique_name("limits")
    events.put_rule(Name=rule, EventPattern='{"source": ["limits"]}')
    with pytest.raises(ClientError) as e:
        events.put_targets(Rule=rule, Targets=[{"Id": "x", "Arn": "arn:aws:sns:us-east-1:123456789012:topic"}])
    assert error_code(e.value) == "ValidationException"
    with pytest.raises(ClientError) as e:
        events.put_targets(Rule="no-such-rule", Targets=[{"Id": "x", "Arn": function_arn("f")}])
    assert error_code(e.value) == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "Rule no-such-rule does not exist on EventBus default."
    six = [{"Id": f"t{i}", "Arn": function_arn(f"f{i}")} for i in range(6)]
    with pytest.raises(ClientError) as e:
        events.put_targets(Rule=rule, Targets=six)
    assert error_code(e.value) == "LimitExceededException"
    assert events.list_targets_by_rule(Rule=rule)["Targets"] == []  # nothing half-written

    entry = {"Source": "limits", "DetailType": "t", "Detail": "{}"}
    with pytest.raises(ClientError) as e:
        events_raw.put_events(Entries=[entry] * 11)
    assert error_code(e.value) == "ValidationException"
    big = {"Source": "limits", "DetailType": "t", "Detail": json.dumps({"x": "a" * 200_000})}
    with pytest.raises(ClientError) as e:
        events_raw.put_events(Entries=[big, big])
    assert error_code(e.value) == "ValidationException"
    assert e.value.response["Error"]["Message"] == "Total size of the entries in the request is over the limit."

    resp = events_raw.put_events(Entries=[
        entry,
        {"Source": "limits", "DetailType": "t"},
        {"Source": "limits", "DetailType": "t", "Detail": "[1]"},
        {"Source": "limits", "DetailType": "t", "Detail": "{}", "EventBusName": "missing-bus"},
    ])
    assert resp["FailedEntryCount"] == 3
    ok, missing, not_object, no_bus = resp["Entries"]
    assert "EventId" in ok
    assert missing == {"ErrorCode": "InvalidArgument",
                       "ErrorMessage": "Parameter Detail is not valid. Reason: Detail is a required argument."}
    assert not_object["ErrorCode"] == "InvalidArgument"
    assert no_bus["ErrorCode"] == "ResourceNotFoundException"


def test_aws_cli(srv, events):
    rule = unique_name("cli")
    out = srv.aws("events", "put-rule", "--name", rule, "--schedule-expression", "cron(0 2 * * ? *)")
    assert out["RuleArn"].endswith(f":rule/{rule}")
    rules = srv.aws("events", "list-rules", "--name-prefix", rule)["Rules"]
    assert [(r["Name"], r["ScheduleExpression"], r["State"]) for r in rules] == [(rule, "cron(0 2 * * ? *)", "ENABLED")]
    assert srv.aws("events", "describe-event-bus")["Name"] == "default"
    srv.aws("events", "delete-rule", "--name", rule, parse=False)
    with pytest.raises(ClientError):
        events.describe_rule(Name=rule)


class Publisher(threading.Thread):
    """Puts events until the server dies; remembers the ones it acknowledged."""

    def __init__(self, srv, source, n):
        super().__init__(daemon=True)
        self.events = srv.client("events")
        self.source, self.n, self.acked = source, n, set()

    def run(self):
        for i in range(self.n):
            eid = f"ev-{i}"
            try:
                r = self.events.put_events(Entries=[{"Source": self.source, "DetailType": "t",
                                                     "Detail": json.dumps({"id": eid})}])
            except (BotoCoreError, ClientError):
                return
            if r["FailedEntryCount"] == 0:
                self.acked.add(eid)
            time.sleep(0.01)


@pytest.mark.timeout(240)
def test_nothing_acknowledged_is_lost_across_sigkill(server_factory, tmp_path):
    rec = tmp_path / "records"
    rec.mkdir()
    s = server_factory(extra_args=SERVER_ARGS, extra_env=SERVER_ENV)
    lam_c, sqs_c, events_c = s.lambda_client(), s.client("sqs"), s.client("events")
    fn = unique_name("eb-crash")
    create_recorder(lam_c, fn, rec)
    url = sqs_c.create_queue(QueueName=unique_name("eb-crash"))["QueueUrl"]
    source = unique_name("crash")
    events_c.put_rule(Name="crash", EventPattern=json.dumps({"source": [source]}))
    events_c.put_targets(Rule="crash", Targets=[{"Id": "fn", "Arn": function_arn(fn)},
                                                {"Id": "q", "Arn": queue_arn_of(sqs_c, url)}])
    publisher = Publisher(s, source, 80)
    publisher.start()
    wait_until(lambda: len(publisher.acked) >= 30, timeout=60, interval=0.02, what="30 acknowledged events")
    s._kill()
    publisher.join(timeout=30)
    acked = set(publisher.acked)

    s.start()
    sqs_c = s.client("sqs")
    queued = set()

    def all_queued():
        r = sqs_c.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        queued.update(json.loads(m["Body"])["detail"]["id"] for m in r.get("Messages", []))
        return acked <= queued

    wait_until(all_queued, timeout=60, what=f"all {len(acked)} acknowledged events in the queue")
    wait_until(lambda: acked <= {r["event"]["detail"]["id"] for r in records(rec, fn)}, timeout=60,
               what=f"all {len(acked)} acknowledged events to reach the function")


@pytest.mark.timeout(150)
def test_a_rate_rule_fires_the_scheduled_event(events, sqs):
    """A real rate(1 minute) firing: the first comes one minute after the rule's creation (rates are
    anchored there), carrying AWS's Scheduled Event with the rule's ARN as its resource."""
    url = sqs.create_queue(QueueName=unique_name("eb-tick"))["QueueUrl"]
    rule = unique_name("tick")
    created = time.time()
    rule_arn = events.put_rule(Name=rule, ScheduleExpression="rate(1 minute)")["RuleArn"]
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn_of(sqs, url)}])
    (body,) = receive_all(sqs, url, 1, timeout=75)
    fired = time.time()
    event = json.loads(body)
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [rule_arn] and event["detail"] == {} and event["version"] == "0"
    # Not before the minute is up.
    assert fired - created >= 59, fired - created
    events.remove_targets(Rule=rule, Ids=["q"])
    events.delete_rule(Name=rule)
