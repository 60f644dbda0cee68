//! The SQS API (JSON 1.0, `X-Amz-Target: AmazonSQS.<Operation>`), as botocore's `sqs` 2012-11-05 model
//! defines it. botocore (and so the AWS CLI) no longer sends SQS's older query protocol: the model lists
//! only `json`, so that protocol is not served.
//!
//! Errors carry both codes SQS sends: `__type` (`com.amazonaws.sqs#QueueDoesNotExist`, the modelled
//! shape, which picks the SDK's exception class) and the `x-amzn-query-error` header
//! (`AWS.SimpleQueueService.NonExistentQueue;Sender`, the code query-era clients compare against).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use std::sync::Arc;

use nimbus_store::Store;

use super::SharedState;
use crate::auth::Caller;
use crate::authz::{self, Identity};
use crate::sqs::{Sqs, SqsError};

mod messages;
pub mod operations;
mod queues;

use operations::SqsOperation;

use messages::{
    change_visibility, change_visibility_batch, delete_message, delete_message_batch, receive_message, send_message,
    send_message_batch,
};
use queues::{
    create_queue, delete_queue, get_queue_attributes, get_queue_url, list_dead_letter_sources, list_queue_tags,
    list_queues, purge_queue, set_queue_attributes, tag_queue, untag_queue,
};

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// The parts of the API state the SQS operations use: the queue service and the store. Kept separate
/// from [`SharedState`] so the fuzz targets can run the real handlers without an invoker or a pool.
pub(crate) struct Deps<'a> {
    pub sqs: &'a Arc<Sqs>,
    pub store: &'a Arc<Store>,
}

/// Serves one SQS request after deciding it (`authz`) from its operation's row in `operations`.
pub async fn dispatch(
    state: &SharedState,
    operation: &str,
    body: &[u8],
    caller: Option<&Caller>,
    identity: Option<&Identity>,
) -> Response {
    let Some(op) = SqsOperation::parse(operation) else {
        return error_response(&SqsError::UnsupportedOperation(format!("AmazonSQS.{operation}")));
    };
    let resource = operations::resource(&state.arns, op, body);
    if let Err(denied) = authz::authorize(identity, &op.action(), &resource) {
        return error_response(&SqsError::AccessDenied(denied.message));
    }
    serve(&Deps { sqs: &state.sqs, store: &state.store }, op, body, caller).await
}

/// Serves an operation by name without authorization: the fuzz targets' entry point.
pub(crate) async fn respond(state: &Deps<'_>, operation: &str, body: &[u8], caller: Option<&Caller>) -> Response {
    match SqsOperation::parse(operation) {
        Some(op) => serve(state, op, body, caller).await,
        None => error_response(&SqsError::UnsupportedOperation(format!("AmazonSQS.{operation}"))),
    }
}

async fn serve(state: &Deps<'_>, op: SqsOperation, body: &[u8], caller: Option<&Caller>) -> Response {
    let sender = caller.map_or("AIDANIMBUS", |c| c.access_key_id.as_str()).to_owned();
    use SqsOperation as Op;
    let result = match op {
        Op::CreateQueue => create_queue(state, body).await,
        Op::GetQueueUrl => get_queue_url(state, body).await,
        Op::ListQueues => list_queues(state, body).await,
        Op::DeleteQueue => delete_queue(state, body).await,
        Op::GetQueueAttributes => get_queue_attributes(state, body).await,
        Op::SetQueueAttributes => set_queue_attributes(state, body).await,
        Op::PurgeQueue => purge_queue(state, body).await,
        Op::SendMessage => send_message(state, body, &sender).await,
        Op::SendMessageBatch => send_message_batch(state, body, &sender).await,
        Op::ReceiveMessage => receive_message(state, body).await,
        Op::DeleteMessage => delete_message(state, body).await,
        Op::DeleteMessageBatch => delete_message_batch(state, body).await,
        Op::ChangeMessageVisibility => change_visibility(state, body).await,
        Op::ChangeMessageVisibilityBatch => change_visibility_batch(state, body).await,
        Op::TagQueue => tag_queue(state, body).await,
        Op::UntagQueue => untag_queue(state, body).await,
        Op::ListQueueTags => list_queue_tags(state, body).await,
        Op::ListDeadLetterSourceQueues => list_dead_letter_sources(state, body).await,
    };
    match result {
        Ok(value) => ([("content-type", CONTENT_TYPE)], value.to_string()).into_response(),
        Err(e) => error_response(&e),
    }
}

