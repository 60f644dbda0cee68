//! The event-pattern language (EventBridge's content filtering), shared by Lambda's `FilterCriteria`
//! and EventBridge rules: one matcher, with a [`Mode`] saying which operators a service accepts.
//!
//! A pattern is a JSON object whose keys follow the event's structure. A leaf is an array of matchers,
//! and the field matches when any of them does (when the event's field is an array, when any of its
//! elements does). Matchers: a literal (string, number, boolean, null), `{"prefix": s}`, `{"suffix": s}`
//! (either may hold `{"equals-ignore-case": s}`), `{"equals-ignore-case": s}`, `{"wildcard": "a*b"}`,
//! `{"anything-but": literal | [literals] | {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": s | [s]}}`,
//! `{"numeric": [">", 0, "<=", 5]}`, `{"exists": bool}`, and (EventBridge only) `{"cidr": "10.0.0.0/8"}`.
//! `"$or": [pattern, …]` matches when any of its patterns does. Every key of a pattern must match.
//!
//! Patterns come from API callers (untrusted): they are validated and compiled once, at the edge, into
//! a tree that matching walks without re-reading JSON; [`index::PatternIndex`] picks, among many
//! patterns, the few an event can match.

use ipnet::IpNet;
use serde_json::{Map, Value};

pub mod index;
#[cfg(test)]
mod tests;

/// Which service's dialect a pattern is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Lambda event filtering: no `cidr`, and `anything-but` takes no `wildcard`.
    Lambda,
    /// EventBridge rules: the whole language, and AWS's stricter `numeric` ranges.
    EventBridge,
}

/// Why a pattern was refused (the reason; each service wraps it in its own message).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid filter pattern definition: {0}")]
pub struct FilterError(pub String);

fn bad<T>(reason: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError(reason.into()))
}

/// Most patterns AWS accepts are small; this bounds the compile and match work of a hostile one.
const MAX_DEPTH: usize = 32;
const MAX_MATCHERS: usize = 1024;

/// A validated, compiled pattern (it keeps its text, which is what the store holds).
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    root: Node,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[derive(Debug, Clone)]
struct Node {
    fields: Vec<(Box<str>, Field)>,
    /// Alternatives of a `$or` key: one must match.
    or: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Field {
    Object(Node),
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(Box<str>),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Eq,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact(Lit),
    /// `ci`: compared case-insensitively, the argument already lowercased.
    Prefix {
        s: Box<str>,
        ci: bool,
    },
    Suffix {
        s: Box<str>,
        ci: bool,
    },
    IgnoreCase(Box<str>),
    Wildcard(Wildcard),
    Numeric(Vec<(Cmp, f64)>),
    Exists(bool),
    Cidr(IpNet),
    AnythingBut(Not),
}

#[derive(Debug, Clone)]
enum Not {
    Values(Vec<Lit>),
    Prefix(Vec<Box<str>>),
    Suffix(Vec<Box<str>>),
    IgnoreCase(Vec<Box<str>>),
    Wildcard(Vec<Wildcard>),
}

/// A `*` glob, split at its unescaped stars (`\*` is a literal star).
#[derive(Debug, Clone)]
struct Wildcard {
    parts: Vec<String>,
}

impl Wildcard {
    fn compile(pattern: &str) -> Result<Self, FilterError> {
        let mut parts = vec![String::new()];
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('*' | '\\')) => parts.last_mut().map_or((), |p| p.push(e)),
                    _ => return bad(format!("Invalid escape in wildcard pattern {pattern:?}")),
                },
                '*' => {
                    if parts.last().is_some_and(String::is_empty) && parts.len() > 1 {
                        return bad("Consecutive wildcard characters are not allowed");
                    }
                    parts.push(String::new())
                }
                c => parts.last_mut().map_or((), |p| p.push(c)),
            }
        }
        Ok(Self { parts })
    }

    fn matches(&self, s: &str) -> bool {
        let parts = &self.parts;
        if parts.len() == 1 {
            return parts[0] == s;
        }
        let (first, last) = (&parts[0], &parts[parts.len() - 1]);
        if s.len() < first.len() + last.len() || !s.starts_with(first.as_str()) || !s.ends_with(last.as_str()) {
            return false;
        }
        let mut rest = &s[first.len()..s.len() - last.len()];
        for middle in &parts[1..parts.len() - 1] {
            match rest.find(middle.as_str()) {
                Some(i) => rest = &rest[i + middle.len()..],
                None => return false,
            }
        }
        true
    }
}

