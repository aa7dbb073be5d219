//! The queries and how their rows become samples, named and labelled as
//! prometheus-community/postgres_exporter (v0.20) names them, so its
//! dashboards and alert rules work unchanged. Each collector is one query,
//! as upstream's collectors of the same name.

use lookout_plugin_sdk::Sample;

use crate::client::Rows;

/// One collector: a query for the server's major version, and what its
/// rows mean.
pub struct Collector {
    /// postgres_exporter's collector name (`pg_scrape_collector_success{collector}`).
    pub name: &'static str,
    pub query: fn(major_version: u32) -> String,
    pub samples: fn(&Rows) -> Vec<Sample>,
}

/// The collectors run on every collection, in this order.
pub const COLLECTORS: &[Collector] = &[
    Collector {
        name: "database",
        query: |_| DATABASE_QUERY.to_owned(),
        samples: database_samples,
    },
    Collector {
        name: "locks",
        query: |_| locks_query(),
        samples: locks_samples,
    },
    Collector {
        name: "postmaster",
        query: |_| "SELECT extract(epoch FROM pg_postmaster_start_time())::float8".to_owned(),
        samples: postmaster_samples,
    },
    Collector {
        name: "settings",
        query: |_| SETTINGS_QUERY.to_owned(),
        samples: settings_samples,
    },
    Collector {
        name: "stat_activity",
        query: |_| stat_activity_query(),
        samples: stat_activity_samples,
    },
    Collector {
        name: "stat_database",
        query: stat_database_query,
        samples: stat_database_samples,
    },
];

/// Size and connection limit per database. `pg_database_size` needs the
/// CONNECT privilege on the database (or pg_read_all_stats); a database the
/// user may not size gets no size sample instead of failing the whole
/// collector.
const DATABASE_QUERY: &str = "SELECT datname, datconnlimit, \
     CASE WHEN has_database_privilege(oid, 'CONNECT') \
               OR pg_has_role('pg_read_all_stats', 'USAGE') \
          THEN pg_database_size(oid) END \
     FROM pg_database";

fn database_samples(rows: &Rows) -> Vec<Sample> {
    let mut out = Vec::new();
    for row in &rows.rows {
        let Some(datname) = text(row, 0) else {
            continue;
        };
        let labels = [("datname", datname)];
        let limit = number(row, 1).unwrap_or(0.0);
        out.push(labeled("pg_database_connection_limit", &labels, limit));
        if let Some(size) = number(row, 2) {
            out.push(labeled("pg_database_size_bytes", &labels, size));
        }
    }
    out
}

/// Lock modes postgres_exporter reports, lower-cased as in its labels.
const LOCK_MODES: &[&str] = &[
    "accesssharelock",
    "rowsharelock",
    "rowexclusivelock",
    "shareupdateexclusivelock",
    "sharelock",
    "sharerowexclusivelock",
    "exclusivelock",
    "accessexclusivelock",
    "sireadlock",
];

/// Locks held or awaited per database and mode, every mode listed (0 when
/// none) so the series do not come and go.
fn locks_query() -> String {
    format!(
        "SELECT d.datname, m.mode, COALESCE(l.count, 0) \
         FROM pg_database d \
         CROSS JOIN (VALUES {}) AS m(mode) \
         LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS count \
                    FROM pg_locks WHERE database IS NOT NULL GROUP BY 1, 2) l \
                ON l.database = d.oid AND l.mode = m.mode \
         ORDER BY 1, 2",
        sql_values(LOCK_MODES)
    )
}

fn locks_samples(rows: &Rows) -> Vec<Sample> {
    rows.rows
        .iter()
        .filter_map(|row| {
            let labels = [("datname", text(row, 0)?), ("mode", text(row, 1)?)];
            Some(labeled(
                "pg_locks_count",
                &labels,
                number(row, 2).unwrap_or(0.0),
            ))
        })
        .collect()
}

fn postmaster_samples(rows: &Rows) -> Vec<Sample> {
    let start = rows.rows.first().and_then(|row| number(row, 0));
    vec![Sample::new(
        "pg_postmaster_start_time_seconds",
        start.unwrap_or(0.0),
    )]
}

