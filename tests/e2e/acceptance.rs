//! Time-window acceptance tests in the style of Alertmanager's
//! `test/with_api_v2/acceptance`: a real `lookout serve`, alerts pushed
//! through its Alertmanager v2 API at set times, and a webhook receiver
//! that notes when each notification arrives. Each test states the windows
//! its notifications must land in, as Alertmanager's do ("between 2 and
//! 2.5 s"), a little wider for a small, busy CI machine.
//!
//! The tests run one at a time: their windows are tight enough that two
//! lookout processes and their deliveries sharing two cores could blur them.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::ensure;
use serde_json::{Value, json};

use crate::notifiers::{Receiver, Recorded};
use crate::support::{Lookout, Result, Served};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// An alert to post: its labels, and when it ends (seconds from the
/// start; `None` while it fires).
type Posted<'a> = (&'a [(&'a str, &'a str)], Option<f64>);

/// Slack on each side of a window: scheduling, a delivery through the
/// webhook plugin, the receiver's 5 ms accept poll.
const SLACK: f64 = 0.4;

/// A lookout with an Alertmanager configuration whose receiver `hook` is a
/// recording webhook, and the clock the test's times count from.
struct Scenario {
    lookout: Lookout,
    served: Served,
    receiver: Receiver,
    token: String,
    t0: Instant,
}

impl Scenario {
    /// `route` and `extra` are YAML under `route:` and after `receivers:`.
    fn start(route: &str, extra: &str) -> Result<Scenario> {
        let receiver = Receiver::start(200, "text/plain", "");
        let lookout = Lookout::new();
        lookout.install("lookout_plugin_webhook")?;
        std::fs::write(
            lookout.data.path().join("alertmanager.yml"),
            format!(
                "route:\n  receiver: hook\n{route}receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{}'\n{extra}",
                receiver.url("/hook")
            ),
        )?;
        let served = lookout.serve("[alerting]\nconfig = \"alertmanager.yml\"\n")?;
        let token = lookout.token()?;
        Ok(Scenario {
            lookout,
            served,
            receiver,
            token,
            t0: Instant::now(),
        })
    }

    /// Kills lookout (as kill -9) and starts it again on the same data.
    fn restart(&mut self) -> Result {
        let _ = self.served.child.kill();
        let _ = self.served.child.wait();
        self.served = self
            .lookout
            .serve_file(&self.lookout.data.path().join("lookout.toml"))?;
        Ok(())
    }

    /// Seconds since the scenario started.
    fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Sleeps until `secs` after the start.
    fn at(&self, secs: f64) {
        let due = self.t0 + Duration::from_secs_f64(secs);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }

    fn send(&self, method: &str, path: &str, body: &Value) -> Result<String> {
        let (status, text) = self
            .served
            .send_json(&self.token, method, path, &body.to_string())?;
        ensure!(status == 200, "{method} {path}: {status} {text}");
        Ok(text)
    }

    /// Posts alerts as Prometheus does: labels, and `endsAt` seconds from
    /// the start when given (`None`: still firing).
    fn push(&self, alerts: &[Posted]) -> Result {
        let body: Vec<Value> = alerts
            .iter()
            .map(|(labels, ends)| {
                let labels: serde_json::Map<String, Value> = labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                // Prometheus sends when the alert started; without it the
                // v2 API takes `endsAt` as the start, as Alertmanager's does.
                let mut alert = json!({ "labels": labels, "startsAt": self.wall(0.0) });
                if let Some(ends) = ends {
                    alert["endsAt"] = json!(self.wall(*ends));
                }
                alert
            })
            .collect();
        self.send("POST", "/api/v2/alerts", &json!(body))?;
        Ok(())
    }

