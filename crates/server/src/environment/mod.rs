//! One execution environment: a sandboxed runtime process, its private Runtime API listener, and the
//! driver task that owns its state. Invocations reach it through an [`EnvHandle`]; dropping every
//! handle shuts it down.

mod driver;
mod launch;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// For the fuzz targets: how runtime error reports are read.
pub(crate) use driver::{error_report, report_error_type};
pub use launch::{LaunchContext, LaunchPlan, launch};

use crate::pool::EnvId;

/// Everything the driver needs to run one invocation.
#[derive(Debug)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    pub timeout: Duration,
    pub invoked_function_arn: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    /// Keep the invocation's log lines for `X-Amz-Log-Type: Tail`.
    pub want_log_tail: bool,
    /// Set when the caller can take a streamed response (InvokeWithResponseStream, RESPONSE_STREAM URLs).
    pub stream: Option<StreamSlot>,
    pub reply: oneshot::Sender<InvokeReport>,
}

/// A streamed response as it arrives from the runtime: its declared content type, then its bytes in
/// order (the channel closes when the runtime's body ends; how it ended is the invocation's outcome).
#[derive(Debug)]
pub struct ResponseStream {
    pub content_type: Option<String>,
    pub chunks: mpsc::Receiver<Bytes>,
}

/// Where a streamed response goes: taken by the first runtime response that streams. Shared (an
/// invocation whose init timed out is handed to a second environment), taken at most once.
#[derive(Debug, Clone)]
pub struct StreamSlot(Arc<std::sync::Mutex<Option<oneshot::Sender<ResponseStream>>>>);

impl StreamSlot {
    pub fn new() -> (Self, oneshot::Receiver<ResponseStream>) {
        let (tx, rx) = oneshot::channel();
        (Self(Arc::new(std::sync::Mutex::new(Some(tx)))), rx)
    }

    pub fn take(&self) -> Option<oneshot::Sender<ResponseStream>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

/// How an invocation ended. A function failing is an outcome, not an error of Nimbus's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success {
        payload: Bytes,
    },
    /// The runtime reported an error for this invocation (`/error`); the payload is its report.
    FunctionError {
        payload: Bytes,
    },
    /// The response was larger than the sync payload limit.
    ResponseTooLarge {
        payload: Bytes,
    },
    /// Init failed (`/init/error`, or the runtime exited before asking for work).
    InitError {
        payload: Bytes,
    },
    /// Init ran past the init timeout; Lambda retries init once inside the invocation.
    InitTimeout {
        payload: Bytes,
    },
    /// The invocation ran past its timeout; the environment is destroyed.
    Timeout {
        payload: Bytes,
    },
    /// The runtime process exited mid-invocation.
    Crashed {
        payload: Bytes,
    },
}

impl Outcome {
    pub fn payload(&self) -> &Bytes {
        match self {
            Self::Success { payload }
            | Self::FunctionError { payload }
            | Self::ResponseTooLarge { payload }
            | Self::InitError { payload }
            | Self::InitTimeout { payload }
            | Self::Timeout { payload }
            | Self::Crashed { payload } => payload,
        }
    }

    pub fn is_function_error(&self) -> bool {
        !matches!(self, Self::Success { .. })
    }

    /// Whether the environment may serve another invocation.
    pub fn environment_survives(&self) -> bool {
        matches!(self, Self::Success { .. } | Self::FunctionError { .. } | Self::ResponseTooLarge { .. })
    }

    /// `{"errorType": ..., "errorMessage": ...}`, the shape Lambda uses for errors it raises itself.
    pub fn platform_error(error_type: &str, message: String) -> Bytes {
        Bytes::from(serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string())
    }
}

#[derive(Debug)]
pub struct InvokeReport {
    pub outcome: Outcome,
    /// The invocation's log lines (START to REPORT), when a tail was asked for.
    pub log_tail: Option<Vec<u8>>,
    /// Set when this invocation paid for a cold start.
    pub init_duration: Option<Duration>,
    pub duration: Duration,
}

pub(crate) enum Command {
    Invoke(Invocation),
}

/// A way to send invocations to one environment. Cheap to clone.
#[derive(Clone)]
pub struct EnvHandle {
    pub id: EnvId,
    /// Becomes true when the runtime finished init (its first `/next`).
    pub ready: tokio::sync::watch::Receiver<bool>,
    pub pid: u32,
    pub log_stream: Arc<str>,
    commands: mpsc::Sender<Command>,
}

impl EnvHandle {
    /// Hands `invocation` to the environment. Fails (returning the invocation) only when the
    /// environment has already ended.
    pub async fn invoke(&self, invocation: Invocation) -> Result<(), Invocation> {
        self.commands.send(Command::Invoke(invocation)).await.map_err(|mpsc::error::SendError(c)| match c {
            Command::Invoke(i) => i,
        })
    }
}
