//! `redis` exporter: a Redis (or Valkey) server's `INFO ALL` and `CONFIG`
//! as samples named like oliver006/redis_exporter's, so its dashboards and
//! alert rules work unchanged.
//!
//! Target: `host:port` (`[v6]:port`; the port defaults to 6379) or a URL
//! `redis://[user[:password]@]host[:port][/db]` (percent-escapes allowed in
//! the credentials). `rediss://` (TLS) and unix sockets are not supported
//! and refused as configuration errors. Configuration (all optional):
//!
//! ```json
//! { "username": "exporter", "password": "s3cret", "config_command": "CONFIG" }
//! ```
//!
//! - `username`, `password`: sent with `AUTH` (`AUTH password` without a
//!   user name). They take precedence over credentials in a URL target. A
//!   user name without a password is refused.
//! - `config_command`: the name of the `CONFIG` command, for servers that
//!   renamed it; `"-"` skips `CONFIG GET` and the `redis_config_*` samples.
//!   A server that refuses it (ACLs) only loses those samples.
//!
//! Grants: tcp `{target}` (the target's host and port).
//!
//! Samples, as redis_exporter names them:
//! - `redis_up` (1 when the server answered INFO), `redis_exporter_last_scrape_error{err}`,
//!   `redis_exporter_last_scrape_duration_seconds`,
//!   `redis_exporter_last_scrape_connect_time_seconds`;
//! - INFO fields renamed with their units: `redis_uptime_in_seconds`,
//!   `redis_start_time_seconds`, `redis_connected_clients`,
//!   `redis_blocked_clients`, `redis_memory_used_bytes`,
//!   `redis_memory_max_bytes`, `redis_commands_processed_total`,
//!   `redis_connections_received_total`, `redis_keyspace_hits_total`,
//!   `redis_keyspace_misses_total`, `redis_evicted_keys_total`,
//!   `redis_expired_keys_total`, `redis_net_input_bytes_total`,
//!   `redis_rdb_changes_since_last_save`, `redis_connected_slaves`,
//!   `redis_cpu_sys_seconds_total` … (the full table is `INFO_FIELDS` in
//!   `metrics.rs`);
//! - `redis_instance_info{role,redis_version,redis_build_id,redis_mode,os,maxmemory_policy,tcp_port,run_id,process_id,master_replid}` 1;
//! - per database `redis_db_keys{db="db0"}`, `redis_db_keys_expiring`,
//!   `redis_db_avg_ttl_seconds`;
//! - per command `redis_commands_total{cmd}`,
//!   `redis_commands_duration_seconds_total{cmd}`,
//!   `redis_commands_rejected_calls_total{cmd}`,
//!   `redis_commands_failed_calls_total{cmd}`, and the summary
//!   `redis_latency_percentiles_usec{cmd,quantile}` with `_sum`/`_count`;
//!   per error type `redis_errors_total{err}`;
//! - replication: `redis_master_link_up{master_host,master_port}`,
//!   `redis_master_last_io_seconds_ago`, `redis_slave_repl_offset`,
//!   `redis_slave_info`, `redis_connected_slave_offset_bytes{slave_ip,slave_port,slave_state}`,
//!   `redis_connected_slave_lag_seconds`;
//! - from CONFIG: `redis_config_maxmemory`, `redis_config_maxclients`,
//!   `redis_config_io_threads`, `redis_config_repl_backlog_size`,
//!   `redis_config_client_output_buffer_limit_bytes{class,limit}`,
//!   `redis_config_client_output_buffer_limit_overcome_seconds{class,limit}`.
//!
//! Failures: a server that cannot be reached (name not resolved, refused,
//! timed out), that refuses `AUTH` (`WRONGPASS`), that wants a password
//! none was given for (`NOAUTH`), or that does not speak RESP gives
//! `redis_up 0` and `redis_exporter_last_scrape_error{err="…"} 1`, and the
//! reason is logged as a warning. A bad target or configuration is a
//! configuration error; an address the sandbox refuses is a permanent
//! error (the grants must change).

