//! Rules → Alertmanager-style routing → notifier plugins, end to end:
//! delivery with Alertmanager's webhook payload, amtool against lookout's
//! v2 API, queued notifications surviving kill -9, and the alert history.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::notifiers::Receiver;
use crate::support::{Lookout, Result, wait_for};

const RULES: &str = "groups:\n  - name: liveness\n    interval: 300ms\n    rules:\n      - alert: JobAlive\n        expr: up == 1\n        labels: {severity: critical}\n        annotations: {summary: '{{ $labels.job }} is up'}\n";

fn setup(lookout: &Lookout, hook: &str) -> Result<String> {
    lookout.install("lookout_plugin_noop")?;
    lookout.install("lookout_plugin_webhook")?;
    let dir = lookout.data.path();
    std::fs::write(dir.join("rules.yml"), RULES)?;
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 200ms\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '{hook}'\n"
        ),
    )?;
    Ok("[rules]\nfiles = [\"rules.yml\"]\n\n[alerting]\nconfig = \"alertmanager.yml\"\n\n[[jobs]]\nname = \"idle\"\nplugin = \"noop\"\nevery = \"200ms\"\ntargets = [\"x\"]\n".into())
}

#[test]
fn firing_rule_is_delivered_as_alertmanager_webhook() -> Result {
    let receiver = Receiver::start(200, "text/plain", "");
    let lookout = Lookout::new();
    let config = setup(&lookout, &receiver.url("/hook"))?;
    let served = lookout.serve(&config)?;
    let body = wait_for(Duration::from_secs(30), "a webhook delivery", || {
        Ok(receiver.bodies().into_iter().next())
    })?;
    assert_eq!(body["version"], "4");
    assert_eq!(body["receiver"], "hook");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["groupLabels"]["alertname"], "JobAlive");
    assert_eq!(body["groupKey"], "{}:{alertname=\"JobAlive\"}");
    assert_eq!(body["alerts"][0]["labels"]["job"], "idle");
    assert_eq!(body["alerts"][0]["annotations"]["summary"], "idle is up");
    assert_eq!(body["commonLabels"]["severity"], "critical");

    served.history_kinds_with(&["firing", "notified"])?;

    // amtool against lookout's v2 API: add, query and expire a silence; query
    // alerts. Changing state takes the API token, given as amtool's HTTP
    // client configuration.
    let url = format!("http://{}", served.addr);
    let http_config = lookout.data.path().join("amtool-http.yml");
    std::fs::write(
        &http_config,
        format!("authorization:\n  credentials: {}\n", lookout.token()?),
    )?;
    let refused = Command::new("amtool")
        .arg(format!("--alertmanager.url={url}"))
        .args([
            "silence",
            "add",
            "alertname=JobAlive",
            "--comment=x",
            "--author=x",
        ])
        .output()?;
    assert!(!refused.status.success(), "a silence without the token");
    let amtool = |args: &[&str]| -> Result<String> {
        let out = Command::new("amtool")
            .arg(format!("--alertmanager.url={url}"))
            .arg(format!("--http.config.file={}", http_config.display()))
            .args(args)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "amtool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    };
    let id = amtool(&[
        "silence",
        "add",
        "alertname=JobAlive",
        "--comment=maintenance",
        "--author=test",
        "--duration=1h",
    ])?;
    let id = id.trim().to_string();
    assert_eq!(id.len(), 36, "a silence id: {id}");
    let listed = amtool(&["silence", "query", "-q"])?;
    assert!(listed.contains(&id), "{listed}");
    let alerts = amtool(&["alert", "query", "--silenced", "-o", "json"])?;
    let alerts: Value = serde_json::from_str(&alerts)?;
    assert_eq!(alerts[0]["labels"]["alertname"], "JobAlive", "{alerts}");
    assert_eq!(alerts[0]["status"]["silencedBy"][0], id.as_str());
    amtool(&["silence", "expire", &id])?;
    let active = amtool(&["silence", "query", "-q"])?;
    assert!(
        !active.contains(&id),
        "expired silences are not listed as active: {active}"
    );
    let status = amtool(&["config", "show"])?;
    assert!(status.contains("receiver: hook"), "{status}");
    Ok(())
}

#[test]
fn queued_notification_survives_kill_9_with_the_same_group_key() -> Result {
    // The receiver refuses at first: the notification waits in the outbox.
    let receiver = Receiver::start(503, "text/plain", "down");
    let lookout = Lookout::new();
    let config = setup(&lookout, &receiver.url("/hook"))?;
    let served = lookout.serve(&config)?;
    wait_for(Duration::from_secs(30), "a refused attempt", || {
        Ok(Some(()).filter(|_| !receiver.bodies().is_empty()))
    })?;
    let first = receiver.bodies()[0].clone();
    drop(served); // SIGKILL mid-retry

    receiver.answer(200, "text/plain", "");
    let before = receiver.bodies().len();
    let _served = lookout.serve(&config)?;
    let delivered = wait_for(Duration::from_secs(30), "delivery after restart", || {
        Ok(receiver.bodies().get(before).cloned())
    })?;
    assert_eq!(
        delivered["groupKey"], first["groupKey"],
        "same group, same dedup key"
    );
    assert_eq!(
        delivered["alerts"][0]["labels"],
        first["alerts"][0]["labels"]
    );
    Ok(())
}

