//! Label matchers: `name="value"`, `name!="value"`, `name=~"regex"`,
//! `name!~"regex"`, and lists of them (`{a="b", c=~"d.*"}`).
//!
//! Parsing follows Alertmanager's default ("fallback") mode: the UTF-8
//! matchers parser is tried first, and where it fails (or reads the input
//! differently) the classic parser of `pkg/labels` decides. So every input
//! Alertmanager 0.25 accepted is accepted, with the same meaning, and the
//! newer quoted forms (`"service.name"="api"`) work too.
//!
//! Regular expressions are anchored (`^(?:re)$`), as in Prometheus.

use std::cmp::Ordering;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::labels::{LabelSet, go_quote};

/// The four match operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MatchType {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regexp,
    /// `!~`
    NotRegexp,
}

impl MatchType {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }

    /// Whether the value is a regular expression.
    pub fn is_regex(self) -> bool {
        matches!(self, MatchType::Regexp | MatchType::NotRegexp)
    }

    /// Whether the operator is a positive one (`=` or `=~`).
    pub fn is_equal(self) -> bool {
        matches!(self, MatchType::Equal | MatchType::Regexp)
    }
}

/// Why a matcher could not be built or parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MatcherError(pub String);

/// One label matcher. A missing label matches as the empty string.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// The operator.
    pub kind: MatchType,
    /// The label name.
    pub name: String,
    /// The value, or the (unanchored) regular expression.
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher, compiling the anchored regex for `=~` and `!~`.
    pub fn new(
        kind: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let re = if kind.is_regex() {
            Some(compile_anchored(&value)?)
        } else {
            None
        };
        Ok(Matcher {
            kind,
            name,
            value,
            re,
        })
    }

    /// Whether a label value (`""` when absent) satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.kind {
            MatchType::Equal => value == self.value,
            MatchType::NotEqual => value != self.value,
            MatchType::Regexp => self.re.as_ref().is_some_and(|re| re.is_match(value)),
            MatchType::NotRegexp => !self.re.as_ref().is_some_and(|re| re.is_match(value)),
        }
    }

    /// Whether this matcher is satisfied by a label set.
    pub fn matches_labels(&self, labels: &LabelSet) -> bool {
        self.matches(labels.get(&self.name).map_or("", String::as_str))
    }

    /// Whether the matcher matches the empty string (a silence made only of
    /// such matchers would silence everything).
    pub fn matches_empty(&self) -> bool {
        match self.kind {
            MatchType::Equal => self.value.is_empty(),
            MatchType::Regexp => self.matches(""),
            _ => false,
        }
    }
}

/// Compiles `^(?:re)$`; errors read like Go's (`error parsing regexp:
/// unclosed group: `^(?:(x)$``).
pub(crate) fn compile_anchored(re: &str) -> Result<Regex, MatcherError> {
    let anchored = format!("^(?:{re})$");
    Regex::new(&anchored).map_err(|e| {
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .unwrap_or(text.trim())
            .to_string();
        MatcherError(format!("error parsing regexp: {reason}: `{anchored}`"))
    })
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.name == other.name && self.value == other.value
    }
}

impl Eq for Matcher {}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Alertmanager's `labels.Matchers` order: name, then value, then operator.
impl Ord for Matcher {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name
            .cmp(&other.name)
            .then_with(|| self.value.cmp(&other.value))
            .then_with(|| self.kind.cmp(&other.kind))
    }
}

/// `Matcher.String()`: `name="value"` (value escaped for `\`, newline and
/// `"`), or both quoted when the name holds a reserved character.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.chars().any(is_reserved) {
            write!(
                f,
                "{}{}{}",
                go_quote(&self.name),
                self.kind.as_str(),
                go_quote(&self.value)
            )
        } else {
            let escaped = self
                .value
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('"', "\\\"");
            write!(f, "{}{}\"{}\"", self.name, self.kind.as_str(), escaped)
        }
    }
}

/// `{a="b",c=~"d"}`: the form used in route keys and group keys.
pub fn matchers_string(matchers: &[Matcher]) -> String {
    let inner: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    format!("{{{}}}", inner.join(","))
}

/// Whether every matcher is satisfied by the label set.
pub fn matches_all(matchers: &[Matcher], labels: &LabelSet) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

fn is_reserved(c: char) -> bool {
    c.is_whitespace() || "{}!=~,\\\"'`".contains(c)
}

