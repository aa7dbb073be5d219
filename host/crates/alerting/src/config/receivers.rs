//! Receivers and their integrations (`webhook_configs`, `slack_configs`,
//! `pagerduty_configs`, `email_configs`), with Alertmanager's field names,
//! defaults and checks.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::GlobalConfig;
use super::locate::Path;

/// A secret string: kept as given, printed and serialised as `<secret>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the code that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

thread_local! {
    static EXPOSE_SECRETS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with secrets serialising as their values instead of
/// `<secret>`: for handing an integration's configuration to the notifier
/// plugin that needs it. Everywhere else (API, logs) they stay redacted.
pub fn with_exposed_secrets<T>(f: impl FnOnce() -> T) -> T {
    EXPOSE_SECRETS.with(|e| e.set(true));
    let out = f();
    EXPOSE_SECRETS.with(|e| e.set(false));
    out
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if EXPOSE_SECRETS.with(|e| e.get()) {
            s.serialize_str(&self.0)
        } else {
            s.serialize_str("<secret>")
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `tls_config:` (prometheus/common `TLSConfig`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub insecure_skip_verify: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
}

/// `basic_auth:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// `authorization:` (type defaults to `Bearer`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

/// `oauth2:` (client credentials).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuth2 {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    pub token_url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
}

/// One entry of `http_headers:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderValues {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// `http_config:` (prometheus/common `HTTPClientConfig`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpClientConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    /// Deprecated in Prometheus, still read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub proxy_from_environment: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub http_headers: BTreeMap<String, HeaderValues>,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            bearer_token: None,
            bearer_token_file: None,
            proxy_url: None,
            no_proxy: None,
            proxy_from_environment: false,
            proxy_connect_header: BTreeMap::new(),
            tls_config: None,
            follow_redirects: true,
            enable_http2: true,
            http_headers: BTreeMap::new(),
        }
    }
}

impl HttpClientConfig {
    /// prometheus/common's `HTTPClientConfig.Validate` checks that matter.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let set = |o: &Option<Secret>| o.as_ref().is_some_and(|s| !s.is_empty());
        let set_s = |o: &Option<String>| o.as_ref().is_some_and(|s| !s.is_empty());
        if set(&self.bearer_token) && set_s(&self.bearer_token_file) {
            return Err(
                "at most one of bearer_token & bearer_token_file must be configured".into(),
            );
        }
        let bearer = set(&self.bearer_token) || set_s(&self.bearer_token_file);
        if (self.basic_auth.is_some() as u8
            + self.authorization.is_some() as u8
            + self.oauth2.is_some() as u8
            + bearer as u8)
            > 1
        {
            return Err("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
        }
        if let Some(b) = &self.basic_auth
            && set(&b.password)
            && set_s(&b.password_file)
        {
            return Err(
                "at most one of basic_auth password & password_file must be configured".into(),
            );
        }
        if let Some(a) = &self.authorization {
            if set(&a.credentials) && set_s(&a.credentials_file) {
                return Err("at most one of authorization credentials & credentials_file must be configured".into());
            }
            if a.kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("basic"))
            {
                return Err(
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
                        .into(),
                );
            }
        }
        if let Some(o) = &self.oauth2 {
            if o.client_id.is_empty() {
                return Err("oauth2 client_id must be configured".into());
            }
            if o.token_url.is_empty() {
                return Err("oauth2 token_url must be configured".into());
            }
        }
        if let Some(p) = self.proxy_url.as_deref().filter(|p| !p.is_empty()) {
            if self.proxy_from_environment {
                return Err(
                    "if proxy_from_environment is configured, proxy_url must not be configured"
                        .into(),
                );
            }
            check_url_syntax(p)?;
        }
        Ok(())
    }
}

/// `webhook_configs:` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Default true.
    pub send_resolved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// Target URL; may contain Go templates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    /// File holding the URL instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    /// Maximum alerts per payload; 0 means all.
    pub max_alerts: u64,
    /// Per-request timeout; none when absent.
    #[serde(
        with = "super::opt_go_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// A custom payload template (replaces the v4 body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            send_resolved: true,
            http_config: None,
            url: None,
            url_file: None,
            max_alerts: 0,
            timeout: None,
            payload: None,
        }
    }
}

