//! `cargo xtask <job>`: the project's chores as Rust instead of shell.
//!
//! - `build-plugins`  build the first-party plugins and test fixtures to wasm32-wasip2
//! - `wit-reference`  regenerate docs/wit-reference.md from wit/plugin.wit (a test checks it)
//! - `build-polyglot` install the Python, JavaScript and C toolchains and build the plugins written in them
//! - `run [--data DIR] [--listen ADDR]`  build everything, install the plugins, serve the embedded default
//! - `test`           install test peers (Debian packages), build the plugins, run every test (what `.ci/run` calls)
//! - `bench`          build the plugins, then run the benchmarks
//! - `bench-tsdb`     lookout's time-series engine side by side with a real Prometheus
//! - `bench-alerts`   rule fires → notifier invoked latency, end to end, beyond configured waits
//! - `bench-rules`    1,000 rules over 10,100 series: lookout and Prometheus side by side
//! - `bench-probes`   HTTP probes/s and CPU per probe: lookout and blackbox_exporter side by side
//! - `eval-detectors` every detector plugin scored on the labelled corpus with NAB's method

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

mod alert_latency;
mod detector_eval;
mod node_bench;
mod peer_bench;
mod polyglot;
mod probe_bench;
mod rules_bench;
mod wit_reference;

/// Plugin crates built to wasm, and the file each produces.
const PLUGINS: &[(&str, &str)] = &[
    ("lookout-plugin-http", "lookout_plugin_http"),
    ("lookout-plugin-tcp", "lookout_plugin_tcp"),
    ("lookout-plugin-noop", "lookout_plugin_noop"),
    (
        "lookout-plugin-prometheus-scrape",
        "lookout_plugin_prometheus_scrape",
    ),
    ("lookout-plugin-http-json", "lookout_plugin_http_json"),
    ("lookout-plugin-webhook", "lookout_plugin_webhook"),
    ("lookout-plugin-slack", "lookout_plugin_slack"),
    ("lookout-plugin-pagerduty", "lookout_plugin_pagerduty"),
    ("lookout-plugin-email", "lookout_plugin_email"),
    ("lookout-plugin-dns", "lookout_plugin_dns"),
    ("lookout-plugin-grpc", "lookout_plugin_grpc"),
    ("lookout-plugin-icmp", "lookout_plugin_icmp"),
    ("lookout-plugin-node", "lookout_plugin_node"),
    ("lookout-plugin-redis", "lookout_plugin_redis"),
    ("lookout-plugin-postgres", "lookout_plugin_postgres"),
    ("lookout-plugin-zscore", "lookout_plugin_zscore"),
    ("lookout-plugin-mad", "lookout_plugin_mad"),
    ("lookout-plugin-ewma", "lookout_plugin_ewma"),
    ("lookout-plugin-seasonal", "lookout_plugin_seasonal"),
    ("lookout-plugin-kmeans", "lookout_plugin_kmeans"),
    ("lookout-plugin-forecast", "lookout_plugin_forecast"),
    ("lookout-fixture-hostile", "lookout_fixture_hostile"),
];

