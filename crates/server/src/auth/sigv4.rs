//! AWS Signature Version 4 verification.
//!
//! aws-sigv4 can only sign; it has no verify function. So verification recomputes the signature
//! the client must have produced: it hands aws-sigv4 a request rebuilt from exactly what the
//! client says it signed (the headers named in SignedHeaders, the raw path and query, the time
//! from X-Amz-Date, the region and service from the credential scope, the session token the
//! request carries, the payload hash) and compares the result with the client's signature in
//! constant time. Building the canonical request by hand would be a second implementation of the
//! same rules, free to drift from the one every AWS SDK is tested against.
//!
//! This module owns only what aws-sigv4 cannot know: parsing the Authorization header or the
//! presigned query, the scope, clock-skew and expiry checks, the session-token rules, and which
//! AWS error each failure becomes.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningParams,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use http::StatusCode;
use http::request::Parts;
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{OffsetDateTime, PrimitiveDateTime};

/// The only algorithm accepted; SigV4a (ECDSA) requests are rejected as malformed.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far the request's X-Amz-Date may be from the server's clock, either way, as AWS allows.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The longest X-Amz-Expires a presigned URL may ask for: seven days, as AWS allows.
pub const MAX_PRESIGNED_EXPIRY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_UNSIGNED_PAYLOAD_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const CONTENT_SHA256: &str = "x-amz-content-sha256";
const SECURITY_TOKEN: &str = "x-amz-security-token";

mod query {
    pub const ALGORITHM: &str = "X-Amz-Algorithm";
    pub const CREDENTIAL: &str = "X-Amz-Credential";
    pub const DATE: &str = "X-Amz-Date";
    pub const EXPIRES: &str = "X-Amz-Expires";
    pub const SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
    pub const SIGNATURE: &str = "X-Amz-Signature";
    pub const SECURITY_TOKEN: &str = "X-Amz-Security-Token";
    pub const CONTENT_SHA256: &str = "X-Amz-Content-Sha256";

    /// The parameters that carry the signature itself. aws-sigv4 adds all but the signature
    /// back when it builds the canonical query, so they are stripped before handing it the URI.
    pub const AUTH: [&str; 7] = [ALGORITHM, CREDENTIAL, DATE, EXPIRES, SIGNED_HEADERS, SIGNATURE, SECURITY_TOKEN];
}

/// What nimbus holds for one access key id.
#[derive(Clone)]
pub struct Secret {
    pub secret_access_key: String,
    /// Set for temporary credentials; a request signed with them must carry exactly this token.
    pub session_token: Option<String>,
    /// Whose key it is; handed on to the [`Caller`].
    pub principal: super::Principal,
    /// When temporary credentials stop being accepted (`ExpiredToken`).
    pub expires: Option<SystemTime>,
}

impl Secret {
    /// A key of the root, with no expiry (tests and fixed keys).
    pub fn root(secret_access_key: impl Into<String>, session_token: Option<String>) -> Secret {
        Secret {
            secret_access_key: secret_access_key.into(),
            session_token,
            principal: super::Principal::Root,
            expires: None,
        }
    }
}

// Written by hand so that a secret can never reach a log line through `{:?}`.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Who sent a request whose signature verified, and for which region and service they signed it.
/// The caller decides whether that region and service are the ones it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
    /// Signed with a session credential (a function's own), not the root key.
    pub session: bool,
    pub principal: super::Principal,
}

/// Why a request was not authenticated. The Display text is the message AWS sends; the fields
/// carry the facts for logs. `code()` and `status()` give the AWS error code and HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Neither an Authorization header nor presigned query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthentication,

    /// The Authorization header, credential scope or presigned parameters are malformed; the
    /// message says which part, in AWS's words where AWS has words for it.
    #[error("{message}")]
    IncompleteSignature { message: String },

    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey { access_key_id: String },

    /// The session token is missing, wrong, or sent with a long-term key.
    #[error("The security token included in the request is invalid.")]
    InvalidSessionToken { access_key_id: String, problem: &'static str },

    #[error(
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
    )]
    SignatureMismatch { access_key_id: String, detail: String },

    #[error(
        "Signature expired: {signed} is now earlier than {earliest} ({now} - {} min.)",
        MAX_CLOCK_SKEW.as_secs() / 60
    )]
    SignatureExpired { signed: String, earliest: String, now: String },

    #[error(
        "Signature not yet current: {signed} is still later than {latest} ({now} + {} min.)",
        MAX_CLOCK_SKEW.as_secs() / 60
    )]
    SignatureNotYetCurrent { signed: String, latest: String, now: String },

    /// A presigned URL used after X-Amz-Date + X-Amz-Expires. S3 sends exactly this message.
    #[error("Request has expired")]
    PresignedUrlExpired { signed: String, expires_in_secs: u64, expired_at: String, now: String },

    /// Temporary credentials used after their expiry.
    #[error("The security token included in the request is expired")]
    ExpiredToken { access_key_id: String },

    /// Signed for a region this server does not serve (global services are signed for us-east-1).
    #[error("Credential should be scoped to a valid region, not '{region}'. ")]
    WrongRegion { region: String },

    /// Signed for another service than the one the request addresses.
    #[error("Credential should be scoped to correct service: '{expected}'. ")]
    WrongService { expected: &'static str, signed: String },

    /// The body does not hash to the x-amz-content-sha256 the client signed.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch { declared: String, computed: String },

    #[error(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, or a \
         valid sha256 value; got '{value}'."
    )]
    InvalidPayloadHash { value: String },

    /// Signed aws-chunked uploads carry a signature per chunk, which this verifier does not
    /// check; accepting the seed signature alone would let forged chunks through.
    #[error(
        "A header you provided implies functionality that is not implemented: \
         x-amz-content-sha256: {value}"
    )]
    UnsupportedStreamingPayload { value: String },
}

impl AuthError {
    /// The AWS error code (`x-amzn-ErrorType` / `__type` / S3 `<Code>`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthentication => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature { .. } => "IncompleteSignatureException",
            AuthError::UnknownAccessKey { .. } | AuthError::InvalidSessionToken { .. } => "UnrecognizedClientException",
            AuthError::SignatureMismatch { .. }
            | AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::WrongRegion { .. }
            | AuthError::WrongService { .. } => "InvalidSignatureException",
            AuthError::PresignedUrlExpired { .. } => "AccessDenied",
            AuthError::PayloadHashMismatch { .. } => "XAmzContentSHA256Mismatch",
            AuthError::ExpiredToken { .. } => "ExpiredTokenException",
            AuthError::InvalidPayloadHash { .. } => "InvalidArgument",
            AuthError::UnsupportedStreamingPayload { .. } => "NotImplemented",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::IncompleteSignature { .. }
            | AuthError::PayloadHashMismatch { .. }
            | AuthError::InvalidPayloadHash { .. } => StatusCode::BAD_REQUEST,
            AuthError::UnsupportedStreamingPayload { .. } => StatusCode::NOT_IMPLEMENTED,
            AuthError::MissingAuthentication
            | AuthError::UnknownAccessKey { .. }
            | AuthError::InvalidSessionToken { .. }
            | AuthError::SignatureMismatch { .. }
            | AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::WrongRegion { .. }
            | AuthError::WrongService { .. }
            | AuthError::PresignedUrlExpired { .. }
            | AuthError::ExpiredToken { .. } => StatusCode::FORBIDDEN,
        }
    }
}

fn incomplete(message: impl Into<String>) -> AuthError {
    AuthError::IncompleteSignature { message: message.into() }
}

/// Verifies the SigV4 signature of a request and returns who signed it.
///
/// `parts` and `body` must be the request exactly as received: the path and query stay
/// percent-encoded as the client sent them, because that is the text the client signed. `now` is
/// the server's clock; `lookup` maps an access key id to the secret nimbus holds for it.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
    lookup: impl Fn(&str) -> Option<Secret>,
) -> Result<Caller, AuthError> {
    check_headers(parts, now, lookup)?.finish(parts, body)
}

