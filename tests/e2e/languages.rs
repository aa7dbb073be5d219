//! Plugins in other languages than Rust: the first-party `health`
//! (Python, componentize-py), `statuspage` (JavaScript, ComponentizeJS) and
//! `load` (C, wasi-libc) installed and run on a schedule, their results in
//! the API; and `lookout plugin new` projects in every language and world
//! built with the command their README gives, installed and run.
//!
//! The toolchains are the ones `cargo xtask build-polyglot` installs
//! (`$LOOKOUT_TOOLCHAINS`, default `~/.cache/lookout/toolchains`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::support::{Lookout, Result, TargetServer, sample_value, wait_for};

const HEALTH_PASSING: &str = r#"{"status": "warn", "checks": {
  "db:responseTime": [{"componentId": "primary", "status": "pass", "observedValue": 12}],
  "disk": [{"status": "warn"}]}}"#;
const HEALTH_DOWN: &str =
    r#"{"status": "DOWN", "components": {"db": {"status": "DOWN"}, "ping": {"status": "UP"}}}"#;
const STATUSPAGE: &str = r#"{"page": {"id": "x", "name": "Example"},
  "status": {"indicator": "minor", "description": "Partially Degraded Service"},
  "components": [
    {"id": "a", "name": "API", "status": "operational", "group": false},
    {"id": "b", "name": "Webhooks", "status": "partial_outage", "group": false},
    {"id": "g", "name": "Everything", "status": "partial_outage", "group": true}],
  "incidents": [{"id": "i", "name": "Webhooks delayed", "status": "investigating", "impact": "minor"}]}"#;

/// The newest stored result of `job` that satisfies `accept`.
fn newest_where(
    served: &crate::support::Served,
    job: &str,
    accept: impl Fn(&Value) -> bool,
) -> Result<Option<Value>> {
    Ok(served.results(job)?.into_iter().rev().find(|r| accept(r)))
}

#[test]
fn python_javascript_and_c_plugins_run_on_a_schedule_into_the_api() -> Result {
    let health = TargetServer::start(200);
    health.set_body(HEALTH_PASSING);
    let statuspage = TargetServer::start(200);
    statuspage.set_body(STATUSPAGE);
    let lookout = Lookout::new();
    for stem in ["health", "statuspage", "load"] {
        lookout.install(stem)?;
    }
    let served = lookout.serve(&format!(
        r#"
[[jobs]]
name = "health"
plugin = "health"
every = "1s"
timeout = "900ms"
targets = ["{health}"]

[[jobs]]
name = "status"
plugin = "statuspage"
every = "1s"
timeout = "900ms"
targets = ["http://{statuspage}"]
config = {{ components = ["API"] }}

[[jobs]]
name = "status-all"
plugin = "statuspage"
every = "1s"
timeout = "900ms"
targets = ["http://{statuspage}"]

[[jobs]]
name = "load"
plugin = "load"
every = "1s"
timeout = "900ms"
targets = ["localhost"]
"#,
        health = health.url(),
        statuspage = statuspage.addr,
    ))?;
    let within = Duration::from_secs(60);

    // Python: a degraded (`warn`) service is healthy unless configured
    // otherwise; each component is a labelled series.
    let ok = wait_for(within, "a health result", || {
        newest_where(&served, "health", |_| true)
    })?;
    assert_eq!(ok["success"], true, "{ok:#}");
    assert_eq!(ok["plugin"], "health");
    assert_eq!(sample_value(&ok, "probe_health_status", &[])?, 0.5);
    assert_eq!(
        sample_value(
            &ok,
            "probe_health_check_status",
            &[("check", "db:responseTime:primary")]
        )?,
        1.0
    );
    assert_eq!(
        sample_value(&ok, "probe_health_check_status", &[("check", "disk")])?,
        0.5
    );
    assert_eq!(sample_value(&ok, "probe_http_status_code", &[])?, 200.0);
    assert!(
        ok["message"].as_str().unwrap().contains("disk=warn"),
        "{ok:#}"
    );
    health.set_body(HEALTH_DOWN);
    let down = wait_for(within, "a failing health result", || {
        newest_where(&served, "health", |r| r["success"] == false)
    })?;
    assert_eq!(down["failure_reason"], "body", "{down:#}");
    assert_eq!(
        sample_value(&down, "probe_health_check_status", &[("check", "db")])?,
        0.0
    );
    assert_eq!(
        sample_value(&down, "probe_health_check_status", &[("check", "ping")])?,
        1.0
    );

    // JavaScript: the component you depend on decides.
    let status = wait_for(within, "a statuspage result", || {
        newest_where(&served, "status", |_| true)
    })?;
    assert_eq!(status["success"], true, "{status:#}");
    assert_eq!(status["message"], "Partially Degraded Service");
    assert_eq!(
        sample_value(
            &status,
            "probe_statuspage_component_status",
            &[("component", "API")]
        )?,
        0.0
    );
    assert_eq!(
        sample_value(&status, "probe_statuspage_indicator", &[])?,
        2.0
    );
    assert_eq!(
        sample_value(&status, "probe_statuspage_unresolved_incidents", &[])?,
        1.0
    );
    let all = wait_for(within, "a statuspage result for every component", || {
        newest_where(&served, "status-all", |_| true)
    })?;
    assert_eq!(all["success"], false, "{all:#}");
    assert_eq!(all["failure_reason"], "body");
    assert_eq!(all["message"], "down: Webhooks (partial_outage)");
    assert_eq!(
        sample_value(
            &all,
            "probe_statuspage_component_status",
            &[("component", "Webhooks")]
        )?,
        3.0
    );

    // C: the load averages the kernel reports, read through the `files`
    // grant of /proc.
    let load = wait_for(within, "a load result", || {
        newest_where(&served, "load", |_| true)
    })?;
    assert_eq!(load["success"], true, "{load:#}");
    let kernel: Vec<f64> = std::fs::read_to_string("/proc/loadavg")?
        .split_whitespace()
        .take(3)
        .map(|f| f.parse().unwrap())
        .collect();
    for (name, now) in ["node_load1", "node_load5", "node_load15"]
        .iter()
        .zip(&kernel)
    {
        let reported = sample_value(&load, name, &[])?;
        assert!(
            (reported - now).abs() < 2.0,
            "{name}: {reported} vs /proc/loadavg {now}"
        );
    }
    if Path::new("/proc/pressure/cpu").exists() {
        assert!(sample_value(&load, "node_pressure_cpu_waiting_seconds_total", &[])? >= 0.0);
    }

    // What they return is stored as series, queryable with PromQL; the
    // series are appended just after the result is committed.
    for (query, count) in [
        (
            "probe_statuspage_component_status%7Bjob%3D%22status-all%22%7D",
            2,
        ),
        ("node_load1", 1),
    ] {
        let mut answer = Value::Null;
        let found = wait_for(Duration::from_secs(10), query, || {
            answer = served.data(&format!("/api/v1/query?query={query}"))?;
            Ok((answer["result"].as_array().map(Vec::len) == Some(count)).then_some(()))
        });
        assert!(found.is_ok(), "{count} series for {query}: {answer:#}");
    }
    Ok(())
}

