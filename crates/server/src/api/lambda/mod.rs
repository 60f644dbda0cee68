//! The Lambda API (REST-JSON, 2015-03-31 and its dated siblings), routed on method and path as
//! botocore's model defines them.

mod aliases;
mod concurrency;
mod event_invoke;
mod functions;
mod invoke;
mod mappings;
pub mod operations;
mod paging;
mod provisioned;
mod shapes;
mod tags;

use axum::Router;
use nimbus_model::{FunctionName, FunctionRef, Qualifier};

use super::{ApiError, SharedState};
use operations::route;

/// The router, built from the operation table: each operation is bound to its handler here, and its
/// method, paths and authorization come from its row in `operations`.
pub fn routes(state: &SharedState) -> Router<SharedState> {
    use operations::LambdaOperation as Op;
    let r = Router::new();
    let r = route(r, state, Op::CreateFunction, functions::create);
    let r = route(r, state, Op::ListFunctions, functions::list);
    let r = route(r, state, Op::GetFunction, functions::get);
    let r = route(r, state, Op::DeleteFunction, functions::delete);
    let r = route(r, state, Op::GetFunctionConfiguration, functions::get_configuration);
    let r = route(r, state, Op::UpdateFunctionConfiguration, functions::update_configuration);
    let r = route(r, state, Op::UpdateFunctionCode, functions::update_code);
    let r = route(r, state, Op::PublishVersion, functions::publish_version);
    let r = route(r, state, Op::ListVersionsByFunction, functions::list_versions);
    let r = route(r, state, Op::CreateAlias, aliases::create);
    let r = route(r, state, Op::ListAliases, aliases::list);
    let r = route(r, state, Op::GetAlias, aliases::get);
    let r = route(r, state, Op::UpdateAlias, aliases::update);
    let r = route(r, state, Op::DeleteAlias, aliases::delete);
    let r = route(r, state, Op::Invoke, invoke::invoke);
    let r = route(r, state, Op::InvokeAsync, invoke::invoke_async);
    let r = route(r, state, Op::GetAccountSettings, functions::account_settings);
    let r = route(r, state, Op::PutFunctionConcurrency, concurrency::put);
    let r = route(r, state, Op::DeleteFunctionConcurrency, concurrency::delete);
    let r = route(r, state, Op::GetFunctionConcurrency, concurrency::get);
    // Also serves ListProvisionedConcurrencyConfigs (`?List=ALL`), which `operations::refine` tells apart.
    let r = route(r, state, Op::GetProvisionedConcurrencyConfig, provisioned::get);
    let r = route(r, state, Op::PutProvisionedConcurrencyConfig, provisioned::put);
    let r = route(r, state, Op::DeleteProvisionedConcurrencyConfig, provisioned::delete);
    let r = route(r, state, Op::ListTags, tags::list);
    let r = route(r, state, Op::TagResource, tags::tag);
    let r = route(r, state, Op::UntagResource, tags::untag);
    let r = route(r, state, Op::GetFunctionEventInvokeConfig, event_invoke::get);
    let r = route(r, state, Op::PutFunctionEventInvokeConfig, event_invoke::put);
    let r = route(r, state, Op::UpdateFunctionEventInvokeConfig, event_invoke::update);
    let r = route(r, state, Op::DeleteFunctionEventInvokeConfig, event_invoke::delete);
    let r = route(r, state, Op::ListFunctionEventInvokeConfigs, event_invoke::list);
    let r = route(r, state, Op::CreateEventSourceMapping, mappings::create);
    let r = route(r, state, Op::ListEventSourceMappings, mappings::list);
    let r = route(r, state, Op::GetEventSourceMapping, mappings::get);
    let r = route(r, state, Op::UpdateEventSourceMapping, mappings::update);
    route(r, state, Op::DeleteEventSourceMapping, mappings::delete)
}

/// Resolves the function a path names (a name, a partial ARN or an ARN, possibly with a qualifier)
/// together with a `Qualifier` query parameter, checking that an ARN names this server's region and
/// account.
fn target(
    state: &SharedState,
    raw: &str,
    query_qualifier: Option<&str>,
) -> Result<(FunctionName, Option<Qualifier>), ApiError> {
    let parsed = FunctionRef::parse(raw)?;
    if let Some(account) = &parsed.account
        && account.as_str() != state.arns.account
    {
        return Err(ApiError::not_found(format!("Function not found: {raw}")));
    }
    if let Some(region) = &parsed.region
        && region.as_str() != state.arns.region
    {
        return Err(ApiError::not_found(format!("Function not found: {raw}")));
    }
    let query = query_qualifier.filter(|q| !q.is_empty()).map(Qualifier::parse).transpose()?;
    let qualifier = match (parsed.qualifier, query) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::invalid(
                "The derived qualifier from the function name does not match the specified qualifier.",
            ));
        }
        (a, b) => a.or(b),
    };
    Ok((parsed.name, qualifier))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(ApiError::bad_json)
}
