//! Payload format 1.0 of HTTP APIs (the REST-API-compatible Lambda proxy event) and its response
//! mapping. Pure. The request is the client's (anonymous, untrusted); the response is the function's,
//! so every shape is checked: 1.0 requires `statusCode` (no inference as in 2.0).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::api::function_url::event::{IamCaller, is_text, request_time};
use crate::api::function_url::response::{HttpAnswer, ResponseError, body_of, head};

/// What a 1.0 event is made from (already bounded by the edge).
pub struct V1Input<'a> {
    pub method: &'a str,
    /// The path the client asked for, with the stage segment of a named stage.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub protocol: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: &'a str,
    pub account_id: &'a str,
    pub api_id: &'a str,
    pub domain: &'a str,
    pub request_id: &'a str,
    pub epoch_ms: i64,
    pub stage: &'a str,
    /// The route key (`resourceId`) and its path (`resource`, `resourcePath`; `$default` for that route).
    pub route_key: &'a str,
    pub resource: &'a str,
    pub path_parameters: &'a BTreeMap<String, String>,
    pub stage_variables: &'a BTreeMap<String, String>,
    /// An `AWS_IAM` route's caller (`requestContext.identity`).
    pub caller: Option<&'a IamCaller>,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

fn map_or_null<T: serde::Serialize>(map: &BTreeMap<String, T>) -> Value {
    if map.is_empty() { Value::Null } else { json!(map) }
}

pub fn build(input: &V1Input<'_>) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut multi_headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in input.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.insert(name.as_str().to_owned(), value.clone());
        multi_headers.entry(name.as_str().to_owned()).or_default().push(value);
    }
    let forwarded = match headers.get("x-forwarded-for") {
        Some(v) => format!("{v}, {}", input.source_ip),
        None => input.source_ip.to_owned(),
    };
    for (k, v) in [("x-forwarded-for", forwarded), ("x-forwarded-proto", "http".to_owned())] {
        headers.insert(k.to_owned(), v.clone());
        multi_headers.insert(k.to_owned(), vec![v]);
    }
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    let mut multi_query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in input.query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query.insert(decode(k), decode(v));
        multi_query.entry(decode(k)).or_default().push(decode(v));
    }
    let user_agent = headers.get("user-agent").cloned();
    let text = is_text(headers.get("content-type").map(String::as_str))
        .then(|| std::str::from_utf8(input.body).ok())
        .flatten();
    let (body, base64) = match (input.body.is_empty(), text) {
        (true, _) => (Value::Null, false),
        (false, Some(t)) => (t.into(), false),
        (false, None) => (base64::engine::general_purpose::STANDARD.encode(input.body).into(), true),
    };
    let context = json!({
        "accountId": input.account_id,
        "apiId": input.api_id,
        "domainName": input.domain,
        "domainPrefix": input.domain.split('.').next().unwrap_or_default(),
        "extendedRequestId": input.request_id,
        "httpMethod": input.method,
        "identity": {
            "accessKey": input.caller.map(|c| c.access_key.as_str()),
            "accountId": input.caller.map(|c| c.account_id.as_str()),
            "caller": input.caller.map(|c| c.caller_id.as_str()),
            "cognitoAuthenticationProvider": null,
            "cognitoAuthenticationType": null,
            "cognitoIdentityId": null,
            "cognitoIdentityPoolId": null,
            "principalOrgId": null,
            "sourceIp": input.source_ip,
            "user": input.caller.map(|c| c.user_id.as_str()),
            "userAgent": user_agent,
            "userArn": input.caller.map(|c| c.user_arn.as_str()),
        },
        "path": input.path,
        "protocol": input.protocol,
        "requestId": input.request_id,
        "requestTime": request_time(input.epoch_ms),
        "requestTimeEpoch": input.epoch_ms,
        "resourceId": input.route_key,
        "resourcePath": input.resource,
        "stage": input.stage,
    });
    let mut event = Map::new();
    event.insert("version".into(), "1.0".into());
    event.insert("resource".into(), input.resource.into());
    event.insert("path".into(), input.path.into());
    event.insert("httpMethod".into(), input.method.into());
    event.insert("headers".into(), json!(headers));
    event.insert("multiValueHeaders".into(), json!(multi_headers));
    event.insert("queryStringParameters".into(), map_or_null(&query));
    event.insert("multiValueQueryStringParameters".into(), map_or_null(&multi_query));
    event.insert("requestContext".into(), context);
    event.insert("pathParameters".into(), map_or_null(input.path_parameters));
    event.insert("stageVariables".into(), map_or_null(input.stage_variables));
    event.insert("body".into(), body);
    event.insert("isBase64Encoded".into(), base64.into());
    Value::Object(event)
}

