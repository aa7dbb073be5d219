//! Parsers for the kernel's text files. No I/O here, so each is tested
//! against text captured from a real `/proc` and `/sys`.
//!
//! Each follows what node_exporter 1.5 (and the procfs 0.8 library it uses)
//! accepts and rejects, so that a file one of them reads the other reads
//! the same way.

use std::collections::HashMap;

/// Clock ticks per second of `/proc/stat`'s CPU times. The kernel's
/// `USER_HZ` is 100 on every architecture Linux exports it for; procfs
/// hard-codes the same value.
pub const USER_HZ: f64 = 100.0;

/// Sector size `/proc/diskstats` counts in, whatever the device's own is.
pub const SECTOR_BYTES: f64 = 512.0;

/// Seconds per millisecond tick of `/proc/diskstats`. Multiplied, not
/// divided, as node_exporter does: `x * 0.001` and `x / 1000.0` differ in
/// the last bit for some `x`, and the values must match exactly.
pub const SECONDS_PER_DISK_TICK: f64 = 1.0 / 1000.0;

/// Why a file's text could not be read as expected.
pub type ParseResult<T> = Result<T, String>;

/// One CPU's times from a `cpuN` line of `/proc/stat`, in seconds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CpuTimes {
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub idle: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
    pub guest: f64,
    pub guest_nice: f64,
}

impl CpuTimes {
    /// `node_cpu_seconds_total`'s modes, in node_exporter's order.
    pub fn modes(&self) -> [(&'static str, f64); 8] {
        [
            ("user", self.user),
            ("nice", self.nice),
            ("system", self.system),
            ("idle", self.idle),
            ("iowait", self.iowait),
            ("irq", self.irq),
            ("softirq", self.softirq),
            ("steal", self.steal),
        ]
    }
}

/// Softirq vectors of `/proc/stat`'s `softirq` line, after its total, as
/// node_exporter names them.
pub const SOFTIRQ_VECTORS: [&str; 10] = [
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "block_iopoll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
];

/// What the `cpu` and `stat` collectors read from `/proc/stat`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct KernelStat {
    /// Indexed by CPU number. A CPU missing from the file (offline) below
    /// the highest one present stays all zero, as procfs 0.8 leaves it and
    /// node_exporter 1.5 then reports it.
    pub cpus: Vec<CpuTimes>,
    pub boot_time: u64,
    pub interrupts: u64,
    pub context_switches: u64,
    pub forks: u64,
    pub procs_running: u64,
    pub procs_blocked: u64,
    /// Per vector, in [`SOFTIRQ_VECTORS`] order; `None` without the line.
    pub softirqs: Option<[u64; 10]>,
}

/// Parses `/proc/stat`.
pub fn kernel_stat(text: &str) -> ParseResult<KernelStat> {
    let mut stat = KernelStat::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(key), Some(first)) = (fields.next(), fields.next()) else {
            continue;
        };
        let number = |value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("couldn't parse {value:?} ({key})"))
        };
        match key {
            "btime" => stat.boot_time = number(first)?,
            "intr" => stat.interrupts = number(first)?,
            "ctxt" => stat.context_switches = number(first)?,
            "processes" => stat.forks = number(first)?,
            "procs_running" => stat.procs_running = number(first)?,
            "procs_blocked" => stat.procs_blocked = number(first)?,
            "softirq" => {
                let mut vectors = [0u64; 10];
                let mut values = fields.map(number);
                for slot in &mut vectors {
                    *slot = values
                        .next()
                        .ok_or_else(|| format!("softirq line has too few fields: {line:?}"))??;
                }
                stat.softirqs = Some(vectors);
            }
            cpu if cpu.starts_with("cpu") => {
                let times = cpu_times(std::iter::once(first).chain(fields), line)?;
                if cpu == "cpu" {
                    continue; // the sum over CPUs; node_exporter reports CPUs one by one
                }
                let index: usize = cpu[3..]
                    .parse()
                    .map_err(|_| format!("couldn't parse {line:?} (cpu/cpuid)"))?;
                if stat.cpus.len() <= index {
                    stat.cpus.resize(index + 1, CpuTimes::default());
                }
                stat.cpus[index] = times;
            }
            _ => {}
        }
    }
    Ok(stat)
}