    /// RFC 3339 for `secs` after the start.
    fn wall(&self, secs: f64) -> String {
        let now = chrono::Utc::now();
        let offset = chrono::Duration::milliseconds(((secs - self.now()) * 1000.0) as i64);
        (now + offset).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// Notifications received so far: seconds after the start, and body.
    fn received(&self) -> Vec<(f64, Value)> {
        self.timed(self.receiver.requests())
    }

    /// Seconds after the start, and body, of each of `requests`.
    fn timed(&self, requests: Vec<Recorded>) -> Vec<(f64, Value)> {
        requests
            .into_iter()
            .map(|r| {
                let at = r.at.saturating_duration_since(self.t0).as_secs_f64();
                (at, r.json().unwrap_or(Value::Null))
            })
            .collect()
    }
}

/// The notifications of the group whose `groupLabels` include `labels`.
fn of_group(got: &[(f64, Value)], labels: &[(&str, &str)]) -> Vec<(f64, Value)> {
    got.iter()
        .filter(|(_, b)| labels.iter().all(|(k, v)| b["groupLabels"][*k] == *v))
        .cloned()
        .collect()
}

/// What one notification must be: its window and content.
struct Expect<'a> {
    from: f64,
    to: f64,
    status: &'a str,
    /// Values of `label` of the alerts in it, in order.
    label: &'a str,
    alerts: &'a [&'a str],
}

fn window<'a>(
    from: f64,
    to: f64,
    status: &'a str,
    label: &'a str,
    alerts: &'a [&'a str],
) -> Expect<'a> {
    Expect {
        from,
        to,
        status,
        label,
        alerts,
    }
}

/// Asserts the notifications are exactly `expected`, in order.
fn check(got: &[(f64, Value)], expected: &[Expect]) -> Result {
    let summary: Vec<String> = got
        .iter()
        .map(|(t, body)| {
            let alerts: Vec<String> = body["alerts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|a| format!("{}:{}", a["labels"], a["status"]))
                        .collect()
                })
                .unwrap_or_default();
            format!("{t:.2}s {} {}", body["status"], alerts.join(" "))
        })
        .collect();
    ensure!(
        got.len() == expected.len(),
        "expected {} notifications, got {}:\n{}",
        expected.len(),
        got.len(),
        summary.join("\n")
    );
    for (i, ((t, body), e)) in got.iter().zip(expected).enumerate() {
        ensure!(
            *t >= e.from - SLACK && *t <= e.to + SLACK,
            "notification {i} at {t:.2}s, expected in [{}, {}] s:\n{}",
            e.from,
            e.to,
            summary.join("\n")
        );
        ensure!(
            body["status"] == e.status,
            "notification {i} is {}, expected {}:\n{}",
            body["status"],
            e.status,
            summary.join("\n")
        );
        let mut names: Vec<&str> = body["alerts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a["labels"][e.label].as_str())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        ensure!(
            names == e.alerts,
            "notification {i} carries {names:?}, expected {:?}:\n{}",
            e.alerts,
            summary.join("\n")
        );
    }
    Ok(())
}

#[test]
fn group_wait_group_interval_and_repeat_interval() -> Result {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let s = Scenario::start(
        "  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 3s\n",
        "",
    )?;
    s.push(&[(&[("alertname", "Test"), ("id", "1")], None)])?;
    s.at(0.5);
    // Another group: its own group_wait.
    s.push(&[(&[("alertname", "Other"), ("id", "9")], None)])?;
    s.at(1.5);
    // Joins the first group after its first notification: the next flush,
    // a group_interval later, sends both.
    s.push(&[(&[("alertname", "Test"), ("id", "2")], None)])?;
    s.at(8.2);
    let test_group = of_group(&s.received(), &[("alertname", "Test")]);
    check(
        &test_group,
        &[
            window(1.0, 1.1, "firing", "id", &["1"]),
            window(3.0, 3.1, "firing", "id", &["1", "2"]),
            // Unchanged at 5 s (2 s after the last send, under 3 s);
            // repeated at 7 s.
            window(7.0, 7.1, "firing", "id", &["1", "2"]),
        ],
    )?;
    let other = of_group(&s.received(), &[("alertname", "Other")]);
    // Unchanged at 3.5 s; repeated at 5.5 s; not again at 7.5 s (2 s on).
    check(
        &other,
        &[
            window(1.5, 1.6, "firing", "id", &["9"]),
            window(5.5, 5.6, "firing", "id", &["9"]),
        ],
    )
}

