//! `email` notifier: sends the notification as a mail through an SMTP
//! server, like Alertmanager's `email_configs`, over wasi:sockets with TLS
//! inside the plugin (rustls with the pure-Rust RustCrypto provider).
//!
//! Configuration (Alertmanager's field names):
//!
//! ```json
//! {
//!   "to": "oncall@example.com, \"Ops\" <ops@example.com>",
//!   "from": "lookout <lookout@example.com>",
//!   "smarthost": "smtp.example.com:587",
//!   "hello": "lookout.example.com",
//!   "auth_username": "lookout", "auth_password": "…", "auth_identity": "",
//!   "require_tls": true,
//!   "tls_config": {"ca": "-----BEGIN CERTIFICATE-----…", "server_name": "…", "insecure_skip_verify": false},
//!   "force_implicit_tls": null,
//!   "headers": {"Subject": "{{ .CommonLabels.alertname }} is {{ .Status }}"},
//!   "text": "…", "html": "…"
//! }
//! ```
//!
//! - `to` (a comma-separated address list), `from` (one address) and
//!   `smarthost` (`host:port`) are required; `hello` defaults to
//!   `localhost`, as Alertmanager's.
//! - TLS: port 465 (or `force_implicit_tls: true`) speaks TLS from the
//!   start; otherwise STARTTLS is used whenever the server offers it, and
//!   with `require_tls` (default true) a server that does not offer it is a
//!   permanent error. Certificates are checked against the Mozilla roots, or
//!   the PEM certificates of `tls_config.ca`; `tls_config.server_name`
//!   overrides the name checked; `insecure_skip_verify` skips the check.
//!   Files (`ca_file` …) cannot be read from the sandbox.
//! - AUTH: with `auth_username`, when the server advertises AUTH, the first
//!   of its mechanisms that is PLAIN or LOGIN is used (`auth_identity` is
//!   PLAIN's authorization identity). Credentials are never sent over an
//!   unencrypted connection, except to a loopback server (Go's rule, which
//!   Alertmanager follows).
//! - The message: `headers` (templates; `Subject` defaults to
//!   Alertmanager's `email.default.subject`, e.g. `[FIRING:2] Down (web)`,
//!   `To` and `From` to the configured lists), then `Message-Id`, `Date`,
//!   `MIME-Version` and a `multipart/alternative` body of a quoted-printable
//!   `text/plain` part (`text`; default: lookout's `email.default.text`,
//!   the alerts' labels, annotations and sources) and `text/html` part
//!   (`html`; default: `email.default.html`). An empty `text` or `html`
//!   leaves that part out. Templates support the subset of
//!   `lookout_plugin_sdk::template`.
//! - `send_resolved` is applied by the host and ignored here.
//!
//! Outcome: connection failures, timeouts and `4xx` replies are transient;
//! `5xx` replies (a refused recipient, failed authentication) are permanent.
//! The delivery's remote id is the message's `Message-Id`.
//!
//! Capabilities: none asked for at install; the host grants a receiver the
//! TCP address of its `smarthost`, `lookout notify` takes `--grant-tcp
//! host:port`.

mod mime;
mod smtp;

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lookout_plugin_sdk::template;
use lookout_plugin_sdk::{Delivery, Notification, Notifier, PluginError, PluginInfo, net};
use serde::Deserialize;

use crate::smtp::Session;
use lookout_plugin_sdk::tls::{self, TlsConfig};

/// The port on which SMTP servers speak TLS from the start (RFC 8314).
const IMPLICIT_TLS_PORT: u16 = 465;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    to: String,
    from: String,
    smarthost: String,
    #[serde(default)]
    hello: Option<String>,
    #[serde(default)]
    auth_username: Option<String>,
    #[serde(default)]
    auth_password: Option<String>,
    #[serde(default)]
    auth_identity: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    require_tls: Option<bool>,
    #[serde(default)]
    tls_config: TlsConfig,
    #[serde(default)]
    force_implicit_tls: Option<bool>,
    /// Applied by the host.
    #[serde(default)]
    #[allow(dead_code)]
    send_resolved: Option<bool>,
}

/// A mail ready to send.
#[derive(Debug)]
struct Mail {
    from: String,
    to: Vec<String>,
    message_id: String,
    /// Headers and body, CRLF line ends, not yet dot-stuffed.
    text: String,
}

/// The parts of a mail that change with every send.
struct Unique {
    message_id: String,
    date: String,
    boundary: String,
}

