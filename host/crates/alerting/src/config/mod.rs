//! `alertmanager.yml`: parsing, `${VAR}` expansion and validation.
//!
//! [`parse_config`] reads the file in two steps. First the YAML is read into
//! typed structs (unknown keys, wrong types, bad durations and unset
//! `${VAR}` references fail here, at their exact line). Then the document is
//! validated with Alertmanager's rules and messages, in this order:
//!
//! 1. receiver names (missing, duplicated) and unsupported integrations;
//! 2. the root route (a receiver, no matchers, no `continue`, no time
//!    intervals);
//! 3. receivers used in the route tree but never defined
//!    (`undefined receiver "default" used in route`);
//! 4. time interval names (duplicated, undefined where used);
//! 5. route fields (matchers, `match_re` regexes, `group_by`, zero
//!    intervals), inhibit rules, time interval contents;
//! 6. each integration's own fields with the `global:` fallbacks (URLs,
//!    SMTP smarthost and sender, Slack URL or token, PagerDuty keys).
//!
//! Alertmanager checks URLs while reading the YAML, before the route tree;
//! lookout checks the route tree first, so a file with an undefined receiver
//! and a placeholder URL is refused for the receiver, the more fundamental
//! problem. Either way the file is refused.

pub mod expand;
pub mod locate;
pub mod receivers;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::labels::is_valid_label_name;
use crate::matcher::Matcher;
use crate::route::{RouteTree, compile_legacy_matchers, compile_matcher_lines};
use crate::timeinterval::{NamedTimeInterval, TimeIntervalConfig};
use expand::{EnvLookup, Expand};
use locate::{Path, locate};
pub use receivers::{
    Authorization, BasicAuth, EmailConfig, HttpClientConfig, IntegrationKind, IntegrationRef,
    OAuth2, PagerdutyConfig, PluginIntegration, Receiver, Secret, SlackConfig, TlsConfig,
    WebhookConfig,
};
use receivers::{RawReceiver, check_host_port, check_http_url};

/// A config file that cannot be used: where, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file name given to [`parse_config`].
    pub file: String,
    /// 1-based line of the offending node; 0 when unknown.
    pub line: usize,
    /// What is wrong, in Alertmanager's words where it has them.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

/// `global:`, with Alertmanager's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// An alert without `endsAt` is resolved this long after its last
    /// update. Default 5m.
    #[serde(with = "prom_duration")]
    pub resolve_timeout: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_from: Option<String>,
    /// Default `localhost`.
    pub smtp_hello: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_smarthost: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_auth_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_auth_password: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_auth_password_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_auth_secret: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_auth_secret_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_auth_identity: Option<String>,
    /// Default true.
    pub smtp_require_tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_tls_config: Option<TlsConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_force_implicit_tls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_api_url: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_api_url_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_app_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_app_token_file: Option<String>,
    /// Default `https://slack.com/api/chat.postMessage`.
    pub slack_app_url: String,
    /// Default `https://events.pagerduty.com/v2/enqueue`.
    pub pagerduty_url: String,
    // Read and kept for integrations lookout does not deliver, so configs
    // written for Alertmanager load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wechat_api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wechat_api_secret: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wechat_api_secret_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wechat_api_corp_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub victorops_api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub victorops_api_key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub victorops_api_key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram_api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram_bot_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram_bot_token_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webex_api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jira_api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rocketchat_api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rocketchat_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rocketchat_token_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rocketchat_token_id: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rocketchat_token_id_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mattermost_webhook_url: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mattermost_webhook_url_file: Option<String>,
}

/// Alertmanager's default `resolve_timeout`.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            http_config: None,
            smtp_from: None,
            smtp_hello: "localhost".into(),
            smtp_smarthost: None,
            smtp_auth_username: None,
            smtp_auth_password: None,
            smtp_auth_password_file: None,
            smtp_auth_secret: None,
            smtp_auth_secret_file: None,
            smtp_auth_identity: None,
            smtp_require_tls: true,
            smtp_tls_config: None,
            smtp_force_implicit_tls: None,
            slack_api_url: None,
            slack_api_url_file: None,
            slack_app_token: None,
            slack_app_token_file: None,
            slack_app_url: "https://slack.com/api/chat.postMessage".into(),
            pagerduty_url: "https://events.pagerduty.com/v2/enqueue".into(),
            opsgenie_api_url: None,
            opsgenie_api_key: None,
            opsgenie_api_key_file: None,
            wechat_api_url: None,
            wechat_api_secret: None,
            wechat_api_secret_file: None,
            wechat_api_corp_id: None,
            victorops_api_url: None,
            victorops_api_key: None,
            victorops_api_key_file: None,
            telegram_api_url: None,
            telegram_bot_token: None,
            telegram_bot_token_file: None,
            webex_api_url: None,
            jira_api_url: None,
            rocketchat_api_url: None,
            rocketchat_token: None,
            rocketchat_token_file: None,
            rocketchat_token_id: None,
            rocketchat_token_id_file: None,
            mattermost_webhook_url: None,
            mattermost_webhook_url_file: None,
        }
    }
}