/// A Slack attachment field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackField {
    pub title: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

/// A Slack action confirmation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfirmationField {
    pub text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ok_text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dismiss_text: String,
}

/// A Slack action (button).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackAction {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub style: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm: Option<SlackConfirmationField>,
}

/// Alertmanager's default Slack texts (names of `default.tmpl` templates).
pub mod slack_defaults {
    pub const COLOR: &str = r#"{{ template "slack.default.color" . }}"#;
    pub const USERNAME: &str = r#"{{ template "slack.default.username" . }}"#;
    pub const TITLE: &str = r#"{{ template "slack.default.title" . }}"#;
    pub const TITLE_LINK: &str = r#"{{ template "slack.default.titlelink" . }}"#;
    pub const ICON_EMOJI: &str = r#"{{ template "slack.default.iconemoji" . }}"#;
    pub const ICON_URL: &str = r#"{{ template "slack.default.iconurl" . }}"#;
    pub const PRETEXT: &str = r#"{{ template "slack.default.pretext" . }}"#;
    pub const TEXT: &str = r#"{{ template "slack.default.text" . }}"#;
    pub const FALLBACK: &str = r#"{{ template "slack.default.fallback" . }}"#;
    pub const CALLBACK_ID: &str = r#"{{ template "slack.default.callbackid" . }}"#;
    pub const FOOTER: &str = r#"{{ template "slack.default.footer" . }}"#;
}

/// `slack_configs:` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// Default false.
    pub send_resolved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// Incoming-webhook URL (falls back to `global.slack_api_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url_file: Option<String>,
    /// Bot token (falls back to `global.slack_app_token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_token_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_url: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub channel: String,
    pub username: String,
    pub color: String,
    pub title: String,
    pub title_link: String,
    pub pretext: String,
    pub text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message_text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<SlackField>,
    pub short_fields: bool,
    pub footer: String,
    pub fallback: String,
    pub callback_id: String,
    pub icon_emoji: String,
    pub icon_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    pub link_names: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mrkdwn_in: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<SlackAction>,
    pub update_message: bool,
    #[serde(
        with = "super::opt_go_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

impl Default for SlackConfig {
    fn default() -> Self {
        use slack_defaults as d;
        SlackConfig {
            send_resolved: false,
            http_config: None,
            api_url: None,
            api_url_file: None,
            app_token: None,
            app_token_file: None,
            app_url: None,
            channel: String::new(),
            username: d::USERNAME.into(),
            color: d::COLOR.into(),
            title: d::TITLE.into(),
            title_link: d::TITLE_LINK.into(),
            pretext: d::PRETEXT.into(),
            text: d::TEXT.into(),
            message_text: String::new(),
            fields: Vec::new(),
            short_fields: false,
            footer: d::FOOTER.into(),
            fallback: d::FALLBACK.into(),
            callback_id: d::CALLBACK_ID.into(),
            icon_emoji: d::ICON_EMOJI.into(),
            icon_url: d::ICON_URL.into(),
            image_url: String::new(),
            thumb_url: String::new(),
            link_names: false,
            mrkdwn_in: Vec::new(),
            actions: Vec::new(),
            update_message: false,
            timeout: None,
        }
    }
}

/// A PagerDuty image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagerdutyImage {
    pub src: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub alt: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub href: String,
}

/// A PagerDuty link.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagerdutyLink {
    pub href: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
}

