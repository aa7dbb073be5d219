//! Expected outputs are what Prometheus 2.42 (Go 1.19) produces for the same
//! template and data, worked out by hand from Go's `text/template` and
//! `fmt` rules.

use super::*;

fn data(labels: &[(&str, &str)], value: f64) -> AlertTemplateData {
    AlertTemplateData {
        labels: labels
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        external_labels: [("cluster".to_string(), "eu1".to_string())].into(),
        external_url: "http://lookout:9090".into(),
        value,
    }
}

fn expand(t: &str, d: &AlertTemplateData) -> String {
    expand_alert_template(t, "Test", d, &TemplateContext::default())
        .unwrap_or_else(|e| panic!("{t}: {e}"))
}

#[test]
fn variables_and_fields() {
    let d = data(
        &[("__name__", "up"), ("instance", "a:9100"), ("job", "node")],
        0.5,
    );
    assert_eq!(
        expand("{{ $labels.instance }} is {{ $value }}", &d),
        "a:9100 is 0.5"
    );
    assert_eq!(expand("{{ .Labels.job }}/{{ .Value }}", &d), "node/0.5");
    assert_eq!(
        expand("{{ $externalLabels.cluster }} {{ $externalURL }}", &d),
        "eu1 http://lookout:9090"
    );
    assert_eq!(
        expand("[{{ $labels.missing }}]", &d),
        "[]",
        "missingkey=zero"
    );
    assert_eq!(expand("{{ index $labels \"job\" }}", &d), "node");
    assert_eq!(
        expand("{{ $labels }}", &d),
        "map[__name__:up instance:a:9100 job:node]"
    );
}

#[test]
fn values_print_like_go() {
    assert_eq!(expand("{{ $value }}", &data(&[], 1e6)), "1e+06");
    assert_eq!(expand("{{ $value }}", &data(&[], 123456.0)), "123456");
    assert_eq!(
        expand("{{ $value }}", &data(&[], 0.1 + 0.2)),
        "0.30000000000000004"
    );
    assert_eq!(expand("{{ $value }}", &data(&[], f64::INFINITY)), "+Inf");
    assert_eq!(
        expand("{{ 1 }} {{ 1.5 }} {{ \"s\" }} {{ true }}", &data(&[], 0.0)),
        "1 1.5 s true"
    );
}

#[test]
fn prometheus_functions() {
    let d = data(&[("instance", "host.example.com:9100")], 1234567.0);
    assert_eq!(expand("{{ humanize $value }}", &d), "1.235M");
    assert_eq!(expand("{{ $value | humanize1024 }}", &d), "1.177Mi");
    assert_eq!(expand("{{ humanizeDuration 3725 }}", &d), "1h 2m 5s");
    assert_eq!(expand("{{ humanizePercentage 0.256 }}", &d), "25.6%");
    assert_eq!(
        expand("{{ humanizeTimestamp 1600000000 }}", &d),
        "2020-09-13 12:26:40 +0000 UTC"
    );
    assert_eq!(expand("{{ printf \"%.2f\" $value }}", &d), "1234567.00");
    assert_eq!(expand("{{ printf \"%s=%d\" \"x\" 3 }}", &d), "x=3");
    assert_eq!(expand("{{ title \"hello world\" }}", &d), "Hello World");
    assert_eq!(
        expand("{{ toUpper \"abc\" }}{{ toLower \"DEF\" }}", &d),
        "ABCdef"
    );
    assert_eq!(
        expand("{{ $labels.instance | stripPort }}", &d),
        "host.example.com"
    );
    assert_eq!(
        expand("{{ $labels.instance | stripDomain }}", &d),
        "host:9100"
    );
    assert_eq!(
        expand(
            "{{ reReplaceAll \"(.*):(.*)\" \"$2 on $1\" $labels.instance }}",
            &d
        ),
        "9100 on host.example.com"
    );
    assert_eq!(
        expand("{{ if match \"^host\" $labels.instance }}yes{{ end }}", &d),
        "yes"
    );
    assert_eq!(
        expand("{{ graphLink \"up == 0\" }}", &d),
        "/graph?g0.expr=up+%3D%3D+0&g0.tab=0"
    );
    assert_eq!(
        expand("{{ tableLink \"up\" }}", &d),
        "/graph?g0.expr=up&g0.tab=1"
    );
    assert_eq!(expand("{{ parseDuration \"1h30m\" }}", &d), "5400");
    assert_eq!(expand("{{ (toTime 90).Unix }}", &d), "90");
    assert_eq!(expand("{{ humanize \"2048\" }}", &d), "2.048k");
    assert_eq!(
        expand("{{ with args 1 \"b\" }}{{ .arg0 }}{{ .arg1 }}{{ end }}", &d),
        "1b"
    );
    assert_eq!(expand("{{ safeHtml \"<b>\" }}", &d), "<b>");
}