mod client;
mod info;
mod metrics;
mod resp;
mod target;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lookout_plugin_sdk::net::{self, Error};
use lookout_plugin_sdk::{
    Exporter, FailureReason, PluginError, PluginInfo, Sample, TARGET, log, plugin_info,
};
use serde::Deserialize;

use crate::client::Connection;
use crate::resp::Reply;
use crate::target::Target;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    username: Option<String>,
    password: Option<String>,
    /// Name of the CONFIG command; `-` skips it.
    config_command: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            username: None,
            password: None,
            config_command: "CONFIG".to_owned(),
        }
    }
}

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "username": { "type": "string", "description": "ACL user for AUTH (Redis 6+); needs password." },
    "password": { "type": "string", "description": "Password for AUTH; overrides one in a redis:// target." },
    "config_command": { "type": "string", "default": "CONFIG", "description": "Name of the CONFIG command if renamed; \"-\" skips CONFIG GET." }
  }
}"#;

/// Who to authenticate as, from the config and the target URL.
struct Credentials {
    username: Option<String>,
    password: Option<String>,
}

impl Credentials {
    fn new(config: &Config, target: &Target) -> Result<Self, PluginError> {
        let username = config.username.clone().or_else(|| target.username.clone());
        let password = config.password.clone().or_else(|| target.password.clone());
        if username.is_some() && password.is_none() {
            return Err(PluginError::config(
                "`username` is set but `password` is not: AUTH needs both",
            ));
        }
        Ok(Self { username, password })
    }
}

struct RedisExporter;

impl Exporter for RedisExporter {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("redis")
            .description(
                "Collects a Redis server's INFO and CONFIG as samples named like \
                 oliver006/redis_exporter's (redis_up, redis_memory_used_bytes, \
                 redis_db_keys …). Target: host:port or redis://[user:password@]host:port.",
            )
            .config_schema(CONFIG_SCHEMA)
            .tcp([TARGET])
    }

    fn collect(
        target: &str,
        config: Config,
        timeout: Duration,
    ) -> Result<Vec<Sample>, PluginError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let parsed = target::parse(target).map_err(PluginError::config)?;
        let credentials = Credentials::new(&config, &parsed)?;
        let config_command = match config.config_command.as_str() {
            "-" => None,
            name if !name.is_empty() && !name.contains(char::is_whitespace) => Some(name),
            other => {
                return Err(PluginError::config(format!(
                    "`config_command` {other:?} is not a command name (use \"-\" to skip CONFIG)"
                )));
            }
        };

        let mut samples = Vec::new();
        let outcome = scrape(
            &parsed,
            &credentials,
            config_command,
            deadline,
            &mut samples,
        );
        let elapsed = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => samples.extend(metrics::scrape_samples(None, elapsed)),
            Err(error) if error.is_job_error() => return Err(error.into()),
            // Redis is down or refuses us: as redis_exporter does, report
            // `redis_up 0`, with the error in
            // `redis_exporter_last_scrape_error`.
            Err(error) => {
                let message = error.message().to_owned();
                log::warn!("redis {}: {message}", target::redact(target));
                samples.extend(metrics::scrape_samples(Some(&message), elapsed));
            }
        }
        Ok(samples)
    }
}