/// Where `cargo xtask build-polyglot` put the toolchains.
fn toolchains() -> PathBuf {
    std::env::var_os("LOOKOUT_TOOLCHAINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").unwrap()).join(".cache/lookout/toolchains")
        })
}

/// Runs `sh -c <command>` in `dir` with the toolchains on PATH, as an
/// author would after installing them.
fn build(dir: &Path, command: &str, rust_target: &Path) -> Result {
    let tools = toolchains();
    ensure!(
        tools.join("python/bin/componentize-py").exists() && tools.join("bin/wasm-tools").exists(),
        "toolchains missing in {}: run `cargo xtask build-polyglot`",
        tools.display()
    );
    let mut path = vec![tools.join("python/bin"), tools.join("bin")];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let out = Command::new("sh")
        .args(["-c", command])
        .current_dir(dir)
        .env("PATH", std::env::join_paths(path)?)
        // Rust projects share one build directory, so the SDK's
        // dependencies compile once.
        .env("CARGO_TARGET_DIR", rust_target)
        .output()?;
    if !out.status.success() {
        bail!(
            "`{command}` in {} failed: {}\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[test]
fn plugin_new_projects_build_with_their_readme_command_install_and_run() -> Result {
    let lookout = Lookout::new();
    let projects = tempfile::tempdir()?;
    let rust_target = toolchains().join("scaffold-target");
    let target = TargetServer::start(200);
    target.set_body(r#"{"queue": {"depth": 7}, "healthy": true}"#);
    let csv = projects.path().join("series.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..200 {
        let value = 10.0 + (f64::from(i) / 5.0).sin() + if i == 150 { 30.0 } else { 0.0 };
        text.push_str(&format!(
            "{},{value}\n",
            1_700_000_000_000i64 + i64::from(i) * 15_000
        ));
    }
    std::fs::write(&csv, text)?;
    let notification = projects.path().join("notification.json");
    std::fs::write(
        &notification,
        json!({
            "receiver": "ops", "status": "firing",
            "alerts": [{"status": "firing", "labels": {"alertname": "Down"}, "annotations": {},
                "startsAt": "2024-05-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "", "fingerprint": "a1"}],
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "", "groupKey": "{}", "truncatedAlerts": 0
        })
        .to_string(),
    )?;

    // The C probe checks a file's age: one just written, in a directory
    // granted for the run.
    let fresh_dir = tempfile::tempdir()?;
    let fresh_file = fresh_dir.path().join("heartbeat");
    std::fs::write(&fresh_file, "ok")?;

    for lang in ["rust", "python", "js", "c"] {
        for kind in ["probe", "exporter", "detector", "notifier"] {
            let name = format!("{lang}-{kind}");
            let dir = projects.path().join(&name);
            let created = lookout.ok(&[
                "plugin",
                "new",
                &name,
                "--kind",
                kind,
                "--lang",
                lang,
                "--dir",
                dir.to_str().unwrap(),
            ])?;
            // The README's build command is the one `plugin new` printed.
            let command = created
                .lines()
                .find_map(|l| l.trim().strip_prefix("build"))
                .and_then(|l| l.split_once("&&"))
                .map(|(_, command)| command.trim().to_string())
                .with_context(|| format!("no build line in {created}"))?;
            let readme = std::fs::read_to_string(dir.join("README.md"))?;
            ensure!(
                readme.contains(&command),
                "README of {name} lacks `{command}`:\n{readme}"
            );
            build(&dir, &command, &rust_target)?;
            let component = if lang == "rust" {
                rust_target.join(format!(
                    "wasm32-wasip2/release/{}.wasm",
                    name.replace('-', "_")
                ))
            } else {
                dir.join(format!("{name}.wasm"))
            };
            let installed = lookout.ok(&["plugin", "install", component.to_str().unwrap()])?;
            ensure!(
                installed.contains(&format!("installed {name} 0.1.0 ({kind} plugin)")),
                "{installed}"
            );

            // And it works.
            let out = match kind {
                "probe" if lang == "c" => lookout.run(&[
                    "run",
                    &name,
                    "--target",
                    fresh_file.to_str().unwrap(),
                    "--json",
                    "--grant-files",
                    fresh_dir.path().to_str().unwrap(),
                ]),
                "probe" => lookout.run(&["run", &name, "--target", &target.url(), "--json"]),
                "exporter" => lookout.run(&["run", &name, "--target", &target.url(), "--json"]),
                "detector" => lookout.run(&["detect", &name, "--csv", csv.to_str().unwrap()]),
                _ => lookout.run(&[
                    "notify",
                    &name,
                    "--notification",
                    notification.to_str().unwrap(),
                    "--config",
                    &json!({"url": target.url()}).to_string(),
                    "--grant-http",
                    &target.addr.to_string(),
                ]),
            };
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            match kind {
                "probe" if lang == "c" => {
                    ensure!(out.status.success(), "{name}: {stdout}{stderr}");
                    let result: Value = serde_json::from_str(&stdout)?;
                    // Written when the test began, minutes ago: fresh for the
                    // default `max_age_seconds` (an hour).
                    ensure!(result["success"] == true, "{result:#}");
                    ensure!(
                        sample_value(&result, "probe_file_age_seconds", &[])? < 3600.0,
                        "{result:#}"
                    );
                }
                "probe" => {
                    ensure!(out.status.success(), "{name}: {stdout}{stderr}");
                    let result: Value = serde_json::from_str(&stdout)?;
                    ensure!(
                        sample_value(&result, "probe_http_status_code", &[])? == 200.0,
                        "{result:#}"
                    );
                }
                "exporter" => {
                    ensure!(out.status.success(), "{name}: {stdout}{stderr}");
                    let result: Value = serde_json::from_str(&stdout)?;
                    let expected = if lang == "js" {
                        "js_exporter_queue_depth"
                    } else {
                        "node_load1"
                    };
                    sample_value(&result, expected, &[])?;
                }
                "detector" => {
                    ensure!(out.status.success(), "{name}: {stdout}{stderr}");
                    // The spike (point 150) and nothing before it.
                    let flagged: Vec<usize> = stdout
                        .lines()
                        .skip(1)
                        .enumerate()
                        .filter(|(_, l)| l.ends_with(",1"))
                        .map(|(i, _)| i)
                        .collect();
                    ensure!(
                        flagged.first() == Some(&150),
                        "{name} flagged {flagged:?}:\n{stdout}"
                    );
                }
                _ => ensure!(
                    out.status.success() && stdout.starts_with("delivered: "),
                    "{name}: {stdout}{stderr}"
                ),
            }
            // A notifier whose POST is refused — by the sandbox (no grant)
            // or by a closed port — reports a transient error to retry,
            // never a trap (StarlingMonkey traps when a request body it is
            // still writing breaks).
            if kind == "notifier" && lang != "c" {
                let closed = crate::support::free_addr()?;
                let url = format!("http://{closed}/hook");
                let config = json!({ "url": url }).to_string();
                let grant = closed.to_string();
                let notify = |grants: &[&str]| {
                    let mut args = vec![
                        "notify",
                        &name,
                        "--notification",
                        notification.to_str().unwrap(),
                        "--config",
                        &config,
                    ];
                    args.extend_from_slice(grants);
                    lookout.run(&args)
                };
                for (what, out) in [
                    ("denied", notify(&[])),
                    ("refused", notify(&["--grant-http", &grant])),
                ] {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    ensure!(
                        !out.status.success() && stderr.contains("(plugin_transient)"),
                        "{name}, {what}: {stderr}"
                    );
                }
            }
        }
    }
    Ok(())
}
