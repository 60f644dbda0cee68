//! An environment's Runtime API listener, as a hostile function would use it: any method, path,
//! headers and body, with the driver answering each report in each of its ways; the error reports go
//! through the driver's own reading of them. Also the `/next` headers built from an invoke's
//! client-supplied context. Input: a raw request (see `raw_request`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nimbus_fuzz::{paused_runtime, raw_request};
use nimbus_server::fuzzing::{DriverAnswer, next_event_headers, runtime_api};

fuzz_target!(|data: &[u8]| {
    let Some(request) = raw_request(data) else { return };
    let header = |name: &str| request.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let (client_context, cognito) =
        (header("lambda-runtime-client-context"), header("lambda-runtime-cognito-identity"));
    let answer = [
        DriverAnswer::Accepted,
        DriverAnswer::InvalidRequestId,
        DriverAnswer::InvalidStateTransition,
        DriverAnswer::TooLarge,
        DriverAnswer::Gone,
    ][data.len() % 5];
    let (status, body) = paused_runtime().block_on(runtime_api(request, answer));
    assert!(matches!(status, 200 | 202 | 400 | 403 | 404 | 405 | 413 | 500), "status {status}");
    if status >= 400 && status != 404 && status != 405 {
        let v: serde_json::Value = serde_json::from_slice(&body).expect("error bodies are JSON");
        assert!(v["errorType"].is_string(), "{v}");
    }

    let headers = next_event_headers("id".into(), data.len() as i64, "arn".into(), client_context.clone(), cognito);
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    if let Some(cc) = client_context
        && let Some(sent) = headers.get("lambda-runtime-client-context")
    {
        assert_eq!(sent.as_bytes(), cc.as_bytes());
    }
});