/// `pagerduty_configs:` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagerdutyConfig {
    /// Default true.
    pub send_resolved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// Events API v1 key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_key_file: Option<String>,
    /// Events API v2 key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key_file: Option<String>,
    /// Falls back to `global.pagerduty_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub client: String,
    pub client_url: String,
    pub description: String,
    /// Template values; Alertmanager's four defaults are added.
    pub details: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<PagerdutyImage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<PagerdutyLink>,
    /// Defaults to `client`.
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub severity: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub class: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub component: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(
        with = "super::opt_go_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

/// Alertmanager's default PagerDuty texts.
pub mod pagerduty_defaults {
    pub const DESCRIPTION: &str = r#"{{ template "pagerduty.default.description" .}}"#;
    pub const CLIENT: &str = r#"{{ template "pagerduty.default.client" . }}"#;
    pub const CLIENT_URL: &str = r#"{{ template "pagerduty.default.clientURL" . }}"#;
    /// The four `details` every PagerDuty event carries unless overridden.
    pub const DETAILS: [(&str, &str); 4] = [
        ("firing", "{{ .Alerts.Firing | toJson }}"),
        ("resolved", "{{ .Alerts.Resolved | toJson }}"),
        ("num_firing", "{{ .Alerts.Firing | len }}"),
        ("num_resolved", "{{ .Alerts.Resolved | len }}"),
    ];
}

impl Default for PagerdutyConfig {
    fn default() -> Self {
        PagerdutyConfig {
            send_resolved: true,
            http_config: None,
            service_key: None,
            service_key_file: None,
            routing_key: None,
            routing_key_file: None,
            url: None,
            client: pagerduty_defaults::CLIENT.into(),
            client_url: pagerduty_defaults::CLIENT_URL.into(),
            description: pagerduty_defaults::DESCRIPTION.into(),
            details: BTreeMap::new(),
            images: Vec::new(),
            links: Vec::new(),
            source: String::new(),
            severity: String::new(),
            class: String::new(),
            component: String::new(),
            group: String::new(),
            timeout: None,
        }
    }
}

/// Email threading (Alertmanager ≥ 0.29).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThreadingConfig {
    pub enabled: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub thread_by_date: String,
}

/// Alertmanager's default email texts.
pub mod email_defaults {
    pub const HTML: &str = r#"{{ template "email.default.html" . }}"#;
    pub const SUBJECT: &str = r#"{{ template "email.default.subject" . }}"#;
}

/// `email_configs:` entry. After loading, the `global.smtp_*` fallbacks
/// are applied, so `from`, `smarthost`, `hello` and `require_tls` are set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Default false.
    pub send_resolved: bool,
    pub to: String,
    pub from: String,
    pub hello: String,
    /// `host:port`.
    pub smarthost: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_password_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_secret_file: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_identity: String,
    /// Header names canonicalised (`subject` → `Subject`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    pub html: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_tls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_implicit_tls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threading: Option<ThreadingConfig>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            send_resolved: false,
            to: String::new(),
            from: String::new(),
            hello: String::new(),
            smarthost: String::new(),
            auth_username: String::new(),
            auth_password: None,
            auth_password_file: None,
            auth_secret: None,
            auth_secret_file: None,
            auth_identity: String::new(),
            headers: BTreeMap::new(),
            html: email_defaults::HTML.into(),
            text: String::new(),
            require_tls: None,
            tls_config: None,
            force_implicit_tls: None,
            threading: None,
        }
    }
}

impl EmailConfig {
    /// The `Subject` header, or Alertmanager's default subject template.
    pub fn subject(&self) -> &str {
        self.headers
            .get("Subject")
            .map_or(email_defaults::SUBJECT, String::as_str)
    }
}

/// The kinds of integration lookout delivers through notifier plugins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationKind {
    Webhook,
    Email,
    Pagerduty,
    Slack,
    /// Any installed notifier plugin, configured in lookout's own config.
    Plugin,
}

