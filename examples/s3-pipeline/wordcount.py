"""Counts the words of each object put under uploads/ and writes the count under processed/.

Run by an S3 bucket notification (see setup.sh); it reads and writes with its own session credentials,
from its environment, as on AWS.
"""

import urllib.parse

import boto3
from botocore.config import Config

s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))


def handler(event, context):
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        out = "processed/" + key.split("/", 1)[1] + ".count"
        s3.put_object(Bucket=bucket, Key=out, Body=str(len(text.split())).encode())
