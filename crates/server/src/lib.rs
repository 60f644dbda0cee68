//! The Nimbus server. [`run`] wires the parts together and serves until told to stop:
//!
//! ```text
//! api ──► invoke ──► pool ──► environment (sandbox process + its runtime_api listener)
//!  │                              │
//!  └── store (SQLite + code) ◄────┴── logs (batched writer)
//! ```
//!
//! `main` parses flags and binds listeners; tests call [`run`] the same way with port-0 listeners.

pub mod api;
mod arn;
pub mod auth;
pub mod authz;
mod clock;
pub mod credentials;
mod disk;
mod environment;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
mod execution_role;
mod invoke;
mod lifecycle;
pub mod listen;
mod logs;
mod policy_cache;
pub mod pool;
mod retention;
mod runtime_api;
mod runtimes;
mod s3;
mod sqs;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nimbus_sandbox::{NamespaceSandbox, ProcessSandbox, Sandbox};
use nimbus_store::Store;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use credentials::{KeyPair, RootSource};
pub use disk::DISK_RESERVE_MB_DEFAULT;

/// Which sandbox tier runs functions (`--sandbox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxChoice {
    /// The namespace tier if this machine allows it (a probe builds one environment), else the
    /// process tier with a loud warning.
    Auto {
        init_exe: PathBuf,
    },
    /// The namespace tier or nothing. `init_exe` is the Nimbus binary, which also runs the zygote that
    /// starts the environments' inits (`nimbus __sandbox-zygote`).
    Namespace {
        init_exe: PathBuf,
    },
    Process,
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every request must carry a valid SigV4 signature (the default).
    SigV4,
    /// No authentication at all: only for local experiments, and `serve` warns.
    None,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    pub auth: AuthMode,
    /// Root credentials given by the operator; otherwise they are read from or created in the data dir.
    pub root_credentials: Option<KeyPair>,
    /// How long an idle environment is kept warm.
    pub env_idle: Duration,
    /// Billing granularity for REPORT lines (1 ms as Lambda today; 100 ms classically).
    pub billing_granularity_ms: u64,
    /// Environments that may run at once across all functions.
    pub account_concurrency: u32,
    /// Environments that may exist at once, idle ones included.
    pub environments_max: usize,
    /// Suspend environments between invocations, as Lambda freezes them.
    pub freeze_idle: bool,
    /// The isolation tier (the process tier unless asked: the namespace tier needs the Nimbus binary).
    pub sandbox: SandboxChoice,
    /// Delay before the first retry of a failed async invocation (doubled for the second); AWS waits
    /// about a minute. Tests shorten it.
    pub async_retry_base: Duration,
    /// Async invocations the dispatcher runs at once.
    pub async_concurrency: usize,
    /// The base function URLs are published under (`https://{id}.lambda-url.example.com`), for an
    /// operator's own DNS and TLS proxy; `None`: `http://<id>.lambda-url.<region>.localhost:<port>/`.
    pub public_url_base: Option<api::function_url::PublicBase>,
    /// Free space the data disk keeps: below it function logs are dropped, SQS sends and async
    /// invocations refused (`disk::DataDisk`, the one check).
    pub disk_reserve_bytes: u64,
}


impl Config {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            auth: AuthMode::SigV4,
            root_credentials: None,
            env_idle: Duration::from_secs(600),
            billing_granularity_ms: 1,
            account_concurrency: nimbus_model::limits::ACCOUNT_CONCURRENCY_DEFAULT,
            environments_max: 2 * nimbus_model::limits::ACCOUNT_CONCURRENCY_DEFAULT as usize,
            freeze_idle: true,
            sandbox: SandboxChoice::Process,
            async_retry_base: Duration::from_secs(60),
            async_concurrency: 64,
            public_url_base: None,
            disk_reserve_bytes: DISK_RESERVE_MB_DEFAULT * 1024 * 1024,
        }
    }
}

