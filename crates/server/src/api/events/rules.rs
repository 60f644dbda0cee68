//! Rules and their targets: PutRule, DescribeRule, DeleteRule, Enable/DisableRule, ListRules,
//! PutTargets, RemoveTargets, ListTargetsByRule, and TestEventPattern. Patterns are validated by the
//! one matcher (`events::filter`, EventBridge mode), schedules by `events::schedule`, target inputs by
//! `events::input`; the store keeps the validated text.

use nimbus_store::{DEFAULT_BUS, RuleRecord, StoreError};
use serde_json::{Value, json};

use super::operations::bus_name;
use super::{EventsError, SharedState, blocking, check_name, opt_str, req_str};
use crate::clock;
use crate::events::bus::{Destination, rule_arn};
use crate::events::filter::{Mode, Pattern};
use crate::events::input::InputSpec;
use crate::events::schedule;

/// AWS's limits: 5 targets per rule, 10 per PutTargets/RemoveTargets call, patterns up to 4096 chars.
const TARGETS_PER_RULE: usize = 5;
const TARGETS_PER_CALL: usize = 10;
const PATTERN_MAX: usize = 4096;

fn rule_not_found(name: &str, bus: &str) -> EventsError {
    EventsError::ResourceNotFound(format!("Rule {name} does not exist on EventBus {bus}."))
}

fn parse_pattern(text: &str) -> Result<Pattern, EventsError> {
    if text.len() > PATTERN_MAX {
        return Err(EventsError::Validation(format!(
            "1 validation error detected: Value at 'eventPattern' failed to satisfy constraint: Member must have length \
             less than or equal to {PATTERN_MAX}"
        )));
    }
    Pattern::parse_in(text, Mode::EventBridge).map_err(|e| EventsError::InvalidEventPattern(e.0))
}

fn rule_json(state: &SharedState, rule: &RuleRecord) -> Value {
    let mut out = json!({
        "Name": rule.name,
        "Arn": rule_arn(&state.arns, &rule.bus, &rule.name),
        "State": if rule.enabled { "ENABLED" } else { "DISABLED" },
        "EventBusName": rule.bus,
    });
    for (key, value) in
        [("EventPattern", &rule.pattern), ("ScheduleExpression", &rule.schedule), ("Description", &rule.description)]
    {
        if let Some(v) = value {
            out[key] = json!(v);
        }
    }
    out
}

async fn load_rule(state: &SharedState, bus: &str, name: &str) -> Result<RuleRecord, EventsError> {
    let (store, b, n) = (state.store.clone(), bus.to_owned(), name.to_owned());
    match blocking(move || store.event_rule(&b, &n)).await {
        Err(EventsError::Store(StoreError::NotFound { .. })) => Err(rule_not_found(name, bus)),
        other => other,
    }
}

pub async fn put_rule(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let name = req_str(body, "Name", "name")?;
    check_name(name, "name", 64, false)?;
    let bus = bus_name(opt_str(body, "EventBusName")?).to_owned();
    let pattern = opt_str(body, "EventPattern")?;
    let schedule = opt_str(body, "ScheduleExpression")?;
    if pattern.is_none() && schedule.is_none() {
        return Err(EventsError::Validation(
            "Parameter(s) EventPattern or ScheduleExpression must be specified.".into(),
        ));
    }
    if let Some(p) = pattern {
        parse_pattern(p)?;
    }
    if let Some(s) = schedule {
        schedule::parse(s).map_err(|e| EventsError::Validation(e.to_string()))?;
        if bus != DEFAULT_BUS {
            return Err(EventsError::Validation(
                "ScheduleExpression is supported only on the default event bus.".into(),
            ));
        }
    }
    let enabled = match opt_str(body, "State")? {
        None | Some("ENABLED") => true,
        Some("DISABLED") => false,
        Some(other) => {
            return Err(EventsError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'state' failed to satisfy constraint: Member must satisfy \
                 enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]"
            )));
        }
    };
    let description = opt_str(body, "Description")?;
    if description.is_some_and(|d| d.len() > 512) {
        return Err(EventsError::Validation(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length \
             less than or equal to 512"
                .into(),
        ));
    }
    let record = RuleRecord {
        bus: bus.clone(),
        name: name.to_owned(),
        enabled,
        pattern: pattern.map(str::to_owned),
        schedule: schedule.map(str::to_owned),
        description: description.map(str::to_owned),
        created_ms: clock::now_ms(),
    };
    let store = state.store.clone();
    match blocking(move || store.put_event_rule(&record)).await {
        Err(EventsError::Store(StoreError::NotFound { .. })) => {
            return Err(EventsError::ResourceNotFound(format!("Event bus {bus} does not exist.")));
        }
        other => other?,
    }
    state.rules.invalidate();
    Ok(json!({ "RuleArn": rule_arn(&state.arns, &bus, name) }))
}

