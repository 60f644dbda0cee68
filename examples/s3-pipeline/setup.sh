#!/bin/sh
# The upload pipeline: every object put under uploads/ in bucket $BUCKET runs wordcount.py, which writes
# the object's word count under processed/. Needs a running `nimbus serve` and its credentials in the
# environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_SHARED_CREDENTIALS_FILE=.nimbus/credentials).
set -eu
ENDPOINT=${ENDPOINT:-http://127.0.0.1:9001}
BUCKET=${BUCKET:-pipeline}
REGION=${AWS_DEFAULT_REGION:-us-east-1}
ACCOUNT=000000000000
aws() { command aws --endpoint-url "$ENDPOINT" --region "$REGION" "$@"; }

here=$(cd "$(dirname "$0")" && pwd)
zip_file=$(mktemp -d)/wordcount.zip
(cd "$here" && zip -q "$zip_file" wordcount.py)
# The function's execution role, as on AWS: it trusts Lambda, may write its logs, and may read and
# write objects in the bucket (nothing else).
aws iam create-role --role-name wordcount --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null 2>&1 || true
aws iam attach-role-policy --role-name wordcount \
    --policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
aws iam put-role-policy --role-name wordcount --policy-name objects --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\",\"s3:PutObject\"],\"Resource\":\"arn:aws:s3:::$BUCKET/*\"}]}"
aws lambda create-function --function-name wordcount --runtime python3.12 --handler wordcount.handler \
    --zip-file "fileb://$zip_file" --role "arn:aws:iam::$ACCOUNT:role/wordcount" --timeout 30 >/dev/null
aws lambda wait function-active-v2 --function-name wordcount
aws s3 mb "s3://$BUCKET"
aws s3api put-bucket-notification-configuration --bucket "$BUCKET" --notification-configuration "{
  \"LambdaFunctionConfigurations\": [{
    \"LambdaFunctionArn\": \"arn:aws:lambda:$REGION:$ACCOUNT:function:wordcount\",
    \"Events\": [\"s3:ObjectCreated:*\"],
    \"Filter\": {\"Key\": {\"FilterRules\": [{\"Name\": \"prefix\", \"Value\": \"uploads/\"}]}}
  }]
}"
echo "so much depends upon a red wheel barrow" | aws s3 cp - "s3://$BUCKET/uploads/poem.txt"
for _ in 1 2 3 4 5 6 7 8 9 10; do
    if aws s3 cp "s3://$BUCKET/processed/poem.txt.count" - 2>/dev/null; then echo; exit 0; fi
    sleep 1
done
echo "no word count after 10 s" >&2
exit 1
