//! CreateFunction, GetFunction(Configuration), ListFunctions, UpdateFunctionCode/Configuration,
//! DeleteFunction, PublishVersion, ListVersionsByFunction and GetAccountSettings.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use nimbus_model::limits::{self, LIST_PAGE_ITEMS_MAX};
use nimbus_model::{
    Architecture, Description, EnvVars, EphemeralStorageMb, FunctionConfig, FunctionName, FunctionRef, Handler,
    LoggingConfig, MemoryMb, Problems, Qualifier, RoleArn, Runtime, Tags, TimeoutSecs, ValidationError,
};
use nimbus_store::{CodeInfo, FunctionRecord, NewFunction, Store, VersionId};
use serde_json::json;

use super::paging::{page_json, page_size};
use super::shapes::*;
use super::{parse_json, target};
use crate::api::{ApiError, SharedState};
use crate::clock;
use crate::lifecycle::{Status, Ticket};

fn version_of(qualifier: Option<&Qualifier>, state: &SharedState, name: &FunctionName) -> Result<VersionId, ApiError> {
    match qualifier {
        None | Some(Qualifier::Latest) => Ok(VersionId::Latest),
        Some(Qualifier::Version(v)) => Ok(VersionId::Published(*v)),
        Some(q @ Qualifier::Alias(alias)) => match state.store.get_alias(name, alias) {
            Ok(a) => Ok(a.version),
            Err(nimbus_store::StoreError::NotFound { .. }) => {
                Err(ApiError::not_found(format!("Function not found: {}", state.arns.function(name, Some(q)))))
            }
            Err(other) => Err(other.into()),
        },
    }
}

/// The configuration as shown now, with the function's lifecycle status.
pub(super) fn shown(state: &SharedState, record: &FunctionRecord) -> serde_json::Value {
    function_configuration(record, &state.arns, &state.lifecycle.status(&record.name))
}

/// `ResourceConflictException` for an operation the lifecycle does not allow now.
pub(super) fn busy(state: &SharedState, name: &FunctionName, busy: &crate::lifecycle::Busy) -> ApiError {
    ApiError::conflict(busy.message(&state.arns.function(name, None)))
}

/// Makes the code of a create or update ready (unpacked into the code store), then ends the
/// operation: `Active`/`Successful` with a renewed revision id, or `Failed` with the reason. Runs
/// after the request was answered, so the answer always shows the operation under way.
fn settle(state: &SharedState, name: FunctionName, digest: nimbus_store::CodeDigest, ticket: Ticket) {
    let state = state.clone();
    tokio::spawn(async move {
        let store = state.store.clone();
        let outcome = match tokio::task::spawn_blocking(move || store.code().unpacked(&digest)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("The function's code could not be unpacked: {e}")),
            Err(e) => Err(format!("The function's code could not be unpacked: {e}")),
        };
        if outcome.is_ok() {
            match state.store.renew_revision(&name) {
                // Environments are keyed by revision: one started in the short window before this
                // would otherwise sit idle under a revision no invocation names any more.
                Ok(_) => state.invoker.retire(&name, Some(&VersionId::Latest)).await,
                // Deleted meanwhile: `finish` below then finds its ticket gone and changes nothing.
                Err(e) => {
                    tracing::debug!(function = %name, error = %e, "renewing the revision id after the code was ready")
                }
            }
        }
        if let Err(reason) = &outcome {
            tracing::warn!(function = %name, "{reason}");
        }
        state.lifecycle.finish(&name, ticket, outcome);
    });
}

fn not_found_arn(state: &SharedState, name: &FunctionName, version: VersionId) -> ApiError {
    let q = match version {
        VersionId::Latest => None,
        VersionId::Published(v) => Some(Qualifier::Version(v)),
    };
    ApiError::not_found(format!("Function not found: {}", state.arns.function(name, q.as_ref())))
}

fn load(state: &SharedState, name: &FunctionName, version: VersionId) -> Result<FunctionRecord, ApiError> {
    state.store.get_function(name, &version).map_err(|e| match e {
        nimbus_store::StoreError::NotFound { .. } => not_found_arn(state, name, version),
        other => other.into(),
    })
}

