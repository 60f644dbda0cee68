//! The AWS services Nimbus serves on its one endpoint: one list, used both to route a request and to
//! check the credential scope it was signed for. AWS refuses a signature scoped to another region or to
//! another service than the endpoint's, with the messages of [`AuthError::WrongRegion`] and
//! [`AuthError::WrongService`]; Nimbus does the same, so a client configured for the wrong region or
//! service hears it instead of silently working here and failing on AWS.

use axum::http::request::Parts;

use crate::auth::{AuthError, Caller};

/// A service Nimbus answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// REST-JSON, routed on the path.
    Lambda,
    /// CloudWatch Logs, JSON 1.1 on `POST /`, routed on `X-Amz-Target`.
    Logs,
    /// SQS, JSON 1.0 on `POST /`, routed on `X-Amz-Target`.
    Sqs,
    /// S3, REST-XML, routed before the others on its scope or host (`crate::s3::addressed`).
    S3,
    /// API Gateway v2 (`apigatewayv2`), REST-JSON under `/v2/`, signed for `apigateway`.
    ApiGateway,
    /// EventBridge, JSON 1.1 on `POST /`, routed on `X-Amz-Target: AWSEvents.*`.
    Events,
}

/// The region global services (IAM, STS) are signed for, whatever the server's region.
pub const GLOBAL_SIGNING_REGION: &str = "us-east-1";

impl Service {
    pub const ALL: [Service; 6] =
        [Service::Lambda, Service::Logs, Service::Sqs, Service::S3, Service::ApiGateway, Service::Events];

    /// The name in the credential scope (`AKID/date/region/<name>/aws4_request`).
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Lambda => "lambda",
            Service::Logs => "logs",
            Service::Sqs => "sqs",
            Service::S3 => "s3",
            Service::ApiGateway => "apigateway",
            Service::Events => "events",
        }
    }

    /// Global services are signed for [`GLOBAL_SIGNING_REGION`].
    pub fn global(self) -> bool {
        false
    }

    /// The `X-Amz-Target` prefix of a JSON-protocol service.
    fn target_prefix(self) -> Option<&'static str> {
        match self {
            Service::Lambda | Service::S3 | Service::ApiGateway => None,
            Service::Logs => Some("Logs_20140328"),
            Service::Sqs => Some("AmazonSQS"),
            Service::Events => Some("AWSEvents"),
        }
    }

    pub fn from_signing_name(name: &str) -> Option<Service> {
        Self::ALL.into_iter().find(|s| s.signing_name() == name)
    }

    /// The JSON-protocol service and operation an `X-Amz-Target` names.
    pub fn from_target(target: &str) -> Option<(Service, &str)> {
        let (prefix, operation) = target.split_once('.')?;
        Self::ALL.into_iter().find(|s| s.target_prefix() == Some(prefix)).map(|s| (s, operation))
    }

    /// The service a request addresses, from what routing looks at: `POST /` with an `X-Amz-Target`
    /// is a JSON-protocol service; `/v2/...` is API Gateway v2; any other path is Lambda's REST API. `None` for `/` without a
    /// target Nimbus knows (routing answers it as an unknown operation).
    pub fn addressed_by(parts: &Parts) -> Option<Service> {
        if parts.uri.path().starts_with(super::apigateway::PREFIX) {
            return Some(Service::ApiGateway);
        }
        if parts.uri.path() != "/" {
            return Some(Service::Lambda);
        }
        let target = parts.headers.get("x-amz-target")?.to_str().ok()?;
        Self::from_target(target).map(|(service, _)| service)
    }
}

/// Refuses a signature scoped to another service than the one the request addresses, or to another
/// region than the server's (us-east-1 for a global service).
pub fn check_scope(caller: &Caller, parts: &Parts, server_region: &str) -> Result<(), AuthError> {
    let service = match Service::addressed_by(parts) {
        Some(service) if service.signing_name() != caller.service => {
            return Err(AuthError::WrongService { expected: service.signing_name(), signed: caller.service.clone() });
        }
        Some(service) => service,
        None => match Service::from_signing_name(&caller.service) {
            Some(service) => service,
            // Nothing here answers it; routing says so.
            None => return Ok(()),
        },
    };
    let region = if service.global() { GLOBAL_SIGNING_REGION } else { server_region };
    if caller.region != region {
        return Err(AuthError::WrongRegion { region: caller.region.clone() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str, target: Option<&str>) -> Parts {
        let mut builder = axum::http::Request::builder().method("POST").uri(path);
        if let Some(target) = target {
            builder = builder.header("x-amz-target", target);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn caller(region: &str, service: &str) -> Caller {
        Caller {
            access_key_id: "AKID".into(),
            region: region.into(),
            service: service.into(),
            session: false,
            principal: crate::auth::Principal::Root,
        }
    }

    #[test]
    fn scopes_are_checked_against_the_addressed_service_and_the_servers_region() {
        let invoke = parts("/2015-03-31/functions/f/invocations", None);
        let sqs = parts("/", Some("AmazonSQS.SendMessage"));
        let logs = parts("/", Some("Logs_20140328.PutLogEvents"));
        let bare = parts("/", None);
        let apis = parts("/v2/apis", None);
        let cases: [(&Parts, Caller, Result<(), &str>); 11] = [
            (&apis, caller("us-east-1", "apigateway"), Ok(())),
            (
                &apis,
                caller("us-east-1", "lambda"),
                Err("Credential should be scoped to correct service: 'apigateway'. "),
            ),
            (&invoke, caller("us-east-1", "lambda"), Ok(())),
            (
                &invoke,
                caller("eu-west-1", "lambda"),
                Err("Credential should be scoped to a valid region, not 'eu-west-1'. "),
            ),
            (&invoke, caller("us-east-1", "sqs"), Err("Credential should be scoped to correct service: 'lambda'. ")),
            (
                &invoke,
                caller("us-east-1", "execute-api"),
                Err("Credential should be scoped to correct service: 'lambda'. "),
            ),
            (&sqs, caller("us-east-1", "sqs"), Ok(())),
            (&sqs, caller("us-east-1", "lambda"), Err("Credential should be scoped to correct service: 'sqs'. ")),
            (&logs, caller("us-east-1", "logs"), Ok(())),
            (
                &bare,
                caller("us-west-2", "sqs"),
                Err("Credential should be scoped to a valid region, not 'us-west-2'. "),
            ),
            (&bare, caller("us-east-1", "s3-nothing-here"), Ok(())),
        ];
        for (parts, caller, expected) in cases {
            let got = check_scope(&caller, parts, "us-east-1");
            match (got, expected) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(message)) => {
                    assert_eq!(e.to_string(), message, "{} {caller:?}", parts.uri);
                    assert_eq!((e.code(), e.status().as_u16()), ("InvalidSignatureException", 403));
                }
                (got, expected) => panic!("{} {caller:?}: got {got:?}, expected {expected:?}", parts.uri),
            }
        }
    }

    #[test]
    fn targets_name_their_service_and_operation() {
        assert_eq!(Service::from_target("AmazonSQS.ReceiveMessage"), Some((Service::Sqs, "ReceiveMessage")));
        assert_eq!(Service::from_target("Logs_20140328.GetLogEvents"), Some((Service::Logs, "GetLogEvents")));
        assert_eq!(Service::from_target("AWSEvents.PutEvents"), Some((Service::Events, "PutEvents")));
        assert_eq!(Service::from_target("Lambda.Invoke"), None);
        assert_eq!(Service::from_target("AmazonSQS"), None);
        for service in Service::ALL {
            assert_eq!(Service::from_signing_name(service.signing_name()), Some(service));
        }
    }
}
