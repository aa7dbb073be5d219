//! Alertmanager's notification templates, for notifier plugins: the default
//! texts (`__subject`, `slack.default.title` …) and a small subset of Go's
//! `text/template` for the strings a receiver configures.
//!
//! ```
//! use lookout_plugin_sdk::{Notification, template};
//!
//! # fn demo(notification: &Notification) -> Result<(), template::TemplateError> {
//! let title = template::render("{{ template \"slack.default.title\" . }}", notification)?;
//! let text = template::render(
//!     "{{ .CommonLabels.alertname }} on {{ .GroupLabels.instance }}: {{ .Alerts.Firing | len }} firing",
//!     notification,
//! )?;
//! # Ok(()) }
//! ```
//!
//! # What a template may contain
//!
//! Text with actions `{{ … }}` (`{{-` and `-}}` trim the whitespace beside
//! them, `{{/* … */}}` is a comment). An action is a pipeline of commands
//! separated by `|`, the value on the left passed as the last argument of the
//! function on the right. Operands:
//!
//! - `.` and fields of it: `.Status`, `.Receiver`, `.ExternalURL`,
//!   `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations`, `.Alerts`,
//!   `.Alerts.Firing`, `.Alerts.Resolved`;
//! - a label of a label set: `.CommonLabels.alertname` (empty when absent),
//!   and the set's `.Names` and `.Values` (sorted by name, `alertname`
//!   first, as Alertmanager sorts them);
//! - string literals (`"…"` with Go escapes, or `` `…` ``), integers, and
//!   parenthesised pipelines.
//!
//! Inside `{{ range .Alerts }}` (or `.Alerts.Firing`, `.Alerts.Resolved`)
//! `.` is one alert: `.Status`, `.Labels`, `.Annotations` (and their
//! labels: `.Labels.instance`), `.StartsAt`, `.EndsAt`, `.GeneratorURL`,
//! `.Fingerprint`. Ranging over a label set (`.CommonLabels.SortedPairs`)
//! gives `.Name` and `.Value`; over `.Names` or `.Values`, strings.
//!
//! Control structures: `{{ if P }}…{{ else if Q }}…{{ else }}…{{ end }}`,
//! `{{ range P }}…{{ else }}…{{ end }}` and `{{ with P }}…{{ end }}`, with
//! Go's truth (false, 0, "" and empty lists are false).
//!
//! Functions: `len`, `index SET "name"`, `join SEP LIST`, `toUpper`,
//! `toLower`, `title`, `trimSpace`, `urlquery`, `toJson` (alerts as in
//! Alertmanager's webhook payload, label sets as objects), `eq`, `ne`,
//! `not`, `and`, `or`.
//!
//! `{{ template "NAME" . }}` inserts a default template of Alertmanager's
//! `default.tmpl` and `email.tmpl`: `__subject`, `__alertmanager`,
//! `__alertmanagerURL`, `__description`, `__text_alert_list` (of
//! `.Alerts`, `.Alerts.Firing` or `.Alerts.Resolved`), every
//! `slack.default.*` and `pagerduty.default.*` template, and
//! `email.default.subject`, `email.default.html`, `email.default.text`
//! (lookout's own plain-text body; Alertmanager has none).
//!
//! Not supported, and reported as a [`TemplateError`] when the template is
//! rendered: `define`, `block`, `break`, `continue`, variables (`$x`),
//! ordering comparisons and the rest of Alertmanager's function set
//! (`reReplaceAll`, `humanize` …).
//!
//! Where Alertmanager's templates print "Alertmanager" (`__alertmanager`),
//! lookout's print [`SENDER`].

use std::borrow::Cow;
use std::fmt::{self, Write};

use crate::{Alert, Labels, Notification};

/// The name the default templates give the sender, in place of
/// Alertmanager's "Alertmanager" (`__alertmanager`): the Slack username,
/// PagerDuty's `client`, the email's "View in …" link.
pub const SENDER: &str = "lookout";

/// A template that cannot be parsed or rendered, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    template: String,
    message: String,
}

impl TemplateError {
    fn new(template: &str, message: impl Into<String>) -> Self {
        Self {
            template: template.to_owned(),
            message: message.into(),
        }
    }

    /// What is wrong, without the template.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 80;
        let mut shown: String = self.template.chars().take(SHOWN).collect();
        if self.template.chars().count() > SHOWN {
            shown.push('…');
        }
        write!(f, "template {shown:?}: {}", self.message)
    }
}

impl std::error::Error for TemplateError {}

/// A configuration string that does not render is a configuration error.
impl From<TemplateError> for crate::PluginError {
    fn from(error: TemplateError) -> Self {
        crate::PluginError::Config(error.to_string())
    }
}

/// Renders `template` against `notification` as text.
pub fn render(template: &str, notification: &Notification) -> Result<String, TemplateError> {
    Renderer::new(notification, Mode::Text).render(template)
}

/// Renders a receiver's configured template, or, when it configures none,
/// the default template of that name (`"slack.default.title"`).
pub fn render_or_default(
    configured: Option<&str>,
    default: &str,
    notification: &Notification,
) -> Result<String, TemplateError> {
    match configured {
        Some(template) => render(template, notification),
        None => render(&format!("{{{{ template \"{default}\" . }}}}"), notification),
    }
}

/// Renders `template` against `notification` as HTML: every value an
/// action prints is HTML-escaped (as Go's `html/template` escapes text),
/// the default templates insert HTML.
pub fn render_html(template: &str, notification: &Notification) -> Result<String, TemplateError> {
    Renderer::new(notification, Mode::Html).render(template)
}