/// (`__type` shape name, query-protocol code, status).
fn error_codes(e: &SqsError) -> (&'static str, &'static str, StatusCode) {
    let bad = StatusCode::BAD_REQUEST;
    match e {
        SqsError::QueueDoesNotExist => ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", bad),
        SqsError::QueueNameExists(_) => ("QueueNameExists", "QueueAlreadyExists", bad),
        SqsError::InvalidAttributeName(_) => ("InvalidAttributeName", "InvalidAttributeName", bad),
        SqsError::InvalidAttributeValue(_) => ("InvalidAttributeValue", "InvalidAttributeValue", bad),
        SqsError::InvalidParameterValue(_) => ("InvalidParameterValueException", "InvalidParameterValue", bad),
        SqsError::MissingParameter(_) => ("MissingRequiredParameterException", "MissingParameter", bad),
        SqsError::ReceiptHandleIsInvalid(_) => ("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", bad),
        SqsError::MessageNotInflight => ("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", bad),
        SqsError::TooManyEntriesInBatchRequest(_) => {
            ("TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", bad)
        }
        SqsError::EmptyBatchRequest => ("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", bad),
        SqsError::BatchEntryIdsNotDistinct(_) => {
            ("BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", bad)
        }
        SqsError::InvalidBatchEntryId(_) => ("InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", bad),
        SqsError::BatchRequestTooLong(_) => ("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", bad),
        SqsError::PurgeQueueInProgress(_) => {
            ("PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress", bad)
        }
        SqsError::InvalidMessageContents(_) => ("InvalidMessageContents", "InvalidMessageContents", bad),
        // Query-era clients (botocore's awsQueryCompatible) read the `AccessDenied` code from the header.
        SqsError::AccessDenied(_) => ("AccessDeniedException", "AccessDenied", StatusCode::FORBIDDEN),
        SqsError::UnsupportedOperation(_) => {
            ("UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", bad)
        }
        SqsError::ServiceUnavailable(_) => {
            ("ServiceUnavailable", "ServiceUnavailable", StatusCode::SERVICE_UNAVAILABLE)
        }
        SqsError::Store(s) if s.is_busy() => {
            ("ServiceUnavailable", "ServiceUnavailable", StatusCode::SERVICE_UNAVAILABLE)
        }
        SqsError::Store(_) | SqsError::Join(_) => ("InternalError", "InternalError", StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn error_response(e: &SqsError) -> Response {
    let (shape, query_code, status) = error_codes(e);
    if status.is_server_error() {
        tracing::error!(error = %e, "SQS request failed");
    }
    let fault = if status.is_server_error() { "Receiver" } else { "Sender" };
    let body = json!({ "__type": format!("com.amazonaws.sqs#{shape}"), "message": e.to_string() });
    let mut response = (status, [("content-type", CONTENT_TYPE)], body.to_string()).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{query_code};{fault}")) {
        response.headers_mut().insert("x-amzn-query-error", v);
    }
    if let Ok(v) = HeaderValue::from_str(shape) {
        response.headers_mut().insert("x-amzn-errortype", v);
    }
    response
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, SqsError> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body)
        .map_err(|e| SqsError::InvalidParameterValue(format!("Could not parse the request: {e}")))
}

async fn queue_of(state: &Deps<'_>, url: Option<&str>) -> Result<nimbus_store::QueueRecord, SqsError> {
    let url = url.ok_or(SqsError::MissingParameter("QueueUrl"))?;
    let name = state.sqs.name_from_url(url)?;
    state.sqs.queue(name).await
}
