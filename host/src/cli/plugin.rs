//! `lookout plugin install|upgrade|push|list|inspect|remove`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::distribution::{OciReference, PushedComponent};
use crate::registry::{GrantPolicy, Registry};
use crate::storage::PluginRecord;

#[derive(clap::Subcommand)]
pub enum PluginCommand {
    /// Validate a component, show its world, version and the capabilities it
    /// asks for, compile it, and store it with its sha256 and grants.
    Install {
        /// The component: a .wasm file, an `https://` URL (with `--sha256`),
        /// or an OCI reference `oci://host[:port]/namespace/name:tag` (or
        /// `@sha256:<digest>`).
        source: String,
        /// Install under this name instead of the one the plugin describes.
        #[arg(long)]
        name: Option<String>,
        /// The component's sha256 (hex): required for URLs, and checked for
        /// files and OCI pulls when given.
        #[arg(long)]
        sha256: Option<String>,
        /// Speak plain HTTP to a registry that is not on a loopback address.
        #[arg(long)]
        plain_http: bool,
        /// Grant none of the capabilities the plugin asks for; jobs must
        /// grant them in the config.
        #[arg(long)]
        no_grants: bool,
    },
    /// Replace an installed plugin with a new version of it (same world),
    /// after showing what it asks for that it was not granted before, and
    /// what it no longer asks for. Its key-value state is kept.
    Upgrade {
        /// The installed plugin's name.
        name: String,
        /// The new component: a file, an `https://` URL (with `--sha256`),
        /// or an OCI reference.
        source: String,
        #[arg(long)]
        sha256: Option<String>,
        #[arg(long)]
        plain_http: bool,
        /// Grant what the new version asks for without asking.
        #[arg(long)]
        yes: bool,
        /// Grant none of what it asks for; jobs must grant it in the config.
        #[arg(long)]
        no_grants: bool,
    },
    /// Push an installed plugin (or a .wasm file) to an OCI registry as a
    /// WebAssembly artifact (`application/wasm` layer,
    /// `application/vnd.wasm.config.v0+json` config).
    Push {
        /// An installed plugin's name, or a .wasm file.
        plugin: String,
        /// `oci://host[:port]/namespace/name:tag`.
        reference: String,
        /// Speak plain HTTP to a registry that is not on a loopback address.
        #[arg(long)]
        plain_http: bool,
    },
    /// List installed plugins.
    List,
    /// Show everything recorded about an installed plugin.
    Inspect {
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove an installed plugin, its key-value state and its files.
    Remove { name: String },
}

pub async fn run(command: PluginCommand, data: &Path) -> anyhow::Result<()> {
    let registry = Registry::open(data)
        .with_context(|| format!("opening data directory {}", data.display()))?;
    match command {
        PluginCommand::Install {
            source,
            name,
            sha256,
            plain_http,
            no_grants,
        } => {
            let (wasm, origin) = fetch(&source, sha256.as_deref(), plain_http).await?;
            let spinner = indicatif::ProgressBar::new_spinner();
            let policy = if no_grants {
                GrantPolicy::None
            } else {
                GrantPolicy::Requested
            };
            let installed = registry
                .install_bytes(wasm, &origin, name.as_deref(), policy, || {
                    spinner.set_message(format!(
                        "compiling {source} (first time only; cached afterwards)"
                    ));
                    spinner.enable_steady_tick(Duration::from_millis(100));
                })
                .await;
            spinner.finish_and_clear();
            let installed = installed?;
            let r = &installed.record;
            if installed.unchanged {
                println!(
                    "{} {} is already installed (sha256 {})",
                    r.name, r.version, r.sha256
                );
                return Ok(());
            }
            println!("installed {} {} ({} plugin)", r.name, r.version, r.world);
            println!("  {}", r.description);
            println!("  sha256   {}", r.sha256);
            println!("  size     {} bytes", r.size_bytes);
            println!("  asks for {}", r.requested.describe_lines().join("; "));
            println!("  granted  {}", r.grants.describe_lines().join("; "));
        }
        PluginCommand::Upgrade {
            name,
            source,
            sha256,
            plain_http,
            yes,
            no_grants,
        } => {
            let (wasm, origin) = fetch(&source, sha256.as_deref(), plain_http).await?;
            let policy = if no_grants {
                GrantPolicy::None
            } else {
                GrantPolicy::Requested
            };
            let pending = registry
                .prepare_upgrade(&name, wasm, &origin, policy, || {})
                .await?;
            let (old, new) = (&pending.old, &pending.new);
            if old.sha256 == new.sha256 {
                println!(
                    "{name} {} is already this component (sha256 {})",
                    old.version, old.sha256
                );
                return Ok(());
            }
            let added = new.grants.without(&old.grants);
            let dropped = old.grants.without(&new.grants);
            println!(
                "upgrade {name}: {} → {} ({} plugin)",
                old.version, new.version, old.world
            );
            println!("  sha256   {} → {}", old.sha256, new.sha256);
            println!("  newly granted    {}", added.describe_lines().join("; "));
            println!(
                "  no longer granted {}",
                dropped.describe_lines().join("; ")
            );
            if !yes && !confirm("apply this upgrade?")? {
                anyhow::bail!(
                    "upgrade of {name} not applied (answer y, or pass --yes to accept the capabilities above)"
                );
            }
            let record = registry.commit_upgrade(pending)?;
            println!(
                "upgraded {} to {} (sha256 {})",
                record.name, record.version, record.sha256
            );
        }
        PluginCommand::Push {
            plugin,
            reference,
            plain_http,
        } => {
            let reference: OciReference = reference.parse()?;
            if reference.is_digest() {
                anyhow::bail!("push to a tag, not a digest: the digest is what the push returns");
            }
            let (record, wasm) = if plugin.ends_with(".wasm") || Path::new(&plugin).is_file() {
                let wasm = std::fs::read(&plugin).with_context(|| format!("reading {plugin}"))?;
                let (_, sha256, plugin_ref, info) =
                    registry.inspect_bytes(wasm.clone(), &plugin, || {}).await?;
                let world = plugin_ref.world();
                (
                    (info.name, info.version, info.description, world, sha256),
                    wasm,
                )
            } else {
                let (r, wasm) = registry.wasm(&plugin)?;
                ((r.name, r.version, r.description, r.world, r.sha256), wasm)
            };
            let (name, version, description, world, sha256) = record;
            let pushed = PushedComponent {
                wasm,
                world: format!(
                    "lookout:plugin/{world}@{}",
                    crate::runtime::CONTRACT_VERSION
                ),
                name: name.clone(),
                version: version.clone(),
                description,
            };
            let r = reference.clone();
            let digest = tokio::task::spawn_blocking(move || {
                crate::distribution::push(&r, &pushed, plain_http)
            })
            .await??;
            println!("pushed {name} {version} to {reference}");
            println!("  component sha256:{sha256}");
            println!("  manifest  {digest}");
            println!(
                "  install   lookout plugin install oci://{}/{}@{digest}",
                reference.registry, reference.repository
            );
        }
        PluginCommand::List => {
            let plugins = registry.list()?;
            if plugins.is_empty() {
                println!("no plugins installed (lookout plugin install <file.wasm>)");
            }
            println!(
                "{:<20} {:<10} {:<10} {:<14} DESCRIPTION",
                "NAME", "WORLD", "VERSION", "SHA256"
            );
            for p in plugins {
                println!(
                    "{:<20} {:<10} {:<10} {:<14} {}",
                    p.name,
                    p.world.as_str(),
                    p.version,
                    &p.sha256[..12],
                    p.description
                );
            }
        }
        PluginCommand::Inspect { name, json } => {
            let r = registry.record(&name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_record(&r, registry.runtime().is_cached(&r.sha256));
            }
        }
        PluginCommand::Remove { name } => {
            let r = registry.remove(&name)?;
            println!("removed {} {} ({} plugin)", r.name, r.version, r.world);
        }
    }
    Ok(())
}

/// Asks a yes/no question on the terminal; no terminal (a script, CI)
/// answers no, so nothing is granted without `--yes`.
fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// The component `source` names, checked against `sha256` when given (a
/// URL must give it), and how the lockfile records where it came from.
async fn fetch(
    source: &str,
    sha256: Option<&str>,
    plain_http: bool,
) -> anyhow::Result<(Vec<u8>, String)> {
    let source = source.to_string();
    let sha256 = sha256.map(str::to_string);
    tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<u8>, String)> {
        if source.starts_with("https://") || source.starts_with("http://") {
            let Some(sha256) = sha256 else {
                anyhow::bail!(
                    "installing from a URL needs the component's digest: --sha256 <hex> (what the publisher lists, or `sha256sum x.wasm`)"
                );
            };
            let wasm = crate::distribution::fetch_url(&source, &sha256)?;
            return Ok((wasm, source));
        }
        if source.starts_with("oci://") {
            let reference: OciReference = source.parse()?;
            let pulled = crate::distribution::pull(&reference, plain_http)?;
            if let Some(sha256) = &sha256 {
                crate::distribution::check_digest(&source, &pulled.wasm, sha256)?;
            }
            let pinned = format!(
                "oci://{}/{}@{}",
                reference.registry, reference.repository, pulled.manifest_digest
            );
            return Ok((pulled.wasm, pinned));
        }
        let wasm = std::fs::read(&source).with_context(|| format!("cannot read {source}"))?;
        if let Some(sha256) = &sha256 {
            crate::distribution::check_digest(&source, &wasm, sha256)?;
        }
        let path = std::fs::canonicalize(&source).unwrap_or_else(|_| PathBuf::from(&source));
        Ok((wasm, path.display().to_string()))
    })
    .await?
}

fn print_record(r: &PluginRecord, cached: bool) {
    println!("name         {}", r.name);
    println!("world        {}", r.world);
    println!("version      {}", r.version);
    println!("description  {}", r.description);
    println!("sha256       {}", r.sha256);
    println!("size         {} bytes", r.size_bytes);
    println!(
        "compiled     {}",
        if cached {
            "cached"
        } else {
            "not cached (compiled on next load)"
        }
    );
    println!(
        "installed    {}",
        chrono::DateTime::from_timestamp_millis(r.installed_ms)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    );
    println!(
        "asks for     {}",
        r.requested.describe_lines().join("\n             ")
    );
    println!(
        "granted      {}",
        r.grants.describe_lines().join("\n             ")
    );
    if let Some(schema) = &r.config_schema {
        println!("config       {schema}");
    }
}
