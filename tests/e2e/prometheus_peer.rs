//! A real Prometheus (Debian's `prometheus`) scrapes lookout's /metrics.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Lookout, Result, http_get, wait_for};

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: lookout\n    static_configs:\n      - targets: ['{}']\n",
            served.addr
        ),
    )?;
    let port = free_port()?;
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("starting prometheus ({e}): install Debian's `prometheus`")
            })?,
    );
    let addr = format!("127.0.0.1:{port}").parse()?;
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