impl GlobalConfig {
    fn validate(&self, path: &Path) -> Result<(), (Path, String)> {
        let set = |s: &Option<Secret>| s.as_ref().is_some_and(|s| !s.is_empty());
        let set_f = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        let pairs: [(&str, bool, bool); 8] = [
            (
                "slack_app_token",
                set(&self.slack_app_token),
                set_f(&self.slack_app_token_file),
            ),
            (
                "slack_api_url",
                self.slack_api_url.is_some(),
                set_f(&self.slack_api_url_file),
            ),
            (
                "opsgenie_api_key",
                set(&self.opsgenie_api_key),
                set_f(&self.opsgenie_api_key_file),
            ),
            (
                "victorops_api_key",
                set(&self.victorops_api_key),
                set_f(&self.victorops_api_key_file),
            ),
            (
                "telegram_bot_token",
                set(&self.telegram_bot_token),
                set_f(&self.telegram_bot_token_file),
            ),
            (
                "smtp_auth_password",
                set(&self.smtp_auth_password),
                set_f(&self.smtp_auth_password_file),
            ),
            (
                "smtp_auth_secret",
                set(&self.smtp_auth_secret),
                set_f(&self.smtp_auth_secret_file),
            ),
            (
                "wechat_api_secret",
                set(&self.wechat_api_secret),
                set_f(&self.wechat_api_secret_file),
            ),
        ];
        for (name, a, b) in pairs {
            if a && b {
                return Err((
                    path.key(name),
                    format!("at most one of {name} & {name}_file must be configured"),
                ));
            }
        }
        if (set(&self.slack_app_token) || set_f(&self.slack_app_token_file))
            && (self.slack_api_url.is_some() || set_f(&self.slack_api_url_file))
            && self.slack_api_url.as_ref().map(Secret::expose) != Some(self.slack_app_url.as_str())
        {
            return Err((
                path.key("slack_api_url"),
                "at most one of slack_app_token/slack_app_token_file & slack_api_url/slack_api_url_file must be configured".into(),
            ));
        }
        if let Some(u) = &self.slack_api_url {
            check_http_url(u.expose()).map_err(|e| (path.key("slack_api_url"), e))?;
        }
        let urls = [
            ("slack_app_url", Some(&self.slack_app_url)),
            ("pagerduty_url", Some(&self.pagerduty_url)),
            ("opsgenie_api_url", self.opsgenie_api_url.as_ref()),
            ("wechat_api_url", self.wechat_api_url.as_ref()),
            ("victorops_api_url", self.victorops_api_url.as_ref()),
            ("telegram_api_url", self.telegram_api_url.as_ref()),
            ("webex_api_url", self.webex_api_url.as_ref()),
            ("jira_api_url", self.jira_api_url.as_ref()),
            ("rocketchat_api_url", self.rocketchat_api_url.as_ref()),
        ];
        for (name, url) in urls {
            if let Some(u) = url {
                check_http_url(u).map_err(|e| (path.key(name), e))?;
            }
        }
        if let Some(h) = self.smtp_smarthost.as_deref().filter(|h| !h.is_empty()) {
            check_host_port(h).map_err(|e| (path.key("smtp_smarthost"), e))?;
        }
        if let Some(h) = &self.http_config {
            h.validate().map_err(|e| (path.key("http_config"), e))?;
        }
        Ok(())
    }
}

/// A route as written. [`RouteTree`] is its compiled form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// `None` inherits; `Some([])` groups everything together; `['...']`
    /// groups by all labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    /// Deprecated equality matchers.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<BTreeMap<String, String>>,
    /// Deprecated regex matchers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_re: Option<BTreeMap<String, String>>,
    /// Matcher lines (`'severity=~"critical|page"'`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matchers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mute_time_intervals: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_time_intervals: Option<Vec<String>>,
    #[serde(rename = "continue")]
    pub continue_matching: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    #[serde(with = "opt_prom_duration", skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<Duration>,
    #[serde(with = "opt_prom_duration", skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<Duration>,
    #[serde(with = "opt_prom_duration", skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<Duration>,
}

