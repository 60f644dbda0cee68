//! CORS for a URL with a `Cors` config, as Lambda does it: preflights (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) are answered here without invoking the function, and the answers
//! to other requests from an allowed origin get the `Access-Control-*` headers (replacing any the
//! function set). Pure.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use nimbus_model::Cors;

type Headers = Vec<(HeaderName, HeaderValue)>;

fn put(out: &mut Headers, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        out.push((HeaderName::from_static(name), v));
    }
}

fn allow_origin(cors: &Cors, origin: &str, out: &mut Headers) {
    let wildcard = cors.allow_origins.iter().flatten().any(|o| o == "*");
    // A credentialed response may not say `*`; the origin is echoed then.
    if wildcard && cors.allow_credentials != Some(true) {
        put(out, "access-control-allow-origin", "*");
    } else {
        put(out, "access-control-allow-origin", origin);
    }
    if cors.allow_credentials == Some(true) {
        put(out, "access-control-allow-credentials", "true");
    }
    put(out, "vary", "Origin");
}

fn joined(list: &Option<Vec<String>>) -> Option<String> {
    list.as_ref().filter(|l| !l.is_empty()).map(|l| l.join(","))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the request is a CORS preflight.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key("origin") && headers.contains_key("access-control-request-method")
}

/// The headers of the answer to a preflight (its status is 200 either way; without them the browser
/// refuses the actual request).
pub fn preflight(cors: &Cors, headers: &HeaderMap) -> Headers {
    let mut out = Vec::new();
    let (Some(origin), Some(method)) = (header(headers, "origin"), header(headers, "access-control-request-method"))
    else {
        return out;
    };
    if !cors.origin_allowed(origin) || !cors.method_allowed(method) {
        return out;
    }
    allow_origin(cors, origin, &mut out);
    if let Some(methods) = joined(&cors.allow_methods) {
        put(&mut out, "access-control-allow-methods", &methods);
    }
    if let Some(allowed) = joined(&cors.allow_headers) {
        put(&mut out, "access-control-allow-headers", &allowed);
    }
    if let Some(expose) = joined(&cors.expose_headers) {
        put(&mut out, "access-control-expose-headers", &expose);
    }
    if let Some(age) = cors.max_age {
        put(&mut out, "access-control-max-age", &age.to_string());
    }
    out
}

/// The headers added to an actual response for a request from an allowed origin.
pub fn actual(cors: &Cors, headers: &HeaderMap) -> Headers {
    let mut out = Vec::new();
    let Some(origin) = header(headers, "origin") else { return out };
    if !cors.origin_allowed(origin) {
        return out;
    }
    allow_origin(cors, origin, &mut out);
    if let Some(expose) = joined(&cors.expose_headers) {
        put(&mut out, "access-control-expose-headers", &expose);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        map
    }

    fn get<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
        h.iter().find(|(n, _)| n == name).map(|(_, v)| v.to_str().unwrap())
    }

    #[test]
    fn preflights() {
        let cors = Cors {
            allow_origins: Some(vec!["https://app.example.com".into()]),
            allow_methods: Some(vec!["GET".into(), "POST".into()]),
            allow_headers: Some(vec!["content-type".into()]),
            max_age: Some(300),
            allow_credentials: Some(true),
            ..Default::default()
        };
        let req = request(&[("origin", "https://app.example.com"), ("access-control-request-method", "POST")]);
        assert!(is_preflight(&Method::OPTIONS, &req));
        assert!(!is_preflight(&Method::GET, &req));
        let h = preflight(&cors, &req);
        assert_eq!(get(&h, "access-control-allow-origin"), Some("https://app.example.com"));
        assert_eq!(get(&h, "access-control-allow-methods"), Some("GET,POST"));
        assert_eq!(get(&h, "access-control-allow-headers"), Some("content-type"));
        assert_eq!(get(&h, "access-control-max-age"), Some("300"));
        assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
        let other = request(&[("origin", "https://evil.example.com"), ("access-control-request-method", "POST")]);
        assert!(preflight(&cors, &other).is_empty());
        let bad_method = request(&[("origin", "https://app.example.com"), ("access-control-request-method", "DELETE")]);
        assert!(preflight(&cors, &bad_method).is_empty());
    }

    #[test]
    fn actual_responses() {
        let cors = Cors {
            allow_origins: Some(vec!["*".into()]),
            expose_headers: Some(vec!["x-total".into()]),
            ..Default::default()
        };
        let h = actual(&cors, &request(&[("origin", "https://a.example")]));
        assert_eq!(get(&h, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&h, "access-control-expose-headers"), Some("x-total"));
        assert!(actual(&cors, &request(&[])).is_empty());
    }
}
