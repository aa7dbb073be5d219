//! Time-window tests of the dispatcher, in the style of Alertmanager's
//! acceptance tests: alerts go in at given times and notifications must
//! come out at given times, driven by a fake clock.

use lookout_alerting::dispatch::NotifyReason;
use lookout_alerting::{Delivery, Dispatcher, DispatcherSnapshot};

use crate::support::{Sim, alert, at, config, ls, resolved};

const HOOK: &str = r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:5001/
"#;

fn x(instance: &str) -> Vec<(&'static str, String)> {
    vec![
        ("alertname", "X".into()),
        ("instance", instance.to_string()),
    ]
}

fn labels<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn group_wait_then_group_interval() {
    let mut sim = Sim::new(HOOK);
    sim.insert(alert(&labels(&x("1")), 0.0));
    sim.run_to(29.9);
    assert!(sim.sent.is_empty());
    sim.run_to(30.0);
    assert_eq!(
        sim.log(),
        [(30.0, "hook/webhook[0]".into(), vec!["X/1:firing".into()])]
    );
    assert_eq!(sim.sent[0].n.reason, NotifyReason::FirstNotification);
    assert_eq!(sim.sent[0].n.group_key, r#"{}:{alertname="X"}"#);

    // A second alert of the group waits for the group_interval tick; an
    // alert of a new group waits its own group_wait.
    sim.run_to(60.0);
    sim.insert(alert(&labels(&x("2")), 60.0));
    sim.insert(alert(&[("alertname", "Y")], 60.0));
    sim.run_to(89.9);
    assert_eq!(sim.sent.len(), 1);
    sim.run_to(90.0);
    assert_eq!(sim.sent_between(60.0, 90.0)[0].alerts(), ["Y:firing"]);
    sim.run_to(329.9);
    assert_eq!(sim.sent.len(), 2);
    sim.run_to(330.0);
    let s = sim.sent_between(329.9, 330.0);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].alerts(), ["X/1:firing", "X/2:firing"]);
    assert_eq!(s[0].n.reason, NotifyReason::NewAlertsInGroup);
}

#[test]
fn repeat_interval_resends_unchanged_groups() {
    let mut sim = Sim::new(HOOK);
    sim.insert(alert(&labels(&x("1")), 0.0));
    sim.run_to(8000.0);
    let times: Vec<f64> = sim.sent.iter().map(|s| s.at).collect();
    // Sent at 30; a repeat is due after 3630 and goes out at the next
    // group_interval tick (3930), then after 7530 at 7830.
    assert_eq!(times, [30.0, 3930.0, 7830.0]);
    assert_eq!(sim.sent[1].n.reason, NotifyReason::RepeatIntervalElapsed);
}

#[test]
fn resolved_alerts_are_notified_once_then_forgotten() {
    let mut sim = Sim::new(HOOK);
    sim.insert(alert(&labels(&x("1")), 0.0));
    sim.run_to(100.0);
    sim.insert(resolved(&labels(&x("1")), 0.0, 100.0));
    sim.run_to(330.0);
    assert_eq!(
        sim.log()[1],
        (330.0, "hook/webhook[0]".into(), vec!["X/1:resolved".into()])
    );
    assert_eq!(sim.sent[1].n.reason, NotifyReason::AllAlertsResolved);
    assert_eq!(sim.sent[1].n.alerts[0].ends_at, Some(at(100.0)));
    assert!(
        sim.d.groups().is_empty(),
        "the group is dropped after the resolved notification"
    );
    // Only clean-ups remain: the stored alert goes at the next alert GC,
    // the log entry when it has expired (2 × repeat_interval).
    sim.run_to(2000.0);
    assert_eq!(sim.d.alerts().count(), 0);
    assert_eq!(sim.d.nflog().count(), 1);
    sim.run_to(330.0 + 2.0 * 3600.0 + 900.0);
    assert_eq!(sim.d.nflog().count(), 0);
    assert_eq!(sim.d.next_deadline(), None);
    sim.run_to(5000.0);
    assert_eq!(sim.sent.len(), 2);
}

