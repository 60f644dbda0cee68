//! `nimbus deploy DIR --name N --runtime R --handler H`: zips DIR (keeping file modes, so a `bootstrap`
//! stays executable) and creates the function, or updates its code and configuration if it exists.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{check, connect, segment};
use crate::ClientArgs;

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// The folder holding the function's code.
    dir: std::path::PathBuf,
    #[arg(long)]
    name: String,
    #[arg(long)]
    runtime: String,
    #[arg(long)]
    handler: String,
    #[arg(long)]
    memory: Option<u32>,
    #[arg(long)]
    timeout: Option<u32>,
    /// The execution role. The default one is created on first use (trusting Lambda, with
    /// AWSLambdaBasicExecutionRole attached); any other must exist and trust Lambda.
    #[arg(long, default_value = DEFAULT_ROLE)]
    role: String,
    #[command(flatten)]
    client: ClientArgs,
}

const DEFAULT_ROLE: &str = "arn:aws:iam::000000000000:role/nimbus-function";
const DEFAULT_ROLE_NAME: &str = "nimbus-function";
const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const BASIC_EXECUTION: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

/// Creates `nimbus-function` (trusting Lambda, AWSLambdaBasicExecutionRole attached) unless it exists,
/// through IAM's query protocol, as `aws iam create-role` + `attach-role-policy` would.
async fn ensure_default_role(client: &nimbus::client::ApiClient) -> anyhow::Result<()> {
    let iam = client.signing_for("iam");
    let form = |pairs: &[(&str, &str)]| {
        serde_urlencoded::to_string(pairs).map(String::into_bytes).map_err(anyhow::Error::from)
    };
    let headers = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
    let get = form(&[("Action", "GetRole"), ("Version", "2010-05-08"), ("RoleName", DEFAULT_ROLE_NAME)])?;
    let found = iam.send(Method::POST, "/", &headers, get).await?;
    if found.status == StatusCode::OK {
        return Ok(());
    }
    let create = form(&[
        ("Action", "CreateRole"),
        ("Version", "2010-05-08"),
        ("RoleName", DEFAULT_ROLE_NAME),
        ("AssumeRolePolicyDocument", LAMBDA_TRUST),
    ])?;
    let created = iam.send(Method::POST, "/", &headers, create).await?;
    anyhow::ensure!(
        created.status == StatusCode::OK || created.status == StatusCode::CONFLICT,
        "CreateRole {DEFAULT_ROLE_NAME} failed ({}): {}",
        created.status,
        String::from_utf8_lossy(&created.body)
    );
    let attach = form(&[
        ("Action", "AttachRolePolicy"),
        ("Version", "2010-05-08"),
        ("RoleName", DEFAULT_ROLE_NAME),
        ("PolicyArn", BASIC_EXECUTION),
    ])?;
    let attached = iam.send(Method::POST, "/", &headers, attach).await?;
    anyhow::ensure!(
        attached.status == StatusCode::OK,
        "AttachRolePolicy {DEFAULT_ROLE_NAME} failed ({}): {}",
        attached.status,
        String::from_utf8_lossy(&attached.body)
    );
    println!("created role {DEFAULT_ROLE_NAME} (trusts Lambda; AWSLambdaBasicExecutionRole attached)");
    Ok(())
}

pub async fn run(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let zip = zip_dir(&args.dir)?;
    let zip_b64 = base64::engine::general_purpose::STANDARD.encode(&zip);
    let client = connect(&args.client)?;
    let fn_path = format!("/2015-03-31/functions/{}", segment(&args.name));
    let exists = client.send(Method::GET, &fn_path, &[], Vec::new()).await?;
    let json_headers = [("content-type", "application/json")];
    let mut config = json!({ "Runtime": args.runtime, "Handler": args.handler, "Role": args.role });
    if let Some(m) = args.memory {
        config["MemorySize"] = m.into();
    }
    if let Some(t) = args.timeout {
        config["Timeout"] = t.into();
    }
    let result: Value = if exists.status == StatusCode::NOT_FOUND {
        if args.role == DEFAULT_ROLE {
            ensure_default_role(&client).await?;
        }
        let mut body = config;
        body["FunctionName"] = args.name.clone().into();
        body["Code"] = json!({ "ZipFile": zip_b64 });
        let response =
            client.send(Method::POST, "/2015-03-31/functions", &json_headers, body.to_string().into_bytes()).await?;
        check(response, "CreateFunction")?;
        let settled = settle(&client, &fn_path).await?;
        println!("created {}", args.name);
        settled
    } else {
        check(exists, "GetFunction")?;
        let code = json!({ "ZipFile": zip_b64 });
        let response =
            client.send(Method::PUT, &format!("{fn_path}/code"), &json_headers, code.to_string().into_bytes()).await?;
        check(response, "UpdateFunctionCode")?;
        // Lambda refuses a second update while one is in progress, as the SDKs' function_updated_v2
        // waiter expects: wait for the code update to settle before the configuration update.
        settle(&client, &fn_path).await?;
        let response = client
            .send(Method::PUT, &format!("{fn_path}/configuration"), &json_headers, config.to_string().into_bytes())
            .await?;
        check(response, "UpdateFunctionConfiguration")?;
        let settled = settle(&client, &fn_path).await?;
        println!("updated {}", args.name);
        settled
    };
    println!(
        "{}  {}  CodeSha256={}  CodeSize={}",
        result["FunctionArn"].as_str().unwrap_or_default(),
        result["Runtime"].as_str().unwrap_or_default(),
        result["CodeSha256"].as_str().unwrap_or_default(),
        result["CodeSize"]
    );
    Ok(ExitCode::SUCCESS)
}

/// Waits, as the SDKs' `function_active_v2`/`function_updated_v2` waiters do, until the function is
/// neither `Pending` nor `InProgress` (bounded), so that the next call (another update, an invoke) is
/// not refused with ResourceConflictException; returns the configuration then. A `Failed` state is an
/// error with Lambda's reason.
async fn settle(client: &nimbus::client::ApiClient, fn_path: &str) -> anyhow::Result<Value> {
    let path = format!("{fn_path}/configuration");
    for _ in 0..600 {
        let response = check(client.send(Method::GET, &path, &[], Vec::new()).await?, "GetFunctionConfiguration")?;
        let config: Value = serde_json::from_slice(&response.body)?;
        let state = config["State"].as_str().unwrap_or_default();
        let update = config["LastUpdateStatus"].as_str().unwrap_or_default();
        if state == "Failed" || update == "Failed" {
            let reason = config["StateReason"].as_str().or(config["LastUpdateStatusReason"].as_str()).unwrap_or("");
            anyhow::bail!("the function's code could not be made ready: {reason}");
        }
        if state != "Pending" && update != "InProgress" {
            return Ok(config);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("the function did not become ready within 60 s")
}

/// Zips every regular file under `dir`, named relative to it, with its Unix mode.
fn zip_dir(dir: &Path) -> anyhow::Result<Vec<u8>> {
    if !dir.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for rel in files {
        let path = dir.join(&rel);
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&path)?.permissions().mode() & 0o777
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode);
        let name = rel.to_string_lossy().replace('\\', "/");
        writer.start_file(name, options)?;
        writer.write_all(&std::fs::read(&path).with_context(|| format!("read {}", path.display()))?)?;
    }
    Ok(writer.finish()?.into_inner())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(root, &entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path().strip_prefix(root)?.to_owned());
        }
    }
    Ok(())
}
