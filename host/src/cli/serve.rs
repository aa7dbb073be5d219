//! `lookout serve`: load the config, load its plugins, run the scheduler
//! and the API until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::{self, Config};
use crate::ingest::ResultWriter;
use crate::query::QueryService;
use crate::registry::Registry;
use crate::scheduler::{ScheduledJob, Scheduler};
use crate::storage::now_ms;
use crate::telemetry::Telemetry;

/// How often expired results and series chunks are deleted. Prometheus
/// checks retention every minute; a sweep is cheap when nothing expired.
const RETENTION_SWEEP: Duration = Duration::from_secs(60);

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML). Without it lookout runs its embedded
    /// default, which probes lookout's own API.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address of the HTTP API; overrides `[server] listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// An Alertmanager configuration for routing alerts; overrides
    /// `[alerting] config` (use it beside a prometheus.yml).
    #[arg(long, value_name = "FILE")]
    alertmanager_config: Option<PathBuf>,
}

pub async fn run(args: ServeArgs, data: &Path) -> anyhow::Result<()> {
    let file_config = args.config.as_deref().map(config::load).transpose()?;
    let listen = args
        .listen
        .or(file_config.as_ref().map(|c| c.listen))
        .unwrap_or_else(|| {
            config::DEFAULT_LISTEN
                .parse()
                .expect("default listen address")
        });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the API to {listen}"))?;
    let bound = listener.local_addr()?;
    let registry = Registry::open(data)
        .with_context(|| format!("opening data directory {}", data.display()))?;
    // The embedded default probes the API itself, so it is built for the
    // address actually bound (which differs when the port is 0), and runs
    // what the installed plugins allow.
    let config: Config = match file_config {
        Some(config) => config,
        None => config::embedded_default(bound, |plugin| {
            matches!(registry.storage().plugin(plugin), Ok(Some(_)))
        }),
    };

    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    super::check::check_plugins(&config, registry.storage())?;
    let mut jobs = Vec::new();
    // One compiled plugin per name, shared by every job that uses it.
    let mut loaded: std::collections::HashMap<&str, crate::runtime::Plugin> =
        std::collections::HashMap::new();
    for job in &config.jobs {
        let record = registry.record(&job.plugin)?;
        let plugin = match loaded.get(job.plugin.as_str()) {
            Some(plugin) => plugin.clone(),
            None => {
                let plugin = registry.load(&job.plugin).with_context(|| {
                    format!(
                        "{}:{}: loading plugin `{}` for job `{}`",
                        config.source, job.plugin_line, job.plugin, job.name
                    )
                })?;
                loaded.insert(&job.plugin, plugin.clone());
                plugin
            }
        };
        let grants = record.grants.union(&job.grants);
        jobs.push(ScheduledJob {
            job: job.clone(),
            plugin,
            grants,
        });
    }

    let storage = registry.storage().clone();
    let tsdb_options = lookout_tsdb::Options {
        retention: Some(config.retention),
        retention_bytes: config.retention_bytes,
        out_of_order_window: config.out_of_order_window,
    };
    let tsdb = Arc::new(
        lookout_tsdb::Tsdb::open(storage.database(), tsdb_options)
            .context("opening the time-series engine")?,
    );
    let telemetry = Arc::new(Telemetry::new());
    let writer = Arc::new(ResultWriter {
        storage: storage.clone(),
        tsdb: tsdb.clone(),
    });
    let scheduler = Scheduler::new(
        registry.runtime().clone(),
        writer,
        telemetry.clone(),
        config.max_concurrency,
    );
    let (stop, stopped) = watch::channel(false);
    let tasks = scheduler.start(jobs, stopped.clone());

    let retention = config.retention;
    let (sweep_storage, sweep_tsdb) = (storage.clone(), tsdb.clone());
    let mut sweep_stop = stopped.clone();
    let sweeper = tokio::spawn(async move {
        loop {
            let (s, t) = (sweep_storage.clone(), sweep_tsdb.clone());
            let swept = tokio::task::spawn_blocking(move || {
                let now = now_ms();
                let results = s
                    .delete_results_before(now - retention.as_millis() as i64)
                    .map_err(|e| e.to_string())?;
                let series = t.enforce_retention(now).map_err(|e| e.to_string())?;
                Ok::<_, String>((results, series))
            });
            match swept.await {
                Ok(Ok((results, series))) => tracing::debug!(results, ?series, "retention sweep"),
                Ok(Err(e)) => tracing::error!(error = %e, "retention sweep failed"),
                Err(e) => tracing::error!(error = %e, "retention sweep panicked"),
            }
            tokio::select! {
                _ = tokio::time::sleep(RETENTION_SWEEP) => {}
                _ = sweep_stop.changed() => return,
            }
        }
    });

    let query = QueryService::new(tsdb.clone());
    let rules = Arc::new(
        crate::rules::load(&config.rule_files, config.evaluation_interval)
            .context("loading rule files")?,
    );
    crate::rules::restore(
        &rules,
        &storage,
        config.for_grace_period,
        config.for_outage_tolerance,
    );
    let am_path = args
        .alertmanager_config
        .clone()
        .or(config.alertmanager_config.clone());
    let am_config = crate::alerting::load_config(am_path.as_deref(), &config.plugin_receivers)?;
    let external_url = config
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    let alerting = crate::alerting::Alerting::open(
        am_config,
        storage.clone(),
        external_url,
        crate::alerting::receiver_grants(&config.plugin_receivers),
    );
    let rule_tasks = crate::rules::spawn(
        &rules,
        query.clone(),
        storage.clone(),
        alerting.clone(),
        stopped.clone(),
    );
    let detection = crate::detection::DetectionBoard::open(&config.detectors, &storage);
    let mut detector_plugins = std::collections::HashMap::new();
    for d in &config.detectors {
        if !detector_plugins.contains_key(&d.plugin) {
            let plugin = registry.load(&d.plugin).with_context(|| {
                format!(
                    "{}:{}: loading plugin `{}` for detector `{}`",
                    config.source, d.plugin_line, d.plugin, d.name
                )
            })?;
            detector_plugins.insert(d.plugin.clone(), plugin);
        }
    }
    let detector_tasks = detection.spawn(
        detector_plugins,
        registry.runtime().clone(),
        query.clone(),
        storage.clone(),
        stopped.clone(),
    );
    let registry = Arc::new(registry);
    let alerting_tasks = alerting.spawn(registry.clone(), stopped.clone(), telemetry.clone());
    let (token, token_path) = api_token(config.token_file.as_deref(), data)?;
    tracing::info!(token_file = %token_path.display(), "mutating API requests need the bearer token in this file");
    let probes = Arc::new(match &config.blackbox {
        Some(modules) => crate::blackbox::ProbeEndpoint::new(modules, &registry),
        None => crate::blackbox::ProbeEndpoint::default(),
    });
    let state = AppState {
        storage,
        board: scheduler.board(),
        telemetry,
        query,
        rules,
        alerting,
        token: Arc::from(token),
        probes,
        detection,
    };
    println!(
        "lookout listening on http://{bound} ({} jobs from {})",
        config.jobs.len(),
        config.source
    );
    tracing::info!(listen = %bound, jobs = config.jobs.len(), data = %data.display(), allocation = ?registry.runtime().allocation(), "lookout serving");
    let mut api_stop = stopped.clone();
    let server = tokio::spawn(api::serve(listener, state, async move {
        let _ = api_stop.changed().await;
    }));

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        for t in tasks {
            let _ = t.await;
        }
        let _ = sweeper.await;
        for t in rule_tasks
            .into_iter()
            .chain(alerting_tasks)
            .chain(detector_tasks)
        {
            let _ = t.await;
        }
        let _ = server.await;
    })
    .await;
    // Cut head chunks so the next start has no write-ahead log to replay.
    tokio::task::spawn_blocking(move || tsdb.flush())
        .await?
        .context("flushing the time-series engine")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The API token: `configured`, which must exist, or the data directory's
/// `api-token`, created (readable by its owner only) on first start.
fn api_token(configured: Option<&Path>, data: &Path) -> anyhow::Result<(String, PathBuf)> {
    let path = configured.map_or_else(|| data.join("api-token"), Path::to_path_buf);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim().to_string();
            anyhow::ensure!(
                !token.is_empty(),
                "{}: the API token file is empty",
                path.display()
            );
            Ok((token, path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && configured.is_none() => {
            let token = hex::encode(rand::random::<[u8; 32]>());
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&path)
                .with_context(|| format!("creating the API token {}", path.display()))?;
            std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes())?;
            file.sync_all()?;
            Ok((token, path))
        }
        Err(e) => Err(anyhow::anyhow!(
            "reading the API token {}: {e}",
            path.display()
        )),
    }
}
