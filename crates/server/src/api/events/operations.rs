//! The EventBridge operations Nimbus serves (by `X-Amz-Target: AWSEvents.<Operation>`): one row
//! each, with the IAM action and resource AWS's Service Authorization Reference gives it. `dispatch`
//! matches on this enum, so an operation is served only if it has a row here, and so it is always
//! authorized.

use nimbus_model::policy::Action;
use serde_json::Value;

use crate::arn::Arns;

/// What an operation acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `*`: listing and TestEventPattern.
    Any,
    /// The bus the body's `Name` names.
    BusByName,
    /// The bus of the body's `EventBusName` (or the first entry's, for PutEvents).
    Bus,
    /// The rule the body's `Name` (or `Rule`) names, on its `EventBusName`.
    Rule,
}

macro_rules! operations {
    ($( $op:ident $action:literal $target:ident; )+) => {
        /// One variant per EventBridge operation Nimbus serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventsOperation { $($op),+ }

        impl EventsOperation {
            #[cfg(test)]
            pub const ALL: &'static [EventsOperation] = &[$(EventsOperation::$op),+];

            pub fn parse(name: &str) -> Option<EventsOperation> {
                match name { $(stringify!($op) => Some(EventsOperation::$op),)+ _ => None }
            }

            #[cfg(test)]
            pub fn name(self) -> &'static str {
                match self { $(EventsOperation::$op => stringify!($op)),+ }
            }

            pub fn action(self) -> Action {
                match self { $(EventsOperation::$op => Action::from_static($action)),+ }
            }

            pub fn target(self) -> Target {
                match self { $(EventsOperation::$op => Target::$target),+ }
            }
        }
    };
}

operations! {
    CreateEventBus "events:CreateEventBus" BusByName;
    DescribeEventBus "events:DescribeEventBus" BusByName;
    DeleteEventBus "events:DeleteEventBus" BusByName;
    ListEventBuses "events:ListEventBuses" Any;
    PutRule "events:PutRule" Rule;
    DescribeRule "events:DescribeRule" Rule;
    DeleteRule "events:DeleteRule" Rule;
    EnableRule "events:EnableRule" Rule;
    DisableRule "events:DisableRule" Rule;
    ListRules "events:ListRules" Any;
    PutTargets "events:PutTargets" Rule;
    RemoveTargets "events:RemoveTargets" Rule;
    ListTargetsByRule "events:ListTargetsByRule" Rule;
    TestEventPattern "events:TestEventPattern" Any;
    PutEvents "events:PutEvents" Bus;
}

/// A bus named by name or ARN (`arn:aws:events:…:event-bus/NAME`), as every `EventBusName` may be.
pub fn bus_name(given: Option<&str>) -> &str {
    match given {
        None => nimbus_store::DEFAULT_BUS,
        Some(name) => name.rsplit_once(":event-bus/").map_or(name, |(_, n)| n),
    }
}

pub fn bus_arn(arns: &Arns, bus: &str) -> String {
    format!("arn:aws:events:{}:{}:event-bus/{bus}", arns.region, arns.account)
}

/// The ARN an operation acts on, from the request body (an unreadable body yields the ARN of an
/// empty name; the handler then refuses the request with its own error).
pub fn resource(arns: &Arns, op: EventsOperation, body: &Value) -> String {
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    match op.target() {
        Target::Any => "*".to_owned(),
        Target::BusByName => bus_arn(arns, text("Name").unwrap_or_default()),
        Target::Bus => {
            let first = body.pointer("/Entries/0/EventBusName").and_then(Value::as_str);
            bus_arn(arns, bus_name(first))
        }
        Target::Rule => {
            let rule = text("Name").or_else(|| text("Rule")).unwrap_or_default();
            crate::events::bus::rule_arn(arns, bus_name(text("EventBusName")), rule)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_operation_has_its_iam_action_and_resource() {
        let arns = Arns { region: "us-east-1".into(), account: "123456789012".into() };
        for op in EventsOperation::ALL {
            assert_eq!(EventsOperation::parse(op.name()), Some(*op));
            assert_eq!(op.action().as_str(), format!("events:{}", op.name()));
        }
        assert_eq!(EventsOperation::parse("PutPermission"), None);
        let cases = [
            (EventsOperation::PutRule, json!({"Name": "r"}), "arn:aws:events:us-east-1:123456789012:rule/r"),
            (
                EventsOperation::PutTargets,
                json!({"Rule": "r", "EventBusName": "b"}),
                "arn:aws:events:us-east-1:123456789012:rule/b/r",
            ),
            (
                EventsOperation::PutEvents,
                json!({"Entries": [{"EventBusName": "arn:aws:events:us-east-1:123456789012:event-bus/orders"}]}),
                "arn:aws:events:us-east-1:123456789012:event-bus/orders",
            ),
            (
                EventsOperation::PutEvents,
                json!({"Entries": []}),
                "arn:aws:events:us-east-1:123456789012:event-bus/default",
            ),
            (
                EventsOperation::CreateEventBus,
                json!({"Name": "b"}),
                "arn:aws:events:us-east-1:123456789012:event-bus/b",
            ),
            (EventsOperation::ListRules, json!({}), "*"),
        ];
        for (op, body, expected) in cases {
            assert_eq!(resource(&arns, op, &body), expected, "{op:?}");
        }
    }
}
