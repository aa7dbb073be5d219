//! The `grpc` probe side by side with the real blackbox_exporter, against
//! real gRPC health servers (Python's grpcio, one plaintext and one TLS)
//! that this test starts: every module-target pair must give the same
//! verdict, gRPC status and serving status in both.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::support::{self, BlackboxExporter, Lookout, Result};

/// What the test needs from PyPI: the packages, and the modules they give.
const PYTHON_PACKAGES: &str = "grpcio grpcio-health-checking";
const PYTHON_MODULES: &str = "grpc, grpc_health.v1.health";

/// How long the health servers live if the test cannot kill them (it
/// normally does, on drop).
const SERVER_LIFETIME_SECS: u32 = 300;

/// Two health servers in one Python process, each knowing service ""
/// (SERVING) and "app" (NOT_SERVING): plaintext, and TLS with the given
/// certificate. Prints `ports <plain> <tls>` once both listen.
const HEALTH_SERVERS: &str = r#"
import sys, time
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

cert_file, key_file, lifetime = sys.argv[1], sys.argv[2], float(sys.argv[3])

def serve(add_port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("app", health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = add_port(server)
    server.start()
    return server, port

with open(cert_file, "rb") as f:
    cert = f.read()
with open(key_file, "rb") as f:
    key = f.read()
credentials = grpc.ssl_server_credentials([(key, cert)])
plain, plain_port = serve(lambda s: s.add_insecure_port("127.0.0.1:0"))
secure, tls_port = serve(lambda s: s.add_secure_port("127.0.0.1:0", credentials))
print(f"ports {plain_port} {tls_port}", flush=True)
time.sleep(lifetime)
"#;

/// The Python health servers, killed on drop.
struct HealthServers {
    child: Child,
    plain: SocketAddr,
    tls: SocketAddr,
}

impl HealthServers {
    fn start(dir: &Path, cert_pem: &str, key_pem: &str) -> Result<HealthServers> {
        let check = Command::new("python3")
            .args(["-c", &format!("import {PYTHON_MODULES}")])
            .output()
            .context("running python3")?;
        if !check.status.success() {
            bail!(
                "the grpc e2e test needs Python's gRPC ({PYTHON_MODULES}): \
                 pip install {PYTHON_PACKAGES}\n{}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
        let script = dir.join("health_servers.py");
        let cert = dir.join("server.pem");
        let key = dir.join("server-key.pem");
        std::fs::write(&script, HEALTH_SERVERS)?;
        std::fs::write(&cert, cert_pem)?;
        std::fs::write(&key, key_pem)?;
        let log_path = dir.join("health_servers.log");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&cert)
            .arg(&key)
            .arg(SERVER_LIFETIME_SECS.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()
            .context("starting the Python health servers")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let ports: Vec<u16> = line
            .strip_prefix("ports ")
            .map(|p| {
                p.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let [plain, tls] = ports[..] else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the Python health servers did not start (said {line:?}): {log}");
        };
        Ok(HealthServers {
            child,
            plain: SocketAddr::from(([127, 0, 0, 1], plain)),
            tls: SocketAddr::from(([127, 0, 0, 1], tls)),
        })
    }
}

impl Drop for HealthServers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA (PEM) and a server certificate it signed for 127.0.0.1 and
/// localhost (certificate and key, PEM).
fn certificates() -> Result<(String, String, String)> {
    let (ca, ca_key) = support::test_ca("lookout grpc test CA")?;
    let (cert, key) = support::localhost_certificate(Some((&ca, &ca_key)), false)?;
    Ok((ca.pem(), cert.pem(), key.serialize_pem()))
}

/// What a pair must come to, in both exporters.
struct Expected {
    success: f64,
    grpc_status: f64,
    /// The serving status reported 1; `None`: all 0.
    serving: Option<&'static str>,
    /// lookout's failure reasons that fit (empty for a success).
    reasons: &'static [&'static str],
}

/// Samples compared between the two: by exact name, or every labelled
/// series of the name.
const COMPARED: [&str; 8] = [
    "probe_success",
    "probe_grpc_status_code",
    "probe_grpc_healthcheck_response",
    "probe_grpc_ssl",
    "probe_ip_protocol",
    "probe_ssl_earliest_cert_expiry",
    "probe_tls_version_info",
    "probe_ssl_last_chain_info",
];

#[test]
fn grpc_probe_agrees_with_blackbox_exporter() -> Result {
    let dir = tempfile::tempdir()?;
    let (ca_pem, cert_pem, key_pem) = certificates()?;
    let servers = HealthServers::start(dir.path(), &cert_pem, &key_pem)?;
    // An absolute path: blackbox_exporter 0.23 reads `ca_file` relative to
    // its working directory.
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca_pem)?;
    let ca_file = ca_path.to_str().context("temp path")?;

    let modules: Vec<(&str, Value)> = vec![
        ("grpc_plain", json!({})),
        ("grpc_app", json!({"service": "app"})),
        (
            "grpc_unknown_service",
            json!({"service": "no-such-service"}),
        ),
        (
            "grpc_tls_insecure",
            json!({"tls": true, "tls_config": {"insecure_skip_verify": true}}),
        ),
        (
            "grpc_tls_ca",
            json!({"tls": true, "tls_config": {"ca_file": ca_file}}),
        ),
        (
            "grpc_tls_wrong_name",
            json!({"tls": true, "tls_config": {"ca_file": ca_file, "server_name": "wrong.example"}}),
        ),
    ];
    // JSON is YAML: each module's `grpc:` map goes in as written.
    let mut yaml = String::from("modules:\n");
    for (name, grpc) in &modules {
        yaml.push_str(&format!(
            "  {name}:\n    prober: grpc\n    timeout: 5s\n    grpc: {grpc}\n"
        ));
    }
    let blackbox = BlackboxExporter::start(&yaml)?;
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_grpc")?;

    let plain = servers.plain.to_string();
    let tls = servers.tls.to_string();
    // Port 1 (tcpmux) has no listener on a test machine: refused. (A port
    // freed a moment ago can come back as the probe's own source port.)
    let refused = "127.0.0.1:1".to_string();
    let ok = |serving| Expected {
        success: 1.0,
        grpc_status: 0.0,
        serving: Some(serving),
        reasons: &[],
    };
    let failed = |grpc_status, serving, reasons| Expected {
        success: 0.0,
        grpc_status,
        serving,
        reasons,
    };
    let pairs: Vec<(&str, &str, &String, Expected)> = vec![
        ("grpc_plain", "plain server", &plain, ok("SERVING")),
        (
            "grpc_app",
            "plain server",
            &plain,
            failed(0.0, Some("NOT_SERVING"), &["status"]),
        ),
        (
            "grpc_unknown_service",
            "plain server",
            &plain,
            failed(5.0, None, &["status"]),
        ),
        ("grpc_tls_insecure", "TLS server", &tls, ok("SERVING")),
        ("grpc_tls_ca", "TLS server", &tls, ok("SERVING")),
        (
            "grpc_tls_wrong_name",
            "TLS server",
            &tls,
            failed(14.0, None, &["tls"]),
        ),
        (
            "grpc_tls_insecure",
            "plain server",
            &plain,
            failed(14.0, None, &["tls"]),
        ),
        (
            "grpc_plain",
            "TLS server",
            &tls,
            failed(14.0, None, &["protocol", "connect"]),
        ),
        (
            "grpc_plain",
            "refused port",
            &refused,
            failed(14.0, None, &["connect"]),
        ),
    ];

    let mut disagreements = Vec::new();
    for (module, what, target, expected) in &pairs {
        let grpc = &modules.iter().find(|(name, _)| name == module).unwrap().1;
        let theirs = compared(blackbox.probe_samples(module, target)?);
        let (ours, reason) = run_lookout(&lookout, target, &inline_ca_file(grpc)?)?;
        let ours = compared(ours);
        let pair = format!("{module} against the {what} ({target})");

        // Both must be right, not merely equal.
        for (side, samples) in [("blackbox_exporter", &theirs), ("lookout", &ours)] {
            let value = |key: &str| samples.get(key).copied();
            assert_eq!(
                value("probe_success"),
                Some(expected.success),
                "{side}, {pair}: {samples:#?}"
            );
            assert_eq!(
                value("probe_grpc_status_code"),
                Some(expected.grpc_status),
                "{side}, {pair}: {samples:#?}"
            );
            for status in ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] {
                let key = format!("probe_grpc_healthcheck_response{{serving_status=\"{status}\"}}");
                let current = expected.serving == Some(status);
                assert_eq!(
                    value(&key),
                    Some(f64::from(u8::from(current))),
                    "{side}, {pair}: {key}"
                );
            }
        }
        match &reason {
            None => assert!(expected.reasons.is_empty(), "{pair}: lookout succeeded"),
            Some(reason) => assert!(
                expected.reasons.contains(&reason.as_str()),
                "{pair}: lookout's failure reason {reason}, expected one of {:?}",
                expected.reasons
            ),
        }
        if theirs != ours {
            disagreements.push(format!(
                "{pair}:\n  blackbox_exporter {theirs:?}\n  lookout           {ours:?}"
            ));
        }
    }
    let agree = pairs.len() - disagreements.len();
    println!(
        "grpc: {agree}/{} module-target pairs agree with blackbox_exporter",
        pairs.len()
    );
    if !disagreements.is_empty() {
        bail!(
            "lookout's grpc probe disagrees:\n{}",
            disagreements.join("\n")
        );
    }
    Ok(())
}

/// The module's `grpc:` map as lookout's JSON configuration: a file named
/// by `ca_file` goes in as `ca` (lookout inlines files only for
/// configuration files, not for `--config`).
fn inline_ca_file(grpc: &Value) -> Result<Value> {
    let mut config = grpc.clone();
    if let Some(tls_config) = config.get_mut("tls_config").and_then(Value::as_object_mut)
        && let Some(path) = tls_config.remove("ca_file")
    {
        let path = PathBuf::from(path.as_str().context("ca_file is a path")?);
        tls_config.insert("ca".into(), std::fs::read_to_string(path)?.into());
    }
    Ok(config)
}

/// `lookout run grpc --json`: its samples, keyed as blackbox's exposition
/// writes them, and its failure reason.
fn run_lookout(
    lookout: &Lookout,
    target: &str,
    config: &Value,
) -> Result<(HashMap<String, f64>, Option<String>)> {
    let out = lookout.run(&[
        "run",
        "grpc",
        "--target",
        target,
        "--config",
        &config.to_string(),
        "--timeout",
        "5s",
        "--json",
    ]);
    let result: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "lookout run grpc {target}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let mut samples = HashMap::new();
    for sample in result["samples"].as_array().context("samples")? {
        let name = sample["name"].as_str().context("sample name")?;
        let mut labels: Vec<(String, String)> = sample["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|pair| Some((pair[0].as_str()?.to_string(), pair[1].as_str()?.to_string())))
            .collect();
        labels.sort();
        samples.insert(
            exposition_key(name, &labels),
            sample["value"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let reason = result["failure_reason"].as_str().map(str::to_string);
    Ok((samples, reason))
}

/// `name{label="value",…}` with Prometheus' escaping, labels sorted.
fn exposition_key(name: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{name}{{{}}}", pairs.join(","))
}

/// The compared samples of one probe, in a stable order.
fn compared(samples: HashMap<String, f64>) -> BTreeMap<String, f64> {
    samples
        .into_iter()
        .filter(|(key, _)| {
            let name = key.split('{').next().unwrap_or(key);
            COMPARED.contains(&name)
        })
        .collect()
}