impl RouteConfig {
    fn has_matchers(&self) -> bool {
        self.match_.as_ref().is_some_and(|m| !m.is_empty())
            || self.match_re.as_ref().is_some_and(|m| !m.is_empty())
            || self.matchers.as_ref().is_some_and(|m| !m.is_empty())
    }
}

/// An inhibit rule as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InhibitRuleConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match_re: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_matchers: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match_re: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_matchers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
}

/// A compiled inhibit rule: while a firing alert matches `source_matchers`,
/// alerts matching `target_matchers` with the same values of `equal` are
/// muted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InhibitRule {
    /// Optional name.
    pub name: Option<String>,
    /// `source_match` + `source_match_re` + `source_matchers`.
    pub source_matchers: Vec<Matcher>,
    /// `target_match` + `target_match_re` + `target_matchers`.
    pub target_matchers: Vec<Matcher>,
    /// Labels whose values must be equal (missing equals missing).
    pub equal: Vec<String>,
    /// As written.
    pub config: InhibitRuleConfig,
}

/// A named list of time intervals as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeIntervalSetConfig {
    pub name: String,
    pub time_intervals: Vec<TimeIntervalConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    global: Option<GlobalConfig>,
    route: Option<RouteConfig>,
    inhibit_rules: Vec<InhibitRuleConfig>,
    receivers: Vec<RawReceiver>,
    templates: Vec<String>,
    mute_time_intervals: Vec<TimeIntervalSetConfig>,
    time_intervals: Vec<TimeIntervalSetConfig>,
}

/// A loaded, validated `alertmanager.yml`.
#[derive(Clone, Debug)]
pub struct AmConfig {
    /// The file name it was read from.
    pub file: String,
    /// `global:` with defaults filled in.
    pub global: GlobalConfig,
    /// The routing tree.
    pub route: RouteTree,
    /// Inhibit rules in config order.
    pub inhibit_rules: Vec<InhibitRule>,
    /// Receivers in config order, global fallbacks applied.
    pub receivers: Vec<Receiver>,
    /// Template file globs, recorded (lookout renders no Go templates).
    pub templates: Vec<String>,
    /// Time intervals by name (from `time_intervals:` and the deprecated
    /// top-level `mute_time_intervals:`).
    pub time_intervals: BTreeMap<String, NamedTimeInterval>,
    inhibit_configs: Vec<InhibitRuleConfig>,
    interval_configs: (Vec<TimeIntervalSetConfig>, Vec<TimeIntervalSetConfig>),
    original: String,
}

impl AmConfig {
    /// The file as read (before `${VAR}` expansion, so it holds no secret
    /// that came from the environment).
    pub fn original(&self) -> &str {
        &self.original
    }

    /// A receiver by name.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }

    /// The effective config as YAML with every secret replaced by
    /// `<secret>`, as Alertmanager's `/api/v2/status` shows it.
    pub fn redacted_yaml(&self) -> String {
        #[derive(Serialize)]
        struct View<'a> {
            global: &'a GlobalConfig,
            route: &'a RouteConfig,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            inhibit_rules: &'a [InhibitRuleConfig],
            receivers: &'a [Receiver],
            templates: &'a [String],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            mute_time_intervals: &'a [TimeIntervalSetConfig],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            time_intervals: &'a [TimeIntervalSetConfig],
        }
        let view = View {
            global: &self.global,
            route: self.route.config(),
            inhibit_rules: &self.inhibit_configs,
            receivers: &self.receivers,
            templates: &self.templates,
            mute_time_intervals: &self.interval_configs.0,
            time_intervals: &self.interval_configs.1,
        };
        serde_norway::to_string(&view).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// Parses and validates an Alertmanager config, replacing `${VAR}` from the
/// process environment.
pub fn parse_config(text: &str, file: &str) -> Result<AmConfig, ConfigError> {
    parse_config_with_env(text, file, &|name| std::env::var(name).ok())
}

/// [`parse_config`] with an explicit environment (tests, or a host that
/// keeps secrets elsewhere).
pub fn parse_config_with_env(
    text: &str,
    file: &str,
    env: EnvLookup<'_>,
) -> Result<AmConfig, ConfigError> {
    parse_config_with_receivers(text, file, env, Vec::new())
}

/// [`parse_config_with_env`] with receivers defined elsewhere (lookout's
/// own config) that its routes may name; a name given in both is an error.
pub fn parse_config_with_receivers(
    text: &str,
    file: &str,
    env: EnvLookup<'_>,
    extra: Vec<Receiver>,
) -> Result<AmConfig, ConfigError> {
    let fail = |line: usize, message: String| ConfigError {
        file: file.to_string(),
        line,
        message,
    };
    let de = serde_norway::Deserializer::from_str(text);
    let raw: Option<RawConfig> =
        Deserialize::deserialize(Expand { de, env: Some(env) }).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            fail(line, strip_location(&e.to_string()))
        })?;
    let raw = raw.unwrap_or_default();
    validate(raw, text, file, extra)
        .map_err(|(path, message)| fail(locate(text, &path).unwrap_or(0), message))
}