#[test]
fn send_resolved_false_gets_no_resolved_alerts() {
    let mut sim = Sim::new(
        r#"
route:
  receiver: hooks
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
receivers:
  - name: hooks
    webhook_configs:
      - url: http://127.0.0.1:5001/with-resolved
      - url: http://127.0.0.1:5001/without-resolved
        send_resolved: false
"#,
    );
    sim.insert(alert(&labels(&x("1")), 0.0));
    sim.insert(alert(&labels(&x("2")), 0.0));
    sim.run_to(100.0);
    assert_eq!(sim.sent.len(), 2);
    sim.insert(resolved(&labels(&x("2")), 0.0, 100.0));
    sim.run_to(330.0);
    // Only the integration with send_resolved learns of the resolution.
    assert_eq!(
        sim.log()[2..],
        [(
            330.0,
            "hooks/webhook[0]".into(),
            vec!["X/1:firing".into(), "X/2:resolved".into()]
        )]
    );
    assert_eq!(sim.sent[2].n.reason, NotifyReason::NewResolvedAlerts);
    sim.run_to(700.0);
    assert_eq!(sim.sent.len(), 3, "nothing changed at 630");
    sim.insert(resolved(&labels(&x("1")), 0.0, 700.0));
    sim.run_to(930.0);
    // All resolved: webhook[0] gets it; webhook[1] is only logged.
    assert_eq!(
        sim.log()[3..],
        [(
            930.0,
            "hooks/webhook[0]".into(),
            vec!["X/1:resolved".into()]
        )]
    );
    assert!(sim.d.groups().is_empty());
    let logged: Vec<String> = sim
        .d
        .nflog()
        .map(|(k, e)| format!("{} {}", k.integration, e.firing.len()))
        .collect();
    assert_eq!(logged, ["webhook[0] 0", "webhook[1] 0"]);
}

#[test]
fn alert_older_than_group_wait_flushes_at_once() {
    let mut sim = Sim::new(HOOK);
    sim.insert(alert(&labels(&x("1")), -60.0));
    assert_eq!(sim.d.next_deadline(), Some(at(0.0)));
    sim.run_to(0.0);
    assert_eq!(
        sim.log(),
        [(0.0, "hook/webhook[0]".into(), vec!["X/1:firing".into()])]
    );
}

#[test]
fn group_by_all_none_and_labels() {
    let run = |group_by: &str| {
        let mut sim =
            Sim::new(&HOOK.replace("group_by: [alertname]", &format!("group_by: {group_by}")));
        sim.insert(alert(&[("alertname", "X"), ("instance", "1")], 0.0));
        sim.insert(alert(&[("alertname", "X"), ("instance", "2")], 0.0));
        sim.insert(alert(&[("alertname", "Y"), ("instance", "1")], 0.0));
        sim.run_to(30.0);
        let mut keys: Vec<String> = sim.sent.iter().map(|s| s.n.group_key.clone()).collect();
        keys.sort();
        keys
    };
    assert_eq!(
        run("[alertname]"),
        [r#"{}:{alertname="X"}"#, r#"{}:{alertname="Y"}"#]
    );
    assert_eq!(run("[]"), ["{}:{}"]);
    assert_eq!(
        run("['...']"),
        [
            r#"{}:{alertname="X", instance="1"}"#,
            r#"{}:{alertname="X", instance="2"}"#,
            r#"{}:{alertname="Y", instance="1"}"#
        ]
    );
}

#[test]
fn continue_notifies_each_matching_route() {
    let mut sim = Sim::new(
        r#"
route:
  receiver: default
  group_wait: 10s
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['team="db"']
      receiver: db
receivers:
  - name: default
    webhook_configs: [{url: 'http://127.0.0.1:1/default'}]
  - name: pager
    pagerduty_configs: [{routing_key: 'k'}]
  - name: db
    webhook_configs: [{url: 'http://127.0.0.1:1/db'}]
"#,
    );
    sim.insert(alert(
        &[
            ("alertname", "Down"),
            ("severity", "critical"),
            ("team", "db"),
        ],
        0.0,
    ));
    sim.run_to(10.0);
    let mut got: Vec<(String, String)> = sim
        .sent
        .iter()
        .map(|s| (s.target(), s.n.group_key.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "db/webhook[0]".to_string(),
                r#"{}/{team="db"}:{}"#.to_string()
            ),
            (
                "pager/pagerduty[0]".to_string(),
                r#"{}/{severity="critical"}:{}"#.to_string()
            ),
        ]
    );
    let pd = sim.sent.iter().find(|s| s.n.receiver == "pager").unwrap();
    assert_eq!(
        pd.n.dedup_key,
        lookout_alerting::dispatch::group_key_hash(r#"{}/{severity="critical"}:{}"#)
    );
}

#[test]
fn failed_delivery_is_retried_next_interval() {
    let mut sim = Sim::new(HOOK);
    sim.failing.insert("hook".into(), true);
    sim.insert(alert(&labels(&x("1")), 0.0));
    sim.run_to(30.0);
    sim.failing.insert("hook".into(), false);
    sim.run_to(700.0);
    let times: Vec<(f64, NotifyReason)> = sim.sent.iter().map(|s| (s.at, s.n.reason)).collect();
    // Nothing was logged for the failure, so 330 is a first notification
    // again; 630 has nothing new.
    assert_eq!(
        times,
        [
            (30.0, NotifyReason::FirstNotification),
            (330.0, NotifyReason::FirstNotification)
        ]
    );
}

#[test]
fn unreported_flush_expires_at_its_deadline() {
    let mut d = Dispatcher::new(config(HOOK));
    d.insert(alert(&labels(&x("1")), 0.0), at(0.0)).unwrap();
    let first = d.flush_due(at(30.0));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].retry_deadline, at(330.0));
    // While the flush is outstanding the group is not flushed again.
    assert_eq!(d.next_deadline(), Some(at(330.0)));
    assert!(d.flush_due(at(329.0)).is_empty());
    // The deadline passes unreported: failed, and flushed again.
    let second = d.flush_due(at(330.0));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].reason, NotifyReason::FirstNotification);
    assert!(
        d.report(&first[0].id, Delivery::Delivered, at(331.0))
            .is_err(),
        "too late"
    );
    d.report(&second[0].id, Delivery::Delivered, at(331.0))
        .unwrap();
    assert!(d.flush_due(at(631.0)).is_empty());
}

