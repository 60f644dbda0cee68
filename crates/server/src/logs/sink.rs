//! Batches log lines from every environment into the store on one writer task: everything that arrives
//! within a short window, from every environment, is one SQLite transaction, with each stream's lines
//! merged so that its stream and group rows are updated once. Every invocation sends at least two
//! batches (START, then END and REPORT), so a transaction per batch cost more server CPU under load
//! than the rest of the invoke path. The channel is bounded: when the disk falls behind,
//! environments' output readers wait, which in turn slows the functions that print.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nimbus_store::{LogBatch, LogEvent, Store};
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
    while let Some(first) = rx.recv().await {
        let mut window = Window::default();
        window.add(first);
        // Gather what arrives within a short window into one write.
        let deadline = tokio::time::Instant::now() + FLUSH_INTERVAL;
        while window.lines < FLUSH_LINES_MAX {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(b)) => window.add(b),
                _ => break,
            }
        }
        let store = store.clone();
        let written = tokio::task::spawn_blocking(move || window.write(&store)).await;
        if let Err(e) = written {
            tracing::error!(error = %e, "log writer task failed");
        }
    }
}

/// The batches of one flush window, merged per stream in arrival order.
#[derive(Default)]
struct Window {
    streams: Vec<Batch>,
    /// Where each (group, stream) is in `streams`.
    index: HashMap<(Arc<str>, Arc<str>), usize>,
    lines: usize,
}

impl Window {
    fn add(&mut self, mut batch: Batch) {
        self.lines += batch.events.len();
        let key = (batch.group.clone(), batch.stream.clone());
        match self.index.get(&key) {
            Some(&at) => self.streams[at].events.append(&mut batch.events),
            None => {
                self.index.insert(key, self.streams.len());
                self.streams.push(batch);
            }
        }
    }

    fn write(self, store: &Store) {
        let batches: Vec<LogBatch<'_>> =
            self.streams.iter().map(|b| LogBatch { group: &b.group, stream: &b.stream, events: &b.events }).collect();
        let now_ms = crate::clock::now_ms();
        let Err(e) = store.append_log_batches(&batches, now_ms) else { return };
        // One transaction for the window means one failure would lose every stream's lines of it: the
        // streams are written one by one instead, so only what really cannot be written is lost.
        tracing::warn!(streams = batches.len(), lines = self.lines, error = %e, "writing a log window; retrying per stream");
        for batch in &batches {
            if let Err(e) = store.append_log_batches(std::slice::from_ref(batch), now_ms) {
                tracing::error!(group = batch.group, stream = batch.stream, lines = batch.events.len(), error = %e, "writing log lines");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(group: &str, stream: &str, messages: &[&str]) -> Batch {
        let events = messages.iter().map(|m| LogEvent { timestamp_ms: 1, message: (*m).to_owned() }).collect();
        Batch { group: group.into(), stream: stream.into(), events }
    }

    #[test]
    fn a_window_merges_each_streams_batches_in_arrival_order() {
        let mut window = Window::default();
        window.add(batch("g", "a", &["START 1"]));
        window.add(batch("g", "b", &["START 2"]));
        window.add(batch("g", "a", &["END 1", "REPORT 1"]));
        window.add(batch("h", "a", &["other group"]));
        let merged: Vec<(&str, &str, Vec<&str>)> = window
            .streams
            .iter()
            .map(|b| (&*b.group, &*b.stream, b.events.iter().map(|e| e.message.as_str()).collect()))
            .collect();
        assert_eq!(
            merged,
            vec![
                ("g", "a", vec!["START 1", "END 1", "REPORT 1"]),
                ("g", "b", vec!["START 2"]),
                ("h", "a", vec!["other group"]),
            ]
        );
        assert_eq!(window.lines, 5);
    }

    #[tokio::test]
    async fn the_writer_commits_what_it_was_sent_and_ends_when_the_senders_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let (sink, task) = LogSink::start(store.clone());
        let (group, stream): (Arc<str>, Arc<str>) = ("/aws/lambda/f".into(), "s".into());
        for i in 0..3 {
            let events = vec![LogEvent { timestamp_ms: i, message: format!("line {i}") }];
            sink.append(&group, &stream, events).await;
        }
        drop(sink);
        task.await.unwrap();
        let (events, _, _) = store.get_log_events(&group, &stream, None, None, true, None, 10).unwrap();
        let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, vec!["line 0", "line 1", "line 2"]);
    }
}
