pub mod deploy;
pub mod invoke;
pub mod logs;
pub mod ls;
pub mod serve;

use anyhow::{Context, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::ClientArgs;
use nimbus::client::{ApiClient, ApiResponse};

/// Characters left as they are in a path segment; everything else is percent-encoded, as botocore does.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

pub fn connect(args: &ClientArgs) -> anyhow::Result<ApiClient> {
    let default_file = std::path::Path::new(".nimbus/credentials");
    let file = args.credentials_file.as_deref().or_else(|| {
        let env_set = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
        (!env_set && default_file.exists()).then_some(default_file)
    });
    ApiClient::from_environment(&args.endpoint_url, &args.region, file).context("credentials for the Nimbus API")
}

/// Turns an AWS error response into an error that says what the server said.
pub fn check(response: ApiResponse, what: &str) -> anyhow::Result<ApiResponse> {
    if response.status.is_success() {
        return Ok(response);
    }
    let code = response.error_type().unwrap_or("Error").to_owned();
    let message = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.get("Message").or_else(|| v.get("message")).and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&response.body).into_owned());
    bail!("{what} failed: {code} ({}): {message}", response.status.as_u16())
}