#[test]
fn resolve_timeout_ends_alerts_that_are_not_refreshed() {
    let mut sim = Sim::new(HOOK);
    let mut a = alert(&labels(&x("1")), 0.0);
    a.ends_at = None;
    sim.insert(a.clone());
    // Another alert of another group is refreshed every minute, as a rule
    // engine does; it stays firing.
    let mut b = alert(&[("alertname", "Refreshed")], 0.0);
    b.ends_at = None;
    for minute in 0..12 {
        sim.run_to(minute as f64 * 60.0);
        sim.insert(b.clone());
    }
    sim.run_to(700.0);
    let x_log: Vec<(f64, Vec<String>)> = sim
        .sent
        .iter()
        .filter(|s| s.n.group_labels.get("alertname").map(String::as_str) == Some("X"))
        .map(|s| (s.at, s.alerts()))
        .collect();
    // Ends 5m (resolve_timeout) after its last update: resolved at 330.
    assert_eq!(
        x_log,
        [
            (30.0, vec!["X/1:firing".into()]),
            (330.0, vec!["X/1:resolved".into()])
        ]
    );
    let refreshed: Vec<Vec<String>> = sim
        .sent
        .iter()
        .filter(|s| s.n.group_labels.get("alertname").map(String::as_str) == Some("Refreshed"))
        .map(|s| s.alerts())
        .collect();
    assert_eq!(refreshed, [vec!["Refreshed:firing".to_string()]]);
}