/// Alertmanager's `__subject`: `[FIRING:2] <group label values> (<other
/// common label values>)`, the default Slack title, PagerDuty summary and
/// email subject.
pub fn subject(notification: &Notification) -> String {
    let mut out = String::new();
    out.push('[');
    out.push_str(&notification.status.to_uppercase());
    if notification.status == "firing" {
        let _ = write!(out, ":{}", firing(notification).count());
    }
    out.push_str("] ");
    out.push_str(&values(&notification.group_labels).join(" "));
    out.push(' ');
    if notification.common_labels.len() > notification.group_labels.len() {
        let rest: Labels = notification
            .common_labels
            .iter()
            .filter(|(name, _)| !notification.group_labels.iter().any(|(g, _)| g == name))
            .cloned()
            .collect();
        let _ = write!(out, "({})", values(&rest).join(" "));
    }
    out
}

/// Alertmanager's `__alertmanagerURL`: the external URL's alert view,
/// filtered to the receiver.
pub fn alertmanager_url(notification: &Notification) -> String {
    format!(
        "{}/#/alerts?receiver={}",
        notification.external_url,
        query_escape(&notification.receiver)
    )
}

/// Alertmanager's `__text_alert_list`: labels, annotations and source of
/// each alert, one block per alert.
pub fn text_alert_list<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> String {
    let mut out = String::new();
    for alert in alerts {
        out.push_str("Labels:\n");
        for (name, value) in sorted_pairs(&alert.labels) {
            let _ = writeln!(out, " - {name} = {value}");
        }
        out.push_str("Annotations:\n");
        for (name, value) in sorted_pairs(&alert.annotations) {
            let _ = writeln!(out, " - {name} = {value}");
        }
        let _ = writeln!(out, "Source: {}", alert.generator_url);
    }
    out
}

/// lookout's plain-text email body (`email.default.text`): the common
/// annotations, then the firing and the resolved alerts as
/// `__text_alert_list` prints them, then the link to the alerts.
pub fn email_text(notification: &Notification) -> String {
    let mut out = String::new();
    let annotations = values(&notification.common_annotations).join(" ");
    if !annotations.is_empty() {
        out.push_str(&annotations);
        out.push_str("\n\n");
    }
    let firing: Vec<&Alert> = firing(notification).collect();
    let resolved: Vec<&Alert> = resolved(notification).collect();
    if !firing.is_empty() {
        let _ = writeln!(out, "Alerts Firing:\n{}", text_alert_list(firing));
    }
    if !resolved.is_empty() {
        let _ = writeln!(out, "Alerts Resolved:\n{}", text_alert_list(resolved));
    }
    let _ = writeln!(out, "View in {SENDER}: {}", alertmanager_url(notification));
    out
}

/// The HTML email body (`email.default.html`): what Alertmanager's
/// `email.default.html` shows (a header naming the group, a link to the
/// alerts, each firing then each resolved alert with labels, annotations
/// and source, a footer), in plain HTML without its stylesheet.
pub fn email_html(notification: &Notification) -> String {
    let e = |text: &str| html_escape(text).into_owned();
    let firing: Vec<&Alert> = firing(notification).collect();
    let resolved: Vec<&Alert> = resolved(notification).collect();
    let count = notification.alerts.len();
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"UTF-8\">\n");
    let _ = writeln!(out, "<title>{}</title>", e(&subject(notification)));
    out.push_str("</head>\n<body>\n");
    let color = if firing.is_empty() {
        "#68B90F"
    } else {
        "#E6522C"
    };
    let group: Vec<String> = sorted_pairs(&notification.group_labels)
        .map(|(name, value)| format!("{}={}", e(name), e(value)))
        .collect();
    let _ = writeln!(
        out,
        "<h2 style=\"background-color:{color};color:#fff;padding:20px\">{count} alert{} for {}</h2>",
        if count > 1 { "s" } else { "" },
        group.join(" ")
    );
    let _ = writeln!(
        out,
        "<p><a href=\"{}\">View in {SENDER}</a></p>",
        e(&alertmanager_url(notification))
    );
    let section = |out: &mut String, title: &str, alerts: &[&Alert]| {
        let _ = writeln!(out, "<p><strong>[{}] {title}</strong></p>", alerts.len());
        for alert in alerts {
            out.push_str("<p>\n<strong>Labels</strong><br />\n");
            for (name, value) in sorted_pairs(&alert.labels) {
                let _ = writeln!(out, "{} = {}<br />", e(name), e(value));
            }
            if !alert.annotations.is_empty() {
                out.push_str("<strong>Annotations</strong><br />\n");
            }
            for (name, value) in sorted_pairs(&alert.annotations) {
                let _ = writeln!(out, "{} = {}<br />", e(name), e(value));
            }
            let _ = writeln!(
                out,
                "<a href=\"{}\">Source</a><br />\n</p>",
                e(&alert.generator_url)
            );
        }
    };
    if !firing.is_empty() {
        section(&mut out, "Firing", &firing);
    }
    if !resolved.is_empty() {
        if !firing.is_empty() {
            out.push_str("<hr />\n");
        }
        section(&mut out, "Resolved", &resolved);
    }
    let _ = writeln!(
        out,
        "<p style=\"color:#999;font-size:12px\"><a href=\"{}\">Sent by {SENDER}</a></p>",
        e(&notification.external_url)
    );
    out.push_str("</body>\n</html>\n");
    out
}

/// The firing alerts of a notification.
pub fn firing(notification: &Notification) -> impl Iterator<Item = &Alert> {
    notification.alerts.iter().filter(|a| a.status == "firing")
}

/// The resolved alerts of a notification.
pub fn resolved(notification: &Notification) -> impl Iterator<Item = &Alert> {
    notification
        .alerts
        .iter()
        .filter(|a| a.status == "resolved")
}

/// Label pairs in Alertmanager's order (`KV.SortedPairs`): `alertname`
/// first, the others by name.
pub fn sorted_pairs(labels: &Labels) -> impl Iterator<Item = (&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    pairs.sort_by(|a, b| (a.0 != "alertname", a.0).cmp(&(b.0 != "alertname", b.0)));
    pairs.into_iter()
}

