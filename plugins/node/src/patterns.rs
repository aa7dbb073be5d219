//! The name filters (devices, mount points, file system types, vmstat
//! fields): a regex of the user's, or node_exporter's default matched by
//! code written for it.
//!
//! Nothing survives between collections, so a regex is compiled on every
//! one; node_exporter's four defaults take ~0.4 ms to compile in wasm,
//! about a tenth of a whole collection. Each default below is tested to
//! agree with its regex.

use regex::bytes::{Regex, RegexBuilder};

/// node_exporter 1.5's `--collector.diskstats.device-exclude` default:
/// partitions, RAM disks, loop devices and floppies.
pub const DISKSTATS_DEVICE_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";

/// node_exporter 1.5's `--collector.filesystem.mount-points-exclude` default.
pub const MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// node_exporter 1.5's `--collector.filesystem.fs-types-exclude` default.
pub const FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

/// node_exporter 1.5's `--collector.vmstat.fields` default.
pub const VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

/// The file system types [`FS_TYPES_EXCLUDE`] names.
const EXCLUDED_FS_TYPES: [&str; 24] = [
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// A name filter.
#[derive(Debug)]
pub enum Pattern {
    /// One of node_exporter's default patterns, as code.
    Default(fn(&str) -> bool),
    Regex(Regex),
}

impl Pattern {
    /// `pattern`, or the code for it when it is one of the defaults. A
    /// regex is compiled in ASCII mode, as Go's `\d`, `\w` and `\s` are
    /// ASCII (which also compiles several times faster in wasm), and
    /// matches names as bytes.
    pub fn new(pattern: &str) -> Result<Pattern, regex::Error> {
        let default: Option<fn(&str) -> bool> = match pattern {
            DISKSTATS_DEVICE_EXCLUDE => Some(is_partition_or_virtual_disk),
            MOUNT_POINTS_EXCLUDE => Some(is_system_mount_point),
            FS_TYPES_EXCLUDE => Some(is_pseudo_fs_type),
            VMSTAT_FIELDS => Some(is_default_vmstat_field),
            _ => None,
        };
        match default {
            Some(matches) => Ok(Pattern::Default(matches)),
            None => Ok(Pattern::Regex(compile(pattern)?)),
        }
    }

    pub fn is_match(&self, name: &str) -> bool {
        match self {
            Pattern::Default(matches) => matches(name),
            Pattern::Regex(regex) => regex.is_match(name.as_bytes()),
        }
    }
}

fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern).unicode(false).build()
}

