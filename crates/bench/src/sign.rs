//! SigV4 signing for the measured requests, done the way `nimbus::client::ApiClient` does it
//! (aws-sigv4, service `lambda`, default settings, a fresh identity per request), but callable on
//! its own so that the benchmark can time it and report it apart from the round trip. An AWS SDK
//! pays this cost on every call too; it is the client's, not Nimbus's.

use std::time::SystemTime;

use anyhow::Context;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// Builds the headers of one request: `host`, the caller's, and (when signing) the signature.
#[derive(Clone)]
pub struct Signer {
    /// `host:port` as it goes in the Host header and the signature.
    host: String,
    keys: Option<Keys>,
}

#[derive(Clone)]
struct Keys {
    access_key_id: String,
    secret_access_key: String,
    region: String,
}

impl Signer {
    /// A signer for `host` (e.g. `127.0.0.1:41234`); `None` keys send unsigned requests, for a
    /// server started with `--auth none`.
    pub fn new(host: &str, keys: Option<(&str, &str)>, region: &str) -> Signer {
        Signer {
            host: host.to_owned(),
            keys: keys.map(|(id, secret)| Keys {
                access_key_id: id.to_owned(),
                secret_access_key: secret.to_owned(),
                region: region.to_owned(),
            }),
        }
    }

    /// Every header to send with `method path_and_query` and `body`.
    pub fn headers(
        &self,
        method: &str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut headers: Vec<(String, String)> = Vec::with_capacity(extra.len() + 4);
        headers.push(("host".to_owned(), self.host.clone()));
        headers.extend(extra.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
        let Some(keys) = &self.keys else {
            return Ok(headers);
        };
        let identity =
            Credentials::new(keys.access_key_id.clone(), keys.secret_access_key.clone(), None, None, "nimbus-bench")
                .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&keys.region)
            .name(nimbus::client::SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .context("SigV4 signing parameters")?
            .into();
        let url = format!("http://{}{path_and_query}", self.host);
        let request = SignableRequest::new(
            method,
            &url,
            headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .context("a signable request")?;
        let (instructions, _signature) = sign(request, &params).context("SigV4 signing")?.into_parts();
        let (signature_headers, _query) = instructions.into_parts();
        for header in signature_headers {
            headers.push((header.name().to_owned(), header.value().to_owned()));
        }
        Ok(headers)
    }
}
