//! The template functions: Go's built-ins and Prometheus 2.42's function map.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use super::TemplateContext;
use super::exec::{Sample, Value};
use super::printf;
use crate::gofmt;

/// Every function a template may call: Go's `text/template` built-ins and
/// Prometheus 2.42's additions.
pub const FUNCTION_NAMES: &[&str] = &[
    // Go built-ins.
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "call",
    // Prometheus.
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
];

pub(crate) fn function_set() -> HashSet<&'static str> {
    FUNCTION_NAMES.iter().copied().collect()
}

pub(crate) enum CallError {
    /// Wrong argument count: reported as is, at the function name.
    Arity(String),
    /// An argument of the wrong type: reported as is, at that argument.
    ArgType(usize, String),
    /// The function failed: reported as `error calling NAME: ...`.
    Failed(String),
}

type R = Result<Value, CallError>;

fn arity(name: &str, args: &[Value], want: usize) -> Result<(), CallError> {
    if args.len() != want {
        return Err(CallError::Arity(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn at_least(name: &str, args: &[Value], want: usize) -> Result<(), CallError> {
    if args.len() < want {
        return Err(CallError::Arity(format!(
            "wrong number of args for {name}: want at least {want} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn wrong_type(i: usize, expected: &str, got: &Value) -> CallError {
    CallError::ArgType(
        i,
        format!(
            "wrong type for value; expected {expected}; got {}",
            got.go_type()
        ),
    )
}

fn want_str(args: &[Value], i: usize) -> Result<String, CallError> {
    match &args[i] {
        Value::Str(s) | Value::Html(s) => Ok(s.clone()),
        other => Err(wrong_type(i, "string", other)),
    }
}

fn want_sample(args: &[Value], i: usize) -> Result<Option<Rc<Sample>>, CallError> {
    match &args[i] {
        Value::Sample(s) => Ok(Some(s.clone())),
        Value::Nil => Ok(None),
        other => Err(wrong_type(i, "*template.sample", other)),
    }
}

fn want_samples(args: &[Value], i: usize) -> Result<Rc<Vec<Rc<Sample>>>, CallError> {
    match &args[i] {
        Value::Samples(s) => Ok(s.clone()),
        Value::Nil => Ok(Rc::new(vec![])),
        other => Err(wrong_type(i, "template.queryResult", other)),
    }
}

/// The number of arguments a function takes: exactly `n`, or at least `n`
/// when variadic (Go reflects it from the function's signature).
pub(crate) fn arity_of(name: &str) -> (usize, bool) {
    match name {
        "and" | "or" | "index" | "slice" | "printf" | "eq" | "call" => (1, true),
        "print" | "println" | "html" | "js" | "urlquery" | "args" => (0, true),
        "ne" | "lt" | "le" | "gt" | "ge" | "label" | "match" | "sortByLabel" => (2, false),
        "reReplaceAll" => (3, false),
        "pathPrefix" | "externalURL" => (0, false),
        _ => (1, false),
    }
}

/// Go's regexp error text for a pattern Rust's regex refused.
pub(crate) fn go_regex_error(pattern: &str, e: &regex::Error) -> String {
    let msg = e.to_string();
    let code = if msg.contains("unclosed group") {
        "missing closing )"
    } else if msg.contains("unclosed character class") {
        "missing closing ]"
    } else if msg.contains("unopened group") {
        "unexpected )"
    } else if msg.contains("repetition operator missing expression") {
        "missing argument to repetition operator"
    } else if msg.contains("incomplete escape sequence") {
        "trailing backslash at end of expression"
    } else if msg.contains("escape") {
        "invalid escape sequence"
    } else if msg.contains("invalid character class range") {
        "invalid character class range"
    } else if msg.contains("look-around") || msg.contains("backreferences") {
        "invalid or unsupported Perl syntax"
    } else {
        return format!("error parsing regexp: {}", first_line(&msg));
    };
    format!("error parsing regexp: {code}: `{pattern}`")
}

/// Go's `regexp` quoting of a pattern in `Compile(...)` errors.
fn regexp_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c != '`' && c != '\u{feff}' && (c == '\t' || !c.is_control()))
    {
        format!("`{s}`")
    } else {
        gofmt::quote(s)
    }
}

const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

/// Prometheus' `convertToFloat`: floats, ints and numeric strings.
fn to_float(v: &Value) -> Result<f64, CallError> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s).ok_or_else(|| {
            CallError::Failed(format!(
                "strconv.ParseFloat: parsing {}: invalid syntax",
                gofmt::quote(s)
            ))
        }),
        other => Err(CallError::Failed(format!(
            "can't convert {} to float",
            other.go_type()
        ))),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the forms people write.
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.to_ascii_lowercase();
    let body = t.trim_start_matches(['+', '-']);
    match body {
        "inf" | "infinity" => {
            return Some(if t.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if body.contains("inf") || body.contains("nan") || s.contains('_') {
        return None;
    }
    s.parse::<f64>().ok()
}

fn go_title(s: &str) -> String {
    fn is_sep(c: char) -> bool {
        if (c as u32) <= 0x7f {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if c.is_alphabetic() || c.is_numeric() {
            return false;
        }
        c.is_whitespace()
    }
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_sep(prev) { simple_upper(c) } else { c };
            prev = c;
            out
        })
        .collect()
}

/// Go's per-rune `unicode.ToUpper`: a rune without a one-rune upper case
/// stays as it is.
fn simple_upper(c: char) -> char {
    let mut u = c.to_uppercase();
    match (u.next(), u.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

fn simple_lower(c: char) -> char {
    let mut u = c.to_lowercase();
    match (u.next(), u.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The text of `html`, `js` and `urlquery`'s arguments (Go's `evalArgs`).
fn eval_args_text(args: &[Value]) -> String {
    if let [Value::Str(s)] = args {
        return s.clone();
    }
    printf::sprint(args)
}

/// Go's `net.SplitHostPort`, `None` on error.
fn split_host_port(hp: &str) -> Option<(String, String)> {
    if let Some(rest) = hp.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = after.strip_prefix(':')?;
        if port.contains(':') || port.contains('[') || port.contains(']') {
            return None;
        }
        return Some((host.to_string(), port.to_string()));
    }
    let i = hp.rfind(':')?;
    let host = &hp[..i];
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return None;
    }
    let port = &hp[i + 1..];
    if port.contains('[') || port.contains(']') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The SI-prefixed rendering Prometheus' `humanize` gives.
pub(crate) fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return gofmt::format_g(v, Some(4), false);
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", gofmt::format_g(v, Some(4), false))
}

pub(crate) fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return gofmt::format_g(v, Some(4), false);
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", gofmt::format_g(v, Some(4), false))
}

pub(crate) fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return gofmt::format_g(v, Some(4), false);
    }
    if v == 0.0 {
        return format!("{}s", gofmt::format_g(v, Some(4), false));
    }
    if v.abs() >= 1.0 {
        let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
        let d = v as i64;
        let seconds = d % 60;
        let minutes = (d / 60) % 60;
        let hours = (d / 60 / 60) % 24;
        let days = d / 60 / 60 / 24;
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", gofmt::format_g(v, Some(4), false));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", gofmt::format_g(v, Some(4), false))
}

pub(crate) fn humanize_percentage(v: f64) -> String {
    format!("{}%", gofmt::format_g(v * 100.0, Some(4), false))
}

/// Prometheus' `floatToTime`: seconds to a time, kept at millisecond
/// precision (it goes through `model.Time`). Returns nanoseconds.
fn float_to_time(v: f64) -> Result<Option<i64>, CallError> {
    if v.is_nan() || v.is_infinite() {
        return Ok(None);
    }
    let ts = v * 1e9;
    if ts > i64::MAX as f64 || ts < i64::MIN as f64 {
        return Err(CallError::Failed(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            gofmt::format_float_v(v)
        )));
    }
    let ns = ts as i64;
    let ms = ns / 1_000_000;
    Ok(Some(ms * 1_000_000))
}

pub(crate) fn humanize_timestamp(v: f64) -> Result<String, CallError> {
    match float_to_time(v)? {
        None => Ok(gofmt::format_g(v, Some(4), false)),
        Some(ns) => Ok(gofmt::go_time_string_ns(ns)),
    }
}

fn cmp_kind(v: &Value) -> Option<u8> {
    match v {
        Value::Bool(_) => Some(0),
        Value::Int(_) => Some(1),
        Value::Float(_) => Some(2),
        Value::Str(_) | Value::Html(_) => Some(3),
        _ => None,
    }
}

const BAD_COMPARISON: &str = "incompatible types for comparison";
const BAD_COMPARISON_TYPE: &str = "invalid type for comparison";

fn eq2(a: &Value, b: &Value) -> Result<bool, CallError> {
    let (ka, kb) = (cmp_kind(a), cmp_kind(b));
    let valid = |v: &Value| !matches!(v, Value::Missing);
    if ka != kb {
        if valid(a) && valid(b) {
            if ka.is_none() && kb.is_none() {
                return Err(CallError::Failed(BAD_COMPARISON_TYPE.into()));
            }
            return Err(CallError::Failed(BAD_COMPARISON.into()));
        }
        return Ok(false);
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x) | Value::Html(x), Value::Str(y) | Value::Html(y)) => x == y,
        (Value::Nil, Value::Nil) | (Value::Missing, Value::Missing) => true,
        _ => return Err(CallError::Failed(BAD_COMPARISON_TYPE.into())),
    })
}

