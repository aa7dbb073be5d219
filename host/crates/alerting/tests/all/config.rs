//! Config fixtures: every valid file against a golden description of what
//! lookout made of it, every invalid one against its golden error.
//! `BLESS=1 cargo test -p lookout-alerting` rewrites the golden files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use lookout_alerting::config::expand::expand_env;
use lookout_alerting::route::GroupBy;
use lookout_alerting::timeutil::format_duration;
use lookout_alerting::{AmConfig, LabelSet, parse_config_with_env};

use crate::support::{fixtures, golden, ls, test_env};

/// The `.yml` files of a fixture directory, sorted.
pub fn fixture_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join("config").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

/// The `# probe: a=b c=d` lines of a fixture.
pub fn probes(text: &str) -> Vec<LabelSet> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# probe:"))
        .map(|l| {
            l.split_whitespace()
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("probe pairs are k=v");
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

/// Whether a fixture is refused only by lookout (Alertmanager accepts it).
pub fn lookout_only(text: &str) -> bool {
    text.starts_with("# lookout-only")
}

/// The text Alertmanager would read: environment references expanded.
pub fn expanded(text: &str) -> String {
    expand_env(text, &test_env).unwrap_or_else(|_| text.to_string())
}

/// Receivers an alert is routed to, joined as `amtool config routes test`
/// prints them.
pub fn routed_receivers(config: &AmConfig, labels: &LabelSet) -> String {
    config
        .route
        .match_routes(labels)
        .into_iter()
        .map(|r| config.route.node(r).opts.receiver.clone())
        .collect::<Vec<_>>()
        .join(",")
}

fn describe(config: &AmConfig, text: &str) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "resolve_timeout: {}",
        format_duration(config.global.resolve_timeout)
    )
    .unwrap();
    writeln!(out, "routes:").unwrap();
    for (id, node) in config.route.nodes() {
        let depth = {
            let mut d = 0;
            let mut p = node.parent;
            while let Some(x) = p {
                d += 1;
                p = config.route.node(x).parent;
            }
            d
        };
        let o = &node.opts;
        let group_by = match &o.group_by {
            GroupBy::All => "...".to_string(),
            GroupBy::Labels(l) => l.iter().cloned().collect::<Vec<_>>().join(","),
        };
        writeln!(
            out,
            "{:indent$}#{} {} -> {} group_by=[{}] wait={} interval={} repeat={}{}{}{}",
            "",
            id,
            node.id,
            o.receiver,
            group_by,
            format_duration(o.group_wait),
            format_duration(o.group_interval),
            format_duration(o.repeat_interval),
            if node.continue_matching {
                " continue"
            } else {
                ""
            },
            if o.mute_time_intervals.is_empty() {
                String::new()
            } else {
                format!(" mute={:?}", o.mute_time_intervals)
            },
            if o.active_time_intervals.is_empty() {
                String::new()
            } else {
                format!(" active={:?}", o.active_time_intervals)
            },
            indent = 2 + depth * 2
        )
        .unwrap();
    }
    writeln!(out, "receivers:").unwrap();
    for r in &config.receivers {
        let integrations: Vec<String> = r
            .integrations()
            .iter()
            .map(|(i, sr)| format!("{i}{}", if *sr { "+resolved" } else { "" }))
            .collect();
        writeln!(out, "  {}: [{}]", r.name, integrations.join(", ")).unwrap();
    }
    for (i, rule) in config.inhibit_rules.iter().enumerate() {
        let list = |ms: &[lookout_alerting::Matcher]| {
            ms.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        writeln!(
            out,
            "inhibit #{i}: source={{{}}} target={{{}}} equal={:?}",
            list(&rule.source_matchers),
            list(&rule.target_matchers),
            rule.equal
        )
        .unwrap();
    }
    for (name, ti) in &config.time_intervals {
        writeln!(
            out,
            "time interval {name}: {} interval(s){}",
            ti.intervals.len(),
            if ti.deprecated_section {
                " (mute_time_intervals)"
            } else {
                ""
            }
        )
        .unwrap();
    }
    for labels in probes(text) {
        let routes: Vec<String> = config
            .route
            .match_routes(&labels)
            .iter()
            .map(|r| format!("#{r}"))
            .collect();
        writeln!(
            out,
            "probe {labels:?} -> {} ({})",
            routed_receivers(config, &labels),
            routes.join(" ")
        )
        .unwrap();
    }
    writeln!(out, "--- redacted config ---").unwrap();
    out.push_str(&config.redacted_yaml());
    out
}

fn golden_path(file: &Path) -> PathBuf {
    file.with_extension("golden")
}

#[test]
fn valid_fixtures_load_as_described() {
    let files = fixture_files("valid");
    assert!(files.len() >= 5);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let config =
            parse_config_with_env(&text, &name, &test_env).unwrap_or_else(|e| panic!("{e}"));
        golden(&golden_path(&file), &describe(&config, &text));
    }
}

