#!/usr/bin/env python3
"""Writes SigV4 golden vectors for nimbus-server's verifier.

Each vector is a request signed by botocore (the signer behind boto3 and the AWS CLI) with a fixed
key and a fixed clock, recorded exactly as it would arrive on the wire: method, raw path and query,
headers (including the Host header that urllib3 adds after signing) and body. The Rust tests in
crates/server/src/auth/sigv4.rs load the JSON this script writes and check that verify() accepts
each vector and rejects every tampered variant.

Most vectors come from real boto3 clients, captured at the `before-send` event so that the paths,
query strings and headers are the ones botocore's serializers really produce. A few use SigV4Auth
directly, for shapes no client call produces (a raw `$` in the path, UNSIGNED-PAYLOAD).

Run it from anywhere; it needs only boto3 and no network:

    python3 crates/server/tests/data/make_sigv4_vectors.py

The output is deterministic for a given botocore version, so a diff after a botocore upgrade shows
exactly what changed in the way it signs.
"""

import base64
import datetime
import json
import os
import sys
from unittest import mock
from urllib.parse import urlsplit

import boto3
import botocore
import botocore.auth
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ACCESS_KEY_ID = "AKIDNIMBUSEXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYNIMBUSKEY"
SESSION_ACCESS_KEY_ID = "ASIANIMBUSSESSION"
SESSION_SECRET_ACCESS_KEY = "tempSecret/+/tempSecretTempSecretTemp"
SESSION_TOKEN = "FwoGZXIvYXdzEJr//////////wEaDNimbusSessionToken+/=="
REGION = "us-east-1"
ENDPOINT = "http://127.0.0.1:9001"
SIGNING_TIME = datetime.datetime(2024, 1, 15, 12, 34, 56)
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigv4_vectors.json")


class Captured(Exception):
    """Raised from the before-send hook so that nothing goes out on the network."""

    def __init__(self, request):
        super().__init__("captured")
        self.request = request


def capture(event_name=None, request=None, **_kwargs):
    raise Captured(request)


def body_bytes(body):
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    # Streaming bodies (S3 uploads) are file-like objects; botocore rewinds them after signing.
    position = body.tell()
    data = body.read()
    body.seek(position)
    return data


def record(name, description, service, method, url, headers, body, session_token=None):
    """Turns a signed request into the wire form the server will see."""
    parts = urlsplit(url)
    path_and_query = parts.path or "/"
    if parts.query:
        path_and_query += "?" + parts.query
    wire_headers = []
    for key, value in headers.items():
        value = value.decode() if isinstance(value, bytes) else value
        # These two are never signed and vary per run and per machine (a random UUID; the OS and
        # feature flags), so they are pinned to keep the fixture stable.
        if key.lower() == "amz-sdk-invocation-id":
            value = "00000000-0000-4000-8000-000000000000"
        if key.lower() == "user-agent":
            value = f"Boto3/{boto3.__version__} Botocore/{botocore.__version__} (pinned)"
        wire_headers.append([key, value])
    # urllib3 adds the Host header when it sends the request; botocore signs the same value.
    if not any(k.lower() == "host" for k, _ in wire_headers):
        wire_headers.insert(0, ["Host", botocore.auth._host_from_url(url)])
    presigned = "X-Amz-Signature=" in (parts.query or "")
    return {
        "name": name,
        "description": description,
        "service": service,
        "region": REGION,
        "method": method,
        "path_and_query": path_and_query,
        "headers": wire_headers,
        "body_base64": base64.b64encode(body).decode("ascii"),
        "access_key_id": SESSION_ACCESS_KEY_ID if session_token else ACCESS_KEY_ID,
        "secret_access_key": SESSION_SECRET_ACCESS_KEY if session_token else SECRET_ACCESS_KEY,
        "session_token": session_token,
        "presigned": presigned,
    }


def client(service, session_token=None, **config):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=ENDPOINT,
        aws_access_key_id=SESSION_ACCESS_KEY_ID if session_token else ACCESS_KEY_ID,
        aws_secret_access_key=SESSION_SECRET_ACCESS_KEY if session_token else SECRET_ACCESS_KEY,
        aws_session_token=session_token,
        config=Config(retries={"max_attempts": 1}, **config),
    )


def from_client(name, description, service_client, operation, session_token=None, **params):
    service_client.meta.events.register("before-send", capture)
    try:
        getattr(service_client, operation)(**params)
    except Captured as captured:
        request = captured.request
    else:
        sys.exit(f"{name}: the before-send hook did not fire")
    return record(
        name,
        description,
        service_client.meta.service_model.signing_name,
        request.method,
        request.url,
        request.headers,
        body_bytes(request.body),
        session_token,
    )


def from_signer(name, description, signer_class, service, method, url, headers, body):
    credentials = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    signer_class(credentials, service, REGION).add_auth(request)
    return record(name, description, service, method, request.url, request.headers, body)


