//! PutEvents: up to 10 entries and 256 KB (counted as AWS counts: Time 14 bytes, and the UTF-8 bytes of
//! Source, DetailType, Detail and each resource). Each entry is validated on its own and answered in
//! order with its `EventId` or `ErrorCode`/`ErrorMessage`; an accepted entry has been matched against
//! its bus's enabled rules and handed to every matching target's durable inbox before the answer.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::operations::bus_name;
use super::{EventsError, SharedState, blocking};
use crate::clock;
use crate::events::bus::event_json;

const ENTRIES_MAX: usize = 10;
const TOTAL_BYTES_MAX: usize = 256 * 1024;

fn entry_size(entry: &Value) -> usize {
    let len = |key: &str| entry.get(key).and_then(Value::as_str).map_or(0, str::len);
    let time = if entry.get("Time").is_some() { 14 } else { 0 };
    let resources: usize = entry
        .get("Resources")
        .and_then(Value::as_array)
        .map_or(0, |l| l.iter().filter_map(Value::as_str).map(str::len).sum());
    time + len("Source") + len("DetailType") + len("Detail") + resources
}

/// `2026-12-06T21:00:00Z`: AWS's event time, to the second.
fn event_time(seconds: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&Rfc3339).unwrap_or_default()
}

struct Invalid(&'static str, String);

fn invalid(field: &str, reason: &str) -> Invalid {
    Invalid("InvalidArgument", format!("Parameter {field} is not valid. Reason: {reason}"))
}

/// The event an entry puts on its bus, or why it is refused.
fn build(state: &SharedState, entry: &Value, now_s: i64) -> Result<(String, Value), Invalid> {
    let text = |key: &str| entry.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let source = text("Source").ok_or_else(|| invalid("Source", "Source is a required argument."))?;
    let detail_type = text("DetailType").ok_or_else(|| invalid("DetailType", "DetailType is a required argument."))?;
    let detail = text("Detail").ok_or_else(|| invalid("Detail", "Detail is a required argument."))?;
    let detail: Value = serde_json::from_str(detail).map_err(|_| invalid("Detail", "Detail is malformed."))?;
    if !detail.is_object() {
        return Err(invalid("Detail", "Detail must be a JSON object."));
    }
    let resources: Vec<String> = match entry.get("Resources") {
        None => Vec::new(),
        Some(Value::Array(l)) => l
            .iter()
            .map(|r| r.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid("Resources", "Resources must be strings."))?,
        Some(_) => return Err(invalid("Resources", "Resources must be a list.")),
    };
    let time = match entry.get("Time") {
        None => now_s,
        Some(t) => t.as_f64().map(|s| s.floor() as i64).ok_or_else(|| invalid("Time", "Time is malformed."))?,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let event = event_json(&state.arns, &id, detail_type, source, &event_time(time), &resources, detail);
    Ok((id, event))
}

pub async fn put_events(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let entries = body.get("Entries").and_then(Value::as_array).ok_or_else(|| {
        EventsError::Validation(
            "1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null"
                .into(),
        )
    })?;
    if entries.is_empty() || entries.len() > ENTRIES_MAX {
        let bound = if entries.is_empty() { "greater than or equal to 1" } else { "less than or equal to 10" };
        return Err(EventsError::Validation(format!(
            "1 validation error detected: Value '{}' at 'entries' failed to satisfy constraint: Member must have length \
             {bound}",
            Value::Array(entries.clone())
        )));
    }
    if entries.iter().map(entry_size).sum::<usize>() > TOTAL_BYTES_MAX {
        return Err(EventsError::Validation("Total size of the entries in the request is over the limit.".into()));
    }
    let now_ms = clock::now_ms();
    let ingestion = event_time(now_ms / 1000);
    let mut results = Vec::with_capacity(entries.len());
    let mut failed = 0;
    for entry in entries {
        let bus = bus_name(entry.get("EventBusName").and_then(Value::as_str)).to_owned();
        let built = build(state, entry, now_ms / 1000);
        let outcome = match built {
            Err(e) => Err(e),
            Ok((id, event)) => {
                let store = state.store.clone();
                let b = bus.clone();
                match blocking(move || store.event_bus(&b)).await {
                    Err(EventsError::Store(nimbus_store::StoreError::NotFound { .. })) => {
                        Err(Invalid("ResourceNotFoundException", format!("Event bus {bus} does not exist.")))
                    }
                    Err(e) => return Err(e),
                    Ok(_) => {
                        state.rules.deliver(&bus, &event, &ingestion).await.map_err(EventsError::Bus)?;
                        Ok(id)
                    }
                }
            }
        };
        results.push(match outcome {
            Ok(id) => json!({ "EventId": id }),
            Err(Invalid(code, message)) => {
                failed += 1;
                json!({ "ErrorCode": code, "ErrorMessage": message })
            }
        });
    }
    Ok(json!({ "FailedEntryCount": failed, "Entries": results }))
}