/// Decodes `ZipFile` and stores it (validated, content-addressed) off the async threads.
async fn store_zip(store: &Arc<Store>, zip_base64: &str) -> Result<CodeInfo, ApiError> {
    let zip = base64::engine::general_purpose::STANDARD.decode(zip_base64).map_err(|_| {
        ApiError::invalid("Could not unzip uploaded file. Please check your file, then try to upload again.")
    })?;
    if zip.len() > limits::ZIP_BYTES_MAX {
        return Err(ApiError::too_large(format!("Zipped size must be smaller than {} bytes", limits::ZIP_BYTES_MAX)));
    }
    let store = store.clone();
    let stored = tokio::task::spawn_blocking(move || store.code().put_zip(&zip))
        .await
        .map_err(|e| ApiError::service(format!("storing code: {e}")))?
        .map_err(nimbus_store::StoreError::from)?;
    Ok(CodeInfo { digest: stored.digest, size_bytes: stored.size_bytes })
}

fn env_vars(env: Option<EnvironmentIn>) -> Result<Option<EnvVars>, ValidationError> {
    env.map(|e| EnvVars::parse(e.variables.unwrap_or_default())).transpose()
}

fn ephemeral(e: Option<EphemeralStorageIn>) -> Result<Option<EphemeralStorageMb>, ValidationError> {
    match e {
        None => Ok(None),
        Some(EphemeralStorageIn { size: Some(size) }) => Ok(Some(EphemeralStorageMb::new(size)?)),
        Some(EphemeralStorageIn { size: None }) => {
            Err(ValidationError::constraint("ephemeralStorage.size", "null", "Member must not be null"))
        }
    }
}

