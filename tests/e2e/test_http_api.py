"""API Gateway HTTP APIs: the apigatewayv2 control plane (boto3 and the AWS CLI), and serving on Nimbus's
listener by Host (http.client setting Host as a browser resolving *.localhost would): route precedence,
stages and stage variables, payload formats 1.0 and 2.0 field by field, CORS preflight, the resource
policy API Gateway needs, and bad input with AWS's statuses and bodies."""

import http.client
import json
import re
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, create_function, error_code, function_arn, http_status, make_zip, unique_name

APP = r'''
import json

def handler(event, context):
    path = event.get("rawPath") or event.get("path") or ""
    if path.endswith("/raw"):
        return {"no": "status"}
    if path.endswith("/raise"):
        raise RuntimeError("boom")
    if event.get("version") == "1.0":
        return {"statusCode": 201, "headers": {"x-format": "1.0"}, "multiValueHeaders": {"x-multi": ["a", "b"]},
                "body": json.dumps(event)}
    return {"statusCode": 200, "headers": {"content-type": "application/json", "x-format": "2.0"},
            "cookies": ["c=1"], "body": json.dumps(event)}
'''


@pytest.fixture(scope="module")
def apigw(server):
    return server.client("apigatewayv2")


@pytest.fixture(scope="module")
def fn(lam):
    name = unique_name("api")
    create_function(lam, name, make_zip({"app.py": APP}), handler="app.handler")
    return name


