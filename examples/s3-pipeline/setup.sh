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
