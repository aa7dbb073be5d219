//! Bad input gets a clear error naming what is wrong, and changes nothing
//! already installed or stored.

use std::path::Path;

use crate::support::{Lookout, Result};

/// Everything on disk that an install or a config could change.
fn snapshot(lookout: &Lookout) -> Result<(String, Vec<String>)> {
    let inspect = lookout.ok(&["plugin", "inspect", "http", "--json"])?;
    let mut files = Vec::new();
    for dir in ["plugins", "cache"] {
        for entry in std::fs::read_dir(lookout.data.path().join(dir))? {
            let entry = entry?;
            files.push(format!(
                "{dir}/{} {}",
                entry.file_name().to_string_lossy(),
                entry.metadata()?.len()
            ));
        }
    }
    files.sort();
    Ok((inspect, files))
}

fn install_fails(lookout: &Lookout, bytes: &[u8], file: &str, expected: &str) -> Result {
    let path = lookout.data.path().join(file);
    std::fs::write(&path, bytes)?;
    let out = lookout.run(&["plugin", "install", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{file} was accepted");
    assert!(
        stderr.contains(expected),
        "{file}: expected `{expected}` in: {stderr}"
    );
    assert!(
        stderr.contains(file),
        "{file}: the error should name the file: {stderr}"
    );
    Ok(())
}

fn check_fails(lookout: &Lookout, config: &str, expected: &[&str]) -> Result {
    let path = lookout.data.path().join("bad.toml");
    std::fs::write(&path, config)?;
    for args in [
        vec!["check", path.to_str().unwrap()],
        vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            path.to_str().unwrap(),
        ],
    ] {
        let out = lookout.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted {config}");
        for e in expected {
            assert!(stderr.contains(e), "{args:?}: expected `{e}` in: {stderr}");
        }
    }
    Ok(())
}

#[test]
fn bad_plugins_and_configs_are_refused_and_change_nothing() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    let before = snapshot(&lookout)?;

    install_fails(
        &lookout,
        b"#!/bin/sh\necho not wasm\n",
        "script.wasm",
        "not a WebAssembly file",
    )?;
    // The smallest valid core module: magic + version 1.
    install_fails(
        &lookout,
        b"\0asm\x01\0\0\0",
        "core.wasm",
        "core WebAssembly module, not a component",
    )?;
    // The smallest valid component: magic + component version/layer; it exports nothing.
    install_fails(
        &lookout,
        b"\0asm\x0d\0\x01\0",
        "empty.wasm",
        "implements none of lookout's worlds",
    )?;
    install_fails(
        &lookout,
        b"\0asm\x0d\0\x01\0\x99garbage",
        "corrupt.wasm",
        "invalid component",
    )?;
    let missing = lookout.run(&["plugin", "install", "/nonexistent/plugin.wasm"]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/plugin.wasm")
    );

    check_fails(
        &lookout,
        "[[jobs]]\nname = \"web\"\nplugin = \"http\"\ncron = \"*/5 * * *\"\ntargets = [\"http://127.0.0.1:1/\"]\n",
        &["bad.toml:4:", "cron", "4 fields"],
    )?;
    check_fails(
        &lookout,
        "[[jobs]]\nname = \"web\"\nplugin = \"http\"\ncron = \"0 99 * * *\"\ntargets = [\"http://127.0.0.1:1/\"]\n",
        &["bad.toml:4:", "not a valid cron expression"],
    )?;
    check_fails(
        &lookout,
        "[[jobs]]\nname = \"web\"\nplugin = \"http\"\nevery = \"15s\"\ntargets = [\"http://127.0.0.1:1/\"]\ntimout = \"5s\"\n",
        &["bad.toml:6:", "unknown field `timout`"],
    )?;
    check_fails(
        &lookout,
        "[[jobs]]\nname = \"web\"\nplugin = \"htp\"\nevery = \"15s\"\ntargets = [\"http://127.0.0.1:1/\"]\n",
        &["bad.toml:3:", "plugin `htp`, which is not installed"],
    )?;

    assert_eq!(
        snapshot(&lookout)?,
        before,
        "a refused input changed what was installed"
    );
    assert!(!Path::new(&lookout.data.path().join("plugins/candidate.wasm")).exists());
    Ok(())
}

