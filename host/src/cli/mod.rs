//! The `lookout` command line: one file per subcommand. `main` parses the
//! arguments, runs the command and prints the error chain on failure.

mod check;
mod detect;
mod notify;
mod plugin;
mod query;
mod rules;
mod run;
mod serve;
mod tsdb;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lookout",
    version,
    about = "Monitoring where every probe, exporter, detector and notifier is a sandboxed WebAssembly plugin"
)]
struct Cli {
    /// Where the database, installed plugins and compiled code live
    /// (like Prometheus' --storage.tsdb.path).
    #[arg(long, global = true, env = "LOOKOUT_DATA", value_name = "DIR")]
    data: Option<PathBuf>,

    /// Log filter, e.g. `info`, `debug`, `lookout=debug,wasmtime=warn`.
    #[arg(
        long,
        global = true,
        env = "LOOKOUT_LOG",
        default_value = "info,wasmtime_wasi_http=error",
        value_name = "FILTER"
    )]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install, list, inspect and remove plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Validate a configuration file without starting anything.
    Check(check::CheckArgs),
    /// Invoke an installed plugin once against a target and print the result.
    Run(run::RunArgs),
    /// Deliver one notification through a notifier plugin.
    Notify(notify::NotifyArgs),
    /// Backtest a detector plugin on a CSV of `timestamp,value` rows.
    Detect(detect::DetectArgs),
    /// Run the scheduler and the HTTP API.
    Serve(serve::ServeArgs),
    /// Prometheus rule files: run promtool-format unit tests.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Evaluate PromQL on a running lookout and print a table.
    Query(query::QueryArgs),
    /// Time-series database chores: backfill.
    #[command(subcommand)]
    Tsdb(tsdb::TsdbCommand),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    // One-shot commands die quietly on a closed pipe (`lookout plugin list |
    // head`) like other CLI tools; `serve` keeps Rust's default (ignored), so
    // a client hanging up can never kill the server.
    #[cfg(unix)]
    if !matches!(cli.command, Command::Serve(_)) {
        // SAFETY: called before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let data = cli.data.unwrap_or_else(default_data_dir);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Plugin(cmd) => plugin::run(cmd, &data).await,
            Command::Check(args) => check::run(args, &data),
            Command::Run(args) => run::run(args, &data).await,
            Command::Serve(args) => serve::run(args, &data).await,
            Command::Notify(args) => notify::run(args, &data).await,
            Command::Detect(args) => detect::run(args, &data).await,
            Command::Query(args) => query::run(args),
            Command::Rules(cmd) => rules::run(cmd),
            Command::Tsdb(cmd) => tsdb::run(cmd, &data),
        }
    });
    // A plugin stuck in a blocking file read (a FIFO, a dead NFS mount)
    // holds a blocking-pool thread that no deadline can take back: do not
    // wait for it on the way out, everything durable is committed by now.
    runtime.shutdown_timeout(SHUTDOWN_WAIT);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<QuietExit>().is_some() => {
            ExitCode::from(e.downcast_ref::<QuietExit>().map_or(1, |q| q.0))
        }
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// How long exiting waits for the async runtime's blocking threads.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Ends the process with this exit code after everything is closed, the
/// result having been printed already (`lookout run` on an unhealthy target).
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
struct QuietExit(u8);

/// `$XDG_DATA_HOME/lookout` (e.g. `~/.local/share/lookout`), else `./lookout-data`.
fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("lookout"))
        .unwrap_or_else(|| PathBuf::from("lookout-data"))
}

/// What `lookout run` and `lookout notify` share: an installed plugin,
/// loaded, with its install grants plus the ones given on the command line,
/// and the deadline asked for.
struct OneShot {
    registry: crate::registry::Registry,
    record: crate::storage::PluginRecord,
    plugin: crate::runtime::Plugin,
    grants: crate::model::Grants,
    limits: crate::model::Limits,
}

/// The deadline and extra grants of a one-shot invocation.
#[derive(clap::Args)]
struct OneShotArgs {
    /// Deadline of the invocation.
    #[arg(long, default_value = "10s")]
    timeout: String,
    /// Extra HTTP host grant for this invocation (repeatable), on top of the install's.
    #[arg(long = "grant-http", value_name = "PATTERN")]
    grant_http: Vec<String>,
    /// Extra TCP host:port grant (repeatable), e.g. an SMTP server.
    #[arg(long = "grant-tcp", value_name = "PATTERN")]
    grant_tcp: Vec<String>,
    /// Extra ICMP echo destination grant (repeatable): a host, `*` or `{target}`.
    #[arg(long = "grant-icmp", value_name = "PATTERN")]
    grant_icmp: Vec<String>,
    /// Extra statfs grant (repeatable): a path whose file system's sizes the
    /// plugin may read (`lookout:plugin/filesystem-stats`), or `*`.
    #[arg(long = "grant-statfs", value_name = "PATH")]
    grant_statfs: Vec<String>,
    /// Extra UDP host:port grant (repeatable).
    #[arg(long = "grant-udp", value_name = "PATTERN")]
    grant_udp: Vec<String>,
    /// Extra read-only directory (repeatable): an absolute path the plugin
    /// may open files under.
    #[arg(long = "grant-files", value_name = "PATH")]
    grant_files: Vec<String>,
    /// Extra environment variable the plugin may read (repeatable).
    #[arg(long = "grant-env", value_name = "NAME")]
    grant_env: Vec<String>,
}

impl OneShot {
    fn open(data: &std::path::Path, name: &str, args: OneShotArgs) -> anyhow::Result<OneShot> {
        use anyhow::Context;
        let OneShotArgs {
            timeout,
            grant_http,
            grant_tcp,
            grant_icmp,
            grant_statfs,
            grant_udp,
            grant_files,
            grant_env,
        } = args;
        let timeout = crate::config::parse_duration(&timeout)
            .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
        let registry = crate::registry::Registry::open(data)
            .with_context(|| format!("opening data directory {}", data.display()))?;
        let record = registry.record(name)?;
        let plugin = registry.load(name)?;
        let extra = crate::model::Grants {
            http: grant_http,
            tcp: grant_tcp,
            icmp: grant_icmp,
            statfs: grant_statfs,
            udp: grant_udp,
            files: grant_files,
            env: grant_env,
        };
        let grants = record.grants.union(&extra);
        let limits = crate::model::Limits {
            timeout,
            ..Default::default()
        };
        Ok(OneShot {
            registry,
            record,
            plugin,
            grants,
            limits,
        })
    }
}
