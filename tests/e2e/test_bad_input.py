"""Bad input: every case is an AWS-shaped error (code, HTTP status) and nothing is stored half-way.

Error codes, as AWS sends them (botocore raises ClientError with these codes):
- a value outside the API model's constraints (name pattern/length, an enum, a minimum) fails Lambda's
  request validation: 400 `ValidationException` ("1 validation error detected: Value 'x' at 'functionName'
  failed to satisfy constraint: ..."). ValidationException is not in botocore's Lambda model, so it arrives
  as a plain ClientError.
- a value the model allows but Lambda does not (python2.7, a corrupt zip, 4 KB of environment, ...):
  400 `InvalidParameterValueException`.
- the botocore model (1.44) now allows MemorySize up to 32768, Timeout up to 5400 and EphemeralStorage up
  to 32768 (larger limits of other Lambda features), so for the standard limits (10240/900/10240) AWS
  answers with a semantic check: we accept either of the two codes there, both 400. (Uncertain which.)

`lam_raw` skips botocore's client-side validation so these requests reach the server at all.
"""

import io
import json
import os
import zipfile

import pytest
from botocore.exceptions import ClientError

from helpers import (ACCOUNT, ROLE, create_function, error_code, function_arn, http_status, invoke, make_zip,
                     python_zip, read_function_source, unique_name)

RANGE_CODES = {"ValidationException", "InvalidParameterValueException"}


def expect_error(fn, codes, status):
    if isinstance(codes, str):
        codes = {codes}
    with pytest.raises(ClientError) as e:
        fn()
    err = e.value.response
    assert error_code(e.value) in codes, (error_code(e.value), err.get("Error"))
    assert http_status(e.value) == status, (http_status(e.value), err.get("Error"))
    assert err["ResponseMetadata"]["RequestId"], "error responses carry x-amzn-RequestId too"
    assert err["Error"].get("Message"), "error responses carry a message"
    return err


def function_names(client):
    names = []
    for page in client.get_paginator("list_functions").paginate():
        names.extend(f["FunctionName"] for f in page["Functions"])
    return names


def assert_not_stored(client, name):
    assert name not in function_names(client)
    if name:
        with pytest.raises(ClientError) as e:
            client.get_function(FunctionName=name)
        assert error_code(e.value) in ("ResourceNotFoundException", "ValidationException")


def create_raw(client, name, code=None, **kw):
    args = dict(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="probe.handler",
                Code={"ZipFile": code if code is not None else python_zip()})
    args.update(kw)
    return client.create_function(**args)


@pytest.mark.parametrize("name", ["bad name!", "x" * 141, "", "semi;colon", "dots.are.not.ok"])
def test_invalid_function_names(lam_raw, name):
    expect_error(lambda: create_raw(lam_raw, name), "ValidationException", 400)
    assert name not in function_names(lam_raw)


def test_invalid_name_in_path(lam_raw):
    expect_error(lambda: lam_raw.get_function(FunctionName="bad name!"), "ValidationException", 400)


def test_name_of_64_characters_is_the_longest_plain_name(lam_raw):
    ok = unique_name("n")
    ok = ok + "x" * (64 - len(ok))
    create_function(lam_raw, ok, python_zip(), wait=False)
    assert ok in function_names(lam_raw)
    too_long = "y" * 65
    expect_error(lambda: create_raw(lam_raw, too_long), RANGE_CODES, 400)
    assert too_long not in function_names(lam_raw)


def test_create_with_arn_as_name(lam_raw):
    name = unique_name("bad-arnname")
    cfg = create_raw(lam_raw, function_arn(name))
    assert cfg["FunctionName"] == name
    assert cfg["FunctionArn"] == function_arn(name)
    assert lam_raw.get_function(FunctionName=f"{ACCOUNT}:function:{name}")["Configuration"]["FunctionName"] == name


