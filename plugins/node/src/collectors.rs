//! The collectors: each reads its files through the read-only `/proc` and
//! `/sys` grants (and, for `filesystem`, asks the host's statfs) and
//! appends node_exporter 1.5's samples.
//!
//! A collector that cannot read what it needs returns a [`Failure`]; the
//! caller turns it into `node_scrape_collector_success{collector} 0`, as
//! node_exporter does, and the other collectors go on.

use std::cell::OnceCell;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use lookout_plugin_sdk::fs_stats::StatErrorKind;
use lookout_plugin_sdk::{Sample, log};

use crate::files::Files;
use crate::parse::{self, KernelStat};
use crate::patterns::Pattern;

/// node_exporter's collectors this plugin implements, by their names there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Collector {
    Cpu,
    Diskstats,
    Entropy,
    Filefd,
    Filesystem,
    Loadavg,
    Meminfo,
    Netdev,
    Pressure,
    Stat,
    Time,
    Uname,
    Vmstat,
}

impl Collector {
    /// Every collector, in the order they run (node_exporter's names sorted).
    pub const ALL: [Collector; 13] = [
        Self::Cpu,
        Self::Diskstats,
        Self::Entropy,
        Self::Filefd,
        Self::Filesystem,
        Self::Loadavg,
        Self::Meminfo,
        Self::Netdev,
        Self::Pressure,
        Self::Stat,
        Self::Time,
        Self::Uname,
        Self::Vmstat,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Diskstats => "diskstats",
            Self::Entropy => "entropy",
            Self::Filefd => "filefd",
            Self::Filesystem => "filesystem",
            Self::Loadavg => "loadavg",
            Self::Meminfo => "meminfo",
            Self::Netdev => "netdev",
            Self::Pressure => "pressure",
            Self::Stat => "stat",
            Self::Time => "time",
            Self::Uname => "uname",
            Self::Vmstat => "vmstat",
        }
    }

    pub fn from_name(name: &str) -> Option<Collector> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Why a collector reported nothing (or not everything).
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// This kernel does not have the data (no `/proc/pressure`): expected,
    /// logged at debug level, as node_exporter's `ErrNoData`.
    NoData(String),
    /// A file is missing, unreadable or not in the expected form.
    Error(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::NoData(m) | Failure::Error(m) => m,
        }
    }
}

/// Devices to skip: node_exporter's `device-exclude` / `device-include`.
#[derive(Debug, Default)]
pub struct DeviceFilter {
    pub exclude: Option<Pattern>,
    pub include: Option<Pattern>,
}

impl DeviceFilter {
    pub fn ignored(&self, device: &str) -> bool {
        self.exclude.as_ref().is_some_and(|r| r.is_match(device))
            || self.include.as_ref().is_some_and(|r| !r.is_match(device))
    }
}

/// The configuration, validated, with its filters ready.
#[derive(Debug)]
pub struct Settings {
    pub collectors: Vec<Collector>,
    /// `node_cpu_guest_seconds_total` (node_exporter's `--collector.cpu.guest`).
    pub cpu_guest: bool,
    pub diskstats_devices: DeviceFilter,
    pub netdev_devices: DeviceFilter,
    pub mount_points_exclude: Pattern,
    pub fs_types_exclude: Pattern,
    /// Longest wait for one mount's statfs (node_exporter's
    /// `--collector.filesystem.mount-timeout`).
    pub mount_timeout: Duration,
    pub vmstat_fields: Pattern,
    /// `node_softirqs_total{vector}` (node_exporter's `--collector.stat.softirq`).
    pub stat_softirq: bool,
}

/// One collection: the settings, the time it must end by, plus
/// `/proc/stat` read at most once for the `cpu` and `stat` collectors,
/// which both need it.
pub struct Collection<'s> {
    settings: &'s Settings,
    deadline: Instant,
    files: Files,
    kernel_stat: OnceCell<Result<KernelStat, Failure>>,
}

impl<'s> Collection<'s> {
    pub fn new(settings: &'s Settings, deadline: Instant) -> Self {
        Collection {
            settings,
            deadline,
            files: Files::new(),
            kernel_stat: OnceCell::new(),
        }
    }

