//! Validated Lambda domain types. Everything that crosses the API edge is parsed into these types once;
//! nothing deeper re-checks. This crate does no IO (Cargo enforces it: it depends on serde, thiserror,
//! time and ipnet only).

mod config;
mod error;
mod function;
pub mod iam;
pub mod http_api;
pub mod limits;
mod logs;
mod name;
mod permission;
pub mod policy;
mod runtime;
mod url;

pub use config::{
    Architecture, Description, EnvVars, EphemeralStorageMb, Handler, MemoryMb, NETWORK_TAG, NetworkAccess, RoleArn,
    TagKey, Tags, TimeoutSecs,
};
pub use error::{Problems, ValidationError, ValidationKind};
pub use function::FunctionConfig;
pub use logs::{LogRetentionDays, LoggingConfig};
pub use name::{AccountId, FunctionName, FunctionRef, Qualifier, Region, Version};
pub use permission::{
    Conditions, LambdaAction, PolicyStatement, Principal as StatementPrincipal, StatementId, policy_document,
};
pub use runtime::{Runtime, RuntimeFamily};
pub use url::{Cors, InvokeMode, UrlAuthType, UrlId};
