//! blackbox_exporter's `/probe?target=…&module=…`, answered by lookout's
//! probe plugins, so Prometheus scrape configs written for blackbox work
//! against lookout unchanged.
//!
//! What blackbox_exporter does, and so this does: the module defaults to
//! `http_2xx`; the probe's deadline is the module's timeout, or Prometheus'
//! `X-Prometheus-Scrape-Timeout-Seconds` minus half a second when that is
//! shorter (120 s without the header); the answer is Prometheus text with
//! the prober's metrics, `probe_success` and `probe_duration_seconds`, all
//! gauges — plus, on a failed probe, lookout's `probe_failure_reason{reason}`
//! 1, which blackbox_exporter never says. A missing target or an unknown module is a 400 with blackbox's
//! wording. The probe is not stored: the scraper stores what it scrapes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::blackbox::{BlackboxModule, BlackboxModules};
use crate::model::{Grants, Limits, ProbeResult, Sample};
use crate::registry::Registry;
use crate::runtime::{Invocation, Plugin, Runtime, limits};

/// The module blackbox_exporter runs when the request names none.
pub const DEFAULT_MODULE: &str = "http_2xx";

/// blackbox_exporter's deadline without Prometheus' header.
const DEFAULT_SCRAPE_TIMEOUT: f64 = 120.0;

/// blackbox_exporter's `--timeout-offset`: time left for the scrape itself.
const TIMEOUT_OFFSET: f64 = 0.5;

/// The modules `/probe` can run, each with its plugin when installed.
#[derive(Default)]
pub struct ProbeEndpoint {
    runtime: Option<Arc<Runtime>>,
    modules: BTreeMap<String, ModuleProbe>,
}

struct ModuleProbe {
    module: BlackboxModule,
    /// The plugin and its install grants, or why the module cannot run.
    plugin: Result<(Plugin, Grants), String>,
}

/// Why a request got no probe at all.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ProbeRequestError {
    #[error("Target parameter is missing")]
    MissingTarget,
    #[error("Unknown module {0:?}")]
    UnknownModule(String),
    #[error("Failed to parse timeout from Prometheus header: {0}")]
    BadScrapeTimeout(String),
    /// The module exists but its plugin is not installed (or failed to load).
    #[error("{0}")]
    Unavailable(String),
}

/// One probe's outcome and its rendering.
pub struct ProbeAnswer {
    pub result: ProbeResult,
    /// Prometheus text format, as blackbox_exporter answers.
    pub exposition: String,
}

impl ProbeEndpoint {
    /// Loads each module's plugin from the registry. A module whose plugin
    /// is missing stays listed and answers with why; the rest still work.
    pub fn new(modules: &BlackboxModules, registry: &Registry) -> ProbeEndpoint {
        let mut loaded: BTreeMap<String, Result<(Plugin, Grants), String>> = BTreeMap::new();
        let modules = modules
            .modules
            .iter()
            .map(|(name, module)| {
                let plugin = loaded
                    .entry(module.plugin.clone())
                    .or_insert_with(|| load_prober(registry, &module.plugin))
                    .clone()
                    .map_err(|e| {
                        format!("module `{name}` ({}:{}): {e}", modules.source, module.line)
                    });
                if let Err(e) = &plugin {
                    tracing::warn!("/probe cannot run {e}");
                }
                (
                    name.clone(),
                    ModuleProbe {
                        module: module.clone(),
                        plugin,
                    },
                )
            })
            .collect();
        ProbeEndpoint {
            runtime: Some(registry.runtime().clone()),
            modules,
        }
    }