/// serde_norway appends " at line L column C"; the line is reported apart.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn validate(
    raw: RawConfig,
    text: &str,
    file: &str,
    extra: Vec<Receiver>,
) -> Result<AmConfig, (Path, String)> {
    let root = Path::root();
    let global = raw.global.unwrap_or_default();

    // 1. Receiver names.
    let mut names: BTreeSet<String> = extra.iter().map(|r| r.name.clone()).collect();
    for (i, r) in raw.receivers.iter().enumerate() {
        let at = root.key("receivers").index(i);
        if r.name.is_empty() {
            return Err((at, "missing name in receiver".into()));
        }
        if !names.insert(r.name.clone()) {
            return Err((
                at.key("name"),
                format!("notification config name {:?} is not unique", r.name),
            ));
        }
        if let Some(labels) = &r.labels
            && let Some(v) = labels.get("name")
            && *v != r.name
        {
            return Err((
                at.key("labels"),
                format!(
                    "receiver label \"name\" must match receiver name {:?}, got {v:?}",
                    r.name
                ),
            ));
        }
        if let Some(kind) = r.unsupported() {
            return Err((
                at.key(kind),
                format!(
                    "receiver {:?}: {kind} is not supported by lookout (supported: webhook_configs, email_configs, pagerduty_configs, slack_configs)",
                    r.name
                ),
            ));
        }
    }

    // 2. The root route.
    let Some(route) = raw.route else {
        return Err((root, "no route provided in config".into()));
    };
    let rp = root.key("route");
    if route.receiver.as_deref().is_none_or(str::is_empty) {
        return Err((rp, "root route must specify a default receiver".into()));
    }
    if route.has_matchers() {
        return Err((rp, "root route must not have any matchers".into()));
    }
    if route.continue_matching {
        return Err((
            rp.key("continue"),
            "cannot have continue in root route".into(),
        ));
    }
    if route
        .mute_time_intervals
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        return Err((
            rp.key("mute_time_intervals"),
            "root route must not have any mute time intervals".into(),
        ));
    }
    if route
        .active_time_intervals
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        return Err((
            rp.key("active_time_intervals"),
            "root route must not have any active time intervals".into(),
        ));
    }

    // 3. Undefined receivers (children before parents, as Alertmanager).
    check_receivers(&route, &rp, &names)?;

    // 4. Time interval names.
    let mut ti_names = BTreeSet::new();
    for (section, list) in [
        ("mute_time_intervals", &raw.mute_time_intervals),
        ("time_intervals", &raw.time_intervals),
    ] {
        for (i, ti) in list.iter().enumerate() {
            let at = root.key(section).index(i);
            if ti.name.is_empty() {
                let what = if section == "mute_time_intervals" {
                    "mute time interval"
                } else {
                    "time interval"
                };
                return Err((at, format!("missing name in {what}")));
            }
            if !ti_names.insert(ti.name.clone()) {
                let what = if section == "mute_time_intervals" {
                    "mute time interval"
                } else {
                    "time interval"
                };
                return Err((
                    at.key("name"),
                    format!("{what} {:?} is not unique", ti.name),
                ));
            }
        }
    }
    check_time_interval_refs(&route, &rp, &ti_names)?;

    // 5. Route fields, inhibit rules, interval contents.
    let tree = RouteTree::compile(&route, &rp)?;
    let mut inhibit_rules = Vec::new();
    for (i, ir) in raw.inhibit_rules.iter().enumerate() {
        let at = root.key("inhibit_rules").index(i);
        let mut source = compile_legacy_matchers(
            Some(&ir.source_match),
            Some(&ir.source_match_re),
            &at,
            "source_match",
            "source_match_re",
        )?;
        source.extend(compile_matcher_lines(
            &ir.source_matchers,
            &at.key("source_matchers"),
        )?);
        let mut target = compile_legacy_matchers(
            Some(&ir.target_match),
            Some(&ir.target_match_re),
            &at,
            "target_match",
            "target_match_re",
        )?;
        target.extend(compile_matcher_lines(
            &ir.target_matchers,
            &at.key("target_matchers"),
        )?);
        for (j, l) in ir.equal.iter().enumerate() {
            if !is_valid_label_name(l) {
                return Err((
                    at.key("equal").index(j),
                    format!("invalid label name {l:?} in equal list"),
                ));
            }
        }
        inhibit_rules.push(InhibitRule {
            name: ir.name.clone().filter(|n| !n.is_empty()),
            source_matchers: source,
            target_matchers: target,
            equal: ir.equal.clone(),
            config: ir.clone(),
        });
    }
    let mut time_intervals = BTreeMap::new();
    for (section, list) in [
        ("mute_time_intervals", &raw.mute_time_intervals),
        ("time_intervals", &raw.time_intervals),
    ] {
        for (i, set) in list.iter().enumerate() {
            let at = root.key(section).index(i).key("time_intervals");
            let mut intervals = Vec::new();
            for (j, ti) in set.time_intervals.iter().enumerate() {
                let compiled = ti.compile().map_err(|e| {
                    let p = at.index(j).key(e.field);
                    (e.index.map_or(p.clone(), |k| p.index(k)), e.message)
                })?;
                intervals.push(compiled);
            }
            time_intervals.insert(
                set.name.clone(),
                NamedTimeInterval {
                    name: set.name.clone(),
                    intervals,
                    deprecated_section: section == "mute_time_intervals",
                },
            );
        }
    }

    // 6. Global fields and integrations.
    global.validate(&root.key("global"))?;
    let mut receivers = Vec::new();
    for (i, r) in raw.receivers.into_iter().enumerate() {
        receivers.push(r.build(&global, &root.key("receivers").index(i))?);
    }
    receivers.extend(extra);

    Ok(AmConfig {
        file: file.to_string(),
        global,
        route: tree,
        inhibit_rules,
        receivers,
        templates: raw.templates,
        time_intervals,
        inhibit_configs: raw.inhibit_rules,
        interval_configs: (raw.mute_time_intervals, raw.time_intervals),
        original: text.to_string(),
    })
}

