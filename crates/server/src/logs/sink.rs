//! Batches log lines from every environment into the store on one writer task, so a chatty function
//! costs one SQLite transaction per batch rather than one per line. The channel is bounded: when the
//! disk falls behind, environments' output readers wait, which in turn slows the functions that print.

use std::sync::Arc;
use std::time::Duration;

use nimbus_store::{LogEvent, Store};
use tokio::sync::mpsc;

const QUEUE_BATCHES_MAX: usize = 1024;
const FLUSH_LINES_MAX: usize = 512;
const FLUSH_INTERVAL: Duration = Duration::from_millis(20);

struct Batch {
    group: Arc<str>,
    stream: Arc<str>,
    events: Vec<LogEvent>,
}

#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::Sender<Batch>,
}

impl LogSink {
    /// Starts the writer task; it ends after every sender is dropped and the queue is drained.
    pub fn start(store: Arc<Store>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_BATCHES_MAX);
        let task = tokio::spawn(write_loop(store, rx));
        (Self { tx }, task)
    }

    pub async fn append(&self, group: &Arc<str>, stream: &Arc<str>, events: Vec<LogEvent>) {
        if events.is_empty() {
            return;
        }
        let batch = Batch { group: group.clone(), stream: stream.clone(), events };
        if self.tx.send(batch).await.is_err() {
            tracing::warn!("log writer has stopped; dropping log lines");
        }
    }
}

async fn write_loop(store: Arc<Store>, mut rx: mpsc::Receiver<Batch>) {
    let mut pending: Vec<Batch> = Vec::new();
    loop {
        let first = match rx.recv().await {
            Some(b) => b,
            None => break,
        };
        pending.push(first);
        // Gather what arrives within a short window into one write.
        let deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
        let mut lines: usize = pending.iter().map(|b| b.events.len()).sum();
        while lines < FLUSH_LINES_MAX {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(b)) => {
                    lines += b.events.len();
                    pending.push(b);
                }
                _ => break,
            }
        }
        let batches = std::mem::take(&mut pending);
        let store = store.clone();
        let written = tokio::task::spawn_blocking(move || {
            let now_ms = crate::clock::now_ms();
            for b in batches {
                if let Err(e) = store.append_logs(&b.group, &b.stream, &b.events, now_ms) {
                    tracing::error!(group = %b.group, stream = %b.stream, error = %e, "writing log lines");
                }
            }
        })
        .await;
        if let Err(e) = written {
            tracing::error!(error = %e, "log writer task failed");
        }
    }
}