#[test]
fn seed_alertmanager_configs_are_checked_like_amtool() -> Result {
    let lookout = Lookout::new();
    let refused = lookout.run(&[
        "check",
        crate::support::seed("alertmanager-severity-routes.yml")
            .to_str()
            .unwrap(),
    ]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("undefined receiver \"default\""),
        "{err}"
    );
    let ok = lookout
        .command()
        .args([
            "check",
            crate::support::seed("alertmanager-slack-email.yml")
                .to_str()
                .unwrap(),
        ])
        .env(
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T/B/X",
        )
        .env("SMTP_PASSWORD", "secret")
        .output()?;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // An unset ${VAR} is an error naming it.
    let unset = lookout.run(&[
        "check",
        crate::support::seed("alertmanager-slack-email.yml")
            .to_str()
            .unwrap(),
    ]);
    let err = String::from_utf8_lossy(&unset.stderr);
    assert!(
        !unset.status.success() && err.contains("SLACK_WEBHOOK_URL"),
        "{err}"
    );
    Ok(())
}

#[test]
fn any_installed_notifier_plugin_is_a_receiver_of_lookouts_own_config() -> Result {
    let receiver = Receiver::start(200, "text/plain", "");
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_webhook")?;
    lookout.install("lookout_plugin_noop")?;
    let own = format!(
        "[[alerting.receivers]]\nname = \"team\"\nplugin = \"webhook\"\nconfig = {{ url = \"{}\" }}\n",
        receiver.url("/team")
    );
    // A probe is not a notifier: refused, naming the line.
    let dir = lookout.data.path();
    std::fs::write(
        dir.join("wrong.toml"),
        "[[alerting.receivers]]\nname = \"x\"\nplugin = \"noop\"\n",
    )?;
    let out = lookout.run(&["check", dir.join("wrong.toml").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("wrong.toml:3") && err.contains("notifier"),
        "{err}"
    );

    // Without an Alertmanager file, alerts go to lookout's first receiver.
    let served = lookout.serve(&own)?;
    let token = lookout.token()?;
    let post = |served: &crate::support::Served, name: &str| -> Result {
        let (status, body) = served.send_json(
            &token,
            "POST",
            "/api/v2/alerts",
            &format!(r#"[{{"labels":{{"alertname":"{name}"}}}}]"#),
        )?;
        anyhow::ensure!(status == 200, "{status} {body}");
        Ok(())
    };
    post(&served, "ToTeam")?;
    // The default route waits Alertmanager's 30 s group_wait.
    let body = wait_for(Duration::from_secs(45), "the team receiver", || {
        Ok(receiver.bodies().into_iter().next())
    })?;
    assert_eq!(body["receiver"], "team");
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "ToTeam");
    drop(served);

    // An Alertmanager file's routes may name it.
    std::fs::write(
        dir.join("alertmanager.yml"),
        "route:\n  receiver: nobody\n  group_wait: 100ms\n  routes:\n    - {receiver: team, matchers: [alertname=Routed]}\nreceivers:\n  - name: nobody\n",
    )?;
    let served = lookout.serve(&format!(
        "{own}\n[alerting]\nconfig = \"alertmanager.yml\"\n"
    ))?;
    post(&served, "Routed")?;
    wait_for(Duration::from_secs(20), "the routed alert", || {
        Ok(receiver
            .bodies()
            .into_iter()
            .find(|b| b["alerts"][0]["labels"]["alertname"] == "Routed"))
    })?;
    Ok(())
}

#[test]
fn the_seed_slack_email_config_delivers_its_slack_texts() -> Result {
    let slack = Receiver::start(200, "text/plain", "ok");
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_slack")?;
    lookout.install("lookout_plugin_email")?;
    let dir = lookout.data.path();
    std::fs::write(
        dir.join("lookout.toml"),
        format!(
            "[alerting]\nconfig = \"{}\"\n",
            crate::support::seed("alertmanager-slack-email.yml").display()
        ),
    )?;
    let url = slack.url("/services/T/B/X");
    // The file as-is: its ${SLACK_WEBHOOK_URL} and ${SMTP_PASSWORD} come
    // from the environment. Only the warning route is used: the critical
    // one also mails smtp.example.com.
    let served = lookout.serve_file_with_env(
        &dir.join("lookout.toml"),
        &[("SLACK_WEBHOOK_URL", &url), ("SMTP_PASSWORD", "unused")],
    )?;
    let (status, body) = served.send_json(
        &lookout.token()?,
        "POST",
        "/api/v2/alerts",
        r#"[{"labels":{"alertname":"DiskFilling","severity":"warning","service":"db"},
             "annotations":{"summary":"disk 91% full"}}]"#,
    )?;
    anyhow::ensure!(status == 200, "{status} {body}");
    // The seed's group_wait is 10 s.
    let request = wait_for(Duration::from_secs(30), "the Slack message", || {
        Ok(slack.requests().into_iter().next())
    })?;
    assert_eq!(request.path, "/services/T/B/X");
    let message = request.json()?;
    assert_eq!(message["channel"], "#x0tta6bl4-alerts");
    // The seed's title as its bytes are (mojibake of "⚠️" included).
    assert_eq!(
        message["attachments"][0]["title"],
        "‚ö†Ô∏è WARNING: x0tta6bl4"
    );
    assert_eq!(message["attachments"][0]["text"], "disk 91% full");
    Ok(())
}