#[test]
fn resolved_alerts_are_notified_once() -> Result {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let s = Scenario::start(
        "  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n",
        "",
    )?;
    s.push(&[
        (&[("alertname", "Flappy"), ("id", "1")], Some(2.4)),
        (&[("alertname", "Flappy"), ("id", "2")], Some(4.4)),
    ])?;
    s.at(7.5);
    check(
        &s.received(),
        &[
            window(1.0, 1.1, "firing", "id", &["1", "2"]),
            // One resolved, one firing: the group's status is firing.
            window(3.0, 3.1, "firing", "id", &["1", "2"]),
            // Resolved alerts already sent leave the group after a
            // delivered flush, as in Alertmanager: only 2 is left.
            window(5.0, 5.1, "resolved", "id", &["2"]),
        ],
    )?;
    let got = s.received();
    let second = &got[1].1["alerts"];
    let status_of = |id: &str| {
        second
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["id"] == id)
            .map(|a| a["status"].clone())
    };
    assert_eq!(status_of("1"), Some(json!("resolved")));
    assert_eq!(status_of("2"), Some(json!("firing")));
    Ok(())
}

#[test]
fn inhibited_alerts_wait_for_their_source_to_resolve() -> Result {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let s = Scenario::start(
        "  group_by: ['...']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n",
        "inhibit_rules:\n  - source_matchers: [severity=critical]\n    target_matchers: [severity=warning]\n    equal: [cluster]\n",
    )?;
    s.push(&[
        (
            &[
                ("alertname", "DiskFull"),
                ("severity", "critical"),
                ("cluster", "a"),
            ],
            Some(2.5),
        ),
        (
            &[
                ("alertname", "DiskFilling"),
                ("severity", "warning"),
                ("cluster", "a"),
            ],
            None,
        ),
        (
            &[
                ("alertname", "DiskFilling"),
                ("severity", "warning"),
                ("cluster", "b"),
            ],
            None,
        ),
    ])?;
    s.at(5.8);
    let got: Vec<(f64, Value)> = s.received();
    let of =
        |name: &str, cluster: &str| of_group(&got, &[("alertname", name), ("cluster", cluster)]);
    check(
        &of("DiskFull", "a"),
        &[
            window(1.0, 1.1, "firing", "alertname", &["DiskFull"]),
            window(3.0, 3.1, "resolved", "alertname", &["DiskFull"]),
        ],
    )?;
    check(
        &of("DiskFilling", "b"),
        &[window(1.0, 1.1, "firing", "alertname", &["DiskFilling"])],
    )?;
    // Inhibited while DiskFull fires in the same cluster; sent at the first
    // flush after it resolved.
    check(
        &of("DiskFilling", "a"),
        &[window(2.5, 3.1, "firing", "alertname", &["DiskFilling"])],
    )
}

