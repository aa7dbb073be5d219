//! Write lookout plugins in Rust.
//!
//! A lookout plugin is a WebAssembly component built for `wasm32-wasip2`
//! that targets one world of `wit/plugin.wit`. With this crate a plugin is a
//! type implementing [`Probe`], [`Exporter`] or [`Notifier`], plus one
//! export macro. Here is a complete probe that checks a URL answers 2xx:
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//!
//! use lookout_plugin_sdk::{
//!     FailureReason, PluginError, PluginInfo, Probe, ProbeReport, TARGET, http, plugin_info,
//! };
//!
//! #[derive(serde::Deserialize, Default)]
//! #[serde(default, deny_unknown_fields)]
//! struct Config {
//!     /// Accepted statuses; empty means any 2xx.
//!     valid_status_codes: http::StatusCodes,
//! }
//!
//! struct UrlProbe;
//!
//! impl Probe for UrlProbe {
//!     type Config = Config;
//!
//!     fn describe() -> PluginInfo {
//!         plugin_info!("url-check")
//!             .description("Checks that a URL answers with an accepted status")
//!             .http([TARGET])
//!     }
//!
//!     fn probe(target: &str, config: Config, timeout: Duration) -> Result<ProbeReport, PluginError> {
//!         let started = Instant::now();
//!         let response = match http::Request::get(target).timeout(timeout).send() {
//!             Ok(response) => response,
//!             Err(error) => return Ok(ProbeReport::from(error)),
//!         };
//!         let report = if config.valid_status_codes.contains(response.status) {
//!             ProbeReport::success(started.elapsed())
//!         } else {
//!             let message = format!("status {} not in {}", response.status, config.valid_status_codes);
//!             ProbeReport::failure(FailureReason::Status, message).duration(started.elapsed())
//!         };
//!         Ok(report.with_sample("probe_http_status_code", response.status))
//!     }
//! }
//!
//! lookout_plugin_sdk::export_probe!(UrlProbe);
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip2`
//! (`cargo build --release --target wasm32-wasip2`); the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component to install.
//!
//! # What the SDK does for you
//!
//! - **Configuration.** The host passes a JSON string; the export macro
//!   parses it into `Self::Config` (an empty string reads as `{}`) and
//!   answers [`PluginError::Config`] with serde's message when it does not
//!   fit, without calling the plugin. See [`parse_config`], [`NoConfig`].
//! - **Standard samples.** A probe's report gets `probe_success` and
//!   `probe_duration_seconds` unless the plugin set them. A report without a
//!   duration gets the time `probe` took.
//! - **Timeouts.** The host's `timeout-ms` arrives as a [`Duration`]; HTTP
//!   requests made during the call default to the time left (see [`http`]).
//! - **Host services.** [`log`] writes to lookout's log, [`kv`] keeps state
//!   between calls, [`http`] sends requests the host may allow, [`net`]
//!   resolves names and opens TCP connections the host may allow, [`udp`]
//!   exchanges datagrams, [`icmp`] asks the host to ping (wasm has no raw
//!   sockets), [`fs_stats`] asks it for file-system sizes (WASI has no
//!   statfs), [`target`] splits `host:port` and URL credentials, and `tls`
//!   (feature `tls`) speaks TLS over a [`net`] connection with
//!   blackbox_exporter's certificate samples.
//! - **Notification texts.** [`template`] renders Alertmanager's default
//!   titles and subjects and a subset of its template language, for
//!   notifier plugins.
//!
//! # The sandbox
//!
//! A plugin can reach only what its [`PluginInfo`] asks for and the installer
//! granted: HTTP hosts, TCP/UDP addresses, read-only paths, environment
//! variables ([`Capabilities`]). A denied access is an ordinary error inside
//! the plugin (`FailureReason::Denied` from [`http`] and [`net`],
//! `PermissionDenied` from `std::net`, a missing file or variable from
//! `std::fs` and `std::env`). Prefer [`net`] to `std::net` for TCP: on
//! `wasm32-wasip2`, `std::net::TcpStream::connect_timeout` can report a
//! refused connection as established.
//! Memory, time and output are capped by the host; a plugin that traps,
//! panics or overruns is recorded as failed. A panic aborts the call: return
//! errors instead.
//!
//! # Raw bindings
//!
//! [`bindings`] holds what `wit-bindgen` generated for each world, with every
//! WASI interface mapped to the [`wasip2`] crate.

#[doc(hidden)]
#[path = "export.rs"]
pub mod __private;
pub mod bindings;
mod config;
pub mod detect;
pub mod encoding;
mod error;
pub mod fs_stats;
pub mod http;
pub mod icmp;
mod info;
pub mod kv;
pub mod log;
pub mod net;
mod notify;
mod report;
pub mod target;
pub mod template;
#[cfg(feature = "tls")]
pub mod tls;
pub mod udp;

use std::time::Duration;

use serde::de::DeserializeOwned;

pub use config::{NoConfig, parse_config};
pub use error::Error;
pub use info::{Capabilities, PluginInfo, TARGET};
pub use notify::{Alert, Delivery, Labels, Notification};
pub use report::{
    FailureReason, PROBE_DURATION_SECONDS, PROBE_SUCCESS, PluginError, ProbeReport, Sample,
    UnknownFailureReason,
};

/// A plugin of the `probe` world: checks a target and says whether it is
/// healthy. Export it with [`export_probe!`].
pub trait Probe {
    /// The plugin's configuration, parsed from the job's JSON.
    type Config: DeserializeOwned;

    /// What the plugin is and which capabilities it asks for.
    fn describe() -> PluginInfo;

    /// Probes `target` (a URL, `host:port` … as the plugin documents),
    /// finishing within `timeout`.
    ///
    /// A target that is down is `Ok` with a failed [`ProbeReport`]; `Err` is
    /// for an invocation that could not run (bad configuration, a plugin
    /// problem).
    fn probe(
        target: &str,
        config: Self::Config,
        timeout: Duration,
    ) -> Result<ProbeReport, PluginError>;
}

/// A plugin of the `exporter` world: collects metrics from a target. Export
/// it with [`export_exporter!`].
pub trait Exporter {
    /// The plugin's configuration, parsed from the job's JSON.
    type Config: DeserializeOwned;

    /// What the plugin is and which capabilities it asks for.
    fn describe() -> PluginInfo;

    /// Collects samples from `target`, finishing within `timeout`.
    fn collect(
        target: &str,
        config: Self::Config,
        timeout: Duration,
    ) -> Result<Vec<Sample>, PluginError>;
}

/// A plugin of the `detector` world: scores the points of one series and,
/// optionally, forecasts it. Export it with [`export_detector!`].
///
/// One value of the type serves one series. The host does not keep it
/// alive between batches: it calls [`restore`](Detector::restore) with what
/// [`save`](Detector::save) returned last time, feeds the new points to
/// [`observe`](Detector::observe), and saves again. Everything the detector
/// learned must be in the saved bytes ([`detect::StateWriter`]).
pub trait Detector: Sized + 'static {
    /// The detector's configuration (its sensitivity, windows …), parsed
    /// from the job's JSON.
    type Config: DeserializeOwned;

    /// What the plugin is. Detectors need no capabilities.
    fn describe() -> PluginInfo;

    /// A detector that has seen nothing yet.
    fn create(config: Self::Config) -> Result<Self, PluginError>;

    /// Scores `point` (points arrive in time order), then learns from it.
    fn observe(&mut self, point: detect::Point) -> detect::Verdict;

    /// Predicts the series `horizon_ms` after the last observed point, and
    /// when it reaches `threshold`. The default: this detector does not
    /// forecast.
    fn forecast(&self, horizon_ms: i64, threshold: Option<f64>) -> Option<detect::Forecast> {
        let _ = (horizon_ms, threshold);
        None
    }

    /// Everything the detector has learned.
    fn save(&self) -> Vec<u8>;

    /// The detector `save` described. State it cannot read is an `Err`;
    /// the host then starts the series afresh.
    fn restore(config: Self::Config, state: &[u8]) -> Result<Self, PluginError>;
}

/// A plugin of the `notifier` world: delivers alert notifications. Export it
/// with [`export_notifier!`].
pub trait Notifier {
    /// The plugin's configuration, parsed from the receiver's JSON.
    type Config: DeserializeOwned;

    /// What the plugin is and which capabilities it asks for.
    fn describe() -> PluginInfo;

    /// Delivers `notification`, finishing within `timeout`.
    fn notify(
        notification: Notification,
        config: Self::Config,
        timeout: Duration,
    ) -> Result<Delivery, PluginError>;
}

/// Exports a [`Probe`] as the component's `probe` world.
///
/// Use it once per crate, at module level: `export_probe!(MyProbe);`.
#[macro_export]
macro_rules! export_probe {
    ($plugin:ty) => {
        const _: () = {
            struct LookoutProbeExport;

            impl $crate::__private::probe::Guest for LookoutProbeExport {
                fn describe() -> $crate::__private::probe::PluginInfo {
                    $crate::__private::describe(<$plugin as $crate::Probe>::describe())
                }

                fn probe(
                    target: $crate::__private::String,
                    config: $crate::__private::String,
                    timeout_ms: u32,
                ) -> ::core::result::Result<
                    $crate::__private::probe::ProbeResult,
                    $crate::__private::probe::PluginError,
                > {
                    $crate::__private::run_probe::<$plugin>(target, config, timeout_ms)
                }
            }

            $crate::__private::probe::export!(
                LookoutProbeExport with_types_in $crate::__private::probe
            );
        };
    };
}

/// Exports an [`Exporter`] as the component's `exporter` world.
///
/// Use it once per crate, at module level: `export_exporter!(MyExporter);`.
#[macro_export]
macro_rules! export_exporter {
    ($plugin:ty) => {
        const _: () = {
            struct LookoutExporterExport;

            impl $crate::__private::exporter::Guest for LookoutExporterExport {
                fn describe() -> $crate::__private::exporter::PluginInfo {
                    $crate::__private::describe(<$plugin as $crate::Exporter>::describe())
                }

                fn collect(
                    target: $crate::__private::String,
                    config: $crate::__private::String,
                    timeout_ms: u32,
                ) -> ::core::result::Result<
                    $crate::__private::Vec<$crate::__private::exporter::Sample>,
                    $crate::__private::exporter::PluginError,
                > {
                    $crate::__private::run_collect::<$plugin>(target, config, timeout_ms)
                }
            }

            $crate::__private::exporter::export!(
                LookoutExporterExport with_types_in $crate::__private::exporter
            );
        };
    };
}

/// Exports a [`Detector`] as the component's `detector` world.
///
/// Use it once per crate, at module level: `export_detector!(MyDetector);`.
#[macro_export]
macro_rules! export_detector {
    ($plugin:ty) => {
        const _: () = {
            struct LookoutDetectorExport;

            impl $crate::__private::detector::Guest for LookoutDetectorExport {
                fn describe() -> $crate::__private::detector::PluginInfo {
                    $crate::__private::describe(<$plugin as $crate::Detector>::describe())
                }
            }

            impl $crate::__private::detection::Guest for LookoutDetectorExport {
                type Detector = $crate::__private::DetectorResource<$plugin>;
            }

            $crate::__private::detector::export!(
                LookoutDetectorExport with_types_in $crate::__private::detector
            );
        };
    };
}

/// Exports a [`Notifier`] as the component's `notifier` world.
///
/// Use it once per crate, at module level: `export_notifier!(MyNotifier);`.
#[macro_export]
macro_rules! export_notifier {
    ($plugin:ty) => {
        const _: () = {
            struct LookoutNotifierExport;

            impl $crate::__private::notifier::Guest for LookoutNotifierExport {
                fn describe() -> $crate::__private::notifier::PluginInfo {
                    $crate::__private::describe(<$plugin as $crate::Notifier>::describe())
                }

                fn notify(
                    notification: $crate::__private::notifier::Notification,
                    config: $crate::__private::String,
                    timeout_ms: u32,
                ) -> ::core::result::Result<
                    $crate::__private::notifier::Delivery,
                    $crate::__private::notifier::PluginError,
                > {
                    $crate::__private::run_notify::<$plugin>(notification, config, timeout_ms)
                }
            }

            $crate::__private::notifier::export!(
                LookoutNotifierExport with_types_in $crate::__private::notifier
            );
        };
    };
}
