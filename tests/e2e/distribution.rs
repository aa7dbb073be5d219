//! Plugins from URLs and OCI registries: push to and install from a real
//! `docker-registry` (Debian's distribution/registry 2.8) on 127.0.0.1,
//! URLs pinned by sha256, tampered blobs and wrong digests refused with
//! nothing installed, and the lockfile.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::support::{Lookout, Result, free_addr, http_get, wait_for, wasm};

/// A `docker-registry serve` on a free loopback port, storing in a
/// temporary directory; killed on drop.
struct Registry {
    child: Child,
    addr: SocketAddr,
    root: tempfile::TempDir,
}

impl Registry {
    fn start() -> Result<Registry> {
        Self::start_with(None)
    }

    /// A registry that admits only `user` with `password` (htpasswd,
    /// bcrypt, as `docker-registry` wants it: Basic authentication).
    fn start_with_login(user: &str, password: &str) -> Result<Registry> {
        Self::start_with(Some((user, password)))
    }

    fn start_with(login: Option<(&str, &str)>) -> Result<Registry> {
        let root = tempfile::tempdir()?;
        let addr = free_addr()?;
        let config = root.path().join("config.yml");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            root.path().join("data").display()
        );
        if let Some((user, password)) = login {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .context("htpasswd (apt-get install apache2-utils)")?;
            let htpasswd = root.path().join("htpasswd");
            std::fs::write(&htpasswd, &out.stdout)?;
            text += &format!(
                "auth:\n  htpasswd:\n    realm: lookout-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        std::fs::write(&config, text)?;
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let registry = Registry { child, addr, root };
        wait_for(Duration::from_secs(20), "docker-registry", || {
            let expected = if login.is_some() { 401 } else { 200 };
            Ok(http_get(addr, "/v2/").ok().filter(|(s, _)| *s == expected))
        })?;
        Ok(registry)
    }

    /// The file holding blob `digest` (`sha256:<hex>`) in the registry's
    /// filesystem storage.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.root
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    Ok(hex::encode(sha2::Sha256::digest(std::fs::read(path)?)))
}

fn installed(lookout: &Lookout) -> Result<String> {
    lookout.ok(&["plugin", "list"])
}

#[test]
fn plugins_round_trip_through_a_real_oci_registry() -> Result {
    let registry = Registry::start()?;
    let noop = wasm("lookout_plugin_noop");
    let digest = sha256_file(&noop)?;
    let publisher = Lookout::new();
    publisher.install("lookout_plugin_noop")?;
    let reference = format!("oci://{}/lookout/noop:1.0", registry.addr);
    let out = publisher.ok(&["plugin", "push", "noop", &reference])?;
    assert!(out.contains(&format!("component sha256:{digest}")), "{out}");
    let manifest = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("manifest  "))
        .context("no manifest digest printed")?
        .to_string();

