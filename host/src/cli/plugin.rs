//! `lookout plugin install|upgrade|push|list|inspect|remove`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::distribution::{OciReference, PushedComponent};
use crate::registry::{GrantPolicy, Registry};
use crate::storage::PluginRecord;

/// Where install and upgrade get a component, how it is checked, and
/// whether it gets what it asks for.
#[derive(clap::Args)]
pub struct ComponentSource {
    /// The component: a .wasm file, an `https://` URL (with `--sha256`), or
    /// an OCI reference `oci://host[:port]/namespace/name:tag` (or
    /// `@sha256:<digest>`).
    source: String,
    /// The component's sha256 (hex): required for URLs, and checked for
    /// files and OCI pulls when given.
    #[arg(long)]
    sha256: Option<String>,
    /// Speak plain HTTP to a registry that is not on a loopback address.
    #[arg(long)]
    plain_http: bool,
    #[command(flatten)]
    signature: SignatureArgs,
    /// Grant none of the capabilities the plugin asks for; jobs must grant
    /// them in the config.
    #[arg(long)]
    no_grants: bool,
}

/// A signature to check before installing, and the keys trusted to make it.
#[derive(clap::Args)]
pub struct SignatureArgs {
    /// The component's signature file (`lookout plugin sign`).
    #[arg(long)]
    signature: Option<PathBuf>,
    /// A public key whose signatures are trusted (repeatable).
    #[arg(long = "trusted-key", value_name = "FILE.pub")]
    trusted_keys: Vec<PathBuf>,
}

impl SignatureArgs {
    /// The fingerprint of the trusted key that signed `wasm`, if a
    /// signature was given; an error if it does not verify.
    fn verify(&self, wasm: &[u8]) -> anyhow::Result<Option<String>> {
        match (&self.signature, self.trusted_keys.is_empty()) {
            (None, true) => Ok(None),
            (None, false) => anyhow::bail!("--trusted-key needs --signature <file.sig>"),
            (Some(signature), _) => {
                let keys = self
                    .trusted_keys
                    .iter()
                    .map(|k| crate::signing::read_public(k))
                    .collect::<Result<Vec<_>, _>>()?;
                let digest = crate::distribution::sha256_hex(wasm);
                Ok(Some(crate::signing::verify(signature, &digest, &keys)?))
            }
        }
    }
}

