//! CreateEventBus, DescribeEventBus, DeleteEventBus, ListEventBuses. The `default` bus always exists.

use nimbus_store::{DEFAULT_BUS, StoreError};
use serde_json::{Value, json};

use super::operations::{bus_arn, bus_name};
use super::{EventsError, SharedState, blocking, check_name, epoch_seconds, opt_str, req_str};
use crate::clock;

fn not_found(name: &str) -> EventsError {
    EventsError::ResourceNotFound(format!("Event bus {name} does not exist."))
}

pub async fn create(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let name = req_str(body, "Name", "name")?.to_owned();
    check_name(&name, "name", 256, true)?;
    if name.starts_with("aws.") || opt_str(body, "EventSourceName")?.is_some() {
        return Err(EventsError::Validation("Partner event sources are not supported by Nimbus.".into()));
    }
    let store = state.store.clone();
    let n = name.clone();
    match blocking(move || store.create_event_bus(&n, clock::now_ms())).await {
        Err(EventsError::Store(StoreError::Conflict { .. })) => {
            Err(EventsError::ResourceAlreadyExists(format!("Event bus {name} already exists.")))
        }
        Err(e) => Err(e),
        Ok(()) => {
            state.rules.invalidate();
            Ok(json!({ "EventBusArn": bus_arn(&state.arns, &name) }))
        }
    }
}

pub async fn describe(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let name = bus_name(opt_str(body, "Name")?).to_owned();
    let store = state.store.clone();
    let n = name.clone();
    let created = match blocking(move || store.event_bus(&n)).await {
        Err(EventsError::Store(StoreError::NotFound { .. })) => return Err(not_found(&name)),
        other => other?,
    };
    let mut out = json!({ "Name": name, "Arn": bus_arn(&state.arns, &name) });
    if let Some(ms) = created {
        out["CreationTime"] = epoch_seconds(ms);
        out["LastModifiedTime"] = epoch_seconds(ms);
    }
    Ok(out)
}

pub async fn delete(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let name = req_str(body, "Name", "name")?.to_owned();
    if name == DEFAULT_BUS {
        return Err(EventsError::Validation("Cannot delete event bus default.".into()));
    }
    let store = state.store.clone();
    blocking(move || store.delete_event_bus(&name)).await?;
    state.rules.invalidate();
    Ok(json!({}))
}

pub async fn list(state: &SharedState, body: &Value) -> Result<Value, EventsError> {
    let prefix = opt_str(body, "NamePrefix")?.unwrap_or_default().to_owned();
    let store = state.store.clone();
    let custom = blocking(move || store.list_event_buses()).await?;
    let mut buses = vec![json!({ "Name": DEFAULT_BUS, "Arn": bus_arn(&state.arns, DEFAULT_BUS) })];
    buses.extend(custom.into_iter().map(|(name, ms)| {
        json!({ "Name": name, "Arn": bus_arn(&state.arns, &name), "CreationTime": epoch_seconds(ms),
                "LastModifiedTime": epoch_seconds(ms) })
    }));
    buses.retain(|b| b["Name"].as_str().is_some_and(|n| n.starts_with(&prefix)));
    Ok(json!({ "EventBuses": buses }))
}