fn lt2(a: &Value, b: &Value) -> Result<bool, CallError> {
    let (Some(ka), Some(kb)) = (cmp_kind(a), cmp_kind(b)) else {
        return Err(CallError::Failed(BAD_COMPARISON_TYPE.into()));
    };
    if ka != kb {
        return Err(CallError::Failed(BAD_COMPARISON.into()));
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Str(x) | Value::Html(x), Value::Str(y) | Value::Html(y)) => x < y,
        _ => return Err(CallError::Failed(BAD_COMPARISON_TYPE.into())),
    })
}

fn index_one(item: &Value, idx: &Value) -> Result<Value, CallError> {
    let as_index = |i: &Value, len: usize| -> Result<usize, CallError> {
        match i {
            Value::Int(n) if *n >= 0 && (*n as usize) < len => Ok(*n as usize),
            Value::Int(n) => Err(CallError::Failed(format!("index out of range: {n}"))),
            other => Err(CallError::Failed(format!(
                "cannot index slice/array with type {}",
                other.go_type()
            ))),
        }
    };
    match item {
        Value::Map(m) => match idx {
            Value::Str(k) => Ok(Value::Str(m.get(k).cloned().unwrap_or_default())),
            other => Err(CallError::Failed(format!(
                "value has type {}; should be string",
                other.go_type()
            ))),
        },
        Value::Dict(m) => match idx {
            Value::Str(k) => Ok(m.get(k).cloned().unwrap_or(Value::Nil)),
            other => Err(CallError::Failed(format!(
                "value has type {}; should be string",
                other.go_type()
            ))),
        },
        Value::Samples(v) => Ok(Value::Sample(v[as_index(idx, v.len())?].clone())),
        Value::Str(s) => Ok(Value::Int(s.as_bytes()[as_index(idx, s.len())?] as i64)),
        Value::Nil | Value::Missing => Err(CallError::Failed("index of untyped nil".into())),
        other => Err(CallError::Failed(format!(
            "can't index item of type {}",
            other.go_type()
        ))),
    }
}