/// What a started server tells its caller (the `serve` command prints it and writes the ready file).
#[derive(Debug, Clone)]
pub struct Ready {
    pub api_url: String,
    pub api_addr: SocketAddr,
    pub root: KeyPair,
    pub root_source: RootSource,
    pub sandbox_tier: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("create data dir {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
    #[error("open store: {0}")]
    Store(#[from] nimbus_store::StoreError),
    #[error("start sandbox: {0}")]
    Sandbox(#[from] nimbus_sandbox::SandboxError),
    #[error(transparent)]
    Runtimes(#[from] runtimes::RuntimesError),
    #[error("start S3: {0}")]
    S3(#[from] s3::S3SetupError),
    #[error("listener: {0}")]
    Listener(std::io::Error),
    #[error("serve HTTP: {0}")]
    Serve(std::io::Error),
}

/// How long in-flight requests may finish after shutdown is asked for, and then how long environments
/// may take to go.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Runs Nimbus on `api_listener` until `shutdown` resolves; calls `on_ready` once it serves.
pub async fn run(
    config: Config,
    api_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&Ready),
) -> Result<(), ServerError> {
    create_private_dir(&config.data_dir)?;
    // Environments run in other working directories, so every path handed to them must be absolute.
    let data_dir = &std::fs::canonicalize(&config.data_dir)
        .map_err(|source| ServerError::DataDir { path: config.data_dir.clone(), source })?;
    let (credentials, root_source) =
        credentials::Credentials::load_or_create(data_dir, config.root_credentials.clone())?;
    let credentials = Arc::new(credentials);
    let store = {
        let dir = data_dir.clone();
        tokio::task::spawn_blocking(move || Store::open(&dir)).await.map_err(|e| ServerError::Serve(e.into()))??
    };
    let store = Arc::new(store);
    credentials.attach_store(store.clone(), &config.account_id);
    execution_role::create_missing_roles(&store, &config.account_id)?;
    // `code/` is locked too, so that its protection does not rest on the data dir's mode alone.
    make_private(&data_dir.join("code"));
    collect_unreferenced_code(&store);

    let api_addr = api_listener.local_addr().map_err(ServerError::Listener)?;
    let api_url = format!("http://{}", loopback_if_unspecified(api_addr));
    let sandbox = choose_sandbox(&config.sandbox, data_dir)?;
    let runtimes = Arc::new(
        runtimes::Runtimes::discover(data_dir, &config.region, &config.account_id, &api_url, sandbox.path_view())
            .await?,
    );
    // The one reserve check, for every durable write a function can drive (logs, SQS sends, async invokes).
    // The one reserve check, for every durable write a function can drive (logs, SQS sends, async invokes).
    let disk = Arc::new(disk::DataDisk::new(data_dir.to_path_buf(), config.disk_reserve_bytes));
    let (log_sink, log_writer) = logs::LogSink::start(store.clone(), disk.clone());
    let (stop_envs, envs_stopping) = watch::channel(false);
    let (alive, mut all_gone) = mpsc::channel::<()>(1);
    let limits = pool::Limits {
        concurrency_max: config.account_concurrency as usize,
        idle_timeout: config.env_idle,
        environments_max: config.environments_max.max(1),
    };
    let ctx_sandbox = sandbox.clone();
    let ctx_credentials = credentials.clone();
    let ctx_logs = log_sink.clone();
    let billing = logs::Billing { granularity_ms: config.billing_granularity_ms };
    let freeze_idle = config.freeze_idle;
    let api_for_envs = Arc::new(std::sync::OnceLock::new());
    let open_files = listen::open_files_limit();
    let budgets = listen::Budgets::from_open_files_limit(open_files);
    tracing::info!(
        open_files,
        public_connections = budgets.public_connections,
        environment_connections = budgets.environment_connections,
        "connection budgets"
    );
    let env_connections = Arc::new(tokio::sync::Semaphore::new(budgets.environment_connections));
    let ctx_api = api_for_envs.clone();
    let (pool, pool_task) = pool::Pool::start(limits, move |pool_events| environment::LaunchContext {
        sandbox: ctx_sandbox,
        credentials: ctx_credentials,
        logs: ctx_logs,
        pool_events,
        billing,
        shutdown: envs_stopping,
        alive,
        freeze_idle,
        api: ctx_api,
        connections: env_connections.clone(),
    });
    drop(log_sink);
    for (function, reserved) in store.all_reserved_concurrency()? {
        pool.set_reserved(&function, Some(reserved)).await;
    }
    let arns = arn::Arns { region: config.region.clone(), account: config.account_id.clone() };
    let invoker = Arc::new(invoke::Invoker::new(store.clone(), pool.clone(), runtimes, arns.clone()));
    restore_provisioned(&store, &invoker, None).await;
    let sqs = Arc::new(sqs::Sqs::new(store.clone(), &config.region, &config.account_id, &api_url, disk.clone()));
    let (stop_events, events_stopping) = watch::channel(false);
    let async_settings = events::async_invoke::AsyncSettings {
        retry_base: config.async_retry_base,
        concurrency: config.async_concurrency.max(1),
    };
    let (async_queue, async_task) = events::async_invoke::start(
        store.clone(),
        invoker.clone(),
        sqs.clone(),
        arns.clone(),
        async_settings,
        disk,
        events_stopping.clone(),
    );
    let retention_task = retention::start(store.clone(), events_stopping.clone());
    let (mappings, mappings_task) =
        events::mappings::start(store.clone(), invoker.clone(), sqs.clone(), arns.clone(), events_stopping.clone());
    let s3 = s3::S3Edge::start(
        store.clone(),
        credentials.clone(),
        async_queue.clone(),
        sqs.clone(),
        data_dir,
        &config.region,
        &config.account_id,
        config.auth == AuthMode::SigV4,
    )?;
    let rules = Arc::new(events::bus::Rules::new(store.clone(), arns.clone(), async_queue.clone(), sqs.clone()));
    let scheduler_task = tokio::spawn(events::scheduler::run(rules.clone(), events_stopping.clone()));
    let state = Arc::new(api::ApiState {
        s3,
        rules,
        store: store.clone(),
        credentials: credentials.clone(),
        invoker,
        sqs,
        async_queue,
        mappings,
        arns,
        code_urls: api::CodeUrls::new(&api_url),
        url_cache: api::function_url::UrlCache::default(),
        api_cache: api::apigateway::ApiCache::default(),
        url_hosts: api::function_url::UrlHosts::new(&config.region, api_addr.port(), config.public_url_base.clone()),
        auth_required: config.auth == AuthMode::SigV4,
        account_concurrency: config.account_concurrency,
        policies: Arc::new(policy_cache::PolicyCache::new(store.clone(), &config.account_id)),
        region: config.region.clone(),
        bodies: api::body::BodyBudget::new(nimbus_model::limits::REQUEST_BODY_BYTES_IN_FLIGHT_MAX),
        lifecycle: lifecycle::Lifecycle::default(),
    });
    let app = api::router(state);
    let _ = api_for_envs.set(app.clone());

    let (stop_http, http_stopping) = watch::channel(false);
    let mut http_stopping_wait = http_stopping.clone();
    let public_limits = listen::Limits {
        connections: Arc::new(tokio::sync::Semaphore::new(budgets.public_connections)),
        shared: None,
        reserved: 0,
        when_full: listen::WhenFull::Wait,
        idle: Duration::from_secs(nimbus_model::limits::CONNECTION_IDLE_SECS),
        name: "api",
    };
    let server = tokio::spawn(async move {
        listen::serve(api_listener, app, public_limits, (), async move {
            let _ = http_stopping_wait.wait_for(|s| *s).await;
        })
        .await;
        Ok::<(), std::io::Error>(())
    });
    on_ready(&Ready { api_url, api_addr, root: credentials.root().clone(), root_source, sandbox_tier: sandbox.tier() });

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_http.send(true);
    let server_result = match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(result)) => result.map_err(ServerError::Serve),
        Ok(Err(join)) => Err(ServerError::Serve(join.into())),
        Err(_) => {
            tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping them");
            Ok(())
        }
    };
    // The event plane stops before the environments, so it starts no new invocation; what it had in
    // flight stays in the journal (or the queue) and runs again after the next start.
    let _ = stop_events.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, async move {
        let _ = mappings_task.await;
        let _ = scheduler_task.await;
        let _ = async_task.await;
        let _ = retention_task.await;
    })
    .await
    .is_err()
    {
        tracing::warn!("the event plane did not stop within {SHUTDOWN_GRACE:?}");
    }
    let _ = stop_envs.send(true);
    pool.shutdown().await;
    drop(pool);
    let _ = pool_task.await;
    if tokio::time::timeout(SHUTDOWN_GRACE, all_gone.recv()).await.is_err() {
        tracing::warn!("some environments did not end within {SHUTDOWN_GRACE:?}");
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, log_writer).await;
    sandbox.cleanup();
    server_result
}

fn create_private_dir(path: &std::path::Path) -> Result<(), ServerError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| ServerError::DataDir { path: path.to_owned(), source })?;
    make_private(path);
    Ok(())
}

