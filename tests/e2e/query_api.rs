//! Probe results as Prometheus series, read back through the
//! Prometheus-compatible query API the way Grafana reads them.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Lookout, Result, TargetServer, wait_for};

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn probe_series_answer_prometheus_queries() -> Result {
    let server = TargetServer::start(200);
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    let served = lookout.serve(&format!(
        "[[jobs]]\nname = \"web\"\nplugin = \"http\"\nevery = \"250ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\n",
        server.url()
    ))?;
    let instant = |q: &str| served.data(&format!("/api/v1/query?query={}", encode(q)));

    // probe_success{job, instance} exactly as Prometheus scraping blackbox stores it.
    let vector = wait_for(
        Duration::from_secs(20),
        "probe_success in the query API",
        || {
            Ok(Some(instant("probe_success")?)
                .filter(|d| d["result"].as_array().is_some_and(|r| !r.is_empty())))
        },
    )?;
    assert_eq!(vector["resultType"], "vector");
    let sample = &vector["result"][0];
    assert_eq!(sample["metric"]["__name__"], "probe_success");
    assert_eq!(sample["metric"]["job"], "web");
    assert_eq!(sample["metric"]["instance"], server.url());
    assert_eq!(sample["value"][1], "1");
    assert_eq!(instant("up{job=\"web\"}")?["result"][0]["value"][1], "1");
    assert_eq!(
        instant("sum by (job) (probe_http_status_code)")?["result"][0]["value"][1],
        "200"
    );
    assert_eq!(instant("1+1")?["result"][1], "2", "Grafana's health check");

    // A range query over what has been collected so far.
    std::thread::sleep(Duration::from_millis(1500));
    let now = crate::support::now_secs();
    let range = served.data(&format!(
        "/api/v1/query_range?query={}&start={}&end={}&step=0.25",
        encode("probe_success{job=\"web\"}"),
        now - 1.0,
        now
    ))?;
    assert_eq!(range["resultType"], "matrix");
    let values = range["result"][0]["values"].as_array().unwrap();
    assert!(values.len() >= 4, "{range}");
    assert!(values.iter().all(|v| v[1] == "1"));

    // Metadata endpoints Grafana calls.
    let series = served.data(&format!(
        "/api/v1/series?{}={}",
        encode("match[]"),
        encode("up")
    ))?;
    assert_eq!(series[0]["job"], "web", "{series}");
    let labels = served.data("/api/v1/labels")?;
    for name in ["__name__", "instance", "job"] {
        assert!(
            labels.as_array().unwrap().iter().any(|l| l == name),
            "{labels}"
        );
    }
    let names = served.data("/api/v1/label/__name__/values")?;
    for name in [
        "up",
        "probe_success",
        "probe_duration_seconds",
        "scrape_duration_seconds",
    ] {
        assert!(
            names.as_array().unwrap().iter().any(|n| n == name),
            "{name} missing from {names}"
        );
    }
    assert_eq!(
        served.data("/api/v1/label/job/values")?,
        serde_json::json!(["web"])
    );
    let metadata = served.data("/api/v1/metadata")?;
    assert_eq!(metadata["probe_success"][0]["type"], "gauge", "{metadata}");
    let build = served.data("/api/v1/status/buildinfo")?;
    assert!(build["version"].as_str().unwrap().starts_with("2."));

    // Every panel of the seed Grafana dashboard runs through query_range.
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(crate::support::seed(
        "grafana-dashboard.json",
    ))?)?;
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert_eq!(exprs.len(), 4);
    for expr in exprs {
        let data = served.data(&format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=15",
            encode(&expr),
            now - 3600.0,
            now
        ))?;
        assert_eq!(data["resultType"], "matrix", "{expr}");
    }
    Ok(())
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "expr" {
                    out.push(v.as_str().unwrap_or_default().to_string());
                } else {
                    collect_exprs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_exprs(i, out)),
        _ => {}
    }
}

/// Bad PromQL and bad ranges get Prometheus' errors; the server carries on.
#[test]
fn bad_queries_get_prometheus_errors() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_noop")?;
    let mut served = lookout.serve("")?;
    let error = |path: &str| -> Result<(u16, Value)> {
        let (status, body) = served.get(path)?;
        Ok((status, serde_json::from_str(&body)?))
    };
    let (status, e) = error(&format!(
        "/api/v1/query?query={}",
        encode("sum(rate(x[5m])")
    ))?;
    assert_eq!(status, 400);
    assert_eq!(e["errorType"], "bad_data");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid parameter \"query\""),
        "{e}"
    );
    let (status, e) = error("/api/v1/query_range?query=up&start=100&end=50&step=15")?;
    assert_eq!(status, 400);
    assert_eq!(
        e["error"],
        "invalid parameter \"end\": end timestamp must not be before start time"
    );
    let (status, e) = error("/api/v1/query_range?query=up&start=0&end=86400&step=1")?;
    assert_eq!(status, 400);
    assert_eq!(
        e["error"],
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    );
    let (status, e) = error("/api/v1/query_range?query=up&start=0&end=100&step=0")?;
    assert_eq!(status, 400);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("zero or negative query resolution step"),
        "{e}"
    );
    let (status, e) = error("/api/v1/query_range?query=up&start=yesterday&end=100&step=15")?;
    assert_eq!(status, 400);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("invalid parameter \"start\""),
        "{e}"
    );
    let (status, e) = error("/api/v1/series")?;
    assert_eq!(
        (status, e["error"].as_str().unwrap()),
        (400, "no match[] parameter provided")
    );
    assert!(served.is_running());
    assert_eq!(served.get("/healthz")?.0, 200);
    Ok(())
}
