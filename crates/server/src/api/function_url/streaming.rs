//! RESPONSE_STREAM URLs: the function's bytes reach the client as it writes them. A stream whose
//! content type is `application/vnd.awslambda.http-integration-response` (`HttpResponseStream.from`)
//! starts with a JSON prelude and eight NUL bytes that set the status, headers and cookies; any other
//! stream is a 200 with the content type the function declared.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::BytesMut;
use tokio::sync::mpsc;

use super::response;
use crate::api::lambda::stream::ChannelBody;
use crate::environment::ResponseStream;

pub const HTTP_INTEGRATION_CONTENT_TYPE: &str = "application/vnd.awslambda.http-integration-response";

/// The most a prelude may take before its eight NULs; past it the answer is a 502.
const PRELUDE_BYTES_MAX: usize = 64 * 1024;
const SEPARATOR: [u8; 8] = [0; 8];

/// Where the prelude ends in `buffer`: the prelude and the bytes after the separator.
pub fn split_prelude(buffer: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = buffer.windows(SEPARATOR.len()).position(|w| w == SEPARATOR)?;
    Some((&buffer[..at], &buffer[at + SEPARATOR.len()..]))
}

/// The HTTP answer to a streaming function; `None` when its prelude is malformed (502).
pub async fn answer(stream: ResponseStream) -> Option<Response> {
    let ResponseStream { content_type, mut chunks } = stream;
    let (status, headers, first) = if content_type.as_deref() == Some(HTTP_INTEGRATION_CONTENT_TYPE) {
        let mut buffer = BytesMut::new();
        loop {
            if let Some((prelude, rest)) = split_prelude(&buffer) {
                let (status, headers) = response::prelude(prelude).ok()?;
                break (status, headers, Bytes::copy_from_slice(rest));
            }
            if buffer.len() > PRELUDE_BYTES_MAX {
                return None;
            }
            match chunks.recv().await {
                Some(chunk) => buffer.extend_from_slice(&chunk),
                // Ended without a complete prelude.
                None => return None,
            }
        }
    } else {
        let ct = content_type.as_deref().and_then(|c| HeaderValue::from_str(c).ok());
        let headers = ct.map(|v| vec![(axum::http::header::CONTENT_TYPE, v)]).unwrap_or_default();
        (StatusCode::OK, headers, Bytes::new())
    };
    let (out, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        if !first.is_empty() && out.send(first).await.is_err() {
            return;
        }
        while let Some(chunk) = chunks.recv().await {
            if out.send(chunk).await.is_err() {
                // The client went away; dropping `chunks` lets the runtime's upload drain.
                return;
            }
        }
    });
    let mut response = Response::new(Body::new(ChannelBody(rx)));
    *response.status_mut() = status;
    for (name, value) in headers {
        response.headers_mut().append(name, value);
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preludes_split_at_eight_nuls() {
        let mut data = br#"{"statusCode":201}"#.to_vec();
        data.extend_from_slice(&[0; 8]);
        data.extend_from_slice(b"body\0");
        let (prelude, rest) = split_prelude(&data).unwrap();
        assert_eq!(prelude, br#"{"statusCode":201}"#);
        assert_eq!(rest, b"body\0");
        assert!(split_prelude(b"{\"a\":1}\0\0\0\0\0\0\0").is_none());
        assert_eq!(response::prelude(prelude).unwrap().0, StatusCode::CREATED);
        assert_eq!(response::prelude(b"{}").unwrap().0, StatusCode::OK);
        assert!(response::prelude(b"[1]").is_err());
    }
}
