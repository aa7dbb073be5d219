//! `postgres` exporter: a PostgreSQL server's statistics as samples named
//! like prometheus-community/postgres_exporter's (v0.20), so its dashboards
//! and alert rules work unchanged. It speaks the frontend/backend protocol
//! v3 itself over the sandbox's TCP, with the simple query protocol.
//!
//! Target: `host:port` (`[v6]:port`; the port defaults to 5432) or a URL
//! `postgres://[user[:password]@]host[:port][/database][?sslmode=disable]`
//! (`postgresql://` too; percent-escapes allowed; URL parameters `sslmode`,
//! `user`, `password`, `dbname`). Configuration (all optional; each field
//! takes precedence over the URL):
//!
//! ```json
//! { "user": "postgres_exporter", "password": "s3cret", "database": "postgres",
//!   "sslmode": "disable" }
//! ```
//!
//! - `user`: defaults to `postgres`. Give it the `pg_monitor` role.
//! - `password`: sent as the server asks: SCRAM-SHA-256 (Debian's default),
//!   MD5 or cleartext; `trust` needs none. Without TLS, a server (or
//!   anything between) asking for cleartext sees the password: prefer
//!   scram-sha-256 in pg_hba.conf. Kerberos, GSSAPI, SSPI and certificate
//!   authentication are not supported.
//! - `database`: where to connect; defaults to `postgres`, the maintenance
//!   database every cluster has. The statistics cover every database either
//!   way.
//! - `sslmode`: only `disable` is supported for now (no TLS): any other
//!   mode (`require`, `prefer`, `verify-full` …) is refused as a
//!   configuration error rather than silently connecting in cleartext.
//!
//! Grants: tcp `{target}` (the target's host and port).
//!
//! Samples, as postgres_exporter names them:
//! - `pg_up` (1 once logged in and `version()` answered),
//!   `pg_exporter_last_scrape_error`, `pg_exporter_last_scrape_duration_seconds`,
//!   `pg_static{version,short_version}` 1;
//! - per collector `pg_scrape_collector_success{collector}` and
//!   `pg_scrape_collector_duration_seconds{collector}`;
//! - `database`: `pg_database_size_bytes{datname}`,
//!   `pg_database_connection_limit{datname}`;
//! - `locks`: `pg_locks_count{datname,mode}`;
//! - `postmaster`: `pg_postmaster_start_time_seconds`;
//! - `settings`: `pg_settings_<name>` for every numeric and boolean
//!   setting, times in `_seconds`, sizes in `_bytes`
//!   (`pg_settings_max_connections`, `pg_settings_shared_buffers_bytes` …);
//! - `stat_activity`: `pg_stat_activity_count` and
//!   `pg_stat_activity_max_tx_duration` (seconds), labelled `datname`,
//!   `state`, `usename`, `application_name`, `backend_type`,
//!   `wait_event_type`, `wait_event`;
//! - `stat_database`: `pg_stat_database_{numbackends,xact_commit,xact_rollback,blks_read,blks_hit,tup_returned,tup_fetched,tup_inserted,tup_updated,tup_deleted,conflicts,temp_files,temp_bytes,deadlocks,blk_read_time,blk_write_time,stats_reset}`
//!   and (PostgreSQL 14+) `pg_stat_database_active_time_seconds_total`,
//!   labelled `datid`, `datname`.
//!
//! Failures: a server that cannot be reached, refuses the login (wrong
//! password, no pg_hba.conf entry, unknown database), asks for an
//! authentication method this exporter lacks, or does not speak the
//! protocol gives `pg_up 0` and `pg_exporter_last_scrape_error 1`, and the
//! reason is logged as a warning. A query that fails (missing privilege)
//! costs only its collector (`pg_scrape_collector_success 0`, logged). A bad
//! target or configuration is a configuration error; an address the
//! sandbox refuses is a permanent error (the grants must change).

mod auth;
mod client;
mod metrics;
mod protocol;
mod target;

use std::time::{Duration, Instant};

use lookout_plugin_sdk::{
    Exporter, PluginError, PluginInfo, Sample, TARGET, log, net, plugin_info,
};
use serde::Deserialize;

use crate::client::{Error, Login, Session};

/// The user when neither the config nor the URL names one, as libpq
/// tools assume it for administration.
const DEFAULT_USER: &str = "postgres";

/// The database when neither the config nor the URL names one: the
/// maintenance database every cluster has. (libpq would take the user's
/// name, which rarely names a database for a monitoring role.)
const DEFAULT_DATABASE: &str = "postgres";

/// The only `sslmode` supported until the exporter speaks TLS.
const SSLMODE_DISABLE: &str = "disable";

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    sslmode: Option<String>,
}

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "user": { "type": "string", "default": "postgres", "description": "Role to log in as (give it pg_monitor)." },
    "password": { "type": "string", "description": "Password for SCRAM-SHA-256, MD5 or cleartext authentication." },
    "database": { "type": "string", "default": "postgres", "description": "Database to connect to." },
    "sslmode": { "type": "string", "enum": ["disable"], "default": "disable", "description": "Only disable is supported (no TLS yet)." }
  }
}"#;

/// Where to connect and how to log in: the target, overridden field by
/// field by the config.
#[derive(Debug)]
struct Settings {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    database: String,
}

