//! `lookout plugin new`: writes a plugin project in Rust, Python,
//! JavaScript or C for one of the four worlds, which builds with one
//! command and installs cleanly.
//!
//! Everything a project needs is written into it, so it builds away from
//! this repository: the contract (`wit/`), and per language the build file,
//! a starting source for the world, and the glue — the Rust SDK's source
//! (vendored under `sdk/`), the Python HTTP helper, the WASI preview 1
//! adapter a C module is componentized with. The templates live in
//! `templates/<lang>/` and are compiled into the binary.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail};

use crate::runtime::CONTRACT_VERSION;

/// The world a plugin targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Probe,
    Exporter,
    Detector,
    Notifier,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Probe, Kind::Exporter, Kind::Detector, Kind::Notifier];

    /// The world's name in `wit/plugin.wit`.
    pub fn world(self) -> &'static str {
        match self {
            Kind::Probe => "probe",
            Kind::Exporter => "exporter",
            Kind::Detector => "detector",
            Kind::Notifier => "notifier",
        }
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.world() == s)
            .ok_or_else(|| {
                format!("unknown kind `{s}`: expected probe, exporter, detector or notifier")
            })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

/// The language of the project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];

    pub fn id(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }

    /// The command that builds a project, run in its directory.
    pub fn build_command(self) -> &'static str {
        match self {
            Lang::Rust => "cargo build --release --target wasm32-wasip2",
            Lang::Python => "make",
            Lang::Js => "npm install && npm run build",
            Lang::C => "make",
        }
    }

    /// Where the build leaves the component, relative to the project.
    pub fn output(self, name: &str) -> String {
        match self {
            Lang::Rust => format!(
                "target/wasm32-wasip2/release/{}.wasm",
                name.replace('-', "_")
            ),
            _ => format!("{name}.wasm"),
        }
    }

    /// What must be installed once for the build command to work.
    fn prerequisites(self) -> &'static str {
        match self {
            Lang::Rust => "Rust 1.95 or later and `rustup target add wasm32-wasip2`",
            Lang::Python => "`pip install -r requirements.txt` (componentize-py 0.25.1)",
            Lang::Js => "Node.js 20 and npm (`npm install` fetches ComponentizeJS 0.23.0)",
            Lang::C => {
                "Debian's `clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc make`, and \
                 `cargo install wit-bindgen-cli@0.61.1 --no-default-features --features c` and \
                 `cargo install wasm-tools@1.258.3 --no-default-features --features component`"
            }
        }
    }

    /// The author guide in lookout's docs.
    fn guide(self) -> &'static str {
        match self {
            Lang::Rust => "docs/guide-rust.md",
            Lang::Python => "docs/guide-python.md",
            Lang::Js => "docs/guide-javascript.md",
            Lang::C => "docs/guide-c.md",
        }
    }
}

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rust" | "rs" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            "c" => Ok(Lang::C),
            _ => Err(format!(
                "unknown language `{s}`: expected rust, python, js or c"
            )),
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The contract, as every project gets it (`wit/`).
pub const WIT_FILES: &[(&str, &str)] = &[
    ("wit/plugin.wit", include_str!("../../../wit/plugin.wit")),
    (
        "wit/deps/cli.wit",
        include_str!("../../../wit/deps/cli.wit"),
    ),
    (
        "wit/deps/clocks.wit",
        include_str!("../../../wit/deps/clocks.wit"),
    ),
    (
        "wit/deps/filesystem.wit",
        include_str!("../../../wit/deps/filesystem.wit"),
    ),
    (
        "wit/deps/http.wit",
        include_str!("../../../wit/deps/http.wit"),
    ),
    ("wit/deps/io.wit", include_str!("../../../wit/deps/io.wit")),
    (
        "wit/deps/random.wit",
        include_str!("../../../wit/deps/random.wit"),
    ),
    (
        "wit/deps/sockets.wit",
        include_str!("../../../wit/deps/sockets.wit"),
    ),
];

