//! Silences, inhibition and time intervals in the pipeline, in
//! Alertmanager's order: inhibit → active/mute time intervals → silences.

use chrono::TimeDelta;
use lookout_alerting::silence::ApiMatcher;
use lookout_alerting::{PostableSilence, SilenceState};

use crate::support::{Sim, alert, at, ls, resolved, t0};

const CONFIG: &str = r#"
route:
  receiver: hook
  group_by: [alertname, cluster]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: ['team="batch"']
      receiver: hook
      mute_time_intervals: [weekends]
    - matchers: ['team="tickets"']
      receiver: hook
      active_time_intervals: [business-hours]
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:5001/
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
time_intervals:
  - name: weekends
    time_intervals:
      - weekdays: ['saturday', 'sunday']
  - name: business-hours
    time_intervals:
      - weekdays: ['monday:friday']
        times: [{start_time: '09:00', end_time: '17:00'}]
"#;

fn silence(matchers: &[(&str, &str)], start: f64, end: f64) -> PostableSilence {
    PostableSilence {
        id: None,
        matchers: matchers
            .iter()
            .map(|(n, v)| ApiMatcher {
                name: n.to_string(),
                value: v.to_string(),
                is_regex: false,
                is_equal: true,
            })
            .collect(),
        starts_at: at(start),
        ends_at: at(end),
        created_by: "test".into(),
        comment: "quiet".into(),
    }
}

#[test]
fn silenced_alerts_are_held_back_until_the_silence_ends() {
    let mut sim = Sim::new(CONFIG);
    let id = sim
        .d
        .silences_mut()
        .set(silence(&[("alertname", "Noisy")], 0.0, 400.0), at(0.0))
        .unwrap();
    sim.insert(alert(&[("alertname", "Noisy")], 0.0));
    sim.insert(alert(&[("alertname", "Other")], 0.0));
    sim.run_to(400.0);
    assert_eq!(
        sim.sent.iter().map(|s| s.alerts()).collect::<Vec<_>>(),
        [vec!["Other:firing".to_string()]]
    );
    assert_eq!(
        sim.d.silences().get(&id).unwrap().state(at(401.0)),
        SilenceState::Expired
    );
    sim.run_to(630.0);
    assert_eq!(
        sim.log().last().unwrap(),
        &(
            630.0,
            "hook/webhook[0]".to_string(),
            vec!["Noisy:firing".to_string()]
        )
    );
}

#[test]
fn expiring_a_silence_lets_the_next_flush_send() {
    let mut sim = Sim::new(CONFIG);
    let id = sim
        .d
        .silences_mut()
        .set(silence(&[("alertname", "Noisy")], 0.0, 86_400.0), at(0.0))
        .unwrap();
    sim.insert(alert(&[("alertname", "Noisy")], 0.0));
    sim.run_to(100.0);
    assert!(sim.sent.is_empty());
    sim.d.silences_mut().expire(&id, at(100.0)).unwrap();
    sim.run_to(330.0);
    assert_eq!(sim.sent.len(), 1);
    assert_eq!(sim.sent[0].at, 330.0);
}

#[test]
fn critical_inhibits_warning_in_the_same_cluster() {
    let mut sim = Sim::new(CONFIG);
    sim.insert(alert(
        &[
            ("alertname", "DBDown"),
            ("severity", "critical"),
            ("cluster", "eu"),
        ],
        0.0,
    ));
    sim.insert(alert(
        &[
            ("alertname", "DBSlow"),
            ("severity", "warning"),
            ("cluster", "eu"),
        ],
        0.0,
    ));
    sim.insert(alert(
        &[
            ("alertname", "DBSlow"),
            ("severity", "warning"),
            ("cluster", "us"),
        ],
        0.0,
    ));
    sim.run_to(30.0);
    let mut got: Vec<String> = sim.sent.iter().map(|s| s.n.group_key.clone()).collect();
    got.sort();
    assert_eq!(
        got,
        [
            r#"{}:{alertname="DBDown", cluster="eu"}"#,
            r#"{}:{alertname="DBSlow", cluster="us"}"#
        ]
    );
    // The source resolves: the warning is no longer inhibited.
    sim.run_to(100.0);
    sim.insert(resolved(
        &[
            ("alertname", "DBDown"),
            ("severity", "critical"),
            ("cluster", "eu"),
        ],
        0.0,
        100.0,
    ));
    sim.run_to(330.0);
    let at_330: Vec<String> = sim
        .sent_between(300.0, 330.0)
        .iter()
        .flat_map(|s| s.alerts())
        .collect();
    assert!(at_330.contains(&"DBSlow:firing".to_string()), "{at_330:?}");
    assert!(
        at_330.contains(&"DBDown:resolved".to_string()),
        "{at_330:?}"
    );
}