#[test]
fn invalid_fixtures_fail_with_file_line_and_message() {
    let files = fixture_files("invalid");
    assert!(files.len() >= 20);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let err = match parse_config_with_env(&text, &name, &test_env) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => e,
        };
        assert_eq!(err.file, name);
        assert!(
            err.line > 0 || name == "no-route.yml",
            "{name}: no line in {err}"
        );
        golden(&golden_path(&file), &format!("{err}\n"));
    }
}

#[test]
fn undefined_receiver_names_it_at_its_line() {
    let yaml = "route:\n  receiver: team\n  routes:\n    - receiver: team\n    - receiver: ghost\nreceivers:\n  - name: team\n";
    let err = parse_config_with_env(yaml, "am.yml", &test_env).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"am.yml:5: undefined receiver "ghost" used in route"#
    );
}

#[test]
fn env_references_expand_in_values_only() {
    let yaml = "route:\n  receiver: hook\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '${HOOK_URL}'\n";
    let c = crate::support::config(yaml);
    let url = c.receivers[0].webhook_configs[0].url.as_ref().unwrap();
    assert_eq!(url.expose(), "http://127.0.0.1:5001/hook");
    // The original keeps the reference; nothing secret leaks through it.
    assert!(c.original().contains("${HOOK_URL}"));
    assert!(c.redacted_yaml().contains("<secret>"));
    assert!(!c.redacted_yaml().contains("127.0.0.1:5001"));

    let missing = yaml.replace("HOOK_URL", "NOT_SET_ANYWHERE");
    let err = parse_config_with_env(&missing, "am.yml", &test_env).unwrap_err();
    assert_eq!(err.line, 6);
    assert!(err.message.contains("\"NOT_SET_ANYWHERE\""), "{err}");
}

#[test]
fn defaults_match_alertmanager() {
    let c = crate::support::config(
        "route:\n  receiver: r\nreceivers:\n  - name: r\n    slack_configs:\n      - api_url: https://hooks.slack.com/x\n    webhook_configs:\n      - url: http://a:1/\n    pagerduty_configs:\n      - routing_key: k\n",
    );
    let root = c.route.node(c.route.root());
    assert_eq!(format_duration(root.opts.group_wait), "30s");
    assert_eq!(format_duration(root.opts.group_interval), "5m");
    assert_eq!(format_duration(root.opts.repeat_interval), "4h");
    assert_eq!(format_duration(c.global.resolve_timeout), "5m");
    let r = &c.receivers[0];
    assert!(!r.slack_configs[0].send_resolved);
    assert_eq!(
        r.slack_configs[0].title,
        r#"{{ template "slack.default.title" . }}"#
    );
    assert_eq!(
        r.slack_configs[0].text,
        r#"{{ template "slack.default.text" . }}"#
    );
    assert!(r.webhook_configs[0].send_resolved);
    assert!(r.pagerduty_configs[0].send_resolved);
    assert_eq!(
        r.pagerduty_configs[0].url.as_deref(),
        Some("https://events.pagerduty.com/v2/enqueue")
    );
    assert_eq!(r.pagerduty_configs[0].details.len(), 4);
    assert_eq!(r.pagerduty_configs[0].source, r.pagerduty_configs[0].client);
    let _ = ls(&[]);
}

#[test]
fn empty_file_has_no_route() {
    let err = parse_config_with_env("", "empty.yml", &test_env).unwrap_err();
    assert_eq!(err.message, "no route provided in config");
    let err = parse_config_with_env("# only a comment\n", "c.yml", &test_env).unwrap_err();
    assert_eq!(err.message, "no route provided in config");
}
