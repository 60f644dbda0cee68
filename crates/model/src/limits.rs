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
