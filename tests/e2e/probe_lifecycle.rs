//! The walking skeleton end to end: install the http probe, serve a
//! config against a server that answers 200, then 500, then stops
//! listening; the API shows success, then `status`, then `connect`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{Lookout, Result, TargetServer, wait_for};

fn newest(results: &[Value]) -> Option<&Value> {
    results.last()
}

#[test]
fn http_probe_reports_success_then_status_then_connect() -> Result {
    let mut server = TargetServer::start(200);
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    let mut served = lookout.serve(&format!(
        r#"
[[jobs]]
name = "web"
plugin = "http"
every = "300ms"
timeout = "250ms"
targets = ["{}"]
"#,
        server.url()
    ))?;

    let ok = wait_for(Duration::from_secs(20), "a successful probe", || {
        Ok(newest(&served.results("web")?)
            .filter(|r| r["success"] == true)
            .cloned())
    })?;
    assert_eq!(ok["outcome"], "success");
    assert_eq!(ok["plugin"], "http");
    let sample = |r: &Value, name: &str| {
        r["samples"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .map(|s| s["value"].as_f64().unwrap())
    };
    assert_eq!(sample(&ok, "probe_success"), Some(1.0), "{ok}");
    assert_eq!(sample(&ok, "probe_http_status_code"), Some(200.0), "{ok}");
    assert!(sample(&ok, "probe_duration_seconds").is_some(), "{ok}");

    server.set_status(500);
    let failed = wait_for(Duration::from_secs(20), "a probe failing on status", || {
        Ok(newest(&served.results("web")?)
            .filter(|r| r["success"] == false)
            .cloned())
    })?;
    assert_eq!(failed["failure_reason"], "status", "{failed}");
    assert_eq!(failed["outcome"], "target_failure");
    assert_eq!(sample(&failed, "probe_http_status_code"), Some(500.0));
    assert_eq!(sample(&failed, "probe_success"), Some(0.0));

    server.stop();
    let refused = wait_for(
        Duration::from_secs(20),
        "a probe failing on connect",
        || {
            Ok(newest(&served.results("web")?)
                .filter(|r| r["failure_reason"] == "connect")
                .cloned())
        },
    )?;
    assert_eq!(refused["success"], false);

    // The results were stored in order and filter by target and time.
    let all = served.results("web")?;
    let reasons: Vec<&str> = all
        .iter()
        .map(|r| r["failure_reason"].as_str().unwrap_or("ok"))
        .collect();
    let first_status = reasons.iter().position(|r| *r == "status").unwrap();
    let first_connect = reasons.iter().position(|r| *r == "connect").unwrap();
    assert!(
        reasons[..first_status].iter().all(|r| *r == "ok"),
        "{reasons:?}"
    );
    assert!(first_status < first_connect);
    let since = refused["started_ms"].as_f64().unwrap() / 1000.0;
    let recent = served.data(&format!(
        "/api/v1/results?job=web&target={}&since={since}",
        server.url()
    ))?;
    assert!(
        recent
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["started_ms"].as_f64().unwrap() / 1000.0 >= since)
    );

    // A probe finding its target down is not a plugin failure: no back-off.
    // The job board counts a run just after its result is stored, so wait
    // until it has counted every run the results above showed.
    let jobs = wait_for(
        Duration::from_secs(10),
        "the board to count the runs",
        || {
            let jobs = served.data("/api/v1/jobs")?;
            let counted = jobs[0]["targets"][0]["runs"].as_u64().unwrap_or(0);
            Ok((counted >= all.len() as u64).then_some(jobs))
        },
    )?;
    let target = &jobs[0]["targets"][0];
    assert_eq!(jobs[0]["name"], "web");
    assert_eq!(target["consecutive_plugin_failures"], 0, "{jobs}");
    assert!(target["backoff_until_ms"].is_null(), "{jobs}");
    assert!(target["runs"].as_u64().unwrap() >= 3, "{jobs}");

    let plugins = served.data("/api/v1/plugins")?;
    assert_eq!(plugins[0]["name"], "http");
    assert_eq!(plugins[0]["world"], "probe");

    let (status, metrics) = served.get("/metrics")?;
    assert_eq!(status, 200);
    assert!(
        metrics
            .contains("lookout_invocations_total{plugin=\"http\",job=\"web\",outcome=\"success\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lookout_invocation_failures_total{plugin=\"http\",reason=\"connect\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("lookout_invocation_duration_seconds_count{plugin=\"http\"}"));
    promtool_check_metrics(&metrics)?;
    assert_eq!(served.get("/healthz")?, (200, "ok\n".to_string()));
    assert!(served.is_running());
    Ok(())
}

/// `promtool check metrics` (Debian's `prometheus`, installed by .ci/run)
/// must find nothing wrong with lookout's /metrics.
fn promtool_check_metrics(metrics: &str) -> Result {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "promtool not found ({e}): install Debian's `prometheus` (.ci/run does)"
            )
        })?;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())?;
    let out = promtool.wait_with_output()?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {report}"
    );
    Ok(())
}

