//! Wildcard patterns (`*` any run of characters, `?` one character) with policy variables, compiled
//! once. Used for actions (case-insensitive), resources and `StringLike`/`Arn*` values (case-sensitive).

/// A piece of a pattern between `*`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Lit(Box<str>),
    /// `?`: exactly one character.
    One,
}

/// A token of a pattern before variables are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Lit(String),
    Star,
    One,
    /// `${key}` or `${key, 'default'}`; `key` lowercased.
    Var {
        key: String,
        default: Option<String>,
    },
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `*`
    Any,
    /// No wildcards, no variables.
    Exact(Box<str>),
    /// `literal*`
    Prefix(Box<str>),
    /// Wildcards, no variables: the pieces between stars. One part means no star.
    Glob(Vec<Vec<Piece>>),
    /// Has policy variables: resolved per request, then matched as a glob.
    Vars(Vec<Token>),
}

/// Resolves a (lowercased) condition key to its single value, if the request has exactly one.
pub(crate) trait Variables {
    fn variable(&self, key: &str) -> Option<&str>;
}

impl Pattern {
    /// Compiles `text`. `wildcards`: whether `*` and `?` are wildcards (false for StringEquals).
    /// `variables`: whether `${…}` are policy variables (only under Version 2012-10-17).
    /// `lowercase`: fold the pattern to lowercase (the input is folded by the caller).
    pub(crate) fn compile(text: &str, wildcards: bool, variables: bool, lowercase: bool) -> Pattern {
        let text = if lowercase { text.to_lowercase() } else { text.to_owned() };
        let tokens = tokenize(&text, wildcards, variables);
        if tokens.iter().any(|t| matches!(t, Token::Var { .. })) {
            return Pattern::Vars(tokens);
        }
        from_tokens(tokens)
    }

    /// Whether the pattern matches `input`; `None` when a variable it uses has no value and no default
    /// (AWS then treats the element as not matching).
    pub(crate) fn matches(&self, input: &str, vars: &dyn Variables) -> Option<bool> {
        Some(match self {
            Pattern::Any => true,
            Pattern::Exact(s) => **s == *input,
            Pattern::Prefix(p) => input.starts_with(&**p),
            Pattern::Glob(parts) => glob(parts, input),
            Pattern::Vars(tokens) => {
                let mut resolved = Vec::with_capacity(tokens.len());
                for token in tokens {
                    resolved.push(match token {
                        Token::Var { key, default } => {
                            let value = vars.variable(key).or(default.as_deref())?;
                            Token::Lit(value.to_owned())
                        }
                        other => other.clone(),
                    });
                }
                from_tokens(resolved).matches(input, vars)?
            }
        })
    }
}

fn tokenize(text: &str, wildcards: bool, variables: bool) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if variables
            && rest.starts_with("${")
            && let Some(end) = rest.find('}')
        {
            let inner = &rest[2..end];
            rest = &rest[end + 1..];
            match inner {
                // The escapes for characters that are otherwise special.
                "*" | "?" | "$" => lit.push_str(inner),
                _ => {
                    if !lit.is_empty() {
                        tokens.push(Token::Lit(std::mem::take(&mut lit)));
                    }
                    let (key, default) = match inner.split_once(',') {
                        Some((k, d)) => {
                            let d = d.trim();
                            let d = d.strip_prefix('\'').and_then(|d| d.strip_suffix('\'')).unwrap_or(d);
                            (k.trim(), Some(d.to_owned()))
                        }
                        None => (inner.trim(), None),
                    };
                    tokens.push(Token::Var { key: key.to_ascii_lowercase(), default });
                }
            }
            continue;
        }
        rest = &rest[c.len_utf8()..];
        match c {
            '*' if wildcards => {
                if !lit.is_empty() {
                    tokens.push(Token::Lit(std::mem::take(&mut lit)));
                }
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            }
            '?' if wildcards => {
                if !lit.is_empty() {
                    tokens.push(Token::Lit(std::mem::take(&mut lit)));
                }
                tokens.push(Token::One);
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        tokens.push(Token::Lit(lit));
    }
    tokens
}

