//! `node` exporter: the machine lookout runs on, as Prometheus'
//! node_exporter 1.5 reports it: same metric names, labels and units, read
//! from the kernel's `/proc` and `/sys` through read-only grants.
//!
//! Target: ignored; the machine is always the one lookout runs on. Write
//! `localhost` (`targets = ["localhost"]`), which also becomes the
//! `instance` label.
//!
//! Grants: read-only `/proc` and `/sys`, and `statfs = ["*"]` for the sizes
//! of every mount point (all asked for at install; statfs tells the sizes
//! and inode counts of file systems, nothing of their files). Optionally
//! a job may add `grants = { files = ["/run/udev/data"] }` for the udev
//! labels of `node_disk_info` (path, wwn, model, serial, revision) and
//! `node_disk_{filesystem,device_mapper}_info` / `node_disk_ata_*`; without
//! it those labels are empty, as node_exporter leaves them on a host
//! without udev.
//!
//! Configuration (all optional; node_exporter's flag in brackets):
//!
//! ```json
//! {
//!   "collectors": ["cpu", "meminfo", "loadavg"],
//!   "cpu": {"guest": true},
//!   "diskstats": {"device_exclude": "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$"},
//!   "netdev": {"device_include": "^eth"},
//!   "filesystem": {"mount_points_exclude": "…", "fs_types_exclude": "…", "mount_timeout_seconds": 5},
//!   "vmstat": {"fields": "^(oom_kill|pgpg|pswp|pg.*fault).*"},
//!   "stat": {"softirq": false}
//! }
//! ```
//!
//! - `collectors`: which to run; all of them when absent: `cpu`,
//!   `diskstats`, `entropy`, `filefd`, `filesystem`, `loadavg`, `meminfo`,
//!   `netdev`, `pressure`, `stat`, `time`, `uname`, `vmstat`.
//! - `cpu.guest` (`--collector.cpu.guest`, default true):
//!   `node_cpu_guest_seconds_total`.
//! - `diskstats.device_exclude` / `device_include`, `netdev.device_exclude`
//!   / `device_include` (`--collector.<name>.device-exclude` / `-include`):
//!   regexes of device names to skip / keep; give at most one of the pair.
//!   The defaults are upstream node_exporter's: partitions, loop and RAM
//!   disks for diskstats, nothing for netdev (Debian's package excludes
//!   `^lo$`; write that to do the same).
//! - `filesystem.mount_points_exclude`, `fs_types_exclude`
//!   (`--collector.filesystem.*`): regexes of mount points and file system
//!   types to skip. Upstream's defaults: `/dev`, `/proc`, `/sys` and what is
//!   under them, `/run/credentials/…`, Docker's and Podman's storage; pseudo
//!   and overlay file systems (proc, sysfs, cgroup, overlay, squashfs …).
//! - `filesystem.mount_timeout_seconds`
//!   (`--collector.filesystem.mount-timeout`, default 5): how long to wait
//!   for one mount's statfs before reporting it with
//!   `node_filesystem_device_error` 1; never past the job's timeout.
//! - `vmstat.fields` (`--collector.vmstat.fields`): a regex of the
//!   `/proc/vmstat` fields to report (default: faults, paging, swapping,
//!   OOM kills).
//! - `stat.softirq` (`--collector.stat.softirq`, default false):
//!   `node_softirqs_total{vector}`.
//!
//! A bad regex, an unknown collector or field is a `config` error naming
//! the field.
//!
//! Samples, by collector:
//!
//! - `cpu`: `node_cpu_seconds_total{cpu,mode}` (user, nice, system, idle,
//!   iowait, irq, softirq, steal; `/proc/stat` ticks at USER_HZ = 100),
//!   `node_cpu_guest_seconds_total{cpu,mode}` (user, nice),
//!   `node_cpu_isolated{cpu}`, `node_cpu_core_throttles_total{package,core}`
//!   and `node_cpu_package_throttles_total{package}` where the kernel has them.
//! - `diskstats`: per device, `node_disk_info{device,major,minor,path,wwn,model,serial,revision}`,
//!   `node_disk_{reads,writes}_completed_total`, `_{reads,writes}_merged_total`,
//!   `node_disk_read_bytes_total`, `node_disk_written_bytes_total`,
//!   `node_disk_{read,write}_time_seconds_total`, `node_disk_io_now`,
//!   `node_disk_io_time_seconds_total`, `node_disk_io_time_weighted_seconds_total`,
//!   `node_disk_discards_{completed,merged}_total`, `node_disk_discarded_sectors_total`,
//!   `node_disk_discard_time_seconds_total`, `node_disk_flush_requests_total`,
//!   `node_disk_flush_requests_time_seconds_total` (the last six on kernels
//!   that count them).
//! - `entropy`: `node_entropy_available_bits`, `node_entropy_pool_size_bits`.
//! - `filefd`: `node_filefd_allocated`, `node_filefd_maximum`.
//! - `filesystem`: for the mounts of `/proc/1/mounts` that pass the
//!   exclusions, labelled `{device,mountpoint,fstype}`:
//!   `node_filesystem_device_error` (1 when statfs failed, timed out or was
//!   denied; the mount then has no other series) and
//!   `node_filesystem_{size,free,avail}_bytes`, `node_filesystem_files`,
//!   `node_filesystem_files_free` (statvfs through the host's
//!   `filesystem-stats`), `node_filesystem_readonly` (from the mount
//!   options).
//! - `loadavg`: `node_load1`, `node_load5`, `node_load15`.
//! - `meminfo`: `node_memory_<field>_bytes` for each `/proc/meminfo` field
//!   in kB (`Active(anon)` → `node_memory_Active_anon_bytes`), and
//!   `node_memory_<field>` for the unitless `HugePages_*` counts.
//! - `netdev`: `node_network_{receive,transmit}_<field>_total{device}` for
//!   the 16 columns of `/proc/net/dev` (bytes, packets, errs, drop, fifo,
//!   frame/colls, compressed, multicast/carrier), plus
//!   `node_network_receive_nohandler_total` from sysfs.
//! - `pressure`: `node_pressure_cpu_waiting_seconds_total`,
//!   `node_pressure_{io,memory}_{waiting,stalled}_seconds_total`; on a
//!   kernel without pressure stall information the collector reports
//!   success 0 and nothing else, as node_exporter.
//! - `stat`: `node_boot_time_seconds`, `node_context_switches_total`,
//!   `node_forks_total`, `node_intr_total`, `node_procs_running`,
//!   `node_procs_blocked`.
//! - `time`: `node_time_seconds` (the host's wall clock, through WASI),
//!   `node_time_clocksource_{available,current}_info{device,clocksource}`.
//! - `uname`: `node_uname_info{sysname,release,version,machine,nodename,domainname}`
//!   from `/proc/sys/kernel` (`machine` from `arch`, Linux 6.1 and later;
//!   empty before).
//! - `vmstat`: `node_vmstat_<field>` for the matching `/proc/vmstat` fields.
//! - Per collector: `node_scrape_collector_success{collector}` (1 or 0) and
//!   `node_scrape_collector_duration_seconds{collector}`.
//!
//! Failures: a collector whose file is missing or malformed reports
//! `node_scrape_collector_success 0` (and whatever it had read), logs why
//! (at debug level when the kernel simply lacks the data), and the others
//! go on: a collection never fails for that. Collectors still waiting when
//! the job's timeout has passed are skipped the same way. A mount point
//! whose statfs fails is not a collector failure (node_exporter's rule):
//! its `node_filesystem_device_error` is 1, the reason is logged at debug
//! level, or at warn level when the sandbox denied it (no statfs grant). A
//! mount that does not answer (a hung NFS server) costs at most
//! `mount_timeout_seconds`, then fails at once on later collections until
//! it answers again.
//!
//! Differences from node_exporter 1.5:
//!
//! - **Block size.** Sizes are blocks × statvfs's `f_frsize`, where
//!   node_exporter multiplies by statfs(2)'s `f_bsize`: the same on Linux's
//!   disk and memory file systems, and `f_frsize` is the unit the counts
//!   are in where a FUSE file system reports two different values.
//! - **Hung mounts.** node_exporter 1.5 waits for a mount's statfs as long
//!   as it takes and marks the mount stuck after `mount-timeout`, so the
//!   scrape that meets a dead NFS server hangs with it; here that
//!   collection waits `mount_timeout_seconds` at most (the host stops
//!   waiting) and later ones skip the mount at once until it answers.
//! - **Time zone.** `node_time_zone_offset_seconds` is not reported: WASI
//!   has no time zone, and the sandbox cannot see `/etc/localtime`.
//! - **Metric types.** lookout's samples carry no `# TYPE`; names follow
//!   node_exporter's conventions (`_total` counters), and `node_vmstat_*`
//!   are untyped there too.
//! - **CPU counters going backwards.** node_exporter holds a CPU counter at
//!   its last value when the kernel reports a smaller one (idle and iowait
//!   on some kernels); this plugin keeps no state between collections and
//!   reports what the kernel says.
//! - **Order and concurrency.** Collectors run one after another, not
//!   concurrently, and the samples come in collector order.

