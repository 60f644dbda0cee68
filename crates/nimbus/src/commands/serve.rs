//! `nimbus serve`: flags and environment into a `Config`, listeners bound, the ready file written once
//! the server listens, and SIGINT/SIGTERM turned into a clean shutdown.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use nimbus_server::{AuthMode, Config, Ready, RootSource, SandboxChoice};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: String,
    /// Where functions, code, logs and credentials are kept.
    #[arg(long, default_value = ".nimbus")]
    data_dir: PathBuf,
    /// Written once the server listens: its first line is the API's base URL.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// `sigv4` verifies every request; `none` accepts anyone (local experiments only).
    #[arg(long, default_value = "sigv4", value_parser = ["sigv4", "none"])]
    auth: String,
    /// How long an idle execution environment is kept warm.
    #[arg(long, default_value_t = 600)]
    env_idle_secs: u64,
    /// Billing granularity of REPORT lines (1 as Lambda today, 100 classically).
    #[arg(long, default_value_t = 1)]
    billing_granularity_ms: u64,
    /// Execution environments that may run at once, across all functions.
    #[arg(long, default_value_t = 1000)]
    account_concurrency: u32,
    /// Execution environments that may exist at once, idle ones included.
    #[arg(long, default_value_t = 2000)]
    environments_max: usize,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The 12-digit account id every ARN names (default 000000000000). Kept in the data dir once
    /// given: later starts use it, and a different one is refused, since stored ARNs name it.
    #[arg(long)]
    account_id: Option<String>,
    /// Root access key id; with NIMBUS_ROOT_SECRET_ACCESS_KEY it replaces the data dir's credentials.
    #[arg(long, env = "NIMBUS_ROOT_ACCESS_KEY_ID", hide_env_values = true)]
    root_access_key_id: Option<String>,
    #[arg(long, env = "NIMBUS_ROOT_SECRET_ACCESS_KEY", hide_env_values = true)]
    root_secret_access_key: Option<String>,
    /// Keep idle environments running instead of suspending them between invocations.
    #[arg(long)]
    no_freeze: bool,
    /// Isolation tier: `namespace` (namespaces, cgroups, seccomp; as root, or rootless in user
    /// namespaces), `process` (isolates nothing), or `auto`: namespace where this machine allows it,
    /// else process.
    #[arg(long, env = "NIMBUS_SANDBOX", default_value = "auto", value_parser = ["auto", "namespace", "process"])]
    sandbox: String,
    /// Delay before the first retry of a failed asynchronous invocation, in ms (the second waits twice
    /// as long). AWS waits about a minute; tests use less.
    #[arg(long, default_value_t = 60_000)]
    async_retry_base_ms: u64,
    /// Asynchronous invocations run at once.
    #[arg(long, default_value_t = 64)]
    async_concurrency: usize,
    /// The base function URLs are published under, with `{id}` for the url-id, e.g.
    /// `https://{id}.lambda-url.example.com` behind your own DNS and TLS proxy. Requests with such a
    /// host are served too. Default: `http://{id}.lambda-url.<region>.localhost:<port>/`.
    #[arg(long, env = "NIMBUS_PUBLIC_URL_BASE")]
    public_url_base: Option<String>,
    /// Free space (MB) kept on the data directory's disk: below it function logs are dropped, SQS
    /// SendMessage and asynchronous Invoke refused (503 ServiceUnavailable / 500 ServiceException), so
    /// what functions send cannot fill the disk that holds the function metadata (said once in the
    /// server's log). `--log-disk-reserve-mb` is the same setting.
    #[arg(long, alias = "log-disk-reserve-mb", default_value_t = nimbus_server::DISK_RESERVE_MB_DEFAULT)]
    disk_reserve_mb: u64,
}