/// The times of one `cpu` line; fields an older kernel lacks stay zero.
fn cpu_times<'a>(fields: impl Iterator<Item = &'a str>, line: &str) -> ParseResult<CpuTimes> {
    let mut ticks = [0f64; 10];
    for (slot, field) in ticks.iter_mut().zip(fields) {
        *slot = field
            .parse::<f64>()
            .map_err(|_| format!("couldn't parse {line:?} (cpu)"))?;
    }
    let [
        user,
        nice,
        system,
        idle,
        iowait,
        irq,
        softirq,
        steal,
        guest,
        guest_nice,
    ] = ticks.map(|t| t / USER_HZ);
    Ok(CpuTimes {
        user,
        nice,
        system,
        idle,
        iowait,
        irq,
        softirq,
        steal,
        guest,
        guest_nice,
    })
}

/// `/proc/meminfo` as node_exporter names it: `Active(anon)` becomes
/// `Active_anon`; a value with a unit (always kB) is multiplied by 1024 and
/// its name gets `_bytes`; one without (`HugePages_Total`) is a count.
/// Returned in file order.
pub fn meminfo(text: &str) -> ParseResult<Vec<(String, f64)>> {
    let mut fields = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        let Some(value) = parts.get(1) else {
            return Err(format!("invalid line in meminfo: {line}"));
        };
        let mut value: f64 = value
            .parse()
            .map_err(|_| format!("invalid value in meminfo: {line}"))?;
        let key = parts[0].strip_suffix(':').unwrap_or(parts[0]);
        let mut key = munge_parentheses(key);
        match parts.len() {
            2 => {}
            3 => {
                value *= 1024.0;
                key.push_str("_bytes");
            }
            _ => return Err(format!("invalid line in meminfo: {line}")),
        }
        fields.push((key, value));
    }
    Ok(fields)
}

/// `Active(anon)` → `Active_anon`: node_exporter's greedy `\((.*)\)` →
/// `_${1}`, from the first `(` to the last `)`.
fn munge_parentheses(key: &str) -> String {
    match (key.find('('), key.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            format!(
                "{}_{}{}",
                &key[..open],
                &key[open + 1..close],
                &key[close + 1..]
            )
        }
        _ => key.to_owned(),
    }
}

/// The 1, 5 and 15 minute load averages of `/proc/loadavg`.
pub fn loadavg(text: &str) -> ParseResult<[f64; 3]> {
    let mut parts = text.split_whitespace();
    let mut loads = [0f64; 3];
    for load in &mut loads {
        let part = parts
            .next()
            .ok_or_else(|| "unexpected content in /proc/loadavg".to_owned())?;
        *load = part
            .parse()
            .map_err(|_| format!("could not parse load {part:?}"))?;
    }
    Ok(loads)
}

/// The counters of `/proc/net/dev`, named as node_exporter 1.5 names them
/// (its netlink values folded into the legacy names, which are exactly
/// these columns), without the `node_network_` prefix and `_total` suffix.
pub const NET_DEV_FIELDS: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// One interface of `/proc/net/dev`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetDevice {
    pub name: String,
    /// In [`NET_DEV_FIELDS`] order.
    pub counters: [u64; 16],
}

/// Parses `/proc/net/dev` (two header lines, then `name: 16 counters`).
pub fn net_dev(text: &str) -> ParseResult<Vec<NetDevice>> {
    let mut devices = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.rsplit_once(':') else {
            return Err("invalid net/dev line, missing colon".to_owned());
        };
        let name = name.trim();
        if name.is_empty() {
            return Err("invalid net/dev line, empty interface name".to_owned());
        }
        let mut counters = [0u64; 16];
        let mut values = rest.split_whitespace();
        for counter in &mut counters {
            let value = values
                .next()
                .ok_or_else(|| format!("net/dev line of {name} has too few fields"))?;
            *counter = value
                .parse()
                .map_err(|_| format!("net/dev line of {name}: {value:?} is not a counter"))?;
        }
        devices.push(NetDevice {
            name: name.to_owned(),
            counters,
        });
    }
    Ok(devices)
}

