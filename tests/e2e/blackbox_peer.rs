//! lookout's probes side by side with the real blackbox_exporter: one
//! modules file, loaded unchanged by both (`lookout serve --config
//! blackbox.yml`), every module run against every target through both
//! `/probe` endpoints, and the answers compared. The targets are servers
//! this test starts: statuses, a redirect chain, a slow page, a refused
//! port, and TLS with a self-signed, a private-CA and an expired
//! certificate.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{self, BlackboxExporter, Lookout, Result, free_addr, probe_samples, seed};

/// The modules both run: blackbox_exporter's YAML, as users write it.
const MODULES: &str = r#"modules:
  http_2xx:
    prober: http
    timeout: 1s
  http_404:
    prober: http
    timeout: 1s
    http:
      valid_status_codes: [404]
  http_no_redirects:
    prober: http
    timeout: 1s
    http:
      follow_redirects: false
  http_body_hello:
    prober: http
    timeout: 1s
    http:
      fail_if_body_not_matches_regexp: ["hello"]
  http_body_no_hello:
    prober: http
    timeout: 1s
    http:
      fail_if_body_matches_regexp: ["hel+o"]
  http_build_header:
    prober: http
    timeout: 1s
    http:
      fail_if_header_not_matches:
        - header: X-Build
          regexp: '^1\.'
  http_ssl_only:
    prober: http
    timeout: 1s
    http:
      fail_if_not_ssl: true
  http_insecure:
    prober: http
    timeout: 1s
    http:
      tls_config:
        insecure_skip_verify: true
  http_private_ca:
    prober: http
    timeout: 1s
    http:
      tls_config:
        ca_file: {ca}
  http_post_ip4:
    prober: http
    timeout: 1s
    http:
      method: POST
      body: '{"ping": true}'
      preferred_ip_protocol: ip4
      headers:
        Content-Type: application/json
  tcp_connect:
    prober: tcp
    timeout: 1s
  tcp_tls:
    prober: tcp
    timeout: 1s
    tcp:
      tls: true
      tls_config:
        insecure_skip_verify: true
  tcp_starttls:
    prober: tcp
    timeout: 1s
    tcp:
      query_response:
        - expect: "^220 (.+) ready"
        - send: "STARTTLS"
        - expect: "^220 go ahead"
        - starttls: true
        - send: "PING"
        - expect: "^PONG"
      tls_config:
        ca_file: {ca}
"#;

#[test]
fn probes_agree_with_blackbox_exporter_target_by_target() -> Result {
    let certs = Certificates::new()?;
    let plain = Site::start(None)?;
    let self_signed = Site::start(Some(certs.server(Signer::Itself, false)?))?;
    let private_ca = Site::start(Some(certs.server(Signer::Ca, false)?))?;
    let expired = Site::start(Some(certs.server(Signer::Ca, true)?))?;
    let refused = free_addr()?;
    let starttls = starttls_server(certs.server(Signer::Ca, false)?)?;

    let dir = tempfile::tempdir()?;
    let config = dir.path().join("blackbox.yml");
    // An absolute path: blackbox_exporter 0.23 reads `ca_file` relative to
    // its working directory, lookout (as Prometheus) relative to the file.
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &certs.ca_pem)?;
    let modules = MODULES.replace("{ca}", ca.to_str().unwrap());
    std::fs::write(&config, &modules)?;
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    lookout.install("lookout_plugin_tcp")?;
    let served = lookout.serve_file(&config)?;
    let blackbox = BlackboxExporter::start_file(&config, dir)?;

    let http_targets = [
        ("200", plain.url("/ok")),
        ("404", plain.url("/notfound")),
        ("500", plain.url("/error")),
        ("redirect chain", plain.url("/redirect/3")),
        ("slower than the timeout", plain.url("/slow")),
        ("refused", format!("http://{refused}/")),
        ("self-signed TLS", self_signed.url("/ok")),
        ("private CA TLS", private_ca.url("/ok")),
        ("expired certificate", expired.url("/ok")),
    ];
    let tcp_targets = [
        ("open port", plain.addr.to_string()),
        ("refused port", refused.to_string()),
        ("TLS port", self_signed.addr.to_string()),
        ("STARTTLS line server", starttls.to_string()),
    ];
    let mut pairs: Vec<(&str, &str, &str)> = Vec::new();
    for module in modules
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|m| !m.starts_with(' '))
    {
        let targets: &[(&str, String)] = if module.starts_with("tcp") {
            &tcp_targets
        } else {
            &http_targets
        };
        for (what, target) in targets {
            pairs.push((module, what, target));
        }
    }

    // What is compared: the verdict and, for http, what the exchange saw.
    let compared = [
        "probe_success",
        "probe_http_status_code",
        "probe_http_redirects",
        "probe_http_ssl",
        "probe_http_version",
        "probe_failed_due_to_regex",
        "probe_ip_protocol",
        "probe_ip_addr_hash",
    ];
    let mut agree = 0;
    let mut disagreements = Vec::new();
    for (module, what, target) in &pairs {
        let theirs = probe_samples(blackbox.addr, module, target)?;
        let ours = probe_samples(served.addr, module, target)?;
        let differing: Vec<String> = compared
            .iter()
            .filter(|name| theirs.contains_key(**name) || module.starts_with("http"))
            .filter(|name| theirs.get(**name) != ours.get(**name))
            .map(|name| {
                format!(
                    "{name}: blackbox {:?} lookout {:?}",
                    theirs.get(*name),
                    ours.get(*name)
                )
            })
            .collect();
        if differing.is_empty() {
            agree += 1;
        } else {
            disagreements.push(format!(
                "{module} × {what} ({target}): {}",
                differing.join("; ")
            ));
        }
        if let Err(e) = check_shared_metric_names(module, &theirs, &ours) {
            disagreements.push(format!("{what} ({target}): {e}"));
        }
    }
    println!(
        "blackbox_exporter side by side: {agree}/{} module-target pairs agree \
         (probe_success, status code, redirects, ssl, HTTP version, regex failure)",
        pairs.len()
    );
    assert!(
        disagreements.is_empty(),
        "lookout and blackbox_exporter disagree:\n{}",
        disagreements.join("\n")
    );
    Ok(())
}

