//! AWS's query protocol, as botocore speaks it to IAM and STS: a `POST /` whose form body carries
//! `Action`, `Version` and the parameters (lists as `Name.member.N`, maps of tags as
//! `Tags.member.N.Key`/`.Value`), answered with XML (`<XResponse><XResult>…</XResult>
//! <ResponseMetadata><RequestId>`), errors as `<ErrorResponse><Error><Type><Code><Message>`.
//! The form is untrusted client input: every value is looked up by name and parsed by the caller.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The form parameters of one request.
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>);

/// The most form parameters a request may carry (IAM's largest requests, tags and policy documents,
/// need a few hundred at most).
const PARAMS_MAX: usize = 1000;

impl Form {
    pub fn parse(body: &[u8]) -> Result<Form, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "MalformedQueryString", e.to_string()))?;
        if pairs.len() > PARAMS_MAX {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "MalformedQueryString", "Too many parameters"));
        }
        Ok(Form(pairs.into_iter().collect()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A required parameter; missing, it is IAM's ValidationError for a null member.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| {
            let field = lower_first(name);
            validation(format!(
                "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ))
        })
    }

    /// An integer parameter, if present.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    validation(format!("Value '{v}' for parameter {name} is invalid. It must be an integer."))
                })
            })
            .transpose()
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).map(|v| v.eq_ignore_ascii_case("true"))
    }

    /// `Name.member.1`, `Name.member.2`, … in order, up to the first gap.
    pub fn list(&self, name: &str) -> Vec<String> {
        (1..).map_while(|i| self.get(&format!("{name}.member.{i}")).map(str::to_owned)).collect()
    }

    /// `Tags.member.N.Key` / `.Value` pairs, in order.
    pub fn tags(&self, name: &str) -> Vec<(String, String)> {
        (1..)
            .map_while(|i| {
                let key = self.get(&format!("{name}.member.{i}.Key"))?;
                let value = self.get(&format!("{name}.member.{i}.Value")).unwrap_or_default();
                Some((key.to_owned(), value.to_owned()))
            })
            .collect()
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "ValidationError", message)
}

/// XML text with `&`, `<`, `>`, `"` and `'` escaped. Written here rather than pulling an XML crate in
/// for it: escaping is the whole of what the responses need, since every element is written in order.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The body of one `<XResult>`, element by element.
#[derive(Debug, Default)]
pub struct Xml(String);

impl Xml {
    pub fn new() -> Self {
        Self::default()
    }

    /// `<name>text</name>`, escaped.
    pub fn text(&mut self, name: &str, text: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.0, "<{name}>{}</{name}>", escape(&text.to_string()));
        self
    }

    pub fn opt(&mut self, name: &str, text: Option<impl std::fmt::Display>) -> &mut Self {
        if let Some(text) = text {
            self.text(name, text);
        }
        self
    }

    /// `<name>…</name>` around what `inner` writes.
    pub fn node(&mut self, name: &str, inner: impl FnOnce(&mut Xml)) -> &mut Self {
        let _ = write!(self.0, "<{name}>");
        inner(self);
        let _ = write!(self.0, "</{name}>");
        self
    }

    /// `<name><member>…</member>…</name>`, one member per item.
    pub fn members<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Xml, T),
    ) -> &mut Self {
        self.node(name, |x| {
            for item in items {
                x.node("member", |x| each(x, item));
            }
        })
    }

    /// `<name><member>text</member>…</name>`.
    pub fn strings<T: std::fmt::Display>(&mut self, name: &str, items: impl IntoIterator<Item = T>) -> &mut Self {
        self.node(name, |x| {
            for item in items {
                x.text("member", item);
            }
        })
    }
}

/// A query-protocol service: its XML namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Iam,
    Sts,
}

