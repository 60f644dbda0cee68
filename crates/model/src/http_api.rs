//! API Gateway HTTP APIs (the `apigatewayv2` service, `ProtocolType: HTTP`): route keys and the route
//! matcher, and the stored shape of an API (its routes, integrations, stages and deployments). Pure.
//!
//! Route matching follows API Gateway's documented precedence, which a router like matchit cannot
//! express (it refuses a `{param}` beside a literal in some positions and has no "ANY loses to a method"):
//! among the routes whose path matches, segment by segment a literal beats a `{param}`, which beats a
//! greedy `{proxy+}`; on equal paths a route for the request's method beats `ANY`; `$default` answers
//! only when nothing else does. A greedy parameter is the last segment and matches one or more segments.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why a route key is refused (CreateRoute/UpdateRoute: `BadRequestException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteKeyError {
    #[error("Route key is required")]
    Empty,
    #[error(
        "Unable to create route. Route key '{0}' is invalid. A route key must be '$default' or an HTTP method \
         (or ANY) and a path starting with '/', separated by a single space."
    )]
    Shape(String),
    #[error("Unable to create route. Invalid HTTP method '{method}' in route key '{key}'.")]
    Method { method: String, key: String },
    #[error("Unable to create route. Invalid path '{path}' in route key '{key}': {reason}.")]
    Path { path: String, key: String, reason: &'static str },
}

/// The methods a route may name (API Gateway's list) or `ANY`.
const METHODS: [&str; 8] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "ANY"];

/// One segment of a route's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: one or more segments, only last.
    Greedy(String),
}

impl Segment {
    /// Literal > param > greedy.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 0,
        }
    }
}

/// A parsed route key: `$default`, or a method (or `ANY`) and a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    Default,
    Route {
        /// Upper-case method, or `ANY`.
        method: String,
        path: String,
        segments: Vec<Segment>,
    },
}

const PATH_MAX: usize = 1024;

impl RouteKey {
    pub fn parse(raw: &str) -> Result<RouteKey, RouteKeyError> {
        if raw.is_empty() {
            return Err(RouteKeyError::Empty);
        }
        if raw == "$default" {
            return Ok(RouteKey::Default);
        }
        let shape = || RouteKeyError::Shape(raw.to_owned());
        let (method, path) = raw.split_once(' ').ok_or_else(shape)?;
        if path.contains(' ') || !path.starts_with('/') {
            return Err(shape());
        }
        if !METHODS.contains(&method) {
            return Err(RouteKeyError::Method { method: method.to_owned(), key: raw.to_owned() });
        }
        let bad = |reason| RouteKeyError::Path { path: path.to_owned(), key: raw.to_owned(), reason };
        if path.len() > PATH_MAX {
            return Err(bad("the path is longer than 1024 characters"));
        }
        let mut segments = Vec::new();
        let mut names = Vec::new();
        if path != "/" {
            let parts: Vec<&str> = path[1..].split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                if part.is_empty() {
                    return Err(bad("empty path segment"));
                }
                let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(inner) => {
                        let (name, greedy) = match inner.strip_suffix('+') {
                            Some(name) => (name, true),
                            None => (inner, false),
                        };
                        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                        {
                            return Err(bad("a path parameter name may contain only letters, digits, '_' and '-'"));
                        }
                        if names.contains(&name) {
                            return Err(bad("a path parameter name may be used only once"));
                        }
                        names.push(name);
                        if greedy {
                            if i + 1 != parts.len() {
                                return Err(bad("a greedy path parameter must be the last segment"));
                            }
                            Segment::Greedy(name.to_owned())
                        } else {
                            Segment::Param(name.to_owned())
                        }
                    }
                    None if part.contains(['{', '}']) => {
                        return Err(bad("a path parameter must be a whole segment"));
                    }
                    None => Segment::Literal((*part).to_owned()),
                };
                segments.push(segment);
            }
        }
        Ok(RouteKey::Route { method: method.to_owned(), path: path.to_owned(), segments })
    }

    /// The path parameters a request path gets from this route, or `None` when it does not match.
    pub fn matches(&self, method: &str, path: &str) -> Option<BTreeMap<String, String>> {
        let RouteKey::Route { method: own, segments, .. } = self else { return Some(BTreeMap::new()) };
        if own != "ANY" && own != method {
            return None;
        }
        let request: Vec<&str> = path.strip_prefix('/')?.split('/').filter(|s| !s.is_empty()).collect();
        let mut params = BTreeMap::new();
        for (i, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Literal(text) => {
                    if request.get(i) != Some(&text.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    params.insert(name.clone(), (*request.get(i)?).to_owned());
                }
                Segment::Greedy(name) => {
                    if request.len() <= i {
                        return None;
                    }
                    params.insert(name.clone(), request[i..].join("/"));
                    return Some(params);
                }
            }
        }
        (request.len() == segments.len()).then_some(params)
    }

    /// Orders two matching routes: `Greater` when `self` takes precedence.
    fn precedence(&self, other: &RouteKey) -> Ordering {
        match (self, other) {
            (RouteKey::Default, RouteKey::Default) => Ordering::Equal,
            (RouteKey::Default, _) => Ordering::Less,
            (_, RouteKey::Default) => Ordering::Greater,
            (RouteKey::Route { method: m1, segments: s1, .. }, RouteKey::Route { method: m2, segments: s2, .. }) => {
                for (a, b) in s1.iter().zip(s2) {
                    match a.rank().cmp(&b.rank()) {
                        Ordering::Equal => {}
                        other => return other,
                    }
                }
                // Same kinds as far as both go: the longer path is the more specific one.
                s1.len().cmp(&s2.len()).then_with(|| (m1 != "ANY").cmp(&(m2 != "ANY")))
            }
        }
    }
}

