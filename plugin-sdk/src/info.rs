//! What a plugin says about itself: name, version, configuration schema and
//! the capabilities it asks for.

use crate::bindings::probe::lookout::plugin::types as wit;

/// The capability pattern meaning "the host (and port) of the target the job
/// hands the plugin": a probe asks for `http: ["{target}"]` to be allowed to
/// reach what it probes and nothing else.
pub const TARGET: &str = "{target}";

/// Capabilities a plugin asks for. They are shown when the plugin is
/// installed and granted only if the installer accepts them; everything not
/// granted is denied (see `wit/plugin.wit`, record `capabilities`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Hosts the plugin may send wasi:http requests to: `host`, `host:port`,
    /// `*.example.com`, `*` or [`TARGET`].
    pub http: Vec<String>,
    /// `host:port` patterns for wasi:sockets TCP connections (`*` allowed for
    /// either part) or [`TARGET`].
    pub tcp: Vec<String>,
    /// `host:port` patterns for wasi:sockets UDP traffic or [`TARGET`].
    pub udp: Vec<String>,
    /// Hosts (`host`, `*` or [`TARGET`]) the plugin may ping through
    /// [`icmp`](crate::icmp).
    pub icmp: Vec<String>,
    /// Absolute paths opened read-only (`/proc`).
    pub files: Vec<String>,
    /// Paths whose file systems [`fs_stats`](crate::fs_stats) may describe:
    /// absolute paths, each covering what is below it, or `*` for any path.
    /// [`files`](Self::files) paths are covered without asking.
    pub statfs: Vec<String>,
    /// Environment variable names.
    pub env: Vec<String>,
}

/// What a plugin says about itself, returned by its `describe` function.
///
/// Start from [`plugin_info!`](crate::plugin_info), which fills in the
/// version of the plugin's crate:
///
/// ```
/// use lookout_plugin_sdk::{plugin_info, TARGET};
///
/// let info = plugin_info!("http")
///     .description("Checks that a URL answers with an accepted status")
///     .http([TARGET]);
/// assert_eq!(info.capabilities.http, ["{target}"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Suggested install name; lowercase, `[a-z0-9-]`.
    pub name: String,
    /// Semantic version of the plugin.
    pub version: String,
    pub description: String,
    /// JSON Schema of the plugin's configuration, if it publishes one.
    pub config_schema: Option<String>,
    pub capabilities: Capabilities,
}

impl PluginInfo {
    /// A plugin named `name` at `version`, asking for nothing.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            config_schema: None,
            capabilities: Capabilities::default(),
        }
    }

    /// Sets the one-paragraph description shown to the installer.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Publishes the JSON Schema of the configuration.
    pub fn config_schema(mut self, json_schema: impl Into<String>) -> Self {
        self.config_schema = Some(json_schema.into());
        self
    }

    /// Asks to send HTTP requests to hosts matching `patterns`.
    pub fn http<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.capabilities
            .http
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Asks to open TCP connections to `host:port` patterns.
    pub fn tcp<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.capabilities
            .tcp
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Asks to send and receive UDP datagrams to `host:port` patterns.
    pub fn udp<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.capabilities
            .udp
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Asks to send ICMP echo requests ([`icmp`](crate::icmp)) to hosts
    /// matching `patterns`: `host`, `*` or [`TARGET`]. Like a tcp or udp
    /// grant, it also enables name lookup.
    pub fn icmp<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.capabilities
            .icmp
            .extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Asks to read files under the given absolute paths.
    pub fn files<S: Into<String>>(mut self, paths: impl IntoIterator<Item = S>) -> Self {
        self.capabilities
            .files
            .extend(paths.into_iter().map(Into::into));
        self
    }

    /// Asks to read the size and inode counts of the file systems of paths
    /// under `paths` ([`fs_stats`](crate::fs_stats)); `*` asks for any path,
    /// as a machine exporter that reports every mount point does.
    pub fn statfs<S: Into<String>>(mut self, paths: impl IntoIterator<Item = S>) -> Self {
        self.capabilities
            .statfs
            .extend(paths.into_iter().map(Into::into));
        self
    }

    /// Asks to read the given environment variables.
    pub fn env<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.capabilities
            .env
            .extend(names.into_iter().map(Into::into));
        self
    }
}

/// `PluginInfo::new(name, <version of the calling crate>)`.
///
/// The version is `env!("CARGO_PKG_VERSION")` expanded in the plugin's crate,
/// so it follows the plugin's `Cargo.toml`.
#[macro_export]
macro_rules! plugin_info {
    ($name:expr $(,)?) => {
        $crate::PluginInfo::new($name, ::core::env!("CARGO_PKG_VERSION"))
    };
}

impl From<PluginInfo> for wit::PluginInfo {
    fn from(info: PluginInfo) -> Self {
        let Capabilities {
            http,
            tcp,
            udp,
            icmp,
            files,
            statfs,
            env,
        } = info.capabilities;
        Self {
            name: info.name,
            version: info.version,
            description: info.description,
            config_schema: info.config_schema,
            capabilities: wit::Capabilities {
                http,
                tcp,
                udp,
                icmp,
                files,
                statfs,
                env,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_accumulates_capabilities() {
        let info = PluginInfo::new("x", "1.2.3")
            .description("d")
            .config_schema("{}")
            .http([TARGET])
            .http(vec!["*.example.com".to_owned()])
            .tcp(["db:5432"])
            .icmp([TARGET])
            .files(["/proc"])
            .statfs(["*"])
            .env(["HOME"]);
        assert_eq!(info.capabilities.http, ["{target}", "*.example.com"]);
        let wit: wit::PluginInfo = info.into();
        assert_eq!(wit.version, "1.2.3");
        assert_eq!(wit.config_schema.as_deref(), Some("{}"));
        assert_eq!(wit.capabilities.tcp, ["db:5432"]);
        assert_eq!(wit.capabilities.icmp, ["{target}"]);
        assert_eq!(wit.capabilities.files, ["/proc"]);
        assert_eq!(wit.capabilities.statfs, ["*"]);
        assert_eq!(wit.capabilities.env, ["HOME"]);
        assert!(wit.capabilities.udp.is_empty());
    }

    #[test]
    fn plugin_info_macro_uses_the_calling_crate_version() {
        assert_eq!(plugin_info!("sdk").version, env!("CARGO_PKG_VERSION"));
    }
}
