//! A SigV4-signing HTTP client for the nimbus CLI subcommands.
//!
//! The nimbus server verifies every API request the way AWS does, so the CLI signs its requests
//! exactly as an AWS SDK would (aws-sigv4, service `lambda`), and talks to nimbus as one more AWS
//! client. It signs the URL it is about to send, byte for byte, so that what the server
//! recomputes from the wire is what was signed here.

// The subcommands that call this client are wired up in main.rs separately; until they are,
// nothing outside the tests calls it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// The signing name of the Lambda API, which is the API nimbus serves.
pub const SERVICE: &str = "lambda";

/// The region the CLI signs for unless told otherwise; nimbus refuses a scope naming another region
/// than its own (`serve --region`), as AWS does.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The profile read from a shared credentials file; nimbus writes its root key under it.
pub const DEFAULT_PROFILE: &str = "default";

const ACCESS_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";
const SECRET_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";
const SESSION_TOKEN_ENV: &str = "AWS_SESSION_TOKEN";

/// An access key pair (and session token, for temporary credentials) to sign with.
#[derive(Clone)]
pub struct ClientCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

// Written by hand so that a secret can never reach a log line through `{:?}`.
impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ClientCredentials {
    /// Finds credentials: in `file` if the caller passes one (it chose that file, so it wins),
    /// otherwise in `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`).
    pub fn resolve(file: Option<&Path>) -> Result<ClientCredentials, ClientError> {
        match file {
            Some(path) => Self::from_file(path, DEFAULT_PROFILE),
            None => Self::from_env()?.ok_or(ClientError::NoCredentials),
        }
    }

    /// Reads the environment; `Ok(None)` when neither key variable is set.
    pub fn from_env() -> Result<Option<ClientCredentials>, ClientError> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<ClientCredentials>, ClientError> {
        match (var(ACCESS_KEY_ENV), var(SECRET_KEY_ENV)) {
            (None, None) => Ok(None),
            (Some(access_key_id), Some(secret_access_key)) => {
                Ok(Some(ClientCredentials { access_key_id, secret_access_key, session_token: var(SESSION_TOKEN_ENV) }))
            }
            _ => Err(ClientError::HalfSetEnvironment),
        }
    }

    /// Reads one profile of an AWS shared credentials file (`~/.aws/credentials` format).
    pub fn from_file(path: &Path, profile: &str) -> Result<ClientCredentials, ClientError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ClientError::CredentialsFile { path: path.to_owned(), error })?;
        Self::parse_shared_file(&text, profile).map_err(|reason| ClientError::CredentialsFileFormat {
            path: path.to_owned(),
            profile: profile.to_owned(),
            reason,
        })
    }

    /// Parses the INI subset AWS tools write: `[profile]` sections of `key = value` lines, with
    /// `#` and `;` comment lines.
    fn parse_shared_file(text: &str, profile: &str) -> Result<ClientCredentials, String> {
        let mut in_profile = false;
        let mut found_profile = false;
        let (mut access_key_id, mut secret_access_key, mut session_token) = (None, None, None);
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(section) = line.strip_prefix('[') {
                let name = section
                    .strip_suffix(']')
                    .ok_or_else(|| format!("line {}: unterminated section header", number + 1))?;
                in_profile = name.trim() == profile;
                found_profile |= in_profile;
                continue;
            }
            if !in_profile {
                continue;
            }
            let (key, value) =
                line.split_once('=').ok_or_else(|| format!("line {}: expected key = value", number + 1))?;
            let value = Some(value.trim().to_owned());
            match key.trim() {
                "aws_access_key_id" => access_key_id = value,
                "aws_secret_access_key" => secret_access_key = value,
                "aws_session_token" => session_token = value,
                _ => {}
            }
        }
        if !found_profile {
            return Err(format!("no [{profile}] section"));
        }
        match (access_key_id, secret_access_key) {
            (Some(access_key_id), Some(secret_access_key)) => {
                Ok(ClientCredentials { access_key_id, secret_access_key, session_token })
            }
            _ => Err(format!("[{profile}] lacks aws_access_key_id or aws_secret_access_key")),
        }
    }
}

