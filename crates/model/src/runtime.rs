//! Runtime identifiers. Nimbus runs `python3.x` and `nodejs*` on the host's interpreters through
//! bootstraps of its own, and `provided.*` by executing the zip's `bootstrap`.

use std::fmt;

use crate::error::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeFamily {
    Python,
    Node,
    Provided,
}

/// A runtime Nimbus can run. The minor/major number is kept so the runtime id round-trips exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// `python3.<minor>`
    Python {
        minor: u8,
    },
    /// `nodejs<major>.x`
    Node {
        major: u8,
    },
    ProvidedAl2,
    ProvidedAl2023,
}

const PYTHON_MINORS: std::ops::RangeInclusive<u8> = 9..=14;
const NODE_MAJORS: [u8; 4] = [18, 20, 22, 24];
/// Runtime ids AWS has retired for creating and updating functions.
const DEPRECATED: &[&str] = &[
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "nodejs",
    "nodejs4.3",
    "nodejs4.3-edge",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "provided",
    "go1.x",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "ruby2.5",
    "ruby2.7",
    "java8",
];
/// Runtime ids AWS offers that this server has no interpreter for.
const NOT_RUN_HERE: &[&str] =
    &["java8.al2", "java11", "java17", "java21", "java25", "dotnet8", "dotnet10", "ruby3.2", "ruby3.3", "ruby3.4"];

impl Runtime {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if let Some(minor) = s.strip_prefix("python3.").and_then(|m| m.parse::<u8>().ok())
            && PYTHON_MINORS.contains(&minor)
        {
            return Ok(Self::Python { minor });
        }
        if let Some(major) =
            s.strip_prefix("nodejs").and_then(|m| m.strip_suffix(".x")).and_then(|m| m.parse::<u8>().ok())
            && NODE_MAJORS.contains(&major)
        {
            return Ok(Self::Node { major });
        }
        match s {
            "provided.al2" => return Ok(Self::ProvidedAl2),
            "provided.al2023" => return Ok(Self::ProvidedAl2023),
            _ => {}
        }
        if DEPRECATED.contains(&s) {
            return Err(ValidationError::invalid(format!(
                "The runtime parameter of {s} is no longer supported for creating or updating AWS Lambda \
                 functions. We recommend you use a supported runtime while creating or updating functions."
            )));
        }
        if NOT_RUN_HERE.contains(&s) {
            return Err(ValidationError::invalid(format!(
                "The runtime parameter of {s} is not supported by this Nimbus server. Supported runtimes: {}.",
                Self::supported_ids().join(", ")
            )));
        }
        Err(ValidationError::constraint(
            "runtime",
            s,
            format!("Member must satisfy enum value set: [{}]", Self::supported_ids().join(", ")),
        ))
    }

    pub fn supported_ids() -> Vec<String> {
        let mut ids: Vec<String> = PYTHON_MINORS.map(|m| format!("python3.{m}")).collect();
        ids.extend(NODE_MAJORS.iter().map(|m| format!("nodejs{m}.x")));
        ids.extend(["provided.al2".to_owned(), "provided.al2023".to_owned()]);
        ids
    }

    pub fn family(self) -> RuntimeFamily {
        match self {
            Self::Python { .. } => RuntimeFamily::Python,
            Self::Node { .. } => RuntimeFamily::Node,
            Self::ProvidedAl2 | Self::ProvidedAl2023 => RuntimeFamily::Provided,
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Python { minor } => write!(f, "python3.{minor}"),
            Self::Node { major } => write!(f, "nodejs{major}.x"),
            Self::ProvidedAl2 => f.write_str("provided.al2"),
            Self::ProvidedAl2023 => f.write_str("provided.al2023"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_id_round_trips() {
        for id in Runtime::supported_ids() {
            assert_eq!(Runtime::parse(&id).unwrap().to_string(), id);
        }
    }

    #[test]
    fn retired_foreign_and_unknown_ids_are_refused() {
        assert!(Runtime::parse("python2.7").unwrap_err().message.contains("no longer supported"));
        assert!(Runtime::parse("java21").unwrap_err().message.contains("not supported by this Nimbus"));
        let unknown = Runtime::parse("cobol").unwrap_err();
        assert!(unknown.message.contains("enum value set"), "{}", unknown.message);
        assert!(Runtime::parse("python3.99").is_err());
        assert!(Runtime::parse("nodejs19.x").is_err());
    }
}
