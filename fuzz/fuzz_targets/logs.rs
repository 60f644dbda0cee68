//! The CloudWatch Logs JSON API (`Logs_20140328.<Operation>`) through its real handlers on a real store
//! holding a few log groups: request parsing, limits, paging tokens, prefixes and filter patterns.
//! Input: the operation name, a newline, the JSON body. Checks: no panic, no 5xx for anything a client
//! sends, and every answer is JSON.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use nimbus_fuzz::{operation_and_body, paused_runtime};
use nimbus_server::fuzzing::LogsHarness;
use serde_json::Value;

const RESET_EVERY: u32 = 2000;

struct State {
    _dir: tempfile::TempDir,
    harness: LogsHarness,
    runtime: tokio::runtime::Runtime,
    requests: u32,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let Some((operation, body)) = operation_and_body(data) else { return };
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if guard.as_ref().is_none_or(|s| s.requests >= RESET_EVERY) {
        *guard = None;
        let dir = tempfile::tempdir_in(if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" })
            .expect("tempdir");
        let harness = LogsHarness::open(dir.path()).expect("store");
        *guard = Some(State { _dir: dir, harness, runtime: paused_runtime(), requests: 0 });
    }
    let state = guard.as_mut().unwrap();
    state.requests += 1;
    let (status, answer) = state.runtime.block_on(state.harness.request(operation, body));
    assert!(status < 500, "{operation}: {status} {}", String::from_utf8_lossy(&answer));
    let _: Value = serde_json::from_slice(&answer).expect("the answer is JSON");
});
