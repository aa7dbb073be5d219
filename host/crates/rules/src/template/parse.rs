//! Lexer and parser for Go's `text/template` language, as Prometheus uses it
//! for alert labels and annotations: `{{ }}` actions with `-` trim markers,
//! comments, pipelines, variables, fields, `if`/`else if`/`range`/`with`,
//! `define`/`template`/`block`, `break`/`continue`.
//!
//! Parse errors read like Go's: `template: NAME:LINE: MESSAGE`.

use std::collections::{BTreeMap, HashSet};

/// A byte offset into the template text.
pub(crate) type Pos = usize;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: Pos,
        name: String,
        pipe: Option<Pipe>,
        text: String,
    },
    Break(Pos),
    Continue(Pos),
}

/// The shared shape of `if`, `range` and `with`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Branch {
    pub pos: Pos,
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pipe {
    pub pos: Pos,
    /// Variables declared (`$x :=`) or assigned (`$x =`).
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Command>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Command {
    pub pos: Pos,
    /// The command as written, for error messages (`at <humanize $value>`).
    pub text: String,
    pub args: Vec<Arg>,
    /// Where each argument is and its text, for error messages.
    pub locs: Vec<(Pos, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    /// `.` itself.
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A function name.
    Ident(String, Pos),
    /// `.A.B`: fields of dot.
    Field(Vec<String>, Pos),
    /// `$x.A.B` (`$` alone is the data passed to the template).
    Variable(String, Vec<String>, Pos),
    /// `(pipeline)`, optionally followed by `.A.B`.
    Pipe(Box<Pipe>, Vec<String>, Pos),
}

/// A parsed template and the templates it defines.
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    pub name: String,
    pub text: String,
    pub root: Vec<Node>,
    pub defined: BTreeMap<String, Vec<Node>>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Field(String),
    Variable(String),
    Dot,
    Ident(String),
    Str(String),
    Char(char),
    Number(String),
    Bool(bool),
    Nil,
    Keyword(&'static str),
    Eof,
}

#[derive(Clone, Debug)]
struct Item {
    tok: Tok,
    pos: Pos,
    line: usize,
}

const KEYWORDS: [&str; 10] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(s) => format!("{s:?}"),
        Tok::LeftDelim => "<left delim>".into(),
        Tok::RightDelim => "<right delim>".into(),
        Tok::Space => "space".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Field(s) | Tok::Variable(s) | Tok::Ident(s) | Tok::Number(s) => format!("{s:?}"),
        Tok::Dot => "\".\"".into(),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Char(c) => format!("{c:?}"),
        Tok::Bool(b) => format!("\"{b}\""),
        Tok::Nil => "\"nil\"".into(),
        Tok::Keyword(k) => format!("<{k}>"),
        Tok::Eof => "EOF".into(),
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'a> {
    name: &'a str,
    src: &'a str,
    pos: usize,
    items: Vec<Item>,
}

impl<'a> Lexer<'a> {
    fn line_at(&self, pos: usize) -> usize {
        1 + self.src[..pos.min(self.src.len())].matches('\n').count()
    }

    fn err(&self, pos: usize, msg: impl std::fmt::Display) -> String {
        format!("template: {}:{}: {}", self.name, self.line_at(pos), msg)
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        let line = self.line_at(pos);
        self.items.push(Item { tok, pos, line });
    }

    fn run(mut self) -> Result<Vec<Item>, String> {
        let bytes = self.src.as_bytes();
        loop {
            // Text up to the next action.
            let rest = &self.src[self.pos..];
            let Some(off) = rest.find("{{") else {
                if !rest.is_empty() {
                    self.push(Tok::Text(rest.to_string()), self.pos);
                }
                self.pos = self.src.len();
                self.push(Tok::Eof, self.pos);
                return Ok(self.items);
            };
            let delim = self.pos + off;
            let trim_left = bytes.get(delim + 2) == Some(&b'-')
                && bytes.get(delim + 3).is_some_and(|c| is_space(*c));
            let mut text = &self.src[self.pos..delim];
            if trim_left {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                self.push(Tok::Text(text.to_string()), self.pos);
            }
            self.pos = delim + 2;
            if trim_left {
                self.pos += 2;
            }
            // A comment fills the whole action.
            let after_ws = self.pos;
            if self.src[after_ws..].starts_with("/*") {
                let Some(end) = self.src[after_ws + 2..].find("*/") else {
                    return Err(self.err(delim, "unclosed comment"));
                };
                let mut p = after_ws + 2 + end + 2;
                let trim_right;
                if self.src[p..].starts_with(" -}}")
                    || (self.src[p..].len() > 3
                        && is_space(bytes[p])
                        && self.src[p + 1..].starts_with("-}}"))
                {
                    p += 4;
                    trim_right = true;
                } else if self.src[p..].starts_with("}}") {
                    p += 2;
                    trim_right = false;
                } else {
                    return Err(self.err(delim, "comment ends before closing delimiter"));
                }
                self.pos = p;
                if trim_right {
                    while self.pos < bytes.len() && is_space(bytes[self.pos]) {
                        self.pos += 1;
                    }
                }
                continue;
            }
            self.push(Tok::LeftDelim, delim);
            self.lex_action(delim)?;
        }
    }

    /// Lexes the inside of an action up to and including its right delimiter.
    fn lex_action(&mut self, start: usize) -> Result<(), String> {
        let bytes = self.src.as_bytes();
        let mut paren_depth = 0i32;
        loop {
            let rest = &self.src[self.pos..];
            // Right delimiter, possibly with a trim marker.
            if rest.len() >= 4 && is_space(bytes[self.pos]) && rest[1..].starts_with("-}}") {
                let p = self.pos;
                self.pos += 4;
                if paren_depth > 0 {
                    return Err(self.err(p, "unclosed left paren"));
                }
                self.push(Tok::RightDelim, p);
                while self.pos < bytes.len() && is_space(bytes[self.pos]) {
                    self.pos += 1;
                }
                return Ok(());
            }
            if rest.starts_with("}}") {
                let p = self.pos;
                self.pos += 2;
                if paren_depth > 0 {
                    return Err(self.err(p, "unclosed left paren"));
                }
                self.push(Tok::RightDelim, p);
                return Ok(());
            }
            let Some(c) = rest.chars().next() else {
                return Err(self.err(start, "unclosed action"));
            };
            let p = self.pos;
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    while self.pos < bytes.len()
                        && is_space(bytes[self.pos])
                        && !(self.src[self.pos..].len() >= 4
                            && self.src[self.pos + 1..].starts_with("-}}"))
                    {
                        self.pos += 1;
                    }
                    self.push(Tok::Space, p);
                }
                '=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, p);
                }
                ':' => {
                    if rest[1..].starts_with('=') {
                        self.pos += 2;
                        self.push(Tok::Declare, p);
                    } else {
                        return Err(self.err(p, "expected :="));
                    }
                }
                '|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, p);
                }
                ',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, p);
                }
                '(' => {
                    self.pos += 1;
                    paren_depth += 1;
                    self.push(Tok::LParen, p);
                }
                ')' => {
                    self.pos += 1;
                    paren_depth -= 1;
                    if paren_depth < 0 {
                        return Err(self.err(p, format!("unexpected right paren {:?}", ')')));
                    }
                    self.push(Tok::RParen, p);
                }
                '"' => {
                    let s = self.lex_quote(p)?;
                    self.push(Tok::Str(s), p);
                }
                '`' => {
                    let Some(end) = rest[1..].find('`') else {
                        return Err(self.err(p, "unterminated raw quoted string"));
                    };
                    let s = rest[1..1 + end].replace('\r', "");
                    self.pos += end + 2;
                    self.push(Tok::Str(s), p);
                }
                '\'' => {
                    let ch = self.lex_char(p)?;
                    self.push(Tok::Char(ch), p);
                }
                '$' => {
                    let name = self.scan_ident(self.pos + 1);
                    self.pos += 1 + name.len();
                    self.push(Tok::Variable(format!("${name}")), p);
                }
                '.' => {
                    if rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
                        self.lex_number(p)?;
                    } else {
                        let name = self.scan_ident(self.pos + 1);
                        self.pos += 1 + name.len();
                        if name.is_empty() {
                            self.push(Tok::Dot, p);
                        } else {
                            self.push(Tok::Field(name), p);
                        }
                    }
                }
                '+' | '-' | '0'..='9' => self.lex_number(p)?,
                c if c == '_' || c.is_alphabetic() => {
                    let word = self.scan_ident(self.pos);
                    self.pos += word.len();
                    let tok = if let Some(k) = KEYWORDS.iter().find(|k| **k == word) {
                        Tok::Keyword(k)
                    } else if word == "true" {
                        Tok::Bool(true)
                    } else if word == "false" {
                        Tok::Bool(false)
                    } else if word == "nil" {
                        Tok::Nil
                    } else {
                        Tok::Ident(word)
                    };
                    // An identifier must end at a delimiter-ish character.
                    if let Some(n) = self.src[self.pos..].chars().next()
                        && !(is_space(n as u8) && n.is_ascii()
                            || matches!(n, '.' | ',' | '|' | ':' | ')' | '(' | '}' | '='))
                    {
                        return Err(self.err(p, format!("bad character {:?}", n)));
                    }
                    self.push(tok, p);
                }
                c => {
                    return Err(self.err(
                        p,
                        format!("unrecognized character in action: {}", go_rune(c)),
                    ));
                }
            }
        }
    }

    fn scan_ident(&self, from: usize) -> String {
        self.src[from..]
            .chars()
            .take_while(|c| is_alnum(*c))
            .collect()
    }

    fn lex_quote(&mut self, start: usize) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = self.src[start + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = start + 1 + i + 1;
                    return Ok(out);
                }
                '\n' => break,
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'a' => out.push('\x07'),
                        'b' => out.push('\x08'),
                        'f' => out.push('\x0c'),
                        'v' => out.push('\x0b'),
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        'x' | 'u' | 'U' => {
                            let n = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let hex: String =
                                (0..n).filter_map(|_| chars.next().map(|x| x.1)).collect();
                            let v = u32::from_str_radix(&hex, 16)
                                .map_err(|_| self.err(start, "invalid syntax"))?;
                            if e == 'x' {
                                // A byte; treat as a Latin-1 code point when not ASCII.
                                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                            } else {
                                out.push(
                                    char::from_u32(v)
                                        .ok_or_else(|| self.err(start, "invalid syntax"))?,
                                );
                            }
                        }
                        '0'..='7' => {
                            let mut s = String::from(e);
                            for _ in 0..2 {
                                if let Some((_, d)) = chars.next() {
                                    s.push(d);
                                }
                            }
                            let v = u32::from_str_radix(&s, 8)
                                .map_err(|_| self.err(start, "invalid syntax"))?;
                            out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.err(start, "invalid syntax")),
                    }
                }
                c => out.push(c),
            }
        }
        Err(self.err(start, "unterminated quoted string"))
    }

    fn lex_char(&mut self, start: usize) -> Result<char, String> {
        let rest = &self.src[start + 1..];
        let mut it = rest.char_indices();
        let (c, consumed) = match it.next() {
            Some((_, '\\')) => {
                let Some((_, e)) = it.next() else {
                    return Err(self.err(start, "unterminated character constant"));
                };
                let c = match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '\\' => '\\',
                    '\'' => '\'',
                    '0' => '\0',
                    _ => return Err(self.err(start, "invalid syntax")),
                };
                (c, 1 + e.len_utf8())
            }
            Some((_, c)) if c != '\'' && c != '\n' => (c, c.len_utf8()),
            _ => return Err(self.err(start, "unterminated character constant")),
        };
        if !rest[consumed..].starts_with('\'') {
            return Err(self.err(start, "unterminated character constant"));
        }
        self.pos = start + 1 + consumed + 1;
        Ok(c)
    }

    fn lex_number(&mut self, start: usize) -> Result<(), String> {
        let b = self.src.as_bytes();
        let mut p = start;
        if p < b.len() && (b[p] == b'+' || b[p] == b'-') {
            p += 1;
        }
        let mut digits: &str = "0123456789_";
        if b.get(p) == Some(&b'0') && matches!(b.get(p + 1), Some(b'x' | b'X')) {
            p += 2;
            digits = "0123456789abcdefABCDEF_";
        } else if b.get(p) == Some(&b'0') && matches!(b.get(p + 1), Some(b'o' | b'O')) {
            p += 2;
            digits = "01234567_";
        } else if b.get(p) == Some(&b'0') && matches!(b.get(p + 1), Some(b'b' | b'B')) {
            p += 2;
            digits = "01_";
        }
        while p < b.len() && digits.as_bytes().contains(&b[p]) {
            p += 1;
        }
        if b.get(p) == Some(&b'.') {
            p += 1;
            while p < b.len() && digits.as_bytes().contains(&b[p]) {
                p += 1;
            }
        }
        let exp_chars: &[u8] = if digits.len() > 12 { b"pP" } else { b"eEpP" };
        if p < b.len() && exp_chars.contains(&b[p]) {
            p += 1;
            if p < b.len() && (b[p] == b'+' || b[p] == b'-') {
                p += 1;
            }
            while p < b.len() && b[p].is_ascii_digit() {
                p += 1;
            }
        }
        if let Some(c) = self.src[p..].chars().next()
            && is_alnum(c)
        {
            return Err(self.err(
                start,
                format!("bad number syntax: {:?}", &self.src[start..=p]),
            ));
        }
        let text = self.src[start..p].to_string();
        self.pos = p;
        self.push(Tok::Number(text), start);
        Ok(())
    }
}

