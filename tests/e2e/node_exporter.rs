//! The `node` exporter side by side with the real node_exporter 1.5
//! (Debian's `prometheus-node-exporter`) on this machine: the same
//! collectors, read one right after the other, must give the same metric
//! names, the same series and values within what can change in between.
//! Without a statfs grant, file-system sizes are denied cleanly.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::support::{Lookout, Result, http_get, wait_for, wasm};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// The collectors the plugin implements; node_exporter runs only these.
const COLLECTORS: [&str; 13] = [
    "cpu",
    "diskstats",
    "entropy",
    "filefd",
    "filesystem",
    "loadavg",
    "meminfo",
    "netdev",
    "pressure",
    "stat",
    "time",
    "uname",
    "vmstat",
];

/// Names node_exporter reports and the plugin deliberately does not.
const ONLY_IN_NODE_EXPORTER: &[(&str, &str)] = &[
    (
        "node_time_zone_offset_seconds",
        "WASI has no time zone and the sandbox cannot read /etc/localtime",
    ),
    (
        "node_exporter_build_info",
        "describes node_exporter itself, not the machine",
    ),
    (
        "promhttp_metric_handler_errors_total",
        "counts node_exporter's own HTTP handler errors",
    ),
];

/// How far the plugin's value (read second) may be from node_exporter's
/// (read first, and again third), `elapsed` seconds apart.
#[derive(Debug, Clone, Copy)]
enum Tolerance {
    /// The same value: constants of the machine.
    Exact,
    /// A gauge that other work on the machine moves either way, fast (free
    /// disk space while builds write and delete): between node_exporter's
    /// reads before and after the plugin's, give or take `slack`.
    Bracketed { slack: f64 },
    /// A counter: it may only have grown, by at most `per_second` ×
    /// elapsed, give or take `slack` (the file's granularity).
    Counter { per_second: f64, slack: f64 },
    /// A gauge that moves: within `abs` either way.
    Gauge { abs: f64 },
    /// Not comparable (how long each one's collector took).
    Presence,
}

fn tolerance(name: &str) -> Tolerance {
    use Tolerance::*;
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    match name {
        "node_scrape_collector_duration_seconds" => Presence,
        "node_scrape_collector_success" | "node_boot_time_seconds" => Exact,
        // One CPU spends at most one second per second in all its modes;
        // idle and iowait may step back a tick on NO_HZ kernels.
        "node_cpu_seconds_total" | "node_cpu_guest_seconds_total" => Counter {
            per_second: 1.0,
            slack: 0.05,
        },
        "node_context_switches_total" | "node_intr_total" => Counter {
            per_second: 1e6,
            slack: 0.0,
        },
        "node_forks_total" => Counter {
            per_second: 1e5,
            slack: 0.0,
        },
        "node_procs_running" | "node_procs_blocked" => Gauge { abs: 64.0 },
        // The kernel recomputes them every 5 s, by a fraction of the runnable
        // count, which a busy machine moves a lot.
        "node_load1" | "node_load5" | "node_load15" => Bracketed { slack: 0.1 },
        "node_memory_MemTotal_bytes"
        | "node_memory_SwapTotal_bytes"
        | "node_memory_VmallocTotal_bytes"
        | "node_memory_Hugepagesize_bytes"
        | "node_memory_HugePages_Total"
        | "node_memory_CommitLimit_bytes" => Exact,
        // Other builds and tests run on this machine meanwhile.
        n if n.starts_with("node_memory_") => Gauge { abs: GIB },
        n if n.starts_with("node_network_") && n.ends_with("_bytes_total") => Counter {
            per_second: 2.5e9,
            slack: 0.0,
        },
        n if n.starts_with("node_network_") => Counter {
            per_second: 2e6,
            slack: 0.0,
        },
        "node_disk_info" => Exact,
        "node_disk_io_now" => Gauge { abs: 1024.0 },
        "node_disk_io_time_seconds_total" => Counter {
            per_second: 1.0,
            slack: 0.01,
        },
        // Summed over requests in flight: up to the queue depth per second.
        n if n.starts_with("node_disk_") && n.ends_with("_seconds_total") => Counter {
            per_second: 1024.0,
            slack: 0.01,
        },
        n if n.starts_with("node_disk_") && n.ends_with("_bytes_total") => Counter {
            per_second: 8e9,
            slack: 0.0,
        },
        n if n.starts_with("node_disk_") => Counter {
            per_second: 2e7,
            slack: 0.0,
        },
        "node_filesystem_readonly" | "node_filesystem_device_error" => Exact,
        // A mounted file system's size is fixed (ext4, tmpfs, xfs …).
        "node_filesystem_size_bytes" => Exact,
        // Free space follows concurrent writes; the slack is what a write
        // racing the reads may leave outside the bracket.
        "node_filesystem_free_bytes" | "node_filesystem_avail_bytes" => {
            Bracketed { slack: 4.0 * MIB }
        }
        // XFS's inode total follows its free space.
        "node_filesystem_files" | "node_filesystem_files_free" => Bracketed { slack: 1000.0 },
        "node_pressure_cpu_waiting_seconds_total"
        | "node_pressure_io_waiting_seconds_total"
        | "node_pressure_io_stalled_seconds_total"
        | "node_pressure_memory_waiting_seconds_total"
        | "node_pressure_memory_stalled_seconds_total" => Counter {
            per_second: 1.0,
            slack: 0.01,
        },
        "node_time_seconds" => Gauge { abs: 5.0 },
        n if n.starts_with("node_time_clocksource_") => Exact,
        "node_uname_info" => Exact,
        n if n.starts_with("node_vmstat_") => Counter {
            per_second: 2e7,
            slack: 0.0,
        },
        "node_filefd_allocated" => Gauge { abs: 20_000.0 },
        "node_filefd_maximum" => Exact,
        "node_entropy_available_bits" => Gauge { abs: 4096.0 },
        "node_entropy_pool_size_bits" => Exact,
        "node_cpu_isolated" => Exact,
        "node_cpu_core_throttles_total" | "node_cpu_package_throttles_total" => Counter {
            per_second: 1e4,
            slack: 0.0,
        },
        _ => Exact,
    }
}

