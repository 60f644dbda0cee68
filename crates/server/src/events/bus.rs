//! EventBridge delivery: an event put on a bus is matched against the bus's enabled rules, and each
//! matching rule's targets get the event (or the part of it their `Input*` settings make) through
//! Nimbus's durable paths, before PutEvents answers:
//!
//! ```text
//! PutEvents entry ──► Rules (compiled PatternIndex per bus) ──► per target:
//!     function ──► async invoke journal (committed; retried and dead-lettered by its dispatcher)
//!     queue    ──► SQS store (committed)            failing ──► the target's DeadLetterConfig queue
//! ```
//!
//! So an entry reported as accepted has reached every target's durable inbox, and survives `kill -9`.
//! The rules cache is rebuilt from the store after any change made through the API (`invalidate`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_model::FunctionName;
use nimbus_store::{NewAsyncEvent, RuleWithTargets, Store, StoreError};
use serde_json::{Value, json};

use super::async_invoke::AsyncQueue;
use super::filter::index::PatternIndex;
use super::filter::{Mode, Pattern};
use super::input::{InputSpec, Transform};
use crate::arn::Arns;
use crate::sqs::{Attributes, Sqs};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("reading the rules: {0}")]
    Store(#[source] StoreError),
    #[error("the rules reader failed: {0}")]
    Join(#[source] tokio::task::JoinError),
    #[error("the async journal refused the event: {0}")]
    Journal(#[source] super::async_invoke::AcceptError),
}

/// Where a target delivers, parsed from its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Function { name: FunctionName, qualifier: Option<String> },
    Queue { arn: String },
}

impl Destination {
    /// A Lambda function or SQS queue ARN of this server's region and account.
    pub fn parse(arn: &str, arns: &Arns) -> Option<Destination> {
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() < 6 || parts[0] != "arn" || parts[3] != arns.region || parts[4] != arns.account {
            return None;
        }
        match (parts[2], parts[5], parts.len()) {
            ("lambda", "function", 7 | 8) => Some(Destination::Function {
                name: FunctionName::parse(parts[6]).ok()?,
                qualifier: parts.get(7).map(|q| (*q).to_owned()),
            }),
            ("sqs", name, 6) if !name.is_empty() => Some(Destination::Queue { arn: arn.to_owned() }),
            _ => None,
        }
    }
}

/// A target as delivery uses it, compiled from its stored JSON.
#[derive(Debug, Clone)]
pub struct CompiledTarget {
    pub id: String,
    pub destination: Destination,
    pub input: InputSpec,
    pub dead_letter_arn: Option<String>,
}

impl CompiledTarget {
    pub fn from_spec(id: &str, spec: &Value, arns: &Arns) -> Option<CompiledTarget> {
        Some(CompiledTarget {
            id: id.to_owned(),
            destination: Destination::parse(spec.get("Arn")?.as_str()?, arns)?,
            input: InputSpec::from_target(spec).ok()?,
            dead_letter_arn: spec.pointer("/DeadLetterConfig/Arn").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

struct CompiledRule {
    arn: String,
    name: String,
    targets: Vec<CompiledTarget>,
}

#[derive(Default)]
struct BusRules {
    index: PatternIndex,
    rules: Vec<CompiledRule>,
}

/// An enabled rule with a schedule, for the scheduler.
pub struct ScheduledRule {
    pub arn: String,
    pub name: String,
    pub timing: super::scheduler::Timing,
    pub targets: Vec<CompiledTarget>,
}

#[derive(Default)]
struct Compiled {
    buses: HashMap<String, BusRules>,
    scheduled: Arc<Vec<ScheduledRule>>,
}

/// The buses' compiled rules, shared by the API.
pub struct Rules {
    store: Arc<Store>,
    arns: Arns,
    async_queue: AsyncQueue,
    sqs: Arc<Sqs>,
    compiled: Mutex<Option<Arc<Compiled>>>,
}

pub fn rule_arn(arns: &Arns, bus: &str, name: &str) -> String {
    if bus == nimbus_store::DEFAULT_BUS {
        format!("arn:aws:events:{}:{}:rule/{name}", arns.region, arns.account)
    } else {
        format!("arn:aws:events:{}:{}:rule/{bus}/{name}", arns.region, arns.account)
    }
}

impl Rules {
    pub fn new(store: Arc<Store>, arns: Arns, async_queue: AsyncQueue, sqs: Arc<Sqs>) -> Self {
        Self { store, arns, async_queue, sqs, compiled: Mutex::new(None) }
    }

    /// Called after any change to buses, rules or targets.
    pub fn invalidate(&self) {
        *self.compiled.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    async fn current(&self) -> Result<Arc<Compiled>, BusError> {
        if let Some(c) = self.compiled.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(c);
        }
        let store = self.store.clone();
        let rows = tokio::task::spawn_blocking(move || store.enabled_event_rules())
            .await
            .map_err(BusError::Join)?
            .map_err(BusError::Store)?;
        let compiled = Arc::new(self.compile(rows));
        *self.compiled.lock().unwrap_or_else(PoisonError::into_inner) = Some(compiled.clone());
        Ok(compiled)
    }

    pub fn arns(&self) -> &Arns {
        &self.arns
    }

    /// The enabled scheduled rules with their targets.
    pub async fn scheduled(&self) -> Result<Arc<Vec<ScheduledRule>>, BusError> {
        Ok(self.current().await?.scheduled.clone())
    }

    fn compile(&self, rows: Vec<RuleWithTargets>) -> Compiled {
        let mut by_bus: HashMap<String, (Vec<Pattern>, Vec<CompiledRule>)> = HashMap::new();
        let mut scheduled = Vec::new();
        for RuleWithTargets { rule, targets } in rows {
            let targets: Vec<CompiledTarget> = targets
                .iter()
                .filter_map(|(id, spec)| {
                    let spec: Value = serde_json::from_str(spec).ok()?;
                    CompiledTarget::from_spec(id, &spec, &self.arns)
                })
                .collect();
            if let Some(timing) =
                rule.schedule.as_deref().and_then(|s| super::scheduler::Timing::from_rule(s, rule.created_ms))
            {
                let arn = rule_arn(&self.arns, &rule.bus, &rule.name);
                scheduled.push(ScheduledRule { arn, name: rule.name.clone(), timing, targets: targets.clone() });
            }
            // Stored patterns were validated when put.
            let Some(pattern) = rule.pattern.as_deref().and_then(|p| Pattern::parse_in(p, Mode::EventBridge).ok())
            else {
                continue;
            };
            let entry = by_bus.entry(rule.bus.clone()).or_default();
            entry.0.push(pattern);
            entry.1.push(CompiledRule { arn: rule_arn(&self.arns, &rule.bus, &rule.name), name: rule.name, targets });
        }
        let buses = by_bus
            .into_iter()
            .map(|(bus, (patterns, rules))| (bus, BusRules { index: PatternIndex::new(patterns), rules }))
            .collect();
        Compiled { buses, scheduled: Arc::new(scheduled) }
    }

    /// Delivers `event` (the whole EventBridge event JSON) to the targets of every matching enabled
    /// rule of `bus`; returns once each delivery is committed. Returns how many targets got it.
    pub async fn deliver(&self, bus: &str, event: &Value, ingestion_time: &str) -> Result<usize, BusError> {
        let compiled = self.current().await?;
        let Some(rules) = compiled.buses.get(bus) else { return Ok(0) };
        let mut delivered = 0;
        for i in rules.index.matching(event) {
            let rule = &rules.rules[i];
            for target in &rule.targets {
                let context = Transform { rule_arn: &rule.arn, rule_name: &rule.name, ingestion_time };
                let payload = target.input.render(event, &context);
                self.send(target, payload).await?;
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    /// Hands one payload to a target's durable inbox.
    pub async fn send(&self, target: &CompiledTarget, payload: String) -> Result<(), BusError> {
        match &target.destination {
            Destination::Function { name, qualifier } => {
                let event = NewAsyncEvent {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    function: name.clone(),
                    qualifier: qualifier.clone(),
                    payload: payload.into_bytes(),
                    client_context: None,
                    now_ms: crate::clock::now_ms(),
                };
                self.async_queue.accept(event).await.map_err(BusError::Journal)
            }
            Destination::Queue { arn } => {
                if let Err(e) = self.sqs.send_to_arn(arn, payload.clone(), Attributes::new()).await {
                    tracing::warn!(target_id = %target.id, queue = %arn, error = %e, "EventBridge target delivery failed");
                    if let Some(dlq) = &target.dead_letter_arn {
                        let _ = self.sqs.send_to_arn(dlq, payload, Attributes::new()).await;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The event AWS puts on a bus: `version` "0", a fresh id, and the entry's fields.
pub fn event_json(
    arns: &Arns,
    id: &str,
    detail_type: &str,
    source: &str,
    time: &str,
    resources: &[String],
    detail: Value,
) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": detail_type,
        "source": source,
        "account": arns.account,
        "time": time,
        "region": arns.region,
        "resources": resources,
        "detail": detail,
    })
}