/// Go's `%#U` of a rune.
fn go_rune(c: char) -> String {
    format!("U+{:04X} '{}'", c as u32, c)
}

/// Parses Go number-literal text into an int or a float, as Go's template
/// parser types constants passed to functions.
pub(crate) fn number_arg(text: &str) -> Option<Arg> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, &clean[..]),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        if h.contains('p') || h.contains('.') {
            None
        } else {
            i64::from_str_radix(h, 16).ok()
        }
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bn) = lower.strip_prefix("0b") {
        i64::from_str_radix(bn, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else if lower.bytes().all(|c| c.is_ascii_digit()) {
        lower.parse::<i64>().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Some(Arg::Int(if neg { -i } else { i }));
    }
    let f: f64 = body.parse().ok()?;
    Some(Arg::Float(if neg { -f } else { f }))
}

struct Parser<'a> {
    name: &'a str,
    src: &'a str,
    items: Vec<Item>,
    i: usize,
    vars: Vec<String>,
    funcs: &'a HashSet<&'static str>,
    defined: BTreeMap<String, Vec<Node>>,
    range_depth: usize,
}

enum Ended {
    End,
    Else,
    /// `{{else if ...}}`: the else branch starts with an `if`.
    ElseIf(Pos),
}

impl<'a> Parser<'a> {
    fn err(&self, msg: impl std::fmt::Display) -> String {
        let line = self
            .items
            .get(self.i.saturating_sub(1))
            .map(|it| it.line)
            .unwrap_or(1);
        format!("template: {}:{}: {}", self.name, line, msg)
    }

