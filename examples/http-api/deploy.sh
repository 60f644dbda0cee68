#!/bin/sh
# Deploys the example HTTP API to a running `nimbus serve` with the AWS CLI, exactly as on AWS, and
# prints the API's endpoint. Usage: examples/http-api/deploy.sh [endpoint]   (default http://127.0.0.1:9001)
set -eu
ENDPOINT=${1:-http://127.0.0.1:9001}
REGION=${AWS_DEFAULT_REGION:-us-east-1}
ACCOUNT=000000000000
ROLE=arn:aws:iam::$ACCOUNT:role/items-example
here=$(cd "$(dirname "$0")" && pwd)
aws() { command aws --endpoint-url "$ENDPOINT" --region "$REGION" --output text "$@"; }

zip_file=$(mktemp -d)/items.zip
(cd "$here" && python3 -m zipfile -c "$zip_file" items.py list_items.py get_item.py create_item.py)
# The functions' execution role, as on AWS: it trusts Lambda, may write its logs and read them back
# (the items are log lines of create_item's group, found with FilterLogEvents).
aws iam create-role --role-name items-example --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null 2>&1 || true
aws iam attach-role-policy --role-name items-example \
    --policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
aws iam put-role-policy --role-name items-example --policy-name read-items --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:FilterLogEvents","Resource":"*"}]}'

api_id=$(aws apigatewayv2 create-api --name items --protocol-type HTTP --query ApiId)
for fn in list_items get_item create_item; do
    aws lambda delete-function --function-name "items-$fn" >/dev/null 2>&1 || true
    aws lambda create-function --function-name "items-$fn" --runtime python3.12 --handler "$fn.handler" \
        --zip-file "fileb://$zip_file" --role "$ROLE" --query FunctionArn >/dev/null
    # API Gateway may invoke the function only from this API, as on AWS.
    aws lambda add-permission --function-name "items-$fn" --statement-id "items-api" \
        --action lambda:InvokeFunction --principal apigateway.amazonaws.com \
        --source-arn "arn:aws:execute-api:$REGION:$ACCOUNT:$api_id/*/*" >/dev/null
done
route() {  # route KEY FUNCTION
    integration=$(aws apigatewayv2 create-integration --api-id "$api_id" --integration-type AWS_PROXY \
        --integration-uri "arn:aws:lambda:$REGION:$ACCOUNT:function:items-$2" \
        --payload-format-version 2.0 --query IntegrationId)
    aws apigatewayv2 create-route --api-id "$api_id" --route-key "$1" --target "integrations/$integration" \
        --query RouteId >/dev/null
}
route "GET /items" list_items
route "GET /items/{id}" get_item
route "POST /items" create_item
aws apigatewayv2 create-stage --api-id "$api_id" --stage-name '$default' --auto-deploy --query StageName >/dev/null
aws apigatewayv2 get-api --api-id "$api_id" --query ApiEndpoint
