//! What a function's answer means to the URL's HTTP client, as Lambda interprets payload format 2.0
//! responses: an object with `statusCode` is mapped (`headers`, `cookies` → one `Set-Cookie` each,
//! `body`, `isBase64Encoded`); any other JSON value is a 200 `application/json` body. Pure: the
//! payload is the function's, so every shape is checked and a bad one is a 502, never a panic.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

#[derive(Debug, PartialEq)]
pub struct HttpAnswer {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResponseError {
    #[error("the function's response is not JSON")]
    NotJson,
    #[error("statusCode is not an HTTP status: {0}")]
    Status(String),
    #[error("headers is not an object of scalar values")]
    Headers,
    #[error("cookies is not a list of strings")]
    Cookies,
    #[error("body is base64-encoded but does not decode")]
    Base64,
    /// Payload format 1.0 requires `statusCode`.
    #[error("the response has no statusCode")]
    MissingStatus,
}

/// Headers a function may not set: they describe the connection, which is ours.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "upgrade" | "te" | "trailer"
    )
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn json_ok(body: Bytes) -> HttpAnswer {
    HttpAnswer {
        status: StatusCode::OK,
        headers: vec![(HeaderName::from_static("content-type"), HeaderValue::from_static("application/json"))],
        body,
    }
}

/// Status, headers and cookies of a response object (the buffered answer, or a stream's prelude).
pub(crate) fn head(
    status: &Value,
    object: &serde_json::Map<String, Value>,
) -> Result<(StatusCode, Vec<(HeaderName, HeaderValue)>), ResponseError> {
    let status = status
        .as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .and_then(|n| StatusCode::from_u16(n).ok())
        .filter(|s| s.as_u16() >= 100)
        .ok_or_else(|| ResponseError::Status(status.to_string()))?;
    let mut headers = Vec::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| ResponseError::Headers)?;
                let value = scalar(v).ok_or(ResponseError::Headers)?;
                let value = HeaderValue::from_str(&value).map_err(|_| ResponseError::Headers)?;
                if !hop_by_hop(&name) {
                    headers.push((name, value));
                }
            }
        }
        Some(_) => return Err(ResponseError::Headers),
    }
    match object.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for c in list {
                let c = c.as_str().ok_or(ResponseError::Cookies)?;
                let v = HeaderValue::from_str(c).map_err(|_| ResponseError::Cookies)?;
                headers.push((HeaderName::from_static("set-cookie"), v));
            }
        }
        Some(_) => return Err(ResponseError::Cookies),
    }
    Ok((status, headers))
}

/// The prelude of a streamed HTTP response (`HttpResponseStream.from`): a JSON object with
/// `statusCode` (200 when absent), `headers` and `cookies`.
pub fn prelude(bytes: &[u8]) -> Result<(StatusCode, Vec<(HeaderName, HeaderValue)>), ResponseError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|_| ResponseError::NotJson)?;
    let Value::Object(object) = &value else { return Err(ResponseError::NotJson) };
    let ok = Value::from(200);
    head(object.get("statusCode").unwrap_or(&ok), object)
}

pub fn interpret(payload: &Bytes) -> Result<HttpAnswer, ResponseError> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| ResponseError::NotJson)?;
    let Value::Object(object) = &value else { return Ok(json_ok(payload.clone())) };
    let Some(status) = object.get("statusCode") else { return Ok(json_ok(payload.clone())) };
    let (status, mut headers) = head(status, object)?;
    let body = body_of(object)?;
    if !headers.iter().any(|(n, _)| n == "content-type") && !body.is_empty() {
        headers.push((HeaderName::from_static("content-type"), HeaderValue::from_static("application/json")));
    }
    Ok(HttpAnswer { status, headers, body })
}

/// `body`, base64-decoded when `isBase64Encoded` says so.
pub(crate) fn body_of(object: &serde_json::Map<String, Value>) -> Result<Bytes, ResponseError> {
    let body = match object.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let base64 = object.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false);
    if base64 {
        Ok(Bytes::from(base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| ResponseError::Base64)?))
    } else {
        Ok(Bytes::from(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> Result<HttpAnswer, ResponseError> {
        interpret(&Bytes::from(json.to_owned()))
    }

    fn header<'a>(a: &'a HttpAnswer, name: &str) -> Vec<&'a str> {
        a.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.to_str().unwrap()).collect()
    }

    #[test]
    fn shapes() {
        let a = answer(r#"{"statusCode":201,"headers":{"X-A":"1","n":2,"Content-Length":"9"},"cookies":["a=1","b=2; Secure"],"body":"hi"}"#).unwrap();
        assert_eq!(a.status, StatusCode::CREATED);
        assert_eq!(header(&a, "x-a"), ["1"]);
        assert_eq!(header(&a, "n"), ["2"]);
        assert!(header(&a, "content-length").is_empty());
        assert_eq!(header(&a, "set-cookie"), ["a=1", "b=2; Secure"]);
        assert_eq!(a.body, "hi");
        let a =
            answer(r#"{"statusCode":200,"body":"AAE=","isBase64Encoded":true,"headers":{"content-type":"image/png"}}"#)
                .unwrap();
        assert_eq!(a.body.as_ref(), b"\x00\x01");
        assert_eq!(header(&a, "content-type"), ["image/png"]);
        for other in [r#"{"message":"hi"}"#, r#""text""#, "[1,2]", "42", "null"] {
            let a = answer(other).unwrap();
            assert_eq!(a.status, StatusCode::OK, "{other}");
            assert_eq!(a.body, other);
            assert_eq!(header(&a, "content-type"), ["application/json"]);
        }
        let a = answer(r#"{"statusCode":204}"#).unwrap();
        assert_eq!(a.status, StatusCode::NO_CONTENT);
        assert!(a.body.is_empty());
    }

    #[test]
    fn malformed_responses() {
        let cases = [
            ("not json", ResponseError::NotJson),
            (r#"{"statusCode":"200"}"#, ResponseError::Status("\"200\"".into())),
            (r#"{"statusCode":99}"#, ResponseError::Status("99".into())),
            (r#"{"statusCode":1000}"#, ResponseError::Status("1000".into())),
            (r#"{"statusCode":200,"headers":[]}"#, ResponseError::Headers),
            (r#"{"statusCode":200,"headers":{"bad name":"x"}}"#, ResponseError::Headers),
            (r#"{"statusCode":200,"headers":{"a":{"b":1}}}"#, ResponseError::Headers),
            (r#"{"statusCode":200,"cookies":"a=1"}"#, ResponseError::Cookies),
            (r#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#, ResponseError::Base64),
        ];
        for (json, want) in cases {
            assert_eq!(answer(json).unwrap_err(), want, "{json}");
        }
    }
}
