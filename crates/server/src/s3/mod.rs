//! Amazon S3 on Nimbus's one listener (REST-XML). The other side is any S3 client (the AWS CLI, boto3,
//! the SDKs, curl on presigned URLs); nothing it sends is trusted. The `s3s` crate parses the protocol
//! (routing, XML, SigV4 in headers, presigned queries and `aws-chunked` streaming bodies with trailing
//! checksums) against our credentials ([`KeyLookup`]); every request of a verified principal is then
//! decided by `authz` with the operation's IAM action and resource ARN (`operations.rs`, [`Decide`]);
//! the storage behind s3s's `S3` trait is ours: metadata in the store crate (`s3.db`), bodies streamed
//! to files (`files.rs`), never buffered whole; bucket notifications go to functions through the
//! async invoke journal and to queues through the queue service (`notifications.rs`).
//!
//! A request is S3's ([`addressed`]) when its SigV4 scope names `s3` (header or presigned query), it is
//! signed with SigV2 (S3's alone), or
//! its Host is `s3.localhost`, `<bucket>.s3.localhost` or `<bucket>.s3.<region>.localhost` (any port).

mod buckets;
pub mod files;
mod multipart;
mod notifications;
mod objects;
mod operations;
mod service;
mod tagging;

use std::sync::Arc;

use axum::http::request::Parts;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::host::{S3Host, VirtualHost};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use subtle::ConstantTimeEq as _;

use crate::authz::{self, Identity};
use crate::credentials::Credentials;
use nimbus_store::{Store, StoreError};

/// The largest single PUT and the largest part, as on AWS (5 GiB).
pub const PUT_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// The longest object key, in UTF-8 bytes, as on AWS.
pub const KEY_BYTES_MAX: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum S3SetupError {
    #[error("preparing the object directories failed: {0}")]
    Files(#[from] files::FilesError),
    #[error("listing the stored objects failed: {0}")]
    Store(#[from] StoreError),
}

/// The S3 service, built once at start.
#[derive(Clone)]
pub struct S3Edge {
    service: S3Service,
}

impl std::fmt::Debug for S3Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Edge").finish_non_exhaustive()
    }
}

/// What the operations share.
pub(crate) struct Nimbus3 {
    store: Arc<Store>,
    bodies: files::Bodies,
    region: String,
    /// Delivers bucket notifications (absent in unit tests without an event plane).
    notifier: Option<notifications::Notifier>,
}

impl S3Edge {
    /// Prepares `<data>/s3/` (removing what interrupted uploads left) and builds the service.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        store: Arc<Store>,
        credentials: Arc<Credentials>,
        async_queue: crate::events::async_invoke::AsyncQueue,
        sqs: Arc<crate::sqs::Sqs>,
        data_dir: &std::path::Path,
        region: &str,
        account: &str,
        auth_required: bool,
    ) -> Result<S3Edge, S3SetupError> {
        let bodies = files::Bodies::open(data_dir)?;
        let swept = bodies.sweep(&store.s3_object_files()?)?;
        if swept > 0 {
            tracing::info!(swept, "removed object bodies no object names (writes interrupted by a stop)");
        }
        let notifier = notifications::Notifier { async_queue, sqs, account: account.to_owned() };
        let s3 = Nimbus3 { store, bodies, region: region.to_owned(), notifier: Some(notifier) };
        let mut builder = S3ServiceBuilder::new(s3);
        builder.set_host(Hosts);
        if auth_required {
            builder.set_auth(KeyLookup(credentials.clone()));
            builder.set_access(Decide { credentials, account: account.to_owned(), region: region.to_owned() });
        }
        Ok(S3Edge { service: builder.build() })
    }

    /// Serves one request, streaming its body into s3s and s3s's response body out.
    pub async fn call(&self, request: axum::extract::Request) -> axum::response::Response {
        let request = request.map(s3s::Body::http_body_unsync);
        match self.service.call(request).await {
            Ok(response) => response.map(axum::body::Body::new),
            Err(e) => {
                tracing::error!(error = ?e, "the S3 service failed a request");
                let mut response = axum::response::Response::new(axum::body::Body::empty());
                *response.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        }
    }
}

