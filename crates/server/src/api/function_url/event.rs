//! The request event of a function URL: API Gateway's payload format 2.0 as Lambda builds it for URLs
//! (`routeKey` `$default`, stage `$default`, no path parameters or stage variables), and as HTTP APIs
//! build it ([`RouteContext`]: the matched route key, its path parameters, the stage and its
//! variables). Pure.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, Method};
use base64::Engine;
use serde_json::{Map, Value, json};

/// The AWS_IAM caller, as `requestContext.authorizer.iam` shows it.
#[derive(Debug, Clone)]
pub struct IamCaller {
    pub access_key: String,
    pub account_id: String,
    pub caller_id: String,
    pub user_arn: String,
    pub user_id: String,
}

/// What an HTTP API adds to the URL event.
pub struct RouteContext<'a> {
    pub account_id: &'a str,
    pub route_key: &'a str,
    pub stage: &'a str,
    pub path_parameters: &'a BTreeMap<String, String>,
    pub stage_variables: &'a BTreeMap<String, String>,
}

/// What the event is made from; all of it already bounded by the edge.
pub struct EventInput<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub protocol: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
    /// The scheme and port the client reached the URL on (the published base's, behind a proxy).
    pub scheme: &'a str,
    pub port: u16,
    pub url_id: &'a str,
    pub domain: &'a str,
    pub request_id: &'a str,
    pub epoch_ms: i64,
    pub caller: Option<&'a IamCaller>,
    /// An HTTP API's route; `None` for a function URL.
    pub route: Option<&'a RouteContext<'a>>,
}

/// Content types Lambda passes as text; any other body (or one that is not UTF-8) is base64.
pub fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/javascript"
                | "application/xml"
                | "application/yaml"
                | "application/x-yaml"
        )
}