impl Pattern {
    /// Reads a Lambda `FilterCriteria` pattern.
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        Self::parse_in(text, Mode::Lambda)
    }

    /// Reads a pattern in `mode`'s dialect.
    pub fn parse_in(text: &str, mode: Mode) -> Result<Self, FilterError> {
        let value: Value = serde_json::from_str(text).map_err(|e| FilterError(format!("not JSON ({e})")))?;
        let Value::Object(map) = value else { return bad("Filter is not an object") };
        let mut budget = MAX_MATCHERS;
        let root = compile_object(&map, mode, 0, &mut budget)?;
        Ok(Self { text: text.to_owned(), root })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, event: &Value) -> bool {
        match_node(&self.root, Some(event))
    }

    /// The path to a leaf whose matchers are all exact strings, outside any `$or`: an event can match
    /// only if the value at that path is one of them (what the index keys on).
    fn exact_key(&self) -> Option<(Vec<&str>, Vec<&str>)> {
        fn walk<'a>(node: &'a Node, path: &mut Vec<&'a str>) -> Option<Vec<&'a str>> {
            for (key, field) in &node.fields {
                path.push(key);
                match field {
                    Field::Leaf(ms) => {
                        let strings: Option<Vec<&str>> = ms
                            .iter()
                            .map(|m| match m {
                                Matcher::Exact(Lit::Str(s)) => Some(&**s),
                                _ => None,
                            })
                            .collect();
                        if strings.is_some() {
                            return strings;
                        }
                    }
                    Field::Object(sub) => {
                        if let Some(found) = walk(sub, path) {
                            return Some(found);
                        }
                    }
                }
                path.pop();
            }
            None
        }
        let mut path = Vec::new();
        walk(&self.root, &mut path).map(|values| (path, values))
    }
}

/// Whether `event` passes a mapping's filters (no filters: everything passes).
pub fn passes(filters: &[Pattern], event: &Value) -> bool {
    filters.is_empty() || filters.iter().any(|p| p.matches(event))
}

fn compile_object(map: &Map<String, Value>, mode: Mode, depth: usize, budget: &mut usize) -> Result<Node, FilterError> {
    if depth > MAX_DEPTH {
        return bad("Filter is nested too deeply");
    }
    let mut node = Node { fields: Vec::with_capacity(map.len()), or: Vec::new() };
    for (key, value) in map {
        match (key.as_str(), value) {
            ("$or", Value::Array(alternatives)) if alternatives.len() >= 2 => {
                for alt in alternatives {
                    let Value::Object(m) = alt else { return bad("$or takes an array of objects") };
                    node.or.push(compile_object(m, mode, depth + 1, budget)?);
                }
            }
            ("$or", _) => return bad("$or takes an array of at least two patterns"),
            (_, Value::Object(m)) => {
                node.fields.push((key.as_str().into(), Field::Object(compile_object(m, mode, depth + 1, budget)?)))
            }
            (_, Value::Array(matchers)) => {
                if matchers.is_empty() {
                    return bad(format!("Empty arrays are not allowed (at {key})"));
                }
                let mut compiled = Vec::with_capacity(matchers.len());
                for m in matchers {
                    *budget = budget.checked_sub(1).ok_or_else(|| FilterError("Filter has too many values".into()))?;
                    compiled.push(compile_matcher(m, mode)?);
                }
                node.fields.push((key.as_str().into(), Field::Leaf(compiled)));
            }
            _ => return bad(format!("Match value must be String, number, true, false, or null (at {key})")),
        }
    }
    Ok(node)
}

fn literal(v: &Value) -> Option<Lit> {
    Some(match v {
        Value::String(s) => Lit::Str(s.as_str().into()),
        Value::Number(n) => Lit::Num(n.as_f64()?),
        Value::Bool(b) => Lit::Bool(*b),
        Value::Null => Lit::Null,
        _ => return None,
    })
}

