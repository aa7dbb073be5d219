//! Bad input gets a clear error naming what is wrong, and changes nothing
//! already installed or stored.

use std::path::Path;

use crate::support::{Lookout, Result};

/// Everything on disk that an install or a config could change.
fn snapshot(lookout: &Lookout) -> Result<(String, Vec<String>)> {
    let inspect = lookout.ok(&["plugin", "inspect", "http", "--json"])?;
    let mut files = Vec::new();
    for dir in ["plugins", "cache"] {
        for entry in std::fs::read_dir(lookout.data.path().join(dir))? {
            let entry = entry?;
            files.push(format!(
                "{dir}/{} {}",
                entry.file_name().to_string_lossy(),
                entry.metadata()?.len()
            ));
        }
    }
    files.sort();
    Ok((inspect, files))
}

fn install_fails(lookout: &Lookout, bytes: &[u8], file: &str, expected: &str) -> Result {
    let path = lookout.data.path().join(file);
    std::fs::write(&path, bytes)?;
    let out = lookout.run(&["plugin", "install", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{file} was accepted");
    assert!(
        stderr.contains(expected),
        "{file}: expected `{expected}` in: {stderr}"
    );
    assert!(
        stderr.contains(file),
        "{file}: the error should name the file: {stderr}"
    );
    Ok(())
}

fn check_fails(lookout: &Lookout, config: &str, expected: &[&str]) -> Result {
    let path = lookout.data.path().join("bad.toml");
    std::fs::write(&path, config)?;
    for args in [
        vec!["check", path.to_str().unwrap()],
        vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            path.to_str().unwrap(),
        ],
    ] {
        let out = lookout.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted {config}");
        for e in expected {
            assert!(stderr.contains(e), "{args:?}: expected `{e}` in: {stderr}");
        }
    }
    Ok(())
}

#[test]
fn bad_plugins_and_configs_are_refused_and_change_nothing() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_plugin_http")?;
    let before = snapshot(&lookout)?;

    install_fails(
        &lookout,
        b"#!/bin/sh\necho not wasm\n",
        "script.wasm",
        "not a WebAssembly file",
    )?;
    // The smallest valid core module: magic + version 1.
    install_fails(
        &lookout,
        b"\0asm\x01\0\0\0",
        "core.wasm",
        "core WebAssembly module, not a component",
    )?;
    // The smallest valid component: magic + component version/layer; it exports nothing.
    install_fails(
        &lookout,
        b"\0asm\x0d\0\x01\0",
        "empty.wasm",
        "implements none of lookout's worlds",
    )?;
    install_fails(
        &lookout,
        b"\0asm\x0d\0\x01\0\x99garbage",
        "corrupt.wasm",
        "invalid component",
    )?;
    let missing = lookout.run(&["plugin", "install", "/nonexistent/plugin.wasm"]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/plugin.wasm")
    );

    check_fails(
        &lookout,
        "[[jobs]]\nname = \"web\"\nplugin = \"http\"\ncron = \"*/5 * * *\"\ntargets = [\"http://127.0.0.1:1/\"]\n",
        &["bad.toml:4:", "cron", "4 fields"],
    )?;
    check_fails(
        &lookout,
        "[[jobs]]\nname = \"web\"\nplugin = \"http\"\ncron = \"0 99 * * *\"\ntargets = [\"http://127.0.0.1:1/\"]\n",
        &["bad.toml:4:", "not a valid cron expression"],
    )?;
    check_fails(
        &lookout,
        "[[jobs]]\nname = \"web\"\nplugin = \"http\"\nevery = \"15s\"\ntargets = [\"http://127.0.0.1:1/\"]\ntimout = \"5s\"\n",
        &["bad.toml:6:", "unknown field `timout`"],
    )?;
    check_fails(
        &lookout,
        "[[jobs]]\nname = \"web\"\nplugin = \"htp\"\nevery = \"15s\"\ntargets = [\"http://127.0.0.1:1/\"]\n",
        &["bad.toml:3:", "plugin `htp`, which is not installed"],
    )?;

    assert_eq!(
        snapshot(&lookout)?,
        before,
        "a refused input changed what was installed"
    );
    assert!(!Path::new(&lookout.data.path().join("plugins/candidate.wasm")).exists());
    Ok(())
}