/// Connects, authenticates, reads INFO ALL and CONFIG; pushes samples as
/// they are known.
fn scrape(
    target: &Target,
    credentials: &Credentials,
    config_command: Option<&str>,
    deadline: Instant,
    samples: &mut Vec<Sample>,
) -> Result<(), Error> {
    let addresses = net::resolve(&target.host, target.port, net::remaining(deadline))?;
    let connecting = Instant::now();
    let connection = Connection::open(&addresses, deadline);
    samples.push(metrics::connect_time_sample(
        connecting.elapsed().as_secs_f64(),
    ));
    let mut connection = connection?;

    if let Some(password) = &credentials.password {
        let mut auth: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(username) = &credentials.username {
            auth.push(username.as_bytes());
        }
        auth.push(password.as_bytes());
        if let Reply::Error(message) = connection.command(&auth)? {
            return Err(refused(format!("AUTH failed: {message}")));
        }
    }

    let info = read_info(&mut connection)?;
    let fields = info::parse(&info);
    if fields.is_empty() {
        return Err(Error::new(
            FailureReason::Protocol,
            "INFO answered no fields",
        ));
    }

    if let Some(command) = config_command {
        match connection.command(&[command.as_bytes(), b"GET", b"*"])? {
            Reply::Array(Some(items)) => samples.extend(metrics::config_samples(&pairs(items))),
            Reply::Error(message) => {
                log::debug!("{command} GET * refused ({message}); no redis_config_* samples");
            }
            other => log::debug!("{command} GET * answered {other:?}; no redis_config_* samples"),
        }
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    samples.extend(metrics::info_samples(&fields, now));
    Ok(())
}

/// `INFO ALL`, or plain `INFO` from a server too old for `ALL`.
fn read_info(connection: &mut Connection) -> Result<String, Error> {
    let mut reply = connection.command(&[b"INFO", b"ALL"])?;
    if let Reply::Error(message) = &reply
        && !message.starts_with("NOAUTH")
    {
        reply = connection.command(&[b"INFO"])?;
    }
    match reply {
        Reply::Error(message) if message.starts_with("NOAUTH") => Err(refused(format!(
            "the server requires a password ({message}); set `password`"
        ))),
        Reply::Error(message) => Err(refused(format!("INFO failed: {message}"))),
        other => other.into_text().ok_or_else(|| {
            Error::new(
                FailureReason::Protocol,
                "INFO answered something other than text",
            )
        }),
    }
}

/// The server refused a command (wrong password, missing permission).
fn refused(message: String) -> Error {
    Error::new(FailureReason::Other, message)
}

/// A flat `[key, value, key, value …]` reply as pairs; non-text items are
/// dropped.
fn pairs(items: Vec<Reply>) -> Vec<(String, String)> {
    let mut texts = items.into_iter().map(Reply::into_text);
    let mut out = Vec::new();
    while let (Some(key), Some(value)) = (texts.next(), texts.next()) {
        if let (Some(key), Some(value)) = (key, value) {
            out.push((key, value));
        }
    }
    out
}

lookout_plugin_sdk::export_exporter!(RedisExporter);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<Config, PluginError> {
        lookout_plugin_sdk::parse_config(json)
    }

    #[test]
    fn config_fields_and_defaults() {
        let default = config("").unwrap();
        assert_eq!(default.config_command, "CONFIG");
        let Err(PluginError::Config(message)) = config(r#"{"passwd": "x"}"#) else {
            panic!("a misspelt field must be refused");
        };
        assert!(message.contains("passwd"), "{message}");
    }

    #[test]
    fn config_credentials_override_the_url() {
        let target = target::parse("redis://alice:from-url@h:1").unwrap();
        let only_url = Credentials::new(&config("").unwrap(), &target).unwrap();
        assert_eq!(only_url.username.as_deref(), Some("alice"));
        assert_eq!(only_url.password.as_deref(), Some("from-url"));
        let both =
            Credentials::new(&config(r#"{"password": "from-config"}"#).unwrap(), &target).unwrap();
        assert_eq!(both.password.as_deref(), Some("from-config"));

        let plain = target::parse("h:1").unwrap();
        let Err(PluginError::Config(message)) =
            Credentials::new(&config(r#"{"username": "bob"}"#).unwrap(), &plain)
        else {
            panic!("a user name without password must be refused");
        };
        assert!(message.contains("`password`"), "{message}");
    }

    #[test]
    fn config_get_pairs() {
        let bulk = |s: &str| Reply::Bulk(Some(s.as_bytes().to_vec()));
        let items = vec![
            bulk("maxmemory"),
            bulk("0"),
            bulk("databases"),
            Reply::Integer(16),
            bulk("dangling"),
        ];
        assert_eq!(pairs(items), [("maxmemory".to_owned(), "0".to_owned())]);
    }
}
