//! Control-plane calls (deploy, configure, read logs, delete) through `nimbus::client::ApiClient`,
//! the same signing client the `nimbus` CLI uses. None of these calls is timed except where the
//! report says so; they run on a small single-threaded tokio runtime owned here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use http::Method;
use nimbus::client::{ApiClient, ApiResponse, ClientCredentials};
use serde_json::{Value, json};

use crate::functions::FunctionSpec;
use crate::server::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

/// Every function the benchmark creates gets this role, created (trusting Lambda) before the first.
pub const ROLE: &str = "arn:aws:iam::000000000000:role/nimbus-bench";
const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const JSON: (&str, &str) = ("content-type", "application/json");

pub struct Control {
    runtime: tokio::runtime::Runtime,
    client: ApiClient,
    role_ready: std::cell::Cell<bool>,
}

impl Control {
    pub fn new(endpoint: &str) -> anyhow::Result<Control> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("start a tokio runtime for the control-plane client")?;
        let credentials = ClientCredentials {
            access_key_id: ACCESS_KEY_ID.to_owned(),
            secret_access_key: SECRET_ACCESS_KEY.to_owned(),
            session_token: None,
        };
        let client =
            ApiClient::new(endpoint, REGION, credentials).with_context(|| format!("a client for {endpoint}"))?;
        Ok(Control { runtime, client, role_ready: std::cell::Cell::new(false) })
    }

    /// One request through `ApiClient` (signing included), answered or failed.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<ApiResponse> {
        self.runtime
            .block_on(self.client.send(method.clone(), path, headers, body))
            .with_context(|| format!("{method} {path}"))
    }

    fn expect(&self, response: ApiResponse, status: u16, operation: &str) -> anyhow::Result<Value> {
        if response.status.as_u16() != status {
            bail!(
                "{operation}: HTTP {} {}: {}",
                response.status,
                response.error_type().unwrap_or_default(),
                String::from_utf8_lossy(&response.body)
            );
        }
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&response.body).with_context(|| format!("{operation}: the answer is not JSON"))
    }

    /// Creates [`ROLE`] unless this server has it (CreateFunction refuses a role that does not exist).
    fn ensure_role(&self) -> anyhow::Result<()> {
        if self.role_ready.get() {
            return Ok(());
        }
        let body = serde_urlencoded::to_string([
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", "nimbus-bench"),
            ("AssumeRolePolicyDocument", LAMBDA_TRUST),
        ])?;
        let iam = self.client.signing_for("iam");
        let headers = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
        let response = self
            .runtime
            .block_on(iam.send(Method::POST, "/", &headers, body.into_bytes()))
            .context("CreateRole nimbus-bench")?;
        // 409: EntityAlreadyExists, from an earlier run on the same data directory.
        if !(response.status.is_success() || response.status.as_u16() == 409) {
            bail!("CreateRole nimbus-bench: HTTP {}: {}", response.status, String::from_utf8_lossy(&response.body));
        }
        self.role_ready.set(true);
        Ok(())
    }

    pub fn create_function(&self, spec: &FunctionSpec, memory_mb: u32) -> anyhow::Result<()> {
        self.ensure_role()?;
        let body = create_body(spec, &spec.name, memory_mb);
        let response = self.send(Method::POST, "/2015-03-31/functions", &[JSON], body.to_string().into_bytes())?;
        self.expect(response, 201, &format!("CreateFunction {}", spec.name))?;
        self.wait_ready(&spec.name)
    }

    /// Waits until the function is `Active` and no update is in progress, as SDK waiters do.
    pub fn wait_ready(&self, name: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let response =
                self.send(Method::GET, &format!("/2015-03-31/functions/{name}/configuration"), &[], Vec::new())?;
            let config = self.expect(response, 200, &format!("GetFunctionConfiguration {name}"))?;
            let state = config["State"].as_str().unwrap_or("Active");
            let update = config["LastUpdateStatus"].as_str().unwrap_or("Successful");
            match (state, update) {
                ("Active", "Successful") => return Ok(()),
                ("Failed", _) | (_, "Failed") => bail!("function {name} failed: {config}"),
                _ if Instant::now() > deadline => {
                    bail!("function {name} not ready after 60 s: {state}/{update}")
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// UpdateFunctionConfiguration with a new environment, which retires the function's
    /// environments: the next invoke is a cold start.
    pub fn set_environment(&self, name: &str, variables: Value) -> anyhow::Result<()> {
        self.update_configuration(name, json!({ "Environment": { "Variables": variables } }))
    }

    /// UpdateFunctionConfiguration with another `EphemeralStorage` (its /tmp size).
    pub fn set_ephemeral_storage(&self, name: &str, size_mb: u32) -> anyhow::Result<()> {
        self.update_configuration(name, json!({ "EphemeralStorage": { "Size": size_mb } }))
    }

    /// UpdateFunctionConfiguration with `body`, then waits until the update is done.
    fn update_configuration(&self, name: &str, body: Value) -> anyhow::Result<()> {
        let response = self.send(
            Method::PUT,
            &format!("/2015-03-31/functions/{name}/configuration"),
            &[JSON],
            body.to_string().into_bytes(),
        )?;
        self.expect(response, 200, &format!("UpdateFunctionConfiguration {name}"))?;
        self.wait_ready(name)
    }

    /// The `Duration` of every REPORT line of `name`'s logs, by request id, read with the
    /// CloudWatch Logs API (FilterLogEvents). Waits (up to 10 s) until every id in `wanted` has
    /// one, since Nimbus writes logs in batches after the invocation has answered.
    pub fn report_durations(&self, name: &str, wanted: &[String]) -> anyhow::Result<HashMap<String, f64>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.all_reports(name)?;
            let missing = wanted.iter().filter(|id| !found.contains_key(*id)).count();
            if missing == 0 || Instant::now() > deadline {
                return Ok(found);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn all_reports(&self, name: &str) -> anyhow::Result<HashMap<String, f64>> {
        let mut found = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = json!({
                "logGroupName": format!("/aws/lambda/{name}"),
                "filterPattern": "REPORT",
            });
            if let Some(t) = &token {
                request["nextToken"] = t.clone().into();
            }
            let response = self.send(
                Method::POST,
                "/",
                &[("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "Logs_20140328.FilterLogEvents")],
                request.to_string().into_bytes(),
            )?;
            let page = self.expect(response, 200, &format!("FilterLogEvents /aws/lambda/{name}"))?;
            for event in page["events"].as_array().into_iter().flatten() {
                if let Some((id, duration)) = event["message"].as_str().and_then(parse_report) {
                    found.insert(id, duration);
                }
            }
            match page["nextToken"].as_str() {
                Some(t) if Some(t) != token.as_deref() => token = Some(t.to_owned()),
                _ => return Ok(found),
            }
        }
    }
}

/// The CreateFunction body for `spec` under `name`.
pub fn create_body(spec: &FunctionSpec, name: &str, memory_mb: u32) -> Value {
    json!({
        "FunctionName": name,
        "Runtime": spec.runtime,
        "Handler": spec.handler,
        "Role": ROLE,
        "MemorySize": memory_mb,
        "Timeout": 30,
        "Code": { "ZipFile": base64::engine::general_purpose::STANDARD.encode(&spec.zip) },
    })
}

/// `REPORT RequestId: <id>\tDuration: 0.12 ms\t...` → (id, 0.12).
pub fn parse_report(line: &str) -> Option<(String, f64)> {
    let rest = line.strip_prefix("REPORT RequestId: ")?;
    let (id, rest) = rest.split_once('\t')?;
    let duration = rest.strip_prefix("Duration: ")?.split_once(" ms")?.0.parse().ok()?;
    Some((id.trim().to_owned(), duration))
}

#[cfg(test)]
mod tests {
    use super::parse_report;

    #[test]
    fn report_lines() {
        let line = "REPORT RequestId: 8f5c-1\tDuration: 0.12 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 3 MB\t";
        assert_eq!(parse_report(line), Some(("8f5c-1".to_owned(), 0.12)));
        assert_eq!(parse_report("START RequestId: x Version: $LATEST"), None);
    }
}
