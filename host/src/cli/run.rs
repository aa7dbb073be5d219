//! `lookout run <plugin> --target <t>`: one invocation, printed.

use std::path::Path;

use anyhow::Context;

use super::OneShot;
use crate::runtime::Invocation;

#[derive(clap::Args)]
pub struct RunArgs {
    /// Name of an installed probe or exporter plugin.
    plugin: String,
    /// What to check: a URL, host:port … as the plugin expects.
    #[arg(long)]
    target: String,
    /// The plugin's configuration as JSON.
    #[arg(long, default_value = "{}")]
    config: String,
    #[command(flatten)]
    sandbox: super::OneShotArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: RunArgs, data: &Path) -> anyhow::Result<()> {
    serde_json::from_str::<serde_json::Value>(&args.config)
        .context("--config is not valid JSON")?;
    let OneShot {
        registry,
        record,
        plugin,
        grants,
        limits,
    } = OneShot::open(data, &args.plugin, args.sandbox)?;
    let inv = Invocation {
        job: "run",
        target: &args.target,
        config: &args.config,
        grants: &grants,
        limits: &limits,
    };
    let started = std::time::Instant::now();
    let outcome = match record.world {
        crate::model::World::Exporter => {
            registry
                .runtime()
                .collect(&plugin, &inv)
                .await
                .map(|samples| crate::model::ProbeResult {
                    success: true,
                    duration_seconds: started.elapsed().as_secs_f64(),
                    failure_reason: None,
                    message: String::new(),
                    samples,
                })
        }
        _ => registry.runtime().probe(&plugin, &inv).await,
    };
    let result = outcome.map_err(|e| {
        anyhow::anyhow!(
            "{} invocation failed ({}): {}",
            args.plugin,
            e.kind,
            e.message
        )
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("success   {}", result.success);
        println!("duration  {:.6}s", result.duration_seconds);
        if let Some(reason) = &result.failure_reason {
            println!("reason    {reason}");
        }
        if !result.message.is_empty() {
            println!("message   {}", result.message);
        }
        for s in &result.samples {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            println!("{}{} {}", s.name, labels, s.value);
        }
    }
    if !result.success {
        return Err(super::QuietExit(2).into());
    }
    Ok(())
}
