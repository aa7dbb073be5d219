//! lookout's Alertmanager-compatible core: everything Alertmanager decides,
//! nothing it does. No I/O, no clock, no threads — the host passes in the
//! time, stores the snapshots (redb) and delivers the notifications
//! (notifier plugins).
//!
//! ```
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use lookout_alerting::{Alert, Delivery, Dispatcher, LabelSet, parse_config_with_env};
//!
//! let yaml = r#"
//! route:
//!   receiver: team
//!   group_by: [alertname]
//!   group_wait: 30s
//! receivers:
//!   - name: team
//!     webhook_configs:
//!       - url: ${HOOK}
//! "#;
//! let env = |name: &str| (name == "HOOK").then(|| "http://127.0.0.1:5001/".to_string());
//! let config = parse_config_with_env(yaml, "alertmanager.yml", &env)?;
//! let mut dispatcher = Dispatcher::new(config);
//!
//! let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
//! let labels: LabelSet = [("alertname".to_string(), "Down".to_string())].into();
//! dispatcher.insert(Alert::new(labels, t0), t0)?;
//!
//! // Nothing before group_wait; then one webhook notification.
//! assert_eq!(dispatcher.next_deadline(), Some(t0 + TimeDelta::seconds(30)));
//! assert!(dispatcher.flush_due(t0 + TimeDelta::seconds(29)).is_empty());
//! let sent = dispatcher.flush_due(t0 + TimeDelta::seconds(30));
//! assert_eq!(sent.len(), 1);
//! assert_eq!(sent[0].group_key, r#"{}:{alertname="Down"}"#);
//! let body = lookout_alerting::WebhookMessage::new(&sent[0], "http://lookout:9093", 0);
//! assert_eq!(body.version, "4");
//!
//! // The host delivered it; the notification log now holds it.
//! dispatcher.report(&sent[0].id, Delivery::Delivered, t0 + TimeDelta::seconds(31))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Concepts
//!
//! - **Config** ([`parse_config`]): `alertmanager.yml` as Alertmanager reads
//!   it, plus `${VAR}` environment references in string values. Errors name
//!   the file and line.
//! - **Routing** ([`RouteTree::match_routes`]): the route tree with
//!   `continue`, inherited options and Alertmanager's route keys.
//! - **Dispatching** ([`Dispatcher`]): aggregation groups with `group_wait`,
//!   `group_interval`, `repeat_interval`; the pipeline inhibition → time
//!   intervals → silences → per-integration dedup; the notification log.
//! - **Retrying** ([`retry`]): when the host should try a failed delivery
//!   again, and when to give up.
//! - **Silences** ([`Silences`]) and **inhibition** ([`Inhibitor`]).
//! - **Payloads** ([`WebhookMessage`], [`TemplateData`]) and the **v2 API**
//!   models ([`api`]) that `amtool` reads.
//!
//! ## Deliberately absent
//!
//! Go templates are not rendered here: config strings keep their template
//! text, and [`TemplateData`] offers Alertmanager's default texts (subject,
//! Slack title and colour, PagerDuty description) ready-made. Clustering
//! (gossip) does not exist in lookout.

pub mod alert;
pub mod api;
pub mod config;
pub mod dispatch;
pub mod inhibit;
pub mod labels;
pub mod matcher;
pub mod payload;
pub mod retry;
pub mod route;
pub mod silence;
pub mod timeinterval;
pub mod timeutil;

pub use alert::{Alert, AlertStatus};
pub use config::{
    AmConfig, ConfigError, PluginIntegration, parse_config, parse_config_with_env,
    parse_config_with_receivers,
};
pub use dispatch::{
    Delivery, DispatchError, Dispatcher, DispatcherSnapshot, Notification, NotifyReason,
};
pub use inhibit::Inhibitor;
pub use labels::{Fingerprint, LabelSet};
pub use matcher::{MatchType, Matcher, parse_matcher, parse_matchers};
pub use payload::{TemplateData, WebhookMessage};
pub use route::{RouteId, RouteTree};
pub use silence::{PostableSilence, Silence, SilenceState, Silences, SilencesSnapshot};