/// Whether a request addresses S3 (see the module docs); decided from the head alone.
pub fn addressed(parts: &Parts) -> bool {
    const SCOPE: &str = "/s3/aws4_request";
    // SigV2 (`AWS key:signature`, and `AWSAccessKeyId`+`Signature` queries, which boto3 still presigns
    // with by default) is S3's alone among the services Nimbus serves.
    let signed_for_s3 = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(SCOPE) || v.starts_with("AWS "));
    let presigned_for_s3 = parts.uri.query().is_some_and(|q| {
        let mut v2 = (false, false);
        q.split('&').any(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            v2.0 |= name == "AWSAccessKeyId";
            v2.1 |= name == "Signature";
            (name == "X-Amz-Credential"
                && percent_encoding::percent_decode_str(value).decode_utf8_lossy().contains(SCOPE))
                || v2 == (true, true)
        })
    });
    let host = parts.headers.get(axum::http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    signed_for_s3 || presigned_for_s3 || s3_host(host).is_some()
}

/// For an S3 host name, the bucket it names (`Some(None)` for `s3.localhost` itself).
fn s3_host(host: &str) -> Option<Option<&str>> {
    let name = host.rsplit_once(':').map_or(
        host,
        |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host }
        },
    );
    let before = name.strip_suffix("localhost")?;
    if before == "s3." {
        return Some(None);
    }
    let before = before.strip_suffix('.')?;
    // `<bucket>.s3` or `<bucket>.s3.<region>`
    let without_region = match before.rsplit_once('.') {
        Some((head, last)) if last != "s3" && head.ends_with(".s3") => head,
        _ => before,
    };
    let bucket = without_region.strip_suffix(".s3")?;
    (!bucket.is_empty()).then_some(Some(bucket))
}

/// Virtual-hosted requests name the bucket in the host; any other host is path-style.
struct Hosts;

impl S3Host for Hosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        Ok(match s3_host(host) {
            Some(Some(bucket)) => VirtualHost::new(host).with_bucket(bucket),
            _ => VirtualHost::new(host),
        })
    }
}

/// s3s verifies signatures with the secrets our credentials hold (root and function sessions).
struct KeyLookup(Arc<Credentials>);

#[async_trait::async_trait]
impl S3Auth for KeyLookup {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.lookup(access_key) {
            Some(secret) => Ok(SecretKey::from(secret.secret_access_key)),
            None => {
                Err(s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records."))
            }
        }
    }
}

/// Every verified request is decided by `authz`; the identity is left in the request's extensions for
/// operations that decide more (a copy's source, each key of a DeleteObjects).
struct Decide {
    credentials: Arc<Credentials>,
    account: String,
    region: String,
}

/// The region of a SigV4 credential scope (`AKID/date/region/s3/aws4_request`), from the
/// `Authorization` header or a presigned query's `X-Amz-Credential`; `None` for SigV2.
fn signed_region(cx: &S3AccessContext<'_>) -> Option<String> {
    let from_header = cx.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let rest = v.strip_prefix("AWS4-HMAC-SHA256 ")?;
        let credential = rest.split(',').find_map(|p| p.trim().strip_prefix("Credential="))?;
        Some(credential.to_owned())
    });
    let credential = from_header.or_else(|| {
        cx.uri().query()?.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == "X-Amz-Credential")
                .then(|| percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned())
        })
    })?;
    credential.split('/').nth(2).map(str::to_owned)
}

