//! The plugin runtime: the only module that knows wasmtime.
//!
//! [`Runtime::prepare`] turns component bytes into a [`Plugin`]: it refuses
//! anything that is not a component of one of lookout's worlds (naming what
//! is missing), compiles once and caches the machine code on disk keyed by
//! the wasm's sha256 and the engine's compatibility hash, and pre-links the
//! component (`InstancePre`) so each invocation only instantiates.
//!
//! Every invocation ([`Runtime::probe`], [`Runtime::collect`]) gets a fresh
//! store and instance (a trapped instance is poisoned; instantiating from a
//! pool costs ~15 µs) built by [`sandbox`] from the grants, and runs under:
//! a wall-clock deadline enforced by epoch interruption plus a tokio timeout
//! for time blocked in host calls, a memory cap, a wasm stack cap and an
//! output cap ([`limits`]). Whatever the plugin does, the caller gets a
//! result or an [`InvocationError`] naming the reason; the host never panics
//! on a plugin's behalf.
//!
//! Besides WASI, the host implements the contract's own interfaces: `host`
//! (logging and key-value state, below), `icmp` (ping on the plugin's
//! behalf, [`icmp`], checked against the `icmp` grants) and
//! `filesystem-stats` (statvfs on the plugin's behalf, [`statfs`], checked
//! against the `statfs` and `files` grants).

mod bindings;
mod icmp;
pub mod limits;
mod sandbox;
mod statfs;

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
};

use crate::model::{
    Delivery, FailureKind, Forecast, Grants, InvocationError, Limits, Notification, PluginInfo,
    Point, ProbeResult, Sample, Verdict, World,
};
use bindings::types as wit;
use sandbox::{Identity, InvocationState};
pub use sandbox::{expand_target, target_host_port};

/// The version of `lookout:plugin` this host speaks (`wit/plugin.wit`).
pub const CONTRACT_VERSION: &str = "0.3.0";

/// The detector world's export, named with the contract version.
const DETECTION_EXPORT: &str = "lookout:plugin/detection@0.3.0";

/// Where plugins keep their key-value state (`lookout:plugin/host.kv-*`).
/// Storage implements it; the runtime only calls it, off the async threads.
pub trait PluginStateStore: Send + Sync + 'static {
    fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), String>;
    fn delete(&self, plugin: &str, key: &str) -> Result<(), String>;
}

/// Why a component cannot become a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("not a WebAssembly file: it does not start with the `\\0asm` magic bytes")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component: build it for wasm32-wasip2 \
         (or wrap it with `wasm-tools component new`) against one of lookout's worlds"
    )]
    CoreModule,
    #[error("invalid component: {0}")]
    Invalid(String),
    #[error(
        "component implements none of lookout's worlds (lookout:plugin@{CONTRACT_VERSION}): a \
         plugin exports `describe` and one of `probe` (probe), `collect` (exporter), `notify` \
         (notifier) or `{DETECTION_EXPORT}` (detector); this component exports [{}]",
        .exports.join(", ")
    )]
    NoWorld { exports: Vec<String> },
    #[error(
        "component was built against lookout:plugin@{found} (it uses `{item}`), but this lookout \
         speaks lookout:plugin@{CONTRACT_VERSION}: rebuild the plugin against the current \
         wit/plugin.wit (for Rust, the current lookout-plugin-sdk)"
    )]
    ContractVersion { found: String, item: String },
    #[error("component targets the {world} world but is missing the export `{missing}`")]
    MissingExport { world: World, missing: &'static str },
    #[error(
        "component does not match the {world} world of lookout:plugin@{CONTRACT_VERSION}: {detail}"
    )]
    Link { world: World, detail: String },
    #[error("compile cache at {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plugin's describe failed: {0}")]
    Describe(InvocationError),
}

/// A compiled, pre-linked plugin, cheap to clone and share across tasks.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    name: String,
    world: World,
    pre: WorldPre,
}

enum WorldPre {
    Probe(bindings::probe::ProbePre<InvocationState>),
    Exporter(bindings::exporter::ExporterPre<InvocationState>),
    Detector(bindings::detector::DetectorPre<InvocationState>),
    Notifier(bindings::notifier::NotifierPre<InvocationState>),
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    pub fn world(&self) -> World {
        self.inner.world
    }
}

/// How instances get their memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Slots reserved up front; instantiation is a few µs.
    Pooling,
    /// Memory mapped per instance: used when the address space for the pool
    /// cannot be reserved (`ulimit -v`, strict overcommit).
    OnDemand,
}

/// One invocation's request.
pub struct Invocation<'a> {
    pub job: &'a str,
    pub target: &'a str,
    /// The plugin's configuration as JSON.
    pub config: &'a str,
    pub grants: &'a Grants,
    pub limits: &'a Limits,
}

/// The engine, the linker every plugin is checked against, and the compile cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<InvocationState>,
    cache_dir: PathBuf,
    /// Hex sha256 of the engine's compatibility hash: part of every cache key.
    engine_key: String,
    state: Arc<dyn PluginStateStore>,
    allocation: Allocation,
}

impl Runtime {
    /// An engine with lookout's limits; pooling allocation where the address
    /// space can be reserved. Compiled code is cached under `cache_dir`.
    pub fn new(cache_dir: &Path, state: Arc<dyn PluginStateStore>) -> Result<Runtime, String> {
        Self::with_allocation(cache_dir, state, None)
    }

