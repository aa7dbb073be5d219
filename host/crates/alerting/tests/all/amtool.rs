//! Agreement with the real Alertmanager: `amtool check-config` and lookout
//! must accept and refuse the same files, and `amtool config routes test`
//! must route probe alerts to the same receivers.
//!
//! amtool comes from Debian's `prometheus-alertmanager` (`cargo xtask test`
//! installs it). Without it the test is skipped, except in CI, where it
//! fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use lookout_alerting::parse_config_with_env;

use crate::config::{expanded, fixture_files, lookout_only, probes, routed_receivers};
use crate::seed_configs::seed;
use crate::support::test_env;

fn amtool() -> Option<&'static str> {
    let found = Command::new("amtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("amtool");
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "amtool is missing in CI: apt-get install prometheus-alertmanager"
    );
    eprintln!("amtool not installed (apt-get install prometheus-alertmanager): skipping");
    None
}

/// Writes the text Alertmanager should see to a scratch file.
fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lookout-alerting-amtool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn amtool_accepts(bin: &str, path: &Path) -> (bool, String) {
    let out = Command::new(bin)
        .arg("check-config")
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn amtool_routes(bin: &str, path: &Path, labels: &lookout_alerting::LabelSet) -> String {
    let out = Command::new(bin)
        .args(["config", "routes", "test"])
        .arg(format!("--config.file={}", path.display()))
        .args(labels.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "amtool routes test failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Case {
    name: String,
    text: String,
}

fn cases() -> Vec<Case> {
    let mut out: Vec<Case> = ["valid", "invalid"]
        .iter()
        .flat_map(|d| fixture_files(d))
        .map(|p| Case {
            name: p.file_name().unwrap().to_string_lossy().to_string(),
            text: std::fs::read_to_string(&p).unwrap(),
        })
        .collect();
    for name in [
        "alertmanager-slack-email.yml",
        "alertmanager-severity-routes.yml",
    ] {
        if let Some(text) = seed(name) {
            out.push(Case {
                name: name.to_string(),
                text,
            });
        }
    }
    out
}

#[test]
fn amtool_and_lookout_agree_on_every_fixture() {
    let Some(bin) = amtool() else { return };
    let mut compared = 0;
    for case in cases() {
        let ours = parse_config_with_env(&case.text, &case.name, &test_env);
        if lookout_only(&case.text) {
            assert!(
                ours.is_err(),
                "{}: lookout-only refusal expected",
                case.name
            );
            continue;
        }
        let path = scratch(&case.name, &expanded(&case.text));
        let (theirs, output) = amtool_accepts(bin, &path);
        assert_eq!(
            ours.is_ok(),
            theirs,
            "{}: lookout says {:?}, amtool says {}",
            case.name,
            ours.as_ref().map(|_| "valid").map_err(ToString::to_string),
            output.trim()
        );
        compared += 1;
        if let Ok(config) = ours {
            for labels in probes(&case.text) {
                assert_eq!(
                    routed_receivers(&config, &labels),
                    amtool_routes(bin, &path, &labels),
                    "{}: routing of {labels:?}",
                    case.name
                );
            }
        }
    }
    assert!(compared >= 30, "only {compared} files compared");
}

#[test]
fn amtool_and_lookout_route_the_slack_email_seed_alike() {
    let Some(bin) = amtool() else { return };
    let Some(text) = seed("alertmanager-slack-email.yml") else {
        return;
    };
    let config = parse_config_with_env(&text, "seed.yml", &test_env).unwrap();
    let path = scratch("seed-slack-email.yml", &expanded(&text));
    for probe in [
        "severity=critical",
        "severity=warning",
        "severity=info",
        "alertname=X",
    ] {
        let labels = probe
            .split_whitespace()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        assert_eq!(
            routed_receivers(&config, &labels),
            amtool_routes(bin, &path, &labels),
            "{probe}"
        );
    }
}