/// Plugins `cargo xtask run` installs.
const DEFAULT_INSTALL: &[&str] = &[
    "lookout_plugin_http",
    "lookout_plugin_tcp",
    "lookout_plugin_noop",
    "lookout_plugin_prometheus_scrape",
    "lookout_plugin_http_json",
    "lookout_plugin_webhook",
    "lookout_plugin_slack",
    "lookout_plugin_pagerduty",
    "lookout_plugin_email",
    "lookout_plugin_dns",
    "lookout_plugin_grpc",
    "lookout_plugin_icmp",
    "lookout_plugin_node",
    "lookout_plugin_redis",
    "lookout_plugin_postgres",
    "lookout_plugin_zscore",
    "lookout_plugin_mad",
    "lookout_plugin_ewma",
    "lookout_plugin_seasonal",
    "lookout_plugin_kmeans",
    "lookout_plugin_forecast",
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(job) = args.first() else {
        bail!(
            "usage: cargo xtask <build-plugins|build-polyglot|wit-reference|run|test|bench|bench-tsdb|bench-alerts|bench-rules|bench-node|bench-probes|eval-detectors> [args]"
        );
    };
    let rest = &args[1..];
    match job.as_str() {
        "build-plugins" => build_plugins().map(|_| ()),
        "build-polyglot" => polyglot::build(&wasm_dir()),
        "wit-reference" => wit_reference::write(),
        "run" => run(rest),
        "test" => test(rest),
        "bench" => bench(rest),
        "bench-tsdb" => {
            status(cargo().args(["build", "--release", "-p", "lookout"]))?;
            peer_bench::run(&target_dir().join("release").join("lookout"))
        }
        "bench-rules" => {
            status(cargo().args(["build", "--release", "-p", "lookout"]))?;
            rules_bench::run(&target_dir().join("release").join("lookout"))
        }
        "bench-node" => node_bench::run(rest),
        "bench-probes" => {
            let wasm = build_plugins()?;
            status(cargo().args(["build", "--release", "-p", "lookout"]))?;
            probe_bench::run(&target_dir().join("release").join("lookout"), &wasm)
        }
        "eval-detectors" => {
            let wasm = build_plugins()?;
            status(cargo().args(["build", "--release", "-p", "lookout"]))?;
            detector_eval::run(&target_dir().join("release").join("lookout"), &wasm, rest)
        }
        "bench-alerts" => {
            let wasm = build_plugins()?;
            status(cargo().args(["build", "--release", "-p", "lookout"]))?;
            alert_latency::run(&target_dir().join("release").join("lookout"), &wasm)
        }
        other => {
            bail!(
                "unknown job `{other}`; expected build-plugins, build-polyglot, wit-reference, run, test, bench, bench-tsdb, bench-alerts, bench-rules, bench-node, bench-probes or eval-detectors"
            )
        }
    }
}

/// Read at run time: a build cache shared between checkouts keeps the
/// compile-time path of whichever checkout built it first.
fn workspace_root() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .parent()
    .expect("xtask lives in the workspace")
    .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where the wasm plugins land.
fn wasm_dir() -> PathBuf {
    target_dir().join("wasm32-wasip2").join("plugin")
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn status(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let st = cmd.status().with_context(|| format!("running {shown}"))?;
    if !st.success() {
        bail!("{shown} failed with {st}");
    }
    Ok(())
}

/// Installs the wasm32-wasip2 target when rustup manages the toolchain and
/// it is missing, so the README's commands work on a fresh machine.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Ok(()); // no rustup: the toolchain's owner provides the target
    };
    if !String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-wasip2")
    {
        status(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))?;
    }
    Ok(())
}

fn build_plugins() -> anyhow::Result<PathBuf> {
    ensure_wasm_target()?;
    let mut cmd = cargo();
    cmd.args(["build", "--profile", "plugin", "--target", "wasm32-wasip2"]);
    for (package, _) in PLUGINS {
        cmd.args(["-p", package]);
    }
    status(&mut cmd)
        .context("building plugins (is the target installed? `rustup target add wasm32-wasip2`)")?;
    let dir = wasm_dir();
    report_sizes(&dir, PLUGINS.iter().map(|(_, file)| *file))?;
    Ok(dir)
}