fn slice_fn(args: &[Value]) -> R {
    let item = &args[0];
    let len = match item {
        Value::Str(s) => s.len(),
        Value::Samples(v) => v.len(),
        Value::Nil | Value::Missing => {
            return Err(CallError::Failed("slice of untyped nil".into()));
        }
        other => {
            return Err(CallError::Failed(format!(
                "can't slice item of type {}",
                other.go_type()
            )));
        }
    };
    if args.len() > 4 || (args.len() == 4 && matches!(item, Value::Str(_))) {
        return Err(CallError::Failed("too many slice indexes".into()));
    }
    let mut idx = [0usize, len];
    for (i, a) in args[1..].iter().take(2).enumerate() {
        match a {
            Value::Int(n) if *n >= 0 && (*n as usize) <= len => idx[i] = *n as usize,
            Value::Int(n) => return Err(CallError::Failed(format!("index out of range: {n}"))),
            other => {
                return Err(CallError::Failed(format!(
                    "cannot index slice/array with type {}",
                    other.go_type()
                )));
            }
        }
    }
    if idx[0] > idx[1] {
        return Err(CallError::Failed(format!(
            "invalid slice index: {} > {}",
            idx[0], idx[1]
        )));
    }
    match item {
        Value::Str(s) => Ok(Value::Str(
            String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned(),
        )),
        Value::Samples(v) => Ok(Value::Samples(Rc::new(v[idx[0]..idx[1]].to_vec()))),
        _ => unreachable!(),
    }
}

