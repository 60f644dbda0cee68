//! Component tests: the whole server in-process, on a port-0 listener, driven over real HTTP, with
//! real runtime processes (a `provided` function whose bootstrap is a curl loop, as in AWS's custom
//! runtime tutorial). Authentication is off here; the end-to-end suite covers SigV4 with real clients.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use nimbus_server::{AuthMode, Config, Ready};
use serde_json::{Value, json};

const BOOTSTRAP: &str = r#"#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS="$(mktemp)"
  EVENT="$(curl -sS -LD "$HEADERS" "$API/invocation/next")"
  ID="$(grep -i Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)"
  case "$EVENT" in
    *sleep*) sleep 5 ;;
    *exit*) exit 3 ;;
  esac
  echo "handling $ID"
  curl -sS -X POST "$API/invocation/$ID/response" -d "{\"pid\": $$, \"event\": $EVENT}" >/dev/null
done
"#;

fn zip_with_bootstrap() -> String {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    writer.start_file("bootstrap", options).unwrap();
    writer.write_all(BOOTSTRAP.as_bytes()).unwrap();
    let bytes = writer.finish().unwrap().into_inner();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

struct Server {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("data"));
    config.auth = AuthMode::None;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Ready>();
    let task = tokio::spawn(async move {
        nimbus_server::run(
            config,
            listener,
            async move {
                let _ = stopped.await;
            },
            |ready| {
                let _ = ready_tx.send(ready.clone());
            },
        )
        .await
        .unwrap();
    });
    let ready = tokio::time::timeout(Duration::from_secs(30), ready_rx).await.unwrap().unwrap();
    Server { url: ready.api_url, stop: Some(stop), task, _dir: dir }
}

impl Server {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), self.task).await.unwrap().unwrap();
    }
}

/// The execution role the functions name, trusting Lambda (CreateFunction refuses any other), made
/// through IAM's query protocol (authentication is off: the form's Version routes it).
async fn create_role(client: &reqwest::Client, url: &str) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let form =
        [("Action", "CreateRole"), ("Version", "2010-05-08"), ("RoleName", "x"), ("AssumeRolePolicyDocument", trust)];
    let response = client.post(format!("{url}/")).form(&form).send().await.unwrap();
    let status = response.status();
    assert!(status == 200 || status == 409, "CreateRole: {status} {}", response.text().await.unwrap());
}

async fn create(client: &reqwest::Client, url: &str, name: &str, timeout: u32) -> Value {
    create_role(client, url).await;
    let body = json!({
        "FunctionName": name, "Runtime": "provided.al2023", "Handler": "unused",
        "Role": "arn:aws:iam::000000000000:role/x", "Timeout": timeout,
        "Code": { "ZipFile": zip_with_bootstrap() },
    });
    let response = client.post(format!("{url}/2015-03-31/functions")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["State"], "Pending", "CreateFunction answers Pending, as Lambda does");
    active(client, url, name).await
}

/// Waits for the function to become Active, as the SDKs' `function_active_v2` waiter does, and returns
/// its configuration then.
async fn active(client: &reqwest::Client, url: &str, name: &str) -> Value {
    for _ in 0..1000 {
        let config: Value = client
            .get(format!("{url}/2015-03-31/functions/{name}/configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if config["State"] != "Pending" {
            return config;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{name} stayed Pending");
}

async fn invoke(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    event: Value,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let response =
        client.post(format!("{url}/2015-03-31/functions/{name}/invocations")).json(&event).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

fn alive(pid: u64) -> bool {
    // A zombie has been reaped by nobody yet but runs no more; count it as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(false)
}

/// Whether the process ends. The kill is sent before the answer, but dying takes the killed process a
/// moment of CPU (it must be scheduled to exit), which a loaded machine may not give it at once.
async fn gone(pid: u64) -> bool {
    for _ in 0..1000 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invokes_reuse_an_environment_and_shutdown_ends_it() {
    let server = start().await;
    let client = reqwest::Client::new();
    let config = create(&client, &server.url, "echo", 3).await;
    assert_eq!(config["State"], "Active");

    let (status, headers, first) = invoke(&client, &server.url, "echo", json!({"n": 1})).await;
    assert_eq!(status, 200);
    assert_eq!(first["event"], json!({"n": 1}));
    assert_eq!(headers["x-amz-executed-version"], "$LATEST");
    assert!(headers.contains_key("x-nimbus-init-duration-ms"), "the first invoke is a cold start");
    let (_, headers, second) = invoke(&client, &server.url, "echo", json!({"n": 2})).await;
    assert_eq!(second["pid"], first["pid"], "the second invoke reuses the warm environment");
    assert!(!headers.contains_key("x-nimbus-init-duration-ms"));

    let pid = first["pid"].as_u64().unwrap();
    assert!(alive(pid));
    server.stop().await;
    assert!(!alive(pid), "the environment's process outlived the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_crashes_are_outcomes_and_replace_the_environment() {
    let server = start().await;
    let client = reqwest::Client::new();
    create(&client, &server.url, "flaky", 1).await;

    let (_, _, ok) = invoke(&client, &server.url, "flaky", json!({"n": 1})).await;
    let (status, headers, timed_out) = invoke(&client, &server.url, "flaky", json!({"do": "sleep"})).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(timed_out["errorType"], "Sandbox.Timedout");
    assert!(timed_out["errorMessage"].as_str().unwrap().ends_with("Task timed out after 1.00 seconds"));
    assert!(gone(ok["pid"].as_u64().unwrap()).await, "a timed-out environment is destroyed");

    let (_, _, fresh) = invoke(&client, &server.url, "flaky", json!({"n": 2})).await;
    assert_ne!(fresh["pid"], ok["pid"]);
    let (_, headers, crashed) = invoke(&client, &server.url, "flaky", json!({"do": "exit"})).await;
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(crashed["errorType"], "Runtime.ExitError");
    assert!(crashed["errorMessage"].as_str().unwrap().ends_with("Runtime exited with error: exit status 3"));
    server.stop().await;
}
