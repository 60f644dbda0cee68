"""Concurrency controls as the Lambda API has them: reserved concurrency (Put/Get/DeleteFunctionConcurrency),
the account limit, and 429 TooManyRequestsException with AWS's Reason when an invoke is over a limit."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from helpers import create_function, error_code, http_status, invoke, python_zip, unique_name


def _throttle_reasons(lam, name, n, sleep):
    """Invokes `name` n times at once (each sleeping `sleep` s); returns (successes, throttle reasons)."""

    def one(_):
        try:
            r = lam.invoke(FunctionName=name, Payload=b'{"sleep": %s}' % str(sleep).encode())
            return ("ok", r["StatusCode"])
        except ClientError as e:
            assert http_status(e) == 429, e.response
            assert error_code(e) == "TooManyRequestsException"
            return ("throttled", e.response["Error"].get("Reason") or e.response.get("Reason"))

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    return [r for r in results if r[0] == "ok"], [r[1] for r in results if r[0] == "throttled"]


def test_put_get_delete_function_concurrency(lam):
    name = unique_name("conc-api")
    create_function(lam, name, python_zip())
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    before = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]

    assert lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=7)[
        "ReservedConcurrentExecutions"] == 7
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 7
    assert lam.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 7}
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == before - 7

    lam.delete_function_concurrency(FunctionName=name)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    assert "Concurrency" not in lam.get_function(FunctionName=name)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == before


def test_reservation_may_not_starve_the_unreserved_pool(lam):
    name = unique_name("conc-greedy")
    create_function(lam, name, python_zip())
    limit = lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"]
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=limit)
    assert error_code(e.value) == "InvalidParameterValueException"
    assert "below its minimum value of [100]" in e.value.response["Error"]["Message"]
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)


def test_concurrency_of_a_missing_function_is_not_found(lam):
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName=unique_name("conc-none"), ReservedConcurrentExecutions=1)
    assert error_code(e.value) == "ResourceNotFoundException"


def test_zero_reserved_concurrency_disables_the_function(lam, server):
    name = unique_name("conc-zero")
    create_function(lam, name, python_zip())
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert http_status(e.value) == 429
    assert error_code(e.value) == "TooManyRequestsException"
    assert e.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    lam.delete_function_concurrency(FunctionName=name)
    assert invoke(lam, name, {"n": 1}, server=server).payload["event"] == {"n": 1}


def test_reserved_concurrency_caps_simultaneous_invocations(lam):
    name = unique_name("conc-one")
    create_function(lam, name, python_zip(), Timeout=30)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    ok, throttled = _throttle_reasons(lam, name, 4, sleep=1.0)
    assert len(ok) >= 1
    assert len(throttled) >= 1
    assert set(throttled) == {"ReservedFunctionConcurrentInvocationLimitExceeded"}


def test_account_limit_throttles_with_its_reason(server_factory):
    srv = server_factory(extra_args=("--account-concurrency", "2"))
    lam = srv.lambda_client()
    name = unique_name("conc-acct")
    create_function(lam, name, python_zip(), Timeout=30)
    assert lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 2
    ok, throttled = _throttle_reasons(lam, name, 5, sleep=1.0)
    assert 1 <= len(ok) <= 2
    assert len(throttled) >= 3
    assert set(throttled) == {"ConcurrentInvocationLimitExceeded"}
    # Capacity comes back once the invocations finish.
    assert invoke(lam, name, {"after": True}, server=srv).payload["event"] == {"after": True}


def test_hundreds_of_concurrent_clients_never_exceed_the_limits(server):
    """A load test: 200 clients at once against a function reserved at 8. Every call is answered (an
    invocation or a 429 with the reserved reason), no more than 8 environments ever exist for it, and
    each environment ran one invocation at a time (its count of overlapping invocations stays 1)."""
    import boto3
    from botocore.config import Config

    from helpers import REGION

    clients = 200
    reserved = 8
    lam = boto3.client(
        "lambda", endpoint_url=server.url, region_name=REGION, aws_access_key_id=server.key,
        aws_secret_access_key=server.secret,
        config=Config(retries={"max_attempts": 1}, max_pool_connections=clients, read_timeout=120),
    )
    name = unique_name("conc-load")
    create_function(lam, name, python_zip(), Timeout=30)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)

    def one(i):
        try:
            r = lam.invoke(FunctionName=name, Payload=b'{"sleep": 0.3, "n": %d}' % i)
            import json
            return ("ok", json.loads(r["Payload"].read()))
        except ClientError as e:
            return ("throttled", (http_status(e), error_code(e), e.response.get("Reason")))

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(clients)))

    ok = [body for kind, body in results if kind == "ok"]
    throttled = [info for kind, info in results if kind == "throttled"]
    assert len(ok) + len(throttled) == clients
    assert ok, "some invocations must get through"
    assert set(throttled) <= {(429, "TooManyRequestsException", "ReservedFunctionConcurrentInvocationLimitExceeded")}
    environments = {body["env_id"] for body in ok}
    assert 1 <= len(environments) <= reserved
    # Per environment, the module-level counts it reported are distinct: it ran one invocation at a time.
    for env in environments:
        counts = [body["count"] for body in ok if body["env_id"] == env]
        assert len(counts) == len(set(counts))
    # The pool is consistent afterwards: the function still answers, from a warm environment.
    after = invoke(lam, name, {"after": True}, server=server).payload
    assert after["env_id"] in environments
