//! Which requests are function-URL requests: those whose `Host` is `<url-id>.lambda-url.<region>.localhost`
//! (any port: a browser resolves `*.localhost` to loopback) or matches the operator's published base
//! (`--public-url-base https://{id}.lambda-url.example.com`, behind their own DNS and TLS proxy).
//! The `Host` header is the client's word, so it only selects a URL; it grants nothing.

use nimbus_model::UrlId;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BaseError {
    #[error("--public-url-base must start with http:// or https://: {0}")]
    Scheme(String),
    #[error("--public-url-base must contain {{id}} once, in the host: {0}")]
    Placeholder(String),
    #[error("--public-url-base must be a base URL without a path, query or credentials: {0}")]
    Shape(String),
}

/// An operator's base: `scheme://<before>{id}<after>[:port]/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicBase {
    scheme: String,
    before: String,
    after: String,
}

impl PublicBase {
    pub fn parse(raw: &str) -> Result<Self, BaseError> {
        let (scheme, rest) = raw
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or_else(|| BaseError::Scheme(raw.to_owned()))?;
        let host = rest.strip_suffix('/').unwrap_or(rest).to_ascii_lowercase();
        if host.contains(['/', '?', '#', '@']) || host.is_empty() {
            return Err(BaseError::Shape(raw.to_owned()));
        }
        let (before, after) = host.split_once("{id}").ok_or_else(|| BaseError::Placeholder(raw.to_owned()))?;
        if after.contains("{id}") || before.contains(':') {
            return Err(BaseError::Placeholder(raw.to_owned()));
        }
        Ok(Self { scheme: scheme.to_owned(), before: before.to_owned(), after: after.to_owned() })
    }
}

/// Renders URLs and recognises their hosts.
#[derive(Debug, Clone)]
pub struct UrlHosts {
    local_suffix: String,
    port: u16,
    public: Option<PublicBase>,
}

/// What a request's `Host` says.
#[derive(Debug, PartialEq, Eq)]
pub enum HostMatch {
    /// Not a function URL host: the request is for the AWS APIs.
    Api,
    Url(UrlId),
    /// A function URL host whose id cannot name a URL.
    Malformed,
}

impl UrlHosts {
    pub fn new(region: &str, port: u16, public: Option<PublicBase>) -> Self {
        Self { local_suffix: format!(".lambda-url.{}.localhost", region.to_ascii_lowercase()), port, public }
    }

    /// The port of Nimbus's own listener.
    pub fn listener_port(&self) -> u16 {
        self.port
    }

    /// `FunctionUrl` as the API returns it (with a trailing slash, as AWS's).
    pub fn url(&self, id: &UrlId) -> String {
        match &self.public {
            Some(p) => format!("{}://{}{}{}/", p.scheme, p.before, id.as_str(), p.after),
            None => format!("http://{}{}:{}/", id.as_str(), self.local_suffix, self.port),
        }
    }

    /// The scheme and port clients reach URLs on: the published base's, or Nimbus's listener's.
    pub fn scheme_and_port(&self) -> (&str, u16) {
        match &self.public {
            Some(p) => {
                let default = if p.scheme == "https" { 443 } else { 80 };
                let port = p.after.rsplit_once(':').and_then(|(_, port)| port.parse().ok()).unwrap_or(default);
                (p.scheme.as_str(), port)
            }
            None => ("http", self.port),
        }
    }

    /// The domain name a URL's events carry (`requestContext.domainName`).
    pub fn domain(&self, id: &UrlId) -> String {
        match &self.public {
            Some(p) => {
                let host = format!("{}{}{}", p.before, id.as_str(), p.after);
                strip_port(&host).to_owned()
            }
            None => format!("{}{}", id.as_str(), self.local_suffix),
        }
    }

    pub fn classify(&self, host: Option<&str>) -> HostMatch {
        let Some(host) = host else { return HostMatch::Api };
        let host = host.to_ascii_lowercase();
        let bare = strip_port(&host);
        let bare = bare.strip_suffix('.').unwrap_or(bare);
        if let Some(id) = bare.strip_suffix(self.local_suffix.as_str()) {
            return id_match(id);
        }
        if let Some(p) = &self.public {
            let after = strip_port(&p.after);
            if let Some(id) = bare.strip_prefix(p.before.as_str()).and_then(|r| r.strip_suffix(after))
                && !id.contains('.')
            {
                return id_match(id);
            }
        }
        // Any other `*.lambda-url.*.localhost` is a URL host of a region we do not serve, or garbage.
        if bare.ends_with(".localhost") && bare.contains(".lambda-url.") {
            return HostMatch::Malformed;
        }
        HostMatch::Api
    }
}

fn id_match(id: &str) -> HostMatch {
    UrlId::parse(id).map_or(HostMatch::Malformed, HostMatch::Url)
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "abcdefghijklmnopqrstuvwxyz012345";

    #[test]
    fn hosts_are_classified() {
        let public = PublicBase::parse("https://{id}.lambda-url.example.com").unwrap();
        let hosts = UrlHosts::new("us-east-1", 9001, Some(public));
        let id = || HostMatch::Url(UrlId::parse(ID).unwrap());
        let cases = [
            (Some(format!("{ID}.lambda-url.us-east-1.localhost:9001")), id()),
            (Some(format!("{ID}.lambda-url.us-east-1.localhost")), id()),
            (Some(format!("{}.LAMBDA-URL.us-east-1.localhost:1", ID.to_uppercase())), id()),
            (Some(format!("{ID}.lambda-url.example.com")), id()),
            (Some(format!("{ID}.lambda-url.example.com:443")), id()),
            (Some("short.lambda-url.us-east-1.localhost:9001".into()), HostMatch::Malformed),
            (Some(format!("{ID}.lambda-url.eu-west-1.localhost")), HostMatch::Malformed),
            (Some("127.0.0.1:9001".into()), HostMatch::Api),
            (Some("localhost".into()), HostMatch::Api),
            (Some(format!("x.{ID}.lambda-url.example.com")), HostMatch::Api),
            (None, HostMatch::Api),
        ];
        for (host, want) in cases {
            assert_eq!(hosts.classify(host.as_deref()), want, "{host:?}");
        }
    }

    #[test]
    fn urls_follow_the_base() {
        let id = UrlId::parse(ID).unwrap();
        let local = UrlHosts::new("us-east-1", 9001, None);
        assert_eq!(local.url(&id), format!("http://{ID}.lambda-url.us-east-1.localhost:9001/"));
        assert_eq!(local.domain(&id), format!("{ID}.lambda-url.us-east-1.localhost"));
        let public =
            UrlHosts::new("us-east-1", 9001, Some(PublicBase::parse("https://{id}.fn.example.com:8443/").unwrap()));
        assert_eq!(public.url(&id), format!("https://{ID}.fn.example.com:8443/"));
        assert_eq!(public.domain(&id), format!("{ID}.fn.example.com"));
        assert_eq!(public.scheme_and_port(), ("https", 8443));
        assert_eq!(local.scheme_and_port(), ("http", 9001));
        for bad in
            ["ftp://{id}.x", "https://x.example.com", "https://{id}.x/path", "https://{id}{id}.x", "https://u@{id}.x"]
        {
            assert!(PublicBase::parse(bad).is_err(), "{bad}");
        }
    }
}