    /// Like [`Runtime::new`], forcing an allocation strategy (benchmarks, tests).
    pub fn with_allocation(
        cache_dir: &Path,
        state: Arc<dyn PluginStateStore>,
        force: Option<Allocation>,
    ) -> Result<Runtime, String> {
        let (engine, allocation) = match force {
            Some(Allocation::OnDemand) => (
                Engine::new(&base_config()).map_err(|e| e.to_string())?,
                Allocation::OnDemand,
            ),
            _ => match Engine::new(&pooling_config()) {
                Ok(engine) => (engine, Allocation::Pooling),
                Err(e) if force.is_none() => {
                    tracing::warn!(error = %e, "pooling allocator unavailable, allocating instances on demand");
                    (
                        Engine::new(&base_config()).map_err(|e| e.to_string())?,
                        Allocation::OnDemand,
                    )
                }
                Err(e) => return Err(format!("pooling allocator: {e}")),
            },
        };
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| e.to_string())?;
        bindings::host::add_to_linker::<_, HasSelf<InvocationState>>(&mut linker, |s| s)
            .map_err(|e| e.to_string())?;
        bindings::icmp::add_to_linker::<_, HasSelf<InvocationState>>(&mut linker, |s| s)
            .map_err(|e| e.to_string())?;
        bindings::filesystem_stats::add_to_linker::<_, HasSelf<InvocationState>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| e.to_string())?;

        let mut hasher = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_key = hex::encode(hasher.0.finalize());

        std::fs::create_dir_all(cache_dir)
            .map_err(|e| format!("creating {}: {e}", cache_dir.display()))?;
        Ok(Runtime {
            engine,
            linker,
            cache_dir: cache_dir.to_owned(),
            engine_key,
            state,
            allocation,
        })
    }

    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// Path of the cached machine code for a component with this digest.
    pub fn cache_path(&self, sha256: &str) -> PathBuf {
        self.cache_dir
            .join(format!("{sha256}-{}.cwasm", &self.engine_key[..16]))
    }

    /// Whether compiled code for this digest is already cached.
    pub fn is_cached(&self, sha256: &str) -> bool {
        self.cache_path(sha256).exists()
    }

    /// Validates and compiles component bytes (or loads them from the
    /// compile cache), identifies the world and pre-links it.
    pub fn prepare(&self, name: &str, wasm: &[u8], sha256: &str) -> Result<Plugin, PrepareError> {
        check_header(wasm)?;
        if let Some(component) = self.load_cached(sha256) {
            return self.link(name, &component);
        }
        let component = Component::new(&self.engine, wasm)
            .map_err(|e| PrepareError::Invalid(format!("{e:#}")))?;
        // Link before caching: a component of no known world leaves nothing behind.
        let plugin = self.link(name, &component)?;
        self.write_cache(&component, sha256)?;
        Ok(plugin)
    }

    /// Loads a plugin whose component file was validated at install: from
    /// the compile cache when present, otherwise compiled from `wasm_path`.
    pub fn load(&self, name: &str, wasm_path: &Path, sha256: &str) -> Result<Plugin, PrepareError> {
        if let Some(component) = self.load_cached(sha256) {
            return self.link(name, &component);
        }
        let wasm = std::fs::read(wasm_path).map_err(|source| PrepareError::Cache {
            path: wasm_path.to_owned(),
            source,
        })?;
        let actual = hex::encode(Sha256::digest(&wasm));
        if actual != sha256 {
            return Err(PrepareError::Invalid(format!(
                "{} has sha256 {actual}, but {sha256} was installed: the file changed on disk",
                wasm_path.display()
            )));
        }
        self.prepare(name, &wasm, sha256)
    }

    fn load_cached(&self, sha256: &str) -> Option<Component> {
        let path = self.cache_path(sha256);
        if !path.exists() {
            return None;
        }
        // SAFETY: the cache directory belongs to lookout and artifacts are
        // written by `compile_and_cache` with an atomic rename; wasmtime
        // checks the artifact's engine compatibility before using it.
        match unsafe { Component::deserialize_file(&self.engine, &path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unusable compiled artifact");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn write_cache(&self, component: &Component, sha256: &str) -> Result<(), PrepareError> {
        let path = self.cache_path(sha256);
        let bytes = component
            .serialize()
            .map_err(|e| PrepareError::Invalid(format!("{e:#}")))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|source| PrepareError::Cache {
            path: path.clone(),
            source,
        })
    }

    fn link(&self, name: &str, component: &Component) -> Result<Plugin, PrepareError> {
        let world = classify_world(&self.engine, component)?;
        let link_err = |e: wasmtime::Error| PrepareError::Link {
            world,
            detail: format!("{e:#}"),
        };
        let instance_pre = self.linker.instantiate_pre(component).map_err(link_err)?;
        let pre = match world {
            World::Probe => {
                WorldPre::Probe(bindings::probe::ProbePre::new(instance_pre).map_err(link_err)?)
            }
            World::Exporter => WorldPre::Exporter(
                bindings::exporter::ExporterPre::new(instance_pre).map_err(link_err)?,
            ),
            World::Detector => WorldPre::Detector(
                bindings::detector::DetectorPre::new(instance_pre).map_err(link_err)?,
            ),
            World::Notifier => WorldPre::Notifier(
                bindings::notifier::NotifierPre::new(instance_pre).map_err(link_err)?,
            ),
        };
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                name: name.to_owned(),
                world,
                pre,
            }),
        })
    }

    /// Calls the plugin's `describe` in a sandbox with no grants.
    pub async fn describe(&self, plugin: &Plugin) -> Result<PluginInfo, PrepareError> {
        let limits = Limits {
            timeout: limits::DESCRIBE_TIMEOUT,
            ..Limits::default()
        };
        let grants = Grants::default();
        let inv = Invocation {
            job: "describe",
            target: "",
            config: "",
            grants: &grants,
            limits: &limits,
        };
        let mut store = self
            .new_store(plugin, &inv, false)
            .await
            .map_err(PrepareError::Describe)?;
        let call = async {
            match &plugin.inner.pre {
                WorldPre::Probe(pre) => {
                    pre.instantiate_async(&mut store)
                        .await?
                        .call_describe(&mut store)
                        .await
                }
                WorldPre::Exporter(pre) => {
                    pre.instantiate_async(&mut store)
                        .await?
                        .call_describe(&mut store)
                        .await
                }
                WorldPre::Detector(pre) => {
                    pre.instantiate_async(&mut store)
                        .await?
                        .call_describe(&mut store)
                        .await
                }
                WorldPre::Notifier(pre) => {
                    pre.instantiate_async(&mut store)
                        .await?
                        .call_describe(&mut store)
                        .await
                }
            }
        };
        let info = run_bounded(&limits, call)
            .await
            .map_err(|e| PrepareError::Describe(classify(e, &store, &limits)))?;
        Ok(PluginInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            config_schema: info.config_schema,
            capabilities: Grants {
                http: info.capabilities.http,
                tcp: info.capabilities.tcp,
                udp: info.capabilities.udp,
                icmp: info.capabilities.icmp,
                files: info.capabilities.files,
                statfs: info.capabilities.statfs,
                env: info.capabilities.env,
            },
        })
    }

    /// Runs a probe plugin once against `inv.target`.
    pub async fn probe(
        &self,
        plugin: &Plugin,
        inv: &Invocation<'_>,
    ) -> Result<ProbeResult, InvocationError> {
        let WorldPre::Probe(pre) = &plugin.inner.pre else {
            return Err(wrong_world(plugin, World::Probe));
        };
        let pre = pre.clone();
        self.invoke(plugin, inv, move |mut store, call| async move {
            let limits = &call.limits;
            let returned = run_bounded(limits, async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance
                    .call_probe(&mut store, &call.target, &call.config, call.timeout_ms)
                    .await
            })
            .await
            .map_err(|e| classify(e, &store, limits))?;
            let result = probe_result_from_wit(returned.map_err(plugin_error)?);
            check_output(result.size_bytes(), limits)?;
            Ok(result)
        })
        .await
    }

    /// Runs an exporter plugin once against `inv.target`.
    pub async fn collect(
        &self,
        plugin: &Plugin,
        inv: &Invocation<'_>,
    ) -> Result<Vec<Sample>, InvocationError> {
        let WorldPre::Exporter(pre) = &plugin.inner.pre else {
            return Err(wrong_world(plugin, World::Exporter));
        };
        let pre = pre.clone();
        self.invoke(plugin, inv, move |mut store, call| async move {
            let limits = &call.limits;
            let returned = run_bounded(limits, async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance
                    .call_collect(&mut store, &call.target, &call.config, call.timeout_ms)
                    .await
            })
            .await
            .map_err(|e| classify(e, &store, limits))?;
            let samples: Vec<Sample> = returned
                .map_err(plugin_error)?
                .into_iter()
                .map(sample_from_wit)
                .collect();
            check_output(samples.iter().map(Sample::size_bytes).sum(), limits)?;
            Ok(samples)
        })
        .await
    }

    /// Delivers one notification through a notifier plugin. `inv.target`
    /// only names the delivery in logs: the receiver is in the notification
    /// and the destination in `inv.config`.
    pub async fn notify(
        &self,
        plugin: &Plugin,
        notification: &Notification,
        inv: &Invocation<'_>,
    ) -> Result<Delivery, InvocationError> {
        let WorldPre::Notifier(pre) = &plugin.inner.pre else {
            return Err(wrong_world(plugin, World::Notifier));
        };
        let pre = pre.clone();
        let wit_notification = notification_to_wit(notification);
        self.invoke(plugin, inv, move |mut store, call| async move {
            let limits = &call.limits;
            let returned = run_bounded(limits, async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance
                    .call_notify(&mut store, &wit_notification, &call.config, call.timeout_ms)
                    .await
            })
            .await
            .map_err(|e| classify(e, &store, limits))?;
            let delivery = returned.map_err(plugin_error)?;
            Ok(Delivery {
                remote_id: delivery.remote_id,
                message: delivery.message,
            })
        })
        .await
    }

    /// Runs a detector plugin over batches of points, one batch per series,
    /// in one fresh instance: per series `restore` from its saved state (or
    /// `create` when it has none, or the state is refused), `observe`,
    /// `forecast` when asked, `save`. No instance outlives the call (see the
    /// `detection` interface), so everything learned is in the returned
    /// state. A failure of one series (a config error, a refused state
    /// *and* a refused create, a wrong verdict count) is that series'
    /// `Err`; a trap or the deadline fails the whole call, and the caller
    /// keeps the states it had.
    pub async fn detect(
        &self,
        plugin: &Plugin,
        inv: &Invocation<'_>,
        requests: Vec<DetectRequest>,
    ) -> Result<Vec<Result<DetectOutcome, String>>, InvocationError> {
        let WorldPre::Detector(pre) = &plugin.inner.pre else {
            return Err(wrong_world(plugin, World::Detector));
        };
        let pre = pre.clone();
        self.invoke(plugin, inv, move |mut store, call| async move {
            let limits = &call.limits;
            let outcomes = run_bounded(limits, async {
                let instance = pre.instantiate_async(&mut store).await?;
                let detection = instance.lookout_plugin_detection().detector();
                let mut outcomes = Vec::with_capacity(requests.len());
                for request in requests {
                    let mut restarted = None;
                    let created = match &request.state {
                        Some(state) => {
                            match detection
                                .call_restore(&mut store, &call.config, state)
                                .await?
                            {
                                Ok(handle) => Ok(handle),
                                Err(refused) => {
                                    restarted = Some(plugin_error(refused).message);
                                    detection.call_create(&mut store, &call.config).await?
                                }
                            }
                        }
                        None => detection.call_create(&mut store, &call.config).await?,
                    };
                    let handle = match created {
                        Ok(handle) => handle,
                        Err(error) => {
                            outcomes.push(Err(plugin_error(error).message));
                            continue;
                        }
                    };
                    let points: Vec<wit::Point> = request
                        .points
                        .iter()
                        .map(|p| wit::Point {
                            timestamp_ms: p.timestamp_ms,
                            value: p.value,
                        })
                        .collect();
                    let verdicts = detection.call_observe(&mut store, handle, &points).await?;
                    let forecast = match request.forecast {
                        Some(ask) => detection
                            .call_forecast(&mut store, handle, ask.horizon_ms, ask.threshold)
                            .await?
                            .map(|f| Forecast {
                                value: f.value,
                                seconds_to_threshold: f.seconds_to_threshold,
                            }),
                        None => None,
                    };
                    let state = detection.call_save(&mut store, handle).await?;
                    handle.resource_drop_async(&mut store).await?;
                    outcomes.push(if state.len() > limits::MAX_KV_VALUE_BYTES {
                        Err(format!(
                            "detector saved {} bytes of state, over the cap of {} bytes",
                            state.len(),
                            limits::MAX_KV_VALUE_BYTES
                        ))
                    } else if verdicts.len() == points.len() {
                        Ok(DetectOutcome {
                            verdicts: verdicts
                                .into_iter()
                                .map(|v| Verdict {
                                    timestamp_ms: v.timestamp_ms,
                                    score: v.score,
                                    anomalous: v.anomalous,
                                })
                                .collect(),
                            forecast,
                            state,
                            restarted,
                        })
                    } else {
                        Err(format!(
                            "detector returned {} verdicts for {} points",
                            verdicts.len(),
                            points.len()
                        ))
                    });
                }
                Ok(outcomes)
            })
            .await
            .map_err(|e| classify(e, &store, limits))?;
            let size: u64 = outcomes
                .iter()
                .flatten()
                .map(|o| o.state.len() as u64 + 24 * o.verdicts.len() as u64)
                .sum();
            check_output(size, limits)?;
            Ok(outcomes)
        })
        .await
    }

    /// Builds the invocation's store and runs `run` with it.
    ///
    /// A plugin granted files runs on a thread of its own, where wasi's file
    /// calls may block (`WasiCtxBuilder::allow_blocking_current_thread`):
    /// otherwise every call hops to tokio's blocking pool and back, and the
    /// `node` plugin's collection (~150 file calls in `/proc` and `/sys`)
    /// took 4.3–4.8 ms instead of 2.0–2.4 ms (`cargo xtask bench-node`,
    /// p50 per invocation). Blocking an async worker instead would let one
    /// read that never returns (`/proc/kmsg`, a tracefs `trace_pipe`, a FIFO,
    /// a hung NFS file) stall every task of that worker; on its own thread
    /// such a read holds only that thread, and the invocation still ends at
    /// its deadline here, like any other host call epochs cannot interrupt.
    /// The thread and its instance stay until the read returns, so while
    /// [`limits::MAX_STRANDED_INVOCATIONS`] are stranded, invocations that
    /// start go back to the async threads and the blocking pool.
    async fn invoke<T, F, Call>(
        &self,
        plugin: &Plugin,
        inv: &Invocation<'_>,
        run: F,
    ) -> Result<T, InvocationError>
    where
        T: Send + 'static,
        F: FnOnce(Store<InvocationState>, OwnedCall) -> Call + Send + 'static,
        Call: Future<Output = Result<T, InvocationError>> + Send,
    {
        let own_thread = sandbox::files_block_their_thread(inv.grants)
            && STRANDED_INVOCATIONS.load(Ordering::Acquire) < limits::MAX_STRANDED_INVOCATIONS;
        let store = self.new_store(plugin, inv, own_thread).await?;
        let call = OwnedCall {
            target: inv.target.to_owned(),
            config: inv.config.to_owned(),
            limits: inv.limits.clone(),
            timeout_ms: plugin_timeout_ms(inv.limits),
        };
        if !own_thread {
            return run(store, call).await;
        }
        // Not a thread of tokio's blocking pool: the runtime waits for those
        // when it shuts down, and a stranded one would keep lookout from
        // stopping.
        let settled = Arc::new(AtomicBool::new(false));
        let finished = InvocationFinished {
            settled: settled.clone(),
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("lookout-invocation".into())
            .spawn(move || {
                let outcome = runtime.block_on(run(store, call));
                drop(finished);
                // The caller may have stopped waiting; then nobody needs it.
                let _ = answer.send(outcome);
            })
            .map_err(|e| {
                InvocationError::new(
                    FailureKind::Instantiate,
                    format!("cannot start the invocation's thread: {e}"),
                )
            })?;
        // The thread's own timeouts end the call unless a file call holds
        // the thread itself; then this one does (and the call goes on).
        let outer = inv.limits.timeout + 2 * limits::DEADLINE_GRACE;
        match tokio::time::timeout(outer, answered).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(InvocationError::new(
                FailureKind::Trap,
                "the invocation's thread ended without a result",
            )),
            Err(_) => {
                // Counted before settling, so that a thread finishing in
                // between never takes the count below zero.
                let stranded = STRANDED_INVOCATIONS.fetch_add(1, Ordering::AcqRel) + 1;
                if settled.swap(true, Ordering::AcqRel) {
                    // It finished after all.
                    STRANDED_INVOCATIONS.fetch_sub(1, Ordering::AcqRel);
                } else {
                    tracing::warn!(
                        plugin = %plugin.inner.name, job = %inv.job, target = %inv.target, stranded,
                        "plugin is blocked in a file call past its deadline; its thread and instance stay until the call returns"
                    );
                }
                Err(InvocationError::new(
                    FailureKind::Deadline,
                    format!(
                        "plugin did not finish within its deadline of {:?}: a file call does not return",
                        inv.limits.timeout
                    ),
                ))
            }
        }
    }

    /// A probe instance kept alive across calls: what a reused instance
    /// costs, for benchmarks. Production invocations use fresh instances
    /// because a trapped instance cannot be entered again.
    pub async fn warm_probe(
        &self,
        plugin: &Plugin,
        inv: &Invocation<'_>,
    ) -> Result<WarmProbe, InvocationError> {
        let WorldPre::Probe(pre) = &plugin.inner.pre else {
            return Err(wrong_world(plugin, World::Probe));
        };
        // Async file calls: a benchmark's warm instance stays on its task.
        let mut store = self.new_store(plugin, inv, false).await?;
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify(e, &store, inv.limits))?;
        Ok(WarmProbe {
            store,
            instance,
            limits: inv.limits.clone(),
        })
    }

    /// A fresh store for one invocation. `blocking_files`: wasi's file calls
    /// block the thread that runs the invocation (see [`Runtime::invoke`]).
    async fn new_store(
        &self,
        plugin: &Plugin,
        inv: &Invocation<'_>,
        blocking_files: bool,
    ) -> Result<Store<InvocationState>, InvocationError> {
        let deadline = Instant::now() + inv.limits.timeout;
        let identity = Identity {
            plugin: plugin.inner.name.as_str().into(),
            job: inv.job.into(),
            // Log lines show no password of the target's URL.
            target: crate::model::shown_target(inv.target).into(),
        };
        let state = sandbox::build_state(
            identity,
            inv.grants,
            self.state.clone(),
            inv.limits.memory_bytes,
            deadline,
            blocking_files,
        )
        .await
        .map_err(|e| InvocationError::new(FailureKind::Instantiate, e))?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                return Err(Trap::Interrupt.into());
            }
            // Yield through tokio on every tick: a plain `Yield` starves the
            // runtime's timers under several spinning guests.
            Ok(wasmtime::UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        Ok(store)
    }
}

