//! What the end-to-end tests share: the real `lookout` binary in a
//! throw-away data directory, a controllable HTTP server on 127.0.0.1, a
//! tiny HTTP client, and paths to the wasm plugins `cargo xtask` built.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

pub type Result<T = ()> = anyhow::Result<T>;

/// A wasm plugin built by `cargo xtask build-plugins` (file stem, e.g.
/// `lookout_plugin_http`).
pub fn wasm(stem: &str) -> PathBuf {
    let dir = std::env::var_os("LOOKOUT_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    std::path::PathBuf::from(
                        std::env::var_os("CARGO_MANIFEST_DIR")
                            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
                    )
                    .join("../target")
                });
            target.join("wasm32-wasip2/plugin")
        });
    let path = dir.join(format!("{stem}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask build-plugins` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// The lookout binary with its own data directory.
pub struct Lookout {
    pub data: tempfile::TempDir,
}

impl Lookout {
    pub fn new() -> Lookout {
        Lookout {
            data: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lookout"));
        cmd.arg("--data")
            .arg(self.data.path())
            .env("LOOKOUT_LOG", "warn");
        cmd
    }

    /// Runs a subcommand to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("running lookout")
    }

    /// Runs a subcommand that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args);
        if !out.status.success() {
            bail!(
                "lookout {args:?} failed: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// The API token `lookout serve` created in the data directory.
    pub fn token(&self) -> Result<String> {
        Ok(std::fs::read_to_string(self.data.path().join("api-token"))?
            .trim()
            .to_string())
    }

    pub fn install(&self, stem: &str) -> Result<String> {
        self.ok(&["plugin", "install", wasm(stem).to_str().unwrap()])
    }

    /// Writes `config` and starts `lookout serve` on a free port.
    pub fn serve(&self, config: &str) -> Result<Served> {
        let path = self.data.path().join("lookout.toml");
        std::fs::write(&path, config)?;
        self.serve_file(&path)
    }

    /// Starts `lookout serve --config <path>` on a free port.
    pub fn serve_file(&self, path: &Path) -> Result<Served> {
        self.serve_file_with_env(path, &[])
    }

    /// [`Lookout::serve_file`] with environment variables set for it.
    pub fn serve_file_with_env(&self, path: &Path, env: &[(&str, &str)]) -> Result<Served> {
        let mut command = self.command();
        command
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(path);
        Self::start_serving(command)
    }

    /// Starts `lookout serve` on a free port with no `--config`: the
    /// embedded default.
    pub fn serve_embedded_default(&self) -> Result<Served> {
        let mut command = self.command();
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        Self::start_serving(command)
    }

    /// Starts `command` (a `lookout serve`) and returns once it says where
    /// it listens.
    fn start_serving(mut command: Command) -> Result<Served> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        else {
            let mut err = String::new();
            child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            let _ = child.wait();
            bail!("lookout serve did not start: {line}{err}");
        };
        let addr: SocketAddr = addr.parse()?;
        Ok(Served { child, addr })
    }
}

/// A running `lookout serve`, killed on drop.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Served {
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        http_get(self.addr, path)
    }

    /// GET a JSON endpoint and return its `data` (the call must succeed).
    pub fn data(&self, path: &str) -> Result<Value> {
        let (status, body) = self.get(path)?;
        let v: Value = serde_json::from_str(&body).with_context(|| format!("{path}: {body}"))?;
        if status != 200 || v["status"] != "success" {
            bail!("{path}: {status} {body}");
        }
        Ok(v["data"].clone())
    }

    /// Stored results of a job, oldest first.
    pub fn results(&self, job: &str) -> Result<Vec<Value>> {
        Ok(self
            .data(&format!("/api/v1/results?job={job}&limit=10000"))?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// A JSON request that changes state, with the API token.
    pub fn send_json(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, String)> {
        let auth = format!("Bearer {token}");
        http_request(
            self.addr,
            method,
            path,
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    }

    /// The kinds of the alert history's events (`firing`, `queued`,
    /// `notified`, `delivery_failed` …), oldest first.
    pub fn history_kinds(&self) -> Result<Vec<String>> {
        Ok(self
            .data("/api/v1/alerts/history")?
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["kind"].as_str().map(str::to_string))
            .collect())
    }

    /// The history's kinds once every one of `wanted` is among them: a
    /// receiver has its message a moment before lookout records the
    /// delivery.
    pub fn history_kinds_with(&self, wanted: &[&str]) -> Result<Vec<String>> {
        let mut kinds = Vec::new();
        let found = wait_for(Duration::from_secs(10), "the alert history", || {
            kinds = self.history_kinds()?;
            Ok(wanted
                .iter()
                .all(|w| kinds.iter().any(|k| k == w))
                .then_some(()))
        });
        found.with_context(|| format!("wanted {wanted:?} in the history, have {kinds:?}"))?;
        Ok(kinds)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills lookout and returns what it logged.
    pub fn stop_and_read_log(mut self) -> Result<String> {
        self.child.kill()?;
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut log)?;
        }
        Ok(log)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal HTTP/1.1 GET: status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    http_request(addr, "GET", path, &[], "")
}

/// Minimal HTTP/1.1 request: status and body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `probe` until it returns `Some`, or fails after `within`.
pub fn wait_for<T>(
    within: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    let mut last_err = None;
    while start.elapsed() < within {
        match probe() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("timed out after {within:?} waiting for {what} (last error: {last_err:?})")
}

/// An HTTP server on 127.0.0.1 whose status code the test sets, and which
/// can stop listening so that connections are refused.
pub struct TargetServer {
    pub addr: SocketAddr,
    status: Arc<AtomicU16>,
    body: Arc<std::sync::Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Whether `seen` holds a whole HTTP/1.1 request: its headers and the
/// body they announce (`Content-Length` bytes, or chunks to the last).
fn request_is_complete(seen: &[u8]) -> bool {
    let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let headers = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
    let header = |name: &str| {
        headers
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_string())
    };
    if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        return seen[end + 4..].ends_with(b"0\r\n\r\n");
    }
    let length = header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    seen.len() >= end + 4 + length
}

impl TargetServer {
    pub fn start(status: u16) -> TargetServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(status));
        let stop = Arc::new(AtomicBool::new(false));
        let body = Arc::new(std::sync::Mutex::new(None::<String>));
        let (s, st, b) = (status.clone(), stop.clone(), body.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let code = s.load(Ordering::SeqCst);
                        let custom = b.lock().unwrap().clone();
                        std::thread::spawn(move || {
                            let _ = conn.set_nonblocking(false);
                            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                            // The whole request, body too: closing with
                            // unread bytes sends a reset that can reach the
                            // client before the answer does.
                            let mut buf = [0u8; 4096];
                            let mut seen = Vec::new();
                            while let Ok(n) = conn.read(&mut buf) {
                                if n == 0 {
                                    break;
                                }
                                seen.extend_from_slice(&buf[..n]);
                                if request_is_complete(&seen) {
                                    break;
                                }
                            }
                            let body = custom.unwrap_or_else(|| format!("status {code}\n"));
                            let _ = write!(
                                conn,
                                "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener drops here: the port refuses connections from now on.
        });
        TargetServer {
            addr,
            status,
            body,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    /// Serves `body` (as text/plain) instead of the status line.
    pub fn set_body(&self, body: &str) {
        *self.body.lock().unwrap() = Some(body.to_string());
    }

    pub fn set_status(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    /// Stops listening; returns once the port is closed.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Now, in Unix seconds.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A file of ../shared/fixtures/seed-configs (real configurations of the
/// stacks lookout replaces).
pub fn seed(name: &str) -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../shared/fixtures/seed-configs")
    .join(name)
}

/// The real blackbox_exporter (Debian's `prometheus-blackbox-exporter`)
/// serving a modules file on a free port, killed on drop.
pub struct BlackboxExporter {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl BlackboxExporter {
    /// Starts it with `config` (a `modules:` file's text) and waits until it
    /// answers.
    pub fn start(config: &str) -> Result<BlackboxExporter> {
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("blackbox.yml");
        std::fs::write(&config_path, config)?;
        BlackboxExporter::start_file(&config_path, dir)
    }

    /// Starts it with a modules file the caller wrote into `dir`.
    pub fn start_file(config: &Path, dir: tempfile::TempDir) -> Result<BlackboxExporter> {
        let addr = free_addr()?;
        let log_path = dir.path().join("blackbox.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new("/usr/bin/prometheus-blackbox-exporter")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting blackbox_exporter: install `prometheus-blackbox-exporter`")?;
        let mut blackbox = BlackboxExporter {
            child,
            addr,
            _dir: dir,
        };
        wait_for(
            Duration::from_secs(10),
            "blackbox_exporter to listen",
            || {
                if let Some(status) = blackbox.child.try_wait()? {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    bail!("blackbox_exporter exited ({status}): {log}");
                }
                Ok(http_get(addr, "/metrics")
                    .ok()
                    .filter(|(status, _)| *status == 200))
            },
        )?;
        Ok(blackbox)
    }

    /// `/probe` for one module and target: its samples by name (labels
    /// included, as in the exposition text).
    pub fn probe_samples(
        &self,
        module: &str,
        target: &str,
    ) -> Result<std::collections::HashMap<String, f64>> {
        probe_samples(self.addr, module, target)
    }
}

impl Drop for BlackboxExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/probe?module=&target=` of a blackbox-compatible server (the real one
/// or lookout): its samples by name, labels included as written.
pub fn probe_samples(
    addr: SocketAddr,
    module: &str,
    target: &str,
) -> Result<std::collections::HashMap<String, f64>> {
    let target: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    let (status, body) = http_get(addr, &format!("/probe?module={module}&target={target}"))?;
    if status != 200 {
        bail!("{addr} /probe {module} {target}: {status} {body}");
    }
    Ok(body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect())
}

/// A 127.0.0.1 address with a port nobody listens on (at the moment).
pub fn free_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// `lookout run <plugin> --target <target> --config <config> --json
/// --timeout <timeout>`, as it ended.
pub fn run_plugin(
    lookout: &Lookout,
    plugin: &str,
    target: &str,
    config: &str,
    timeout: &str,
) -> Output {
    lookout.run(&[
        "run",
        plugin,
        "--target",
        target,
        "--config",
        config,
        "--json",
        "--timeout",
        timeout,
    ])
}

/// [`run_plugin`] for an exporter that must have run: its `--json` result
/// and what lookout logged.
pub fn run_exporter(
    lookout: &Lookout,
    plugin: &str,
    target: &str,
    config: &str,
    timeout: &str,
) -> Result<(Value, String)> {
    let out = run_plugin(lookout, plugin, target, config, timeout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("lookout run {plugin} failed: {}\n{stderr}", out.status);
    }
    let result: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stdout).into_owned())?;
    Ok((result, stderr))
}

/// The label `name` of a sample of a `--json` result.
pub fn sample_label<'s>(sample: &'s Value, name: &str) -> Option<&'s str> {
    sample["labels"]
        .as_array()?
        .iter()
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].as_str())
}

/// The first sample `name` of a `--json` result whose labels include
/// `labels`.
pub fn find_sample<'r>(
    result: &'r Value,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'r Value> {
    result["samples"].as_array()?.iter().find(|s| {
        s["name"] == name
            && labels
                .iter()
                .all(|(k, v)| sample_label(s, k).is_some_and(|found| found == *v))
    })
}

/// The value of [`find_sample`], or an error naming the missing sample.
pub fn sample_value(result: &Value, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
    find_sample(result, name, labels)
        .and_then(|s| s["value"].as_f64())
        .with_context(|| format!("no sample {name}{labels:?} in {result:#}"))
}

/// A 127.0.0.1 server that accepts connections (the kernel does, into the
/// backlog) and never says a word, for as long as the listener is kept:
/// a client must give up by its deadline.
pub fn silent_server() -> Result<(SocketAddr, TcpListener)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok((listener.local_addr()?, listener))
}

