//! Lambda's JSON request and response shapes (botocore's `lambda` 2015-03-31 model), and the
//! conversion of a stored function into `FunctionConfiguration`. Members Nimbus does not implement
//! are accepted where harmless and reported as AWS reports their defaults.

use std::collections::BTreeMap;

use nimbus_store::FunctionRecord;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::arn::Arns;
use crate::clock;
use crate::lifecycle::Status;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentIn {
    pub variables: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorageIn {
    pub size: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeIn {
    pub zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    pub s3_key: Option<String>,
    pub image_uri: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionIn {
    pub function_name: Option<String>,
    pub runtime: Option<String>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub code: Option<CodeIn>,
    pub description: Option<String>,
    pub timeout: Option<i64>,
    pub memory_size: Option<i64>,
    pub publish: Option<bool>,
    pub environment: Option<EnvironmentIn>,
    pub tags: Option<BTreeMap<String, String>>,
    pub architectures: Option<Vec<String>>,
    pub ephemeral_storage: Option<EphemeralStorageIn>,
    pub package_type: Option<String>,
    pub dead_letter_config: Option<DeadLetterConfigIn>,
    pub logging_config: Option<nimbus_model::LoggingConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterConfigIn {
    pub target_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateCodeIn {
    pub zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<String>,
    pub image_uri: Option<String>,
    pub publish: Option<bool>,
    pub dry_run: Option<bool>,
    pub revision_id: Option<String>,
    pub architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfigIn {
    pub role: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<i64>,
    pub memory_size: Option<i64>,
    pub environment: Option<EnvironmentIn>,
    pub runtime: Option<String>,
    pub revision_id: Option<String>,
    pub ephemeral_storage: Option<EphemeralStorageIn>,
    pub dead_letter_config: Option<DeadLetterConfigIn>,
    pub logging_config: Option<nimbus_model::LoggingConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishVersionIn {
    pub code_sha256: Option<String>,
    pub description: Option<String>,
    pub revision_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceIn {
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(rename = "Marker")]
    pub marker: Option<String>,
    #[serde(rename = "MaxItems")]
    pub max_items: Option<i64>,
}

/// ListFunctions' query: the common paging members plus `FunctionVersion` and `MasterRegion`.
#[derive(Debug, Deserialize)]
pub struct ListFunctionsQuery {
    #[serde(rename = "Marker")]
    pub marker: Option<String>,
    #[serde(rename = "MaxItems")]
    pub max_items: Option<i64>,
    #[serde(rename = "FunctionVersion")]
    pub function_version: Option<String>,
    #[serde(rename = "MasterRegion")]
    pub master_region: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct QualifierQuery {
    #[serde(rename = "Qualifier")]
    pub qualifier: Option<String>,
}

/// `FunctionConfiguration` as Lambda returns it from Create/Get/Update/List, with the lifecycle
/// fields of `status` (see `crate::lifecycle`). A published version is immutable, so only a
/// function still being created (or failed to be) shows on its versions.
pub fn function_configuration(record: &FunctionRecord, arns: &Arns, status: &Status) -> Value {
    let c = &record.config;
    let qualified = match record.version {
        nimbus_store::VersionId::Latest => None,
        nimbus_store::VersionId::Published(v) => Some(nimbus_model::Qualifier::Version(v)),
    };
    let mut out = json!({
        "FunctionName": record.name.as_str(),
        "FunctionArn": arns.function(&record.name, qualified.as_ref()),
        "Runtime": c.runtime.to_string(),
        "Role": c.role.as_str(),
        "Handler": c.handler.as_str(),
        "CodeSize": record.code.size_bytes,
        "Description": c.description.as_str(),
        "Timeout": c.timeout.get(),
        "MemorySize": c.memory.get(),
        "LastModified": clock::lambda_timestamp(record.last_modified_ms),
        "CodeSha256": record.code.digest.to_base64(),
        "Version": record.version.to_string(),
        "TracingConfig": { "Mode": "PassThrough" },
        "RevisionId": record.revision_id,
        "PackageType": "Zip",
        "Architectures": [c.architecture.as_str()],
        "EphemeralStorage": { "Size": c.ephemeral_storage.get() },
        "SnapStart": { "ApplyOn": "None", "OptimizationStatus": "Off" },
        "RuntimeVersionConfig": { "RuntimeVersionArn": runtime_version_arn(&arns.region, &c.runtime.to_string()) },
        "LoggingConfig": logging_config(record),
    });
    let latest = record.version == nimbus_store::VersionId::Latest;
    let status = match status {
        Status::Updating | Status::UpdateFailed(_) if !latest => &Status::Ready,
        other => other,
    };
    // What AWS answers in each phase (AWS's "Lambda function states" page and recorded CLI output):
    // CreateFunction's answer has no `LastUpdateStatus` at all; an update's says `InProgress` with
    // the reason "The function is being created." and code `Creating`.
    match status {
        Status::Ready => {
            out["State"] = json!("Active");
            out["LastUpdateStatus"] = json!("Successful");
        }
        Status::Creating => {
            out["State"] = json!("Pending");
            out["StateReason"] = json!("The function is being created.");
            out["StateReasonCode"] = json!("Creating");
        }
        Status::Updating => {
            out["State"] = json!("Active");
            out["LastUpdateStatus"] = json!("InProgress");
            out["LastUpdateStatusReason"] = json!("The function is being created.");
            out["LastUpdateStatusReasonCode"] = json!("Creating");
        }
        Status::CreateFailed(reason) => {
            out["State"] = json!("Failed");
            out["StateReason"] = json!(reason);
            out["StateReasonCode"] = json!("InvalidZipFileException");
            out["LastUpdateStatus"] = json!("Failed");
            out["LastUpdateStatusReason"] = json!(reason);
            out["LastUpdateStatusReasonCode"] = json!("InvalidZipFileException");
        }
        Status::UpdateFailed(reason) => {
            out["State"] = json!("Active");
            out["LastUpdateStatus"] = json!("Failed");
            out["LastUpdateStatusReason"] = json!(reason);
            out["LastUpdateStatusReasonCode"] = json!("InvalidZipFileException");
        }
    }
    if let Some(target) = &record.dead_letter_target {
        out["DeadLetterConfig"] = json!({ "TargetArn": target });
    }
    // Lambda leaves `Environment` out entirely when a function has no variables.
    if !c.environment.is_empty() {
        out["Environment"] = json!({ "Variables": c.environment.as_map() });
    }
    out
}

/// `LoggingConfig` as given, with AWS's defaults: `Text`, and the group `/aws/lambda/<name>`; the level
/// filters appear only with `JSON` (`merge` filled them in).
fn logging_config(record: &FunctionRecord) -> Value {
    let l = &record.config.logging;
    let mut out = json!({ "LogFormat": l.format() });
    if let Some(level) = &l.application_log_level {
        out["ApplicationLogLevel"] = json!(level);
    }
    if let Some(level) = &l.system_log_level {
        out["SystemLogLevel"] = json!(level);
    }
    out["LogGroup"] = match &l.log_group {
        Some(group) => json!(group),
        None => json!(crate::logs::group_name(record.name.as_str())),
    };
    out
}

/// AWS names each managed runtime's build `arn:aws:lambda:<region>::runtime:<64 hex digits>` (no
/// account). Nimbus runs one build per runtime name, so the digest is of the name: stable across
/// calls and restarts, distinct per runtime, and of AWS's form.
pub fn runtime_version_arn(region: &str, runtime: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("nimbus-runtime:{runtime}").as_bytes());
    format!("arn:aws:lambda:{region}::runtime:{}", hex::encode(digest))
}

pub fn tags_json(record: &FunctionRecord) -> Value {
    let map: BTreeMap<&str, &str> = record.tags.iter().collect();
    json!(map)
}

/// `AccountLimit` and `AccountUsage` for GetAccountSettings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountSettings {
    pub account_limit: AccountLimit,
    pub account_usage: AccountUsage,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountLimit {
    pub total_code_size: u64,
    pub code_size_unzipped: u64,
    pub code_size_zipped: u64,
    pub concurrent_executions: u32,
    pub unreserved_concurrent_executions: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountUsage {
    pub total_code_size: u64,
    pub function_count: u64,
}
