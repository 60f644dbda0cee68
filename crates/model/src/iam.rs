//! Validated IAM and STS names, as botocore's `iam` and `sts` models constrain them: entity names
//! (`[\w+=,.@-]+` with a per-kind length), paths, role session names, tags, descriptions. Each type
//! can only hold a value AWS would accept, so the store and the server never re-check.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::ValidationError;

/// `[\w+=,.@-]`: the characters of IAM entity names and role session names.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

const NAME_PATTERN: &str = r"[\w+=,.@-]+";

macro_rules! iam_name {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, ValidationError> {
                if s.chars().count() < $min {
                    return Err(ValidationError::too_short($field, s, $min));
                }
                if s.chars().count() > $max {
                    return Err(ValidationError::too_long($field, s, $max));
                }
                if !s.chars().all(name_char) {
                    return Err(ValidationError::pattern($field, s, NAME_PATTERN));
                }
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

iam_name!(
    /// `UserName`: 1-64 of `[\w+=,.@-]`.
    UserName, "userName", 1, 64
);
iam_name!(
    /// `GroupName`: 1-128 of `[\w+=,.@-]`.
    GroupName, "groupName", 1, 128
);
iam_name!(
    /// `RoleName`: 1-64 of `[\w+=,.@-]`.
    RoleName, "roleName", 1, 64
);
iam_name!(
    /// `PolicyName` (managed and inline): 1-128 of `[\w+=,.@-]`.
    PolicyName, "policyName", 1, 128
);
iam_name!(
    /// STS `RoleSessionName`: 2-64 of `[\w+=,.@-]`.
    RoleSessionName, "roleSessionName", 2, 64
);

/// An IAM path: `/` or `/…/` of printable ASCII, at most 512 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IamPath(String);

impl IamPath {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        const PATTERN: &str = r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)";
        if s.is_empty() {
            return Err(ValidationError::too_short("path", s, 1));
        }
        if s.len() > 512 {
            return Err(ValidationError::too_long("path", s, 512));
        }
        let printable = s.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if !(printable && s.starts_with('/') && s.ends_with('/')) {
            return Err(ValidationError::pattern("path", s, PATTERN));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn root() -> Self {
        Self("/".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for IamPath {
    fn default() -> Self {
        Self::root()
    }
}

impl fmt::Display for IamPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role's `MaxSessionDuration`: 3600-43200 seconds (default 3600).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxSessionDuration(u32);

impl MaxSessionDuration {
    pub const MIN: u32 = 3600;
    pub const MAX: u32 = 43200;

    pub fn new(secs: i64) -> Result<Self, ValidationError> {
        if secs < i64::from(Self::MIN) {
            return Err(ValidationError::at_least("maxSessionDuration", secs, Self::MIN));
        }
        if secs > i64::from(Self::MAX) {
            return Err(ValidationError::at_most("maxSessionDuration", secs, Self::MAX));
        }
        Ok(Self(secs as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for MaxSessionDuration {
    fn default() -> Self {
        Self(Self::MIN)
    }
}

/// IAM tags (users, roles, policies): at most 50; keys 1-128 and values 0-256 of
/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`; keys are unique ignoring case, as IAM compares them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IamTags(BTreeMap<String, String>);

impl IamTags {
    pub const MAX: usize = 50;

    fn tag_char(c: char) -> bool {
        c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
    }

    fn check_key(key: &str) -> Result<(), ValidationError> {
        const PATTERN: &str = r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+";
        if key.is_empty() {
            return Err(ValidationError::too_short("tags.member.key", key, 1));
        }
        if key.chars().count() > 128 {
            return Err(ValidationError::too_long("tags.member.key", key, 128));
        }
        if !key.chars().all(Self::tag_char) {
            return Err(ValidationError::pattern("tags.member.key", key, PATTERN));
        }
        Ok(())
    }

    /// The tags of a request, in the order given; a key twice (ignoring case) is refused as IAM does.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, ValidationError> {
        let mut tags = BTreeMap::new();
        for (key, value) in pairs {
            Self::check_key(&key)?;
            if value.chars().count() > 256 {
                return Err(ValidationError::too_long("tags.member.value", &value, 256));
            }
            if !value.chars().all(Self::tag_char) {
                return Err(ValidationError::pattern("tags.member.value", &value, r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*"));
            }
            if tags.keys().any(|k: &String| k.eq_ignore_ascii_case(&key)) {
                return Err(ValidationError::invalid(
                    "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
                ));
            }
            tags.insert(key, value);
        }
        if tags.len() > Self::MAX {
            return Err(ValidationError::at_most("tags", tags.len(), Self::MAX));
        }
        Ok(Self(tags))
    }

    /// These tags with `other`'s added (a key present in both, ignoring case, takes `other`'s value).
    pub fn merged(&self, other: &IamTags) -> Result<IamTags, ValidationError> {
        let mut tags = self.0.clone();
        for (key, value) in &other.0 {
            tags.retain(|k, _| !k.eq_ignore_ascii_case(key));
            tags.insert(key.clone(), value.clone());
        }
        if tags.len() > Self::MAX {
            return Err(ValidationError::invalid(format!("Cannot exceed quota for TagsPerEntity: {}.", Self::MAX)));
        }
        Ok(IamTags(tags))
    }

    /// These tags without `keys` (compared ignoring case).
    pub fn without(&self, keys: &[String]) -> IamTags {
        let mut tags = self.0.clone();
        tags.retain(|k, _| !keys.iter().any(|r| r.eq_ignore_ascii_case(k)));
        IamTags(tags)
    }

    pub fn check_keys(keys: &[String]) -> Result<(), ValidationError> {
        keys.iter().try_for_each(|k| Self::check_key(k))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// From a map the store wrote; re-checked, so a damaged row is reported rather than trusted.
    pub fn from_map(map: BTreeMap<String, String>) -> Result<Self, ValidationError> {
        Self::parse(map.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_iam_model() {
        for (input, ok) in [("bob", true), ("a+b=c,d.e@f-g_h", true), ("", false), ("a b", false), ("é", false)] {
            assert_eq!(UserName::parse(input).is_ok(), ok, "{input:?}");
        }
        assert!(UserName::parse(&"a".repeat(64)).is_ok());
        assert!(UserName::parse(&"a".repeat(65)).is_err());
        assert!(GroupName::parse(&"a".repeat(128)).is_ok());
        assert!(RoleSessionName::parse("a").is_err());
        let err = UserName::parse("a b").unwrap_err();
        assert_eq!(
            err.message,
            r"1 validation error detected: Value 'a b' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+"
        );
    }

    #[test]
    fn paths_are_slash_delimited_printable_ascii() {
        for (input, ok) in [("/", true), ("/a/b/", true), ("a/", false), ("/a", false), ("/a b/", false), ("", false)] {
            assert_eq!(IamPath::parse(input).is_ok(), ok, "{input:?}");
        }
    }

    #[test]
    fn session_duration_and_tags_are_bounded() {
        assert!(MaxSessionDuration::new(3599).is_err());
        assert!(MaxSessionDuration::new(43200).is_ok());
        assert!(MaxSessionDuration::new(43201).is_err());
        assert!(IamTags::parse(vec![("k".into(), "v".into()), ("K".into(), "w".into())]).is_err());
        let many = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(IamTags::parse(many).is_err());
        let tags = IamTags::parse(vec![("Team".into(), "a".into())]).unwrap();
        let merged = tags.merged(&IamTags::parse(vec![("team".into(), "b".into())]).unwrap()).unwrap();
        assert_eq!(merged.iter().collect::<Vec<_>>(), vec![("team", "b")]);
        assert!(merged.without(&["TEAM".into()]).is_empty());
    }
}