impl Unique {
    fn new(domain: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Self {
            message_id: format!("<{nanos}.{}@{domain}>", random_u64()),
            date: mime::rfc1123z_now(),
            boundary: format!(
                "{:016x}{:016x}{:016x}",
                random_u64(),
                random_u64(),
                random_u64()
            ),
        }
    }
}

/// A random number from the standard library's hasher keys, which WASI's
/// random source seeds.
fn random_u64() -> u64 {
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

fn compose(n: &Notification, c: &Config, unique: Unique) -> Result<Mail, PluginError> {
    let render = |t: &str| template::render(t, n);
    let from_list = render(&c.from)?;
    let from =
        mime::parse_addresses(&from_list).map_err(|e| PluginError::config(format!("from: {e}")))?;
    if from.len() != 1 {
        return Err(PluginError::config(format!(
            "from: must be exactly one address (got {})",
            from.len()
        )));
    }
    let to_list = render(&c.to)?;
    let to =
        mime::parse_addresses(&to_list).map_err(|e| PluginError::config(format!("to: {e}")))?;

    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &c.headers {
        if !mime::valid_header_name(name) {
            return Err(PluginError::config(format!(
                "headers: bad header name {name:?}"
            )));
        }
        let canonical = mime::canonical_header(name);
        if headers.insert(canonical.clone(), value.clone()).is_some() {
            return Err(PluginError::config(format!(
                "headers: duplicate header {canonical:?}"
            )));
        }
    }
    let subject = headers
        .remove("Subject")
        .unwrap_or_else(|| r#"{{ template "email.default.subject" . }}"#.to_owned());
    let to_header = headers.remove("To").unwrap_or_else(|| c.to.clone());
    let from_header = headers.remove("From").unwrap_or_else(|| c.from.clone());
    let message_id = match headers.remove("Message-Id") {
        Some(template) => render(&template)?,
        None => unique.message_id,
    };

    let mut text = String::new();
    let mut header = |name: &str, value: &str| {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(&mime::encode_header(value));
        text.push_str("\r\n");
    };
    header("From", &render(&from_header)?);
    header("To", &render(&to_header)?);
    header("Subject", &render(&subject)?);
    for (name, value) in &headers {
        header(name, &render(value)?);
    }
    header("Message-Id", &message_id);
    header("Date", &unique.date);
    header(
        "Content-Type",
        &format!("multipart/alternative; boundary={}", unique.boundary),
    );
    header("MIME-Version", "1.0");
    text.push_str("\r\n");

    let plain = match &c.text {
        Some(t) => render(t)?,
        None => template::email_text(n),
    };
    let html = match &c.html {
        Some(t) => template::render_html(t, n)?,
        None => template::email_html(n),
    };
    if plain.is_empty() && html.is_empty() {
        return Err(PluginError::config(
            "text and html are both empty: nothing to send",
        ));
    }
    let mut first = true;
    for (content_type, body) in [("text/plain", plain), ("text/html", html)] {
        if body.is_empty() {
            continue;
        }
        if !first {
            text.push_str("\r\n");
        }
        first = false;
        text.push_str(&format!(
            "--{}\r\nContent-Transfer-Encoding: quoted-printable\r\n\
             Content-Type: {content_type}; charset=UTF-8\r\n\r\n",
            unique.boundary
        ));
        text.push_str(&mime::quoted_printable(&body));
    }
    text.push_str(&format!("\r\n--{}--\r\n", unique.boundary));
    Ok(Mail {
        from: from.into_iter().next().expect("one address"),
        to,
        message_id,
        text,
    })
}

/// `host` and `port` of a `host:port` (`[v6]:port` for IPv6).
fn split_host_port(smarthost: &str) -> Result<(String, u16), PluginError> {
    let bad = || {
        PluginError::config(format!(
            "smarthost {smarthost:?} is not host:port (e.g. smtp.example.com:587)"
        ))
    };
    let (host, port) = smarthost.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// Whether `host` is this machine, where credentials may travel unencrypted.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn connect(host: &str, port: u16, deadline: Instant) -> Result<net::TcpStream, PluginError> {
    let left = || deadline.saturating_duration_since(Instant::now());
    let what = format!("connecting to the SMTP server {host}:{port}");
    let addresses = net::resolve(host, port, left()).map_err(|e| {
        PluginError::from(lookout_plugin_sdk::Error::new(
            e.reason(),
            format!("{what}: {e}"),
        ))
    })?;
    let mut last = None;
    for address in addresses {
        match net::TcpStream::connect(address, left()) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Some(error),
        }
    }
    let error = last.expect("resolve returns at least one address");
    Err(PluginError::from(lookout_plugin_sdk::Error::new(
        error.reason(),
        format!("{what}: {error}"),
    )))
}

fn send(mail: &Mail, c: &Config, timeout: Duration) -> Result<Delivery, PluginError> {
    let deadline = Instant::now() + timeout;
    let (host, port) = split_host_port(&c.smarthost)?;
    let tls_config = tls::client_config(&c.tls_config)?;
    let name = tls::server_name(c.tls_config.server_name.as_deref().unwrap_or(&host))?;
    let implicit = c.force_implicit_tls.unwrap_or(port == IMPLICIT_TLS_PORT);
    let require_tls = c.require_tls.unwrap_or(true);
    let hello = c.hello.as_deref().unwrap_or("localhost");

    let mut session = Session::new(connect(&host, port, deadline)?, deadline);
    if implicit {
        session.start_tls(tls_config.clone(), name.clone())?;
    }
    session.greeting()?;
    let mut extensions = session.hello(hello)?;
    if !session.is_tls() {
        if extensions.get("STARTTLS").is_some() {
            session.command("STARTTLS", "STARTTLS", &[220])?;
            session.start_tls(tls_config, name)?;
            extensions = session.hello(hello)?;
        } else if require_tls {
            return Err(PluginError::permanent(format!(
                "require_tls is true (the default) but {} does not advertise STARTTLS; \
                 set require_tls to false to send unencrypted",
                c.smarthost
            )));
        }
    }
    if let (Some(user), Some(mechanisms)) = (&c.auth_username, extensions.get("AUTH")) {
        if !session.is_tls() && !is_loopback(&host) {
            return Err(PluginError::permanent(format!(
                "refusing to send credentials to {} over an unencrypted connection",
                c.smarthost
            )));
        }
        let password = c.auth_password.as_deref().unwrap_or("");
        let mechanism = mechanisms
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .find(|m| m == "PLAIN" || m == "LOGIN");
        match mechanism.as_deref() {
            _ if password.is_empty() => {
                return Err(PluginError::config(
                    "auth_username is set but auth_password is empty",
                ));
            }
            Some("PLAIN") => {
                session.auth_plain(c.auth_identity.as_deref().unwrap_or(""), user, password)?
            }
            Some(_) => session.auth_login(user, password)?,
            None => {
                return Err(PluginError::permanent(format!(
                    "{} offers AUTH {mechanisms}; lookout supports PLAIN and LOGIN",
                    c.smarthost
                )));
            }
        }
    }
    session.command(&format!("MAIL FROM:<{}>", mail.from), "MAIL FROM", &[250])?;
    for to in &mail.to {
        session.command(
            &format!("RCPT TO:<{to}>"),
            &format!("RCPT TO {to}"),
            &[250, 251],
        )?;
    }
    let accepted = session.data(&mime::dot_stuff(&mail.text))?;
    let tls = session.is_tls();
    session.quit();
    Ok(Delivery::new(format!(
        "{} accepted the mail to {} recipient{}{}: {}",
        c.smarthost,
        mail.to.len(),
        if mail.to.len() == 1 { "" } else { "s" },
        if tls { " over TLS" } else { "" },
        accepted.text()
    ))
    .remote_id(mail.message_id.clone()))
}

struct Email;

impl Notifier for Email {
    type Config = Config;

    fn describe() -> PluginInfo {
        lookout_plugin_sdk::plugin_info!("email").description(
            "Sends notifications as mail through an SMTP server (STARTTLS or implicit TLS, \
                 AUTH PLAIN/LOGIN), with Alertmanager's default subject. The receiver's \
                 smarthost is granted by the host, not at install.",
        )
    }

    fn notify(
        notification: Notification,
        config: Config,
        timeout: Duration,
    ) -> Result<Delivery, PluginError> {
        let from = config.from.clone();
        let domain = from
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('>').trim())
            .filter(|d| !d.is_empty())
            .unwrap_or("localhost.localdomain");
        let mail = compose(&notification, &config, Unique::new(domain))?;
        send(&mail, &config, timeout)
    }
}