@pytest.mark.parametrize("memory", [127, 10241])
def test_memory_size_out_of_range(lam_raw, memory):
    name = unique_name("bad-mem")
    codes = "ValidationException" if memory < 128 else RANGE_CODES
    expect_error(lambda: create_raw(lam_raw, name, MemorySize=memory), codes, 400)
    assert_not_stored(lam_raw, name)


@pytest.mark.parametrize("timeout", [0, 901])
def test_timeout_out_of_range(lam_raw, timeout):
    name = unique_name("bad-timeout")
    codes = "ValidationException" if timeout < 1 else RANGE_CODES
    expect_error(lambda: create_raw(lam_raw, name, Timeout=timeout), codes, 400)
    assert_not_stored(lam_raw, name)


@pytest.mark.parametrize("size", [511, 10241])
def test_ephemeral_storage_out_of_range(lam_raw, size):
    name = unique_name("bad-tmp")
    codes = "ValidationException" if size < 512 else RANGE_CODES
    expect_error(lambda: create_raw(lam_raw, name, EphemeralStorage={"Size": size}), codes, 400)
    assert_not_stored(lam_raw, name)


def test_limits_checked_on_update_too(lam_raw):
    name = unique_name("bad-upd")
    create_function(lam_raw, name, python_zip(), MemorySize=256)
    expect_error(lambda: lam_raw.update_function_configuration(FunctionName=name, MemorySize=10241),
                 RANGE_CODES, 400)
    expect_error(lambda: lam_raw.update_function_configuration(FunctionName=name, Timeout=0),
                 "ValidationException", 400)
    got = lam_raw.get_function_configuration(FunctionName=name)
    assert got["MemorySize"] == 256 and got["Timeout"] == 3, "a rejected update changes nothing"


def test_unknown_runtime_cobol(lam_raw):
    name = unique_name("bad-rt")
    # Not in the API's Runtime enum: request validation.
    expect_error(lambda: create_raw(lam_raw, name, Runtime="cobol"), "ValidationException", 400)
    assert_not_stored(lam_raw, name)


def test_deprecated_runtime_python27(lam_raw):
    name = unique_name("bad-rt27")
    # In the enum but no longer supported for creating functions: "The runtime parameter of python2.7 is
    # no longer supported for creating or updating AWS Lambda functions. ..."
    err = expect_error(lambda: create_raw(lam_raw, name, Runtime="python2.7"), "InvalidParameterValueException", 400)
    assert "python2.7" in err["Error"]["Message"]
    assert_not_stored(lam_raw, name)


def test_environment_over_4kb(lam_raw):
    name = unique_name("bad-env")
    big = {"Variables": {"PROBE_A": "a" * 3000, "PROBE_B": "b" * 1200}}
    err = expect_error(lambda: create_raw(lam_raw, name, Environment=big), "InvalidParameterValueException", 400)
    # AWS: "Lambda was unable to configure your environment variables because the environment variables you
    # have provided exceeded the 4KB limit. String measured: {...}"
    assert "4KB" in err["Error"]["Message"], err["Error"]["Message"]
    assert_not_stored(lam_raw, name)

    # Well under the limit is fine, and an update past it is rejected without changing anything.
    create_function(lam_raw, name, python_zip(), Environment={"Variables": {"PROBE_A": "a" * 3000}})
    expect_error(lambda: lam_raw.update_function_configuration(FunctionName=name, Environment=big),
                 "InvalidParameterValueException", 400)
    got = lam_raw.get_function_configuration(FunctionName=name)
    assert got["Environment"]["Variables"] == {"PROBE_A": "a" * 3000}


def test_corrupt_zip(lam_raw):
    name = unique_name("bad-zip")
    err = expect_error(lambda: create_raw(lam_raw, name, code=b"PK\x03\x04 this is not really a zip" * 10),
                       "InvalidParameterValueException", 400)
    # AWS: "Could not unzip uploaded file. Please check your file, then try to upload again."
    assert "unzip" in err["Error"]["Message"].lower(), err["Error"]["Message"]
    assert_not_stored(lam_raw, name)