/// Invocations whose own thread is still blocked in a file call past the
/// deadline (see [`limits::MAX_STRANDED_INVOCATIONS`]). Process-wide, as
/// the threads are.
static STRANDED_INVOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// Dropped when an invocation's own thread is done, returned or panicked:
/// if its caller had given up on it, it is no longer stranded.
struct InvocationFinished {
    /// Swapped to true by both sides, the thread finishing and the caller
    /// giving up; whichever finds it true already came second. A thread
    /// stays counted as stranded only when the caller gave up first, and
    /// uncounts itself when it finishes.
    settled: Arc<AtomicBool>,
}

impl Drop for InvocationFinished {
    fn drop(&mut self) {
        if self.settled.swap(true, Ordering::AcqRel) {
            STRANDED_INVOCATIONS.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// What an invocation's call needs, owned, so that it can run on a thread
/// of its own ([`Runtime::invoke`]).
struct OwnedCall {
    target: String,
    config: String,
    limits: Limits,
    /// The timeout the plugin is told ([`plugin_timeout_ms`]).
    timeout_ms: u32,
}

/// One series' batch for [`Runtime::detect`].
#[derive(Clone, Debug)]
pub struct DetectRequest {
    /// What the detector saved last time; none for a new series.
    pub state: Option<Vec<u8>>,
    /// New points, oldest first.
    pub points: Vec<Point>,
    pub forecast: Option<ForecastRequest>,
}

/// Ask a detector to forecast after observing.
#[derive(Clone, Copy, Debug)]
pub struct ForecastRequest {
    pub horizon_ms: i64,
    pub threshold: Option<f64>,
}

/// What [`Runtime::detect`] got for one series.
#[derive(Clone, Debug)]
pub struct DetectOutcome {
    /// One per point, in order.
    pub verdicts: Vec<Verdict>,
    pub forecast: Option<Forecast>,
    /// What the detector saved after the batch.
    pub state: Vec<u8>,
    /// Set when the saved state was refused and the series started afresh:
    /// the plugin's reason.
    pub restarted: Option<String>,
}

/// A live probe instance, see [`Runtime::warm_probe`].
pub struct WarmProbe {
    store: Store<InvocationState>,
    instance: bindings::probe::Probe,
    limits: Limits,
}

impl WarmProbe {
    pub async fn probe(
        &mut self,
        target: &str,
        config: &str,
    ) -> Result<ProbeResult, InvocationError> {
        self.store.data_mut().deadline = Instant::now() + self.limits.timeout;
        let timeout_ms = plugin_timeout_ms(&self.limits);
        let returned = self
            .instance
            .call_probe(&mut self.store, target, config, timeout_ms)
            .await
            .map_err(|e| classify(e, &self.store, &self.limits))?;
        Ok(probe_result_from_wit(returned.map_err(plugin_error)?))
    }
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(limits::MAX_WASM_STACK_BYTES);
    config
}

fn pooling_config() -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(limits::MAX_INSTANCES)
        // A Rust or C component has a handful of core instances; interpreter
        // guests (componentize-py) link a few dozen.
        .max_core_instances_per_component(64)
        .total_core_instances(limits::MAX_INSTANCES * 8)
        .max_memories_per_component(4)
        .total_memories(limits::MAX_INSTANCES * 2)
        .max_tables_per_component(16)
        .total_tables(limits::MAX_INSTANCES * 4)
        .table_elements(limits::MAX_TABLE_ELEMENTS)
        .max_core_instance_size(4 << 20)
        .max_memory_size(limits::MAX_MEMORY_BYTES as usize)
        // Reset freed instances' memory with one batched madvise per 64
        // instances instead of one syscall each: measured 29 → 20 µs per
        // noop invocation (docs/PERFORMANCE.md).
        .decommit_batch_size(64);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        // Reset a freed slot by rewriting only the pages the guest dirtied
        // (found with the PAGEMAP_SCAN ioctl, Linux ≥ 6.7) and keep them
        // mapped, so the next instance of the same plugin takes no page
        // faults on them. Measured: noop 21 → 12 µs, an HTTP probe's CPU
        // 0.40 → 0.24 ms (docs/PERFORMANCE.md). Without the ioctl, keeping
        // memory resident means a memset of the whole kept range, which
        // was slower for small guests, so it stays off there.
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(limits::KEEP_RESIDENT_MEMORY_BYTES)
            .table_keep_resident(limits::KEEP_RESIDENT_TABLE_BYTES)
            // Kept pages stay in RSS: bound the slots that hold them while
            // idle to the busy ones plus these.
            .max_unused_warm_slots(limits::MAX_UNUSED_WARM_SLOTS);
    }
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Advances the engine's epoch every tick for as long as the engine lives.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("lookout-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(limits::EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}

/// Feeds `Hash` output into sha256, which (unlike std's hasher) is stable
/// across Rust releases, so cache keys survive a rebuild of lookout.
struct Sha256Hasher(Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn check_header(wasm: &[u8]) -> Result<(), PrepareError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(PrepareError::NotWasm);
    }
    // Bytes 4..8: version (2 bytes) + layer (2 bytes); layer 0 is a core
    // module, layer 1 a component.
    match u16::from_le_bytes([wasm[6], wasm[7]]) {
        0 => Err(PrepareError::CoreModule),
        1 => Ok(()),
        layer => Err(PrepareError::Invalid(format!(
            "unknown WebAssembly layer {layer}"
        ))),
    }
}

/// Which world a component implements, judged by its exports.
fn classify_world(engine: &Engine, component: &Component) -> Result<World, PrepareError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let imports = ty.imports(engine).map(|(name, _)| name.to_string());
    if let Some((item, found)) = other_contract_version(imports.chain(exports.iter().cloned())) {
        return Err(PrepareError::ContractVersion { found, item });
    }
    let has = |name: &str| exports.iter().any(|e| e == name);
    let world = if has("probe") {
        World::Probe
    } else if has("collect") {
        World::Exporter
    } else if has("notify") {
        World::Notifier
    } else if has(DETECTION_EXPORT) {
        World::Detector
    } else {
        return Err(PrepareError::NoWorld { exports });
    };
    if !has("describe") {
        return Err(PrepareError::MissingExport {
            world,
            missing: "describe",
        });
    }
    Ok(world)
}

