//! Bucket event notifications: Put/GetBucketNotificationConfiguration (Lambda functions and SQS
//! queues as destinations, prefix/suffix filters, AWS's validation) and the delivery of AWS's event
//! record for each object created or removed.
//!
//! Delivery is durable before the write is answered: a function's event is committed to the async
//! invoke journal (`events::async_invoke`, which retries and routes to destinations), a queue's message
//! to the queue service's database, both before the S3 response goes out. So the notification of an
//! acknowledged write survives `kill -9`; a crash between the object's commit and the journal leaves
//! a write that was never acknowledged (the client retries it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Nimbus3, store_error};
use crate::authz::Identity;
use crate::events::async_invoke::AsyncQueue;
use crate::sqs::Sqs;
use nimbus_model::FunctionName;
use nimbus_store::{NewAsyncEvent, StoreError, VersionId};

/// The event types a configuration may name, as AWS lists them for these destinations.
const EVENTS: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
];

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Target {
    Function(String),
    Queue(String),
}

/// One configuration, as stored (the bucket row's `notification` JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Rule {
    id: String,
    target: Target,
    events: Vec<String>,
    prefix: Option<String>,
    suffix: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Config {
    rules: Vec<Rule>,
}

/// What the delivery needs from the rest of Nimbus.
pub(crate) struct Notifier {
    pub async_queue: AsyncQueue,
    pub sqs: Arc<Sqs>,
    pub account: String,
}

/// `configured` (`s3:ObjectCreated:*`, `s3:ObjectCreated:Put`) names `event` (`ObjectCreated:Put`).
fn names(configured: &str, event: &str) -> bool {
    let configured = configured.strip_prefix("s3:").unwrap_or(configured);
    match configured.strip_suffix(":*") {
        Some(family) => event.strip_prefix(family).is_some_and(|rest| rest.starts_with(':')),
        None => configured == event,
    }
}

/// Two configured event types that some event matches both of.
fn events_overlap(a: &str, b: &str) -> bool {
    let concrete = |s: &str| s.trim_start_matches("s3:").to_owned();
    a == b || names(a, &concrete(b)) || names(b, &concrete(a))
}

fn rules_overlap(a: &Rule, b: &Rule) -> bool {
    let events = a.events.iter().any(|x| b.events.iter().any(|y| events_overlap(x, y)));
    let prefixes = match (a.prefix.as_deref(), b.prefix.as_deref()) {
        (Some(x), Some(y)) => x.starts_with(y) || y.starts_with(x),
        _ => true,
    };
    let suffixes = match (a.suffix.as_deref(), b.suffix.as_deref()) {
        (Some(x), Some(y)) => x.ends_with(y) || y.ends_with(x),
        _ => true,
    };
    events && prefixes && suffixes
}

fn invalid(message: &str) -> s3s::S3Error {
    s3_error!(InvalidArgument, "{message}")
}

fn parse_rule(
    id: Option<String>,
    target: Target,
    events: Vec<Event>,
    filter: Option<NotificationConfigurationFilter>,
) -> S3Result<Rule> {
    let events: Vec<String> = events.into_iter().map(String::from).collect();
    if events.is_empty() {
        return Err(invalid("At least one event must be specified"));
    }
    if let Some(bad) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        return Err(invalid(&format!("The event '{bad}' is not supported for notifications")));
    }
    let (mut prefix, mut suffix) = (None, None);
    for rule in filter.and_then(|f| f.key).and_then(|k| k.filter_rules).unwrap_or_default() {
        let name = rule.name.map(|n| n.as_str().to_ascii_lowercase()).unwrap_or_default();
        let slot = match name.as_str() {
            "prefix" => &mut prefix,
            "suffix" => &mut suffix,
            _ => return Err(invalid("filter rule name must be either prefix or suffix")),
        };
        if slot.is_some() {
            return Err(invalid(&format!("Cannot specify more than one {name} rule in a filter.")));
        }
        *slot = Some(rule.value.unwrap_or_default());
    }
    let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    Ok(Rule { id, target, events, prefix, suffix })
}