#[test]
fn silenced_alerts_are_sent_once_the_silence_expires() -> Result {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let s = Scenario::start(
        "  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n",
        "",
    )?;
    let created = s.send(
        "POST",
        "/api/v2/silences",
        &json!({
            "matchers": [{"name": "alertname", "value": "Quiet", "isRegex": false, "isEqual": true}],
            "startsAt": s.wall(0.0),
            "endsAt": s.wall(3600.0),
            "createdBy": "acceptance",
            "comment": "maintenance",
        }),
    )?;
    let id = serde_json::from_str::<Value>(&created)?["silenceID"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no silenceID in {created}"))?;
    s.push(&[
        (&[("alertname", "Quiet")], None),
        (&[("alertname", "Loud")], None),
    ])?;
    s.at(2.5);
    s.send("DELETE", &format!("/api/v2/silence/{id}"), &json!(null))?;
    s.at(4.8);
    let got = s.received();
    let of = |name: &str| of_group(&got, &[("alertname", name)]);
    check(
        &of("Loud"),
        &[window(1.0, 1.1, "firing", "alertname", &["Loud"])],
    )?;
    check(
        &of("Quiet"),
        &[window(2.5, 3.6, "firing", "alertname", &["Quiet"])],
    )
}

#[test]
fn a_notification_is_retried_until_the_receiver_is_back() -> Result {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let s = Scenario::start(
        "  group_by: [alertname]\n  group_wait: 500ms\n  group_interval: 1h\n  repeat_interval: 1h\n",
        "",
    )?;
    s.receiver.answer(503, "text/plain", "down for maintenance");
    s.push(&[(&[("alertname", "Retried")], None)])?;
    s.at(3.0);
    s.receiver.answer(200, "text/plain", "");
    s.at(8.0);
    // Split by the answer each got: one accepted just before the switch
    // may be recorded just after it.
    let (failed, after): (Vec<_>, Vec<_>) = s
        .receiver
        .requests()
        .into_iter()
        .partition(|r| r.status == 503);
    let (failed, after) = (s.timed(failed), s.timed(after));
    // Back-off from 500 ms, ×1.5, ±50 % jitter: attempts at ~0.5, ~1.0,
    // ~1.75 s … under the outage, then one that gets through.
    ensure!(
        failed.len() >= 2,
        "expected retries during the outage, got {} attempts",
        failed.len()
    );
    ensure!(
        (0.5 - SLACK..=0.6 + SLACK).contains(&failed[0].0),
        "first attempt at {:.2}s",
        failed[0].0
    );
    ensure!(
        after.len() == 1,
        "one delivery once the receiver is back, got {}",
        after.len()
    );
    ensure!(after[0].0 >= 3.0, "delivered at {:.2}s", after[0].0);
    // The same notification each time: same group key, same alerts.
    for (_, body) in failed.iter().chain(&after) {
        assert_eq!(body["groupKey"], after[0].1["groupKey"]);
        assert_eq!(body["alerts"][0]["labels"]["alertname"], "Retried");
    }
    s.served
        .history_kinds_with(&["delivery_failed", "notified"])?;
    Ok(())
}

#[test]
fn cold_start_keeps_what_was_sent_and_flushes_old_alerts_at_once() -> Result {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut s = Scenario::start(
        "  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n",
        "",
    )?;
    s.push(&[(&[("alertname", "Before"), ("id", "1")], None)])?;
    s.at(1.8);
    check(&s.received(), &[window(1.0, 1.1, "firing", "id", &["1"])])?;
    // The receiver has it a moment before lookout settles the delivery;
    // a kill before that would rightly send it again.
    s.served.history_kinds_with(&["notified"])?;
    // kill -9 and start again: what was sent is remembered, so the alert
    // Prometheus re-sends is no news; a new one in the group is.
    s.restart()?;
    let restarted = s.now();
    s.push(&[(&[("alertname", "Before"), ("id", "1")], None)])?;
    s.at(restarted + 2.5);
    check(&s.received(), &[window(1.0, 1.1, "firing", "id", &["1"])])?;
    s.push(&[
        (&[("alertname", "Before"), ("id", "1")], None),
        (&[("alertname", "Before"), ("id", "2")], None),
    ])?;
    let pushed = s.now();
    // An alert that started long before a new group's wait is over goes
    // out at once, as Alertmanager does for Prometheus' re-sends after its
    // own restart.
    let old = json!([{
        "labels": {"alertname": "LongFiring"},
        "startsAt": s.wall(-3600.0),
    }]);
    s.send("POST", "/api/v2/alerts", &old)?;
    let old_pushed = s.now();
    s.at(pushed + 2.2);
    let got = s.received();
    let of = |name: &str| of_group(&got, &[("alertname", name)]);
    check(
        &of("Before"),
        &[
            window(1.0, 1.1, "firing", "id", &["1"]),
            window(pushed, pushed + 1.1, "firing", "id", &["1", "2"]),
        ],
    )?;
    check(
        &of("LongFiring"),
        &[window(
            old_pushed,
            old_pushed + 0.1,
            "firing",
            "alertname",
            &["LongFiring"],
        )],
    )
}
