#!/usr/bin/env python3
"""Warm invoke latency as Python's plain `http.client` sees it.

`http.client.HTTPConnection.request()` writes the request head and the body with two separate
`send()` calls and does not set TCP_NODELAY. Against a server that delays its ACK, Nagle's algorithm
then holds the body back until that ACK: a ~40 ms stall (DESIGN.md, "Measured pitfall"). boto3 does
not hit this (urllib3 sets TCP_NODELAY), but many hand-written clients do, so this script measures
exactly that client: one keep-alive connection, requests signed with botocore's SigV4Auth, and the
number of requests slower than 20 ms, which on loopback means a stall.

`nimbus-bench` runs it (against its provided echo function) and puts the numbers in its report;
it also runs alone against any Nimbus:

    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \\
        python3 http_client_latency.py --endpoint http://127.0.0.1:9001 --function NAME [--json]

`--nodelay` sets TCP_NODELAY on the client socket, to tell client-side stalls from server-side ones.
Exits 3 (with a message) when botocore is missing, so a caller can report a skip.
"""

import argparse
import http.client
import json
import os
import socket
import sys
import time
import urllib.parse

STALL_MS = 20.0


def percentile(sorted_values, p):
    """Nearest rank, as nimbus-bench computes it."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), -(-len(sorted_values) * p // 100)))
    return sorted_values[int(rank) - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="Nimbus base URL, e.g. http://127.0.0.1:9001")
    parser.add_argument("--function", required=True)
    parser.add_argument("--n", type=int, default=1000, help="measured invokes")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    parser.add_argument("--nodelay", action="store_true", help="set TCP_NODELAY on the client socket")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()

    try:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
    except ImportError as e:
        print("http_client_latency.py: botocore is not importable (%s); pip install botocore" % e, file=sys.stderr)
        return 3

    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        print("http_client_latency.py: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", file=sys.stderr)
        return 2
    auth = SigV4Auth(Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN")), "lambda", args.region)

    url = urllib.parse.urlsplit(args.endpoint)
    path = "/2015-03-31/functions/%s/invocations" % urllib.parse.quote(args.function, safe="")
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
    conn.connect()
    if args.nodelay:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    sign_us, latency_ms = [], []
    for i in range(args.warmup + args.n):
        body = json.dumps({"bench": "http.client", "i": i}).encode()
        started = time.perf_counter()
        request = AWSRequest(method="POST", url=args.endpoint.rstrip("/") + path, data=body,
                             headers={"Content-Type": "application/json"})
        auth.add_auth(request)
        signed = time.perf_counter()
        # request() sends the head and the body in two writes: the pattern under test.
        conn.request("POST", path, body=body, headers=dict(request.headers.items()))
        response = conn.getresponse()
        answer = response.read()
        done = time.perf_counter()
        if response.status != 200 or json.loads(answer) != json.loads(body):
            print("http_client_latency.py: invoke %d answered %d: %r" % (i, response.status, answer[:300]),
                  file=sys.stderr)
            return 1
        if i >= args.warmup:
            sign_us.append((signed - started) * 1e6)
            latency_ms.append((done - signed) * 1e3)
    conn.close()

    latency_ms.sort()
    sign_us.sort()
    result = {
        "client": "python http.client + botocore SigV4Auth",
        "python": sys.version.split()[0],
        "tcp_nodelay": bool(args.nodelay),
        "count": len(latency_ms),
        "round_trip_ms": {
            "p50": percentile(latency_ms, 50),
            "p90": percentile(latency_ms, 90),
            "p99": percentile(latency_ms, 99),
            "max": latency_ms[-1] if latency_ms else 0.0,
        },
        "sign_us_p50": percentile(sign_us, 50),
        "stalls_over_20ms": sum(1 for v in latency_ms if v > STALL_MS),
    }
    if args.json:
        print(json.dumps(result))
    else:
        rt = result["round_trip_ms"]
        print("%s (TCP_NODELAY %s), %d invokes of %s" % (
            result["client"], "on" if args.nodelay else "off", result["count"], args.function))
        print("  round trip  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms" % (
            rt["p50"], rt["p90"], rt["p99"], rt["max"]))
        print("  signing     p50 %.0f us (botocore, excluded from the round trip)" % result["sign_us_p50"])
        print("  stalls      %d requests over %.0f ms" % (result["stalls_over_20ms"], STALL_MS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