/// What must happen while the process has one thread: a Nimbus that is not root and may use the
/// namespace tier enters a user namespace of its own (the kernel allows that to single-threaded
/// processes only).
pub fn before_threads(args: &ServeArgs) {
    if args.sandbox != "process" {
        nimbus_sandbox::namespace::user::enter_if_unprivileged();
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    // Every connection costs a descriptor; the listeners' budgets are computed from this limit.
    match nimbus_server::listen::raise_open_files_limit() {
        Ok(limit) => tracing::debug!(limit, "open-files limit"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-files limit; connection budgets use the current one")
        }
    }
    let auth = match args.auth.as_str() {
        "none" => {
            tracing::warn!("--auth none: every request is accepted without a signature; never expose this server");
            AuthMode::None
        }
        _ => AuthMode::SigV4,
    };
    let root = nimbus_server::credentials::Credentials::root_from_env(
        args.root_access_key_id.clone(),
        args.root_secret_access_key.clone(),
    )?;
    let mut config = Config::new(args.data_dir.clone());
    config.region = args.region.clone();
    config.account_id = account_id(&args.data_dir, args.account_id.as_deref())?;
    config.auth = auth;
    config.root_credentials = root;
    config.env_idle = Duration::from_secs(args.env_idle_secs);
    config.billing_granularity_ms = args.billing_granularity_ms.max(1);
    config.account_concurrency = args.account_concurrency.max(1);
    config.environments_max = args.environments_max.max(1);
    config.freeze_idle = !args.no_freeze;
    config.sandbox = match args.sandbox.as_str() {
        "process" => SandboxChoice::Process,
        tier => {
            // Environments run this very binary as their init.
            let init_exe = std::env::current_exe().context("find the nimbus binary")?;
            if tier == "namespace" { SandboxChoice::Namespace { init_exe } } else { SandboxChoice::Auto { init_exe } }
        }
    };
    config.async_retry_base = Duration::from_millis(args.async_retry_base_ms);
    config.async_concurrency = args.async_concurrency.max(1);
    config.public_url_base =
        args.public_url_base.as_deref().map(nimbus_server::api::function_url::PublicBase::parse).transpose()?;
    config.disk_reserve_bytes = args.disk_reserve_mb.saturating_mul(1024 * 1024);

    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("listen on {}", args.listen))?;
    let ready_file = args.ready_file.clone();
    let region = args.region.clone();
    let mut ready_error = None;
    nimbus_server::run(config, listener, shutdown_signal(), |ready| {
        announce(ready, &region);
        if let Some(path) = &ready_file
            && let Err(e) = write_ready_file(path, ready)
        {
            tracing::error!(path = %path.display(), error = %e, "writing the ready file");
            ready_error = Some(e);
        }
    })
    .await?;
    if let Some(e) = ready_error {
        return Err(e);
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The account id: the one given (recorded in `<data dir>/account-id` the first time), else the one
/// recorded, else AWS's placeholder account `000000000000`.
fn account_id(data_dir: &Path, given: Option<&str>) -> anyhow::Result<String> {
    let path = data_dir.join("account-id");
    let stored = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    match (given, stored) {
        (Some(given), Some(stored)) if given != stored => anyhow::bail!(
            "{} holds account {stored}; --account-id {given} would leave every stored ARN naming the other account",
            data_dir.display()
        ),
        (Some(given), None) => {
            nimbus_model::AccountId::parse(given).map_err(|e| anyhow::anyhow!("--account-id: {e}"))?;
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .with_context(|| format!("create {}", data_dir.display()))?;
            std::fs::write(&path, format!("{given}\n")).with_context(|| format!("write {}", path.display()))?;
            Ok(given.to_owned())
        }
        (_, Some(stored)) => {
            nimbus_model::AccountId::parse(&stored).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Ok(stored)
        }
        (None, None) => Ok("000000000000".to_owned()),
    }
}

fn announce(ready: &Ready, region: &str) {
    println!("Nimbus is listening on {} (sandbox: {})", ready.api_url, ready.sandbox_tier);
    match &ready.root_source {
        RootSource::Environment => {
            println!("Root credentials come from NIMBUS_ROOT_ACCESS_KEY_ID / NIMBUS_ROOT_SECRET_ACCESS_KEY.");
        }
        RootSource::Created(path) | RootSource::File(path) => {
            let verb = if matches!(ready.root_source, RootSource::Created(_)) { "were created in" } else { "are in" };
            println!("Root credentials {verb} {} (mode 0600). To use the AWS CLI or SDKs:", path.display());
            println!("  export AWS_ACCESS_KEY_ID={}", ready.root.access_key_id);
            println!("  export AWS_SECRET_ACCESS_KEY={}", ready.root.secret_access_key);
        }
    }
    println!("  export AWS_DEFAULT_REGION={region}");
    println!("  export AWS_ENDPOINT_URL={}", ready.api_url);
}

/// Written to a temporary name and renamed, so a reader never sees half a file.
fn write_ready_file(path: &Path, ready: &Ready) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let text = format!("{}\nsandbox={}\n", ready.api_url, ready.sandbox_tier);
    std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}
