//! Hostile plugins scheduled beside a well-behaved probe. Each misdeed is
//! a recorded failure with its reason; the host stays up; the good probe
//! keeps its schedule.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::support::{Lookout, Result, TargetServer, now_secs, wait_for};

#[test]
fn hostile_plugins_are_contained_and_recorded() -> Result {
    let server = TargetServer::start(200);
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    lookout.install("lookout_fixture_hostile")?;
    let hostile = |name: &str, config: &str, extra: &str| {
        format!(
            "[[jobs]]\nname = \"{name}\"\nplugin = \"hostile\"\nevery = \"1s\"\ntimeout = \"500ms\"\ntargets = [\"x\"]\nconfig = {config}\n{extra}\n"
        )
    };
    let mut config = format!(
        "[[jobs]]\nname = \"steady\"\nplugin = \"http\"\nevery = \"250ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\n\n",
        server.url()
    );
    config += &hostile("loop", r#"{ mode = "loop" }"#, "");
    config += &hostile("memory", r#"{ mode = "memory" }"#, "memory = \"16MiB\"");
    config += &hostile("recursion", r#"{ mode = "recursion" }"#, "");
    config += &hostile(
        "huge-output",
        r#"{ mode = "huge-output", samples = 30000, label_bytes = 200 }"#,
        "",
    );
    config += &hostile(
        "forbidden-http",
        &format!(r#"{{ mode = "forbidden-http", url = "{}" }}"#, server.url()),
        "",
    );
    config += &hostile(
        "forbidden-file",
        r#"{ mode = "forbidden-file", path = "/etc/hostname" }"#,
        "",
    );
    config += &hostile("panic", r#"{ mode = "panic" }"#, "");

    let mut served = lookout.serve(&config)?;

    // (job, expected failure_reason, expected outcome, words in the message)
    let expected: [(&str, &str, &str, &str); 7] = [
        ("loop", "deadline", "plugin_failure", "deadline"),
        ("memory", "memory_limit", "plugin_failure", "memory cap"),
        ("recursion", "stack_overflow", "plugin_failure", "stack"),
        (
            "huge-output",
            "output_limit",
            "plugin_failure",
            "output cap",
        ),
        ("forbidden-http", "denied", "target_failure", ""),
        ("forbidden-file", "denied", "target_failure", ""),
        ("panic", "trap", "plugin_failure", "panicked on purpose"),
    ];
    let mut firsts: BTreeMap<&str, Value> = BTreeMap::new();
    for (job, reason, outcome, words) in expected {
        let r = wait_for(Duration::from_secs(30), job, || {
            Ok(served.results(job)?.first().cloned())
        })?;
        assert_eq!(r["failure_reason"], reason, "{job}: {r}");
        assert_eq!(r["outcome"], outcome, "{job}: {r}");
        assert_eq!(r["success"], false, "{job}: {r}");
        assert!(r["message"].as_str().unwrap().contains(words), "{job}: {r}");
        firsts.insert(job, r);
    }
    // The infinite loop is stopped just after its deadline (leeway for a
    // machine busy with other tests).
    let loop_secs = firsts["loop"]["duration_seconds"].as_f64().unwrap();
    assert!(
        (0.5..=0.75).contains(&loop_secs),
        "loop ran {loop_secs}s against a 500ms deadline"
    );

    // A plugin that keeps failing is backed off, visibly.
    let backed_off = wait_for(Duration::from_secs(30), "loop job backed off", || {
        let jobs = served.data("/api/v1/jobs")?;
        let job = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "loop")
            .cloned()
            .unwrap();
        Ok(Some(job["targets"][0].clone()).filter(|t| !t["backoff_until_ms"].is_null()))
    })?;
    assert!(
        backed_off["consecutive_plugin_failures"].as_u64().unwrap() >= 3,
        "{backed_off}"
    );
    let (_, metrics) = served.get("/metrics")?;
    assert!(
        metrics.contains("lookout_job_backoff{job=\"loop\",target=\"x\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lookout_plugin_limit_hits_total{plugin=\"hostile\",limit=\"deadline\"}"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("lookout_plugin_limit_hits_total{plugin=\"hostile\",limit=\"memory_limit\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lookout_plugin_traps_total{plugin=\"hostile\"}"),
        "{metrics}"
    );

    // The host is up and the well-behaved probe kept its 250 ms schedule
    // throughout: every result a success, no gap much over one interval.
    assert!(served.is_running(), "lookout exited");
    assert_eq!(served.get("/healthz")?.0, 200);
    let steady = served.results("steady")?;
    // Counted from the first run, not from a start-up that took its time.
    let first_ms = steady
        .first()
        .and_then(|r| r["started_ms"].as_f64())
        .context("no steady results")?;
    let elapsed = now_secs() - first_ms / 1000.0;
    assert!(
        steady.iter().all(|r| r["success"] == true),
        "steady probe failed while hostile plugins ran"
    );
    assert!(
        steady.len() as f64 >= elapsed / 0.25 * 0.6,
        "{} steady results in {elapsed:.1}s",
        steady.len()
    );
    let times: Vec<f64> = steady
        .iter()
        .map(|r| r["started_ms"].as_f64().unwrap())
        .collect();
    let max_gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(
        max_gap <= 750.0,
        "steady probe had a {max_gap} ms gap against a 250 ms interval"
    );
    Ok(())
}

/// Every invocation gets a fresh instance: the pooling allocator keeps
/// freed slots' pages mapped for speed (docs/PERFORMANCE.md), and what one
/// invocation wrote must still be gone when the next one starts.
#[test]
fn nothing_survives_from_one_invocation_to_the_next() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_fixture_hostile")?;
    let config = "[[jobs]]\nname = \"residue\"\nplugin = \"hostile\"\nevery = \"100ms\"\ntargets = [\"a\", \"b\"]\nconfig = { mode = \"residue\" }\n";
    let served = lookout.serve(config)?;
    let results = wait_for(Duration::from_secs(30), "20 residue results", || {
        Ok(Some(served.results("residue")?).filter(|r| r.len() >= 20))
    })?;
    for r in &results {
        assert_eq!(r["success"], true, "{r}");
        let sample = |name: &str| {
            r["samples"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == name))
                .and_then(|s| s["value"].as_f64())
        };
        assert_eq!(sample("hostile_residue_bytes"), Some(0.0), "{r}");
        assert_eq!(sample("hostile_invocations_seen"), Some(1.0), "{r}");
    }
    println!("{} invocations, none saw another's memory", results.len());
    Ok(())
}
