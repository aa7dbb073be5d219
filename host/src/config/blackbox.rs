//! A blackbox_exporter configuration (`modules:`) loaded as-is.
//!
//! Each module names a prober (`http`, `tcp`, `icmp`, `dns`, `grpc`) and a
//! timeout; its prober section (`http:` …) is handed, as JSON, to the probe
//! plugin of the same name, whose options carry blackbox_exporter's names.
//! Modules serve two purposes: jobs of lookout's own config run one with
//! `module = "http_2xx"`, and `/probe?target=…&module=…` answers like
//! blackbox_exporter, so Prometheus scrape configs pointed at blackbox work
//! against lookout unchanged.
//!
//! As blackbox_exporter does when it loads the file, `*_file` references
//! (`ca_file`, `password_file`, `bearer_token_file` …) are read here,
//! relative to the file: plugins read no files, they get the contents.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, parse_duration};

/// The probers blackbox_exporter knows; each is a lookout probe plugin of
/// the same name.
pub const PROBERS: &[&str] = &["http", "tcp", "icmp", "dns", "grpc"];

/// One module: which plugin runs it, how long it may take, its options.
#[derive(Debug, Clone, PartialEq)]
pub struct BlackboxModule {
    pub name: String,
    /// The prober, which is also the plugin's install name.
    pub plugin: String,
    /// `None` when the module sets no timeout: the caller's deadline rules.
    pub timeout: Option<Duration>,
    /// The prober's section, JSON, file references read.
    pub config_json: String,
    /// Where the module starts in its file.
    pub line: usize,
}

/// The modules of one file, by name, and the file they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlackboxModules {
    pub source: String,
    pub modules: BTreeMap<String, BlackboxModule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    modules: BTreeMap<String, RawModule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    prober: String,
    timeout: Option<String>,
    http: Option<serde_json::Value>,
    tcp: Option<serde_json::Value>,
    icmp: Option<serde_json::Value>,
    dns: Option<serde_json::Value>,
    grpc: Option<serde_json::Value>,
}

/// Whether YAML text is a blackbox_exporter file rather than a
/// `prometheus.yml`: its top level holds `modules:`.
pub fn looks_like_blackbox(text: &str) -> bool {
    text.lines().any(|l| l.trim_end() == "modules:")
}

/// Reads a blackbox_exporter configuration file.
pub fn load(path: &Path) -> Result<BlackboxModules, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read: {e}"),
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse(&text, &file, base)
}

/// Parses blackbox_exporter configuration text; `file` names it in errors
/// and `base` is where relative `*_file` references start.
pub fn parse(text: &str, file: &str, base: &Path) -> Result<BlackboxModules, ConfigError> {
    let at = |line: usize, message: String| ConfigError {
        file: file.to_string(),
        line,
        column: 1,
        message,
    };
    let raw: RawFile = serde_norway::from_str(text).map_err(|e| super::yaml_error(&e, file))?;
    let mut modules = BTreeMap::new();
    for (name, module) in raw.modules {
        let line = module_line(text, &name);
        if !PROBERS.contains(&module.prober.as_str()) {
            return Err(at(
                line,
                format!(
                    "module `{name}`: unknown prober `{}` (blackbox_exporter's probers: {})",
                    module.prober,
                    PROBERS.join(", ")
                ),
            ));
        }
        let timeout = match module.timeout.as_deref() {
            None => None,
            Some(text) => {
                let d = parse_duration(text)
                    .map_err(|e| at(line, format!("module `{name}`: timeout: {e}")))?;
                // blackbox_exporter reads 0 as "no timeout of its own".
                (!d.is_zero()).then_some(d)
            }
        };
        let sections = [
            ("http", module.http),
            ("tcp", module.tcp),
            ("icmp", module.icmp),
            ("dns", module.dns),
            ("grpc", module.grpc),
        ];
        let mut config = serde_json::Value::Object(Default::default());
        for (section, value) in sections {
            let Some(value) = value else { continue };
            // blackbox_exporter ignores the sections of other probers; so
            // does lookout, but a prober section that is not a map is wrong.
            if section != module.prober {
                continue;
            }
            config = match value {
                serde_json::Value::Null => config,
                serde_json::Value::Object(_) => value,
                other => {
                    return Err(at(
                        line,
                        format!("module `{name}`: `{section}` must be a map, not {other}"),
                    ));
                }
            };
        }
        super::inline_file_references(&mut config, base)
            .map_err(|e| at(line, format!("module `{name}`: {e}")))?;
        modules.insert(
            name.clone(),
            BlackboxModule {
                name,
                plugin: module.prober,
                timeout,
                config_json: config.to_string(),
                line,
            },
        );
    }
    Ok(BlackboxModules {
        source: file.to_string(),
        modules,
    })
}