    fn next(&mut self) -> Item {
        let it = self.items[self.i.min(self.items.len() - 1)].clone();
        if self.i < self.items.len() {
            self.i += 1;
        }
        it
    }

    fn peek(&self) -> &Item {
        &self.items[self.i.min(self.items.len() - 1)]
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.tok != Tok::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let save = self.i;
        let it = self.next_non_space();
        self.i = save;
        // Keep position after spaces so the caller's next() sees the token.
        while self.peek().tok == Tok::Space {
            self.i += 1;
        }
        it
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), String> {
        let it = self.next_non_space();
        if it.tok != Tok::RightDelim {
            return Err(self.err(format!("unexpected {} in {}", describe(&it.tok), context)));
        }
        Ok(())
    }

    /// Parses a list of nodes up to `{{end}}`/`{{else}}` (when `nested`) or EOF.
    fn item_list(&mut self, nested: bool) -> Result<(Vec<Node>, Option<Ended>), String> {
        let mut list = Vec::new();
        loop {
            let it = self.next();
            match it.tok {
                Tok::Eof => {
                    if nested {
                        return Err(self.err("unexpected EOF"));
                    }
                    return Ok((list, None));
                }
                Tok::Text(s) => list.push(Node::Text(s)),
                Tok::LeftDelim => {
                    let kw = self.peek_non_space();
                    match kw.tok {
                        Tok::Keyword("end") => {
                            self.next();
                            self.expect_right_delim("end")?;
                            if !nested {
                                return Err(self.err("unexpected {{end}}"));
                            }
                            return Ok((list, Some(Ended::End)));
                        }
                        Tok::Keyword("else") => {
                            self.next();
                            if !nested {
                                return Err(self.err("unexpected {{else}}"));
                            }
                            let n = self.peek_non_space();
                            if n.tok == Tok::Keyword("if") {
                                // `{{else if x}}`: leave `if` to be parsed as a nested if.
                                return Ok((list, Some(Ended::ElseIf(kw.pos))));
                            }
                            self.expect_right_delim("else")?;
                            return Ok((list, Some(Ended::Else)));
                        }
                        Tok::Keyword("define") => {
                            self.next();
                            if nested {
                                return Err(self.err("unexpected <define> in command"));
                            }
                            self.define()?;
                        }
                        _ => {
                            if let Some(n) = self.action()? {
                                list.push(n);
                            }
                        }
                    }
                }
                other => return Err(self.err(format!("unexpected {}", describe(&other)))),
            }
        }
    }

