//! API Gateway v2 (`apigatewayv2`, REST-JSON under `/v2/apis`, SigV4 service `apigateway`): the control
//! plane of HTTP APIs. The other side is any AWS client, already SigV4-verified by `api::authenticate`;
//! path labels and bodies are parsed here into the model's types (`nimbus_model::http_api`). Every
//! operation is a row of `operations` with its IAM action and resource, decided by `authz` before its
//! handler runs. Errors are AWS's (`NotFoundException`, `BadRequestException`, `ConflictException`,
//! each with `message`), through `api::error::ApiError`.
//!
//! Serving an API's routes is `serve` (picked by `Host` at the edge, like function URLs).

mod cache;
mod control;
pub mod hosts;
mod operations;
mod payload_v1;
pub mod serve;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use nimbus_store::StoreError;

pub use cache::ApiCache;

use super::{ApiError, SharedState};
use crate::authz::{self, Identity};

/// The path prefix of the whole service.
pub const PREFIX: &str = "/v2/";

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("reading or writing the API")]
    Store(#[from] StoreError),
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> ApiError {
        match e {
            GatewayError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "NotFoundException", m),
            GatewayError::BadRequest(m) => ApiError::new(StatusCode::BAD_REQUEST, "BadRequestException", m),
            GatewayError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "ConflictException", m),
            GatewayError::Store(StoreError::NotFound { name, .. }) => ApiError::new(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                format!("Invalid API identifier specified {name}"),
            ),
            GatewayError::Store(e) => {
                tracing::error!(error = %e, "apigateway store");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException", "Internal server error")
            }
        }
    }
}

/// Every `/v2/...` request: the operation from method and path, its authorization, its handler.
pub async fn dispatch(State(state): State<SharedState>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let Some(matched) = operations::parse(&method, &path) else {
        return ApiError::unknown_operation(method.as_str(), &path).into_response();
    };
    if let Some(identity) = request.extensions().get::<Identity>() {
        let resource = operations::Matched::resource(&state.arns.region, &path);
        if let Err(denied) = authz::authorize(Some(identity), &operations::Matched::action(&method), &resource) {
            return ApiError::access_denied(denied.message).into_response();
        }
    }
    let body: Bytes = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    match control::handle(&state, &matched, query.as_deref(), &body) {
        Ok((status, _)) if status == StatusCode::NO_CONTENT => status.into_response(),
        Ok((status, value)) => (status, [("content-type", "application/json")], value.to_string()).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