/// What the server answered. A non-2xx status is a response like any other, not a ClientError:
/// the AWS error shape (`x-amzn-ErrorType`, JSON body) is for the caller to present.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// The AWS error code, from `x-amzn-ErrorType` (which may carry `:`-separated extras).
    pub fn error_type(&self) -> Option<&str> {
        let value = self.headers.get("x-amzn-errortype")?.to_str().ok()?;
        value.split(':').next()
    }
}

#[derive(Debug)]
pub enum ClientError {
    NoCredentials,
    HalfSetEnvironment,
    CredentialsFile { path: PathBuf, error: std::io::Error },
    CredentialsFileFormat { path: PathBuf, profile: String, reason: String },
    InvalidEndpoint { endpoint: String, reason: String },
    InvalidRequest { reason: String },
    Signing { reason: String },
    Http { method: http::Method, url: String, error: reqwest::Error },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NoCredentials => write!(
                f,
                "no credentials: set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}, or pass a credentials \
                 file"
            ),
            ClientError::HalfSetEnvironment => {
                write!(f, "{ACCESS_KEY_ENV} and {SECRET_KEY_ENV} must be set together; only one is set")
            }
            ClientError::CredentialsFile { path, error } => {
                write!(f, "read credentials file {}: {error}", path.display())
            }
            ClientError::CredentialsFileFormat { path, profile, reason } => {
                write!(f, "credentials file {} (profile {profile}): {reason}", path.display())
            }
            ClientError::InvalidEndpoint { endpoint, reason } => {
                write!(f, "endpoint {endpoint:?}: {reason}")
            }
            ClientError::InvalidRequest { reason } => write!(f, "invalid request: {reason}"),
            ClientError::Signing { reason } => write!(f, "signing the request: {reason}"),
            ClientError::Http { method, url, error } => write!(f, "{method} {url}: {error}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::CredentialsFile { error, .. } => Some(error),
            ClientError::Http { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A client of one nimbus endpoint, signing as one access key.
pub struct ApiClient {
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: String,
    /// The signing name of the credential scope: `lambda`, or `iam` for IAM's query protocol.
    service: &'static str,
    http: reqwest::Client,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// `endpoint` is the server's base URL, e.g. `http://127.0.0.1:9001`.
    pub fn new(endpoint: &str, region: &str, credentials: ClientCredentials) -> Result<ApiClient, ClientError> {
        let invalid =
            |reason: &str| ClientError::InvalidEndpoint { endpoint: endpoint.to_owned(), reason: reason.to_owned() };
        let url = reqwest::Url::parse(endpoint).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a base URL has no query or fragment"));
        }
        let http = reqwest::Client::builder()
            // Small request writes must not wait for delayed ACKs (see DESIGN.md).
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| invalid(&format!("cannot build an HTTP client: {e}")))?;
        Ok(ApiClient {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            access_key_id: credentials.access_key_id,
            secret_access_key: credentials.secret_access_key,
            session_token: credentials.session_token,
            region: region.to_owned(),
            service: SERVICE,
            http,
        })
    }

    /// The same endpoint and key, signing for another service (`iam`), whose requests Nimbus routes
    /// by that name.
    pub fn signing_for(&self, service: &'static str) -> ApiClient {
        ApiClient {
            endpoint: self.endpoint.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: self.session_token.clone(),
            region: self.region.clone(),
            service,
            http: self.http.clone(),
        }
    }

    /// A client with credentials from `credentials_file` or the environment; see
    /// [`ClientCredentials::resolve`].
    pub fn from_environment(
        endpoint: &str,
        region: &str,
        credentials_file: Option<&Path>,
    ) -> Result<ApiClient, ClientError> {
        Self::new(endpoint, region, ClientCredentials::resolve(credentials_file)?)
    }

    /// Sends one signed request. `path_and_query` is already percent-encoded, as it goes on the
    /// wire (`/2015-03-31/functions/my-fn%3A%24LATEST/invocations?Qualifier=1`).
    pub async fn send(
        &self,
        method: http::Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<ApiResponse, ClientError> {
        let url = self.url(path_and_query)?;
        let signed = self.signed_headers(&method, &url, headers, &body, SystemTime::now())?;
        let url_text = url.to_string();
        let http_error = |error| ClientError::Http { method: method.clone(), url: url_text.clone(), error };
        let response =
            self.http.request(method.clone(), url).headers(signed).body(body).send().await.map_err(http_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(http_error)?.to_vec();
        Ok(ApiResponse { status, headers, body })
    }

    fn url(&self, path_and_query: &str) -> Result<reqwest::Url, ClientError> {
        if !path_and_query.starts_with('/') {
            return Err(ClientError::InvalidRequest {
                reason: format!("the path must start with '/': {path_and_query:?}"),
            });
        }
        reqwest::Url::parse(&format!("{}{path_and_query}", self.endpoint))
            .map_err(|e| ClientError::InvalidRequest { reason: format!("{path_and_query:?} does not make a URL: {e}") })
    }

    /// Every header to send: the caller's, Host, and the signature headers. Host is set here
    /// rather than left to the HTTP stack so that the value sent is the value signed.
    fn signed_headers(
        &self,
        method: &http::Method,
        url: &reqwest::Url,
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> Result<HeaderMap, ClientError> {
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => {
                return Err(ClientError::InvalidRequest { reason: format!("{url} has no host") });
            }
        };
        let mut to_sign: Vec<(&str, &str)> = vec![("host", host.as_str())];
        to_sign.extend(headers.iter().filter(|(name, _)| !name.eq_ignore_ascii_case("host")));

        let identity = Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.clone(),
            self.session_token.clone(),
            None,
            "nimbus-cli",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(if self.service == SERVICE { signing_name(headers) } else { self.service })
            .time(time)
            .settings(signing_settings())
            .build()
            .map_err(|e| ClientError::Signing { reason: e.to_string() })?
            .into();
        let request =
            SignableRequest::new(method.as_str(), url.as_str(), to_sign.iter().copied(), SignableBody::Bytes(body))
                .map_err(|e| ClientError::Signing { reason: e.to_string() })?;
        let (instructions, _signature) =
            sign(request, &params).map_err(|e| ClientError::Signing { reason: e.to_string() })?.into_parts();

        let mut map = HeaderMap::new();
        let signature_headers = instructions.headers();
        for (name, value) in to_sign.into_iter().chain(signature_headers) {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ClientError::InvalidRequest { reason: format!("header name {name:?}: {e}") })?;
            let header_value = HeaderValue::from_str(value)
                .map_err(|e| ClientError::InvalidRequest { reason: format!("header {name} value: {e}") })?;
            map.append(header_name, header_value);
        }
        Ok(map)
    }
}

/// The service a request is signed for: a JSON-protocol request names its service in `X-Amz-Target`
/// (CloudWatch Logs, SQS), every other one is Lambda's. Nimbus refuses another service's scope, as AWS.
fn signing_name(headers: &[(&str, &str)]) -> &'static str {
    let target = headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("x-amz-target")).map(|(_, v)| *v);
    match target {
        Some(t) if t.starts_with("Logs_20140328.") => "logs",
        Some(t) if t.starts_with("AmazonSQS.") => "sqs",
        _ => SERVICE,
    }
}