def allow_apigateway(lam, name, api_id, source="*/*"):
    lam.add_permission(FunctionName=name, StatementId=f"apigw-{api_id}", Principal="apigateway.amazonaws.com",
                       Action="lambda:InvokeFunction",
                       SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{source}")


def call(server, api_id, method="GET", path="/", body=None, headers=None, host=None):
    port = urlsplit(server.url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body,
                     headers={"Host": host or f"{api_id}.execute-api.localhost:{port}", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def header(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def test_quick_create_and_lifecycle(apigw, lam, fn, server):
    created = apigw.create_api(Name="quick", ProtocolType="HTTP", Target=function_arn(fn))
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    api_id = created["ApiId"]
    assert re.fullmatch(r"[a-z0-9]{10}", api_id)
    port = urlsplit(server.url).port
    assert created["ApiEndpoint"] == f"http://{api_id}.execute-api.{REGION}.localhost:{port}"
    assert created["ProtocolType"] == "HTTP"
    assert created["RouteSelectionExpression"] == "$request.method $request.path"
    routes = apigw.get_routes(ApiId=api_id)["Items"]
    assert [r["RouteKey"] for r in routes] == ["$default"]
    integrations = apigw.get_integrations(ApiId=api_id)["Items"]
    assert routes[0]["Target"] == f"integrations/{integrations[0]['IntegrationId']}"
    assert integrations[0]["IntegrationType"] == "AWS_PROXY"
    assert integrations[0]["PayloadFormatVersion"] == "2.0"
    stage = apigw.get_stage(ApiId=api_id, StageName="$default")
    assert stage["AutoDeploy"] is True and stage["DeploymentId"]
    assert any(a["ApiId"] == api_id for a in apigw.get_apis()["Items"])

    # Without the resource-policy statement API Gateway cannot invoke: AWS's 500.
    status, _, body = call(server, api_id, path="/anything")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    allow_apigateway(lam, fn, api_id)
    status, headers, body = call(server, api_id, path="/anything?x=1")
    assert status == 200, body
    assert header(headers, "x-format") == ["2.0"]
    event = json.loads(body)
    assert event["routeKey"] == "$default"
    assert event["requestContext"]["stage"] == "$default"
    # Also served at <api-id>.execute-api.<region>.localhost.
    status, _, _ = call(server, api_id, path="/x", host=f"{api_id}.execute-api.{REGION}.localhost:{port}")
    assert status == 200

    updated = apigw.update_api(ApiId=api_id, Name="renamed")
    assert updated["Name"] == "renamed"
    apigw.delete_api(ApiId=api_id)
    with pytest.raises(ClientError) as e:
        apigw.get_api(ApiId=api_id)
    assert (error_code(e.value), http_status(e.value)) == ("NotFoundException", 404)
    status, _, body = call(server, api_id, path="/x")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})


def make_api(apigw, lam, fn, version="2.0", cors=None):
    kw = {"CorsConfiguration": cors} if cors else {}
    api_id = apigw.create_api(Name=unique_name("api"), ProtocolType="HTTP", **kw)["ApiId"]
    integration = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                           IntegrationUri=function_arn(fn), PayloadFormatVersion=version)
    target = f"integrations/{integration['IntegrationId']}"
    allow_apigateway(lam, fn, api_id)
    return api_id, target


def test_route_precedence(apigw, lam, fn, server):
    api_id, target = make_api(apigw, lam, fn)
    for key in ["GET /items/{id}", "GET /items/special", "ANY /items/{id}", "ANY /{proxy+}", "POST /items",
                "$default"]:
        route = apigw.create_route(ApiId=api_id, RouteKey=key, Target=target)
        assert route["RouteKey"] == key
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    cases = [
        ("GET", "/items/special", "GET /items/special", None),
        ("GET", "/items/7", "GET /items/{id}", {"id": "7"}),
        ("PUT", "/items/7", "ANY /items/{id}", {"id": "7"}),
        ("DELETE", "/a/b/c", "ANY /{proxy+}", {"proxy": "a/b/c"}),
        ("POST", "/items", "POST /items", None),
        ("GET", "/", "$default", None),
    ]
    for method, path, key, params in cases:
        status, _, body = call(server, api_id, method, path)
        assert status == 200, (method, path, body)
        event = json.loads(body)
        assert event["routeKey"] == key, (method, path)
        assert event.get("pathParameters") == params, (method, path)


def test_permission_scoped_to_a_route(apigw, lam, server):
    """A statement whose SourceArn names one route (its path template) lets API Gateway invoke for that
    route only, as the statements CDK and the console add."""
    name = unique_name("apiscoped")
    create_function(lam, name, make_zip({"app.py": APP}), handler="app.handler")
    api_id = apigw.create_api(Name=unique_name("api"), ProtocolType="HTTP")["ApiId"]
    integration = apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                           IntegrationUri=function_arn(name), PayloadFormatVersion="2.0")
    target = f"integrations/{integration['IntegrationId']}"
    apigw.create_route(ApiId=api_id, RouteKey="GET /items/{id}", Target=target)
    apigw.create_route(ApiId=api_id, RouteKey="GET /other", Target=target)
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    allow_apigateway(lam, name, api_id, source="*/*/items/{id}")
    assert call(server, api_id, path="/items/3")[0] == 200
    status, _, body = call(server, api_id, path="/other")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_named_stage_serves_its_deployment_with_variables(apigw, lam, fn, server):
    api_id, target = make_api(apigw, lam, fn)
    apigw.create_route(ApiId=api_id, RouteKey="GET /hello", Target=target)
    deployment = apigw.create_deployment(ApiId=api_id)["DeploymentId"]
    apigw.create_stage(ApiId=api_id, StageName="prod", DeploymentId=deployment, StageVariables={"env": "production"})
    status, _, body = call(server, api_id, path="/prod/hello")
    assert status == 200, body
    event = json.loads(body)
    assert event["rawPath"] == "/prod/hello"
    assert event["requestContext"]["stage"] == "prod"
    assert event["stageVariables"] == {"env": "production"}
    # A route added later is not served until deployed: the stage serves its last deployment.
    apigw.create_route(ApiId=api_id, RouteKey="GET /later", Target=target)
    assert call(server, api_id, path="/prod/later")[0] == 404
    deployment = apigw.create_deployment(ApiId=api_id, StageName="prod")["DeploymentId"]
    assert apigw.get_stage(ApiId=api_id, StageName="prod")["DeploymentId"] == deployment
    assert call(server, api_id, path="/prod/later")[0] == 200
    # No $default stage: a path outside a stage is not found.
    status, _, body = call(server, api_id, path="/hello")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})


