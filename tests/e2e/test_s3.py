"""S3 on Nimbus's endpoint, driven with boto3, the AWS CLI and plain HTTP exactly as code written for AWS
S3 drives it: buckets, objects (streamed both ways, with Range, checksums and metadata), listings,
multipart transfers through boto3's transfer manager, presigned URLs, and AWS's errors for bad input."""

import base64
import hashlib
import os
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from helpers import REGION, error_code, http_status, unique_name


def s3_client(server, addressing="path", **kw):
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=kw.get("key", server.key),
        aws_secret_access_key=kw.get("secret", server.secret),
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, s3={"addressing_style": addressing},
                      parameter_validation=kw.get("validate", True)),
    )


@pytest.fixture(scope="module")
def s3(server):
    return s3_client(server)


@pytest.fixture
def bucket(s3):
    name = unique_name("bkt").lower().replace("_", "-")
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


def test_buckets_are_created_listed_headed_and_deleted(s3):
    name = unique_name("life").lower().replace("_", "-")
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert error_code(e.value) == "BucketAlreadyOwnedByYou"
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert error_code(e.value) == "BucketNotEmpty" and http_status(e.value) == 409
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert http_status(e.value) == 404
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=name)
    assert error_code(e.value) == "NoSuchBucket"


def test_invalid_bucket_names_are_refused(server):
    raw = s3_client(server, validate=False)
    for bad in ["ab", "Upper-Case", "192.168.1.1", "a..b", "-start"]:
        with pytest.raises(ClientError) as e:
            raw.create_bucket(Bucket=bad)
        assert error_code(e.value) == "InvalidBucketName", bad


def test_objects_round_trip_with_metadata_and_checksums(s3, bucket):
    body = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key="dir/a b+c.bin", Body=body, ContentType="application/x-test",
                        Metadata={"color": "blue"}, ChecksumAlgorithm="SHA256")
    assert put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    assert put["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    got = s3.get_object(Bucket=bucket, Key="dir/a b+c.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"color": "blue"}
    assert got["ContentLength"] == len(body)
    assert got["ChecksumSHA256"] == put["ChecksumSHA256"]
    head = s3.head_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert head["ETag"] == put["ETag"] and head["ContentLength"] == len(body)
    part = s3.get_object(Bucket=bucket, Key="dir/a b+c.bin", Range="bytes=10-19")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert part["Body"].read() == body[10:20]
    # An overwrite replaces the whole object.
    s3.put_object(Bucket=bucket, Key="dir/a b+c.bin", Body=b"new")
    assert s3.get_object(Bucket=bucket, Key="dir/a b+c.bin")["Body"].read() == b"new"
    s3.delete_object(Bucket=bucket, Key="dir/a b+c.bin")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert error_code(e.value) == "NoSuchKey"


def test_conditional_get(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"1")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert http_status(e.value) == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert http_status(e.value) == 412
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"1"


def test_wrong_content_md5_and_long_keys_are_refused(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m", Body=b"hello", ContentMD5=base64.b64encode(b"0" * 16).decode())
    assert error_code(e.value) == "BadDigest"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="m")
    assert http_status(e.value) == 404
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert error_code(e.value) == "KeyTooLongError"


def test_listings_page_and_roll_up_common_prefixes(s3, bucket):
    keys = ["a/1", "a/2", "b/x/1", "b/y", "c", "d"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    listed = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["a/", "b/"]
    assert [o["Key"] for o in listed["Contents"]] == ["c", "d"]
    assert listed["KeyCount"] == 4
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}))
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == keys
    assert len(pages) == 3
    sub = s3.list_objects_v2(Bucket=bucket, Prefix="b/", Delimiter="/")
    assert [p["Prefix"] for p in sub["CommonPrefixes"]] == ["b/x/"]
    assert [o["Key"] for o in sub["Contents"]] == ["b/y"]
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="b/y")
    assert [o["Key"] for o in after["Contents"]] == ["c", "d"]
    v1 = list(s3.get_paginator("list_objects").paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}))
    assert [p["Prefix"] for page in v1 for p in page.get("CommonPrefixes", [])] == ["a/", "b/"]
    assert [o["Key"] for page in v1 for o in page.get("Contents", [])] == ["c", "d"]


