//! Every limit Nimbus enforces, defined once, with the AWS value it copies.
//! Source: <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html> unless noted.

/// Function memory, "128 MB to 10,240 MB, in 1-MB increments".
pub const MEMORY_MB_MIN: u32 = 128;
pub const MEMORY_MB_MAX: u32 = 10_240;
pub const MEMORY_MB_DEFAULT: u32 = 128;

/// Function timeout, "900 seconds (15 minutes)"; the API default is 3 s.
pub const TIMEOUT_SECS_MIN: u32 = 1;
pub const TIMEOUT_SECS_MAX: u32 = 900;
pub const TIMEOUT_SECS_DEFAULT: u32 = 3;

/// Ephemeral storage (/tmp), "between 512 MB and 10,240 MB, in 1-MB increments".
pub const EPHEMERAL_STORAGE_MB_MIN: u32 = 512;
pub const EPHEMERAL_STORAGE_MB_MAX: u32 = 10_240;

/// Environment variables, "4 KB, ... total size of all environment variables" (keys plus values).
pub const ENV_VARS_BYTES_MAX: usize = 4 * 1024;

/// Invocation payload, "6 MB each for request and response (synchronous)". Lambda's error messages show
/// the exact bounds: "Request must be smaller than 6291456 bytes for the InvokeFunction operation", and
/// "Response payload size exceeded maximum allowed payload size (6291556 bytes)".
pub const SYNC_REQUEST_BYTES_MAX: usize = 6 * 1024 * 1024;
pub const SYNC_RESPONSE_BYTES_MAX: usize = 6 * 1024 * 1024 + 100;
/// A streamed response (InvokeWithResponseStream, RESPONSE_STREAM URLs): AWS's limit since July 2025
/// is 200 MB ("Lambda quotas": response streaming payload).
pub const STREAMED_RESPONSE_BYTES_MAX: usize = 200 * 1024 * 1024;
/// "The first 6 MB of your function's response has uncapped bandwidth. Lambda streams additional bytes
/// at a maximum rate of 2 MBps" (response streaming, bandwidth).
pub const STREAM_UNCAPPED_BYTES: usize = 6 * 1024 * 1024;
pub const STREAM_CAPPED_BYTES_PER_SEC: u64 = 2 * 1024 * 1024;
/// "256 KB (asynchronous)" was raised to 1 MB in 2025.
pub const ASYNC_PAYLOAD_BYTES_MAX: usize = 1024 * 1024;
/// The deprecated InvokeAsync operation keeps the old 256 KB bound.
pub const INVOKE_ASYNC_PAYLOAD_BYTES_MAX: usize = 256 * 1024;

/// Deployment package, "50 MB (zipped, when uploaded through the Lambda API or SDKs)". The request that
/// carries it is base64 JSON, so the HTTP body limit for CreateFunction/UpdateFunctionCode is larger; AWS
/// reports it as "Request must be smaller than 69905067 bytes".
pub const ZIP_BYTES_MAX: usize = 50 * 1024 * 1024;
pub const CODE_REQUEST_BYTES_MAX: usize = 69_905_067;
/// "250 MB (unzipped)", the contents of the deployment package and layers.
pub const UNZIPPED_BYTES_MAX: u64 = 250 * 1024 * 1024;

/// Init phase, "10 seconds" (then it is retried inside the first invoke under the function timeout).
pub const INIT_TIMEOUT_MS: u64 = 10_000;

/// Names and strings, from the botocore model of Lambda 2015-03-31.
pub const FUNCTION_NAME_CHARS_MAX: usize = 64;
/// Function names given as ARNs may be longer (the model's `FunctionName` shape allows 140).
pub const FUNCTION_REF_CHARS_MAX: usize = 140;
pub const DESCRIPTION_CHARS_MAX: usize = 256;
pub const HANDLER_CHARS_MAX: usize = 128;
pub const ALIAS_CHARS_MAX: usize = 128;
/// Tags: "50 tags per resource", keys up to 128 and values up to 256 characters.
pub const TAGS_PER_RESOURCE_MAX: usize = 50;
pub const TAG_KEY_CHARS_MAX: usize = 128;
pub const TAG_VALUE_CHARS_MAX: usize = 256;

/// ListFunctions and friends: `MaxItems` is 1..=10000 in the model; AWS returns at most 50 per page.
pub const LIST_PAGE_ITEMS_MAX: usize = 50;

/// Default account concurrency ("1,000 ... can be increased").
pub const ACCOUNT_CONCURRENCY_DEFAULT: u32 = 1000;
/// Reservations may not leave less than this for unreserved functions ("Lambda requires at least 100
/// simultaneous executions to be available to all functions that don't have reserved concurrency").
pub const UNRESERVED_CONCURRENCY_MIN: u32 = 100;
/// "1,769 MB" of memory buys one full vCPU.
pub const MEMORY_MB_PER_VCPU: u32 = 1769;

// ---- Nimbus's own bounds on what clients and functions may hold of the server (issue 14). AWS states
// no numbers for these; each is chosen so that one client or one function cannot starve the others.

