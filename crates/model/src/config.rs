//! The validated members of a function's configuration.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::ValidationError;
use crate::limits::*;

macro_rules! bounded_u32 {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:expr, $max:expr, $default:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl $name {
            pub const MIN: u32 = $min;
            pub const MAX: u32 = $max;

            pub fn new(value: i64) -> Result<Self, ValidationError> {
                if value < i64::from(Self::MIN) {
                    Err(ValidationError::at_least($field, value, Self::MIN))
                } else if value > i64::from(Self::MAX) {
                    Err(ValidationError::at_most($field, value, Self::MAX))
                } else {
                    Ok(Self(value as u32))
                }
            }

            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self($default)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

bounded_u32!(
    /// `MemorySize`, which also sets the CPU share.
    MemoryMb, "memorySize", MEMORY_MB_MIN, MEMORY_MB_MAX, MEMORY_MB_DEFAULT
);
bounded_u32!(
    /// `Timeout`, the most one invocation may run.
    TimeoutSecs, "timeout", TIMEOUT_SECS_MIN, TIMEOUT_SECS_MAX, TIMEOUT_SECS_DEFAULT
);
bounded_u32!(
    /// `EphemeralStorage.Size`, the size of `/tmp`.
    EphemeralStorageMb, "ephemeralStorage.size", EPHEMERAL_STORAGE_MB_MIN, EPHEMERAL_STORAGE_MB_MAX,
    EPHEMERAL_STORAGE_MB_MIN
);

impl TimeoutSecs {
    pub fn as_millis(self) -> u64 {
        u64::from(self.0) * 1000
    }
}

/// `Description`, at most 256 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.chars().count() > DESCRIPTION_CHARS_MAX {
            return Err(ValidationError::too_long("description", s, DESCRIPTION_CHARS_MAX));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `Handler`: up to 128 characters with no whitespace, e.g. `app.handler` or `src/index.main`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler(String);

impl Handler {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.len() > HANDLER_CHARS_MAX {
            return Err(ValidationError::too_long("handler", s, HANDLER_CHARS_MAX));
        }
        if s.is_empty() || s.chars().any(char::is_whitespace) {
            return Err(ValidationError::pattern("handler", s, r"[^\s]+"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `Role`: an IAM role ARN, `arn:aws:iam::123456789012:role/name`. Roles are recorded, not yet enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn(String);

impl RoleArn {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        const PATTERN: &str = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+";
        let valid = (|| {
            let rest = s.strip_prefix("arn:")?;
            let (partition, rest) = rest.split_once(':')?;
            if !(partition.is_empty() || partition.starts_with("aws")) {
                return None;
            }
            let rest = rest.strip_prefix("iam::")?;
            let (account, rest) = rest.split_once(':')?;
            let path = rest.strip_prefix("role")?;
            let path = path.strip_prefix('/').unwrap_or(path);
            let ok_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c);
            (account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !path.is_empty()
                && path.chars().all(ok_char))
            .then_some(())
        })();
        match valid {
            Some(()) => Ok(Self(s.to_owned())),
            None => Err(ValidationError::pattern("role", s, PATTERN)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The keys Lambda sets itself; a function may not override them.
const RESERVED_ENV_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// `Environment.Variables`: keys like `[a-zA-Z]([a-zA-Z0-9_])+`, none reserved, 4 KB in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvVars(BTreeMap<String, String>);

impl EnvVars {
    pub fn parse(vars: BTreeMap<String, String>) -> Result<Self, ValidationError> {
        for key in vars.keys() {
            let mut chars = key.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && key.len() >= 2
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ValidationError::constraint(
                    "environment.variables",
                    key,
                    "Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+",
                ));
            }
        }
        // A value reaches the function through execve(2), whose strings end at the first NUL: one inside
        // a value could never be passed on, and every invocation would fail. Refused here, where the
        // configuration is accepted, with the key named (never the value: AWS treats values as secrets).
        let mut with_nul: Vec<&str> = vars.iter().filter(|(_, v)| v.contains('\0')).map(|(k, _)| k.as_str()).collect();
        if !with_nul.is_empty() {
            with_nul.sort_unstable();
            return Err(ValidationError::invalid(format!(
                "Lambda was unable to configure your environment variables because the environment \
                 variables you have provided contain a null character in the value of: {}",
                with_nul.join(", ")
            )));
        }
        let reserved: Vec<&str> = vars.keys().map(String::as_str).filter(|k| RESERVED_ENV_KEYS.contains(k)).collect();
        if !reserved.is_empty() {
            return Err(ValidationError::invalid(format!(
                "Lambda was unable to configure your environment variables because the environment \
                 variables you have provided contains reserved keys that are currently not supported for \
                 modification. Reserved keys used in this request: {}",
                reserved.join(", ")
            )));
        }
        // AWS measures the variables as the JSON object it stores, and quotes that string back.
        let measured = serde_json::to_string(&vars).unwrap_or_default();
        if measured.len() > ENV_VARS_BYTES_MAX {
            return Err(ValidationError::invalid(format!(
                "Lambda was unable to configure your environment variables because the environment \
                 variables you have provided exceeded the 4KB limit. String measured: {measured}"
            )));
        }
        Ok(Self(vars))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One tag key: 1 to 128 characters, not starting with the reserved `aws:` prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagKey(String);

impl TagKey {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() {
            return Err(ValidationError::too_short("tagKey", s, 1));
        }
        if s.chars().count() > TAG_KEY_CHARS_MAX {
            return Err(ValidationError::too_long("tagKey", s, TAG_KEY_CHARS_MAX));
        }
        if s.to_ascii_lowercase().starts_with("aws:") {
            return Err(ValidationError::invalid(format!("Tag keys prefixed with 'aws:' are reserved: {s}")));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A resource's tags: at most 50, values up to 256 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(BTreeMap<TagKey, String>);

impl Tags {
    pub fn parse(tags: BTreeMap<String, String>) -> Result<Self, ValidationError> {
        let mut out = BTreeMap::new();
        for (k, v) in tags {
            if v.chars().count() > TAG_VALUE_CHARS_MAX {
                return Err(ValidationError::too_long("tagValue", &v, TAG_VALUE_CHARS_MAX));
            }
            if k == NETWORK_TAG {
                NetworkAccess::parse(&v)?;
            }
            out.insert(TagKey::parse(&k)?, v);
        }
        let tags = Self(out);
        tags.check_count()?;
        Ok(tags)
    }

    fn check_count(&self) -> Result<(), ValidationError> {
        if self.0.len() > TAGS_PER_RESOURCE_MAX {
            return Err(ValidationError::invalid(format!(
                "Number of tags exceeds resource tag limit of {TAGS_PER_RESOURCE_MAX}."
            )));
        }
        Ok(())
    }

    /// Adds or overwrites `other`'s tags, refusing a result over the per-resource limit.
    pub fn merged(&self, other: &Tags) -> Result<Tags, ValidationError> {
        let mut out = self.0.clone();
        out.extend(other.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        let tags = Tags(out);
        tags.check_count()?;
        Ok(tags)
    }

    /// What the reserved `nimbus:network` tag asks for (absent: the outside network, as on Lambda).
    pub fn network_access(&self) -> NetworkAccess {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == NETWORK_TAG)
            .and_then(|(_, v)| NetworkAccess::parse(v).ok())
            .unwrap_or_default()
    }

    pub fn without(&self, keys: &[TagKey]) -> Tags {
        Tags(self.0.iter().filter(|(k, _)| !keys.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The reserved tag that carries a function's [`NetworkAccess`]. Lambda has no such switch; a tag is
/// something every AWS client can already set (`aws lambda tag-resource`), and it belongs to the
/// function, so every version of it follows the one setting.
pub const NETWORK_TAG: &str = "nimbus:network";

/// Which network a function's environments reach besides their own loopback (their Runtime API and
/// Nimbus's API are always there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NetworkAccess {
    /// The outside network, as Lambda functions have (tag value `outside`, or no tag).
    #[default]
    Outside,
    /// Loopback only (tag value `none`).
    LoopbackOnly,
}

impl NetworkAccess {
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        match value {
            "outside" => Ok(Self::Outside),
            "none" => Ok(Self::LoopbackOnly),
            other => Err(ValidationError::invalid(format!(
                "Invalid value '{other}' for the tag {NETWORK_TAG}: it must be 'none' (loopback only) or 'outside'."
            ))),
        }
    }
}

/// `Architectures`: exactly one of `x86_64` (the default) and `arm64`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Architecture {
    #[default]
    X86_64,
    Arm64,
}

impl Architecture {
    pub fn parse_list(list: &[String]) -> Result<Self, ValidationError> {
        match list {
            [] => Ok(Self::default()),
            [one] => match one.as_str() {
                "x86_64" => Ok(Self::X86_64),
                "arm64" => Ok(Self::Arm64),
                other => Err(ValidationError::constraint(
                    "architectures",
                    format!("[{other}]"),
                    "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]",
                )),
            },
            _ => Err(ValidationError::constraint(
                "architectures",
                format!("[{}]", list.join(", ")),
                "Member must have length less than or equal to 1",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_use_aws_wording() {
        assert_eq!(MemoryMb::new(128).unwrap().get(), 128);
        assert!(MemoryMb::new(127).unwrap_err().message.contains("greater than or equal to 128"));
        assert!(MemoryMb::new(10241).unwrap_err().message.contains("less than or equal to 10240"));
        assert!(TimeoutSecs::new(0).is_err());
        assert!(TimeoutSecs::new(901).is_err());
        assert_eq!(TimeoutSecs::default().get(), 3);
        assert!(EphemeralStorageMb::new(511).is_err());
    }

    #[test]
    fn env_vars_limit_is_measured_as_json() {
        let mut vars = BTreeMap::new();
        vars.insert("BIG".to_owned(), "x".repeat(4096 - 10));
        assert!(EnvVars::parse(vars.clone()).is_ok());
        vars.insert("BIG".to_owned(), "x".repeat(4096));
        let err = EnvVars::parse(vars).unwrap_err();
        assert!(err.message.contains("exceeded the 4KB limit"));

        let mut nul = BTreeMap::new();
        nul.insert("GOOD".to_owned(), "fine".to_owned());
        nul.insert("BAD".to_owned(), "a\0b".to_owned());
        let err = EnvVars::parse(nul).unwrap_err();
        assert_eq!(err.kind, crate::ValidationKind::InvalidParameterValue);
        assert!(err.message.ends_with("null character in the value of: BAD"), "{}", err.message);
        assert!(!err.message.contains("a\0b"), "the value is never quoted back");

        let mut reserved = BTreeMap::new();
        reserved.insert("AWS_REGION".to_owned(), "x".to_owned());
        assert!(EnvVars::parse(reserved).unwrap_err().message.contains("reserved keys"));
    }

    #[test]
    fn roles_and_handlers() {
        assert!(RoleArn::parse("arn:aws:iam::000000000000:role/x").is_ok());
        assert!(RoleArn::parse("arn:aws:iam::000000000000:role/service-role/my.role").is_ok());
        assert!(RoleArn::parse("role").is_err());
        assert!(Handler::parse("app.handler").is_ok());
        assert!(Handler::parse("app handler").is_err());
    }

    #[test]
    fn tags() {
        let mut t = BTreeMap::new();
        t.insert("aws:x".to_owned(), "v".to_owned());
        assert!(Tags::parse(t).is_err());
        let many: BTreeMap<_, _> = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(Tags::parse(many).is_err());
    }

    #[test]
    fn the_network_tag_is_checked_and_read() {
        let tags = |v: &str| Tags::parse(BTreeMap::from([(NETWORK_TAG.to_owned(), v.to_owned())]));
        assert_eq!(Tags::default().network_access(), NetworkAccess::Outside);
        assert_eq!(tags("none").unwrap().network_access(), NetworkAccess::LoopbackOnly);
        assert_eq!(tags("outside").unwrap().network_access(), NetworkAccess::Outside);
        for bad in ["None", "off", ""] {
            let err = tags(bad).unwrap_err();
            assert_eq!(err.kind, crate::ValidationKind::InvalidParameterValue);
            assert!(err.message.contains(NETWORK_TAG), "{}", err.message);
        }
        let merged = tags("none").unwrap().merged(&tags("outside").unwrap()).unwrap();
        assert_eq!(merged.network_access(), NetworkAccess::Outside);
        let removed = tags("none").unwrap().without(&[TagKey::parse(NETWORK_TAG).unwrap()]);
        assert_eq!(removed.network_access(), NetworkAccess::Outside);
    }
}
