//! Condition operators, compiled: each policy value parsed once for its operator (numbers, dates, CIDRs,
//! bools, wildcard patterns), so evaluation only parses the request's values.
//!
//! Semantics as AWS documents them: the values of one key are OR'd (for negated operators: the request
//! value must match none of them); keys and operators are AND'd. A key missing from the request makes a
//! positive operator false and a negated one true; `…IfExists` makes it true; `ForAllValues:` is true on
//! a missing key, `ForAnyValue:` false. `Null` tests presence.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use super::error::PolicyError;
use super::pattern::{Pattern, Variables};

/// The type-specific part of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    ArnLike,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

/// One policy value, compiled for its operator.
#[derive(Debug, Clone)]
enum Operand {
    Pattern(Pattern),
    /// StringEqualsIgnoreCase: lowercased.
    Folded(String),
    Number(f64),
    /// Nanoseconds since the epoch.
    Date(i128),
    Bool(bool),
    Binary(String),
    Net(IpNet),
    /// The six colon-separated parts of an ARN, each a pattern (the last may contain colons).
    Arn(Box<[Pattern; 6]>),
}

/// One (operator, key) pair of a `Condition` block with its values.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    kind: Kind,
    negated: bool,
    set: SetQualifier,
    if_exists: bool,
    /// Lowercased: condition keys are case-insensitive.
    key: String,
    operands: Vec<Operand>,
}

/// The request's values for a key, and how to resolve policy variables.
pub(crate) trait Keys: Variables {
    fn values(&self, key: &str) -> Option<&[String]>;
}

/// Parses a statement's `Condition` object. `variables`: the document's version allows policy variables.
pub(crate) fn compile(block: &Value, variables: bool) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(operators) = block else { return Err(PolicyError::Syntax) };
    let mut out = Vec::new();
    for (operator, keys) in operators {
        let (set, kind, negated, if_exists) = parse_operator(operator)?;
        let Value::Object(keys) = keys else { return Err(PolicyError::Syntax) };
        for (key, values) in keys {
            let values: Vec<&Value> = match values {
                Value::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            let mut operands = Vec::with_capacity(values.len());
            for value in values {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(PolicyError::Syntax),
                };
                let bad = || PolicyError::ConditionValue {
                    operator: operator.clone(),
                    key: key.clone(),
                    value: text.clone(),
                };
                operands.push(match kind {
                    Kind::StringEquals => Operand::Pattern(Pattern::compile(&text, false, variables, false)),
                    Kind::StringLike => Operand::Pattern(Pattern::compile(&text, true, variables, false)),
                    Kind::StringEqualsIgnoreCase => Operand::Folded(text.to_lowercase()),
                    Kind::Numeric(_) => Operand::Number(parse_number(&text).ok_or_else(bad)?),
                    Kind::Date(_) => Operand::Date(parse_date(&text).ok_or_else(bad)?),
                    Kind::Bool | Kind::Null => Operand::Bool(parse_bool(&text).ok_or_else(bad)?),
                    Kind::Binary => Operand::Binary(text),
                    Kind::Ip => Operand::Net(parse_net(&text).ok_or_else(bad)?),
                    Kind::ArnLike => Operand::Arn(Box::new(arn_parts(&text, variables))),
                });
            }
            out.push(Condition { kind, negated, set, if_exists, key: key.to_ascii_lowercase(), operands });
        }
    }
    Ok(out)
}

fn parse_operator(operator: &str) -> Result<(SetQualifier, Kind, bool, bool), PolicyError> {
    let invalid = || PolicyError::ConditionOperator { operator: operator.to_owned() };
    let (set, rest) = if let Some(rest) = operator.strip_prefix("ForAnyValue:") {
        (SetQualifier::ForAnyValue, rest)
    } else if let Some(rest) = operator.strip_prefix("ForAllValues:") {
        (SetQualifier::ForAllValues, rest)
    } else {
        (SetQualifier::None, operator)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    let (kind, negated) = match base {
        "StringEquals" => (Kind::StringEquals, false),
        "StringNotEquals" => (Kind::StringEquals, true),
        "StringEqualsIgnoreCase" => (Kind::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Kind::StringEqualsIgnoreCase, true),
        "StringLike" => (Kind::StringLike, false),
        "StringNotLike" => (Kind::StringLike, true),
        "NumericEquals" => (Kind::Numeric(Cmp::Eq), false),
        "NumericNotEquals" => (Kind::Numeric(Cmp::Eq), true),
        "NumericLessThan" => (Kind::Numeric(Cmp::Lt), false),
        "NumericLessThanEquals" => (Kind::Numeric(Cmp::Le), false),
        "NumericGreaterThan" => (Kind::Numeric(Cmp::Gt), false),
        "NumericGreaterThanEquals" => (Kind::Numeric(Cmp::Ge), false),
        "DateEquals" => (Kind::Date(Cmp::Eq), false),
        "DateNotEquals" => (Kind::Date(Cmp::Eq), true),
        "DateLessThan" => (Kind::Date(Cmp::Lt), false),
        "DateLessThanEquals" => (Kind::Date(Cmp::Le), false),
        "DateGreaterThan" => (Kind::Date(Cmp::Gt), false),
        "DateGreaterThanEquals" => (Kind::Date(Cmp::Ge), false),
        "Bool" => (Kind::Bool, false),
        "BinaryEquals" => (Kind::Binary, false),
        "IpAddress" => (Kind::Ip, false),
        "NotIpAddress" => (Kind::Ip, true),
        "ArnEquals" | "ArnLike" => (Kind::ArnLike, false),
        "ArnNotEquals" | "ArnNotLike" => (Kind::ArnLike, true),
        "Null" if !if_exists && set == SetQualifier::None => (Kind::Null, false),
        _ => return Err(invalid()),
    };
    Ok((set, kind, negated, if_exists))
}

fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// AWS's date forms: ISO 8601 date-times (`2019-07-16T12:00:00Z`, with an offset or fractions), bare
/// dates (`2019-07-16`, midnight UTC), and epoch seconds.
pub(crate) fn parse_date(text: &str) -> Option<i128> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok().map(|s| i128::from(s) * 1_000_000_000);
    }
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = time::OffsetDateTime::parse(text, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = time::PrimitiveDateTime::parse(text, &Iso8601::DEFAULT) {
        return Some(t.assume_utc().unix_timestamp_nanos());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format).ok().map(|d| d.midnight().assume_utc().unix_timestamp_nanos())
}

