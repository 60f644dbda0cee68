//! Which requests are HTTP API requests: those whose `Host` is `<api-id>.execute-api.localhost` or
//! `<api-id>.execute-api.<region>.localhost` (any port: browsers resolve `*.localhost` to loopback).
//! The `Host` is the client's word: it selects an API and grants nothing.

use crate::api::SharedState;

/// An API id: 10 lowercase letters and digits, as API Gateway's.
pub const API_ID_LEN: usize = 10;

/// What an HTTP API host names.
#[derive(Debug, PartialEq, Eq)]
pub enum ApiHost {
    Api(String),
    /// An execute-api host whose id cannot be an API's.
    Malformed,
}

/// The API a bare host (lower-cased, without port) names, if it is an execute-api host.
pub fn classify(bare_host: &str, region: &str) -> Option<ApiHost> {
    let id = bare_host
        .strip_suffix(".execute-api.localhost")
        .or_else(|| bare_host.strip_suffix(".localhost")?.strip_suffix(region)?.strip_suffix(".execute-api."))?;
    let valid = id.len() == API_ID_LEN && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    Some(if valid { ApiHost::Api(id.to_owned()) } else { ApiHost::Malformed })
}

/// `apiEndpoint`: where the API is served on Nimbus's listener.
pub fn endpoint(state: &SharedState, api_id: &str) -> String {
    format!("http://{}:{}", domain(state, api_id), state.url_hosts.listener_port())
}

/// `requestContext.domainName`.
pub fn domain(state: &SharedState, api_id: &str) -> String {
    format!("{api_id}.execute-api.{}.localhost", state.region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_api_hosts_are_classified() {
        let api = || Some(ApiHost::Api("abcde12345".into()));
        let cases = [
            ("abcde12345.execute-api.localhost", api()),
            ("abcde12345.execute-api.us-east-1.localhost", api()),
            ("abcde12345.execute-api.eu-west-1.localhost", None),
            ("short.execute-api.localhost", Some(ApiHost::Malformed)),
            ("ABCDE12345.execute-api.localhost", Some(ApiHost::Malformed)),
            ("a.b.execute-api.localhost", Some(ApiHost::Malformed)),
            ("localhost", None),
            ("abcde12345.lambda-url.us-east-1.localhost", None),
        ];
        for (host, expected) in cases {
            assert_eq!(classify(host, "us-east-1"), expected, "{host}");
        }
    }
}