/// The first `lookout:plugin/…@version` among a component's import and
/// export names whose version is not [`CONTRACT_VERSION`]: a plugin built
/// against another contract, which would otherwise fail with a link error
/// about one of its types.
fn other_contract_version(names: impl IntoIterator<Item = String>) -> Option<(String, String)> {
    names.into_iter().find_map(|name| {
        let version = name
            .strip_prefix("lookout:plugin/")?
            .split_once('@')?
            .1
            .to_string();
        (version != CONTRACT_VERSION).then_some((name, version))
    })
}

/// The timeout the plugin is told: a little under the host's deadline, so
/// a plugin can notice a slow target and report `timeout` itself before the
/// host has to interrupt it.
fn plugin_timeout_ms(limits: &Limits) -> u32 {
    let margin = (limits.timeout / 10).min(Duration::from_millis(500));
    (limits.timeout - margin).as_millis().min(u32::MAX as u128) as u32
}

/// Runs `call` under the tokio half of the deadline (time blocked in host
/// calls, which epochs cannot interrupt).
async fn run_bounded<T>(
    limits: &Limits,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    match tokio::time::timeout(limits.timeout + limits::DEADLINE_GRACE, call).await {
        Ok(result) => result,
        Err(_) => Err(Trap::Interrupt.into()),
    }
}

