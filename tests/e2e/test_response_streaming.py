"""Response streaming: a Node function using awslambda.streamifyResponse, read through boto3's
invoke_with_response_stream (the event-stream framing botocore parses) and through a RESPONSE_STREAM
function URL. The function writes its first bytes, then waits for a queue message that the test sends
only after it has read those bytes: so the bytes provably reached the client before the function
finished. (The server runs with --auth none so that the function can long-poll SQS without an SDK.)"""

import http.client
import json
from urllib.parse import urlsplit

import pytest

from helpers import create_function, make_zip, unique_name

APP = r'''
const http = require('node:http');

function sqs(target, body) {
  const endpoint = new URL(process.env.AWS_ENDPOINT_URL);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname: endpoint.hostname, port: endpoint.port, path: '/', method: 'POST',
      headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': `AmazonSQS.${target}` } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString() || '{}')));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function waitForGo() {
  for (;;) {
    const out = await sqs('ReceiveMessage', { QueueUrl: process.env.QUEUE_URL, WaitTimeSeconds: 5 });
    if (out.Messages && out.Messages.length) return out.Messages[0].Body;
  }
}

exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  if (event.rawPath !== undefined) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201, headers: { 'content-type': 'text/plain', 'x-streamed': 'yes' }, cookies: ['s=1', 't=2'],
    });
  }
  responseStream.write('first\n');
  const go = await waitForGo();
  if (go === 'fail') throw new TypeError('late failure');
  responseStream.write(`second ${go}\n`);
  responseStream.end();
});

exports.plain = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType('text/csv');
  responseStream.write('a,b\n');
  responseStream.end('1,2\n');
});
'''


@pytest.fixture(scope="module")
def streaming(tmp_path_factory):
    from helpers import NimbusServer

    srv = NimbusServer(tmp_path_factory.mktemp("nimbus"), extra_args=("--auth", "none")).start()
    yield srv
    srv.teardown()


def make_function(srv, handler="index.handler"):
    lam = srv.lambda_client()
    sqs = srv.client("sqs")
    name = unique_name("stream")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    create_function(lam, name, make_zip({"index.js": APP}), runtime="nodejs20.x", handler=handler,
                    Timeout=60, Environment={"Variables": {"QUEUE_URL": queue}})
    return lam, sqs, name, queue


def test_invoke_with_response_stream(streaming):
    lam, sqs, name, queue = make_function(streaming)
    resp = lam.invoke_with_response_stream(FunctionName=name, Payload=b'{}', LogType="Tail")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    events = iter(resp["EventStream"])
    first = next(events)
    assert first == {"PayloadChunk": {"Payload": b"first\n"}}
    # Only now may the function go on.
    sqs.send_message(QueueUrl=queue, MessageBody="go")
    rest = list(events)
    chunks = b"".join(e["PayloadChunk"]["Payload"] for e in rest if "PayloadChunk" in e)
    assert chunks == b"second go\n"
    complete = rest[-1]["InvokeComplete"]
    assert "ErrorCode" not in complete
    assert "START RequestId" in __import__("base64").b64decode(complete["LogResult"]).decode()


def test_late_error_is_reported_in_invoke_complete(streaming):
    lam, sqs, name, queue = make_function(streaming)
    resp = lam.invoke_with_response_stream(FunctionName=name, Payload=b'{}')
    events = iter(resp["EventStream"])
    assert next(events) == {"PayloadChunk": {"Payload": b"first\n"}}
    sqs.send_message(QueueUrl=queue, MessageBody="fail")
    rest = list(events)
    complete = rest[-1]["InvokeComplete"]
    assert complete["ErrorCode"] == "TypeError"
    assert json.loads(complete["ErrorDetails"])["errorMessage"] == "late failure"


def test_buffered_invoke_of_a_streaming_function(streaming):
    lam, _, name, _ = make_function(streaming, handler="index.plain")
    out = lam.invoke(FunctionName=name, Payload=b"{}")
    assert out["Payload"].read() == b"a,b\n1,2\n"
    resp = lam.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    events = list(resp["EventStream"])
    assert b"".join(e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e) == b"a,b\n1,2\n"


def test_response_stream_url(streaming):
    lam, sqs, name, queue = make_function(streaming)
    config = lam.create_function_url_config(FunctionName=name, AuthType="NONE", InvokeMode="RESPONSE_STREAM")
    lam.add_permission(FunctionName=name, StatementId="url", Principal="*", Action="lambda:InvokeFunctionUrl",
                       FunctionUrlAuthType="NONE")
    lam.add_permission(FunctionName=name, StatementId="invoke", Principal="*", Action="lambda:InvokeFunction",
                       InvokedViaFunctionUrl=True)
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(streaming.url).port, timeout=60)
    conn.request("GET", "/", headers={"Host": urlsplit(config["FunctionUrl"]).netloc})
    resp = conn.getresponse()
    assert resp.status == 201
    assert resp.getheader("x-streamed") == "yes"
    assert resp.getheader("content-type") == "text/plain"
    assert [v for k, v in resp.getheaders() if k.lower() == "set-cookie"] == ["s=1", "t=2"]
    assert resp.readline() == b"first\n"
    sqs.send_message(QueueUrl=queue, MessageBody="now")
    assert resp.read() == b"second now\n"
    conn.close()

    # A stream without a prelude is a 200 with the content type the function declared.
    lam2, _, plain, _ = make_function(streaming, handler="index.plain")
    config = lam2.create_function_url_config(FunctionName=plain, AuthType="NONE", InvokeMode="RESPONSE_STREAM")
    lam2.add_permission(FunctionName=plain, StatementId="url", Principal="*", Action="lambda:InvokeFunctionUrl",
                        FunctionUrlAuthType="NONE")
    lam2.add_permission(FunctionName=plain, StatementId="invoke", Principal="*", Action="lambda:InvokeFunction",
                        InvokedViaFunctionUrl=True)
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(streaming.url).port, timeout=60)
    conn.request("GET", "/", headers={"Host": urlsplit(config["FunctionUrl"]).netloc})
    resp = conn.getresponse()
    assert (resp.status, resp.getheader("content-type"), resp.read()) == (200, "text/csv", b"a,b\n1,2\n")
    conn.close()
