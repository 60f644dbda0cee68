//! One invocation, end to end: resolve the function version, get an environment from the pool (warm,
//! or launched for this call), hand it the event, wait for the outcome, give the environment back.
//! Every trigger ends here; there is no second way to run a function.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nimbus_model::{FunctionName, Qualifier};
use nimbus_store::{FunctionRecord, Store, StoreError, VersionId};
use tokio::sync::oneshot;

use crate::arn::Arns;
use crate::environment::{Invocation, Outcome, ResponseStream, StreamSlot};
use crate::pool::{AcquireError, EnvKey, PlanError, Planner, Pool, Throttle};
use crate::runtimes::Runtimes;

/// What the API hands the invoke path.
#[derive(Debug)]
pub struct InvokeRequest {
    pub request_id: String,
    pub function: FunctionName,
    /// As the caller gave it: `None` for an unqualified name, which the invoked ARN then reflects.
    pub qualifier: Option<Qualifier>,
    pub payload: Bytes,
    pub want_log_tail: bool,
    /// The client context as JSON text (already base64-decoded).
    pub client_context: Option<String>,
    /// Where a streamed response goes, for callers that stream; `None`: a streamed response is
    /// collected into the outcome's payload (within the sync payload limit).
    pub stream: Option<crate::environment::StreamSlot>,
}

#[derive(Debug)]
pub struct InvokeResult {
    pub outcome: Outcome,
    pub executed_version: String,
    pub log_tail: Option<Vec<u8>>,
    /// Set when this invocation paid for a cold start.
    pub init_duration: Option<Duration>,
}

/// What [`Invoker::invoke_streaming`] returns.
pub enum Started {
    /// The function streams: its bytes arrive on `stream.chunks`; `done` resolves once it ended.
    Streaming {
        stream: ResponseStream,
        done: std::pin::Pin<Box<dyn std::future::Future<Output = Result<InvokeResult, InvokeError>> + Send>>,
    },
    /// The invocation ended without streaming (a buffered answer, an error, a throttle).
    Finished(Result<InvokeResult, InvokeError>),
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("Function not found: {arn}")]
    NotFound { arn: String },
    #[error("Rate Exceeded.")]
    Throttled(Throttle),
    #[error("{operation}: {source}")]
    Store { operation: &'static str, source: Box<StoreError> },
    #[error("invocation {request_id} failed inside Nimbus: {reason}")]
    Internal { request_id: String, reason: String },
}

/// Init is capped at 10 s; when it times out, Lambda retries it once inside the invocation, under the
/// function's own timeout.
const INIT_ATTEMPTS_MAX: usize = 2;
/// How long past its own deadline an invocation may take before the invoke path stops waiting for the
/// environment (which enforces the deadline itself; this only guards against a stuck driver).
const DRIVER_GRACE: Duration = Duration::from_secs(30);

pub struct Invoker {
    store: Arc<Store>,
    pool: Pool,
    runtimes: Arc<Runtimes>,
    arns: Arns,
}

impl Invoker {
    pub fn new(store: Arc<Store>, pool: Pool, runtimes: Arc<Runtimes>, arns: Arns) -> Self {
        Self { store, pool, runtimes, arns }
    }

    /// The function version `qualifier` names; an alias with weighted routing picks one of its two
    /// versions on each call. Served from the store's in-memory catalog while `nimbus.db` is unchanged.
    pub fn resolve(
        &self,
        function: &FunctionName,
        qualifier: Option<&Qualifier>,
    ) -> Result<Arc<FunctionRecord>, InvokeError> {
        let qualifier = qualifier.unwrap_or(&Qualifier::Latest);
        let version = match qualifier {
            Qualifier::Latest => VersionId::Latest,
            Qualifier::Version(v) => VersionId::Published(*v),
            Qualifier::Alias(alias) => match self.store.current_alias(function, alias) {
                Ok(a) => match &a.routing {
                    // Weighted routing: this share of invocations goes to the alias's second version.
                    Some(r) if rand::random::<f64>() < r.weight => VersionId::Published(r.version),
                    _ => a.version,
                },
                Err(StoreError::NotFound { .. }) => {
                    return Err(InvokeError::NotFound { arn: self.arns.function(function, Some(qualifier)) });
                }
                Err(source) => {
                    return Err(InvokeError::Store { operation: "resolve alias", source: Box::new(source) });
                }
            },
        };
        match self.store.current_function(function, version) {
            Ok(record) => Ok(record),
            Err(StoreError::NotFound { .. }) => {
                let shown = (!matches!(qualifier, Qualifier::Latest)).then_some(qualifier);
                Err(InvokeError::NotFound { arn: self.arns.function(function, shown) })
            }
            Err(source) => Err(InvokeError::Store { operation: "resolve function", source: Box::new(source) }),
        }
    }

