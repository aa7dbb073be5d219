//! The `icmp` probe: pings this machine's loopback by address and by name,
//! is denied without an icmp grant, times out and fails as unreachable in a
//! private network namespace (where nothing can leave the machine), uses
//! ping sockets where the kernel allows them and raw sockets otherwise, and
//! reports what the real blackbox_exporter's icmp prober reports.

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::support::{BlackboxExporter, Lookout, Result, wait_for, wasm};

/// `lookout run icmp --json <args>`: exit code, parsed result (when the
/// invocation produced one) and stderr.
fn run(lookout: &Lookout, args: &[&str]) -> Result<(Option<i32>, Value, String)> {
    let mut all = vec!["run", "icmp", "--json"];
    all.extend_from_slice(args);
    parse(lookout.run(&all))
}

/// A lookout with the icmp plugin installed and granted nothing.
fn without_grants() -> Result<Lookout> {
    let lookout = Lookout::new();
    lookout.ok(&[
        "plugin",
        "install",
        "--no-grants",
        wasm("lookout_plugin_icmp").to_str().unwrap(),
    ])?;
    Ok(lookout)
}

fn parse(out: Output) -> Result<(Option<i32>, Value, String)> {
    let stdout = String::from_utf8(out.stdout)?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let result = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).with_context(|| format!("{stdout}\n{stderr}"))?
    };
    Ok((out.status.code(), result, stderr))
}

/// The samples of a result, keyed like the exposition format
/// (`probe_icmp_duration_seconds{phase="rtt"}`).
fn samples(result: &Value) -> HashMap<String, f64> {
    result["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let labels: Vec<String> = s["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|pair| {
                    format!(
                        "{}={:?}",
                        pair[0].as_str().unwrap(),
                        pair[1].as_str().unwrap()
                    )
                })
                .collect();
            let name = s["name"].as_str().unwrap();
            let key = if labels.is_empty() {
                name.to_string()
            } else {
                format!("{name}{{{}}}", labels.join(","))
            };
            (key, s["value"].as_f64().unwrap())
        })
        .collect()
}

const RTT: &str = "probe_icmp_duration_seconds{phase=\"rtt\"}";

fn has_ipv6_loopback() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok()
}

#[test]
fn pings_loopback_by_address_and_by_name() -> Result {
    let lookout = Lookout::new();
    let installed = lookout.install("lookout_plugin_icmp")?;
    assert!(installed.contains("asks for icmp: {target}"), "{installed}");

    let (code, result, stderr) = run(&lookout, &["--target", "127.0.0.1"])?;
    assert_eq!(code, Some(0), "{result}\n{stderr}");
    let s = samples(&result);
    assert!(s[RTT] > 0.0 && s[RTT] < 1.0, "{result}");
    assert_eq!(s["probe_ip_protocol"], 4.0);
    assert_eq!(
        s["probe_icmp_reply_hop_limit"], 64.0,
        "loopback answers with TTL 64"
    );
    // FNV-1a of 127.0.0.1's four bytes, as blackbox_exporter computes it.
    assert_eq!(s["probe_ip_addr_hash"], 3_668_918_509.0);
    assert_eq!(s["probe_success"], 1.0);

    // A name: resolved in the sandbox (the icmp grant enables lookup).
    let (code, result, stderr) = run(&lookout, &["--target", "localhost"])?;
    assert_eq!(code, Some(0), "{result}\n{stderr}");
    let s = samples(&result);
    assert!(s["probe_dns_lookup_time_seconds"] > 0.0, "{result}");
    assert_eq!(
        s["probe_dns_lookup_time_seconds"],
        s["probe_icmp_duration_seconds{phase=\"resolve\"}"]
    );
    assert!([4.0, 6.0].contains(&s["probe_ip_protocol"]), "{result}");

    if has_ipv6_loopback() {
        let (code, result, stderr) = run(&lookout, &["--target", "::1"])?;
        assert_eq!(code, Some(0), "{result}\n{stderr}");
        assert_eq!(samples(&result)["probe_ip_protocol"], 6.0);
        assert!(samples(&result)["probe_icmp_reply_hop_limit"] > 0.0);
        // IPv4 only, without fallback: an IPv6 literal has no IPv4 address.
        let config = r#"{"preferred_ip_protocol":"ip4","ip_protocol_fallback":false}"#;
        let (code, result, _) = run(&lookout, &["--target", "[::1]", "--config", config])?;
        assert_eq!(code, Some(2));
        assert_eq!(result["failure_reason"], "dns", "{result}");
    } else {
        eprintln!("no IPv6 loopback on this machine: skipping the ::1 cases");
    }

    // blackbox_exporter's options: a large payload that may not be
    // fragmented (loopback's MTU is 64 KiB) and a TTL.
    let config = r#"{"payload_size":1400,"dont_fragment":true,"ttl":1}"#;
    let (code, result, stderr) = run(&lookout, &["--target", "127.0.0.1", "--config", config])?;
    assert_eq!(code, Some(0), "{result}\n{stderr}");

    // What the host refuses to send, and what the plugin refuses to read.
    let config = r#"{"source_ip_address":"192.0.2.123"}"#;
    let (_, result, _) = run(&lookout, &["--target", "127.0.0.1", "--config", config])?;
    assert_eq!(result["failure_reason"], "config", "{result}");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("not an address of this host"),
        "{result}"
    );
    let (_, result, _) = run(&lookout, &["--target", "127.0.0.1:80"])?;
    assert_eq!(result["failure_reason"], "config", "{result}");
    let (code, _, stderr) = run(
        &lookout,
        &["--target", "127.0.0.1", "--config", r#"{"ttl":300}"#],
    )?;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("ttl: cannot exceed 255"), "{stderr}");
    Ok(())
}