#[test]
fn control_structures() {
    let d = data(&[("severity", "page")], 3.0);
    assert_eq!(
        expand(
            "{{ if gt $value 2.0 }}high{{ else if gt $value 1.0 }}mid{{ else }}low{{ end }}",
            &d
        ),
        "high"
    );
    assert_eq!(
        expand(
            "{{ if eq $labels.severity \"page\" \"crit\" }}P{{ end }}",
            &d
        ),
        "P"
    );
    assert_eq!(
        expand(
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            &d
        ),
        "severity=page;"
    );
    assert_eq!(
        expand("{{ range $labels }}{{ . }}{{ else }}none{{ end }}", &d),
        "page"
    );
    assert_eq!(
        expand("{{ with $labels.nothing }}x{{ else }}empty{{ end }}", &d),
        "empty"
    );
    assert_eq!(
        expand(
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
            &d
        ),
        "2"
    );
    assert_eq!(expand("a  {{- \" b \" -}}  c", &d), "a b c");
    assert_eq!(expand("a {{/* comment */}} b", &d), "a  b");
    assert_eq!(
        expand(
            "{{ define \"t\" }}[{{ . }}]{{ end }}{{ template \"t\" $value }}",
            &d
        ),
        "[3]"
    );
    assert_eq!(
        expand("{{ and 1 0 }} {{ or 0 \"\" \"x\" }} {{ not 0 }}", &d),
        "0 x true"
    );
    assert_eq!(expand("{{ len $labels }} {{ len \"abc\" }}", &d), "1 3");
    assert_eq!(expand("{{ print 1 2 \"a\" }}", &d), "1 2a");
}

#[test]
fn query_function_uses_the_engine_result() {
    type QueryResult = Result<Vec<(Vec<(String, String)>, f64)>, String>;
    let q = |expr: &str| -> QueryResult {
        assert_eq!(expr, "up");
        Ok(vec![
            (vec![("instance".into(), "b".into())], 0.0),
            (vec![("instance".into(), "a".into())], 1.0),
        ])
    };
    let ctx = TemplateContext {
        query: Some(&q),
        external_url: None,
    };
    let d = data(&[], 0.0);
    let out = expand_alert_template(
        "{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}={{ .Value }} {{ end }}|{{ with query \"up\" }}{{ . | first | value }}{{ end }}|{{ query \"up\" | first | label \"instance\" }}",
        "T",
        &d,
        &ctx,
    )
    .unwrap();
    assert_eq!(out, "a=1 b=0 |0|b");
}

#[test]
fn errors_read_like_go() {
    let d = data(&[], 1.0);
    let e = check_template("{{ nosuch }}", "A").unwrap_err();
    assert_eq!(e, "template: __alert_A:1: function \"nosuch\" not defined");
    assert!(
        check_template("{{ if }}", "A")
            .unwrap_err()
            .contains("missing value for if")
    );
    assert!(check_template("{{ .Labels", "A").is_err());
    assert!(
        check_template("{{ $undefined }}", "A")
            .unwrap_err()
            .contains("undefined variable \"$undefined\"")
    );
    assert!(check_template("{{ range . }}{{ end }}{{ break }}", "A").is_err());
    // Comparing a float with an int constant fails in Go's templates.
    let e = expand_alert_template(
        "{{ if gt $value 1 }}x{{ end }}",
        "A",
        &d,
        &TemplateContext::default(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        "error executing template __alert_A: template: __alert_A:1:118: executing \"__alert_A\" at <gt $value 1>: error calling gt: incompatible types for comparison"
    );
    let text = expand_or_error_text(
        "{{ first (query \"x\") }}",
        "A",
        &d,
        &TemplateContext::default(),
    );
    assert!(
        text.starts_with("<error expanding template: error executing template __alert_A:"),
        "{text}"
    );
    let e = expand_alert_template("{{ toUpper $value }}", "A", &d, &TemplateContext::default())
        .unwrap_err();
    assert!(
        e.ends_with("wrong type for value; expected string; got float64"),
        "{e}"
    );
}
