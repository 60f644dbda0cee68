//! The one error type of the store. Each variant carries the facts the API layer needs to build the AWS
//! error a client expects, so nothing above this crate has to look at SQLite errors.

use std::path::PathBuf;

use crate::code::CodeError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A function, version, log group or log stream that does not exist (AWS:
    /// `ResourceNotFoundException`, 404).
    #[error("{what} not found: {name}")]
    NotFound { what: &'static str, name: String },

    /// Something with that name already exists (AWS: `ResourceConflictException`, 409).
    #[error("{what} already exists: {name}")]
    Conflict { what: &'static str, name: String },

    /// An IAM entity still in use (IAM: `DeleteConflict`, 409); the message is IAM's.
    #[error("{message}")]
    DeleteConflict { message: String },

    /// An IAM quota (IAM: `LimitExceeded`, 409); the message is IAM's.
    #[error("{message}")]
    LimitExceeded { message: String },

    /// The caller's `RevisionId` is not the current one (AWS: `PreconditionFailedException`, 412).
    #[error("revision id {expected} does not match the latest revision id {actual}")]
    PreconditionFailed { expected: String, actual: String },

    /// PublishVersion's `CodeSha256` is not `$LATEST`'s (AWS: `InvalidParameterValueException`, 400).
    #[error("CodeSha256 ({expected}) is different from current CodeSha256 in $LATEST ({actual})")]
    CodeShaMismatch { expected: String, actual: String },

    /// A paging token this store did not hand out (AWS Logs: `InvalidParameterException`).
    #[error("invalid paging token: {token}")]
    InvalidToken { token: String },

    /// A FilterLogEvents pattern this store cannot evaluate, such as the JSON (`{ $.x = 1 }`) and
    /// space-delimited (`[ip, user]`) forms (AWS Logs: `InvalidParameterException`).
    #[error("unsupported filter pattern {pattern:?}: {reason}")]
    InvalidPattern { pattern: String, reason: &'static str },

    /// A stored row that no longer parses into the model's types: the database was edited by hand or
    /// written by an incompatible build. Reported, never panicked on.
    #[error("corrupt row in {table} ({key}): {reason}")]
    Corrupt { table: &'static str, key: String, reason: String },

    #[error("sqlite failed to {op}: {source}")]
    Sqlite {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    #[error(transparent)]
    Code(#[from] CodeError),

    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("migrating the database at {} failed: {source}", path.display())]
    Migrate {
        path: PathBuf,
        #[source]
        source: rusqlite_migration::Error,
    },
}

impl StoreError {
    /// Names the step that failed, for use as `.map_err(StoreError::sqlite("insert function"))`.
    pub(crate) fn sqlite(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { op, source }
    }

    pub(crate) fn corrupt(table: &'static str, key: impl Into<String>, reason: impl ToString) -> StoreError {
        StoreError::Corrupt { table, key: key.into(), reason: reason.to_string() }
    }

    /// Whether SQLite gave up waiting for another writer (after `busy_timeout`). The server may retry
    /// or answer 503 rather than 500.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite { source: rusqlite::Error::SqliteFailure(e, _), .. }
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