    /// Runs `module` (default `http_2xx`) against `target`.
    pub async fn probe(
        &self,
        module: Option<&str>,
        target: Option<&str>,
        scrape_timeout: Option<&str>,
    ) -> Result<ProbeAnswer, ProbeRequestError> {
        let name = module.filter(|m| !m.is_empty()).unwrap_or(DEFAULT_MODULE);
        let probe = self
            .modules
            .get(name)
            .ok_or_else(|| ProbeRequestError::UnknownModule(name.to_string()))?;
        // blackbox_exporter's order of checks: module, timeout, target.
        let timeout = deadline(probe.module.timeout, scrape_timeout)?;
        let target = target
            .filter(|t| !t.is_empty())
            .ok_or(ProbeRequestError::MissingTarget)?;
        let (plugin, grants) = probe
            .plugin
            .as_ref()
            .map_err(|e| ProbeRequestError::Unavailable(e.clone()))?;
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| ProbeRequestError::Unavailable("no plugin runtime".into()))?;
        let limits = Limits {
            timeout,
            ..Limits::default()
        };
        let job = format!("probe/{name}");
        let inv = Invocation {
            job: &job,
            target,
            config: &probe.module.config_json,
            grants,
            limits: &limits,
        };
        let started = Instant::now();
        let result = runtime
            .probe(plugin, &inv)
            .await
            .unwrap_or_else(|e| ProbeResult {
                // As blackbox_exporter when its prober errs: a failed probe.
                success: false,
                duration_seconds: started.elapsed().as_secs_f64(),
                failure_reason: Some(e.kind.as_str().to_string()),
                message: e.message,
                samples: Vec::new(),
            });
        if !result.success {
            tracing::debug!(module = name, target, reason = ?result.failure_reason, "probe failed: {}", result.message);
        }
        let exposition = render(&result, started.elapsed().as_secs_f64());
        Ok(ProbeAnswer { result, exposition })
    }
}

fn load_prober(registry: &Registry, name: &str) -> Result<(Plugin, Grants), String> {
    let record = registry
        .record(name)
        .map_err(|_| format!("prober `{name}` needs plugin `{name}`, which is not installed"))?;
    if record.world != crate::model::World::Probe {
        return Err(format!(
            "plugin `{name}` is a {} plugin, not a probe",
            record.world
        ));
    }
    let plugin = registry.load(name).map_err(|e| e.to_string())?;
    Ok((plugin, record.grants))
}

/// blackbox_exporter's `getTimeout`: the scrape's timeout less the offset,
/// or the module's when that is shorter.
fn deadline(module: Option<Duration>, header: Option<&str>) -> Result<Duration, ProbeRequestError> {
    let scrape = match header.map(str::trim).filter(|h| !h.is_empty()) {
        Some(text) => text
            .parse::<f64>()
            .map_err(|e| ProbeRequestError::BadScrapeTimeout(format!("{text:?}: {e}")))?,
        None => 0.0,
    };
    let scrape = if scrape == 0.0 {
        DEFAULT_SCRAPE_TIMEOUT
    } else {
        scrape
    };
    let most = scrape - TIMEOUT_OFFSET;
    let seconds = match module.map(|d| d.as_secs_f64()) {
        Some(m) if m < most || most < 0.0 => m,
        _ => most,
    };
    // A deadline the sandbox can keep: at least 1 ms, at most its maximum.
    Ok(Duration::from_secs_f64(seconds.max(0.001)).min(limits::MAX_TIMEOUT))
}

/// blackbox_exporter's help texts for the metrics every prober shares;
/// others get a generic one.
fn help(name: &str) -> &'static str {
    match name {
        "probe_success" => "Displays whether or not the probe was a success",
        "probe_duration_seconds" => "Returns how long the probe took to complete in seconds",
        "probe_dns_lookup_time_seconds" => "Returns the time taken for probe dns lookup in seconds",
        "probe_ip_protocol" => "Specifies whether probe ip protocol is IP4 or IP6",
        "probe_ip_addr_hash" => {
            "Specifies the hash of IP address. It's useful to detect if the IP address changes."
        }
        "probe_http_status_code" => "Response HTTP status code",
        "probe_http_content_length" => "Length of http content response",
        "probe_http_redirects" => "The number of redirects",
        "probe_http_ssl" => "Indicates if SSL was used for the final redirect",
        "probe_http_version" => "Returns the version of HTTP of the probe response",
        "probe_http_duration_seconds" => {
            "Duration of http request by phase, summed over all redirects"
        }
        "probe_failed_due_to_regex" => "Indicates if probe failed due to regex",
        "probe_ssl_earliest_cert_expiry" => "Returns last SSL chain expiry in unixtime",
        "probe_failure_reason" => {
            "Why the probe failed (dns, connect, tls, timeout, status, body, header …)"
        }
        _ => "Measured by the lookout probe plugin",
    }
}

