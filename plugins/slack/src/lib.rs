//! `slack` notifier: posts one message with one attachment to a Slack
//! incoming webhook (or, with `app_token`, to `chat.postMessage`), like
//! Alertmanager's `slack_configs`.
//!
//! Configuration (Alertmanager's field names; every text is a template):
//!
//! ```json
//! {
//!   "api_url": "https://hooks.slack.com/services/T000/B000/XXXX",
//!   "channel": "#alerts",
//!   "username": "lookout",
//!   "icon_emoji": ":rotating_light:",
//!   "title": "{{ .CommonLabels.alertname }} ({{ .Alerts.Firing | len }} firing)",
//!   "text": "{{ .CommonAnnotations.summary }}"
//! }
//! ```
//!
//! - Destination: `api_url` (an incoming webhook), or `app_token` (a bot
//!   token, sent as `Authorization: Bearer`) with `app_url` (default
//!   `https://slack.com/api/chat.postMessage`).
//! - Message: `channel`, `username`, `icon_emoji`, `icon_url`,
//!   `link_names`, `message_text` (the message's own `text`).
//! - Attachment: `title`, `title_link`, `pretext`, `text`, `fallback`,
//!   `color`, `footer`, `callback_id`, `image_url`, `thumb_url`,
//!   `mrkdwn_in` (default `["fallback", "pretext", "text"]`), `fields`
//!   (`title`, `value`, `short`; `short_fields` is the default of `short`)
//!   and `actions` (Slack's legacy buttons: `type`, `text`, `url`, `style`,
//!   `name`, `value`, `confirm`).
//! - `http_config` (`bearer_token`, `basic_auth`, `authorization`,
//!   `follow_redirects`); `send_resolved` is applied by the host and ignored
//!   here.
//!
//! Unset texts take Alertmanager's defaults (`slack.default.*` of its
//! `default.tmpl`): the title is `[FIRING:2] <group label values> (<other
//! common label values>)`, the title links to the external URL's alert view,
//! the fallback is `<title> | <title link>`, the color `danger` while any
//! alert fires and `good` once all are resolved, the username is
//! `lookout`; text, pretext and footer are empty. Templates support the
//! subset described in `lookout_plugin_sdk::template`: fields such as
//! `.Status`, `.Receiver`, `.CommonLabels.x`, `.CommonAnnotations.x`,
//! `.GroupLabels.x`, `len .Alerts`, `.Alerts.Firing | len`, the functions
//! `index`, `join`, `toUpper`, `toLower`, `title`, `trimSpace`, `urlquery`,
//! and `{{ template "slack.default.title" . }}`-style calls of the defaults.
//!
//! Outcome, by Alertmanager's rules: a 5xx or 429 answer or a connection
//! failure is transient, any other non-2xx answer permanent. A 2xx answer
//! must say so: an incoming webhook answers the text `ok`, the Web API JSON
//! with `"ok": true` (its `ts` becomes the delivery's remote id); anything
//! else is a permanent error naming Slack's reason.
//!
//! Capabilities: `hooks.slack.com` and `slack.com`. The host also grants a
//! receiver the host of its configured URL; `lookout notify` takes
//! `--grant-http host:port`.

use std::time::Duration;

use lookout_plugin_sdk::template::{self, TemplateError};
use lookout_plugin_sdk::{Delivery, Notification, Notifier, PluginError, PluginInfo, http};
use serde::{Deserialize, Serialize};

/// Slack's limit on an attachment title, in characters (Alertmanager
/// truncates to it).
const MAX_TITLE_CHARS: usize = 1024;

/// Where `app_token` messages go unless `app_url` says otherwise.
const DEFAULT_APP_URL: &str = "https://slack.com/api/chat.postMessage";

