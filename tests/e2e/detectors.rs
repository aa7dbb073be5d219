//! Detector jobs end to end: history imported into the tsdb, a detector
//! plugin learning it, anomalies as series and in the intelligence API,
//! learned state surviving kill -9, the `lookout detect` backtest, and bad
//! detector configuration refused with its line.

use std::fmt::Write;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Lookout, Result, now_secs, wait_for};

/// Two hours of 15 s history ending at `end`: `latency_seconds` of
/// instances `a` (steady), `b` (a spike over its last minute) and
/// `queue_depth` of `c` (a jump starting 30 s after b's spike).
fn import_history(lookout: &Lookout, end: i64) -> Result<()> {
    let start = end - 2 * 3600;
    let mut om = String::from("# TYPE latency_seconds gauge\n");
    let steps: Vec<i64> = (start..=end).step_by(15).collect();
    let n = steps.len();
    for instance in ["a", "b"] {
        for (i, t) in steps.iter().enumerate() {
            let wobble = ((i * 7) % 5) as f64 * 0.002;
            let spike = if instance == "b" && i + 4 >= n {
                2.0
            } else {
                0.0
            };
            writeln!(
                om,
                "latency_seconds{{instance=\"{instance}\"}} {} {t}",
                0.1 + wobble + spike
            )?;
        }
    }
    om.push_str("# TYPE queue_depth gauge\n");
    for (i, t) in steps.iter().enumerate() {
        let jump = if i + 2 >= n { 400.0 } else { 0.0 };
        writeln!(
            om,
            "queue_depth{{instance=\"c\"}} {} {t}",
            10.0 + (i % 3) as f64 + jump
        )?;
    }
    om.push_str("# EOF\n");
    import(lookout, &om)
}

fn import(lookout: &Lookout, openmetrics: &str) -> Result<()> {
    let file = lookout.data.path().join("history.om");
    std::fs::write(&file, openmetrics)?;
    lookout.ok(&["tsdb", "import", "openmetrics", file.to_str().unwrap()])?;
    Ok(())
}

fn config(history: &str) -> String {
    format!(
        r#"[[detectors]]
name = "lat"
plugin = "zscore"
series = '{{__name__=~"latency_seconds|queue_depth"}}'
every = "1s"
history = "{history}"
config = {{ window = 240, threshold = 4 }}
"#
    )
}

fn instance(entry: &Value) -> &str {
    entry["labels"]["instance"].as_str().unwrap_or("")
}