/// The route that answers `method path` among `routes`, with its path parameters.
pub fn select<'a, T>(
    routes: impl IntoIterator<Item = (&'a RouteKey, T)>,
    method: &str,
    path: &str,
) -> Option<(T, BTreeMap<String, String>)> {
    let mut best: Option<(&RouteKey, T, BTreeMap<String, String>)> = None;
    for (key, value) in routes {
        let Some(params) = key.matches(method, path) else { continue };
        if best.as_ref().is_none_or(|(b, _, _)| key.precedence(b) == Ordering::Greater) {
            best = Some((key, value, params));
        }
    }
    best.map(|(_, value, params)| (value, params))
}

/// An API's CORS configuration as API Gateway stores it (camelCase on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiCors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
}

/// An integration: `AWS_PROXY` to a function (ARN as given), in payload format 1.0 or 2.0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    pub integration_id: String,
    pub integration_type: String,
    pub integration_method: String,
    pub integration_uri: String,
    pub payload_format_version: String,
    pub timeout_in_millis: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub route_id: String,
    pub route_key: String,
    /// `integrations/<id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub authorization_type: String,
    pub api_key_required: bool,
}

/// What a deployment froze: the routes and integrations it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub deployment_id: String,
    pub created_ms: i64,
    pub auto_deployed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub routes: Vec<Route>,
    pub integrations: Vec<Integration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub stage_name: String,
    pub auto_deploy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default)]
    pub stage_variables: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// An HTTP API and everything in it, stored as one document (an API holds at most a few hundred
/// routes; AWS's quota is 300), so every change is one read-modify-write of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpApi {
    pub api_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub route_selection_expression: String,
    pub api_key_selection_expression: String,
    pub disable_execute_api_endpoint: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_configuration: Option<ApiCors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
    pub routes: Vec<Route>,
    pub integrations: Vec<Integration>,
    pub stages: Vec<Stage>,
    pub deployments: Vec<Deployment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(&RouteKeyError) -> bool;
    /// (method, path, the route that answers, its path parameters)
    type Case = (&'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

    #[test]
    fn route_keys_are_parsed_as_api_gateway_does() {
        let ok = ["$default", "GET /", "ANY /{proxy+}", "GET /items/{id}", "POST /items", "DELETE /a/{b}/c/{d+}"];
        for key in ok {
            assert!(RouteKey::parse(key).is_ok(), "{key}");
        }
        let bad: [(&str, Check); 11] = [
            ("", |e| *e == RouteKeyError::Empty),
            ("GET", |e| matches!(e, RouteKeyError::Shape(_))),
            ("GET items", |e| matches!(e, RouteKeyError::Shape(_))),
            ("GET  /items", |e| matches!(e, RouteKeyError::Shape(_))),
            ("get /items", |e| matches!(e, RouteKeyError::Method { .. })),
            ("FETCH /items", |e| matches!(e, RouteKeyError::Method { .. })),
            ("GET /items/", |e| matches!(e, RouteKeyError::Path { .. })),
            ("GET /{proxy+}/x", |e| matches!(e, RouteKeyError::Path { .. })),
            ("GET /a{b}", |e| matches!(e, RouteKeyError::Path { .. })),
            ("GET /{a}/{a}", |e| matches!(e, RouteKeyError::Path { .. })),
            ("$DEFAULT", |e| matches!(e, RouteKeyError::Shape(_))),
        ];
        for (key, check) in bad {
            let e = RouteKey::parse(key).unwrap_err();
            assert!(check(&e), "{key}: {e:?}");
        }
    }

    #[test]
    fn the_most_specific_route_wins() {
        let keys = [
            "GET /items/{id}",
            "GET /items/special",
            "ANY /items/{id}",
            "ANY /{proxy+}",
            "GET /items/{rest+}",
            "POST /items",
            "GET /",
            "$default",
        ];
        let routes: Vec<RouteKey> = keys.iter().map(|k| RouteKey::parse(k).unwrap()).collect();
        let cases: [Case; 11] = [
            ("GET", "/items/special", "GET /items/special", &[]),
            ("GET", "/items/7", "GET /items/{id}", &[("id", "7")]),
            ("PUT", "/items/7", "ANY /items/{id}", &[("id", "7")]),
            ("GET", "/items/7/parts", "GET /items/{rest+}", &[("rest", "7/parts")]),
            ("PUT", "/items/7/parts", "ANY /{proxy+}", &[("proxy", "items/7/parts")]),
            ("POST", "/items", "POST /items", &[]),
            ("GET", "/items", "ANY /{proxy+}", &[("proxy", "items")]),
            ("GET", "/", "GET /", &[]),
            // A greedy parameter needs at least one segment.
            ("PUT", "/", "$default", &[]),
            ("GET", "/other", "ANY /{proxy+}", &[("proxy", "other")]),
            ("DELETE", "/a/b", "ANY /{proxy+}", &[("proxy", "a/b")]),
        ];
        for (method, path, expected, params) in cases {
            let (i, got) = select(routes.iter().zip(0..), method, path).unwrap_or_else(|| panic!("{method} {path}"));
            assert_eq!(keys[i], expected, "{method} {path}");
            let want: BTreeMap<String, String> =
                params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            assert_eq!(got, want, "{method} {path}");
        }
        let no_default = &routes[..routes.len() - 1];
        assert!(select(no_default.iter().zip(0..), "PUT", "/").is_none());
    }
}
