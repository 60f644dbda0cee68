"""Function URLs: the config API (boto3, the AWS CLI), and serving on Nimbus's listener by Host, with
curl and http.client setting Host as a browser resolving *.localhost would: payload 2.0 events, AWS's
response mapping, CORS, AuthType NONE (resource policy) and AWS_IAM (SigV4), and bad input."""

import http.client
import json
import re
import subprocess
import time
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, create_function, error_code, function_arn, http_status, make_zip, unique_name

APP = r'''
import base64, json, time

def handler(event, context):
    path = event.get("rawPath", "")
    if path == "/echo":
        return {"statusCode": 201, "headers": {"content-type": "application/json", "x-custom": "yes"},
                "cookies": ["a=1; Path=/", "b=2"], "body": json.dumps(event)}
    if path == "/plain":
        return {"hello": "world"}
    if path == "/list":
        return [1, 2, 3]
    if path == "/binary":
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(b"\x00\x01\x02").decode(), "isBase64Encoded": True}
    if path == "/raise":
        raise RuntimeError("boom")
    if path == "/bad-status":
        return {"statusCode": "two hundred", "body": "x"}
    if path == "/bad-headers":
        return {"statusCode": 200, "headers": ["x"], "body": "x"}
    if path == "/sleep":
        time.sleep(30)
    if path == "/cors":
        return {"statusCode": 200, "headers": {"access-control-allow-origin": "https://wrong.example"}, "body": "c"}
    return {"statusCode": 200, "body": "ok"}
'''

URL_RE = re.compile(r"^http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:(\d+)/$")


def url_zip() -> bytes:
    return make_zip({"app.py": APP})


def make_url_function(lam, auth="NONE", public=True, **url_kw):
    name = unique_name("url")
    create_function(lam, name, url_zip(), handler="app.handler")
    config = lam.create_function_url_config(FunctionName=name, AuthType=auth, **url_kw)
    if public:
        allow_public(lam, name)
    return name, config