impl Service {
    pub fn namespace(self) -> &'static str {
        match self {
            Service::Iam => "https://iam.amazonaws.com/doc/2010-05-08/",
            Service::Sts => "https://sts.amazonaws.com/doc/2011-06-15/",
        }
    }

    /// The signing name in a SigV4 credential scope.
    pub fn from_signing_name(name: &str) -> Option<Service> {
        match name {
            "iam" => Some(Service::Iam),
            "sts" => Some(Service::Sts),
            _ => None,
        }
    }
}

/// `<ActionResponse xmlns=…><ActionResult>…</ActionResult><ResponseMetadata>…`; operations without
/// output have no `<ActionResult>`.
pub fn respond(service: Service, action: &str, request_id: &str, result: Option<Xml>) -> Response {
    let mut body = format!(r#"<{action}Response xmlns="{}">"#, service.namespace());
    if let Some(result) = result {
        let _ = write!(body, "<{action}Result>{}</{action}Result>", result.0);
    }
    let _ = write!(body, "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>");
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}

/// The XML error body; the one mapping of an [`ApiError`] to this protocol.
pub fn error_response(service: Service, error: &ApiError) -> Response {
    let kind = if error.status.is_server_error() { "Receiver" } else { "Sender" };
    let code = query_code(error.code);
    let body = format!(
        r#"<ErrorResponse xmlns="{}"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>"#,
        service.namespace(),
        escape(&error.message),
        uuid::Uuid::new_v4(),
    );
    (error.status, [("content-type", "text/xml")], body).into_response()
}

/// The query protocol's names for the errors every protocol shares (authentication, authorization),
/// which the JSON protocols spell with an `Exception` suffix.
fn query_code(code: &str) -> &str {
    match code {
        "UnrecognizedClientException" => "InvalidClientTokenId",
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
        "IncompleteSignatureException" => "IncompleteSignature",
        "AccessDeniedException" => "AccessDenied",
        "ExpiredTokenException" => "ExpiredToken",
        "ServiceException" => "ServiceFailure",
        other => other,
    }
}

/// `Marker`/`MaxItems` paging over a full, sorted list: the page, and the marker of the next page.
pub fn page<T>(items: Vec<T>, form: &Form) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = form.int("MaxItems")?.unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(validation(format!(
            "1 validation error detected: Value '{max}' at 'maxItems' failed to satisfy constraint: Member must have value {}",
            if max < 1 { "greater than or equal to 1" } else { "less than or equal to 1000" }
        )));
    }
    let start = match form.get("Marker") {
        Some(m) => m.parse::<usize>().map_err(|_| validation("Invalid Marker."))?,
        None => 0,
    };
    let total = items.len();
    let end = start.saturating_add(max as usize).min(total);
    let next = (end < total).then(|| end.to_string());
    Ok((items.into_iter().skip(start).take(end.saturating_sub(start)).collect(), next))
}

/// Writes `IsTruncated` and `Marker` after a paged list.
pub fn truncation(x: &mut Xml, next: Option<String>) {
    x.text("IsTruncated", next.is_some());
    x.opt("Marker", next);
}

/// An ISO 8601 UTC time with seconds, as IAM and STS print dates (`2024-01-01T00:00:00Z`).
pub fn iso_time(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_tags_and_paging() {
        let form = Form::parse(
            b"A.member.1=x&A.member.2=y&A.member.4=z&T.member.1.Key=k&T.member.1.Value=v&MaxItems=1&Marker=1",
        )
        .unwrap();
        assert_eq!(form.list("A"), vec!["x", "y"]);
        assert_eq!(form.tags("T"), vec![("k".to_owned(), "v".to_owned())]);
        let (items, next) = page(vec![1, 2, 3], &form).unwrap();
        assert_eq!((items, next.as_deref()), (vec![2], Some("2")));
        assert!(Form::parse(b"MaxItems=0").and_then(|f| page(vec![1], &f)).is_err());
        assert_eq!(escape("<a href='x'>&\"</a>"), "&lt;a href=&apos;x&apos;&gt;&amp;&quot;&lt;/a&gt;");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
    }
}
