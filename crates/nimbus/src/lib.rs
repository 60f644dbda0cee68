//! The `nimbus` client library: a SigV4-signing HTTP client for the Nimbus API, used by the CLI
//! subcommands and the benchmark program.

pub mod client;
