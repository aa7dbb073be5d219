//! The notifier plugins (`webhook`, `slack`, `pagerduty`, `email`) through
//! `lookout notify`, each against a real receiver on 127.0.0.1 that records
//! exactly what arrived: an HTTP server written here, and for mail an SMTP
//! server in Python (`aiosmtpd`) with STARTTLS on a certificate the test
//! makes with `openssl`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::support::{Lookout, Result};

/// SHA-256 of [`GROUP_KEY`] in hex (`printf %s "$GROUP_KEY" | sha256sum`):
/// the PagerDuty dedup key of the group. Pinned, because a dedup key that
/// changes between versions would open a second incident for one group.
const GROUP_KEY_SHA256: &str = "af94c9e8f6a3043625e36c6f472fe6be85ac23a9117184ee4cb7b4ad7401a47e";
const GROUP_KEY: &str = r#"{}:{alertname="Down"}"#;

/// A notification as the host hands it to a notifier: two alerts of one
/// group, one still firing, one resolved.
fn notification() -> Value {
    json!({
        "receiver": "team ops",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Down", "instance": "a:80", "job": "web"},
                "annotations": {"summary": "a:80 is down", "runbook": "https://runbooks/down"},
                "startsAt": "2024-05-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://lookout:9090/graph?g0.expr=up+%3D%3D+0",
                "fingerprint": "a1b2c3d4e5f60718"
            },
            {
                "status": "resolved",
                "labels": {"alertname": "Down", "instance": "b:80", "job": "web"},
                "annotations": {"summary": "b:80 is down"},
                "startsAt": "2024-05-01T09:00:00Z",
                "endsAt": "2024-05-01T09:30:00Z",
                "generatorURL": "http://lookout:9090/graph?g0.expr=up+%3D%3D+0",
                "fingerprint": "0f1e2d3c4b5a6978"
            }
        ],
        "groupLabels": {"alertname": "Down"},
        "commonLabels": {"alertname": "Down", "job": "web"},
        "commonAnnotations": {},
        "externalURL": "http://lookout:9090",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": 0
    })
}

/// The same group once every alert is resolved.
fn resolved_notification() -> Value {
    let mut n = notification();
    n["status"] = json!("resolved");
    n["alerts"][0]["status"] = json!("resolved");
    n["alerts"][0]["endsAt"] = json!("2024-05-01T10:20:00Z");
    n
}

/// A data directory with `stem`'s plugin installed and the notifications
/// written beside it.
struct Setup {
    lookout: Lookout,
    firing: PathBuf,
    resolved: PathBuf,
}

impl Setup {
    fn new(stem: &str) -> Result<Setup> {
        let lookout = Lookout::new();
        lookout.install(stem)?;
        let firing = lookout.data.path().join("firing.json");
        let resolved = lookout.data.path().join("resolved.json");
        std::fs::write(&firing, notification().to_string())?;
        std::fs::write(&resolved, resolved_notification().to_string())?;
        Ok(Setup {
            lookout,
            firing,
            resolved,
        })
    }

    /// `lookout notify <plugin> --notification <file> --config <config>
    /// <grant…>`.
    fn notify(&self, plugin: &str, file: &Path, config: &Value, grants: &[&str]) -> Output {
        let config = config.to_string();
        let mut args = vec![
            "notify",
            plugin,
            "--notification",
            file.to_str().unwrap(),
            "--config",
            &config,
        ];
        args.extend_from_slice(grants);
        self.lookout.run(&args)
    }
}

/// Asserts `lookout notify` delivered; returns its stdout.
fn delivered(out: &Output) -> Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "delivery failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(stdout.starts_with("delivered: "), "{stdout}");
    Ok(stdout)
}

/// Asserts `lookout notify` failed with a plugin error of `kind`
/// (`transient`, `permanent`); returns stderr.
fn failed(out: &Output, kind: &str) -> Result<String> {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(!out.status.success(), "delivery should fail ({kind})");
    ensure!(
        stderr.contains(&format!("(plugin_{kind})")),
        "expected a {kind} error: {stderr}"
    );
    Ok(stderr)
}

// --- An HTTP receiver that records requests -------------------------------

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    pub(crate) path: String,
    /// Lower-cased names.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Vec<u8>,
    /// When the request was read in full.
    pub(crate) at: std::time::Instant,
    /// The status it was answered with.
    pub(crate) status: u16,
}

