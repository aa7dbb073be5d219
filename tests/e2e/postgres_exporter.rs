//! The `postgres` exporter against a real PostgreSQL (Debian's
//! `postgresql`): a throw-away cluster with SCRAM-SHA-256 and MD5 users,
//! a database with rows written, idle and open transactions held by a psql
//! session; the exporter must report them as postgres_exporter would, and a
//! refused login must read as `pg_up 0` with the server's reason.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::support::{
    self, Lookout, Result, find_sample as find, now_secs, sample_label as label,
    sample_value as value, silent_server, wait_for,
};

/// `max_connections` the cluster runs with, to be read back.
const MAX_CONNECTIONS: u32 = 37;

/// Rows inserted into `app.items`, then updated and deleted.
const INSERTED: u32 = 250;
const UPDATED: u32 = 10;
const DELETED: u32 = 5;

/// The newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
fn postgres_bin() -> Result<PathBuf> {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql: install Debian's `postgresql`")?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("postgres").exists())
        .max_by_key(|(version, _)| *version)
        .context("no PostgreSQL server under /usr/lib/postgresql")?;
    Ok(newest.1)
}

fn running_as_root() -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata("/proc/self")?.uid() == 0)
}

/// `id -u postgres` / `id -g postgres`.
fn postgres_ids() -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output()?;
        if !out.status.success() {
            bail!("no `postgres` user to run the server as (Debian's postgresql creates it)");
        }
        Ok(String::from_utf8(out.stdout)?.trim().parse()?)
    };
    Ok((id("-u")?, id("-g")?))
}