/// Makes an existing directory 0700 if group or others may enter it. `DirBuilder::mode` does not touch
/// a directory that already exists (a `mkdir` with the usual umask, systemd's `StateDirectory=`), and
/// the data dir holds files that must stay open to the functions' uid (code trees 0644/0755, bind-mounted
/// into environments, never reached through this path), so the directories above them are the lock.
/// A failure is said loudly but does not stop the server: the operator may have reasons (an ACL).
fn make_private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else { return };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            was = format!("{mode:04o}"),
            "the directory was open to other users; made it 0700"
        ),
        Err(e) => tracing::error!(
            path = %path.display(),
            mode = format!("{mode:04o}"),
            error = %e,
            "the directory is open to other users and could not be made 0700: local users can read functions' code"
        ),
    }
}

/// Functions call back to the API at this address; a wildcard bind is reached through loopback.
fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
        SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
        other => other,
    }
}

/// Provisioned concurrency survives restarts: its environments are launched again at start (and those
/// of one function after its retirement for a changed `nimbus:network` tag).
pub(crate) async fn restore_provisioned(
    store: &Store,
    invoker: &invoke::Invoker,
    function: Option<&nimbus_model::FunctionName>,
) {
    let configs = match store.list_provisioned(function) {
        Ok(configs) => configs,
        Err(e) => {
            tracing::warn!(error = %e, "reading provisioned concurrency configs");
            return;
        }
    };
    for config in configs {
        let version = match nimbus_model::Qualifier::parse(&config.qualifier) {
            Ok(nimbus_model::Qualifier::Version(v)) => Ok(nimbus_store::VersionId::Published(v)),
            Ok(nimbus_model::Qualifier::Alias(alias)) => store.get_alias(&config.function, &alias).map(|a| a.version),
            _ => continue,
        };
        match version.and_then(|v| store.get_function(&config.function, &v)) {
            Ok(record) => invoker.provision(record, config.requested as usize).await,
            Err(e) => tracing::warn!(function = %config.function, error = %e, "restoring provisioned concurrency"),
        }
    }
}

