//! Function names, qualifiers and the many ways AWS lets a caller name a function.

use std::fmt;

use crate::error::ValidationError;
use crate::limits::{ALIAS_CHARS_MAX, FUNCTION_NAME_CHARS_MAX, FUNCTION_REF_CHARS_MAX};

/// The pattern botocore's model gives for `FunctionName`, quoted in AWS's error messages.
/// botocore's `FunctionName` pattern as the model has it today (with the `eusc-` and ISO partitions).
const FUNCTION_REF_PATTERN: &str = r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?";

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// A bare function name: 1 to 64 of `[a-zA-Z0-9-_]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionName(String);

impl FunctionName {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() {
            return Err(ValidationError::too_short("functionName", s, 1));
        }
        if s.len() > FUNCTION_NAME_CHARS_MAX {
            return Err(ValidationError::too_long("functionName", s, FUNCTION_NAME_CHARS_MAX));
        }
        if !s.chars().all(is_name_char) {
            return Err(ValidationError::pattern("functionName", s, FUNCTION_REF_PATTERN));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A published version number (1, 2, ...). `$LATEST` is not a `Version`; see [`Qualifier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(u32);

impl Version {
    pub const FIRST: Version = Version(1);

    pub fn new(n: u32) -> Option<Self> {
        (n >= 1).then_some(Self(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What follows a function name after `:` or in `?Qualifier=`: `$LATEST`, a version, or an alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qualifier {
    Latest,
    Version(Version),
    Alias(String),
}

impl Qualifier {
    pub const LATEST: &'static str = "$LATEST";

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        const PATTERN: &str = r"(|[a-zA-Z0-9$_-]+)";
        if s == Self::LATEST {
            return Ok(Self::Latest);
        }
        if s.is_empty() {
            return Err(ValidationError::too_short("qualifier", s, 1));
        }
        if s.len() > ALIAS_CHARS_MAX {
            return Err(ValidationError::too_long("qualifier", s, ALIAS_CHARS_MAX));
        }
        if !s.chars().all(|c| is_name_char(c) || c == '$') {
            return Err(ValidationError::pattern("qualifier", s, PATTERN));
        }
        if s.chars().all(|c| c.is_ascii_digit()) {
            // Versions are numbers; "0" and numbers past u32 name no version that can exist.
            return match s.parse::<u32>().ok().and_then(Version::new) {
                Some(v) => Ok(Self::Version(v)),
                None => Err(ValidationError::invalid(format!("Invalid version: {s}"))),
            };
        }
        Ok(Self::Alias(s.to_owned()))
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str(Self::LATEST),
            Self::Version(v) => write!(f, "{v}"),
            Self::Alias(a) => f.write_str(a),
        }
    }
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::invalid(format!("Invalid account id: {s}; expected 12 digits")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A region name such as `us-east-1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(String);

impl Region {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && s.contains('-');
        if ok { Ok(Self(s.to_owned())) } else { Err(ValidationError::invalid(format!("Invalid region: {s}"))) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A function as a caller may name it: `my-function`, `my-function:v1`,
/// `123456789012:function:my-function[:v1]` or `arn:aws:lambda:us-east-1:123456789012:function:my-function[:v1]`.
/// The account and region, when given, are kept so the API can check that they are this server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: FunctionName,
    pub qualifier: Option<Qualifier>,
    pub account: Option<AccountId>,
    pub region: Option<Region>,
}

impl FunctionRef {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let pattern_error = || ValidationError::pattern("functionName", s, FUNCTION_REF_PATTERN);
        if s.is_empty() {
            return Err(ValidationError::too_short("functionName", s, 1));
        }
        if s.len() > FUNCTION_REF_CHARS_MAX {
            return Err(ValidationError::too_long("functionName", s, FUNCTION_REF_CHARS_MAX));
        }
        let parts: Vec<&str> = s.split(':').collect();
        let (region, account, rest): (Option<&str>, Option<&str>, &[&str]) = match parts.as_slice() {
            ["arn", partition, "lambda", region, account, "function", rest @ ..] if partition.starts_with("aws") => {
                (Some(*region), Some(*account), rest)
            }
            [account, "function", rest @ ..] => (None, Some(*account), rest),
            rest => (None, None, rest),
        };
        let (name, qualifier) = match rest {
            [name] => (*name, None),
            [name, qualifier] => (*name, Some(*qualifier)),
            _ => return Err(pattern_error()),
        };
        let name = FunctionName::parse(name)
            .map_err(|e| if name.len() > FUNCTION_NAME_CHARS_MAX { e } else { pattern_error() })?;
        Ok(Self {
            name,
            qualifier: qualifier.map(Qualifier::parse).transpose()?,
            account: account.map(AccountId::parse).transpose().map_err(|_| pattern_error())?,
            region: region.map(Region::parse).transpose().map_err(|_| pattern_error())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_every_form() {
        let plain = FunctionRef::parse("my-fn_1").unwrap();
        assert_eq!(plain.name.as_str(), "my-fn_1");
        assert_eq!(plain.qualifier, None);

        let aliased = FunctionRef::parse("my-fn:live").unwrap();
        assert_eq!(aliased.qualifier, Some(Qualifier::Alias("live".into())));

        let partial = FunctionRef::parse("123456789012:function:f:7").unwrap();
        assert_eq!(partial.account.unwrap().as_str(), "123456789012");
        assert_eq!(partial.qualifier, Some(Qualifier::Version(Version::new(7).unwrap())));

        let arn = FunctionRef::parse("arn:aws:lambda:eu-west-1:123456789012:function:f:$LATEST").unwrap();
        assert_eq!(arn.region.unwrap().as_str(), "eu-west-1");
        assert_eq!(arn.qualifier, Some(Qualifier::Latest));
    }

    #[test]
    fn bad_names_are_refused_with_aws_wording() {
        for bad in ["", "bad name!", "a:b:c:d", "arn:aws:lambda:x", "f:", &"x".repeat(65)] {
            let err = FunctionRef::parse(bad).unwrap_err();
            assert!(err.message.starts_with("1 validation error detected"), "{bad}: {}", err.message);
        }
        assert!(FunctionRef::parse(&"x".repeat(141)).unwrap_err().message.contains("length less than"));
    }

    #[test]
    fn qualifiers() {
        assert_eq!(Qualifier::parse("$LATEST").unwrap(), Qualifier::Latest);
        assert_eq!(Qualifier::parse("12").unwrap(), Qualifier::Version(Version::new(12).unwrap()));
        assert!(Qualifier::parse("0").is_err());
        assert!(Qualifier::parse("a b").is_err());
        assert_eq!(Qualifier::parse("prod-1").unwrap().to_string(), "prod-1");
    }
}
