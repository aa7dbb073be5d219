//! The CLI's plugin lifecycle and one-shot runs against real local servers.

use crate::support::{Lookout, Result, TargetServer};

#[test]
fn install_list_inspect_run_remove() -> Result {
    let lookout = Lookout::new();
    let out = lookout.install("lookout_plugin_http")?;
    assert!(out.contains("installed http"), "{out}");
    assert!(out.contains("(probe plugin)"), "{out}");
    assert!(out.contains("asks for tcp: {target}"), "{out}");
    assert!(out.contains("sha256"), "{out}");
    // Installing the same file again is a no-op.
    assert!(
        lookout
            .install("lookout_plugin_http")?
            .contains("already installed")
    );
    lookout.install("lookout_plugin_tcp")?;

    let list = lookout.ok(&["plugin", "list"])?;
    assert!(
        list.lines()
            .any(|l| l.starts_with("http ") && l.contains("probe")),
        "{list}"
    );
    assert!(list.lines().any(|l| l.starts_with("tcp ")), "{list}");

    let inspect = lookout.ok(&["plugin", "inspect", "http"])?;
    assert!(inspect.contains("world        probe"), "{inspect}");
    assert!(inspect.contains("compiled     cached"), "{inspect}");

    let server = TargetServer::start(200);
    let run = lookout.ok(&["run", "http", "--target", &server.url()])?;
    assert!(run.contains("success   true"), "{run}");
    assert!(run.contains("probe_http_status_code 200"), "{run}");

    server.set_status(503);
    let out = lookout.run(&["run", "http", "--target", &server.url()]);
    assert_eq!(out.status.code(), Some(2), "an unhealthy target exits 2");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("reason    status"), "{text}");

    let tcp = lookout.ok(&["run", "tcp", "--target", &server.addr.to_string()])?;
    assert!(tcp.contains("success   true"), "{tcp}");
    // Port 1 (tcpmux) has no listener on a test machine: refused. (A port
    // freed a moment ago can be handed back as the probe's own source port,
    // and a socket connecting to itself succeeds.)
    let closed = "127.0.0.1:1";
    let out = lookout.run(&["run", "tcp", "--target", closed]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reason    connect"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Without the install's grants, the probe is denied by the sandbox.
    let denied = Lookout::new();
    denied.ok(&[
        "plugin",
        "install",
        "--no-grants",
        crate::support::wasm("lookout_plugin_http")
            .to_str()
            .unwrap(),
    ])?;
    let out = denied.run(&["run", "http", "--target", &server.url()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reason    denied"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let removed = lookout.ok(&["plugin", "remove", "http"])?;
    assert!(removed.contains("removed http"));
    let out = lookout.run(&["run", "http", "--target", &server.url()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no plugin named `http` is installed"));
    assert!(!lookout.ok(&["plugin", "list"])?.contains("http "));
    Ok(())
}

#[test]
fn help_exists_for_every_command() -> Result {
    let lookout = Lookout::new();
    for args in [
        vec!["--help"],
        vec!["plugin", "--help"],
        vec!["plugin", "install", "--help"],
        vec!["plugin", "list", "--help"],
        vec!["plugin", "inspect", "--help"],
        vec!["plugin", "remove", "--help"],
        vec!["check", "--help"],
        vec!["run", "--help"],
        vec!["serve", "--help"],
    ] {
        let out = lookout.ok(&args)?;
        assert!(out.contains("Usage: lookout"), "{args:?}: {out}");
    }
    Ok(())
}

/// A server speaking a line protocol: a banner, then `+PONG` for `PING`;
/// `QUIT` closes the connection.
fn line_server() -> Result<std::net::SocketAddr> {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut writer = conn.try_clone().expect("clone");
                let _ = writer.write_all(b"# greetings\r\n+OK cache-7.2 ready\r\n");
                let mut line = String::new();
                let mut reader = BufReader::new(conn);
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    match line.trim_end() {
                        "PING" => {
                            let _ = writer.write_all(b"+PONG\r\n");
                        }
                        "QUIT" => return,
                        _ => {}
                    }
                    line.clear();
                }
            });
        }
    });
    Ok(addr)
}

