//! Function URL configuration: `AuthType`, `InvokeMode`, `Cors` and the url-id, validated as Lambda
//! validates CreateFunctionUrlConfig/UpdateFunctionUrlConfig (botocore's constraints and AWS's messages).

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlAuthType {
    None,
    AwsIam,
}

impl UrlAuthType {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "NONE" => Ok(Self::None),
            "AWS_IAM" => Ok(Self::AwsIam),
            other => Err(ValidationError::constraint(
                "authType",
                other,
                "Member must satisfy enum value set: [NONE, AWS_IAM]",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::AwsIam => "AWS_IAM",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvokeMode {
    #[default]
    Buffered,
    ResponseStream,
}

impl InvokeMode {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s {
            "BUFFERED" => Ok(Self::Buffered),
            "RESPONSE_STREAM" => Ok(Self::ResponseStream),
            other => Err(ValidationError::constraint(
                "invokeMode",
                other,
                "Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buffered => "BUFFERED",
            Self::ResponseStream => "RESPONSE_STREAM",
        }
    }
}

/// The 32 lowercase letters and digits that name a URL (`<url-id>.lambda-url.<region>.on.aws`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UrlId(String);

impl UrlId {
    pub const LEN: usize = 32;

    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == Self::LEN && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
            .then(|| Self(s.to_owned()))
    }

    /// A url-id from 32 random bytes (each mapped onto the 36 symbols; the small bias does not matter
    /// for an identifier that is not a secret).
    pub fn from_random(bytes: [u8; Self::LEN]) -> Self {
        const SYMBOLS: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        Self(bytes.iter().map(|b| SYMBOLS[usize::from(*b) % SYMBOLS.len()] as char).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The methods a CORS configuration may allow (`*` for all).
const CORS_METHODS: [&str; 8] = ["GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "*"];

/// `Cors` as the API carries it (PascalCase); stored in the same JSON form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
}

impl Cors {
    /// Checks botocore's constraints, then Lambda's own rules, and upper-cases methods as Lambda
    /// stores them.
    pub fn validate(mut self) -> Result<Self, ValidationError> {
        list("cors.allowHeaders", self.allow_headers.as_deref(), 100, 0, 1024)?;
        list("cors.exposeHeaders", self.expose_headers.as_deref(), 100, 0, 1024)?;
        list("cors.allowOrigins", self.allow_origins.as_deref(), 100, 1, 253)?;
        list("cors.allowMethods", self.allow_methods.as_deref(), 6, 0, 6)?;
        if let Some(age) = self.max_age
            && !(0..=86_400).contains(&age)
        {
            return Err(ValidationError::constraint(
                "cors.maxAge",
                age,
                if age < 0 {
                    "Member must have value greater than or equal to 0"
                } else {
                    "Member must have value less than or equal to 86400"
                },
            ));
        }
        if let Some(methods) = &mut self.allow_methods {
            for m in methods.iter_mut() {
                let upper = m.to_ascii_uppercase();
                if !CORS_METHODS.contains(&upper.as_str()) {
                    return Err(ValidationError::invalid(format!(
                        "Invalid method {m} in AllowMethods. Valid methods are: GET, PUT, HEAD, POST, PATCH, DELETE, OPTIONS and *"
                    )));
                }
                *m = upper;
            }
        }
        for origin in self.allow_origins.iter().flatten() {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ValidationError::invalid(format!(
                    "Invalid origin {origin} in AllowOrigins. An origin is * or a scheme, host and optional port, e.g. https://www.example.com"
                )));
            }
        }
        for header in self.allow_headers.iter().flatten().chain(self.expose_headers.iter().flatten()) {
            if header.is_empty()
                || !header.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
            {
                return Err(ValidationError::invalid(format!("Invalid header name {header:?} in Cors")));
            }
        }
        Ok(self)
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allow_origins.iter().flatten().any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }

    pub fn method_allowed(&self, method: &str) -> bool {
        self.allow_methods.iter().flatten().any(|m| m == "*" || m.eq_ignore_ascii_case(method))
    }
}

fn list(
    field: &str,
    items: Option<&[String]>,
    max_items: usize,
    min_len: usize,
    max_len: usize,
) -> Result<(), ValidationError> {
    let Some(items) = items else { return Ok(()) };
    let shown = || format!("[{}]", items.join(", "));
    if items.len() > max_items {
        return Err(ValidationError::constraint(
            field,
            shown(),
            format!("Member must have length less than or equal to {max_items}"),
        ));
    }
    for item in items {
        let n = item.chars().count();
        if n > max_len || n < min_len {
            let rule = if n > max_len {
                format!("Member must have length less than or equal to {max_len}")
            } else {
                format!("Member must have length greater than or equal to {min_len}")
            };
            return Err(ValidationError::constraint(
                field,
                shown(),
                format!("Member must satisfy constraint: [{rule}]"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(json: &str) -> Result<Cors, ValidationError> {
        serde_json::from_str::<Cors>(json).unwrap().validate()
    }

    #[test]
    fn cors_validation() {
        let good = [
            r#"{"AllowOrigins":["*"],"AllowMethods":["get","POST"],"MaxAge":86400}"#,
            r#"{"AllowOrigins":["https://example.com"],"AllowHeaders":["content-type","x-custom"],"AllowCredentials":true}"#,
            r#"{}"#,
        ];
        for g in good {
            assert!(cors(g).is_ok(), "{g}");
        }
        assert_eq!(cors(good[0]).unwrap().allow_methods.unwrap(), ["GET", "POST"]);
        let bad = [
            r#"{"MaxAge":86401}"#,
            r#"{"MaxAge":-1}"#,
            r#"{"AllowMethods":["FETCH"]}"#,
            r#"{"AllowMethods":["GET","PUT","HEAD","POST","PATCH","DELETE","*"]}"#,
            r#"{"AllowOrigins":["example.com"]}"#,
            r#"{"AllowOrigins":[""]}"#,
            r#"{"AllowHeaders":["bad header"]}"#,
        ];
        for b in bad {
            assert!(cors(b).is_err(), "{b}");
        }
    }

    #[test]
    fn url_ids() {
        let id = UrlId::from_random([255; 32]);
        assert_eq!(id.as_str().len(), 32);
        assert!(UrlId::parse(id.as_str()).is_some());
        for bad in ["", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "abc", &"a".repeat(33)] {
            assert!(UrlId::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(UrlAuthType::parse("AWS_IAM").unwrap(), UrlAuthType::AwsIam);
        assert!(UrlAuthType::parse("IAM").is_err());
        assert!(InvokeMode::parse("STREAM").is_err());
    }
}