impl Recorded {
    pub(crate) fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("body is not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// What the receiver answers.
#[derive(Clone)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

/// An HTTP/1.1 server on 127.0.0.1:0 that records every request and answers
/// them all alike; stops on drop.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    answer: Arc<Mutex<Answer>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub(crate) fn start(status: u16, content_type: &str, body: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(Answer {
            status,
            content_type: content_type.into(),
            body: body.into(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, ans, st) = (requests.clone(), answer.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let answer = ans.lock().unwrap().clone();
                        let _ = serve(conn, &answer, &reqs);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver {
            addr,
            requests,
            answer,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `--grant-http` for this receiver.
    fn grant(&self) -> String {
        self.addr.to_string()
    }

    pub(crate) fn answer(&self, status: u16, content_type: &str, body: &str) {
        *self.answer.lock().unwrap() = Answer {
            status,
            content_type: content_type.into(),
            body: body.into(),
        };
    }

    /// Bodies received so far, as JSON, without taking them.
    pub(crate) fn bodies(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| r.json().ok())
            .collect()
    }

    /// The requests received so far, without taking them.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests received so far; fails unless there are exactly `n`.
    fn take(&self, n: usize) -> Result<Vec<Recorded>> {
        let requests = std::mem::take(&mut *self.requests.lock().unwrap());
        ensure!(
            requests.len() == n,
            "expected {n} requests, got {requests:#?}"
        );
        Ok(requests)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request from `conn`, records it and answers it. Recorded
/// first: a client may act on the answer (exit, count the delivery) before
/// this thread runs again.
fn serve(mut conn: TcpStream, answer: &Answer, requests: &Mutex<Vec<Recorded>>) -> Result {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().context("no method")?.to_owned();
    let path = parts.next().context("no path")?.to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').context("bad header")?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let mut body = Vec::new();
    if let Some(length) = headers.get("content-length") {
        body.resize(length.parse()?, 0);
        reader.read_exact(&mut body)?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16)?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    requests.lock().unwrap().push(Recorded {
        method,
        path,
        headers,
        body,
        at: std::time::Instant::now(),
        status: answer.status,
    });
    write!(
        conn,
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        answer.status,
        answer.content_type,
        answer.body.len(),
        answer.body
    )?;
    conn.flush()?;
    Ok(())
}

/// Status answers and what kind of error each must give.
fn check_error_classes(
    setup: &Setup,
    plugin: &str,
    receiver: &Receiver,
    config: &Value,
    cases: &[(u16, &str)],
) -> Result {
    for &(status, kind) in cases {
        receiver.answer(status, "text/plain", "receiver says no");
        let out = setup.notify(
            plugin,
            &setup.firing,
            config,
            &["--grant-http", &receiver.grant()],
        );
        let stderr = failed(&out, kind).with_context(|| format!("status {status}"))?;
        assert!(
            stderr.contains(&format!("unexpected status code {status}")),
            "{stderr}"
        );
        receiver.take(1)?;
    }
    Ok(())
}

// --- webhook ----------------------------------------------------------------

#[test]
fn webhook_posts_alertmanagers_v4_json() -> Result {
    let setup = Setup::new("lookout_plugin_webhook")?;
    let receiver = Receiver::start(200, "text/plain", "");
    let config = json!({
        "url": receiver.url("/alerts?team=ops"),
        "http_config": {"basic_auth": {"username": "lookout", "password": "pw"}},
        "send_resolved": true
    });
    let out = setup.notify(
        "webhook",
        &setup.firing,
        &config,
        &["--grant-http", &receiver.grant()],
    );
    delivered(&out)?;
    let [request] = <[Recorded; 1]>::try_from(receiver.take(1)?).unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/alerts?team=ops");
    assert_eq!(request.headers["content-type"], "application/json");
    assert!(
        request.headers["user-agent"].starts_with("lookout/"),
        "{:?}",
        request.headers
    );
    // base64("lookout:pw")
    assert_eq!(request.headers["authorization"], "Basic bG9va291dDpwdw==");
    let mut expected = notification();
    expected["version"] = json!("4");
    assert_eq!(request.json()?, expected);

    // max_alerts keeps the first alerts and counts the others.
    let config = json!({"url": receiver.url("/"), "max_alerts": 1});
    delivered(&setup.notify(
        "webhook",
        &setup.firing,
        &config,
        &["--grant-http", &receiver.grant()],
    ))?;
    let body = receiver.take(1)?[0].json()?;
    let mut expected = notification();
    expected["version"] = json!("4");
    expected["alerts"].as_array_mut().unwrap().truncate(1);
    expected["truncatedAlerts"] = json!(1);
    assert_eq!(body, expected);
    Ok(())
}

#[test]
fn webhook_errors_follow_alertmanagers_retry_rules() -> Result {
    let setup = Setup::new("lookout_plugin_webhook")?;
    let receiver = Receiver::start(500, "text/plain", "");
    let config = json!({"url": receiver.url("/hook")});
    check_error_classes(
        &setup,
        "webhook",
        &receiver,
        &config,
        &[
            (500, "transient"),
            (503, "transient"),
            (429, "transient"),
            (400, "permanent"),
            (404, "permanent"),
        ],
    )?;

    // Nothing listens on port 1: connection refused, worth retrying.
    let config = json!({"url": "http://127.0.0.1:1/hook"});
    let out = setup.notify(
        "webhook",
        &setup.firing,
        &config,
        &["--grant-http", "127.0.0.1:1"],
    );
    failed(&out, "transient")?;

    // Without a grant for the receiver's host the sandbox refuses: retrying
    // does not help until the grant changes.
    let config = json!({"url": receiver.url("/hook")});
    let out = setup.notify("webhook", &setup.firing, &config, &[]);
    let stderr = failed(&out, "permanent")?;
    assert!(stderr.contains("no http grant"), "{stderr}");
    receiver.take(0)?;

    // A misspelt option is a configuration error, not a silent default.
    let config = json!({"url": receiver.url("/hook"), "max_alert": 1});
    let out = setup.notify(
        "webhook",
        &setup.firing,
        &config,
        &["--grant-http", &receiver.grant()],
    );
    let stderr = failed(&out, "config")?;
    assert!(stderr.contains("unknown field `max_alert`"), "{stderr}");
    Ok(())
}

// --- slack --------------------------------------------------------------------

#[test]
fn slack_posts_alertmanagers_default_message() -> Result {
    let setup = Setup::new("lookout_plugin_slack")?;
    let receiver = Receiver::start(200, "text/html", "ok");
    let config = json!({
        "api_url": receiver.url("/services/T0/B0/XXXX"),
        "channel": "#ops",
        "icon_emoji": ":rotating_light:",
        "send_resolved": true
    });
    let out = setup.notify(
        "slack",
        &setup.firing,
        &config,
        &["--grant-http", &receiver.grant()],
    );
    let stdout = delivered(&out)?;
    assert!(stdout.contains("#ops"), "{stdout}");
    let [request] = <[Recorded; 1]>::try_from(receiver.take(1)?).unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/services/T0/B0/XXXX");
    assert_eq!(request.headers["content-type"], "application/json");
    // Alertmanager's slack.default.* templates: __subject as title (group
    // label values, then the other common label values in parentheses),
    // the alert view as title link, "title | link" as fallback, danger
    // while firing.
    let title = "[FIRING:1] Down (web)";
    let link = "http://lookout:9090/#/alerts?receiver=team+ops";
    assert_eq!(
        request.json()?,
        json!({
            "channel": "#ops",
            "username": "lookout",
            "icon_emoji": ":rotating_light:",
            "attachments": [{
                "title": title,
                "title_link": link,
                "text": "",
                "fallback": format!("{title} | {link}"),
                "callback_id": "",
                "footer": "",
                "color": "danger",
                "mrkdwn_in": ["fallback", "pretext", "text"]
            }]
        })
    );

    let out = setup.notify(
        "slack",
        &setup.resolved,
        &config,
        &["--grant-http", &receiver.grant()],
    );
    delivered(&out)?;
    let body = receiver.take(1)?[0].json()?;
    assert_eq!(body["attachments"][0]["color"], "good");
    assert_eq!(body["attachments"][0]["title"], "[RESOLVED] Down (web)");
    Ok(())
}

#[test]
fn slack_renders_configured_templates_and_checks_answers() -> Result {
    let setup = Setup::new("lookout_plugin_slack")?;
    let receiver = Receiver::start(200, "text/plain", "ok");
    let config = json!({
        "api_url": receiver.url("/hook"),
        "username": "{{ .Receiver }} bot",
        "title": "{{ .CommonLabels.alertname }} on {{ .CommonLabels.job }}: {{ .Alerts.Firing | len }}/{{ len .Alerts }} firing",
        "text": "{{ .Status | toUpper }} {{ index .GroupLabels \"alertname\" }}{{ .CommonAnnotations.summary }}",
        "color": "{{ define \"c\" }}red{{ end }}"
    });
    // `define` is outside lookout's template subset: a configuration error.
    let out = setup.notify(
        "slack",
        &setup.firing,
        &config,
        &["--grant-http", &receiver.grant()],
    );
    let stderr = failed(&out, "config")?;
    assert!(stderr.contains("not supported"), "{stderr}");
    receiver.take(0)?;

    let mut config = config;
    config["color"] = json!("{{ if eq .Status \"firing\" }}red{{ else }}green{{ end }}");
    delivered(&setup.notify(
        "slack",
        &setup.firing,
        &config,
        &["--grant-http", &receiver.grant()],
    ))?;
    let body = receiver.take(1)?[0].json()?;
    assert_eq!(body["username"], "team ops bot");
    assert_eq!(body["attachments"][0]["title"], "Down on web: 1/2 firing");
    assert_eq!(body["attachments"][0]["text"], "FIRING Down");
    assert_eq!(body["attachments"][0]["color"], "red");

    // An incoming webhook answers "ok"; anything else in a 200 is Slack
    // refusing the message.
    receiver.answer(200, "text/plain", "invalid_payload");
    let out = setup.notify(
        "slack",
        &setup.firing,
        &config,
        &["--grant-http", &receiver.grant()],
    );
    let stderr = failed(&out, "permanent")?;
    assert!(stderr.contains("invalid_payload"), "{stderr}");
    receiver.take(1)?;

    // The Web API answers JSON; its `ts` identifies the message.
    receiver.answer(
        200,
        "application/json; charset=utf-8",
        r#"{"ok":true,"channel":"C1","ts":"1715000000.000100"}"#,
    );
    let stdout = delivered(&setup.notify(
        "slack",
        &setup.firing,
        &config,
        &["--grant-http", &receiver.grant()],
    ))?;
    assert!(stdout.contains("remote id: 1715000000.000100"), "{stdout}");
    receiver.take(1)?;

    check_error_classes(
        &setup,
        "slack",
        &receiver,
        &config,
        &[(500, "transient"), (400, "permanent")],
    )
}

// --- pagerduty -----------------------------------------------------------------

/// The `custom_details` Alertmanager sends by default: the alerts as JSON
/// and their counts.
fn default_details(n: &Value) -> Value {
    let of = |status: &str| -> Vec<Value> {
        n["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status"] == status)
            .cloned()
            .collect()
    };
    json!({
        "firing": of("firing"),
        "resolved": of("resolved"),
        "num_firing": of("firing").len(),
        "num_resolved": of("resolved").len()
    })
}

#[test]
fn pagerduty_sends_events_api_v2() -> Result {
    let setup = Setup::new("lookout_plugin_pagerduty")?;
    let receiver = Receiver::start(
        202,
        "application/json",
        &json!({"status": "success", "message": "Event processed", "dedup_key": GROUP_KEY_SHA256})
            .to_string(),
    );
    let config = json!({
        "routing_key": "R0123456789ABCDEF0123456789ABCDE",
        "url": receiver.url("/v2/enqueue"),
        "severity": "critical",
        "details": {"runbook": "{{ .CommonAnnotations.runbook }}", "firing_now": "{{ .Alerts.Firing | len }}"},
        "links": [{"href": "https://grafana/d/web", "text": "dashboard"}]
    });
    let stdout = delivered(&setup.notify(
        "pagerduty",
        &setup.firing,
        &config,
        &["--grant-http", &receiver.grant()],
    ))?;
    assert!(
        stdout.contains(&format!("remote id: {GROUP_KEY_SHA256}")),
        "{stdout}"
    );
    let [request] = <[Recorded; 1]>::try_from(receiver.take(1)?).unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v2/enqueue");
    assert_eq!(request.headers["content-type"], "application/json");
    let mut details = default_details(&notification());
    details["runbook"] = json!("");
    details["firing_now"] = json!(1);
    assert_eq!(
        request.json()?,
        json!({
            "routing_key": "R0123456789ABCDEF0123456789ABCDE",
            "dedup_key": GROUP_KEY_SHA256,
            "event_action": "trigger",
            "payload": {
                "summary": "[FIRING:1] Down (web)",
                "source": "lookout",
                "severity": "critical",
                "custom_details": details
            },
            "client": "lookout",
            "client_url": "http://lookout:9090/#/alerts?receiver=team+ops",
            "links": [{"href": "https://grafana/d/web", "text": "dashboard"}]
        })
    );

    // Once every alert is resolved: a resolve event for the same dedup key.
    delivered(&setup.notify(
        "pagerduty",
        &setup.resolved,
        &config,
        &["--grant-http", &receiver.grant()],
    ))?;
    let event = receiver.take(1)?[0].json()?;
    assert_eq!(event["event_action"], "resolve");
    assert_eq!(event["dedup_key"], GROUP_KEY_SHA256);
    assert_eq!(event["payload"]["summary"], "[RESOLVED] Down (web)");

    // PagerDuty's 400 names the problem; it is final. 429 is its rate limit.
    receiver.answer(
        400,
        "application/json",
        r#"{"status":"invalid event","message":"Event object is invalid","errors":["'routing_key' is invalid"]}"#,
    );
    let out = setup.notify(
        "pagerduty",
        &setup.firing,
        &config,
        &["--grant-http", &receiver.grant()],
    );
    let stderr = failed(&out, "permanent")?;
    assert!(
        stderr.contains("Event object is invalid: 'routing_key' is invalid"),
        "{stderr}"
    );
    receiver.take(1)?;
    check_error_classes(
        &setup,
        "pagerduty",
        &receiver,
        &config,
        &[(500, "transient"), (429, "transient"), (403, "permanent")],
    )
}

#[test]
fn pagerduty_sends_events_api_v1_with_a_service_key() -> Result {
    let setup = Setup::new("lookout_plugin_pagerduty")?;
    let receiver = Receiver::start(
        200,
        "application/json",
        &json!({"status": "success", "message": "Event processed", "incident_key": GROUP_KEY_SHA256}).to_string(),
    );
    let config = json!({
        "service_key": "0123456789abcdef0123456789abcdef",
        "url": receiver.url("/generic/2010-04-15/create_event.json"),
        "description": "{{ .CommonLabels.alertname }}: {{ .Alerts.Firing | len }} firing"
    });
    let stdout = delivered(&setup.notify(
        "pagerduty",
        &setup.firing,
        &config,
        &["--grant-http", &receiver.grant()],
    ))?;
    assert!(
        stdout.contains(&format!("remote id: {GROUP_KEY_SHA256}")),
        "{stdout}"
    );
    let [request] = <[Recorded; 1]>::try_from(receiver.take(1)?).unwrap();
    assert_eq!(request.path, "/generic/2010-04-15/create_event.json");
    assert_eq!(
        request.json()?,
        json!({
            "service_key": "0123456789abcdef0123456789abcdef",
            "event_type": "trigger",
            "incident_key": GROUP_KEY_SHA256,
            "description": "Down: 1 firing",
            "client": "lookout",
            "client_url": "http://lookout:9090/#/alerts?receiver=team+ops",
            "details": default_details(&notification())
        })
    );

    // A resolve carries no client (as Alertmanager sends it).
    delivered(&setup.notify(
        "pagerduty",
        &setup.resolved,
        &config,
        &["--grant-http", &receiver.grant()],
    ))?;
    assert_eq!(
        receiver.take(1)?[0].json()?,
        json!({
            "service_key": "0123456789abcdef0123456789abcdef",
            "event_type": "resolve",
            "incident_key": GROUP_KEY_SHA256,
            "description": "Down: 0 firing",
            "details": default_details(&resolved_notification())
        })
    );

    // v1 rate-limits with 403.
    check_error_classes(
        &setup,
        "pagerduty",
        &receiver,
        &config,
        &[(403, "transient"), (502, "transient"), (400, "permanent")],
    )?;

    let out = setup.notify(
        "pagerduty",
        &setup.firing,
        &json!({"routing_key": "a", "service_key": "b"}),
        &[],
    );
    failed(&out, "config")?;
    Ok(())
}

// --- email --------------------------------------------------------------------

/// An SMTP server (aiosmtpd) that appends each received message to a JSON
/// lines file: envelope, whether TLS and which AUTH were used, headers, and
/// the decoded parts. Arguments: output file, TLS mode (`plain`,
/// `starttls`, `implicit`), certificate and key files (`-` for plain),
/// AUTH mechanisms offered (`PLAIN`, `LOGIN`, `PLAIN,LOGIN`, `-` for none).
/// Prints its port.
const SMTP_SERVER: &str = r#"
import asyncio, email, email.policy, json, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult

out, mode, cert, key, mechs = sys.argv[1:6]
starttls = mode == "starttls"
context = None
if mode != "plain":
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if not part.is_multipart():
                parts[part.get_content_type()] = part.get_content().replace("\r\n", "\n")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth": getattr(session, "lookout_auth", None),
            "headers": [[k, str(v)] for k, v in message.items()],
            "parts": parts,
        }
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 Ok: queued as 4F2A1"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"alice" and auth_data.password == b"s3cret"
    if ok:
        session.lookout_auth = [mechanism, auth_data.login.decode()]
    return AuthResult(success=ok, handled=False)

exclude = None if mechs == "-" else sorted({"PLAIN", "LOGIN"} - set(mechs.split(",")))

async def main():
    loop = asyncio.get_running_loop()
    def factory():
        return SMTP(Handler(), hostname="smtp.test",
                    tls_context=context if starttls else None,
                    require_starttls=starttls,
                    authenticator=None if mechs == "-" else authenticator,
                    auth_require_tls=starttls, auth_exclude_mechanism=exclude)
    implicit = context if mode == "implicit" else None
    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=implicit)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

/// A running [`SMTP_SERVER`], killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    out: PathBuf,
}

