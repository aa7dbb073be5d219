//! Routing: first matching child, `continue`, fall-back to the parent,
//! inheritance of options, and Alertmanager's route keys and ids.

use lookout_alerting::route::GroupBy;

use crate::support::{config, ls};

const TREE: &str = r#"
route:
  receiver: root
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: ['team="a"']
      receiver: a
      continue: true
      group_interval: 1m
      routes:
        - matchers: ['severity="critical"']
          receiver: a-crit
          group_by: ['...']
        - match_re:
            severity: 'warn|info'
          receiver: a-low
          group_by: []
    - matchers: ['team=~"a|b"']
      receiver: ab
      repeat_interval: 1h
    - matchers: ['team="b"']
      receiver: b-never
receivers: [{name: root}, {name: a}, {name: a-crit}, {name: a-low}, {name: ab}, {name: b-never}]
"#;

fn receivers(c: &lookout_alerting::AmConfig, labels: &[(&str, &str)]) -> Vec<String> {
    c.route
        .match_routes(&ls(labels))
        .into_iter()
        .map(|r| c.route.node(r).opts.receiver.clone())
        .collect()
}

#[test]
fn first_match_continue_and_fallback() {
    let c = config(TREE);
    // a matches and continues; its child a-crit takes it; ab matches next;
    // b-never is not reached because ab has no continue.
    assert_eq!(
        receivers(&c, &[("team", "a"), ("severity", "critical")]),
        ["a-crit", "ab"]
    );
    assert_eq!(
        receivers(&c, &[("team", "a"), ("severity", "info")]),
        ["a-low", "ab"]
    );
    // No child of a matches: a itself.
    assert_eq!(
        receivers(&c, &[("team", "a"), ("severity", "page")]),
        ["a", "ab"]
    );
    assert_eq!(receivers(&c, &[("team", "b")]), ["ab"]);
    // Nothing matches: the root.
    assert_eq!(receivers(&c, &[("team", "c")]), ["root"]);
    assert_eq!(receivers(&c, &[]), ["root"]);
}

#[test]
fn options_are_inherited_unless_set() {
    let c = config(TREE);
    let node = |labels: &[(&str, &str)]| c.route.node(c.route.match_routes(&ls(labels))[0]);
    let crit = node(&[("team", "a"), ("severity", "critical")]);
    assert_eq!(crit.opts.group_by, GroupBy::All);
    assert_eq!(crit.opts.group_wait.as_secs(), 10, "from the root");
    assert_eq!(crit.opts.group_interval.as_secs(), 60, "from a");
    assert_eq!(crit.opts.repeat_interval.as_secs(), 4 * 3600, "default");
    let low = node(&[("team", "a"), ("severity", "warn")]);
    assert_eq!(
        low.opts.group_by,
        GroupBy::Labels(Default::default()),
        "group_by: [] groups everything"
    );
    let ab = node(&[("team", "b")]);
    assert_eq!(
        ab.opts.group_by,
        GroupBy::Labels(["alertname".to_string()].into())
    );
    assert_eq!(ab.opts.repeat_interval.as_secs(), 3600);
    assert_eq!(ab.opts.group_interval.as_secs(), 300);
}

#[test]
fn keys_and_ids_are_alertmanagers() {
    let c = config(TREE);
    let ids: Vec<(&str, &str)> = c
        .route
        .nodes()
        .map(|(_, n)| (n.key.as_str(), n.id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("{}", "{}"),
            (r#"{}/{team="a"}"#, r#"{}/{team="a"}/0"#),
            (
                r#"{}/{team="a"}/{severity="critical"}"#,
                r#"{}/{team="a"}/0/{severity="critical"}/0"#
            ),
            (
                r#"{}/{team="a"}/{severity=~"warn|info"}"#,
                r#"{}/{team="a"}/0/{severity=~"warn|info"}/1"#
            ),
            (r#"{}/{team=~"a|b"}"#, r#"{}/{team=~"a|b"}/1"#),
            (r#"{}/{team="b"}"#, r#"{}/{team="b"}/2"#),
        ]
    );
    let crit = c
        .route
        .by_id(r#"{}/{team="a"}/0/{severity="critical"}/0"#)
        .unwrap();
    assert_eq!(c.route.node(crit).opts.receiver, "a-crit");
}

#[test]
fn matchers_combine_and_sort() {
    let c = config(
        r#"
route:
  receiver: r
  routes:
    - receiver: r
      match: {b: "2"}
      match_re: {a: "x.*"}
      matchers: ['c!="3", d!~"y"', 'e=f']
receivers: [{name: r}]
"#,
    );
    let child = c.route.node(c.route.node(c.route.root()).children[0]);
    assert_eq!(child.key, r#"{}/{a=~"x.*",b="2",c!="3",d!~"y",e="f"}"#);
    assert_eq!(
        receivers(&c, &[("a", "xyz"), ("b", "2"), ("e", "f")]),
        ["r"]
    );
    assert_eq!(
        c.route
            .match_routes(&ls(&[("a", "xyz"), ("b", "2"), ("e", "f")]))[0],
        c.route.node(c.route.root()).children[0]
    );
    assert_eq!(
        c.route
            .match_routes(&ls(&[("a", "zz"), ("b", "2"), ("e", "f")]))[0],
        c.route.root()
    );
}