    fn define(&mut self) -> Result<(), String> {
        let name = self.next_non_space();
        let Tok::Str(name) = name.tok else {
            return Err(self.err(format!(
                "unexpected {} in define clause",
                describe(&name.tok)
            )));
        };
        self.expect_right_delim("define clause")?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end) = self.item_list(true)?;
        self.vars = saved_vars;
        if !matches!(end, Some(Ended::End)) {
            return Err(self.err("unexpected {{else}} in define"));
        }
        self.defined.insert(name, list);
        Ok(())
    }

    /// Parses the action after `{{`; `None` for actions that produce no node.
    fn action(&mut self) -> Result<Option<Node>, String> {
        let it = self.peek_non_space();
        match it.tok {
            Tok::Keyword("if") => {
                self.next();
                Ok(Some(Node::If(self.control("if", it.pos)?)))
            }
            Tok::Keyword("range") => {
                self.next();
                self.range_depth += 1;
                let r = self.control("range", it.pos);
                self.range_depth -= 1;
                Ok(Some(Node::Range(r?)))
            }
            Tok::Keyword("with") => {
                self.next();
                Ok(Some(Node::With(self.control("with", it.pos)?)))
            }
            Tok::Keyword("template") => {
                self.next();
                let name_pos = self.peek_non_space().pos;
                let (name, pipe) = self.template_clause("template clause")?;
                let text = template_text(&name, &pipe);
                Ok(Some(Node::Template {
                    pos: name_pos,
                    name,
                    pipe,
                    text,
                }))
            }
            Tok::Keyword("block") => {
                self.next();
                let name_pos = self.peek_non_space().pos;
                let (name, pipe) = self.template_clause("block clause")?;
                let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
                let (list, end) = self.item_list(true)?;
                self.vars = saved_vars;
                if !matches!(end, Some(Ended::End)) {
                    return Err(self.err("unexpected {{else}} in block"));
                }
                self.defined.insert(name.clone(), list);
                let text = template_text(&name, &pipe);
                Ok(Some(Node::Template {
                    pos: name_pos,
                    name,
                    pipe,
                    text,
                }))
            }
            Tok::Keyword("break") | Tok::Keyword("continue") => {
                self.next();
                let kw = if it.tok == Tok::Keyword("break") {
                    "break"
                } else {
                    "continue"
                };
                if self.range_depth == 0 {
                    return Err(self.err(format!("{{{{{kw}}}}} outside {{{{range}}}}")));
                }
                self.expect_right_delim(kw)?;
                Ok(Some(if kw == "break" {
                    Node::Break(it.pos)
                } else {
                    Node::Continue(it.pos)
                }))
            }
            Tok::Keyword(k) => Err(self.err(format!("unexpected <{k}> in command"))),
            _ => Ok(Some(Node::Action(
                self.pipeline("command", Tok::RightDelim)?,
            ))),
        }
    }

    fn template_clause(&mut self, context: &str) -> Result<(String, Option<Pipe>), String> {
        let name = self.next_non_space();
        let Tok::Str(name) = name.tok else {
            return Err(self.err(format!("unexpected {} in {}", describe(&name.tok), context)));
        };
        let n = self.peek_non_space();
        if n.tok == Tok::RightDelim {
            self.next();
            return Ok((name, None));
        }
        Ok((name, Some(self.pipeline(context, Tok::RightDelim)?)))
    }

    fn control(&mut self, kind: &str, pos: Pos) -> Result<Branch, String> {
        let vars_len = self.vars.len();
        let pipe = self.pipeline(kind, Tok::RightDelim)?;
        let (list, end) = self.item_list(true)?;
        let else_list = match end {
            Some(Ended::End) => None,
            Some(Ended::Else) => {
                let (l, end2) = self.item_list(true)?;
                if !matches!(end2, Some(Ended::End)) {
                    return Err(self.err("expected end; found {{else}}"));
                }
                Some(l)
            }
            Some(Ended::ElseIf(p)) => {
                if kind != "if" {
                    // Go 1.19 allows `else if` only in if (and `else with` not at all).
                }
                // Parse `if ...` as the only node of the else list; its own
                // `{{end}}` also ends this control.
                let inner = self.next_non_space();
                debug_assert_eq!(inner.tok, Tok::Keyword("if"));
                let b = self.control("if", p)?;
                Some(vec![Node::If(b)])
            }
            None => return Err(self.err("unexpected EOF")),
        };
        self.vars.truncate(vars_len);
        Ok(Branch {
            pos,
            pipe,
            list,
            else_list,
        })
    }

    fn pipeline(&mut self, context: &str, end: Tok) -> Result<Pipe, String> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            decl: vec![],
            is_assign: false,
            cmds: vec![],
        };
        // Declarations: `$x :=`, `$x =`, `$i, $e :=`.
        if let Tok::Variable(v) = &start.tok {
            let save = self.i;
            self.next();
            let n = self.peek_non_space();
            match n.tok {
                Tok::Declare | Tok::Assign => {
                    self.next();
                    pipe.is_assign = n.tok == Tok::Assign;
                    if pipe.is_assign && !self.vars.contains(v) {
                        return Err(self.err(format!("undefined variable {:?}", v)));
                    }
                    pipe.decl.push(v.clone());
                    if !pipe.is_assign {
                        self.vars.push(v.clone());
                    }
                }
                Tok::Comma if context == "range" => {
                    self.next();
                    let v2 = self.next_non_space();
                    let Tok::Variable(v2) = v2.tok else {
                        return Err(self.err("range can only initialize variables"));
                    };
                    let d = self.next_non_space();
                    if d.tok != Tok::Declare && d.tok != Tok::Assign {
                        return Err(self.err("range can only initialize variables"));
                    }
                    pipe.is_assign = d.tok == Tok::Assign;
                    pipe.decl.push(v.clone());
                    pipe.decl.push(v2.clone());
                    if !pipe.is_assign {
                        self.vars.push(v.clone());
                        self.vars.push(v2);
                    }
                }
                _ => self.i = save,
            }
        }
        loop {
            let it = self.peek_non_space();
            if it.tok == end {
                self.next();
                if pipe.cmds.is_empty() {
                    return Err(self.err(format!("missing value for {context}")));
                }
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if matches!(
                        c.args[0],
                        Arg::Bool(_)
                            | Arg::Dot
                            | Arg::Nil
                            | Arg::Int(_)
                            | Arg::Float(_)
                            | Arg::Str(_)
                    ) {
                        return Err(self.err(format!(
                            "non executable command in pipeline stage {}",
                            i + 1
                        )));
                    }
                }
                return Ok(pipe);
            }
            match it.tok {
                Tok::Eof | Tok::RightDelim | Tok::RParen => {
                    return Err(self.err(format!(
                        "unexpected {} in {}",
                        describe(&it.tok),
                        context
                    )));
                }
                _ => {}
            }
            let cmd = self.command(&end)?;
            pipe.cmds.push(cmd);
        }
    }

    fn command(&mut self, end: &Tok) -> Result<Command, String> {
        let start = self.peek_non_space();
        let mut args = Vec::new();
        let mut locs = Vec::new();
        let mut last_end = start.pos;
        loop {
            let it = self.peek_non_space();
            match &it.tok {
                Tok::Pipe => {
                    if args.is_empty() {
                        return Err(self.err("missing command"));
                    }
                    self.next();
                    break;
                }
                t if t == end => break,
                Tok::RightDelim | Tok::RParen | Tok::Eof => {
                    return Err(self.err(format!("unexpected {} in operand", describe(&it.tok))));
                }
                _ => {}
            }
            let arg_start = self.peek_non_space().pos;
            let (arg, node_pos) = self.operand()?;
            args.push(arg);
            last_end = self.items[self.i.saturating_sub(1)].pos
                + tok_len(&self.items[self.i.saturating_sub(1)], self.src);
            locs.push((node_pos, normalize_ws(&self.src[arg_start..last_end])));
            // After an operand: space, `|`, or the end.
            let n = self.peek();
            match &n.tok {
                Tok::Space | Tok::Pipe => {}
                t if t == end => {}
                Tok::RightDelim | Tok::RParen => {}
                other => {
                    return Err(self.err(format!("unexpected {} in operand", describe(other))));
                }
            }
        }
        if args.is_empty() {
            return Err(self.err("empty command"));
        }
        let text = normalize_ws(&self.src[start.pos..last_end.max(start.pos)]);
        Ok(Command {
            pos: start.pos,
            text,
            args,
            locs,
        })
    }

    /// An operand and the position Go's error messages give it (a chain
    /// `.A.B` or `$x.A` is placed at its first chained field).
    fn operand(&mut self) -> Result<(Arg, Pos), String> {
        let it = self.next_non_space();
        let base = match it.tok {
            Tok::Ident(name) => {
                if !self.funcs.contains(name.as_str()) {
                    return Err(self.err(format!("function {:?} not defined", name)));
                }
                Arg::Ident(name, it.pos)
            }
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil,
            Tok::Bool(b) => Arg::Bool(b),
            Tok::Str(s) => Arg::Str(s),
            Tok::Char(c) => Arg::Int(c as i64),
            Tok::Number(n) => {
                number_arg(&n).ok_or_else(|| self.err(format!("illegal number syntax: {:?}", n)))?
            }
            Tok::Field(f) => {
                let mut fields = vec![f];
                let chain_pos = self.peek().pos;
                while let Tok::Field(f) = &self.peek().tok {
                    fields.push(f.clone());
                    self.next();
                }
                let pos = if fields.len() > 1 { chain_pos } else { it.pos };
                return Ok((Arg::Field(fields, pos), pos));
            }
            Tok::Variable(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err(format!("undefined variable {:?}", v)));
                }
                let mut fields = vec![];
                let chain_pos = self.peek().pos;
                while let Tok::Field(f) = &self.peek().tok {
                    fields.push(f.clone());
                    self.next();
                }
                let pos = if fields.is_empty() { it.pos } else { chain_pos };
                return Ok((Arg::Variable(v, fields, pos), pos));
            }
            Tok::LParen => {
                let p = self.pipeline("parenthesized pipeline", Tok::RParen)?;
                let mut fields = vec![];
                let chain_pos = self.peek().pos;
                while let Tok::Field(f) = &self.peek().tok {
                    fields.push(f.clone());
                    self.next();
                }
                let pos = if fields.is_empty() { it.pos } else { chain_pos };
                return Ok((Arg::Pipe(Box::new(p), fields, pos), pos));
            }
            other => return Err(self.err(format!("unexpected {} in operand", describe(&other)))),
        };
        if let Tok::Field(_) = self.peek().tok {
            return Err(self.err(format!(
                "unexpected . after term {:?}",
                describe(&it_text(&base))
            )));
        }
        Ok((base, it.pos))
    }
}

