//! Prometheus' template language for alert labels and annotations: Go's
//! `text/template` with `missingkey=zero`, Prometheus' function map
//! (`humanize`, `query`, `reReplaceAll`, ...) and Go's `fmt` rendering of
//! values, so `{{ $value }}` prints `1e+06` and `{{ printf "%.2f" $value }}`
//! prints `1000000.00` exactly as Prometheus 2.42 does.
//!
//! Entry points: [`expand_alert_template`] and [`check_template`].

mod exec;
mod funcs;
mod parse;
mod printf;

use std::collections::BTreeMap;
use std::rc::Rc;

pub use funcs::FUNCTION_NAMES;
pub(crate) use funcs::query_escape as funcs_query_escape;

/// Runs a PromQL query at the evaluation time for the `query` template
/// function; returns the result as `(labels, value)` pairs.
pub type TemplateQueryFn<'a> =
    dyn Fn(&str) -> Result<Vec<(Vec<(String, String)>, f64)>, String> + 'a;

/// The data an alert template sees: `.Labels`/`$labels`, `.ExternalLabels`/
/// `$externalLabels`, `.ExternalURL`/`$externalURL`, `.Value`/`$value`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertTemplateData {
    pub labels: BTreeMap<String, String>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub value: f64,
}

/// What the template functions may reach besides the data.
#[derive(Default)]
pub struct TemplateContext<'a> {
    /// The `query` function; `None` makes it fail as Prometheus does
    /// without a query engine.
    pub query: Option<&'a TemplateQueryFn<'a>>,
    /// `--web.external-url` for `externalURL` and `pathPrefix`; `None`
    /// makes both fail as in promtool.
    pub external_url: Option<String>,
}

/// The variables Prometheus defines before every alert template.
pub const ALERT_TEMPLATE_DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Expands one alert label or annotation template the way Prometheus'
/// alerting rule does: the `$labels`/`$value`/... definitions are prepended
/// and the template is named `__alert_<rule name>`. Errors read as
/// Prometheus', `error parsing template ...` or `error executing template
/// ...`; Prometheus puts them in the result as
/// `<error expanding template: ...>` (see [`expand_or_error_text`]).
pub fn expand_alert_template(
    text: &str,
    rule_name: &str,
    data: &AlertTemplateData,
    ctx: &TemplateContext<'_>,
) -> Result<String, String> {
    let name = format!("__alert_{rule_name}");
    let full = format!("{ALERT_TEMPLATE_DEFS}{text}");
    let tree = parse::parse(&name, &full, &funcs::function_set())
        .map_err(|e| format!("error parsing template {name}: {e}"))?;
    let dot = exec::Value::Data(Rc::new(data.clone()));
    exec::execute(&tree, dot, ctx).map_err(|e| format!("error executing template {name}: {e}"))
}

/// [`expand_alert_template`], with a failure rendered into the text as
/// Prometheus does: `<error expanding template: ...>`.
pub fn expand_or_error_text(
    text: &str,
    rule_name: &str,
    data: &AlertTemplateData,
    ctx: &TemplateContext<'_>,
) -> String {
    match expand_alert_template(text, rule_name, data, ctx) {
        Ok(s) => s,
        Err(e) => format!("<error expanding template: {e}>"),
    }
}

/// Checks that an alert template parses (rule-file validation); the error
/// is Go's parse error, e.g. `template: __alert_X:1: function "foo" not
/// defined`.
pub fn check_template(text: &str, rule_name: &str) -> Result<(), String> {
    let name = format!("__alert_{rule_name}");
    let full = format!("{ALERT_TEMPLATE_DEFS}{text}");
    parse::parse(&name, &full, &funcs::function_set()).map(|_| ())
}

#[cfg(test)]
mod tests;
