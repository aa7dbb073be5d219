//! `lookout check <config>`: parse and validate, and when the data
//! directory exists, check each job's plugin is installed and schedulable.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config;
use crate::storage::Storage;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The TOML configuration to check.
    config: PathBuf,
}

pub fn run(args: CheckArgs, data: &Path) -> anyhow::Result<()> {
    let config = config::load(&args.config)?;
    let rules = crate::rules::load(&config.rule_files, config.evaluation_interval)?;
    if data.join("lookout.redb").exists() {
        let storage = Storage::open(data).context("opening the data directory to check plugins")?;
        check_plugins(&config, &storage)?;
    }
    if !rules.groups.is_empty() {
        println!(
            "{} rule groups from {} files",
            rules.groups.len(),
            config.rule_files.len()
        );
    }
    for warning in &config.warnings {
        println!("warning: {warning}");
    }
    println!(
        "{}: ok ({} jobs, {} targets)",
        args.config.display(),
        config.jobs.len(),
        config.jobs.iter().map(|j| j.targets.len()).sum::<usize>()
    );
    Ok(())
}

/// Every job's plugin must be installed and be a probe or an exporter.
pub fn check_plugins(config: &config::Config, storage: &Storage) -> anyhow::Result<()> {
    for job in &config.jobs {
        match storage.plugin(&job.plugin)? {
            None => bail!(
                "{}:{}: job `{}` uses plugin `{}`, which is not installed (lookout plugin install <file>)",
                config.source,
                job.plugin_line,
                job.name,
                job.plugin
            ),
            Some(p) if !p.world.is_schedulable() => bail!(
                "{}:{}: job `{}` uses plugin `{}`, a {} plugin; jobs run probes and exporters",
                config.source,
                job.plugin_line,
                job.name,
                job.plugin,
                p.world
            ),
            Some(_) => {}
        }
    }
    Ok(())
}
