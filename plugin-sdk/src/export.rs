//! The glue the `export_*!` macros expand to: typed plugin traits in, WIT
//! types out. Public only so that the macros can reach it from the plugin's
//! crate; not part of the API.

use std::time::{Duration, Instant};

use crate::bindings::probe::lookout::plugin::types as wit;
use std::cell::RefCell;

use crate::{Detector, Exporter, Notifier, PluginInfo, Probe, detect, http, parse_config};

pub use crate::bindings::detector::exports::lookout::plugin::detection;
pub use crate::bindings::{detector, exporter, notifier, probe};
pub use std::string::String;
pub use std::vec::Vec;

/// Sets the SDK's notion of "the current invocation" for the duration of a
/// plugin call; cleared on drop, panics included.
struct Invocation;

impl Invocation {
    fn start(started: Instant, timeout: Duration) -> Self {
        http::set_invocation_deadline(started.checked_add(timeout));
        Invocation
    }
}

impl Drop for Invocation {
    fn drop(&mut self) {
        http::set_invocation_deadline(None);
    }
}

fn timeout(timeout_ms: u32) -> Duration {
    Duration::from_millis(timeout_ms.into())
}

pub fn describe(info: PluginInfo) -> wit::PluginInfo {
    info.into()
}

pub fn run_probe<P: Probe>(
    target: String,
    config: String,
    timeout_ms: u32,
) -> Result<wit::ProbeResult, wit::PluginError> {
    let config = parse_config::<P::Config>(&config)?;
    let timeout = timeout(timeout_ms);
    let started = Instant::now();
    let _invocation = Invocation::start(started, timeout);
    let report = P::probe(&target, config, timeout)?;
    Ok(report.into_wit(started.elapsed()))
}

pub fn run_collect<E: Exporter>(
    target: String,
    config: String,
    timeout_ms: u32,
) -> Result<Vec<wit::Sample>, wit::PluginError> {
    let config = parse_config::<E::Config>(&config)?;
    let timeout = timeout(timeout_ms);
    let _invocation = Invocation::start(Instant::now(), timeout);
    let samples = E::collect(&target, config, timeout)?;
    Ok(samples.into_iter().map(Into::into).collect())
}

pub fn run_notify<N: Notifier>(
    notification: wit::Notification,
    config: String,
    timeout_ms: u32,
) -> Result<wit::Delivery, wit::PluginError> {
    let config = parse_config::<N::Config>(&config)?;
    let timeout = timeout(timeout_ms);
    let _invocation = Invocation::start(Instant::now(), timeout);
    let delivery = N::notify(notification.into(), config, timeout)?;
    Ok(delivery.into())
}

/// The `detector` resource around a plugin's [`Detector`]: the WIT methods
/// take `&self`, the trait's `observe` takes `&mut self`.
pub struct DetectorResource<D>(RefCell<D>);

impl<D: Detector> DetectorResource<D> {
    fn handle(detector: D) -> detection::Detector {
        detection::Detector::new(DetectorResource(RefCell::new(detector)))
    }
}

impl<D: Detector> detection::GuestDetector for DetectorResource<D> {
    fn create(config: String) -> Result<detection::Detector, wit::PluginError> {
        let config = parse_config::<D::Config>(&config)?;
        Ok(Self::handle(D::create(config)?))
    }

    fn observe(&self, points: Vec<wit::Point>) -> Vec<wit::Verdict> {
        let mut detector = self.0.borrow_mut();
        points
            .into_iter()
            .map(|p| {
                let verdict = detector.observe(detect::Point {
                    timestamp_ms: p.timestamp_ms,
                    value: p.value,
                });
                wit::Verdict {
                    timestamp_ms: p.timestamp_ms,
                    score: verdict.score,
                    // A score still learning is never an anomaly.
                    anomalous: verdict.anomalous && !verdict.score.is_nan(),
                }
            })
            .collect()
    }

