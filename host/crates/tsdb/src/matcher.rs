//! Label matchers with Prometheus' semantics.

use std::fmt;

use regex::Regex;

use crate::TsdbError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

/// One `name op "value"` condition of a selector.
///
/// A series without the label is matched as if the label's value were the
/// empty string: `{foo=""}` selects series without `foo`, `{foo!=""}`
/// requires it. Regexes are fully anchored and `.` matches a newline, as in
/// Prometheus (`^(?s:re)$`): `=~"foo"` does not match `foobar`.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

/// Distinct patterns kept compiled; past this the cache starts over.
const REGEX_CACHE_SIZE: usize = 1024;

/// `^(?s:pattern)$`, compiled once per pattern: rule groups select with the
/// same few regexes every interval, and compiling one costs more than the
/// select.
fn anchored_regex(pattern: &str) -> Result<Regex, regex::Error> {
    static CACHE: std::sync::Mutex<Option<std::collections::HashMap<String, Regex>>> =
        std::sync::Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = cache.get_or_insert_with(Default::default);
    if let Some(regex) = cache.get(pattern) {
        return Ok(regex.clone());
    }
    let regex = Regex::new(&format!("^(?s:{pattern})$"))?;
    if cache.len() >= REGEX_CACHE_SIZE {
        cache.clear();
    }
    cache.insert(pattern.to_string(), regex.clone());
    Ok(regex)
}

impl Matcher {
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Matcher, TsdbError> {
        let (name, value) = (name.into(), value.into());
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(anchored_regex(&value).map_err(|e| TsdbError::InvalidRegex {
                    matcher: format!("{name}{}{value:?}", op_str(op)),
                    error: e.to_string(),
                })?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => {
                unreachable!("regex matchers are built with their regex")
            }
        }
    }

    /// For `=~"a|b|c"` made of plain alternatives: the exact values, so the
    /// index can look each up instead of scanning every value of the label.
    pub(crate) fn literal_alternatives(&self) -> Option<Vec<&str>> {
        if self.op != MatchOp::Regex {
            return None;
        }
        let plain = |c: char| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | ':' | '/' | ',' | ' ' | '@' | '=' | '%')
        };
        if self.value.is_empty() || !self.value.chars().all(|c| plain(c) || c == '|') {
            return None;
        }
        Some(self.value.split('|').collect())
    }
}

fn op_str(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Regex => "=~",
        MatchOp::NotRegex => "!~",
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, op_str(self.op), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new("foo", op, v).unwrap()
    }

    #[test]
    fn regexes_are_fully_anchored() {
        assert!(m(MatchOp::Regex, "foo").matches("foo"));
        assert!(
            !m(MatchOp::Regex, "foo").matches("foobar"),
            "unanchored end"
        );
        assert!(
            !m(MatchOp::Regex, "bar").matches("foobar"),
            "unanchored start"
        );
        // Anchoring wraps the whole alternation, not its first and last branch.
        assert!(!m(MatchOp::Regex, "a|b").matches("ab"));
        assert!(!m(MatchOp::Regex, "a|b").matches("xb"));
        assert!(m(MatchOp::Regex, "a|b").matches("b"));
        assert!(m(MatchOp::NotRegex, "foo").matches("foobar"));
        assert!(
            m(MatchOp::Regex, "a.b").matches("a\nb"),
            "dot matches newline as in Prometheus"
        );
    }

    #[test]
    fn empty_string_semantics() {
        assert!(m(MatchOp::Equal, "").matches(""));
        assert!(!m(MatchOp::NotEqual, "").matches(""));
        assert!(m(MatchOp::Regex, ".*").matches(""));
        assert!(!m(MatchOp::Regex, ".+").matches(""));
        assert!(m(MatchOp::NotRegex, ".+").matches(""));
        assert!(m(MatchOp::NotEqual, "x").matches(""));
    }

    #[test]
    fn invalid_regex_names_the_matcher() {
        let err = Matcher::new("job", MatchOp::Regex, "(")
            .unwrap_err()
            .to_string();
        assert!(err.contains("job=~\"(\""), "{err}");
    }

    #[test]
    fn literal_alternatives_only_for_plain_values() {
        assert_eq!(
            m(MatchOp::Regex, "a|b-c|d:e").literal_alternatives(),
            Some(vec!["a", "b-c", "d:e"])
        );
        assert_eq!(m(MatchOp::Regex, "a.*").literal_alternatives(), None);
        assert_eq!(m(MatchOp::Regex, "").literal_alternatives(), None);
        assert_eq!(m(MatchOp::NotRegex, "a").literal_alternatives(), None);
    }
}
