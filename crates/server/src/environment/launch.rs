//! Starting an environment: a Runtime API listener of its own, a session credential, the environment
//! variables Lambda defines, the sandboxed process, and the driver task.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use nimbus_sandbox::{LaunchSpec, Sandbox, SandboxError};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::driver::Driver;
use super::{Command, EnvHandle};
use crate::credentials::Credentials;
use crate::logs::{self, LogSink};
use crate::pool::{EnvId, PoolEvents};

/// What to run for one function version, prepared by the runtime layer.
#[derive(Debug, Clone)]
pub struct LaunchPlan {
    pub function_name: String,
    pub version: String,
    pub memory_mb: u32,
    pub ephemeral_storage_mb: u32,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub code_dir: PathBuf,
    /// Lambda's variables plus the function's own; the launcher adds the per-environment ones.
    pub env: Vec<(String, String)>,
    /// How long init may take: the init cap normally, the function timeout when init is retried.
    pub init_timeout: std::time::Duration,
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
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("bind Runtime API listener: {source}")]
    BindRuntimeApi { source: std::io::Error },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

const COMMANDS_MAX: usize = 4;

pub async fn launch(id: EnvId, plan: &LaunchPlan, ctx: &LaunchContext) -> Result<EnvHandle, LaunchError> {
    let started = Instant::now();
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).await.map_err(|source| LaunchError::BindRuntimeApi { source })?;
    let runtime_api = listener.local_addr().map_err(|source| LaunchError::BindRuntimeApi { source })?;
    let session = ctx.credentials.issue_session();
    let log_stream: Arc<str> = logs::stream_name(crate::clock::today(), &plan.version).into();
    let env_name = format!("env-{id}");

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

    let spec = LaunchSpec {
        id: env_name,
        program: plan.program.clone(),
        args: plan.args.clone(),
        env,
        cwd: plan.code_dir.clone(),
        memory_mb: plan.memory_mb,
        scratch_mb: plan.ephemeral_storage_mb,
    };
    let instance = match ctx.sandbox.launch(&spec) {
        Ok(instance) => instance,
        Err(e) => {
            ctx.credentials.revoke(&session.access_key_id);
            return Err(e.into());
        }
    };
    let pid = instance.pid();

    let (runtime_tx, runtime_rx) = crate::runtime_api::channel();
    let app = crate::runtime_api::router(runtime_tx);
    let server = tokio::spawn(async move {
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, app).await;
    });

    let (commands_tx, commands_rx) = mpsc::channel::<Command>(COMMANDS_MAX);
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
        init_timeout: plan.init_timeout,
    });
    tokio::spawn(driver.run());
    Ok(EnvHandle { id, pid, log_stream, commands: commands_tx })
}
