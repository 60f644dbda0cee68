//! The event plane: everything that invokes functions on its own (never except through
//! `invoke::Invoker`): the asynchronous invocation queue with its retries and destinations, the
//! pollers of event source mappings, and EventBridge's buses (rules matched by the one pattern
//! matcher, `filter`, delivering through the async queue and SQS).

pub mod async_invoke;
pub mod bus;
pub mod cron;
pub mod filter;
pub mod input;
pub mod mappings;
pub mod schedule;
pub mod scheduler;