/// Parses and checks a configuration as AWS does (known events, one prefix and suffix each, no
/// overlapping rules); destinations are checked by [`validate_destinations`].
fn parse(input: NotificationConfiguration) -> S3Result<Config> {
    if input.topic_configurations.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(invalid("Unable to validate the following destination configurations"));
    }
    let mut rules = Vec::new();
    for c in input.lambda_function_configurations.unwrap_or_default() {
        rules.push(parse_rule(c.id, Target::Function(c.lambda_function_arn), c.events, c.filter)?);
    }
    for c in input.queue_configurations.unwrap_or_default() {
        rules.push(parse_rule(c.id, Target::Queue(c.queue_arn), c.events, c.filter)?);
    }
    for (i, a) in rules.iter().enumerate() {
        if rules[..i].iter().any(|b| rules_overlap(a, b)) {
            return Err(invalid(
                "Configurations overlap. Configurations on the same bucket cannot share a common event type.",
            ));
        }
        if rules[..i].iter().any(|b| b.id == a.id) {
            return Err(invalid("Configuration ids must be unique"));
        }
    }
    Ok(Config { rules })
}

/// `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`
fn function_of(arn: &str, region: &str, account: &str) -> Option<(FunctionName, Option<String>)> {
    let rest = arn.strip_prefix(&format!("arn:aws:lambda:{region}:{account}:function:"))?;
    let (name, qualifier) = match rest.split_once(':') {
        Some((name, q)) => (name, Some(q.to_owned())),
        None => (rest, None),
    };
    Some((FunctionName::parse(name).ok()?, qualifier))
}

fn unvalidated(arn: &str) -> s3s::S3Error {
    s3_error!(InvalidArgument, "Unable to validate the following destination configurations: {arn}")
}

/// Destinations must exist (functions and standard queues), as AWS checks them; queues then get
/// the `s3:TestEvent` message.
async fn validate_destinations(
    s3: &Nimbus3,
    notifier: &Notifier,
    bucket: &str,
    config: &Config,
    request_id: &str,
) -> S3Result<()> {
    let mut queues = Vec::new();
    for rule in &config.rules {
        match &rule.target {
            Target::Function(arn) => {
                let (name, _) = function_of(arn, &s3.region, &notifier.account).ok_or_else(|| unvalidated(arn))?;
                match s3.store.get_function(&name, &VersionId::Latest) {
                    Ok(_) => {}
                    Err(StoreError::NotFound { .. }) => return Err(unvalidated(arn)),
                    Err(e) => return Err(store_error(e)),
                }
                // TODO(permissions): AWS also requires the function's resource-based policy to allow
                // `s3.amazonaws.com` to invoke it (AddPermission). Main has no function policies yet
                // (branch `front`'s api/lambda/permissions.rs); check it through authz once it lands.
            }
            Target::Queue(arn) => {
                let name = notifier.sqs.name_from_arn(arn).ok_or_else(|| unvalidated(arn))?;
                let queue = notifier.sqs.queue(name).await.map_err(|_| unvalidated(arn))?;
                if queue.fifo {
                    return Err(unvalidated(arn));
                }
                queues.push(queue);
            }
        }
    }
    for queue in queues {
        let body = json!({
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": iso_now(),
            "Bucket": bucket,
            "RequestId": request_id,
            "HostId": host_id(request_id),
        });
        send_to_queue(notifier, &queue, body.to_string()).await?;
    }
    Ok(())
}

async fn send_to_queue(notifier: &Notifier, queue: &nimbus_store::QueueRecord, body: String) -> S3Result<()> {
    let message = crate::sqs::Outgoing {
        body,
        attributes: Default::default(),
        system_attributes: Default::default(),
        delay_s: None,
        group_id: None,
        dedup_id: None,
    };
    notifier.sqs.send(queue, &notifier.account, vec![message]).await.map(|_| ()).map_err(|e| {
        tracing::error!(error = %e, queue = queue.name, "could not deliver an S3 notification to its queue");
        s3_error!(InternalError, "could not deliver the notification")
    })
}

fn iso_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

/// An `x-amz-id-2`-shaped value derived from the request id.
fn host_id(request_id: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(request_id.as_bytes()))
}

/// The key as S3 puts it in event records: form-URL-encoded (space is `+`), `/` kept.
fn event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' | b'/' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A hex value that grows with each event (S3's `sequencer` orders events of one key).
fn sequencer() -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return format!("{next:018X}"),
            Err(actual) => prev = actual,
        }
    }
}

/// What happened to an object, for its event record.
pub(crate) struct Happened<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// `ObjectCreated:Put` and the like (no `s3:` prefix, as records carry it).
    pub event: &'static str,
    /// Size and ETag, for created objects only (deletes carry neither).
    pub object: Option<(i64, &'a str)>,
}