def test_corrupt_zip_on_update_keeps_old_code(lam_raw):
    name = unique_name("bad-zip-upd")
    good = python_zip()
    cfg = create_function(lam_raw, name, good)
    expect_error(lambda: lam_raw.update_function_code(FunctionName=name, ZipFile=b"not a zip at all"),
                 "InvalidParameterValueException", 400)
    assert lam_raw.get_function_configuration(FunctionName=name)["CodeSha256"] == cfg["CodeSha256"]


@pytest.mark.parametrize("entry", ["../evil.py", "sub/../../evil.py", "/abs/evil.py"])
def test_zip_entry_escaping_the_folder(lam_raw, entry):
    name = unique_name("bad-escape")
    code = make_zip({"probe.py": "def handler(e, c):\n    return 1\n", entry: "print('escaped')\n"})
    expect_error(lambda: create_raw(lam_raw, name, code=code), "InvalidParameterValueException", 400)
    assert_not_stored(lam_raw, name)


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../etc/passwd"])
def test_zip_symlink_escaping_the_folder(lam_raw, target):
    name = unique_name("bad-symlink")
    code = make_zip({"probe.py": "def handler(e, c):\n    return 1\n"}, symlinks={"link": target})
    expect_error(lambda: create_raw(lam_raw, name, code=code), "InvalidParameterValueException", 400)
    assert_not_stored(lam_raw, name)


def test_zip_symlink_inside_the_folder_is_fine(lam_raw, server):
    name = unique_name("ok-symlink")
    code = make_zip({"lib/real.py": "X = 1\n", "probe.py": read_function_source("python", "probe.py")},
                    symlinks={"alias.py": "lib/real.py"})
    create_function(lam_raw, name, code)
    inv = invoke(lam_raw, name, {}, server=server)
    assert inv.function_error is None, inv.raw
    assert "alias.py" in inv.payload["task_root_listing"]


def test_zip_of_deep_names_implying_too_many_directories(lam_raw):
    # Found reviewing the unzip fuzz target: 70 entries whose 4 KB names ("x0/d/d/.../f") imply 2,041
    # directories each. The zip is about 600 KB and has 71 entries, but its tree would hold 143,000
    # directories, past the 131,070 files, directories and links a package may unpack to.
    name = unique_name("bad-deep")
    files = {"probe.py": "def handler(e, c):\n    return 1\n"}
    for i in range(70):
        files[f"x{i}/" + "d/" * 2040 + "f"] = ""
    code = make_zip(files)
    assert len(code) < 1024 * 1024
    expect_error(lambda: create_raw(lam_raw, name, code=code), "InvalidParameterValueException", 400)
    with pytest.raises(ClientError) as e:
        create_raw(lam_raw, name, code=code)
    assert "at most 131070 are allowed" in e.value.response["Error"]["Message"], e.value.response["Error"]
    assert_not_stored(lam_raw, name)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_zip_over_50mb(lam_raw):
    name = unique_name("bad-50mb")
    # Incompressible content so the zip itself is > 50 MB (52428800 bytes).
    code = make_zip({"probe.py": "def handler(e, c):\n    return 1\n", "blob.bin": os.urandom(51 * 1024 * 1024)},
                    compression=zipfile.ZIP_STORED)
    assert len(code) > 52428800
    # AWS: 413 RequestEntityTooLargeException ("Request must be smaller than 69905067 bytes for the
    # CreateFunction operation": the limit is on the base64-encoded request).
    expect_error(lambda: create_raw(lam_raw, name, code=code), "RequestEntityTooLargeException", 413)
    assert_not_stored(lam_raw, name)