mod collectors;
mod files;
mod parse;
mod patterns;

use std::time::{Duration, Instant};

use lookout_plugin_sdk::{Exporter, PluginError, PluginInfo, Sample, log, plugin_info};
use serde::Deserialize;

use collectors::{Collection, Collector, DeviceFilter, Failure, Settings};
use patterns::{
    DISKSTATS_DEVICE_EXCLUDE, FS_TYPES_EXCLUDE, MOUNT_POINTS_EXCLUDE, Pattern, VMSTAT_FIELDS,
};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Collectors to run; all when absent.
    collectors: Option<Vec<String>>,
    cpu: CpuConfig,
    diskstats: DeviceFilterConfig,
    netdev: DeviceFilterConfig,
    filesystem: FilesystemConfig,
    vmstat: VmstatConfig,
    stat: StatConfig,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CpuConfig {
    guest: bool,
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig { guest: true }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct DeviceFilterConfig {
    device_exclude: Option<String>,
    device_include: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct FilesystemConfig {
    mount_points_exclude: Option<String>,
    fs_types_exclude: Option<String>,
    mount_timeout_seconds: Option<f64>,
}

/// node_exporter's `--collector.filesystem.mount-timeout` default.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct VmstatConfig {
    fields: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct StatConfig {
    softirq: bool,
}

const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "$defs": {
    "devices": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "device_exclude": { "type": "string", "description": "Regex of devices to skip" },
        "device_include": { "type": "string", "description": "Regex of devices to keep (not with device_exclude)" }
      }
    }
  },
  "properties": {
    "collectors": {
      "type": "array",
      "items": { "enum": ["cpu", "diskstats", "entropy", "filefd", "filesystem", "loadavg", "meminfo", "netdev", "pressure", "stat", "time", "uname", "vmstat"] },
      "description": "Collectors to run; all when absent"
    },
    "cpu": { "type": "object", "additionalProperties": false, "properties": { "guest": { "type": "boolean", "default": true } } },
    "diskstats": { "$ref": "#/$defs/devices" },
    "netdev": { "$ref": "#/$defs/devices" },
    "filesystem": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "mount_points_exclude": { "type": "string" },
        "fs_types_exclude": { "type": "string" },
        "mount_timeout_seconds": { "type": "number", "exclusiveMinimum": 0, "default": 5, "description": "Longest wait for one mount's statfs" }
      }
    },
    "vmstat": { "type": "object", "additionalProperties": false, "properties": { "fields": { "type": "string" } } },
    "stat": { "type": "object", "additionalProperties": false, "properties": { "softirq": { "type": "boolean", "default": false } } }
  }
}"##;