/// Connections one environment may hold to its Runtime API listener. The official runtime clients
/// keep one keep-alive connection; the Rust client may poll `/next` from several tasks at once.
pub const RUNTIME_API_CONNECTIONS_MAX: usize = 16;
/// Connections one environment may hold to the API listener inside its network (its
/// `AWS_ENDPOINT_URL`): botocore's pool keeps up to 10 per client, so several clients fit.
pub const ENVIRONMENT_API_CONNECTIONS_MAX: usize = 32;
/// Connections of each of an environment's two listeners that do not draw on the budget all
/// environments share (they come out of the descriptors kept in reserve): however many connections
/// other functions hold, a runtime reaches its Runtime API and a function its API.
pub const ENVIRONMENT_RESERVED_CONNECTIONS: usize = 2;
/// Upper bounds of the connection budgets computed from the open-files limit (a quarter of it each).
pub const PUBLIC_CONNECTIONS_MAX: usize = 16_384;
pub const ENVIRONMENT_CONNECTIONS_TOTAL_MAX: usize = 65_536;
/// How long a connection may wait for the complete header of its next request (a slow header, or a
/// keep-alive connection left idle). Clients reconnect when an idle connection was closed.
pub const CONNECTION_IDLE_SECS: u64 = 60;
/// The same for the Runtime API: between `/next` answering and `/response`, the runtime's connection
/// sits idle for as long as the function runs, so it must outlive the longest invocation.
pub const RUNTIME_API_IDLE_SECS: u64 = TIMEOUT_SECS_MAX as u64 + 60;

/// Request bodies: bytes being received at once by all listeners together, and by the requests of one
/// environment (arriving on its in-netns API listener). Past them a request waits up to
/// `BODY_BUDGET_WAIT_MS` and is then throttled (429), instead of the server's memory growing.
pub const REQUEST_BODY_BYTES_IN_FLIGHT_MAX: usize = 128 * 1024 * 1024;
pub const ENVIRONMENT_BODY_BYTES_IN_FLIGHT_MAX: usize = 16 * 1024 * 1024;
pub const BODY_BUDGET_WAIT_MS: u64 = 2_000;
/// A body must arrive within this much time plus one second per `BODY_BYTES_PER_SEC_MIN` of its
/// length (70 MB of code: about 5 minutes); a stalled upload is then answered 408 and closed.
pub const BODY_DEADLINE_BASE_SECS: u64 = 30;
pub const BODY_BYTES_PER_SEC_MIN: u64 = 256 * 1024;

/// Request bodies of operations whose real bound AWS states in bytes are the constants above
/// (`SYNC_REQUEST_BYTES_MAX` for Invoke, `INVOKE_ASYNC_PAYLOAD_BYTES_MAX`, `CODE_REQUEST_BYTES_MAX`).
/// The JSON-protocol services (SQS, CloudWatch Logs) take 1 MiB of message or log events, which JSON
/// escaping can grow up to six times (a control character is `\u0001`).
pub const JSON_PROTOCOL_REQUEST_BYTES_MAX: usize = 6 * 1024 * 1024 + 64 * 1024;
/// Every other Lambda operation carries a small JSON document (the largest, a configuration with 4 KB
/// of variables, or a resource policy of 20 KB).
pub const OTHER_REQUEST_BYTES_MAX: usize = 1024 * 1024;
/// CloudWatch Logs (<https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/>): a
/// FilterLogEvents `filterPattern` is "Length Constraints: Minimum length of 0. Maximum length of 1024";
/// GetLogEvents and FilterLogEvents return "as many log events as can fit in a response size of 1 MB
/// (up to 10,000 log events)". An event counts as its message's UTF-8 bytes plus 26, as PutLogEvents
/// counts it.
pub const LOGS_FILTER_PATTERN_CHARS_MAX: usize = 1024;
pub const LOGS_EVENTS_PAGE_MAX: usize = 10_000;
pub const LOGS_RESPONSE_BYTES_MAX: usize = 1024 * 1024;
pub const LOGS_EVENT_OVERHEAD_BYTES: usize = 26;

/// SQS (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html>):
/// "No more than 50 tags per queue", a tag key of at most 128 characters and a value of at most 256;
/// a queue `Policy` of at most 20,480 bytes ("Policy: maximum 20 KB"). Other free-form attributes
/// (RedrivePolicy, RedriveAllowPolicy, KmsMasterKeyId) carry ARNs, ids and a list of at most 10 source
/// queue ARNs: Nimbus bounds each by 10 KB (AWS: SetQueueAttributes' whole request).
pub const SQS_TAGS_PER_QUEUE_MAX: usize = 50;
pub const SQS_TAG_KEY_CHARS_MAX: usize = 128;
pub const SQS_TAG_VALUE_CHARS_MAX: usize = 256;
pub const SQS_POLICY_BYTES_MAX: usize = 20 * 1024;
pub const SQS_ATTRIBUTE_BYTES_MAX: usize = 10 * 1024;
