//! The `redis` exporter against real `redis-server`s (Debian's
//! `redis-server`): what a test client writes must come back as
//! redis_exporter's metrics, and an unreachable or password-refusing server
//! must read as `redis_up 0` with the reason.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::support::{
    self, Lookout, Result, find_sample, now_secs, sample_label, sample_value as value,
    silent_server, wait_for,
};

/// A `redis-server` on a free 127.0.0.1 port, without persistence, killed
/// on drop.
struct RedisServer {
    child: Child,
    port: u16,
    /// Its working directory (`--dir`), removed after it.
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start(extra: &[&str]) -> Result<RedisServer> {
        // A port freed a moment ago can be taken by someone else before
        // redis binds it: try a few.
        let mut last_error = None;
        for _ in 0..3 {
            match Self::try_start(extra) {
                Ok(server) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("tried at least once"))
    }

    fn try_start(extra: &[&str]) -> Result<RedisServer> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server: install Debian's `redis-server`")?;
        let mut server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        wait_for(Duration::from_secs(10), "redis-server to listen", || {
            if let Some(status) = server.child.try_wait()? {
                bail!("redis-server exited at start: {status}");
            }
            Ok(TcpStream::connect(server.addr()).ok().map(drop))
        })?;
        Ok(server)
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Just enough RESP to write test data: commands out, one reply in, as text.
struct RespClient {
    reader: BufReader<TcpStream>,
}

impl RespClient {
    fn connect(addr: &str) -> Result<RespClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(RespClient {
            reader: BufReader::new(stream),
        })
    }

    /// Sends a command; an error reply is an `Err`.
    fn call(&mut self, args: &[&str]) -> Result<String> {
        let mut command = format!("*{}\r\n", args.len());
        for arg in args {
            command.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.reader.get_mut().write_all(command.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let line = line.trim_end();
        match line.split_at(1) {
            ("+" | ":", rest) => Ok(rest.to_string()),
            ("-", error) => bail!("{args:?}: {error}"),
            // The null bulk string: a key that does not exist.
            ("$", "-1") => Ok(String::new()),
            ("$", len) => {
                let len: usize = len.parse()?;
                let mut body = vec![0; len + 2];
                self.reader.read_exact(&mut body)?;
                body.truncate(len);
                Ok(String::from_utf8(body)?)
            }
            _ => bail!("{args:?}: unexpected reply {line:?}"),
        }
    }
}

/// `lookout run redis --json`: the result and what lookout logged.
fn run_exporter(lookout: &Lookout, target: &str, config: &str) -> Result<(Value, String)> {
    support::run_exporter(lookout, "redis", target, config, "5s")
}

fn run_raw(lookout: &Lookout, target: &str, config: &str) -> Output {
    support::run_plugin(lookout, "redis", target, config, "5s")
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(result: &Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    find_sample(result, name, labels).and_then(|s| s["value"].as_f64())
}

/// The `err` label of `redis_exporter_last_scrape_error`.
fn scrape_error(result: &Value) -> Result<String> {
    let sample = result["samples"]
        .as_array()
        .and_then(|samples| {
            samples
                .iter()
                .find(|s| s["name"] == "redis_exporter_last_scrape_error")
        })
        .context("no redis_exporter_last_scrape_error")?;
    Ok(sample_label(sample, "err").unwrap_or_default().to_string())
}

#[test]
fn exporter_reports_what_was_written() -> Result {
    let redis = RedisServer::start(&["--maxmemory", "64mb"])?;
    let mut client = RespClient::connect(&redis.addr())?;
    for key in ["k1", "k2", "k3"] {
        client.call(&["SET", key, "value"])?;
    }
    client.call(&["SET", "ttl-seconds", "v", "EX", "3600"])?;
    client.call(&["SET", "ttl-millis", "v", "PX", "600000"])?;
    client.call(&["GET", "k1"])?;
    client.call(&["GET", "no-such-key"])?;
    client.call(&["SELECT", "1"])?;
    client.call(&["SET", "elsewhere", "v"])?;
    let info = client.call(&["INFO", "server"])?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .context("redis_version in INFO")?
        .trim()
        .to_string();

    let lookout = Lookout::new();
    lookout.install("lookout_plugin_redis")?;
    let started = now_secs();
    let (result, _) = run_exporter(&lookout, &redis.addr(), "{}")?;
    let v = |name: &str, labels: &[(&str, &str)]| value(&result, name, labels);

    assert_eq!(v("redis_up", &[])?, 1.0);
    assert_eq!(scrape_error(&result)?, "");
    assert_eq!(v("redis_db_keys", &[("db", "db0")])?, 5.0);
    assert_eq!(v("redis_db_keys_expiring", &[("db", "db0")])?, 2.0);
    assert_eq!(v("redis_db_keys", &[("db", "db1")])?, 1.0);
    assert_eq!(v("redis_db_keys_expiring", &[("db", "db1")])?, 0.0);
    let avg_ttl = v("redis_db_avg_ttl_seconds", &[("db", "db0")])?;
    assert!(
        (500.0..=3600.0).contains(&avg_ttl),
        "average of 3600 s and 600 s TTLs, in seconds: {avg_ttl}"
    );
    // The test's client stays connected while the exporter's is too.
    assert!(v("redis_connected_clients", &[])? >= 2.0);
    assert_eq!(v("redis_blocked_clients", &[])?, 0.0);
    assert!(v("redis_commands_processed_total", &[])? >= 10.0);
    assert!(v("redis_connections_received_total", &[])? >= 2.0);
    assert_eq!(v("redis_commands_total", &[("cmd", "set")])?, 6.0);
    assert_eq!(v("redis_commands_total", &[("cmd", "get")])?, 2.0);
    assert!(v("redis_commands_duration_seconds_total", &[("cmd", "set")])? > 0.0);
    assert_eq!(v("redis_keyspace_hits_total", &[])?, 1.0);
    assert_eq!(v("redis_keyspace_misses_total", &[])?, 1.0);
    assert_eq!(v("redis_evicted_keys_total", &[])?, 0.0);
    assert_eq!(v("redis_expired_keys_total", &[])?, 0.0);
    assert_eq!(v("redis_rdb_changes_since_last_save", &[])?, 6.0);
    assert_eq!(v("redis_connected_slaves", &[])?, 0.0);
    assert_eq!(v("redis_memory_max_bytes", &[])?, 64.0 * 1024.0 * 1024.0);
    assert_eq!(v("redis_config_maxmemory", &[])?, 64.0 * 1024.0 * 1024.0);
    assert!(v("redis_memory_used_bytes", &[])? > 0.0);
    let uptime = v("redis_uptime_in_seconds", &[])?;
    assert!((0.0..60.0).contains(&uptime), "{uptime}");
    let start_time = v("redis_start_time_seconds", &[])?;
    assert!(
        (started - 120.0..=now_secs() + 1.0).contains(&start_time),
        "{start_time}"
    );
    let port = redis.port.to_string();
    assert_eq!(
        v(
            "redis_instance_info",
            &[
                ("redis_version", &version),
                ("role", "master"),
                ("tcp_port", &port)
            ]
        )?,
        1.0
    );
    Ok(())
}

#[test]
fn passwords_and_acl_users() -> Result {
    let redis = RedisServer::start(&["--requirepass", "s3cret"])?;
    let mut admin = RespClient::connect(&redis.addr())?;
    admin.call(&["AUTH", "s3cret"])?;
    // A user that may read INFO and nothing else: CONFIG is refused, which
    // costs only the redis_config_* samples.
    admin.call(&["ACL", "SETUSER", "monitor", "on", ">monitor-pw", "+info"])?;

    let lookout = Lookout::new();
    lookout.install("lookout_plugin_redis")?;
    let addr = redis.addr();

    let (result, _) = run_exporter(&lookout, &addr, r#"{"password": "s3cret"}"#)?;
    assert_eq!(value(&result, "redis_up", &[])?, 1.0);
    assert!(sample(&result, "redis_config_maxmemory", &[]).is_some());

    let url = format!("redis://:s3cret@{addr}/0");
    let (result, _) = run_exporter(&lookout, &url, "{}")?;
    assert_eq!(
        value(&result, "redis_up", &[])?,
        1.0,
        "password from the URL"
    );

    let config = r#"{"username": "monitor", "password": "monitor-pw"}"#;
    let (result, _) = run_exporter(&lookout, &addr, config)?;
    assert_eq!(
        value(&result, "redis_up", &[])?,
        1.0,
        "ACL user: {result:#}"
    );
    assert!(value(&result, "redis_connected_clients", &[])? >= 2.0);
    assert!(
        sample(&result, "redis_config_maxmemory", &[]).is_none(),
        "CONFIG is not allowed for this user"
    );

    let (result, stderr) = run_exporter(&lookout, &addr, r#"{"password": "wrong"}"#)?;
    assert_eq!(value(&result, "redis_up", &[])?, 0.0);
    let error = scrape_error(&result)?;
    assert!(error.contains("AUTH failed: WRONGPASS"), "{error}");
    assert!(
        stderr.contains("AUTH failed: WRONGPASS"),
        "logged: {stderr}"
    );
    assert!(
        sample(&result, "redis_connected_clients", &[]).is_none(),
        "no INFO samples without INFO"
    );

    let (result, _) = run_exporter(&lookout, &addr, "{}")?;
    assert_eq!(value(&result, "redis_up", &[])?, 0.0);
    let error = scrape_error(&result)?;
    assert!(
        error.contains("NOAUTH") && error.contains("set `password`"),
        "{error}"
    );
    Ok(())
}

#[test]
fn unreachable_servers_and_bad_configs() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_redis")?;

    // Port 1 (tcpmux) has no listener on a test machine: refused.
    let started = Instant::now();
    let (result, stderr) = run_exporter(&lookout, "127.0.0.1:1", "{}")?;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(value(&result, "redis_up", &[])?, 0.0);
    assert!(scrape_error(&result)?.contains("connection refused"));
    assert!(stderr.contains("connection refused"), "logged: {stderr}");
    assert_eq!(
        value(&result, "redis_exporter_last_scrape_error", &[])?,
        1.0
    );

    // A server that never answers: redis_up 0 once the deadline the host
    // gives the plugin (a little under --timeout) passes.
    let (silent, _listener) = silent_server()?;
    let started = Instant::now();
    let (result, _) = support::run_exporter(&lookout, "redis", &silent.to_string(), "{}", "2s")?;
    let waited = started.elapsed();
    assert_eq!(value(&result, "redis_up", &[])?, 0.0);
    let error = scrape_error(&result)?;
    assert!(error.contains("timed out"), "{error}");
    assert!(
        (Duration::from_millis(1500)..Duration::from_secs(5)).contains(&waited),
        "{waited:?}"
    );

    for (target, config, expected) in [
        (
            "rediss://127.0.0.1:1",
            "{}",
            "TLS (rediss://) is not supported",
        ),
        (
            "127.0.0.1:1",
            r#"{"passwd": "x"}"#,
            "unknown field `passwd`",
        ),
        ("127.0.0.1:1", r#"{"username": "u"}"#, "`password` is not"),
        (
            "127.0.0.1:1",
            r#"{"config_command": "CON FIG"}"#,
            "`config_command`",
        ),
        ("127.0.0.1:port", "{}", "is not host:port"),
    ] {
        let out = run_raw(&lookout, target, config);
        support::assert_plugin_config_error(&out, expected, &format!("{target} {config}"));
    }
    Ok(())
}