def test_copy_and_delete_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", Metadata={"a": "1"}, ContentType="text/plain")
    s3.copy_object(Bucket=bucket, Key="same-meta", CopySource={"Bucket": bucket, "Key": "src"})
    head = s3.head_object(Bucket=bucket, Key="same-meta")
    assert head["Metadata"] == {"a": "1"} and head["ContentType"] == "text/plain"
    s3.copy_object(Bucket=bucket, Key="new-meta", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   Metadata={"b": "2"})
    assert s3.head_object(Bucket=bucket, Key="new-meta")["Metadata"] == {"b": "2"}
    assert s3.get_object(Bucket=bucket, Key="new-meta")["Body"].read() == b"payload"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src")
    assert error_code(e.value) == "InvalidRequest"
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in ["src", "same-meta", "nope"]]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["nope", "same-meta", "src"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["new-meta"]


@pytest.mark.parametrize("signature", ["s3v4", None])
def test_presigned_urls_work_with_plain_http(server, bucket, signature):
    """boto3 presigns with SigV2 query parameters unless told `s3v4`; both are S3's."""
    s3 = boto3.client("s3", endpoint_url=server.url, region_name=REGION, aws_access_key_id=server.key,
                      aws_secret_access_key=server.secret,
                      config=Config(signature_version=signature, s3={"addressing_style": "path"}))
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    # SigV2 signs the Content-Type: send none (urllib would add a form type of its own).
    req = urllib.request.Request(put_url, data=b"presigned body", method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    with urllib.request.urlopen(get_url) as r:
        assert r.read() == b"presigned body"
    # Another key than the one signed for.
    bad = get_url.replace(f"/{bucket}/p?", f"/{bucket}/q?")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad)
    assert e.value.code == 403


def test_transfer_manager_multipart_upload_and_download(s3, bucket, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(20 * 1024 * 1024 + 12345))
    s3.upload_file(str(src), bucket, "big.bin")
    dst = tmp_path / "back.bin"
    s3.download_file(bucket, "big.bin", str(dst))
    assert dst.read_bytes() == src.read_bytes()
    etag = s3.head_object(Bucket=bucket, Key="big.bin")["ETag"]
    assert etag.endswith('-3"'), etag


def test_wrong_credentials_are_refused(server, bucket):
    bad = s3_client(server, secret="wrong" * 8)
    with pytest.raises(ClientError) as e:
        bad.list_objects_v2(Bucket=bucket)
    assert error_code(e.value) == "SignatureDoesNotMatch"
    unknown = s3_client(server, key="AKIAUNKNOWNKEY000000")
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert error_code(e.value) == "InvalidAccessKeyId"


def test_aws_cli_cp_ls_sync_rm(server, bucket, tmp_path):
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "one.txt").write_text("one")
    (tmp_path / "up" / "sub").mkdir()
    (tmp_path / "up" / "sub" / "two.txt").write_text("two")
    server.aws("s3", "cp", str(tmp_path / "up" / "one.txt"), f"s3://{bucket}/one.txt", parse=False)
    ls = server.aws("s3", "ls", f"s3://{bucket}/", parse=False).stdout
    assert "one.txt" in ls
    server.aws("s3", "sync", str(tmp_path / "up"), f"s3://{bucket}/synced", parse=False)
    keys = [o["Key"] for o in server.aws("s3api", "list-objects-v2", "--bucket", bucket)["Contents"]]
    assert keys == ["one.txt", "synced/one.txt", "synced/sub/two.txt"]
    server.aws("s3", "sync", f"s3://{bucket}/synced", str(tmp_path / "down"), parse=False)
    assert (tmp_path / "down" / "sub" / "two.txt").read_text() == "two"
    server.aws("s3", "rm", f"s3://{bucket}/synced", "--recursive", parse=False)
    keys = [o["Key"] for o in server.aws("s3api", "list-objects-v2", "--bucket", bucket)["Contents"]]
    assert keys == ["one.txt"]