impl Settings {
    fn new(target: &str, config: Config) -> Result<Self, PluginError> {
        let target = target::parse(target).map_err(PluginError::config)?;
        let sslmode = config
            .sslmode
            .or(target.sslmode)
            .unwrap_or_else(|| SSLMODE_DISABLE.to_owned());
        if sslmode != SSLMODE_DISABLE {
            return Err(PluginError::config(format!(
                "sslmode `{sslmode}` is not supported: this exporter connects without TLS for \
                 now; set `sslmode` to `disable` (in the config or the URL)"
            )));
        }
        let user = config
            .user
            .or(target.user)
            .unwrap_or_else(|| DEFAULT_USER.to_owned());
        if user.is_empty() {
            return Err(PluginError::config("`user` is empty"));
        }
        let database = config
            .database
            .or(target.database)
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        if database.is_empty() {
            return Err(PluginError::config("`database` is empty"));
        }
        Ok(Self {
            host: target.host,
            port: target.port,
            user,
            password: config.password.or(target.password),
            database,
        })
    }
}

struct PostgresExporter;

impl Exporter for PostgresExporter {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("postgres")
            .description(
                "Collects a PostgreSQL server's statistics (pg_stat_database, pg_stat_activity, \
                 locks, settings, database sizes) as samples named like postgres_exporter's. \
                 Target: host:port or postgres://user:password@host:port/database.",
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
        let settings = Settings::new(target, config)?;
        let mut samples = Vec::new();
        let outcome = scrape(&settings, deadline, &mut samples);
        let elapsed = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => samples.extend(metrics::scrape_samples(true, elapsed)),
            Err(Error::Net(error)) if error.is_job_error() => return Err(error.into()),
            // The server is down or refuses us: as postgres_exporter does,
            // report `pg_up 0`.
            Err(error) => {
                log::warn!("postgres {}: {error}", target::redact(target));
                samples.extend(metrics::scrape_samples(false, elapsed));
            }
        }
        Ok(samples)
    }
}

/// Logs in, reads the version, runs every collector; pushes samples as
/// they are known. `Err` only when no session could be had.
fn scrape(settings: &Settings, deadline: Instant, samples: &mut Vec<Sample>) -> Result<(), Error> {
    let addresses = net::resolve(&settings.host, settings.port, net::remaining(deadline))?;
    let login = Login {
        user: &settings.user,
        password: settings.password.as_deref(),
        database: &settings.database,
    };
    let mut session = Session::open(&addresses, &login, deadline)?;

    let rows = session.query("SELECT version()")?;
    let version = rows
        .rows
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .ok_or_else(|| Error::Protocol("version() answered no row".into()))?;
    let short_version = metrics::short_version(&version).ok_or_else(|| {
        Error::Protocol(format!(
            "version() answered {version:?}, not a PostgreSQL version"
        ))
    })?;
    samples.push(metrics::static_sample(&version, &short_version));
    let major = metrics::major_version(&short_version);

    // Set when the session broke: the remaining collectors cannot run.
    let mut broken: Option<String> = None;
    for collector in metrics::COLLECTORS {
        let begun = Instant::now();
        let outcome = match &broken {
            Some(reason) => Err(reason.clone()),
            None => match session.query(&(collector.query)(major)) {
                Ok(rows) => Ok(rows),
                // The query failed, the session goes on.
                Err(Error::Server(error)) => Err(error.to_string()),
                Err(error) => {
                    let reason = format!("session lost: {error}");
                    broken = Some(reason.clone());
                    Err(reason)
                }
            },
        };
        let success = match outcome {
            Ok(rows) => {
                samples.extend((collector.samples)(&rows));
                true
            }
            Err(reason) => {
                log::warn!("postgres collector {} failed: {reason}", collector.name);
                false
            }
        };
        let seconds = begun.elapsed().as_secs_f64();
        samples.extend(metrics::collector_samples(collector.name, success, seconds));
    }
    if broken.is_none() {
        session.terminate();
    }
    Ok(())
}

lookout_plugin_sdk::export_exporter!(PostgresExporter);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(target: &str, json: &str) -> Result<Settings, PluginError> {
        Settings::new(target, lookout_plugin_sdk::parse_config(json)?)
    }

    #[test]
    fn config_overrides_the_url_field_by_field() {
        let s = settings(
            "postgres://alice:url-pw@db:5433/app",
            r#"{"password": "cfg-pw"}"#,
        )
        .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_str()),
            ("db", 5433, "alice")
        );
        assert_eq!(s.password.as_deref(), Some("cfg-pw"));
        assert_eq!(s.database, "app");
        let s = settings("db", "{}").unwrap();
        assert_eq!((s.user.as_str(), s.port), ("postgres", 5432));
        assert_eq!((s.password, s.database.as_str()), (None, "postgres"));
    }

    #[test]
    fn only_sslmode_disable_is_accepted() {
        assert!(settings("postgres://db/app?sslmode=disable", "{}").is_ok());
        for (target, config) in [
            ("postgres://db/app?sslmode=require", "{}"),
            ("db:5432", r#"{"sslmode": "prefer"}"#),
            (
                "postgres://db/app?sslmode=disable",
                r#"{"sslmode": "verify-full"}"#,
            ),
        ] {
            let Err(PluginError::Config(message)) = settings(target, config) else {
                panic!("{target} {config} must be refused");
            };
            assert!(
                message.contains("not supported") && message.contains("disable"),
                "{message}"
            );
        }
    }

    #[test]
    fn bad_configs_name_the_field() {
        let Err(PluginError::Config(message)) = settings("db", r#"{"username": "x"}"#) else {
            panic!("unknown field");
        };
        assert!(message.contains("username"), "{message}");
        let Err(PluginError::Config(message)) = settings("db", r#"{"user": ""}"#) else {
            panic!("empty user");
        };
        assert!(message.contains("`user`"), "{message}");
        let Err(PluginError::Config(message)) = settings("db", r#"{"database": ""}"#) else {
            panic!("empty database");
        };
        assert!(message.contains("`database`"), "{message}");
        assert!(matches!(
            settings("db:x", "{}"),
            Err(PluginError::Config(_))
        ));
    }
}