/// A CIDR block, or a bare address (a /32 or /128).
fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>().ok().or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

fn arn_parts(text: &str, variables: bool) -> [Pattern; 6] {
    let mut parts = text.splitn(6, ':');
    std::array::from_fn(|_| Pattern::compile(parts.next().unwrap_or(""), true, variables, false))
}

impl Condition {
    /// Whether this condition holds for the request.
    pub(crate) fn holds(&self, keys: &dyn Keys) -> bool {
        let values = keys.values(&self.key).filter(|v| !v.is_empty());
        if self.kind == Kind::Null {
            // `"Null": {"k": "true"}` holds when the key is absent.
            let wants_absent = matches!(self.operands.first(), Some(Operand::Bool(true)));
            return wants_absent == values.is_none();
        }
        let Some(values) = values else {
            return match self.set {
                SetQualifier::ForAllValues => true,
                SetQualifier::ForAnyValue => self.if_exists,
                SetQualifier::None => self.if_exists || self.negated,
            };
        };
        // Per request value: does any policy value match (for negated operators: none)?
        let one = |value: &String| self.negated != self.operands.iter().any(|op| self.matches(op, value, keys));
        match self.set {
            SetQualifier::ForAllValues => values.iter().all(one),
            SetQualifier::ForAnyValue => values.iter().any(one),
            // A single-valued key; should a request carry several, a negated operator must hold for
            // all of them (none matches), a positive one for any.
            SetQualifier::None if self.negated => values.iter().all(one),
            SetQualifier::None => values.iter().any(one),
        }
    }

    fn matches(&self, operand: &Operand, value: &str, vars: &dyn Keys) -> bool {
        match (operand, self.kind) {
            (Operand::Pattern(p), _) => p.matches(value, vars.as_variables()) == Some(true),
            (Operand::Folded(s), _) => value.to_lowercase() == *s,
            (Operand::Number(n), Kind::Numeric(cmp)) => parse_number(value).is_some_and(|v| compare(cmp, v, *n)),
            (Operand::Date(d), Kind::Date(cmp)) => parse_date(value).is_some_and(|v| compare(cmp, v, *d)),
            (Operand::Bool(b), _) => parse_bool(value) == Some(*b),
            (Operand::Binary(s), _) => value == s,
            (Operand::Net(net), _) => value.trim().parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip)),
            (Operand::Arn(parts), _) => {
                let mut got = value.splitn(6, ':');
                let pieces: [Option<&str>; 6] = std::array::from_fn(|_| got.next());
                // ArnLike/ArnEquals compare an ARN's six parts; a value that is no ARN matches nothing.
                pieces[0] == Some("arn")
                    && pieces.iter().zip(parts.iter()).all(|(piece, pattern)| {
                        piece.is_some_and(|p| pattern.matches(p, vars.as_variables()) == Some(true))
                    })
            }
            _ => false,
        }
    }
}

fn compare<T: PartialOrd>(cmp: Cmp, value: T, policy: T) -> bool {
    match cmp {
        Cmp::Eq => value == policy,
        Cmp::Lt => value < policy,
        Cmp::Le => value <= policy,
        Cmp::Gt => value > policy,
        Cmp::Ge => value >= policy,
    }
}

/// Upcasting helper: `&dyn Keys` to `&dyn Variables`.
trait AsVariables {
    fn as_variables(&self) -> &dyn Variables;
}

impl<'a> AsVariables for dyn Keys + 'a {
    fn as_variables(&self) -> &dyn Variables {
        self
    }
}