fn classify(
    error: wasmtime::Error,
    store: &Store<InvocationState>,
    limits: &Limits,
) -> InvocationError {
    let state = store.data();
    let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
    if !stderr.is_empty() {
        tracing::debug!(%stderr, "stderr of the failed invocation");
    }
    let tail = stderr_summary(&stderr)
        .map(|l| format!(" ({l})"))
        .unwrap_or_default();
    if state.limiter.hit.load(Ordering::Relaxed) {
        return InvocationError::new(
            FailureKind::MemoryLimit,
            format!(
                "plugin exceeded its memory cap of {} MiB{tail}",
                limits.memory_bytes >> 20
            ),
        );
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => InvocationError::new(
            FailureKind::Deadline,
            format!(
                "plugin did not finish within its deadline of {:?}",
                limits.timeout
            ),
        ),
        Some(Trap::StackOverflow) => InvocationError::new(
            FailureKind::StackOverflow,
            format!(
                "plugin overflowed its wasm stack of {} KiB",
                limits::MAX_WASM_STACK_BYTES >> 10
            ),
        ),
        Some(trap) => {
            InvocationError::new(FailureKind::Trap, format!("plugin trapped: {trap}{tail}"))
        }
        None if error.to_string().contains("instance") && error.to_string().contains("limit") => {
            InvocationError::new(FailureKind::Instantiate, format!("{error:#}"))
        }
        None => InvocationError::new(FailureKind::Trap, format!("plugin failed: {error:#}{tail}")),
    }
}

