//! Prometheus rule files (`groups:` of recording and alerting rules): YAML
//! decoding with unknown fields refused, and the validation of Prometheus'
//! `model/rulefmt`, each problem reported with the file, the line (and
//! column) of the offending group, rule or field, and a message naming the
//! group and rule as Prometheus does (`group "g", rule 2, "HighLatency":
//! could not parse expression: ...`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Once;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{gofmt, template};

/// A parsed and validated rule file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleFile {
    /// The name the file was loaded under (shown in `/api/v1/rules`).
    pub file: String,
    pub groups: Vec<RuleGroup>,
}

/// A group of rules evaluated in order at one timestamp per interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleGroup {
    pub name: String,
    /// `interval:`; `None` means the global `evaluation_interval`.
    pub interval_ms: Option<i64>,
    /// `limit:`; 0 means no limit on alerts or series per rule.
    pub limit: usize,
    pub rules: Vec<Rule>,
    /// The line of the group in its file (1-based).
    pub line: usize,
}

/// An alerting or recording rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Rule {
    Alerting(AlertingRuleSpec),
    Recording(RecordingRuleSpec),
}

/// `- alert: NAME` with its expression, hold durations, labels and
/// annotations (templates, unexpanded).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertingRuleSpec {
    pub name: String,
    pub expr: String,
    /// `for:` in milliseconds.
    pub for_ms: i64,
    /// `keep_firing_for:` in milliseconds.
    pub keep_firing_for_ms: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub line: usize,
}

/// `- record: NAME` with its expression and labels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordingRuleSpec {
    pub name: String,
    pub expr: String,
    pub labels: BTreeMap<String, String>,
    pub line: usize,
}

impl Rule {
    pub fn name(&self) -> &str {
        match self {
            Rule::Alerting(a) => &a.name,
            Rule::Recording(r) => &r.name,
        }
    }

    pub fn expr(&self) -> &str {
        match self {
            Rule::Alerting(a) => &a.expr,
            Rule::Recording(r) => &r.expr,
        }
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        match self {
            Rule::Alerting(a) => &a.labels,
            Rule::Recording(r) => &r.labels,
        }
    }

    pub fn line(&self) -> usize {
        match self {
            Rule::Alerting(a) => a.line,
            Rule::Recording(r) => r.line,
        }
    }
}

/// A rule file that cannot be loaded: every problem found, each with its
/// place in the file.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct RuleError {
    pub file: String,
    pub problems: Vec<RuleProblem>,
}

/// One problem of a rule file.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleProblem {
    /// 1-based line, when the place is known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Names the group and rule: `group "g", rule 1, "Name": ...`.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file)?;
            if let Some(l) = p.line {
                write!(f, ":{l}")?;
                if let Some(c) = p.column {
                    write!(f, ":{c}")?;
                }
            }
            write!(f, ": {}", p.message)?;
        }
        Ok(())
    }
}

/// A YAML scalar read as text, as Go's YAML decoders do for string fields
/// (`for: 5` is the string `"5"`, `severity: 1` the label value `"1"`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Scalar(pub(crate) String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(gofmt::format_float_v(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Option<Vec<RawGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: Option<Scalar>,
    #[serde(default)]
    interval: Option<Scalar>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    rules: Option<Vec<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<Scalar>,
    #[serde(default)]
    alert: Option<Scalar>,
    #[serde(default)]
    expr: Option<Scalar>,
    #[serde(default, rename = "for")]
    for_: Option<Scalar>,
    #[serde(default)]
    keep_firing_for: Option<Scalar>,
    #[serde(default)]
    labels: Option<BTreeMap<String, Scalar>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, Scalar>>,
}

