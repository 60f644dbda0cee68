//! The signature of the common request, computed without aws-sigv4's general canonicalisation, and the
//! derived signing keys, kept per credential and day.
//!
//! Verifying a warm invoke through aws-sigv4 cost about a tenth of the server's CPU: it copies every
//! header into a new map, formats the canonical request through `Display`, and derives the signing key
//! (four HMACs) for every request. [`signature`] builds the canonical request directly, but only for
//! requests where doing so by hand is trivially exact: signed in the Authorization header, not for S3,
//! a path of letters, digits, `-`, `_`, `/` and percent escapes with no dot or empty segment (so that
//! normalisation leaves it alone and double encoding only turns `%` into `%25`), a query of such
//! `key=value` pairs, header values of printable ASCII, and the signed headers sorted and unique and
//! including `host` and `x-amz-date` (which aws-sigv4 would add). Anything else answers `None` and goes
//! through aws-sigv4 as before, as does any request whose signature this does not reproduce, so a
//! difference between the two can cost time but never let a request through that aws-sigv4 would
//! refuse: a match means the client signed exactly this canonical request with the secret.
//!
//! The signing key is derived with aws-sigv4's own `generate_signing_key` and the final HMAC is its
//! `calculate_signature`; only the text being signed is built here.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::SystemTime;

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use http::request::Parts;
use sha2::{Digest, Sha256};

use super::sigv4::{ALGORITHM, Payload, STREAMING_UNSIGNED_PAYLOAD_TRAILER, SignedAuth, UNSIGNED_PAYLOAD};

/// Derived keys kept; past it the cache starts over. A key is per access key, day, region and service,
/// so a server sees a handful per day (the root key, one session key per environment).
const SIGNING_KEYS_MAX: usize = 1024;

/// A derived key is a pure function of its inputs, the secret included, so one cache can serve every
/// server in the process (tests run several) without one's keys ever answering for another's.
static SIGNING_KEYS: LazyLock<Mutex<HashMap<KeyScope, [u8; 32]>>> = LazyLock::new(Default::default);

#[derive(PartialEq, Eq, Hash)]
struct KeyScope {
    secret_access_key: String,
    date: String,
    region: String,
    service: String,
}

fn signing_key(secret_access_key: &str, signed_at: SystemTime, auth: &SignedAuth) -> [u8; 32] {
    let scope = KeyScope {
        secret_access_key: secret_access_key.to_owned(),
        date: auth.scope.date.clone(),
        region: auth.scope.region.clone(),
        service: auth.scope.service.clone(),
    };
    if let Some(key) = SIGNING_KEYS.lock().unwrap_or_else(PoisonError::into_inner).get(&scope) {
        return *key;
    }
    let derived = generate_signing_key(secret_access_key, signed_at, &scope.region, &scope.service);
    let mut key = [0u8; 32];
    key.copy_from_slice(derived.as_ref());
    let mut keys = SIGNING_KEYS.lock().unwrap_or_else(PoisonError::into_inner);
    if keys.len() >= SIGNING_KEYS_MAX {
        keys.clear();
    }
    keys.insert(scope, key);
    key
}

/// The signature the client must have sent, if this request is one the direct path covers exactly.
pub(super) fn signature(
    parts: &Parts,
    body: &[u8],
    auth: &SignedAuth,
    secret_access_key: &str,
    signed_at: SystemTime,
) -> Option<String> {
    let request = canonical_request(parts, body, auth)?;
    let scope = format!("{}/{}/{}/aws4_request", auth.scope.date, auth.scope.region, auth.scope.service);
    let string_to_sign =
        format!("{ALGORITHM}\n{}\n{scope}\n{}", auth.amz_date, hex::encode(Sha256::digest(request.as_bytes())));
    let key = signing_key(secret_access_key, signed_at, auth);
    Some(calculate_signature(key, string_to_sign.as_bytes()))
}

/// The canonical request of SigV4 for the requests described in the module documentation.
pub(super) fn canonical_request(parts: &Parts, body: &[u8], auth: &SignedAuth) -> Option<String> {
    if !auth.is_header_signed() || auth.scope.service == "s3" {
        return None;
    }
    let path = parts.uri.path();
    if !path.starts_with('/')
        || path.contains("//")
        || path.contains('.')
        || !path.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/' | b'%'))
    {
        return None;
    }
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(query) = parts.uri.query().filter(|q| !q.is_empty()) {
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=')?;
            if key.is_empty() || !plain(key) || !plain(value) {
                return None;
            }
            pairs.push((key, value));
        }
    }
    pairs.sort_unstable();

    let names = &auth.signed_headers;
    let sorted_and_unique = names.windows(2).all(|w| w[0] < w[1]);
    if !sorted_and_unique || !names.iter().any(|n| n == "host") || !names.iter().any(|n| n == "x-amz-date") {
        return None;
    }
    // A token sent but not signed stays out of aws-sigv4's canonical request too (the identity it is
    // given has no token then); a signed one is the header's value, which is the token.
    let mut headers = String::with_capacity(256);
    for name in names {
        headers.push_str(name);
        headers.push(':');
        if name == "x-amz-date" {
            // aws-sigv4 writes the date it was given, replacing whatever values the header had.
            headers.push_str(&auth.amz_date);
        } else {
            let mut values = parts.headers.get_all(name.as_str()).iter().peekable();
            values.peek()?;
            while let Some(value) = values.next() {
                let value = value.to_str().ok()?;
                if !value.bytes().all(|b| (b' '..=b'~').contains(&b)) {
                    return None;
                }
                push_trimmed(&mut headers, value);
                if values.peek().is_some() {
                    headers.push(',');
                }
            }
        }
        headers.push('\n');
    }

    let payload_hash = match &auth.payload {
        Payload::Body => hex::encode(Sha256::digest(body)),
        Payload::Declared(hash) => hash.clone(),
        Payload::Unsigned => UNSIGNED_PAYLOAD.to_owned(),
        Payload::UnsignedTrailer => STREAMING_UNSIGNED_PAYLOAD_TRAILER.to_owned(),
    };

    let mut request = String::with_capacity(512);
    request.push_str(parts.method.as_str());
    request.push('\n');
    // Non-S3 services sign the path encoded a second time; in the bytes allowed above only `%` changes.
    request.push_str(&path.replace('%', "%25"));
    request.push('\n');
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            request.push('&');
        }
        request.push_str(key);
        request.push('=');
        request.push_str(value);
    }
    request.push('\n');
    request.push_str(&headers);
    request.push('\n');
    request.push_str(&names.join(";"));
    request.push('\n');
    request.push_str(&payload_hash);
    Some(request)
}

/// Query text that form decoding and SigV4 encoding both leave as it is.
fn plain(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Appends `value` without leading or trailing spaces and with runs of spaces made one, as SigV4
/// canonical header values are (spaces only; other whitespace is not printable ASCII here).
fn push_trimmed(out: &mut String, value: &str) {
    let mut last_space = false;
    for c in value.trim_matches(' ').chars() {
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        out.push(c);
    }
}