/// A string, or (for `anything-but`'s operators) a non-empty list of strings.
fn strings(v: &Value, list_ok: bool) -> Option<Vec<Box<str>>> {
    match v {
        Value::String(s) => Some(vec![s.as_str().into()]),
        Value::Array(l) if list_ok && !l.is_empty() => l.iter().map(|s| s.as_str().map(Into::into)).collect(),
        _ => None,
    }
}

fn lower(s: &str) -> Box<str> {
    s.to_lowercase().into()
}

fn compile_matcher(m: &Value, mode: Mode) -> Result<Matcher, FilterError> {
    let Value::Object(obj) = m else {
        return literal(m)
            .map(Matcher::Exact)
            .ok_or_else(|| FilterError("Match value must be String, number, true, false, or null".into()));
    };
    let mut entries = obj.iter();
    let (Some((op, arg)), None) = (entries.next(), entries.next()) else {
        return bad("A matcher object has exactly one key");
    };
    let eb = mode == Mode::EventBridge;
    let unsupported = || FilterError(format!("Unrecognized match type {op}"));
    let malformed = || FilterError(format!("Malformed {op} matcher: {arg}"));
    Ok(match op.as_str() {
        "prefix" | "suffix" => {
            let (s, ci) = match arg {
                Value::String(s) => (s.as_str().into(), false),
                Value::Object(o) if o.len() == 1 => {
                    (lower(o.get("equals-ignore-case").and_then(Value::as_str).ok_or_else(malformed)?), true)
                }
                _ => return Err(malformed()),
            };
            if op == "prefix" { Matcher::Prefix { s, ci } } else { Matcher::Suffix { s, ci } }
        }
        "equals-ignore-case" => Matcher::IgnoreCase(lower(arg.as_str().ok_or_else(malformed)?)),
        "wildcard" => Matcher::Wildcard(Wildcard::compile(arg.as_str().ok_or_else(malformed)?)?),
        "exists" => Matcher::Exists(arg.as_bool().ok_or_else(malformed)?),
        "numeric" => Matcher::Numeric(compile_numeric(arg, mode).ok_or_else(malformed)?),
        "cidr" if eb => {
            let text = arg.as_str().ok_or_else(malformed)?;
            Matcher::Cidr(text.parse().map_err(|_| FilterError(format!("Malformed CIDR, one '/' required: {text}")))?)
        }
        "anything-but" => Matcher::AnythingBut(match arg {
            Value::Array(list) if !list.is_empty() => Not::Values(
                list.iter()
                    .map(|v| literal(v).filter(|l| matches!(l, Lit::Str(_) | Lit::Num(_))))
                    .collect::<Option<_>>()
                    .ok_or_else(malformed)?,
            ),
            Value::String(_) | Value::Number(_) => Not::Values(vec![literal(arg).ok_or_else(malformed)?]),
            Value::Object(inner) if inner.len() == 1 => {
                let (k, v) = inner.iter().next().ok_or_else(malformed)?;
                let list = strings(v, eb || k == "equals-ignore-case").ok_or_else(malformed)?;
                match k.as_str() {
                    "prefix" => Not::Prefix(list),
                    "suffix" => Not::Suffix(list),
                    "equals-ignore-case" => Not::IgnoreCase(list.iter().map(|s| lower(s)).collect()),
                    "wildcard" if eb => {
                        Not::Wildcard(list.iter().map(|s| Wildcard::compile(s)).collect::<Result<_, _>>()?)
                    }
                    _ => return Err(malformed()),
                }
            }
            _ => return Err(malformed()),
        }),
        _ => return Err(unsupported()),
    })
}