/// How the SMTP test server speaks TLS, with its certificate and key files.
enum SmtpTls<'a> {
    Plain,
    StartTls(&'a Path, &'a Path),
    Implicit(&'a Path, &'a Path),
}

impl SmtpServer {
    /// Starts the server in `dir`, offering the AUTH `mechanisms`.
    fn start(dir: &Path, tls: SmtpTls<'_>, mechanisms: &str) -> Result<SmtpServer> {
        let out = dir.join("mail.jsonl");
        let path = |p: &Path| p.to_str().unwrap().to_owned();
        let (mode, cert, key) = match tls {
            SmtpTls::Plain => ("plain", "-".to_owned(), "-".to_owned()),
            SmtpTls::StartTls(cert, key) => ("starttls", path(cert), path(key)),
            SmtpTls::Implicit(cert, key) => ("implicit", path(cert), path(key)),
        };
        let log = dir.join("smtp-server.log");
        let mut child = Command::new("python3")
            .args(["-c", SMTP_SERVER])
            .arg(&out)
            .args([mode.to_owned(), cert, key, mechanisms.to_owned()])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting python3 (the SMTP test server)")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "the SMTP test server did not start (it needs the Python package aiosmtpd: \
                 `pip install aiosmtpd`): {err}"
            );
        };
        Ok(SmtpServer { child, port, out })
    }

    fn smarthost(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The messages received so far.
    fn messages(&self) -> Result<Vec<Value>> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).context("a server record"))
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate it signed, for 127.0.0.1 and localhost,
/// made with `openssl`: (CA PEM, certificate file, key file).
fn certificates(dir: &Path) -> Result<(String, PathBuf, PathBuf)> {
    let run = |args: &[&str]| -> Result {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .context("running openssl")?;
        ensure!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=lookout test CA",
        ],
    ]
    .concat())?;
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat())?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    Ok((
        std::fs::read_to_string(dir.join("ca.pem"))?,
        dir.join("server.pem"),
        dir.join("server.key"),
    ))
}

