//! The first-party plugins written in other languages than Rust —
//! `plugins/health` (Python), `plugins/statuspage` (JavaScript),
//! `plugins/load` (C) — built with their own toolchains, which are
//! installed here rather than assumed: componentize-py in a virtualenv,
//! ComponentizeJS by npm from the committed lockfile, wit-bindgen and
//! wasm-tools by `cargo install`, clang and wasi-libc from Debian. Each
//! plugin builds with the same command its author would run (`make`,
//! `npm run build`); only the output path differs.
//!
//! Toolchains live in `$LOOKOUT_TOOLCHAINS` (default
//! `~/.cache/lookout/toolchains`), outside the checkout, so later runs
//! reuse them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::{ensure_debian_packages, status, workspace_root};

/// Plugins built here: (source directory, output file stem).
pub const PLUGINS: &[(&str, &str)] = &[
    ("plugins/health", "health"),
    ("plugins/statuspage", "statuspage"),
    ("plugins/load", "load"),
];

const COMPONENTIZE_PY: &str = "0.25.1";
const WIT_BINDGEN_CLI: &str = "0.61.1";
const WASM_TOOLS: &str = "1.258.3";

/// What the C build needs from Debian (package, a file it provides).
pub const C_PACKAGES: &[(&str, &str)] = &[
    ("clang-19", "clang-19"),
    ("lld-19", "wasm-ld-19"),
    (
        "libclang-rt-19-dev-wasm32",
        "/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a",
    ),
    ("wasi-libc", "/usr/lib/wasm32-wasi/libc.a"),
    ("make", "make"),
];

pub fn toolchains() -> PathBuf {
    std::env::var_os("LOOKOUT_TOOLCHAINS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/lookout/toolchains"))
        })
        .unwrap_or_else(|| workspace_root().join("target/toolchains"))
}

/// `PATH` with `dir` in front.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).expect("PATH entries")
}

/// Builds every plugin into `out` (`<stem>.wasm`).
pub fn build(out: &Path) -> anyhow::Result<()> {
    let tools = toolchains();
    std::fs::create_dir_all(&tools)?;
    build_python(&tools, out).context("building the Python plugin (plugins/health)")?;
    build_js(out).context("building the JavaScript plugin (plugins/statuspage)")?;
    build_c(&tools, out).context("building the C plugin (plugins/load)")?;
    crate::report_sizes(out, PLUGINS.iter().map(|(_, stem)| *stem))
}

fn output_of(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn build_python(tools: &Path, out: &Path) -> anyhow::Result<()> {
    let venv = tools.join("python");
    let bin = venv.join("bin");
    let installed = output_of(Command::new(bin.join("componentize-py")).arg("--version"));
    if !installed.is_some_and(|v| v.contains(COMPONENTIZE_PY)) {
        status(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        status(
            Command::new(bin.join("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(workspace_root().join("plugins/health/requirements.txt")),
        )?;
    }
    status(
        Command::new("make")
            .arg("--no-print-directory")
            .arg("-C")
            .arg(workspace_root().join("plugins/health"))
            .arg(format!("OUT={}", out.join("health.wasm").display()))
            .env("PATH", path_with(&bin)),
    )
}

fn build_js(out: &Path) -> anyhow::Result<()> {
    let dir = workspace_root().join("plugins/statuspage");
    for tool in ["node", "npm"] {
        if output_of(Command::new(tool).arg("--version")).is_none() {
            ensure_debian_packages(&[("nodejs", "node"), ("npm", "npm")])?;
            break;
        }
    }
    if !dir.join("node_modules/.bin/componentize-js").exists() {
        status(
            Command::new("npm")
                // Versions from the committed package-lock.json (`npm ci`
                // refuses lockfiles lacking other platforms' optional
                // packages, which npm 11 writes).
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
        )?;
    }
    status(
        Command::new("npm")
            .args(["run", "--silent", "build"])
            .env("OUT", out.join("statuspage.wasm"))
            .current_dir(&dir),
    )
}

fn build_c(tools: &Path, out: &Path) -> anyhow::Result<()> {
    ensure_debian_packages(C_PACKAGES)?;
    let bin = tools.join("bin");
    for (krate, version, binary, features) in [
        ("wit-bindgen-cli", WIT_BINDGEN_CLI, "wit-bindgen", "c"),
        ("wasm-tools", WASM_TOOLS, "wasm-tools", "component"),
    ] {
        let installed = output_of(Command::new(bin.join(binary)).arg("--version"));
        if installed.is_some_and(|v| v.contains(version)) {
            continue;
        }
        // Only the parts the build uses: a fraction of the compile time.
        status(
            Command::new("cargo")
                .args(["install", "--locked", "--quiet", "--root"])
                .arg(tools)
                .arg(format!("{krate}@{version}"))
                .args(["--no-default-features", "--features", features])
                // Their own build directory: not the workspace's lock.
                .env("CARGO_TARGET_DIR", tools.join("build")),
        )?;
    }
    let adapter = tools.join("wasi_snapshot_preview1.reactor.wasm");
    std::fs::write(
        &adapter,
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    )?;
    status(
        Command::new("make")
            .arg("--no-print-directory")
            .arg("-C")
            .arg(workspace_root().join("plugins/load"))
            .arg(format!("OUT={}", out.join("load.wasm").display()))
            .arg(format!("ADAPTER={}", adapter.display()))
            .env("PATH", path_with(&bin)),
    )
}
