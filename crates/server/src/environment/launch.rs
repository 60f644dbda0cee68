//! Starting an environment: its network from the sandbox (a Runtime API listener of its own, and in
//! the namespace tier a listener for Nimbus's API inside the environment's network namespace), a
//! session credential, the environment variables Lambda defines, the sandboxed process, and the
//! driver task.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use nimbus_model::{NetworkAccess, limits};
use nimbus_sandbox::{Egress, LaunchSpec, Sandbox, SandboxError};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::driver::Driver;
use super::{Command, EnvHandle};
use crate::credentials::Credentials;
use crate::listen;
use crate::logs::{self, LogSink};
use crate::pool::{EnvId, PoolEvents};

/// What to run for one function version, prepared by the runtime layer.
#[derive(Debug, Clone)]
pub struct LaunchPlan {
    pub function_name: String,
    pub version: String,
    pub memory_mb: u32,
    pub ephemeral_storage_mb: u32,
    /// The program and the paths below as the environment sees them (see `Sandbox::path_view`).
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// The function's unpacked code on the host.
    pub code_dir: PathBuf,
    /// Nimbus's bootstraps on the host.
    pub runtime_dir: PathBuf,
    /// Host directories the runtime reads (interpreters), visible read-only where they are.
    pub ro_paths: Vec<PathBuf>,
    /// Lambda's variables plus the function's own; the launcher adds the per-environment ones.
    pub env: Vec<(String, String)>,
    /// How long init may take: the init cap normally, the function timeout when init is retried.
    pub init_timeout: std::time::Duration,
    /// Launched ahead of invocations (provisioned concurrency): its init is nobody's cold start.
    pub ahead_of_time: bool,
    /// The runtime the sandbox may have started already for this plan (`Runtimes::plan` decides).
    pub prestart: Option<nimbus_sandbox::Prestart>,
    /// The function's `nimbus:network` tag, read when the plan is made.
    pub network: NetworkAccess,
    /// The function's execution role: its environments' credentials act as a session of it.
    pub role: String,
}

impl LaunchPlan {
    /// Sets (or replaces) one environment variable of the plan.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }
}

/// Server-wide things every environment needs.
#[derive(Clone)]
pub struct LaunchContext {
    pub sandbox: Arc<dyn Sandbox>,
    pub credentials: Arc<Credentials>,
    pub logs: LogSink,
    pub pool_events: PoolEvents,
    pub billing: logs::Billing,
    /// Fires once when the server shuts down; every environment then ends.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Held by every driver; the server waits for all clones to drop before it exits.
    pub alive: mpsc::Sender<()>,
    /// Whether idle environments are suspended between invocations.
    pub freeze_idle: bool,
    /// Nimbus's API, served on the listener a sandbox opens inside an environment's own network (set
    /// once the router exists, which is after the pool that launches environments).
    pub api: Arc<OnceLock<axum::Router>>,
    /// The connections all environments' listeners may hold together (`listen::Budgets`).
    pub connections: Arc<tokio::sync::Semaphore>,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("Runtime API listener: {source}")]
    BindRuntimeApi { source: std::io::Error },
    #[error("the task preparing the environment failed: {source}")]
    PrepareTask { source: tokio::task::JoinError },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

const COMMANDS_MAX: usize = 4;