/// Who asked and the request's id, from the request's extensions.
pub(crate) fn requester(extensions: &http::Extensions) -> (String, String) {
    let principal = match extensions.get::<Identity>() {
        Some(identity) => format!("AWS:{}", identity.principal().user_id),
        None => "ANONYMOUS_PRINCIPAL".to_owned(),
    };
    let request_id =
        extensions.get::<crate::api::RequestId>().map_or_else(|| uuid::Uuid::new_v4().to_string(), |r| r.0.clone());
    (principal, request_id)
}

fn record(s3: &Nimbus3, rule: &Rule, happened: &Happened<'_>, principal: &str, request_id: &str) -> serde_json::Value {
    let mut object = json!({ "key": event_key(happened.key), "sequencer": sequencer() });
    if let Some((size, etag)) = happened.object {
        object["size"] = json!(size);
        object["eTag"] = json!(etag);
    }
    json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": s3.region,
        "eventTime": iso_now(),
        "eventName": happened.event,
        "userIdentity": { "principalId": principal },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": { "x-amz-request-id": request_id, "x-amz-id-2": host_id(request_id) },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": rule.id,
            "bucket": {
                "name": happened.bucket,
                "ownerIdentity": { "principalId": super::buckets::CANONICAL_USER_ID },
                "arn": super::operations::bucket_arn(happened.bucket),
            },
            "object": object,
        },
    }]})
}

/// Delivers the event to every matching configuration, durably, before the caller answers.
pub(crate) async fn notify(s3: &Nimbus3, extensions: &http::Extensions, happened: Happened<'_>) {
    let Some(notifier) = &s3.notifier else { return };
    let text = match s3.store.get_bucket_notification(happened.bucket) {
        Ok(Some(text)) => text,
        Ok(None) | Err(StoreError::NotFound { .. }) => return,
        Err(e) => {
            tracing::error!(error = %e, "could not read a bucket's notification configuration");
            return;
        }
    };
    let Ok(config) = serde_json::from_str::<Config>(&text) else { return };
    let (principal, request_id) = requester(extensions);
    for rule in &config.rules {
        let wanted = rule.events.iter().any(|e| names(e, happened.event))
            && rule.prefix.as_deref().is_none_or(|p| happened.key.starts_with(p))
            && rule.suffix.as_deref().is_none_or(|s| happened.key.ends_with(s));
        if !wanted {
            continue;
        }
        let payload = record(s3, rule, &happened, &principal, &request_id).to_string();
        match &rule.target {
            Target::Function(arn) => {
                let Some((function, qualifier)) = function_of(arn, &s3.region, &notifier.account) else { continue };
                let event = NewAsyncEvent {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    function,
                    qualifier,
                    payload: payload.into_bytes(),
                    client_context: None,
                    now_ms: super::buckets::now_ms(),
                };
                if let Err(e) = notifier.async_queue.accept(event).await {
                    tracing::error!(error = %e, arn, "could not journal an S3 notification");
                }
            }
            Target::Queue(arn) => {
                let Some(name) = notifier.sqs.name_from_arn(arn) else { continue };
                match notifier.sqs.queue(name).await {
                    Ok(queue) => {
                        let _ = send_to_queue(notifier, &queue, payload).await;
                    }
                    // A destination deleted after configuration: S3 drops the event too.
                    Err(e) => tracing::warn!(error = %e, arn, "an S3 notification's queue is gone"),
                }
            }
        }
    }
}

pub(crate) async fn put_configuration(
    s3: &Nimbus3,
    req: S3Request<PutBucketNotificationConfigurationInput>,
) -> S3Result<S3Response<PutBucketNotificationConfigurationOutput>> {
    let input = req.input;
    s3.store.get_bucket(&input.bucket).map_err(store_error)?;
    let config = parse(input.notification_configuration)?;
    if let Some(notifier) = &s3.notifier
        && !input.skip_destination_validation.unwrap_or(false)
    {
        let (_, request_id) = requester(&req.extensions);
        validate_destinations(s3, notifier, &input.bucket, &config, &request_id).await?;
    }
    let text = (!config.rules.is_empty()).then(|| serde_json::to_string(&config).unwrap_or_default());
    s3.store.set_bucket_notification(&input.bucket, text.as_deref()).map_err(store_error)?;
    Ok(S3Response::new(PutBucketNotificationConfigurationOutput::default()))
}