/// The probe as Prometheus text: each metric family once, `# HELP` and
/// `# TYPE gauge` first, the result's `probe_success` and
/// `probe_duration_seconds` when the plugin did not report them.
fn render(result: &ProbeResult, duration_seconds: f64) -> String {
    let mut families: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in &result.samples {
        families.entry(s.name.as_str()).or_default().push(s);
    }
    let success = Sample {
        name: "probe_success".into(),
        labels: Vec::new(),
        value: if result.success { 1.0 } else { 0.0 },
        timestamp_ms: None,
    };
    let duration = Sample {
        name: "probe_duration_seconds".into(),
        labels: Vec::new(),
        value: duration_seconds,
        timestamp_ms: None,
    };
    // What blackbox_exporter does not say: why a failed probe failed.
    let reason = result
        .failure_reason
        .as_ref()
        .filter(|_| !result.success)
        .map(|r| Sample {
            name: "probe_failure_reason".into(),
            labels: vec![("reason".into(), r.clone())],
            value: 1.0,
            timestamp_ms: None,
        });
    if let Some(reason) = &reason {
        families
            .entry("probe_failure_reason")
            .or_default()
            .push(reason);
    }
    families
        .entry("probe_success")
        .or_insert_with(|| vec![&success]);
    families
        .entry("probe_duration_seconds")
        .or_insert_with(|| vec![&duration]);
    let mut out = String::with_capacity(64 * (families.len() + 4));
    for (name, samples) in families {
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} gauge", help(name));
        for s in samples {
            out.push_str(name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", lookout_expfmt::escape_label_value(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", lookout_expfmt::format_value(s.value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_blackbox_exporters() {
        let five = Some(Duration::from_secs(5));
        assert_eq!(deadline(five, None).unwrap(), Duration::from_secs(5));
        assert_eq!(
            deadline(five, Some("3")).unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(deadline(five, Some("10")).unwrap(), Duration::from_secs(5));
        assert_eq!(
            deadline(None, Some("10")).unwrap(),
            Duration::from_millis(9500)
        );
        assert!(matches!(
            deadline(five, Some("soon")),
            Err(ProbeRequestError::BadScrapeTimeout(_))
        ));
        assert!(deadline(None, None).unwrap() <= limits::MAX_TIMEOUT);
    }

    #[test]
    fn requests_are_checked_in_blackbox_exporters_order() {
        let module = BlackboxModule {
            name: "tcp_connect".into(),
            plugin: "tcp".into(),
            timeout: None,
            config_json: "{}".into(),
            line: 3,
        };
        let endpoint = ProbeEndpoint {
            runtime: None,
            modules: BTreeMap::from([(
                "tcp_connect".to_string(),
                ModuleProbe {
                    module,
                    plugin: Err("plugin `tcp` is not installed".into()),
                },
            )]),
        };
        let block_on = |f| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(f)
        };
        let run = |module, target, timeout| block_on(endpoint.probe(module, target, timeout)).err();
        assert_eq!(
            run(None, Some("x"), None),
            Some(ProbeRequestError::UnknownModule("http_2xx".into()))
        );
        assert!(matches!(
            run(Some("tcp_connect"), None, Some("x")),
            Some(ProbeRequestError::BadScrapeTimeout(_))
        ));
        assert_eq!(
            run(Some("tcp_connect"), None, None),
            Some(ProbeRequestError::MissingTarget)
        );
        assert_eq!(
            run(Some("tcp_connect"), Some("a:1"), None),
            Some(ProbeRequestError::Unavailable(
                "plugin `tcp` is not installed".into()
            ))
        );
    }

    #[test]
    fn the_answer_is_prometheus_text_with_gauges_and_escaped_labels() {
        let result = ProbeResult {
            success: false,
            duration_seconds: 0.5,
            failure_reason: Some("status".into()),
            message: String::new(),
            samples: vec![
                Sample {
                    name: "probe_http_status_code".into(),
                    labels: Vec::new(),
                    value: 404.0,
                    timestamp_ms: None,
                },
                Sample {
                    name: "probe_expect_info".into(),
                    labels: vec![("banner".into(), "a\"b\\c\nd".into())],
                    value: 1.0,
                    timestamp_ms: None,
                },
            ],
        };
        let text = render(&result, 0.25);
        assert!(
            text.contains("# TYPE probe_success gauge\nprobe_success 0\n"),
            "{text}"
        );
        assert!(text.contains("probe_duration_seconds 0.25\n"), "{text}");
        assert!(text.contains("probe_http_status_code 404\n"), "{text}");
        assert!(
            text.contains("probe_failure_reason{reason=\"status\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(r#"probe_expect_info{banner="a\"b\\c\nd"} 1"#),
            "{text}"
        );
        let parsed = lookout_expfmt::parse(&text, lookout_expfmt::Format::PrometheusText).unwrap();
        assert_eq!(parsed.samples.len(), 5);
    }
}
