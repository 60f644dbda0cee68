//! The API Gateway v2 operations Nimbus serves (botocore's `apigatewayv2` model, REST-JSON under
//! `/v2/apis`), each with its IAM action and resource as AWS's Service Authorization Reference gives
//! them: API Gateway's actions are the HTTP method (`apigateway:GET`, `apigateway:POST`, …) on the
//! resource path, `arn:aws:apigateway:<region>::/apis/<api-id>/routes/<route-id>`.

use axum::http::Method;
use nimbus_model::policy::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    CreateApi,
    GetApis,
    GetApi,
    UpdateApi,
    DeleteApi,
    CreateRoute,
    GetRoutes,
    GetRoute,
    UpdateRoute,
    DeleteRoute,
    CreateIntegration,
    GetIntegrations,
    GetIntegration,
    DeleteIntegration,
    CreateStage,
    GetStages,
    GetStage,
    DeleteStage,
    CreateDeployment,
    GetDeployments,
    GetDeployment,
}

/// The parts of a request path an operation needs (its labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub op: Op,
    pub api_id: Option<String>,
    /// The route, integration, stage or deployment id.
    pub child: Option<String>,
}

impl Matched {
    /// `apigateway:<METHOD>`.
    pub fn action(method: &Method) -> Action {
        Action::parse(&format!("apigateway:{}", method.as_str())).unwrap_or_else(|| Action::from_static("apigateway:*"))
    }

    /// `arn:aws:apigateway:<region>::<path without /v2>`.
    pub fn resource(region: &str, path: &str) -> String {
        format!("arn:aws:apigateway:{region}::{}", path.strip_prefix("/v2").unwrap_or(path))
    }
}

/// The operation a method and path name, or `None` (an unknown operation).
pub fn parse(method: &Method, path: &str) -> Option<Matched> {
    let rest = path.strip_prefix("/v2/apis")?;
    let parts: Vec<&str> = rest.split('/').skip(1).collect();
    let m = method.as_str();
    let (op, api, child) = match (m, parts.as_slice()) {
        ("POST", []) => (Op::CreateApi, None, None),
        ("GET", []) => (Op::GetApis, None, None),
        ("GET", [api]) => (Op::GetApi, Some(api), None),
        ("PATCH", [api]) => (Op::UpdateApi, Some(api), None),
        ("DELETE", [api]) => (Op::DeleteApi, Some(api), None),
        (_, [api, kind, rest @ ..]) => {
            let op = match (m, *kind, rest.len()) {
                ("POST", "routes", 0) => Op::CreateRoute,
                ("GET", "routes", 0) => Op::GetRoutes,
                ("GET", "routes", 1) => Op::GetRoute,
                ("PATCH", "routes", 1) => Op::UpdateRoute,
                ("DELETE", "routes", 1) => Op::DeleteRoute,
                ("POST", "integrations", 0) => Op::CreateIntegration,
                ("GET", "integrations", 0) => Op::GetIntegrations,
                ("GET", "integrations", 1) => Op::GetIntegration,
                ("DELETE", "integrations", 1) => Op::DeleteIntegration,
                ("POST", "stages", 0) => Op::CreateStage,
                ("GET", "stages", 0) => Op::GetStages,
                ("GET", "stages", 1) => Op::GetStage,
                ("DELETE", "stages", 1) => Op::DeleteStage,
                ("POST", "deployments", 0) => Op::CreateDeployment,
                ("GET", "deployments", 0) => Op::GetDeployments,
                ("GET", "deployments", 1) => Op::GetDeployment,
                _ => return None,
            };
            (op, Some(api), rest.first())
        }
        _ => return None,
    };
    let decode = |s: &&str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    Some(Matched { op, api_id: api.map(decode), child: child.map(decode) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (method, requestUri) as botocore's apigatewayv2 model gives them.
    #[test]
    fn paths_name_the_models_operations() {
        let cases = [
            ("POST", "/v2/apis", Op::CreateApi, None, None),
            ("GET", "/v2/apis", Op::GetApis, None, None),
            ("GET", "/v2/apis/abc", Op::GetApi, Some("abc"), None),
            ("PATCH", "/v2/apis/abc", Op::UpdateApi, Some("abc"), None),
            ("DELETE", "/v2/apis/abc", Op::DeleteApi, Some("abc"), None),
            ("POST", "/v2/apis/abc/routes", Op::CreateRoute, Some("abc"), None),
            ("GET", "/v2/apis/abc/routes/r1", Op::GetRoute, Some("abc"), Some("r1")),
            ("PATCH", "/v2/apis/abc/routes/r1", Op::UpdateRoute, Some("abc"), Some("r1")),
            ("DELETE", "/v2/apis/abc/integrations/i1", Op::DeleteIntegration, Some("abc"), Some("i1")),
            ("GET", "/v2/apis/abc/stages/%24default", Op::GetStage, Some("abc"), Some("$default")),
            ("POST", "/v2/apis/abc/deployments", Op::CreateDeployment, Some("abc"), None),
        ];
        for (method, path, op, api, child) in cases {
            let m = parse(&Method::from_bytes(method.as_bytes()).unwrap(), path).unwrap();
            assert_eq!((m.op, m.api_id.as_deref(), m.child.as_deref()), (op, api, child), "{method} {path}");
        }
        assert!(parse(&Method::PUT, "/v2/apis/abc").is_none());
        assert!(parse(&Method::GET, "/v2/apis/abc/authorizers").is_none());
        assert!(parse(&Method::GET, "/v2/apis/abc/routes/r/x").is_none());
        assert_eq!(
            Matched::resource("us-east-1", "/v2/apis/abc/routes/r1"),
            "arn:aws:apigateway:us-east-1::/apis/abc/routes/r1"
        );
    }
}