    // What the registry holds follows the wasm OCI conventions.
    let (status, body) = crate::support::http_request(
        registry.addr,
        "GET",
        "/v2/lookout/noop/manifests/1.0",
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        "",
    )?;
    assert_eq!(status, 200, "{body}");
    let m: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(m["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(m["layers"][0]["digest"], format!("sha256:{digest}"));

    // Installed elsewhere by tag: the same component, the source pinned to
    // the manifest's digest in the lockfile; it runs.
    let user = Lookout::new();
    let out = user.ok(&["plugin", "install", &reference])?;
    assert!(out.contains(&format!("sha256   {digest}")), "{out}");
    let lock = std::fs::read_to_string(user.data.path().join("plugins.lock"))?;
    assert!(lock.contains("name = \"noop\""), "{lock}");
    assert!(lock.contains(&format!("sha256 = \"{digest}\"")), "{lock}");
    assert!(
        lock.contains(&format!(
            "source = \"oci://{}/lookout/noop@{manifest}\"",
            registry.addr
        )),
        "{lock}"
    );
    user.ok(&["run", "noop", "--target", "x"])?;

    // By digest, and with the component's sha256 pinned: fine.
    let other = Lookout::new();
    let by_digest = format!("oci://{}/lookout/noop@{manifest}", registry.addr);
    other.ok(&["plugin", "install", &by_digest, "--sha256", &digest])?;

    // A wrong --sha256: refused, nothing installed.
    let wrong = Lookout::new();
    let out = wrong.run(&["plugin", "install", &reference, "--sha256", &"0".repeat(64)]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains(&digest) && err.contains(&"0".repeat(64)),
        "{err}"
    );
    assert!(!installed(&wrong)?.contains("noop"));

    // A tampered blob in the registry: refused with both digests.
    let blob = registry.blob_file(&format!("sha256:{digest}"));
    let mut bytes = std::fs::read(&blob)?;
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes)?;
    let tampered = Lookout::new();
    let out = tampered.run(&["plugin", "install", &reference]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("refusing") && err.contains(&format!("sha256:{digest}")),
        "{err}"
    );
    assert!(!installed(&tampered)?.contains("noop"));

    // A reference that is not there: the registry's answer, named.
    let out = tampered.run(&[
        "plugin",
        "install",
        &format!("oci://{}/lookout/absent:1.0", registry.addr),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)?.contains("404"));
    Ok(())
}

/// A registry admitting only ops/s3cret, the reference noop goes to there,
/// and a lookout with noop installed to push it.
fn login_registry_and_publisher() -> Result<(Registry, String, Lookout)> {
    let registry = Registry::start_with_login("ops", "s3cret")?;
    let reference = format!("oci://{}/lookout/noop:1.0", registry.addr);
    let publisher = Lookout::new();
    publisher.install("lookout_plugin_noop")?;
    Ok((registry, reference, publisher))
}

/// `lookout plugin install <reference>` by a new lookout whose only
/// credentials are Docker's `config_json`, with `env` set.
fn install_with_docker_config(
    reference: &str,
    config_json: &str,
    env: &[(&str, &str)],
) -> Result<(Lookout, std::process::Output)> {
    let docker = tempfile::tempdir()?;
    std::fs::write(docker.path().join("config.json"), config_json)?;
    let consumer = Lookout::new();
    let out = consumer
        .command()
        .env_remove("LOOKOUT_REGISTRY_USERNAME")
        .env_remove("LOOKOUT_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", docker.path())
        .envs(env.iter().copied())
        .args(["plugin", "install", reference])
        .output()?;
    Ok((consumer, out))
}

#[test]
fn registries_that_ask_for_credentials_get_them_from_the_environment_or_docker_config() -> Result {
    let (registry, reference, publisher) = login_registry_and_publisher()?;
    let push = |env: &[(&str, &str)]| {
        publisher
            .command()
            .env_remove("LOOKOUT_REGISTRY_USERNAME")
            .env_remove("LOOKOUT_REGISTRY_PASSWORD")
            .env("DOCKER_CONFIG", publisher.data.path().join("no-docker"))
            .envs(env.iter().copied())
            .args(["plugin", "push", "noop", &reference])
            .output()
    };

    // Anonymous: refused, saying how to give credentials.
    let out = push(&[])?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("401")
            && err.contains("LOOKOUT_REGISTRY_USERNAME")
            && err.contains("docker login"),
        "{err}"
    );
    // Wrong password: refused, naming whose credentials and from where.
    let out = push(&[
        ("LOOKOUT_REGISTRY_USERNAME", "ops"),
        ("LOOKOUT_REGISTRY_PASSWORD", "guess"),
    ])?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("credentials of ops") && err.contains("were refused"),
        "{err}"
    );
    // Right password: pushed.
    let out = push(&[
        ("LOOKOUT_REGISTRY_USERNAME", "ops"),
        ("LOOKOUT_REGISTRY_PASSWORD", "s3cret"),
    ])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Installing with what `docker login` leaves in config.json.
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("ops:s3cret");
    let (consumer, out) = install_with_docker_config(
        &reference,
        &format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.addr
        ),
        &[],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(installed(&consumer)?.contains("noop"));
    // Without them the same install is refused and nothing is installed.
    let stranger = Lookout::new();
    let out = stranger
        .command()
        .env("DOCKER_CONFIG", stranger.data.path())
        .args(["plugin", "install", &reference])
        .output()?;
    assert!(!out.status.success());
    assert!(!installed(&stranger)?.contains("noop"));
    Ok(())
}