/// Builds the fastest form for variable-free tokens (adjacent literals merged).
fn from_tokens(tokens: Vec<Token>) -> Pattern {
    let mut parts: Vec<Vec<Piece>> = vec![Vec::new()];
    for token in tokens {
        let part = parts.last_mut().expect("parts is never empty");
        match token {
            Token::Lit(s) => match part.last_mut() {
                Some(Piece::Lit(prev)) => *prev = format!("{prev}{s}").into(),
                _ => part.push(Piece::Lit(s.into())),
            },
            Token::One => part.push(Piece::One),
            Token::Star => {
                if !(part.is_empty() && parts.len() > 1) {
                    parts.push(Vec::new());
                }
            }
            Token::Var { .. } => unreachable!("variables are resolved before"),
        }
    }
    let literal = |part: &[Piece]| match part {
        [] => Some(String::new()),
        [Piece::Lit(s)] => Some(s.to_string()),
        _ => None,
    };
    match parts.as_slice() {
        [only] => {
            if let Some(s) = literal(only) {
                return Pattern::Exact(s.into());
            }
        }
        [first, last] if last.is_empty() => {
            if first.is_empty() {
                return Pattern::Any;
            }
            if let Some(s) = literal(first) {
                return Pattern::Prefix(s.into());
            }
        }
        _ => {}
    }
    Pattern::Glob(parts)
}

/// Where `part` matches `input` starting at byte `at`: the byte after its end.
fn match_at(part: &[Piece], input: &str, mut at: usize) -> Option<usize> {
    for piece in part {
        match piece {
            Piece::Lit(s) => {
                if !input[at..].starts_with(&**s) {
                    return None;
                }
                at += s.len();
            }
            Piece::One => at += input[at..].chars().next()?.len_utf8(),
        }
    }
    Some(at)
}

/// Char boundaries of `input` from `from` to its end, inclusive.
fn boundaries(input: &str, from: usize) -> impl Iterator<Item = usize> + '_ {
    input[from..].char_indices().map(move |(i, _)| from + i).chain(std::iter::once(input.len()))
}

/// Matches parts separated by stars: the first anchored at the start, the last at the end, the middle
/// ones leftmost in order (each part has a fixed length in characters, so leftmost is never wrong).
fn glob(parts: &[Vec<Piece>], input: &str) -> bool {
    let Some((first, rest)) = parts.split_first() else { return input.is_empty() };
    let Some(mut pos) = match_at(first, input, 0) else { return false };
    let Some((last, middle)) = rest.split_last() else { return pos == input.len() };
    for part in middle {
        match boundaries(input, pos).find_map(|start| match_at(part, input, start)) {
            Some(end) => pos = end,
            None => return false,
        }
    }
    match last.as_slice() {
        [] => true,
        // A literal tail: the input ends with it, after what the other parts took.
        [Piece::Lit(tail)] => input.len() >= pos + tail.len() && input.ends_with(&**tail),
        _ => boundaries(input, pos).any(|start| match_at(last, input, start) == Some(input.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoVars;
    impl Variables for NoVars {
        fn variable(&self, key: &str) -> Option<&str> {
            (key == "aws:username").then_some("Bob")
        }
    }

    #[test]
    fn wildcards_variables_and_escapes() {
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("*", "", Some(true)),
            ("*", "anything:at/all", Some(true)),
            ("lambda:Get*", "lambda:GetFunction", Some(true)),
            ("lambda:Get*", "lambda:getfunction", Some(false)),
            ("lambda:*Function", "lambda:GetFunction", Some(true)),
            ("lambda:*Function", "lambda:GetFunctionX", Some(false)),
            ("a?c", "abc", Some(true)),
            ("a?c", "ac", Some(false)),
            ("a?c", "aéc", Some(true)),
            ("a*b*c", "aXbYbZc", Some(true)),
            ("a*b*c", "aXcYb", Some(false)),
            ("*b*", "abc", Some(true)),
            ("**", "x", Some(true)),
            ("a*?", "a", Some(false)),
            ("a*?", "ab", Some(true)),
            ("arn:aws:s3:::bucket/${aws:username}/*", "arn:aws:s3:::bucket/Bob/x", Some(true)),
            ("arn:aws:s3:::bucket/${aws:username}/*", "arn:aws:s3:::bucket/Alice/x", Some(false)),
            ("home/${aws:userid}/*", "home/x/y", None),
            ("home/${aws:userid, 'none'}/*", "home/none/y", Some(true)),
            ("a${*}b", "a*b", Some(true)),
            ("a${*}b", "aXb", Some(false)),
            ("a${?}", "a?", Some(true)),
            ("${$}{x}", "${x}", Some(true)),
        ];
        for (pattern, input, expected) in cases {
            let p = Pattern::compile(pattern, true, true, false);
            assert_eq!(p.matches(input, &NoVars), *expected, "{pattern} vs {input}");
        }
        // Without variables (2008-10-17) `${…}` is literal text.
        let p = Pattern::compile("a/${aws:username}", true, false, false);
        assert_eq!(p.matches("a/${aws:username}", &NoVars), Some(true));
        // Without wildcards (StringEquals) `*` is literal.
        let p = Pattern::compile("a*", false, false, false);
        assert_eq!(p.matches("abc", &NoVars), Some(false));
        assert_eq!(p.matches("a*", &NoVars), Some(true));
    }
}