/// SigV4 settings of every request: the payload hash goes in `x-amz-content-sha256` too, so the server
/// can verify the whole signature from the headers before it reads a byte of the body (a code upload
/// is tens of MB).
fn signing_settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_server::auth::sigv4::{AuthError, Secret, verify};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const KEY: &str = "AKIDCLIENTTEST";
    const SECRET: &str = "client/test+secret";
    const TOKEN: &str = "client-session+token/==";

    fn credentials(token: Option<&str>) -> ClientCredentials {
        ClientCredentials {
            access_key_id: KEY.into(),
            secret_access_key: SECRET.into(),
            session_token: token.map(str::to_owned),
        }
    }

    fn lookup(token: Option<&'static str>) -> impl Fn(&str) -> Option<Secret> {
        move |id| (id == KEY).then(|| Secret::root(SECRET, token.map(str::to_owned)))
    }

    /// Signs without sending and turns the result into the request the server would see.
    fn signed_parts(
        client: &ApiClient,
        method: http::Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> http::request::Parts {
        let url = client.url(path_and_query).expect("url");
        let signed = client.signed_headers(&method, &url, headers, body, time).expect("signed");
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let mut builder = http::Request::builder().method(method).uri(target);
        for (name, value) in &signed {
            builder = builder.header(name, value);
        }
        builder.body(()).expect("request").into_parts().0
    }

    #[test]
    fn the_server_verifies_what_the_client_signs() {
        let now = SystemTime::now();
        let client = ApiClient::new("http://127.0.0.1:9001/", DEFAULT_REGION, credentials(None)).expect("client");
        let body = br#"{"hello":"world"}"#;
        let paths = [
            "/2015-03-31/functions",
            "/2015-03-31/functions?MaxItems=10&Marker=a%2Fb%2Bc",
            "/2015-03-31/functions/my-fn%3A%24LATEST/invocations",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations",
            "/2015-03-31/functions/my%20fn%20%C3%BC?Qualifier=%24LATEST",
        ];
        for path in paths {
            let parts =
                signed_parts(&client, http::Method::POST, path, &[("content-type", "application/json")], body, now);
            let caller = verify(&parts, body, now, lookup(None)).unwrap_or_else(|e| panic!("{path}: {e:?}"));
            assert_eq!(caller.access_key_id, KEY);
            assert_eq!(caller.service, SERVICE);
            assert_eq!(caller.region, DEFAULT_REGION);

            // The body no longer hashes to the signed x-amz-content-sha256.
            let tampered = verify(&parts, b"{}", now, lookup(None));
            assert!(matches!(tampered, Err(AuthError::PayloadHashMismatch { .. })), "{path}: {tampered:?}");
        }
    }

    #[test]
    fn session_tokens_are_signed_and_sent() {
        let now = SystemTime::now();
        let client = ApiClient::new("http://localhost:9001", "eu-west-1", credentials(Some(TOKEN))).expect("client");
        let parts = signed_parts(&client, http::Method::GET, "/2015-03-31/functions", &[], b"", now);
        assert_eq!(parts.headers.get("x-amz-security-token").map(|v| v.as_bytes()), Some(TOKEN.as_bytes()));
        let caller = verify(&parts, b"", now, lookup(Some(TOKEN))).expect("verifies");
        assert_eq!(caller.region, "eu-west-1");
    }

    /// Serves one connection: parses the request off the socket, verifies it with the server's
    /// verifier, and answers 200 or the AWS error.
    async fn serve_one(listener: TcpListener, token: Option<&'static str>) -> String {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut raw = Vec::new();
        let header_end = loop {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.expect("read");
            assert!(n > 0, "client closed before sending a full request");
            raw.extend_from_slice(&chunk[..n]);
            if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
        };
        let head = String::from_utf8(raw[..header_end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let request_line = lines.next().expect("request line");
        let mut words = request_line.split(' ');
        let (method, target) = (words.next().expect("method"), words.next().expect("target"));
        let mut builder = http::Request::builder().method(method).uri(target);
        let mut length = 0usize;
        for line in lines {
            let (name, value) = line.split_once(':').expect("header line");
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("content-length");
            }
            builder = builder.header(name.trim(), value.trim());
        }
        let mut body = raw[header_end + 4..].to_vec();
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "client closed mid-body");
            body.extend_from_slice(&chunk[..n]);
        }
        let parts = builder.body(()).expect("request").into_parts().0;
        let (status, error_type, reply) = match verify(&parts, &body, SystemTime::now(), lookup(token)) {
            Ok(caller) => ("200 OK", String::new(), caller.access_key_id),
            Err(e) => ("403 Forbidden", format!("x-amzn-ErrorType: {}\r\n", e.code()), e.to_string()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\n{error_type}content-length: {}\r\nconnection: close\r\n\r\n{reply}",
            reply.len()
        );
        socket.write_all(response.as_bytes()).await.expect("write");
        target.to_owned()
    }

    #[tokio::test]
    async fn requests_verify_after_crossing_the_wire() {
        for (token, path) in [
            (None, "/2015-03-31/functions/my-fn%3A%24LATEST/invocations?Qualifier=%24LATEST"),
            (
                Some(TOKEN),
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations",
            ),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
            let server = tokio::spawn(serve_one(listener, token));
            let client = ApiClient::new(&endpoint, DEFAULT_REGION, credentials(token)).expect("client");
            let response = client
                .send(
                    http::Method::POST,
                    path,
                    &[("content-type", "application/json"), ("X-Amz-Invocation-Type", "Event")],
                    br#"{"n": 1}"#.to_vec(),
                )
                .await
                .expect("sent");
            let seen = server.await.expect("server task");
            assert_eq!(seen, path, "the path went out as given");
            assert_eq!(
                response.status,
                http::StatusCode::OK,
                "{:?}: {}",
                response.error_type(),
                String::from_utf8_lossy(&response.body)
            );
            assert_eq!(response.body, KEY.as_bytes());
        }
    }

    #[tokio::test]
    async fn a_wrong_secret_is_refused_over_the_wire() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(serve_one(listener, None));
        let mut wrong = credentials(None);
        wrong.secret_access_key.push('x');
        let client = ApiClient::new(&endpoint, DEFAULT_REGION, wrong).expect("client");
        let response = client.send(http::Method::GET, "/2015-03-31/functions", &[], Vec::new()).await.expect("sent");
        server.await.expect("server task");
        assert_eq!(response.status, http::StatusCode::FORBIDDEN);
        assert_eq!(response.error_type(), Some("InvalidSignatureException"));
    }

    #[test]
    fn shared_credentials_file() {
        let text = "\
# written by nimbus
[other]
aws_access_key_id = AKIDOTHER
aws_secret_access_key = other

[default]
aws_access_key_id=AKIDDEFAULT
aws_secret_access_key = se=cret/+
; a comment
aws_session_token = tok
";
        let creds = ClientCredentials::parse_shared_file(text, "default").expect("parsed");
        assert_eq!(creds.access_key_id, "AKIDDEFAULT");
        assert_eq!(creds.secret_access_key, "se=cret/+");
        assert_eq!(creds.session_token.as_deref(), Some("tok"));
        let other = ClientCredentials::parse_shared_file(text, "other").expect("parsed");
        assert_eq!(other.access_key_id, "AKIDOTHER");
        assert!(other.session_token.is_none());

        let missing = ClientCredentials::parse_shared_file(text, "nope").expect_err("no profile");
        assert_eq!(missing, "no [nope] section");
        let half = ClientCredentials::parse_shared_file("[default]\naws_access_key_id = A\n", "default")
            .expect_err("no secret");
        assert!(half.contains("lacks"), "{half}");

        let err =
            ClientCredentials::from_file(Path::new("/nonexistent/nimbus/credentials"), "default").expect_err("no file");
        assert!(err.to_string().contains("/nonexistent/nimbus/credentials"), "{err}");
    }

    #[test]
    fn environment_credentials() {
        let vars = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| set.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        };
        let creds = ClientCredentials::from_vars(vars(&[
            (ACCESS_KEY_ENV, "AKIDENV"),
            (SECRET_KEY_ENV, "s"),
            (SESSION_TOKEN_ENV, "t"),
        ]))
        .expect("ok")
        .expect("set");
        assert_eq!(creds.access_key_id, "AKIDENV");
        assert_eq!(creds.session_token.as_deref(), Some("t"));
        assert!(ClientCredentials::from_vars(vars(&[])).expect("ok").is_none());
        assert!(matches!(
            ClientCredentials::from_vars(vars(&[(ACCESS_KEY_ENV, "AKIDENV")])),
            Err(ClientError::HalfSetEnvironment)
        ));
    }

    #[test]
    fn bad_endpoints_and_paths_are_refused() {
        assert!(ApiClient::new("ftp://x", DEFAULT_REGION, credentials(None)).is_err());
        assert!(ApiClient::new("not a url", DEFAULT_REGION, credentials(None)).is_err());
        let client = ApiClient::new("http://127.0.0.1:1", DEFAULT_REGION, credentials(None)).expect("client");
        assert!(matches!(client.url("no-slash"), Err(ClientError::InvalidRequest { .. })));
        let shown = format!("{:?}", credentials(Some(TOKEN)));
        assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
    }
}