/// The line of a plugin's stderr that explains a trap: a Python
/// exception (componentize-py prints the traceback, then panics with a
/// generic message), else the message after Rust's "panicked at" line, else
/// the last line that is not noise (`note:` lines, stack frames, the
/// interpreters' abort notices).
fn stderr_summary(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if let Some(at) = lines
        .iter()
        .rposition(|l| l.trim() == "Traceback (most recent call last):")
    {
        let frames = &lines[at + 1..];
        // The exception is the first unindented line after the frames.
        if let Some(exception) = frames.iter().find(|l| !l.starts_with(' ')) {
            let place = frames
                .iter()
                .filter_map(|l| l.trim().strip_prefix("File "))
                .next_back()
                .map(|frame| format!(" ({})", frame.replace('"', "")))
                .unwrap_or_default();
            return Some(format!("Python {}{place}", exception.trim()));
        }
    }
    if let Some(at) = lines.iter().rposition(|l| l.contains("panicked at"))
        && let Some(message) = lines.get(at + 1)
    {
        return Some(format!("panicked: {}", message.trim()));
    }
    // ComponentizeJS reads what an export threw as a `plugin-error`
    // variant; anything else (an `Error`, a string) fails that read.
    if let Some(thrown) = lines.iter().rev().find_map(|l| {
        l.trim()
            .strip_prefix("invalid variant tag value `undefined` (received `")?
            .strip_suffix("`) specified for `PluginError`")
    }) {
        return Some(format!(
            "JavaScript threw {thrown}, not a plugin error ({{ tag, val }})"
        ));
    }
    const NOISE: [&str; 2] = ["Redirecting call to abort() to mozalloc_abort", "Stack:"];
    lines
        .iter()
        .rev()
        .map(|l| (l.starts_with(' ') || l.starts_with('\t'), l.trim()))
        .find(|(frame, l)| !frame && !l.starts_with("note:") && !NOISE.contains(l))
        .map(|(_, l)| l.to_string())
}

fn plugin_error(error: wit::PluginError) -> InvocationError {
    match error {
        wit::PluginError::Config(m) => InvocationError::new(FailureKind::PluginConfig, m),
        wit::PluginError::Transient(m) => InvocationError::new(FailureKind::PluginTransient, m),
        wit::PluginError::Permanent(m) => InvocationError::new(FailureKind::PluginPermanent, m),
    }
}

fn wrong_world(plugin: &Plugin, wanted: World) -> InvocationError {
    InvocationError::new(
        FailureKind::WrongWorld,
        format!(
            "plugin {} is a {} plugin, not a {wanted}",
            plugin.name(),
            plugin.world()
        ),
    )
}

fn check_output(size: u64, limits: &Limits) -> Result<(), InvocationError> {
    if size > limits.output_bytes {
        return Err(InvocationError::new(
            FailureKind::OutputLimit,
            format!(
                "plugin returned {size} bytes, over the output cap of {} bytes",
                limits.output_bytes
            ),
        ));
    }
    Ok(())
}