    /// Runs one collector, appending its samples to `out`.
    pub fn run(&self, collector: Collector, out: &mut Vec<Sample>) -> Result<(), Failure> {
        match collector {
            Collector::Cpu => self.cpu(out),
            Collector::Diskstats => self.diskstats(out),
            Collector::Entropy => self.entropy(out),
            Collector::Filefd => self.filefd(out),
            Collector::Filesystem => self.filesystem(out),
            Collector::Loadavg => self.loadavg(out),
            Collector::Meminfo => self.meminfo(out),
            Collector::Netdev => self.netdev(out),
            Collector::Pressure => self.pressure(out),
            Collector::Stat => self.stat(out),
            Collector::Time => self.time(out),
            Collector::Uname => self.uname(out),
            Collector::Vmstat => self.vmstat(out),
        }
    }

    fn kernel_stat(&self) -> Result<&KernelStat, Failure> {
        self.kernel_stat
            .get_or_init(|| self.parsed("/proc/stat", parse::kernel_stat))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn cpu(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        let stat = self.kernel_stat()?;
        for (index, times) in stat.cpus.iter().enumerate() {
            let cpu = index.to_string();
            for (mode, seconds) in times.modes() {
                out.push(
                    Sample::new("node_cpu_seconds_total", seconds)
                        .label("cpu", &cpu)
                        .label("mode", mode),
                );
            }
            if self.settings.cpu_guest {
                for (mode, seconds) in [("user", times.guest), ("nice", times.guest_nice)] {
                    out.push(
                        Sample::new("node_cpu_guest_seconds_total", seconds)
                            .label("cpu", &cpu)
                            .label("mode", mode),
                    );
                }
            }
        }
        // Absent on kernels without CPU isolation support: nothing to report.
        if let Some(text) = self.value_optional("/sys/devices/system/cpu/isolated")? {
            let isolated = parse::cpu_list(&text)
                .map_err(|e| Failure::Error(format!("/sys/devices/system/cpu/isolated: {e}")))?;
            for cpu in isolated {
                out.push(Sample::new("node_cpu_isolated", 1).label("cpu", cpu.to_string()));
            }
        }
        self.thermal_throttles(out);
        Ok(())
    }

    fn stat(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        let stat = self.kernel_stat()?;
        out.push(Sample::new("node_intr_total", stat.interrupts as f64));
        out.push(Sample::new(
            "node_context_switches_total",
            stat.context_switches as f64,
        ));
        out.push(Sample::new("node_forks_total", stat.forks as f64));
        out.push(Sample::new("node_boot_time_seconds", stat.boot_time as f64));
        out.push(Sample::new("node_procs_running", stat.procs_running as f64));
        out.push(Sample::new("node_procs_blocked", stat.procs_blocked as f64));
        if self.settings.stat_softirq {
            // procfs leaves the vectors zero when the line is missing.
            let vectors = stat.softirqs.unwrap_or_default();
            for (vector, calls) in parse::SOFTIRQ_VECTORS.iter().zip(vectors) {
                out.push(Sample::new("node_softirqs_total", calls as f64).label("vector", *vector));
            }
        }
        Ok(())
    }

    fn diskstats(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        let disks = self.parsed("/proc/diskstats", parse::diskstats)?;
        for disk in disks {
            if self.settings.diskstats_devices.ignored(&disk.name) {
                continue;
            }
            let device = disk.name.as_str();
            // The udev database is outside /proc and /sys: read only when a
            // job grants /run/udev/data. Without it the labels are empty, as
            // node_exporter leaves them on a host without udev.
            let udev_text = self
                .files
                .read(&format!("/run/udev/data/b{}:{}", disk.major, disk.minor))
                .unwrap_or_default();
            let udev = parse::udev_properties(&udev_text);
            let property = |key: &str| udev.get(key).copied().unwrap_or("");
            out.push(
                Sample::new("node_disk_info", 1)
                    .label("device", device)
                    .label("major", disk.major.to_string())
                    .label("minor", disk.minor.to_string())
                    .label("path", property("ID_PATH"))
                    .label("wwn", property("ID_WWN"))
                    .label("model", property("ID_MODEL"))
                    .label("serial", property("ID_SERIAL_SHORT"))
                    .label("revision", property("ID_REVISION")),
            );
            for (&(name, unit), &counter) in parse::DISK_FIELDS.iter().zip(&disk.counters) {
                out.push(Sample::new(name, counter as f64 * unit).label("device", device));
            }
            if !property("ID_FS_TYPE").is_empty() {
                out.push(
                    Sample::new("node_disk_filesystem_info", 1)
                        .label("device", device)
                        .label("type", property("ID_FS_TYPE"))
                        .label("usage", property("ID_FS_USAGE"))
                        .label("uuid", property("ID_FS_UUID"))
                        .label("version", property("ID_FS_VERSION")),
                );
            }
            if !property("DM_NAME").is_empty() {
                out.push(
                    Sample::new("node_disk_device_mapper_info", 1)
                        .label("device", device)
                        .label("name", property("DM_NAME"))
                        .label("uuid", property("DM_UUID"))
                        .label("vg_name", property("DM_VG_NAME"))
                        .label("lv_name", property("DM_LV_NAME"))
                        .label("lv_layer", property("DM_LV_LAYER")),
                );
            }
            if !property("ID_ATA").is_empty() {
                for (key, name) in [
                    ("ID_ATA_WRITE_CACHE", "node_disk_ata_write_cache"),
                    (
                        "ID_ATA_WRITE_CACHE_ENABLED",
                        "node_disk_ata_write_cache_enabled",
                    ),
                    (
                        "ID_ATA_ROTATION_RATE_RPM",
                        "node_disk_ata_rotation_rate_rpm",
                    ),
                ] {
                    if let Some(value) = udev.get(key).and_then(|v| v.parse::<f64>().ok()) {
                        out.push(Sample::new(name, value).label("device", device));
                    }
                }
            }
        }
        Ok(())
    }

    /// Per mount point that passes the exclusions: whether statfs failed
    /// (`node_filesystem_device_error`) and, when it answered, the sizes,
    /// inode counts and read-only flag. As in node_exporter, a mount whose
    /// statfs fails, times out (after `mount_timeout`) or is denied has
    /// `device_error` 1 and no other series, and the collector still
    /// succeeds.
    fn filesystem(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        // PID 1's mounts are the host's (or the container's) own, not those
        // of whatever namespace lookout runs in; /proc/mounts when hidepid
        // hides PID 1.
        let (path, text) = match self.read_optional("/proc/1/mounts")? {
            Some(text) => ("/proc/1/mounts", text),
            None => ("/proc/mounts", self.read("/proc/mounts")?),
        };
        let mounts = parse::mounts(&text).map_err(|e| Failure::Error(format!("{path}: {e}")))?;
        let mut seen = std::collections::HashSet::new();
        let mut denied = None;
        for mount in &mounts {
            if self
                .settings
                .mount_points_exclude
                .is_match(&mount.mount_point)
                || self.settings.fs_types_exclude.is_match(&mount.fs_type)
            {
                continue;
            }
            // One series per label set, like node_exporter: a file system
            // mounted twice at one place is reported once.
            if !seen.insert((&mount.device, &mount.mount_point, &mount.fs_type)) {
                continue;
            }
            let sample = |name: &str, value: f64| {
                Sample::new(name, value)
                    .label("device", &mount.device)
                    .label("mountpoint", &mount.mount_point)
                    .label("fstype", &mount.fs_type)
            };
            let left = self.deadline.saturating_duration_since(Instant::now());
            let wait = self.settings.mount_timeout.min(left);
            let stats = match self.files.fs_stats(&mount.mount_point, wait) {
                Ok(stats) => stats,
                Err(error) => {
                    if error.kind == StatErrorKind::Denied {
                        denied.get_or_insert(error.message);
                    } else {
                        log::debug!("filesystem: statfs of {}: {error}", mount.mount_point);
                    }
                    out.push(sample("node_filesystem_device_error", 1.0));
                    continue;
                }
            };
            // Floats multiplied, as node_exporter does.
            let bytes = |blocks: u64| blocks as f64 * stats.block_size as f64;
            out.push(sample("node_filesystem_device_error", 0.0));
            out.push(sample("node_filesystem_size_bytes", bytes(stats.blocks)));
            out.push(sample(
                "node_filesystem_free_bytes",
                bytes(stats.blocks_free),
            ));
            out.push(sample(
                "node_filesystem_avail_bytes",
                bytes(stats.blocks_available),
            ));
            out.push(sample("node_filesystem_files", stats.files as f64));
            out.push(sample(
                "node_filesystem_files_free",
                stats.files_free as f64,
            ));
            // From the mount options, as node_exporter: statfs's flag can
            // differ for a bind mount.
            out.push(sample(
                "node_filesystem_readonly",
                f64::from(u8::from(mount.read_only())),
            ));
        }
        if let Some(message) = denied {
            log::warn!(
                "filesystem: {message}; those mounts report node_filesystem_device_error 1 \
                 (grant statfs = [\"*\"] for their sizes)"
            );
        }
        Ok(())
    }

    fn netdev(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        let devices = self.parsed("/proc/net/dev", parse::net_dev)?;
        for device in devices {
            if self.settings.netdev_devices.ignored(&device.name) {
                continue;
            }
            for (field, value) in parse::NET_DEV_FIELDS.iter().zip(device.counters) {
                out.push(
                    Sample::new(format!("node_network_{field}_total"), value as f64)
                        .label("device", &device.name),
                );
            }
            // node_exporter 1.5 reads links over netlink, which also carries
            // packets dropped for want of a protocol handler; sysfs has the
            // same counter. Kernels before 4.6 have neither.
            let path = format!("/sys/class/net/{}/statistics/rx_nohandler", device.name);
            if let Ok(Some(text)) = self.value_optional(&path)
                && let Ok(value) = text.trim().parse::<u64>()
            {
                out.push(
                    Sample::new("node_network_receive_nohandler_total", value as f64)
                        .label("device", &device.name),
                );
            }
        }
        Ok(())
    }

    fn vmstat(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        let text = self.read("/proc/vmstat")?;
        let fields =
            parse::vmstat(&text).map_err(|e| Failure::Error(format!("/proc/vmstat: {e}")))?;
        for (field, value) in fields {
            if self.settings.vmstat_fields.is_match(field) {
                out.push(Sample::new(format!("node_vmstat_{field}"), value));
            }
        }
        Ok(())
    }

    /// `node_cpu_package_throttles_total{package}` and
    /// `node_cpu_core_throttles_total{package,core}` from the thermal
    /// throttle counters of Intel CPUs; nothing where there are none.
    fn thermal_throttles(&self, out: &mut Vec<Sample>) {
        use std::collections::BTreeMap;
        let Ok(entries) = self.files.read_dir("/sys/devices/system/cpu") else {
            return;
        };
        let mut cpus: Vec<String> = entries
            .into_iter()
            .filter(|name| {
                name.strip_prefix("cpu")
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .collect();
        cpus.sort(); // node_exporter globs, and a glob is sorted
        let mut packages: BTreeMap<u64, u64> = BTreeMap::new();
        let mut cores: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let number = |path: String| -> Option<u64> { self.value(&path).ok()?.trim().parse().ok() };
        for cpu in cpus {
            let dir = format!("/sys/devices/system/cpu/{cpu}");
            // The counters first: where they are absent (most machines) the
            // topology files would be read for nothing.
            // The driver creates `core_throttle_count` with the directory,
            // `package_throttle_count` beside it where packages count too.
            let Some(core_count) = number(format!("{dir}/thermal_throttle/core_throttle_count"))
            else {
                continue;
            };
            let package_count = number(format!("{dir}/thermal_throttle/package_throttle_count"));
            let (Some(package), Some(core)) = (
                number(format!("{dir}/topology/physical_package_id")),
                number(format!("{dir}/topology/core_id")),
            ) else {
                continue;
            };
            cores.entry((package, core)).or_insert(core_count);
            if let Some(count) = package_count {
                packages.entry(package).or_insert(count);
            }
        }
        for (package, count) in packages {
            out.push(
                Sample::new("node_cpu_package_throttles_total", count as f64)
                    .label("package", package.to_string()),
            );
        }
        for ((package, core), count) in cores {
            out.push(
                Sample::new("node_cpu_core_throttles_total", count as f64)
                    .label("package", package.to_string())
                    .label("core", core.to_string()),
            );
        }
    }

    fn meminfo(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        for (field, value) in self.parsed("/proc/meminfo", parse::meminfo)? {
            out.push(Sample::new(format!("node_memory_{field}"), value));
        }
        Ok(())
    }

    fn loadavg(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        let [one, five, fifteen] = self.parsed("/proc/loadavg", parse::loadavg)?;
        out.push(Sample::new("node_load1", one));
        out.push(Sample::new("node_load5", five));
        out.push(Sample::new("node_load15", fifteen));
        Ok(())
    }

    /// Pressure stall information; `NoData` on kernels without it (before
    /// 4.20, or built or booted without PSI).
    fn pressure(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        for resource in ["cpu", "io", "memory"] {
            let path = format!("/proc/pressure/{resource}");
            let text = match self.files.read(&path) {
                Ok(text) => text,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Unsupported) => {
                    return Err(Failure::NoData(format!(
                        "pressure information is unavailable ({e}): it needs Linux 4.20 or later with PSI enabled"
                    )));
                }
                Err(e) => return Err(Failure::Error(format!("reading {e}"))),
            };
            let psi = parse::pressure(&text).map_err(|e| Failure::Error(format!("{path}: {e}")))?;
            let seconds = |total: Option<u64>, line: &str| {
                total
                    // Microseconds, converted as node_exporter does (two steps).
                    .map(|us| us as f64 / 1000.0 / 1000.0)
                    .ok_or_else(|| Failure::Error(format!("{path} has no {line} line")))
            };
            match resource {
                "cpu" => out.push(Sample::new(
                    "node_pressure_cpu_waiting_seconds_total",
                    seconds(psi.some_total, "some")?,
                )),
                _ => {
                    out.push(Sample::new(
                        format!("node_pressure_{resource}_waiting_seconds_total"),
                        seconds(psi.some_total, "some")?,
                    ));
                    out.push(Sample::new(
                        format!("node_pressure_{resource}_stalled_seconds_total"),
                        seconds(psi.full_total, "full")?,
                    ));
                }
            }
        }
        Ok(())
    }

    /// The wall clock of the sandbox (wasi:clocks, the host's clock) and the
    /// kernel's clock sources.
    fn time(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| Failure::Error(format!("the clock is before 1970: {e}")))?;
        out.push(Sample::new("node_time_seconds", now.as_secs_f64()));
        let root = "/sys/devices/system/clocksource";
        // No directory, no clock sources to report (node_exporter's glob finds none).
        let Ok(entries) = self.files.read_dir(root) else {
            return Ok(());
        };
        let mut sources: Vec<String> = entries
            .into_iter()
            .filter(|name| {
                name.strip_prefix("clocksource")
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .collect();
        sources.sort();
        // `device` is the position in the sorted list, as node_exporter numbers it.
        for (index, source) in sources.iter().enumerate() {
            let device = index.to_string();
            let available = self.value(&format!("{root}/{source}/available_clocksource"))?;
            let current = self.value(&format!("{root}/{source}/current_clocksource"))?;
            for clocksource in available.split_whitespace() {
                out.push(
                    Sample::new("node_time_clocksource_available_info", 1)
                        .label("device", &device)
                        .label("clocksource", clocksource),
                );
            }
            out.push(
                Sample::new("node_time_clocksource_current_info", 1)
                    .label("device", &device)
                    .label("clocksource", current.trim()),
            );
        }
        Ok(())
    }

    /// uname(2)'s fields, which the kernel also publishes under
    /// `/proc/sys/kernel`.
    fn uname(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        let field = |name: &str| -> Result<String, Failure> {
            Ok(self
                .value(&format!("/proc/sys/kernel/{name}"))?
                .trim_end_matches('\n')
                .to_owned())
        };
        // `arch` appeared in Linux 6.1; older kernels give no machine name.
        let machine = self
            .value_optional("/proc/sys/kernel/arch")?
            .map(|m| m.trim_end_matches('\n').to_owned())
            .unwrap_or_default();
        out.push(
            Sample::new("node_uname_info", 1)
                .label("sysname", field("ostype")?)
                .label("release", field("osrelease")?)
                .label("version", field("version")?)
                .label("machine", machine)
                .label("nodename", field("hostname")?)
                .label("domainname", field("domainname")?),
        );
        Ok(())
    }

    fn filefd(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        let path = "/proc/sys/fs/file-nr";
        let (allocated, maximum) = parse::file_nr(&self.value(path)?)
            .map_err(|e| Failure::Error(format!("{path}: {e}")))?;
        out.push(Sample::new("node_filefd_allocated", allocated));
        out.push(Sample::new("node_filefd_maximum", maximum));
        Ok(())
    }

    fn entropy(&self, out: &mut Vec<Sample>) -> Result<(), Failure> {
        for (file, name) in [
            ("entropy_avail", "node_entropy_available_bits"),
            ("poolsize", "node_entropy_pool_size_bits"),
        ] {
            let path = format!("/proc/sys/kernel/random/{file}");
            let text = self.value(&path)?;
            let bits: u64 = text.trim().parse().map_err(|_| {
                Failure::Error(format!("{path}: {:?} is not a number", text.trim()))
            })?;
            out.push(Sample::new(name, bits as f64));
        }
        Ok(())
    }

    /// A whole file as text.
    fn read(&self, path: &str) -> Result<String, Failure> {
        self.files.read(path).map_err(unreadable)
    }

    /// A sysfs attribute or `/proc/sys` value (see [`Files::read_value`]).
    fn value(&self, path: &str) -> Result<String, Failure> {
        self.files.read_value(path).map_err(unreadable)
    }

    /// A whole file as text, `None` when it does not exist.
    fn read_optional(&self, path: &str) -> Result<Option<String>, Failure> {
        optional(self.files.read(path))
    }

    /// A sysfs attribute or `/proc/sys` value, `None` when it does not exist.
    fn value_optional(&self, path: &str) -> Result<Option<String>, Failure> {
        optional(self.files.read_value(path))
    }

    /// A file read and parsed; a parse error names the file.
    fn parsed<T>(
        &self,
        path: &str,
        parse: impl FnOnce(&str) -> parse::ParseResult<T>,
    ) -> Result<T, Failure> {
        parse(&self.read(path)?).map_err(|e| Failure::Error(format!("{path}: {e}")))
    }
}

fn unreadable(error: std::io::Error) -> Failure {
    // The error names the path.
    Failure::Error(format!("reading {error}"))
}

fn optional(read: std::io::Result<String>) -> Result<Option<String>, Failure> {
    match read {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unreadable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_names_round_trip() {
        for c in Collector::ALL {
            assert_eq!(Collector::from_name(c.name()), Some(c));
        }
        assert_eq!(Collector::from_name("textfile"), None);
        let mut sorted = Collector::ALL;
        sorted.sort_by_key(|c| c.name());
        assert_eq!(sorted, Collector::ALL, "ALL is in name order");
    }

    /// Natively `Files` is `std::fs`, so every collector can run against
    /// the test machine's own kernel files.
    #[test]
    fn every_collector_reads_this_machines_kernel() {
        let settings = crate::settings(crate::Config::default()).unwrap();
        let collection = Collection::new(&settings, Instant::now() + Duration::from_secs(30));
        for collector in Collector::ALL {
            let mut samples = Vec::new();
            match collection.run(collector, &mut samples) {
                Ok(()) => {}
                // A kernel without PSI is the one expected absence.
                Err(Failure::NoData(_)) if collector == Collector::Pressure => continue,
                Err(failure) => panic!("{}: {failure:?}", collector.name()),
            }
            let names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
            let expected: &[&str] = match collector {
                Collector::Cpu => &["node_cpu_seconds_total", "node_cpu_guest_seconds_total"],
                Collector::Diskstats => &[],
                Collector::Entropy => {
                    &["node_entropy_available_bits", "node_entropy_pool_size_bits"]
                }
                Collector::Filefd => &["node_filefd_allocated", "node_filefd_maximum"],
                Collector::Filesystem => &[
                    "node_filesystem_device_error",
                    "node_filesystem_size_bytes",
                    "node_filesystem_avail_bytes",
                    "node_filesystem_files_free",
                    "node_filesystem_readonly",
                ],
                Collector::Loadavg => &["node_load1", "node_load5", "node_load15"],
                Collector::Meminfo => &["node_memory_MemTotal_bytes", "node_memory_MemFree_bytes"],
                Collector::Netdev => &["node_network_receive_bytes_total"],
                Collector::Pressure => &["node_pressure_cpu_waiting_seconds_total"],
                Collector::Stat => &["node_boot_time_seconds", "node_context_switches_total"],
                Collector::Time => &["node_time_seconds"],
                Collector::Uname => &["node_uname_info"],
                Collector::Vmstat => &["node_vmstat_pgfault"],
            };
            for name in expected {
                assert!(
                    names.contains(name),
                    "{}: no {name} in {names:?}",
                    collector.name()
                );
            }
            assert!(
                samples
                    .iter()
                    .all(|s| s.value.is_finite() && s.value >= 0.0),
                "{}: {samples:?}",
                collector.name()
            );
        }
    }

    #[test]
    fn device_filters_exclude_or_include() {
        let exclude = DeviceFilter {
            exclude: Some(Pattern::new(crate::patterns::DISKSTATS_DEVICE_EXCLUDE).unwrap()),
            include: None,
        };
        for ignored in [
            "loop0",
            "ram1",
            "sda1",
            "vdb12",
            "xvda1",
            "nvme0n1p2",
            "fd0",
        ] {
            assert!(exclude.ignored(ignored), "{ignored}");
        }
        for kept in ["vda", "sda", "nvme0n1", "zram0", "dm-0", "md127"] {
            assert!(!exclude.ignored(kept), "{kept}");
        }
        let include = DeviceFilter {
            exclude: None,
            include: Some(Pattern::new("^eth").unwrap()),
        };
        assert!(!include.ignored("eth0"));
        assert!(include.ignored("lo"));
    }
}