#[async_trait::async_trait]
impl S3Access for Decide {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(access_key) = cx.credentials().map(|c| c.access_key.clone()) else {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        };
        // As S3 does, a signature for another region is refused (a client configured for the wrong
        // region hears it here instead of failing only on AWS).
        if let Some(region) = signed_region(cx)
            && region != self.region
        {
            return Err(s3_error!(
                AuthorizationHeaderMalformed,
                "The authorization header is malformed; the region '{region}' is wrong; expecting '{}'",
                self.region
            ));
        }
        let Some(secret) = self.credentials.lookup(&access_key) else {
            return Err(s3_error!(InvalidAccessKeyId));
        };
        let identity = match secret.session_token {
            None => Identity::Root(authz::root_principal(&self.account)),
            Some(token) => {
                // s3s verifies the signature; a temporary credential must also carry its token.
                let sent = security_token(cx);
                if !sent.is_some_and(|sent| bool::from(sent.as_bytes().ct_eq(token.as_bytes()))) {
                    return Err(s3_error!(InvalidToken, "The provided token is malformed or otherwise invalid."));
                }
                let owner = self.credentials.session_owner(&access_key).ok_or_else(|| s3_error!(InvalidAccessKeyId))?;
                Identity::FunctionSession(authz::function_session_principal(
                    &self.account,
                    &owner.role_arn,
                    &owner.function,
                ))
            }
        };
        let operation = cx.s3_op().name().to_owned();
        let Some((action, resource)) = operations::decide(&operation, cx.s3_path()) else {
            if matches!(identity, Identity::Root(_)) {
                return Ok(()); // answered NotImplemented by the operation
            }
            return Err(s3_error!(AccessDenied, "Access Denied"));
        };
        authz::authorize(Some(&identity), &action, &resource).map_err(|d| s3_error!(AccessDenied, "{}", d.message))?;
        cx.extensions_mut().insert(identity);
        Ok(())
    }
}

fn security_token(cx: &S3AccessContext<'_>) -> Option<String> {
    if let Some(v) = cx.headers().get("x-amz-security-token").and_then(|v| v.to_str().ok()) {
        return Some(v.to_owned());
    }
    let query = cx.uri().query()?;
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "X-Amz-Security-Token")
            .then(|| percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned())
    })
}

/// Decides a further resource within an operation (a copy's source, each key of a DeleteObjects).
pub(crate) fn authorize_more(
    extensions: &axum::http::Extensions,
    action: &'static str,
    resource: &str,
) -> S3Result<()> {
    let identity = extensions.get::<Identity>();
    authz::authorize(identity, &nimbus_model::policy::Action::from_static(action), resource)
        .map_err(|d| s3_error!(AccessDenied, "{}", d.message))
}

/// The one mapping from store errors to S3's.
pub(crate) fn store_error(e: StoreError) -> S3Error {
    match &e {
        StoreError::NotFound { what: "bucket", .. } => {
            let mut err = s3_error!(NoSuchBucket, "The specified bucket does not exist");
            err.set_source(Box::new(e));
            err
        }
        StoreError::Conflict { what: "non-empty bucket", .. } => {
            let mut err = s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty");
            err.set_source(Box::new(e));
            err
        }
        _ if e.is_busy() => S3Error::with_source(S3ErrorCode::SlowDown, Box::new(e)),
        _ => {
            tracing::error!(error = %e, "S3 metadata failed");
            S3Error::with_source(S3ErrorCode::InternalError, Box::new(e))
        }
    }
}

/// The one mapping from body-file errors to S3's.
pub(crate) fn files_error(e: files::FilesError) -> S3Error {
    match &e {
        files::FilesError::TooLarge { .. } => {
            S3Error::with_message(S3ErrorCode::EntityTooLarge, "Your proposed upload exceeds the maximum allowed size")
        }
        files::FilesError::Body { .. } => {
            let mut err = s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            );
            err.set_source(Box::new(e));
            err
        }
        files::FilesError::Io { .. } => {
            tracing::error!(error = %e, "S3 body storage failed");
            S3Error::with_source(S3ErrorCode::InternalError, Box::new(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_hosts_name_their_bucket() {
        let cases = [
            ("s3.localhost", Some(None)),
            ("s3.localhost:4566", Some(None)),
            ("photos.s3.localhost:4566", Some(Some("photos"))),
            ("my.dotted.bucket.s3.localhost", Some(Some("my.dotted.bucket"))),
            ("photos.s3.us-east-1.localhost:9000", Some(Some("photos"))),
            ("localhost:4566", None),
            ("127.0.0.1:4566", None),
            ("lambda.localhost", None),
            (".s3.localhost", None),
            ("s3.example.com", None),
        ];
        for (host, want) in cases {
            assert_eq!(s3_host(host), want, "{host}");
        }
    }
}