/// Docker's credential helpers, asked as `docker` asks them: the
/// registry's `credHelpers` entry first, else the `credsStore`; one that has
/// nothing, or is missing, is named in the refusal.
#[test]
fn docker_credential_helpers_are_asked_for_the_registrys_credentials() -> Result {
    let (registry, reference, publisher) = login_registry_and_publisher()?;
    let pushed = publisher
        .command()
        .env("LOOKOUT_REGISTRY_USERNAME", "ops")
        .env("LOOKOUT_REGISTRY_PASSWORD", "s3cret")
        .args(["plugin", "push", "noop", &reference])
        .output()?;
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    // Two helpers on PATH: one that knows this registry (and writes down
    // what it was asked), one that knows nothing, as a keychain without
    // the entry answers.
    let helpers = tempfile::tempdir()?;
    let asked = helpers.path().join("asked");
    let knowing = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r server\necho \"$server\" >> {asked}\n\
         if [ \"$server\" = \"{}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"ops\",\"Secret\":\"s3cret\"}}' \"$server\"\n\
         else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        registry.addr,
        asked = asked.display()
    );
    let empty = "#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n";
    for (name, script) in [("knowing", knowing.as_str()), ("empty", empty)] {
        let path = helpers.path().join(format!("docker-credential-{name}"));
        std::fs::write(&path, script)?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    let path = format!(
        "{}:{}",
        helpers.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let install = |config_json: &str| {
        install_with_docker_config(&reference, config_json, &[("PATH", path.as_str())])
    };

    let installs = |config_json: &str| -> Result {
        let (consumer, out) = install(config_json)?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{config_json}: {err}");
        assert!(installed(&consumer)?.contains("noop"), "{config_json}");
        Ok(())
    };
    // Refused, and nothing installed: what lookout said.
    let refused = |config_json: &str| -> Result<String> {
        let (consumer, out) = install(config_json)?;
        let err = String::from_utf8(out.stderr)?;
        assert!(!out.status.success(), "{config_json}: {err}");
        assert!(!installed(&consumer)?.contains("noop"), "{config_json}");
        Ok(err)
    };

    // credHelpers for this registry wins over a credsStore that has nothing.
    installs(&format!(
        r#"{{"credsStore": "empty", "credHelpers": {{"{}": "knowing"}}}}"#,
        registry.addr
    ))?;
    assert_eq!(
        std::fs::read_to_string(&asked)?.trim(),
        registry.addr.to_string(),
        "the helper is given the registry on stdin"
    );
    // The credsStore alone, when it has them.
    installs(r#"{"credsStore": "knowing"}"#)?;

    // A store without them: refused, naming the helper and what it said.
    let err = refused(r#"{"credsStore": "empty"}"#)?;
    assert!(
        err.contains("401")
            && err.contains("docker-credential-empty (`credsStore`")
            && err.contains("credentials not found in native keychain")
            && err.contains("docker login"),
        "{err}"
    );
    // A helper that is not there: refused, naming it.
    let err = refused(&format!(
        r#"{{"credHelpers": {{"{}": "absent"}}}}"#,
        registry.addr
    ))?;
    assert!(
        err.contains("running docker-credential-absent (`credHelpers`"),
        "{err}"
    );
    Ok(())
}

/// Serves `body` to every GET on a free loopback port, from a thread.
fn serve_bytes(body: Vec<u8>) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/wasm\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    Ok(addr)
}

#[test]
fn urls_install_only_with_the_right_sha256() -> Result {
    let noop = wasm("lookout_plugin_noop");
    let digest = sha256_file(&noop)?;
    let addr = serve_bytes(std::fs::read(&noop)?)?;
    let url = format!("http://{addr}/noop.wasm");
    let lookout = Lookout::new();

    let out = lookout.run(&["plugin", "install", &url]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)?.contains("--sha256"));

    let out = lookout.run(&["plugin", "install", &url, "--sha256", &"1".repeat(64)]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(err.contains(&digest) && err.contains("refusing"), "{err}");
    assert!(!installed(&lookout)?.contains("noop"));

    lookout.ok(&["plugin", "install", &url, "--sha256", &digest])?;
    let lock = std::fs::read_to_string(lookout.data.path().join("plugins.lock"))?;
    assert!(lock.contains(&format!("source = \"{url}\"")), "{lock}");
    lookout.ok(&["plugin", "remove", "noop"])?;
    let lock = std::fs::read_to_string(lookout.data.path().join("plugins.lock"))?;
    assert!(!lock.contains("noop"), "{lock}");
    Ok(())
}

#[test]
fn upgrades_show_the_capability_difference_and_need_consent() -> Result {
    let lookout = Lookout::new();
    let http = wasm("lookout_plugin_http");
    // The http probe asks for `tcp: {target}` (its own client), the icmp
    // probe for `icmp: {target}`.
    let icmp = wasm("lookout_plugin_icmp");
    lookout.ok(&[
        "plugin",
        "install",
        http.to_str().unwrap(),
        "--name",
        "checker",
    ])?;
    let before = std::fs::read_to_string(lookout.data.path().join("plugins.lock"))?;

    // Not confirmed (no terminal, no --yes): shown, refused, nothing changed.
    let out = lookout.run(&["plugin", "upgrade", "checker", icmp.to_str().unwrap()]);
    assert!(!out.status.success());
    let shown = String::from_utf8(out.stdout)?;
    assert!(shown.contains("newly granted    icmp: {target}"), "{shown}");
    assert!(shown.contains("no longer granted tcp: {target}"), "{shown}");
    assert!(String::from_utf8(out.stderr)?.contains("--yes"));
    assert_eq!(
        std::fs::read_to_string(lookout.data.path().join("plugins.lock"))?,
        before
    );

    // Another world: refused whatever the answer.
    let out = lookout.run(&[
        "plugin",
        "upgrade",
        "checker",
        wasm("lookout_plugin_webhook").to_str().unwrap(),
        "--yes",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)?.contains("keeps the world"));

    // With --yes: applied, the lockfile follows.
    let out = lookout.ok(&[
        "plugin",
        "upgrade",
        "checker",
        icmp.to_str().unwrap(),
        "--yes",
    ])?;
    assert!(out.contains("upgraded checker"), "{out}");
    let lock = std::fs::read_to_string(lookout.data.path().join("plugins.lock"))?;
    assert!(lock.contains(&sha256_file(&icmp)?), "{lock}");
    assert!(!lock.contains(&sha256_file(&http)?), "{lock}");
    let inspect = lookout.ok(&["plugin", "inspect", "checker"])?;
    assert!(inspect.contains("granted      icmp: {target}"), "{inspect}");
    assert!(inspect.contains("version      0.1.0"), "{inspect}");
    Ok(())
}

#[test]
fn signatures_by_trusted_keys_are_checked_and_required_when_configured() -> Result {
    let lookout = Lookout::new();
    let dir = tempfile::tempdir()?;
    let (ops, other) = (dir.path().join("ops"), dir.path().join("other"));
    let out = lookout.ok(&["plugin", "keygen", ops.to_str().unwrap()])?;
    let fingerprint = out
        .split("fingerprint ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .context("fingerprint printed")?
        .to_string();
    lookout.ok(&["plugin", "keygen", other.to_str().unwrap()])?;
    let noop = dir.path().join("noop.wasm");
    std::fs::copy(wasm("lookout_plugin_noop"), &noop)?;
    lookout.ok(&[
        "plugin",
        "sign",
        noop.to_str().unwrap(),
        "--key",
        ops.to_str().unwrap(),
    ])?;
    let sig = dir.path().join("noop.wasm.sig");
    let key = |k: &PathBuf| format!("{}.pub", k.display());

    // Verified against the wrong key: refused, nothing installed.
    let out = lookout.run(&[
        "plugin",
        "install",
        noop.to_str().unwrap(),
        "--signature",
        sig.to_str().unwrap(),
        "--trusted-key",
        &key(&other),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)?.contains("does not verify"));
    assert!(!installed(&lookout)?.contains("noop"));

    // A signature made for another component: refused.
    let http = wasm("lookout_plugin_http");
    let out = lookout.run(&[
        "plugin",
        "install",
        http.to_str().unwrap(),
        "--signature",
        sig.to_str().unwrap(),
        "--trusted-key",
        &key(&ops),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)?.contains("does not verify"));

    // The right key: installed, recorded as signed (inspect and lockfile).
    lookout.ok(&[
        "plugin",
        "install",
        noop.to_str().unwrap(),
        "--signature",
        sig.to_str().unwrap(),
        "--trusted-key",
        &key(&other),
        "--trusted-key",
        &key(&ops),
    ])?;
    let inspect = lookout.ok(&["plugin", "inspect", "noop"])?;
    assert!(
        inspect.contains(&format!("signed by    {fingerprint}")),
        "{inspect}"
    );
    let lock = std::fs::read_to_string(lookout.data.path().join("plugins.lock"))?;
    assert!(
        lock.contains(&format!("signed_by = \"{fingerprint}\"")),
        "{lock}"
    );
    lookout.ok(&["plugin", "install", http.to_str().unwrap()])?;

    // A config that requires signatures: the signed plugin passes, the
    // unsigned one is named with its line; a missing key file is named too.
    std::fs::copy(key(&ops), lookout.data.path().join("ops.pub"))?;
    let check = |config: &str| {
        let path = lookout.data.path().join("signed.toml");
        std::fs::write(&path, config)?;
        Ok::<_, anyhow::Error>(lookout.run(&["check", path.to_str().unwrap()]))
    };
    let policy = "[plugins]\nrequire_signatures = true\ntrusted_keys = [\"ops.pub\"]\n\n";
    let job = |name: &str, plugin: &str| {
        format!(
            "[[jobs]]\nname = \"{name}\"\nplugin = \"{plugin}\"\nevery = \"1m\"\ntargets = [\"x\"]\n"
        )
    };
    let ok = check(&format!("{policy}{}", job("a", "noop")))?;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = check(&format!("{policy}{}{}", job("a", "noop"), job("b", "http")))?;
    assert!(!refused.status.success());
    let err = String::from_utf8(refused.stderr)?;
    assert!(
        err.contains("signed.toml:12:") && err.contains("`http` is unsigned"),
        "{err}"
    );
    let missing = check("[plugins]\nrequire_signatures = true\ntrusted_keys = [\"nope.pub\"]\n")?;
    let err = String::from_utf8(missing.stderr)?;
    assert!(
        err.contains("signed.toml:3:") && err.contains("nope.pub"),
        "{err}"
    );
    Ok(())
}