/// Calls the function `name` with evaluated arguments.
pub(crate) fn call(name: &str, args: &[Value], ctx: &TemplateContext<'_>) -> R {
    let failed = |m: String| Err(CallError::Failed(m));
    match name {
        "not" => {
            arity(name, args, 1)?;
            Ok(Value::Bool(!args[0].truth()))
        }
        "len" => {
            arity(name, args, 1)?;
            match &args[0] {
                Value::Str(s) | Value::Html(s) => Ok(Value::Int(s.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                Value::Dict(m) => Ok(Value::Int(m.len() as i64)),
                Value::Samples(v) => Ok(Value::Int(v.len() as i64)),
                Value::Nil | Value::Missing => failed("len of nil pointer".into()),
                other => failed(format!("len of type {}", other.go_type())),
            }
        }
        "index" => {
            at_least(name, args, 1)?;
            let mut v = args[0].clone();
            for i in &args[1..] {
                v = index_one(&v, i)?;
            }
            Ok(v)
        }
        "slice" => {
            at_least(name, args, 1)?;
            slice_fn(args)
        }
        "print" => Ok(Value::Str(printf::sprint(args))),
        "println" => Ok(Value::Str(printf::sprintln(args))),
        "printf" => {
            at_least(name, args, 1)?;
            let f = want_str(args, 0)?;
            Ok(Value::Str(printf::sprintf(&f, &args[1..])))
        }
        "eq" => {
            at_least(name, args, 1)?;
            if args.len() < 2 {
                return failed("missing argument for comparison".into());
            }
            for b in &args[1..] {
                if eq2(&args[0], b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            arity(name, args, 2)?;
            Ok(Value::Bool(!eq2(&args[0], &args[1])?))
        }
        "lt" => {
            arity(name, args, 2)?;
            Ok(Value::Bool(lt2(&args[0], &args[1])?))
        }
        "le" => {
            arity(name, args, 2)?;
            Ok(Value::Bool(
                lt2(&args[0], &args[1])? || eq2(&args[0], &args[1])?,
            ))
        }
        "gt" => {
            arity(name, args, 2)?;
            Ok(Value::Bool(
                !lt2(&args[0], &args[1])? && !eq2(&args[0], &args[1])?,
            ))
        }
        "ge" => {
            arity(name, args, 2)?;
            Ok(Value::Bool(!lt2(&args[0], &args[1])?))
        }
        "html" => Ok(Value::Str(html_escape(&eval_args_text(args)))),
        "js" => Ok(Value::Str(js_escape(&eval_args_text(args)))),
        "urlquery" => Ok(Value::Str(query_escape(&eval_args_text(args)))),
        "call" => {
            at_least(name, args, 1)?;
            failed(format!("non-function of type {}", args[0].go_type()))
        }
        "query" => {
            arity(name, args, 1)?;
            let q = want_str(args, 0)?;
            let Some(query) = ctx.query else {
                return failed(NIL_DEREF.into());
            };
            let res = query(&q).map_err(CallError::Failed)?;
            let samples = res
                .into_iter()
                .map(|(labels, value)| {
                    Rc::new(Sample {
                        labels: labels.into_iter().collect(),
                        value,
                    })
                })
                .collect();
            Ok(Value::Samples(Rc::new(samples)))
        }
        "first" => {
            arity(name, args, 1)?;
            let v = want_samples(args, 0)?;
            match v.first() {
                Some(s) => Ok(Value::Sample(s.clone())),
                None => failed("first() called on vector with no elements".into()),
            }
        }
        "label" => {
            arity(name, args, 2)?;
            let l = want_str(args, 0)?;
            match want_sample(args, 1)? {
                Some(s) => Ok(Value::Str(s.labels.get(&l).cloned().unwrap_or_default())),
                None => failed(NIL_DEREF.into()),
            }
        }
        "value" => {
            arity(name, args, 1)?;
            match want_sample(args, 0)? {
                Some(s) => Ok(Value::Float(s.value)),
                None => failed(NIL_DEREF.into()),
            }
        }
        "strvalue" => {
            arity(name, args, 1)?;
            match want_sample(args, 0)? {
                Some(s) => Ok(Value::Str(
                    s.labels.get("__value__").cloned().unwrap_or_default(),
                )),
                None => failed(NIL_DEREF.into()),
            }
        }
        "args" => {
            let m: BTreeMap<String, Value> = args
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("arg{i}"), a.clone()))
                .collect();
            Ok(Value::Dict(Rc::new(m)))
        }
        "reReplaceAll" => {
            arity(name, args, 3)?;
            let (pat, repl, text) = (want_str(args, 0)?, want_str(args, 1)?, want_str(args, 2)?);
            let re = regex::Regex::new(&pat).map_err(|e| {
                CallError::Failed(format!(
                    "regexp: Compile({}): {}",
                    regexp_quote(&pat),
                    go_regex_error(&pat, &e)
                ))
            })?;
            Ok(Value::Str(
                re.replace_all(&text, repl.as_str()).into_owned(),
            ))
        }
        "safeHtml" => {
            arity(name, args, 1)?;
            Ok(Value::Html(want_str(args, 0)?))
        }
        "match" => {
            arity(name, args, 2)?;
            let (pat, s) = (want_str(args, 0)?, want_str(args, 1)?);
            let re =
                regex::Regex::new(&pat).map_err(|e| CallError::Failed(go_regex_error(&pat, &e)))?;
            Ok(Value::Bool(re.is_match(&s)))
        }
        "title" => {
            arity(name, args, 1)?;
            Ok(Value::Str(go_title(&want_str(args, 0)?)))
        }
        "toUpper" => {
            arity(name, args, 1)?;
            Ok(Value::Str(
                want_str(args, 0)?.chars().map(simple_upper).collect(),
            ))
        }
        "toLower" => {
            arity(name, args, 1)?;
            Ok(Value::Str(
                want_str(args, 0)?.chars().map(simple_lower).collect(),
            ))
        }
        "graphLink" => {
            arity(name, args, 1)?;
            Ok(Value::Str(format!(
                "/graph?g0.expr={}&g0.tab=0",
                query_escape(&want_str(args, 0)?)
            )))
        }
        "tableLink" => {
            arity(name, args, 1)?;
            Ok(Value::Str(format!(
                "/graph?g0.expr={}&g0.tab=1",
                query_escape(&want_str(args, 0)?)
            )))
        }
        "sortByLabel" => {
            arity(name, args, 2)?;
            let l = want_str(args, 0)?;
            let v = want_samples(args, 1)?;
            let mut sorted: Vec<Rc<Sample>> = v.as_ref().clone();
            sorted.sort_by(|a, b| {
                let x = a.labels.get(&l).map(String::as_str).unwrap_or("");
                let y = b.labels.get(&l).map(String::as_str).unwrap_or("");
                x.cmp(y)
            });
            Ok(Value::Samples(Rc::new(sorted)))
        }
        "stripPort" => {
            arity(name, args, 1)?;
            let hp = want_str(args, 0)?;
            Ok(Value::Str(
                split_host_port(&hp).map(|(h, _)| h).unwrap_or(hp),
            ))
        }
        "stripDomain" => {
            arity(name, args, 1)?;
            let hp = want_str(args, 0)?;
            let (host, port) = split_host_port(&hp).unwrap_or((hp.clone(), String::new()));
            if host.parse::<std::net::IpAddr>().is_ok() {
                return Ok(Value::Str(hp));
            }
            let host = host.split('.').next().unwrap_or("").to_string();
            if !port.is_empty() {
                return Ok(Value::Str(join_host_port(&host, &port)));
            }
            Ok(Value::Str(host))
        }
        "humanize" => {
            arity(name, args, 1)?;
            Ok(Value::Str(humanize(to_float(&args[0])?)))
        }
        "humanize1024" => {
            arity(name, args, 1)?;
            Ok(Value::Str(humanize1024(to_float(&args[0])?)))
        }
        "humanizeDuration" => {
            arity(name, args, 1)?;
            Ok(Value::Str(humanize_duration(to_float(&args[0])?)))
        }
        "humanizePercentage" => {
            arity(name, args, 1)?;
            Ok(Value::Str(humanize_percentage(to_float(&args[0])?)))
        }
        "humanizeTimestamp" => {
            arity(name, args, 1)?;
            Ok(Value::Str(humanize_timestamp(to_float(&args[0])?)?))
        }
        "toTime" => {
            arity(name, args, 1)?;
            let v = to_float(&args[0])?;
            match float_to_time(v)? {
                Some(ns) => Ok(Value::Time(ns)),
                None => failed("value is NaN or Inf".into()),
            }
        }
        "pathPrefix" => {
            arity(name, args, 0)?;
            match &ctx.external_url {
                Some(u) => Ok(Value::Str(url_path(u))),
                None => failed(NIL_DEREF.into()),
            }
        }
        "externalURL" => {
            arity(name, args, 0)?;
            match &ctx.external_url {
                Some(u) => Ok(Value::Str(u.clone())),
                None => failed(NIL_DEREF.into()),
            }
        }
        "parseDuration" => {
            arity(name, args, 1)?;
            let d = want_str(args, 0)?;
            let ms = gofmt::parse_model_duration(&d).map_err(CallError::Failed)?;
            Ok(Value::Float(ms as f64 / 1000.0))
        }
        other => failed(format!("function {} not defined", gofmt::quote(other))),
    }
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or("").trim().to_string()
}

/// The path of a URL (`http://host:9090/prometheus` → `/prometheus`).
fn url_path(u: &str) -> String {
    let after_scheme = match u.find("://") {
        Some(i) => &u[i + 3..],
        None => return u.split(['?', '#']).next().unwrap_or("").to_string(),
    };
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..]
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .to_string(),
        None => String::new(),
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Methods of `*time.Time` reachable from templates (`(toTime x).Unix`).
pub(crate) fn time_method(
    ns: i64,
    name: &str,
    args: &[Value],
) -> Result<Value, super::exec::ExecError> {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default();
    let want_args = |n: usize| -> Result<(), super::exec::ExecError> {
        if args.len() != n {
            return super::exec::err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ));
        }
        Ok(())
    };
    let v = match name {
        "Unix" => Value::Int(ns.div_euclid(1_000_000_000)),
        "UnixMilli" => Value::Int(ns.div_euclid(1_000_000)),
        "UnixMicro" => Value::Int(ns.div_euclid(1_000)),
        "UnixNano" => Value::Int(ns),
        "Year" => Value::Int(t.year() as i64),
        "Month" => Value::Str(MONTHS[t.month0() as usize].to_string()),
        "Day" => Value::Int(t.day() as i64),
        "Hour" => Value::Int(t.hour() as i64),
        "Minute" => Value::Int(t.minute() as i64),
        "Second" => Value::Int(t.second() as i64),
        "Nanosecond" => Value::Int(t.nanosecond() as i64),
        "YearDay" => Value::Int(t.ordinal() as i64),
        "Weekday" => Value::Str(WEEKDAYS[t.weekday().num_days_from_sunday() as usize].to_string()),
        "UTC" | "Local" => Value::Time(ns),
        "String" => Value::Str(gofmt::go_time_string_ns(ns)),
        "IsZero" => Value::Bool(false),
        "Format" => {
            want_args(1)?;
            let Value::Str(layout) = &args[0] else {
                return super::exec::err(format!(
                    "wrong type for value; expected string; got {}",
                    args[0].go_type()
                ));
            };
            return Ok(Value::Str(go_time_format(&t, layout)));
        }
        _ => {
            return super::exec::err(format!("can't evaluate field {name} in type *time.Time"));
        }
    };
    want_args(0)?;
    Ok(v)
}

