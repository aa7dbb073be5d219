//! lookout: a monitoring host whose every probe, exporter, anomaly detector
//! and notifier is a sandboxed WebAssembly component.
//!
//! The binary (`lookout`, see [`cli`]) ties these modules together:
//!
//! - [`config`] reads the operator's TOML (jobs, limits, grants) with file:line errors;
//! - [`runtime`] is the only module that knows wasmtime: it validates, compiles,
//!   caches and invokes plugins under hard limits and deny-by-default grants;
//! - [`registry`] installs plugins (component file + sha256 + grants) into the data directory;
//! - [`scheduler`] runs every job on its schedule with jitter, deadlines,
//!   bounded concurrency and back-off;
//! - [`storage`] keeps results, plugin records and plugin key-value state in one redb file;
//! - [`telemetry`] counts what the host does and renders it as Prometheus text;
//! - [`blackbox`] answers blackbox_exporter's `/probe` with probe plugins;
//! - [`api`] is the only module that knows axum: the HTTP API.
//!
//! Data flows one way: scheduler tick → runtime invokes the plugin → the
//! result is committed to storage → only then counted and served.
//!
//! A minimal embedding, the same path `lookout run` takes:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use lookout::{model::{Grants, Limits}, registry::Registry, runtime::Invocation};
//! let registry = Registry::open(std::path::Path::new("/tmp/lookout-data"))?;
//! let plugin = registry.load("http")?;
//! let grants = registry.record("http")?.grants;
//! let result = registry.runtime().probe(&plugin, &Invocation {
//!     job: "adhoc",
//!     target: "http://127.0.0.1:8080/",
//!     config: "{}",
//!     grants: &grants,
//!     limits: &Limits::default(),
//! }).await;
//! println!("{result:?}");
//! # Ok(()) }
//! ```

pub mod alerting;
pub mod api;
pub mod blackbox;
pub mod cli;
pub mod config;
pub mod detection;
pub mod distribution;
pub mod ingest;
pub mod model;
pub mod query;
pub mod registry;
pub mod rules;
pub mod runtime;
pub mod scaffold;
pub mod scheduler;
pub mod signing;
pub mod storage;
pub mod telemetry;