lookout_plugin_sdk::export_notifier!(Email);

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_plugin_sdk::{Alert, parse_config};

    fn notification() -> Notification {
        Notification {
            receiver: "mail".into(),
            status: "firing".into(),
            alerts: vec![Alert {
                status: "firing".into(),
                labels: vec![
                    ("alertname".into(), "Down".into()),
                    ("instance".into(), "a:80".into()),
                ],
                annotations: vec![("summary".into(), "a = down".into())],
                starts_at: "2024-01-01T00:00:00Z".into(),
                ends_at: "0001-01-01T00:00:00Z".into(),
                generator_url: "http://prom/x".into(),
                fingerprint: "f".into(),
            }],
            group_labels: vec![("alertname".into(), "Down".into())],
            common_labels: vec![
                ("alertname".into(), "Down".into()),
                ("instance".into(), "a:80".into()),
            ],
            common_annotations: vec![],
            external_url: "http://lookout".into(),
            group_key: "{}:{alertname=\"Down\"}".into(),
            truncated_alerts: 0,
        }
    }

    fn unique() -> Unique {
        Unique {
            message_id: "<1.2@example.com>".into(),
            date: "Thu, 01 Jan 1970 00:00:00 +0000".into(),
            boundary: "BOUNDARY".into(),
        }
    }

    #[test]
    fn message_has_alertmanagers_headers() {
        let config: Config = parse_config(
            r#"{"to": "a@x.org, B <b@y.org>", "from": "lookout <l@example.com>",
                "smarthost": "127.0.0.1:25", "headers": {"x-team": "{{ .Receiver }}"}}"#,
        )
        .unwrap();
        let mail = compose(&notification(), &config, unique()).unwrap();
        assert_eq!(mail.from, "l@example.com");
        assert_eq!(mail.to, ["a@x.org", "b@y.org"]);
        let (head, body) = mail.text.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            head,
            "From: lookout <l@example.com>\r\nTo: a@x.org, B <b@y.org>\r\n\
             Subject: [FIRING:1] Down (a:80)\r\nX-Team: mail\r\nMessage-Id: <1.2@example.com>\r\n\
             Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n\
             Content-Type: multipart/alternative; boundary=BOUNDARY\r\nMIME-Version: 1.0"
        );
        assert!(body.starts_with(
            "--BOUNDARY\r\nContent-Transfer-Encoding: quoted-printable\r\n\
             Content-Type: text/plain; charset=UTF-8\r\n\r\nAlerts Firing:\r\n"
        ));
        assert!(body.contains(" - summary =3D a =3D down\r\n"), "{body}");
        assert!(body.contains("\r\n--BOUNDARY\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: text/html; charset=UTF-8\r\n"));
        assert!(body.ends_with("\r\n--BOUNDARY--\r\n"));
    }

    #[test]
    fn parts_and_headers_are_configurable() {
        let config: Config = parse_config(
            r#"{"to": "a@x.org", "from": "l@example.com", "smarthost": "h:25",
                "headers": {"subject": "{{ .CommonLabels.alertname }} é"},
                "html": "", "text": "{{ len .Alerts }} alert"}"#,
        )
        .unwrap();
        let mail = compose(&notification(), &config, unique()).unwrap();
        assert!(
            mail.text.contains("Subject: =?utf-8?q?Down_=C3=A9?=\r\n"),
            "{}",
            mail.text
        );
        assert!(!mail.text.contains("text/html"));
        assert!(
            mail.text.contains("\r\n\r\n1 alert\r\n--BOUNDARY--\r\n"),
            "{}",
            mail.text
        );

        let dup: Config = parse_config(
            r#"{"to": "a@x", "from": "b@y", "smarthost": "h:25",
                "headers": {"Subject": "a", "subject": "b"}}"#,
        )
        .unwrap();
        assert!(matches!(
            compose(&notification(), &dup, unique()),
            Err(PluginError::Config(_))
        ));
        let two_from: Config =
            parse_config(r#"{"to": "a@x", "from": "b@y, c@z", "smarthost": "h:25"}"#).unwrap();
        assert!(matches!(
            compose(&notification(), &two_from, unique()),
            Err(PluginError::Config(_))
        ));
    }

    #[test]
    fn smarthosts() {
        assert_eq!(
            split_host_port("smtp.x:587").unwrap(),
            ("smtp.x".into(), 587)
        );
        assert_eq!(split_host_port("[::1]:25").unwrap(), ("::1".into(), 25));
        assert!(split_host_port("smtp.x").is_err());
        assert!(is_loopback("127.0.0.1") && is_loopback("::1") && is_loopback("localhost"));
        assert!(!is_loopback("smtp.x"));
        assert!(parse_config::<Config>(r#"{"to": "a@x", "from": "b@y", "smarthost": "h:25", "tls_config": {"ca_file": "/x"}}"#).is_err());
    }
}