fn filter_of(rule: &Rule) -> Option<NotificationConfigurationFilter> {
    let mut rules = Vec::new();
    for (name, value) in [("Prefix", &rule.prefix), ("Suffix", &rule.suffix)] {
        if let Some(value) = value {
            rules.push(FilterRule { name: Some(FilterRuleName::from(name.to_owned())), value: Some(value.clone()) });
        }
    }
    (!rules.is_empty())
        .then_some(NotificationConfigurationFilter { key: Some(S3KeyFilter { filter_rules: Some(rules) }) })
}

pub(crate) async fn get_configuration(
    s3: &Nimbus3,
    req: S3Request<GetBucketNotificationConfigurationInput>,
) -> S3Result<S3Response<GetBucketNotificationConfigurationOutput>> {
    let text = s3.store.get_bucket_notification(&req.input.bucket).map_err(store_error)?;
    let config: Config = text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let mut functions = Vec::new();
    let mut queues = Vec::new();
    for rule in &config.rules {
        let events = rule.events.iter().cloned().map(Event::from).collect();
        match &rule.target {
            Target::Function(arn) => functions.push(LambdaFunctionConfiguration {
                id: Some(rule.id.clone()),
                lambda_function_arn: arn.clone(),
                events,
                filter: filter_of(rule),
            }),
            Target::Queue(arn) => queues.push(QueueConfiguration {
                id: Some(rule.id.clone()),
                queue_arn: arn.clone(),
                events,
                filter: filter_of(rule),
            }),
        }
    }
    Ok(S3Response::new(GetBucketNotificationConfigurationOutput {
        lambda_function_configurations: (!functions.is_empty()).then_some(functions),
        queue_configurations: (!queues.is_empty()).then_some(queues),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(events: &[&str], prefix: Option<&str>, suffix: Option<&str>) -> Rule {
        Rule {
            id: "r".into(),
            target: Target::Queue("q".into()),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            prefix: prefix.map(str::to_owned),
            suffix: suffix.map(str::to_owned),
        }
    }

    #[test]
    fn event_types_match_their_family_or_themselves() {
        assert!(names("s3:ObjectCreated:*", "ObjectCreated:Put"));
        assert!(names("s3:ObjectCreated:Put", "ObjectCreated:Put"));
        assert!(!names("s3:ObjectCreated:Put", "ObjectCreated:Copy"));
        assert!(!names("s3:ObjectCreated:*", "ObjectRemoved:Delete"));
        assert!(names("s3:ObjectRemoved:*", "ObjectRemoved:DeleteMarkerCreated"));
    }

    #[test]
    fn overlapping_rules_are_found() {
        let cases = [
            (rule(&["s3:ObjectCreated:*"], None, None), rule(&["s3:ObjectCreated:Put"], Some("a/"), None), true),
            (rule(&["s3:ObjectCreated:*"], Some("a/"), None), rule(&["s3:ObjectCreated:*"], Some("b/"), None), false),
            (rule(&["s3:ObjectCreated:*"], Some("a/"), None), rule(&["s3:ObjectCreated:*"], Some("a/b/"), None), true),
            (
                rule(&["s3:ObjectCreated:*"], None, Some(".jpg")),
                rule(&["s3:ObjectCreated:*"], None, Some(".png")),
                false,
            ),
            (rule(&["s3:ObjectCreated:Put"], None, None), rule(&["s3:ObjectCreated:Copy"], None, None), false),
            (rule(&["s3:ObjectCreated:*"], None, None), rule(&["s3:ObjectRemoved:*"], None, None), false),
        ];
        for (a, b, want) in cases {
            assert_eq!(rules_overlap(&a, &b), want, "{a:?} {b:?}");
            assert_eq!(rules_overlap(&b, &a), want, "{b:?} {a:?}");
        }
    }

    #[test]
    fn event_keys_are_form_url_encoded_keeping_slashes() {
        assert_eq!(event_key("dir/my file+1.jpg"), "dir/my+file%2B1.jpg");
        assert_eq!(event_key("a=b:c"), "a%3Db%3Ac");
        assert_eq!(event_key("é"), "%C3%A9");
    }

    #[test]
    fn function_arns_name_a_function_and_qualifier() {
        let (name, q) =
            function_of("arn:aws:lambda:us-east-1:000000000000:function:f:live", "us-east-1", "000000000000").unwrap();
        assert_eq!((name.as_str(), q.as_deref()), ("f", Some("live")));
        assert!(function_of("arn:aws:lambda:eu-west-1:000000000000:function:f", "us-east-1", "000000000000").is_none());
    }
}