/// `/proc/diskstats`' counters after major, minor and name, with the
/// factor that turns each into node_exporter's unit, and the sample name.
/// A kernel writes 11 (before 4.18), 15 (before 5.5) or 17 of them.
pub const DISK_FIELDS: [(&str, f64); 17] = [
    ("node_disk_reads_completed_total", 1.0),
    ("node_disk_reads_merged_total", 1.0),
    ("node_disk_read_bytes_total", SECTOR_BYTES),
    ("node_disk_read_time_seconds_total", SECONDS_PER_DISK_TICK),
    ("node_disk_writes_completed_total", 1.0),
    ("node_disk_writes_merged_total", 1.0),
    ("node_disk_written_bytes_total", SECTOR_BYTES),
    ("node_disk_write_time_seconds_total", SECONDS_PER_DISK_TICK),
    ("node_disk_io_now", 1.0),
    ("node_disk_io_time_seconds_total", SECONDS_PER_DISK_TICK),
    (
        "node_disk_io_time_weighted_seconds_total",
        SECONDS_PER_DISK_TICK,
    ),
    ("node_disk_discards_completed_total", 1.0),
    ("node_disk_discards_merged_total", 1.0),
    // Sectors, not bytes: node_exporter 1.5 reports the raw count.
    ("node_disk_discarded_sectors_total", 1.0),
    (
        "node_disk_discard_time_seconds_total",
        SECONDS_PER_DISK_TICK,
    ),
    ("node_disk_flush_requests_total", 1.0),
    (
        "node_disk_flush_requests_time_seconds_total",
        SECONDS_PER_DISK_TICK,
    ),
];

/// One block device of `/proc/diskstats`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskStats {
    pub major: u32,
    pub minor: u32,
    pub name: String,
    /// The counters present, in [`DISK_FIELDS`] order (11 to 17).
    pub counters: Vec<u64>,
}

/// Parses `/proc/diskstats`. Lines with fewer than 11 counters are
/// skipped, as procfs does.
pub fn diskstats(text: &str) -> ParseResult<Vec<DiskStats>> {
    let mut disks = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(major), Some(minor), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            return Err(format!("diskstats line is not major minor name: {line:?}"));
        };
        let mut counters = Vec::with_capacity(DISK_FIELDS.len());
        for field in fields.take(DISK_FIELDS.len()) {
            match field.parse::<u64>() {
                Ok(value) => counters.push(value),
                Err(_) => return Err(format!("diskstats of {name}: {field:?} is not a counter")),
            }
        }
        if counters.len() >= 11 {
            disks.push(DiskStats {
                major,
                minor,
                name: name.to_owned(),
                counters,
            });
        }
    }
    Ok(disks)
}

/// One line of a mount table (`/proc/1/mounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: String,
}

impl Mount {
    /// Whether the mount options hold `ro`.
    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|option| option == "ro")
    }
}

/// Parses a mount table. Spaces and tabs in mount points (written `\040`
/// and `\011`) are restored, as node_exporter does; nothing else is.
pub fn mounts(text: &str) -> ParseResult<Vec<Mount>> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 4 {
            return Err(format!("malformed mount point information: {line:?}"));
        }
        mounts.push(Mount {
            device: parts[0].to_owned(),
            mount_point: parts[1].replace("\\040", " ").replace("\\011", "\t"),
            fs_type: parts[2].to_owned(),
            options: parts[3].to_owned(),
        });
    }
    Ok(mounts)
}

