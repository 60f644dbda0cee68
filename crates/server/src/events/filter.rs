//! Lambda's event filter patterns (the EventBridge pattern language), for `FilterCriteria`.
//!
//! A pattern is a JSON object whose keys follow the event's structure. A leaf is an array of matchers,
//! and the field matches when any of them does (when the event's field is an array, when any of its
//! elements does). Matchers: a literal (string, number, boolean, null), `{"prefix": s}`, `{"suffix": s}`
//! (either may hold `{"equals-ignore-case": s}`), `{"equals-ignore-case": s}`, `{"wildcard": "a*b"}`,
//! `{"anything-but": literal | [literals] | {"prefix"|"suffix"|"equals-ignore-case": …}}`,
//! `{"numeric": [">", 0, "<=", 5]}`, `{"exists": bool}`. `"$or": [pattern, …]` matches when any of its
//! patterns does. Every key of a pattern must match. A mapping's filters are alternatives: a record
//! passes when any filter matches it.

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid filter pattern definition: {0}")]
pub struct FilterError(pub String);

/// A validated pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern(Map<String, Value>);

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let value: Value = serde_json::from_str(text).map_err(|e| FilterError(format!("not JSON ({e})")))?;
        let Value::Object(map) = value else { return Err(FilterError("a pattern must be a JSON object".into())) };
        check_object(&map)?;
        Ok(Self(map))
    }

    pub fn matches(&self, event: &Value) -> bool {
        match_object(&self.0, Some(event))
    }
}

/// Whether `event` passes a mapping's filters (no filters: everything passes).
pub fn passes(filters: &[Pattern], event: &Value) -> bool {
    filters.is_empty() || filters.iter().any(|p| p.matches(event))
}

fn check_object(map: &Map<String, Value>) -> Result<(), FilterError> {
    for (key, value) in map {
        match (key.as_str(), value) {
            ("$or", Value::Array(alternatives)) if alternatives.len() >= 2 => {
                for alt in alternatives {
                    let Value::Object(m) = alt else { return Err(FilterError("$or takes objects".into())) };
                    check_object(m)?;
                }
            }
            ("$or", _) => return Err(FilterError("$or takes an array of at least two patterns".into())),
            (_, Value::Object(m)) => check_object(m)?,
            (_, Value::Array(matchers)) => {
                if matchers.is_empty() {
                    return Err(FilterError(format!("empty array at {key}")));
                }
                for m in matchers {
                    check_matcher(m)?;
                }
            }
            _ => return Err(FilterError(format!("the value of {key} must be an object or an array"))),
        }
    }
    Ok(())
}

fn check_matcher(m: &Value) -> Result<(), FilterError> {
    let Value::Object(obj) = m else { return Ok(()) };
    if obj.len() != 1 {
        return Err(FilterError("a matcher object has exactly one key".into()));
    }
    let (op, arg) = obj.iter().next().ok_or_else(|| FilterError("empty matcher".into()))?;
    let ok = match op.as_str() {
        "prefix" | "suffix" => arg.is_string() || is_ignore_case(arg),
        "equals-ignore-case" | "wildcard" => arg.is_string(),
        "exists" => arg.is_boolean(),
        "anything-but" => match arg {
            Value::Array(list) => list.iter().all(|v| v.is_string() || v.is_number()),
            Value::String(_) | Value::Number(_) => true,
            Value::Object(inner) => {
                inner.len() == 1
                    && inner.iter().all(|(k, v)| match k.as_str() {
                        "prefix" | "suffix" => v.is_string(),
                        "equals-ignore-case" => {
                            v.is_string() || v.as_array().is_some_and(|l| l.iter().all(Value::is_string))
                        }
                        _ => false,
                    })
            }
            _ => false,
        },
        "numeric" => check_numeric(arg),
        _ => false,
    };
    if ok { Ok(()) } else { Err(FilterError(format!("unsupported matcher {m}"))) }
}

fn is_ignore_case(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.len() == 1 && o.get("equals-ignore-case").is_some_and(Value::is_string))
}

fn check_numeric(arg: &Value) -> bool {
    let Value::Array(parts) = arg else { return false };
    if parts.is_empty() || parts.len() % 2 != 0 || parts.len() > 4 {
        return false;
    }
    parts.chunks(2).all(|c| matches!(c[0].as_str(), Some("<" | "<=" | "=" | ">" | ">=")) && c[1].is_number())
}

fn match_object(pattern: &Map<String, Value>, event: Option<&Value>) -> bool {
    pattern.iter().all(|(key, p)| {
        if key == "$or" {
            return p
                .as_array()
                .is_some_and(|alts| alts.iter().any(|alt| alt.as_object().is_some_and(|m| match_object(m, event))));
        }
        let field = event.and_then(|e| e.get(key));
        match p {
            Value::Object(sub) => match field {
                Some(Value::Array(items)) => items.iter().any(|item| match_object(sub, Some(item))),
                other => match_object(sub, other),
            },
            Value::Array(matchers) => matchers.iter().any(|m| match_one(m, field)),
            _ => false,
        }
    })
}

fn match_one(m: &Value, field: Option<&Value>) -> bool {
    if let Some(exists) = m.as_object().and_then(|o| o.get("exists")).and_then(Value::as_bool) {
        let present = field.is_some_and(|f| !f.is_null() && !matches!(f, Value::Array(a) if a.is_empty()));
        return present == exists;
    }
    match field {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|v| match_value(m, v)),
        Some(v) => match_value(m, v),
    }
}

