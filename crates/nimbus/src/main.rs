//! `nimbus`: `serve` runs the platform; `deploy`, `invoke`, `ls` and `logs` are thin clients of the same
//! HTTP API that the AWS CLI and SDKs use.

mod commands;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "nimbus", version, about = "A self-hosted serverless platform compatible with AWS Lambda")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Nimbus server.
    Serve(commands::serve::ServeArgs),
    /// Zip a folder and create or update a function from it.
    Deploy(commands::deploy::DeployArgs),
    /// Invoke a function and print its response.
    Invoke(commands::invoke::InvokeArgs),
    /// List functions.
    Ls(commands::ls::LsArgs),
    /// Print a function's logs.
    Logs(commands::logs::LogsArgs),
}

/// Where and as whom the client subcommands connect.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// The Nimbus API endpoint.
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = "http://127.0.0.1:9001")]
    endpoint_url: String,
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = nimbus::client::DEFAULT_REGION)]
    region: String,
    /// An AWS shared-credentials file; otherwise AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, otherwise the
    /// credentials file of ./.nimbus.
    #[arg(long, env = "AWS_SHARED_CREDENTIALS_FILE")]
    credentials_file: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    // The namespace sandbox tier's helper (the zygote that starts every environment's init): the server
    // re-executes this binary once for it. Handled before clap, with nothing else set up.
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(nimbus_sandbox::namespace::HELPER_ARG)) {
        nimbus_sandbox::namespace::helper_main();
    }
    let cli = Cli::parse();
    if let Command::Serve(args) = &cli.command {
        commands::serve::before_threads(args);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nimbus: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Deploy(args) => commands::deploy::run(args).await,
            Command::Invoke(args) => commands::invoke::run(args).await,
            Command::Ls(args) => commands::ls::run(args).await,
            Command::Logs(args) => commands::logs::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nimbus: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