fn header<'a>(message: &'a Value, name: &str) -> Option<&'a str> {
    message["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|h| h[1].as_str())
}

#[test]
fn email_is_sent_over_starttls_with_auth() -> Result {
    let setup = Setup::new("lookout_plugin_email")?;
    let dir = tempfile::tempdir()?;
    let (ca, cert, key) = certificates(dir.path())?;
    let server = SmtpServer::start(dir.path(), SmtpTls::StartTls(&cert, &key), "PLAIN")?;
    let config = json!({
        "to": "oncall@example.com, \"Ops, Team\" <ops@example.com>",
        "from": "lookout <lookout@example.com>",
        "smarthost": server.smarthost(),
        "hello": "lookout.test",
        "auth_username": "alice",
        "auth_password": "s3cret",
        "tls_config": {"ca": ca},
        "headers": {"x-lookout-receiver": "{{ .Receiver }}"},
        "send_resolved": true
    });
    let grant = ["--grant-tcp", &server.smarthost()];
    let stdout = delivered(&setup.notify("email", &setup.firing, &config, &grant))?;
    assert!(stdout.contains("over TLS"), "{stdout}");
    assert!(stdout.contains("queued as 4F2A1"), "{stdout}");
    let messages = server.messages()?;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let m = &messages[0];
    assert_eq!(m["tls"], true, "STARTTLS must have been used");
    assert_eq!(m["auth"], json!(["PLAIN", "alice"]));
    assert_eq!(m["mail_from"], "lookout@example.com");
    assert_eq!(
        m["rcpt_tos"],
        json!(["oncall@example.com", "ops@example.com"])
    );
    // Alertmanager's email.default.subject (its __subject).
    assert_eq!(header(m, "Subject"), Some("[FIRING:1] Down (web)"));
    assert_eq!(header(m, "From"), Some("lookout <lookout@example.com>"));
    assert_eq!(
        header(m, "To"),
        Some("oncall@example.com, \"Ops, Team\" <ops@example.com>")
    );
    assert_eq!(header(m, "X-Lookout-Receiver"), Some("team ops"));
    assert_eq!(header(m, "MIME-Version"), Some("1.0"));
    let message_id = header(m, "Message-Id").context("Message-Id")?;
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@example.com>"),
        "{message_id}"
    );
    assert!(
        stdout.contains(&format!("remote id: {message_id}")),
        "{stdout}"
    );
    let date = header(m, "Date").context("Date")?;
    assert!(date.ends_with(" +0000") && date.len() == 31, "{date}");
    assert!(
        header(m, "Content-Type").is_some_and(|t| t.starts_with("multipart/alternative;")),
        "{m:#?}"
    );
    let text = m["parts"]["text/plain"].as_str().context("text part")?;
    assert_eq!(
        text,
        "Alerts Firing:\nLabels:\n - alertname = Down\n - instance = a:80\n - job = web\n\
         Annotations:\n - runbook = https://runbooks/down\n - summary = a:80 is down\n\
         Source: http://lookout:9090/graph?g0.expr=up+%3D%3D+0\n\n\
         Alerts Resolved:\nLabels:\n - alertname = Down\n - instance = b:80\n - job = web\n\
         Annotations:\n - summary = b:80 is down\n\
         Source: http://lookout:9090/graph?g0.expr=up+%3D%3D+0\n\n\
         View in lookout: http://lookout:9090/#/alerts?receiver=team+ops\n"
    );
    let html = m["parts"]["text/html"].as_str().context("html part")?;
    assert!(
        html.contains("<title>[FIRING:1] Down (web)</title>"),
        "{html}"
    );
    assert!(html.contains("2 alerts for alertname=Down"), "{html}");
    assert!(
        html.contains("[1] Firing") && html.contains("[1] Resolved"),
        "{html}"
    );

    // A wrong password: the server's 535 is final.
    let mut wrong = config.clone();
    wrong["auth_password"] = json!("guess");
    let stderr = failed(
        &setup.notify("email", &setup.firing, &wrong, &grant),
        "permanent",
    )?;
    assert!(stderr.contains("535"), "{stderr}");

    // A certificate the configured CA did not sign: the TLS handshake fails
    // (the built-in roots do not know the test CA).
    let mut untrusted = config.clone();
    untrusted.as_object_mut().unwrap().remove("tls_config");
    let stderr = failed(
        &setup.notify("email", &setup.firing, &untrusted, &grant),
        "transient",
    )?;
    assert!(stderr.contains("TLS"), "{stderr}");
    assert_eq!(server.messages()?.len(), 1, "no further mail may arrive");
    Ok(())
}

