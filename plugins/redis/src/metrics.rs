//! INFO and CONFIG turned into samples with oliver006/redis_exporter's
//! names, labels and units, so its dashboards and alert rules work
//! unchanged.

use lookout_plugin_sdk::Sample;

use crate::info::{self, Field};

/// Prefix of every metric, redis_exporter's default namespace.
const NAMESPACE: &str = "redis";

/// Plain INFO fields and the metric each becomes (without the namespace),
/// from redis_exporter's `metricMapGauges` and `metricMapCounters`, Redis
/// and Valkey fields only (its Tile38, KeyDB and module fields are left
/// out). Counters are the names ending in `_total`, except a few
/// redis_exporter kept without the suffix (`total_error_replies` …).
const INFO_FIELDS: &[(&str, &str)] = &[
    // Server
    ("uptime_in_seconds", "uptime_in_seconds"),
    ("process_id", "process_id"),
    ("io_threads_active", "io_threads_active"),
    // Clients
    ("connected_clients", "connected_clients"),
    ("blocked_clients", "blocked_clients"),
    ("maxclients", "max_clients"),
    ("tracking_clients", "tracking_clients"),
    ("clients_in_timeout_table", "clients_in_timeout_table"),
    ("pubsub_clients", "pubsub_clients"),
    ("watching_clients", "watching_clients"),
    ("total_watched_keys", "total_watched_keys"),
    ("total_blocking_keys", "total_blocking_keys"),
    (
        "total_blocking_keys_on_nokey",
        "total_blocking_keys_on_nokey",
    ),
    ("client_longest_output_list", "client_longest_output_list"),
    ("client_biggest_input_buf", "client_biggest_input_buf"),
    (
        "client_recent_max_output_buffer",
        "client_recent_max_output_buffer_bytes",
    ),
    (
        "client_recent_max_input_buffer",
        "client_recent_max_input_buffer_bytes",
    ),
    // Memory
    ("allocator_active", "allocator_active_bytes"),
    ("allocator_allocated", "allocator_allocated_bytes"),
    ("allocator_resident", "allocator_resident_bytes"),
    ("allocator_frag_ratio", "allocator_frag_ratio"),
    ("allocator_frag_bytes", "allocator_frag_bytes"),
    ("allocator_muzzy", "allocator_muzzy_bytes"),
    ("allocator_rss_ratio", "allocator_rss_ratio"),
    ("allocator_rss_bytes", "allocator_rss_bytes"),
    ("used_memory", "memory_used_bytes"),
    ("used_memory_rss", "memory_used_rss_bytes"),
    ("used_memory_peak", "memory_used_peak_bytes"),
    ("used_memory_lua", "memory_used_lua_bytes"),
    ("used_memory_vm_eval", "memory_used_vm_eval_bytes"),
    ("used_memory_scripts_eval", "memory_used_scripts_eval_bytes"),
    ("used_memory_overhead", "memory_used_overhead_bytes"),
    ("used_memory_startup", "memory_used_startup_bytes"),
    ("used_memory_dataset", "memory_used_dataset_bytes"),
    ("number_of_cached_scripts", "number_of_cached_scripts"),
    ("number_of_functions", "number_of_functions"),
    ("number_of_libraries", "number_of_libraries"),
    ("used_memory_vm_functions", "memory_used_vm_functions_bytes"),
    ("used_memory_scripts", "memory_used_scripts_bytes"),
    ("used_memory_functions", "memory_used_functions_bytes"),
    ("used_memory_vm_total", "memory_used_vm_total"),
    ("maxmemory", "memory_max_bytes"),
    ("mem_fragmentation_ratio", "mem_fragmentation_ratio"),
    ("mem_fragmentation_bytes", "mem_fragmentation_bytes"),
    ("mem_clients_slaves", "mem_clients_slaves"),
    ("mem_clients_normal", "mem_clients_normal"),
    ("mem_cluster_links", "mem_cluster_links_bytes"),
    ("mem_aof_buffer", "mem_aof_buffer_bytes"),
    ("mem_replication_backlog", "mem_replication_backlog_bytes"),
    ("expired_stale_perc", "expired_stale_percentage"),
    (
        "mem_not_counted_for_evict",
        "mem_not_counted_for_eviction_bytes",
    ),
    (
        "mem_total_replication_buffers",
        "mem_total_replication_buffers_bytes",
    ),
    (
        "mem_overhead_db_hashtable_rehashing",
        "mem_overhead_db_hashtable_rehashing_bytes",
    ),
    ("lazyfree_pending_objects", "lazyfree_pending_objects"),
    ("lazyfreed_objects", "lazyfreed_objects"),
    ("active_defrag_running", "active_defrag_running"),
    ("migrate_cached_sockets", "migrate_cached_sockets_total"),
    ("active_defrag_hits", "defrag_hits"),
    ("active_defrag_misses", "defrag_misses"),
    ("active_defrag_key_hits", "defrag_key_hits"),
    ("active_defrag_key_misses", "defrag_key_misses"),
    // Persistence
    ("loading", "loading_dump_file"),
    ("async_loading", "async_loading"),
    ("rdb_changes_since_last_save", "rdb_changes_since_last_save"),
    ("rdb_bgsave_in_progress", "rdb_bgsave_in_progress"),
    ("rdb_last_save_time", "rdb_last_save_timestamp_seconds"),
    ("rdb_last_bgsave_status", "rdb_last_bgsave_status"),
    ("rdb_last_bgsave_time_sec", "rdb_last_bgsave_duration_sec"),
    (
        "rdb_current_bgsave_time_sec",
        "rdb_current_bgsave_duration_sec",
    ),
    ("rdb_saves", "rdb_saves_total"),
    ("rdb_last_cow_size", "rdb_last_cow_size_bytes"),
    ("rdb_last_load_keys_expired", "rdb_last_load_expired_keys"),
    ("rdb_last_load_keys_loaded", "rdb_last_load_loaded_keys"),
    ("aof_enabled", "aof_enabled"),
    ("aof_rewrite_in_progress", "aof_rewrite_in_progress"),
    ("aof_rewrite_scheduled", "aof_rewrite_scheduled"),
    ("aof_last_rewrite_time_sec", "aof_last_rewrite_duration_sec"),
    (
        "aof_current_rewrite_time_sec",
        "aof_current_rewrite_duration_sec",
    ),
    ("aof_last_cow_size", "aof_last_cow_size_bytes"),
    ("aof_current_size", "aof_current_size_bytes"),
    ("aof_base_size", "aof_base_size_bytes"),
    ("aof_pending_rewrite", "aof_pending_rewrite"),
    ("aof_buffer_length", "aof_buffer_length"),
    ("aof_rewrite_buffer_length", "aof_rewrite_buffer_length"),
    ("aof_pending_bio_fsync", "aof_pending_bio_fsync"),
    ("aof_delayed_fsync", "aof_delayed_fsync"),
    ("aof_last_bgrewrite_status", "aof_last_bgrewrite_status"),
    ("aof_last_write_status", "aof_last_write_status"),
    ("module_fork_in_progress", "module_fork_in_progress"),
    ("module_fork_last_cow_size", "module_fork_last_cow_size"),
    // Stats
    (
        "current_eviction_exceeded_time",
        "current_eviction_exceeded_time_ms",
    ),
    ("pubsub_channels", "pubsub_channels"),
    ("pubsub_patterns", "pubsub_patterns"),
    ("pubsubshard_channels", "pubsubshard_channels"),
    // Reported in seconds, see `metric_value`.
    ("latest_fork_usec", "latest_fork_seconds"),
    ("tracking_total_keys", "tracking_total_keys"),
    ("tracking_total_items", "tracking_total_items"),
    ("tracking_total_prefixes", "tracking_total_prefixes"),
    (
        "instantaneous_eventloop_cycles_per_sec",
        "instantaneous_eventloop_cycles_per_sec",
    ),
    (
        "instantaneous_eventloop_duration_usec",
        "instantaneous_eventloop_duration_usec",
    ),
    ("total_connections_received", "connections_received_total"),
    ("total_commands_processed", "commands_processed_total"),
    ("rejected_connections", "rejected_connections_total"),
    ("total_net_input_bytes", "net_input_bytes_total"),
    ("total_net_output_bytes", "net_output_bytes_total"),
    ("total_net_repl_input_bytes", "net_repl_input_bytes_total"),
    ("total_net_repl_output_bytes", "net_repl_output_bytes_total"),
    ("expired_subkeys", "expired_subkeys_total"),
    ("expired_keys", "expired_keys_total"),
    (
        "expired_time_cap_reached_count",
        "expired_time_cap_reached_total",
    ),
    (
        "expire_cycle_cpu_milliseconds",
        "expire_cycle_cpu_time_ms_total",
    ),
    ("evicted_keys", "evicted_keys_total"),
    ("evicted_clients", "evicted_clients_total"),
    ("evicted_scripts", "evicted_scripts_total"),
    (
        "total_eviction_exceeded_time",
        "eviction_exceeded_time_ms_total",
    ),
    ("keyspace_hits", "keyspace_hits_total"),
    ("keyspace_misses", "keyspace_misses_total"),
    ("eventloop_cycles", "eventloop_cycles_total"),
    (
        "eventloop_duration_sum",
        "eventloop_duration_sum_usec_total",
    ),
    (
        "eventloop_duration_cmd_sum",
        "eventloop_duration_cmd_sum_usec_total",
    ),
    ("unexpected_error_replies", "unexpected_error_replies"),
    ("total_error_replies", "total_error_replies"),
    ("dump_payload_sanitizations", "dump_payload_sanitizations"),
    ("total_reads_processed", "total_reads_processed"),
    ("total_writes_processed", "total_writes_processed"),
    ("io_threaded_reads_processed", "io_threaded_reads_processed"),
    (
        "io_threaded_writes_processed",
        "io_threaded_writes_processed",
    ),
    (
        "client_query_buffer_limit_disconnections",
        "client_query_buffer_limit_disconnections_total",
    ),
    (
        "client_output_buffer_limit_disconnections",
        "client_output_buffer_limit_disconnections_total",
    ),
    ("reply_buffer_shrinks", "reply_buffer_shrinks_total"),
    ("reply_buffer_expands", "reply_buffer_expands_total"),
    ("acl_access_denied_auth", "acl_access_denied_auth_total"),
    ("acl_access_denied_cmd", "acl_access_denied_cmd_total"),
    ("acl_access_denied_key", "acl_access_denied_key_total"),
    (
        "acl_access_denied_channel",
        "acl_access_denied_channel_total",
    ),
    // Replication
    ("connected_slaves", "connected_slaves"),
    ("repl_backlog_size", "replication_backlog_bytes"),
    ("repl_backlog_active", "repl_backlog_is_active"),
    (
        "repl_backlog_first_byte_offset",
        "repl_backlog_first_byte_offset",
    ),
    ("repl_backlog_histlen", "repl_backlog_history_bytes"),
    ("master_repl_offset", "master_repl_offset"),
    ("second_repl_offset", "second_repl_offset"),
    ("slave_expires_tracked_keys", "slave_expires_tracked_keys"),
    ("slave_priority", "slave_priority"),
    ("sync_full", "replica_resyncs_full"),
    ("sync_partial_ok", "replica_partial_resync_accepted"),
    ("sync_partial_err", "replica_partial_resync_denied"),
    // CPU
    ("used_cpu_sys", "cpu_sys_seconds_total"),
    ("used_cpu_user", "cpu_user_seconds_total"),
    ("used_cpu_sys_children", "cpu_sys_children_seconds_total"),
    ("used_cpu_user_children", "cpu_user_children_seconds_total"),
    (
        "used_cpu_sys_main_thread",
        "cpu_sys_main_thread_seconds_total",
    ),
    (
        "used_cpu_user_main_thread",
        "cpu_user_main_thread_seconds_total",
    ),
    (
        "used_active_time_main_thread",
        "active_time_main_thread_seconds_total",
    ),
];

