//! The subset of CloudWatch Logs filter patterns that matches terms in unstructured messages: what
//! `aws logs filter-log-events --filter-pattern` and `aws logs tail --filter-pattern` are mostly used
//! with. Matching is case-sensitive, as on AWS.
//!
//! The pattern comes from any client (a function's session credential included), so its cost is
//! bounded: at most [`LOGS_FILTER_PATTERN_CHARS_MAX`] characters (AWS's limit), and every term is
//! searched for in one pass over a message (an Aho-Corasick automaton), so a pattern of hundreds of
//! terms costs what one does: the work of a FilterLogEvents call is the bytes it scans, which its
//! caller bounds.

use aho_corasick::AhoCorasick;
use nimbus_model::limits::LOGS_FILTER_PATTERN_CHARS_MAX;

use crate::error::{Result, StoreError};

/// A parsed pattern and the automaton that finds all its terms at once.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    terms: Terms,
    /// Over `Terms::All`'s `include` then `exclude`, or `Terms::Any`'s terms; `None` without terms.
    automaton: Option<AhoCorasick>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Terms {
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
        if pattern.chars().count() > LOGS_FILTER_PATTERN_CHARS_MAX {
            return Err(StoreError::InvalidPattern {
                pattern: pattern.chars().take(64).collect::<String>() + "…",
                reason: "longer than 1024 characters",
            });
        }
        let terms = Self::parse_terms(pattern, invalid)?;
        let needles: Vec<&str> = match &terms {
            Terms::All { include, exclude } => include.iter().chain(exclude).map(String::as_str).collect(),
            Terms::Any(any) => any.iter().map(String::as_str).collect(),
        };
        let automaton = if needles.is_empty() {
            None
        } else {
            // Standard match semantics, so that overlapping matches can report every term present.
            Some(AhoCorasick::new(&needles).map_err(|_| invalid("too complex"))?)
        };
        Ok(Pattern { terms, automaton })
    }

    fn parse_terms(pattern: &str, invalid: impl Fn(&'static str) -> StoreError) -> Result<Terms> {
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
            return Ok(Terms::Any(terms.into_iter().map(|(_, term)| term).collect()));
        }
        let (include, exclude): (Vec<_>, Vec<_>) = terms.into_iter().partition(|(kind, _)| *kind == Kind::Include);
        Ok(Terms::All {
            include: include.into_iter().map(|(_, term)| term).collect(),
            exclude: exclude.into_iter().map(|(_, term)| term).collect(),
        })
    }

    pub(super) fn matches(&self, message: &str) -> bool {
        let Some(automaton) = &self.automaton else { return true };
        match &self.terms {
            Terms::Any(_) => automaton.is_match(message),
            Terms::All { include, .. } => {
                // Which include terms were seen; any exclude term ends it. One pass, whatever the count.
                let mut seen = vec![false; include.len()];
                let mut missing = include.len();
                for m in automaton.find_overlapping_iter(message) {
                    let i = m.pattern().as_usize();
                    if i >= include.len() {
                        return false;
                    }
                    if !seen[i] {
                        seen[i] = true;
                        missing -= 1;
                    }
                }
                missing == 0
            }
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

    #[test]
    fn patterns_are_bounded_at_1024_characters_and_many_terms_cost_one_pass() {
        let terms: Vec<String> = (0..).map(|i| format!("?zq{i}")).take(400).collect();
        let mut pattern = terms.join(" ");
        pattern.truncate(1024);
        let pattern = pattern.trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned();
        let p = Pattern::parse(&pattern).unwrap();
        assert!(!p.matches(&"x".repeat(1 << 16)));
        assert!(p.matches("a zq17 b"));
        let long = "é".repeat(1025);
        assert!(matches!(Pattern::parse(&long), Err(StoreError::InvalidPattern { .. })));
        assert!(Pattern::parse(&"é".repeat(1024)).is_ok());
        // Repeated and overlapping terms are each found.
        assert!(m("ERROR ERROR", "an ERROR"));
        assert!(!m("a -a", "a"));
        assert!(m("abc bcd", "xabcdx"));
        assert!(!m("abc bcd -cd", "xabcdx"));
    }
}