fn values(labels: &Labels) -> Vec<String> {
    sorted_pairs(labels).map(|(_, v)| v.to_owned()).collect()
}

fn names(labels: &Labels) -> Vec<String> {
    sorted_pairs(labels).map(|(n, _)| n.to_owned()).collect()
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, the rest
/// percent-encoded.
pub fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attributes.
pub fn html_escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    Html,
}

/// A value inside a pipeline.
#[derive(Debug, Clone)]
enum Value<'a> {
    /// `.`: the notification.
    Root,
    Str(Cow<'a, str>),
    Int(i64),
    Labels(&'a Labels),
    Strings(Vec<String>),
    Alerts(Vec<&'a Alert>),
    /// One alert: `.` inside `{{ range .Alerts }}`.
    Alert(&'a Alert),
    /// One label: `.` inside `{{ range .CommonLabels.SortedPairs }}`
    /// (`.Name`, `.Value`).
    Pair(&'a str, &'a str),
    Bool(bool),
}

impl Value<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Value::Root => "the notification",
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Labels(_) => "a label set",
            Value::Strings(_) => "a list of strings",
            Value::Alerts(_) => "a list of alerts",
            Value::Alert(_) => "an alert",
            Value::Pair(..) => "a label",
            Value::Bool(_) => "a boolean",
        }
    }

    /// Go's truth: false, 0, "" and empty lists are false.
    fn truthy(&self) -> bool {
        match self {
            Value::Root | Value::Alert(_) | Value::Pair(..) => true,
            Value::Str(s) => !s.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Labels(l) => !l.is_empty(),
            Value::Strings(l) => !l.is_empty(),
            Value::Alerts(l) => !l.is_empty(),
            Value::Bool(b) => *b,
        }
    }
}

/// A template parsed: text, actions, and control structures with their
/// bodies.
enum Node {
    Text(String),
    Action(Vec<Token>),
    Range {
        pipeline: Vec<Token>,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    If {
        condition: Vec<Token>,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipeline: Vec<Token>,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// What ended a list of nodes.
enum BlockEnd {
    Eof,
    End,
    /// `{{ else }}` (no tokens) or `{{ else if … }}`.
    Else(Vec<Token>),
}

/// The template's text and actions in order, `{{-`/`-}}` trimming done and
/// comments dropped.
fn lex(template: &str) -> Result<Vec<Result<String, Vec<Token>>>, String> {
    let mut items = Vec::new();
    let mut rest = template;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or("unclosed action: `{{` without `}}`")?;
        let mut action = &after[..end];
        if let Some(stripped) = trim_marker_start(action) {
            text = text.trim_end();
            action = stripped;
        }
        trim_next = false;
        if let Some(stripped) = trim_marker_end(action) {
            trim_next = true;
            action = stripped;
        }
        items.push(Ok(text.to_owned()));
        let action = action.trim();
        if !(action.starts_with("/*") && action.ends_with("*/")) {
            items.push(Err(tokenize(action)?));
        }
        rest = &after[end + 2..];
    }
    items.push(Ok(
        if trim_next { rest.trim_start() } else { rest }.to_owned()
    ));
    Ok(items)
}

fn parse(template: &str) -> Result<Vec<Node>, String> {
    let mut items = lex(template)?.into_iter();
    match parse_block(&mut items)? {
        (nodes, BlockEnd::Eof) => Ok(nodes),
        (_, BlockEnd::End) => Err("`{{ end }}` without an `if`, `range` or `with`".into()),
        (_, BlockEnd::Else(_)) => Err("`{{ else }}` without an `if`, `range` or `with`".into()),
    }
}

type Items = std::vec::IntoIter<Result<String, Vec<Token>>>;

fn parse_block(items: &mut Items) -> Result<(Vec<Node>, BlockEnd), String> {
    let mut nodes = Vec::new();
    while let Some(item) = items.next() {
        let tokens = match item {
            Ok(text) => {
                nodes.push(Node::Text(text));
                continue;
            }
            Err(tokens) => tokens,
        };
        let keyword = match tokens.first() {
            Some(Token::Ident(word)) => word.as_str(),
            _ => "",
        };
        match keyword {
            "end" => return Ok((nodes, BlockEnd::End)),
            "else" => return Ok((nodes, BlockEnd::Else(tokens[1..].to_vec()))),
            "if" | "range" | "with" => {
                nodes.push(control(keyword, tokens[1..].to_vec(), items)?);
            }
            "define" | "block" | "break" | "continue" => {
                return Err(format!(
                    "`{{{{ {keyword} }}}}` is not supported (see the SDK's template module for \
                     what is)"
                ));
            }
            _ => nodes.push(Node::Action(tokens)),
        }
    }
    Ok((nodes, BlockEnd::Eof))
}

/// An `if`, `range` or `with` whose opening action held `argument`,
/// through its `{{ end }}`.
fn control(keyword: &str, argument: Vec<Token>, items: &mut Items) -> Result<Node, String> {
    if argument.is_empty() {
        return Err(format!("`{{{{ {keyword} }}}}` needs a pipeline"));
    }
    let (body, end) = parse_block(items)?;
    let otherwise = match end {
        BlockEnd::End => Vec::new(),
        BlockEnd::Eof => return Err(format!("`{{{{ {keyword} … }}}}` has no `{{{{ end }}}}`")),
        BlockEnd::Else(rest) if rest.is_empty() => match parse_block(items)? {
            (otherwise, BlockEnd::End) => otherwise,
            _ => {
                return Err(format!(
                    "`{{{{ {keyword} … }}}}` has no `{{{{ end }}}}` after `else`"
                ));
            }
        },
        // `{{ else if … }}` chains share the one `{{ end }}`.
        BlockEnd::Else(rest) if rest.first() == Some(&Token::Ident("if".into())) => {
            vec![control("if", rest[1..].to_vec(), items)?]
        }
        BlockEnd::Else(_) => return Err("`{{ else }}` takes nothing, or `if …`".into()),
    };
    Ok(match keyword {
        "if" => Node::If {
            condition: argument,
            body,
            otherwise,
        },
        "range" => Node::Range {
            pipeline: argument,
            body,
            otherwise,
        },
        _ => Node::With {
            pipeline: argument,
            body,
            otherwise,
        },
    })
}

/// One lexical token of an action.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// `.` or `.A.B`: the fields after the dot.
    Field(Vec<String>),
    Ident(String),
    Str(String),
    Int(i64),
    Pipe,
    Open,
    Close,
}

struct Renderer<'a> {
    notification: &'a Notification,
    mode: Mode,
}