def presigned(name, description, service_client, operation, expires, session_token=None, **params):
    url = service_client.generate_presigned_url(
        operation, Params=params, ExpiresIn=expires, HttpMethod=None
    )
    return record(
        name,
        description,
        service_client.meta.service_model.signing_name,
        "GET",
        url,
        {},
        b"",
        session_token,
    )


def vectors():
    lam = client("lambda")
    # S3 needs signature_version s3v4 spelled out: with a custom endpoint botocore otherwise presigns
    # with the legacy SigV2 query form. The checksum setting keeps botocore from switching a plain
    # upload to aws-chunked with a trailing checksum, which is a separate protocol.
    s3 = client(
        "s3",
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
    )
    return [
        from_client(
            "lambda_list_functions_query",
            "GET with a query string whose values botocore percent-encodes",
            lam,
            "list_functions",
            MaxItems=10,
            Marker="page/2+more=yes ~x",
        ),
        from_client(
            "lambda_invoke_json",
            "POST with a JSON body",
            lam,
            "invoke",
            FunctionName="my-function",
            InvocationType="RequestResponse",
            Payload=b'{"hello": "world", "n": [1, 2, 3]}',
        ),
        from_client(
            "lambda_get_function_latest_query",
            "GET with Qualifier=$LATEST, which goes out as %24LATEST in the query",
            lam,
            "get_function",
            FunctionName="my-function",
            Qualifier="$LATEST",
        ),
        from_client(
            "lambda_invoke_qualified_path",
            "function name with :$LATEST, percent-encoded in the path as %3A%24LATEST",
            lam,
            "invoke",
            FunctionName="my-function:$LATEST",
            Payload=b"{}",
        ),
        from_client(
            "lambda_invoke_arn_path",
            "full function ARN as the name, with every colon percent-encoded in the path",
            lam,
            "invoke",
            FunctionName="arn:aws:lambda:us-east-1:000000000000:function:f",
            Payload=b'{"k":"v"}',
        ),
        from_client(
            "lambda_space_unicode_path",
            "function name with a space and non-ASCII letters, UTF-8 percent-encoded in the path",
            lam,
            "get_function",
            FunctionName="my func \u00fc\u00df\u6f22",
        ),
        from_client(
            "lambda_session_token",
            "temporary credentials: X-Amz-Security-Token is sent and signed",
            client("lambda", session_token=SESSION_TOKEN),
            "list_functions",
            session_token=SESSION_TOKEN,
        ),
        from_signer(
            "lambda_raw_dollar_path",
            "path sent with a raw $ and : (not percent-encoded), signed by SigV4Auth directly",
            SigV4Auth,
            "lambda",
            "GET",
            ENDPOINT + "/2015-03-31/functions/my-function:$LATEST/configuration",
            {},
            b"",
        ),
        from_signer(
            "lambda_unsigned_payload",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD, so the body is not covered by the signature",
            SigV4Auth,
            "lambda",
            "POST",
            ENDPOINT + "/2015-03-31/functions/f/invocations",
            {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-Type": "application/json"},
            b'{"unsigned": true}',
        ),
        from_client(
            "s3_put_object",
            "S3 PUT: service s3, single encoding, no path normalization, x-amz-content-sha256",
            s3,
            "put_object",
            Bucket="bucket",
            Key="dir/a b+c%d/./e.txt",
            Body=b"hello object\n",
            ContentType="text/plain",
        ),
        from_signer(
            "s3_double_slash_path",
            "S3 key with // and ./ that must not be normalized away",
            S3SigV4Auth,
            "s3",
            "GET",
            ENDPOINT + "/bucket/a//b/./c",
            {},
            b"",
        ),
        presigned(
            "lambda_presigned_get_function",
            "presigned URL (query auth) for a Lambda GET",
            lam,
            "get_function",
            300,
            FunctionName="my-function",
            Qualifier="$LATEST",
        ),
        presigned(
            "s3_presigned_get_object_session",
            "presigned S3 GET with a session token in X-Amz-Security-Token",
            client(
                "s3",
                session_token=SESSION_TOKEN,
                signature_version="s3v4",
                s3={"addressing_style": "path"},
            ),
            "get_object",
            3600,
            session_token=SESSION_TOKEN,
            Bucket="bucket",
            Key="photos/cat 1.jpg",
        ),
    ]


def main():
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=SIGNING_TIME):
        generated = vectors()
    document = {
        "comment": "Generated by make_sigv4_vectors.py; do not edit by hand.",
        "botocore_version": botocore.__version__,
        "signing_time": SIGNING_TIME.strftime("%Y%m%dT%H%M%SZ"),
        "vectors": generated,
    }
    with open(OUTPUT, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2, ensure_ascii=False)
        out.write("\n")
    print(f"wrote {len(generated)} vectors to {OUTPUT}")


if __name__ == "__main__":
    main()
