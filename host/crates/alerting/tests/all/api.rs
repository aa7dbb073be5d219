//! The v2 API models as amtool reads them.

use lookout_alerting::api::{AlertFilter, PostableAlert, VersionInfo};
use lookout_alerting::matcher::parse_matchers;
use lookout_alerting::{Dispatcher, PostableSilence};
use serde_json::json;

use crate::support::{alert, at, config};

const CONFIG: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
receivers:
  - name: team
    webhook_configs: [{url: 'http://127.0.0.1:1/'}]
  - name: pager
    pagerduty_configs: [{routing_key: 'super-secret-key'}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname]
"#;

fn dispatcher() -> Dispatcher {
    let mut d = Dispatcher::new(config(CONFIG));
    d.insert(
        alert(&[("alertname", "Disk"), ("severity", "critical")], 0.0),
        at(0.0),
    )
    .unwrap();
    d.insert(
        alert(&[("alertname", "Disk"), ("severity", "warning")], 0.0),
        at(0.0),
    )
    .unwrap();
    d.insert(
        alert(&[("alertname", "Cpu"), ("severity", "warning")], 0.0),
        at(0.0),
    )
    .unwrap();
    d
}

#[test]
fn gettable_alerts_carry_status_and_receivers() {
    let mut d = dispatcher();
    let silence: PostableSilence = serde_json::from_value(json!({
        "matchers": [{"name": "alertname", "value": "Cpu", "isRegex": false, "isEqual": true}],
        "startsAt": "2024-05-06T10:00:00.000Z",
        "endsAt": "2024-05-06T12:00:00.000Z",
        "createdBy": "amtool",
        "comment": "cpu is fine"
    }))
    .unwrap();
    let sid = d.silences_mut().set(silence, at(0.0)).unwrap();

    let alerts = d.api_alerts(&AlertFilter::default(), at(1.0));
    assert_eq!(alerts.len(), 3);
    let fps: Vec<&str> = alerts.iter().map(|a| a.fingerprint.as_str()).collect();
    let mut sorted = fps.clone();
    sorted.sort();
    assert_eq!(fps, sorted, "sorted by fingerprint");

    let by_name = |name: &str, sev: &str| {
        alerts
            .iter()
            .find(|a| a.labels["alertname"] == name && a.labels["severity"] == sev)
            .unwrap()
    };
    let crit = by_name("Disk", "critical");
    assert_eq!(crit.status.state, "active");
    let names: Vec<&str> = crit.receivers.iter().map(|r| r.name.as_str()).collect();
    // The critical route continues, but no later sibling matches: only
    // pager (the root is not a fallback once a child matched).
    assert_eq!(names, ["pager"]);
    let warn = by_name("Disk", "warning");
    assert_eq!(warn.status.state, "suppressed");
    assert_eq!(
        warn.status.inhibited_by,
        std::slice::from_ref(&crit.fingerprint)
    );
    let cpu = by_name("Cpu", "warning");
    assert_eq!(cpu.status.silenced_by, std::slice::from_ref(&sid));

    let v = serde_json::to_value(crit).unwrap();
    for key in [
        "annotations",
        "endsAt",
        "fingerprint",
        "receivers",
        "startsAt",
        "status",
        "updatedAt",
        "labels",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["startsAt"], "2024-05-06T10:00:00.000Z");
    assert_eq!(v["status"]["silencedBy"], json!([]));

    // amtool's default query: active only, not silenced or inhibited.
    let filter = AlertFilter {
        silenced: false,
        inhibited: false,
        ..AlertFilter::default()
    };
    assert_eq!(d.api_alerts(&filter, at(1.0)).len(), 1);
    let filter = AlertFilter {
        active: false,
        ..AlertFilter::default()
    };
    assert_eq!(
        d.api_alerts(&filter, at(1.0)).len(),
        2,
        "only the suppressed ones"
    );
    let filter = AlertFilter {
        matchers: parse_matchers("alertname=Disk").unwrap(),
        ..AlertFilter::default()
    };
    assert_eq!(d.api_alerts(&filter, at(1.0)).len(), 2);
    let filter = AlertFilter::default().with_receiver("pag.*").unwrap();
    assert_eq!(d.api_alerts(&filter, at(1.0)).len(), 1);
}

