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
    #[arg(long, default_value = "arn:aws:iam::000000000000:role/nimbus-function")]
    role: String,
    #[command(flatten)]
    client: ClientArgs,
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
        let mut body = config;
        body["FunctionName"] = args.name.clone().into();
        body["Code"] = json!({ "ZipFile": zip_b64 });
        let response =
            client.send(Method::POST, "/2015-03-31/functions", &json_headers, body.to_string().into_bytes()).await?;
        let response = check(response, "CreateFunction")?;
        println!("created {}", args.name);
        serde_json::from_slice(&response.body)?
    } else {
        check(exists, "GetFunction")?;
        let code = json!({ "ZipFile": zip_b64 });
        let response =
            client.send(Method::PUT, &format!("{fn_path}/code"), &json_headers, code.to_string().into_bytes()).await?;
        check(response, "UpdateFunctionCode")?;
        let response = client
            .send(Method::PUT, &format!("{fn_path}/configuration"), &json_headers, config.to_string().into_bytes())
            .await?;
        let response = check(response, "UpdateFunctionConfiguration")?;
        println!("updated {}", args.name);
        serde_json::from_slice(&response.body)?
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
