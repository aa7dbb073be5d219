//! A real Prometheus (Debian's `prometheus`) scrapes lookout's /metrics,
//! and sends its alerts to lookout as to an Alertmanager.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::notifiers::Receiver;
use crate::support::{Lookout, Result, http_get, wait_for};

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's `prometheus` on a free port with `config`; extra flags after.
fn start_prometheus(
    dir: &std::path::Path,
    config: &str,
    extra: &[&str],
) -> Result<(Prometheus, std::net::SocketAddr)> {
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config)?;
    let port = free_port()?;
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting prometheus ({e}): install Debian's `prometheus`"))?;
    Ok((Prometheus(child), format!("127.0.0.1:{port}").parse()?))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[test]
fn real_prometheus_scrapes_lookout_metrics() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_noop")?;
    let served = lookout.serve(
        "[[jobs]]\nname = \"idle\"\nplugin = \"noop\"\nevery = \"200ms\"\ntargets = [\"x\"]\n",
    )?;
    let dir = tempfile::tempdir()?;
    let (_prometheus, addr) = start_prometheus(
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: lookout\n    static_configs:\n      - targets: ['{}']\n",
            served.addr
        ),
        &[],
    )?;
    let up = wait_for(
        Duration::from_secs(60),
        "Prometheus scraping lookout",
        || {
            let (_, body) = http_get(addr, "/api/v1/query?query=up%7Bjob%3D%22lookout%22%7D")?;
            let v: serde_json::Value = serde_json::from_str(&body)?;
            Ok(v["data"]["result"][0]["value"][1]
                .as_str()
                .map(str::to_string))
        },
    )?;
    assert_eq!(up, "1", "Prometheus could not scrape lookout's /metrics");
    // Prometheus parsed lookout's own figures, labels intact.
    let found = wait_for(
        Duration::from_secs(30),
        "lookout's counters in Prometheus",
        || {
            let (_, body) = http_get(
                addr,
                "/api/v1/query?query=lookout_invocations_total%7Bjob%3D%22lookout%22%2Cplugin%3D%22noop%22%7D",
            )?;
            let v: serde_json::Value = serde_json::from_str(&body)?;
            Ok(v["data"]["result"]
                .as_array()
                .filter(|r| !r.is_empty())
                .cloned())
        },
    )?;
    assert_eq!(found[0]["metric"]["outcome"], "success");
    Ok(())
}

#[test]
fn real_prometheus_delivers_its_alerts_into_lookouts_routing() -> Result {
    let receiver = Receiver::start(200, "text/plain", "");
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_webhook")?;
    let dir = lookout.data.path();
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 100ms\n  group_interval: 1s\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '{}'\n",
            receiver.url("/hook")
        ),
    )?;
    let served = lookout.serve("[alerting]\nconfig = \"alertmanager.yml\"\n")?;
    let token = lookout.token()?;
    let prom_dir = tempfile::tempdir()?;
    std::fs::write(
        prom_dir.path().join("rules.yml"),
        "groups:\n  - name: peer\n    interval: 1s\n    rules:\n      - alert: FromPrometheus\n        expr: vector(1) > 0\n        labels: {severity: page}\n        annotations: {summary: 'sent by Prometheus'}\n",
    )?;
    // Prometheus sends an alert once, then again every resend delay (1 m
    // by default); the first send can precede its Alertmanager discovery
    // and be dropped, so resend often.
    let (_prometheus, _) = start_prometheus(
        prom_dir.path(),
        &format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n    - authorization:\n        credentials: '{}'\n      static_configs:\n        - targets: ['{}']\n",
            prom_dir.path().join("rules.yml").display(),
            token,
            served.addr
        ),
        &["--rules.alert.resend-delay=1s"],
    )?;
    let body = wait_for(
        Duration::from_secs(60),
        "Prometheus' alert at the webhook",
        || Ok(receiver.bodies().into_iter().next()),
    )?;
    assert_eq!(body["receiver"], "hook");
    assert_eq!(body["status"], "firing");
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "FromPrometheus");
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["annotations"]["summary"], "sent by Prometheus");
    assert!(
        alert["generatorURL"]
            .as_str()
            .is_some_and(|u| u.contains("/graph?g0.expr=")),
        "Prometheus' generator URL: {alert}"
    );
    // And lookout's Alertmanager API shows it as Prometheus sent it.
    let (status, alerts) = served.get("/api/v2/alerts")?;
    assert_eq!(status, 200);
    let alerts: serde_json::Value = serde_json::from_str(&alerts)?;
    assert_eq!(
        alerts[0]["labels"]["alertname"], "FromPrometheus",
        "{alerts}"
    );
    assert_eq!(alerts[0]["receivers"][0]["name"], "hook");
    Ok(())
}