/// The cumulative stall times of one `/proc/pressure/<resource>` file, in
/// microseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pressure {
    /// Some task waited.
    pub some_total: Option<u64>,
    /// No task could run.
    pub full_total: Option<u64>,
}

/// Parses a pressure (PSI) file: `some avg10=… avg60=… avg300=… total=N`
/// and the same for `full`; other lines are ignored.
pub fn pressure(text: &str) -> ParseResult<Pressure> {
    let mut psi = Pressure::default();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let slot = match parts.next() {
            Some("some") => &mut psi.some_total,
            Some("full") => &mut psi.full_total,
            _ => continue,
        };
        let total = parts
            .find_map(|p| p.strip_prefix("total="))
            .ok_or_else(|| format!("pressure line without total: {line:?}"))?;
        *slot = Some(
            total
                .parse()
                .map_err(|_| format!("pressure total {total:?} is not a number"))?,
        );
    }
    Ok(psi)
}

/// `/proc/vmstat` as `(field, value)`, in file order.
pub fn vmstat(text: &str) -> ParseResult<Vec<(&str, f64)>> {
    let mut fields = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            return Err(format!("invalid line in vmstat: {line:?}"));
        };
        let value = value
            .parse()
            .map_err(|_| format!("invalid value in vmstat: {line:?}"))?;
        fields.push((name, value));
    }
    Ok(fields)
}

/// `/proc/sys/fs/file-nr`: allocated and maximum file handles (the middle,
/// always-zero field is skipped, as node_exporter does).
pub fn file_nr(text: &str) -> ParseResult<(f64, f64)> {
    let parts: Vec<&str> = text.trim().split('\t').collect();
    if parts.len() < 3 {
        return Err("unexpected number of file stats in /proc/sys/fs/file-nr".to_owned());
    }
    let number = |s: &str| {
        s.parse::<f64>()
            .map_err(|_| format!("invalid value {s:?} in file-nr"))
    };
    Ok((number(parts[0])?, number(parts[2])?))
}

/// A kernel CPU list (`0-3,8,10-11`; empty for none).
pub fn cpu_list(text: &str) -> ParseResult<Vec<u32>> {
    let mut cpus = Vec::new();
    for range in text.trim().split(',').filter(|r| !r.is_empty()) {
        let number = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("{s:?} in CPU list {range:?} is not a CPU number"))
        };
        match range.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (number(first)?, number(last)?);
                if first > last {
                    return Err(format!("CPU range {range:?} runs backwards"));
                }
                cpus.extend(first..=last);
            }
            None => cpus.push(number(range)?),
        }
    }
    Ok(cpus)
}

