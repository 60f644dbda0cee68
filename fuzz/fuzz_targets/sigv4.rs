//! SigV4 verification of whole requests: the Authorization header or the presigned query, the credential
//! scope, SignedHeaders, X-Amz-Date, the session token and the payload hash, and the recomputation of
//! the signature over the path, query, headers and body. Inputs are raw requests (see `raw_request`);
//! the seeds are requests botocore signed at `NOW` with the keys below, so mutations start from
//! requests that verify.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use nimbus_fuzz::raw_request;
use nimbus_server::auth::{Secret, verify};

/// 2026-12-06T12:00:00Z, when the seeds were signed.
const NOW: u64 = 1_796_558_400;
const ROOT_KEY: &str = "AKIDEXAMPLE";
const ROOT_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION_KEY: &str = "ASIAFUZZSESSION";
const SESSION_SECRET: &str = "fuzzSessionSecretKey0123456789abcdefghij";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEFUZZSESSIONTOKEN";

fn lookup(key: &str) -> Option<Secret> {
    match key {
        ROOT_KEY => Some(Secret::root(ROOT_SECRET, None)),
        SESSION_KEY => {
            Some(Secret::root(SESSION_SECRET, Some(SESSION_TOKEN.into())))
        }
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = raw_request(data) else { return };
    let (parts, body) = request.into_parts();
    // The server's clock is real; the request's X-Amz-Date is what the fuzzer moves.
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    match verify(&parts, &body, now, lookup) {
        Ok(caller) => {
            // Only a key nimbus holds can verify, and only with its own kind of credential.
            let secret = lookup(&caller.access_key_id).expect("verified with an unknown key");
            assert_eq!(caller.session, secret.session_token.is_some());
        }
        // Every failure must map to an AWS error.
        Err(e) => {
            let _ = (e.code(), e.status(), e.to_string());
        }
    }
});