/// A private certificate authority for TLS tests (its certificate and
/// key), named `common_name`.
pub fn test_ca(common_name: &str) -> Result<(rcgen::Certificate, rcgen::KeyPair)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let certificate = params.self_signed(&key)?;
    Ok((certificate, key))
}

/// A server certificate for `localhost` and `127.0.0.1` and its key, made
/// now: signed by `issuer` (a [`test_ca`]) or, without one, by itself;
/// valid from yesterday for 30 days, or, when `expired`, ended yesterday.
pub fn localhost_certificate(
    issuer: Option<(&rcgen::Certificate, &rcgen::KeyPair)>,
    expired: bool,
) -> Result<(rcgen::Certificate, rcgen::KeyPair)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let now = time::OffsetDateTime::now_utc();
    if expired {
        params.not_before = now - time::Duration::days(30);
        params.not_after = now - time::Duration::days(1);
    } else {
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
    }
    let certificate = match issuer {
        None => params.self_signed(&key)?,
        Some((ca, ca_key)) => params.signed_by(&key, ca, ca_key)?,
    };
    Ok((certificate, key))
}

/// Asserts that a `lookout run` (described by `what`) failed with a plugin
/// configuration error whose text contains `expected`.
pub fn assert_plugin_config_error(out: &Output, expected: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: must fail");
    assert!(
        stderr.contains("(plugin_config)") && stderr.contains(expected),
        "{what}: {stderr}"
    );
}