/// Parses a list of matchers, optionally in braces, as Alertmanager's
/// default mode does (one line of a `matchers:` list, or an API filter).
pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    let utf8 = utf8::parse(input);
    let classic = classic::parse_matchers(input);
    match (utf8, classic) {
        (Err(_), Ok(c)) => Ok(c),
        (Err(_), Err(e)) => Err(e),
        (Ok(n), Ok(c)) if n != c => Ok(c),
        (Ok(n), _) => Ok(n),
    }
}

/// Parses exactly one matcher (no braces), as `compat.Matcher`.
pub fn parse_matcher(input: &str) -> Result<Matcher, MatcherError> {
    if input.starts_with('{') || input.ends_with('}') {
        return Err(MatcherError(format!(
            "unexpected open or close brace: {input}"
        )));
    }
    let utf8 = utf8::parse(input).and_then(|mut ms| match ms.len() {
        1 => Ok(ms.remove(0)),
        0 => Err(MatcherError("no matchers".into())),
        n => Err(MatcherError(format!("expected 1 matcher, found {n}"))),
    });
    let classic = classic::parse_matcher(input);
    match (utf8, classic) {
        (Err(_), Ok(c)) => Ok(c),
        (Err(_), Err(e)) => Err(e),
        (Ok(n), Ok(c)) if n != c => Ok(c),
        (Ok(n), _) => Ok(n),
    }
}

/// The parser of `pkg/labels` (Alertmanager ≤ 0.26).
mod classic {
    use super::*;

    static MATCHER_RE: LazyLock<Regex> = LazyLock::new(|| {
        // Go's \s is [\t\n\f\r ].
        Regex::new(r"^[\t\n\f\r ]*([a-zA-Z_:][a-zA-Z0-9_:]*)[\t\n\f\r ]*(=~|=|!=|!~)[\t\n\f\r ]*((?s).*?)[\t\n\f\r ]*$")
            .expect("valid regex")
    });

    pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>, MatcherError> {
        let s = input.strip_prefix('{').unwrap_or(input);
        let s = s.strip_suffix('}').unwrap_or(s);
        let mut tokens = Vec::new();
        let mut token = String::new();
        let mut inside_quotes = false;
        let mut escaped = false;
        for c in s.chars() {
            match c {
                ',' if !inside_quotes => {
                    tokens.push(std::mem::take(&mut token));
                    continue;
                }
                ',' => {}
                '"' => {
                    if !escaped {
                        inside_quotes = !inside_quotes;
                    } else {
                        escaped = false;
                    }
                }
                '\\' => escaped = !escaped,
                _ => escaped = false,
            }
            token.push(c);
        }
        let last = token.trim();
        if !last.is_empty() {
            tokens.push(last.to_string());
        }
        tokens.iter().map(|t| parse_matcher(t)).collect()
    }

    pub fn parse_matcher(input: &str) -> Result<Matcher, MatcherError> {
        let Some(caps) = MATCHER_RE.captures(input) else {
            return Err(MatcherError(format!("bad matcher format: {input}")));
        };
        let name = &caps[1];
        let kind = match &caps[2] {
            "=" => MatchType::Equal,
            "!=" => MatchType::NotEqual,
            "=~" => MatchType::Regexp,
            _ => MatchType::NotRegexp,
        };
        let raw_full = &caps[3];
        let (raw, mut expect_trailing_quote) = match raw_full.strip_prefix('"') {
            Some(rest) => (rest, true),
            None => (raw_full, false),
        };
        let unescaped_quote = || {
            MatcherError(format!(
                "matcher value contains unescaped double quote: {raw_full}"
            ))
        };
        let mut value = String::new();
        let mut escaped = false;
        for (i, c) in raw.char_indices() {
            if escaped {
                escaped = false;
                match c {
                    'n' => value.push('\n'),
                    '"' | '\\' => value.push(c),
                    _ => {
                        value.push('\\');
                        value.push(c);
                    }
                }
                continue;
            }
            match c {
                '\\' => {
                    if i < raw.len() - 1 {
                        escaped = true;
                        continue;
                    }
                    value.push('\\');
                }
                '"' => {
                    if !expect_trailing_quote || i < raw.len() - 1 {
                        return Err(unescaped_quote());
                    }
                    expect_trailing_quote = false;
                }
                _ => value.push(c),
            }
        }
        if expect_trailing_quote {
            return Err(unescaped_quote());
        }
        Matcher::new(kind, name, value)
    }
}

/// The UTF-8 matchers parser (Alertmanager ≥ 0.27, `matcher/parse`).
mod utf8 {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Kind {
        OpenBrace,
        CloseBrace,
        Comma,
        Equals,
        NotEquals,
        Matches,
        NotMatches,
        Quoted,
        Unquoted,
        Eof,
    }

    #[derive(Clone, Debug)]
    struct Token {
        kind: Kind,
        text: String,
        column: usize,
    }