/// The first half of [`verify`], from the headers alone, before a byte of the body is read: the
/// Authorization header or presigned query is well formed, its date is within the clock skew, the
/// access key exists and the session token is its own. When the client signed a payload hash in
/// `x-amz-content-sha256` (or signed none: `UNSIGNED-PAYLOAD`), the signature itself is checked too;
/// otherwise the body is part of what was signed and [`HeadersChecked::finish`] checks it once read.
pub fn check_headers(
    parts: &Parts,
    now: SystemTime,
    lookup: impl Fn(&str) -> Option<Secret>,
) -> Result<HeadersChecked, AuthError> {
    let auth = SignedAuth::parse(parts)?;
    let signed_at = auth.check_time(now)?;
    let secret = lookup(&auth.access_key_id)
        .ok_or_else(|| AuthError::UnknownAccessKey { access_key_id: auth.access_key_id.clone() })?;
    auth.check_session_token(&secret)?;
    let mut checked = HeadersChecked { auth, secret, signed_at, now, signature_verified: false };
    if !matches!(checked.auth.payload, Payload::Body) {
        checked.check_signature(parts, &[])?;
        checked.signature_verified = true;
    }
    Ok(checked)
}

/// A request whose headers passed [`check_headers`].
#[derive(Debug)]
pub struct HeadersChecked {
    auth: SignedAuth,
    secret: Secret,
    signed_at: SystemTime,
    /// The server's clock when the request arrived, for the expiry of temporary credentials.
    now: SystemTime,
    signature_verified: bool,
}

impl HeadersChecked {
    /// Who signed, for the region, service and session checks that come before the body. Not yet
    /// proof of anything unless [`Self::signature_verified`].
    pub fn caller(&self) -> Caller {
        Caller {
            access_key_id: self.auth.access_key_id.clone(),
            region: self.auth.scope.region.clone(),
            service: self.auth.scope.service.clone(),
            session: self.secret.session_token.is_some(),
            principal: self.secret.principal.clone(),
        }
    }

    /// Whether the signature is already verified (it covers a payload hash given in the headers).
    pub fn signature_verified(&self) -> bool {
        self.signature_verified
    }

    /// The second half: the signature over the body (when the body is what was signed), and the body
    /// against the declared payload hash.
    pub fn finish(self, parts: &Parts, body: &[u8]) -> Result<Caller, AuthError> {
        if !self.signature_verified {
            self.check_signature(parts, body)?;
        }
        // Checked only after the signature, so that a caller without the key learns nothing from it.
        self.auth.payload.check_body(body)?;
        // Also only after the signature: a stranger replaying a token learns nothing of its expiry.
        if self.secret.expires.is_some_and(|expires| expires <= self.now) {
            return Err(AuthError::ExpiredToken { access_key_id: self.auth.access_key_id.clone() });
        }
        Ok(self.caller())
    }

    fn check_signature(&self, parts: &Parts, body: &[u8]) -> Result<(), AuthError> {
        let auth = &self.auth;
        let expected = expected_signature(parts, body, auth, &self.secret, self.signed_at)?;
        let matches: bool = expected.signature.as_bytes().ct_eq(auth.signature.as_bytes()).into();
        if matches {
            return Ok(());
        }
        let mut detail = String::from("the recomputed signature differs");
        if let Some(signed) = expected.signed_headers.filter(|s| *s != auth.signed_headers_text) {
            detail.push_str(&format!(
                "; the client signed headers '{}' but the rebuilt request signs '{signed}'",
                auth.signed_headers_text
            ));
        }
        Err(AuthError::SignatureMismatch { access_key_id: auth.access_key_id.clone(), detail })
    }
}

/// Where the signature travelled, with what only that form has.
#[derive(Debug)]
enum Location {
    Header,
    Query { expires: Duration },
}

#[derive(Debug)]
struct Scope {
    date: String,
    region: String,
    service: String,
}

/// How the payload enters the canonical request.
#[derive(Debug)]
enum Payload {
    /// No x-amz-content-sha256: hash the body as received.
    Body,
    /// A declared hex hash: signed as declared, and the body must hash to it.
    Declared(String),
    Unsigned,
    UnsignedTrailer,
}

impl Payload {
    fn from_declared(value: &str) -> Result<Payload, AuthError> {
        if value == UNSIGNED_PAYLOAD {
            Ok(Payload::Unsigned)
        } else if value == STREAMING_UNSIGNED_PAYLOAD_TRAILER {
            Ok(Payload::UnsignedTrailer)
        } else if value.starts_with("STREAMING-") {
            Err(AuthError::UnsupportedStreamingPayload { value: value.to_owned() })
        } else if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Payload::Declared(value.to_owned()))
        } else {
            Err(AuthError::InvalidPayloadHash { value: value.to_owned() })
        }
    }

    fn signable<'a>(&self, body: &'a [u8]) -> SignableBody<'a> {
        match self {
            Payload::Body => SignableBody::Bytes(body),
            Payload::Declared(hash) => SignableBody::Precomputed(hash.clone()),
            Payload::Unsigned => SignableBody::UnsignedPayload,
            Payload::UnsignedTrailer => SignableBody::StreamingUnsignedPayloadTrailer,
        }
    }

    fn check_body(&self, body: &[u8]) -> Result<(), AuthError> {
        let Payload::Declared(declared) = self else {
            return Ok(());
        };
        let computed = hex::encode(Sha256::digest(body));
        if computed.eq_ignore_ascii_case(declared) {
            Ok(())
        } else {
            Err(AuthError::PayloadHashMismatch { declared: declared.clone(), computed })
        }
    }
}

/// Everything the client claims about its signature, parsed from the header or the query.
#[derive(Debug)]
struct SignedAuth {
    location: Location,
    access_key_id: String,
    scope: Scope,
    /// Lowercased names, in the client's order.
    signed_headers: Vec<String>,
    /// The SignedHeaders value as sent, for diagnostics.
    signed_headers_text: String,
    signature: String,
    amz_date: String,
    session_token: Option<String>,
    /// Whether the session token is part of what was signed (a signed header, or a query
    /// parameter, which botocore always signs).
    token_signed: bool,
    payload: Payload,
}

impl SignedAuth {
    fn parse(parts: &Parts) -> Result<SignedAuth, AuthError> {
        let mut headers = parts.headers.get_all(http::header::AUTHORIZATION).iter();
        let header = headers.next();
        if headers.next().is_some() {
            return Err(incomplete("The request carries more than one Authorization header."));
        }
        let query = parts.uri.query().unwrap_or("");
        let presigned = query_pairs(query).any(|(key, _)| {
            let key = form_decode(key);
            key == query::ALGORITHM || key == query::CREDENTIAL || key == query::SIGNATURE
        });
        match (header, presigned) {
            (None, false) => Err(AuthError::MissingAuthentication),
            (Some(_), true) => Err(incomplete(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or \
                 the Authorization header should be specified",
            )),
            (Some(value), false) => {
                let value = value
                    .to_str()
                    .map_err(|_| incomplete("The Authorization header contains characters that are not ASCII."))?;
                Self::from_header(parts, value)
            }
            (None, true) => Self::from_query(parts, query),
        }
    }

