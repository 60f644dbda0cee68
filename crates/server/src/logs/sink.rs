//! Batches log lines from every environment into the store on one writer task: everything that arrives
//! within a short window, from every environment, is one SQLite transaction, with each stream's lines
//! merged so that its stream and group rows are updated once. Every invocation sends at least two
//! batches (START, then END and REPORT), so a transaction per batch cost more server CPU under load
//! than the rest of the invoke path. The channel is bounded: when the disk falls behind,
//! environments' output readers wait, which in turn slows the functions that print.
//!
//! The data disk is protected from logs: before each window the writer checks the free space of the
//! filesystem holding the data directory through the one reserve check (`disk::DataDisk`, also used by
//! SQS sends and async invokes), and below the reserve it drops the window instead of writing it (the
//! check says so once in the server's log, and once again when there is room), so that `nimbus.db` and
//! `queues.db`, which hold what was promised to clients, keep the space. Each environment's own rate is bounded before this (`LogBudget`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nimbus_store::{LogBatch, LogEvent, Store};
use tokio::sync::mpsc;

use crate::disk::DataDisk;

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
    /// Starts the writer task; it ends after every sender is dropped and the queue is drained. Windows
    /// are dropped while the data disk is below its reserve.
    pub fn start(store: Arc<Store>, disk: Arc<DataDisk>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_BATCHES_MAX);
        let task = tokio::spawn(write_loop(store, rx, disk));
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

/// The reserve check before each window, and the lines dropped while the disk is short (said when
/// there is room again).
struct DiskReserve {
    disk: Arc<DataDisk>,
    short: bool,
    dropped_lines: u64,
}

impl DiskReserve {
    fn new(disk: Arc<DataDisk>) -> Self {
        Self { disk, short: false, dropped_lines: 0 }
    }

    /// Whether `lines` more may be written.
    fn allows(&mut self, lines: usize) -> bool {
        let short = self.disk.check("function logs").is_err();
        if self.short && !short {
            tracing::warn!(dropped_lines = self.dropped_lines, "function logs are written again");
            self.dropped_lines = 0;
        }
        self.short = short;
        if short {
            self.dropped_lines += lines as u64;
        }
        !short
    }
}

async fn write_loop(store: Arc<Store>, mut rx: mpsc::Receiver<Batch>, disk: Arc<DataDisk>) {
    let mut reserve = DiskReserve::new(disk.clone());
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
        let lines = window.lines;
        // The reserve travels with the blocking write and comes back with it (one owner, no lock).
        let written = tokio::task::spawn_blocking(move || {
            if reserve.allows(lines) {
                window.write(&store);
            }
            reserve
        })
        .await;
        match written {
            Ok(back) => reserve = back,
            Err(e) => {
                tracing::error!(error = %e, "log writer task failed");
                reserve = DiskReserve::new(disk.clone());
            }
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
        let (sink, task) = LogSink::start(store.clone(), Arc::new(DataDisk::new(dir.path().to_owned(), 0)));
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