fn literal_eq(literal: &Value, v: &Value) -> bool {
    match (literal, v) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

fn string_test(arg: &Value, v: &Value, test: impl Fn(&str, &str) -> bool) -> bool {
    let Some(s) = v.as_str() else { return false };
    match arg {
        Value::String(p) => test(s, p),
        Value::Object(o) => o
            .get("equals-ignore-case")
            .and_then(Value::as_str)
            .is_some_and(|p| test(&s.to_lowercase(), &p.to_lowercase())),
        _ => false,
    }
}

fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

fn numeric(parts: &[Value], v: &Value) -> bool {
    let Some(x) = v.as_f64() else { return false };
    parts.chunks(2).all(|c| {
        let Some(n) = c.get(1).and_then(Value::as_f64) else { return false };
        match c[0].as_str() {
            Some("<") => x < n,
            Some("<=") => x <= n,
            Some("=") => x == n,
            Some(">") => x > n,
            Some(">=") => x >= n,
            _ => false,
        }
    })
}

fn match_value(m: &Value, v: &Value) -> bool {
    let Value::Object(obj) = m else { return literal_eq(m, v) };
    let Some((op, arg)) = obj.iter().next() else { return false };
    match op.as_str() {
        "prefix" => string_test(arg, v, |s, p| s.starts_with(p)),
        "suffix" => string_test(arg, v, |s, p| s.ends_with(p)),
        "equals-ignore-case" => v.as_str().zip(arg.as_str()).is_some_and(|(s, p)| s.to_lowercase() == p.to_lowercase()),
        "wildcard" => v.as_str().zip(arg.as_str()).is_some_and(|(s, p)| wildcard(p, s)),
        "numeric" => arg.as_array().is_some_and(|parts| numeric(parts, v)),
        "anything-but" => match arg {
            Value::Array(list) => !list.iter().any(|l| literal_eq(l, v)),
            Value::Object(inner) => match inner.iter().next() {
                Some((k, a)) if k == "prefix" => v.as_str().zip(a.as_str()).is_some_and(|(s, p)| !s.starts_with(p)),
                Some((k, a)) if k == "suffix" => v.as_str().zip(a.as_str()).is_some_and(|(s, p)| !s.ends_with(p)),
                Some((k, a)) if k == "equals-ignore-case" => {
                    let Some(s) = v.as_str() else { return false };
                    let s = s.to_lowercase();
                    match a {
                        Value::String(p) => s != p.to_lowercase(),
                        Value::Array(l) => !l.iter().filter_map(Value::as_str).any(|p| s == p.to_lowercase()),
                        _ => false,
                    }
                }
                _ => false,
            },
            literal => !literal_eq(literal, v),
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(pattern: &str, event: Value) -> bool {
        Pattern::parse(pattern).unwrap().matches(&event)
    }

    #[test]
    fn literals_prefix_suffix_and_nesting() {
        let ev = json!({"body": {"kind": "order", "n": 5, "tags": ["a", "b"], "name": "Photo.PNG"}});
        assert!(m(r#"{"body": {"kind": ["order"]}}"#, ev.clone()));
        assert!(!m(r#"{"body": {"kind": ["refund"]}}"#, ev.clone()));
        assert!(m(r#"{"body": {"kind": [{"prefix": "ord"}]}}"#, ev.clone()));
        assert!(m(r#"{"body": {"name": [{"suffix": {"equals-ignore-case": ".png"}}]}}"#, ev.clone()));
        assert!(m(r#"{"body": {"tags": ["b"]}}"#, ev.clone()));
        assert!(m(r#"{"body": {"n": [5.0]}}"#, ev.clone()));
        assert!(m(r#"{"body": {"name": [{"wildcard": "*.PNG"}]}}"#, ev.clone()));
        assert!(!m(r#"{"body": {"name": [{"wildcard": "x*.PNG"}]}}"#, ev));
    }

    #[test]
    fn numeric_anything_but_exists_or() {
        let ev = json!({"body": {"n": 5, "kind": "order"}});
        assert!(m(r#"{"body": {"n": [{"numeric": [">", 0, "<=", 5]}]}}"#, ev.clone()));
        assert!(!m(r#"{"body": {"n": [{"numeric": ["<", 5]}]}}"#, ev.clone()));
        assert!(m(r#"{"body": {"kind": [{"anything-but": ["refund", "void"]}]}}"#, ev.clone()));
        assert!(!m(r#"{"body": {"kind": [{"anything-but": "order"}]}}"#, ev.clone()));
        assert!(!m(r#"{"body": {"kind": [{"anything-but": {"prefix": "or"}}]}}"#, ev.clone()));
        assert!(m(r#"{"body": {"missing": [{"exists": false}]}}"#, ev.clone()));
        assert!(!m(r#"{"body": {"missing": [{"exists": true}]}}"#, ev.clone()));
        assert!(m(r#"{"body": {"$or": [{"n": [1]}, {"kind": ["order"]}]}}"#, ev.clone()));
        assert!(!m(r#"{"body": {"$or": [{"n": [1]}, {"kind": ["x"]}]}}"#, ev));
    }

    #[test]
    fn invalid_patterns() {
        assert!(Pattern::parse("[1]").is_err());
        assert!(Pattern::parse(r#"{"a": 1}"#).is_err());
        assert!(Pattern::parse(r#"{"a": [{"bogus": 1}]}"#).is_err());
        assert!(Pattern::parse(r#"{"a": [{"numeric": [">"]}]}"#).is_err());
        assert!(Pattern::parse("not json").is_err());
    }
}
