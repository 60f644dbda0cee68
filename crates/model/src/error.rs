use std::fmt;

/// Which AWS error a rejected value becomes. Lambda answers constraint violations from its API model
/// (lengths, ranges, patterns, enums) with `ValidationException`, and semantic ones (deprecated runtime,
/// environment over 4 KB) with `InvalidParameterValueException`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationKind {
    Validation,
    InvalidParameterValue,
}

/// A value the API refused, with the message AWS would send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub kind: ValidationKind,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ValidationError {
    /// "1 validation error detected: Value '0' at 'timeout' failed to satisfy constraint: Member must
    /// have value greater than or equal to 1", the wording of AWS's model-constraint errors.
    pub fn constraint(field: &str, value: impl fmt::Display, constraint: impl fmt::Display) -> Self {
        Self {
            kind: ValidationKind::Validation,
            message: format!(
                "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
            ),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self { kind: ValidationKind::InvalidParameterValue, message: message.into() }
    }

    pub(crate) fn at_least(field: &str, value: impl fmt::Display, min: impl fmt::Display) -> Self {
        Self::constraint(field, value, format!("Member must have value greater than or equal to {min}"))
    }

    pub(crate) fn at_most(field: &str, value: impl fmt::Display, max: impl fmt::Display) -> Self {
        Self::constraint(field, value, format!("Member must have value less than or equal to {max}"))
    }

    pub(crate) fn too_long(field: &str, value: &str, max: usize) -> Self {
        Self::constraint(field, value, format!("Member must have length less than or equal to {max}"))
    }

    pub(crate) fn too_short(field: &str, value: &str, min: usize) -> Self {
        Self::constraint(field, value, format!("Member must have length greater than or equal to {min}"))
    }

    pub(crate) fn pattern(field: &str, value: &str, pattern: &str) -> Self {
        Self::constraint(field, value, format!("Member must satisfy regular expression pattern: {pattern}"))
    }
}