/// Go's `TemplateNode.String()`.
fn template_text(name: &str, pipe: &Option<Pipe>) -> String {
    match pipe {
        None => format!("{{{{template {}}}}}", crate::gofmt::quote(name)),
        Some(p) => {
            let cmds: Vec<&str> = p.cmds.iter().map(|c| c.text.as_str()).collect();
            format!(
                "{{{{template {} {}}}}}",
                crate::gofmt::quote(name),
                cmds.join(" | ")
            )
        }
    }
}

/// Collapses whitespace outside quotes, as Go's node `String()` prints.
fn normalize_ws(s: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut space = false;
    for c in s.trim().chars() {
        if let Some(q) = quote {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() && !out.ends_with('(') && c != ')' {
            out.push(' ');
        }
        space = false;
        if matches!(c, '"' | '`' | '\'') {
            quote = Some(c);
        }
        out.push(c);
    }
    out
}

fn it_text(a: &Arg) -> Tok {
    match a {
        Arg::Ident(n, _) => Tok::Ident(n.clone()),
        Arg::Str(s) => Tok::Str(s.clone()),
        Arg::Bool(b) => Tok::Bool(*b),
        _ => Tok::Nil,
    }
}

fn tok_len(it: &Item, src: &str) -> usize {
    match &it.tok {
        Tok::Str(_) => {
            // Re-scan the quoted text in the source for its length.
            let rest = &src[it.pos..];
            let q = rest.as_bytes()[0];
            if q == b'`' {
                rest[1..].find('`').map(|e| e + 2).unwrap_or(rest.len())
            } else {
                let mut esc = false;
                for (i, c) in rest.char_indices().skip(1) {
                    if esc {
                        esc = false;
                    } else if c == '\\' {
                        esc = true;
                    } else if c == '"' {
                        return i + 1;
                    }
                }
                rest.len()
            }
        }
        Tok::Char(_) => src[it.pos + 1..].find('\'').map(|e| e + 2).unwrap_or(1),
        Tok::Field(f) => f.len() + 1,
        Tok::Variable(v) | Tok::Ident(v) | Tok::Number(v) => v.len(),
        Tok::Bool(b) => b.to_string().len(),
        Tok::Nil => 3,
        _ => 1,
    }
}

/// Parses `text` into a template named `name`, knowing the function names
/// `funcs`.
pub(crate) fn parse(name: &str, text: &str, funcs: &HashSet<&'static str>) -> Result<Tree, String> {
    let items = Lexer {
        name,
        src: text,
        pos: 0,
        items: vec![],
    }
    .run()?;
    let mut p = Parser {
        name,
        src: text,
        items,
        i: 0,
        vars: vec!["$".to_string()],
        funcs,
        defined: BTreeMap::new(),
        range_depth: 0,
    };
    let (root, _) = p.item_list(false)?;
    Ok(Tree {
        name: name.to_string(),
        text: text.to_string(),
        root,
        defined: p.defined,
    })
}