impl IntegrationKind {
    /// Alertmanager's integration name (`webhook`, `email`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Webhook => "webhook",
            IntegrationKind::Email => "email",
            IntegrationKind::Pagerduty => "pagerduty",
            IntegrationKind::Slack => "slack",
            IntegrationKind::Plugin => "plugin",
        }
    }

    /// The kind [`IntegrationKind::as_str`] names.
    pub fn from_name(name: &str) -> Option<IntegrationKind> {
        [
            IntegrationKind::Webhook,
            IntegrationKind::Email,
            IntegrationKind::Pagerduty,
            IntegrationKind::Slack,
            IntegrationKind::Plugin,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

impl fmt::Display for IntegrationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One integration of a receiver: its kind and index within that kind's
/// list (`slack[1]`), as Alertmanager names them in its notification log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IntegrationRef {
    /// Kind.
    pub kind: IntegrationKind,
    /// Index within the receiver's list of that kind.
    pub index: usize,
}

impl fmt::Display for IntegrationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.kind, self.index)
    }
}

/// A receiver: a name and what to notify.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Receiver {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub email_configs: Vec<EmailConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pagerduty_configs: Vec<PagerdutyConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<SlackConfig>,
    /// Notifier plugins of lookout's own config (not from Alertmanager's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugin_configs: Vec<PluginIntegration>,
}

/// A receiver integration delivered by a notifier plugin named in lookout's
/// own configuration, with the plugin's configuration as given there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PluginIntegration {
    pub plugin: String,
    pub config: serde_json::Value,
    pub send_resolved: bool,
}

impl Receiver {
    /// Integrations in Alertmanager's order (webhook, email, pagerduty,
    /// slack), each with its `send_resolved`.
    pub fn integrations(&self) -> Vec<(IntegrationRef, bool)> {
        let mut out = Vec::new();
        let mut push = |kind, flags: Vec<bool>| {
            for (index, send_resolved) in flags.into_iter().enumerate() {
                out.push((IntegrationRef { kind, index }, send_resolved));
            }
        };
        push(
            IntegrationKind::Webhook,
            self.webhook_configs
                .iter()
                .map(|c| c.send_resolved)
                .collect(),
        );
        push(
            IntegrationKind::Email,
            self.email_configs.iter().map(|c| c.send_resolved).collect(),
        );
        push(
            IntegrationKind::Pagerduty,
            self.pagerduty_configs
                .iter()
                .map(|c| c.send_resolved)
                .collect(),
        );
        push(
            IntegrationKind::Slack,
            self.slack_configs.iter().map(|c| c.send_resolved).collect(),
        );
        push(
            IntegrationKind::Plugin,
            self.plugin_configs
                .iter()
                .map(|c| c.send_resolved)
                .collect(),
        );
        out
    }

    /// One integration's configuration as JSON with its secrets in the
    /// clear: what the matching notifier plugin receives as its config.
    pub fn integration_config_json(
        &self,
        integration: IntegrationRef,
    ) -> Option<serde_json::Value> {
        let i = integration.index;
        with_exposed_secrets(|| match integration.kind {
            IntegrationKind::Webhook => self.webhook_configs.get(i).map(serde_json::to_value),
            IntegrationKind::Email => self.email_configs.get(i).map(serde_json::to_value),
            IntegrationKind::Pagerduty => self.pagerduty_configs.get(i).map(serde_json::to_value),
            IntegrationKind::Slack => self.slack_configs.get(i).map(serde_json::to_value),
            IntegrationKind::Plugin => self.plugin_configs.get(i).map(|p| Ok(p.config.clone())),
        })
        .and_then(Result::ok)
    }

    /// Whether an integration sends resolved notifications.
    pub fn send_resolved(&self, integration: IntegrationRef) -> bool {
        self.integrations()
            .into_iter()
            .find(|(r, _)| *r == integration)
            .is_some_and(|(_, s)| s)
    }
}

/// Receiver integrations Alertmanager has that lookout does not deliver.
pub(crate) const UNSUPPORTED_INTEGRATIONS: [&str; 14] = [
    "opsgenie_configs",
    "wechat_configs",
    "pushover_configs",
    "victorops_configs",
    "sns_configs",
    "telegram_configs",
    "discord_configs",
    "webex_configs",
    "msteams_configs",
    "msteamsv2_configs",
    "jira_configs",
    "rocketchat_configs",
    "mattermost_configs",
    "incidentio_configs",
];

