//! `lookout notify <plugin> --notification <file>`: deliver one
//! notification through an installed notifier plugin, to try a receiver's
//! configuration before alerts depend on it.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::OneShot;
use crate::model::Notification;
use crate::runtime::Invocation;

#[derive(clap::Args)]
pub struct NotifyArgs {
    /// Name of an installed notifier plugin.
    plugin: String,
    /// The notification as Alertmanager's webhook v4 JSON.
    #[arg(long, value_name = "FILE")]
    notification: PathBuf,
    /// The plugin's configuration as JSON (destination URL, keys …).
    #[arg(long, default_value = "{}")]
    config: String,
    #[command(flatten)]
    sandbox: super::OneShotArgs,
}

pub async fn run(args: NotifyArgs, data: &Path) -> anyhow::Result<()> {
    serde_json::from_str::<serde_json::Value>(&args.config)
        .context("--config is not valid JSON")?;
    let text = std::fs::read_to_string(&args.notification)
        .with_context(|| format!("reading {}", args.notification.display()))?;
    let notification: Notification = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not an Alertmanager webhook v4 notification",
            args.notification.display()
        )
    })?;
    let OneShot {
        registry,
        record: _,
        plugin,
        grants,
        limits,
    } = OneShot::open(data, &args.plugin, args.sandbox)?;
    let inv = Invocation {
        job: "notify",
        target: &notification.receiver,
        config: &args.config,
        grants: &grants,
        limits: &limits,
    };
    let delivery = registry
        .runtime()
        .notify(&plugin, &notification, &inv)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{} delivery failed ({}): {}",
                args.plugin,
                e.kind,
                e.message
            )
        })?;
    println!("delivered: {}", delivery.message);
    if let Some(id) = delivery.remote_id {
        println!("remote id: {id}");
    }
    Ok(())
}