    /// Runs one synchronous invocation. Runs to completion even if the caller stops waiting, so an
    /// environment is never abandoned mid-invocation.
    pub async fn invoke(self: &Arc<Self>, request: InvokeRequest) -> Result<InvokeResult, InvokeError> {
        let record = self.resolve(&request.function, request.qualifier.as_ref())?;
        let this = self.clone();
        let request_id = request.request_id.clone();
        tokio::spawn(async move { this.run(record, request).await })
            .await
            .map_err(|e| InvokeError::Internal { request_id, reason: format!("invocation task: {e}") })?
    }

    /// Runs one invocation for a caller that streams: returns as soon as the function starts streaming
    /// its response (the bytes then follow on the stream, the outcome on `done`), or when the
    /// invocation ends without streaming. Still the one invoke path: this is [`Invoker::invoke`] with a
    /// [`StreamSlot`] the runtime's streamed response is handed to.
    pub async fn invoke_streaming(self: &Arc<Self>, mut request: InvokeRequest) -> Started {
        let (slot, mut started) = StreamSlot::new();
        request.stream = Some(slot);
        let this = self.clone();
        let mut done = tokio::spawn(async move { this.invoke(request).await });
        let joined = |r: Result<Result<InvokeResult, InvokeError>, tokio::task::JoinError>| {
            r.unwrap_or_else(|e| {
                Err(InvokeError::Internal { request_id: String::new(), reason: format!("invocation task: {e}") })
            })
        };
        tokio::select! {
            biased;
            stream = &mut started => match stream {
                Ok(stream) => Started::Streaming { stream, done: Box::pin(async move { joined(done.await) }) },
                Err(_) => Started::Finished(joined(done.await)),
            },
            result = &mut done => match started.try_recv() {
                // It streamed and finished before this task looked.
                Ok(stream) => Started::Streaming { stream, done: Box::pin(std::future::ready(joined(result))) },
                Err(_) => Started::Finished(joined(result)),
            },
        }
    }

    async fn run(&self, record: Arc<FunctionRecord>, request: InvokeRequest) -> Result<InvokeResult, InvokeError> {
        let executed_version = record.version.to_string();
        let invoked_function_arn = self.arns.function(&request.function, request.qualifier.as_ref());
        let key = Self::key(&record);
        let timeout = Duration::from_millis(record.config.timeout.as_millis());
        let mut init_timeout = Duration::from_millis(nimbus_model::limits::INIT_TIMEOUT_MS);
        for attempt in 1..=INIT_ATTEMPTS_MAX {
            let lease = match self.pool.acquire(key.clone(), self.planner(&record, init_timeout)).await {
                Ok(lease) => lease,
                Err(AcquireError::Throttled(t)) => return Err(InvokeError::Throttled(t)),
                Err(AcquireError::Plan(plan)) => {
                    return Ok(InvokeResult {
                        outcome: plan_failure(&request.request_id, &plan),
                        executed_version,
                        log_tail: None,
                        init_duration: None,
                    });
                }
                Err(e) => {
                    return Err(InvokeError::Internal { request_id: request.request_id, reason: e.to_string() });
                }
            };
            let (reply, report) = oneshot::channel();
            let invocation = Invocation {
                request_id: request.request_id.clone(),
                payload: request.payload.clone(),
                timeout,
                invoked_function_arn: invoked_function_arn.clone(),
                client_context: request.client_context.clone(),
                cognito_identity: None,
                want_log_tail: request.want_log_tail,
                stream: request.stream.clone(),
                reply,
            };
            if lease.env.invoke(invocation).await.is_err() {
                // The environment ended between being leased and being used; try a fresh one.
                lease.release(false).await;
                continue;
            }
            let guard = timeout + init_timeout + DRIVER_GRACE;
            let report = match tokio::time::timeout(guard, report).await {
                Ok(Ok(report)) => report,
                Ok(Err(_)) | Err(_) => {
                    lease.release(false).await;
                    return Err(InvokeError::Internal {
                        request_id: request.request_id,
                        reason: "the execution environment ended without a result".into(),
                    });
                }
            };
            lease.release(report.outcome.environment_survives()).await;
            if matches!(report.outcome, Outcome::InitTimeout { .. }) && attempt < INIT_ATTEMPTS_MAX {
                init_timeout = timeout;
                continue;
            }
            let outcome = match report.outcome {
                Outcome::InitTimeout { payload } => Outcome::Timeout { payload },
                other => other,
            };
            return Ok(InvokeResult {
                outcome,
                executed_version,
                log_tail: report.log_tail,
                init_duration: report.init_duration,
            });
        }
        Err(InvokeError::Internal {
            request_id: request.request_id,
            reason: "no execution environment could be started".into(),
        })
    }

