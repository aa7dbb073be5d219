//! The Alertmanager v2 API models (`api/v2/openapi.yaml`), so that `amtool`,
//! Grafana and the Alertmanager UI can talk to lookout, and the queries
//! behind `GET /api/v2/{alerts,alerts/groups,silences,receivers,status}`.
//! HTTP itself is the host's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::dispatch::Dispatcher;
use crate::labels::LabelSet;
use crate::matcher::{MatchType, Matcher, compile_anchored};
use crate::silence::{ApiMatcher, SilenceState};

/// `receiverReference` / `receiver`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiReceiver {
    /// Receiver name.
    pub name: String,
}

/// `alertStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiAlertStatus {
    /// `active`, `suppressed` or `unprocessed`.
    pub state: String,
    /// Ids of the silences muting it.
    pub silenced_by: Vec<String>,
    /// Fingerprints of the alerts inhibiting it.
    pub inhibited_by: Vec<String>,
    /// Time intervals muting it.
    pub muted_by: Vec<String>,
}

/// `gettableAlert`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableAlert {
    /// Annotations.
    pub annotations: LabelSet,
    /// End.
    #[serde(with = "crate::timeutil::api_time")]
    pub ends_at: DateTime<Utc>,
    /// Label fingerprint.
    pub fingerprint: String,
    /// Receivers of the routes it matches.
    pub receivers: Vec<ApiReceiver>,
    /// Start.
    #[serde(with = "crate::timeutil::api_time")]
    pub starts_at: DateTime<Utc>,
    /// Suppression state.
    pub status: ApiAlertStatus,
    /// Last update.
    #[serde(with = "crate::timeutil::api_time")]
    pub updated_at: DateTime<Utc>,
    /// Link to the rule.
    #[serde(
        rename = "generatorURL",
        skip_serializing_if = "String::is_empty",
        default
    )]
    pub generator_url: String,
    /// Labels.
    pub labels: LabelSet,
}

/// `alertGroup`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertGroup {
    /// Group labels.
    pub labels: LabelSet,
    /// Route labels (lookout has none).
    pub route_labels: LabelSet,
    /// Receiver of the group's route.
    pub receiver: ApiReceiver,
    /// Alerts.
    pub alerts: Vec<GettableAlert>,
}

/// `silenceStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSilenceStatus {
    /// `active`, `pending` or `expired`.
    pub state: SilenceState,
}

/// `gettableSilence`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableSilence {
    /// UUID.
    pub id: String,
    /// State.
    pub status: ApiSilenceStatus,
    /// Last change.
    #[serde(with = "crate::timeutil::api_time")]
    pub updated_at: DateTime<Utc>,
    /// Matchers.
    pub matchers: Vec<ApiMatcher>,
    /// Start.
    #[serde(with = "crate::timeutil::api_time")]
    pub starts_at: DateTime<Utc>,
    /// End.
    #[serde(with = "crate::timeutil::api_time")]
    pub ends_at: DateTime<Utc>,
    /// Author.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// `postableAlert` (`POST /api/v2/alerts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// Labels.
    pub labels: LabelSet,
    /// Annotations.
    #[serde(default)]
    pub annotations: LabelSet,
    /// Start; defaults to the end, or now.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "starts_at"
    )]
    pub starts_at: Option<DateTime<Utc>>,
    /// End; missing means `now + resolve_timeout`, renewed by updates.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "ends_at"
    )]
    pub ends_at: Option<DateTime<Utc>>,
    /// Link to the rule.
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
}

fn starts_at<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    api_time(d, "startsAt")
}

fn ends_at<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    api_time(d, "endsAt")
}

/// An RFC 3339 time whose error names the field and the value (serde's own
/// names neither).
fn api_time<'de, D: serde::Deserializer<'de>>(
    d: D,
    field: &str,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    crate::timeutil::parse_rfc3339(&text)
        .map(Some)
        .map_err(|e| {
            serde::de::Error::custom(format!("{field} {text:?} is not an RFC 3339 time ({e})"))
        })
}

