//! promtool's rule unit tests (`promtool test rules FILE...`), with
//! Prometheus 2.42's file format, evaluation and messages.
//!
//! For each test group the input series are loaded as samples every
//! `interval` from time 0; the rule groups are evaluated every
//! `evaluation_interval` from 0 up to the latest `eval_time` of the group's
//! tests, the input samples up to each evaluation's time being visible to
//! it; alert tests compare the **firing** alerts of the named rules with
//! the expected ones at the evaluation at or just before their `eval_time`;
//! PromQL tests run after all evaluations, over the input series and every
//! rule's output.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use lookout_promql::{Engine, Labels, Value};
use serde::Deserialize;

use crate::gofmt;
use crate::group::{GroupOptions, GroupState};
use crate::notation::{parse_metric, parse_series_desc};
use crate::rulefile::{Scalar, parse_rule_file};
use crate::source::MemorySeries;

/// promtool's exit code when every test passed.
pub const SUCCESS_EXIT_CODE: i32 = 0;
/// promtool's exit code when a test failed or could not run.
pub const FAILURE_EXIT_CODE: i32 = 1;

/// The outcome of one test file.
#[derive(Clone, Debug, PartialEq)]
pub struct FileReport {
    pub file: String,
    /// Warnings (rule-file patterns that matched nothing).
    pub warnings: Vec<String>,
    /// Each failure as promtool prints it; empty when the file passed.
    pub errors: Vec<String>,
}

/// The outcome of a run over test files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnitTestReport {
    pub files: Vec<FileReport>,
}

impl UnitTestReport {
    pub fn success(&self) -> bool {
        self.files.iter().all(|f| f.errors.is_empty())
    }

