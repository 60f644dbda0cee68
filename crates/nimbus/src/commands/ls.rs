//! `nimbus ls`: ListFunctions, all pages, one line per function.

use std::process::ExitCode;

use http::Method;
use serde_json::Value;

use super::{check, connect};
use crate::ClientArgs;

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(args: LsArgs) -> anyhow::Result<ExitCode> {
    let client = connect(&args.client)?;
    let mut marker: Option<String> = None;
    println!("{:<40} {:<16} {:>7} {:>7}  LAST MODIFIED", "NAME", "RUNTIME", "MEMORY", "TIMEOUT");
    loop {
        let path = match &marker {
            Some(m) => format!("/2015-03-31/functions/?Marker={}", super::segment(m)),
            None => "/2015-03-31/functions/".to_owned(),
        };
        let response = check(client.send(Method::GET, &path, &[], Vec::new()).await?, "ListFunctions")?;
        let page: Value = serde_json::from_slice(&response.body)?;
        for f in page["Functions"].as_array().into_iter().flatten() {
            println!(
                "{:<40} {:<16} {:>7} {:>7}  {}",
                f["FunctionName"].as_str().unwrap_or_default(),
                f["Runtime"].as_str().unwrap_or_default(),
                f["MemorySize"],
                f["Timeout"],
                f["LastModified"].as_str().unwrap_or_default()
            );
        }
        match page["NextMarker"].as_str() {
            Some(m) => marker = Some(m.to_owned()),
            None => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}