    fn from_header(parts: &Parts, authorization: &str) -> Result<SignedAuth, AuthError> {
        let (algorithm, rest) = authorization.trim().split_once(' ').unwrap_or((authorization.trim(), ""));
        let date = single_header(parts, "x-amz-date")?;

        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        if algorithm == ALGORITHM {
            for pair in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(incomplete(format!(
                        "'{pair}' not a valid key=value pair (missing equal-sign) in \
                         Authorization header: '{authorization}'."
                    )));
                };
                let slot = match key.trim() {
                    "Credential" => &mut credential,
                    "SignedHeaders" => &mut signed_headers,
                    "Signature" => &mut signature,
                    // AWS ignores components it does not know; so does nimbus.
                    _ => continue,
                };
                if slot.replace(value.trim().to_owned()).is_some() {
                    return Err(incomplete(format!(
                        "Authorization header has '{}' more than once: '{authorization}'.",
                        key.trim()
                    )));
                }
            }
        }

        let mut missing = String::new();
        for (name, value) in
            [("Credential", &credential), ("Signature", &signature), ("SignedHeaders", &signed_headers)]
        {
            if value.is_none() {
                missing.push_str(&format!("Authorization header requires '{name}' parameter. "));
            }
        }
        if date.is_none() {
            if parts.headers.contains_key(http::header::DATE) {
                // aws-sigv4 can only rebuild requests dated by X-Amz-Date, which every AWS SDK
                // sends; a Date-only request could never verify, so say why up front.
                missing.push_str(
                    "nimbus requires the 'X-Amz-Date' header; a 'Date' header alone is not \
                     supported. ",
                );
            } else {
                missing.push_str(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a \
                     'Date' header. ",
                );
            }
        }
        let (Some(credential), Some(signed_headers), Some(signature), Some(date)) =
            (credential, signed_headers, signature, date)
        else {
            // AWS echoes the header back. Only an AWS4 header is echoed here: any other scheme
            // (Basic, Bearer) may carry a password or token that has no business in a response.
            let echoed = if algorithm == ALGORITHM { authorization } else { algorithm };
            return Err(incomplete(format!("{missing}Authorization={echoed}")));
        };

        let (access_key_id, scope) = parse_credential(&credential)?;
        let names = parse_signed_headers(&signed_headers)?;
        let session_token = single_header(parts, SECURITY_TOKEN)?;
        let token_signed = names.iter().any(|n| n == SECURITY_TOKEN);
        let payload = match single_header(parts, CONTENT_SHA256)? {
            Some(value) => Payload::from_declared(&value)?,
            None => Payload::Body,
        };
        Ok(SignedAuth {
            location: Location::Header,
            access_key_id,
            scope,
            signed_headers: names,
            signed_headers_text: signed_headers,
            signature,
            amz_date: date,
            session_token,
            token_signed,
            payload,
        })
    }

    fn from_query(parts: &Parts, query: &str) -> Result<SignedAuth, AuthError> {
        let mut found: [Option<String>; query::AUTH.len()] = Default::default();
        let mut content_sha256 = None;
        for (raw_key, raw_value) in query_pairs(query) {
            let key = form_decode(raw_key);
            let slot = match query::AUTH.iter().position(|name| *name == key) {
                Some(index) => &mut found[index],
                None if key == query::CONTENT_SHA256 => &mut content_sha256,
                None => continue,
            };
            if slot.replace(form_decode(raw_value)).is_some() {
                return Err(incomplete(format!("The query parameter {key} appears more than once.")));
            }
        }
        let [algorithm, credential, date, expires, signed_headers, signature, session_token] = found;
        let (Some(algorithm), Some(credential), Some(date), Some(expires), Some(signed_headers), Some(signature)) =
            (algorithm, credential, date, expires, signed_headers, signature)
        else {
            return Err(incomplete(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, \
                 X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and \
                 X-Amz-Expires parameters.",
            ));
        };
        if algorithm != ALGORITHM {
            return Err(incomplete(format!("X-Amz-Algorithm only supports \"{ALGORITHM}\"; got \"{algorithm}\".")));
        }
        let expires_secs: u64 =
            expires.parse().map_err(|_| incomplete(format!("X-Amz-Expires should be a number; got '{expires}'.")))?;
        if expires_secs > MAX_PRESIGNED_EXPIRY.as_secs() {
            return Err(incomplete(format!(
                "X-Amz-Expires must be less than a week (in seconds) that is {}; got {expires_secs}.",
                MAX_PRESIGNED_EXPIRY.as_secs()
            )));
        }

        let (access_key_id, scope) = parse_credential(&credential)?;
        let names = parse_signed_headers(&signed_headers)?;
        // A presigned URL says nothing about the body it will be used with, so S3 signs the
        // constant UNSIGNED-PAYLOAD; other services (and botocore's generic presigner) hash the
        // body, which for a presigned GET is empty. An explicit value in a header or in the
        // query (the JavaScript SDK v3 puts it there) wins.
        let declared = match single_header(parts, CONTENT_SHA256)? {
            Some(value) => Some(value),
            None => content_sha256,
        };
        let payload = match declared {
            Some(value) => Payload::from_declared(&value)?,
            None if is_s3(&scope.service) => Payload::Unsigned,
            None => Payload::Body,
        };
        Ok(SignedAuth {
            location: Location::Query { expires: Duration::from_secs(expires_secs) },
            access_key_id,
            scope,
            signed_headers: names,
            signed_headers_text: signed_headers,
            signature,
            amz_date: date,
            token_signed: session_token.is_some(),
            session_token,
            payload,
        })
    }

    /// Checks X-Amz-Date against the scope and the clock, and returns it as the signing time.
    fn check_time(&self, now: SystemTime) -> Result<SystemTime, AuthError> {
        let signed_at = parse_amz_date(&self.amz_date).ok_or_else(|| {
            incomplete(format!(
                "Date must be in ISO-8601 'basic format' (YYYYMMDD'T'HHMMSS'Z'). Got '{}'.",
                self.amz_date
            ))
        })?;
        if self.amz_date.get(..8) != Some(self.scope.date.as_str()) {
            return Err(incomplete(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{}', from '{}'.",
                self.scope.date,
                self.amz_date.get(..8).unwrap_or(""),
                self.amz_date
            )));
        }

        // Far-off times can overflow SystemTime arithmetic; treating overflow as "out of range"
        // gives the same answer as the comparison would.
        let latest = now.checked_add(MAX_CLOCK_SKEW);
        if latest.is_none_or(|latest| signed_at > latest) {
            return Err(AuthError::SignatureNotYetCurrent {
                signed: self.amz_date.clone(),
                latest: latest.map_or_else(String::new, format_amz_date),
                now: format_amz_date(now),
            });
        }
        match self.location {
            Location::Header => {
                let earliest = now.checked_sub(MAX_CLOCK_SKEW);
                if earliest.is_some_and(|earliest| signed_at < earliest) {
                    return Err(AuthError::SignatureExpired {
                        signed: self.amz_date.clone(),
                        earliest: earliest.map_or_else(String::new, format_amz_date),
                        now: format_amz_date(now),
                    });
                }
            }
            Location::Query { expires } => {
                let expired_at = signed_at.checked_add(expires);
                if expired_at.is_none_or(|at| now > at) {
                    return Err(AuthError::PresignedUrlExpired {
                        signed: self.amz_date.clone(),
                        expires_in_secs: expires.as_secs(),
                        expired_at: expired_at.map_or_else(String::new, format_amz_date),
                        now: format_amz_date(now),
                    });
                }
            }
        }
        Ok(signed_at)
    }

    fn check_session_token(&self, secret: &Secret) -> Result<(), AuthError> {
        let problem = match (&secret.session_token, &self.session_token) {
            (None, None) => return Ok(()),
            (Some(held), Some(sent)) => {
                if bool::from(held.as_bytes().ct_eq(sent.as_bytes())) {
                    return Ok(());
                }
                "the session token does not match the one issued with this access key"
            }
            (Some(_), None) => "the access key is temporary and the request carries no session token",
            (None, Some(_)) => "the request carries a session token but the access key is a long-term key",
        };
        Err(AuthError::InvalidSessionToken { access_key_id: self.access_key_id.clone(), problem })
    }

    /// The request target to sign: the raw path and query as received, minus the presigned
    /// signature parameters, which aws-sigv4 adds back itself.
    fn signable_uri(&self, parts: &Parts) -> String {
        let path = parts.uri.path();
        let path = if path.is_empty() { "/" } else { path };
        let query = parts.uri.query().unwrap_or("");
        let query = match self.location {
            Location::Header => query.to_owned(),
            Location::Query { .. } => query
                .split('&')
                .filter(|pair| {
                    let key = pair.split_once('=').map_or(*pair, |(key, _)| key);
                    !pair.is_empty() && !query::AUTH.contains(&form_decode(key).as_str())
                })
                .collect::<Vec<_>>()
                .join("&"),
        };
        if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") }
    }
}

