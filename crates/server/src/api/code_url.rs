//! `Code.Location` in GetFunction: a URL that downloads the function's zip without AWS credentials,
//! valid for ten minutes, like the presigned S3 URL Lambda returns. The signature is an HMAC over the
//! digest and expiry with a key that lives only in this server's memory.
//!
//! The URL names the address the GetFunction request came to (its `Host`, which SigV4 signs), not the
//! public listener's: a function calling through its in-environment `AWS_ENDPOINT_URL` gets a URL on
//! that listener, which it can reach, where the host's address may be unreachable from inside.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use nimbus_store::CodeDigest;
use rand::Rng;
use serde::Deserialize;
use sha2::Sha256;

use super::{ApiError, SharedState};

pub const PREFIX: &str = "/nimbus/code/";
pub const PATH: &str = "/nimbus/code/{file}";
const VALID_SECS: i64 = 600;

pub struct CodeUrls {
    base_url: String,
    key: [u8; 32],
}

impl CodeUrls {
    pub fn new(base_url: &str) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill(&mut key);
        Self { base_url: base_url.trim_end_matches('/').to_owned(), key }
    }

    /// The download URL of `digest` on `host` (the request's `Host` header), or on the public
    /// listener's address when the request named none that is a valid authority.
    pub fn url(&self, host: Option<&axum::http::HeaderValue>, digest: &CodeDigest) -> String {
        let expires = crate::clock::now_ms() / 1000 + VALID_SECS;
        let hex = digest.to_hex();
        let signature = self.sign(&hex, expires);
        match host
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.contains('@') && h.parse::<axum::http::uri::Authority>().is_ok())
        {
            Some(host) => format!("http://{host}{PREFIX}{hex}.zip?Expires={expires}&Signature={signature}"),
            None => format!("{}{PREFIX}{hex}.zip?Expires={expires}&Signature={signature}", self.base_url),
        }
    }

    fn sign(&self, hex: &str, expires: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(hex.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn check(&self, hex: &str, expires: i64, signature: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.sign(hex, expires);
        expires >= crate::clock::now_ms() / 1000 && bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    }
}

#[derive(Deserialize)]
pub struct Signed {
    #[serde(rename = "Expires")]
    expires: i64,
    #[serde(rename = "Signature")]
    signature: String,
}

pub async fn download(
    State(state): State<SharedState>,
    Path(file): Path<String>,
    Query(signed): Query<Signed>,
) -> Response {
    let denied = || {
        ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "AccessDenied",
            "Request has expired or the signature does not match",
        )
        .into_response()
    };
    let Some(hex) = file.strip_suffix(".zip") else { return denied() };
    if !state.code_urls.check(hex, signed.expires, &signed.signature) {
        return denied();
    }
    let Some(digest) = CodeDigest::from_hex(hex) else { return denied() };
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.code().read_zip(&digest)).await {
        Ok(Ok(bytes)) => ([("content-type", "application/zip")], bytes).into_response(),
        Ok(Err(e)) => ApiError::from(nimbus_store::StoreError::from(e)).into_response(),
        Err(e) => ApiError::service(format!("reading code: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn urls_name_the_host_the_request_came_to() {
        let urls = CodeUrls::new("http://192.0.2.1:9001/");
        let digest = CodeDigest::from_hex(&"ab".repeat(32)).expect("digest");
        let cases = [
            (Some("127.0.0.1:9000"), "http://127.0.0.1:9000/nimbus/code/"),
            (Some("[::1]:9000"), "http://[::1]:9000/nimbus/code/"),
            (Some("nimbus.internal"), "http://nimbus.internal/nimbus/code/"),
            // Not an authority, or one with user info: the public listener's address.
            (Some("a b"), "http://192.0.2.1:9001/nimbus/code/"),
            (Some("user@evil.example"), "http://192.0.2.1:9001/nimbus/code/"),
            (None, "http://192.0.2.1:9001/nimbus/code/"),
        ];
        for (host, prefix) in cases {
            let value = host.map(|h| HeaderValue::from_str(h).expect("header value"));
            let url = urls.url(value.as_ref(), &digest);
            assert!(url.starts_with(prefix), "{host:?}: {url}");
            let query = url.split_once('?').expect("query").1;
            let expires: i64 = query.split('&').find_map(|p| p.strip_prefix("Expires=")).unwrap().parse().unwrap();
            let signature = query.split('&').find_map(|p| p.strip_prefix("Signature=")).unwrap();
            assert!(urls.check(&digest.to_hex(), expires, signature));
        }
    }
}