#[test]
fn acknowledged_results_survive_kill_9() -> Result {
    let server = TargetServer::start(200);
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    let config = format!(
        "[[jobs]]\nname = \"web\"\nplugin = \"http\"\nevery = \"200ms\"\ntimeout = \"150ms\"\ntargets = [\"{}\"]\n",
        server.url()
    );
    let served = lookout.serve(&config)?;
    let seen = wait_for(Duration::from_secs(20), "five stored results", || {
        Ok(Some(served.results("web")?).filter(|r| r.len() >= 5))
    })?;
    drop(served); // SIGKILL: no shutdown path runs

    let restarted = lookout.serve(&config)?;
    let after = restarted.results("web")?;
    for r in &seen {
        assert!(
            after.iter().any(|a| a["started_ms"] == r["started_ms"]),
            "result {r} was acknowledged, then lost"
        );
    }
    Ok(())
}

/// What blackbox_exporter leaves out: the reason of every failure as a
/// series, N-of-M confirmation beside the raw verdict, and a faster pace
/// while failing.
#[test]
fn failures_are_confirmed_n_of_m_and_probed_faster() -> Result {
    let server = TargetServer::start(200);
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    let served = lookout.serve(&format!(
        r#"
[[jobs]]
name = "web"
plugin = "http"
every = "3s"
every_while_failing = "300ms"
confirm = "2/3"
timeout = "250ms"
targets = ["{}"]
"#,
        server.url()
    ))?;
    let instant = |query: &str| -> Result<Vec<Value>> {
        let q: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
        Ok(served.data(&format!("/api/v1/query?query={q}"))?["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    };
    let value = |query: &str| -> Result<Option<String>> {
        Ok(instant(query)?
            .first()
            .and_then(|s| s["value"][1].as_str().map(str::to_string)))
    };
    wait_for(Duration::from_secs(10), "a confirmed success", || {
        Ok((value("probe_success_confirmed")?.as_deref() == Some("1")).then_some(()))
    })?;

    server.set_status(500);
    wait_for(Duration::from_secs(10), "a confirmed failure", || {
        Ok((value("probe_success_confirmed")?.as_deref() == Some("0")).then_some(()))
    })?;
    let results = served.results("web")?;
    let failed: Vec<i64> = results
        .iter()
        .filter(|r| r["success"] == false)
        .filter_map(|r| r["started_ms"].as_i64())
        .collect();
    assert!(failed.len() >= 2, "{results:?}");
    // The second failure (the one that confirms) came at the failing pace,
    // not 3 s after the first.
    let gap = failed[1] - failed[0];
    assert!((200..=2000).contains(&gap), "failing probes {gap} ms apart");
    // The raw verdict says 0 from the first failure; the reason is a series.
    assert_eq!(value("probe_success")?.as_deref(), Some("0"));
    let reasons = instant("probe_failure_reason")?;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(reasons[0]["metric"]["reason"], "status");

    server.set_status(200);
    wait_for(
        Duration::from_secs(10),
        "the target confirmed up again",
        || Ok((value("probe_success_confirmed")?.as_deref() == Some("1")).then_some(())),
    )?;
    // The reason went stale with the first success.
    assert!(instant("probe_failure_reason")?.is_empty());
    Ok(())
}