/// One step of a path into the YAML document.
#[derive(Clone, Copy, Debug)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Finds where the node at `path` starts, by decoding the document again
/// with a visitor that fails on that node: the YAML decoder stamps its
/// position on the failure.
fn locate(text: &str, path: &[Step<'_>]) -> Option<(usize, usize)> {
    struct Seek<'p>(&'p [Step<'p>]);
    const HERE: &str = "__lookout_locate__";

    impl<'de> DeserializeSeed<'de> for Seek<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Seek<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any node")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
            let Some((Step::Key(want), rest)) = self.0.split_first() else {
                return Err(de::Error::custom(HERE));
            };
            while let Some(k) = m.next_key::<Scalar>()? {
                if k.0 == *want {
                    return m.next_value_seed(Seek(rest));
                }
                m.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
            let Some((Step::Index(want), rest)) = self.0.split_first() else {
                return Err(de::Error::custom(HERE));
            };
            let mut i = 0;
            loop {
                if i == *want {
                    return s.next_element_seed(Seek(rest)).map(|_| ());
                }
                if s.next_element::<IgnoredAny>()?.is_none() {
                    return Ok(());
                }
                i += 1;
            }
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Err(E::custom(HERE))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Err(E::custom(HERE))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Err(E::custom(HERE))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Err(E::custom(HERE))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Err(E::custom(HERE))
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Err(E::custom(HERE))
        }
    }

    let de = serde_norway::Deserializer::from_str(text);
    match Seek(path).deserialize(de) {
        Err(e) if e.to_string().contains(HERE) => e.location().map(|l| (l.line(), l.column())),
        _ => None,
    }
}

/// Removes serde_norway's own ` at line L column C` from a message whose
/// place is reported separately.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

/// Problems found so far, placed by path.
struct Problems<'t> {
    text: &'t str,
    list: Vec<RuleProblem>,
}

impl Problems<'_> {
    fn add(&mut self, path: &[Step<'_>], message: String) {
        let loc = locate(self.text, path);
        self.list.push(RuleProblem {
            line: loc.map(|l| l.0),
            column: loc.map(|l| l.1),
            message,
        });
    }
}

static PARSER_SETUP: Once = Once::new();

/// Parses a PromQL expression with the parser lookout-promql evaluates with.
pub(crate) fn parse_promql(expr: &str) -> Result<promql_parser::parser::Expr, String> {
    // lookout-promql teaches the parser Prometheus 2.42's function names it
    // lacks (`holt_winters`) on its first query; make sure that happened.
    PARSER_SETUP.call_once(|| {
        struct Nothing;
        impl lookout_promql::SeriesSource for Nothing {
            fn select(
                &self,
                _: &[lookout_promql::Matcher],
                _: i64,
                _: i64,
            ) -> Result<Vec<lookout_promql::Series>, String> {
                Ok(vec![])
            }
        }
        let _ = lookout_promql::Engine::default().instant(&Nothing, "1", 0);
    });
    promql_parser::parser::parse(expr)
}