pub async fn describe_rule(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let name = req_str(body, "Name", "name")?;
    let bus = bus_name(opt_str(body, "EventBusName")?);
    let rule = load_rule(state, bus, name).await?;
    let mut out = rule_json(state, &rule);
    out["CreatedBy"] = json!(state.arns.account);
    Ok(out)
}

pub async fn delete_rule(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let name = req_str(body, "Name", "name")?.to_owned();
    let bus = bus_name(opt_str(body, "EventBusName")?).to_owned();
    let force = body.get("Force").and_then(Value::as_bool).unwrap_or(false);
    let store = state.store.clone();
    let deleted = blocking(move || store.delete_event_rule(&bus, &name, force)).await?;
    if !deleted {
        return Err(EventsError::Validation("Rule can't be deleted since it has targets.".into()));
    }
    state.rules.invalidate();
    Ok(json!({}))
}

pub async fn set_enabled(state: &SharedState, body: &Value, enabled: bool) -> Result<Value, EventsError> {
    let name = req_str(body, "Name", "name")?.to_owned();
    let bus = bus_name(opt_str(body, "EventBusName")?).to_owned();
    let (store, b, n) = (state.store.clone(), bus.clone(), name.clone());
    match blocking(move || store.set_event_rule_enabled(&b, &n, enabled)).await {
        Err(EventsError::Store(StoreError::NotFound { .. })) => return Err(rule_not_found(&name, &bus)),
        other => other?,
    }
    state.rules.invalidate();
    Ok(json!({}))
}

pub async fn list_rules(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let bus = bus_name(opt_str(body, "EventBusName")?).to_owned();
    let prefix = opt_str(body, "NamePrefix")?.unwrap_or_default().to_owned();
    let store = state.store.clone();
    let b = bus.clone();
    let rules = match blocking(move || store.list_event_rules(&b, &prefix)).await {
        Err(EventsError::Store(StoreError::NotFound { .. })) => {
            return Err(EventsError::ResourceNotFound(format!("Event bus {bus} does not exist.")));
        }
        other => other?,
    };
    Ok(json!({ "Rules": rules.iter().map(|r| rule_json(state, r)).collect::<Vec<_>>() }))
}

/// Checks one PutTargets entry; `Err` is the entry's (ErrorCode-less) ValidationException text.
fn check_target(state: &SharedState, target: &Value) -> Result<(String, String), EventsError> {
    let id = req_str(target, "Id", "targets.member.id")?;
    check_name(id, "targets.member.id", 64, false)?;
    let arn = req_str(target, "Arn", "targets.member.arn")?;
    if Destination::parse(arn, &state.arns).is_none() {
        return Err(EventsError::Validation(format!(
            "Parameter {arn} is not valid. Reason: Provided Arn is not in correct format (Nimbus delivers to Lambda \
             functions and SQS queues of this region and account)."
        )));
    }
    InputSpec::from_target(target).map_err(|e| EventsError::Validation(e.0))?;
    if let Some(policy) = target.get("RetryPolicy") {
        let attempts = policy.get("MaximumRetryAttempts").map(|v| v.as_u64().filter(|n| *n <= 185));
        let age = policy.get("MaximumEventAgeInSeconds").map(|v| v.as_u64().filter(|n| (60..=86_400).contains(n)));
        if matches!(attempts, Some(None)) || matches!(age, Some(None)) {
            return Err(EventsError::Validation(
                "RetryPolicy: MaximumRetryAttempts must be 0-185 and MaximumEventAgeInSeconds 60-86400.".into(),
            ));
        }
    }
    if let Some(dlq) = target.pointer("/DeadLetterConfig/Arn") {
        let is_queue = dlq.as_str().and_then(|a| Destination::parse(a, &state.arns));
        if !matches!(is_queue, Some(Destination::Queue { .. })) {
            return Err(EventsError::Validation("DeadLetterConfig's Arn must be an SQS queue ARN.".into()));
        }
    }
    Ok((id.to_owned(), target.to_string()))
}