#[derive(clap::Subcommand)]
pub enum PluginCommand {
    /// Validate a component, show its world, version and the capabilities it
    /// asks for, compile it, and store it with its sha256 and grants.
    Install {
        #[command(flatten)]
        from: ComponentSource,
        /// Install under this name instead of the one the plugin describes.
        #[arg(long)]
        name: Option<String>,
    },
    /// Replace an installed plugin with a new version of it (same world),
    /// after showing what it asks for that it was not granted before, and
    /// what it no longer asks for. Its key-value state is kept.
    Upgrade {
        /// The installed plugin's name.
        name: String,
        #[command(flatten)]
        from: ComponentSource,
        /// Grant what the new version asks for without asking.
        #[arg(long)]
        yes: bool,
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
    /// Make an ed25519 key pair for signing plugins: <path> (secret) and
    /// <path>.pub (give this one to whoever installs).
    Keygen { path: PathBuf },
    /// Sign a component: writes <file>.sig (ed25519 over its sha256).
    Sign {
        file: PathBuf,
        /// The secret key from `lookout plugin keygen`.
        #[arg(long)]
        key: PathBuf,
    },
    /// Write a new plugin project: the contract, a build file and a
    /// starting source for the world, in Rust, Python, JavaScript or C. It
    /// builds with one command (printed) and installs as it is.
    New {
        /// The plugin's name (`[a-z][a-z0-9-]*`), also the directory's.
        name: String,
        /// The world: probe, exporter, detector or notifier.
        #[arg(long, default_value = "probe")]
        kind: crate::scaffold::Kind,
        /// The language: rust, python, js or c.
        #[arg(long, default_value = "rust")]
        lang: crate::scaffold::Lang,
        /// Where to write it (default: ./<name>).
        #[arg(long)]
        dir: Option<PathBuf>,
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
    if let PluginCommand::New {
        name,
        kind,
        lang,
        dir,
    } = command
    {
        return new_project(&name, kind, lang, dir);
    }
    let registry = Registry::open(data)
        .with_context(|| format!("opening data directory {}", data.display()))?;
    match command {
        PluginCommand::Install { from, name } => {
            let f = from.fetch_checked(data).await?;
            let installed = registry
                .install_bytes(
                    f.wasm,
                    &f.origin,
                    name.as_deref(),
                    f.policy,
                    f.signed_by,
                    || f.progress.start(),
                )
                .await;
            f.progress.finish(installed.is_ok());
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
            if let Some(key) = &r.signed_by {
                println!("  signed   by trusted key {key}");
            }
        }
        PluginCommand::Upgrade { name, from, yes } => {
            let f = from.fetch_checked(data).await?;
            let pending = registry
                .prepare_upgrade(&name, f.wasm, &f.origin, f.policy, f.signed_by, || {
                    f.progress.start()
                })
                .await;
            // Cleared before the consent question.
            f.progress.finish(pending.is_ok());
            let pending = pending?;
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
                let wasm =
                    std::fs::read(&plugin).with_context(|| format!("cannot read {plugin}"))?;
                let (wasm, sha256, plugin_ref, info) =
                    registry.inspect_bytes(wasm, &plugin, || {}).await?;
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
        PluginCommand::Keygen { path } => {
            let fingerprint = crate::signing::generate(&path)?;
            println!("secret key  {} (keep it private)", path.display());
            println!(
                "public key  {} (fingerprint {fingerprint})",
                crate::signing::public_path(&path).display()
            );
        }
        PluginCommand::Sign { file, key } => {
            let wasm =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let digest = crate::distribution::sha256_hex(&wasm);
            let mut out = file.clone().into_os_string();
            out.push(".sig");
            let out = PathBuf::from(out);
            let fingerprint = crate::signing::sign(&key, &digest, &out)?;
            println!(
                "signed {} (sha256 {digest}) with key {fingerprint}: {}",
                file.display(),
                out.display()
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
        PluginCommand::New { .. } => unreachable!("handled before the registry opens"),
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
/// A component fetched for install or upgrade, its signature checked.
struct Fetched {
    wasm: Vec<u8>,
    origin: String,
    signed_by: Option<String>,
    policy: GrantPolicy,
    /// For the compile that follows.
    progress: CompileProgress,
}

impl ComponentSource {
    /// What install and upgrade do before compiling: fetch the component,
    /// check its signature, and say which grants it gets.
    async fn fetch_checked(&self, data: &Path) -> anyhow::Result<Fetched> {
        let (wasm, origin) = fetch(&self.source, self.sha256.as_deref(), self.plain_http).await?;
        let signed_by = self.signature.verify(&wasm)?;
        let policy = if self.no_grants {
            GrantPolicy::None
        } else {
            GrantPolicy::Requested
        };
        let progress = CompileProgress::new(data, &self.source, wasm.len() as u64);
        Ok(Fetched {
            wasm,
            origin,
            signed_by,
            policy,
            progress,
        })
    }
}

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
    println!(
        "signed by    {}",
        r.signed_by.as_deref().unwrap_or("(unsigned)")
    );
    if let Some(source) = &r.source {
        println!("source       {source}");
    }
    if let Some(schema) = &r.config_schema {
        println!("config       {schema}");
    }
}

/// `lookout plugin new`: needs no data directory.
fn new_project(
    name: &str,
    kind: crate::scaffold::Kind,
    lang: crate::scaffold::Lang,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let files = crate::scaffold::create(&dir, name, kind, lang)?;
    println!(
        "created {} ({lang} {kind} plugin `{name}`, {} files)",
        dir.display(),
        files.len()
    );
    println!(
        "  build    cd {} && {}",
        dir.display(),
        lang.build_command()
    );
    println!(
        "  install  lookout plugin install {}",
        dir.join(lang.output(name)).display()
    );
    Ok(())
}

/// A progress bar for the first compile of a component, which takes
/// seconds for the large ones (an interpreter inside: ~6 s for a 19 MB
/// Python component here). wasmtime reports no progress while it compiles,
/// so the bar advances with the time the compile is expected to take — the
/// component's size at the rate this machine compiled at last time, kept in
/// `<data>/compile-rate` (bytes/s) — stops short of the end until the
/// compile is done, and records the rate it saw for the next one.
struct CompileProgress {
    what: String,
    size: u64,
    rate_file: PathBuf,
    /// The bar and when the compile started, once it has.
    shown: std::sync::Mutex<Option<(indicatif::ProgressBar, std::time::Instant)>>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Bytes of component compiled per second when nothing was measured yet
/// (2–3 MB/s measured on 2 cores for Python and JavaScript components).
const DEFAULT_COMPILE_RATE: f64 = 2.5e6;

impl CompileProgress {
    fn new(data: &Path, what: &str, size: u64) -> CompileProgress {
        // The last segment of a path, URL or OCI reference: short enough
        // for one line beside the bar.
        let what = what.rsplit(['/', '\\']).next().unwrap_or(what);
        CompileProgress {
            what: what.to_string(),
            size,
            rate_file: data.join("compile-rate"),
            shown: std::sync::Mutex::new(None),
            done: Default::default(),
        }
    }

    fn expected(&self) -> Duration {
        let rate = std::fs::read_to_string(&self.rate_file)
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|rate| rate.is_finite() && *rate > 0.0)
            .unwrap_or(DEFAULT_COMPILE_RATE);
        Duration::from_secs_f64(self.size as f64 / rate)
    }

    /// The compile begins (the component is not in the compile cache).
    fn start(&self) {
        let expected = self.expected().as_secs_f64().max(1e-3);
        let bar = indicatif::ProgressBar::new(1000);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {percent:>3}% (estimated)")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(format!(
            "compiling {} ({:.1} MB, first time only; cached afterwards)",
            self.what,
            self.size as f64 / 1e6
        ));
        let started = std::time::Instant::now();
        let (ticker, done) = (bar.clone(), self.done.clone());
        // The compile blocks this thread: the bar moves from another.
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let share = started.elapsed().as_secs_f64() / expected;
                ticker.set_position((share.min(0.97) * 1000.0) as u64);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        *self.shown.lock().expect("not poisoned") = Some((bar, started));
    }

    /// The install is over; `compiled` when it succeeded.
    fn finish(self, compiled: bool) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        let Some((bar, started)) = self.shown.lock().expect("not poisoned").take() else {
            return; // loaded from the cache: no bar was shown
        };
        if compiled {
            bar.set_position(1000);
            let rate = self.size as f64 / started.elapsed().as_secs_f64().max(1e-3);
            // Best effort: without it the next estimate uses the default.
            let _ = std::fs::write(&self.rate_file, format!("{rate:.0}\n"));
        }
        bar.finish_and_clear();
    }
}
