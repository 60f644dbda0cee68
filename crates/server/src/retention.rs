//! The retention sweep: one task that periodically deletes what has outlived its retention period, so
//! neither `logs.db` nor `queues.db` grows without bound while nobody reads them:
//! - log events of groups with a retention policy (CloudWatch Logs' PutRetentionPolicy; groups without
//!   one keep their events forever, as on AWS);
//! - SQS messages older than their queue's `MessageRetentionPeriod`, and FIFO deduplication ids past
//!   their five minutes (a receive also drops expired messages, but a queue nobody receives from would
//!   otherwise keep them);
//! - STS sessions a day past their expiry (until then their use is answered `ExpiredToken`).

use std::sync::Arc;
use std::time::Duration;

use nimbus_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock;
use crate::sqs::QueueSettings;

/// How often the sweep runs (and once right after start). The shortest period it enforces is SQS's
/// 60 s minimum retention, so expired data lingers at most about one retention period longer.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How long an expired STS session is kept, so that its use is answered `ExpiredToken`, not as unknown.
const EXPIRED_SESSIONS_KEPT_MS: i64 = 24 * 60 * 60 * 1000;
/// Queues read per store call while sweeping.
const QUEUES_PAGE: usize = 100;

pub fn start(store: Arc<Store>, mut stopping: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
            let store = store.clone();
            match tokio::task::spawn_blocking(move || sweep(&store, clock::now_ms())).await {
                Ok(Ok(Swept { log_events: 0, messages: 0 })) => {}
                Ok(Ok(swept)) => {
                    tracing::info!(log_events = swept.log_events, messages = swept.messages, "retention sweep")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "retention sweep failed; the next one retries"),
                Err(e) => tracing::error!(error = %e, "retention sweep panicked"),
            }
        }
    })
}

#[derive(Debug, PartialEq, Eq)]
struct Swept {
    log_events: u64,
    messages: usize,
}

fn sweep(store: &Store, now_ms: i64) -> Result<Swept, nimbus_store::StoreError> {
    let log_events = store.expire_logs(now_ms)?;
    store.expire_sessions(now_ms - EXPIRED_SESSIONS_KEPT_MS)?;
    let mut messages = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.list_queues("", after.as_deref(), QUEUES_PAGE)?;
        for queue in &page {
            let retention_ms = QueueSettings::of(queue).retention_ms();
            messages += store.expire_messages(queue.id, now_ms, retention_ms)?;
        }
        if page.len() < QUEUES_PAGE {
            return Ok(Swept { log_events, messages });
        }
        after = page.last().map(|q| q.name.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use nimbus_model::LogRetentionDays;
    use nimbus_store::{LogEvent, NewMessage};

    use super::*;

    fn message(id: &str) -> NewMessage {
        NewMessage {
            message_id: id.into(),
            body: "b".into(),
            md5_body: "x".into(),
            attributes: None,
            md5_attributes: None,
            system_attributes: None,
            md5_system: None,
            sender_id: "AIDA".into(),
            delay_ms: 0,
            group_id: None,
            dedup_id: None,
        }
    }

    #[test]
    fn the_sweep_applies_each_queues_and_each_groups_own_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let attrs = |secs: &str| BTreeMap::from([("MessageRetentionPeriod".to_owned(), secs.to_owned())]);
        // More queues than one page, so the sweep pages through them.
        for i in 0..QUEUES_PAGE + 5 {
            let (q, _) = store.create_queue(&format!("q{i:03}"), false, &attrs("60"), &BTreeMap::new(), 0).unwrap();
            store.send_messages(q.id, false, 0, &[message("m")]).unwrap();
        }
        let (keep, _) = store.create_queue("keep", false, &attrs("1209600"), &BTreeMap::new(), 0).unwrap();
        store.send_messages(keep.id, false, 0, &[message("k")]).unwrap();
        let event = LogEvent { timestamp_ms: 0, message: "old".into() };
        store.append_logs("/aws/lambda/f", "s", std::slice::from_ref(&event), 0).unwrap();
        store.append_logs("/aws/lambda/forever", "s", &[event], 0).unwrap();
        store.set_log_retention("/aws/lambda/f", Some(LogRetentionDays::new(1).unwrap())).unwrap();

        let two_days_ms = 2 * 86_400_000;
        assert_eq!(sweep(&store, two_days_ms).unwrap(), Swept { log_events: 1, messages: QUEUES_PAGE + 5 });
        assert_eq!(sweep(&store, two_days_ms).unwrap(), Swept { log_events: 0, messages: 0 });
        assert_eq!(store.queue_counts(keep.id, two_days_ms, 1_209_600_000).unwrap().visible, 1);
    }
}