/// The `E:KEY=VALUE` properties of a udev database entry
/// (`/run/udev/data/b<major>:<minor>`).
pub fn udev_properties(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("E:")?.split_once('='))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from this project's build machine (Linux 6.18, 2 vCPUs); the
    // `intr` line is shortened.
    const STAT: &str = "\
cpu  2118295 27970 158586 1608789 17086 0 3885 1001 0 0
cpu0 1005186 13851 69584 873929 4106 0 947 492 0 0
cpu1 1113109 14118 89002 734859 12980 0 2937 509 0 0
intr 19746737 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 14 0 0 0 0 3956
ctxt 22726641
btime 1795242453
processes 409307
procs_running 4
procs_blocked 0
softirq 9795756 0 1076340 7 1947367 2461423 0 998 1574092 267048 2468481
";

    #[test]
    fn kernel_stat_reads_cpus_and_counters() {
        let stat = kernel_stat(STAT).unwrap();
        assert_eq!(stat.cpus.len(), 2);
        assert_eq!(stat.cpus[0].user, 10051.86);
        assert_eq!(stat.cpus[1].idle, 7348.59);
        assert_eq!(stat.cpus[1].steal, 5.09);
        assert_eq!(stat.cpus[0].guest_nice, 0.0);
        assert_eq!(stat.boot_time, 1795242453);
        assert_eq!(stat.interrupts, 19746737);
        assert_eq!(stat.context_switches, 22726641);
        assert_eq!(stat.forks, 409307);
        assert_eq!(stat.procs_running, 4);
        assert_eq!(stat.procs_blocked, 0);
        assert_eq!(
            stat.softirqs,
            Some([
                0, 1076340, 7, 1947367, 2461423, 0, 998, 1574092, 267048, 2468481
            ])
        );
    }

    #[test]
    fn an_offline_cpu_leaves_a_zero_gap_and_old_kernels_fewer_fields() {
        // A kernel before 2.6.33 has no guest_nice; cpu1 is offline.
        let stat =
            kernel_stat("cpu 1 2 3 4 5 6 7 8 9\ncpu0 100 0 0 0\ncpu2 1 2 3 4 5 6 7 8 9\n").unwrap();
        assert_eq!(stat.cpus.len(), 3);
        assert_eq!(stat.cpus[0].user, 1.0);
        assert_eq!(stat.cpus[1], CpuTimes::default());
        assert_eq!(stat.cpus[2].guest, 0.09);
        assert_eq!(stat.cpus[2].guest_nice, 0.0);
        assert_eq!(stat.softirqs, None);
        assert!(kernel_stat("cpu0 1 x 3\n").is_err());
        assert!(kernel_stat("ctxt many\n").is_err());
    }

    const MEMINFO: &str = "\
MemTotal:       24684084 kB
MemFree:        19875304 kB
Active(anon):       1552 kB
Inactive(file):  1543556 kB
NFS_Unstable:          0 kB
VmallocTotal:   34359738367 kB
HugePages_Total:       0
HugePages_Free:        0
Hugepagesize:       2048 kB
DirectMap1G:    25165824 kB
";

    #[test]
    fn meminfo_names_and_units_follow_node_exporter() {
        let fields = meminfo(MEMINFO).unwrap();
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "MemTotal_bytes",
                "MemFree_bytes",
                "Active_anon_bytes",
                "Inactive_file_bytes",
                "NFS_Unstable_bytes",
                "VmallocTotal_bytes",
                "HugePages_Total",
                "HugePages_Free",
                "Hugepagesize_bytes",
                "DirectMap1G_bytes",
            ]
        );
        assert_eq!(fields[0].1, 24684084.0 * 1024.0);
        assert_eq!(fields[5].1, 35184372087808.0);
        assert_eq!(fields[6].1, 0.0);
        assert_eq!(fields[8].1, 2097152.0);
        assert!(meminfo("MemTotal: lots kB\n").is_err());
        assert!(meminfo("MemTotal: 1 kB extra\n").is_err());
        assert!(
            meminfo("\nMemTotal: 1 kB\n").is_ok(),
            "blank lines are skipped"
        );
    }

    #[test]
    fn loadavg_reads_three_averages() {
        assert_eq!(
            loadavg("1.11 1.01 1.32 4/105 19832\n").unwrap(),
            [1.11, 1.01, 1.32]
        );
        assert!(loadavg("1.0 2.0\n").is_err());
        assert!(loadavg("a b c\n").is_err());
    }

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 48853519711 3417397    0    0    0     0          0         0 48853519711 3417397    0    0    0     0       0          0
  eth0: 330814393   18318    1    2    3     4          5         6  1094673   11540    7    8    9    10       11          12
";

    #[test]
    fn net_dev_reads_sixteen_counters_per_interface() {
        let devices = net_dev(NET_DEV).unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].name, "lo");
        assert_eq!(devices[0].counters[0], 48853519711);
        assert_eq!(devices[1].name, "eth0");
        assert_eq!(
            devices[1].counters,
            [
                330814393, 18318, 1, 2, 3, 4, 5, 6, 1094673, 11540, 7, 8, 9, 10, 11, 12
            ]
        );
        assert!(net_dev("h\nh\n  eth0: 1 2 3\n").is_err());
        assert!(net_dev("h\nh\n  : 1 2 3\n").is_err());
    }

    const DISKSTATS: &str = "\
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 4886711 71158 130661378 7256611 5551338 310145 205295096 1494595 0 295876 8822202 194266 24 655233984 31237 786559 39758
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   8       0 sda 10 0 80 4 0 0 0 0 0 4 4
   8       1 sda1 1 2 3
