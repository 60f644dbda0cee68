//! Validated CloudWatch Logs settings.

use crate::error::ValidationError;

/// The retention periods CloudWatch Logs accepts for `PutRetentionPolicy`, in days.
const RETENTION_DAYS_ALLOWED: [u16; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// A log group's `retentionInDays`: one of the periods CloudWatch Logs offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetentionDays(u16);

impl LogRetentionDays {
    pub fn new(days: i64) -> Result<Self, ValidationError> {
        RETENTION_DAYS_ALLOWED.iter().find(|&&d| i64::from(d) == days).map(|&d| Self(d)).ok_or_else(|| {
            ValidationError::constraint(
                "retentionInDays",
                days,
                format!("Member must satisfy enum value set: {RETENTION_DAYS_ALLOWED:?}"),
            )
        })
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// The period in milliseconds: events older than this are deleted.
    pub fn as_millis(self) -> i64 {
        i64::from(self.0) * 24 * 60 * 60 * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_offered_periods_are_accepted() {
        assert_eq!(LogRetentionDays::new(14).unwrap().get(), 14);
        assert_eq!(LogRetentionDays::new(1).unwrap().as_millis(), 86_400_000);
        for bad in [0, 2, 4000, -1] {
            assert!(LogRetentionDays::new(bad).is_err(), "{bad}");
        }
    }
}

/// A function's `LoggingConfig` as given (botocore's `LoggingConfig` shape): the format, the two
/// level filters (only with `JSON`) and a custom log group. Kept in its AWS wire form, which is also
/// how the store records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfig {
    /// `Text` or `JSON`; `None` means the default, `Text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_log_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_log_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
}

const LOG_FORMATS: [&str; 2] = ["JSON", "Text"];
const APPLICATION_LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
const SYSTEM_LOG_LEVELS: [&str; 3] = ["DEBUG", "INFO", "WARN"];
const LOG_GROUP_PATTERN: &str = r"[\.\-_/#A-Za-z0-9]+";

fn enum_check(field: &str, value: &Option<String>, allowed: &[&str]) -> Result<(), ValidationError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(ValidationError::constraint(
            field,
            v,
            format!("Member must satisfy enum value set: [{}]", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

impl LoggingConfig {
    /// Checks the members against botocore's model (enums, the log group's length and pattern), then
    /// merges them over `current` as UpdateFunctionConfiguration does (members not given are kept).
    /// With `JSON`, AWS fills in `INFO` for a level not given; with `Text`, levels are refused.
    pub fn merge(current: &LoggingConfig, given: LoggingConfig) -> Result<LoggingConfig, ValidationError> {
        enum_check("loggingConfig.logFormat", &given.log_format, &LOG_FORMATS)?;
        enum_check("loggingConfig.applicationLogLevel", &given.application_log_level, &APPLICATION_LOG_LEVELS)?;
        enum_check("loggingConfig.systemLogLevel", &given.system_log_level, &SYSTEM_LOG_LEVELS)?;
        if let Some(group) = &given.log_group {
            if group.is_empty() {
                return Err(ValidationError::too_short("loggingConfig.logGroup", group, 1));
            }
            if group.len() > 512 {
                return Err(ValidationError::too_long("loggingConfig.logGroup", group, 512));
            }
            if !group.chars().all(|c| c.is_ascii_alphanumeric() || ".-_/#".contains(c)) {
                return Err(ValidationError::pattern("loggingConfig.logGroup", group, LOG_GROUP_PATTERN));
            }
        }
        let format = given.log_format.clone().or_else(|| current.log_format.clone());
        let json = format.as_deref() == Some("JSON");
        if !json && (given.application_log_level.is_some() || given.system_log_level.is_some()) {
            return Err(ValidationError::invalid(
                "ApplicationLogLevel and SystemLogLevel can only be set when LogFormat is JSON.",
            ));
        }
        let level = |given: Option<String>, current: &Option<String>| {
            json.then(|| given.or_else(|| current.clone()).unwrap_or_else(|| "INFO".to_owned()))
        };
        Ok(LoggingConfig {
            application_log_level: level(given.application_log_level, &current.application_log_level),
            system_log_level: level(given.system_log_level, &current.system_log_level),
            log_group: given.log_group.or_else(|| current.log_group.clone()),
            log_format: format,
        })
    }

    /// The format Lambda reports: `Text` unless `JSON` was chosen.
    pub fn format(&self) -> &str {
        self.log_format.as_deref().unwrap_or("Text")
    }
}

#[cfg(test)]
mod logging_tests {
    use super::*;

    fn given(format: Option<&str>, app: Option<&str>, sys: Option<&str>, group: Option<&str>) -> LoggingConfig {
        LoggingConfig {
            log_format: format.map(str::to_owned),
            application_log_level: app.map(str::to_owned),
            system_log_level: sys.map(str::to_owned),
            log_group: group.map(str::to_owned),
        }
    }

    #[test]
    fn merge_as_aws() {
        let text = LoggingConfig::default();
        let rows: Vec<(LoggingConfig, LoggingConfig, Result<LoggingConfig, &str>)> = vec![
            (
                text.clone(),
                given(Some("JSON"), None, None, None),
                Ok(given(Some("JSON"), Some("INFO"), Some("INFO"), None)),
            ),
            (
                text.clone(),
                given(Some("JSON"), Some("DEBUG"), Some("WARN"), Some("/my/group")),
                Ok(given(Some("JSON"), Some("DEBUG"), Some("WARN"), Some("/my/group"))),
            ),
            (
                given(Some("JSON"), Some("DEBUG"), Some("WARN"), None),
                given(Some("Text"), None, None, None),
                Ok(given(Some("Text"), None, None, None)),
            ),
            (
                text.clone(),
                given(None, Some("DEBUG"), None, None),
                Err("ApplicationLogLevel and SystemLogLevel can only be set when LogFormat is JSON."),
            ),
            (
                text.clone(),
                given(Some("XML"), None, None, None),
                Err(
                    "1 validation error detected: Value 'XML' at 'loggingConfig.logFormat' failed to satisfy constraint: Member must satisfy enum value set: [JSON, Text]",
                ),
            ),
            (
                text,
                given(None, None, None, Some("bad group!")),
                Err(
                    r"1 validation error detected: Value 'bad group!' at 'loggingConfig.logGroup' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+",
                ),
            ),
        ];
        for (current, given, expected) in rows {
            assert_eq!(LoggingConfig::merge(&current, given).map_err(|e| e.message), expected.map_err(str::to_owned));
        }
    }
}