def test_payload_2_0_event(apigw, lam, fn, server):
    api_id, target = make_api(apigw, lam, fn)
    apigw.create_route(ApiId=api_id, RouteKey="POST /items/{id}", Target=target)
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    status, headers, body = call(server, api_id, "POST", "/items/42?a=1&a=2",
                                 body=b'{"k": 1}', headers={"content-type": "application/json",
                                                            "cookie": "s=1; t=2", "user-agent": "test/1"})
    assert status == 200, body
    assert header(headers, "set-cookie") == ["c=1"]
    e = json.loads(body)
    assert e["version"] == "2.0"
    assert e["routeKey"] == "POST /items/{id}"
    assert e["rawPath"] == "/items/42"
    assert e["rawQueryString"] == "a=1&a=2"
    assert e["cookies"] == ["s=1", "t=2"]
    assert e["headers"]["content-type"] == "application/json"
    assert e["queryStringParameters"] == {"a": "1,2"}
    assert e["pathParameters"] == {"id": "42"}
    assert "stageVariables" not in e
    assert e["body"] == '{"k": 1}'
    assert e["isBase64Encoded"] is False
    ctx = e["requestContext"]
    assert ctx["accountId"] == ACCOUNT
    assert ctx["apiId"] == api_id
    assert ctx["domainName"] == f"{api_id}.execute-api.{REGION}.localhost"
    assert ctx["domainPrefix"] == api_id
    assert ctx["http"]["method"] == "POST"
    assert ctx["http"]["path"] == "/items/42"
    assert ctx["http"]["userAgent"] == "test/1"
    assert ctx["routeKey"] == "POST /items/{id}"
    assert ctx["stage"] == "$default"
    assert ctx["requestId"]