impl Tolerance {
    /// `node_exporter` was read before the plugin, `node_exporter_after`
    /// (where it has the series) after it.
    fn accepts(
        self,
        node_exporter: f64,
        node_exporter_after: Option<f64>,
        lookout: f64,
        elapsed: f64,
    ) -> bool {
        let diff = lookout - node_exporter;
        match self {
            Tolerance::Exact => lookout == node_exporter,
            Tolerance::Bracketed { slack } => {
                let after = node_exporter_after.unwrap_or(node_exporter);
                lookout >= node_exporter.min(after) - slack
                    && lookout <= node_exporter.max(after) + slack
            }
            Tolerance::Counter { per_second, slack } => {
                diff >= -slack && diff <= per_second * elapsed + slack
            }
            Tolerance::Gauge { abs } => diff.abs() <= abs,
            Tolerance::Presence => true,
        }
    }
}

struct NodeExporter(Child);

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `name{a="1",b="2"}` with labels sorted: one series.
fn series_key(name: &str, labels: &[(String, String)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

fn name_of(key: &str) -> &str {
    key.split('{').next().unwrap_or(key)
}

#[test]
fn node_plugin_matches_node_exporter() -> Result {
    let lookout = Lookout::new();
    let installed = lookout.install("lookout_plugin_node")?;
    assert!(
        installed.contains("granted  files (read-only): /proc, /sys; statfs: *"),
        "{installed}"
    );

    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut command = Command::new(NODE_EXPORTER);
    command
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.disable-exporter-metrics")
        .arg("--collector.disable-defaults")
        .args(COLLECTORS.map(|c| format!("--collector.{c}")))
        // Upstream's defaults, which the plugin follows: Debian's package
        // excludes `lo` and more mount points.
        .arg("--collector.netdev.device-exclude=")
        .arg("--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _node_exporter = NodeExporter(command.spawn().with_context(|| {
        format!("starting {NODE_EXPORTER}: install Debian's prometheus-node-exporter")
    })?);
    wait_for(Duration::from_secs(20), "node_exporter to listen", || {
        Ok(http_get(addr, "/metrics").ok().filter(|(s, _)| *s == 200))
    })?;

    // node_exporter first, the plugin right after: counters may only have
    // grown in between.
    let started = Instant::now();
    let (status, text) = http_get(addr, "/metrics")?;
    assert_eq!(status, 200, "{text}");
    let run = lookout.ok(&["run", "node", "--target", "localhost", "--json"])?;
    let elapsed = started.elapsed().as_secs_f64();
    // And node_exporter again, to bracket gauges that move either way.
    let (status, text_after) = http_get(addr, "/metrics")?;
    assert_eq!(status, 200, "{text_after}");

    let series = |text: &str| -> Result<BTreeMap<String, f64>> {
        let scrape = lookout_expfmt::parse(text, lookout_expfmt::Format::PrometheusText)?;
        Ok(scrape
            .samples
            .iter()
            .map(|s| (series_key(&s.name, &s.labels), s.value))
            .collect())
    };
    let theirs = series(&text)?;
    let theirs_after = series(&text_after)?;
    let result: serde_json::Value = serde_json::from_str(&run)?;
    let mut ours = BTreeMap::new();
    for sample in result["samples"].as_array().context("no samples")? {
        let name = sample["name"].as_str().context("sample without name")?;
        let labels: Vec<(String, String)> =
            serde_json::from_value(sample["labels"].clone()).unwrap_or_default();
        let value = sample["value"].as_f64().context("sample without value")?;
        if ours.insert(series_key(name, &labels), value).is_some() {
            bail!("the plugin reported {} twice", series_key(name, &labels));
        }
    }

    // (a) Metric names.
    let names = |series: &BTreeMap<String, f64>| -> BTreeSet<String> {
        series.keys().map(|k| name_of(k).to_owned()).collect()
    };
    let (their_names, our_names) = (names(&theirs), names(&ours));
    let only_theirs: Vec<&String> = their_names.difference(&our_names).collect();
    let only_ours: Vec<&String> = our_names.difference(&their_names).collect();
    let excepted: BTreeSet<&str> = ONLY_IN_NODE_EXPORTER.iter().map(|(n, _)| *n).collect();
    println!(
        "{} metric names from node_exporter, {} from the plugin, {} in both ({elapsed:.3} s between the reads)",
        their_names.len(),
        our_names.len(),
        their_names.intersection(&our_names).count()
    );
    for name in &only_theirs {
        let why = ONLY_IN_NODE_EXPORTER
            .iter()
            .find(|(n, _)| n == name)
            .map_or("NOT EXCUSED", |(_, why)| why);
        println!("  only in node_exporter: {name} ({why})");
    }
    for name in &only_ours {
        println!("  only in the plugin: {name}");
    }
    let unexcused: Vec<&&String> = only_theirs
        .iter()
        .filter(|n| !excepted.contains(n.as_str()))
        .collect();
    assert!(
        unexcused.is_empty(),
        "node_exporter reports names the plugin lacks: {unexcused:?}"
    );
    assert!(
        only_ours.is_empty(),
        "the plugin reports names node_exporter does not: {only_ours:?}"
    );
    // Every collector ran in both and fared the same; only pressure may be
    // missing, on a kernel without PSI.
    for collector in COLLECTORS {
        let key = format!("node_scrape_collector_success{{collector={collector:?}}}");
        let (their, our) = (theirs.get(&key), ours.get(&key));
        assert_eq!(their, our, "success of the {collector} collector");
        if collector != "pressure" {
            assert_eq!(our, Some(&1.0), "the {collector} collector failed");
        }
    }

    // (b) Series and values.
    let mut compared = 0;
    let mut mismatches = Vec::new();
    let mut series_only_theirs = Vec::new();
    for (key, &their_value) in &theirs {
        let name = name_of(key);
        if excepted.contains(name) {
            continue;
        }
        let Some(&our_value) = ours.get(key) else {
            series_only_theirs.push(key.clone());
            continue;
        };
        compared += 1;
        let tolerance = tolerance(name);
        let their_after = theirs_after.get(key).copied();
        if !tolerance.accepts(their_value, their_after, our_value, elapsed) {
            mismatches.push(format!(
                "{key}: node_exporter {their_value} (then {their_after:?}), plugin {our_value} ({tolerance:?})"
            ));
        }
    }
    let series_only_ours: Vec<&String> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    println!(
        "{compared} series compared, {} within tolerance",
        compared - mismatches.len()
    );
    for key in &series_only_theirs {
        println!("  series only in node_exporter: {key}");
    }
    for key in &series_only_ours {
        println!("  series only in the plugin: {key}");
    }
    for m in &mismatches {
        println!("  MISMATCH {m}");
    }
    assert!(
        series_only_theirs.is_empty() && series_only_ours.is_empty(),
        "the two report different series (devices, mounts, CPUs or labels)"
    );
    assert!(mismatches.is_empty(), "{} values differ", mismatches.len());
    Ok(())
}

