//! Nimbus's durable state, and the only crate that speaks SQL.
//!
//! A data directory holds:
//!
//! ```text
//! nimbus.db   functions and their versions (later aliases, event source mappings, the async journal)
//! logs.db     log groups, streams and events, served as the CloudWatch Logs API
//! code/       content-addressed deployment packages (see `code`)
//! ```
//!
//! [`Store`] is the whole interface: open it once per data directory and share it (`Send + Sync`).
//! Values going in and coming out are the validated types of `nimbus-model`; every row is parsed back
//! into them when read, so a damaged database yields [`StoreError::Corrupt`], not a panic. Durability and
//! connection handling are described in the `db` module.

pub mod code;
mod db;
mod error;
mod functions;
mod logs;

pub use code::{CodeDigest, CodeError, CodeStore, StoredCode};
pub use db::Store;
pub use error::{Result, StoreError};
pub use functions::{CodeInfo, FunctionRecord, NewFunction, VersionId};
pub use logs::{LogEvent, LogStreamInfo, StoredLogEvent};