";

    #[test]
    fn diskstats_keep_the_fields_the_kernel_writes() {
        let disks = diskstats(DISKSTATS).unwrap();
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            ["loop0", "vda", "zram0", "sda"],
            "sda1 has too few fields"
        );
        let vda = &disks[1];
        assert_eq!((vda.major, vda.minor), (254, 0));
        assert_eq!(vda.counters.len(), 17);
        assert_eq!(vda.counters[2] as f64 * SECTOR_BYTES, 66898625536.0);
        assert_eq!(vda.counters[3] as f64 * SECONDS_PER_DISK_TICK, 7256.611);
        assert_eq!(disks[3].counters.len(), 11);
        assert!(diskstats(" 8 x sda 1 2 3 4 5 6 7 8 9 10 11\n").is_err());
    }

    #[test]
    fn mounts_restore_escaped_blanks_and_read_ro() {
        let text = "\
/dev/vda / ext4 rw,relatime,discard 0 0
tmpfs /mnt/my\\040disk tmpfs ro,nosuid,nodev,relatime,size=4k,mode=755 0 0
";
        let mounts = mounts(text).unwrap();
        assert_eq!(mounts[0].device, "/dev/vda");
        assert_eq!(mounts[0].fs_type, "ext4");
        assert!(!mounts[0].read_only());
        assert_eq!(mounts[1].mount_point, "/mnt/my disk");
        assert!(mounts[1].read_only());
        assert!(super::mounts("short line\n").is_err());
    }

    #[test]
    fn pressure_reads_some_and_full_totals() {
        let psi = pressure(
            "some avg10=0.24 avg60=2.02 avg300=1.58 total=158045689\n\
             full avg10=0.12 avg60=1.95 avg300=1.46 total=125010916\n",
        )
        .unwrap();
        assert_eq!(psi.some_total, Some(158045689));
        assert_eq!(psi.full_total, Some(125010916));
        // Before Linux 5.13 the cpu file has no `full` line.
        let cpu = pressure("some avg10=3.81 avg60=2.84 avg300=4.01 total=1317592815\n").unwrap();
        assert_eq!(cpu.full_total, None);
        assert!(pressure("some avg10=1 total=x\n").is_err());
    }

    #[test]
    fn vmstat_and_file_nr() {
        let fields = vmstat("nr_free_pages 1737129\npgfault 466652621\noom_kill 0\n").unwrap();
        assert_eq!(fields[1], ("pgfault", 466652621.0));
        assert!(vmstat("pgfault\n").is_err());
        assert_eq!(file_nr("699\t0\t2466170\n").unwrap(), (699.0, 2466170.0));
        assert!(
            file_nr("699 0 2466170\n").is_err(),
            "file-nr is tab separated"
        );
    }

    #[test]
    fn cpu_lists_expand_ranges() {
        assert_eq!(cpu_list("\n").unwrap(), Vec::<u32>::new());
        assert_eq!(cpu_list("0-2,5,7-8\n").unwrap(), [0, 1, 2, 5, 7, 8]);
        assert!(cpu_list("3-1").is_err());
        assert!(cpu_list("a").is_err());
    }

    #[test]
    fn udev_properties_are_e_lines() {
        let props = udev_properties(
            "S:disk/by-id/x\nE:ID_MODEL=QEMU_HARDDISK\nE:ID_FS_TYPE=ext4\nG:systemd\n",
        );
        assert_eq!(props.get("ID_MODEL"), Some(&"QEMU_HARDDISK"));
        assert_eq!(props.get("ID_FS_TYPE"), Some(&"ext4"));
        assert_eq!(props.len(), 2);
    }
}