/// `^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`. Every alternative
/// ends in a non-digit, so the trailing digits split off unambiguously.
fn is_partition_or_virtual_disk(name: &str) -> bool {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if stem.len() == name.len() {
        return false;
    }
    let bytes = stem.as_bytes();
    let letter_disk = match bytes {
        [prefix @ .., b'd', letter] if letter.is_ascii_lowercase() => {
            matches!(prefix, b"h" | b"s" | b"v" | b"xv")
        }
        _ => false,
    };
    let nvme_partition = stem
        .strip_prefix("nvme")
        .and_then(|rest| rest.strip_suffix('p'))
        .and_then(|rest| rest.split_once('n'))
        .is_some_and(|(controller, namespace)| is_digits(controller) && is_digits(namespace));
    matches!(stem, "ram" | "loop" | "fd") || letter_disk || nvme_partition
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`.
fn is_system_mount_point(path: &str) -> bool {
    let whole_or_dir = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    // `.+($|/)`: something (no newline) up to the end or up to a slash.
    let under = |prefix: &str| {
        path.strip_prefix(prefix).is_some_and(|rest| {
            let line = rest.split('\n').next().unwrap_or("");
            (!line.is_empty() && line.len() == rest.len())
                || line[1.min(line.len())..].contains('/')
        })
    };
    whole_or_dir("/dev")
        || whole_or_dir("/proc")
        || whole_or_dir("/sys")
        || under("/run/credentials/")
        || under("/var/lib/docker/")
        || under("/var/lib/containers/storage/")
}

fn is_pseudo_fs_type(fs_type: &str) -> bool {
    EXCLUDED_FS_TYPES.contains(&fs_type)
}

/// `^(oom_kill|pgpg|pswp|pg.*fault).*`.
fn is_default_vmstat_field(field: &str) -> bool {
    field.starts_with("oom_kill")
        || field.starts_with("pgpg")
        || field.starts_with("pswp")
        || field
            .strip_prefix("pg")
            .is_some_and(|rest| rest.split('\n').next().unwrap_or("").contains("fault"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each default's code and its regex agree on `names`.
    fn agree(pattern: &str, names: &[&str]) {
        let code = Pattern::new(pattern).unwrap();
        assert!(matches!(code, Pattern::Default(_)), "{pattern}");
        let regex = compile(pattern).unwrap();
        for name in names {
            assert_eq!(
                code.is_match(name),
                regex.is_match(name.as_bytes()),
                "{pattern} on {name:?}"
            );
        }
    }

    #[test]
    fn disk_default_agrees_with_its_regex() {
        agree(
            DISKSTATS_DEVICE_EXCLUDE,
            &[
                "loop0",
                "loop12",
                "ram0",
                "fd0",
                "sda",
                "sda1",
                "sdaa1",
                "hdb3",
                "vda",
                "vda1",
                "xvda",
                "xvda1",
                "xvdb12",
                "xd1",
                "vd1",
                "nvme0n1",
                "nvme0n1p1",
                "nvme10n2p13",
                "nvmen1p1",
                "nvme0np1",
                "nvme0n1p",
                "zram0",
                "dm-0",
                "md127",
                "sr0",
                "mmcblk0",
                "mmcblk0p1",
                "loop",
                "ram",
                "",
                "1",
                "sdA1",
                "loopx1",
                "nbd0",
            ],
        );
    }

    #[test]
    fn mount_point_default_agrees_with_its_regex() {
        agree(
            MOUNT_POINTS_EXCLUDE,
            &[
                "/",
                "/dev",
                "/dev/shm",
                "/devices",
                "/proc",
                "/proc/sys/fs/binfmt_misc",
                "/process",
                "/sys",
                "/sys/fs/cgroup",
                "/system",
                "/run",
                "/run/credentials",
                "/run/credentials/",
                "/run/credentials/a.service",
                "/run/credentials/a/b",
                "/var/lib/docker",
                "/var/lib/docker/",
                "/var/lib/docker/overlay2/x/merged",
                "/var/lib/containers/storage/overlay",
                "/var/lib/containers",
                "/home",
                "/mnt/sandboxing/model_tools_env/v1/python",
                "/boot/efi",
                "/run/user/1000",
                "/var/lib/docker/\n",
                "/var/lib/docker/a\nb",
                "/var/lib/docker/\n/x",
                "/var/lib/docker/a/\n",
                "dev",
                "",
            ],
        );
    }

    #[test]
    fn fs_type_default_agrees_with_its_regex() {
        let mut names: Vec<&str> = EXCLUDED_FS_TYPES.to_vec();
        names.extend([
            "ext4",
            "xfs",
            "btrfs",
            "tmpfs",
            "vfat",
            "nfs",
            "cgroup3",
            "cgroups",
            "overlayfs",
            "proc2",
            "fuse.sshfs",
            "zfs",
            "",
            "tracefs",
        ]);
        agree(FS_TYPES_EXCLUDE, &names);
    }

    #[test]
    fn vmstat_default_agrees_with_its_regex() {
        agree(
            VMSTAT_FIELDS,
            &[
                "pgfault",
                "pgmajfault",
                "pgpgin",
                "pgpgout",
                "pswpin",
                "pswpout",
                "oom_kill",
                "oom_kill_x",
                "nr_free_pages",
                "pgsteal_kswapd",
                "pgdemote_kswapd",
                "thp_fault_alloc",
                "pg",
                "pgfaul",
                "pgxfault",
                "pg\nfault",
                "numa_hint_faults",
                "",
                "pgalloc_dma",
            ],
        );
    }

    /// The fields of this machine's own `/proc/vmstat` too.
    #[test]
    fn vmstat_default_agrees_on_this_kernels_fields() {
        let text = std::fs::read_to_string("/proc/vmstat").unwrap_or_default();
        let fields: Vec<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
        agree(VMSTAT_FIELDS, &fields);
    }

    #[test]
    fn other_patterns_are_regexes() {
        let p = Pattern::new("^eth").unwrap();
        assert!(matches!(p, Pattern::Regex(_)));
        assert!(p.is_match("eth0"));
        assert!(!p.is_match("lo"));
        assert!(Pattern::new("(").is_err());
    }
}