    /// promtool's exit code: 0 when every file passed, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.success() {
            SUCCESS_EXIT_CODE
        } else {
            FAILURE_EXIT_CODE
        }
    }

    /// What promtool prints on standard output.
    pub fn stdout(&self) -> String {
        self.render(false, true)
    }

    /// What promtool prints on standard error.
    pub fn stderr(&self) -> String {
        self.render(true, false)
    }

    /// Standard output and error interleaved as on a terminal.
    pub fn text(&self) -> String {
        self.render(true, true)
    }

    fn render(&self, err: bool, out: bool) -> String {
        let mut s = String::new();
        for f in &self.files {
            if out {
                s.push_str(&format!("Unit Testing:  {}\n", f.file));
            }
            if err {
                for w in &f.warnings {
                    s.push_str(&format!("  WARNING: no file match pattern {w}\n"));
                }
            }
            if f.errors.is_empty() {
                if out {
                    s.push_str("  SUCCESS\n");
                }
            } else {
                if err {
                    s.push_str("  FAILED:\n");
                }
                for e in &f.errors {
                    if err {
                        s.push_str(e);
                        s.push('\n');
                    }
                    if out {
                        s.push('\n');
                    }
                }
            }
            if out {
                s.push('\n');
            }
        }
        s
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitTestFile {
    #[serde(default)]
    rule_files: Option<Vec<String>>,
    #[serde(default)]
    evaluation_interval: Option<Scalar>,
    #[serde(default)]
    group_eval_order: Option<Vec<String>>,
    #[serde(default)]
    tests: Option<Vec<TestGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<Scalar>,
    #[serde(default)]
    input_series: Option<Vec<InputSeries>>,
    #[serde(default)]
    alert_rule_test: Option<Vec<AlertTestCase>>,
    #[serde(default)]
    promql_expr_test: Option<Vec<PromqlTestCase>>,
    #[serde(default)]
    external_labels: Option<BTreeMap<String, Scalar>>,
    #[serde(default)]
    external_url: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    #[serde(default)]
    series: Option<Scalar>,
    #[serde(default)]
    values: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTestCase {
    #[serde(default)]
    eval_time: Option<Scalar>,
    #[serde(default)]
    alertname: Option<Scalar>,
    #[serde(default)]
    exp_alerts: Option<Vec<ExpAlert>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: Option<BTreeMap<String, Scalar>>,
    #[serde(default)]
    exp_annotations: Option<BTreeMap<String, Scalar>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTestCase {
    #[serde(default)]
    expr: Option<Scalar>,
    #[serde(default)]
    eval_time: Option<Scalar>,
    #[serde(default)]
    exp_samples: Option<Vec<ExpSample>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: Option<Scalar>,
    #[serde(default)]
    value: f64,
}

/// Runs promtool's rule unit tests in one file.
pub fn run_unit_tests(path: &Path) -> UnitTestReport {
    run_unit_test_files(&[path])
}

/// Runs promtool's rule unit tests in each file, in order.
pub fn run_unit_test_files(paths: &[&Path]) -> UnitTestReport {
    UnitTestReport {
        files: paths.iter().map(|p| run_file(p)).collect(),
    }
}

fn duration(s: &Option<Scalar>) -> Result<i64, String> {
    match s {
        None => Ok(0),
        Some(Scalar(s)) if s.is_empty() => Ok(0),
        Some(Scalar(s)) => gofmt::parse_model_duration(s),
    }
}

fn run_file(path: &Path) -> FileReport {
    let file = path.display().to_string();
    let mut report = FileReport {
        file,
        warnings: vec![],
        errors: vec![],
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            report
                .errors
                .push(format!("open {}: {}", report.file, io_message(&e)));
            return report;
        }
    };
    let parsed: UnitTestFile = match serde_norway::from_str(&text) {
        Ok(p) => p,
        Err(e) => {
            report.errors.push(format!("yaml: {e}"));
            return report;
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rule_files = Vec::new();
    for rf in parsed.rule_files.unwrap_or_default() {
        let full = if rf.is_empty() || Path::new(&rf).is_absolute() {
            PathBuf::from(&rf)
        } else {
            base.join(&rf)
        };
        let matched = glob(&full);
        if matched.is_empty() {
            report.warnings.push(full.display().to_string());
        }
        rule_files.extend(matched);
    }
    let eval_interval = match duration(&parsed.evaluation_interval) {
        Ok(0) => 60_000,
        Ok(d) => d,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    let mut order = HashMap::new();
    for (i, g) in parsed
        .group_eval_order
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if order.contains_key(&g) {
            report
                .errors
                .push(format!("group name repeated in evaluation order: {g}"));
            return report;
        }
        order.insert(g, i);
    }
    for tg in parsed.tests.unwrap_or_default() {
        report
            .errors
            .extend(run_test_group(&tg, eval_interval, &order, &rule_files));
    }
    report
}

/// A rule-file problem as Prometheus' loader words it: `file: L:C: msg`
/// where rulefmt has a YAML node for it, `0:0:` where that node is absent,
/// and no place for label and annotation problems.
fn prometheus_rule_problem(file: &str, p: &crate::rulefile::RuleProblem) -> String {
    let m = &p.message;
    let unplaced = [
        "invalid label name",
        "invalid annotation name",
        ": label \"",
        ": annotation \"",
    ];
    if unplaced.iter().any(|u| m.contains(u)) {
        return format!("{file}: {m}");
    }
    if m.ends_with("one of 'record' or 'alert' must be set")
        || m.ends_with("field 'expr' must be set in rule")
    {
        return format!("{file}: 0:0: {m}");
    }
    match (p.line, p.column) {
        (Some(l), Some(c)) => format!("{file}: {l}:{c}: {m}"),
        _ => format!("{file}: {m}"),
    }
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// One expected or actual alert: labels and annotations.
type LabelsAndAnnotations = (Labels, Labels);

fn go_labels(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}={}", gofmt::quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn indent_lines(s: &str, indent: &str) -> String {
    s.split('\n')
        .enumerate()
        .fold(String::new(), |mut acc, (i, l)| {
            if i > 0 {
                acc.push('\n');
                acc.push_str(indent);
            }
            acc.push_str(l);
            acc
        })
}

fn alerts_string(list: &[LabelsAndAnnotations]) -> String {
    if list.is_empty() {
        return "[]".into();
    }
    let one = |la: &LabelsAndAnnotations| {
        format!(
            "Labels:{}\nAnnotations:{}",
            go_labels(&la.0),
            go_labels(&la.1)
        )
    };
    let mut s = format!(
        "[\n0:{}",
        indent_lines(&format!("\n{}", one(&list[0])), "  ")
    );
    for (i, la) in list.iter().enumerate().skip(1) {
        s.push_str(&format!(
            ",\n{i}:{}",
            indent_lines(&format!("\n{}", one(la)), "  ")
        ));
    }
    s.push_str("\n]");
    s
}

fn to_vector(v: Value) -> Result<Vec<(Labels, f64)>, String> {
    match v {
        Value::Vector(s) => Ok(s.into_iter().map(|s| (s.labels, s.v)).collect()),
        Value::Scalar(_, v) => Ok(vec![(vec![], v)]),
        _ => Err("rule result is not a vector or scalar".into()),
    }
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| format!("{} {}", go_labels(l), gofmt::format_e(*v, None, true)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_test_group(
    tg: &TestGroup,
    eval_interval: i64,
    order: &HashMap<String, usize>,
    rule_files: &[PathBuf],
) -> Vec<String> {
    let interval = match duration(&tg.interval) {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    // The input series, as promtool's `load` command: later definitions of
    // the same series replace earlier ones.
    let mut input: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for s in tg.input_series.iter().flatten() {
        let desc = format!(
            "{} {}",
            s.series.as_ref().map(|x| x.0.as_str()).unwrap_or(""),
            s.values.as_ref().map(|x| x.0.as_str()).unwrap_or("")
        );
        match parse_series_desc(&desc) {
            Ok((labels, values)) => {
                let samples = values
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i as i64 * interval, v)))
                    .collect();
                input.insert(labels, samples);
            }
            Err(e) => return vec![e],
        }
    }

    let external_labels: BTreeMap<String, String> = tg
        .external_labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    let opts = GroupOptions {
        default_interval_ms: interval,
        external_labels,
        external_url: tg.external_url.clone().filter(|u| !u.is_empty()),
        external_url_functions: false,
        ..GroupOptions::default()
    };
    let mut groups: Vec<GroupState> = Vec::new();
    for f in rule_files {
        let fname = f.display().to_string();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => return vec![format!("{fname}: open {fname}: {}", io_message(&e))],
        };
        match parse_rule_file(&text, &fname) {
            Ok(rf) => {
                for g in rf.groups {
                    groups.push(GroupState::new(g, &fname, opts.clone()));
                }
            }
            Err(e) => {
                return e
                    .problems
                    .iter()
                    .map(|p| prometheus_rule_problem(&e.file, p))
                    .collect();
            }
        }
    }
    groups.sort_by_key(|g| order.get(g.name()).copied().unwrap_or(0));

    let test_name = tg.name.clone().unwrap_or_default();
    let mut alert_tests: BTreeMap<i64, Vec<&AlertTestCase>> = BTreeMap::new();
    for a in tg.alert_rule_test.iter().flatten() {
        let t = match duration(&a.eval_time) {
            Ok(t) => t,
            Err(e) => return vec![e],
        };
        if a.alertname.as_ref().is_none_or(|n| n.0.is_empty()) {
            let in_group = if test_name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {test_name})")
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                gofmt::model_duration(t)
            )];
        }
        alert_tests.entry(t).or_default().push(a);
    }
    let mut promql_times = Vec::new();
    for p in tg.promql_expr_test.iter().flatten() {
        match duration(&p.eval_time) {
            Ok(t) => promql_times.push(t),
            Err(e) => return vec![e],
        }
    }
    let maxt = alert_tests
        .keys()
        .copied()
        .chain(promql_times.iter().copied())
        .max()
        .unwrap_or(0);

    let engine = Engine::default();
    let mut storage = MemorySeries::new();
    let mut next_input: BTreeMap<&Labels, usize> = input.keys().map(|l| (l, 0)).collect();
    let mut errs: Vec<String> = Vec::new();
    let alert_times: Vec<i64> = alert_tests.keys().copied().collect();
    let mut curr = 0usize;
    let mut ts = 0i64;
    while ts <= maxt {
        // Load the input samples up to `ts`. They go in as one batch, where
        // Prometheus' head keeps the first of two samples at one timestamp
        // (a missing `interval` puts them all at 0).
        for (labels, samples) in &input {
            let i = next_input.get_mut(labels).expect("every input series");
            while *i < samples.len() && samples[*i].0 <= ts {
                let (t, v) = samples[*i];
                let _ = storage.append(labels, t, v);
                *i += 1;
            }
        }
        {
            let mut eval_errs = Vec::new();
            for g in &mut groups {
                let out = g.eval(&engine, &storage, ts);
                for (labels, v) in &out.samples_to_write {
                    let _ = storage.append(labels, ts, *v);
                }
                for r in g.rules() {
                    if let Some(e) = r.last_error() {
                        eval_errs.push(format!(
                            "    rule: {}, time: {}, err: {e}",
                            r.spec().name(),
                            gofmt::go_duration(ts)
                        ));
                    }
                }
            }
            let failed = !eval_errs.is_empty();
            errs.extend(eval_errs);
            if failed {
                return errs;
            }
        }

        while curr < alert_times.len()
            && ts <= alert_times[curr]
            && alert_times[curr] < ts + eval_interval
        {
            let t = alert_times[curr];
            let cases = &alert_tests[&t];
            let wanted: Vec<&str> = cases
                .iter()
                .filter_map(|c| c.alertname.as_ref().map(|n| n.0.as_str()))
                .collect();
            let mut got: HashMap<String, Vec<LabelsAndAnnotations>> = HashMap::new();
            for g in &groups {
                for r in g.rules() {
                    let spec = r.spec();
                    let crate::rulefile::Rule::Alerting(a) = &spec else {
                        continue;
                    };
                    if !wanted.contains(&a.name.as_str()) {
                        continue;
                    }
                    let firing = r
                        .active_alerts()
                        .into_iter()
                        .filter(|al| al.state == crate::alerting::AlertState::Firing)
                        .map(|al| (al.labels.clone(), al.annotations.clone()));
                    got.entry(a.name.clone()).or_default().extend(firing);
                }
            }
            for case in cases {
                let name = case
                    .alertname
                    .as_ref()
                    .map(|n| n.0.clone())
                    .unwrap_or_default();
                let mut got_alerts = got.get(&name).cloned().unwrap_or_default();
                let mut exp_alerts: Vec<LabelsAndAnnotations> = case
                    .exp_alerts
                    .iter()
                    .flatten()
                    .map(|e| {
                        let mut labels: BTreeMap<String, String> = e
                            .exp_labels
                            .iter()
                            .flatten()
                            .map(|(k, v)| (k.clone(), v.0.clone()))
                            .collect();
                        labels.insert("alertname".into(), name.clone());
                        let ann: Labels = e
                            .exp_annotations
                            .iter()
                            .flatten()
                            .map(|(k, v)| (k.clone(), v.0.clone()))
                            .collect();
                        (labels.into_iter().collect(), ann)
                    })
                    .collect();
                got_alerts.sort();
                exp_alerts.sort();
                if exp_alerts != got_alerts {
                    let test_line = if test_name.is_empty() {
                        String::new()
                    } else {
                        format!("    name: {test_name},\n")
                    };
                    errs.push(format!(
                        "{test_line}    alertname: {name}, time: {}, \n        exp:{}, \n        got:{}",
                        gofmt::model_duration(t),
                        indent_lines(&alerts_string(&exp_alerts), "            "),
                        indent_lines(&alerts_string(&got_alerts), "            "),
                    ));
                }
            }
            curr += 1;
        }
        ts += eval_interval;
    }

    'cases: for (p, &t) in tg.promql_expr_test.iter().flatten().zip(&promql_times) {
        let expr = p.expr.as_ref().map(|e| e.0.clone()).unwrap_or_default();
        let got = engine
            .instant(&storage, &expr, t)
            .map_err(|e| e.to_string())
            .and_then(to_vector);
        let mut got = match got {
            Ok(g) => g,
            Err(e) => {
                errs.push(format!(
                    "    expr: {}, time: {}, err: {e}",
                    gofmt::quote(&expr),
                    gofmt::model_duration(t)
                ));
                continue;
            }
        };
        let mut exp = Vec::new();
        for s in p.exp_samples.iter().flatten() {
            let text = s.labels.as_ref().map(|l| l.0.clone()).unwrap_or_default();
            match parse_metric(&text) {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => {
                    errs.push(format!(
                        "    expr: {}, time: {}, err: labels {}: {e}",
                        gofmt::quote(&expr),
                        gofmt::model_duration(t),
                        gofmt::quote(&text)
                    ));
                    continue 'cases;
                }
            }
        }
        let by_labels = |a: &(Labels, f64), b: &(Labels, f64)| a.0.cmp(&b.0);
        exp.sort_by(by_labels);
        got.sort_by(by_labels);
        let equal =
            exp.len() == got.len() && exp.iter().zip(&got).all(|(e, g)| e.0 == g.0 && e.1 == g.1);
        if !equal {
            errs.push(format!(
                "    expr: {}, time: {},\n        exp: {}\n        got: {}",
                gofmt::quote(&expr),
                gofmt::model_duration(t),
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    errs
}

/// Go's `filepath.Glob`: `*`, `?` and `[...]` in any path component; the
/// matches sorted; a pattern without them matches the path if it exists.
pub fn glob(pattern: &Path) -> Vec<PathBuf> {
    let has_meta = |s: &str| s.contains(['*', '?', '[']);
    let text = pattern.to_string_lossy();
    if !has_meta(&text) {
        return if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            vec![]
        };
    }
    let mut current: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in pattern.components() {
        let c = comp.as_os_str().to_string_lossy().to_string();
        let mut next = Vec::new();
        for base in &current {
            if !has_meta(&c) {
                next.push(base.join(&c));
                continue;
            }
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| glob_match(&c, n))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        current = next;
    }
    current.into_iter().filter(|p| p.exists()).collect()
}

/// Go's `filepath.Match` for one path component.
fn glob_match(pattern: &str, name: &str) -> bool {
    fn rec(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| rec(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && rec(&p[1..], &n[1..]),
            Some('[') => {
                let Some(c) = n.first() else { return false };
                let mut i = 1;
                let negate = p.get(1) == Some(&'^');
                if negate {
                    i += 1;
                }
                let mut matched = false;
                let mut first = true;
                while i < p.len() && (p[i] != ']' || first) {
                    first = false;
                    let lo = if p[i] == '\\' && i + 1 < p.len() {
                        i += 1;
                        p[i]
                    } else {
                        p[i]
                    };
                    let mut hi = lo;
                    if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|c| *c != ']') {
                        hi = p[i + 2];
                        i += 2;
                    }
                    if lo <= *c && *c <= hi {
                        matched = true;
                    }
                    i += 1;
                }
                if i >= p.len() {
                    return false;
                }
                matched != negate && rec(&p[i + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && rec(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && rec(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    rec(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns_match_like_go() {
        assert!(glob_match("*.yml", "rules.yml"));
        assert!(!glob_match("*.yml", "rules.yaml"));
        assert!(glob_match("r?les.y[a-z]l", "rules.yml"));
        assert!(glob_match("[^x]*", "abc"));
        assert!(!glob_match("[^a]*", "abc"));
    }

    #[test]
    fn alert_lists_print_like_promtool() {
        let la = (
            vec![("alertname".to_string(), "A".to_string())],
            vec![("summary".to_string(), "x".to_string())],
        );
        assert_eq!(
            indent_lines(&alerts_string(&[la]), "            "),
            "[\n            0:\n              Labels:{alertname=\"A\"}\n              Annotations:{summary=\"x\"}\n            ]"
        );
        assert_eq!(alerts_string(&[]), "[]");
    }
}