def test_payload_1_0_event(apigw, lam, fn, server):
    api_id, target = make_api(apigw, lam, fn, version="1.0")
    apigw.create_route(ApiId=api_id, RouteKey="GET /items/{id}", Target=target)
    apigw.create_route(ApiId=api_id, RouteKey="GET /raw", Target=target)
    apigw.create_stage(ApiId=api_id, StageName="dev", AutoDeploy=True, StageVariables={"v": "1"})
    status, headers, body = call(server, api_id, "GET", "/dev/items/9?q=x&q=y", headers={"x-h": "1"})
    assert status == 201, body
    assert header(headers, "x-format") == ["1.0"]
    assert header(headers, "x-multi") == ["a", "b"]
    e = json.loads(body)
    assert e["version"] == "1.0"
    assert e["resource"] == "/items/{id}"
    assert e["path"] == "/dev/items/9"
    assert e["httpMethod"] == "GET"
    assert e["headers"]["x-h"] == "1"
    assert e["multiValueHeaders"]["x-h"] == ["1"]
    assert e["queryStringParameters"] == {"q": "y"}
    assert e["multiValueQueryStringParameters"] == {"q": ["x", "y"]}
    assert e["pathParameters"] == {"id": "9"}
    assert e["stageVariables"] == {"v": "1"}
    assert e["body"] is None
    assert e["isBase64Encoded"] is False
    ctx = e["requestContext"]
    assert ctx["resourcePath"] == "/items/{id}"
    assert ctx["httpMethod"] == "GET"
    assert ctx["stage"] == "dev"
    assert ctx["apiId"] == api_id
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    # 1.0 requires statusCode: anything else is AWS's 500.
    status, _, body = call(server, api_id, path="/dev/raw")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_cors_preflight(apigw, lam, fn, server):
    cors = {"AllowOrigins": ["https://app.example.com"], "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["content-type"], "MaxAge": 300}
    api_id, target = make_api(apigw, lam, fn, cors=cors)
    assert apigw.get_api(ApiId=api_id)["CorsConfiguration"] == cors
    apigw.create_route(ApiId=api_id, RouteKey="GET /c", Target=target)
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    status, headers, _ = call(server, api_id, "OPTIONS", "/c", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
    assert status == 204
    assert header(headers, "access-control-allow-origin") == ["https://app.example.com"]
    assert header(headers, "access-control-allow-methods") == ["GET,POST"]
    assert header(headers, "access-control-max-age") == ["300"]
    status, headers, _ = call(server, api_id, "GET", "/c", headers={"Origin": "https://app.example.com"})
    assert status == 200
    assert header(headers, "access-control-allow-origin") == ["https://app.example.com"]


def test_bad_input(apigw, lam, fn, server):
    with pytest.raises(ClientError) as e:
        apigw.get_api(ApiId="nosuchapi1")
    assert (error_code(e.value), http_status(e.value)) == ("NotFoundException", 404)
    api_id, target = make_api(apigw, lam, fn)
    for key in ["GET items", "FETCH /x", "GET /a/", "GET /{proxy+}/x", "GET /a{b}"]:
        with pytest.raises(ClientError) as e:
            apigw.create_route(ApiId=api_id, RouteKey=key, Target=target)
        assert (error_code(e.value), http_status(e.value)) == ("BadRequestException", 400), key
        assert key in e.value.response["Error"]["Message"]
    apigw.create_route(ApiId=api_id, RouteKey="POST /upload", Target=target)
    with pytest.raises(ClientError) as e:
        apigw.create_route(ApiId=api_id, RouteKey="POST /upload", Target=target)
    assert (error_code(e.value), http_status(e.value)) == ("ConflictException", 409)
    with pytest.raises(ClientError) as e:
        apigw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=function_arn(fn),
                                 PayloadFormatVersion="3.0")
    assert error_code(e.value) == "BadRequestException"
    with pytest.raises(ClientError) as e:
        apigw.create_api(Name="x", ProtocolType="HTTP",
                         CorsConfiguration={"AllowOrigins": ["*"], "AllowCredentials": True})
    assert error_code(e.value) == "BadRequestException"
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    # Unknown routes and unknown APIs: 404 Not Found.
    status, _, body = call(server, api_id, "GET", "/nothing")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    status, _, body = call(server, "zzzzzzzzzz", "GET", "/")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    # A declared length over the 10 MB payload quota is refused before the body is read (read the
    # answer first: a client writing on into the closed connection would lose it).
    port = urlsplit(server.url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.putrequest("POST", "/upload", skip_host=True)
    conn.putheader("Host", f"{api_id}.execute-api.localhost:{port}")
    conn.putheader("Content-Length", str(10 * 1024 * 1024 + 1))
    conn.endheaders()
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())) == (413, {"message": "Request Entity Too Large"})
    conn.close()
    # Within the HTTP API quota but over Lambda's 6 MB invocation payload.
    status, _, body = call(server, api_id, "POST", "/upload", body=b"x" * (7 * 1024 * 1024),
                           headers={"content-type": "text/plain"})
    assert (status, json.loads(body)) == (413, {"message": "Request Entity Too Large"})
    # A function error is AWS's 500; the server keeps serving.
    apigw.create_route(ApiId=api_id, RouteKey="GET /raise", Target=target)
    status, _, body = call(server, api_id, "GET", "/raise")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    assert call(server, api_id, "POST", "/upload", body=b"{}")[0] == 200