    fn forecast(&self, horizon_ms: i64, threshold: Option<f64>) -> Option<detection::Forecast> {
        self.0
            .borrow()
            .forecast(horizon_ms, threshold)
            .map(|f| detection::Forecast {
                value: f.value,
                seconds_to_threshold: f.seconds_to_threshold,
            })
    }

    fn save(&self) -> Vec<u8> {
        self.0.borrow().save()
    }

    fn restore(config: String, state: Vec<u8>) -> Result<detection::Detector, wit::PluginError> {
        let config = parse_config::<D::Config>(&config)?;
        Ok(Self::handle(D::restore(config, &state)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Delivery, FailureReason, NoConfig, Notification, PluginError, ProbeReport, Sample,
    };

    struct Echo;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EchoConfig {
        fail: bool,
    }

    impl Probe for Echo {
        type Config = EchoConfig;

        fn describe() -> PluginInfo {
            PluginInfo::new("echo", "0.0.0")
        }

        fn probe(
            target: &str,
            config: EchoConfig,
            timeout: Duration,
        ) -> Result<ProbeReport, PluginError> {
            if target.is_empty() {
                return Err(PluginError::permanent("no target"));
            }
            Ok(if config.fail {
                ProbeReport::failure(FailureReason::Other, format!("{target} {timeout:?}"))
            } else {
                ProbeReport::success(timeout)
            })
        }
    }

    impl Exporter for Echo {
        type Config = NoConfig;

        fn describe() -> PluginInfo {
            PluginInfo::new("echo", "0.0.0")
        }

        fn collect(target: &str, _: NoConfig, _: Duration) -> Result<Vec<Sample>, PluginError> {
            Ok(vec![Sample::new("up", 1).label("target", target)])
        }
    }

    impl Notifier for Echo {
        type Config = NoConfig;

        fn describe() -> PluginInfo {
            PluginInfo::new("echo", "0.0.0")
        }

        fn notify(n: Notification, _: NoConfig, _: Duration) -> Result<Delivery, PluginError> {
            Ok(Delivery::new(n.receiver).remote_id("1"))
        }
    }

    #[test]
    fn probe_adapter_parses_config_and_converts() {
        let result = run_probe::<Echo>("t".into(), r#"{"fail": false}"#.into(), 1500).unwrap();
        assert!(result.success);
        assert_eq!(result.duration_seconds, 1.5);

        let result = run_probe::<Echo>("t".into(), r#"{"fail": true}"#.into(), 20).unwrap();
        assert!(!result.success);
        assert_eq!(result.message, "t 20ms");

        let Err(wit::PluginError::Config(message)) = run_probe::<Echo>("t".into(), "".into(), 1)
        else {
            panic!("missing field must be a config error");
        };
        assert!(message.contains("missing field `fail`"), "{message}");

        assert!(matches!(
            run_probe::<Echo>(String::new(), r#"{"fail": true}"#.into(), 1),
            Err(wit::PluginError::Permanent(_))
        ));
    }

    #[test]
    fn exporter_and_notifier_adapters_convert() {
        let samples = run_collect::<Echo>("a:1".into(), String::new(), 1).unwrap();
        assert_eq!(samples[0].labels, [("target".to_owned(), "a:1".to_owned())]);
        assert!(matches!(
            run_collect::<Echo>("a:1".into(), r#"{"x":1}"#.into(), 1),
            Err(wit::PluginError::Config(_))
        ));

        let notification = wit::Notification {
            receiver: "ops".into(),
            status: "firing".into(),
            alerts: vec![],
            group_labels: vec![],
            common_labels: vec![],
            common_annotations: vec![],
            external_url: String::new(),
            group_key: String::new(),
            truncated_alerts: 0,
        };
        let delivery = run_notify::<Echo>(notification, "{}".into(), 1).unwrap();
        assert_eq!(delivery.message, "ops");
        assert_eq!(delivery.remote_id.as_deref(), Some("1"));
    }
}
