//! The Lambda API (REST-JSON, 2015-03-31 and its dated siblings), routed on method and path as
//! botocore's model defines them.

mod aliases;
mod concurrency;
mod event_invoke;
mod functions;
mod invoke;
mod mappings;
mod paging;
mod policy;
mod provisioned;
mod shapes;
pub(crate) mod stream;
mod tags;
mod urls;

use axum::Router;
use axum::routing::{get, post};
use nimbus_model::{FunctionName, FunctionRef, Qualifier};

use super::{ApiError, SharedState};

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/2015-03-31/functions", post(functions::create).get(functions::list))
        .route("/2015-03-31/functions/", post(functions::create).get(functions::list))
        .route("/2015-03-31/functions/{name}", get(functions::get).delete(functions::delete))
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(functions::get_configuration).put(functions::update_configuration),
        )
        .route("/2015-03-31/functions/{name}/code", axum::routing::put(functions::update_code))
        .route("/2015-03-31/functions/{name}/versions", post(functions::publish_version).get(functions::list_versions))
        .route("/2015-03-31/functions/{name}/aliases", post(aliases::create).get(aliases::list))
        .route(
            "/2015-03-31/functions/{name}/aliases/{alias}",
            get(aliases::get).put(aliases::update).delete(aliases::delete),
        )
        .route("/2015-03-31/functions/{name}/invocations", post(invoke::invoke))
        .route("/2021-11-15/functions/{name}/response-streaming-invocations", post(stream::invoke))
        .route("/2014-11-13/functions/{name}/invoke-async", post(invoke::invoke_async))
        .route("/2014-11-13/functions/{name}/invoke-async/", post(invoke::invoke_async))
        .route("/2016-08-19/account-settings", get(functions::account_settings))
        .route("/2016-08-19/account-settings/", get(functions::account_settings))
        .route(
            "/2017-10-31/functions/{name}/concurrency",
            axum::routing::put(concurrency::put).delete(concurrency::delete),
        )
        .route("/2019-09-30/functions/{name}/concurrency", get(concurrency::get))
        .route(
            "/2019-09-30/functions/{name}/provisioned-concurrency",
            get(provisioned::get).put(provisioned::put).delete(provisioned::delete),
        )
        .route("/2017-03-31/tags/{arn}", get(tags::list).post(tags::tag).delete(tags::untag))
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config",
            get(event_invoke::get).put(event_invoke::put).post(event_invoke::update).delete(event_invoke::delete),
        )
        .route("/2019-09-25/functions/{name}/event-invoke-config/list", get(event_invoke::list))
        .route("/2015-03-31/functions/{name}/policy", post(policy::add).get(policy::get))
        .route("/2015-03-31/functions/{name}/policy/{sid}", axum::routing::delete(policy::remove))
        .route(
            "/2021-10-31/functions/{name}/url",
            post(urls::create).get(urls::get).put(urls::update).delete(urls::delete),
        )
        .route("/2021-10-31/functions/{name}/urls", get(urls::list))
        .route("/2015-03-31/event-source-mappings", post(mappings::create).get(mappings::list))
        .route("/2015-03-31/event-source-mappings/", post(mappings::create).get(mappings::list))
        .route(
            "/2015-03-31/event-source-mappings/{uuid}",
            get(mappings::get).put(mappings::update).delete(mappings::delete),
        )
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