#[test]
fn echo_without_an_icmp_grant_is_denied() -> Result {
    let lookout = without_grants()?;
    let (code, result, _) = run(&lookout, &["--target", "127.0.0.1"])?;
    assert_eq!(code, Some(2), "{result}");
    assert_eq!(result["failure_reason"], "denied", "{result}");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("no icmp grant covers 127.0.0.1"),
        "{result}"
    );
    assert_eq!(samples(&result)[RTT], 0.0);

    // A grant for another host does not cover this one.
    let (_, result, _) = run(
        &lookout,
        &["--target", "127.0.0.1", "--grant-icmp", "10.255.0.9"],
    )?;
    assert_eq!(result["failure_reason"], "denied", "{result}");

    let (code, result, stderr) = run(
        &lookout,
        &["--target", "127.0.0.1", "--grant-icmp", "127.0.0.1"],
    )?;
    assert_eq!(code, Some(0), "{result}\n{stderr}");
    let (code, result, stderr) = run(
        &lookout,
        &["--target", "localhost", "--grant-icmp", "{target}"],
    )?;
    assert_eq!(code, Some(0), "{result}\n{stderr}");
    Ok(())
}

#[test]
fn a_jobs_icmp_grant_comes_from_the_config() -> Result {
    let lookout = without_grants()?;
    let served = lookout.serve(
        r#"
[[jobs]]
name = "ping"
plugin = "icmp"
every = "200ms"
timeout = "150ms"
targets = ["127.0.0.1"]

[jobs.grants]
icmp = ["{target}"]
"#,
    )?;
    let ok = wait_for(Duration::from_secs(20), "a successful ping", || {
        Ok(served
            .results("ping")?
            .into_iter()
            .find(|r| r["success"] == true))
    })?;
    assert_eq!(ok["outcome"], "success", "{ok}");
    Ok(())
}

/// Runs `lookout <args>` as root in a network namespace of its own: only
/// `lo`, up, with `setup` (shell commands) applied first. Nothing sent there
/// can leave the machine. `None` when namespaces are not available (not
/// root, or no `unshare`/`ip`).
fn in_private_network(lookout: &Lookout, setup: &str, log: &str, args: &[&str]) -> Option<Output> {
    let usable = Command::new("unshare")
        .args(["--net", "--", "ip", "link", "set", "lo", "up"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        return None;
    }
    let script = format!("set -e; ip link set lo up; {setup}; exec \"$@\"");
    let out = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", &script, "sh"])
        .arg(env!("CARGO_BIN_EXE_lookout"))
        .arg("--data")
        .arg(lookout.data.path())
        .args(args)
        .env("LOOKOUT_LOG", log)
        .output()
        .expect("running unshare");
    Some(out)
}

/// TEST-NET-2 is routed into `lo`, where a packet for an address nobody
/// has is dropped: an echo there is never answered. TEST-NET-3 has an
/// `unreachable` route: the kernel refuses to send.
const BLACKHOLE_AND_UNREACHABLE: &str =
    "ip route add 198.51.100.0/24 dev lo; ip route add unreachable 203.0.113.0/24";

/// `lookout run icmp --json --timeout 2s --target <target>` in a private
/// network with [`BLACKHOLE_AND_UNREACHABLE`]; `None` without namespaces.
fn run_2s_without_routes(lookout: &Lookout, target: &str) -> Option<Output> {
    let args = [
        "run",
        "icmp",
        "--json",
        "--timeout",
        "2s",
        "--target",
        target,
    ];
    in_private_network(lookout, BLACKHOLE_AND_UNREACHABLE, "warn", &args)
}

#[test]
fn unanswered_echo_times_out_and_unroutable_is_connect() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_icmp")?;
    let started = Instant::now();
    let Some(out) = run_2s_without_routes(&lookout, "198.51.100.7") else {
        eprintln!("no network namespaces here (needs root, unshare and ip): skipping");
        return Ok(());
    };
    let took = started.elapsed();
    let (code, result, stderr) = parse(out)?;
    assert_eq!(code, Some(2), "{result}\n{stderr}");
    assert_eq!(result["failure_reason"], "timeout", "{result}");
    // The plugin is told 1.8 s of the 2 s deadline and reports the timeout
    // itself, within the job's timeout.
    let duration = result["duration_seconds"].as_f64().unwrap();
    assert!((1.5..2.0).contains(&duration), "{result}");
    assert!(took < Duration::from_secs(6), "took {took:?}");

    let out =
        run_2s_without_routes(&lookout, "203.0.113.5").context("namespaces worked a moment ago")?;
    let (code, result, stderr) = parse(out)?;
    assert_eq!(code, Some(2), "{result}\n{stderr}");
    assert_eq!(result["failure_reason"], "connect", "{result}");
    assert!(
        result["message"].as_str().unwrap().contains("unreachable"),
        "{result}"
    );
    assert!(
        result["duration_seconds"].as_f64().unwrap() < 1.0,
        "{result}"
    );
    Ok(())
}

