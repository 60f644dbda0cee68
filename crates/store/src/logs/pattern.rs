//! The subset of CloudWatch Logs filter patterns that matches terms in unstructured messages: what
//! `aws logs filter-log-events --filter-pattern` and `aws logs tail --filter-pattern` are mostly used
//! with. Matching is case-sensitive, as on AWS.

use crate::error::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pattern {
    /// Every term in `include` appears and none in `exclude` does (`ERROR "timed out" -retry`).
    All { include: Vec<String>, exclude: Vec<String> },
    /// At least one term appears (`?ERROR ?WARN`).
    Any(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Include,
    Exclude,
    Optional,
}

impl Pattern {
    pub(super) fn parse(pattern: &str) -> Result<Pattern> {
        let invalid = |reason| StoreError::InvalidPattern { pattern: pattern.to_owned(), reason };
        let trimmed = pattern.trim();
        if trimmed.starts_with('{') {
            return Err(invalid("JSON filter patterns are not supported"));
        }
        if trimmed.starts_with('[') {
            return Err(invalid("space-delimited filter patterns are not supported"));
        }
        let mut terms: Vec<(Kind, String)> = Vec::new();
        let mut chars = trimmed.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            let kind = match c {
                '-' => Kind::Exclude,
                '?' => Kind::Optional,
                _ => Kind::Include,
            };
            if kind != Kind::Include {
                chars.next();
            }
            let mut term = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => term.extend(chars.next()),
                        c => term.push(c),
                    }
                }
                if !closed {
                    return Err(invalid("unterminated quoted phrase"));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    term.push(c);
                    chars.next();
                }
            }
            if term.is_empty() {
                return Err(invalid("empty term"));
            }
            terms.push((kind, term));
        }
        let optional = terms.iter().filter(|(kind, _)| *kind == Kind::Optional).count();
        if optional > 0 {
            if optional < terms.len() {
                return Err(invalid("?term alternatives cannot be mixed with other terms"));
            }
            return Ok(Pattern::Any(terms.into_iter().map(|(_, term)| term).collect()));
        }
        let (include, exclude): (Vec<_>, Vec<_>) = terms.into_iter().partition(|(kind, _)| *kind == Kind::Include);
        Ok(Pattern::All {
            include: include.into_iter().map(|(_, term)| term).collect(),
            exclude: exclude.into_iter().map(|(_, term)| term).collect(),
        })
    }

    pub(super) fn matches(&self, message: &str) -> bool {
        match self {
            Pattern::All { include, exclude } => {
                include.iter().all(|t| message.contains(t.as_str()))
                    && !exclude.iter().any(|t| message.contains(t.as_str()))
            }
            Pattern::Any(terms) => terms.iter().any(|t| message.contains(t.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, message: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(message)
    }

    #[test]
    fn terms_phrases_exclusions_and_alternatives() {
        assert!(m("", "anything"));
        assert!(m("   ", "anything"));
        assert!(m("ERROR", "an ERROR here"));
        assert!(!m("ERROR", "an error here"));
        assert!(m("ERROR db", "db: ERROR"));
        assert!(!m("ERROR db", "ERROR cache"));
        assert!(m("\"timed out\"", "Task timed out after 3.00 seconds"));
        assert!(!m("\"timed out\"", "timed, out"));
        assert!(m("\"say \\\"hi\\\"\"", "they say \"hi\""));
        assert!(m("ERROR -retry", "ERROR fatal"));
        assert!(!m("ERROR -retry", "ERROR will retry"));
        assert!(m("-\"health check\"", "GET /"));
        assert!(m("?ERROR ?WARN", "WARN disk"));
        assert!(!m("?ERROR ?WARN", "INFO ok"));
    }

    #[test]
    fn unsupported_forms_are_refused() {
        for bad in ["{ $.level = \"error\" }", "[ip, user]", "\"open", "?a b", "- x"] {
            assert!(matches!(Pattern::parse(bad), Err(StoreError::InvalidPattern { .. })), "{bad}");
        }
    }
}
