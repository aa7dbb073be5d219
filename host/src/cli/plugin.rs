//! `lookout plugin install|list|inspect|remove`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::registry::{GrantPolicy, Registry};
use crate::storage::PluginRecord;

#[derive(clap::Subcommand)]
pub enum PluginCommand {
    /// Validate a component, show its world, version and the capabilities it
    /// asks for, compile it, and store it with its sha256 and grants.
    Install {
        /// Path to the plugin's .wasm component.
        path: PathBuf,
        /// Install under this name instead of the one the plugin describes.
        #[arg(long)]
        name: Option<String>,
        /// Grant none of the capabilities the plugin asks for; jobs must
        /// grant them in the config.
        #[arg(long)]
        no_grants: bool,
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
            path,
            name,
            no_grants,
        } => {
            let spinner = indicatif::ProgressBar::new_spinner();
            let policy = if no_grants {
                GrantPolicy::None
            } else {
                GrantPolicy::Requested
            };
            let installed = registry
                .install(&path, name.as_deref(), policy, || {
                    spinner.set_message(format!(
                        "compiling {} (first time only; cached afterwards)",
                        path.display()
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
