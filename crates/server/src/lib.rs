//! placeholder
pub mod auth;