/// The Rust SDK's source, vendored into Rust projects under `sdk/`; its
/// `bindings.rs` reads the contract from `../wit`, which is the project's.
const SDK_FILES: &[(&str, &str)] = &[
    (
        "src/bindings.rs",
        include_str!("../../../plugin-sdk/src/bindings.rs"),
    ),
    (
        "src/config.rs",
        include_str!("../../../plugin-sdk/src/config.rs"),
    ),
    (
        "src/detect.rs",
        include_str!("../../../plugin-sdk/src/detect.rs"),
    ),
    (
        "src/encoding.rs",
        include_str!("../../../plugin-sdk/src/encoding.rs"),
    ),
    (
        "src/error.rs",
        include_str!("../../../plugin-sdk/src/error.rs"),
    ),
    (
        "src/export.rs",
        include_str!("../../../plugin-sdk/src/export.rs"),
    ),
    (
        "src/fs_stats.rs",
        include_str!("../../../plugin-sdk/src/fs_stats.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../plugin-sdk/src/http.rs"),
    ),
    (
        "src/http/client_config.rs",
        include_str!("../../../plugin-sdk/src/http/client_config.rs"),
    ),
    (
        "src/http/status.rs",
        include_str!("../../../plugin-sdk/src/http/status.rs"),
    ),
    (
        "src/http/url.rs",
        include_str!("../../../plugin-sdk/src/http/url.rs"),
    ),
    (
        "src/icmp.rs",
        include_str!("../../../plugin-sdk/src/icmp.rs"),
    ),
    (
        "src/info.rs",
        include_str!("../../../plugin-sdk/src/info.rs"),
    ),
    ("src/kv.rs", include_str!("../../../plugin-sdk/src/kv.rs")),
    ("src/lib.rs", include_str!("../../../plugin-sdk/src/lib.rs")),
    ("src/log.rs", include_str!("../../../plugin-sdk/src/log.rs")),
    ("src/net.rs", include_str!("../../../plugin-sdk/src/net.rs")),
    (
        "src/notify.rs",
        include_str!("../../../plugin-sdk/src/notify.rs"),
    ),
    (
        "src/report.rs",
        include_str!("../../../plugin-sdk/src/report.rs"),
    ),
    (
        "src/target.rs",
        include_str!("../../../plugin-sdk/src/target.rs"),
    ),
    (
        "src/template.rs",
        include_str!("../../../plugin-sdk/src/template.rs"),
    ),
    ("src/tls.rs", include_str!("../../../plugin-sdk/src/tls.rs")),
    ("src/udp.rs", include_str!("../../../plugin-sdk/src/udp.rs")),
    (
        "tests/localhost-cert.pem",
        include_str!("../../../plugin-sdk/tests/localhost-cert.pem"),
    ),
];

/// A file of a project: its path in the project and its content, with
/// `{{name}}`, `{{world}}`, `{{metric}}`, `{{contract}}` and
/// `{{sdk_version}}` still to be filled in.
type Template = (&'static str, &'static [u8]);