/// The log's text without the terminal colour codes tracing writes.
fn without_colours(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ parameters… final letter
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

/// `lookout run icmp --json --target <target>` in a private network after
/// `setup`, logging lookout's debug lines: exit code, result and the log
/// without colours. `None` without namespaces.
fn run_logged_in_private_network(
    lookout: &Lookout,
    setup: &str,
    target: &str,
) -> Option<Result<(Option<i32>, Value, String)>> {
    let args = ["run", "icmp", "--json", "--target", target];
    let out = in_private_network(lookout, setup, "warn,lookout=debug", &args)?;
    Some(parse(out).map(|(code, result, stderr)| (code, result, without_colours(&stderr))))
}

#[test]
fn ping_sockets_where_allowed_raw_sockets_otherwise() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_icmp")?;
    // `net.ipv4.ping_group_range` belongs to the namespace: "1 0" admits no
    // group (the kernel's default), "0 2147483647" every group.
    for (range, socket) in [("1 0", "Raw"), ("0 2147483647", "Datagram")] {
        let setup = format!("echo '{range}' > /proc/sys/net/ipv4/ping_group_range");
        let Some(ran) = run_logged_in_private_network(&lookout, &setup, "127.0.0.1") else {
            eprintln!("no network namespaces here (needs root, unshare and ip): skipping");
            return Ok(());
        };
        let (code, result, stderr) = ran?;
        assert_eq!(code, Some(0), "{range}: {result}\n{stderr}");
        assert!(
            stderr.contains("icmp echo answered") && stderr.contains(&format!("socket={socket}")),
            "{range}: expected a {socket} socket\n{stderr}"
        );
        assert_eq!(
            samples(&result)["probe_icmp_reply_hop_limit"],
            64.0,
            "{result}"
        );
        if has_ipv6_loopback() {
            let (code, result, stderr) = run_logged_in_private_network(&lookout, &setup, "::1")
                .context("namespaces worked a moment ago")??;
            assert_eq!(code, Some(0), "{range}: {result}\n{stderr}");
            assert!(stderr.contains(&format!("socket={socket}")), "{stderr}");
        }
    }
    Ok(())
}

#[test]
fn reports_what_blackbox_exporters_icmp_prober_reports() -> Result {
    let blackbox = BlackboxExporter::start(
        "modules:\n  icmp:\n    prober: icmp\n    timeout: 5s\n  \
         icmp_v6_only:\n    prober: icmp\n    timeout: 5s\n    icmp:\n      \
         preferred_ip_protocol: ip6\n      ip_protocol_fallback: false\n",
    )?;
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_icmp")?;
    let names =
        |samples: &HashMap<String, f64>| -> BTreeSet<String> { samples.keys().cloned().collect() };

    let theirs = blackbox.probe_samples("icmp", "127.0.0.1")?;
    let (_, result, _) = run(&lookout, &["--target", "127.0.0.1"])?;
    let ours = samples(&result);
    assert_eq!(
        names(&ours),
        names(&theirs),
        "lookout {ours:?}\nblackbox {theirs:?}"
    );
    for same in [
        "probe_success",
        "probe_ip_protocol",
        "probe_ip_addr_hash",
        "probe_icmp_reply_hop_limit",
    ] {
        assert_eq!(ours[same], theirs[same], "{same}");
    }
    assert_eq!(theirs["probe_success"], 1.0);

    // Without fallback, an IPv4 literal has no IPv6 address: both fail,
    // with the same series.
    let theirs = blackbox.probe_samples("icmp_v6_only", "127.0.0.1")?;
    let config = r#"{"preferred_ip_protocol":"ip6","ip_protocol_fallback":false}"#;
    let (_, result, _) = run(&lookout, &["--target", "127.0.0.1", "--config", config])?;
    let ours = samples(&result);
    assert_eq!(theirs["probe_success"], 0.0);
    assert_eq!(ours["probe_success"], 0.0);
    assert_eq!(result["failure_reason"], "dns", "{result}");
    assert_eq!(
        names(&ours),
        names(&theirs),
        "lookout {ours:?}\nblackbox {theirs:?}"
    );
    Ok(())
}