impl<'a> Renderer<'a> {
    fn new(notification: &'a Notification, mode: Mode) -> Self {
        Self { notification, mode }
    }

    fn render(&self, template: &str) -> Result<String, TemplateError> {
        let fail = |message: String| TemplateError::new(template, message);
        let nodes = parse(template).map_err(fail)?;
        let mut out = String::new();
        self.exec(&nodes, &Value::Root, &mut out).map_err(fail)?;
        Ok(out)
    }

    fn exec(&self, nodes: &[Node], dot: &Value<'a>, out: &mut String) -> Result<(), String> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Action(tokens) => self.action(tokens, dot, out)?,
                Node::If {
                    condition,
                    body,
                    otherwise,
                } => {
                    let branch = if self.pipeline(condition, dot)?.truthy() {
                        body
                    } else {
                        otherwise
                    };
                    self.exec(branch, dot, out)?;
                }
                Node::With {
                    pipeline,
                    body,
                    otherwise,
                } => {
                    let value = self.pipeline(pipeline, dot)?;
                    if value.truthy() {
                        self.exec(body, &value, out)?;
                    } else {
                        self.exec(otherwise, dot, out)?;
                    }
                }
                Node::Range {
                    pipeline,
                    body,
                    otherwise,
                } => {
                    let elements: Vec<Value<'a>> = match self.pipeline(pipeline, dot)? {
                        Value::Alerts(alerts) => alerts.into_iter().map(Value::Alert).collect(),
                        Value::Strings(list) => list
                            .into_iter()
                            .map(|s| Value::Str(Cow::Owned(s)))
                            .collect(),
                        Value::Labels(labels) => sorted_pairs(labels)
                            .map(|(n, v)| Value::Pair(n, v))
                            .collect(),
                        other => return Err(format!("cannot range over {}", other.kind())),
                    };
                    if elements.is_empty() {
                        self.exec(otherwise, dot, out)?;
                    }
                    for element in &elements {
                        self.exec(body, element, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn action(&self, tokens: &[Token], dot: &Value<'a>, out: &mut String) -> Result<(), String> {
        match tokens.first() {
            None => return Err("empty action `{{ }}`".into()),
            Some(Token::Ident(word)) if word == "template" => {
                let (name, arg) = match &tokens[1..] {
                    [Token::Str(name)] => (name, Value::Root),
                    [Token::Str(name), rest @ ..] => (name, self.pipeline(rest, dot)?),
                    _ => return Err("`template` takes a quoted name and an argument".into()),
                };
                let text = self.named(name, &arg)?;
                out.push_str(&text);
                return Ok(());
            }
            _ => {}
        }
        let value = self.pipeline(tokens, dot)?;
        let text = self.print(&value)?;
        match self.mode {
            Mode::Text => out.push_str(&text),
            Mode::Html => out.push_str(&html_escape(&text)),
        }
        Ok(())
    }

    fn print(&self, value: &Value<'_>) -> Result<String, String> {
        Ok(match value {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Strings(list) => format!("[{}]", list.join(" ")),
            Value::Labels(labels) => sorted_pairs(labels)
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            other => return Err(format!("cannot print {}", other.kind())),
        })
    }

    /// A default template by name, applied to `arg`.
    fn named(&self, name: &str, arg: &Value<'a>) -> Result<String, String> {
        let n = self.notification;
        let root = |arg: &Value<'_>| match arg {
            Value::Root => Ok(()),
            other => Err(format!(
                "template {name:?} applies to `.`, not {}",
                other.kind()
            )),
        };
        let html = self.mode == Mode::Html;
        let text = |s: String| {
            if html {
                html_escape(&s).into_owned()
            } else {
                s
            }
        };
        let result = match name {
            "__alertmanager" | "slack.default.username" | "pagerduty.default.client" => {
                root(arg)?;
                SENDER.to_owned()
            }
            "__alertmanagerURL" | "slack.default.titlelink" | "pagerduty.default.clientURL" => {
                root(arg)?;
                text(alertmanager_url(n))
            }
            "__subject"
            | "slack.default.title"
            | "pagerduty.default.description"
            | "email.default.subject" => {
                root(arg)?;
                text(subject(n))
            }
            "slack.default.fallback" => {
                root(arg)?;
                text(format!("{} | {}", subject(n), alertmanager_url(n)))
            }
            "slack.default.color" => {
                root(arg)?;
                if n.status == "firing" {
                    "danger"
                } else {
                    "good"
                }
                .to_owned()
            }
            "__description"
            | "slack.default.callbackid"
            | "slack.default.pretext"
            | "slack.default.iconemoji"
            | "slack.default.iconurl"
            | "slack.default.text"
            | "slack.default.footer" => {
                root(arg)?;
                String::new()
            }
            "__text_alert_list" | "pagerduty.default.instances" => match arg {
                Value::Alerts(alerts) => text(text_alert_list(alerts.iter().copied())),
                other => {
                    return Err(format!(
                        "template {name:?} applies to a list of alerts (`.Alerts`, \
                         `.Alerts.Firing` …), not {}",
                        other.kind()
                    ));
                }
            },
            "email.default.text" => {
                root(arg)?;
                text(email_text(n))
            }
            "email.default.html" => {
                root(arg)?;
                email_html(n)
            }
            other => return Err(format!("no template named {other:?}")),
        };
        Ok(result)
    }

    fn pipeline(&self, tokens: &[Token], dot: &Value<'a>) -> Result<Value<'a>, String> {
        let mut piped: Option<Value<'a>> = None;
        for command in split_top_level(tokens, &Token::Pipe) {
            piped = Some(self.command(command, piped, dot)?);
        }
        piped.ok_or_else(|| "empty pipeline".into())
    }

    fn command(
        &self,
        tokens: &[Token],
        piped: Option<Value<'a>>,
        dot: &Value<'a>,
    ) -> Result<Value<'a>, String> {
        let operands = operands(tokens)?;
        let Some((first, rest)) = operands.split_first() else {
            return Err("empty command in a pipeline".into());
        };
        if let [Token::Ident(function)] = first {
            let mut args = rest
                .iter()
                .map(|operand| self.operand(operand, dot))
                .collect::<Result<Vec<_>, _>>()?;
            args.extend(piped);
            return call(function, args);
        }
        if !rest.is_empty() {
            return Err(format!("{} is not a function", describe(first)));
        }
        if piped.is_some() {
            return Err(format!(
                "cannot pipe into {}: only functions take piped values",
                describe(first)
            ));
        }
        self.operand(first, dot)
    }

    fn operand(&self, tokens: &[Token], dot: &Value<'a>) -> Result<Value<'a>, String> {
        match tokens {
            [Token::Field(path)] => self.field(path, dot),
            [Token::Str(s)] => Ok(Value::Str(Cow::Owned(s.clone()))),
            [Token::Int(i)] => Ok(Value::Int(*i)),
            [Token::Ident(name)] => call(name, Vec::new()),
            [Token::Open, inner @ .., Token::Close] => self.pipeline(inner, dot),
            _ => Err(format!("unexpected {}", describe(tokens))),
        }
    }

    fn field(&self, path: &[String], dot: &Value<'a>) -> Result<Value<'a>, String> {
        let n = self.notification;
        let mut value = dot.clone();
        for name in path {
            value = match (value, name.as_str()) {
                (Value::Alert(a), "Status") => Value::Str(Cow::Borrowed(&a.status)),
                (Value::Alert(a), "Labels") => Value::Labels(&a.labels),
                (Value::Alert(a), "Annotations") => Value::Labels(&a.annotations),
                (Value::Alert(a), "StartsAt") => Value::Str(Cow::Borrowed(&a.starts_at)),
                (Value::Alert(a), "EndsAt") => Value::Str(Cow::Borrowed(&a.ends_at)),
                (Value::Alert(a), "GeneratorURL") => Value::Str(Cow::Borrowed(&a.generator_url)),
                (Value::Alert(a), "Fingerprint") => Value::Str(Cow::Borrowed(&a.fingerprint)),
                (Value::Pair(name, _), "Name") => Value::Str(Cow::Borrowed(name)),
                (Value::Pair(_, value), "Value") => Value::Str(Cow::Borrowed(value)),
                (Value::Labels(labels), "SortedPairs") => Value::Labels(labels),
                (Value::Root, "Status") => Value::Str(Cow::Borrowed(&n.status)),
                (Value::Root, "Receiver") => Value::Str(Cow::Borrowed(&n.receiver)),
                (Value::Root, "ExternalURL") => Value::Str(Cow::Borrowed(&n.external_url)),
                (Value::Root, "GroupLabels") => Value::Labels(&n.group_labels),
                (Value::Root, "CommonLabels") => Value::Labels(&n.common_labels),
                (Value::Root, "CommonAnnotations") => Value::Labels(&n.common_annotations),
                (Value::Root, "Alerts") => Value::Alerts(n.alerts.iter().collect()),
                (Value::Alerts(alerts), "Firing") => Value::Alerts(
                    alerts
                        .into_iter()
                        .filter(|a| a.status == "firing")
                        .collect(),
                ),
                (Value::Alerts(alerts), "Resolved") => Value::Alerts(
                    alerts
                        .into_iter()
                        .filter(|a| a.status == "resolved")
                        .collect(),
                ),
                (Value::Labels(labels), "Names") => Value::Strings(names(labels)),
                (Value::Labels(labels), "Values") => Value::Strings(values(labels)),
                (Value::Labels(labels), label) => Value::Str(lookup(labels, label)),
                (value, _) => {
                    return Err(format!(
                        "{} has no field {name:?} (path .{})",
                        value.kind(),
                        path.join(".")
                    ));
                }
            };
        }
        Ok(value)
    }
}

fn lookup<'a>(labels: &'a Labels, name: &str) -> Cow<'a, str> {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| Cow::Borrowed(v.as_str()))
        .unwrap_or(Cow::Borrowed(""))
}

fn call<'a>(function: &str, mut args: Vec<Value<'a>>) -> Result<Value<'a>, String> {
    let arity = |n: usize, args: &[Value<'_>]| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "{function} takes {n} argument{}, got {}",
                if n == 1 { "" } else { "s" },
                args.len()
            ))
        }
    };
    let string = |value: Value<'a>| match value {
        Value::Str(s) => Ok(s),
        other => Err(format!("{function} wants a string, got {}", other.kind())),
    };
    let map_string = |args: Vec<Value<'a>>, f: fn(&str) -> String| {
        arity(1, &args)?;
        let s = string(args.into_iter().next().expect("one argument"))?;
        Ok(Value::Str(Cow::Owned(f(&s))))
    };
    match function {
        "len" => {
            arity(1, &args)?;
            let len = match &args[0] {
                Value::Str(s) => s.len(),
                Value::Labels(labels) => labels.len(),
                Value::Strings(list) => list.len(),
                Value::Alerts(alerts) => alerts.len(),
                other => return Err(format!("len of {}", other.kind())),
            };
            Ok(Value::Int(i64::try_from(len).unwrap_or(i64::MAX)))
        }
        "index" => {
            arity(2, &args)?;
            let key = string(args.pop().expect("two arguments"))?;
            match args.pop().expect("two arguments") {
                Value::Labels(labels) => Ok(Value::Str(lookup(labels, &key))),
                other => Err(format!("index of {}", other.kind())),
            }
        }
        "join" => {
            arity(2, &args)?;
            let list = args.pop().expect("two arguments");
            let separator = string(args.pop().expect("two arguments"))?;
            match list {
                Value::Strings(list) => Ok(Value::Str(Cow::Owned(list.join(&separator)))),
                other => Err(format!(
                    "join wants a list of strings, got {}",
                    other.kind()
                )),
            }
        }
        "toUpper" => map_string(args, str::to_uppercase),
        "toLower" => map_string(args, str::to_lowercase),
        "trimSpace" => map_string(args, |s| s.trim().to_owned()),
        "title" => map_string(args, title_case),
        "urlquery" => map_string(args, query_escape),
        "eq" | "ne" => {
            if args.len() < 2 || (function == "ne" && args.len() != 2) {
                return Err(format!("{function} takes two arguments (eq: two or more)"));
            }
            let key = |v: &Value<'_>| match v {
                Value::Str(s) => Ok(format!("s{s}")),
                Value::Int(i) => Ok(format!("i{i}")),
                Value::Bool(b) => Ok(format!("b{b}")),
                other => Err(format!("{function} cannot compare {}", other.kind())),
            };
            let first = key(&args[0])?;
            let mut equal = false;
            for other in &args[1..] {
                equal |= key(other)? == first;
            }
            Ok(Value::Bool(equal == (function == "eq")))
        }
        "not" => {
            arity(1, &args)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        // Go's: the first argument that decides, else the last.
        "and" | "or" => {
            let decides = |v: &Value<'_>| v.truthy() == (function == "or");
            let mut last = None;
            for arg in args {
                if decides(&arg) {
                    return Ok(arg);
                }
                last = Some(arg);
            }
            last.ok_or_else(|| format!("{function} takes at least one argument"))
        }
        "toJson" => {
            arity(1, &args)?;
            let json = match &args[0] {
                Value::Str(s) => serde_json::to_string(s),
                Value::Int(i) => serde_json::to_string(i),
                Value::Labels(labels) => serde_json::to_string(
                    &labels
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect::<serde_json::Map<_, _>>(),
                ),
                Value::Strings(list) => serde_json::to_string(list),
                Value::Alerts(alerts) => serde_json::to_string(alerts),
                Value::Alert(alert) => serde_json::to_string(alert),
                Value::Pair(name, value) => {
                    serde_json::to_string(&serde_json::json!({"Name": name, "Value": value}))
                }
                Value::Bool(b) => serde_json::to_string(b),
                Value::Root => return Err("toJson of the notification".into()),
            };
            json.map(|j| Value::Str(Cow::Owned(j)))
                .map_err(|e| format!("toJson: {e}"))
        }
        other => Err(format!(
            "unknown function {other:?} (supported: len, index, join, toUpper, toLower, title, \
             trimSpace, urlquery, toJson, eq, ne, not, and, or)"
        )),
    }
}