/// The line of `  name:` under `modules:` (1-based), 0 when not found.
fn module_line(text: &str, name: &str) -> usize {
    let key = format!("{name}:");
    let quoted = [format!("\"{name}\":"), format!("'{name}':")];
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            l.len() > t.len() && (t.starts_with(&key) || quoted.iter().any(|q| t.starts_with(q)))
        })
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str =
        include_str!("../../../../shared/fixtures/seed-configs/blackbox-modules.yml");

    #[test]
    fn the_seed_file_loads_its_three_modules() {
        let m = parse(SEED, "blackbox-modules.yml", Path::new(".")).unwrap();
        let names: Vec<&str> = m.modules.keys().map(|s| s.as_str()).collect();
        assert_eq!(names, ["http_2xx", "icmp", "tcp_connect"]);
        let http = &m.modules["http_2xx"];
        assert_eq!(http.plugin, "http");
        assert_eq!(http.timeout, Some(Duration::from_secs(5)));
        assert_eq!(http.config_json, r#"{"valid_status_codes":[200]}"#);
        assert_eq!(http.line, 2);
        assert_eq!(m.modules["tcp_connect"].config_json, "{}");
        assert_eq!(m.modules["icmp"].plugin, "icmp");
        assert!(looks_like_blackbox(SEED));
        assert!(!looks_like_blackbox("global:\n  scrape_interval: 15s\n"));
    }

    #[test]
    fn bad_modules_are_named_with_their_line() {
        let text = "modules:\n  ok:\n    prober: tcp\n  bad:\n    prober: smtp\n";
        let err = parse(text, "b.yml", Path::new(".")).unwrap_err();
        assert_eq!(err.line, 4, "{err}");
        assert!(err.message.contains("unknown prober `smtp`"), "{err}");

        let text = "modules:\n  slow:\n    prober: http\n    timeout: soon\n";
        let err = parse(text, "b.yml", Path::new(".")).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.message.contains("timeout"), "{err}");

        let text = "modules:\n  m:\n    prober: http\n    htttp: {}\n";
        let err = parse(text, "b.yml", Path::new(".")).unwrap_err();
        assert!(err.message.contains("htttp"), "{err}");
        assert!(err.line >= 2, "{err}");
    }

    #[test]
    fn file_references_are_read_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ca.pem"),
            "-----BEGIN CERTIFICATE-----\nx\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let text = "modules:\n  m:\n    prober: http\n    http:\n      tls_config: {ca_file: ca.pem}\n      basic_auth: {username: u, password_file: pw}\n";
        let m = parse(text, "b.yml", dir.path()).unwrap();
        let config: serde_json::Value = serde_json::from_str(&m.modules["m"].config_json).unwrap();
        assert_eq!(config["tls_config"]["ca"], "-----BEGIN CERTIFICATE-----\nx");
        assert_eq!(config["basic_auth"]["password"], "s3cret");
        assert!(config["basic_auth"].get("password_file").is_none());

        let text =
            "modules:\n  m:\n    prober: http\n    http:\n      bearer_token_file: missing\n";
        let err = parse(text, "b.yml", dir.path()).unwrap_err();
        assert!(err.message.contains("bearer_token_file"), "{err}");
        assert_eq!(err.line, 2);
    }
}