/// Every metric blackbox_exporter reports is in lookout's answer too
/// (values differ: timings, hashes of the moment).
fn check_shared_metric_names(
    module: &str,
    theirs: &HashMap<String, f64>,
    ours: &HashMap<String, f64>,
) -> Result {
    let names = |samples: &HashMap<String, f64>| -> std::collections::BTreeSet<String> {
        samples
            .keys()
            .map(|k| k.split('{').next().unwrap_or(k).to_string())
            .collect()
    };
    let (theirs, ours) = (names(theirs), names(ours));
    let missing: Vec<&String> = theirs.difference(&ours).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{module}: blackbox_exporter reports {missing:?}, lookout does not (lookout: {ours:?})"
    );
    Ok(())
}

#[test]
fn the_seed_modules_file_loads_and_its_modules_answer_probe() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    lookout.install("lookout_plugin_tcp")?;
    lookout.install("lookout_plugin_icmp")?;
    let site = Site::start(None)?;
    let path = seed("blackbox-modules.yml");
    let check = lookout.ok(&["check", path.to_str().unwrap()])?;
    assert!(check.contains("3 blackbox modules"), "{check}");
    let served = lookout.serve_file(&path)?;

    let http = probe_samples(served.addr, "http_2xx", &site.url("/ok"))?;
    assert_eq!(http.get("probe_success"), Some(&1.0), "{http:?}");
    assert_eq!(http.get("probe_http_status_code"), Some(&200.0), "{http:?}");
    let http = probe_samples(served.addr, "http_2xx", &site.url("/notfound"))?;
    assert_eq!(http.get("probe_success"), Some(&0.0), "{http:?}");

    let tcp = probe_samples(served.addr, "tcp_connect", &site.addr.to_string())?;
    assert_eq!(tcp.get("probe_success"), Some(&1.0), "{tcp:?}");
    let tcp = probe_samples(served.addr, "tcp_connect", &free_addr()?.to_string())?;
    assert_eq!(tcp.get("probe_success"), Some(&0.0), "{tcp:?}");

    let icmp = probe_samples(served.addr, "icmp", "127.0.0.1")?;
    assert_eq!(icmp.get("probe_success"), Some(&1.0), "{icmp:?}");

    // blackbox_exporter's errors, word for word, and its default module.
    let (status, body) = served.get("/probe?module=nope&target=x")?;
    assert_eq!((status, body.trim()), (400, "Unknown module \"nope\""));
    let (status, body) = served.get("/probe?module=http_2xx")?;
    assert_eq!((status, body.trim()), (400, "Target parameter is missing"));
    let default = probe_samples(served.addr, "", &site.url("/ok"))?;
    assert_eq!(default.get("probe_http_status_code"), Some(&200.0));
    Ok(())
}

#[test]
fn jobs_run_blackbox_modules_on_a_schedule() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    lookout.install("lookout_plugin_tcp")?;
    let site = Site::start(None)?;
    let dir = lookout.data.path();
    std::fs::write(dir.join("blackbox.yml"), MODULES.replace("{ca}", "ca.pem"))?;
    std::fs::write(dir.join("ca.pem"), Certificates::new()?.ca_pem)?;
    let served = lookout.serve(&format!(
        r#"[probes]
blackbox_modules = "blackbox.yml"

[[jobs]]
name = "site"
module = "http_build_header"
every = "300ms"
targets = ["{ok}", "{missing}"]

[[jobs]]
name = "port"
module = "tcp_connect"
every = "300ms"
targets = ["{addr}"]
"#,
        ok = site.url("/ok"),
        missing = site.url("/notfound"),
        addr = site.addr
    ))?;
    let (site_results, port_results) =
        crate::support::wait_for(Duration::from_secs(10), "module job results", || {
            let site_results = served.results("site")?;
            let port_results = served.results("port")?;
            let both = [site.url("/ok"), site.url("/notfound")]
                .iter()
                .all(|t| site_results.iter().any(|r| r["target"] == t.as_str()));
            Ok((both && !port_results.is_empty()).then_some((site_results, port_results)))
        })?;
    let by_target = |target: String| {
        site_results
            .iter()
            .find(|r| r["target"] == target.as_str())
            .cloned()
            .unwrap()
    };
    assert_eq!(by_target(site.url("/ok"))["success"], true);
    let missing = by_target(site.url("/notfound"));
    assert_eq!(missing["success"], false, "{missing}");
    assert_eq!(missing["failure_reason"], "status", "{missing}");
    assert_eq!(port_results[0]["success"], true);
    Ok(())
}

