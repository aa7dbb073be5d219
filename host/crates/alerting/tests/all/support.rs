//! Shared helpers: a fake clock, label sets, configs, and a simulator that
//! drives a dispatcher through time the way the host does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lookout_alerting::{
    Alert, AmConfig, Delivery, Dispatcher, LabelSet, Notification, parse_config_with_env,
};

/// The simulated epoch: a Monday.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 10, 0, 0).unwrap()
}

/// `t0 + secs`.
pub fn at(secs: f64) -> DateTime<Utc> {
    t0() + TimeDelta::milliseconds((secs * 1000.0).round() as i64)
}

/// Seconds since `t0`.
pub fn secs(t: DateTime<Utc>) -> f64 {
    (t - t0()).num_milliseconds() as f64 / 1000.0
}

/// `ls(&[("a", "b")])`.
pub fn ls(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The fixed environment of the tests.
pub fn test_env(name: &str) -> Option<String> {
    match name {
        "SLACK_WEBHOOK_URL" => Some("https://hooks.slack.com/services/T000/B000/XXX".into()),
        "SMTP_PASSWORD" => Some("smtp-secret".into()),
        "SMTP_HOST" => Some("smtp.example.com".into()),
        "HOOK_URL" => Some("http://127.0.0.1:5001/hook".into()),
        _ => None,
    }
}

/// Parses a config with [`test_env`], panicking with the error.
pub fn config(yaml: &str) -> AmConfig {
    parse_config_with_env(yaml, "test.yml", &test_env).unwrap_or_else(|e| panic!("{e}"))
}

/// This crate's fixtures directory.
pub fn fixtures() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures")
}

/// Whether `BLESS=1` asks golden files to be rewritten.
pub fn bless() -> bool {
    std::env::var("BLESS").is_ok_and(|v| v == "1")
}

/// Compares `actual` with the golden file, or rewrites it under `BLESS=1`.
pub fn golden(path: &Path, actual: &str) {
    if bless() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1 to create it)", path.display()));
    assert_eq!(
        expected,
        actual,
        "{} differs (run with BLESS=1 to accept the new output)",
        path.display()
    );
}

/// An alert that started at `start` seconds and fires until told
/// otherwise (its end is far away, as a rule engine re-sending it keeps it).
pub fn alert(labels: &[(&str, &str)], start: f64) -> Alert {
    let mut a = Alert::new(ls(labels), at(start));
    a.ends_at = Some(at(10_000_000.0));
    a
}

/// An alert resolved at `end` seconds. Insert it at or after `end`: an end
/// still in the future does not shorten an explicit one (Alertmanager's
/// merge rule).
pub fn resolved(labels: &[(&str, &str)], start: f64, end: f64) -> Alert {
    let mut a = alert(labels, start);
    a.ends_at = Some(at(end));
    a
}

/// A sent notification as tests look at it.
#[derive(Clone, Debug)]
pub struct Sent {
    /// Seconds since t0.
    pub at: f64,
    pub n: Notification,
}

impl Sent {
    /// `alertname[/instance]:status` of each alert.
    pub fn alerts(&self) -> Vec<String> {
        self.n
            .alerts
            .iter()
            .map(|a| {
                let mut s = a.labels.get("alertname").cloned().unwrap_or_default();
                if let Some(i) = a.labels.get("instance") {
                    s.push('/');
                    s.push_str(i);
                }
                s.push(':');
                s.push_str(a.status.as_str());
                s
            })
            .collect()
    }

    /// `receiver/integration`.
    pub fn target(&self) -> String {
        format!("{}/{}", self.n.receiver, self.n.integration)
    }
}

/// Drives a dispatcher as the host would: flushes at every deadline and
/// delivers each notification at once (or fails it, as the test says).
pub struct Sim {
    pub d: Dispatcher,
    pub now: DateTime<Utc>,
    pub sent: Vec<Sent>,
    /// Receivers whose deliveries fail.
    pub failing: BTreeMap<String, bool>,
}

impl Sim {
    pub fn new(yaml: &str) -> Self {
        Sim {
            d: Dispatcher::new(config(yaml)),
            now: t0(),
            sent: Vec::new(),
            failing: BTreeMap::new(),
        }
    }

    /// Inserts an alert at the current time.
    pub fn insert(&mut self, alert: Alert) {
        self.d.insert(alert, self.now).unwrap();
    }

    /// Advances to `secs`, handling every deadline on the way.
    pub fn run_to(&mut self, secs: f64) {
        let end = at(secs);
        let mut guard = 0;
        while let Some(next) = self.d.next_deadline() {
            if next > end {
                break;
            }
            guard += 1;
            assert!(guard < 100_000, "deadline loop at {next}");
            self.now = next.max(self.now);
            self.step();
        }
        self.now = end;
        self.step();
    }

    fn step(&mut self) {
        let out = self.d.flush_due(self.now);
        for n in out {
            let fail = self.failing.get(&n.receiver).copied().unwrap_or(false);
            let outcome = if fail {
                Delivery::Failed("503".into())
            } else {
                Delivery::Delivered
            };
            self.d.report(&n.id, outcome, self.now).unwrap();
            self.sent.push(Sent {
                at: secs(self.now),
                n,
            });
        }
    }

    /// Notifications sent in `(from, to]` seconds.
    pub fn sent_between(&self, from: f64, to: f64) -> Vec<&Sent> {
        self.sent
            .iter()
            .filter(|s| s.at > from && s.at <= to)
            .collect()
    }

    /// `(seconds, receiver/integration, alerts)` of everything sent.
    pub fn log(&self) -> Vec<(f64, String, Vec<String>)> {
        self.sent
            .iter()
            .map(|s| (s.at, s.target(), s.alerts()))
            .collect()
    }
}