#[test]
fn inhibition_is_not_mutual_for_two_sided_matches() {
    let mut sim = Sim::new(
        r#"
route:
  receiver: hook
  group_by: ['...']
  group_wait: 1s
receivers: [{name: hook, webhook_configs: [{url: 'http://127.0.0.1:1/'}]}]
inhibit_rules:
  - source_matchers: ['alertname="A"']
    target_matchers: ['alertname="A"']
    equal: [cluster]
"#,
    );
    sim.insert(alert(
        &[("alertname", "A"), ("cluster", "eu"), ("instance", "1")],
        0.0,
    ));
    sim.insert(alert(
        &[("alertname", "A"), ("cluster", "eu"), ("instance", "2")],
        0.0,
    ));
    sim.run_to(1.0);
    assert_eq!(sim.sent.len(), 2);
}

#[test]
fn mute_time_interval_holds_notifications_on_weekends() {
    let mut sim = Sim::new(CONFIG);
    // t0 is Monday 10:00 UTC; jump to Saturday.
    let saturday = 5.0 * 86_400.0;
    sim.run_to(saturday);
    sim.insert(alert(
        &[("alertname", "Batch"), ("team", "batch")],
        saturday,
    ));
    sim.run_to(saturday + 3600.0);
    assert!(sim.sent.is_empty());
    let group = &sim.d.groups()[0];
    assert_eq!(group.muted_by, ["weekends"]);
    // Monday 00:00 is 38h after Saturday 10:00: the next tick after that sends.
    let monday = saturday + 38.0 * 3600.0;
    sim.run_to(monday + 300.0);
    assert_eq!(sim.sent.len(), 1);
    assert!(sim.sent[0].at >= monday && sim.sent[0].at < monday + 300.0);
}

#[test]
fn active_time_interval_sends_only_in_business_hours() {
    let mut sim = Sim::new(CONFIG);
    assert_eq!(t0().format("%A %H:%M").to_string(), "Monday 10:00");
    let ticket2 = |sim: &Sim| {
        sim.sent
            .iter()
            .filter(|s| s.n.group_labels.get("alertname").map(String::as_str) == Some("Ticket2"))
            .count()
    };
    // Monday 10:00: inside business hours.
    sim.insert(alert(&[("alertname", "Ticket"), ("team", "tickets")], 0.0));
    sim.run_to(30.0);
    assert_eq!(sim.sent.len(), 1);
    // Monday 18:00: outside; a new alert waits for Tuesday 09:00.
    let evening = 8.0 * 3600.0;
    sim.run_to(evening);
    sim.insert(alert(
        &[("alertname", "Ticket2"), ("team", "tickets")],
        evening,
    ));
    let tuesday_9 = 23.0 * 3600.0;
    sim.run_to(tuesday_9 - 1.0);
    assert_eq!(ticket2(&sim), 0);
    assert_eq!(
        sim.d
            .groups()
            .iter()
            .find(|g| g.labels.get("alertname").map(String::as_str) == Some("Ticket2"))
            .unwrap()
            .muted_by,
        ["business-hours"]
    );
    sim.run_to(tuesday_9 + 300.0);
    assert_eq!(ticket2(&sim), 1);
    // The Monday alert repeated only within business hours.
    for s in &sim.sent {
        let local = at(s.at);
        let minutes = local.format("%H").to_string().parse::<u32>().unwrap();
        assert!((9..17).contains(&minutes), "sent at {local}");
    }
    let _ = (ls(&[]), TimeDelta::zero());
}

#[test]
fn resolved_alerts_muted_by_a_silence_are_dropped_quietly() {
    let mut sim = Sim::new(CONFIG);
    sim.insert(alert(&[("alertname", "X")], 0.0));
    sim.run_to(30.0);
    sim.run_to(40.0);
    sim.d
        .silences_mut()
        .set(silence(&[("alertname", "X")], 40.0, 10_000.0), at(40.0))
        .unwrap();
    sim.run_to(50.0);
    sim.insert(resolved(&[("alertname", "X")], 0.0, 50.0));
    sim.run_to(330.0);
    assert_eq!(sim.sent.len(), 1, "no resolved notification while silenced");
    assert!(
        sim.d.groups().is_empty(),
        "the flush succeeded, so the group is gone"
    );
}
