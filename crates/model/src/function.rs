//! A function's whole validated configuration, as CreateFunction sets it and UpdateFunctionConfiguration
//! changes it.

use crate::config::{Architecture, Description, EnvVars, EphemeralStorageMb, Handler, MemoryMb, RoleArn, TimeoutSecs};
use crate::runtime::Runtime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    pub runtime: Runtime,
    pub handler: Handler,
    pub role: RoleArn,
    pub memory: MemoryMb,
    pub timeout: TimeoutSecs,
    pub ephemeral_storage: EphemeralStorageMb,
    pub environment: EnvVars,
    pub description: Description,
    pub architecture: Architecture,
    /// `LoggingConfig` as given (format, level filters, custom log group).
    pub logging: crate::LoggingConfig,
}
