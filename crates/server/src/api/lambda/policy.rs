//! AddPermission, RemovePermission and GetPolicy: a function's (version's, alias's) resource-based
//! policy. Statements are rendered by `nimbus_model::PolicyStatement` and stored as that JSON, which
//! is what `crate::access` evaluates.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nimbus_model::policy::limits::LAMBDA_RESOURCE_POLICY_BYTES;
use nimbus_model::{
    Conditions, FunctionName, LambdaAction, PolicyStatement, Qualifier, StatementId, StatementPrincipal as Principal,
    UrlAuthType, policy_document,
};
use nimbus_store::{PolicyScope, StoreError, VersionId};
use serde::Deserialize;
use serde_json::json;

use super::{parse_json, target};
use crate::api::{ApiError, SharedState};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AddPermissionIn {
    statement_id: Option<String>,
    action: Option<String>,
    principal: Option<String>,
    source_arn: Option<String>,
    source_account: Option<String>,
    #[serde(rename = "PrincipalOrgID")]
    principal_org_id: Option<String>,
    event_source_token: Option<String>,
    function_url_auth_type: Option<String>,
    invoked_via_function_url: Option<bool>,
    revision_id: Option<String>,
}

#[derive(Deserialize)]
pub struct PolicyQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
    #[serde(rename = "RevisionId")]
    revision_id: Option<String>,
}

fn scope(qualifier: Option<&Qualifier>) -> PolicyScope {
    match qualifier {
        None => PolicyScope::Function,
        Some(Qualifier::Latest) => PolicyScope::Version(VersionId::Latest),
        Some(Qualifier::Version(v)) => PolicyScope::Version(VersionId::Published(*v)),
        Some(Qualifier::Alias(a)) => PolicyScope::Alias(a.clone()),
    }
}

/// AWS's messages for what the store reports.
fn policy_error(state: &SharedState, name: &FunctionName, qualifier: Option<&Qualifier>, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { what: "statement", name: sid } => {
            ApiError::not_found(format!("Statement {sid} is not found in resource policy."))
        }
        StoreError::NotFound { .. } => {
            ApiError::not_found(format!("Function not found: {}", state.arns.function(name, qualifier)))
        }
        StoreError::Conflict { .. } => ApiError::conflict(
            "The statement id (sid) provided already exists. Please provide a new statement id, or remove the existing statement.",
        ),
        StoreError::PreconditionFailed { .. } => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailedException",
            "The RevisionId provided does not match the latest RevisionId for the Lambda function or alias. Call the \
             GetFunction or the GetAlias API operation to retrieve the latest RevisionId for your resource.",
        ),
        other => other.into(),
    }
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    value.as_deref().ok_or_else(|| {
        ApiError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

pub async fn add(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<PolicyQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (name, qualifier) = target(&state, &raw, q.qualifier.as_deref())?;
    let input: AddPermissionIn = parse_json(&body)?;
    let sid = StatementId::parse(required(&input.statement_id, "statementId")?)?;
    let action = LambdaAction::parse(required(&input.action, "action")?)?;
    let principal = Principal::parse(required(&input.principal, "principal")?)?;
    let conditions = Conditions {
        source_arn: input.source_arn,
        source_account: input.source_account,
        principal_org_id: input.principal_org_id,
        event_source_token: input.event_source_token,
        function_url_auth_type: input.function_url_auth_type.as_deref().map(UrlAuthType::parse).transpose()?,
        invoked_via_function_url: input.invoked_via_function_url.unwrap_or(false),
    };
    let resource = state.arns.function(&name, qualifier.as_ref());
    let statement = PolicyStatement::allow(sid, principal, action, resource, conditions)?;
    let rendered = statement.to_json();
    let scope = scope(qualifier.as_ref());
    // AWS bounds a function's policy at 20 KB; checked against what is stored now.
    let current =
        state.store.function_policy(&name, &scope).map_err(|e| policy_error(&state, &name, qualifier.as_ref(), e))?;
    let size = policy_document(
        current.iter().flat_map(|p| p.statements.iter().map(String::as_str)).chain([rendered.as_str()]),
    )
    .len();
    if size > LAMBDA_RESOURCE_POLICY_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "PolicyLengthExceededException",
            format!("The final policy size ({size}) is bigger than the limit ({LAMBDA_RESOURCE_POLICY_BYTES})."),
        ));
    }
    state
        .store
        .add_policy_statement(&name, &scope, statement.sid.as_str(), &rendered, input.revision_id.as_deref())
        .map_err(|e| policy_error(&state, &name, qualifier.as_ref(), e))?;
    Ok((StatusCode::CREATED, Json(json!({ "Statement": rendered }))).into_response())
}

pub async fn remove(
    State(state): State<SharedState>,
    Path((raw, sid)): Path<(String, String)>,
    Query(q): Query<PolicyQuery>,
) -> Result<Response, ApiError> {
    let (name, qualifier) = target(&state, &raw, q.qualifier.as_deref())?;
    let sid = StatementId::parse_namespaced(&sid)?;
    state
        .store
        .remove_policy_statement(&name, &scope(qualifier.as_ref()), sid.as_str(), q.revision_id.as_deref())
        .map_err(|e| policy_error(&state, &name, qualifier.as_ref(), e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn get(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<PolicyQuery>,
) -> Result<Response, ApiError> {
    let (name, qualifier) = target(&state, &raw, q.qualifier.as_deref())?;
    let policy = state
        .store
        .function_policy(&name, &scope(qualifier.as_ref()))
        .map_err(|e| policy_error(&state, &name, qualifier.as_ref(), e))?
        .ok_or_else(|| ApiError::not_found("The resource you requested does not exist."))?;
    let document = policy_document(policy.statements.iter().map(String::as_str));
    Ok(Json(json!({ "Policy": document, "RevisionId": policy.revision_id })).into_response())
}