/// A line protocol with STARTTLS: `220 lookout ready`, `STARTTLS` →
/// `220 go ahead` and a TLS handshake, then `PING` → `PONG`.
fn starttls_server(tls: Arc<rustls::ServerConfig>) -> Result<SocketAddr> {
    use std::io::BufRead;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let tls = tls.clone();
            std::thread::spawn(move || -> std::io::Result<()> {
                conn.set_read_timeout(Some(Duration::from_secs(3)))?;
                let mut plain = conn.try_clone()?;
                writeln!(plain, "220 lookout ready\r")?;
                let mut reader = std::io::BufReader::new(conn.try_clone()?);
                let mut line = String::new();
                reader.read_line(&mut line)?;
                if line.trim() != "STARTTLS" {
                    return writeln!(plain, "500 say STARTTLS\r");
                }
                writeln!(plain, "220 go ahead\r")?;
                let session = rustls::ServerConnection::new(tls)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let mut secure = rustls::StreamOwned::new(session, conn);
                let mut secure_reader = Vec::new();
                let mut byte = [0u8; 1];
                while secure.read(&mut byte)? == 1 && byte[0] != b'\n' {
                    secure_reader.push(byte[0]);
                }
                if String::from_utf8_lossy(&secure_reader).trim() == "PING" {
                    writeln!(secure, "PONG\r")?;
                }
                secure.flush()
            });
        }
    });
    Ok(addr)
}

/// Whom a server certificate is signed by.
#[derive(Clone, Copy, PartialEq)]
enum Signer {
    Itself,
    Ca,
}

/// A private CA, and server certificates for 127.0.0.1 made on the spot.
struct Certificates {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    ca_pem: String,
}

impl Certificates {
    fn new() -> Result<Certificates> {
        let (ca, ca_key) = support::test_ca("lookout test CA")?;
        let ca_pem = ca.pem();
        Ok(Certificates { ca, ca_key, ca_pem })
    }

    /// A TLS server configuration for `127.0.0.1` / `localhost`.
    fn server(&self, signer: Signer, expired: bool) -> Result<Arc<rustls::ServerConfig>> {
        let issuer = match signer {
            Signer::Itself => None,
            Signer::Ca => Some((&self.ca, &self.ca_key)),
        };
        let (cert, key) = support::localhost_certificate(issuer, expired)?;
        let der_key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| anyhow::anyhow!("key: {e}"))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der_key)?;
        Ok(Arc::new(config))
    }
}

/// A local web site with the pages the matrix needs, over HTTP or TLS.
struct Site {
    addr: SocketAddr,
    tls: bool,
}

impl Site {
    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Result<Site> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let site = Site {
            addr,
            tls: tls.is_some(),
        };
        // The thread ends with the test process; the port is private to it.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    match tls {
                        None => serve(conn),
                        Some(config) => {
                            let Ok(session) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(session, conn));
                        }
                    }
                });
            }
        });
        Ok(site)
    }

    fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }
}

/// Answers one request: `/ok`, `/notfound`, `/error`, `/redirect/<n>`
/// (a chain of n+1 redirects ending at `/ok`), `/slow` (3 s, past every
/// module's timeout).
fn serve(mut conn: impl Read + Write) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&seen[..head_end]).to_string();
    // Read a request body, so that a POST is answered after it arrived.
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while seen.len() < head_end + 4 + length {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, extra, body) = match path.as_str() {
        "/ok" => (
            200,
            "X-Build: 1.2.3\r\n".to_string(),
            "hello lookout\n".to_string(),
        ),
        "/notfound" => (404, String::new(), "no such page\n".into()),
        "/error" => (500, String::new(), "broken\n".into()),
        "/slow" => {
            std::thread::sleep(Duration::from_secs(3));
            (200, String::new(), "finally\n".into())
        }
        p if p.starts_with("/redirect/") => {
            let n: u32 = p["/redirect/".len()..].parse().unwrap_or(0);
            let next = if n == 0 {
                "/ok".to_string()
            } else {
                format!("/redirect/{}", n - 1)
            };
            (302, format!("Location: {next}\r\n"), String::new())
        }
        _ => (404, String::new(), String::new()),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.flush();
}