pub async fn put_targets(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let rule = req_str(body, "Rule", "rule")?.to_owned();
    let bus = bus_name(opt_str(body, "EventBusName")?).to_owned();
    let targets = body.get("Targets").and_then(Value::as_array).ok_or_else(|| {
        EventsError::Validation(
            "1 validation error detected: Value null at 'targets' failed to satisfy constraint: Member must not be null"
                .into(),
        )
    })?;
    if targets.is_empty() || targets.len() > TARGETS_PER_CALL {
        return Err(EventsError::Validation(format!(
            "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length \
             {}",
            if targets.is_empty() {
                "greater than or equal to 1".to_owned()
            } else {
                format!("less than or equal to {TARGETS_PER_CALL}")
            }
        )));
    }
    let checked = targets.iter().map(|t| check_target(state, t)).collect::<Result<Vec<_>, _>>()?;
    let store = state.store.clone();
    let (b, r) = (bus.clone(), rule.clone());
    let fits = match blocking(move || store.put_event_targets(&b, &r, &checked, TARGETS_PER_RULE)).await {
        Err(EventsError::Store(StoreError::NotFound { .. })) => return Err(rule_not_found(&rule, &bus)),
        other => other?,
    };
    if !fits {
        return Err(EventsError::LimitExceeded("The requested resource exceeds the maximum number allowed.".into()));
    }
    state.rules.invalidate();
    Ok(json!({ "FailedEntryCount": 0, "FailedEntries": [] }))
}

pub async fn remove_targets(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let rule = req_str(body, "Rule", "rule")?.to_owned();
    let bus = bus_name(opt_str(body, "EventBusName")?).to_owned();
    let ids: Vec<String> = body
        .get("Ids")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > TARGETS_PER_CALL {
        return Err(EventsError::Validation(
            "1 validation error detected: Value at 'ids' failed to satisfy constraint: Member must have length between 1 \
             and 10"
                .into(),
        ));
    }
    load_rule(state, &bus, &rule).await?;
    let store = state.store.clone();
    blocking(move || store.remove_event_targets(&bus, &rule, &ids)).await?;
    state.rules.invalidate();
    Ok(json!({ "FailedEntryCount": 0, "FailedEntries": [] }))
}

pub async fn list_targets(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let rule = req_str(body, "Rule", "rule")?.to_owned();
    let bus = bus_name(opt_str(body, "EventBusName")?).to_owned();
    load_rule(state, &bus, &rule).await?;
    let store = state.store.clone();
    let targets = blocking(move || store.list_event_targets(&bus, &rule)).await?;
    let targets: Vec<Value> = targets.iter().filter_map(|(_, spec)| serde_json::from_str(spec).ok()).collect();
    Ok(json!({ "Targets": targets }))
}

/// The fields AWS requires of TestEventPattern's event.
const EVENT_FIELDS: [&str; 6] = ["id", "account", "source", "time", "region", "detail-type"];

pub fn test_event_pattern(body: &Value) -> Result<Value, EventsError> {
    let pattern = parse_pattern(req_str(body, "EventPattern", "eventPattern")?)?;
    let event: Value = serde_json::from_str(req_str(body, "Event", "event")?)
        .map_err(|_| EventsError::Validation("Parameter Event is not valid.".into()))?;
    if let Some(missing) = EVENT_FIELDS.iter().find(|f| event.get(**f).is_none()) {
        return Err(EventsError::Validation(format!(
            "Parameter Event is not valid. Reason: Event is missing the field {missing}."
        )));
    }
    Ok(json!({ "Result": pattern.matches(&event) }))
}