/// A filter pattern of node_exporter's (Go's RE2 syntax, which Rust's
/// regex shares for everything these options need).
fn pattern(field: &str, text: &str) -> Result<Pattern, PluginError> {
    Pattern::new(text).map_err(|e| PluginError::config(format!("{field}: {e}")))
}

fn device_filter(
    field: &str,
    config: DeviceFilterConfig,
    default_exclude: Option<&str>,
) -> Result<DeviceFilter, PluginError> {
    // An empty pattern means no filter, as an empty node_exporter flag does.
    let compile = |name: &str, text: Option<&str>| {
        text.filter(|p| !p.is_empty())
            .map(|p| pattern(&format!("{field}.{name}"), p))
            .transpose()
    };
    match (config.device_exclude, config.device_include) {
        (Some(_), Some(_)) => Err(PluginError::config(format!(
            "{field}: device_exclude and device_include are mutually exclusive"
        ))),
        (exclude, Some(include)) => Ok(DeviceFilter {
            exclude: compile("device_exclude", exclude.as_deref())?,
            include: compile("device_include", Some(&include))?,
        }),
        (exclude, None) => Ok(DeviceFilter {
            exclude: compile("device_exclude", exclude.as_deref().or(default_exclude))?,
            include: None,
        }),
    }
}