def test_multipart_errors_are_aws_errors(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"x" * 100)["ETag"]
    last = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=2, Body=b"y")["ETag"]
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="mp", UploadId=up)["Parts"]] == [1, 2]
    assert up in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]]
    cases = [
        ([{"PartNumber": 2, "ETag": last}, {"PartNumber": 1, "ETag": small}], "InvalidPartOrder"),
        ([{"PartNumber": 1, "ETag": last}], "InvalidPart"),
        ([{"PartNumber": 1, "ETag": small}, {"PartNumber": 2, "ETag": last}], "EntityTooSmall"),
    ]
    for parts, code in cases:
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": parts})
        assert error_code(e.value) == code
    # A single small part is a whole object.
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": last}]})
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"y"
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=3, Body=b"z")
    assert error_code(e.value) == "NoSuchUpload"
    up2 = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone", UploadId=up2, PartNumber=1, Body=b"z")
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=up2)
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="gone", UploadId=up2)
    assert error_code(e.value) == "NoSuchUpload"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="gone")
    assert http_status(e.value) == 404


def test_virtual_hosted_requests_name_the_bucket_in_the_host(server, s3, bucket):
    """`<bucket>.s3.localhost:<port>` and `<bucket>.s3.<region>.localhost:<port>`, signed for that host and
    sent to the server's address (no DNS needed)."""
    import http.client
    from urllib.parse import urlparse

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    port = urlparse(server.url).port
    creds = Credentials(server.key, server.secret)
    for host in [f"{bucket}.s3.localhost:{port}", f"{bucket}.s3.{REGION}.localhost:{port}"]:
        for method, body in [("PUT", host.encode()), ("GET", None)]:
            req = AWSRequest(method=method, url=f"http://{host}/vh-key", data=body)
            req.headers["x-amz-content-sha256"] = hashlib.sha256(body or b"").hexdigest()
            S3SigV4Auth(creds, "s3", REGION).add_auth(req)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            # botocore signs the URL's host without adding the header: send it as signed.
            conn.request(method, "/vh-key", body=body, headers={**dict(req.headers.items()), "Host": host})
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            assert resp.status == 200, data
            if method == "GET":
                assert data == host.encode()
    assert s3.get_object(Bucket=bucket, Key="vh-key")["Body"].read().endswith(f".localhost:{port}".encode())


def test_an_upload_cut_short_leaves_nothing(server, s3, bucket):
    """A client that disconnects mid-body: no object appears and the partial body is removed."""
    import socket
    from urllib.parse import urlparse

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from eventplane import wait_until

    port = urlparse(server.url).port
    host = f"127.0.0.1:{port}"
    req = AWSRequest(method="PUT", url=f"http://{host}/{bucket}/cut")
    req.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
    req.headers["Content-Length"] = str(10 * 1024 * 1024)
    S3SigV4Auth(Credentials(server.key, server.secret), "s3", REGION).add_auth(req)
    head = f"PUT /{bucket}/cut HTTP/1.1\r\nHost: {host}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in req.headers.items()) + "\r\n"
    tmp = server.data_dir / "s3" / "tmp"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.encode() + b"x" * (1024 * 1024))
        # The body is being written while the connection stays open...
        wait_until(lambda: any(tmp.iterdir()), what="the upload to start")
    # ...and is gone once the client went away.
    wait_until(lambda: tmp.is_dir() and not any(tmp.iterdir()), what="the partial body to be removed")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="cut")
    assert http_status(e.value) == 404


def test_object_and_bucket_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="team=blue&stage=dev%20x")
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]}
    assert tags == {"team": "blue", "stage": "dev x"}
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "k", "Value": "v"}]
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": f"k{i}", "Value": ""} for i in range(11)]})
    assert error_code(e.value) == "BadRequest"
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    assert error_code(e.value) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_code(e.value) == "NoSuchTagSet"
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "cost", "Value": "42"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "cost", "Value": "42"}]
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_code(e.value) == "NoSuchTagSet"


def test_a_signature_for_another_region_is_refused(server, bucket):
    other = boto3.client("s3", endpoint_url=server.url, region_name="eu-west-1", aws_access_key_id=server.key,
                         aws_secret_access_key=server.secret,
                         config=Config(retries={"max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"}))
    with pytest.raises(ClientError) as e:
        other.list_objects_v2(Bucket=bucket)
    assert error_code(e.value) == "AuthorizationHeaderMalformed"
    assert "'eu-west-1' is wrong; expecting 'us-east-1'" in e.value.response["Error"]["Message"]