#[test]
fn email_refuses_plain_smtp_unless_tls_is_not_required() -> Result {
    let setup = Setup::new("lookout_plugin_email")?;
    let dir = tempfile::tempdir()?;
    let server = SmtpServer::start(dir.path(), SmtpTls::Plain, "LOGIN")?;
    let grant = ["--grant-tcp", &server.smarthost()];
    let config = json!({
        "to": "oncall@example.com",
        "from": "lookout@example.com",
        "smarthost": server.smarthost(),
        "auth_username": "alice",
        "auth_password": "s3cret",
        "text": "{{ len .Alerts }} alerts for {{ .GroupLabels.alertname }}\n.leading dot",
        "html": ""
    });
    // require_tls defaults to true, as in Alertmanager.
    let stderr = failed(
        &setup.notify("email", &setup.firing, &config, &grant),
        "permanent",
    )?;
    assert!(stderr.contains("does not advertise STARTTLS"), "{stderr}");
    assert!(server.messages()?.is_empty());

    let mut plain = config.clone();
    plain["require_tls"] = json!(false);
    let stdout = delivered(&setup.notify("email", &setup.resolved, &plain, &grant))?;
    assert!(!stdout.contains("over TLS"), "{stdout}");
    let messages = server.messages()?;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["tls"], false);
    // Credentials may go unencrypted to a loopback server only.
    assert_eq!(m["auth"], json!(["LOGIN", "alice"]));
    assert_eq!(header(m, "Subject"), Some("[RESOLVED] Down (web)"));
    assert_eq!(
        m["parts"],
        json!({"text/plain": "2 alerts for Down\n.leading dot"}),
        "one text part, the SMTP dot-stuffing undone"
    );

    // Without a tcp grant the sandbox refuses the connection.
    let stderr = failed(
        &setup.notify("email", &setup.firing, &plain, &[]),
        "permanent",
    )?;
    assert!(stderr.contains("denied"), "{stderr}");
    Ok(())
}