/// Go's `time.Time.Format` for the layout elements people use.
fn go_time_format(t: &chrono::DateTime<chrono::Utc>, layout: &str) -> String {
    use chrono::{Datelike, Timelike};
    let mut out = String::new();
    let mut rest = layout;
    let hour12 = |h: u32| if h.is_multiple_of(12) { 12 } else { h % 12 };
    while !rest.is_empty() {
        let elems: &[(&str, &dyn Fn() -> String)] = &[
            ("January", &|| MONTHS[t.month0() as usize].to_string()),
            ("Jan", &|| MONTHS[t.month0() as usize][..3].to_string()),
            ("Monday", &|| {
                WEEKDAYS[t.weekday().num_days_from_sunday() as usize].to_string()
            }),
            ("Mon", &|| {
                WEEKDAYS[t.weekday().num_days_from_sunday() as usize][..3].to_string()
            }),
            ("MST", &|| "UTC".to_string()),
            ("2006", &|| format!("{:04}", t.year())),
            ("Z07:00", &|| "Z".to_string()),
            ("Z0700", &|| "Z".to_string()),
            ("-07:00", &|| "+00:00".to_string()),
            ("-0700", &|| "+0000".to_string()),
            ("-07", &|| "+00".to_string()),
            ("01", &|| format!("{:02}", t.month())),
            ("02", &|| format!("{:02}", t.day())),
            ("_2", &|| format!("{:>2}", t.day())),
            ("06", &|| format!("{:02}", t.year() % 100)),
            ("15", &|| format!("{:02}", t.hour())),
            ("03", &|| format!("{:02}", hour12(t.hour()))),
            ("04", &|| format!("{:02}", t.minute())),
            ("05", &|| format!("{:02}", t.second())),
            (".000000000", &|| format!(".{:09}", t.nanosecond())),
            (".000000", &|| format!(".{:06}", t.nanosecond() / 1000)),
            (".000", &|| format!(".{:03}", t.nanosecond() / 1_000_000)),
            (".999999999", &|| frac9(t.nanosecond(), 9)),
            (".999999", &|| frac9(t.nanosecond(), 6)),
            (".999", &|| frac9(t.nanosecond(), 3)),
            ("PM", &|| {
                if t.hour() >= 12 { "PM" } else { "AM" }.to_string()
            }),
            ("pm", &|| {
                if t.hour() >= 12 { "pm" } else { "am" }.to_string()
            }),
            ("1", &|| t.month().to_string()),
            ("2", &|| t.day().to_string()),
            ("3", &|| hour12(t.hour()).to_string()),
            ("4", &|| t.minute().to_string()),
            ("5", &|| t.second().to_string()),
        ];
        let mut matched = false;
        for (e, f) in elems {
            if rest.starts_with(e) {
                out.push_str(&f());
                rest = &rest[e.len()..];
                matched = true;
                break;
            }
        }
        if !matched {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn frac9(nanos: u32, digits: usize) -> String {
    let s = format!("{nanos:09}");
    let s = s[..digits].trim_end_matches('0');
    if s.is_empty() {
        String::new()
    } else {
        format!(".{s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_family_matches_prometheus() {
        // Hand-computed from Prometheus' definitions (%.4g after scaling).
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(1234.0), "1.234k");
        assert_eq!(humanize(1_234_567.0), "1.235M");
        assert_eq!(humanize(12.0), "12");
        assert_eq!(humanize(0.012), "12m");
        assert_eq!(humanize(0.000_001_5), "1.5u");
        assert_eq!(humanize(-1500.0), "-1.5k");
        assert_eq!(humanize(f64::INFINITY), "+Inf");
        assert_eq!(humanize(f64::NAN), "NaN");
        assert_eq!(humanize1024(1024.0), "1ki");
        assert_eq!(humanize1024(1_073_741_824.0), "1Gi");
        assert_eq!(humanize1024(1536.0), "1.5ki");
        assert_eq!(humanize1024(0.5), "0.5");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(1.5), "1.5s");
        assert_eq!(humanize_duration(60.0), "1m 0s");
        assert_eq!(humanize_duration(3661.0), "1h 1m 1s");
        assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(-90.0), "-1m 30s");
        assert_eq!(humanize_duration(0.25), "250ms");
        assert_eq!(humanize_duration(0.000_002), "2us");
        assert_eq!(humanize_percentage(0.1234), "12.34%");
        assert_eq!(humanize_percentage(1.0), "100%");
        assert_eq!(
            humanize_timestamp(0.0).ok().unwrap(),
            "1970-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            humanize_timestamp(1_435_065_584.128).ok().unwrap(),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(humanize_timestamp(f64::NAN).ok().unwrap(), "NaN");
    }

    #[test]
    fn string_helpers_match_go() {
        assert_eq!(go_title("hello world-foo_bar"), "Hello World-Foo_bar");
        assert_eq!(query_escape("rate(x[5m]) > 1"), "rate%28x%5B5m%5D%29+%3E+1");
        assert_eq!(
            split_host_port("host:9090"),
            Some(("host".into(), "9090".into()))
        );
        assert_eq!(
            split_host_port("[::1]:80"),
            Some(("::1".into(), "80".into()))
        );
        assert_eq!(split_host_port("host"), None);
        assert_eq!(url_path("http://example.com:9090/prom?x=1"), "/prom");
        assert_eq!(url_path("http://example.com"), "");
    }
}
