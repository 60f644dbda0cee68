//! Scheduled rules: each enabled rule with a `ScheduleExpression` fires the "Scheduled Event" at its
//! targets. [`Timing`] is the pure core (the next firing strictly after a given instant, so it is
//! tested against fixed clocks); the loop asks it with the wall clock once a second.
//!
//! Rates are anchored at the rule's creation (`rate(5 minutes)` fires at creation + 5, + 10, …), cron
//! runs in UTC. Firings that fall while Nimbus is stopped are skipped, as AWS does (no burst of missed
//! firings): after a start, or after a rule is created, changed or enabled, a rule's next firing is the
//! first one after that moment. A firing reaches its targets' durable inboxes (async journal, SQS) as
//! every event does; a crash in the instant between the firing time and that commit loses the firing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::bus::{Rules, event_json};
use super::cron::Cron;
use super::schedule::{self, Expression};
use crate::clock;

const TICK: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    Rate { anchor_ms: i64, period_ms: i64 },
    Cron(Cron),
}

impl Timing {
    pub fn from_rule(expression: &str, created_ms: i64) -> Option<Timing> {
        match schedule::parse(expression).ok()? {
            Expression::Rate { period_s } => Some(Timing::Rate {
                anchor_ms: created_ms,
                period_ms: i64::try_from(period_s).ok()?.checked_mul(1000)?,
            }),
            Expression::Cron => Cron::parse(expression.strip_prefix("cron(")?.strip_suffix(')')?).map(Timing::Cron),
        }
    }

    /// The first firing strictly after `after_ms`.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            Timing::Rate { anchor_ms, period_ms } => {
                let k = if after_ms < *anchor_ms { 1 } else { (after_ms - anchor_ms) / period_ms + 1 };
                anchor_ms.checked_add(k.checked_mul(*period_ms)?)
            }
            Timing::Cron(cron) => {
                let next_minute = (after_ms.div_euclid(60_000) + 1) * 60_000;
                let from = OffsetDateTime::from_unix_timestamp(next_minute / 1000).ok()?;
                cron.next_at_or_after(from).map(|t| t.unix_timestamp() * 1000)
            }
        }
    }
}

/// A rule's scheduled firing, as the loop keeps it.
struct Pending {
    timing: Timing,
    next_ms: Option<i64>,
}

/// Runs until `shutdown` turns true.
pub async fn run(rules: Arc<Rules>, mut shutdown: watch::Receiver<bool>) {
    let mut pending: HashMap<String, Pending> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
        let scheduled = match rules.scheduled().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "reading scheduled rules");
                continue;
            }
        };
        let now = clock::now_ms();
        pending.retain(|arn, _| scheduled.iter().any(|r| &r.arn == arn));
        for rule in scheduled.iter() {
            let entry = pending
                .entry(rule.arn.clone())
                .or_insert_with(|| Pending { timing: rule.timing.clone(), next_ms: rule.timing.next_after(now) });
            if entry.timing != rule.timing {
                *entry = Pending { timing: rule.timing.clone(), next_ms: rule.timing.next_after(now) };
            }
            let Some(due) = entry.next_ms.filter(|due| *due <= now) else { continue };
            // The next one after now: firings missed (a stalled loop) are skipped, not replayed.
            entry.next_ms = rule.timing.next_after(now);
            let time = OffsetDateTime::from_unix_timestamp(due / 1000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let time = time.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            let id = uuid::Uuid::new_v4().to_string();
            let event = event_json(
                rules.arns(),
                &id,
                "Scheduled Event",
                "aws.events",
                &time,
                std::slice::from_ref(&rule.arn),
                json!({}),
            );
            for target in &rule.targets {
                let context =
                    super::input::Transform { rule_arn: &rule.arn, rule_name: &rule.name, ingestion_time: &time };
                if let Err(e) = rules.send(target, target.input.render(&event, &context)).await {
                    tracing::warn!(rule = %rule.arn, error = %e, "delivering a scheduled event");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn ms(t: OffsetDateTime) -> i64 {
        t.unix_timestamp() * 1000
    }

    #[test]
    fn rates_are_anchored_at_creation_and_cron_runs_in_utc() {
        let created = ms(datetime!(2026-12-06 21:37:30 UTC));
        let rate = Timing::from_rule("rate(5 minutes)", created).unwrap();
        let cases = [
            (created - 1, created + 300_000),
            (created, created + 300_000),
            (created + 299_999, created + 300_000),
            (created + 300_000, created + 600_000),
            // After a stop of an hour: the next one, not the twelve missed.
            (created + 3_600_000 + 1, created + 3_900_000),
        ];
        for (now, expected) in cases {
            assert_eq!(rate.next_after(now), Some(expected), "{now}");
        }
        let daily = Timing::from_rule("rate(1 day)", created).unwrap();
        assert_eq!(daily.next_after(created), Some(created + 86_400_000));

        let cron = Timing::from_rule("cron(0/15 * * * ? *)", created).unwrap();
        let at = |t| Some(ms(t));
        assert_eq!(cron.next_after(created), at(datetime!(2026-12-06 21:45 UTC)));
        assert_eq!(cron.next_after(ms(datetime!(2026-12-06 21:45 UTC))), at(datetime!(2026-12-06 22:00 UTC)));
        let nightly = Timing::from_rule("cron(0 2 * * ? *)", created).unwrap();
        assert_eq!(nightly.next_after(created), at(datetime!(2026-12-07 02:00 UTC)));
        assert_eq!(Timing::from_rule("rate(1 minutes)", created), None);
    }
}