#[test]
fn acknowledged_group_sends_no_repeats_until_it_changes() {
    let mut sim = Sim::new(HOOK);
    sim.insert(alert(&labels(&x("1")), 0.0));
    sim.run_to(100.0);
    sim.d
        .acknowledge(r#"{}:{alertname="X"}"#, at(100.0))
        .unwrap();
    assert!(sim.d.acknowledge("{}:{nope}", at(100.0)).is_err());
    sim.run_to(8000.0);
    assert_eq!(sim.sent.len(), 1, "repeats at 3930 and 7830 suppressed");
    sim.insert(alert(&labels(&x("2")), 8000.0));
    sim.run_to(8130.0);
    assert_eq!(sim.sent.len(), 2);
    assert_eq!(sim.sent[1].at, 8130.0);
    assert_eq!(sim.sent[1].alerts(), ["X/1:firing", "X/2:firing"]);
    // The log entry of the 30s notification expired (2 × repeat_interval)
    // while repeats were held back, so this counts as a first notification.
    assert_eq!(sim.sent[1].n.reason, NotifyReason::FirstNotification);
    assert!(
        sim.d.acknowledgement(r#"{}:{alertname="X"}"#).is_none(),
        "change clears the ack"
    );
    sim.run_to(12_100.0);
    assert_eq!(
        sim.sent[2].n.reason,
        NotifyReason::RepeatIntervalElapsed,
        "repeats resume"
    );
}

#[test]
fn snapshot_restore_continues_where_it_stopped() {
    let script = |sim: &mut Sim, upto: f64| {
        let steps: [(f64, Option<lookout_alerting::Alert>); 5] = [
            (0.0, Some(alert(&labels(&x("1")), 0.0))),
            (45.0, Some(alert(&labels(&x("2")), 45.0))),
            (200.0, Some(resolved(&labels(&x("1")), 0.0, 200.0))),
            (1000.0, Some(alert(&[("alertname", "Y")], 1000.0))),
            (5000.0, None),
        ];
        for (t, a) in steps {
            if t > upto {
                break;
            }
            sim.run_to(t);
            if let Some(a) = a {
                sim.insert(a);
            }
        }
    };
    let mut straight = Sim::new(HOOK);
    script(&mut straight, 6000.0);

    let mut first = Sim::new(HOOK);
    script(&mut first, 100.0);
    let json = serde_json::to_string(&first.d.snapshot()).unwrap();
    let silences = first.d.silences().snapshot();
    let snapshot: DispatcherSnapshot = serde_json::from_str(&json).unwrap();
    let mut second = Sim::new(HOOK);
    second.d = Dispatcher::restore(
        config(HOOK),
        lookout_alerting::Silences::restore(silences),
        snapshot,
        first.now,
    );
    second.now = first.now;
    second.sent = first.sent.clone();
    for (t, a) in [
        (200.0, Some(resolved(&labels(&x("1")), 0.0, 200.0))),
        (1000.0, Some(alert(&[("alertname", "Y")], 1000.0))),
        (5000.0, None),
    ] {
        second.run_to(t);
        if let Some(a) = a {
            second.insert(a);
        }
    }
    assert_eq!(second.log(), straight.log());
    assert!(straight.log().len() >= 4);
}

#[test]
fn reload_rebuilds_groups_without_repeating_notifications() {
    let mut sim = Sim::new(HOOK);
    sim.insert(alert(&labels(&x("1")), 0.0));
    sim.run_to(100.0);
    let changed = HOOK.replace("group_interval: 5m", "group_interval: 2m");
    sim.d.reload(config(&changed), at(100.0));
    // The rebuilt group flushes at once (its alert is older than
    // group_wait) but the notification log knows it was sent.
    sim.run_to(100.0);
    assert_eq!(sim.sent.len(), 1);
    sim.insert(alert(&labels(&x("2")), 150.0));
    sim.run_to(220.0);
    assert_eq!(
        sim.log()[1],
        (
            220.0,
            "hook/webhook[0]".into(),
            vec!["X/1:firing".into(), "X/2:firing".into()]
        )
    );
}

#[test]
fn alerts_are_merged_and_validated() {
    let mut d = Dispatcher::new(config(HOOK));
    assert!(
        d.insert(lookout_alerting::Alert::new(ls(&[]), at(0.0)), at(0.0))
            .is_err()
    );
    let mut bad = alert(&[("alertname", "X")], 10.0);
    bad.ends_at = Some(at(5.0));
    assert!(d.insert(bad, at(10.0)).is_err());
    d.insert(alert(&[("alertname", "X")], 10.0), at(10.0))
        .unwrap();
    // The same alert again with a later start keeps the earlier one.
    d.insert(alert(&[("alertname", "X")], 20.0), at(20.0))
        .unwrap();
    let stored = d.alerts().next().unwrap();
    assert_eq!(stored.starts_at, at(10.0));
    assert_eq!(stored.updated_at, at(20.0));
}