pub async fn create(
    State(state): State<SharedState>,
    identity: Option<axum::Extension<crate::authz::Identity>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: CreateFunctionIn = parse_json(&body)?;
    // Lambda checks every member against its model first and reports all violations at once, in
    // the order of CreateFunctionRequest's members; semantic checks follow.
    let mut problems = Problems::default();
    match input.function_name.as_deref() {
        None => problems.missing("functionName"),
        Some(raw) => drop(problems.check(FunctionRef::parse(raw))),
    }
    let runtime = input.runtime.as_deref().and_then(|r| problems.check(Runtime::parse(r)));
    let role = match input.role.as_deref() {
        None => {
            problems.missing("role");
            None
        }
        Some(r) => problems.check(RoleArn::parse(r)),
    };
    let handler = input.handler.as_deref().and_then(|h| problems.check(Handler::parse(h)));
    if input.code.is_none() {
        problems.missing("code");
    }
    let description = input.description.as_deref().and_then(|d| problems.check(Description::parse(d)));
    let timeout = input.timeout.and_then(|t| problems.check(TimeoutSecs::new(t)));
    let memory = input.memory_size.and_then(|m| problems.check(MemoryMb::new(m)));
    let environment = problems.check(env_vars(input.environment)).flatten();
    let ephemeral_storage = problems.check(ephemeral(input.ephemeral_storage)).flatten();
    let architecture = problems.check(Architecture::parse_list(&input.architectures.unwrap_or_default()));
    let tags = problems.check(Tags::parse(input.tags.unwrap_or_default()));
    let logging =
        problems.check(LoggingConfig::merge(&LoggingConfig::default(), input.logging_config.unwrap_or_default()));
    problems.finish()?;
    let (Some(raw_name), Some(role), Some(architecture), Some(tags), Some(logging)) =
        (input.function_name, role, architecture, tags, logging)
    else {
        return Err(ApiError::service("validation passed with a member missing"));
    };
    let (name, qualifier) = target(&state, &raw_name, None)?;
    if qualifier.is_some() {
        return Err(ApiError::invalid("FunctionName of CreateFunction must not carry a qualifier"));
    }
    if input.package_type.as_deref() == Some("Image") {
        return Err(ApiError::invalid("Nimbus does not run container images yet; upload a .zip package"));
    }
    let (Some(runtime), Some(handler)) = (runtime, handler) else {
        return Err(ApiError::invalid(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
        ));
    };
    let config = FunctionConfig {
        runtime,
        handler,
        role,
        memory: memory.unwrap_or_default(),
        timeout: timeout.unwrap_or_default(),
        ephemeral_storage: ephemeral_storage.unwrap_or_default(),
        environment: environment.unwrap_or_default(),
        description: description.unwrap_or_default(),
        architecture,
        logging,
    };
    crate::execution_role::may_pass(identity.as_deref(), &config.role)?;
    crate::execution_role::assumable_by_lambda(&state.store, &state.arns.account, &config.role)?;
    let code = input.code.ok_or_else(|| ApiError::invalid("Code is required"))?;
    let zip = match code {
        CodeIn { zip_file: Some(zip), .. } => zip,
        CodeIn { s3_bucket: Some(_), .. } | CodeIn { s3_key: Some(_), .. } => {
            return Err(ApiError::invalid("Nimbus has no S3 service yet; pass the package as Code.ZipFile"));
        }
        CodeIn { image_uri: Some(_), .. } => {
            return Err(ApiError::invalid("Nimbus does not run container images yet; upload a .zip package"));
        }
        _ => return Err(ApiError::invalid("Please provide a source for function code.")),
    };
    let dead_letter = super::event_invoke::dead_letter_target(&state, input.dead_letter_config)?;
    // A duplicate is refused before any code is stored.
    if state.store.get_function(&name, &VersionId::Latest).is_ok() {
        return Err(ApiError::conflict(format!("Function already exist: {name}")));
    }
    let code = store_zip(&state.store, &zip).await?;
    let runtime_note = state.invoker.runtime_note(config.runtime);
    let ticket = state.lifecycle.begin_create(&name);
    let created = state
        .store
        .create_function(NewFunction {
            name: name.clone(),
            config,
            code,
            tags,
            publish: input.publish.unwrap_or(false),
            now_ms: clock::now_ms(),
        })
        .map_err(ApiError::from)
        .and_then(|(mut latest, mut published)| {
            super::event_invoke::record_dead_letter(&state, &mut latest, published.as_mut(), dead_letter)?;
            Ok((latest, published))
        });
    let (latest, published) = match created {
        Ok(created) => created,
        Err(e) => {
            state.lifecycle.abandon(&name, ticket);
            return Err(e);
        }
    };
    if let Some(note) = runtime_note {
        tracing::warn!(function = %latest.name, "{note}");
    }
    let answer = function_configuration(published.as_ref().unwrap_or(&latest), &state.arns, &Status::Creating);
    settle(&state, name, latest.code.digest, ticket);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

pub async fn get(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<QualifierQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let (name, qualifier) = target(&state, &raw, q.qualifier.as_deref())?;
    let version = version_of(qualifier.as_ref(), &state, &name)?;
    let record = load(&state, &name, version)?;
    let mut out = json!({
        "Configuration": shown(&state, &record),
        "Code": { "RepositoryType": "S3", "Location": state.code_urls.url(headers.get(axum::http::header::HOST), &record.code.digest) },
    });
    // AWS leaves `Tags` out of GetFunction's answer when the function has none.
    if !record.tags.is_empty() {
        out["Tags"] = tags_json(&record);
    }
    if let Some(reserved) = state.store.reserved_concurrency(&name)? {
        out["Concurrency"] = json!({ "ReservedConcurrentExecutions": reserved });
    }
    Ok(Json(out).into_response())
}

pub async fn get_configuration(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<QualifierQuery>,
) -> Result<Response, ApiError> {
    let (name, qualifier) = target(&state, &raw, q.qualifier.as_deref())?;
    let version = version_of(qualifier.as_ref(), &state, &name)?;
    let record = load(&state, &name, version)?;
    Ok(Json(shown(&state, &record)).into_response())
}

pub async fn list(State(state): State<SharedState>, Query(q): Query<ListFunctionsQuery>) -> Result<Response, ApiError> {
    // botocore's model: `FunctionVersion` is the enum [ALL]; `MasterRegion` (Lambda@Edge) needs it.
    let all_versions = match q.function_version.as_deref() {
        None => false,
        Some("ALL") => true,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]"
            )));
        }
    };
    if q.master_region.is_some() && !all_versions {
        return Err(ApiError::invalid("Function version must be ALL if MasterRegion is specified"));
    }
    let limit = page_size(q.max_items, 10_000, LIST_PAGE_ITEMS_MAX)?;
    if all_versions {
        return list_all_versions(&state, limit, q.marker.as_deref().filter(|m| !m.is_empty()));
    }
    let after = match q.marker.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => Some(FunctionName::parse(m).map_err(|_| ApiError::invalid(format!("Invalid Marker: {m}")))?),
        None => None,
    };
    let records = state.store.list_functions(after.as_ref(), limit + 1)?;
    let out = page_json(records, limit, "Functions", |r| r.name.to_string(), |r| shown(&state, r));
    Ok(Json(out).into_response())
}