    fn lex(input: &str) -> Result<Vec<Token>, MatcherError> {
        let chars: Vec<char> = input.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        let push = |tokens: &mut Vec<Token>, kind, start: usize, end: usize| {
            tokens.push(Token {
                kind,
                text: chars[start..end].iter().collect(),
                column: start,
            });
        };
        while i < chars.len() {
            let c = chars[i];
            match c {
                '{' => push(&mut tokens, Kind::OpenBrace, i, i + 1),
                '}' => push(&mut tokens, Kind::CloseBrace, i, i + 1),
                ',' => push(&mut tokens, Kind::Comma, i, i + 1),
                '!' => match chars.get(i + 1) {
                    Some('=') => {
                        push(&mut tokens, Kind::NotEquals, i, i + 2);
                        i += 1;
                    }
                    Some('~') => {
                        push(&mut tokens, Kind::NotMatches, i, i + 2);
                        i += 1;
                    }
                    _ => {
                        return Err(MatcherError(format!(
                            "{}:{}: unexpected input, expected one of '=~'",
                            i,
                            i + 1
                        )));
                    }
                },
                '=' => {
                    if chars.get(i + 1) == Some(&'~') {
                        push(&mut tokens, Kind::Matches, i, i + 2);
                        i += 1;
                    } else {
                        push(&mut tokens, Kind::Equals, i, i + 1);
                    }
                }
                '"' => {
                    let start = i;
                    i += 1;
                    let mut escaped = false;
                    let mut closed = false;
                    while i < chars.len() {
                        let c = chars[i];
                        if escaped {
                            escaped = false;
                        } else if c == '\\' {
                            escaped = true;
                        } else if c == '"' {
                            closed = true;
                            break;
                        }
                        i += 1;
                    }
                    if !closed {
                        let text: String = chars[start..].iter().collect();
                        return Err(MatcherError(format!(
                            "{}:{}: {}: missing end \"",
                            start,
                            chars.len(),
                            text
                        )));
                    }
                    push(&mut tokens, Kind::Quoted, start, i + 1);
                }
                c if c.is_whitespace() => {}
                c if !is_reserved(c) => {
                    let start = i;
                    while i < chars.len() && !is_reserved(chars[i]) {
                        i += 1;
                    }
                    push(&mut tokens, Kind::Unquoted, start, i);
                    continue;
                }
                c => {
                    return Err(MatcherError(format!(
                        "{}:{}: {}: invalid input",
                        i,
                        i + 1,
                        c
                    )));
                }
            }
            i += 1;
        }
        tokens.push(Token {
            kind: Kind::Eof,
            text: String::new(),
            column: chars.len(),
        });
        Ok(tokens)
    }

    fn unexpected(t: &Token, what: &str) -> MatcherError {
        if t.kind == Kind::Eof {
            MatcherError(format!("0:{}: unexpected end of input, {what}", t.column))
        } else {
            MatcherError(format!(
                "{}:{}: unexpected {}: {what}",
                t.column,
                t.column + t.text.chars().count(),
                t.text
            ))
        }
    }

    fn unquote(t: &Token) -> Result<String, MatcherError> {
        if t.kind != Kind::Quoted {
            return Ok(t.text.clone());
        }
        go_unquote(&t.text).ok_or_else(|| {
            MatcherError(format!(
                "{}:{}: {}: invalid input",
                t.column,
                t.column + t.text.chars().count(),
                t.text
            ))
        })
    }