fn notification_to_wit(n: &Notification) -> wit::Notification {
    let pairs = |m: &std::collections::BTreeMap<String, String>| -> Vec<(String, String)> {
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    wit::Notification {
        receiver: n.receiver.clone(),
        status: n.status.clone(),
        alerts: n
            .alerts
            .iter()
            .map(|a| wit::Alert {
                status: a.status.clone(),
                labels: pairs(&a.labels),
                annotations: pairs(&a.annotations),
                starts_at: a.starts_at.clone(),
                ends_at: a.ends_at.clone(),
                generator_url: a.generator_url.clone(),
                fingerprint: a.fingerprint.clone(),
            })
            .collect(),
        group_labels: pairs(&n.group_labels),
        common_labels: pairs(&n.common_labels),
        common_annotations: pairs(&n.common_annotations),
        external_url: n.external_url.clone(),
        group_key: n.group_key.clone(),
        truncated_alerts: n.truncated_alerts,
    }
}

fn probe_result_from_wit(r: wit::ProbeResult) -> ProbeResult {
    ProbeResult {
        success: r.success,
        duration_seconds: r.duration_seconds,
        failure_reason: r.failure_reason.map(|r| failure_reason_str(r).to_string()),
        message: r.message,
        samples: r.samples.into_iter().map(sample_from_wit).collect(),
    }
}

fn sample_from_wit(s: wit::Sample) -> Sample {
    Sample {
        name: s.name,
        labels: s.labels,
        value: s.value,
        timestamp_ms: s.timestamp_ms,
    }
}

fn failure_reason_str(reason: wit::FailureReason) -> &'static str {
    use wit::FailureReason as R;
    match reason {
        R::Dns => "dns",
        R::Connect => "connect",
        R::Tls => "tls",
        R::Timeout => "timeout",
        R::Status => "status",
        R::Body => "body",
        R::Header => "header",
        R::Protocol => "protocol",
        R::Denied => "denied",
        R::Config => "config",
        R::Other => "other",
    }
}

impl bindings::types::Host for InvocationState {}

impl bindings::icmp::Host for InvocationState {
    async fn echo(
        &mut self,
        request: bindings::icmp::EchoRequest,
    ) -> wasmtime::Result<Result<bindings::icmp::EchoReply, (bindings::icmp::IcmpError, String)>>
    {
        use bindings::icmp::IcmpError;
        let address = |text: &str| text.trim_matches(['[', ']']).parse::<IpAddr>();
        let Ok(destination) = address(&request.destination) else {
            return Ok(Err((
                IcmpError::Invalid,
                format!(
                    "destination {:?} is not an IP address (resolve names first)",
                    request.destination
                ),
            )));
        };
        let source = match request.source.as_deref().map(address).transpose() {
            Ok(source) => source,
            Err(_) => {
                return Ok(Err((
                    IcmpError::Invalid,
                    format!(
                        "source {:?} is not an IP address",
                        request.source.unwrap_or_default()
                    ),
                )));
            }
        };
        let who = &self.host.identity;
        if !self.icmp.permits(destination) {
            tracing::warn!(
                plugin = %who.plugin, job = %who.job, target = %who.target,
                denied = %destination, "capability denied: ICMP echo to an address not granted"
            );
            return Ok(Err((
                IcmpError::Denied,
                format!("denied by the sandbox: no icmp grant covers {destination}"),
            )));
        }
        let wait = Duration::from_millis(request.timeout_ms.into());
        let echo = icmp::EchoRequest {
            destination,
            source,
            payload: request.payload,
            ttl: request.ttl,
            dont_fragment: request.dont_fragment,
            deadline: Instant::now()
                .checked_add(wait)
                .map_or(self.deadline, |d| d.min(self.deadline)),
        };
        Ok(match icmp::echo(&echo).await {
            Ok(reply) => {
                tracing::debug!(
                    plugin = %who.plugin, job = %who.job, target = %who.target,
                    destination = %destination, socket = ?reply.socket, rtt = ?reply.rtt,
                    "icmp echo answered"
                );
                let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                Ok(bindings::icmp::EchoReply {
                    rtt_ns: nanos(reply.rtt),
                    setup_ns: nanos(reply.setup),
                    hop_limit: reply.hop_limit,
                })
            }
            Err(error) => {
                let code = match &error {
                    icmp::EchoError::Unsupported(_) => IcmpError::Unsupported,
                    icmp::EchoError::Timeout(_) => IcmpError::Timeout,
                    icmp::EchoError::Unreachable(_) => IcmpError::Unreachable,
                    icmp::EchoError::Invalid(_) => IcmpError::Invalid,
                    icmp::EchoError::Other(_) => IcmpError::Other,
                };
                tracing::debug!(
                    plugin = %who.plugin, job = %who.job, target = %who.target,
                    destination = %destination, error = %error, "icmp echo failed"
                );
                Err((code, error.to_string()))
            }
        })
    }
}

impl bindings::filesystem_stats::Host for InvocationState {
    async fn stat(
        &mut self,
        path: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<
        Result<
            bindings::filesystem_stats::FsStats,
            (bindings::filesystem_stats::StatError, String),
        >,
    > {
        use bindings::filesystem_stats::StatError as Code;
        let who = &self.host.identity;
        let outcome = match statfs::checked_path(&path) {
            Err(invalid) => Err(invalid),
            Ok(path) if !self.statfs.permits(&path) => Err(statfs::StatError::Denied(format!(
                "denied by the sandbox: no statfs or files grant covers {}",
                path.display()
            ))),
            Ok(path) => {
                let deadline = Instant::now()
                    .checked_add(Duration::from_millis(timeout_ms.into()))
                    .map_or(self.deadline, |d| d.min(self.deadline));
                let policy = self.statfs.needs_resolving().then(|| self.statfs.clone());
                statfs::stat(path, policy, deadline).await
            }
        };
        Ok(match outcome {
            Ok(stats) => Ok(bindings::filesystem_stats::FsStats {
                block_size: stats.block_size,
                blocks: stats.blocks,
                blocks_free: stats.blocks_free,
                blocks_available: stats.blocks_available,
                files: stats.files,
                files_free: stats.files_free,
                read_only: stats.read_only,
            }),
            Err(error) => {
                let code = match &error {
                    statfs::StatError::Denied(_) => {
                        tracing::warn!(
                            plugin = %who.plugin, job = %who.job, target = %who.target,
                            denied = %path, "capability denied: statfs of a path not granted"
                        );
                        Code::Denied
                    }
                    statfs::StatError::NotFound(_) => Code::NotFound,
                    statfs::StatError::Timeout(_) => Code::Timeout,
                    statfs::StatError::Invalid(_) => Code::Invalid,
                    statfs::StatError::Other(_) => Code::Other,
                };
                tracing::debug!(
                    plugin = %who.plugin, job = %who.job, target = %who.target,
                    path = %path, error = %error, "statfs failed"
                );
                Err((code, error.to_string()))
            }
        })
    }
}

impl bindings::host::Host for InvocationState {
    async fn log(&mut self, level: bindings::host::Level, message: String) -> wasmtime::Result<()> {
        use bindings::host::Level;
        let host = &mut self.host;
        host.log_lines += 1;
        if host.log_lines > limits::MAX_LOG_LINES_PER_INVOCATION {
            if host.log_lines == limits::MAX_LOG_LINES_PER_INVOCATION + 1 {
                tracing::warn!(plugin = %host.identity.plugin, job = %host.identity.job, "plugin log limit reached; dropping further lines of this invocation");
            }
            return Ok(());
        }
        let mut message = message;
        if message.len() > limits::MAX_LOG_LINE_BYTES {
            let mut cut = limits::MAX_LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let id = &host.identity;
        match level {
            Level::Trace => {
                tracing::trace!(plugin = %id.plugin, job = %id.job, target = %id.target, "{message}")
            }
            Level::Debug => {
                tracing::debug!(plugin = %id.plugin, job = %id.job, target = %id.target, "{message}")
            }
            Level::Info => {
                tracing::info!(plugin = %id.plugin, job = %id.job, target = %id.target, "{message}")
            }
            Level::Warn => {
                tracing::warn!(plugin = %id.plugin, job = %id.job, target = %id.target, "{message}")
            }
            Level::Error => {
                tracing::error!(plugin = %id.plugin, job = %id.job, target = %id.target, "{message}")
            }
        }
        Ok(())
    }

    async fn kv_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        let (state, plugin) = (self.host.state.clone(), self.host.identity.plugin.clone());
        let found = tokio::task::spawn_blocking(move || state.get(&plugin, &key)).await?;
        // A storage failure is the host's problem, not the plugin's: the
        // plugin sees "no value", the log says why.
        Ok(found.unwrap_or_else(|e| {
            tracing::error!(plugin = %self.host.identity.plugin, error = %e, "plugin state read failed");
            None
        }))
    }