/// Numeric and boolean server settings.
const SETTINGS_QUERY: &str = "SELECT name, setting, COALESCE(unit, ''), vartype \
     FROM pg_settings WHERE vartype IN ('bool', 'integer', 'real')";

fn settings_samples(rows: &Rows) -> Vec<Sample> {
    rows.rows
        .iter()
        .filter_map(|row| {
            setting_sample(text(row, 0)?, text(row, 1)?, text(row, 2)?, text(row, 3)?)
        })
        .collect()
}

/// `pg_settings_<name>[_seconds|_bytes]`: booleans as 1/0, times in
/// seconds and sizes in bytes (postgres_exporter's unit normalisation);
/// `-1` (disabled) stays `-1`. A value or unit that does not parse gives no
/// sample.
pub fn setting_sample(name: &str, setting: &str, unit: &str, vartype: &str) -> Option<Sample> {
    let name = name.replace(['.', '-'], "_");
    if vartype == "bool" {
        return Some(Sample::new(
            format!("pg_settings_{name}"),
            f64::from(u8::from(setting == "on")),
        ));
    }
    let value: f64 = setting
        .parse()
        .ok()
        // Some managed services print the unit into the value (`100ms`).
        .or_else(|| setting.strip_suffix(unit)?.trim().parse().ok())?;
    let (suffix, factor) = match unit {
        "" => ("", 1.0),
        "ms" => ("_seconds", 1e-3),
        "s" => ("_seconds", 1.0),
        "min" => ("_seconds", 60.0),
        "h" => ("_seconds", 3600.0),
        "d" => ("_seconds", 86400.0),
        // Sizes: plain units or PostgreSQL's block units (`8kB` pages,
        // `16MB` WAL segments).
        sized => ("_bytes", bytes_per_unit(sized)?),
    };
    let value = if value == -1.0 { value } else { value * factor };
    Some(Sample::new(format!("pg_settings_{name}{suffix}"), value))
}

/// Bytes in a size unit of pg_settings: `B`, `kB`, `MB`, `GB`, `TB`, or a
/// multiple such as `8kB`.
fn bytes_per_unit(unit: &str) -> Option<f64> {
    let digits_end = unit
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unit.len());
    let (count, base) = unit.split_at(digits_end);
    let count: f64 = if count.is_empty() {
        1.0
    } else {
        count.parse().ok()?
    };
    let base = match base {
        "B" => 1.0,
        "kB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(count * base)
}

/// Labels of the stat_activity metrics, in the order of the query's
/// columns.
const STAT_ACTIVITY_LABELS: &[&str] = &[
    "datname",
    "state",
    "usename",
    "application_name",
    "backend_type",
    "wait_event_type",
    "wait_event",
];

/// The states of pg_stat_activity postgres_exporter lists.
const BACKEND_STATES: &[&str] = &[
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
];

/// Backends per database and state (and user, application, backend type,
/// wait event), with the age of their oldest transaction. Every state of
/// every database is listed (count 0 when none), our own backend is not.
fn stat_activity_query() -> String {
    format!(
        "SELECT d.datname, s.state, a.usename, a.application_name, \
                a.backend_type, a.wait_event_type, a.wait_event, \
                COALESCE(a.count, 0), COALESCE(a.max_tx_duration, 0) \
         FROM pg_database d \
         CROSS JOIN (VALUES {}) AS s(state) \
         LEFT JOIN (SELECT datname, state, usename, application_name, backend_type, \
                           wait_event_type, wait_event, count(*) AS count, \
                           max(extract(epoch FROM now() - xact_start))::float8 AS max_tx_duration \
                    FROM pg_stat_activity WHERE pid <> pg_backend_pid() \
                    GROUP BY 1, 2, 3, 4, 5, 6, 7) a \
                ON a.datname = d.datname AND a.state = s.state",
        sql_values(BACKEND_STATES)
    )
}

