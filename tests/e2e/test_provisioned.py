"""Provisioned concurrency: Put/Get/Delete/ListProvisionedConcurrencyConfig(s) keep environments of a
published version initialised ahead of invocations (IN_PROGRESS → READY), which then start warm with
AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency; the configs survive a restart."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from helpers import create_function, error_code, function_arn, invoke, python_zip, unique_name

READY_WAIT_S = 60


def _wait_ready(lam, name, qualifier, requested):
    deadline = time.monotonic() + READY_WAIT_S
    while True:
        cfg = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if cfg["Status"] == "READY":
            assert cfg["AllocatedProvisionedConcurrentExecutions"] == requested
            return cfg
        assert cfg["Status"] == "IN_PROGRESS"
        assert time.monotonic() < deadline, f"not READY after {READY_WAIT_S} s: {cfg}"
        time.sleep(0.2)


def test_provisioned_environments_are_ready_before_the_first_invoke(lam, server):
    name = unique_name("prov")
    create_function(lam, name, python_zip(), Timeout=30)
    version = lam.publish_version(FunctionName=name)["Version"]

    put = lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version,
                                                 ProvisionedConcurrentExecutions=2)
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] == "IN_PROGRESS"
    _wait_ready(lam, name, version, 2)

    # Two invocations at once both land on initialised environments: no cold start for either.
    def one(_):
        r = lam.invoke(FunctionName=name, Qualifier=version, Payload=b'{"sleep": 0.5}')
        headers = r["ResponseMetadata"]["HTTPHeaders"]
        return json.loads(r["Payload"].read()), "x-nimbus-init-duration-ms" in headers

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, range(2)))
    assert [cold for _, cold in results] == [False, False]
    assert len({body["env_id"] for body, _ in results}) == 2
    for body, _ in results:
        assert body["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
        server.watch_pid(body["pid"], body.get("pid_start"))

    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in listed] == [function_arn(name, version)]

    # $LATEST (on demand) is unaffected: its first invoke is a cold start with the on-demand type.
    latest = invoke(lam, name, {}, server=server)
    assert latest.payload["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"

    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    with pytest.raises(ClientError) as e:
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert error_code(e.value) == "ProvisionedConcurrencyConfigNotFoundException"


def test_provisioned_concurrency_rules(lam):
    name = unique_name("prov-bad")
    create_function(lam, name, python_zip())
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="$LATEST",
                                               ProvisionedConcurrentExecutions=1)
    assert error_code(e.value) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="7", ProvisionedConcurrentExecutions=1)
    assert error_code(e.value) == "ResourceNotFoundException"
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version,
                                               ProvisionedConcurrentExecutions=2)
    assert error_code(e.value) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert error_code(e.value) == "ProvisionedConcurrencyConfigNotFoundException"


def test_provisioned_concurrency_on_an_alias_survives_a_restart(server_factory):
    srv = server_factory()
    lam = srv.lambda_client()
    name = unique_name("prov-alias")
    create_function(lam, name, python_zip())
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    _wait_ready(lam, name, "live", 1)

    srv.restart()
    lam = srv.lambda_client()
    _wait_ready(lam, name, "live", 1)
    inv = invoke(lam, name, {}, server=srv, Qualifier="live")
    assert "x-nimbus-init-duration-ms" not in inv.headers
    assert inv.payload["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"


def test_a_network_tag_change_launches_provisioned_environments_again(lam, server):
    # The nimbus:network tag is read at launch; changing it retires every environment of the function,
    # and the provisioned ones are launched again (with the new setting), not dropped.
    name = unique_name("prov-net")
    create_function(lam, name, python_zip(), Timeout=30)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)
    _wait_ready(lam, name, version, 1)
    before = invoke(lam, name, {}, server=server, Qualifier=version)
    assert "x-nimbus-init-duration-ms" not in before.headers

    lam.tag_resource(Resource=function_arn(name), Tags={"nimbus:network": "none"})
    _wait_ready(lam, name, version, 1)
    after = invoke(lam, name, {}, server=server, Qualifier=version)
    assert after.payload["env_id"] != before.payload["env_id"], "the provisioned environment was replaced"
    assert "x-nimbus-init-duration-ms" not in after.headers, "its replacement was launched ahead of time"
    assert after.payload["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
