//! The prometheus-scrape exporter: a Prometheus configuration loads as-is
//! and its static jobs are scraped into series like Prometheus stores them.

use std::time::Duration;

use crate::support::{Lookout, Result, TargetServer, seed, wait_for};

const EXPOSITION: &str = "# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\napp_requests_total{code=\"200\",job=\"inner\"} 1027\napp_requests_total{code=\"500\"} 3\n# TYPE app_temperature gauge\napp_temperature 21.5\n";

#[test]
fn prometheus_yml_scrape_jobs_become_series() -> Result {
    let exporter = TargetServer::start(200);
    exporter.set_body(EXPOSITION);
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_prometheus_scrape")?;
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    scrape_interval: 300ms\n    scrape_timeout: 250ms\n    static_configs:\n      - targets: ['{}']\n        labels: {{env: test}}\n  - job_name: discovered\n    consul_sd_configs:\n      - server: 'consul:8500'\n",
        exporter.addr
    );
    let path = lookout.data.path().join("prometheus.yml");
    std::fs::write(&path, &config)?;
    let check = lookout.ok(&["check", path.to_str().unwrap()])?;
    assert!(
        check.contains("job \"discovered\" skipped") && check.contains("consul_sd_configs"),
        "{check}"
    );

    let served = lookout.serve_file(&path)?;
    let query = |q: &str| {
        served.data(&format!(
            "/api/v1/query?query={}",
            crate::query_api::encode(q)
        ))
    };
    let rows = wait_for(Duration::from_secs(20), "scraped series", || {
        Ok(Some(query("app_requests_total")?)
            .filter(|d| d["result"].as_array().is_some_and(|r| r.len() == 2)))
    })?;
    let ok = rows["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"]["code"] == "200")
        .unwrap()
        .clone();
    assert_eq!(ok["metric"]["job"], "app");
    assert_eq!(ok["metric"]["instance"], exporter.addr.to_string());
    assert_eq!(ok["metric"]["env"], "test");
    assert_eq!(
        ok["metric"]["exported_job"], "inner",
        "honor_labels: false keeps the scraped job as exported_job"
    );
    assert_eq!(ok["value"][1], "1027");
    assert_eq!(query("up{job=\"app\"}")?["result"][0]["value"][1], "1");
    assert_eq!(
        query("scrape_samples_scraped{job=\"app\"}")?["result"][0]["value"][1],
        "3"
    );
    assert_eq!(query("app_temperature")?["result"][0]["value"][1], "21.5");

    // An exporter answering 500 is a failed scrape: up 0, the series go stale.
    exporter.set_status(500);
    exporter.set_body("broken\n");
    wait_for(
        Duration::from_secs(20),
        "up == 0 after a failed scrape",
        || {
            Ok(Some(()).filter(|_| {
                query("up{job=\"app\"}").is_ok_and(|d| d["result"][0]["value"][1] == "0")
            }))
        },
    )?;
    wait_for(Duration::from_secs(20), "stale series disappear", || {
        Ok(Some(()).filter(|_| {
            query("app_temperature")
                .is_ok_and(|d| d["result"].as_array().is_some_and(|r| r.is_empty()))
        }))
    })?;
    Ok(())
}

#[test]
fn seed_prometheus_configs_load() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_prometheus_scrape")?;
    let out = lookout.ok(&["check", seed("prometheus-scrape.yml").to_str().unwrap()])?;
    assert!(out.contains("job \"agents\" skipped"), "{out}");
    assert!(out.contains("ok (5 jobs, 5 targets)"), "{out}");
    let out = lookout.ok(&["check", seed("prometheus-tuning.yml").to_str().unwrap()])?;
    assert!(out.contains("ok (0 jobs"), "{out}");
    Ok(())
}

#[test]
fn http_json_values_become_series_with_labels_from_the_document() -> Result {
    let api = TargetServer::start(200);
    api.set_body(
        r#"{"status": {"uptime": 3600.5}, "build": {"version": "1.4.2"},
            "queues": [{"name": "mail", "depth": 12}, {"name": "push", "depth": 3}]}"#,
    );
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http_json")?;
    let served = lookout.serve(&format!(
        r#"[[jobs]]
name = "app"
plugin = "http-json"
every = "300ms"
targets = ["{}"]
config = {{ metrics = [
  {{ name = "app_queue_depth", each = "queues", path = "depth", labels = {{ queue = "{{name}}" }} }},
  {{ name = "app_uptime_seconds", path = "status.uptime" }},
  {{ name = "app_info", value = 1, labels = {{ version = "{{build.version}}" }} }},
] }}
"#,
        api.url()
    ))?;
    let query = |q: &str| {
        served.data(&format!(
            "/api/v1/query?query={}",
            crate::query_api::encode(q)
        ))
    };
    let rows = wait_for(Duration::from_secs(20), "the queue series", || {
        Ok(Some(query("app_queue_depth")?)
            .filter(|d| d["result"].as_array().is_some_and(|r| r.len() == 2)))
    })?;
    let depth = |queue: &str| {
        rows["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["metric"]["queue"] == queue)
            .map(|r| (r["metric"]["job"].clone(), r["value"][1].clone()))
    };
    assert_eq!(depth("mail"), Some(("app".into(), "12".into())));
    assert_eq!(depth("push"), Some(("app".into(), "3".into())));
    assert_eq!(
        query("app_uptime_seconds")?["result"][0]["value"][1],
        "3600.5"
    );
    assert_eq!(
        query("app_info")?["result"][0]["metric"]["version"],
        "1.4.2"
    );
    assert_eq!(query("up{job=\"app\"}")?["result"][0]["value"][1], "1");

    // Not JSON: the collection fails, `up` goes to 0.
    api.set_body("<html>maintenance</html>");
    wait_for(Duration::from_secs(20), "up 0", || {
        Ok((query("up{job=\"app\"}")?["result"][0]["value"][1] == "0").then_some(()))
    })?;
    let last = served.results("app")?;
    let failed = last
        .iter()
        .rev()
        .find(|r| r["outcome"] != "success")
        .cloned();
    assert!(
        failed.is_some_and(|r| r["message"].as_str().is_some_and(|m| m.contains("no JSON"))),
        "the failure says why"
    );
    Ok(())
}