#[test]
fn detectors_learn_history_report_anomalies_and_keep_state_over_kill_9() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_zscore")?;
    // History ends a minute ago, leaving room for points added later.
    let end = (now_secs() as i64 / 15) * 15 - 60;
    import_history(&lookout, end)?;
    let served = lookout.serve(&config("3h"))?;

    // The first round learns the imported history: b and c are anomalous now.
    let anomalies = wait_for(Duration::from_secs(30), "two anomalies", || {
        let a = served.data("/api/v1/anomalies")?;
        Ok(Some(a).filter(|a| a.as_array().is_some_and(|a| a.len() >= 2)))
    })?;
    let anomalies = anomalies.as_array().unwrap();
    let found: Vec<&str> = anomalies.iter().map(instance).collect();
    assert!(
        found.contains(&"b") && found.contains(&"c"),
        "{anomalies:?}"
    );
    assert!(
        !found.contains(&"a"),
        "steady series flagged: {anomalies:?}"
    );
    for a in anomalies {
        assert!(a["score"].as_f64().unwrap() >= 4.0, "{a}");
        assert!(a["confidence"].as_f64().unwrap() > 0.0, "{a}");
        assert_eq!(a["detector"], "lat");
        assert_eq!(a["plugin"], "zscore");
    }

    // Insights: one group, b's latency (first to start) as the probable cause.
    let insights = served.data("/api/v1/insights?window=5m")?;
    let group = &insights[0];
    assert_eq!(instance(&group["probable_cause"]), "b", "{insights}");
    let members: Vec<&str> = group["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(instance)
        .collect();
    assert_eq!(members, ["b", "c"], "{insights}");
    assert_eq!(group["active"], true);

    // Outputs are series with the source labels and `detector`.
    let q = |served: &crate::support::Served, query: &str| {
        served.data(&format!(
            "/api/v1/query?query={}",
            crate::query_api::encode(query)
        ))
    };
    // The board is updated before the round's outputs are stored.
    wait_for(Duration::from_secs(30), "three score series", || {
        let scores = q(&served, "anomaly_score{detector=\"lat\"}")?;
        Ok(Some(scores).filter(|s| s["result"].as_array().is_some_and(|a| a.len() == 3)))
    })?;
    let flagged = q(&served, "anomaly{detector=\"lat\"} == 1")?;
    let mut flagged: Vec<&str> = flagged["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"]["instance"].as_str().unwrap())
        .collect();
    flagged.sort();
    assert_eq!(flagged, ["b", "c"]);
    // An alert rule would use it like any metric: the score over 4 for b.
    let over = q(&served, "anomaly_score{instance=\"b\"} > 4")?;
    assert_eq!(over["result"].as_array().unwrap().len(), 1, "{over}");

    // The learned state is committed after the first round…
    let status = wait_for(Duration::from_secs(30), "a checkpoint", || {
        let d = served.data("/api/v1/detectors")?;
        Ok(Some(d[0].clone()).filter(|d| !d["last_checkpoint_ms"].is_null()))
    })?;
    assert_eq!(status["series"], 3, "{status}");
    assert!(status["last_error"].is_null(), "{status}");
    // …so kill -9 loses none of it. While lookout is down, three more
    // points of `a` arrive; restarted with 2 minutes of history (8 points,
    // far fewer than the 30 zscore needs before it scores), the restored
    // detector scores them at once.
    drop(served);
    let mut om = String::from("# TYPE latency_seconds gauge\n");
    for t in [end + 15, end + 30, end + 45] {
        writeln!(om, "latency_seconds{{instance=\"a\"}} 0.104 {t}")?;
    }
    om.push_str("# EOF\n");
    import(&lookout, &om)?;
    let served = lookout.serve(&config("2m"))?;
    assert_eq!(served.data("/api/v1/detectors")?[0]["series"], 3);
    // The anomalies open at the checkpoint are open after the restart, with
    // the same start, though b and c have no new point to judge.
    let after = served.data("/api/v1/anomalies")?;
    let mut reopened: Vec<(&str, &Value)> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (instance(a), &a["started_ms"]))
        .collect();
    reopened.sort_by_key(|(i, _)| *i);
    let mut before: Vec<(&str, &Value)> = anomalies
        .iter()
        .map(|a| (instance(a), &a["started_ms"]))
        .collect();
    before.sort_by_key(|(i, _)| *i);
    assert!(
        before.iter().all(|(_, started)| started.is_i64()),
        "{before:?}"
    );
    assert_eq!(reopened, before, "{after}");
    let insights = served.data("/api/v1/insights?window=5m")?;
    assert_eq!(instance(&insights[0]["probable_cause"]), "b", "{insights}");
    let scored = wait_for(Duration::from_secs(30), "scores after the restart", || {
        let r = served.data(&format!(
            "/api/v1/query?query={}&time={}",
            crate::query_api::encode("anomaly_score{detector=\"lat\",instance=\"a\"}[40s]"),
            end + 45
        ))?;
        let samples = r["result"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(Some(samples).filter(|s| s.len() == 3))
    })?;
    for sample in &scored {
        let score: f64 = sample[1].as_str().unwrap().parse()?;
        assert!(score.is_finite() && score < 4.0, "{scored:?}");
    }
    Ok(())
}