/// A 1.0 response: an object with `statusCode`, optional `headers`, `multiValueHeaders` (each value
/// a list; both are sent), `body` and `isBase64Encoded`.
pub fn interpret(payload: &[u8]) -> Result<HttpAnswer, ResponseError> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| ResponseError::NotJson)?;
    let Value::Object(object) = &value else { return Err(ResponseError::NotJson) };
    let status = object.get("statusCode").ok_or(ResponseError::MissingStatus)?;
    let (status, mut headers) = head(status, object)?;
    match object.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, values) in map {
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| ResponseError::Headers)?;
                let Value::Array(values) = values else { return Err(ResponseError::Headers) };
                for v in values {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err(ResponseError::Headers),
                    };
                    headers.push((name.clone(), HeaderValue::from_str(&text).map_err(|_| ResponseError::Headers)?));
                }
            }
        }
        Some(_) => return Err(ResponseError::Headers),
    }
    let body = body_of(object)?;
    Ok(HttpAnswer { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_1_0_fields() {
        let mut headers = HeaderMap::new();
        headers.append("x-multi", "a".parse().unwrap());
        headers.append("x-multi", "b".parse().unwrap());
        headers.append("content-type", "application/json".parse().unwrap());
        let params = BTreeMap::from([("id".to_owned(), "7".to_owned())]);
        let vars = BTreeMap::from([("env".to_owned(), "test".to_owned())]);
        let e = build(&V1Input {
            method: "POST",
            path: "/prod/items/7",
            query: Some("a=1&a=2&b=x%20y"),
            protocol: "HTTP/1.1",
            headers: &headers,
            body: b"{}",
            source_ip: "127.0.0.1",
            account_id: "000000000000",
            api_id: "abcde12345",
            domain: "abcde12345.execute-api.us-east-1.localhost",
            request_id: "rid",
            epoch_ms: 1_583_348_638_390,
            stage: "prod",
            route_key: "POST /items/{id}",
            resource: "/items/{id}",
            path_parameters: &params,
            stage_variables: &vars,
            caller: None,
        });
        assert_eq!(e["version"], "1.0");
        assert_eq!(e["resource"], "/items/{id}");
        assert_eq!(e["path"], "/prod/items/7");
        assert_eq!(e["httpMethod"], "POST");
        assert_eq!(e["headers"]["x-multi"], "b");
        assert_eq!(e["multiValueHeaders"]["x-multi"], json!(["a", "b"]));
        assert_eq!(e["queryStringParameters"], json!({"a": "2", "b": "x y"}));
        assert_eq!(e["multiValueQueryStringParameters"], json!({"a": ["1", "2"], "b": ["x y"]}));
        assert_eq!(e["pathParameters"], json!({"id": "7"}));
        assert_eq!(e["stageVariables"], json!({"env": "test"}));
        assert_eq!(e["body"], "{}");
        assert_eq!(e["isBase64Encoded"], false);
        let ctx = &e["requestContext"];
        assert_eq!(ctx["resourcePath"], "/items/{id}");
        assert_eq!(ctx["resourceId"], "POST /items/{id}");
        assert_eq!(ctx["stage"], "prod");
        assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
        assert_eq!(ctx["requestTime"], "04/Mar/2020:19:03:58 +0000");
    }

    #[test]
    fn responses_need_a_status_code() {
        let ok = interpret(br#"{"statusCode":201,"headers":{"a":"1"},"multiValueHeaders":{"b":["1","2"]},"body":"x"}"#)
            .unwrap();
        assert_eq!(ok.status.as_u16(), 201);
        assert_eq!(ok.headers.iter().filter(|(n, _)| n == "b").count(), 2);
        assert_eq!(&ok.body[..], b"x");
        assert_eq!(interpret(br#"{"body":"x"}"#), Err(ResponseError::MissingStatus));
        assert_eq!(interpret(b"[1]"), Err(ResponseError::NotJson));
        assert_eq!(interpret(br#"{"statusCode":200,"multiValueHeaders":{"b":"1"}}"#), Err(ResponseError::Headers));
    }
}
