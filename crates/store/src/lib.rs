//! placeholder
pub mod code;