struct Expected {
    signature: String,
    /// The SignedHeaders aws-sigv4 produced, to explain a mismatch.
    signed_headers: Option<String>,
}

fn expected_signature(
    parts: &Parts,
    body: &[u8],
    auth: &SignedAuth,
    secret: &Secret,
    signed_at: SystemTime,
) -> Result<Expected, AuthError> {
    let mismatch = |detail: String| AuthError::SignatureMismatch { access_key_id: auth.access_key_id.clone(), detail };

    let mut headers: Vec<(&str, String)> = Vec::new();
    for name in &auth.signed_headers {
        let mut present = false;
        for value in parts.headers.get_all(name.as_str()) {
            present = true;
            let value = std::str::from_utf8(value.as_bytes())
                .map_err(|_| mismatch(format!("signed header '{name}' is not UTF-8")))?;
            headers.push((name, value.to_owned()));
        }
        // HTTP/2 carries the host in the :authority pseudo-header, which becomes the URI's
        // authority rather than a header.
        if !present
            && name == "host"
            && let Some(authority) = parts.uri.authority()
        {
            present = true;
            headers.push((name, authority.as_str().to_owned()));
        }
        if !present {
            return Err(mismatch(format!("signed header '{name}' is not in the request")));
        }
    }

    // The token joins the canonical request only if the client signed it; an unsigned token
    // header is still checked against the secret, by check_session_token.
    let token = if auth.token_signed { auth.session_token.clone() } else { None };
    let identity = Credentials::new(
        auth.access_key_id.clone(),
        secret.secret_access_key.clone(),
        token,
        None,
        "nimbus-sigv4-verify",
    )
    .into();

    let mut settings = SigningSettings::default();
    // S3 signs the path exactly as sent; every other service signs it normalized and encoded a
    // second time (botocore's SigV4Auth versus S3SigV4Auth).
    if is_s3(&auth.scope.service) {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    } else {
        settings.percent_encoding_mode = PercentEncodingMode::Double;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
    }
    // The default excludes user-agent and a few others because a signer should not sign them;
    // a verifier must sign whatever the client did sign.
    settings.excluded_headers = None;
    settings.session_token_mode = SessionTokenMode::Include;
    match auth.location {
        Location::Header => settings.signature_location = SignatureLocation::Headers,
        Location::Query { expires } => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
    }

    let params: SigningParams<'_> = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.scope.region)
        .name(&auth.scope.service)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|e| mismatch(format!("could not build signing parameters: {e}")))?
        .into();
    let request = SignableRequest::new(
        parts.method.as_str(),
        auth.signable_uri(parts),
        headers.iter().map(|(name, value)| (*name, value.as_str())),
        auth.payload.signable(body),
    )
    .map_err(|e| mismatch(format!("could not rebuild the request for signing: {e}")))?;
    let (instructions, signature) =
        sign(request, &params).map_err(|e| mismatch(format!("could not recompute the signature: {e}")))?.into_parts();

    let signed_headers = match auth.location {
        Location::Header => {
            instructions.headers().find(|(name, _)| name.eq_ignore_ascii_case("authorization")).and_then(
                |(_, value)| value.split(", ").find_map(|part| part.strip_prefix("SignedHeaders=")).map(str::to_owned),
            )
        }
        Location::Query { .. } => instructions
            .params()
            .iter()
            .find(|(name, _)| *name == query::SIGNED_HEADERS)
            .map(|(_, value)| value.to_string()),
    };
    Ok(Expected { signature, signed_headers })
}

fn is_s3(service: &str) -> bool {
    service == "s3"
}

/// Parses `AKID/YYYYMMDD/region/service/aws4_request`.
fn parse_credential(credential: &str) -> Result<(String, Scope), AuthError> {
    let elements: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = elements[..] else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if access_key_id.is_empty() {
        return Err(incomplete(format!("Credential has an empty access key id: '{credential}'")));
    }
    if terminator != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not \
             '{terminator}'."
        )));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!("Credential should be scoped to a valid date (YYYYMMDD), not '{date}'.")));
    }
    let valid_name =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_name(region) {
        return Err(incomplete(format!("Credential should be scoped to a valid region, not '{region}'.")));
    }
    if !valid_name(service) {
        return Err(incomplete(format!("Credential should be scoped to a valid service, not '{service}'.")));
    }
    Ok((
        access_key_id.to_owned(),
        Scope { date: date.to_owned(), region: region.to_owned(), service: service.to_owned() },
    ))
}

fn parse_signed_headers(value: &str) -> Result<Vec<String>, AuthError> {
    let mut names: Vec<String> = Vec::new();
    // A set, not `names.contains`: this runs before any key is known, and a 400 KB header of distinct
    // names made that search quadratic (billions of comparisons per request).
    let mut seen = std::collections::HashSet::new();
    for name in value.split(';') {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(incomplete(format!("SignedHeaders contains an empty header name: '{value}'.")));
        }
        // A repeated name would put the header's values into the canonical request twice.
        if seen.insert(name.clone()) {
            names.push(name);
        }
    }
    if !names.iter().any(|n| n == "host") {
        return Err(incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."));
    }
    Ok(names)
}

/// Regression tests for what the fuzz targets (and their review) found, kept apart to ease merging.
#[cfg(test)]
#[path = "sigv4_regressions.rs"]
mod regressions;

/// The value of a header that must appear at most once.
fn single_header(parts: &Parts, name: &str) -> Result<Option<String>, AuthError> {
    let mut values = parts.headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(incomplete(format!("The request carries more than one '{name}' header.")));
    }
    first
        .to_str()
        .map(|v| Some(v.trim().to_owned()))
        .map_err(|_| incomplete(format!("The '{name}' header contains characters that are not ASCII.")))
}

/// Splits a raw query string into raw (still encoded) key/value pairs.
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query.split('&').filter(|pair| !pair.is_empty()).map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// Decodes a query key or value the way aws-sigv4 does (form encoding, `+` is a space), so that
/// the values checked here are the values that get signed.
fn form_decode(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

fn amz_date_format() -> &'static [time::format_description::BorrowedFormatItem<'static>] {
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z")
}

fn parse_amz_date(value: &str) -> Option<SystemTime> {
    if value.len() != 16 {
        return None;
    }
    PrimitiveDateTime::parse(value, amz_date_format()).ok().map(|t| t.assume_utc().into())
}

