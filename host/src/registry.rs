//! Installed plugins: the data directory's `plugins/` (component files
//! named by sha256), `cache/` (compiled code) and the registry table in the
//! database. Install validates everything before it writes anything, so a
//! refused file leaves the registry exactly as it was.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::model::{Grants, PluginInfo};
use crate::runtime::{Plugin, PrepareError, Runtime};
use crate::storage::{PluginRecord, Storage, StorageError, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Prepare { path: String, source: PrepareError },
    #[error(
        "plugin name `{0}` is invalid: use lowercase letters, digits and dashes (e.g. `http-probe`)"
    )]
    BadName(String),
    #[error(
        "a different plugin named `{name}` is already installed (sha256 {existing}); replace it with `lookout plugin upgrade {name} <source>`, or remove it first with `lookout plugin remove {name}`"
    )]
    NameTaken { name: String, existing: String },
    #[error(
        "`{name}` is a {installed} plugin and this component is a {offered} plugin: an upgrade keeps the world; install it under another name"
    )]
    WrongWorld {
        name: String,
        installed: crate::model::World,
        offered: crate::model::World,
    },
    #[error("no plugin named `{0}` is installed (see `lookout plugin list`)")]
    NotInstalled(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("starting the plugin runtime: {0}")]
    Runtime(String),
}

/// What an install did.
#[derive(Debug)]
pub struct Installed {
    pub record: PluginRecord,
    /// True when the same component was already installed under this name.
    pub unchanged: bool,
}

/// What to grant at install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantPolicy {
    /// Grant what the plugin asked for (shown to the installer).
    Requested,
    /// Grant nothing; jobs must grant per job in the config.
    None,
}

/// A checked new version of an installed plugin, not yet applied.
pub struct PendingUpgrade {
    pub old: PluginRecord,
    pub new: PluginRecord,
    wasm: Vec<u8>,
}

/// The lockfile in the data directory (see [`Registry::write_lockfile`]).
pub const LOCKFILE: &str = "plugins.lock";

pub struct Registry {
    dir: PathBuf,
    storage: Arc<Storage>,
    runtime: Arc<Runtime>,
}