/// A server program run as the `postgres` user when we are root (the
/// server refuses to run as root), as ourselves otherwise. `setpriv` execs
/// the program, so the child's pid is the server's own.
fn server_command(program: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A throw-away cluster on a free 127.0.0.1 port. Dropping it shuts the
/// server down (fast shutdown, then SIGKILL after 10 s) and removes the
/// directory.
struct PostgresServer {
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl PostgresServer {
    fn start() -> Result<PostgresServer> {
        let bin = postgres_bin()?;
        let as_postgres = running_as_root()?;
        let dir = tempfile::tempdir()?;
        if as_postgres {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let data = dir.path().join("data");
        let out = server_command(&bin.join("initdb"), as_postgres)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync"])
            .current_dir(dir.path())
            .output()?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        // The unix socket stays for the test's own psql; TCP logins must
        // use passwords: MD5 for `legacy`, SCRAM-SHA-256 for everyone else.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             host all legacy 127.0.0.1/32 md5\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )?;

        let mut server = PostgresServer {
            child: None,
            port: 0,
            bin,
            dir,
        };
        // A port freed a moment ago can be taken before the server binds
        // it: try a few.
        let mut last_error = None;
        for _ in 0..3 {
            match server.launch(as_postgres) {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("tried at least once"))
    }

    fn launch(&mut self, as_postgres: bool) -> Result {
        self.port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(self.dir.path().join("server.log"))?;
        let child = server_command(&self.bin.join("postgres"), as_postgres)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("max_connections={MAX_CONNECTIONS}")])
            .args(["-c", "password_encryption=scram-sha-256"])
            .args(["-c", "fsync=off"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting postgres")?;
        self.child = Some(child);
        let ready = wait_for(Duration::from_secs(30), "postgres to accept", || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("postgres exited at start: {status}\n{}", self.log());
            }
            Ok(self.psql("postgres", &["SELECT 1"]).ok())
        });
        if ready.is_err() {
            self.stop();
        }
        ready.map(drop)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// psql over the unix socket as the superuser, statements in order in
    /// one session; the output is unaligned, without headers.
    fn psql(&self, database: &str, statements: &[&str]) -> Result<String> {
        let mut command = self.psql_command(database);
        for statement in statements {
            command.args(["-c", statement]);
        }
        let out = command.output()?;
        if !out.status.success() {
            bail!(
                "psql {statements:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    fn psql_command(&self, database: &str) -> Command {
        // Local connections are `trust`: no need to be the postgres user.
        let mut command = Command::new(self.bin.join("psql"));
        command
            .arg("-h")
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]);
        command
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGINT: fast shutdown, backends and shared memory cleaned up.
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An interactive psql fed through its stdin, to hold a session (and a
/// transaction) open while the exporter looks. Killed on drop.
struct HeldSession {
    child: Child,
    stdin: ChildStdin,
}

impl HeldSession {
    fn open(server: &PostgresServer, database: &str) -> Result<HeldSession> {
        let mut child = server
            .psql_command(database)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().context("psql stdin")?;
        Ok(HeldSession { child, stdin })
    }

    fn send(&mut self, sql: &str) -> Result {
        writeln!(self.stdin, "{sql}")?;
        Ok(self.stdin.flush()?)
    }
}

impl Drop for HeldSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_raw(lookout: &Lookout, target: &str, config: &str) -> Output {
    support::run_plugin(lookout, "postgres", target, config, "10s")
}

/// `lookout run postgres --json`: the result and what lookout logged.
fn run_exporter(lookout: &Lookout, target: &str, config: &str) -> Result<(Value, String)> {
    support::run_exporter(lookout, "postgres", target, config, "10s")
}

/// postgres_exporter's short version of `SHOW server_version`
/// (`15.8 (Debian …)` → `15.8.0`).
fn expected_short_version(server_version: &str) -> String {
    let number = server_version.split_whitespace().next().unwrap_or_default();
    let mut parts: Vec<&str> = number.split('.').collect();
    parts.resize(3, "0");
    parts.join(".")
}

#[test]
fn exporter_reports_a_real_cluster() -> Result {
    let server = PostgresServer::start()?;
    server.psql(
        "postgres",
        &[
            "CREATE ROLE exporter LOGIN PASSWORD 'exporter-pw' IN ROLE pg_monitor",
            "CREATE ROLE limited LOGIN PASSWORD 'limited-pw'",
            "SET password_encryption = 'md5'",
            "CREATE ROLE legacy LOGIN PASSWORD 'legacy-pw' IN ROLE pg_monitor",
            "CREATE DATABASE app OWNER exporter",
            "REVOKE CONNECT ON DATABASE app FROM PUBLIC",
        ],
    )?;
    let stored = server.psql(
        "postgres",
        &[
            "SELECT rolname || '=' || CASE WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram' \
                                        WHEN rolpassword LIKE 'md5%' THEN 'md5' END \
          FROM pg_authid \
           WHERE rolname IN ('exporter', 'legacy') ORDER BY 1",
        ],
    )?;
    assert_eq!(
        stored, "exporter=scram\nlegacy=md5",
        "one verifier of each kind"
    );
    server.psql(
        "app",
        &[
            "CREATE TABLE items (id int PRIMARY KEY, name text)",
            &format!(
                "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, {INSERTED}) g"
            ),
            &format!("UPDATE items SET name = 'renamed' WHERE id <= {UPDATED}"),
            &format!("DELETE FROM items WHERE id > {}", INSERTED - DELETED),
        ],
    )?;
    let server_version = server.psql("postgres", &["SHOW server_version"])?;

    // An idle session, and one inside a transaction holding a lock.
    let mut idle = HeldSession::open(&server, "app")?;
    idle.send("SELECT 1;")?;
    let mut in_transaction = HeldSession::open(&server, "app")?;
    in_transaction.send("BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE;")?;
    wait_for(Duration::from_secs(10), "the held sessions", || {
        let states = server.psql(
            "postgres",
            &[
                "SELECT string_agg(state, ',' ORDER BY state) FROM pg_stat_activity \
               WHERE datname = 'app' AND application_name = 'psql'",
            ],
        )?;
        Ok((states == "idle,idle in transaction").then_some(()))
    })?;

    let lookout = Lookout::new();
    lookout.install("lookout_plugin_postgres")?;
    let started = now_secs();
    let config = r#"{"user": "exporter", "password": "exporter-pw", "database": "app"}"#;
    let (result, stderr) = run_exporter(&lookout, &server.addr(), config)?;
    let v = |name: &str, labels: &[(&str, &str)]| value(&result, name, labels);

    assert_eq!(v("pg_up", &[])?, 1.0, "{stderr}");
    assert_eq!(v("pg_exporter_last_scrape_error", &[])?, 0.0);
    for collector in [
        "database",
        "locks",
        "postmaster",
        "settings",
        "stat_activity",
        "stat_database",
    ] {
        assert_eq!(
            v("pg_scrape_collector_success", &[("collector", collector)])?,
            1.0,
            "{collector}: {stderr}"
        );
    }

    let short_version = expected_short_version(&server_version);
    let static_info = find(&result, "pg_static", &[("short_version", &short_version)])
        .with_context(|| format!("pg_static for {server_version}: {result:#}"))?;
    let version = label(static_info, "version").unwrap_or_default();
    let number = server_version.split_whitespace().next().unwrap_or_default();
    assert!(
        version.starts_with(&format!("PostgreSQL {number} ")),
        "{version} vs {server_version}"
    );

    assert_eq!(
        v("pg_settings_max_connections", &[])?,
        f64::from(MAX_CONNECTIONS)
    );
    assert_eq!(v("pg_settings_fsync", &[])?, 0.0, "set off with -c");
    assert!(v("pg_settings_shared_buffers_bytes", &[])? >= 128.0 * 1024.0);

    let app = [("datname", "app")];
    assert!(v("pg_stat_database_xact_commit", &app)? > 0.0);
    assert!(v("pg_stat_database_tup_inserted", &app)? >= f64::from(INSERTED));
    assert!(v("pg_stat_database_tup_updated", &app)? >= f64::from(UPDATED));
    assert!(v("pg_stat_database_tup_deleted", &app)? >= f64::from(DELETED));
    assert_eq!(v("pg_stat_database_deadlocks", &app)?, 0.0);
    // The two held sessions and the exporter's own.
    let backends = v("pg_stat_database_numbackends", &app)?;
    assert!(
        (3.0..f64::from(MAX_CONNECTIONS)).contains(&backends),
        "{backends}"
    );
    let datid = find(&result, "pg_stat_database_numbackends", &app)
        .and_then(|s| label(s, "datid"))
        .unwrap_or_default();
    let oid = server.psql(
        "postgres",
        &["SELECT oid FROM pg_database WHERE datname = 'app'"],
    )?;
    assert_eq!(datid, oid);

    let held = |state| {
        [
            ("datname", "app"),
            ("state", state),
            ("usename", "postgres"),
            ("application_name", "psql"),
        ]
    };
    assert_eq!(v("pg_stat_activity_count", &held("idle"))?, 1.0);
    assert_eq!(
        v("pg_stat_activity_count", &held("idle in transaction"))?,
        1.0
    );
    assert!(
        v(
            "pg_stat_activity_max_tx_duration",
            &held("idle in transaction")
        )? > 0.0
    );
    assert_eq!(
        v(
            "pg_stat_activity_count",
            &[("datname", "postgres"), ("state", "active")]
        )?,
        0.0,
        "every state is listed, the exporter's own backend is not counted"
    );
    assert!(
        v(
            "pg_locks_count",
            &[("datname", "app"), ("mode", "accessexclusivelock")]
        )? >= 1.0
    );
    assert_eq!(
        v(
            "pg_locks_count",
            &[("datname", "postgres"), ("mode", "sireadlock")]
        )?,
        0.0
    );

    assert!(v("pg_database_size_bytes", &app)? > 1_000_000.0);
    assert_eq!(v("pg_database_connection_limit", &app)?, -1.0);
    let postmaster = v("pg_postmaster_start_time_seconds", &[])?;
    assert!(
        (started - 300.0..=now_secs()).contains(&postmaster),
        "{postmaster}"
    );

    // MD5 authentication, and the credentials in a URL.
    let (result, stderr) = run_exporter(
        &lookout,
        &server.addr(),
        r#"{"user": "legacy", "password": "legacy-pw"}"#,
    )?;
    assert_eq!(value(&result, "pg_up", &[])?, 1.0, "md5: {stderr}");
    let url = format!(
        "postgres://exporter:exporter-pw@{}/app?sslmode=disable",
        server.addr()
    );
    let (result, stderr) = run_exporter(&lookout, &url, "{}")?;
    assert_eq!(value(&result, "pg_up", &[])?, 1.0, "URL: {stderr}");

    // A role without pg_monitor may not size a database it cannot connect
    // to: that sample is left out, the rest stays.
    let (result, stderr) = run_exporter(
        &lookout,
        &server.addr(),
        r#"{"user": "limited", "password": "limited-pw"}"#,
    )?;
    assert_eq!(value(&result, "pg_up", &[])?, 1.0, "{stderr}");
    assert!(find(&result, "pg_database_size_bytes", &app).is_none());
    assert!(
        value(
            &result,
            "pg_database_size_bytes",
            &[("datname", "postgres")]
        )? > 0.0
    );
    assert_eq!(
        value(
            &result,
            "pg_scrape_collector_success",
            &[("collector", "database")]
        )?,
        1.0
    );
    Ok(())
}

#[test]
fn refused_logins_and_unreachable_servers_are_pg_up_0() -> Result {
    let server = PostgresServer::start()?;
    server.psql(
        "postgres",
        &["CREATE ROLE exporter LOGIN PASSWORD 'exporter-pw' IN ROLE pg_monitor"],
    )?;
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_postgres")?;
    let addr = server.addr();

    let (result, stderr) = run_exporter(
        &lookout,
        &addr,
        r#"{"user": "exporter", "password": "wrong"}"#,
    )?;
    assert_eq!(value(&result, "pg_up", &[])?, 0.0);
    assert_eq!(value(&result, "pg_exporter_last_scrape_error", &[])?, 1.0);
    assert!(
        stderr.contains(r#"password authentication failed for user "exporter" (SQLSTATE 28P01)"#),
        "{stderr}"
    );
    assert!(find(&result, "pg_stat_database_xact_commit", &[]).is_none());

    let (result, stderr) = run_exporter(&lookout, &addr, r#"{"user": "exporter"}"#)?;
    assert_eq!(value(&result, "pg_up", &[])?, 0.0);
    assert!(
        stderr.contains("the server wants a password for user `exporter`; set `password`"),
        "{stderr}"
    );

    let (result, stderr) = run_exporter(
        &lookout,
        &addr,
        r#"{"user": "exporter", "password": "exporter-pw", "database": "missing"}"#,
    )?;
    assert_eq!(value(&result, "pg_up", &[])?, 0.0);
    assert!(
        stderr.contains(r#"database "missing" does not exist"#),
        "{stderr}"
    );

    // Port 1 (tcpmux) has no listener on a test machine: refused.
    let (result, stderr) = run_exporter(&lookout, "127.0.0.1:1", "{}")?;
    assert_eq!(value(&result, "pg_up", &[])?, 0.0);
    assert!(stderr.contains("connection refused"), "{stderr}");

    // A server that never answers: pg_up 0 once the deadline the host gives
    // the plugin (a little under --timeout) passes.
    let (silent, _listener) = silent_server()?;
    let started = Instant::now();
    let (result, stderr) =
        support::run_exporter(&lookout, "postgres", &silent.to_string(), "{}", "2s")?;
    let waited = started.elapsed();
    assert_eq!(value(&result, "pg_up", &[])?, 0.0);
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(
        (Duration::from_millis(1500)..Duration::from_secs(5)).contains(&waited),
        "{waited:?}"
    );

    for (target, config, expected) in [
        (
            format!("postgres://{addr}/app?sslmode=require"),
            "{}",
            "sslmode `require` is not supported",
        ),
        (
            addr.clone(),
            r#"{"sslmode": "verify-full"}"#,
            "set `sslmode` to `disable`",
        ),
        (
            addr.clone(),
            r#"{"username": "x"}"#,
            "unknown field `username`",
        ),
        ("mysql://127.0.0.1:1".to_string(), "{}", "scheme `mysql://`"),
    ] {
        let out = run_raw(&lookout, &target, config);
        support::assert_plugin_config_error(&out, expected, &format!("{target} {config}"));
    }
    Ok(())
}