#[test]
fn groups_silences_receivers_and_status() {
    let mut d = dispatcher();
    let groups = d.api_alert_groups(&AlertFilter::default(), at(1.0));
    let summary: Vec<(String, String, usize)> = groups
        .iter()
        .map(|g| {
            (
                g.labels["alertname"].clone(),
                g.receiver.name.clone(),
                g.alerts.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Cpu".into(), "team".into(), 1),
            ("Disk".into(), "pager".into(), 1),
            ("Disk".into(), "team".into(), 1)
        ]
    );
    let g = serde_json::to_value(&groups[0]).unwrap();
    assert_eq!(g["receiver"], json!({"name": "team"}));
    assert_eq!(g["routeLabels"], json!({}));

    let posted = |m: &str, start: f64, end: f64| PostableSilence {
        id: None,
        matchers: parse_matchers(m)
            .unwrap()
            .iter()
            .map(lookout_alerting::silence::ApiMatcher::from_matcher)
            .collect(),
        starts_at: at(start),
        ends_at: at(end),
        created_by: "me".into(),
        comment: "c".into(),
    };
    let later = d
        .silences_mut()
        .set(posted("a=1", 0.0, 500.0), at(0.0))
        .unwrap();
    let sooner = d
        .silences_mut()
        .set(posted("a=2", 0.0, 100.0), at(0.0))
        .unwrap();
    let pending = d
        .silences_mut()
        .set(posted("a=~\"3|4\"", 50.0, 100.0), at(0.0))
        .unwrap();
    let list = d.api_silences(&[], at(10.0));
    let ids: Vec<&str> = list.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [sooner.as_str(), later.as_str(), pending.as_str()]);
    let v = serde_json::to_value(&list[2]).unwrap();
    assert_eq!(v["status"]["state"], "pending");
    assert_eq!(
        v["matchers"][0],
        json!({"name": "a", "value": "3|4", "isRegex": true, "isEqual": true})
    );
    assert_eq!(
        d.api_silences(&parse_matchers("a=1").unwrap(), at(10.0))
            .len(),
        1
    );
    assert_eq!(d.api_silence(&later, at(10.0)).unwrap().id, later);

    let receivers: Vec<String> = d.api_receivers().into_iter().map(|r| r.name).collect();
    assert_eq!(receivers, ["team", "pager"]);

    let status = serde_json::to_value(d.api_status(
        VersionInfo {
            version: "0.1.0".into(),
            ..Default::default()
        },
        at(0.0),
    ))
    .unwrap();
    assert_eq!(status["cluster"]["status"], "disabled");
    assert_eq!(status["versionInfo"]["version"], "0.1.0");
    let original = status["config"]["original"].as_str().unwrap();
    assert!(original.contains("receiver: team"), "{original}");
    assert!(!original.contains("super-secret-key"), "secrets are hidden");
    assert_eq!(status["uptime"], "2024-05-06T10:00:00.000Z");
}

#[test]
fn postable_alerts_default_their_times() {
    let p: PostableAlert = serde_json::from_value(json!({
        "labels": {"alertname": "X"},
        "annotations": {"summary": "s"},
        "generatorURL": "http://prom/graph"
    }))
    .unwrap();
    let a = p.into_alert(at(5.0));
    assert_eq!(a.starts_at, at(5.0));
    assert_eq!(a.ends_at, None);
    let mut d = Dispatcher::new(config(CONFIG));
    d.insert(a, at(5.0)).unwrap();
    let stored = d.alerts().next().unwrap();
    assert!(stored.timeout);
    assert_eq!(stored.ends_at, Some(at(305.0)), "resolve_timeout 5m");
}