/// ListFunctions with `FunctionVersion=ALL`: every function's `$LATEST` and published versions, in
/// name then version order. The marker is the last entry's `name:version` (neither part can hold a
/// colon), so a page may end inside a function's versions.
fn list_all_versions(state: &SharedState, limit: usize, marker: Option<&str>) -> Result<Response, ApiError> {
    let invalid = |m: &str| ApiError::invalid(format!("Invalid Marker: {m}"));
    let mut entries = Vec::new();
    let mut after = None;
    if let Some(m) = marker {
        let (name, version) = m.split_once(':').ok_or_else(|| invalid(m))?;
        let name = FunctionName::parse(name).map_err(|_| invalid(m))?;
        let version = match Qualifier::parse(version).map_err(|_| invalid(m))? {
            Qualifier::Latest => VersionId::Latest,
            Qualifier::Version(v) => VersionId::Published(v),
            Qualifier::Alias(_) => return Err(invalid(m)),
        };
        entries = state.store.list_versions(&name, Some(&version), limit + 1)?;
        after = Some(name);
    }
    while entries.len() <= limit {
        let functions = state.store.list_functions(after.as_ref(), LIST_PAGE_ITEMS_MAX)?;
        if functions.is_empty() {
            break;
        }
        for f in functions {
            if entries.len() > limit {
                break;
            }
            entries.extend(state.store.list_versions(&f.name, None, limit + 1 - entries.len())?);
            after = Some(f.name);
        }
    }
    entries.truncate(limit + 1);
    let out = page_json(entries, limit, "Functions", |r| format!("{}:{}", r.name, r.version), |r| shown(state, r));
    Ok(Json(out).into_response())
}

/// The function an Update* call names: only `$LATEST` changes, so a qualified name is refused.
fn updatable(state: &SharedState, raw: &str) -> Result<FunctionName, ApiError> {
    match target(state, raw, None)? {
        (name, None) => Ok(name),
        (_, Some(_)) => Err(ApiError::invalid("Only the unqualified function ($LATEST) can be updated")),
    }
}