fn format_amz_date(t: SystemTime) -> String {
    OffsetDateTime::from(t).format(amz_date_format()).unwrap_or_else(|e| format!("<unformattable time: {e}>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    use serde::Deserialize;

    /// Requests signed by botocore; see tests/data/make_sigv4_vectors.py.
    const FIXTURE: &str = include_str!("../../tests/data/sigv4_vectors.json");

    #[derive(Deserialize)]
    struct Fixture {
        signing_time: String,
        vectors: Vec<Vector>,
    }

    #[derive(Deserialize)]
    struct Vector {
        name: String,
        service: String,
        region: String,
        method: String,
        path_and_query: String,
        headers: Vec<(String, String)>,
        body_base64: String,
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
        presigned: bool,
    }

    /// A request as it arrives on the wire, easy to tamper with.
    #[derive(Clone, Debug)]
    struct Wire {
        method: String,
        target: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Wire {
        fn parts(&self) -> Parts {
            let mut builder = http::Request::builder().method(self.method.as_str()).uri(self.target.as_str());
            for (name, value) in &self.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            builder.body(()).expect("test request is valid").into_parts().0
        }

        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }

        fn set_header(&mut self, name: &str, value: &str) {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            self.headers.push((name.to_owned(), value.to_owned()));
        }

        fn remove_header(&mut self, name: &str) {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }

        fn query_param(&self, name: &str) -> Option<String> {
            let (_, query) = self.target.split_once('?')?;
            query_pairs(query).find(|(k, _)| form_decode(k) == name).map(|(_, v)| form_decode(v))
        }

        /// The lowercased header names the client signed.
        fn signed_headers(&self) -> Vec<String> {
            let list = match self.header("authorization") {
                Some(auth) => auth
                    .split(", ")
                    .find_map(|p| p.strip_prefix("SignedHeaders="))
                    .expect("Authorization has SignedHeaders")
                    .to_owned(),
                None => self.query_param(query::SIGNED_HEADERS).expect("presigned URL has X-Amz-SignedHeaders"),
            };
            list.split(';').map(str::to_owned).collect()
        }
    }

    struct Golden {
        vector: Vector,
        wire: Wire,
        signed_at: SystemTime,
    }

    impl Golden {
        fn lookup(&self) -> impl Fn(&str) -> Option<Secret> + '_ {
            move |id| {
                (id == self.vector.access_key_id)
                    .then(|| Secret::root(self.vector.secret_access_key.clone(), self.vector.session_token.clone()))
            }
        }

        fn verify(&self, wire: &Wire) -> Result<Caller, AuthError> {
            verify(&wire.parts(), &wire.body, self.signed_at, self.lookup())
        }

        fn verify_at(&self, now: SystemTime) -> Result<Caller, AuthError> {
            verify(&self.wire.parts(), &self.wire.body, now, self.lookup())
        }

        /// Whether a different body still verifies, by design: the payload is not signed.
        fn body_unsigned(&self) -> bool {
            let declared = self
                .wire
                .header(CONTENT_SHA256)
                .map(str::to_owned)
                .or_else(|| self.wire.query_param(query::CONTENT_SHA256));
            match declared.as_deref() {
                Some(value) => value == UNSIGNED_PAYLOAD,
                None => self.vector.presigned && self.vector.service == "s3",
            }
        }
    }

    fn golden() -> Vec<Golden> {
        let fixture: Fixture = serde_json::from_str(FIXTURE).expect("fixture is valid JSON");
        let signed_at = parse_amz_date(&fixture.signing_time).expect("fixture signing_time");
        fixture
            .vectors
            .into_iter()
            .map(|vector| {
                let body = base64::engine::general_purpose::STANDARD
                    .decode(&vector.body_base64)
                    .expect("fixture body is base64");
                let wire = Wire {
                    method: vector.method.clone(),
                    target: vector.path_and_query.clone(),
                    headers: vector.headers.clone(),
                    body,
                };
                Golden { vector, wire, signed_at }
            })
            .collect()
    }

    fn assert_mismatch(name: &str, what: &str, result: Result<Caller, AuthError>) {
        match result {
            Err(AuthError::SignatureMismatch { .. }) => {}
            other => {
                panic!("{name}: after altering {what}, expected SignatureMismatch, got {other:?}")
            }
        }
    }

    #[test]
    fn golden_vectors_cover_what_they_claim() {
        let vectors = golden();
        assert!(vectors.len() >= 12, "fixture has {} vectors", vectors.len());
        let targets: Vec<&str> = vectors.iter().map(|g| g.wire.target.as_str()).collect();
        for needle in ["%24LATEST", "$LATEST", "%3A", "%20", "%C3%BC", "?"] {
            assert!(targets.iter().any(|t| t.contains(needle)), "no vector's target contains {needle}");
        }
        assert!(vectors.iter().any(|g| g.vector.service == "s3"));
        assert!(vectors.iter().any(|g| g.vector.presigned));
        assert!(vectors.iter().any(|g| g.vector.session_token.is_some()));
        assert!(vectors.iter().any(|g| !g.wire.body.is_empty()));
    }

    #[test]
    fn golden_vectors_verify() {
        for g in golden() {
            let caller = g.verify(&g.wire).unwrap_or_else(|e| panic!("{}: rejected: {e:?}", g.vector.name));
            assert_eq!(
                caller,
                Caller {
                    access_key_id: g.vector.access_key_id.clone(),
                    region: g.vector.region.clone(),
                    service: g.vector.service.clone(),
                    session: g.vector.session_token.is_some(),
                    principal: crate::auth::Principal::Root,
                },
                "{}",
                g.vector.name
            );
        }
    }

    #[test]
    fn golden_vectors_reject_another_method() {
        for g in golden() {
            let mut wire = g.wire.clone();
            wire.method = if wire.method == "GET" { "POST" } else { "GET" }.to_owned();
            assert_mismatch(&g.vector.name, "the method", g.verify(&wire));
        }
    }

    #[test]
    fn golden_vectors_reject_another_path() {
        for g in golden() {
            let mut wire = g.wire.clone();
            let (path, query) = match wire.target.split_once('?') {
                Some((path, query)) => (path.to_owned(), format!("?{query}")),
                None => (wire.target.clone(), String::new()),
            };
            wire.target = format!("{path}x{query}");
            assert_mismatch(&g.vector.name, "the path", g.verify(&wire));

            // One encoding of the same character is not another: %24 is not $.
            if path.contains("%24") {
                let mut wire = g.wire.clone();
                wire.target = wire.target.replacen("%24", "$", 1);
                assert_mismatch(&g.vector.name, "%24 to $ in the path", g.verify(&wire));
            }
        }
    }

    #[test]
    fn golden_vectors_reject_query_changes() {
        for g in golden() {
            let mut added = g.wire.clone();
            let separator = if added.target.contains('?') { '&' } else { '?' };
            added.target.push_str(&format!("{separator}extra=1"));
            assert_mismatch(&g.vector.name, "the query (added a parameter)", g.verify(&added));

            let Some((path, query)) = g.wire.target.split_once('?') else {
                continue;
            };
            let mut altered_one = false;
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| {
                    let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                    if !altered_one && !query::AUTH.contains(&form_decode(key).as_str()) {
                        altered_one = true;
                        format!("{pair}x")
                    } else {
                        pair.to_owned()
                    }
                })
                .collect();
            if altered_one {
                let mut wire = g.wire.clone();
                wire.target = format!("{path}?{}", pairs.join("&"));
                assert_mismatch(&g.vector.name, "a query parameter", g.verify(&wire));
            }
        }
    }

    #[test]
    fn golden_vectors_reject_signed_header_changes() {
        for g in golden() {
            for name in g.wire.signed_headers() {
                let Some(original) = g.wire.header(&name).map(str::to_owned) else {
                    panic!("{}: signed header {name} is not in the request", g.vector.name);
                };
                let altered = match name.as_str() {
                    // Still a valid date on the same day, one second later.
                    "x-amz-date" => {
                        let mut d = original.clone();
                        d.replace_range(13..15, if &d[13..15] == "59" { "58" } else { "59" });
                        d
                    }
                    // Still a well-formed payload hash, but not the one signed.
                    CONTENT_SHA256 if original == UNSIGNED_PAYLOAD => hex::encode(Sha256::digest(&g.wire.body)),
                    CONTENT_SHA256 => {
                        let flipped = if original.starts_with('0') { "1" } else { "0" };
                        format!("{flipped}{}", &original[1..])
                    }
                    _ => format!("{original}x"),
                };
                let mut wire = g.wire.clone();
                wire.set_header(&name, &altered);
                let result = g.verify(&wire);
                if name == SECURITY_TOKEN {
                    assert!(
                        matches!(result, Err(AuthError::InvalidSessionToken { .. })),
                        "{}: altered token gave {result:?}",
                        g.vector.name
                    );
                } else {
                    assert_mismatch(&g.vector.name, &format!("signed header {name}"), result);
                }

                let mut removed = g.wire.clone();
                removed.remove_header(&name);
                assert!(g.verify(&removed).is_err(), "{}: accepted without signed header {name}", g.vector.name);
            }
        }
    }

    #[test]
    fn golden_vectors_reject_another_body_unless_unsigned() {
        for g in golden() {
            let mut wire = g.wire.clone();
            match wire.body.first_mut() {
                Some(byte) => *byte ^= 0x01,
                None => wire.body.push(b'x'),
            }
            let result = g.verify(&wire);
            if g.body_unsigned() {
                assert!(result.is_ok(), "{}: unsigned body rejected: {result:?}", g.vector.name);
            } else if g.wire.header(CONTENT_SHA256).is_some() {
                assert!(
                    matches!(result, Err(AuthError::PayloadHashMismatch { .. })),
                    "{}: altered body gave {result:?}",
                    g.vector.name
                );
            } else {
                assert_mismatch(&g.vector.name, "the body", result);
            }
        }
    }

    #[test]
    fn golden_vectors_reject_another_key() {
        for g in golden() {
            let wrong_secret = |_: &str| {
                Some(Secret::root(format!("{}x", g.vector.secret_access_key), g.vector.session_token.clone()))
            };
            let result = verify(&g.wire.parts(), &g.wire.body, g.signed_at, wrong_secret);
            assert_mismatch(&g.vector.name, "the secret key", result);

            let result = verify(&g.wire.parts(), &g.wire.body, g.signed_at, |_| None);
            assert!(
                matches!(result, Err(AuthError::UnknownAccessKey { ref access_key_id }) if *access_key_id == g.vector.access_key_id),
                "{}: unknown key gave {result:?}",
                g.vector.name
            );
        }
    }

    #[test]
    fn golden_vectors_honour_the_clock() {
        let minute = Duration::from_secs(60);
        let second = Duration::from_secs(1);
        for g in golden() {
            let name = &g.vector.name;
            let too_early = g.signed_at - MAX_CLOCK_SKEW - second;
            assert!(
                matches!(g.verify_at(too_early), Err(AuthError::SignatureNotYetCurrent { .. })),
                "{name}: signed in the future"
            );
            assert!(g.verify_at(g.signed_at - MAX_CLOCK_SKEW).is_ok(), "{name}: -15 min");

            if g.vector.presigned {
                let expires: u64 =
                    g.wire.query_param(query::EXPIRES).and_then(|e| e.parse().ok()).expect("X-Amz-Expires");
                let deadline = g.signed_at + Duration::from_secs(expires);
                assert!(g.verify_at(deadline).is_ok(), "{name}: at expiry");
                assert!(
                    matches!(
                        g.verify_at(deadline + second),
                        Err(AuthError::PresignedUrlExpired { expires_in_secs, .. }) if expires_in_secs == expires
                    ),
                    "{name}: after expiry"
                );
            } else {
                assert!(g.verify_at(g.signed_at + 14 * minute).is_ok(), "{name}: +14 min");
                assert!(g.verify_at(g.signed_at + MAX_CLOCK_SKEW).is_ok(), "{name}: +15 min");
                assert!(
                    matches!(
                        g.verify_at(g.signed_at + MAX_CLOCK_SKEW + second),
                        Err(AuthError::SignatureExpired { .. })
                    ),
                    "{name}: skewed past"
                );
            }
        }
    }

    #[test]
    fn host_may_come_from_the_uri_authority() {
        // HTTP/2 sends :authority instead of a Host header; it lands in the URI.
        let g = golden().into_iter().find(|g| g.vector.name == "lambda_invoke_json").expect("vector");
        let mut wire = g.wire.clone();
        let host = wire.header("host").expect("host").to_owned();
        wire.remove_header("host");
        wire.target = format!("http://{host}{}", wire.target);
        assert!(g.verify(&wire).is_ok());
    }

    // Requests signed here with aws-sigv4 itself, for cases botocore does not produce.

    const KEY: &str = "AKIDTEST";
    const SECRET: &str = "test/secret+key";
    const TOKEN: &str = "session+token/==";
    const HOST: &str = "nimbus.test:9001";

    /// Query-value encoding: everything but the unreserved characters.
    const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

    fn at(amz_date: &str) -> SystemTime {
        parse_amz_date(amz_date).expect("valid test date")
    }

    struct Signer<'a> {
        service: &'a str,
        token: Option<&'a str>,
        time: SystemTime,
        body: SignableBody<'a>,
        presign_for: Option<Duration>,
    }

    impl Default for Signer<'_> {
        fn default() -> Self {
            Signer {
                service: "lambda",
                token: None,
                time: at("20240101T000000Z"),
                body: SignableBody::Bytes(b""),
                presign_for: None,
            }
        }
    }

    impl Signer<'_> {
        fn sign(self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Wire {
            let mut all: Vec<(&str, &str)> = vec![("host", HOST)];
            all.extend_from_slice(headers);
            let identity = Credentials::new(KEY, SECRET, self.token.map(str::to_owned), None, "test").into();
            let mut settings = SigningSettings::default();
            if self.service == "s3" {
                settings.percent_encoding_mode = PercentEncodingMode::Single;
                settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            }
            if let Some(expires) = self.presign_for {
                settings.signature_location = SignatureLocation::QueryParams;
                settings.expires_in = Some(expires);
            }
            let params: SigningParams<'_> = v4::SigningParams::builder()
                .identity(&identity)
                .region("us-east-1")
                .name(self.service)
                .time(self.time)
                .settings(settings)
                .build()
                .expect("signing params")
                .into();
            let request =
                SignableRequest::new(method, target, all.iter().copied(), self.body).expect("signable request");
            let (instructions, _) = sign(request, &params).expect("signed").into_parts();

            let mut target = target.to_owned();
            for (name, value) in instructions.params() {
                let separator = if target.contains('?') { '&' } else { '?' };
                let value = utf8_percent_encode(value, QUERY_VALUE);
                target.push_str(&format!("{separator}{name}={value}"));
            }
            let mut wire_headers: Vec<(String, String)> =
                all.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
            for (name, value) in instructions.headers() {
                wire_headers.push((name.to_owned(), value.to_owned()));
            }
            Wire { method: method.to_owned(), target, headers: wire_headers, body: body.to_vec() }
        }
    }

    fn check(wire: &Wire, now: SystemTime, held_token: Option<&str>) -> Result<Caller, AuthError> {
        verify(&wire.parts(), &wire.body, now, |id| {
            (id == KEY).then(|| Secret::root(SECRET, held_token.map(str::to_owned)))
        })
    }

    fn incomplete_message(result: Result<Caller, AuthError>) -> String {
        match result {
            Err(e @ AuthError::IncompleteSignature { .. }) => {
                assert_eq!(e.code(), "IncompleteSignatureException");
                assert_eq!(e.status(), StatusCode::BAD_REQUEST);
                e.to_string()
            }
            other => panic!("expected IncompleteSignature, got {other:?}"),
        }
    }

    #[test]
    fn aws_sigv4_round_trips_for_headers_and_presigned_urls() {
        let now = at("20240101T000500Z");
        let body = br#"{"a":1}"#;
        let header_signed = Signer { body: SignableBody::Bytes(body), ..Signer::default() }.sign(
            "POST",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations",
            &[("content-type", "application/json")],
            body,
        );
        assert!(check(&header_signed, now, None).is_ok());

        let presigned = Signer {
            service: "s3",
            body: SignableBody::UnsignedPayload,
            presign_for: Some(Duration::from_secs(600)),
            ..Signer::default()
        }
        .sign("GET", "/bucket/key%20with%20space?versionId=3", &[], b"");
        let caller = check(&presigned, now, None).expect("presigned verifies");
        assert_eq!(caller.service, "s3");
    }

    #[test]
    fn missing_authentication() {
        let wire = Wire {
            method: "GET".into(),
            target: "/2015-03-31/functions".into(),
            headers: vec![("host".into(), HOST.into())],
            body: vec![],
        };
        let err = check(&wire, at("20240101T000000Z"), None).expect_err("no auth");
        assert!(matches!(err, AuthError::MissingAuthentication));
        assert_eq!(err.code(), "MissingAuthenticationTokenException");
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert_eq!(err.to_string(), "Missing Authentication Token");
    }

    #[test]
    fn other_schemes_are_incomplete_and_not_echoed() {
        let mut wire = Signer::default().sign("GET", "/", &[], b"");
        wire.remove_header("x-amz-date");
        wire.set_header("authorization", "Bearer secret.jwt.value");
        let message = incomplete_message(check(&wire, at("20240101T000000Z"), None));
        assert_eq!(
            message,
            "Authorization header requires 'Credential' parameter. Authorization header \
             requires 'Signature' parameter. Authorization header requires 'SignedHeaders' \
             parameter. Authorization header requires existence of either a 'X-Amz-Date' or a \
             'Date' header. Authorization=Bearer"
        );
    }

    #[test]
    fn malformed_authorization_headers() {
        let now = at("20240101T000000Z");
        let wire = Signer::default().sign("GET", "/", &[], b"");
        let auth = wire.header("authorization").expect("signed").to_owned();
        let with_auth = |value: &str| {
            let mut w = wire.clone();
            w.set_header("authorization", value);
            incomplete_message(check(&w, now, None))
        };

        let no_signed_headers =
            auth.split(", ").filter(|p| !p.starts_with("SignedHeaders=")).collect::<Vec<_>>().join(", ");
        let message = with_auth(&no_signed_headers);
        assert!(message.starts_with("Authorization header requires 'SignedHeaders' parameter. "));
        assert!(message.ends_with(&format!("Authorization={no_signed_headers}")));

        let message = with_auth(&auth.replace("/aws4_request", ""));
        assert!(message.starts_with("Credential must have exactly 5 slash-delimited elements"));

        let message = with_auth(&auth.replace("aws4_request", "aws5_request"));
        assert!(message.contains("valid terminator: 'aws4_request', not 'aws5_request'"));

        let message = with_auth(&auth.replace("/20240101/", "/20240102/"));
        assert_eq!(
            message,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '20240102' != '20240101', from '20240101T000000Z'."
        );

        let message = with_auth(&auth.replace("SignedHeaders=host;", "SignedHeaders="));
        assert_eq!(message, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");

        let message = with_auth(&auth.replace(", Signature=", ", Signature"));
        assert!(message.contains("not a valid key=value pair (missing equal-sign)"));

        let mut bad_date = wire.clone();
        bad_date.set_header("x-amz-date", "2024-01-01T00:00:00Z");
        let message = incomplete_message(check(&bad_date, now, None));
        assert!(message.starts_with("Date must be in ISO-8601 'basic format'"));
    }

    #[test]
    fn header_and_query_auth_together_are_rejected() {
        let presigned = Signer { presign_for: Some(Duration::from_secs(60)), ..Signer::default() }.sign(
            "GET",
            "/2015-03-31/functions",
            &[],
            b"",
        );
        let header_signed = Signer::default().sign("GET", "/2015-03-31/functions", &[], b"");
        let mut both = presigned.clone();
        both.set_header("authorization", header_signed.header("authorization").expect("signed"));
        let message = incomplete_message(check(&both, at("20240101T000000Z"), None));
        assert!(message.starts_with("Only one auth mechanism allowed"));
    }

    #[test]
    fn presigned_expiry_is_capped_at_seven_days() {
        let now = at("20240101T000000Z");
        let week = Signer { presign_for: Some(MAX_PRESIGNED_EXPIRY), ..Signer::default() }.sign(
            "GET",
            "/2015-03-31/functions",
            &[],
            b"",
        );
        assert!(check(&week, now, None).is_ok());
        assert!(check(&week, now + MAX_PRESIGNED_EXPIRY, None).is_ok());

        let longer = Signer { presign_for: Some(MAX_PRESIGNED_EXPIRY + Duration::from_secs(1)), ..Signer::default() }
            .sign("GET", "/2015-03-31/functions", &[], b"");
        let message = incomplete_message(check(&longer, now, None));
        assert!(message.starts_with("X-Amz-Expires must be less than a week"));

        let mut missing = week.clone();
        missing.target = missing.target.replace("X-Amz-Expires=604800&", "");
        let message = incomplete_message(check(&missing, now, None));
        assert!(message.starts_with("Query-string authentication version 4 requires"));
    }

    #[test]
    fn clock_skew_messages_match_aws() {
        let wire = Signer::default().sign("GET", "/", &[], b"");
        let err = check(&wire, at("20240101T003000Z"), None).expect_err("expired");
        assert_eq!(err.code(), "InvalidSignatureException");
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            err.to_string(),
            "Signature expired: 20240101T000000Z is now earlier than 20240101T001500Z \
             (20240101T003000Z - 15 min.)"
        );

        let err = check(&wire, at("20231231T233000Z"), None).expect_err("future");
        assert_eq!(err.code(), "InvalidSignatureException");
        assert_eq!(
            err.to_string(),
            "Signature not yet current: 20240101T000000Z is still later than 20231231T234500Z \
             (20231231T233000Z + 15 min.)"
        );
    }

    #[test]
    fn presigned_expiry_error() {
        let wire =
            Signer { presign_for: Some(Duration::from_secs(60)), ..Signer::default() }.sign("GET", "/", &[], b"");
        let err = check(&wire, at("20240101T000101Z"), None).expect_err("expired");
        assert_eq!(err.code(), "AccessDenied");
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert_eq!(err.to_string(), "Request has expired");
        let AuthError::PresignedUrlExpired { expired_at, .. } = err else {
            panic!("wrong variant");
        };
        assert_eq!(expired_at, "20240101T000100Z");
    }

    #[test]
    fn session_token_rules() {
        let now = at("20240101T000000Z");
        let with_token = Signer { token: Some(TOKEN), ..Signer::default() }.sign("GET", "/", &[], b"");
        let without_token = Signer::default().sign("GET", "/", &[], b"");
        let presigned_with_token =
            Signer { token: Some(TOKEN), presign_for: Some(Duration::from_secs(60)), ..Signer::default() }.sign(
                "GET",
                "/",
                &[],
                b"",
            );

        assert!(check(&with_token, now, Some(TOKEN)).is_ok());
        assert!(check(&presigned_with_token, now, Some(TOKEN)).is_ok());

        let cases = [
            (&with_token, Some("another-token")),
            (&presigned_with_token, Some("another-token")),
            (&without_token, Some(TOKEN)),
            (&with_token, None),
            (&presigned_with_token, None),
        ];
        for (wire, held) in cases {
            let err = check(wire, now, held).expect_err("token problem");
            assert!(matches!(err, AuthError::InvalidSessionToken { .. }), "{err:?}");
            assert_eq!(err.code(), "UnrecognizedClientException");
            assert_eq!(err.status(), StatusCode::FORBIDDEN);
            assert_eq!(err.to_string(), "The security token included in the request is invalid.");
        }

        // A token the client did not sign is still checked against the key.
        let mut unsigned_token = without_token.clone();
        unsigned_token.set_header("x-amz-security-token", TOKEN);
        assert!(check(&unsigned_token, now, Some(TOKEN)).is_ok());
        unsigned_token.set_header("x-amz-security-token", "another-token");
        assert!(matches!(check(&unsigned_token, now, Some(TOKEN)), Err(AuthError::InvalidSessionToken { .. })));
    }

    /// Temporary credentials are refused from their expiry on, with STS's words, and only once the
    /// signature is right (the clock is the verifier's `now`, so no test waits).
    #[test]
    fn expired_temporary_credentials_are_refused() {
        let now = at("20240101T000000Z");
        let wire = Signer { token: Some(TOKEN), ..Signer::default() }.sign("GET", "/", &[], b"");
        let expiring = |expires: SystemTime, secret: &'static str| {
            move |id: &str| {
                (id == KEY).then(|| Secret { expires: Some(expires), ..Secret::root(secret, Some(TOKEN.to_owned())) })
            }
        };
        let later = now + Duration::from_secs(1);
        assert!(verify(&wire.parts(), &wire.body, now, expiring(later, SECRET)).is_ok());
        let err = verify(&wire.parts(), &wire.body, now, expiring(now, SECRET)).expect_err("expired");
        assert_eq!((err.code(), err.status()), ("ExpiredTokenException", StatusCode::FORBIDDEN));
        assert_eq!(err.to_string(), "The security token included in the request is expired");
        let wrong = verify(&wire.parts(), &wire.body, now, expiring(now, "another secret")).expect_err("mismatch");
        assert!(matches!(wrong, AuthError::SignatureMismatch { .. }), "{wrong:?}");
    }

    #[test]
    fn headers_alone_decide_what_they_can_before_the_body() {
        let now = at("20240101T000000Z");
        let lookup = |id: &str| (id == KEY).then(|| Secret::root(SECRET, None));
        let body = b"a body of many bytes";

        // A declared payload hash: the whole signature is verified before the body is read ...
        let declared = hex::encode(Sha256::digest(body));
        let wire = Signer { body: SignableBody::Precomputed(declared.clone()), ..Signer::default() }.sign(
            "POST",
            "/2015-03-31/functions/f/invocations",
            &[(CONTENT_SHA256, declared.as_str())],
            body,
        );
        let checked = check_headers(&wire.parts(), now, lookup).expect("headers verify");
        assert!(checked.signature_verified());
        assert_eq!(checked.caller().service, "lambda");
        // ... and the body must still hash to it.
        assert!(matches!(
            check_headers(&wire.parts(), now, lookup).unwrap().finish(&wire.parts(), b"another body"),
            Err(AuthError::PayloadHashMismatch { .. })
        ));
        assert!(checked.finish(&wire.parts(), body).is_ok());
        // A forged signature over a declared hash fails on the headers alone.
        let mut forged = wire.clone();
        let authorization = forged.header("authorization").unwrap().to_owned();
        let last = authorization.chars().last().unwrap();
        let flipped = if last == '0' { '1' } else { '0' };
        forged.set_header("authorization", &format!("{}{flipped}", &authorization[..authorization.len() - 1]));
        assert!(matches!(check_headers(&forged.parts(), now, lookup), Err(AuthError::SignatureMismatch { .. })));

        // The body itself signed: the key, date and token are checked first, the signature with the body.
        let wire = Signer { body: SignableBody::Bytes(body), ..Signer::default() }.sign(
            "POST",
            "/2015-03-31/functions/f/invocations",
            &[],
            body,
        );
        let checked = check_headers(&wire.parts(), now, lookup).expect("headers pass");
        assert!(!checked.signature_verified());
        assert!(matches!(
            check_headers(&wire.parts(), now, lookup).unwrap().finish(&wire.parts(), b"another body"),
            Err(AuthError::SignatureMismatch { .. })
        ));
        assert!(checked.finish(&wire.parts(), body).is_ok());
        // An unknown key, a stale date: refused from the headers.
        assert!(matches!(check_headers(&wire.parts(), now, |_| None), Err(AuthError::UnknownAccessKey { .. })));
        assert!(matches!(
            check_headers(&wire.parts(), at("20240101T010000Z"), lookup),
            Err(AuthError::SignatureExpired { .. })
        ));
    }

    #[test]
    fn declared_payload_hash_must_match_the_body() {
        let now = at("20240101T000000Z");
        let declared = hex::encode(Sha256::digest(b"the body that was signed"));
        let wire = Signer { body: SignableBody::Precomputed(declared.clone()), ..Signer::default() }.sign(
            "PUT",
            "/bucket/key",
            &[(CONTENT_SHA256, declared.as_str())],
            b"the body that was signed",
        );
        assert!(check(&wire, now, None).is_ok());

        let mut other_body = wire.clone();
        other_body.body = b"another body".to_vec();
        let err = check(&other_body, now, None).expect_err("hash mismatch");
        assert_eq!(err.code(), "XAmzContentSHA256Mismatch");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let AuthError::PayloadHashMismatch { declared: d, computed } = err else {
            panic!("wrong variant");
        };
        assert_eq!(d, declared);
        assert_eq!(computed, hex::encode(Sha256::digest(b"another body")));
    }

    #[test]
    fn payload_hash_values_that_cannot_be_honoured() {
        let now = at("20240101T000000Z");
        let mut wire = Signer::default().sign("PUT", "/bucket/key", &[], b"");

        wire.set_header(CONTENT_SHA256, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
        let err = check(&wire, now, None).expect_err("signed streaming");
        assert_eq!(err.code(), "NotImplemented");
        assert_eq!(err.status(), StatusCode::NOT_IMPLEMENTED);

        wire.set_header(CONTENT_SHA256, "not-a-hash");
        let err = check(&wire, now, None).expect_err("garbage");
        assert_eq!(err.code(), "InvalidArgument");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn unsigned_trailer_payload_verifies() {
        let wire = Signer { service: "s3", body: SignableBody::StreamingUnsignedPayloadTrailer, ..Signer::default() }
            .sign(
                "PUT",
                "/bucket/key",
                &[(CONTENT_SHA256, STREAMING_UNSIGNED_PAYLOAD_TRAILER)],
                b"5\r\nhello\r\n0\r\n\r\n",
            );
        assert!(check(&wire, at("20240101T000000Z"), None).is_ok());
    }

    #[test]
    fn signature_comparison_is_exact() {
        let now = at("20240101T000000Z");
        let wire = Signer::default().sign("GET", "/", &[], b"");
        let auth = wire.header("authorization").expect("signed").to_owned();
        let signature = auth.rsplit("Signature=").next().expect("signature").to_owned();
        for forged in [signature.to_uppercase(), signature[..63].to_owned(), format!("{signature}0"), String::new()] {
            let mut w = wire.clone();
            w.set_header("authorization", &auth.replace(&signature, &forged));
            assert!(check(&w, now, None).is_err(), "accepted signature '{forged}'");
        }
    }

    #[test]
    fn every_error_has_an_aws_code_and_status() {
        let errors = [
            (AuthError::MissingAuthentication, "MissingAuthenticationTokenException", 403),
            (incomplete("x"), "IncompleteSignatureException", 400),
            (AuthError::UnknownAccessKey { access_key_id: "AKID".into() }, "UnrecognizedClientException", 403),
            (
                AuthError::SignatureMismatch { access_key_id: "AKID".into(), detail: "d".into() },
                "InvalidSignatureException",
                403,
            ),
        ];
        for (err, code, status) in errors {
            assert_eq!(err.code(), code);
            assert_eq!(err.status().as_u16(), status);
        }
        let mismatch = AuthError::SignatureMismatch { access_key_id: "AKID".into(), detail: "d".into() };
        assert_eq!(
            mismatch.to_string(),
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
        );
        assert_eq!(
            AuthError::UnknownAccessKey { access_key_id: "AKID".into() }.to_string(),
            "The security token included in the request is invalid."
        );
    }

    #[test]
    fn secrets_do_not_reach_debug_output() {
        let secret = Secret::root(SECRET, Some(TOKEN.into()));
        let shown = format!("{secret:?}");
        assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
    }
}
