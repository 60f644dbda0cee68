"""Aliases: CreateAlias/GetAlias/ListAliases/UpdateAlias/DeleteAlias, invoking through an alias (with
weighted routing), and the rules that protect versions an alias points at."""

import pytest
from botocore.exceptions import ClientError

from helpers import create_function, error_code, function_arn, invoke, python_zip, unique_name, wait_updated


def _two_versions(lam, name):
    """A function with versions 1 and 2 that tell themselves apart by an environment variable."""
    create_function(lam, name, python_zip(), Environment={"Variables": {"PROBE_WHICH": "one"}})
    v1 = lam.publish_version(FunctionName=name)["Version"]
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"PROBE_WHICH": "two"}})
    wait_updated(lam, name)
    v2 = lam.publish_version(FunctionName=name)["Version"]
    assert (v1, v2) == ("1", "2")
    return v1, v2


def test_alias_lifecycle_and_invoke_through_it(lam, server):
    name = unique_name("alias")
    v1, v2 = _two_versions(lam, name)

    created = lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v1, Description="prod")
    assert created["AliasArn"] == function_arn(name, "live")
    assert created["FunctionVersion"] == "1"
    assert created["RevisionId"]

    inv = invoke(lam, name, {}, server=server, Qualifier="live")
    assert inv.executed_version == "1"
    assert inv.payload["user_env"]["PROBE_WHICH"] == "one"
    assert inv.payload["context"]["invoked_function_arn"] == function_arn(name, "live")
    assert inv.payload["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
    # The alias-qualified name form works too.
    assert invoke(lam, f"{name}:live", {}, server=server).executed_version == "1"

    updated = lam.update_alias(FunctionName=name, Name="live", FunctionVersion=v2, RevisionId=created["RevisionId"])
    assert updated["FunctionVersion"] == "2"
    assert updated["RevisionId"] != created["RevisionId"]
    inv = invoke(lam, name, {}, server=server, Qualifier="live")
    assert (inv.executed_version, inv.payload["user_env"]["PROBE_WHICH"]) == ("2", "two")

    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=name, Name="live", FunctionVersion=v1, RevisionId=created["RevisionId"])
    assert error_code(e.value) == "PreconditionFailedException"

    assert lam.get_alias(FunctionName=name, Name="live")["Description"] == "prod"
    assert lam.get_function_configuration(FunctionName=name, Qualifier="live")["Version"] == "2"
    lam.create_alias(FunctionName=name, Name="beta", FunctionVersion="$LATEST")
    names = [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]]
    assert names == ["beta", "live"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name, FunctionVersion="2")["Aliases"]] == ["live"]
    paged = lam.list_aliases(FunctionName=name, MaxItems=1)
    assert [a["Name"] for a in paged["Aliases"]] == ["beta"] and paged["NextMarker"] == "beta"

    lam.delete_alias(FunctionName=name, Name="beta")
    with pytest.raises(ClientError) as e:
        lam.get_alias(FunctionName=name, Name="beta")
    assert error_code(e.value) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Qualifier="beta", Payload=b"{}")
    assert error_code(e.value) == "ResourceNotFoundException"


def test_alias_errors(lam):
    name = unique_name("alias-bad")
    _two_versions(lam, name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion="2")
    assert error_code(e.value) == "ResourceConflictException"
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName=name, Name="other", FunctionVersion="9")
    assert error_code(e.value) == "ResourceNotFoundException"
    # A version an alias points at cannot be deleted.
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=name, Qualifier="1")
    assert error_code(e.value) == "ResourceConflictException"
    assert lam.get_function(FunctionName=name, Qualifier="1")["Configuration"]["Version"] == "1"
    # Deleting the function takes its aliases along.
    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as e:
        lam.get_alias(FunctionName=name, Name="live")
    assert error_code(e.value) == "ResourceNotFoundException"


def test_weighted_routing_splits_traffic(lam, server):
    name = unique_name("alias-split")
    v1, v2 = _two_versions(lam, name)
    alias = lam.create_alias(FunctionName=name, Name="canary", FunctionVersion=v1,
                             RoutingConfig={"AdditionalVersionWeights": {v2: 0.5}})
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    seen = {invoke(lam, name, {}, server=server, Qualifier="canary").executed_version for _ in range(40)}
    # With 40 draws at 50 %, missing either version has probability 2 * 0.5**40.
    assert seen == {"1", "2"}
    lam.update_alias(FunctionName=name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {}})
    assert "RoutingConfig" not in lam.get_alias(FunctionName=name, Name="canary")
    assert {invoke(lam, name, {}, server=server, Qualifier="canary").executed_version for _ in range(5)} == {"1"}