/// How much of an error response's body goes into the error message.
const ERROR_BODY_CHARS: usize = 256;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    api_url: Option<String>,
    app_token: Option<String>,
    app_url: Option<String>,
    http_config: http::HttpClientConfig,
    /// Applied by the host.
    #[allow(dead_code)]
    send_resolved: Option<bool>,

    channel: Option<String>,
    username: Option<String>,
    icon_emoji: Option<String>,
    icon_url: Option<String>,
    link_names: bool,
    message_text: Option<String>,

    title: Option<String>,
    title_link: Option<String>,
    pretext: Option<String>,
    text: Option<String>,
    fallback: Option<String>,
    color: Option<String>,
    footer: Option<String>,
    callback_id: Option<String>,
    image_url: Option<String>,
    thumb_url: Option<String>,
    mrkdwn_in: Vec<String>,
    fields: Vec<FieldConfig>,
    short_fields: bool,
    actions: Vec<ActionConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldConfig {
    title: String,
    value: String,
    short: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ActionConfig {
    #[serde(rename = "type")]
    kind: String,
    text: String,
    url: String,
    style: String,
    name: String,
    value: String,
    confirm: Option<ConfirmConfig>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ConfirmConfig {
    title: String,
    text: String,
    ok_text: String,
    dismiss_text: String,
}

/// The JSON Slack receives.
#[derive(Serialize, Debug, PartialEq)]
struct Message {
    #[serde(skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_emoji: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_url: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    link_names: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    attachments: Vec<Attachment>,
}

#[derive(Serialize, Debug, PartialEq)]
struct Attachment {
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pretext: String,
    text: String,
    fallback: String,
    callback_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<Field>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<Action>,
    #[serde(skip_serializing_if = "String::is_empty")]
    image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    thumb_url: String,
    footer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    color: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mrkdwn_in: Vec<String>,
}

#[derive(Serialize, Debug, PartialEq)]
struct Field {
    title: String,
    value: String,
    short: bool,
}

#[derive(Serialize, Debug, PartialEq)]
struct Action {
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    style: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirm: Option<Confirm>,
}

#[derive(Serialize, Debug, PartialEq)]
struct Confirm {
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    ok_text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    dismiss_text: String,
}

/// What the Web API answers (incoming webhooks answer plain `ok`).
#[derive(Deserialize)]
struct ApiResponse {
    ok: bool,
    #[serde(default)]
    error: String,
    #[serde(default)]
    ts: String,
}

fn message(n: &Notification, c: &Config) -> Result<Message, TemplateError> {
    let render = |t: &str| template::render(t, n);
    let mut title = template::render_or_default(c.title.as_deref(), "slack.default.title", n)?;
    if title.chars().count() > MAX_TITLE_CHARS {
        title = title.chars().take(MAX_TITLE_CHARS - 1).collect();
        title.push('…');
    }
    let fields = c
        .fields
        .iter()
        .map(|field| {
            Ok(Field {
                title: render(&field.title)?,
                value: render(&field.value)?,
                short: field.short.unwrap_or(c.short_fields),
            })
        })
        .collect::<Result<_, TemplateError>>()?;
    let actions = c
        .actions
        .iter()
        .map(|a| {
            let confirm = match &a.confirm {
                None => None,
                Some(confirm) => Some(Confirm {
                    title: render(&confirm.title)?,
                    text: render(&confirm.text)?,
                    ok_text: render(&confirm.ok_text)?,
                    dismiss_text: render(&confirm.dismiss_text)?,
                }),
            };
            Ok(Action {
                kind: render(&a.kind)?,
                text: render(&a.text)?,
                url: render(&a.url)?,
                style: render(&a.style)?,
                name: render(&a.name)?,
                value: render(&a.value)?,
                confirm,
            })
        })
        .collect::<Result<_, TemplateError>>()?;
    let mrkdwn_in = if c.mrkdwn_in.is_empty() {
        ["fallback", "pretext", "text"].map(String::from).to_vec()
    } else {
        c.mrkdwn_in.clone()
    };
    let attachment = Attachment {
        title,
        title_link: template::render_or_default(
            c.title_link.as_deref(),
            "slack.default.titlelink",
            n,
        )?,
        pretext: template::render_or_default(c.pretext.as_deref(), "slack.default.pretext", n)?,
        text: template::render_or_default(c.text.as_deref(), "slack.default.text", n)?,
        fallback: template::render_or_default(c.fallback.as_deref(), "slack.default.fallback", n)?,
        callback_id: template::render_or_default(
            c.callback_id.as_deref(),
            "slack.default.callbackid",
            n,
        )?,
        fields,
        actions,
        image_url: c
            .image_url
            .as_deref()
            .map(render)
            .transpose()?
            .unwrap_or_default(),
        thumb_url: c
            .thumb_url
            .as_deref()
            .map(render)
            .transpose()?
            .unwrap_or_default(),
        footer: template::render_or_default(c.footer.as_deref(), "slack.default.footer", n)?,
        color: template::render_or_default(c.color.as_deref(), "slack.default.color", n)?,
        mrkdwn_in,
    };
    Ok(Message {
        channel: c
            .channel
            .as_deref()
            .map(render)
            .transpose()?
            .unwrap_or_default(),
        username: template::render_or_default(c.username.as_deref(), "slack.default.username", n)?,
        icon_emoji: template::render_or_default(
            c.icon_emoji.as_deref(),
            "slack.default.iconemoji",
            n,
        )?,
        icon_url: template::render_or_default(c.icon_url.as_deref(), "slack.default.iconurl", n)?,
        link_names: c.link_names,
        text: c
            .message_text
            .as_deref()
            .map(render)
            .transpose()?
            .unwrap_or_default(),
        attachments: vec![attachment],
    })
}

struct Slack;

impl Notifier for Slack {
    type Config = Config;

    fn describe() -> PluginInfo {
        lookout_plugin_sdk::plugin_info!("slack")
            .description(
                "Posts notifications to Slack (incoming webhook or chat.postMessage) with \
                 Alertmanager's default title, color and fallback.",
            )
            .http(["hooks.slack.com", "slack.com"])
    }

    fn notify(
        notification: Notification,
        config: Config,
        timeout: Duration,
    ) -> Result<Delivery, PluginError> {
        let (url, token) = match (&config.api_url, &config.app_token) {
            (Some(url), None) => (url.clone(), None),
            (None, Some(token)) => (
                config
                    .app_url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_APP_URL.to_owned()),
                Some(token.clone()),
            ),
            (None, None) => {
                return Err(PluginError::config(
                    "one of api_url (incoming webhook) and app_token (bot token) is required",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(PluginError::config(
                    "at most one of api_url and app_token may be set",
                ));
            }
        };
        let auth = match token {
            Some(token) if config.http_config.authorization()?.is_none() => {
                Some(format!("Bearer {token}"))
            }
            Some(_) => {
                return Err(PluginError::config(
                    "app_token and http_config credentials cannot be combined",
                ));
            }
            None => config.http_config.authorization()?,
        };
        let message = message(&notification, &config)?;
        let body = serde_json::to_string(&message).expect("a slack message always serialises");
        let response =
            config
                .http_config
                .post_json(&url, body, timeout, auth, "posting to Slack")?;
        let channel = if message.channel.is_empty() {
            "(webhook default)".to_owned()
        } else {
            message.channel.clone()
        };
        let ts = check_response(&response).map_err(|error| with_channel(error, &channel))?;
        let delivery = Delivery::new(format!("posted to Slack channel {channel}"));
        Ok(match ts {
            Some(ts) => delivery.remote_id(ts),
            None => delivery,
        })
    }
}

fn with_channel(error: PluginError, channel: &str) -> PluginError {
    match error {
        PluginError::Transient(m) => PluginError::Transient(format!("channel {channel}: {m}")),
        PluginError::Permanent(m) => PluginError::Permanent(format!("channel {channel}: {m}")),
        other => other,
    }
}

/// Alertmanager's checks of Slack's answer: the status first (5xx and 429
/// retried), then the body (`ok`, or JSON with `"ok": true`). Returns the
/// message's `ts` when the Web API gave one.
fn check_response(response: &http::Response) -> Result<Option<String>, PluginError> {
    let body = response.text();
    if !response.is_success() {
        let mut message = format!("unexpected status code {}", response.status);
        let body = body.trim();
        if !body.is_empty() {
            message.push_str(": ");
            message.extend(body.chars().take(ERROR_BODY_CHARS));
        }
        return Err(if response.status / 100 == 5 || response.status == 429 {
            PluginError::transient(message)
        } else {
            PluginError::permanent(message)
        });
    }
    let json = response
        .header_str("content-type")
        .is_some_and(|t| t.trim_start().starts_with("application/json"));
    if !json {
        return if body.trim() == "ok" {
            Ok(None)
        } else {
            let shown: String = body.chars().take(ERROR_BODY_CHARS).collect();
            Err(PluginError::permanent(format!(
                "received an error response from Slack: {shown}"
            )))
        };
    }
    let answer: ApiResponse = serde_json::from_str(&body).map_err(|error| {
        PluginError::transient(format!("could not read Slack's JSON answer: {error}"))
    })?;
    if !answer.ok {
        return Err(PluginError::permanent(format!(
            "error response from Slack: {}",
            answer.error
        )));
    }
    Ok((!answer.ts.is_empty()).then_some(answer.ts))
}

lookout_plugin_sdk::export_notifier!(Slack);

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_plugin_sdk::{Alert, parse_config};
    use serde_json::json;

    fn notification(status: &str) -> Notification {
        Notification {
            receiver: "ops".into(),
            status: status.into(),
            alerts: vec![Alert {
                status: status.into(),
                labels: vec![
                    ("alertname".into(), "Down".into()),
                    ("job".into(), "web".into()),
                ],
                annotations: vec![("summary".into(), "web is down".into())],
                starts_at: "2024-01-01T00:00:00Z".into(),
                ends_at: "0001-01-01T00:00:00Z".into(),
                generator_url: "http://prom/x".into(),
                fingerprint: "f".into(),
            }],
            group_labels: vec![("alertname".into(), "Down".into())],
            common_labels: vec![
                ("alertname".into(), "Down".into()),
                ("job".into(), "web".into()),
            ],
            common_annotations: vec![("summary".into(), "web is down".into())],
            external_url: "http://lookout".into(),
            group_key: "{}:{alertname=\"Down\"}".into(),
            truncated_alerts: 0,
        }
    }

    fn json_of(n: &Notification, config: &str) -> serde_json::Value {
        let config: Config = parse_config(config).unwrap();
        serde_json::to_value(message(n, &config).unwrap()).unwrap()
    }

    #[test]
    fn defaults_are_alertmanagers() {
        let body = json_of(&notification("firing"), r#"{"api_url": "http://x"}"#);
        assert_eq!(
            body,
            json!({
                "username": "lookout",
                "attachments": [{
                    "title": "[FIRING:1] Down (web)",
                    "title_link": "http://lookout/#/alerts?receiver=ops",
                    "text": "",
                    "fallback": "[FIRING:1] Down (web) | http://lookout/#/alerts?receiver=ops",
                    "callback_id": "",
                    "footer": "",
                    "color": "danger",
                    "mrkdwn_in": ["fallback", "pretext", "text"]
                }]
            })
        );
        let body = json_of(&notification("resolved"), r#"{"api_url": "http://x"}"#);
        assert_eq!(body["attachments"][0]["color"], "good");
        assert_eq!(body["attachments"][0]["title"], "[RESOLVED] Down (web)");
    }

    #[test]
    fn configured_texts_are_templates() {
        let body = json_of(
            &notification("firing"),
            r##"{"api_url": "http://x", "channel": "#ops", "icon_emoji": ":fire:",
                "title": "{{ .CommonLabels.alertname }}: {{ .Alerts.Firing | len }} firing",
                "text": "{{ .CommonAnnotations.summary }}",
                "fields": [{"title": "job", "value": "{{ .CommonLabels.job }}"}],
                "short_fields": true}"##,
        );
        assert_eq!(body["channel"], "#ops");
        assert_eq!(body["icon_emoji"], ":fire:");
        assert_eq!(body["attachments"][0]["title"], "Down: 1 firing");
        assert_eq!(body["attachments"][0]["text"], "web is down");
        assert_eq!(
            body["attachments"][0]["fields"],
            json!([{"title": "job", "value": "web", "short": true}])
        );
        let bad: Config = parse_config(r#"{"api_url": "x", "title": "{{ if 1 }}"}"#).unwrap();
        assert!(message(&notification("firing"), &bad).is_err());
    }

    #[test]
    fn answers_are_checked_like_alertmanager() {
        let response = |status, content_type: &str, body: &str| http::Response {
            status,
            headers: vec![("content-type".into(), content_type.as_bytes().to_vec())],
            body: body.as_bytes().to_vec(),
            ..Default::default()
        };
        assert_eq!(check_response(&response(200, "text/plain", "ok")), Ok(None));
        assert!(matches!(
            check_response(&response(200, "text/plain", "invalid_token")),
            Err(PluginError::Permanent(_))
        ));
        assert_eq!(
            check_response(&response(
                200,
                "application/json; charset=utf-8",
                r#"{"ok": true, "ts": "1.2"}"#
            )),
            Ok(Some("1.2".into()))
        );
        assert_eq!(
            check_response(&response(
                200,
                "application/json",
                r#"{"ok": false, "error": "no"}"#
            )),
            Err(PluginError::Permanent(
                "error response from Slack: no".into()
            ))
        );
        assert!(matches!(
            check_response(&response(500, "text/plain", "x")),
            Err(PluginError::Transient(_))
        ));
        assert!(matches!(
            check_response(&response(404, "text/plain", "channel_not_found")),
            Err(PluginError::Permanent(_))
        ));
    }
}