/// The YAML form of a receiver.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawReceiver {
    pub name: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub webhook_configs: Vec<WebhookConfig>,
    pub email_configs: Vec<EmailConfig>,
    pub pagerduty_configs: Vec<PagerdutyConfig>,
    pub slack_configs: Vec<SlackConfig>,
    pub opsgenie_configs: Option<serde::de::IgnoredAny>,
    pub wechat_configs: Option<serde::de::IgnoredAny>,
    pub pushover_configs: Option<serde::de::IgnoredAny>,
    pub victorops_configs: Option<serde::de::IgnoredAny>,
    pub sns_configs: Option<serde::de::IgnoredAny>,
    pub telegram_configs: Option<serde::de::IgnoredAny>,
    pub discord_configs: Option<serde::de::IgnoredAny>,
    pub webex_configs: Option<serde::de::IgnoredAny>,
    pub msteams_configs: Option<serde::de::IgnoredAny>,
    pub msteamsv2_configs: Option<serde::de::IgnoredAny>,
    pub jira_configs: Option<serde::de::IgnoredAny>,
    pub rocketchat_configs: Option<serde::de::IgnoredAny>,
    pub mattermost_configs: Option<serde::de::IgnoredAny>,
    pub incidentio_configs: Option<serde::de::IgnoredAny>,
}

