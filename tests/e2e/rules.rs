//! Prometheus rule files in `serve`, and promtool's rule unit tests.

use std::process::Command;
use std::time::Duration;

use crate::support::{Lookout, Result, seed, wait_for};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("crates/rules/tests/fixtures")
    .join(name)
}

#[test]
fn rules_test_matches_promtool() -> Result {
    let lookout = Lookout::new();
    for (file, code) in [("pass.test.yml", 0), ("fail.test.yml", 1)] {
        let ours = lookout.run(&["rules", "test", fixture(file).to_str().unwrap()]);
        assert_eq!(
            ours.status.code(),
            Some(code),
            "{file}: {}",
            String::from_utf8_lossy(&ours.stdout)
        );
        if let Ok(theirs) = Command::new("promtool")
            .args(["test", "rules"])
            .arg(fixture(file))
            .output()
        {
            assert_eq!(theirs.status.code(), Some(code), "promtool on {file}");
            assert_eq!(
                String::from_utf8_lossy(&ours.stdout),
                String::from_utf8_lossy(&theirs.stdout),
                "{file}"
            );
        }
    }
    Ok(())
}

#[test]
fn alerting_rules_fire_record_and_survive_a_restart() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_noop")?;
    let rules = lookout.data.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: liveness\n    interval: 500ms\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: JobAlive\n        expr: job:up:sum == 1\n        for: 2s\n        labels: {severity: info}\n        annotations: {summary: '{{ $labels.job }} is up ({{ $value }})'}\n",
    )?;
    // A grace period of 0 restores even this short `for` (Prometheus skips
    // alerts whose `for` is under --rules.alert.for-grace-period, 10m).
    let config = "[rules]\nfiles = [\"rules.yml\"]\nfor_grace_period = \"0s\"\n\n[[jobs]]\nname = \"idle\"\nplugin = \"noop\"\nevery = \"250ms\"\ntargets = [\"x\"]\n";
    let served = lookout.serve(config)?;
    let firing = wait_for(Duration::from_secs(30), "JobAlive firing", || {
        let alerts = served.data("/api/v1/alerts")?;
        Ok(alerts["alerts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["state"] == "firing").cloned()))
    })?;
    assert_eq!(firing["labels"]["alertname"], "JobAlive");
    assert_eq!(firing["annotations"]["summary"], "idle is up (1)");
    let rules_api = served.data("/api/v1/rules")?;
    assert_eq!(rules_api["groups"][0]["name"], "liveness");
    assert_eq!(rules_api["groups"][0]["rules"][0]["type"], "recording");
    let recorded = served.data("/api/v1/query?query=job%3Aup%3Asum")?;
    assert_eq!(recorded["result"][0]["value"][1], "1");
    let alerts_series = served.data("/api/v1/query?query=ALERTS%7Balertstate%3D%22firing%22%7D")?;
    assert_eq!(
        alerts_series["result"][0]["metric"]["alertname"],
        "JobAlive"
    );
    let active_at = firing["activeAt"].clone();

    // kill -9, start again: the alert keeps its activeAt instead of waiting `for` again.
    drop(served);
    let served = lookout.serve(config)?;
    let again = wait_for(Duration::from_secs(30), "JobAlive after restart", || {
        let alerts = served.data("/api/v1/alerts")?;
        Ok(alerts["alerts"].as_array().and_then(|a| a.first().cloned()))
    })?;
    assert_eq!(again["activeAt"], active_at, "for state restored from redb");
    Ok(())
}

#[test]
fn seed_rule_files_load_through_a_prometheus_config() -> Result {
    let lookout = Lookout::new();
    let dir = lookout.data.path();
    std::fs::copy(seed("alert-rules.yml"), dir.join("alert-rules.yml"))?;
    std::fs::copy(
        seed("x0tta6bl4-alert-rules.yml"),
        dir.join("x0tta6bl4-alert-rules.yml"),
    )?;
    std::fs::write(
        dir.join("prometheus.yml"),
        "global:\n  evaluation_interval: 15s\nrule_files:\n  - '*-rules.yml'\n",
    )?;
    let out = lookout.ok(&["check", dir.join("prometheus.yml").to_str().unwrap()])?;
    assert!(out.contains("rule groups from 2 files"), "{out}");
    let broken = dir.join("broken-rules.yml");
    std::fs::write(
        &broken,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n",
    )?;
    let out = lookout.run(&["check", dir.join("prometheus.yml").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("broken-rules.yml:"),
        "{err}"
    );
    Ok(())
}