impl PostableAlert {
    /// The alert to [`Dispatcher::insert`], with Alertmanager's default
    /// start.
    pub fn into_alert(self, now: DateTime<Utc>) -> Alert {
        let starts_at = self.starts_at.or(self.ends_at).unwrap_or(now);
        Alert {
            labels: self.labels,
            annotations: self.annotations,
            starts_at,
            ends_at: self.ends_at,
            generator_url: self.generator_url,
            updated_at: now,
            timeout: false,
        }
    }
}

/// `versionInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    pub go_version: String,
}

/// `clusterStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// `disabled`: lookout runs alone.
    pub status: String,
    /// None.
    pub peers: Vec<serde_json::Value>,
}

/// `alertmanagerConfig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiConfig {
    /// The config as YAML, secrets hidden.
    pub original: String,
}

/// `alertmanagerStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerStatus {
    pub cluster: ClusterStatus,
    pub version_info: VersionInfo,
    pub config: ApiConfig,
    #[serde(with = "crate::timeutil::api_time")]
    pub uptime: DateTime<Utc>,
}

/// The query parameters of `GET /api/v2/alerts` and `/alerts/groups`.
#[derive(Clone, Debug)]
pub struct AlertFilter {
    /// Include active alerts.
    pub active: bool,
    /// Include silenced alerts.
    pub silenced: bool,
    /// Include inhibited alerts.
    pub inhibited: bool,
    /// Include unprocessed alerts.
    pub unprocessed: bool,
    /// `filter=` matchers.
    pub matchers: Vec<Matcher>,
    /// `receiver=` regex (anchored).
    pub receiver: Option<Regex>,
}

impl Default for AlertFilter {
    fn default() -> Self {
        AlertFilter {
            active: true,
            silenced: true,
            inhibited: true,
            unprocessed: true,
            matchers: Vec::new(),
            receiver: None,
        }
    }
}

impl AlertFilter {
    /// Sets the receiver regex (anchored, as Alertmanager).
    pub fn with_receiver(mut self, re: &str) -> Result<Self, String> {
        self.receiver = Some(compile_anchored(re).map_err(|e| e.to_string())?);
        Ok(self)
    }
}

/// Alertmanager's `matchFilterLabels`: an empty `=` value accepts a missing
/// label, an empty `!=` value accepts a present one.
pub fn match_filter_labels(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| {
        let value = labels.get(&m.name);
        let negative = matches!(m.kind, MatchType::NotEqual | MatchType::NotRegexp);
        if m.value.is_empty() && (value.is_some() == negative) {
            return true;
        }
        m.matches(value.map_or("", String::as_str))
    })
}

impl Dispatcher {
    fn alert_status(&self, alert: &Alert, now: DateTime<Utc>) -> ApiAlertStatus {
        let silenced_by = self.silences().mutes(&alert.labels, now);
        let inhibited_by: Vec<String> = self
            .inhibitor()
            .inhibited_by(&alert.labels, self.alerts(), now)
            .map(|fp| fp.to_string())
            .into_iter()
            .collect();
        let muted_by = self.muted_by(alert.fingerprint());
        let suppressed =
            !silenced_by.is_empty() || !inhibited_by.is_empty() || !muted_by.is_empty();
        ApiAlertStatus {
            state: if suppressed { "suppressed" } else { "active" }.into(),
            silenced_by,
            inhibited_by,
            muted_by,
        }
    }

    fn gettable(
        &self,
        alert: &Alert,
        now: DateTime<Utc>,
        receivers: Vec<ApiReceiver>,
    ) -> GettableAlert {
        GettableAlert {
            annotations: alert.annotations.clone(),
            ends_at: alert.ends_at.unwrap_or(alert.starts_at),
            fingerprint: alert.fingerprint().to_string(),
            receivers,
            starts_at: alert.starts_at,
            status: self.alert_status(alert, now),
            updated_at: alert.updated_at,
            generator_url: alert.generator_url.clone(),
            labels: alert.labels.clone(),
        }
    }

