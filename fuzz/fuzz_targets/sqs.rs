//! The SQS JSON API (`AmazonSQS.<Operation>`) through its real handlers on a real store: every
//! operation's request parsing, message attributes, receipt handles, queue attributes and policies.
//! Input: the operation name, a newline, the JSON body. Checks: no panic, no 5xx for anything a client
//! sends, JSON answers, and the MD5 digests SDKs verify: `MD5OfMessageBody` of what was sent, and for
//! every message received the body and attribute digests recomputed here from what came back.
#![no_main]

use std::sync::Mutex;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use md5::{Digest as _, Md5};
use nimbus_fuzz::{operation_and_body, paused_runtime};
use nimbus_server::fuzzing::{ACCOUNT, ENDPOINT, SqsHarness};
use serde_json::{Value, json};

/// Requests before the store is thrown away, so that what earlier inputs left cannot grow without end.
const RESET_EVERY: u32 = 2000;

struct State {
    _dir: tempfile::TempDir,
    harness: SqsHarness,
    runtime: tokio::runtime::Runtime,
    requests: u32,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn fresh() -> State {
    let dir = tempfile::tempdir_in(if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" })
        .expect("tempdir");
    let harness = SqsHarness::open(dir.path()).expect("store");
    let runtime = paused_runtime();
    for body in [
        json!({"QueueName": "q"}),
        json!({"QueueName": "q.fifo", "Attributes": {"FifoQueue": "true", "ContentBasedDeduplication": "true"}}),
        json!({"QueueName": "dlq"}),
    ] {
        let (status, _) = runtime.block_on(harness.request("CreateQueue", body.to_string().as_bytes()));
        assert_eq!(status, 200);
    }
    State { _dir: dir, harness, runtime, requests: 0 }
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// SQS's attribute digest, written from AWS's description independently of the server's.
fn attributes_md5(attrs: &serde_json::Map<String, Value>) -> String {
    let mut names: Vec<&String> = attrs.keys().collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut h = Md5::new();
    let put = |h: &mut Md5, b: &[u8]| {
        h.update((b.len() as u32).to_be_bytes());
        h.update(b);
    };
    for name in names {
        let a = &attrs[name];
        put(&mut h, name.as_bytes());
        put(&mut h, a["DataType"].as_str().expect("DataType").as_bytes());
        if let Some(s) = a.get("StringValue").and_then(Value::as_str) {
            h.update([1]);
            put(&mut h, s.as_bytes());
        } else if let Some(b) = a.get("BinaryValue").and_then(Value::as_str) {
            h.update([2]);
            put(&mut h, &base64::engine::general_purpose::STANDARD.decode(b).expect("BinaryValue is base64"));
        }
    }
    hex::encode(h.finalize())
}

fn check_sent(request: &Value, response: &Value) {
    if let (Some(body), Some(md5)) = (request["MessageBody"].as_str(), response["MD5OfMessageBody"].as_str()) {
        assert_eq!(md5, md5_hex(body.as_bytes()), "MD5OfMessageBody of {body:?}");
    }
}

/// Receives what is visible on `queue_url`, checks every digest, and deletes it.
fn drain(state: &State, queue_url: &str) {
    let receive = json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "MessageAttributeNames": ["All"],
                         "AttributeNames": ["All"], "WaitTimeSeconds": 0});
    let (status, body) =
        state.runtime.block_on(state.harness.request("ReceiveMessage", receive.to_string().as_bytes()));
    let answer: Value = serde_json::from_slice(&body).expect("JSON");
    // An earlier input may have deleted the queue.
    if status == 400 && answer["__type"] == "com.amazonaws.sqs#QueueDoesNotExist" {
        return;
    }
    assert_eq!(status, 200, "{answer}");
    for m in answer["Messages"].as_array().into_iter().flatten() {
        assert_eq!(m["MD5OfBody"].as_str().unwrap(), md5_hex(m["Body"].as_str().unwrap().as_bytes()));
        if let Some(attrs) = m.get("MessageAttributes").and_then(Value::as_object) {
            assert_eq!(m["MD5OfMessageAttributes"].as_str(), Some(attributes_md5(attrs).as_str()), "{m}");
        }
        let delete = json!({"QueueUrl": queue_url, "ReceiptHandle": m["ReceiptHandle"]});
        let (status, body) =
            state.runtime.block_on(state.harness.request("DeleteMessage", delete.to_string().as_bytes()));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((operation, body)) = operation_and_body(data) else { return };
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if guard.as_ref().is_none_or(|s| s.requests >= RESET_EVERY) {
        *guard = None;
        *guard = Some(fresh());
    }
    let state = guard.as_mut().unwrap();
    state.requests += 1;
    let (status, answer) = state.runtime.block_on(state.harness.request(operation, body));
    assert!(status < 500, "{operation}: {status} {}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).expect("the answer is JSON");
    if status != 200 {
        assert!(answer["__type"].as_str().is_some_and(|t| t.starts_with("com.amazonaws.sqs#")), "{answer}");
        return;
    }
    // The handlers skip unknown members without reading them (serde's IgnoredAny), so an accepted body
    // may still hold invalid UTF-8 there, which `Value` refuses: such a body is not checked further.
    let Ok(request) = serde_json::from_slice::<Value>(if body.is_empty() { b"{}" } else { body }) else { return };
    match operation {
        "SendMessage" => check_sent(&request, &answer),
        "SendMessageBatch" => {
            for ok in answer["Successful"].as_array().into_iter().flatten() {
                let entry = request["Entries"].as_array().unwrap().iter().find(|e| e["Id"] == ok["Id"]).unwrap();
                check_sent(entry, ok);
            }
        }
        _ => return,
    }
    for name in ["q", "q.fifo", "dlq"] {
        drain(state, &format!("{ENDPOINT}/{ACCOUNT}/{name}"));
    }
});
