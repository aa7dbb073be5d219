//! The Alertmanager configs lookout must take unchanged
//! (shared/fixtures/seed-configs): one loads and routes, one is refused.

use lookout_alerting::config::IntegrationKind;
use lookout_alerting::parse_config_with_env;

use crate::support::{Sim, alert, ls, resolved, test_env};

/// The seed file's text, or `None` outside CI when shared/ is absent.
pub fn seed(name: &str) -> Option<String> {
    // The repository's shared/ sits beside the main checkout.
    let path = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../../../shared/fixtures/seed-configs")
    .join(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "seed config {} missing in CI: {e}",
                path.display()
            );
            None
        }
    }
}

#[test]
fn slack_email_config_loads_and_routes_by_severity() {
    let Some(text) = seed("alertmanager-slack-email.yml") else {
        return;
    };
    let config = parse_config_with_env(&text, "alertmanager-slack-email.yml", &test_env)
        .unwrap_or_else(|e| panic!("{e}"));

    let receivers_of = |labels: &[(&str, &str)]| -> Vec<String> {
        config
            .route
            .match_routes(&ls(labels))
            .into_iter()
            .map(|r| config.route.node(r).opts.receiver.clone())
            .collect()
    };
    assert_eq!(
        receivers_of(&[("alertname", "MeshDown"), ("severity", "critical")]),
        ["critical-alerts"]
    );
    assert_eq!(
        receivers_of(&[("alertname", "HighLatency"), ("severity", "warning")]),
        ["warning-alerts"]
    );
    assert_eq!(
        receivers_of(&[("alertname", "Info"), ("severity", "info")]),
        ["default"]
    );
    assert_eq!(receivers_of(&[("alertname", "NoSeverity")]), ["default"]);

    // Inherited options: group_by, 10s/10s/12h.
    let critical = config.route.match_routes(&ls(&[("severity", "critical")]))[0];
    let opts = &config.route.node(critical).opts;
    assert_eq!(opts.group_wait.as_secs(), 10);
    assert_eq!(opts.group_interval.as_secs(), 10);
    assert_eq!(opts.repeat_interval.as_secs(), 12 * 3600);

    // ${SLACK_WEBHOOK_URL} and ${SMTP_PASSWORD} came from the environment.
    let crit = config.receiver("critical-alerts").unwrap();
    assert_eq!(
        crit.slack_configs[0].api_url.as_ref().unwrap().expose(),
        "https://hooks.slack.com/services/T000/B000/XXX"
    );
    assert_eq!(
        crit.email_configs[0]
            .auth_password
            .as_ref()
            .unwrap()
            .expose(),
        "smtp-secret"
    );
    assert_eq!(crit.email_configs[0].smarthost, "smtp.example.com:587");
    // Kept byte for byte, mojibake included.
    assert!(
        crit.slack_configs[0]
            .title
            .ends_with("üö® CRITICAL: x0tta6bl4")
    );
    let kinds: Vec<IntegrationKind> = crit.integrations().iter().map(|(i, _)| i.kind).collect();
    assert_eq!(kinds, [IntegrationKind::Email, IntegrationKind::Slack]);
    assert_eq!(config.global.resolve_timeout.as_secs(), 300);
}

#[test]
fn slack_email_config_without_its_environment_names_the_variable() {
    let Some(text) = seed("alertmanager-slack-email.yml") else {
        return;
    };
    let err = parse_config_with_env(&text, "alertmanager-slack-email.yml", &|_| None).unwrap_err();
    assert_eq!(err.line, 3);
    assert!(err.message.contains("SLACK_WEBHOOK_URL"), "{err}");
}

#[test]
fn slack_email_config_notifies_the_right_receivers_in_time() {
    let Some(text) = seed("alertmanager-slack-email.yml") else {
        return;
    };
    let mut sim = Sim::new(&text);
    sim.insert(alert(
        &[
            ("alertname", "MeshDown"),
            ("severity", "critical"),
            ("cluster", "eu"),
            ("service", "mesh"),
        ],
        0.0,
    ));
    sim.insert(alert(
        &[
            ("alertname", "HighLatency"),
            ("severity", "warning"),
            ("cluster", "eu"),
            ("service", "api"),
        ],
        0.0,
    ));
    sim.run_to(9.0);
    assert!(sim.sent.is_empty(), "group_wait is 10s");
    sim.run_to(10.0);
    let mut targets: Vec<String> = sim.sent.iter().map(|s| s.target()).collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            "critical-alerts/email[0]",
            "critical-alerts/slack[0]",
            "warning-alerts/slack[0]"
        ]
    );

    // Resolution: slack and email default to send_resolved: false, so the
    // group is closed without a notification.
    sim.run_to(15.0);
    sim.insert(resolved(
        &[
            ("alertname", "MeshDown"),
            ("severity", "critical"),
            ("cluster", "eu"),
            ("service", "mesh"),
        ],
        0.0,
        15.0,
    ));
    sim.run_to(60.0);
    assert_eq!(sim.sent.len(), 3);
    assert_eq!(sim.d.groups().len(), 1, "the resolved group is gone");
}

#[test]
fn severity_routes_config_is_refused_naming_default() {
    let Some(text) = seed("alertmanager-severity-routes.yml") else {
        return;
    };
    let err =
        parse_config_with_env(&text, "alertmanager-severity-routes.yml", &test_env).unwrap_err();
    assert_eq!(err.message, r#"undefined receiver "default" used in route"#);
    assert_eq!(err.line, 6);
    assert_eq!(
        err.to_string(),
        r#"alertmanager-severity-routes.yml:6: undefined receiver "default" used in route"#
    );
}