def zip_bomb(unzipped_size: int) -> bytes:
    """A small zip that unzips to `unzipped_size` bytes of zeros (one highly compressible entry)."""
    buf = io.BytesIO()
    chunk = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("probe.py", "def handler(e, c):\n    return 1\n")
        with zf.open("zeros.bin", "w", force_zip64=True) as f:
            written = 0
            while written < unzipped_size:
                n = min(len(chunk), unzipped_size - written)
                f.write(chunk[:n])
                written += n
    return buf.getvalue()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_unzipped_over_250mb(lam_raw):
    name = unique_name("bad-250mb")
    code = zip_bomb(262144000 + 1024 * 1024)
    assert len(code) < 2 * 1024 * 1024, "the bomb itself is small"
    err = expect_error(lambda: create_raw(lam_raw, name, code=code), "InvalidParameterValueException", 400)
    # AWS: "Unzipped size must be smaller than 262144000 bytes"
    assert "262144000" in err["Error"]["Message"], err["Error"]["Message"]
    assert_not_stored(lam_raw, name)


def test_duplicate_create_conflicts(lam_raw):
    name = unique_name("bad-dup")
    create_function(lam_raw, name, python_zip(), Description="first")
    # Read after the waiter: AWS renews the revision id when the function becomes Active.
    first = lam_raw.get_function_configuration(FunctionName=name)
    err = expect_error(lambda: create_raw(lam_raw, name, Description="second"), "ResourceConflictException", 409)
    assert name in err["Error"]["Message"]
    got = lam_raw.get_function_configuration(FunctionName=name)
    assert got["Description"] == "first" and got["RevisionId"] == first["RevisionId"]
    assert function_names(lam_raw).count(name) == 1


def test_invoke_missing_function(lam_raw):
    name = unique_name("bad-missing")
    err = expect_error(lambda: lam_raw.invoke(FunctionName=name, Payload=b"{}"), "ResourceNotFoundException", 404)
    # AWS: "Function not found: arn:aws:lambda:us-east-1:000000000000:function:NAME"
    assert function_arn(name) in err["Error"]["Message"], err["Error"]["Message"]
    assert err["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-errortype", "").startswith("ResourceNotFoundException")


def test_missing_function_everywhere(lam_raw):
    name = unique_name("bad-missing2")
    for call in (lambda: lam_raw.get_function(FunctionName=name),
                 lambda: lam_raw.get_function_configuration(FunctionName=name),
                 lambda: lam_raw.update_function_configuration(FunctionName=name, Timeout=5),
                 lambda: lam_raw.update_function_code(FunctionName=name, ZipFile=python_zip()),
                 lambda: lam_raw.delete_function(FunctionName=name)):
        expect_error(call, "ResourceNotFoundException", 404)
    assert_not_stored(lam_raw, name)


def test_invalid_json_payload(lam_raw):
    name = unique_name("bad-json")
    create_function(lam_raw, name, python_zip())
    # AWS: 400 InvalidRequestContentException ("Could not parse request body into json: ...").
    expect_error(lambda: lam_raw.invoke(FunctionName=name, Payload=b"{not json"), "InvalidRequestContentException", 400)


def test_wrong_secret_is_invalid_signature(server):
    bad = server.lambda_client(secret="definitely-not-the-right-secret-0000000000")
    expect_error(lambda: bad.list_functions(), "InvalidSignatureException", 403)
    name = unique_name("bad-sig")
    expect_error(lambda: create_raw(bad, name), "InvalidSignatureException", 403)
    assert_not_stored(server.lambda_client(), name)


def test_unknown_access_key_is_unrecognized_client(server):
    unknown = server.lambda_client(key="AKIAUNKNOWNKEY000000", secret="whatever-secret-0000000000000000000000")
    expect_error(lambda: unknown.list_functions(), "UnrecognizedClientException", 403)
    expect_error(lambda: unknown.invoke(FunctionName="anything", Payload=b"{}"), "UnrecognizedClientException", 403)


def test_unsigned_request_is_rejected(server):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{server.url}/2015-03-31/functions/", method="GET")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code in (400, 403)
    assert e.value.headers.get("x-amzn-RequestId")
    body = json.loads(e.value.read() or b"{}")
    assert body, "an AWS-shaped JSON error body"