    async fn kv_set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        if key.len() > limits::MAX_KV_KEY_BYTES {
            return Ok(Err(format!(
                "key is {} bytes; the cap is {}",
                key.len(),
                limits::MAX_KV_KEY_BYTES
            )));
        }
        if value.len() > limits::MAX_KV_VALUE_BYTES {
            return Ok(Err(format!(
                "value is {} bytes; the cap is {}",
                value.len(),
                limits::MAX_KV_VALUE_BYTES
            )));
        }
        let (state, plugin) = (self.host.state.clone(), self.host.identity.plugin.clone());
        Ok(tokio::task::spawn_blocking(move || state.set(&plugin, &key, &value)).await?)
    }

    async fn kv_delete(&mut self, key: String) -> wasmtime::Result<()> {
        let (state, plugin) = (self.host.state.clone(), self.host.identity.plugin.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || state.delete(&plugin, &key)).await? {
            tracing::error!(plugin = %self.host.identity.plugin, error = %e, "plugin state delete failed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_tells_files_modules_and_components_apart() {
        assert!(matches!(
            check_header(b"hello world"),
            Err(PrepareError::NotWasm)
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(PrepareError::CoreModule)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn stderr_summary_finds_the_panic_message() {
        let rust_panic = "thread '<unnamed>' panicked at src/lib.rs:9:5:\nboom on purpose\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            stderr_summary(rust_panic).as_deref(),
            Some("panicked: boom on purpose")
        );
        assert_eq!(
            stderr_summary("first\nmemory allocation of 1048576 bytes failed\n").as_deref(),
            Some("memory allocation of 1048576 bytes failed")
        );
        assert_eq!(stderr_summary("\n  \n"), None);
        let python = "Traceback (most recent call last):\n  File \"/0/app.py\", line 41, in probe\nKeyError: 'missing'\n\nthread '<unnamed>' (1) panicked at runtime/src/lib.rs:1293:29:\nPython function threw an unexpected exception\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            stderr_summary(python).as_deref(),
            Some("Python KeyError: 'missing' (/0/app.py, line 41, in probe)")
        );
        let javascript = "invalid variant tag value `undefined` (received `TypeError: can't access property \"field\" of null`) specified for `PluginError`\nStack:\n  export_probe@/tmp/x/sources/initializer.js:20932:17\n\nRedirecting call to abort() to mozalloc_abort\n";
        assert_eq!(
            stderr_summary(javascript).as_deref(),
            Some(
                "JavaScript threw TypeError: can't access property \"field\" of null, not a plugin error ({ tag, val })"
            )
        );
    }

    #[test]
    fn components_of_another_contract_version_are_named() {
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            other_contract_version(
                names(&["wasi:io/poll@0.2.12", "lookout:plugin/host@0.1.0", "probe"]).into_iter()
            ),
            Some(("lookout:plugin/host@0.1.0".to_string(), "0.1.0".to_string()))
        );
        let current = format!("lookout:plugin/icmp@{CONTRACT_VERSION}");
        assert_eq!(
            other_contract_version(
                names(&[&current, "describe", "wasi:cli/stdout@0.2.12"]).into_iter()
            ),
            None
        );
        let message = PrepareError::ContractVersion {
            found: "0.1.0".into(),
            item: "lookout:plugin/host@0.1.0".into(),
        }
        .to_string();
        assert!(
            message.contains("lookout:plugin@0.1.0") && message.contains("lookout:plugin@0.3.0"),
            "{message}"
        );
    }

    #[test]
    fn contract_version_is_the_wit_package_version() {
        let wit = include_str!("../../../wit/plugin.wit");
        assert!(
            wit.contains(&format!("package lookout:plugin@{CONTRACT_VERSION};")),
            "wit/plugin.wit and CONTRACT_VERSION disagree"
        );
        assert_eq!(
            DETECTION_EXPORT,
            format!("lookout:plugin/detection@{CONTRACT_VERSION}")
        );
    }

    #[test]
    fn plugin_is_told_a_timeout_under_the_host_deadline() {
        let limits = Limits {
            timeout: Duration::from_secs(10),
            ..Limits::default()
        };
        assert_eq!(plugin_timeout_ms(&limits), 9_500);
        let limits = Limits {
            timeout: Duration::from_secs(1),
            ..Limits::default()
        };
        assert_eq!(plugin_timeout_ms(&limits), 900);
    }
}
