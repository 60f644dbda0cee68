//! Many patterns against one event, without trying each: a bus may hold hundreds of rules, and most
//! name an exact `source` or `detail-type`. Each pattern that has a leaf of exact strings outside any
//! `$or` is filed under (that leaf's path, each of its strings); an event then looks up the value at
//! each filed path and tries only the patterns filed under it, plus the patterns that have no such leaf.

use std::collections::HashMap;

use serde_json::Value;

use super::Pattern;

/// Patterns compiled into a lookup; [`PatternIndex::matching`] gives the positions (in the order they
/// were given) of those an event matches.
#[derive(Debug, Default)]
pub struct PatternIndex {
    patterns: Vec<Pattern>,
    /// Distinct indexed paths.
    paths: Vec<Vec<Box<str>>>,
    /// Per path position: string → patterns filed there.
    by_value: Vec<HashMap<Box<str>, Vec<usize>>>,
    /// Patterns with no exact-string leaf: always tried.
    always: Vec<usize>,
}

impl PatternIndex {
    pub fn new(patterns: Vec<Pattern>) -> Self {
        let mut index = Self { patterns: Vec::new(), ..Self::default() };
        for (i, pattern) in patterns.iter().enumerate() {
            let Some((path, values)) = pattern.exact_key() else {
                index.always.push(i);
                continue;
            };
            let at = match index.paths.iter().position(|p| p.iter().map(|k| &**k).eq(path.iter().copied())) {
                Some(at) => at,
                None => {
                    index.paths.push(path.iter().map(|k| Box::from(*k)).collect());
                    index.by_value.push(HashMap::new());
                    index.paths.len() - 1
                }
            };
            for value in values {
                let filed = index.by_value[at].entry(value.into()).or_default();
                if filed.last() != Some(&i) {
                    filed.push(i);
                }
            }
        }
        index.patterns = patterns;
        index
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Positions of the patterns `event` matches, ascending.
    pub fn matching(&self, event: &Value) -> Vec<usize> {
        let mut candidates = self.always.clone();
        let mut found = Vec::new();
        for (path, filed_here) in self.paths.iter().zip(&self.by_value) {
            found.clear();
            values_at(event, path, &mut found);
            for value in &found {
                if let Some(filed) = filed_here.get(*value) {
                    candidates.extend_from_slice(filed);
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|&i| self.patterns[i].matches(event));
        candidates
    }
}

/// The strings at `path` in `event`, through arrays (as matching goes through them).
fn values_at<'a>(event: &'a Value, path: &[Box<str>], out: &mut Vec<&'a str>) {
    match event {
        Value::Array(items) => items.iter().for_each(|item| values_at(item, path, out)),
        Value::String(s) if path.is_empty() => out.push(s),
        Value::Object(map) => {
            if let Some((first, rest)) = path.split_first()
                && let Some(next) = map.get(&**first)
            {
                values_at(next, rest, out)
            }
        }
        _ => {}
    }
}