#[test]
fn bad_alerting_input_is_named_and_changes_nothing() -> Result {
    use crate::notifiers::Receiver;
    use crate::support::wait_for;
    use std::time::Duration;

    let lookout = Lookout::new();
    lookout.install("lookout_plugin_webhook")?;
    lookout.install("lookout_plugin_slack")?;
    let dir = lookout.data.path();
    let refused = |file: &str, text: &str, expected: &[&str]| -> Result {
        std::fs::write(dir.join(file), text)?;
        let out = lookout.run(&["check", dir.join(file).to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::ensure!(!out.status.success(), "{file} was accepted");
        for e in expected {
            anyhow::ensure!(err.contains(e), "{file}: expected {e:?} in: {err}");
        }
        // serve refuses it the same way, before binding anything.
        std::fs::write(
            dir.join("refused.toml"),
            format!("[alerting]\nconfig = \"{file}\"\n"),
        )?;
        let served = lookout.serve_file(&dir.join("refused.toml"));
        let err = match served {
            Ok(_) => anyhow::bail!("serve started with {file}"),
            Err(e) => e.to_string(),
        };
        for e in expected {
            anyhow::ensure!(
                err.contains(e),
                "serve with {file}: expected {e:?} in: {err}"
            );
        }
        Ok(())
    };
    refused(
        "bad-matcher.yml",
        "route:\n  receiver: hook\n  routes:\n    - receiver: hook\n      matchers: ['severity=~\"(unclosed\"']\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: 'http://127.0.0.1:1/'\n",
        &["bad-matcher.yml:5", "unclosed group"],
    )?;
    refused(
        "unknown-receiver.yml",
        "route:\n  receiver: hook\n  routes:\n    - receiver: pager\n      matchers: [severity=page]\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: 'http://127.0.0.1:1/'\n",
        &["unknown-receiver.yml:4", "undefined receiver \"pager\""],
    )?;

    // A running lookout: bad API bodies are 400s naming the problem, and
    // nothing is stored.
    let chat = Receiver::start(200, "text/plain", "ok");
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: chat\n  group_wait: 100ms\nreceivers:\n  - name: chat\n    slack_configs:\n      - api_url: '{}'\n        channel: '#ops'\n        title: '{{{{ .CommonLabels.alertname '\n",
            chat.url("/slack")
        ),
    )?;
    let served = lookout.serve("[alerting]\nconfig = \"alertmanager.yml\"\n")?;
    let token = lookout.token()?;
    let post = |path: &str, body: &str| served.send_json(&token, "POST", path, body);
    let (status, body) = post(
        "/api/v2/silences",
        r#"{"matchers":[{"name":"job","value":"(oops","isRegex":true}],"startsAt":"2030-01-01T00:00:00Z","endsAt":"2030-01-02T00:00:00Z","createdBy":"t","comment":"c"}"#,
    )?;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("(oops"), "the bad matcher is named: {body}");
    // Label names are UTF-8 as in Alertmanager 0.27+, but never empty.
    let (status, body) = post("/api/v2/alerts", r#"[{"labels":{"":"x","alertname":"A"}}]"#)?;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("label"), "the bad label is named: {body}");
    let (status, body) = post(
        "/api/v2/alerts",
        r#"[{"labels":{"alertname":"A"},"startsAt":"yesterday"}]"#,
    )?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(r#"startsAt \"yesterday\" is not an RFC 3339 time"#),
        "{body}"
    );
    let (status, body) = post("/api/v2/alerts", r#"{"not":"a list"}"#)?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(served.get("/api/v2/silences")?.1.trim(), "[]");
    assert_eq!(served.get("/api/v2/alerts")?.1.trim(), "[]");

    // A template that does not parse fails its notification for good, with
    // the template named; lookout goes on.
    let (status, body) = post("/api/v2/alerts", r#"[{"labels":{"alertname":"Broken"}}]"#)?;
    assert_eq!(status, 200, "{body}");
    let dead = wait_for(Duration::from_secs(20), "a dead letter", || {
        let history = served.data("/api/v1/alerts/history")?;
        Ok(history
            .as_array()
            .and_then(|h| h.iter().find(|e| e["kind"] == "dead_letter"))
            .cloned())
    })?;
    let detail = dead["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(".CommonLabels.alertname") && detail.contains("template"),
        "{dead}"
    );
    assert!(chat.bodies().is_empty(), "nothing was sent");
    let (_, metrics) = served.get("/metrics")?;
    for series in [
        r#"lookout_notifications_dead_letters_total{receiver="chat",integration="slack"} 1"#,
        r#"lookout_notifications_failed_total{receiver="chat",integration="slack",reason="plugin_config"} 1"#,
        r#"lookout_notification_latency_seconds_count{integration="slack"} 1"#,
        "lookout_notification_outbox_depth 0",
    ] {
        assert!(metrics.contains(series), "{series} in:\n{metrics}");
    }
    assert_eq!(served.get("/healthz")?.0, 200);
    Ok(())
}