impl Registry {
    /// Opens the data directory, creating it on first use.
    pub fn open(data_dir: &Path) -> Result<Registry, RegistryError> {
        let storage = Storage::open(data_dir)?;
        let runtime = Arc::new(
            Runtime::new(&data_dir.join("cache"), storage.clone())
                .map_err(RegistryError::Runtime)?,
        );
        Ok(Registry {
            dir: data_dir.to_owned(),
            storage,
            runtime,
        })
    }

    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    fn wasm_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("plugins").join(format!("{sha256}.wasm"))
    }

    /// Validates, compiles (or finds in the cache) and describes a component
    /// without installing it; `origin` names it in errors (a path, a URL, an
    /// OCI reference). `on_compile` runs before a compile that is not
    /// cached, so the CLI can show progress.
    pub async fn inspect_bytes(
        &self,
        wasm: Vec<u8>,
        origin: &str,
        on_compile: impl FnOnce(),
    ) -> Result<(Vec<u8>, String, Plugin, PluginInfo), RegistryError> {
        let sha256 = hex::encode(Sha256::digest(&wasm));
        let located = |source| RegistryError::Prepare {
            path: origin.to_string(),
            source,
        };
        if !self.runtime.is_cached(&sha256) {
            on_compile();
        }
        let plugin = self
            .runtime
            .prepare("candidate", &wasm, &sha256)
            .map_err(located)?;
        let info = self.runtime.describe(&plugin).await.map_err(located)?;
        Ok((wasm, sha256, plugin, info))
    }

    /// Installs a component already in memory (downloaded, pulled);
    /// `source` is where it came from, recorded for the lockfile.
    pub async fn install_bytes(
        &self,
        wasm: Vec<u8>,
        source: &str,
        name: Option<&str>,
        grants: GrantPolicy,
        signed_by: Option<String>,
        on_compile: impl FnOnce(),
    ) -> Result<Installed, RegistryError> {
        let (wasm, sha256, plugin, info) = self.inspect_bytes(wasm, source, on_compile).await?;
        let name = name.unwrap_or(&info.name).to_string();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(RegistryError::BadName(name));
        }
        if let Some(existing) = self.storage.plugin(&name)? {
            if existing.sha256 == sha256 {
                return Ok(Installed {
                    record: existing,
                    unchanged: true,
                });
            }
            return Err(RegistryError::NameTaken {
                name,
                existing: existing.sha256,
            });
        }
        self.write_component(&sha256, &wasm)?;
        let record = PluginRecord {
            name,
            world: plugin.world(),
            version: info.version,
            description: info.description,
            sha256,
            size_bytes: wasm.len() as u64,
            grants: match grants {
                GrantPolicy::Requested => info.capabilities.clone(),
                GrantPolicy::None => Grants::default(),
            },
            requested: info.capabilities,
            config_schema: info.config_schema,
            installed_ms: now_ms(),
            source: Some(source.to_string()),
            signed_by,
        };
        self.storage.put_plugin(&record)?;
        self.write_lockfile()?;
        Ok(Installed {
            record,
            unchanged: false,
        })
    }

    pub fn list(&self) -> Result<Vec<PluginRecord>, RegistryError> {
        Ok(self.storage.plugins()?)
    }

    pub fn record(&self, name: &str) -> Result<PluginRecord, RegistryError> {
        self.storage
            .plugin(name)?
            .ok_or_else(|| RegistryError::NotInstalled(name.to_string()))
    }

    /// Loads an installed plugin, from the compile cache when possible.
    pub fn load(&self, name: &str) -> Result<Plugin, RegistryError> {
        let record = self.record(name)?;
        let path = self.wasm_path(&record.sha256);
        self.runtime
            .load(name, &path, &record.sha256)
            .map_err(|source| RegistryError::Prepare {
                path: path.display().to_string(),
                source,
            })
    }

    /// Removes a plugin, its state, and its files unless another name uses them.
    pub fn remove(&self, name: &str) -> Result<PluginRecord, RegistryError> {
        let record = self.record(name)?;
        self.storage.remove_plugin(name)?;
        let still_used = self
            .storage
            .plugins()?
            .iter()
            .any(|p| p.sha256 == record.sha256);
        if !still_used {
            let _ = std::fs::remove_file(self.wasm_path(&record.sha256));
            let _ = std::fs::remove_file(self.runtime.cache_path(&record.sha256));
        }
        self.write_lockfile()?;
        Ok(record)
    }

    /// Checks a new version of installed plugin `name` without changing
    /// anything: it must be a valid component of the same world. What it
    /// would be granted (`policy`) and how that differs from now is in the
    /// returned [`PendingUpgrade`]; [`Registry::commit_upgrade`] applies it.
    pub async fn prepare_upgrade(
        &self,
        name: &str,
        wasm: Vec<u8>,
        source: &str,
        policy: GrantPolicy,
        signed_by: Option<String>,
        on_compile: impl FnOnce(),
    ) -> Result<PendingUpgrade, RegistryError> {
        let old = self.record(name)?;
        let (wasm, sha256, plugin, info) = self.inspect_bytes(wasm, source, on_compile).await?;
        if plugin.world() != old.world {
            return Err(RegistryError::WrongWorld {
                name: name.to_string(),
                installed: old.world,
                offered: plugin.world(),
            });
        }
        let grants = match policy {
            GrantPolicy::Requested => info.capabilities.clone(),
            GrantPolicy::None => Grants::default(),
        };
        let new = PluginRecord {
            name: old.name.clone(),
            world: old.world,
            version: info.version,
            description: info.description,
            size_bytes: wasm.len() as u64,
            sha256,
            grants,
            requested: info.capabilities,
            config_schema: info.config_schema,
            installed_ms: now_ms(),
            source: Some(source.to_string()),
            signed_by,
        };
        Ok(PendingUpgrade { old, new, wasm })
    }

    /// Applies a prepared upgrade: the new file, then the record (so a
    /// failure leaves the old version installed), then the old file if no
    /// other name uses it. The plugin's key-value state is kept.
    pub fn commit_upgrade(&self, pending: PendingUpgrade) -> Result<PluginRecord, RegistryError> {
        let PendingUpgrade { old, new, wasm } = pending;
        self.write_component(&new.sha256, &wasm)?;
        self.storage.put_plugin(&new)?;
        if old.sha256 != new.sha256 {
            let still_used = self
                .storage
                .plugins()?
                .iter()
                .any(|p| p.sha256 == old.sha256);
            if !still_used {
                let _ = std::fs::remove_file(self.wasm_path(&old.sha256));
                let _ = std::fs::remove_file(self.runtime.cache_path(&old.sha256));
            }
        }
        self.write_lockfile()?;
        Ok(new)
    }

    /// Writes a component file durably under its digest.
    fn write_component(&self, sha256: &str, wasm: &[u8]) -> Result<(), RegistryError> {
        let file = self.wasm_path(sha256);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(file.parent().expect("plugins dir"))?;
            let tmp = file.with_extension("wasm.tmp");
            std::fs::write(&tmp, wasm)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &file)
        };
        write().map_err(|source| RegistryError::Write { path: file, source })
    }

    /// The stored component of an installed plugin.
    pub fn wasm(&self, name: &str) -> Result<(PluginRecord, Vec<u8>), RegistryError> {
        let record = self.record(name)?;
        let path = self.wasm_path(&record.sha256);
        let wasm = std::fs::read(&path).map_err(|source| RegistryError::Read { path, source })?;
        Ok((record, wasm))
    }

    /// Rewrites `plugins.lock` in the data directory: every installed
    /// plugin with its version, world, digest, source and grants, sorted by
    /// name, so a deployment can be reviewed and reproduced (`lookout
    /// plugin install <source> --sha256 <digest>` per entry).
    fn write_lockfile(&self) -> Result<(), RegistryError> {
        #[derive(serde::Serialize)]
        struct Lock<'a> {
            plugin: Vec<Entry<'a>>,
        }
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            name: &'a str,
            version: &'a str,
            world: &'a str,
            sha256: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            source: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            signed_by: Option<&'a str>,
            grants: &'a Grants,
        }
        let mut records = self.storage.plugins()?;
        records.sort_by(|a, b| a.name.cmp(&b.name));
        let lock = Lock {
            plugin: records
                .iter()
                .map(|r| Entry {
                    name: &r.name,
                    version: &r.version,
                    world: r.world.as_str(),
                    sha256: &r.sha256,
                    source: r.source.as_deref(),
                    signed_by: r.signed_by.as_deref(),
                    grants: &r.grants,
                })
                .collect(),
        };
        let text = format!(
            "# Written by lookout on every install and removal: the installed plugins,\n# their digests and what they were granted. Do not edit.\n\n{}",
            toml::to_string(&lock).expect("the lockfile serialises")
        );
        let path = self.dir.join(LOCKFILE);
        let tmp = path.with_extension("lock.tmp");
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, &text)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|source| RegistryError::Write { path, source })
    }
}