fn compile_numeric(arg: &Value, mode: Mode) -> Option<Vec<(Cmp, f64)>> {
    let Value::Array(parts) = arg else { return None };
    if parts.is_empty() || parts.len() % 2 != 0 || parts.len() > 4 {
        return None;
    }
    let ranges: Vec<(Cmp, f64)> = parts
        .chunks(2)
        .map(|c| {
            let cmp = match c[0].as_str()? {
                "<" => Cmp::Lt,
                "<=" => Cmp::Le,
                "=" => Cmp::Eq,
                ">" => Cmp::Gt,
                ">=" => Cmp::Ge,
                _ => return None,
            };
            Some((cmp, c[1].as_f64()?))
        })
        .collect::<Option<_>>()?;
    // EventBridge reads two comparisons as a range: a lower bound then an upper one; `=` stands alone.
    if mode == Mode::EventBridge && ranges.len() == 2 {
        let ((lo, a), (hi, b)) = (ranges[0], ranges[1]);
        if !matches!(lo, Cmp::Gt | Cmp::Ge) || !matches!(hi, Cmp::Lt | Cmp::Le) || a >= b {
            return None;
        }
    }
    Some(ranges)
}

fn match_node(node: &Node, event: Option<&Value>) -> bool {
    node.fields.iter().all(|(key, field)| {
        let value = event.and_then(|e| e.get(&**key));
        match field {
            Field::Object(sub) => match value {
                Some(Value::Array(items)) => items.iter().any(|item| match_node(sub, Some(item))),
                other => match_node(sub, other),
            },
            Field::Leaf(matchers) => matchers.iter().any(|m| match_field(m, value)),
        }
    }) && (node.or.is_empty() || node.or.iter().any(|alt| match_node(alt, event)))
}

fn match_field(m: &Matcher, field: Option<&Value>) -> bool {
    if let Matcher::Exists(exists) = m {
        let present = field.is_some_and(|f| !f.is_null() && !matches!(f, Value::Array(a) if a.is_empty()));
        return present == *exists;
    }
    match field {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|v| match_value(m, v)),
        Some(v) => match_value(m, v),
    }
}

fn lit_eq(lit: &Lit, v: &Value) -> bool {
    match (lit, v) {
        (Lit::Str(a), Value::String(b)) => **a == **b,
        (Lit::Num(a), Value::Number(b)) => b.as_f64() == Some(*a),
        (Lit::Bool(a), Value::Bool(b)) => a == b,
        (Lit::Null, Value::Null) => true,
        _ => false,
    }
}

fn lowered_test(s: &str, ci: bool, test: impl Fn(&str) -> bool) -> bool {
    if ci { test(&s.to_lowercase()) } else { test(s) }
}

fn match_value(m: &Matcher, v: &Value) -> bool {
    let text = v.as_str();
    match m {
        Matcher::Exact(lit) => lit_eq(lit, v),
        Matcher::Prefix { s: p, ci } => text.is_some_and(|s| lowered_test(s, *ci, |s| s.starts_with(&**p))),
        Matcher::Suffix { s: p, ci } => text.is_some_and(|s| lowered_test(s, *ci, |s| s.ends_with(&**p))),
        Matcher::IgnoreCase(p) => text.is_some_and(|s| s.to_lowercase() == **p),
        Matcher::Wildcard(w) => text.is_some_and(|s| w.matches(s)),
        Matcher::Numeric(ranges) => v.as_f64().is_some_and(|x| {
            ranges.iter().all(|&(cmp, n)| match cmp {
                Cmp::Lt => x < n,
                Cmp::Le => x <= n,
                Cmp::Eq => x == n,
                Cmp::Gt => x > n,
                Cmp::Ge => x >= n,
            })
        }),
        Matcher::Exists(_) => false,
        Matcher::Cidr(net) => text.and_then(|s| s.parse::<std::net::IpAddr>().ok()).is_some_and(|ip| net.contains(&ip)),
        Matcher::AnythingBut(not) => match not {
            Not::Values(list) => !list.iter().any(|l| lit_eq(l, v)),
            Not::Prefix(list) => text.is_some_and(|s| !list.iter().any(|p| s.starts_with(&**p))),
            Not::Suffix(list) => text.is_some_and(|s| !list.iter().any(|p| s.ends_with(&**p))),
            Not::IgnoreCase(list) => text.is_some_and(|s| {
                let s = s.to_lowercase();
                !list.iter().any(|p| s == **p)
            }),
            Not::Wildcard(list) => text.is_some_and(|s| !list.iter().any(|w| w.matches(s))),
        },
    }
}