/// Prometheus' label-name syntax.
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Prometheus' metric-name syntax (colons allowed).
pub(crate) fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses and validates a Prometheus rule file. `file` names it in errors
/// and in the API.
///
/// Validation is Prometheus 2.42's `rulefmt`: unknown fields refused; group
/// names present and unique in the file; each rule exactly one of `record`
/// or `alert`; `expr` present and valid PromQL; recording rules without
/// `annotations`, `for` or `keep_firing_for` and with a valid metric name;
/// label names valid and not `__name__`; annotation names valid; alert label
/// and annotation templates parse. Durations (`interval`, `for`,
/// `keep_firing_for`) are Prometheus durations (`30s`, `1h30m`, `0`).
pub fn parse_rule_file(text: &str, file: &str) -> Result<RuleFile, RuleError> {
    let fail = |problems: Vec<RuleProblem>| RuleError {
        file: file.to_string(),
        problems,
    };
    let raw: RawFile = if text.trim().is_empty() {
        RawFile::default()
    } else {
        serde_norway::from_str(text).map_err(|e| {
            let loc = e.location();
            fail(vec![RuleProblem {
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                message: strip_location(&e.to_string()),
            }])
        })?
    };

    let mut probs = Problems {
        text,
        list: Vec::new(),
    };
    let mut groups = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (gi, g) in raw.groups.unwrap_or_default().into_iter().enumerate() {
        let gpath = [Step::Key("groups"), Step::Index(gi)];
        let name = g.name.map(|s| s.0).unwrap_or_default();
        if name.is_empty() {
            probs.add(&gpath, "Groupname must not be empty".to_string());
        }
        if !seen.insert(name.clone()) {
            probs.add(
                &gpath,
                format!(
                    "groupname: {} is repeated in the same file",
                    gofmt::quote(&name)
                ),
            );
        }
        let interval_ms = match g.interval {
            None => None,
            Some(Scalar(s)) => match gofmt::parse_model_duration(&s) {
                Ok(0) => None,
                Ok(ms) => Some(ms),
                Err(e) => {
                    probs.add(
                        &[gpath[0], gpath[1], Step::Key("interval")],
                        format!("group {}: interval: {e}", gofmt::quote(&name)),
                    );
                    None
                }
            },
        };
        let limit = g.limit.unwrap_or(0);
        if limit < 0 {
            probs.add(
                &gpath,
                format!("group {}: limit must not be negative", gofmt::quote(&name)),
            );
        }
        let mut rules = Vec::new();
        for (ri, r) in g.rules.unwrap_or_default().into_iter().enumerate() {
            let rpath = [gpath[0], gpath[1], Step::Key("rules"), Step::Index(ri)];
            let field = |f: &'static str| [rpath[0], rpath[1], rpath[2], rpath[3], Step::Key(f)];
            let record = r.record.map(|s| s.0).unwrap_or_default();
            let alert = r.alert.map(|s| s.0).unwrap_or_default();
            let rule_name = if alert.is_empty() {
                record.clone()
            } else {
                alert.clone()
            };
            let prefix = format!(
                "group {}, rule {}, {}",
                gofmt::quote(&name),
                ri + 1,
                gofmt::quote(&rule_name)
            );
            let before = probs.list.len();
            let mut rproblem =
                |path: &[Step<'_>], msg: String| probs.add(path, format!("{prefix}: {msg}"));
            if !record.is_empty() && !alert.is_empty() {
                rproblem(
                    &field("record"),
                    "only one of 'record' and 'alert' must be set".into(),
                );
            }
            if record.is_empty() && alert.is_empty() {
                rproblem(&rpath, "one of 'record' or 'alert' must be set".into());
            }
            let expr = r.expr.map(|s| s.0).unwrap_or_default();
            if expr.is_empty() {
                rproblem(&rpath, "field 'expr' must be set in rule".into());
            } else if let Err(e) = parse_promql(&expr) {
                rproblem(&field("expr"), format!("could not parse expression: {e}"));
            }
            let mut duration = |key: &'static str, v: Option<Scalar>| -> i64 {
                match v {
                    None => 0,
                    Some(Scalar(s)) => match gofmt::parse_model_duration(&s) {
                        Ok(ms) => ms,
                        Err(e) => {
                            rproblem(&field(key), format!("{key}: {e}"));
                            0
                        }
                    },
                }
            };
            let for_ms = duration("for", r.for_);
            let keep_firing_for_ms = duration("keep_firing_for", r.keep_firing_for);
            let annotations: BTreeMap<String, String> = r
                .annotations
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            let labels: BTreeMap<String, String> = r
                .labels
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            if !record.is_empty() {
                if !annotations.is_empty() {
                    rproblem(
                        &field("record"),
                        "invalid field 'annotations' in recording rule".into(),
                    );
                }
                if for_ms != 0 {
                    rproblem(
                        &field("record"),
                        "invalid field 'for' in recording rule".into(),
                    );
                }
                if keep_firing_for_ms != 0 {
                    rproblem(
                        &field("record"),
                        "invalid field 'keep_firing_for' in recording rule".into(),
                    );
                }
                if !is_valid_metric_name(&record) {
                    rproblem(
                        &field("record"),
                        format!("invalid recording rule name: {record}"),
                    );
                }
            }
            for k in labels.keys() {
                if !is_valid_label_name(k) || k == "__name__" {
                    rproblem(&field("labels"), format!("invalid label name: {k}"));
                }
            }
            for k in annotations.keys() {
                if !is_valid_label_name(k) {
                    rproblem(
                        &field("annotations"),
                        format!("invalid annotation name: {k}"),
                    );
                }
            }
            if !alert.is_empty() {
                for (k, v) in &labels {
                    if let Err(e) = template::check_template(v, &alert) {
                        rproblem(&field("labels"), format!("label {}: {e}", gofmt::quote(k)));
                    }
                }
                for (k, v) in &annotations {
                    if let Err(e) = template::check_template(v, &alert) {
                        rproblem(
                            &field("annotations"),
                            format!("annotation {}: {e}", gofmt::quote(k)),
                        );
                    }
                }
            }
            if probs.list.len() != before {
                continue;
            }
            let line = locate(text, &rpath).map(|l| l.0).unwrap_or(0);
            rules.push(if !alert.is_empty() {
                Rule::Alerting(AlertingRuleSpec {
                    name: alert,
                    expr,
                    for_ms,
                    keep_firing_for_ms,
                    labels,
                    annotations,
                    line,
                })
            } else {
                Rule::Recording(RecordingRuleSpec {
                    name: record,
                    expr,
                    labels,
                    line,
                })
            });
        }
        let line = locate(text, &gpath).map(|l| l.0).unwrap_or(0);
        groups.push(RuleGroup {
            name,
            interval_ms,
            limit: limit.max(0) as usize,
            rules,
            line,
        });
    }
    if !probs.list.is_empty() {
        return Err(fail(probs.list));
    }
    Ok(RuleFile {
        file: file.to_string(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_file_parses_with_lines() {
        let text = "groups:\n  - name: g\n    interval: 30s\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: Down\n        expr: up == 0\n        for: 5m\n        keep_firing_for: 1m\n        labels:\n          severity: 1\n        annotations:\n          summary: \"{{ $labels.instance }} down\"\n";
        let f = parse_rule_file(text, "r.yml").unwrap();
        assert_eq!(f.groups.len(), 1);
        let g = &f.groups[0];
        assert_eq!(
            (g.name.as_str(), g.interval_ms, g.line),
            ("g", Some(30_000), 2)
        );
        assert_eq!(g.rules[0].line(), 5);
        assert_eq!(g.rules[1].line(), 7);
        let Rule::Alerting(a) = &g.rules[1] else {
            panic!()
        };
        assert_eq!((a.for_ms, a.keep_firing_for_ms), (300_000, 60_000));
        assert_eq!(a.labels["severity"], "1");
    }

    #[test]
    fn problems_name_group_rule_and_line() {
        let text = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n      - record: 'bad name'\n        expr: up\n        for: 1m\n  - name: g\n    rules: []\n";
        let e = parse_rule_file(text, "r.yml").unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("r.yml:5:15: group \"g\", rule 1, \"A\": could not parse expression"),
            "{s}"
        );
        assert!(s.contains("r.yml:6:17: group \"g\", rule 2, \"bad name\": invalid field 'for' in recording rule"), "{s}");
        assert!(s.contains("invalid recording rule name: bad name"), "{s}");
        assert!(
            s.contains("r.yml:9:5: groupname: \"g\" is repeated in the same file"),
            "{s}"
        );
    }

    #[test]
    fn unknown_fields_and_bad_durations_are_refused() {
        let e = parse_rule_file("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        fo: 5m\n", "f").unwrap_err();
        assert_eq!(e.problems[0].line, Some(6), "{e}");
        assert!(e.to_string().contains("unknown field `fo`"), "{e}");
        let e = parse_rule_file("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5x\n", "f").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:6:14: group \"g\", rule 1, \"A\": for: not a valid duration string: \"5x\""
        );
    }

    #[test]
    fn templates_and_labels_are_checked() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      __name__: x\n      ok: '{{ $value }}'\n    annotations:\n      summary: '{{ nosuchfunc }}'\n";
        let e = parse_rule_file(text, "f").unwrap_err().to_string();
        assert!(e.contains("invalid label name: __name__"), "{e}");
        assert!(
            e.contains(
                "annotation \"summary\": template: __alert_A:1: function \"nosuchfunc\" not defined"
            ),
            "{e}"
        );
    }

    #[test]
    fn empty_file_has_no_groups() {
        assert_eq!(parse_rule_file("", "f").unwrap().groups, vec![]);
        assert_eq!(parse_rule_file("groups:\n", "f").unwrap().groups, vec![]);
    }
}