pub async fn update_code(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = updatable(&state, &raw)?;
    let input: UpdateCodeIn = parse_json(&body)?;
    if input.s3_bucket.is_some() {
        return Err(ApiError::invalid("Nimbus has no S3 service yet; pass the package as ZipFile"));
    }
    if input.image_uri.is_some() {
        return Err(ApiError::invalid("Nimbus does not run container images yet; upload a .zip package"));
    }
    let zip = input.zip_file.ok_or_else(|| ApiError::invalid("Please provide a source for function code."))?;
    let current = load(&state, &name, VersionId::Latest)?;
    if let Some(list) = &input.architectures
        && Architecture::parse_list(list)? != current.config.architecture
    {
        return Err(ApiError::invalid("Changing Architectures is not supported by Nimbus yet"));
    }
    let code = store_zip(&state.store, &zip).await?;
    if input.dry_run.unwrap_or(false) {
        let mut preview = current;
        preview.code = code;
        return Ok(Json(shown(&state, &preview)).into_response());
    }
    let ticket = state.lifecycle.begin_update(&name).map_err(|b| busy(&state, &name, &b))?;
    let updated = state.store.update_function_code(
        &name,
        code,
        input.revision_id.as_deref(),
        input.publish.unwrap_or(false),
        clock::now_ms(),
    );
    let (latest, published) = updated.inspect_err(|_| state.lifecycle.abandon(&name, ticket))?;
    state.invoker.retire(&name, Some(&VersionId::Latest)).await;
    let answer = function_configuration(published.as_ref().unwrap_or(&latest), &state.arns, &Status::Updating);
    settle(&state, name, latest.code.digest, ticket);
    Ok(Json(answer).into_response())
}

pub async fn update_configuration(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    identity: Option<axum::Extension<crate::authz::Identity>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = updatable(&state, &raw)?;
    let input: UpdateConfigIn = parse_json(&body)?;
    // Model constraints first, all at once and in UpdateFunctionConfigurationRequest's member order,
    // before the function is looked up (as Lambda does).
    let mut problems = Problems::default();
    let role = input.role.as_deref().map(|r| problems.check(RoleArn::parse(r)));
    let handler = input.handler.as_deref().map(|h| problems.check(Handler::parse(h)));
    let description = input.description.as_deref().map(|d| problems.check(Description::parse(d)));
    let timeout = input.timeout.map(|t| problems.check(TimeoutSecs::new(t)));
    let memory = input.memory_size.map(|m| problems.check(MemoryMb::new(m)));
    let environment = problems.check(env_vars(input.environment)).flatten();
    let runtime = input.runtime.as_deref().map(|r| problems.check(Runtime::parse(r)));
    let ephemeral_storage = problems.check(ephemeral(input.ephemeral_storage)).flatten();
    problems.finish()?;
    let current = load(&state, &name, VersionId::Latest)?;
    let mut config = current.config.clone();
    // `finish` passed, so every member given parsed: each is `Some(Some(_))` or `None`.
    if let Some(Some(r)) = runtime {
        config.runtime = r;
    }
    if let Some(Some(h)) = handler {
        config.handler = h;
    }
    if let Some(Some(r)) = role {
        config.role = r;
        crate::execution_role::may_pass(identity.as_deref(), &config.role)?;
        crate::execution_role::assumable_by_lambda(&state.store, &state.arns.account, &config.role)?;
    }
    if let Some(Some(m)) = memory {
        config.memory = m;
    }
    if let Some(Some(t)) = timeout {
        config.timeout = t;
    }
    if let Some(e) = ephemeral_storage {
        config.ephemeral_storage = e;
    }
    if let Some(env) = environment {
        config.environment = env;
    }
    if let Some(Some(d)) = description {
        config.description = d;
    }
    if let Some(given) = input.logging_config {
        config.logging = LoggingConfig::merge(&config.logging, given)?;
    }
    let dead_letter = super::event_invoke::dead_letter_target(&state, input.dead_letter_config)?;
    let ticket = state.lifecycle.begin_update(&name).map_err(|b| busy(&state, &name, &b))?;
    let updated = (|| {
        if let Some(target) = dead_letter {
            state.store.set_dead_letter_target(&name, Some(target.as_str()).filter(|t| !t.is_empty()))?;
        }
        state.store.update_function_config(&name, config, input.revision_id.as_deref(), clock::now_ms())
    })();
    let updated = updated.inspect_err(|_| state.lifecycle.abandon(&name, ticket))?;
    state.invoker.retire(&name, Some(&VersionId::Latest)).await;
    let answer = function_configuration(&updated, &state.arns, &Status::Updating);
    settle(&state, name, updated.code.digest, ticket);
    Ok(Json(answer).into_response())
}