/// The file-system series of one result, by name and mount point.
fn filesystem_series(result: &Value) -> BTreeMap<(String, String), f64> {
    result["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("node_filesystem_"))
        })
        .map(|s| {
            let labels: BTreeMap<String, String> = s["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|pair| Some((pair[0].as_str()?.into(), pair[1].as_str()?.into())))
                .collect();
            let mount = labels.get("mountpoint").cloned().unwrap_or_default();
            let name = s["name"].as_str().unwrap_or_default().to_string();
            ((name, mount), s["value"].as_f64().unwrap_or(f64::NAN))
        })
        .collect()
}

/// A job granted `/proc` and `/sys` but not statfs: every mount is read,
/// every statfs is refused by the sandbox as an ordinary error (device_error
/// 1, no sizes, the collector still a success, a warning naming the grant),
/// and the invocation itself succeeds. The same plugin with the grant in
/// its job gets the sizes.
#[test]
fn without_a_statfs_grant_sizes_are_denied_not_trapped() -> Result {
    let lookout = Lookout::new();
    lookout.ok(&[
        "plugin",
        "install",
        "--no-grants",
        wasm("lookout_plugin_node").to_str().unwrap(),
    ])?;
    let mut served = lookout.serve(
        r#"
[[jobs]]
name = "unsized"
plugin = "node"
every = "1s"
targets = ["localhost"]
config = { collectors = ["filesystem"] }
grants = { files = ["/proc", "/sys"] }

[[jobs]]
name = "sized"
plugin = "node"
every = "1s"
targets = ["localhost"]
config = { collectors = ["filesystem"] }
grants = { files = ["/proc", "/sys"], statfs = ["*"] }
"#,
    )?;
    let first = |job: &'static str| {
        wait_for(Duration::from_secs(20), job, || {
            Ok(served.results(job)?.into_iter().next())
        })
    };
    let (unsized_result, sized) = (first("unsized")?, first("sized")?);

    assert_eq!(unsized_result["outcome"], "success", "{unsized_result}");
    let denied = filesystem_series(&unsized_result);
    let errors: Vec<&String> = denied
        .iter()
        .filter(|((name, _), _)| name == "node_filesystem_device_error")
        .map(|((_, mount), value)| {
            assert_eq!(*value, 1.0, "device_error of {mount} without a grant");
            mount
        })
        .collect();
    assert!(
        errors.iter().any(|m| m.as_str() == "/"),
        "no device_error for / in {denied:?}"
    );
    assert!(
        denied
            .keys()
            .all(|(name, _)| name == "node_filesystem_device_error"),
        "a denied mount reports nothing else: {denied:?}"
    );
    let success = unsized_result["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == "node_scrape_collector_success")
        .context("no node_scrape_collector_success")?;
    assert_eq!(success["value"], 1.0, "{unsized_result}");

    assert_eq!(sized["outcome"], "success", "{sized}");
    let granted = filesystem_series(&sized);
    let root = |name: &str| granted.get(&(name.to_string(), "/".to_string())).copied();
    assert_eq!(
        root("node_filesystem_device_error"),
        Some(0.0),
        "{granted:?}"
    );
    assert!(
        root("node_filesystem_size_bytes").is_some_and(|v| v > 0.0),
        "{granted:?}"
    );

    // The host says why, and so does the plugin.
    served.child.kill()?;
    let mut log = String::new();
    served
        .child
        .stderr
        .take()
        .context("stderr")?
        .read_to_string(&mut log)?;
    assert!(
        log.contains("capability denied: statfs of a path not granted"),
        "{log}"
    );
    assert!(log.contains("no statfs or files grant covers /"), "{log}");
    Ok(())
}