#[test]
fn tcp_probe_speaks_blackbox_query_response() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_tcp")?;
    let addr = line_server()?.to_string();
    let run = |config: &str| -> Result<serde_json::Value> {
        let out = lookout.run(&[
            "run",
            "tcp",
            "--target",
            &addr,
            "--json",
            "--timeout",
            "2s",
            "--config",
            config,
        ]);
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let sample = |result: &serde_json::Value, name: &str| -> Option<serde_json::Value> {
        result["samples"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
    };
    let ok = run(r#"{"query_response": [
            {"expect": "^\\+OK (\\S+)", "labels": [{"name": "server", "value": "${1}"}]},
            {"send": "PING"},
            {"expect": "^\\+PONG"}]}"#)?;
    assert_eq!(ok["success"], true, "{ok}");
    let info = sample(&ok, "probe_expect_info").expect("probe_expect_info");
    assert_eq!(
        info["labels"],
        serde_json::json!([["server", "cache-7.2"]]),
        "{info}"
    );
    assert_eq!(
        sample(&ok, "probe_failed_due_to_regex").unwrap()["value"],
        0.0
    );

    // The server keeps the connection open: as blackbox_exporter, that is a
    // timeout, not a regex failure.
    let miss = run(r#"{"query_response": [{"send": "PING"}, {"expect": "^\\+NOPE"}]}"#)?;
    assert_eq!(miss["success"], false, "{miss}");
    assert_eq!(miss["failure_reason"], "timeout", "{miss}");
    assert_eq!(
        sample(&miss, "probe_failed_due_to_regex").unwrap()["value"],
        0.0
    );
    // A reply that ends without the line is one.
    let closed = run(r#"{"query_response": [{"send": "QUIT"}, {"expect": "^\\+NOPE"}]}"#)?;
    assert_eq!(closed["failure_reason"], "protocol", "{closed}");
    assert_eq!(
        sample(&closed, "probe_failed_due_to_regex").unwrap()["value"],
        1.0
    );

    let out = lookout.run(&[
        "run",
        "tcp",
        "--target",
        &addr,
        "--config",
        r#"{"query_response": [{"expect": "(unclosed"}]}"#,
    ]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("query_response[0].expect"), "{text}");
    Ok(())
}

#[test]
fn http_probe_checks_bodies_headers_and_schemes_like_blackbox() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    let server = TargetServer::start(200);
    server.set_body("service under maintenance");
    let run = |config: &str| -> Result<serde_json::Value> {
        let out = lookout.run(&[
            "run",
            "http",
            "--target",
            &server.url(),
            "--json",
            "--config",
            config,
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| anyhow::anyhow!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
        Ok(v)
    };
    let regex_failed = |v: &serde_json::Value| {
        v["samples"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "probe_failed_due_to_regex"))
            .map(|s| s["value"].clone())
    };
    for (config, success, reason, by_regex) in [
        (
            r#"{"fail_if_body_matches_regexp": ["maint[a-z]+"]}"#,
            false,
            "body",
            1.0,
        ),
        (
            r#"{"fail_if_body_not_matches_regexp": ["^OK"]}"#,
            false,
            "body",
            1.0,
        ),
        (
            r#"{"fail_if_body_not_matches_regexp": ["under"]}"#,
            true,
            "",
            0.0,
        ),
        (
            r#"{"fail_if_header_not_matches": [{"header": "content-type", "regexp": "json"}]}"#,
            false,
            "header",
            1.0,
        ),
        (
            r#"{"fail_if_header_matches": [{"header": "content-type", "regexp": "^text/"}]}"#,
            false,
            "header",
            1.0,
        ),
        (
            r#"{"fail_if_header_not_matches": [{"header": "x-missing", "regexp": ".", "allow_missing": true}]}"#,
            true,
            "",
            0.0,
        ),
        (
            r#"{"fail_if_header_not_matches": [{"header": "x-missing", "regexp": "."}]}"#,
            false,
            "header",
            0.0,
        ),
        (r#"{"fail_if_not_ssl": true}"#, false, "tls", 0.0),
        (r#"{"fail_if_ssl": true}"#, true, "", 0.0),
    ] {
        let v = run(config)?;
        assert_eq!(v["success"], success, "{config}: {v}");
        if !success {
            assert_eq!(v["failure_reason"], reason, "{config}: {v}");
        }
        assert_eq!(
            regex_failed(&v),
            Some(serde_json::json!(by_regex)),
            "{config}: {v}"
        );
    }
    // A regex that does not compile is the configuration's fault, named.
    let out = lookout.run(&[
        "run",
        "http",
        "--target",
        &server.url(),
        "--config",
        r#"{"fail_if_body_matches_regexp": ["(oops"]}"#,
    ]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("fail_if_body_matches_regexp \"(oops\""),
        "{text}"
    );

    // Credentials go out as blackbox sends them.
    let receiver = crate::notifiers::Receiver::start(200, "text/plain", "ok");
    let out = lookout.run(&[
        "run",
        "http",
        "--target",
        &receiver.url("/secret"),
        "--config",
        r#"{"basic_auth": {"username": "u", "password": "p"}}"#,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let request = receiver.requests().into_iter().next().expect("a request");
    assert_eq!(
        request.headers.get("authorization").map(String::as_str),
        Some("Basic dTpw")
    );
    Ok(())
}

/// A run of the http probe as JSON.
fn run_http(lookout: &Lookout, target: &str, config: &str) -> Result<serde_json::Value> {
    let out = lookout.run(&[
        "run",
        "http",
        "--target",
        target,
        "--json",
        "--timeout",
        "2s",
        "--config",
        config,
    ]);
    serde_json::from_slice(&out.stdout).map_err(|e| {
        anyhow::anyhow!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn sample_value(result: &serde_json::Value, name: &str) -> Option<f64> {
    result["samples"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)?["value"]
        .as_f64()
}

#[test]
fn http_probe_asserts_json_bodies() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    let server = TargetServer::start(200);
    server.set_body(
        r#"{"status": "ok", "checks": [{"name": "db", "latency_ms": 12}], "version": "2.4.1"}"#,
    );
    let config = |assertions: &str| format!(r#"{{"fail_if_body_json_not_matches": {assertions}}}"#);
    let ok = run_http(
        &lookout,
        &server.url(),
        &config(
            r#"[{"path": "status", "equals": "ok"}, {"path": "checks.0.latency_ms", "regexp": "^[0-9]{1,2}$"}, {"path": "version", "regexp": "^2\\."}]"#,
        ),
    )?;
    assert_eq!(ok["success"], true, "{ok}");
    let wrong = run_http(
        &lookout,
        &server.url(),
        &config(r#"[{"path": "status", "equals": "degraded"}]"#),
    )?;
    assert_eq!(wrong["success"], false, "{wrong}");
    assert_eq!(wrong["failure_reason"], "body");
    assert!(
        wrong["message"].as_str().unwrap().contains("\"status\""),
        "{wrong}"
    );
    let missing = run_http(
        &lookout,
        &server.url(),
        &config(r#"[{"path": "checks.3.name", "equals": "x"}]"#),
    )?;
    assert_eq!(missing["failure_reason"], "body", "{missing}");
    server.set_body("<html>not json</html>");
    let not_json = run_http(
        &lookout,
        &server.url(),
        &config(r#"[{"path": "status", "equals": "ok"}]"#),
    )?;
    assert!(
        not_json["message"].as_str().unwrap().contains("not JSON"),
        "{not_json}"
    );
    Ok(())
}

#[test]
fn http_probe_upgrades_websockets_and_exchanges_a_message() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    let addr = websocket_server()?;
    let echo = run_http(
        &lookout,
        &format!("ws://{addr}/echo"),
        r#"{"websocket": {"send": "ping 42", "expect": "^echo: ping (\\d+)$"}}"#,
    )?;
    assert_eq!(echo["success"], true, "{echo}");
    assert_eq!(sample_value(&echo, "probe_http_status_code"), Some(101.0));

    let silent = run_http(
        &lookout,
        &format!("ws://{addr}/echo"),
        r#"{"websocket": {"send": "ping", "expect": "^pong$"}}"#,
    )?;
    assert_eq!(silent["success"], false, "{silent}");
    assert_eq!(silent["failure_reason"], "body", "{silent}");
    assert_eq!(sample_value(&silent, "probe_http_status_code"), Some(101.0));

    let forged = run_http(&lookout, &format!("ws://{addr}/bad-accept"), "{}")?;
    assert_eq!(forged["failure_reason"], "protocol", "{forged}");
    let plain = run_http(&lookout, &format!("ws://{addr}/plain"), "{}")?;
    assert_eq!(plain["failure_reason"], "status", "{plain}");
    assert_eq!(sample_value(&plain, "probe_http_status_code"), Some(200.0));
    Ok(())
}

/// A WebSocket server: `/echo` upgrades and answers each text message with
/// `echo: <message>`; `/bad-accept` upgrades with a wrong accept value;
/// anything else is a plain 200.
fn websocket_server() -> Result<std::net::SocketAddr> {
    use base64::Engine;
    use sha1::Digest;
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(3)));
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&seen).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let key = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                    .unwrap_or("")
                    .trim()
                    .to_string();
                if path == "/plain" || key.is_empty() {
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                    return;
                }
                let mut sha = sha1::Sha1::new();
                sha.update(format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes());
                let mut accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
                if path == "/bad-accept" {
                    accept = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                );
                // Client frames are masked; answer text frames unmasked.
                loop {
                    let mut header = [0u8; 2];
                    if conn.read_exact(&mut header).is_err() {
                        return;
                    }
                    let opcode = header[0] & 0x0f;
                    let len = (header[1] & 0x7f) as usize;
                    let mut mask = [0u8; 4];
                    let mut payload = vec![0u8; len];
                    if len >= 126
                        || conn.read_exact(&mut mask).is_err()
                        || conn.read_exact(&mut payload).is_err()
                    {
                        return;
                    }
                    payload
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, b)| *b ^= mask[i % 4]);
                    if opcode == 0x8 {
                        return;
                    }
                    let reply = format!("echo: {}", String::from_utf8_lossy(&payload));
                    let mut frame = vec![0x81, reply.len() as u8];
                    frame.extend_from_slice(reply.as_bytes());
                    let _ = conn.write_all(&frame);
                }
            });
        }
    });
    Ok(addr)
}