pub async fn delete(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<QualifierQuery>,
) -> Result<Response, ApiError> {
    let (name, qualifier) = target(&state, &raw, q.qualifier.as_deref())?;
    let version = match qualifier {
        None => None,
        Some(Qualifier::Latest) => {
            return Err(ApiError::invalid("$LATEST version cannot be deleted without deleting the function."));
        }
        Some(Qualifier::Version(v)) => Some(v),
        Some(Qualifier::Alias(_)) => {
            return Err(ApiError::invalid("Deletion of aliases is not supported by DeleteFunction; use DeleteAlias."));
        }
    };
    if let Some(v) = version {
        let aliases = state.store.aliases_of_version(&name, v)?;
        if !aliases.is_empty() {
            return Err(ApiError::conflict(format!(
                "Unable to delete version because the following aliases reference it: [{}]",
                aliases.join(", ")
            )));
        }
    }
    // Off the async workers: it deletes the function's waiting async events too, which may be many.
    let (store, doomed) = (state.store.clone(), name.clone());
    let deleted = tokio::task::spawn_blocking(move || store.delete_function(&doomed, version))
        .await
        .map_err(|e| ApiError::service(format!("DeleteFunction failed: {e}")))?;
    deleted.map_err(|e| match e {
        nimbus_store::StoreError::NotFound { .. } => {
            not_found_arn(&state, &name, version.map_or(VersionId::Latest, VersionId::Published))
        }
        other => other.into(),
    })?;
    if let Some(v) = version {
        // A deleted version takes its provisioned concurrency with it (a deleted function, everything).
        state.store.delete_provisioned(&name, &v.to_string())?;
    }
    state.invoker.retire(&name, version.map(VersionId::Published).as_ref()).await;
    if version.is_none() {
        state.invoker.set_reserved(&name, None).await;
        state.lifecycle.forget(&name);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn publish_version(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (name, _) = target(&state, &raw, None)?;
    let input: PublishVersionIn = parse_json(&body)?;
    load(&state, &name, VersionId::Latest)?;
    state.lifecycle.check_ready(&name).map_err(|b| busy(&state, &name, &b))?;
    let description = input.description.as_deref().map(Description::parse).transpose()?;
    let record = state.store.publish_version(
        &name,
        input.code_sha256.as_deref(),
        input.revision_id.as_deref(),
        description,
        clock::now_ms(),
    )?;
    Ok((StatusCode::CREATED, Json(shown(&state, &record))).into_response())
}

pub async fn list_versions(
    State(state): State<SharedState>,
    Path(raw): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let (name, _) = target(&state, &raw, None)?;
    load(&state, &name, VersionId::Latest)?;
    let limit = page_size(q.max_items, 10_000, LIST_PAGE_ITEMS_MAX)?;
    let after = match q.marker.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => Some(match Qualifier::parse(m)? {
            Qualifier::Latest => VersionId::Latest,
            Qualifier::Version(v) => VersionId::Published(v),
            Qualifier::Alias(_) => return Err(ApiError::invalid(format!("Invalid Marker: {m}"))),
        }),
        None => None,
    };
    let records = state.store.list_versions(&name, after.as_ref(), limit + 1)?;
    let out = page_json(records, limit, "Versions", |r| r.version.to_string(), |r| shown(&state, r));
    Ok(Json(out).into_response())
}

pub async fn account_settings(State(state): State<SharedState>) -> Result<Response, ApiError> {
    let (count, total_code) = state.store.function_totals()?;
    let reserved: u32 = state.store.all_reserved_concurrency()?.iter().map(|(_, r)| r).sum();
    let settings = AccountSettings {
        account_limit: AccountLimit {
            total_code_size: 80 * 1024 * 1024 * 1024,
            code_size_unzipped: limits::UNZIPPED_BYTES_MAX,
            code_size_zipped: limits::ZIP_BYTES_MAX as u64,
            concurrent_executions: state.account_concurrency,
            unreserved_concurrent_executions: state.account_concurrency.saturating_sub(reserved),
        },
        account_usage: AccountUsage { total_code_size: total_code, function_count: count },
    };
    Ok(Json(settings).into_response())
}