fn sources(lang: Lang, kind: Kind) -> Vec<Template> {
    macro_rules! t {
        ($path:literal, $file:literal) => {
            (
                $path,
                include_bytes!(concat!("templates/", $file)).as_slice(),
            )
        };
    }
    let mut files = match (lang, kind) {
        (Lang::Rust, Kind::Probe) => vec![t!("src/lib.rs", "rust/probe.rs")],
        (Lang::Rust, Kind::Exporter) => vec![t!("src/lib.rs", "rust/exporter.rs")],
        (Lang::Rust, Kind::Detector) => vec![t!("src/lib.rs", "rust/detector.rs")],
        (Lang::Rust, Kind::Notifier) => vec![t!("src/lib.rs", "rust/notifier.rs")],
        (Lang::Python, Kind::Probe) => vec![
            t!("app.py", "python/probe.py"),
            t!("lookout_http.py", "python/lookout_http.py"),
        ],
        (Lang::Python, Kind::Exporter) => vec![
            t!("app.py", "python/exporter.py"),
            t!("lookout_http.py", "python/lookout_http.py"),
        ],
        (Lang::Python, Kind::Detector) => vec![
            t!("app.py", "python/detector.py"),
            t!("detection.py", "python/detection.py"),
            t!("lookout_http.py", "python/lookout_http.py"),
        ],
        (Lang::Python, Kind::Notifier) => vec![
            t!("app.py", "python/notifier.py"),
            t!("lookout_http.py", "python/lookout_http.py"),
        ],
        (Lang::Js, Kind::Probe) => vec![t!("plugin.js", "js/probe.js")],
        (Lang::Js, Kind::Exporter) => vec![t!("plugin.js", "js/exporter.js")],
        (Lang::Js, Kind::Detector) => vec![t!("plugin.js", "js/detector.js")],
        (Lang::Js, Kind::Notifier) => vec![t!("plugin.js", "js/notifier.js")],
        (Lang::C, Kind::Probe) => vec![t!("plugin.c", "c/probe.c")],
        (Lang::C, Kind::Exporter) => vec![t!("plugin.c", "c/exporter.c")],
        (Lang::C, Kind::Detector) => vec![t!("plugin.c", "c/detector.c")],
        (Lang::C, Kind::Notifier) => vec![t!("plugin.c", "c/notifier.c")],
    };
    match lang {
        Lang::Rust => {
            files.push(t!("Cargo.toml", "rust/Cargo.toml"));
            files.push(t!("sdk/Cargo.toml", "rust/sdk-Cargo.toml"));
        }
        Lang::Python => {
            files.push(t!("Makefile", "python/Makefile"));
            files.push(t!("requirements.txt", "python/requirements.txt"));
        }
        Lang::Js => files.push(t!("package.json", "js/package.json")),
        Lang::C => {
            files.push(t!("Makefile", "c/Makefile"));
            files.push((
                "wasi_snapshot_preview1.reactor.wasm",
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            ));
        }
    }
    files
}

/// Checks a plugin name: what `describe` reports and lookout installs
/// under (`[a-z][a-z0-9-]*`).
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        bail!(
            "invalid plugin name `{name}`: use lowercase letters, digits and `-`, starting with a letter"
        );
    }
    Ok(())
}

/// Writes a project for plugin `name` into `dir`, which must not exist or
/// be empty. Returns the files written, relative to `dir`.
pub fn create(dir: &Path, name: &str, kind: Kind, lang: Lang) -> anyhow::Result<Vec<PathBuf>> {
    check_name(name)?;
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} already exists and is not empty; choose another --dir",
            dir.display()
        );
    }
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{world}}", kind.world())
            .replace("{{metric}}", &name.replace('-', "_"))
            .replace("{{contract}}", CONTRACT_VERSION)
            .replace("{{sdk_version}}", env!("CARGO_PKG_VERSION"))
    };
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (path, content) in WIT_FILES {
        files.push(((*path).into(), content.as_bytes().to_vec()));
    }
    for (path, content) in sources(lang, kind) {
        let content = match std::str::from_utf8(content) {
            Ok(text) => fill(text).into_bytes(),
            Err(_) => content.to_vec(), // the adapter
        };
        files.push((path.into(), content));
    }
    if lang == Lang::Rust {
        for (path, content) in SDK_FILES {
            files.push((format!("sdk/{path}"), content.as_bytes().to_vec()));
        }
    }
    files.push(("README.md".into(), readme(name, kind, lang).into_bytes()));
    files.push((".gitignore".into(), gitignore(name, lang).into_bytes()));

    let mut written = Vec::new();
    for (path, content) in files {
        let target = dir.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, content)
            .with_context(|| format!("writing {}", target.display()))?;
        written.push(PathBuf::from(path));
    }
    Ok(written)
}