/// Alertmanager's `title`: the first letter of each word upper-cased, the
/// rest left as is.
fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at_word_start = true;
    for c in text.chars() {
        if at_word_start && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_word_start = !c.is_alphanumeric() && c != '\'';
    }
    out
}

/// `{{- ` at the start of an action: the action without the marker.
fn trim_marker_start(action: &str) -> Option<&str> {
    let rest = action.strip_prefix('-')?;
    rest.starts_with(char::is_whitespace).then_some(rest)
}

/// ` -}}` at the end of an action: the action without the marker.
fn trim_marker_end(action: &str) -> Option<&str> {
    let rest = action.strip_suffix('-')?;
    rest.ends_with(char::is_whitespace).then_some(rest)
}

fn tokenize(action: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = action.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '|' => {
                chars.next();
                tokens.push(Token::Pipe);
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated string".into()),
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => s.push('\n'),
                            Some((_, 't')) => s.push('\t'),
                            Some((_, 'r')) => s.push('\r'),
                            Some((_, '\\')) => s.push('\\'),
                            Some((_, '"')) => s.push('"'),
                            Some((_, other)) => {
                                return Err(format!("unsupported escape \\{other} in a string"));
                            }
                            None => return Err("unterminated string".into()),
                        },
                        Some((_, c)) => s.push(c),
                    }
                }
                tokens.push(Token::Str(s));
            }
            '`' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated raw string".into()),
                        Some((_, '`')) => break,
                        Some((_, c)) => s.push(c),
                    }
                }
                tokens.push(Token::Str(s));
            }
            _ => {
                let word_end = action[at..]
                    .find(|c: char| c.is_whitespace() || matches!(c, '|' | '(' | ')' | '"' | '`'))
                    .map_or(action.len(), |i| at + i);
                let word = &action[at..word_end];
                while chars.peek().is_some_and(|&(i, _)| i < word_end) {
                    chars.next();
                }
                tokens.push(word_token(word)?);
            }
        }
    }
    Ok(tokens)
}