pub(crate) fn settings(config: Config) -> Result<Settings, PluginError> {
    let collectors = match config.collectors {
        None => Collector::ALL.to_vec(),
        Some(names) if names.is_empty() => {
            return Err(PluginError::config(
                "collectors: the list is empty; leave it out to run every collector",
            ));
        }
        Some(names) => {
            let mut chosen = Vec::new();
            for name in &names {
                let collector = Collector::from_name(name).ok_or_else(|| {
                    let known: Vec<&str> = Collector::ALL.iter().map(|c| c.name()).collect();
                    PluginError::config(format!(
                        "collectors: unknown collector {name:?} (known: {})",
                        known.join(", ")
                    ))
                })?;
                if !chosen.contains(&collector) {
                    chosen.push(collector);
                }
            }
            chosen.sort();
            chosen
        }
    };
    Ok(Settings {
        collectors,
        cpu_guest: config.cpu.guest,
        diskstats_devices: device_filter(
            "diskstats",
            config.diskstats,
            Some(DISKSTATS_DEVICE_EXCLUDE),
        )?,
        netdev_devices: device_filter("netdev", config.netdev, None)?,
        mount_points_exclude: pattern(
            "filesystem.mount_points_exclude",
            config
                .filesystem
                .mount_points_exclude
                .as_deref()
                .unwrap_or(MOUNT_POINTS_EXCLUDE),
        )?,
        fs_types_exclude: pattern(
            "filesystem.fs_types_exclude",
            config
                .filesystem
                .fs_types_exclude
                .as_deref()
                .unwrap_or(FS_TYPES_EXCLUDE),
        )?,
        mount_timeout: match config.filesystem.mount_timeout_seconds {
            None => MOUNT_TIMEOUT,
            Some(seconds) => Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    PluginError::config(format!(
                        "filesystem.mount_timeout_seconds: {seconds} is not a positive number of seconds"
                    ))
                })?,
        },
        vmstat_fields: pattern(
            "vmstat.fields",
            config.vmstat.fields.as_deref().unwrap_or(VMSTAT_FIELDS),
        )?,
        stat_softirq: config.stat.softirq,
    })
}

/// Runs the enabled collectors in turn, skipping those reached once
/// `timeout` has passed since `started`; returns their samples, each
/// followed by node_exporter's two scrape samples for it.
fn collect(settings: &Settings, started: Instant, timeout: Duration) -> Vec<Sample> {
    let collection = Collection::new(settings, started + timeout);
    let mut samples = Vec::with_capacity(512);
    for &collector in &settings.collectors {
        let name = collector.name();
        let began = Instant::now();
        let outcome = if began.duration_since(started) >= timeout {
            Err(Failure::Error(format!(
                "skipped: the collection's {timeout:?} timeout had passed"
            )))
        } else {
            collection.run(collector, &mut samples)
        };
        let took = began.elapsed();
        match &outcome {
            Ok(()) => {}
            Err(Failure::NoData(why)) => log::debug!("collector {name} returned no data: {why}"),
            Err(failure) => log::warn!("collector {name} failed: {}", failure.message()),
        }
        samples.push(
            Sample::new("node_scrape_collector_duration_seconds", took.as_secs_f64())
                .label("collector", name),
        );
        samples.push(
            Sample::new("node_scrape_collector_success", u8::from(outcome.is_ok()))
                .label("collector", name),
        );
    }
    samples
}

struct Node;

impl Exporter for Node {
    type Config = Config;

    fn describe() -> PluginInfo {
        plugin_info!("node")
            .description(
                "The machine lookout runs on, as node_exporter 1.5 reports it (cpu, meminfo, \
                 diskstats, netdev, filesystem, loadavg, pressure, stat, time, uname, vmstat, \
                 filefd, entropy), read from /proc and /sys, file system sizes through the \
                 host's statfs. Target: ignored, write localhost.",
            )
            .config_schema(CONFIG_SCHEMA)
            .files(["/proc", "/sys"])
            // Every mount point, wherever it is: sizes and inode counts only.
            .statfs(["*"])
    }

    fn collect(
        _target: &str,
        config: Config,
        timeout: Duration,
    ) -> Result<Vec<Sample>, PluginError> {
        let started = Instant::now();
        let settings = settings(config)?;
        Ok(collect(&settings, started, timeout))
    }
}