#[test]
fn email_speaks_implicit_tls() -> Result {
    let setup = Setup::new("lookout_plugin_email")?;
    let dir = tempfile::tempdir()?;
    let (ca, cert, key) = certificates(dir.path())?;
    let server = SmtpServer::start(dir.path(), SmtpTls::Implicit(&cert, &key), "-")?;
    let grant = ["--grant-tcp", &server.smarthost()];
    // Port 465 would choose implicit TLS by itself; the test server's port
    // needs force_implicit_tls. The certificate names localhost too.
    let config = json!({
        "to": "oncall@example.com",
        "from": "lookout@example.com",
        "smarthost": server.smarthost(),
        "force_implicit_tls": true,
        "tls_config": {"ca": ca, "server_name": "localhost"}
    });
    let stdout = delivered(&setup.notify("email", &setup.firing, &config, &grant))?;
    assert!(stdout.contains("over TLS"), "{stdout}");
    let messages = server.messages()?;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["tls"], true);
    assert_eq!(messages[0]["auth"], Value::Null);
    assert_eq!(
        header(&messages[0], "Subject"),
        Some("[FIRING:1] Down (web)")
    );

    // A name the certificate does not carry fails the check.
    let mut wrong_name = config.clone();
    wrong_name["tls_config"]["server_name"] = json!("mail.example.com");
    let stderr = failed(
        &setup.notify("email", &setup.firing, &wrong_name, &grant),
        "transient",
    )?;
    assert!(stderr.contains("TLS"), "{stderr}");
    // insecure_skip_verify accepts it.
    wrong_name["tls_config"]["insecure_skip_verify"] = json!(true);
    delivered(&setup.notify("email", &setup.firing, &wrong_name, &grant))?;
    assert_eq!(server.messages()?.len(), 2);
    Ok(())
}

