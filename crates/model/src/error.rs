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

/// Collects what is wrong with a request the way Lambda reports it: every model-constraint violation
/// at once ("2 validation errors detected: …; …", in the order the members are checked), and only when
/// there is none, the first semantic error (`InvalidParameterValueException`).
#[derive(Debug, Default)]
pub struct Problems {
    constraints: Vec<String>,
    semantic: Option<ValidationError>,
}

const ONE_PREFIX: &str = "1 validation error detected: ";

impl Problems {
    /// The value when `result` is `Ok`; otherwise records its error and returns `None`.
    pub fn check<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(e);
                None
            }
        }
    }

    pub fn add(&mut self, e: ValidationError) {
        match e.kind {
            ValidationKind::Validation => {
                let part = e.message.strip_prefix(ONE_PREFIX).unwrap_or(&e.message).to_owned();
                self.constraints.push(part);
            }
            ValidationKind::InvalidParameterValue => {
                self.semantic.get_or_insert(e);
            }
        }
    }

    /// A required member that is missing: "Value null at 'role' failed to satisfy constraint: Member
    /// must not be null" (AWS writes `null` without quotes).
    pub fn missing(&mut self, field: &str) {
        self.constraints.push(format!("Value null at '{field}' failed to satisfy constraint: Member must not be null"));
    }

    pub fn finish(self) -> Result<(), ValidationError> {
        match self.constraints.len() {
            0 => self.semantic.map_or(Ok(()), Err),
            1 => Err(ValidationError {
                kind: ValidationKind::Validation,
                message: format!("{ONE_PREFIX}{}", self.constraints[0]),
            }),
            n => Err(ValidationError {
                kind: ValidationKind::Validation,
                message: format!("{n} validation errors detected: {}", self.constraints.join("; ")),
            }),
        }
    }
}

#[cfg(test)]
mod problems_tests {
    use super::*;

    #[test]
    fn counts_and_joins_like_aws() {
        let rows: &[(&[ValidationError], Result<(), &str>)] = &[
            (&[], Ok(())),
            (
                &[ValidationError::at_least("timeout", 0, 1)],
                Err(
                    "1 validation error detected: Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1",
                ),
            ),
            (
                &[ValidationError::at_most("memorySize", 10241, 10240), ValidationError::at_least("timeout", 0, 1)],
                Err(
                    "2 validation errors detected: Value '10241' at 'memorySize' failed to satisfy constraint: Member must have value less than or equal to 10240; Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1",
                ),
            ),
            (
                &[ValidationError { kind: ValidationKind::InvalidParameterValue, message: "semantic".into() }],
                Err("semantic"),
            ),
            (
                &[
                    ValidationError { kind: ValidationKind::InvalidParameterValue, message: "semantic".into() },
                    ValidationError::at_least("timeout", 0, 1),
                ],
                Err(
                    "1 validation error detected: Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1",
                ),
            ),
        ];
        for (errors, expected) in rows {
            let mut p = Problems::default();
            for e in *errors {
                p.add(e.clone());
            }
            assert_eq!(p.finish().map_err(|e| e.message), expected.map_err(str::to_owned));
        }
    }

    #[test]
    fn missing_members_say_null() {
        let mut p = Problems::default();
        p.missing("role");
        assert_eq!(
            p.finish().unwrap_err().message,
            "1 validation error detected: Value null at 'role' failed to satisfy constraint: Member must not be null"
        );
    }
}