/// `('a'), ('b')`: constants as a VALUES list (they hold no quotes).
fn sql_values(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("('{item}')"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn stat_activity_samples(rows: &Rows) -> Vec<Sample> {
    let mut out = Vec::new();
    for row in &rows.rows {
        let labels: Vec<(&str, &str)> = STAT_ACTIVITY_LABELS
            .iter()
            .enumerate()
            .map(|(i, &name)| (name, text(row, i).unwrap_or("")))
            .collect();
        let columns = STAT_ACTIVITY_LABELS.len();
        if let Some(count) = number(row, columns) {
            out.push(labeled("pg_stat_activity_count", &labels, count));
        }
        if let Some(duration) = number(row, columns + 1) {
            out.push(labeled(
                "pg_stat_activity_max_tx_duration",
                &labels,
                duration,
            ));
        }
    }
    out
}

/// Columns of pg_stat_database exported as `pg_stat_database_<column>`,
/// after `datid` and `datname`.
const STAT_DATABASE_COLUMNS: &[&str] = &[
    "numbackends",
    "xact_commit",
    "xact_rollback",
    "blks_read",
    "blks_hit",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "conflicts",
    "temp_files",
    "temp_bytes",
    "deadlocks",
    "blk_read_time",
    "blk_write_time",
];

/// `active_time` arrived in PostgreSQL 14.
const ACTIVE_TIME_SINCE: u32 = 14;

fn stat_database_query(major_version: u32) -> String {
    let active_time = if major_version >= ACTIVE_TIME_SINCE {
        ", active_time"
    } else {
        ""
    };
    format!(
        "SELECT datid, datname, {}, extract(epoch FROM stats_reset)::float8{active_time} \
         FROM pg_stat_database",
        STAT_DATABASE_COLUMNS.join(", ")
    )
}

fn stat_database_samples(rows: &Rows) -> Vec<Sample> {
    let mut out = Vec::new();
    for row in &rows.rows {
        // The row of shared objects (datid 0, no name) is skipped, as are
        // rows missing a counter, as postgres_exporter does.
        let (Some(datid), Some(datname)) = (text(row, 0), text(row, 1)) else {
            continue;
        };
        let Some(values) = (0..STAT_DATABASE_COLUMNS.len())
            .map(|i| number(row, 2 + i))
            .collect::<Option<Vec<f64>>>()
        else {
            continue;
        };
        let labels = [("datid", datid), ("datname", datname)];
        for (column, value) in STAT_DATABASE_COLUMNS.iter().zip(values) {
            out.push(labeled(
                &format!("pg_stat_database_{column}"),
                &labels,
                value,
            ));
        }
        let after = 2 + STAT_DATABASE_COLUMNS.len();
        // Never reset: 0, as upstream.
        let stats_reset = number(row, after).unwrap_or(0.0);
        out.push(labeled(
            "pg_stat_database_stats_reset",
            &labels,
            stats_reset,
        ));
        if let Some(active_ms) = number(row, after + 1) {
            out.push(labeled(
                "pg_stat_database_active_time_seconds_total",
                &labels,
                active_ms / 1000.0,
            ));
        }
    }
    out
}

/// postgres_exporter's semantic version of `version()`: the number after
/// the first word, padded to three parts (`PostgreSQL 15.8 (Debian …)` →
/// `15.8.0`).
pub fn short_version(version: &str) -> Option<String> {
    let (word, rest) = version.split_once(' ')?;
    if word.is_empty() || !word.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let number_end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let mut parts: Vec<u64> = Vec::new();
    for part in rest[..number_end].split('.').take(3) {
        match part.parse() {
            Ok(n) => parts.push(n),
            Err(_) => break,
        }
    }
    if parts.is_empty() {
        return None;
    }
    parts.resize(3, 0);
    Some(format!("{}.{}.{}", parts[0], parts[1], parts[2]))
}

/// The major version in a short version (`15.8.0` → 15).
pub fn major_version(short_version: &str) -> u32 {
    short_version
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or(0)
}

/// `pg_static{version,short_version} 1`.
pub fn static_sample(version: &str, short_version: &str) -> Sample {
    labeled(
        "pg_static",
        &[("version", version), ("short_version", short_version)],
        1.0,
    )
}

/// `pg_scrape_collector_success{collector}` and
/// `pg_scrape_collector_duration_seconds{collector}`.
pub fn collector_samples(name: &str, success: bool, seconds: f64) -> [Sample; 2] {
    let labels = [("collector", name)];
    [
        labeled(
            "pg_scrape_collector_success",
            &labels,
            f64::from(u8::from(success)),
        ),
        labeled("pg_scrape_collector_duration_seconds", &labels, seconds),
    ]
}

/// `pg_up`, `pg_exporter_last_scrape_error` and
/// `pg_exporter_last_scrape_duration_seconds`.
pub fn scrape_samples(up: bool, seconds: f64) -> [Sample; 3] {
    [
        Sample::new("pg_up", f64::from(u8::from(up))),
        Sample::new("pg_exporter_last_scrape_error", f64::from(u8::from(!up))),
        Sample::new("pg_exporter_last_scrape_duration_seconds", seconds),
    ]
}

fn labeled(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
    labels
        .iter()
        .fold(Sample::new(name, value), |s, (k, v)| s.label(*k, *v))
}

fn text(row: &[Option<String>], column: usize) -> Option<&str> {
    row.get(column)?.as_deref()
}

fn number(row: &[Option<String>], column: usize) -> Option<f64> {
    text(row, column)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(data: &[&[Option<&str>]]) -> Rows {
        Rows {
            columns: Vec::new(),
            rows: data
                .iter()
                .map(|row| row.iter().map(|v| v.map(str::to_owned)).collect())
                .collect(),
        }
    }

    fn find<'s>(samples: &'s [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'s Sample> {
        samples.iter().find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
    }

    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
        find(samples, name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in {samples:#?}"))
            .value
    }

    #[test]
    fn versions_as_postgres_exporter_reads_them() {
        let debian =
            "PostgreSQL 15.8 (Debian 15.8-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc";
        assert_eq!(short_version(debian).as_deref(), Some("15.8.0"));
        assert_eq!(
            short_version("PostgreSQL 9.6.24 on x86_64").as_deref(),
            Some("9.6.24")
        );
        assert_eq!(
            short_version("PostgreSQL 17beta1 on aarch64").as_deref(),
            Some("17.0.0")
        );
        assert_eq!(short_version("garbage"), None);
        assert_eq!(short_version("PostgreSQL x"), None);
        assert_eq!(major_version("15.8.0"), 15);
        let info = static_sample(debian, "15.8.0");
        assert_eq!(info.labels[0], ("version".into(), debian.into()));
    }

    #[test]
    fn settings_in_base_units() {
        let s =
            |name, setting, unit, vartype| setting_sample(name, setting, unit, vartype).unwrap();
        let max = s("max_connections", "37", "", "integer");
        assert_eq!(
            (max.name.as_str(), max.value),
            ("pg_settings_max_connections", 37.0)
        );
        let buffers = s("shared_buffers", "16384", "8kB", "integer");
        assert_eq!(buffers.name, "pg_settings_shared_buffers_bytes");
        assert_eq!(buffers.value, 16384.0 * 8192.0);
        let wal = s("max_wal_size", "1024", "MB", "integer");
        assert_eq!(wal.value, 1024.0 * 1024.0 * 1024.0);
        let segment = s("wal_segment_size", "16777216", "B", "integer");
        assert_eq!(segment.value, 16_777_216.0);
        let timeout = s("statement_timeout", "1500", "ms", "integer");
        assert_eq!(
            (timeout.name.as_str(), timeout.value),
            ("pg_settings_statement_timeout_seconds", 1.5)
        );
        assert_eq!(s("autovacuum_naptime", "1", "min", "integer").value, 60.0);
        assert_eq!(s("log_rotation_age", "1", "d", "integer").value, 86400.0);
        assert_eq!(s("temp_file_limit", "-1", "kB", "integer").value, -1.0);
        assert_eq!(s("fsync", "on", "", "bool").value, 1.0);
        assert_eq!(s("ssl", "off", "", "bool").value, 0.0);
        let dotted = s("pg_stat_statements.max", "5000", "", "integer");
        assert_eq!(dotted.name, "pg_settings_pg_stat_statements_max");
        assert_eq!(s("aurora_thing", "100ms", "ms", "integer").value, 0.1);
        assert!(setting_sample("odd", "1", "furlongs", "integer").is_none());
        assert!(setting_sample("odd", "many", "", "integer").is_none());
    }

    #[test]
    fn stat_database_rows() {
        let query = stat_database_query(15);
        assert!(
            query.contains("xact_commit") && query.ends_with("active_time FROM pg_stat_database")
        );
        assert!(!stat_database_query(13).contains("active_time"));

        let counters: Vec<String> = (1..=16).map(|n| n.to_string()).collect();
        let mut app: Vec<Option<&str>> = vec![Some("16384"), Some("app")];
        app.extend(counters.iter().map(|c| Some(c.as_str())));
        app.extend([Some("1700000000.5"), Some("2500")]);
        let mut shared: Vec<Option<&str>> = vec![Some("0"), None];
        shared.extend(counters.iter().map(|c| Some(c.as_str())));
        shared.extend([None, Some("0")]);
        let samples = stat_database_samples(&rows(&[&app, &shared]));
        let db = [("datid", "16384"), ("datname", "app")];
        assert_eq!(value(&samples, "pg_stat_database_numbackends", &db), 1.0);
        assert_eq!(value(&samples, "pg_stat_database_xact_commit", &db), 2.0);
        assert_eq!(value(&samples, "pg_stat_database_tup_inserted", &db), 8.0);
        assert_eq!(
            value(&samples, "pg_stat_database_blk_write_time", &db),
            16.0
        );
        assert_eq!(
            value(&samples, "pg_stat_database_stats_reset", &db),
            1_700_000_000.5
        );
        assert_eq!(
            value(&samples, "pg_stat_database_active_time_seconds_total", &db),
            2.5
        );
        assert_eq!(samples.len(), 16 + 2, "the nameless shared row is skipped");
    }

    #[test]
    fn activity_locks_and_databases() {
        let activity = rows(&[
            &[
                Some("app"),
                Some("idle"),
                Some("alice"),
                Some("psql"),
                Some("client backend"),
                Some("Client"),
                Some("ClientRead"),
                Some("2"),
                Some("0"),
            ],
            &[
                Some("app"),
                Some("active"),
                None,
                None,
                None,
                None,
                None,
                Some("0"),
                Some("0"),
            ],
        ]);
        let samples = stat_activity_samples(&activity);
        let idle = [("datname", "app"), ("state", "idle"), ("usename", "alice")];
        assert_eq!(value(&samples, "pg_stat_activity_count", &idle), 2.0);
        let active = find(&samples, "pg_stat_activity_count", &[("state", "active")]).unwrap();
        assert_eq!(active.labels.len(), STAT_ACTIVITY_LABELS.len());
        assert_eq!(active.labels[2], ("usename".into(), String::new()));
        assert_eq!(
            value(&samples, "pg_stat_activity_max_tx_duration", &idle),
            0.0
        );

        let locks = locks_samples(&rows(&[&[Some("app"), Some("accesssharelock"), Some("3")]]));
        assert_eq!(
            value(
                &locks,
                "pg_locks_count",
                &[("datname", "app"), ("mode", "accesssharelock")]
            ),
            3.0
        );

        let databases = database_samples(&rows(&[
            &[Some("app"), Some("-1"), Some("7500000")],
            &[Some("secret"), Some("10"), None],
        ]));
        assert_eq!(
            value(&databases, "pg_database_size_bytes", &[("datname", "app")]),
            7_500_000.0
        );
        assert_eq!(
            value(
                &databases,
                "pg_database_connection_limit",
                &[("datname", "app")]
            ),
            -1.0
        );
        assert!(
            find(
                &databases,
                "pg_database_size_bytes",
                &[("datname", "secret")]
            )
            .is_none()
        );
        assert_eq!(
            value(
                &databases,
                "pg_database_connection_limit",
                &[("datname", "secret")]
            ),
            10.0
        );
    }

    #[test]
    fn values_lists() {
        assert_eq!(sql_values(&["idle", "active"]), "('idle'), ('active')");
        assert!(locks_query().contains("('sireadlock')) AS m(mode)"));
        assert!(stat_activity_query().contains("('disabled')) AS s(state)"));
    }
}
