//! `lookout serve` without `--config`: the embedded default probes
//! lookout's own API, exports the machine's metrics and watches both for
//! anomalies; what it needs but is not installed is left out, with a
//! warning naming it, instead of refusing to start.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Lookout, Result, wait_for};

fn detector<'d>(detectors: &'d Value, name: &str) -> Option<&'d Value> {
    detectors.as_array()?.iter().find(|d| d["name"] == name)
}

#[test]
fn the_embedded_default_probes_lookout_exports_the_machine_and_watches_both() -> Result {
    let lookout = Lookout::new();
    for plugin in ["http", "tcp", "node", "zscore", "forecast"] {
        lookout.install(&format!("lookout_plugin_{plugin}"))?;
    }
    let served = lookout.serve_embedded_default()?;

    for job in ["lookout-http", "lookout-tcp", "node"] {
        let result = wait_for(Duration::from_secs(30), job, || {
            Ok(served.results(job)?.into_iter().next())
        })?;
        assert_eq!(result["success"], true, "{job}: {result}");
    }
    // The probes target the address lookout actually listens on.
    let http = &served.results("lookout-http")?[0];
    assert_eq!(
        http["target"],
        format!("http://{}/healthz", served.addr),
        "{http}"
    );
    // The machine's series are queryable under node_exporter's names.
    let load = wait_for(Duration::from_secs(10), "node_load1", || {
        let answer = served.data("/api/v1/query?query=node_load1")?;
        Ok(answer["result"]
            .as_array()
            .filter(|r| r.len() == 1)
            .cloned())
    })?;
    assert_eq!(load[0]["metric"]["job"], "node", "{load:?}");

    // The anomaly detector learns the load, free memory and both probes'
    // times (4 series) at its first 15 s tick after they exist; the disk
    // forecaster the root file system at its first minute tick.
    let detectors = wait_for(Duration::from_secs(150), "both detectors' series", || {
        let detectors = served.data("/api/v1/detectors")?;
        let learning = |name, at_least| {
            detector(&detectors, name)
                .and_then(|d| d["series"].as_u64())
                .is_some_and(|n| n >= at_least)
        };
        Ok((learning("machine", 4) && learning("disk", 1)).then_some(detectors))
    })?;
    for name in ["machine", "disk"] {
        let d = detector(&detectors, name).unwrap();
        assert!(d["last_error"].is_null(), "{d}");
        assert!(d["rounds"].as_u64() >= Some(1), "{d}");
    }
    let disk = detector(&detectors, "disk").unwrap();
    assert_eq!(disk["plugin"], "forecast");
    assert_eq!(disk["every_seconds"], 60.0);
    Ok(())
}

#[test]
fn what_is_not_installed_is_left_out_with_a_warning() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    let served = lookout.serve_embedded_default()?;
    let result = wait_for(Duration::from_secs(30), "the http probe", || {
        Ok(served.results("lookout-http")?.into_iter().next())
    })?;
    assert_eq!(result["success"], true, "{result}");
    let jobs = served.data("/api/v1/jobs")?;
    let names: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["name"].as_str())
        .collect();
    assert_eq!(names, ["lookout-http"]);
    assert_eq!(served.data("/api/v1/detectors")?, Value::Array(Vec::new()));

    let log = served.stop_and_read_log()?;
    for (kind, name, plugin) in [
        ("job", "lookout-tcp", "tcp"),
        ("job", "node", "node"),
        ("detector", "machine", "zscore"),
        ("detector", "disk", "forecast"),
    ] {
        assert!(
            log.contains(&format!(
                "{kind} `{name}` left out: plugin `{plugin}` is not installed"
            )),
            "{kind} {name} in:\n{log}"
        );
    }
    Ok(())
}