/// `12/Mar/2020:19:03:58 +0000`
pub fn request_time(epoch_ms: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let t = time::OffsetDateTime::from_unix_timestamp(epoch_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        t.day(),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn decode(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space).decode_utf8_lossy().into_owned()
}

pub fn build(input: &EventInput<'_>) -> Value {
    // Headers: names lower-cased, repeats joined with commas; cookies go to `cookies` instead.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in input.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split(';').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned));
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for pair in input.query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query
            .entry(decode(k))
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&decode(v));
            })
            .or_insert_with(|| decode(v));
    }
    // As Lambda's front end does: the client's address appended to X-Forwarded-For, and the scheme and
    // port the client used.
    headers
        .entry("x-forwarded-for".into())
        .and_modify(|v| {
            v.push_str(", ");
            v.push_str(&input.source_ip);
        })
        .or_insert_with(|| input.source_ip.clone());
    headers.insert("x-forwarded-proto".into(), input.scheme.to_owned());
    headers.insert("x-forwarded-port".into(), input.port.to_string());
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    let domain_prefix = input.domain.split('.').next().unwrap_or_default();
    let route_key = input.route.map_or("$default", |r| r.route_key);
    let stage = input.route.map_or("$default", |r| r.stage);
    let account = match (input.caller, input.route) {
        (Some(c), _) => c.account_id.as_str(),
        (None, Some(r)) => r.account_id,
        (None, None) => "anonymous",
    };
    let mut context = json!({
        "accountId": account,
        "apiId": input.url_id,
        "domainName": input.domain,
        "domainPrefix": domain_prefix,
        "http": {
            "method": input.method.as_str(),
            "path": input.path,
            "protocol": input.protocol,
            "sourceIp": input.source_ip,
            "userAgent": user_agent,
        },
        "requestId": input.request_id,
        "routeKey": route_key,
        "stage": stage,
        "time": request_time(input.epoch_ms),
        "timeEpoch": input.epoch_ms,
    });
    if let Some(c) = input.caller {
        context["authorizer"] = json!({ "iam": {
            "accessKey": c.access_key,
            "accountId": c.account_id,
            "callerId": c.caller_id,
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": c.user_arn,
            "userId": c.user_id,
        }});
    }
    let mut event = Map::new();
    event.insert("version".into(), "2.0".into());
    event.insert("routeKey".into(), route_key.into());
    event.insert("rawPath".into(), input.path.into());
    event.insert("rawQueryString".into(), input.query.unwrap_or_default().into());
    if !cookies.is_empty() {
        event.insert("cookies".into(), cookies.into());
    }
    let content_type = headers.get("content-type").cloned();
    event.insert("headers".into(), serde_json::to_value(headers).unwrap_or_default());
    if !query.is_empty() {
        event.insert("queryStringParameters".into(), serde_json::to_value(query).unwrap_or_default());
    }
    event.insert("requestContext".into(), context);
    if let Some(route) = input.route {
        if !route.path_parameters.is_empty() {
            event.insert("pathParameters".into(), json!(route.path_parameters));
        }
        if !route.stage_variables.is_empty() {
            event.insert("stageVariables".into(), json!(route.stage_variables));
        }
    }
    let text = is_text(content_type.as_deref()).then(|| std::str::from_utf8(input.body).ok()).flatten();
    if !input.body.is_empty() {
        match text {
            Some(t) => event.insert("body".into(), t.into()),
            None => event.insert("body".into(), base64::engine::general_purpose::STANDARD.encode(input.body).into()),
        };
    }
    event.insert("isBase64Encoded".into(), (!input.body.is_empty() && text.is_none()).into());
    Value::Object(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(headers: &[(&str, &str)], query: Option<&str>, body: &[u8], caller: Option<&IamCaller>) -> Value {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        build(&EventInput {
            method: &Method::POST,
            path: "/my/path",
            query,
            protocol: "HTTP/1.1",
            headers: &map,
            body,
            source_ip: "127.0.0.1".into(),
            scheme: "http",
            port: 9001,
            url_id: "abcdefghijklmnopqrstuvwxyz012345",
            domain: "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.localhost",
            request_id: "rid",
            epoch_ms: 1_583_348_638_390,
            caller,
            route: None,
        })
    }

    #[test]
    fn payload_2_0_fields() {
        let e = event(
            &[
                ("X-Multi", "a"),
                ("x-multi", "b"),
                ("Cookie", "c1=v1; c2=v2"),
                ("Content-Type", "application/json"),
                ("User-Agent", "ua/1"),
            ],
            Some("p1=v1&p1=v2&e=a%20b&plus=a+b"),
            br#"{"k":1}"#,
            None,
        );
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "$default");
        assert_eq!(e["rawPath"], "/my/path");
        assert_eq!(e["rawQueryString"], "p1=v1&p1=v2&e=a%20b&plus=a+b");
        assert_eq!(e["cookies"], json!(["c1=v1", "c2=v2"]));
        assert_eq!(e["headers"]["x-multi"], "a,b");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["headers"]["x-forwarded-for"], "127.0.0.1");
        assert_eq!(e["headers"]["x-forwarded-proto"], "http");
        assert_eq!(e["headers"]["x-forwarded-port"], "9001");
        assert_eq!(e["queryStringParameters"], json!({"p1": "v1,v2", "e": "a b", "plus": "a b"}));
        assert_eq!(e["body"], r#"{"k":1}"#);
        assert_eq!(e["isBase64Encoded"], false);
        let ctx = &e["requestContext"];
        assert_eq!(ctx["accountId"], "anonymous");
        assert_eq!(ctx["apiId"], "abcdefghijklmnopqrstuvwxyz012345");
        assert_eq!(ctx["domainPrefix"], "abcdefghijklmnopqrstuvwxyz012345");
        assert_eq!(
            ctx["http"],
            json!({"method": "POST", "path": "/my/path", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "ua/1"})
        );
        assert_eq!(ctx["time"], "04/Mar/2020:19:03:58 +0000");
        assert_eq!(ctx["timeEpoch"], 1_583_348_638_390_i64);
        assert_eq!(ctx["stage"], "$default");
        assert!(ctx.get("authorizer").is_none());
    }

    #[test]
    fn bodies_and_callers() {
        let e = event(&[("content-type", "application/octet-stream")], None, b"\x00\x01", None);
        assert_eq!(e["body"], "AAE=");
        assert_eq!(e["isBase64Encoded"], true);
        assert!(e.get("queryStringParameters").is_none());
        assert!(e.get("cookies").is_none());
        let e = event(&[], None, b"", None);
        assert!(e.get("body").is_none());
        assert_eq!(e["isBase64Encoded"], false);
        let e = event(&[("content-type", "text/plain; charset=utf-8")], None, b"hi", None);
        assert_eq!(e["body"], "hi");
        let caller = IamCaller {
            access_key: "AKID".into(),
            account_id: "000000000000".into(),
            caller_id: "000000000000".into(),
            user_arn: "arn:aws:iam::000000000000:root".into(),
            user_id: "000000000000".into(),
        };
        let e = event(&[], None, b"", Some(&caller));
        assert_eq!(e["requestContext"]["accountId"], "000000000000");
        assert_eq!(e["requestContext"]["authorizer"]["iam"]["accessKey"], "AKID");
        assert_eq!(e["requestContext"]["authorizer"]["iam"]["userArn"], "arn:aws:iam::000000000000:root");
    }
}