def test_aws_cli_control_plane(server, lam, fn):
    api = server.aws("apigatewayv2", "create-api", "--name", "cli", "--protocol-type", "HTTP")
    api_id = api["ApiId"]
    integ = server.aws("apigatewayv2", "create-integration", "--api-id", api_id, "--integration-type",
                       "AWS_PROXY", "--integration-uri", function_arn(fn), "--payload-format-version", "2.0")
    route = server.aws("apigatewayv2", "create-route", "--api-id", api_id, "--route-key", "GET /cli",
                       "--target", f"integrations/{integ['IntegrationId']}")
    assert route["RouteKey"] == "GET /cli"
    stage = server.aws("apigatewayv2", "create-stage", "--api-id", api_id, "--stage-name", "$default",
                       "--auto-deploy")
    assert stage["AutoDeploy"] is True
    got = server.aws("apigatewayv2", "get-route", "--api-id", api_id, "--route-id", route["RouteId"])
    assert got["Target"] == f"integrations/{integ['IntegrationId']}"
    server.aws("apigatewayv2", "delete-route", "--api-id", api_id, "--route-id", route["RouteId"])
    assert server.aws("apigatewayv2", "get-routes", "--api-id", api_id)["Items"] == []
    server.aws("apigatewayv2", "delete-api", "--api-id", api_id)


def test_example_deploys(server):
    """examples/http-api: deploy.sh (the AWS CLI) and the three functions, called as its README shows."""
    import os
    import subprocess
    from pathlib import Path

    from helpers import venv_tool

    script = Path(__file__).resolve().parents[2] / "examples" / "http-api" / "deploy.sh"
    env = server.cli_env()
    env["PATH"] = f"{Path(venv_tool('aws')).parent}{os.pathsep}{env.get('PATH', os.defpath)}"
    proc = subprocess.run([str(script), server.url], capture_output=True, text=True, env=env, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    endpoint = proc.stdout.strip()
    m = re.fullmatch(r"http://([a-z0-9]{10})\.execute-api\.us-east-1\.localhost:(\d+)", endpoint)
    assert m, endpoint
    api_id = m.group(1)
    status, _, body = call(server, api_id, "POST", "/items", body=b'{"name": "apple"}')
    assert status == 201, body
    item = json.loads(body)
    assert item["name"] == "apple"
    # The item is stored as a log line of create_item, a few milliseconds after it returned.
    import time
    deadline = time.monotonic() + 30
    while True:
        status, _, body = call(server, api_id, "GET", f"/items/{item['id']}")
        if status != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (status, json.loads(body)) == (200, item)
    status, _, body = call(server, api_id, "GET", "/items")
    assert status == 200 and item in json.loads(body)["items"]
    status, _, body = call(server, api_id, "GET", "/items/nothere")
    assert status == 404
    status, _, body = call(server, api_id, "POST", "/items", body=b"not json")
    assert status == 400


def test_aws_iam_route(apigw, lam, fn, server):
    """An AWS_IAM route takes requests signed for execute-api by a caller allowed execute-api:Invoke."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    api_id, target = make_api(apigw, lam, fn)
    route = apigw.create_route(ApiId=api_id, RouteKey="GET /private", Target=target, AuthorizationType="AWS_IAM")
    assert route["AuthorizationType"] == "AWS_IAM"
    apigw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    port = urlsplit(server.url).port
    host = f"{api_id}.execute-api.localhost:{port}"

    def signed(service="execute-api", secret=None):
        req = AWSRequest(method="GET", url=f"http://{host}/private", headers={"Host": host})
        SigV4Auth(Credentials(server.key, secret or server.secret), service, REGION).add_auth(req)
        return dict(req.headers.items())

    status, _, body = call(server, api_id, path="/private")
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    status, _, body = call(server, api_id, path="/private", headers=signed(secret="wrong"))
    assert status == 403 and "signature" in json.loads(body)["message"].lower()
    status, _, body = call(server, api_id, path="/private", headers=signed(service="lambda"))
    assert status == 403
    status, _, body = call(server, api_id, path="/private", headers=signed())
    assert status == 200, body
    iam = json.loads(body)["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == server.key
    assert iam["accountId"] == ACCOUNT
