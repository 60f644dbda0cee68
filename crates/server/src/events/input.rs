//! What an EventBridge target receives: the whole event, or `Input` (constant JSON), or the part of
//! the event `InputPath` selects, or `InputTransformer`'s template filled from `InputPathsMap`.
//!
//! Paths are the JSONPath subset EventBridge documents for these fields: `$`, `.key` and `[n]`
//! steps. Template quoting is AWS's: a string value placed inside quotes in the template goes in as
//! its text (escaped for JSON); anywhere else a value goes in as JSON.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InputError(pub String);

/// At most 100 variables in `InputPathsMap` (AWS's limit), each named by `[A-Za-z0-9_\-.]+`.
const MAX_PATHS: usize = 100;
const PREDEFINED: [&str; 5] = [
    "aws.events.rule-arn",
    "aws.events.rule-name",
    "aws.events.event.ingestion-time",
    "aws.events.event",
    "aws.events.event.json",
];

#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, InputError> {
        let invalid = || InputError(format!("Invalid JSON path: {text}"));
        let mut rest = text.strip_prefix('$').ok_or_else(invalid)?;
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                if end == 0 {
                    return Err(invalid());
                }
                steps.push(Step::Key(after[..end].to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').ok_or_else(invalid)?;
                let inner = &after[..end];
                let step = match inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                    Some(key) => Step::Key(key.to_owned()),
                    None => Step::Index(inner.parse().map_err(|_| invalid())?),
                };
                steps.push(step);
                rest = &after[end + 1..];
            } else {
                return Err(invalid());
            }
        }
        Ok(JsonPath(steps))
    }

    pub fn select<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(value, |v, step| match step {
            Step::Key(k) => v.get(k),
            Step::Index(i) => v.get(i),
        })
    }
}

/// A target's input settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    Event,
    Constant(String),
    Path(JsonPath),
    Transformer { paths: Vec<(String, JsonPath)>, template: String },
}

/// The rule-side values a template may name.
pub struct Transform<'a> {
    pub rule_arn: &'a str,
    pub rule_name: &'a str,
    pub ingestion_time: &'a str,
}

impl InputSpec {
    /// Reads `Input`, `InputPath` and `InputTransformer` of a PutTargets entry (at most one of them).
    pub fn from_target(target: &Value) -> Result<InputSpec, InputError> {
        let input = target.get("Input").and_then(Value::as_str);
        let path = target.get("InputPath").and_then(Value::as_str);
        let transformer = target.get("InputTransformer");
        let given = usize::from(input.is_some()) + usize::from(path.is_some()) + usize::from(transformer.is_some());
        if given > 1 {
            return Err(InputError("Only one of Input, InputPath, or InputTransformer must be provided.".into()));
        }
        if let Some(input) = input {
            serde_json::from_str::<Value>(input).map_err(|_| InputError("Input is not valid JSON text.".into()))?;
            return Ok(InputSpec::Constant(input.to_owned()));
        }
        if let Some(path) = path {
            return Ok(InputSpec::Path(JsonPath::parse(path)?));
        }
        let Some(transformer) = transformer else { return Ok(InputSpec::Event) };
        let template = transformer
            .get("InputTemplate")
            .and_then(Value::as_str)
            .ok_or_else(|| InputError("InputTemplate is required in InputTransformer.".into()))?
            .to_owned();
        let mut paths = Vec::new();
        if let Some(map) = transformer.get("InputPathsMap") {
            let map = map.as_object().ok_or_else(|| InputError("InputPathsMap must be an object.".into()))?;
            if map.len() > MAX_PATHS {
                return Err(InputError(format!("InputPathsMap has more than {MAX_PATHS} entries.")));
            }
            for (name, path) in map {
                if PREDEFINED.contains(&name.as_str()) {
                    return Err(InputError(format!("InputPathsMap may not use reserved variable {name}.")));
                }
                let valid_name =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
                let path = path.as_str().ok_or_else(|| InputError(format!("The path of {name} must be a string.")))?;
                if !valid_name {
                    return Err(InputError(format!("Invalid InputPathsMap key: {name}")));
                }
                paths.push((name.clone(), JsonPath::parse(path)?));
            }
        }
        Ok(InputSpec::Transformer { paths, template })
    }