fn word_token(word: &str) -> Result<Token, String> {
    if word == "." {
        return Ok(Token::Field(Vec::new()));
    }
    if let Some(path) = word.strip_prefix('.') {
        let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
        if parts.iter().any(|p| !is_identifier(p)) {
            return Err(format!("bad field {word:?}"));
        }
        return Ok(Token::Field(parts));
    }
    if word.starts_with('$') {
        return Err(format!("variables ({word}) are not supported"));
    }
    if let Ok(i) = word.parse::<i64>() {
        return Ok(Token::Int(i));
    }
    if is_identifier(word) {
        return Ok(Token::Ident(word.to_owned()));
    }
    Err(format!("unexpected {word:?}"))
}

fn is_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// Splits `tokens` at `separator`s outside parentheses.
fn split_top_level<'t>(tokens: &'t [Token], separator: &Token) -> Vec<&'t [Token]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Open => depth += 1,
            Token::Close => depth = depth.saturating_sub(1),
            t if t == separator && depth == 0 => {
                parts.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tokens[start..]);
    parts
}

/// The operands of a command: single tokens, or a parenthesised group.
fn operands(tokens: &[Token]) -> Result<Vec<&[Token]>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i] {
            Token::Open => {
                let mut depth = 0usize;
                let mut end = None;
                for (j, token) in tokens.iter().enumerate().skip(i) {
                    match token {
                        Token::Open => depth += 1,
                        Token::Close => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or("unclosed parenthesis")?;
                out.push(&tokens[i..=end]);
                i = end + 1;
            }
            Token::Close => return Err("unexpected `)`".into()),
            _ => {
                out.push(&tokens[i..=i]);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn describe(tokens: &[Token]) -> String {
    match tokens {
        [Token::Field(path)] if path.is_empty() => "`.`".into(),
        [Token::Field(path)] => format!("`.{}`", path.join(".")),
        [Token::Str(s)] => format!("{s:?}"),
        [Token::Int(i)] => format!("`{i}`"),
        [Token::Ident(name)] => format!("`{name}`"),
        [Token::Open, ..] => "a parenthesised pipeline".into(),
        _ => "token".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    fn alert(status: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Alert {
        Alert {
            status: status.into(),
            labels: labels.iter().map(|(k, v)| pair(k, v)).collect(),
            annotations: annotations.iter().map(|(k, v)| pair(k, v)).collect(),
            starts_at: "2024-01-01T00:00:00Z".into(),
            ends_at: "0001-01-01T00:00:00Z".into(),
            generator_url: "http://prom/graph?g0.expr=up".into(),
            fingerprint: "f".into(),
        }
    }

    fn notification() -> Notification {
        Notification {
            receiver: "team ops".into(),
            status: "firing".into(),
            alerts: vec![
                alert(
                    "firing",
                    &[("instance", "a:80"), ("alertname", "Down"), ("job", "web")],
                    &[("summary", "a is down")],
                ),
                alert(
                    "resolved",
                    &[("instance", "b:80"), ("alertname", "Down"), ("job", "web")],
                    &[],
                ),
            ],
            group_labels: vec![pair("alertname", "Down")],
            common_labels: vec![pair("alertname", "Down"), pair("job", "web")],
            common_annotations: vec![],
            external_url: "http://lookout:9090".into(),
            group_key: "{}:{alertname=\"Down\"}".into(),
            truncated_alerts: 0,
        }
    }

    #[test]
    fn subject_matches_alertmanager() {
        let mut n = notification();
        assert_eq!(subject(&n), "[FIRING:1] Down (web)");
        n.common_labels = n.group_labels.clone();
        // Alertmanager leaves the space before the absent parenthesis.
        assert_eq!(subject(&n), "[FIRING:1] Down ");
        n.status = "resolved".into();
        assert_eq!(subject(&n), "[RESOLVED] Down ");
    }

    #[test]
    fn to_json_writes_alerts_and_label_sets_as_alertmanager() {
        let n = notification();
        let r = |t: &str| render(t, &n).unwrap();
        let firing: serde_json::Value =
            serde_json::from_str(&r("{{ .Alerts.Firing | toJson }}")).unwrap();
        assert_eq!(firing[0]["labels"]["instance"], "a:80");
        assert_eq!(firing[0]["status"], "firing");
        assert_eq!(firing.as_array().unwrap().len(), 1);
        assert_eq!(
            r("{{ .CommonLabels | toJson }}"),
            r#"{"alertname":"Down","job":"web"}"#
        );
        assert_eq!(r("{{ .Alerts.Resolved | len | toJson }}"), "1");
        assert_eq!(r("{{ .Receiver | toJson }}"), r#""team ops""#);
        assert!(render("{{ . | toJson }}", &n).is_err());
    }

    #[test]
    fn alertname_sorts_first() {
        let labels = vec![pair("a", "1"), pair("alertname", "X"), pair("z", "2")];
        let names: Vec<&str> = sorted_pairs(&labels).map(|(n, _)| n).collect();
        assert_eq!(names, ["alertname", "a", "z"]);
    }

    #[test]
    fn default_templates() {
        let n = notification();
        let r = |t: &str| render(t, &n).unwrap();
        assert_eq!(
            r(r#"{{ template "slack.default.titlelink" . }}"#),
            "http://lookout:9090/#/alerts?receiver=team+ops"
        );
        assert_eq!(
            r(r#"{{ template "slack.default.fallback" . }}"#),
            "[FIRING:1] Down (web) | http://lookout:9090/#/alerts?receiver=team+ops"
        );
        assert_eq!(r(r#"{{ template "slack.default.color" . }}"#), "danger");
        assert_eq!(r(r#"{{ template "slack.default.username" . }}"#), SENDER);
        assert_eq!(r(r#"{{ template "slack.default.text" . }}"#), "");
        assert_eq!(
            r(r#"{{ template "__text_alert_list" .Alerts.Firing }}"#),
            "Labels:\n - alertname = Down\n - instance = a:80\n - job = web\n\
             Annotations:\n - summary = a is down\nSource: http://prom/graph?g0.expr=up\n"
        );
    }

    #[test]
    fn fields_functions_and_pipes() {
        let n = notification();
        let r = |t: &str| render(t, &n).unwrap();
        assert_eq!(r("{{ .Status }} to {{ .Receiver }}"), "firing to team ops");
        assert_eq!(r("{{ .CommonLabels.alertname }}!"), "Down!");
        assert_eq!(r("[{{ .CommonLabels.missing }}]"), "[]");
        assert_eq!(r("{{ len .Alerts }}/{{ .Alerts.Firing | len }}"), "2/1");
        assert_eq!(r("{{ len .Alerts.Resolved }}"), "1");
        assert_eq!(r("{{ .Status | toUpper }}"), "FIRING");
        assert_eq!(r(r#"{{ index .CommonLabels "job" }}"#), "web");
        assert_eq!(r(r#"{{ .CommonLabels.Values | join "," }}"#), "Down,web");
        assert_eq!(r(r#"{{ join "+" .CommonLabels.Names }}"#), "alertname+job");
        assert_eq!(r("{{ (len .Alerts) }}"), "2");
        assert_eq!(r("{{ .CommonLabels }}"), "alertname=Down, job=web");
        assert_eq!(r("{{ \"a b\" | title }}"), "A B");
        assert_eq!(r("a  {{- .Status -}}  b{{/* note */}}"), "afiringb");
        assert_eq!(r("no actions"), "no actions");
    }

    #[test]
    fn html_mode_escapes_values() {
        let mut n = notification();
        n.receiver = "<ops>".into();
        assert_eq!(
            render_html("<b>{{ .Receiver }}</b>", &n).unwrap(),
            "<b>&lt;ops&gt;</b>"
        );
        let body = render_html(r#"{{ template "email.default.html" . }}"#, &n).unwrap();
        assert!(
            body.contains("<title>[FIRING:1] Down (web)</title>"),
            "{body}"
        );
        assert!(body.contains("[1] Firing"), "{body}");
        assert!(body.contains("[1] Resolved"), "{body}");
        assert!(body.contains("receiver=%3Cops%3E"), "{body}");
    }

    #[test]
    fn unsupported_constructs_are_errors() {
        let n = notification();
        let e = |t: &str| render(t, &n).unwrap_err().to_string();
        assert!(e("{{ define \"x\" }}x{{ end }}").contains("not supported"));
        assert!(e("{{ if .Status }}x").contains("no `{{ end }}`"));
        assert!(e("x{{ end }}").contains("without an `if`"));
        assert!(e("{{ range .Status }}x{{ end }}").contains("cannot range over a string"));
        assert!(e("{{ .Status").contains("unclosed"));
        assert!(e("{{ .Nope }}").contains("no field \"Nope\""));
        assert!(e("{{ reReplaceAll \"a\" \"b\" .Status }}").contains("unknown function"));
        assert!(e("{{ template \"nope\" . }}").contains("no template named"));
        assert!(e("{{ .Alerts }}").contains("cannot print"));
        assert!(e("{{ $x := 1 }}").contains("variables"));
        let error = render("{{ .Nope }}", &n).unwrap_err();
        assert!(matches!(
            crate::PluginError::from(error),
            crate::PluginError::Config(_)
        ));
    }

    #[test]
    fn control_structures_work_as_in_go_templates() {
        let n = notification();
        let r = |t: &str| render(t, &n).unwrap();
        // The seed alertmanager-slack-email.yml's Slack text.
        assert_eq!(
            r("{{ range .Alerts }}{{ .Annotations.summary }}{{ end }}"),
            "a is down"
        );
        assert_eq!(
            r("{{ range .Alerts }}{{ .Labels.instance }} {{ .Status }};{{ end }}"),
            "a:80 firing;b:80 resolved;"
        );
        assert_eq!(
            r("{{ range .Alerts.Resolved }}{{ .Labels.instance }}{{ else }}none{{ end }}"),
            "b:80"
        );
        assert_eq!(
            r("{{ range .CommonAnnotations.SortedPairs }}x{{ else }}none{{ end }}"),
            "none"
        );
        assert_eq!(
            r("{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }} {{ end }}"),
            "alertname=Down job=web "
        );
        assert_eq!(
            r(
                "{{ if eq .Status \"firing\" }}🔥{{ else if eq .Status \"resolved\" }}ok{{ else }}?{{ end }}"
            ),
            "🔥"
        );
        assert_eq!(
            r("{{ if not .CommonAnnotations.summary }}no summary{{ end }}"),
            "no summary"
        );
        assert_eq!(
            r("{{ with .CommonLabels.job }}job {{ . }}{{ else }}no job{{ end }}"),
            "job web"
        );
        assert_eq!(
            r("{{ with .CommonLabels.nope }}x{{ else }}no nope{{ end }}"),
            "no nope"
        );
        assert_eq!(
            r("{{- range .Alerts.Firing }}\n  - {{ .Labels.alertname }}\n{{- end }}"),
            "\n  - Down"
        );
        assert_eq!(r("{{ len .Alerts.Firing | eq 1 }}"), "true");
        assert_eq!(r("{{ or .CommonLabels.nope \"fallback\" }}"), "fallback");
        assert_eq!(r("{{ and .Status .Receiver }}"), "team ops");
        // Nested: alerts inside a condition.
        assert_eq!(
            r(
                "{{ if .Alerts.Firing }}{{ range .Alerts.Firing }}[{{ .Labels.job }}]{{ end }}{{ end }}"
            ),
            "[web]"
        );
    }

    #[test]
    fn email_text_lists_alerts() {
        let text = email_text(&notification());
        assert!(
            text.starts_with("Alerts Firing:\nLabels:\n - alertname = Down\n"),
            "{text}"
        );
        assert!(text.contains("Alerts Resolved:\nLabels:\n"), "{text}");
        assert!(
            text.ends_with("View in lookout: http://lookout:9090/#/alerts?receiver=team+ops\n")
        );
    }

    #[test]
    fn query_escape_is_gos() {
        assert_eq!(query_escape("a b/c?d=é"), "a+b%2Fc%3Fd%3D%C3%A9");
    }
}