pub async fn launch(id: EnvId, plan: &LaunchPlan, ctx: &LaunchContext) -> Result<EnvHandle, LaunchError> {
    let started = Instant::now();
    let env_name = format!("env-{id}");
    // Preparing may have to make a slot on the spot when a burst used the ready ones (a netns, a pasta
    // connecting, tens of milliseconds): on a blocking thread, not on a worker the drivers need.
    let (sandbox, name, prestart) = (ctx.sandbox.clone(), env_name.clone(), plan.prestart.clone());
    let (network, prepared) = tokio::task::spawn_blocking(move || sandbox.prepare(&name, prestart.as_ref()))
        .await
        .map_err(|source| LaunchError::PrepareTask { source })??;
    let listener = tokio_listener(network.runtime_api)?;
    let runtime_api = listener.local_addr().map_err(|source| LaunchError::BindRuntimeApi { source })?;
    let api_listener = network.api.map(tokio_listener).transpose()?;
    let session = ctx.credentials.issue_session(crate::credentials::SessionOwner {
        function: plan.function_name.clone(),
        role_arn: plan.role.clone(),
    });
    let log_stream: Arc<str> = logs::stream_name(crate::clock::today(), &plan.version).into();

    let mut env: Vec<(OsString, OsString)> =
        plan.env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect();
    let scratch = ctx.sandbox.scratch_dir(&env_name);
    let mut put = |k: &str, v: String| env.push((k.into(), v.into()));
    put("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string());
    put("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.to_string());
    put("AWS_ACCESS_KEY_ID", session.access_key_id.clone());
    put("AWS_SECRET_ACCESS_KEY", session.secret_access_key.clone());
    put("AWS_SESSION_TOKEN", session.session_token.clone());
    put("TMPDIR", scratch.display().to_string());
    if let Some(api) = &api_listener {
        // The environment reaches Nimbus's API inside its own network; the plan's AWS_ENDPOINT_URL
        // (the first one: the function's own variables come after) names the server's public listener.
        let inside = format!("http://{}", api.local_addr().map_err(|source| LaunchError::BindRuntimeApi { source })?);
        if let Some(entry) = env.iter_mut().find(|(k, _)| k == "AWS_ENDPOINT_URL") {
            entry.1 = inside.into();
        }
    }

    let spec = LaunchSpec {
        id: env_name,
        program: plan.program.clone(),
        args: plan.args.clone(),
        env,
        cwd: plan.cwd.clone(),
        code_dir: plan.code_dir.clone(),
        runtime_dir: plan.runtime_dir.clone(),
        ro_paths: plan.ro_paths.clone(),
        memory_mb: plan.memory_mb,
        scratch_mb: plan.ephemeral_storage_mb,
        prestart: plan.prestart.clone(),
        egress: match plan.network {
            NetworkAccess::Outside => Egress::Outside,
            NetworkAccess::LoopbackOnly => Egress::LoopbackOnly,
        },
        group: plan.function_name.clone(),
    };
    let instance = match ctx.sandbox.launch(&spec, prepared) {
        Ok(instance) => instance,
        Err(e) => {
            ctx.credentials.revoke(&session.access_key_id);
            return Err(e.into());
        }
    };
    let pid = instance.pid();

    let (runtime_tx, runtime_rx) = crate::runtime_api::channel();
    let app = crate::runtime_api::router(runtime_tx);
    let api_app = ctx.api.get().cloned();
    let limits = |connections: usize, idle_secs: u64, name: &'static str| listen::Limits {
        connections: Arc::new(tokio::sync::Semaphore::new(connections)),
        shared: Some(ctx.connections.clone()),
        reserved: limits::ENVIRONMENT_RESERVED_CONNECTIONS,
        when_full: listen::WhenFull::Refuse,
        idle: std::time::Duration::from_secs(idle_secs),
        name,
    };
    let runtime_limits = limits(limits::RUNTIME_API_CONNECTIONS_MAX, limits::RUNTIME_API_IDLE_SECS, "runtime-api");
    let api_limits = limits(limits::ENVIRONMENT_API_CONNECTIONS_MAX, limits::CONNECTION_IDLE_SECS, "environment-api");
    // Request bodies from inside the environment (its API requests and its runtime's reports) draw on
    // one budget of its own, on top of the server's.
    let bodies = crate::api::body::EnvironmentBodies::new();
    let server = tokio::spawn(async move {
        let runtime = listen::serve(listener, app, runtime_limits, bodies.clone(), std::future::pending());
        match (api_listener, api_app) {
            (Some(listener), Some(api)) => {
                tokio::join!(runtime, listen::serve(listener, api, api_limits, bodies, std::future::pending()));
            }
            _ => runtime.await,
        }
    });

    let (commands_tx, commands_rx) = mpsc::channel::<Command>(COMMANDS_MAX);
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
    let driver = Driver::new(super::driver::Parts {
        id,
        instance,
        runtime_rx,
        commands: commands_rx,
        ctx: ctx.clone(),
        plan_memory_mb: plan.memory_mb,
        version: plan.version.clone(),
        group: logs::group_name(&plan.function_name).into(),
        stream: log_stream.clone(),
        session_key: session.access_key_id,
        server,
        launched_at: started,
        ready: ready_tx,
        init_timeout: plan.init_timeout,
        ahead_of_time: plan.ahead_of_time,
    });
    tokio::spawn(driver.run());
    Ok(EnvHandle { id, ready: ready_rx, pid, log_stream, commands: commands_tx })
}

fn tokio_listener(listener: std::net::TcpListener) -> Result<TcpListener, LaunchError> {
    listener.set_nonblocking(true).map_err(|source| LaunchError::BindRuntimeApi { source })?;
    TcpListener::from_std(listener).map_err(|source| LaunchError::BindRuntimeApi { source })
}