    fn planner(&self, record: &Arc<FunctionRecord>, init_timeout: Duration) -> Planner {
        let record = record.clone();
        let store = self.store.clone();
        let runtimes = self.runtimes.clone();
        Box::new(move || {
            let code_dir = store.code().unpacked(&record.code.digest).map_err(|e| PlanError::Code(e.to_string()))?;
            let mut plan = runtimes.plan(&record, code_dir)?;
            plan.init_timeout = init_timeout;
            Ok(plan)
        })
    }

    /// Says where a runtime's declared version differs from the host interpreter that will run it.
    pub fn runtime_note(&self, runtime: nimbus_model::Runtime) -> Option<String> {
        self.runtimes.version_note(runtime)
    }

    /// Tells the pool about a changed reserved concurrency.
    pub async fn set_reserved(&self, function: &FunctionName, reserved: Option<u32>) {
        self.pool.set_reserved(function.as_str(), reserved).await;
    }

    /// Stops reusing the environments of one version of `function` (`$LATEST` after an update, or a
    /// deleted version), or of all its versions when `version` is `None`.
    pub async fn retire(&self, function: &FunctionName, version: Option<&VersionId>) {
        let version = version.map(ToString::to_string);
        self.pool.retire(function.as_str(), version.as_deref()).await;
    }

    /// Keeps `count` environments of this function version initialised ahead of invocations, with
    /// `AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency` (0 stops).
    pub async fn provision(&self, record: FunctionRecord, count: usize) {
        let record = Arc::new(record);
        let key = Self::key(&record);
        let store = self.store.clone();
        let runtimes = self.runtimes.clone();
        let factory: crate::pool::PlannerFactory = Arc::new(move || {
            let (record, store, runtimes) = (record.clone(), store.clone(), runtimes.clone());
            Box::new(move || {
                let code_dir =
                    store.code().unpacked(&record.code.digest).map_err(|e| PlanError::Code(e.to_string()))?;
                let mut plan = runtimes.plan(&record, code_dir)?;
                plan.set_env("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency");
                plan.ahead_of_time = true;
                Ok(plan)
            })
        });
        self.pool.provision(key, count, factory).await;
    }

    /// How many provisioned environments of this version exist, and how many finished init.
    pub async fn provisioned_status(&self, record: &FunctionRecord) -> crate::pool::ProvisionedStatus {
        self.pool.provisioned_status(Self::key(record)).await
    }

    fn key(record: &FunctionRecord) -> EnvKey {
        EnvKey {
            function: record.name.as_str().to_owned(),
            version: record.version.to_string(),
            revision: record.revision_id.clone(),
            network: record.tags.network_access(),
        }
    }
}

/// A function that cannot even be launched fails its invocation the way Lambda reports it.
fn plan_failure(request_id: &str, error: &PlanError) -> Outcome {
    let error_type = match error {
        PlanError::InvalidEntrypoint => "Runtime.InvalidEntrypoint",
        PlanError::RuntimeUnavailable(_) => "Runtime.Unavailable",
        PlanError::Code(_) => "Runtime.Unknown",
    };
    Outcome::InitError {
        payload: Outcome::platform_error(error_type, format!("RequestId: {request_id} Error: {error}")),
    }
}