/// Removes zips no function version refers to any more (left by deletes, updates, or a create that
/// lost a race). Done at start, when no upload can be in flight.
fn collect_unreferenced_code(store: &Store) {
    match store.referenced_code().and_then(|keep| Ok(store.code().remove_unreferenced(&keep)?)) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed unreferenced code blobs"),
        Err(e) => tracing::warn!(error = %e, "collecting unreferenced code"),
    }
}

/// Builds the sandbox `choice` asks for; `auto` falls back to the process tier, loudly.
fn choose_sandbox(choice: &SandboxChoice, data_dir: &std::path::Path) -> Result<Arc<dyn Sandbox>, ServerError> {
    let namespace = |init_exe: &PathBuf| -> Result<Arc<dyn Sandbox>, nimbus_sandbox::SandboxError> {
        let sandbox = NamespaceSandbox::new(nimbus_sandbox::namespace::Options {
            init_exe: init_exe.clone(),
            data_dir: data_dir.to_owned(),
        })?;
        sandbox.probe()?;
        tracing::info!("sandbox tier `namespace`: each environment has its own namespaces, root and cgroups");
        Ok(Arc::new(sandbox))
    };
    let process = || -> Result<Arc<dyn Sandbox>, ServerError> {
        tracing::warn!(
            "sandbox tier `process`: functions run as plain child processes and are NOT isolated from the host \
             or from each other"
        );
        Ok(Arc::new(ProcessSandbox::new(&data_dir.join("envs"))?))
    };
    match choice {
        SandboxChoice::Process => process(),
        SandboxChoice::Namespace { init_exe } => Ok(namespace(init_exe)?),
        SandboxChoice::Auto { init_exe } => namespace(init_exe).or_else(|e| {
            tracing::warn!(reason = %e, "the namespace sandbox tier is unavailable on this machine");
            eprintln!("nimbus: WARNING: the namespace sandbox is unavailable ({e}); falling back to the process tier");
            process()
        }),
    }
}