impl RawReceiver {
    /// The first unsupported integration list present.
    pub fn unsupported(&self) -> Option<&'static str> {
        let present = [
            self.opsgenie_configs.is_some(),
            self.wechat_configs.is_some(),
            self.pushover_configs.is_some(),
            self.victorops_configs.is_some(),
            self.sns_configs.is_some(),
            self.telegram_configs.is_some(),
            self.discord_configs.is_some(),
            self.webex_configs.is_some(),
            self.msteams_configs.is_some(),
            self.msteamsv2_configs.is_some(),
            self.jira_configs.is_some(),
            self.rocketchat_configs.is_some(),
            self.mattermost_configs.is_some(),
            self.incidentio_configs.is_some(),
        ];
        present
            .iter()
            .position(|p| *p)
            .map(|i| UNSUPPORTED_INTEGRATIONS[i])
    }

    /// Validates the integrations and applies the global fallbacks, as
    /// Alertmanager's `Config.UnmarshalYAML` does.
    pub fn build(self, global: &GlobalConfig, path: &Path) -> Result<Receiver, (Path, String)> {
        let mut r = Receiver {
            name: self.name,
            webhook_configs: self.webhook_configs,
            email_configs: self.email_configs,
            pagerduty_configs: self.pagerduty_configs,
            slack_configs: self.slack_configs,
            plugin_configs: Vec::new(),
        };
        for (i, wh) in r.webhook_configs.iter_mut().enumerate() {
            let at = path.key("webhook_configs").index(i);
            validate_http(&wh.http_config, &at)?;
            let url = wh.url.as_ref().filter(|u| !u.is_empty());
            let file = wh.url_file.as_deref().filter(|u| !u.is_empty());
            match (url, file) {
                (None, None) => {
                    return Err((at, "one of url or url_file must be configured".into()));
                }
                (Some(_), Some(_)) => {
                    return Err((
                        at,
                        "at most one of url & url_file must be configured".into(),
                    ));
                }
                (Some(u), None) if !u.expose().contains("{{") => {
                    check_http_url(u.expose())
                        .map_err(|e| (at.key("url"), format!("invalid URL: {e}")))?;
                }
                _ => {}
            }
            if wh.http_config.is_none() {
                wh.http_config = global.http_config.clone();
            }
        }
        for (i, ec) in r.email_configs.iter_mut().enumerate() {
            let at = path.key("email_configs").index(i);
            if ec.to.is_empty() {
                return Err((at, "missing to address in email config".into()));
            }
            let mut headers = BTreeMap::new();
            for (k, v) in std::mem::take(&mut ec.headers) {
                let canon = canonical_mime_header_key(&k);
                if headers.insert(canon.clone(), v).is_some() {
                    return Err((
                        at.key("headers"),
                        format!("duplicate header {canon:?} in email config"),
                    ));
                }
            }
            ec.headers = headers;
            if let Some(t) = &ec.threading
                && t.enabled
            {
                if ec.headers.contains_key("References") {
                    return Err((at, "conflicting configuration: threading.enabled conflicts with custom References header".into()));
                }
                if ec.headers.contains_key("In-Reply-To") {
                    return Err((at, "conflicting configuration: threading.enabled conflicts with custom In-Reply-To header".into()));
                }
                if t.thread_by_date != "none" && t.thread_by_date != "daily" {
                    return Err((
                        at,
                        "threading.thread_by_date must be either 'none' or 'daily'".into(),
                    ));
                }
            }
            if ec.tls_config.is_none() {
                ec.tls_config = global.smtp_tls_config.clone();
            }
            if ec.smarthost.is_empty() {
                ec.smarthost = global.smtp_smarthost.clone().unwrap_or_default();
            } else {
                check_host_port(&ec.smarthost).map_err(|e| (at.key("smarthost"), e))?;
            }
            if ec.smarthost.is_empty() {
                return Err((at, "no global SMTP smarthost set".into()));
            }
            if ec.from.is_empty() {
                ec.from = global.smtp_from.clone().unwrap_or_default();
            }
            if ec.from.is_empty() {
                return Err((at, "no global SMTP from set".into()));
            }
            if ec.hello.is_empty() {
                ec.hello = global.smtp_hello.clone();
            }
            if ec.auth_username.is_empty() {
                ec.auth_username = global.smtp_auth_username.clone().unwrap_or_default();
            }
            let unset = |s: &Option<Secret>| s.as_ref().is_none_or(Secret::is_empty);
            let unset_f = |s: &Option<String>| s.as_deref().is_none_or(str::is_empty);
            if unset(&ec.auth_password) && unset_f(&ec.auth_password_file) {
                ec.auth_password = global.smtp_auth_password.clone();
                ec.auth_password_file = global.smtp_auth_password_file.clone();
            }
            if unset(&ec.auth_secret) && unset_f(&ec.auth_secret_file) {
                ec.auth_secret = global.smtp_auth_secret.clone();
                ec.auth_secret_file = global.smtp_auth_secret_file.clone();
            }
            if ec.auth_identity.is_empty() {
                ec.auth_identity = global.smtp_auth_identity.clone().unwrap_or_default();
            }
            if ec.require_tls.is_none() {
                ec.require_tls = Some(global.smtp_require_tls);
            }
            if ec.force_implicit_tls.is_none() {
                ec.force_implicit_tls = global.smtp_force_implicit_tls;
            }
        }
        for (i, pd) in r.pagerduty_configs.iter_mut().enumerate() {
            let at = path.key("pagerduty_configs").index(i);
            validate_http(&pd.http_config, &at)?;
            let set = |s: &Option<Secret>| s.as_ref().is_some_and(|s| !s.is_empty());
            let set_f = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
            if !set(&pd.routing_key)
                && !set(&pd.service_key)
                && !set_f(&pd.routing_key_file)
                && !set_f(&pd.service_key_file)
            {
                return Err((
                    at,
                    "missing service or routing key in PagerDuty config".into(),
                ));
            }
            if set(&pd.routing_key) && set_f(&pd.routing_key_file) {
                return Err((
                    at,
                    "at most one of routing_key & routing_key_file must be configured".into(),
                ));
            }
            if set(&pd.service_key) && set_f(&pd.service_key_file) {
                return Err((
                    at,
                    "at most one of service_key & service_key_file must be configured".into(),
                ));
            }
            for (k, v) in pagerduty_defaults::DETAILS {
                pd.details
                    .entry(k.to_string())
                    .or_insert_with(|| serde_json::Value::String(v.to_string()));
            }
            if pd.source.is_empty() {
                pd.source = pd.client.clone();
            }
            match &pd.url {
                Some(u) => check_http_url(u).map_err(|e| (at.key("url"), e))?,
                None => pd.url = Some(global.pagerduty_url.clone()),
            }
            if pd.http_config.is_none() {
                pd.http_config = global.http_config.clone();
            }
        }
        for (i, sc) in r.slack_configs.iter_mut().enumerate() {
            let at = path.key("slack_configs").index(i);
            validate_http(&sc.http_config, &at)?;
            let set = |s: &Option<Secret>| s.as_ref().is_some_and(|s| !s.is_empty());
            let set_f = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
            if sc.api_url.is_some() && set_f(&sc.api_url_file) {
                return Err((
                    at,
                    "at most one of api_url & api_url_file must be configured".into(),
                ));
            }
            if set(&sc.app_token) && set_f(&sc.app_token_file) {
                return Err((
                    at,
                    "at most one of app_token & app_token_file must be configured".into(),
                ));
            }
            if (sc.api_url.is_some() || set_f(&sc.api_url_file))
                && (set(&sc.app_token) || set_f(&sc.app_token_file))
            {
                return Err((at, "at most one of api_url/api_url_file & app_token/app_token_file must be configured".into()));
            }
            for (j, f) in sc.fields.iter().enumerate() {
                if f.title.is_empty() {
                    return Err((
                        at.key("fields").index(j),
                        "missing title in Slack field configuration".into(),
                    ));
                }
                if f.value.is_empty() {
                    return Err((
                        at.key("fields").index(j),
                        "missing value in Slack field configuration".into(),
                    ));
                }
            }
            for (j, a) in sc.actions.iter_mut().enumerate() {
                let aat = at.key("actions").index(j);
                if a.kind.is_empty() {
                    return Err((aat, "missing type in Slack action configuration".into()));
                }
                if a.text.is_empty() {
                    return Err((aat, "missing text in Slack action configuration".into()));
                }
                if !a.url.is_empty() {
                    a.name.clear();
                    a.value.clear();
                    a.confirm = None;
                } else if a.name.is_empty() {
                    return Err((
                        aat,
                        "missing name or url in Slack action configuration".into(),
                    ));
                }
                if let Some(c) = &a.confirm
                    && c.text.is_empty()
                {
                    return Err((
                        aat.key("confirm"),
                        "missing text in Slack confirmation configuration".into(),
                    ));
                }
            }
            if let Some(u) = &sc.api_url {
                check_http_url(u.expose()).map_err(|e| (at.key("api_url"), e))?;
            }
            if sc.app_url.is_none() {
                sc.app_url = Some(global.slack_app_url.clone());
            }
            let has_auth = sc
                .http_config
                .as_ref()
                .is_some_and(|h| h.authorization.is_some());
            if !set(&sc.app_token)
                && !set_f(&sc.app_token_file)
                && !has_auth
                && sc.api_url.is_none()
            {
                sc.app_token = global.slack_app_token.clone();
                sc.app_token_file = global.slack_app_token_file.clone();
            }
            if sc.api_url.is_none() && !set_f(&sc.api_url_file) {
                sc.api_url = global.slack_api_url.clone();
                sc.api_url_file = global.slack_api_url_file.clone();
            }
            if sc.api_url.is_none()
                && !set_f(&sc.api_url_file)
                && !set(&sc.app_token)
                && !set_f(&sc.app_token_file)
            {
                return Err((
                    at,
                    "no Slack API URL nor App token set either inline or in a file".into(),
                ));
            }
            if sc.http_config.is_none() {
                sc.http_config = global.http_config.clone();
            }
            if (set(&sc.app_token) || set_f(&sc.app_token_file)) && has_auth {
                return Err((
                    at,
                    "http authorization can't be set when using Slack App tokens".into(),
                ));
            }
        }
        Ok(r)
    }
}

