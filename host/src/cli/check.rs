//! `lookout check <config>`: parse and validate, and when the data
//! directory exists, check each job's plugin is installed and schedulable.
//! Rule files and the Alertmanager configuration the config names are
//! checked too; an Alertmanager file (`route:` at the top) can be checked
//! on its own, as `amtool check-config` does.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config;
use crate::storage::Storage;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// lookout's TOML, a prometheus.yml, or an alertmanager.yml.
    config: PathBuf,
    /// An Alertmanager configuration to check beside it.
    #[arg(long, value_name = "FILE")]
    alertmanager_config: Option<PathBuf>,
}

fn check_alertmanager(path: &Path) -> anyhow::Result<lookout_alerting::AmConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(lookout_alerting::parse_config(
        &text,
        &path.display().to_string(),
    )?)
}

/// Whether a YAML file is an Alertmanager configuration: `route:` at the top.
fn is_alertmanager_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    ) && std::fs::read_to_string(path).is_ok_and(|t| t.lines().any(|l| l.starts_with("route:")))
}

pub fn run(args: CheckArgs, data: &Path) -> anyhow::Result<()> {
    if is_alertmanager_file(&args.config) {
        let am = check_alertmanager(&args.config)?;
        println!(
            "{}: ok (Alertmanager configuration, {} receivers)",
            args.config.display(),
            am.receivers.len()
        );
        return Ok(());
    }
    let config = config::load(&args.config)?;
    let am_path = args
        .alertmanager_config
        .as_ref()
        .or(config.alertmanager_config.as_ref());
    if am_path.is_some() || !config.plugin_receivers.is_empty() {
        let am =
            crate::alerting::load_config(am_path.map(PathBuf::as_path), &config.plugin_receivers)?;
        println!(
            "{}: ok (Alertmanager configuration, {} receivers)",
            am_path.map_or("<default alerting config>".into(), |p| p
                .display()
                .to_string()),
            am.receivers.len()
        );
    }
    let rules = crate::rules::load(&config.rule_files, config.evaluation_interval)?;
    if data.join("lookout.redb").exists() {
        let storage = Storage::open(data).context("opening the data directory to check plugins")?;
        check_plugins(&config, &storage)?;
        for warning in missing_probers(&config, &storage)? {
            println!("warning: {warning}");
        }
    }
    if let Some(modules) = &config.blackbox {
        println!(
            "{}: ok ({} blackbox modules: {})",
            modules.source,
            modules.modules.len(),
            modules
                .modules
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
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
    let detectors = match config.detectors.len() {
        0 => String::new(),
        n => format!(", {n} detectors"),
    };
    println!(
        "{}: ok ({} jobs, {} targets{detectors})",
        args.config.display(),
        config.jobs.len(),
        config.jobs.iter().map(|j| j.targets.len()).sum::<usize>()
    );
    Ok(())
}

/// Blackbox modules whose prober plugin is not installed: `/probe`
/// answers those with an error, the other modules still work.
pub fn missing_probers(config: &config::Config, storage: &Storage) -> anyhow::Result<Vec<String>> {
    let mut missing = Vec::new();
    for module in config.blackbox.iter().flat_map(|b| b.modules.values()) {
        if storage.plugin(&module.plugin)?.is_none() {
            missing.push(format!(
                "module `{}` needs plugin `{}`, which is not installed",
                module.name, module.plugin
            ));
        }
    }
    Ok(missing)
}

/// Every job's plugin must be installed and be a probe or an exporter.
pub fn check_plugins(config: &config::Config, storage: &Storage) -> anyhow::Result<()> {
    check_signatures(config, storage)?;
    for r in &config.plugin_receivers {
        match storage.plugin(&r.plugin)? {
            None => bail!(
                "{}:{}: receiver `{}` uses plugin `{}`, which is not installed (lookout plugin install <file>)",
                config.source,
                r.plugin_line,
                r.name,
                r.plugin
            ),
            Some(p) if p.world != crate::model::World::Notifier => bail!(
                "{}:{}: receiver `{}` uses plugin `{}`, a {} plugin; receivers need a notifier",
                config.source,
                r.plugin_line,
                r.name,
                r.plugin,
                p.world
            ),
            Some(_) => {}
        }
    }
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
    for d in &config.detectors {
        match storage.plugin(&d.plugin)? {
            None => bail!(
                "{}:{}: detector `{}` uses plugin `{}`, which is not installed (lookout plugin install <file>)",
                config.source,
                d.plugin_line,
                d.name,
                d.plugin
            ),
            Some(p) if p.world != crate::model::World::Detector => bail!(
                "{}:{}: detector `{}` uses plugin `{}`, a {} plugin; detectors need a detector plugin",
                config.source,
                d.plugin_line,
                d.name,
                d.plugin,
                p.world
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

/// With `[plugins] require_signatures`, every plugin the config uses must
/// have been installed with a signature by a trusted key.
fn check_signatures(config: &config::Config, storage: &Storage) -> anyhow::Result<()> {
    let policy = &config.plugin_policy;
    if !policy.require_signatures {
        return Ok(());
    }
    let used = config
        .jobs
        .iter()
        .map(|j| (&j.plugin, j.plugin_line))
        .chain(config.detectors.iter().map(|d| (&d.plugin, d.plugin_line)))
        .chain(
            config
                .plugin_receivers
                .iter()
                .map(|r| (&r.plugin, r.plugin_line)),
        );
    for (plugin, line) in used {
        let Some(record) = storage.plugin(plugin)? else {
            continue; // reported as not installed
        };
        match &record.signed_by {
            Some(key) if policy.trusted_keys.contains(key) => {}
            signed => bail!(
                "{}:{line}: plugin `{plugin}` is {}, and plugins.require_signatures asks for a signature by a trusted key ({}); reinstall it with --signature <file.sig> --trusted-key <key.pub>",
                config.source,
                signed.as_ref().map_or("unsigned".to_string(), |k| format!(
                    "signed by key {k}, which this config does not trust"
                )),
                policy.trusted_keys.join(", ")
            ),
        }
    }
    Ok(())
}