#[test]
fn detect_backtests_a_csv_and_bad_detector_config_is_refused() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_zscore")?;
    lookout.install("lookout_plugin_http")?;
    let mut csv = String::from("timestamp,value\n");
    for i in 0..500 {
        let value = 50.0 + ((i * 13) % 7) as f64 + if i == 400 { 90.0 } else { 0.0 };
        writeln!(csv, "{},{value}", 1_767_225_600 + 60 * i)?;
    }
    let file = lookout.data.path().join("history.csv");
    std::fs::write(&file, &csv)?;
    let out = lookout.ok(&["detect", "zscore", "--csv", file.to_str().unwrap()])?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "timestamp,value,score,anomaly");
    assert_eq!(lines.len(), 501);
    let flagged: Vec<&str> = lines[1..]
        .iter()
        .filter(|l| l.ends_with(",1"))
        .copied()
        .collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert!(flagged[0].starts_with(&format!("{},", 1_767_225_600 + 60 * 400)));
    // Warming up: the first points have no score yet.
    assert!(lines[1].ends_with(",NaN,0"), "{}", lines[1]);

    // The detector's own config errors name the field.
    let bad = lookout.run(&[
        "detect",
        "zscore",
        "--csv",
        file.to_str().unwrap(),
        "--config",
        r#"{"window": 1}"#,
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8(bad.stderr)?.contains("`window`"));

    // Bad detector configuration: its file and line, and nothing starts.
    let check = |config: &str| -> Result<String> {
        let path = lookout.data.path().join("bad.toml");
        std::fs::write(&path, config)?;
        let out = lookout.run(&["check", path.to_str().unwrap()]);
        assert!(!out.status.success(), "{config}");
        Ok(String::from_utf8(out.stderr)? + &String::from_utf8(out.stdout)?)
    };
    let err = check("[[detectors]]\nname = \"x\"\nplugin = \"zscore\"\nseries = 'rate(up[5m'\n")?;
    assert!(
        err.contains("bad.toml:4:") && err.contains("bad PromQL"),
        "{err}"
    );
    let err = check("[[detectors]]\nname = \"x\"\nplugin = \"http\"\nseries = 'up'\n")?;
    assert!(
        err.contains("bad.toml:3:") && err.contains("a probe plugin; detectors need a detector"),
        "{err}"
    );
    let err = check(
        "[[detectors]]\nname = \"x\"\nplugin = \"zscore\"\nseries = 'up'\nforecast = { horizon = \"soon\" }\n",
    )?;
    assert!(
        err.contains("bad.toml:5:") && err.contains("forecast.horizon"),
        "{err}"
    );
    Ok(())
}

#[test]
fn forecasts_answer_when_a_threshold_is_reached() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_forecast")?;
    // Free bytes falling by 10 a minute for the last hour, 400 left now:
    // zero in 40 minutes (2,400 s).
    let end = (now_secs() as i64 / 15) * 15;
    let mut om = String::from("# TYPE disk_free_bytes gauge\n");
    for t in (end - 3600..=end).step_by(15) {
        let free = 400.0 + (end - t) as f64 * 10.0 / 60.0;
        writeln!(om, "disk_free_bytes{{mountpoint=\"/\"}} {free} {t}")?;
    }
    om.push_str("# EOF\n");
    import(&lookout, &om)?;
    let served = lookout.serve(
        r#"[[detectors]]
name = "disk"
plugin = "forecast"
series = 'disk_free_bytes'
every = "1s"
history = "2h"
forecast = { horizon = "4h", threshold = 0 }
"#,
    )?;
    let predictions = wait_for(Duration::from_secs(30), "a prediction", || {
        let p = served.data("/api/v1/predictions")?;
        Ok(Some(p).filter(|p| p.as_array().is_some_and(|p| !p.is_empty())))
    })?;
    let p = &predictions[0];
    assert_eq!(p["detector"], "disk");
    assert_eq!(p["labels"]["mountpoint"], "/");
    assert_eq!(p["horizon_seconds"], 14_400.0);
    let seconds = p["seconds_to_threshold"].as_f64().unwrap();
    assert!((seconds - 2400.0).abs() < 1.0, "{p}");
    // Four hours on at the same pace: 400 − 2,400 = −2,000.
    assert!(
        (p["forecast"].as_f64().unwrap() + 2000.0).abs() < 1.0,
        "{p}"
    );
    // The same as series, for rules ("disk full within 4 h"); the board
    // is updated before the round's outputs are stored, so wait for them.
    let r = wait_for(Duration::from_secs(30), "the forecast series", || {
        let r = served.data(&format!(
            "/api/v1/query?query={}",
            crate::query_api::encode("forecast_seconds_to_threshold{detector=\"disk\"} < 4 * 3600")
        ))?;
        Ok(Some(r).filter(|r| r["result"].as_array().is_some_and(|a| !a.is_empty())))
    })?;
    assert_eq!(r["result"][0]["metric"]["mountpoint"], "/", "{r}");
    // No anomaly: the series follows its trend.
    assert_eq!(served.data("/api/v1/anomalies")?, serde_json::json!([]));

    // The backtest asks for the same forecast from a CSV.
    let mut csv = String::new();
    for t in (end - 3600..=end).step_by(15) {
        writeln!(csv, "{t},{}", 400.0 + (end - t) as f64 * 10.0 / 60.0)?;
    }
    let file = lookout.data.path().join("disk.csv");
    std::fs::write(&file, csv)?;
    drop(served);
    let out = lookout.run(&[
        "detect",
        "forecast",
        "--csv",
        file.to_str().unwrap(),
        "--horizon",
        "4h",
        "--threshold",
        "0",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(err.contains("reaches 0: in 2400 s"), "{err}");
    Ok(())
}