/// Prints each built component's size; fails naming one that is missing.
fn report_sizes<'a>(dir: &Path, stems: impl Iterator<Item = &'a str>) -> anyhow::Result<()> {
    for stem in stems {
        let path = dir.join(format!("{stem}.wasm"));
        let size = std::fs::metadata(&path)
            .with_context(|| format!("expected {}", path.display()))?
            .len();
        eprintln!("  {:<40} {:>8} bytes", path.display(), size);
    }
    Ok(())
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let wasm = build_plugins()?;
    status(cargo().args(["build", "--release", "-p", "lookout"]))?;
    let lookout = target_dir().join("release").join("lookout");
    let mut global: Vec<String> = Vec::new();
    let mut serve: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--data" => global.extend([
                "--data".into(),
                it.next().context("--data needs a directory")?.clone(),
            ]),
            _ => serve.push(arg.clone()),
        }
    }
    for file in DEFAULT_INSTALL {
        let path = wasm.join(format!("{file}.wasm"));
        let name = file.trim_start_matches("lookout_plugin_").replace('_', "-");
        let name = name.as_str();
        // A rebuilt plugin has a new digest: replace the installed one.
        let inspect = Command::new(&lookout)
            .args(&global)
            .args(["plugin", "inspect", name, "--json"])
            .output()?;
        if inspect.status.success() {
            let installed: String = String::from_utf8_lossy(&inspect.stdout).into();
            let digest = sha256_hex(&std::fs::read(&path)?);
            if installed.contains(&digest) {
                continue;
            }
            status(
                Command::new(&lookout)
                    .args(&global)
                    .args(["plugin", "remove", name]),
            )?;
        }
        status(
            Command::new(&lookout)
                .args(&global)
                .args(["plugin", "install"])
                .arg(&path),
        )?;
    }
    status(
        Command::new(&lookout)
            .args(&global)
            .arg("serve")
            .args(&serve),
    )
}

/// Debian packages of the real peers the tests run against, and a command
/// each provides.
const TEST_PEERS: &[(&str, &str)] = &[
    ("prometheus", "promtool"),
    ("prometheus-alertmanager", "amtool"),
    ("openssl", "openssl"),
    (
        "prometheus-blackbox-exporter",
        "prometheus-blackbox-exporter",
    ),
    ("prometheus-node-exporter", "prometheus-node-exporter"),
    ("redis-server", "redis-server"),
    ("postgresql", "/usr/lib/postgresql/15/bin/initdb"),
    ("docker-registry", "docker-registry"),
    // htpasswd, for the registry that asks for credentials.
    ("apache2-utils", "htpasswd"),
];

/// Python packages of the real peers (module to import, PyPI package).
const PYTHON_PEERS: &[(&str, &str)] = &[
    ("aiosmtpd", "aiosmtpd"),
    ("grpc", "grpcio"),
    ("grpc_health", "grpcio-health-checking"),
];

/// Installs missing peer packages with apt (CI and fresh machines run as
/// root); elsewhere says what to install.
fn ensure_test_peers() -> anyhow::Result<()> {
    for (module, package) in PYTHON_PEERS {
        let present = Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .output();
        if !present.is_ok_and(|o| o.status.success()) {
            status(Command::new("python3").args(["-m", "pip", "install", "--quiet", package]))?;
        }
    }
    ensure_debian_packages(TEST_PEERS)
}

/// Installs the Debian packages (package, a command or file it provides)
/// that are missing, with apt (CI and fresh machines run as root);
/// elsewhere says what to install.
pub(crate) fn ensure_debian_packages(packages: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, command)| {
            Command::new("sh")
                .args(["-c", &format!("test -e {command} || command -v {command}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        bail!(
            "the build and tests need Debian packages {missing:?}: apt-get install {}",
            missing.join(" ")
        );
    }
    status(Command::new("apt-get").arg("update"))?;
    status(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )
}

fn test(args: &[String]) -> anyhow::Result<()> {
    ensure_test_peers()?;
    let wasm = build_plugins()?;
    polyglot::build(&wasm)?;
    status(
        cargo()
            .env("LOOKOUT_WASM_DIR", &wasm)
            .env("LOOKOUT_TOOLCHAINS", polyglot::toolchains())
            // Every crate, plugins included (their pure logic is unit-tested
            // natively); every failure reported, not just the first binary's.
            .args(["test", "--release", "--workspace", "--no-fail-fast"])
            .args(args)
            // Print what passing tests report (the PromQL conformance count).
            .args(["--", "--show-output"]),
    )
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    let wasm = build_plugins()?;
    polyglot::build(&wasm)?;
    status(
        cargo()
            .env("LOOKOUT_WASM_DIR", &wasm)
            .args(["bench", "-p", "lookout"])
            .args(args),
    )
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