/// Labels of `redis_instance_info`, each the INFO field of the same name.
const INSTANCE_INFO_LABELS: &[&str] = &[
    "role",
    "redis_version",
    "redis_build_id",
    "redis_mode",
    "os",
    "maxmemory_policy",
    "tcp_port",
    "run_id",
    "process_id",
    "master_replid",
];

/// CONFIG parameters exported as `redis_config_<name>` when numeric.
const CONFIG_VALUES: &[&str] = &["io-threads", "maxclients", "maxmemory", "repl-backlog-size"];

fn sample(name: &str, value: f64) -> Sample {
    Sample::new(format!("{NAMESPACE}_{name}"), value)
}

fn labeled(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
    labels
        .iter()
        .fold(sample(name, value), |s, (k, v)| s.label(*k, *v))
}

/// The samples of an `INFO ALL` reply. `now_unix_seconds` dates
/// `redis_start_time_seconds`.
pub fn info_samples(fields: &[Field<'_>], now_unix_seconds: f64) -> Vec<Sample> {
    let mut out = Vec::new();
    // The primary a replica follows, for the labels of its replication
    // metrics; INFO lists host and port before the other master fields.
    let mut master_host = "";
    let mut master_port = "";
    // Per command: (calls, total microseconds), for the latency summaries.
    let mut command_totals: Vec<(&str, f64, f64)> = Vec::new();
    let mut latencies: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();

    for field in fields {
        let Field {
            section,
            key,
            value,
        } = *field;
        match info::master_field(key) {
            Some("host") => master_host = value,
            Some("port") => master_port = value,
            _ => {}
        }
        match section {
            "Server" => server_field(key, value, now_unix_seconds, &mut out),
            "Replication" => {
                let labelled = replication_field(key, value, (master_host, master_port), &mut out);
                if labelled {
                    continue;
                }
            }
            "Commandstats" => {
                if let Some(stats) = info::command_stats(key, value) {
                    let cmd = [("cmd", stats.command)];
                    out.push(labeled("commands_total", &cmd, stats.calls));
                    out.push(labeled(
                        "commands_duration_seconds_total",
                        &cmd,
                        stats.usec / 1e6,
                    ));
                    if let (Some(rejected), Some(failed)) =
                        (stats.rejected_calls, stats.failed_calls)
                    {
                        out.push(labeled("commands_rejected_calls_total", &cmd, rejected));
                        out.push(labeled("commands_failed_calls_total", &cmd, failed));
                    }
                    command_totals.push((stats.command, stats.calls, stats.usec));
                }
                continue;
            }
            "Latencystats" => {
                latencies.extend(info::latency_percentiles(key, value));
                continue;
            }
            "Errorstats" => {
                if let Some((kind, count)) = info::error_stats(key, value) {
                    out.push(labeled("errors_total", &[("err", kind)], count));
                }
                continue;
            }
            "Keyspace" => {
                if key.starts_with("db")
                    && let Some(keyspace) = info::keyspace(value)
                {
                    let db = [("db", key)];
                    out.push(labeled("db_keys", &db, keyspace.keys));
                    out.push(labeled("db_keys_expiring", &db, keyspace.expires));
                    if let Some(cached) = keyspace.cached_keys {
                        out.push(labeled("db_keys_cached", &db, cached));
                    }
                    if let Some(ttl_ms) = keyspace.avg_ttl_ms {
                        out.push(labeled("db_avg_ttl_seconds", &db, ttl_ms / 1000.0));
                    }
                    continue;
                }
            }
            _ => {}
        }
        if let Some(sample) = plain_field(key, value) {
            out.push(sample);
        }
    }

    out.extend(latency_summaries(&latencies, &command_totals));

    let info_labels: Vec<(&str, &str)> = INSTANCE_INFO_LABELS
        .iter()
        .map(|&name| (name, info::get(fields, name).unwrap_or("")))
        .collect();
    out.push(labeled("instance_info", &info_labels, 1.0));
    if info::get(fields, "role") == Some("slave") {
        let labels = [
            (
                "master_host",
                info::get(fields, "master_host").unwrap_or(""),
            ),
            (
                "master_port",
                info::get(fields, "master_port").unwrap_or(""),
            ),
            (
                "read_only",
                info::get(fields, "slave_read_only").unwrap_or(""),
            ),
        ];
        out.push(labeled("slave_info", &labels, 1.0));
    }
    out
}

/// A field of the tables (or `cluster_*`), as its metric.
fn plain_field(key: &str, value: &str) -> Option<Sample> {
    let name = match INFO_FIELDS.iter().find(|(field, _)| *field == key) {
        Some((_, name)) => (*name).to_owned(),
        // `cluster_enabled` and friends keep their INFO name.
        None if key.starts_with("cluster_") => key.to_owned(),
        None => return None,
    };
    let mut value = info::number(value)?;
    if key == "latest_fork_usec" {
        value /= 1e6;
    }
    Some(sample(&name, value))
}

/// The Server section's derived metrics.
fn server_field(key: &str, value: &str, now_unix_seconds: f64, out: &mut Vec<Sample>) {
    let Ok(number) = value.parse::<f64>() else {
        return;
    };
    match key {
        "uptime_in_seconds" => out.push(sample("start_time_seconds", now_unix_seconds - number)),
        "hz" | "configured_hz" => out.push(sample(key, number)),
        _ => {}
    }
}

/// The Replication section's labelled metrics; true when `key` was one of
/// them (and is not also exported as a plain field).
fn replication_field(
    key: &str,
    value: &str,
    (master_host, master_port): (&str, &str),
    out: &mut Vec<Sample>,
) -> bool {
    let master = [("master_host", master_host), ("master_port", master_port)];
    match info::master_field(key) {
        Some("link_status") => {
            let up = if value == "up" { 1.0 } else { 0.0 };
            out.push(labeled("master_link_up", &master, up));
            return true;
        }
        Some(field @ ("last_io_seconds_ago" | "sync_in_progress")) => {
            // redis_exporter reads these as integers, 0 when unparsable.
            let number = value.parse::<i64>().unwrap_or(0) as f64;
            out.push(labeled(&format!("master_{field}"), &master, number));
            return true;
        }
        _ => {}
    }
    if key == "slave_repl_offset" {
        let number = value.parse::<i64>().unwrap_or(0) as f64;
        out.push(labeled("slave_repl_offset", &master, number));
        return true;
    }
    if let Some(replica) = info::replica(key, value) {
        let labels = [
            ("slave_ip", replica.ip),
            ("slave_port", replica.port),
            ("slave_state", replica.state),
        ];
        out.push(labeled(
            "connected_slave_offset_bytes",
            &labels,
            replica.offset,
        ));
        if let Some(lag) = replica.lag {
            out.push(labeled("connected_slave_lag_seconds", &labels, lag));
        }
        return true;
    }
    false
}

/// `redis_latency_percentiles_usec`, a summary per command: quantiles from
/// Latencystats, `_sum` (microseconds) and `_count` from Commandstats.
///
/// The quantile label is the percentile as Redis writes it (`50`, `99.9`),
/// not a fraction: that is what redis_exporter exports, and queries written
/// against it select `quantile="99"`.
fn latency_summaries(
    latencies: &[(&str, Vec<(f64, f64)>)],
    command_totals: &[(&str, f64, f64)],
) -> Vec<Sample> {
    let mut out = Vec::new();
    for (command, percentiles) in latencies {
        let Some(&(_, calls, usec)) = command_totals.iter().find(|(c, ..)| c == command) else {
            continue;
        };
        for &(percentile, value) in percentiles {
            let quantile = percentile.to_string();
            let labels = [("cmd", *command), ("quantile", quantile.as_str())];
            out.push(labeled("latency_percentiles_usec", &labels, value));
        }
        let cmd = [("cmd", *command)];
        out.push(labeled("latency_percentiles_usec_sum", &cmd, usec));
        out.push(labeled("latency_percentiles_usec_count", &cmd, calls));
    }
    out
}

/// The samples of a `CONFIG GET *` reply, as (parameter, value) pairs.
pub fn config_samples(config: &[(String, String)]) -> Vec<Sample> {
    let mut out = Vec::new();
    for (key, value) in config {
        if CONFIG_VALUES.contains(&key.as_str()) {
            if let Ok(number) = value.parse::<f64>() {
                out.push(sample(&format!("config_{}", key.replace('-', "_")), number));
            }
        } else if key == "client-output-buffer-limit" {
            // `normal 0 0 0 slave 268435456 67108864 60 …`: class, hard
            // limit, soft limit, soft limit seconds.
            let parts: Vec<&str> = value.split(' ').collect();
            for limits in parts.chunks_exact(4) {
                let class = limits[0];
                let number = |s: &str| s.parse::<f64>().ok();
                if let Some(hard) = number(limits[1]) {
                    let labels = [("class", class), ("limit", "hard")];
                    out.push(labeled(
                        "config_client_output_buffer_limit_bytes",
                        &labels,
                        hard,
                    ));
                }
                let soft_labels = [("class", class), ("limit", "soft")];
                if let Some(soft) = number(limits[2]) {
                    out.push(labeled(
                        "config_client_output_buffer_limit_bytes",
                        &soft_labels,
                        soft,
                    ));
                }
                if let Some(seconds) = number(limits[3]) {
                    out.push(labeled(
                        "config_client_output_buffer_limit_overcome_seconds",
                        &soft_labels,
                        seconds,
                    ));
                }
            }
        }
    }
    out
}

/// What a collection adds whether or not it reached Redis: `redis_up`,
/// `redis_exporter_last_scrape_error{err}` (the error text, empty on
/// success), and the time it took.
pub fn scrape_samples(error: Option<&str>, duration_seconds: f64) -> Vec<Sample> {
    vec![
        sample("up", if error.is_none() { 1.0 } else { 0.0 }),
        labeled(
            "exporter_last_scrape_error",
            &[("err", error.unwrap_or(""))],
            if error.is_none() { 0.0 } else { 1.0 },
        ),
        sample("exporter_last_scrape_duration_seconds", duration_seconds),
    ]
}

/// `redis_exporter_last_scrape_connect_time_seconds`.
pub fn connect_time_sample(seconds: f64) -> Sample {
    sample("exporter_last_scrape_connect_time_seconds", seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO_7_0: &str = include_str!("testdata/info-all-7.0.txt");

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
    fn a_real_info_all_maps_to_redis_exporter_names() {
        let fields = info::parse(INFO_7_0);
        let samples = info_samples(&fields, 1_795_262_300.0);
        let v = |name, labels: &[(&str, &str)]| value(&samples, name, labels);

        assert_eq!(v("redis_connected_clients", &[]), 1.0);
        assert_eq!(v("redis_blocked_clients", &[]), 0.0);
        assert_eq!(v("redis_max_clients", &[]), 10000.0);
        assert_eq!(v("redis_memory_used_bytes", &[]), 990_664.0);
        assert_eq!(v("redis_memory_max_bytes", &[]), 67_108_864.0);
        assert_eq!(v("redis_commands_processed_total", &[]), 5.0);
        assert_eq!(v("redis_connections_received_total", &[]), 6.0);
        assert_eq!(v("redis_keyspace_hits_total", &[]), 1.0);
        assert_eq!(v("redis_keyspace_misses_total", &[]), 0.0);
        assert_eq!(v("redis_rdb_changes_since_last_save", &[]), 3.0);
        assert_eq!(v("redis_rdb_last_bgsave_status", &[]), 1.0, "ok reads as 1");
        assert_eq!(v("redis_cpu_user_seconds_total", &[]), 0.007506);
        assert_eq!(v("redis_cluster_enabled", &[]), 0.0);
        assert_eq!(v("redis_start_time_seconds", &[]), 1_795_262_300.0);
        assert_eq!(v("redis_configured_hz", &[]), 10.0);
        assert_eq!(v("redis_connected_slaves", &[]), 0.0);

        assert_eq!(v("redis_db_keys", &[("db", "db0")]), 2.0);
        assert_eq!(v("redis_db_keys_expiring", &[("db", "db0")]), 1.0);
        assert_eq!(v("redis_db_avg_ttl_seconds", &[("db", "db0")]), 99.95);
        assert_eq!(v("redis_db_keys", &[("db", "db1")]), 1.0);

        assert_eq!(v("redis_commands_total", &[("cmd", "set")]), 3.0);
        assert_eq!(
            v("redis_commands_duration_seconds_total", &[("cmd", "set")]),
            21e-6
        );
        assert_eq!(
            v("redis_commands_failed_calls_total", &[("cmd", "get")]),
            0.0
        );
        assert_eq!(v("redis_errors_total", &[("err", "ERR")]), 1.0);
        assert_eq!(
            v(
                "redis_latency_percentiles_usec",
                &[("cmd", "set"), ("quantile", "99.9")]
            ),
            11.007
        );
        assert_eq!(
            v("redis_latency_percentiles_usec_count", &[("cmd", "set")]),
            3.0
        );
        assert_eq!(
            v("redis_latency_percentiles_usec_sum", &[("cmd", "set")]),
            21.0
        );

        let info = find(&samples, "redis_instance_info", &[]).unwrap();
        let label = |name: &str| {
            info.labels
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(label("redis_version"), Some("7.0.15"));
        assert_eq!(label("role"), Some("master"));
        assert_eq!(label("redis_mode"), Some("standalone"));
        assert_eq!(label("maxmemory_policy"), Some("noeviction"));
        assert_eq!(info.labels.len(), INSTANCE_INFO_LABELS.len());
        assert!(find(&samples, "redis_slave_info", &[]).is_none());

        // Human-readable duplicates and unknown fields are not exported.
        assert!(samples.iter().all(|s| !s.name.contains("human")));
        assert!(find(&samples, "redis_used_memory", &[]).is_none());
        assert!(find(&samples, "redis_redis_version", &[]).is_none());
        for s in &samples {
            assert!(s.value.is_finite(), "{s:?}");
            assert!(
                s.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{s:?}"
            );
        }
    }

    #[test]
    fn replica_fields_carry_the_primary() {
        let info = "# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\n\
                    master_link_status:up\r\nmaster_last_io_seconds_ago:2\r\n\
                    master_sync_in_progress:0\r\nslave_repl_offset:1751\r\nslave_read_only:1\r\n\
                    connected_slaves:0\r\nmaster_repl_offset:1751\r\n";
        let fields = info::parse(info);
        let samples = info_samples(&fields, 0.0);
        let primary = [("master_host", "10.0.0.1"), ("master_port", "6379")];
        assert_eq!(value(&samples, "redis_master_link_up", &primary), 1.0);
        assert_eq!(
            value(&samples, "redis_master_last_io_seconds_ago", &primary),
            2.0
        );
        assert_eq!(value(&samples, "redis_slave_repl_offset", &primary), 1751.0);
        assert_eq!(value(&samples, "redis_master_repl_offset", &[]), 1751.0);
        assert_eq!(
            value(&samples, "redis_slave_info", &[("read_only", "1")]),
            1.0
        );

        let primary_info = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n\
                            slave0:ip=10.0.0.2,port=6380,state=online,offset=1700,lag=1\r\n";
        let samples = info_samples(&info::parse(primary_info), 0.0);
        let replica = [("slave_ip", "10.0.0.2"), ("slave_state", "online")];
        assert_eq!(
            value(&samples, "redis_connected_slave_offset_bytes", &replica),
            1700.0
        );
        assert_eq!(
            value(&samples, "redis_connected_slave_lag_seconds", &replica),
            1.0
        );
    }

    #[test]
    fn config_values_and_buffer_limits() {
        let config: Vec<(String, String)> = [
            ("maxmemory", "67108864"),
            ("maxclients", "10000"),
            ("io-threads", "1"),
            ("repl-backlog-size", "1048576"),
            ("requirepass", "secret"),
            (
                "client-output-buffer-limit",
                "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let samples = config_samples(&config);
        assert_eq!(value(&samples, "redis_config_maxmemory", &[]), 67_108_864.0);
        assert_eq!(value(&samples, "redis_config_io_threads", &[]), 1.0);
        assert_eq!(
            value(
                &samples,
                "redis_config_client_output_buffer_limit_bytes",
                &[("class", "slave"), ("limit", "soft")]
            ),
            67_108_864.0
        );
        assert_eq!(
            value(
                &samples,
                "redis_config_client_output_buffer_limit_overcome_seconds",
                &[("class", "pubsub")]
            ),
            60.0
        );
        assert!(
            samples
                .iter()
                .all(|s| !s.name.contains("requirepass")
                    && s.labels.iter().all(|(_, v)| v != "secret")),
            "secrets never become samples"
        );
    }

    #[test]
    fn scrape_status() {
        let down = scrape_samples(Some("connection refused"), 0.5);
        assert_eq!(value(&down, "redis_up", &[]), 0.0);
        assert_eq!(
            value(
                &down,
                "redis_exporter_last_scrape_error",
                &[("err", "connection refused")]
            ),
            1.0
        );
        let up = scrape_samples(None, 0.5);
        assert_eq!(value(&up, "redis_up", &[]), 1.0);
        assert_eq!(
            value(&up, "redis_exporter_last_scrape_error", &[("err", "")]),
            0.0
        );
    }
}
