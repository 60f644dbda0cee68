//! Nimbus's durable state, and the only crate that speaks SQL.
//!
//! A data directory holds:
//!
//! ```text
//! nimbus.db   functions and their versions, event invoke configs, event source mappings, the async
//!             event journal (synchronous=FULL: an accepted event survives a power cut)
//! logs.db     log groups, streams and events, served as the CloudWatch Logs API
//! queues.db   SQS-compatible queues and their messages (its own file: its write rate would otherwise
//!             queue metadata writes behind it)
//! code/       content-addressed deployment packages (see `code`)
//! ```
//!
//! [`Store`] is the whole interface: open it once per data directory and share it (`Send + Sync`).
//! Values going in and coming out are the validated types of `nimbus-model`; every row is parsed back
//! into them when read, so a damaged database yields [`StoreError::Corrupt`], not a panic. Durability and
//! connection handling are described in the `db` module.

mod aliases;
mod async_events;
mod catalog;
pub mod code;
mod concurrency;
mod db;
mod error;
mod event_rules;
mod functions;
pub mod iam;
mod http_apis;
mod logs;
mod mappings;
mod policies;
mod provisioned;
mod queues;
mod urls;
mod s3;

pub use aliases::{AliasRecord, AliasUpdate, Routing};
pub use async_events::{AsyncEvent, EventInvokeConfig, NewAsyncEvent};
pub use code::{CodeDigest, CodeError, CodeStore, StoredCode};
pub use db::Store;
pub use error::{Result, StoreError};
pub use event_rules::{DEFAULT_BUS, RuleRecord, RuleWithTargets};
pub use functions::{CodeInfo, FunctionRecord, NewFunction, VersionId};
pub use logs::{LogBatch, LogEvent, LogGroupInfo, LogStreamInfo, StoredLogEvent};
pub use mappings::MappingRecord;
pub use policies::{PolicyRecord, PolicyScope};
pub use provisioned::ProvisionedConfig;
pub use queues::{
    ChangeVisibility, NewMessage, QueueCounts, QueueRecord, ReceiveParams, ReceivedMessage, Redrive, SendOutcome,
};
pub use urls::{UrlConfig, UrlUpdate};
pub use s3::{BucketRecord, ObjectRecord, PartRecord, UploadRecord};