    pub fn parse(input: &str) -> Result<Vec<Matcher>, MatcherError> {
        let tokens = lex(input)?;
        let mut i = 0;
        let mut out = Vec::new();
        let has_open = tokens[0].kind == Kind::OpenBrace;
        if has_open {
            i += 1;
        }
        // Empty input, or "{}" (a bare "}" is an error).
        match tokens[i].kind {
            Kind::Eof if !has_open => return Ok(out),
            Kind::Eof => return Err(unexpected(&tokens[i], "expected close brace")),
            Kind::CloseBrace => return close(&tokens, i, has_open).map(|()| out),
            _ => {}
        }
        loop {
            let name_tok = &tokens[i];
            if !matches!(name_tok.kind, Kind::Quoted | Kind::Unquoted) {
                return Err(unexpected(name_tok, "expected label name"));
            }
            let name = unquote(name_tok)?;
            i += 1;
            let kind = match tokens[i].kind {
                Kind::Equals => MatchType::Equal,
                Kind::NotEquals => MatchType::NotEqual,
                Kind::Matches => MatchType::Regexp,
                Kind::NotMatches => MatchType::NotRegexp,
                _ => {
                    return Err(unexpected(
                        &tokens[i],
                        "expected an operator such as '=', '!=', '=~' or '!~'",
                    ));
                }
            };
            i += 1;
            let value_tok = &tokens[i];
            if !matches!(value_tok.kind, Kind::Quoted | Kind::Unquoted) {
                return Err(unexpected(value_tok, "expected label value"));
            }
            let value = unquote(value_tok)?;
            i += 1;
            out.push(
                Matcher::new(kind, name, value)
                    .map_err(|e| MatcherError(format!("failed to create matcher: {e}")))?,
            );
            match tokens[i].kind {
                Kind::Eof | Kind::CloseBrace => return close(&tokens, i, has_open).map(|()| out),
                Kind::Comma => {
                    i += 1;
                    match tokens[i].kind {
                        Kind::Eof | Kind::CloseBrace => {
                            return close(&tokens, i, has_open).map(|()| out);
                        }
                        Kind::Quoted | Kind::Unquoted => {}
                        _ => {
                            return Err(unexpected(
                                &tokens[i],
                                "expected a matcher or close brace after comma",
                            ));
                        }
                    }
                }
                _ => return Err(unexpected(&tokens[i], "expected a comma or close brace")),
            }
        }
    }

    /// At `tokens[i]` (EOF or `}`): the braces must balance and nothing may
    /// follow.
    fn close(tokens: &[Token], mut i: usize, has_open: bool) -> Result<(), MatcherError> {
        if has_open {
            if tokens[i].kind != Kind::CloseBrace {
                return Err(unexpected(&tokens[i], "expected close brace"));
            }
            i += 1;
        } else if tokens[i].kind == Kind::CloseBrace {
            return Err(MatcherError(format!(
                "0:{}: }}: expected opening brace",
                tokens[i].column + 1
            )));
        }
        if tokens[i].kind != Kind::Eof {
            return Err(unexpected(&tokens[i], "expected end of input"));
        }
        Ok(())
    }
}

