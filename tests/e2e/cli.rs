//! The CLI's plugin lifecycle and one-shot runs against real local servers.

use crate::support::{Lookout, Result, TargetServer};

#[test]
fn install_list_inspect_run_remove() -> Result {
    let lookout = Lookout::new();
    let out = lookout.install("lookout_plugin_http")?;
    assert!(out.contains("installed http"), "{out}");
    assert!(out.contains("(probe plugin)"), "{out}");
    assert!(out.contains("asks for http: {target}"), "{out}");
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

/// A server speaking a line protocol: a banner, then `+PONG` for `PING`.
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
                    if line.trim_end() == "PING" {
                        let _ = writer.write_all(b"+PONG\r\n");
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

    let miss = run(r#"{"query_response": [{"send": "PING"}, {"expect": "^\\+NOPE"}]}"#)?;
    assert_eq!(miss["success"], false, "{miss}");
    assert_eq!(miss["failure_reason"], "protocol", "{miss}");
    assert_eq!(
        sample(&miss, "probe_failed_due_to_regex").unwrap()["value"],
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
