//! InvokeWithResponseStream: the function's response as `application/vnd.amazon.eventstream`
//! (`PayloadChunk` events as the function writes, then `InvokeComplete` with `ErrorCode`,
//! `ErrorDetails` and `LogResult`), framed by `aws-smithy-eventstream` as botocore parses it. A
//! function that does not stream is sent as one chunk. Errors before the function runs (not found,
//! throttled) are ordinary API errors.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use aws_smithy_types::event_stream::{Header, HeaderValue as EventHeaderValue, Message};
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use nimbus_model::limits::SYNC_REQUEST_BYTES_MAX;
use tokio::sync::mpsc;

use super::shapes::QualifierQuery;
use super::target;
use crate::api::{ApiError, RequestId, SharedState};
use crate::environment::{Outcome, ResponseStream};
use crate::invoke::{InvokeRequest, InvokeResult, Started};

/// A response body fed by a channel: each `Bytes` is written as it comes, the body ends when the
/// sender is dropped; a client that hangs up drops the receiver, which tells the sender.
pub(crate) struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

fn event(event_type: &'static str, content_type: &'static str, payload: Bytes) -> Bytes {
    let message = Message::new(payload)
        .add_header(Header::new(":event-type", EventHeaderValue::String(event_type.into())))
        .add_header(Header::new(":content-type", EventHeaderValue::String(content_type.into())))
        .add_header(Header::new(":message-type", EventHeaderValue::String("event".into())));
    let mut out = Vec::with_capacity(message.payload().len() + 96);
    match aws_smithy_eventstream::frame::write_message_to(&message, &mut out) {
        Ok(()) => Bytes::from(out),
        Err(e) => {
            // Only a payload over 16 MB per frame can fail; chunks are far smaller.
            tracing::error!(error = %e, "encoding an event-stream message");
            Bytes::new()
        }
    }
}

fn chunk(payload: Bytes) -> Bytes {
    event("PayloadChunk", "application/octet-stream", payload)
}

/// `InvokeComplete`: the function error, if any (its `errorType` and report), and the log tail.
fn complete(result: &Result<InvokeResult, crate::invoke::InvokeError>) -> Bytes {
    let mut body = serde_json::Map::new();
    match result {
        Ok(r) => {
            if r.outcome.is_function_error() {
                let payload = r.outcome.payload();
                let error_type = serde_json::from_slice::<serde_json::Value>(payload)
                    .ok()
                    .and_then(|v| v.get("errorType").and_then(|t| t.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| "Unhandled".to_owned());
                body.insert("ErrorCode".into(), error_type.into());
                body.insert("ErrorDetails".into(), String::from_utf8_lossy(payload).into_owned().into());
            }
            if let Some(tail) = &r.log_tail {
                body.insert("LogResult".into(), base64::engine::general_purpose::STANDARD.encode(tail).into());
            }
        }
        Err(e) => {
            body.insert("ErrorCode".into(), "ServiceException".into());
            body.insert("ErrorDetails".into(), e.to_string().into());
        }
    }
    event("InvokeComplete", "application/json", Bytes::from(serde_json::Value::Object(body).to_string()))
}

pub async fn invoke(
    State(state): State<SharedState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(raw): Path<String>,
    Query(q): Query<QualifierQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let dry_run = match header("x-amz-invocation-type").unwrap_or("RequestResponse") {
        "RequestResponse" => false,
        "DryRun" => true,
        other => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [RequestResponse, DryRun]"
            )));
        }
    };
    let want_log_tail = match header("x-amz-log-type").unwrap_or("None") {
        "None" => false,
        "Tail" => true,
        other => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]"
            )));
        }
    };
    let (name, qualifier) = target(&state, &raw, q.qualifier.as_deref())?;
    if body.len() > SYNC_REQUEST_BYTES_MAX {
        return Err(ApiError::too_large(format!(
            "Request must be smaller than {SYNC_REQUEST_BYTES_MAX} bytes for the InvokeWithResponseStream operation"
        )));
    }
    if !body.is_empty()
        && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body)
    {
        return Err(ApiError::bad_json(format!("Could not parse payload into json: {e}")));
    }
    let record = state.invoker.resolve(&name, qualifier.as_ref())?;
    if dry_run {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let request = InvokeRequest {
        request_id,
        function: name,
        qualifier,
        payload: if body.is_empty() { Bytes::from_static(b"{}") } else { body },
        want_log_tail,
        client_context: None,
        stream: None,
    };
    let (out, rx) = mpsc::channel::<Bytes>(4);
    match state.invoker.invoke_streaming(request).await {
        Started::Finished(Err(e)) => return Err(e.into()),
        Started::Finished(Ok(result)) => {
            tokio::spawn(async move {
                if let Outcome::Success { payload } = &result.outcome
                    && !payload.is_empty()
                {
                    let _ = out.send(chunk(payload.clone())).await;
                }
                let _ = out.send(complete(&Ok(result))).await;
            });
        }
        Started::Streaming { stream, done } => {
            tokio::spawn(async move {
                let ResponseStream { mut chunks, .. } = stream;
                while let Some(bytes) = chunks.recv().await {
                    if out.send(chunk(bytes)).await.is_err() {
                        // The client went away: dropping `chunks` lets the runtime's upload drain.
                        break;
                    }
                }
                drop(chunks);
                let result = done.await;
                let _ = out.send(complete(&result)).await;
            });
        }
    }
    let mut response = Response::new(Body::new(ChannelBody(rx)));
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/vnd.amazon.eventstream"));
    if let Ok(v) = HeaderValue::from_str(&record.version.to_string()) {
        h.insert("x-amz-executed-version", v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_decoder() {
        let bytes = chunk(Bytes::from_static(b"hello"));
        let message = aws_smithy_eventstream::frame::read_message_from(bytes).unwrap();
        assert_eq!(message.payload().as_ref(), b"hello");
        let event_type = message.headers().iter().find(|h| h.name().as_str() == ":event-type").unwrap();
        assert_eq!(event_type.value().as_string().unwrap().as_str(), "PayloadChunk");
    }
}