    /// The text the target receives for `event`.
    pub fn render(&self, event: &Value, context: &Transform<'_>) -> String {
        match self {
            InputSpec::Event => event.to_string(),
            InputSpec::Constant(text) => text.clone(),
            InputSpec::Path(path) => path.select(event).map_or_else(|| "null".to_owned(), Value::to_string),
            InputSpec::Transformer { paths, template } => fill(template, |name| {
                Some(match name {
                    "aws.events.rule-arn" => Value::from(context.rule_arn),
                    "aws.events.rule-name" => Value::from(context.rule_name),
                    "aws.events.event.ingestion-time" => Value::from(context.ingestion_time),
                    "aws.events.event" | "aws.events.event.json" => event.clone(),
                    _ => {
                        let (_, path) = paths.iter().find(|(n, _)| n == name)?;
                        path.select(event).cloned().unwrap_or(Value::Null)
                    }
                })
            }),
        }
    }
}

/// Replaces each `<name>` that `lookup` knows; keeps other text, including unknown `<…>`, as it is.
fn fill(template: &str, lookup: impl Fn(&str) -> Option<Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(end) = rest.find('>')
            && let Some(value) = lookup(&rest[1..end])
        {
            match (&value, in_string) {
                (Value::String(s), true) => {
                    let quoted = Value::from(s.as_str()).to_string();
                    out.push_str(&quoted[1..quoted.len() - 1]);
                }
                (Value::String(s), false) if !template.trim_start().starts_with(['{', '[']) => out.push_str(s),
                (v, true) => {
                    let text = v.to_string();
                    let quoted = Value::from(text).to_string();
                    out.push_str(&quoted[1..quoted.len() - 1]);
                }
                (v, false) => out.push_str(&v.to_string()),
            }
            rest = &rest[end + 1..];
            continue;
        }
        match c {
            '\\' if in_string => escaped = !escaped,
            '"' if !escaped => in_string = !in_string,
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event() -> Value {
        json!({"detail-type": "EC2 Instance State-change Notification", "detail": {"instance-id": "i-0123", "state": "stopped", "n": 3, "tags": ["a"]}})
    }

    const CONTEXT: Transform<'static> = Transform {
        rule_arn: "arn:aws:events:us-east-1:123456789012:rule/r",
        rule_name: "r",
        ingestion_time: "2026-12-06T21:00:00Z",
    };

    fn render(target: Value) -> String {
        InputSpec::from_target(&target).unwrap().render(&event(), &CONTEXT)
    }

    #[test]
    fn inputs_render_as_aws_documents() {
        let map = json!({"instance": "$.detail.instance-id", "state": "$.detail.state", "n": "$.detail.n", "tags": "$.detail.tags"});
        let cases = [
            (json!({}), event().to_string()),
            (json!({"Input": "{\"a\": 1}"}), "{\"a\": 1}".to_owned()),
            (json!({"InputPath": "$.detail.state"}), "\"stopped\"".to_owned()),
            (json!({"InputPath": "$.detail.tags[0]"}), "\"a\"".to_owned()),
            (json!({"InputPath": "$.detail.missing"}), "null".to_owned()),
            // A JSON template: strings inside quotes as text, values outside quotes as JSON.
            (
                json!({"InputTransformer": {"InputPathsMap": map, "InputTemplate": "{\"id\": \"<instance>\", \"state\": <state>, \"n\": <n>, \"tags\": <tags>}"}}),
                "{\"id\": \"i-0123\", \"state\": \"stopped\", \"n\": 3, \"tags\": [\"a\"]}".to_owned(),
            ),
            // A string template: the text.
            (
                json!({"InputTransformer": {"InputPathsMap": map, "InputTemplate": "\"<instance> is in state <state>\""}}),
                "\"i-0123 is in state stopped\"".to_owned(),
            ),
            (
                json!({"InputTransformer": {"InputTemplate": "{\"rule\": \"<aws.events.rule-name>\", \"at\": \"<aws.events.event.ingestion-time>\", \"x\": \"<unknown>\"}"}}),
                "{\"rule\": \"r\", \"at\": \"2026-12-06T21:00:00Z\", \"x\": \"<unknown>\"}".to_owned(),
            ),
        ];
        for (target, expected) in cases {
            assert_eq!(render(target.clone()), expected, "{target}");
        }
    }

    #[test]
    fn bad_inputs_are_refused() {
        for target in [
            json!({"Input": "{", }),
            json!({"Input": "1", "InputPath": "$"}),
            json!({"InputPath": "detail"}),
            json!({"InputPath": "$..a"}),
            json!({"InputTransformer": {}}),
            json!({"InputTransformer": {"InputTemplate": "x", "InputPathsMap": {"aws.events.event": "$"}}}),
            json!({"InputTransformer": {"InputTemplate": "x", "InputPathsMap": {"a b": "$"}}}),
        ] {
            assert!(InputSpec::from_target(&target).is_err(), "{target}");
        }
    }
}