fn check_receivers(
    r: &RouteConfig,
    path: &Path,
    names: &BTreeSet<String>,
) -> Result<(), (Path, String)> {
    for (i, child) in r.routes.iter().enumerate() {
        check_receivers(child, &path.key("routes").index(i), names)?;
    }
    match r.receiver.as_deref() {
        Some(name) if !name.is_empty() && !names.contains(name) => Err((
            path.key("receiver"),
            format!("undefined receiver {name:?} used in route"),
        )),
        _ => Ok(()),
    }
}

fn check_time_interval_refs(
    r: &RouteConfig,
    path: &Path,
    names: &BTreeSet<String>,
) -> Result<(), (Path, String)> {
    for (i, child) in r.routes.iter().enumerate() {
        check_time_interval_refs(child, &path.key("routes").index(i), names)?;
    }
    for key in ["active_time_intervals", "mute_time_intervals"] {
        let list = if key == "active_time_intervals" {
            &r.active_time_intervals
        } else {
            &r.mute_time_intervals
        };
        for (i, name) in list.iter().flatten().enumerate() {
            if !names.contains(name) {
                return Err((
                    path.key(key).index(i),
                    format!("undefined time interval {name:?} used in route"),
                ));
            }
        }
    }
    Ok(())
}

/// Reads a duration string; errors are raised while the scalar is read, so
/// they carry its line.
struct DurationVisitor {
    parse: fn(&str) -> Result<Duration, String>,
}

impl<'de> serde::de::Visitor<'de> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as 30s or 5m")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
        (self.parse)(v).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }
}

struct OptDurationVisitor(DurationVisitor);

impl<'de> serde::de::Visitor<'de> for OptDurationVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Option<Duration>, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Option<Duration>, E> {
        Ok(None)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_str(self.0).map(Some)
    }
}

/// serde for a Prometheus duration (`30s`, `4h`).
pub(crate) mod prom_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::timeutil::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(super::DurationVisitor {
            parse: crate::timeutil::parse_duration,
        })
    }
}

/// serde for an optional Prometheus duration.
pub(crate) mod opt_prom_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&crate::timeutil::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(super::OptDurationVisitor(super::DurationVisitor {
            parse: crate::timeutil::parse_duration,
        }))
    }
}

/// serde for an optional Go `time.Duration` (`timeout: 10s`).
pub(crate) mod opt_go_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&crate::timeutil::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(super::OptDurationVisitor(super::DurationVisitor {
            parse: crate::timeutil::parse_go_duration,
        }))
    }
}
