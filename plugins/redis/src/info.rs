//! The text of `INFO ALL`: `# Section` headers and `field:value` lines,
//! some values being `name=value,…` lists (keyspace, command stats,
//! replicas).

/// One `field:value` line of INFO, with the section it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// `Server`, `Keyspace`, `Commandstats` …; empty before the first header.
    pub section: &'a str,
    pub key: &'a str,
    pub value: &'a str,
}

/// The fields of an INFO reply, in order. Lines that are neither a header
/// nor `field:value` are skipped, as redis_exporter does.
pub fn parse(info: &str) -> Vec<Field<'_>> {
    let mut section = "";
    let mut fields = Vec::new();
    for line in info.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix("# ") {
            section = header.trim();
            continue;
        }
        if let Some((key, value)) = line.split_once(':')
            && !key.is_empty()
        {
            fields.push(Field {
                section,
                key,
                value,
            });
        }
    }
    fields
}

/// The value of the first field named `key`.
pub fn get<'a>(fields: &[Field<'a>], key: &str) -> Option<&'a str> {
    fields.iter().find(|f| f.key == key).map(|f| f.value)
}

/// `a=1,b=x` as pairs; `None` when a part has no `=`.
pub fn pairs(value: &str) -> Option<Vec<(&str, &str)>> {
    value.split(',').map(|part| part.split_once('=')).collect()
}

/// The number named `name` in a `name=value,…` list.
fn number_in(pairs: &[(&str, &str)], name: &str) -> Option<f64> {
    pairs
        .iter()
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

/// A value of a plain INFO field as a number: `ok`/`true` read as 1,
/// `err`/`fail`/`false` as 0 (the persistence status fields), anything else
/// must parse as a float.
pub fn number(value: &str) -> Option<f64> {
    match value {
        "ok" | "true" => Some(1.0),
        "err" | "fail" | "false" => Some(0.0),
        other => other.parse().ok(),
    }
}

/// A `dbN:keys=…,expires=…,avg_ttl=…` line of the Keyspace section.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyspace {
    pub keys: f64,
    pub expires: f64,
    /// Milliseconds, when the server reports it.
    pub avg_ttl_ms: Option<f64>,
    /// KeyDB's `cached_keys`.
    pub cached_keys: Option<f64>,
}

pub fn keyspace(value: &str) -> Option<Keyspace> {
    let pairs = pairs(value)?;
    Some(Keyspace {
        keys: number_in(&pairs, "keys")?,
        expires: number_in(&pairs, "expires")?,
        avg_ttl_ms: number_in(&pairs, "avg_ttl"),
        cached_keys: number_in(&pairs, "cached_keys"),
    })
}

/// A `cmdstat_<cmd>:calls=…,usec=…` line of the Commandstats section.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandStats<'a> {
    pub command: &'a str,
    pub calls: f64,
    pub usec: f64,
    /// Since Redis 6.2.
    pub rejected_calls: Option<f64>,
    /// Since Redis 6.2.
    pub failed_calls: Option<f64>,
}

pub fn command_stats<'a>(key: &'a str, value: &str) -> Option<CommandStats<'a>> {
    let command = key.strip_prefix("cmdstat_")?;
    let pairs = pairs(value)?;
    Some(CommandStats {
        command,
        calls: number_in(&pairs, "calls")?,
        usec: number_in(&pairs, "usec")?,
        rejected_calls: number_in(&pairs, "rejected_calls"),
        failed_calls: number_in(&pairs, "failed_calls"),
    })
}

/// A `latency_percentiles_usec_<cmd>:p50=…,p99=…` line of the Latencystats
/// section (Redis 7): the command and (percentile, microseconds) pairs.
pub fn latency_percentiles<'a>(key: &'a str, value: &str) -> Option<(&'a str, Vec<(f64, f64)>)> {
    let command = key.strip_prefix("latency_percentiles_usec_")?;
    let percentiles = pairs(value)?
        .into_iter()
        .map(|(p, usec)| Some((p.strip_prefix('p')?.parse().ok()?, usec.parse().ok()?)))
        .collect::<Option<Vec<_>>>()?;
    Some((command, percentiles))
}

/// An `errorstat_<ERR>:count=…` line of the Errorstats section.
pub fn error_stats<'a>(key: &'a str, value: &str) -> Option<(&'a str, f64)> {
    let kind = key.strip_prefix("errorstat_")?;
    Some((kind, number_in(&pairs(value)?, "count")?))
}

/// A `slaveN:ip=…,port=…,state=…,offset=…,lag=…` line of a primary's
/// Replication section.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica<'a> {
    pub ip: &'a str,
    pub port: &'a str,
    pub state: &'a str,
    pub offset: f64,
    /// Seconds; absent before Redis 3.0.
    pub lag: Option<f64>,
}

pub fn replica<'a>(key: &str, value: &'a str) -> Option<Replica<'a>> {
    let index = key.strip_prefix("slave")?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pairs = pairs(value)?;
    let text = |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| *v)
    };
    Some(Replica {
        ip: text("ip"),
        port: text("port"),
        state: text("state"),
        offset: number_in(&pairs, "offset")?,
        lag: number_in(&pairs, "lag"),
    })
}

