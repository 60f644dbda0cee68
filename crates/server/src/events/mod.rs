//! The event plane: everything that invokes functions on its own (never except through
//! `invoke::Invoker`): the asynchronous invocation queue with its retries and destinations, and the
//! pollers of event source mappings.

pub mod async_invoke;
pub mod filter;
pub mod mappings;