def allow_public(lam, name, qualifier=None, invoke_function=True):
    q = {"Qualifier": qualifier} if qualifier else {}
    lam.add_permission(FunctionName=name, StatementId="FunctionURLAllowPublicAccess", Principal="*",
                       Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE", **q)
    if invoke_function:
        lam.add_permission(FunctionName=name, StatementId="FunctionURLInvokeAllowPublicAccess", Principal="*",
                           Action="lambda:InvokeFunction", InvokedViaFunctionUrl=True, **q)


def request(server, host, method="GET", path="/", body=None, headers=None):
    """One request to the server's listener with `Host: host`; returns (status, headers list, body)."""
    port = urlsplit(server.url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def host_of(config) -> str:
    return urlsplit(config["FunctionUrl"]).netloc


def header(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


# -- the config API ----------------------------------------------------------------------------------


def test_config_lifecycle(lam, server):
    name = unique_name("urlcfg")
    create_function(lam, name, url_zip(), handler="app.handler")
    created = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert http_status_of(created) == 201
    m = URL_RE.match(created["FunctionUrl"])
    assert m, created["FunctionUrl"]
    assert int(m.group(2)) == urlsplit(server.url).port
    assert created["FunctionArn"] == function_arn(name)
    assert created["AuthType"] == "NONE"
    assert created["InvokeMode"] == "BUFFERED"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", created["CreationTime"])
    assert "Cors" not in created

    got = lam.get_function_url_config(FunctionName=name)
    assert got["FunctionUrl"] == created["FunctionUrl"]
    assert got["LastModifiedTime"]

    cors = {"AllowOrigins": ["https://app.example.com"], "AllowMethods": ["GET", "POST"], "MaxAge": 300,
            "AllowHeaders": ["content-type"], "ExposeHeaders": ["x-custom"], "AllowCredentials": True}
    updated = lam.update_function_url_config(FunctionName=name, AuthType="AWS_IAM", Cors=cors)
    assert updated["AuthType"] == "AWS_IAM"
    assert updated["Cors"] == cors
    assert updated["FunctionUrl"] == created["FunctionUrl"]

    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert error_code(e.value) == "ResourceConflictException"
    assert "FunctionUrlConfig exists for this Lambda function" in str(e.value)

    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    on_alias = lam.create_function_url_config(FunctionName=name, Qualifier="live", AuthType="NONE",
                                              InvokeMode="RESPONSE_STREAM")
    assert on_alias["FunctionArn"] == function_arn(name, "live")
    assert on_alias["FunctionUrl"] != created["FunctionUrl"]
    listed = lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]
    assert sorted(c["FunctionArn"] for c in listed) == sorted([function_arn(name), function_arn(name, "live")])

    cli = server.aws("lambda", "get-function-url-config", "--function-name", name, "--qualifier", "live")
    assert cli["InvokeMode"] == "RESPONSE_STREAM"

    lam.delete_function_url_config(FunctionName=name, Qualifier="live")
    with pytest.raises(ClientError) as e:
        lam.get_function_url_config(FunctionName=name, Qualifier="live")
    assert error_code(e.value) == "ResourceNotFoundException"
    lam.delete_function_url_config(FunctionName=name)
    assert lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"] == []


def http_status_of(resp) -> int:
    return resp["ResponseMetadata"]["HTTPStatusCode"]


def test_config_bad_input(lam, lam_raw):
    name = unique_name("urlbad")
    create_function(lam, name, url_zip(), handler="app.handler")
    version = lam.publish_version(FunctionName=name)["Version"]
    cases = [
        (dict(Qualifier=version, AuthType="NONE"), "ValidationException"),
        (dict(Qualifier="$LATEST", AuthType="NONE"), "ValidationException"),
        (dict(AuthType="OPEN"), "ValidationException"),
        (dict(AuthType="NONE", InvokeMode="STREAMED"), "ValidationException"),
        (dict(AuthType="NONE", Cors={"MaxAge": 86401}), "ValidationException"),
        (dict(AuthType="NONE", Cors={"AllowMethods": ["FETCH"]}), "InvalidParameterValueException"),
        (dict(AuthType="NONE", Cors={"AllowOrigins": ["example.com"]}), "InvalidParameterValueException"),
        (dict(AuthType="NONE", Qualifier="nosuch"), "ResourceNotFoundException"),
    ]
    for params, code in cases:
        with pytest.raises(ClientError) as e:
            lam_raw.create_function_url_config(FunctionName=name, **params)
        assert error_code(e.value) == code, params
    with pytest.raises(ClientError) as e:
        lam.get_function_url_config(FunctionName=unique_name("missing"))
    assert error_code(e.value) == "ResourceNotFoundException"
    assert "Function not found" in str(e.value)


# -- serving -----------------------------------------------------------------------------------------


def test_payload_2_0_event(lam, server):
    name, config = make_url_function(lam)
    host = host_of(config)
    url_id = host.split(".")[0]
    status, headers, body = request(
        server, host, "POST", "/echo?b=2&a=1&a=3&sp=x%20y",
        body=b'{"in":"put"}',
        headers={"Content-Type": "application/json", "Cookie": "c1=v1; c2=v2", "User-Agent": "e2e/1.0",
                 "X-Multi": "one"})
    assert status == 201, body
    assert header(headers, "x-custom") == ["yes"]
    assert header(headers, "set-cookie") == ["a=1; Path=/", "b=2"]
    assert header(headers, "x-amzn-requestid")
    event = json.loads(body)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/echo"
    assert event["rawQueryString"] == "b=2&a=1&a=3&sp=x%20y"
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["queryStringParameters"] == {"a": "1,3", "b": "2", "sp": "x y"}
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["x-multi"] == "one"
    assert event["headers"]["host"] == host
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert event["headers"]["x-forwarded-proto"] == "http"
    assert event["headers"]["x-forwarded-port"] == str(urlsplit(server.url).port)
    assert "cookie" not in event["headers"]
    assert event["body"] == '{"in":"put"}'
    assert event["isBase64Encoded"] is False
    assert "pathParameters" not in event and "stageVariables" not in event
    ctx = event["requestContext"]
    assert ctx["accountId"] == "anonymous"
    assert ctx["apiId"] == url_id
    assert ctx["domainName"] == f"{url_id}.lambda-url.{REGION}.localhost"
    assert ctx["domainPrefix"] == url_id
    assert ctx["http"] == {"method": "POST", "path": "/echo", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                           "userAgent": "e2e/1.0"}
    assert ctx["requestId"] == header(headers, "x-amzn-requestid")[0]
    assert ctx["routeKey"] == "$default"
    assert ctx["stage"] == "$default"
    assert re.match(r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$", ctx["time"])
    assert abs(ctx["timeEpoch"] - time.time() * 1000) < 600_000
    assert "authorizer" not in ctx

    # A binary body arrives base64-encoded.
    status, _, body = request(server, host, "POST", "/echo", body=b"\x00\xff",
                              headers={"Content-Type": "application/octet-stream"})
    event = json.loads(body)
    assert event["isBase64Encoded"] is True and event["body"] == "AP8="
    assert "queryStringParameters" not in event and "cookies" not in event


def test_response_mapping(lam, server):
    name, config = make_url_function(lam)
    host = host_of(config)
    status, headers, body = request(server, host, path="/plain")
    assert (status, json.loads(body)) == (200, {"hello": "world"})
    assert header(headers, "content-type") == ["application/json"]
    status, _, body = request(server, host, path="/list")
    assert (status, json.loads(body)) == (200, [1, 2, 3])
    status, headers, body = request(server, host, path="/binary")
    assert (status, body) == (200, b"\x00\x01\x02")
    assert header(headers, "content-type") == ["application/octet-stream"]
    for path in ["/raise", "/bad-status", "/bad-headers"]:
        status, _, body = request(server, host, path=path)
        assert (status, body) == (502, b"Internal Server Error"), path
    # Nimbus keeps serving, through the URL and the API.
    status, _, body = request(server, host, path="/")
    assert (status, body) == (200, b"ok")
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name


def test_timeouts_and_throttles(lam, server):
    name, config = make_url_function(lam)
    host = host_of(config)
    lam.update_function_configuration(FunctionName=name, Timeout=1)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    status, _, body = request(server, host, path="/sleep")
    assert (status, body) == (502, b"Internal Server Error")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    status, headers, body = request(server, host)
    assert status == 429
    assert json.loads(body) == {"Message": "Rate Exceeded."}
    lam.delete_function_concurrency(FunctionName=name)
    assert request(server, host)[:3:2] == (200, b"ok")


def test_curl(lam, server):
    name, config = make_url_function(lam)
    port = urlsplit(server.url).port
    host = urlsplit(config["FunctionUrl"]).hostname
    out = subprocess.run(
        ["curl", "-sS", "--resolve", f"{host}:{port}:127.0.0.1", "-i", f"{config['FunctionUrl']}plain?x=1"],
        capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.startswith("HTTP/1.1 200")
    assert out.rstrip().endswith('{"hello": "world"}')


def test_permissions_are_required(lam, server):
    name, config = make_url_function(lam, public=False)
    host = host_of(config)
    status, _, body = request(server, host)
    assert status == 403
    assert json.loads(body)["Message"].startswith("Forbidden")
    # AWS's rule for URLs created since October 2025: InvokeFunctionUrl alone is not enough.
    allow_public(lam, name, invoke_function=False)
    assert request(server, host)[0] == 403
    lam.add_permission(FunctionName=name, StatementId="FunctionURLInvokeAllowPublicAccess", Principal="*",
                       Action="lambda:InvokeFunction", InvokedViaFunctionUrl=True)
    assert request(server, host)[:3:2] == (200, b"ok")
    lam.remove_permission(FunctionName=name, StatementId="FunctionURLAllowPublicAccess")
    assert request(server, host)[0] == 403


def test_alias_url(lam, server):
    name = unique_name("urlalias")
    create_function(lam, name, url_zip(), handler="app.handler")
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    config = lam.create_function_url_config(FunctionName=name, Qualifier="live", AuthType="NONE")
    # The function's own policy does not open the alias's URL.
    allow_public(lam, name)
    assert request(server, host_of(config))[0] == 403
    allow_public(lam, name, qualifier="live")
    assert request(server, host_of(config))[:3:2] == (200, b"ok")


def test_cors(lam, server):
    cors = {"AllowOrigins": ["https://app.example.com"], "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["content-type", "x-api-key"], "ExposeHeaders": ["x-custom"], "MaxAge": 600}
    name, config = make_url_function(lam, Cors=cors)
    host = host_of(config)
    # A browser's preflight: answered without invoking, even without the function's permission.
    status, headers, body = request(server, host, "OPTIONS", "/echo", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert status == 200 and body == b""
    assert header(headers, "access-control-allow-origin") == ["https://app.example.com"]
    assert header(headers, "access-control-allow-methods") == ["GET,POST"]
    assert header(headers, "access-control-allow-headers") == ["content-type,x-api-key"]
    assert header(headers, "access-control-max-age") == ["600"]
    status, headers, _ = request(server, host, "OPTIONS", "/echo", headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
    assert status == 200 and not header(headers, "access-control-allow-origin")

    status, headers, body = request(server, host, "GET", "/cors", headers={"Origin": "https://app.example.com"})
    assert (status, body) == (200, b"c")
    assert header(headers, "access-control-allow-origin") == ["https://app.example.com"]
    assert header(headers, "access-control-expose-headers") == ["x-custom"]


def test_bad_requests(lam, server):
    name, config = make_url_function(lam)
    host = host_of(config)
    port = urlsplit(server.url).port
    unknown = f"{'0' * 32}.lambda-url.{REGION}.localhost:{port}"
    for bad in [unknown, f"short.lambda-url.{REGION}.localhost:{port}", f"{'A' * 40}.lambda-url.{REGION}.localhost"]:
        status, _, body = request(server, bad)
        assert (status, body) == (403, b'{"Message":"Forbidden"}'), bad

    # A declared length over 6 MB is refused before the body is read: read the answer first, as a client
    # that keeps writing into the closed connection would lose it.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.putrequest("POST", "/", skip_host=True)
    conn.putheader("Host", host)
    conn.putheader("Content-Type", "text/plain")
    conn.putheader("Content-Length", str(6 * 1024 * 1024 + 1))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413
    assert "Request must be smaller than 6291456 bytes" in json.loads(resp.read())["Message"]
    conn.close()
    # An event that only grows past 6 MB once base64-encoded is refused the same way.
    status, _, _ = request(server, host, "POST", "/", body=b"\x00" * (5 * 1024 * 1024),
                           headers={"Content-Type": "application/octet-stream"})
    assert status == 413
    assert request(server, host)[:3:2] == (200, b"ok")


def _signed(server, config, method="GET", path="/echo", body=b"", key=None, secret=None):
    url = config["FunctionUrl"].rstrip("/") + path
    req = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key or server.key, secret or server.secret), "lambda", REGION).add_auth(req)
    return request(server, host_of(config), method, path, body=body or None, headers=dict(req.headers.items()))


def test_aws_iam(lam, server):
    name, config = make_url_function(lam, auth="AWS_IAM", public=False)
    status, _, body = request(server, host_of(config), path="/echo")
    assert (status, body) == (403, b'{"Message":"Forbidden"}')
    status, _, body = _signed(server, config, "POST", "/echo", b'{"k":1}')
    assert status == 201, body
    ctx = json.loads(body)["requestContext"]
    assert ctx["accountId"] == ACCOUNT
    iam = ctx["authorizer"]["iam"]
    assert iam["accessKey"] == server.key
    assert iam["accountId"] == ACCOUNT
    assert iam["userArn"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert set(iam) == {"accessKey", "accountId", "callerId", "cognitoIdentity", "principalOrgId", "userArn",
                        "userId"}
    status, _, _ = _signed(server, config, secret="wrong" * 8)
    assert status == 403


def test_url_id_survives_restart_and_public_base(server_factory):
    srv = server_factory(extra_args=("--public-url-base", "https://{id}.lambda-url.example.com"))
    lam = srv.lambda_client()
    name, config = make_url_function(lam)
    m = re.match(r"^https://([a-z0-9]{32})\.lambda-url\.example\.com/$", config["FunctionUrl"])
    assert m, config["FunctionUrl"]
    public_host = f"{m.group(1)}.lambda-url.example.com"
    status, _, body = request(srv, public_host, path="/echo")
    assert status == 201
    assert json.loads(body)["requestContext"]["domainName"] == public_host
    srv.restart()
    lam = srv.lambda_client()
    assert lam.get_function_url_config(FunctionName=name)["FunctionUrl"] == config["FunctionUrl"]
    assert request(srv, public_host)[0] == 200