#[test]
fn every_receiver_kind_delivers_from_an_alertmanager_config() -> Result {
    use crate::support::{Lookout, wait_for};

    let lookout = Lookout::new();
    for stem in [
        "lookout_plugin_webhook",
        "lookout_plugin_slack",
        "lookout_plugin_pagerduty",
        "lookout_plugin_email",
    ] {
        lookout.install(stem)?;
    }
    let hook = Receiver::start(200, "text/plain", "");
    let chat = Receiver::start(200, "text/plain", "ok");
    let pager = Receiver::start(
        202,
        "application/json",
        r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#,
    );
    let mail_dir = tempfile::tempdir()?;
    let mail = SmtpServer::start(mail_dir.path(), SmtpTls::Plain, "-")?;
    // The Slack URL comes from a file, as Alertmanager's `api_url_file`.
    let slack_url = lookout.data.path().join("slack-url");
    std::fs::write(&slack_url, format!("{}\n", chat.url("/services/T/B/X")))?;
    std::fs::write(
        lookout.data.path().join("alertmanager.yml"),
        format!(
            r#"route:
  receiver: hook
  group_by: [alertname]
  group_wait: 100ms
  routes:
    - {{receiver: chat, matchers: [to=chat]}}
    - {{receiver: pager, matchers: [to=pager]}}
    - {{receiver: mail, matchers: [to=mail]}}
receivers:
  - name: hook
    webhook_configs: [{{url: '{hook}'}}]
  - name: chat
    slack_configs:
      - api_url_file: '{slack}'
        channel: '#ops'
        title: '{{{{ .CommonLabels.alertname }}}} is {{{{ .Status }}}}'
        text: '{{{{ range .Alerts }}}}{{{{ .Labels.alertname }}}} for {{{{ .Labels.to }}}}{{{{ end }}}}'
  - name: pager
    pagerduty_configs:
      - routing_key: 'R0UT1NGKEY'
        url: '{pager}'
  - name: mail
    email_configs:
      - to: 'oncall@example.com'
        from: 'lookout@example.com'
        smarthost: '{smarthost}'
        require_tls: false
"#,
            hook = hook.url("/hook"),
            slack = slack_url.display(),
            pager = pager.url("/v2/enqueue"),
            smarthost = mail.smarthost(),
        ),
    )?;
    let served = lookout.serve("[alerting]\nconfig = \"alertmanager.yml\"\n")?;
    let alerts = json!([
        {"labels": {"alertname": "ToHook", "to": "hook"}},
        {"labels": {"alertname": "ToChat", "to": "chat"}},
        {"labels": {"alertname": "ToPager", "to": "pager"}},
        {"labels": {"alertname": "ToMail", "to": "mail"}},
    ]);
    let (status, body) = served.send_json(
        &lookout.token()?,
        "POST",
        "/api/v2/alerts",
        &alerts.to_string(),
    )?;
    ensure!(status == 200, "{status} {body}");

    let hooked = wait_for(Duration::from_secs(20), "the webhook", || {
        Ok(hook.bodies().into_iter().next())
    })?;
    assert_eq!(hooked["alerts"][0]["labels"]["alertname"], "ToHook");
    let slack = wait_for(Duration::from_secs(20), "Slack", || {
        Ok(chat.requests().into_iter().next())
    })?;
    assert_eq!(slack.path, "/services/T/B/X");
    let slack = slack.json()?;
    assert_eq!(slack["channel"], "#ops");
    assert_eq!(slack["attachments"][0]["title"], "ToChat is firing");
    // `range` as in the seed alertmanager-slack-email.yml's texts.
    assert_eq!(slack["attachments"][0]["text"], "ToChat for chat");
    let history = || {
        served
            .get("/api/v1/alerts/history")
            .map(|r| r.1)
            .unwrap_or_default()
    };
    let paged = wait_for(Duration::from_secs(20), "PagerDuty", || {
        Ok(pager.bodies().into_iter().next())
    })
    .with_context(history)?;
    assert_eq!(paged["routing_key"], "R0UT1NGKEY");
    assert_eq!(paged["event_action"], "trigger");
    assert!(paged["dedup_key"].as_str().is_some_and(|k| !k.is_empty()));
    let mailed = wait_for(Duration::from_secs(20), "the email", || {
        Ok(mail.messages()?.into_iter().next())
    })?;
    assert_eq!(header(&mailed, "To"), Some("oncall@example.com"));
    assert!(
        header(&mailed, "Subject").is_some_and(|s| s.contains("ToMail")),
        "{mailed}"
    );
    // Each went to its own receiver only.
    assert_eq!(hook.bodies().len(), 1);
    // A receiver has its message a moment before the plugin returns and
    // the delivery is counted, so wait for the counts.
    let series: Vec<String> = [
        ("hook", "webhook"),
        ("chat", "slack"),
        ("pager", "pagerduty"),
        ("mail", "email"),
    ]
    .iter()
    .map(|(receiver, integration)| {
        format!(
            "lookout_notifications_total{{receiver=\"{receiver}\",integration=\"{integration}\"}} 1"
        )
    })
    .collect();
    let mut metrics = String::new();
    let counted = wait_for(Duration::from_secs(10), "every delivery counted", || {
        metrics = served.get("/metrics")?.1;
        Ok(series.iter().all(|s| metrics.contains(s)).then_some(()))
    });
    assert!(counted.is_ok(), "{series:?} in:\n{metrics}");
    Ok(())
}