lookout_plugin_sdk::export_exporter!(Node);

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_plugin_sdk::parse_config;

    fn settings_of(json: &str) -> Result<Settings, PluginError> {
        settings(parse_config::<Config>(json)?)
    }

    fn config_error(json: &str) -> String {
        match settings_of(json) {
            Err(PluginError::Config(message)) => message,
            other => panic!("{json}: expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_node_exporters() {
        let s = settings_of("").unwrap();
        assert_eq!(s.collectors, Collector::ALL);
        assert!(s.cpu_guest);
        assert!(!s.stat_softirq);
        assert!(s.diskstats_devices.ignored("loop0"));
        assert!(!s.diskstats_devices.ignored("vda"));
        assert!(
            !s.netdev_devices.ignored("lo"),
            "upstream excludes no interface"
        );
        assert!(s.mount_points_exclude.is_match("/proc/sys/fs/binfmt_misc"));
        assert!(
            s.mount_points_exclude
                .is_match("/run/credentials/x.service")
        );
        assert!(!s.mount_points_exclude.is_match("/run"));
        assert!(!s.mount_points_exclude.is_match("/"));
        assert!(s.fs_types_exclude.is_match("overlay"));
        assert!(!s.fs_types_exclude.is_match("ext4"));
        assert_eq!(s.mount_timeout, Duration::from_secs(5));
        assert!(s.vmstat_fields.is_match("pgmajfault"));
        assert!(s.vmstat_fields.is_match("oom_kill"));
        assert!(!s.vmstat_fields.is_match("nr_free_pages"));
    }

    #[test]
    fn options_override_defaults() {
        let s = settings_of(
            r#"{"collectors": ["meminfo", "cpu", "cpu"], "cpu": {"guest": false},
                "diskstats": {"device_include": "^sd"}, "netdev": {"device_exclude": "^lo$"},
                "vmstat": {"fields": "^nr_"}, "stat": {"softirq": true},
                "filesystem": {"mount_timeout_seconds": 0.25}}"#,
        )
        .unwrap();
        assert_eq!(s.mount_timeout, Duration::from_millis(250));
        assert_eq!(s.collectors, [Collector::Cpu, Collector::Meminfo]);
        assert!(!s.cpu_guest);
        assert!(s.stat_softirq);
        assert!(s.diskstats_devices.ignored("vda"));
        assert!(
            !s.diskstats_devices.ignored("sda1"),
            "include drops the default exclude"
        );
        assert!(s.netdev_devices.ignored("lo"));
        assert!(s.vmstat_fields.is_match("nr_free_pages"));
        let none = settings_of(r#"{"diskstats": {"device_exclude": ""}}"#).unwrap();
        assert!(
            !none.diskstats_devices.ignored("loop0"),
            "an empty pattern filters nothing"
        );
    }

    #[test]
    fn bad_configuration_names_the_field() {
        assert!(
            config_error(r#"{"collectors": ["cpu", "textfile"]}"#)
                .contains("collectors: unknown collector \"textfile\"")
        );
        assert!(config_error(r#"{"collectors": []}"#).contains("collectors"));
        assert!(
            config_error(r#"{"netdev": {"device_exclude": "(", "device_include": "x"}}"#)
                .contains("netdev: device_exclude and device_include are mutually exclusive")
        );
        assert!(
            config_error(r#"{"diskstats": {"device_exclude": "("}}"#)
                .starts_with("diskstats.device_exclude:")
        );
        assert!(
            config_error(r#"{"filesystem": {"fs_types_exclude": "["}}"#)
                .starts_with("filesystem.fs_types_exclude:")
        );
        assert!(config_error(r#"{"vmstat": {"fields": "("}}"#).starts_with("vmstat.fields:"));
        for bad in ["0", "-1", "1e300"] {
            let json = format!(r#"{{"filesystem": {{"mount_timeout_seconds": {bad}}}}}"#);
            assert!(
                config_error(&json).starts_with("filesystem.mount_timeout_seconds:"),
                "{json}"
            );
        }
        assert!(config_error(r#"{"cpu": {"gust": true}}"#).contains("unknown field `gust`"));
        assert!(config_error(r#"{"colectors": []}"#).contains("unknown field `colectors`"));
    }

    #[test]
    fn the_schema_is_json_and_lists_every_collector() {
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        let listed = &schema["properties"]["collectors"]["items"]["enum"];
        let names: Vec<&str> = Collector::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(listed, &serde_json::json!(names));
    }
}