fn readme(name: &str, kind: Kind, lang: Lang) -> String {
    let output = lang.output(name);
    format!(
        "# {name}\n\n\
         A lookout {kind} plugin in {lang_name}, targeting world `{kind}` of \
         `lookout:plugin@{CONTRACT_VERSION}` (the contract is in `wit/`).\n\n\
         Once: {prerequisites}.\n\n\
         ```sh\n\
         {build}      # builds {output}\n\
         lookout plugin install {output}\n\
         ```\n\n\
         See lookout's {guide} for the language's details and \
         docs/plugin-guide.md for the contract, capabilities and limits.\n",
        lang_name = match lang {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
            Lang::C => "C",
        },
        prerequisites = lang.prerequisites(),
        build = lang.build_command(),
        guide = lang.guide(),
    )
}

fn gitignore(name: &str, lang: Lang) -> String {
    match lang {
        Lang::Rust => "/target\n".into(),
        Lang::Python => format!("/{name}.wasm\n__pycache__/\n"),
        Lang::Js => format!("/{name}.wasm\nnode_modules/\n"),
        Lang::C => format!("/{name}.wasm\n/gen\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of the SDK is vendored: a file added to the SDK and not
    /// to `SDK_FILES` would leave scaffolded Rust projects unbuildable.
    #[test]
    fn every_sdk_source_is_vendored() {
        let root = Path::new(&manifest_dir()).join("../plugin-sdk");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.join("src"), root.join("tests")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let relative = path.strip_prefix(&root).unwrap();
                    on_disk.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = SDK_FILES.iter().map(|(p, _)| (*p).to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    /// The same for the contract.
    #[test]
    fn every_wit_file_is_embedded() {
        let root = Path::new(&manifest_dir()).join("..");
        let mut on_disk: Vec<String> = std::fs::read_dir(root.join("wit/deps"))
            .unwrap()
            .map(|e| format!("wit/deps/{}", e.unwrap().file_name().to_string_lossy()))
            .chain(["wit/plugin.wit".to_string()])
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = WIT_FILES.iter().map(|(p, _)| (*p).to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn names_kinds_and_languages_are_checked() {
        assert!(check_name("disk-check2").is_ok());
        for bad in ["", "Disk", "2fast", "a_b", "a-", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!("exporter".parse::<Kind>(), Ok(Kind::Exporter));
        assert!(
            "scraper"
                .parse::<Kind>()
                .unwrap_err()
                .contains("probe, exporter")
        );
        assert_eq!("py".parse::<Lang>(), Ok(Lang::Python));
        assert!(
            "go".parse::<Lang>()
                .unwrap_err()
                .contains("rust, python, js or c")
        );
    }

    #[test]
    fn projects_are_filled_in_and_an_existing_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for lang in Lang::ALL {
            for kind in Kind::ALL {
                let project = dir.path().join(format!("{lang}-{kind}"));
                let files = create(&project, "my-plugin", kind, lang).unwrap();
                assert!(files.contains(&PathBuf::from("wit/plugin.wit")));
                // The SDK and the contract are copied as they are.
                for file in files
                    .iter()
                    .filter(|f| !f.starts_with("sdk") && !f.starts_with("wit"))
                {
                    let Ok(text) = std::fs::read_to_string(project.join(file)) else {
                        continue; // the adapter
                    };
                    assert!(
                        !text.contains("{{"),
                        "{lang} {kind}: {} keeps a placeholder",
                        file.display()
                    );
                }
                let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
                assert!(readme.contains(lang.build_command()), "{readme}");
                let error = create(&project, "my-plugin", kind, lang).unwrap_err();
                assert!(error.to_string().contains("not empty"), "{error}");
            }
        }
        let c = dir.path().join("c-probe");
        let adapter = std::fs::read(c.join("wasi_snapshot_preview1.reactor.wasm")).unwrap();
        assert_eq!(&adapter[..4], b"\0asm");
    }

    /// Read at run time: a build cache shared between checkouts keeps the
    /// compile-time path of whichever checkout built it first.
    fn manifest_dir() -> std::ffi::OsString {
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
    }
}