fn validate_http(http: &Option<HttpClientConfig>, at: &Path) -> Result<(), (Path, String)> {
    match http {
        Some(h) => h.validate().map_err(|e| (at.key("http_config"), e)),
        None => Ok(()),
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey` for ASCII header names.
pub(crate) fn canonical_mime_header_key(key: &str) -> String {
    if key.bytes().any(|b| b == b' ' || !b.is_ascii()) {
        return key.to_string();
    }
    let mut upper = true;
    key.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// `net.SplitHostPort` plus Alertmanager's "port cannot be empty".
pub(crate) fn check_host_port(text: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((h, tail)) = rest.split_once(']') else {
            return Err(format!("address {text}: missing ']' in address"));
        };
        let Some(port) = tail.strip_prefix(':') else {
            return Err(format!("address {text}: missing port in address"));
        };
        (h, port)
    } else {
        let Some((h, port)) = text.rsplit_once(':') else {
            return Err(format!("address {text}: missing port in address"));
        };
        if h.contains(':') {
            return Err(format!("address {text}: too many colons in address"));
        }
        (h, port)
    };
    let _ = host;
    if port.is_empty() {
        return Err(format!("address {text:?}: port cannot be empty"));
    }
    Ok(())
}

/// Alertmanager's `ParseURL`: Go's `url.Parse`, then scheme `http` or
/// `https` and a non-empty host.
pub(crate) fn check_http_url(text: &str) -> Result<(), String> {
    let (scheme, rest) = split_scheme(text)?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("unsupported scheme {scheme:?} for URL"));
    }
    let host = rest
        .strip_prefix("//")
        .map(|r| r.split(['/', '?', '#']).next().unwrap_or(""))
        .map(|auth| auth.rsplit_once('@').map_or(auth, |(_, h)| h))
        .unwrap_or("");
    let hostname = if host.starts_with('[') {
        host.split_once(']').map_or(host, |(h, _)| h)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    if let Some(bad) = hostname
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "<>\"{}|\\^`".contains(*c))
    {
        return Err(format!(
            "parse {text:?}: invalid character {:?} in host name",
            bad.to_string()
        ));
    }
    if host.is_empty() {
        return Err("missing host for URL".into());
    }
    Ok(())
}

/// `url.Parse` syntax check only (for proxy URLs).
fn check_url_syntax(text: &str) -> Result<(), String> {
    split_scheme(text).map(|_| ())
}

/// Go's `getScheme`, lowercased.
fn split_scheme(text: &str) -> Result<(String, &str), String> {
    if text.chars().any(|c| c.is_control()) {
        return Err(format!(
            "parse {text:?}: net/url: invalid control character in URL"
        ));
    }
    for (i, c) in text.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err(format!("parse {text:?}: missing protocol scheme")),
            ':' => return Ok((text[..i].to_ascii_lowercase(), &text[i + 1..])),
            _ => return Ok((String::new(), text)),
        }
    }
    Ok((String::new(), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_alertmanager_checks_them() {
        assert_eq!(check_http_url("https://hooks.slack.com/services/x"), Ok(()));
        assert_eq!(check_http_url("http://127.0.0.1:5001/"), Ok(()));
        assert_eq!(
            check_http_url("YOUR_SLACK_WEBHOOK_URL"),
            Err(r#"unsupported scheme "" for URL"#.into())
        );
        assert_eq!(
            check_http_url("ftp://x"),
            Err(r#"unsupported scheme "ftp" for URL"#.into())
        );
        assert_eq!(
            check_http_url("https://"),
            Err("missing host for URL".into())
        );
        assert!(check_http_url("http://exa mple.com").is_err());
    }

    #[test]
    fn host_port_and_headers() {
        assert!(check_host_port("smtp.example.com:587").is_ok());
        assert!(check_host_port("[::1]:25").is_ok());
        assert!(check_host_port("smtp.example.com").is_err());
        assert!(check_host_port("smtp.example.com:").is_err());
        assert_eq!(canonical_mime_header_key("in-reply-to"), "In-Reply-To");
        assert_eq!(canonical_mime_header_key("SUBJECT"), "Subject");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<secret>");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<secret>\"");
        assert_eq!(s.expose(), "hunter2");
    }
}