    fn passes(
        &self,
        g: &GettableAlert,
        alert: &Alert,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> bool {
        if alert.ends_at.is_some_and(|e| e < now) {
            return false;
        }
        if !filter.active && g.status.state == "active" {
            return false;
        }
        if !filter.silenced && !g.status.silenced_by.is_empty() {
            return false;
        }
        if !filter.inhibited && !g.status.inhibited_by.is_empty() {
            return false;
        }
        if !filter.unprocessed && g.status.state == "unprocessed" {
            return false;
        }
        match_filter_labels(&filter.matchers, &alert.labels)
    }

    /// `GET /api/v2/alerts`: current (unresolved) alerts, by fingerprint.
    pub fn api_alerts(&self, filter: &AlertFilter, now: DateTime<Utc>) -> Vec<GettableAlert> {
        let mut out = Vec::new();
        for alert in self.alerts() {
            let mut names: Vec<String> = Vec::new();
            for r in self.config().route.match_routes(&alert.labels) {
                let name = &self.config().route.node(r).opts.receiver;
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
            if let Some(re) = &filter.receiver
                && !names.iter().any(|n| re.is_match(n))
            {
                continue;
            }
            let receivers = names.into_iter().map(|name| ApiReceiver { name }).collect();
            let g = self.gettable(alert, now, receivers);
            if self.passes(&g, alert, filter, now) {
                out.push(g);
            }
        }
        out.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        out
    }

    /// `GET /api/v2/alerts/groups`.
    pub fn api_alert_groups(&self, filter: &AlertFilter, now: DateTime<Utc>) -> Vec<AlertGroup> {
        let mut out = Vec::new();
        for g in self.groups() {
            if let Some(re) = &filter.receiver
                && !re.is_match(g.receiver)
            {
                continue;
            }
            let alerts: Vec<GettableAlert> = g
                .alerts
                .iter()
                .filter_map(|a| {
                    let ga = self.gettable(
                        a,
                        now,
                        vec![ApiReceiver {
                            name: g.receiver.to_string(),
                        }],
                    );
                    self.passes(&ga, a, filter, now).then_some(ga)
                })
                .collect();
            if alerts.is_empty() {
                continue;
            }
            out.push(AlertGroup {
                labels: g.labels.clone(),
                route_labels: LabelSet::new(),
                receiver: ApiReceiver {
                    name: g.receiver.to_string(),
                },
                alerts,
            });
        }
        out
    }

    /// `GET /api/v2/silences`, optionally filtered.
    pub fn api_silences(&self, filter: &[Matcher], now: DateTime<Utc>) -> Vec<GettableSilence> {
        self.silences()
            .list(now)
            .into_iter()
            .filter(|l| {
                let labels: BTreeMap<String, String> = l
                    .silence
                    .matchers
                    .iter()
                    .map(|m| (m.name.clone(), m.value.clone()))
                    .collect();
                match_filter_labels(filter, &labels)
            })
            .map(|l| GettableSilence {
                id: l.silence.id.clone(),
                status: ApiSilenceStatus { state: l.state },
                updated_at: l.silence.updated_at,
                matchers: l.silence.matchers.clone(),
                starts_at: l.silence.starts_at,
                ends_at: l.silence.ends_at,
                created_by: l.silence.created_by.clone(),
                comment: l.silence.comment.clone(),
            })
            .collect()
    }

    /// `GET /api/v2/silence/{id}`.
    pub fn api_silence(&self, id: &str, now: DateTime<Utc>) -> Option<GettableSilence> {
        self.api_silences(&[], now).into_iter().find(|s| s.id == id)
    }

    /// `GET /api/v2/receivers`.
    pub fn api_receivers(&self) -> Vec<ApiReceiver> {
        self.config()
            .receivers
            .iter()
            .map(|r| ApiReceiver {
                name: r.name.clone(),
            })
            .collect()
    }

    /// `GET /api/v2/status`.
    pub fn api_status(&self, version: VersionInfo, started: DateTime<Utc>) -> AlertmanagerStatus {
        AlertmanagerStatus {
            cluster: ClusterStatus {
                status: "disabled".into(),
                peers: Vec::new(),
            },
            version_info: version,
            config: ApiConfig {
                original: self.config().redacted_yaml(),
            },
            uptime: started,
        }
    }
}
