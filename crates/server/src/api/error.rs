//! The one mapping from what went wrong to what an AWS client receives: an HTTP status, the
//! `x-amzn-ErrorType` header and a JSON body. SDKs branch on the error code, so codes are AWS's own.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nimbus_model::{ValidationError, ValidationKind};
use nimbus_store::StoreError;

use crate::auth::AuthError;
use crate::invoke::InvokeError;
use crate::pool::Throttle;

/// Which JSON error body the protocol uses: Lambda's REST-JSON (`Type`/`Message`), or the JSON 1.1
/// services' `__type`/`message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    RestJson,
    AwsJson,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// `TooManyRequestsException` carries why (`Reason`).
    pub reason: Option<&'static str>,
    pub protocol: Protocol,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), reason: None, protocol: Protocol::RestJson }
    }

    pub fn json_protocol(mut self) -> Self {
        self.protocol = Protocol::AwsJson;
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidParameterValueException", message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ResourceConflictException", message)
    }

    /// A request the principal may not make (`authz`); the message is AWS's "User: … is not authorized …".
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDeniedException", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLargeException", message)
    }

    pub fn service(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", message)
    }

    pub fn unknown_operation(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("Nimbus does not implement {method} {path}"),
        )
    }

    /// A request body that is not the JSON the operation expects.
    pub fn bad_json(error: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            format!("Could not parse request body into json: {error}"),
        )
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        match e.kind {
            ValidationKind::Validation => Self::validation(e.message),
            ValidationKind::InvalidParameterValue => Self::invalid(e.message),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::new(e.status(), e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, name } => Self::not_found(format!("{what} not found: {name}")),
            StoreError::Conflict { what, name } => Self::conflict(format!("{what} already exist: {name}")),
            StoreError::PreconditionFailed { .. } => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailedException",
                "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
            ),
            StoreError::CodeShaMismatch { .. } => Self::invalid(e.to_string()),
            StoreError::InvalidToken { .. } | StoreError::InvalidPattern { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "InvalidParameterException", e.to_string())
            }
            StoreError::Code(code) => {
                let aws = code.aws_error();
                if aws.status >= 500 {
                    tracing::error!(error = %code, "code store failure");
                }
                Self::new(
                    StatusCode::from_u16(aws.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    aws.code,
                    aws.message,
                )
            }
            other => {
                tracing::error!(error = %other, "store failure");
                if other.is_busy() {
                    return Self::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceException", "The store is busy; retry.");
                }
                Self::service("Nimbus could not read or write its store; see the server log.")
            }
        }
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> Self {
        match e {
            InvokeError::NotFound { arn } => Self::not_found(format!("Function not found: {arn}")),
            InvokeError::Throttled(throttle) => Self {
                reason: Some(match throttle {
                    Throttle::AccountConcurrency => "ConcurrentInvocationLimitExceeded",
                    Throttle::ReservedConcurrency => "ReservedFunctionConcurrentInvocationLimitExceeded",
                }),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", "Rate Exceeded.")
            },
            InvokeError::Store { source, .. } => (*source).into(),
            InvokeError::Internal { .. } => {
                tracing::error!(error = %e, "invocation failed");
                Self::service(e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.protocol {
            Protocol::RestJson => {
                let mut body = serde_json::json!({ "Type": "User", "Message": self.message, "message": self.message });
                if let Some(reason) = self.reason {
                    body["Reason"] = reason.into();
                }
                if self.status.is_server_error() {
                    body["Type"] = "Service".into();
                }
                body
            }
            Protocol::AwsJson => serde_json::json!({ "__type": self.code, "message": self.message }),
        };
        let content_type = match self.protocol {
            Protocol::RestJson => "application/json",
            Protocol::AwsJson => "application/x-amz-json-1.1",
        };
        let mut response = (self.status, [("content-type", content_type)], body.to_string()).into_response();
        response.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        response
    }
}