/// For `master_host`, `master_1_host` (KeyDB's multi-master) …: the part
/// after `master` and the optional `_N`, here `host`.
pub fn master_field(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("master_")?;
    match rest.split_once('_') {
        Some((index, field)) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => {
            Some(field)
        }
        _ => Some(rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real `INFO ALL` of Redis 7.0.
    pub const SAMPLE: &str = "# Server\r\n\
        redis_version:7.0.15\r\n\
        redis_mode:standalone\r\n\
        uptime_in_seconds:120\r\n\
        \r\n\
        # Persistence\r\n\
        rdb_last_bgsave_status:ok\r\n\
        # Replication\r\n\
        role:master\r\n\
        slave0:ip=10.0.0.2,port=6380,state=online,offset=1751,lag=1\r\n\
        # Commandstats\r\n\
        cmdstat_set:calls=4,usec=30,usec_per_call=7.50,rejected_calls=0,failed_calls=1\r\n\
        cmdstat_config|get:calls=1,usec=42,usec_per_call=42.00\r\n\
        # Latencystats\r\n\
        latency_percentiles_usec_set:p50=1.003,p99=5.023,p99.9=5.023\r\n\
        # Errorstats\r\n\
        errorstat_WRONGPASS:count=2\r\n\
        # Keyspace\r\n\
        db0:keys=3,expires=1,avg_ttl=3599000\r\n\
        db1:keys=1,expires=0,avg_ttl=0\r\n";

    #[test]
    fn sections_and_fields() {
        let fields = parse(SAMPLE);
        assert_eq!(
            fields[0],
            Field {
                section: "Server",
                key: "redis_version",
                value: "7.0.15"
            }
        );
        assert_eq!(get(&fields, "role"), Some("master"));
        assert_eq!(get(&fields, "uptime_in_seconds"), Some("120"));
        assert_eq!(get(&fields, "missing"), None);
        let keyspace_fields: Vec<_> = fields
            .iter()
            .filter(|f| f.section == "Keyspace")
            .map(|f| f.key)
            .collect();
        assert_eq!(keyspace_fields, ["db0", "db1"]);
        // Values may hold colons; only the first one splits.
        assert_eq!(parse("a:b:c")[0].value, "b:c");
        assert!(parse("no colon here\r\n\r\n:novalue").is_empty());
    }

    #[test]
    fn values_as_numbers() {
        assert_eq!(number("ok"), Some(1.0));
        assert_eq!(number("err"), Some(0.0));
        assert_eq!(number("1.25"), Some(1.25));
        assert_eq!(number("1.2M"), None);
    }

    #[test]
    fn keyspace_lines() {
        assert_eq!(
            keyspace("keys=3,expires=1,avg_ttl=3599000"),
            Some(Keyspace {
                keys: 3.0,
                expires: 1.0,
                avg_ttl_ms: Some(3_599_000.0),
                cached_keys: None
            })
        );
        assert_eq!(
            keyspace("keys=1,expires=0,avg_ttl=0,cached_keys=1").and_then(|k| k.cached_keys),
            Some(1.0)
        );
        assert_eq!(keyspace("keys=x,expires=0"), None);
        assert_eq!(keyspace("garbage"), None);
    }

    #[test]
    fn command_stats_before_and_after_6_2() {
        let new = command_stats(
            "cmdstat_set",
            "calls=4,usec=30,usec_per_call=7.50,rejected_calls=0,failed_calls=1",
        )
        .unwrap();
        assert_eq!(new.command, "set");
        assert_eq!((new.calls, new.usec), (4.0, 30.0));
        assert_eq!(
            (new.rejected_calls, new.failed_calls),
            (Some(0.0), Some(1.0))
        );
        let old = command_stats("cmdstat_get", "calls=21,usec=175,usec_per_call=8.33").unwrap();
        assert_eq!(old.failed_calls, None);
        assert!(command_stats("get", "calls=1,usec=1").is_none());
    }

    #[test]
    fn latency_error_and_replica_lines() {
        assert_eq!(
            latency_percentiles(
                "latency_percentiles_usec_config|get",
                "p50=8.031,p99.9=27.007"
            ),
            Some(("config|get", vec![(50.0, 8.031), (99.9, 27.007)]))
        );
        assert_eq!(error_stats("errorstat_ERR", "count=4"), Some(("ERR", 4.0)));
        let replica = replica(
            "slave0",
            "ip=10.0.0.2,port=6380,state=online,offset=1751,lag=1",
        )
        .unwrap();
        assert_eq!(
            (replica.ip, replica.port, replica.state),
            ("10.0.0.2", "6380", "online")
        );
        assert_eq!((replica.offset, replica.lag), (1751.0, Some(1.0)));
        assert!(super::replica("slave_read_only", "1").is_none());
        assert!(super::replica("slaves", "ip=1,offset=2").is_none());
    }

    #[test]
    fn master_fields_with_and_without_index() {
        assert_eq!(master_field("master_host"), Some("host"));
        assert_eq!(master_field("master_2_link_status"), Some("link_status"));
        assert_eq!(master_field("master_repl_offset"), Some("repl_offset"));
        assert_eq!(master_field("slave_repl_offset"), None);
    }
}