/// Go's `strconv.Unquote` for a double-quoted literal; `None` when invalid
/// (bad escape, raw newline, invalid UTF-8 result).
pub(crate) fn go_unquote(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut bytes: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    let hex = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = v * 16 + chars.next()?.to_digit(16)?;
        }
        Some(v)
    };
    while let Some(c) = chars.next() {
        match c {
            '"' | '\n' => return None,
            '\\' => {
                let e = chars.next()?;
                match e {
                    'a' => bytes.push(7),
                    'b' => bytes.push(8),
                    'f' => bytes.push(12),
                    'n' => bytes.push(b'\n'),
                    'r' => bytes.push(b'\r'),
                    't' => bytes.push(b'\t'),
                    'v' => bytes.push(11),
                    '\\' => bytes.push(b'\\'),
                    '"' => bytes.push(b'"'),
                    'x' => bytes.push(u8::try_from(hex(&mut chars, 2)?).ok()?),
                    'u' | 'U' => {
                        let v = hex(&mut chars, if e == 'u' { 4 } else { 8 })?;
                        let ch = char::from_u32(v)?;
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8)?;
                        for _ in 0..2 {
                            v = v * 8 + chars.next()?.to_digit(8)?;
                        }
                        bytes.push(u8::try_from(v).ok()?);
                    }
                    _ => return None,
                }
            }
            c => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchType, name: &str, value: &str) -> Matcher {
        Matcher::new(kind, name, value).unwrap()
    }

    #[test]
    fn parses_quoted_and_unquoted() {
        assert_eq!(
            parse_matchers(r#"foo="bar""#).unwrap(),
            vec![m(MatchType::Equal, "foo", "bar")]
        );
        assert_eq!(
            parse_matchers("foo=bar").unwrap(),
            vec![m(MatchType::Equal, "foo", "bar")]
        );
        assert_eq!(
            parse_matchers(r#"{foo!="bar", baz=~"q.*",  x!~y}"#).unwrap(),
            vec![
                m(MatchType::NotEqual, "foo", "bar"),
                m(MatchType::Regexp, "baz", "q.*"),
                m(MatchType::NotRegexp, "x", "y"),
            ]
        );
        assert_eq!(parse_matchers("").unwrap(), vec![]);
        assert_eq!(parse_matchers("{}").unwrap(), vec![]);
    }

    #[test]
    fn utf8_names_and_escapes() {
        assert_eq!(
            parse_matchers(r#""service.name"="api""#).unwrap(),
            vec![m(MatchType::Equal, "service.name", "api")]
        );
        assert_eq!(
            parse_matchers(r#"foo="a\"b\nc""#).unwrap(),
            vec![m(MatchType::Equal, "foo", "a\"b\nc")]
        );
        assert_eq!(
            parse_matchers("foo=🙂").unwrap(),
            vec![m(MatchType::Equal, "foo", "🙂")]
        );
    }

    #[test]
    fn classic_fallback_accepts_old_forms() {
        // Unquoted regex with reserved characters: only the classic parser
        // reads this.
        assert_eq!(
            parse_matchers(r"foo=~[a-z]+\d").unwrap(),
            vec![m(MatchType::Regexp, "foo", r"[a-z]+\d")]
        );
        // Comma inside quotes.
        assert_eq!(
            parse_matchers(r#"foo="a,b", c="d""#).unwrap(),
            vec![
                m(MatchType::Equal, "foo", "a,b"),
                m(MatchType::Equal, "c", "d")
            ]
        );
        // Trailing comma.
        assert_eq!(
            parse_matchers("a=b,").unwrap(),
            vec![m(MatchType::Equal, "a", "b")]
        );
        // Value with spaces, unquoted: classic keeps the inner spaces.
        assert_eq!(
            parse_matchers("foo=bar baz").unwrap(),
            vec![m(MatchType::Equal, "foo", "bar baz")]
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse_matchers("foo").is_err());
        assert!(parse_matchers(r#"foo="bar"#).is_err());
        assert!(parse_matchers("foo=~(").is_err(), "bad regex");
        assert!(parse_matchers("=bar").is_err());
        assert!(parse_matchers(r#"foo="a"b""#).is_err());
        assert!(parse_matcher("{foo=bar}").is_err());
        // One matcher only: the classic parser reads the rest as the value.
        assert_eq!(
            parse_matcher("a=b,c=d").unwrap(),
            m(MatchType::Equal, "a", "b,c=d")
        );
        assert_eq!(
            parse_matcher("a!=b").unwrap(),
            m(MatchType::NotEqual, "a", "b")
        );
    }

    #[test]
    fn edge_cases_follow_the_fallback_rules() {
        // Unbalanced braces: the UTF-8 parser refuses, the classic parser
        // strips each brace on its own and accepts.
        assert_eq!(
            parse_matchers("{foo=bar").unwrap(),
            vec![m(MatchType::Equal, "foo", "bar")]
        );
        assert_eq!(
            parse_matchers("foo=bar}").unwrap(),
            vec![m(MatchType::Equal, "foo", "bar")]
        );
        // Surrounding and inner whitespace.
        assert_eq!(
            parse_matchers("  team  =~  \"a|b\"  ").unwrap(),
            vec![m(MatchType::Regexp, "team", "a|b")]
        );
        // Empty values.
        assert_eq!(
            parse_matchers(r#"zone="""#).unwrap(),
            vec![m(MatchType::Equal, "zone", "")]
        );
        assert_eq!(
            parse_matchers("zone=").unwrap(),
            vec![m(MatchType::Equal, "zone", "")]
        );
        assert!(m(MatchType::NotRegexp, "zone", "").matches("x"));
        // An escaped backslash inside quotes (a regex class).
        assert_eq!(parse_matchers(r#"path=~"\\d+""#).unwrap()[0].value, r"\d+");
        // Operators glued to values.
        assert_eq!(
            parse_matchers("a!=~x").unwrap(),
            vec![m(MatchType::NotEqual, "a", "~x")]
        );
        // Empty matcher between commas is an error.
        assert!(parse_matchers("a=b,,c=d").is_err());
        // A lone operator or name is an error.
        assert!(parse_matchers("=").is_err());
        assert!(parse_matchers("{,}").is_err());
    }

    #[test]
    fn regex_is_anchored_and_missing_label_is_empty() {
        let re = m(MatchType::Regexp, "sev", "crit|warn");
        assert!(re.matches("crit"));
        assert!(!re.matches("critical"));
        let ne = m(MatchType::NotEqual, "team", "x");
        assert!(ne.matches_labels(&LabelSet::new()));
        assert!(m(MatchType::Regexp, "a", ".*").matches_empty());
        assert!(!m(MatchType::NotEqual, "a", "").matches_empty());
    }

    #[test]
    fn display_and_order_match_alertmanager() {
        let mut ms = vec![
            m(MatchType::Regexp, "b", "x\"y"),
            m(MatchType::Equal, "a", "2"),
            m(MatchType::NotEqual, "a", "1"),
        ];
        ms.sort();
        assert_eq!(matchers_string(&ms), r#"{a!="1",a="2",b=~"x\"y"}"#);
        assert_eq!(m(MatchType::Equal, "a b", "c").to_string(), r#""a b"="c""#);
    }
}
