//! Where plugins come from besides a local file: an HTTPS URL pinned by its
//! sha256, or an OCI registry following the WebAssembly OCI artifact
//! conventions (a manifest whose config is `application/vnd.wasm.config.v0+json`
//! and whose one layer is the component, `application/wasm`), the layout
//! `wkg`, `oras` and the registries people already run understand.
//!
//! Every byte that arrives is checked against the digest that names it (the
//! URL's `--sha256`, each blob's descriptor, the manifest's own digest when
//! the reference is one) before anything is installed; a mismatch is an
//! error naming both digests.
//!
//! Registries on a loopback address are spoken to over plain HTTP (what a
//! local `registry` serves), any other over HTTPS unless `plain_http` says
//! otherwise. Registries that ask for credentials get them the way Docker
//! clients give them: `Basic` with a username and password, or a `Bearer`
//! token fetched from the realm the registry names (anonymously when no
//! credentials are known, as public images on token registries need).
//! Credentials come from `LOOKOUT_REGISTRY_USERNAME` and
//! `LOOKOUT_REGISTRY_PASSWORD`, else from Docker's `config.json` as Docker
//! reads it: the registry's `credHelpers` entry, else the `credsStore`
//! helper (both run as `docker-credential-<name> get`), else its `auths`
//! entry (what `docker login` and `oras login` write without a helper).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of a WebAssembly component's config blob.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the component layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";

/// Largest component accepted from the network (a componentize-py plugin
/// is ~18 MB).
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;
/// Largest manifest or config blob accepted.
const MAX_METADATA_BYTES: u64 = 4 << 20;
/// Deadline of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    BadReference(String),
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{what} has sha256:{found}, but sha256:{expected} was asked for: refusing it")]
    DigestMismatch {
        what: String,
        expected: String,
        found: String,
    },
    #[error("{0}")]
    NotAComponent(String),
}

/// `oci://host[:port]/namespace/name:tag` or `…/name@sha256:<hex>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciReference {
    pub registry: String,
    pub repository: String,
    pub reference: String,
}

impl OciReference {
    /// Whether the reference is a digest (`@sha256:…`) rather than a tag.
    pub fn is_digest(&self) -> bool {
        self.reference.starts_with("sha256:")
    }

    fn base(&self, plain_http: bool) -> String {
        let host = self.registry.split(':').next().unwrap_or("");
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]")
            || self.registry.starts_with("[::1]");
        let scheme = if plain_http || loopback {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{}", self.registry, self.repository)
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = if self.is_digest() { '@' } else { ':' };
        write!(
            f,
            "oci://{}/{}{sep}{}",
            self.registry, self.repository, self.reference
        )
    }
}

impl FromStr for OciReference {
    type Err = FetchError;

    fn from_str(text: &str) -> Result<Self, FetchError> {
        let bad = |why: &str| {
            FetchError::BadReference(format!(
                "`{text}` is not an OCI reference (oci://host[:port]/namespace/name:tag or …@sha256:<digest>): {why}"
            ))
        };
        let rest = text
            .strip_prefix("oci://")
            .ok_or_else(|| bad("no oci://"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("no repository after the registry"))?;
        if registry.is_empty() {
            return Err(bad("no registry host"));
        }
        let (repository, reference) = match path.split_once('@') {
            Some((repo, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("a digest must be sha256:<64 hex digits>"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("a digest must be sha256:<64 hex digits>"));
                }
                (repo, digest.to_ascii_lowercase())
            }
            None => match path.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (repo, tag.to_string()),
                _ => (path, "latest".to_string()),
            },
        };
        let valid_component = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        if !repository.split('/').all(valid_component) {
            return Err(bad(
                "repository names are lowercase [a-z0-9._-] separated by /",
            ));
        }
        let valid_tag = reference.len() <= 128
            && reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b));
        if !valid_tag {
            return Err(bad("a tag is [A-Za-z0-9._-], at most 128 characters"));
        }
        Ok(OciReference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            reference,
        })
    }
}

/// What a pull brought: the component and where exactly it came from.
#[derive(Debug)]
pub struct Pulled {
    pub wasm: Vec<u8>,
    /// `sha256:<hex>` of the manifest, to pin the reference.
    pub manifest_digest: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A username and password for one registry.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// Where they came from, for error messages.
    pub origin: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (password hidden) from {}",
            self.username, self.origin
        )
    }
}

impl Credentials {
    /// The credentials lookout would use for `registry` (`host[:port]`),
    /// or why there are none and how to give them.
    pub fn for_registry(registry: &str) -> Result<Credentials, String> {
        Self::look_up(registry).map_err(|why| {
            format!(
                "{why}; set LOOKOUT_REGISTRY_USERNAME and LOOKOUT_REGISTRY_PASSWORD, or \
                 `docker login {registry}`"
            )
        })
    }

    fn look_up(registry: &str) -> Result<Credentials, String> {
        if let (Ok(username), Ok(password)) = (
            std::env::var("LOOKOUT_REGISTRY_USERNAME"),
            std::env::var("LOOKOUT_REGISTRY_PASSWORD"),
        ) {
            return Ok(Credentials {
                username,
                password,
                origin: "LOOKOUT_REGISTRY_USERNAME/PASSWORD".into(),
            });
        }
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(std::path::PathBuf::from)
            .or_else(|| dirs::home_dir().map(|home| home.join(".docker")))
            .ok_or("no LOOKOUT_REGISTRY_USERNAME/PASSWORD and no home directory")?;
        let path = dir.join("config.json");
        let none = || {
            format!(
                "no LOOKOUT_REGISTRY_USERNAME/PASSWORD and none for {registry} in {}",
                path.display()
            )
        };
        let Ok(bytes) = std::fs::read(&path) else {
            return Err(none());
        };
        let config: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
        if let Some(helper) = config
            .get("credHelpers")
            .and_then(|helpers| entry_for(helpers, registry))
            .and_then(|helper| helper.as_str())
        {
            return from_helper(helper, registry, "credHelpers", &path);
        }
        let from_store = config
            .get("credsStore")
            .and_then(|store| store.as_str())
            .map(|store| from_helper(store, registry, "credsStore", &path));
        if let Some(Ok(credentials)) = from_store {
            return Ok(credentials);
        }
        let from_auths = config
            .get("auths")
            .and_then(|auths| entry_for(auths, registry))
            .and_then(|entry| entry.get("auth")?.as_str())
            .and_then(|auth| {
                use base64::Engine as _;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth)
                    .ok()?;
                let (username, password) = String::from_utf8(decoded)
                    .ok()?
                    .split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))?;
                Some(Credentials {
                    username,
                    password,
                    origin: path.display().to_string(),
                })
            });
        match (from_auths, from_store) {
            (Some(credentials), _) => Ok(credentials),
            // The store is where `docker login` put them: say why it had none.
            (None, Some(Err(why))) => Err(why),
            (None, _) => Err(none()),
        }
    }

    fn basic(&self) -> String {
        use base64::Engine as _;
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// The value of the `config.json` map entry (`auths`, `credHelpers`) for
/// `registry`: keys are `host[:port]`, sometimes with a scheme or a path.
fn entry_for<'c>(map: &'c serde_json::Value, registry: &str) -> Option<&'c serde_json::Value> {
    map.as_object()?.iter().find_map(|(key, entry)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()?;
        (host == registry).then_some(entry)
    })
}

/// Asks Docker's credential helper `docker-credential-<helper>` (named by
/// `field` of `config`) for `registry`'s credentials, as `docker` does:
/// `get`, the registry on stdin, `{"Username", "Secret"}` on stdout.
fn from_helper(
    helper: &str,
    registry: &str,
    field: &str,
    config: &std::path::Path,
) -> Result<Credentials, String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let named = format!("{program} (`{field}` in {})", config.display());
    // The registry goes into a pipe before the helper starts, not after:
    // a helper that exits without reading it would otherwise make that
    // write raise SIGPIPE, which kills one-shot commands.
    let (input, mut feed) = std::io::pipe().map_err(|e| format!("running {named}: {e}"))?;
    feed.write_all(registry.as_bytes())
        .map_err(|e| format!("running {named}: {e}"))?;
    drop(feed);
    let child = Command::new(&program)
        .arg("get")
        .stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {named}: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running {named}: {e}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(if out.stdout.is_empty() {
            &out.stderr
        } else {
            &out.stdout
        })
        .trim()
        .chars()
        .take(200)
        .collect::<String>();
        return Err(format!(
            "{named} has no credentials for {registry} ({}: {said})",
            out.status
        ));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!("{named} answered for {registry} with something else than its JSON: {e}")
    })?;
    if answer.username == "<token>" {
        return Err(format!(
            "{named} gave an identity token for {registry}; lookout needs a username and password"
        ));
    }
    Ok(Credentials {
        username: answer.username,
        password: answer.secret,
        origin: named,
    })
}

/// Requests to one registry, answering its challenges: on a 401 it
/// authorises (Basic, or a Bearer token from the named realm) and retries
/// once; the authorization that worked is kept for the next requests.
struct Session {
    agent: ureq::Agent,
    registry: String,
    /// The credentials to answer with, or why there are none.
    credentials: Result<Credentials, String>,
    authorization: Option<String>,
}

type Reply = Result<ureq::http::Response<ureq::Body>, ureq::Error>;

impl Session {
    fn new(registry: &str) -> Session {
        Session {
            agent: agent(),
            registry: registry.to_string(),
            credentials: Credentials::for_registry(registry),
            authorization: None,
        }
    }

    /// Sends what `request` builds (given the Authorization header to add)
    /// and answers one challenge.
    fn send(&mut self, url: &str, request: impl Fn(&ureq::Agent, Option<&str>) -> Reply) -> Reply {
        let response = request(&self.agent, self.authorization.as_deref())?;
        if response.status().as_u16() != 401 {
            return Ok(response);
        }
        let Some(challenge) = response
            .headers()
            .get("www-authenticate")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
        else {
            return Ok(response);
        };
        match self.authorize(&challenge) {
            Some(authorization) if self.authorization.as_ref() != Some(&authorization) => {
                self.authorization = Some(authorization);
                request(&self.agent, self.authorization.as_deref())
            }
            _ => {
                tracing::debug!(url, challenge, "registry challenge not answered");
                Ok(response)
            }
        }
    }

    /// The Authorization header that answers `challenge`, if lookout can.
    fn authorize(&self, challenge: &str) -> Option<String> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => self.credentials.as_ref().ok().map(Credentials::basic),
            "bearer" => {
                let params = challenge_params(params);
                let realm = params.iter().find(|(k, _)| k == "realm")?.1.clone();
                let mut url = realm;
                let query: Vec<String> = params
                    .iter()
                    .filter(|(k, _)| k == "service" || k == "scope")
                    .map(|(k, v)| {
                        format!(
                            "{k}={}",
                            form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                        )
                    })
                    .collect();
                if !query.is_empty() {
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str(&query.join("&"));
                }
                let mut request = self.agent.get(&url);
                if let Ok(credentials) = &self.credentials {
                    request = request.header("Authorization", credentials.basic());
                }
                let body = read_ok(
                    &url,
                    request.call(),
                    MAX_METADATA_BYTES,
                    &self.registry,
                    self.known(),
                )
                .ok()?;
                let token: serde_json::Value = serde_json::from_slice(&body).ok()?;
                let token = token
                    .get("token")
                    .or_else(|| token.get("access_token"))?
                    .as_str()?;
                Some(format!("Bearer {token}"))
            }
            _ => None,
        }
    }

    fn known(&self) -> Result<&Credentials, &str> {
        self.credentials.as_ref().map_err(String::as_str)
    }

    fn read(
        &mut self,
        url: &str,
        limit: u64,
        request: impl Fn(&ureq::Agent, Option<&str>) -> Reply,
    ) -> Result<Vec<u8>, FetchError> {
        let reply = self.send(url, request);
        read_ok(url, reply, limit, &self.registry, self.known())
    }
}

/// `realm="…",service="…",scope="…"` as pairs.
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((value, remainder)) => (value.to_string(), remainder),
                None => (quoted.to_string(), ""),
            }
        } else {
            match after.split_once(',') {
                Some((value, remainder)) => (value.trim().to_string(), remainder),
                None => (after.trim().to_string(), ""),
            }
        };
        params.push((key, value));
        rest = remainder.trim_start_matches(',').trim();
    }
    params
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into()
}

fn http_error(url: &str, message: impl Into<String>) -> FetchError {
    FetchError::Http {
        url: url.to_string(),
        message: message.into(),
    }
}

/// Reads a response's body, at most `limit` bytes; non-2xx is an error
/// naming the status and what the server said.
fn read_ok(
    url: &str,
    response: Reply,
    limit: u64,
    registry: &str,
    credentials: Result<&Credentials, &str>,
) -> Result<Vec<u8>, FetchError> {
    let mut response = response.map_err(|e| http_error(url, e.to_string()))?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| http_error(url, format!("reading the body: {e}")))?;
    if !status.is_success() {
        let mut message = format!("HTTP {status}");
        if status.as_u16() == 401
            && let Some(asked) = response.headers().get("www-authenticate")
        {
            let asked = asked.to_str().unwrap_or("?");
            message += &match credentials {
                Ok(credentials) => format!(
                    " (the credentials of {} for {registry}, from {}, were refused; it asks: {asked})",
                    credentials.username, credentials.origin
                ),
                Err(why) => format!(" (the server asks for credentials: {asked}; {why})"),
            };
        }
        let text = String::from_utf8_lossy(&body);
        if !text.trim().is_empty() {
            message += &format!(": {}", text.trim().chars().take(300).collect::<String>());
        }
        return Err(http_error(url, message));
    }
    Ok(body)
}

/// Downloads `url` and checks it against `sha256` (hex) before returning.
pub fn fetch_url(url: &str, sha256: &str) -> Result<Vec<u8>, FetchError> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(FetchError::BadReference(format!(
            "`{url}` is not an http(s) URL"
        )));
    }
    let bytes = read_ok(
        url,
        agent().get(url).call(),
        MAX_COMPONENT_BYTES,
        url,
        Err("lookout sends no credentials to plain URLs"),
    )?;
    check_digest(url, &bytes, sha256)?;
    Ok(bytes)
}

/// Checks `bytes` against a sha256 given as hex or `sha256:<hex>`.
pub fn check_digest(what: &str, bytes: &[u8], expected_hex: &str) -> Result<(), FetchError> {
    let found = sha256_hex(bytes);
    let expected = expected_hex
        .trim_start_matches("sha256:")
        .to_ascii_lowercase();
    if found != expected {
        return Err(FetchError::DigestMismatch {
            what: what.to_string(),
            expected,
            found,
        });
    }
    Ok(())
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Pulls the component `reference` names, every blob checked against its
/// digest.
pub fn pull(reference: &OciReference, plain_http: bool) -> Result<Pulled, FetchError> {
    let base = reference.base(plain_http);
    let mut session = Session::new(&reference.registry);
    let url = format!("{base}/manifests/{}", reference.reference);
    let manifest_bytes = session.read(&url, MAX_METADATA_BYTES, |agent, auth| {
        with_auth(agent.get(&url), auth)
            .header("Accept", MANIFEST_MEDIA_TYPE)
            .call()
    })?;
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest_bytes));
    if reference.is_digest() {
        check_digest(
            &format!("manifest {reference}"),
            &manifest_bytes,
            &reference.reference,
        )?;
    }
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
        FetchError::NotAComponent(format!("{reference}: not an OCI image manifest: {e}"))
    })?;
    if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(FetchError::NotAComponent(format!(
            "{reference}: its config is `{}`, not a WebAssembly component's `{WASM_CONFIG_MEDIA_TYPE}`",
            manifest.config.media_type
        )));
    }
    let wasm_layers: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == WASM_LAYER_MEDIA_TYPE)
        .collect();
    let [layer] = wasm_layers.as_slice() else {
        return Err(FetchError::NotAComponent(format!(
            "{reference}: expected one `{WASM_LAYER_MEDIA_TYPE}` layer, found {}",
            wasm_layers.len()
        )));
    };
    if layer.size > MAX_COMPONENT_BYTES {
        return Err(FetchError::NotAComponent(format!(
            "{reference}: the component is {} bytes, over the {} MiB lookout accepts",
            layer.size,
            MAX_COMPONENT_BYTES >> 20
        )));
    }
    let url = format!("{base}/blobs/{}", layer.digest);
    let wasm = session.read(&url, MAX_COMPONENT_BYTES, |agent, auth| {
        with_auth(agent.get(&url), auth).call()
    })?;
    let hex = layer.digest.strip_prefix("sha256:").ok_or_else(|| {
        FetchError::NotAComponent(format!(
            "{reference}: layer digest `{}` is not sha256",
            layer.digest
        ))
    })?;
    check_digest(&format!("blob {} of {reference}", layer.digest), &wasm, hex)?;
    if wasm.len() as u64 != layer.size {
        return Err(FetchError::NotAComponent(format!(
            "{reference}: the layer is {} bytes, its descriptor says {}",
            wasm.len(),
            layer.size
        )));
    }
    Ok(Pulled {
        wasm,
        manifest_digest,
    })
}

/// What the config blob says about the component, after the conventions'
/// `created`, `architecture`, `os` and `layerDigests`.
pub struct PushedComponent {
    pub wasm: Vec<u8>,
    /// The WIT world the component targets (`lookout:plugin/probe@0.3.0`).
    pub world: String,
    pub name: String,
    pub version: String,
    pub description: String,
}

/// Pushes a component under `reference` (a tag); returns the manifest's
/// digest (`sha256:…`), which pins exactly what was pushed.
pub fn push(
    reference: &OciReference,
    component: &PushedComponent,
    plain_http: bool,
) -> Result<String, FetchError> {
    let base = reference.base(plain_http);
    let mut session = Session::new(&reference.registry);
    let layer_digest = format!("sha256:{}", sha256_hex(&component.wasm));
    let config = serde_json::json!({
        "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
        "component": {
            "exports": [component.world],
            "target": component.world,
        },
    });
    let config = serde_json::to_vec(&config).expect("config serialises");
    let config_digest = format!("sha256:{}", sha256_hex(&config));
    upload_blob(&mut session, &base, &config_digest, &config)?;
    upload_blob(&mut session, &base, &layer_digest, &component.wasm)?;
    let mut annotations = serde_json::Map::new();
    for (key, value) in [
        ("org.opencontainers.image.title", &component.name),
        ("org.opencontainers.image.version", &component.version),
        (
            "org.opencontainers.image.description",
            &component.description,
        ),
    ] {
        annotations.insert(key.into(), value.as_str().into());
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        artifact_type: Some(WASM_CONFIG_MEDIA_TYPE.into()),
        config: Descriptor {
            media_type: WASM_CONFIG_MEDIA_TYPE.into(),
            digest: config_digest,
            size: config.len() as u64,
        },
        layers: vec![Descriptor {
            media_type: WASM_LAYER_MEDIA_TYPE.into(),
            digest: layer_digest,
            size: component.wasm.len() as u64,
        }],
        annotations: Some(annotations),
    };
    let manifest = serde_json::to_vec(&manifest).expect("manifest serialises");
    let url = format!("{base}/manifests/{}", reference.reference);
    session.read(&url, MAX_METADATA_BYTES, |agent, auth| {
        with_auth(agent.put(&url), auth)
            .header("Content-Type", MANIFEST_MEDIA_TYPE)
            .send(&manifest[..])
    })?;
    Ok(format!("sha256:{}", sha256_hex(&manifest)))
}

/// Uploads a blob in one request (POST for a session, PUT with the digest)
/// unless the registry has it already.
fn upload_blob(
    session: &mut Session,
    base: &str,
    digest: &str,
    bytes: &[u8],
) -> Result<(), FetchError> {
    let url = format!("{base}/blobs/{digest}");
    let head = session
        .send(&url, |agent, auth| with_auth(agent.head(&url), auth).call())
        .map_err(|e| http_error(&url, e.to_string()))?;
    if head.status().is_success() {
        return Ok(());
    }
    let url = format!("{base}/blobs/uploads/");
    let started = session
        .send(&url, |agent, auth| {
            with_auth(agent.post(&url), auth).send_empty()
        })
        .map_err(|e| http_error(&url, e.to_string()))?;
    if started.status().as_u16() != 202 {
        return read_ok(
            &url,
            Ok(started),
            MAX_METADATA_BYTES,
            &session.registry,
            session.known(),
        )
        .and_then(|_| {
            Err(http_error(
                &url,
                "the registry did not start an upload (expected 202)",
            ))
        });
    }
    let location = started
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| http_error(&url, "upload started without a Location"))?
        .to_string();
    // Location may be absolute or a path on the registry.
    let location = if location.starts_with("http://") || location.starts_with("https://") {
        location
    } else {
        let origin: String = base.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        format!("{origin}{location}")
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{sep}digest={digest}");
    session.read(&url, MAX_METADATA_BYTES, |agent, auth| {
        with_auth(agent.put(&url), auth)
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
    })?;
    Ok(())
}

/// A request with the session's Authorization header, when it has one.
fn with_auth<B>(
    request: ureq::RequestBuilder<B>,
    authorization: Option<&str>,
) -> ureq::RequestBuilder<B> {
    match authorization {
        Some(value) => request.header("Authorization", value),
        None => request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quotes_and_commas() {
        let params = challenge_params(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            params,
            [
                (
                    "realm".to_string(),
                    "https://auth.example/token".to_string()
                ),
                ("service".to_string(), "registry.example".to_string()),
                ("scope".to_string(), "repository:a/b:pull,push".to_string()),
            ]
        );
        assert_eq!(
            challenge_params("realm=x, service=y")[1],
            ("service".into(), "y".into())
        );
    }

    /// A registry with token authentication (what Docker Hub, GHCR and
    /// Harbor do): every request without the token gets a `Bearer`
    /// challenge naming the realm; the realm hands out the token,
    /// anonymously as for public images. Served from a thread on loopback.
    #[test]
    fn bearer_challenges_are_answered_with_a_token_from_the_realm() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let wasm = b"\0asm\x0d\0\x01\0".to_vec();
        let config = br#"{}"#.to_vec();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": WASM_CONFIG_MEDIA_TYPE, "digest": format!("sha256:{}", sha256_hex(&config)), "size": config.len()},
            "layers": [{"mediaType": WASM_LAYER_MEDIA_TYPE, "digest": format!("sha256:{}", sha256_hex(&wasm)), "size": wasm.len()}],
        }))
        .unwrap();
        let served = (manifest.clone(), wasm.clone());
        let tokens_issued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let issued = tokens_issued.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut authorized = false;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    authorized |= line
                        .to_ascii_lowercase()
                        .starts_with("authorization: bearer t0k");
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                let (status, extra, body) = if path.starts_with("/token?") {
                    assert!(path.contains("service=test-registry"), "{path}");
                    assert!(path.contains("scope=repository%3Aa%2Fb%3Apull"), "{path}");
                    issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    ("200 OK", String::new(), br#"{"token":"t0k"}"#.to_vec())
                } else if !authorized {
                    let challenge = format!(
                        "WWW-Authenticate: Bearer realm=\"http://{addr}/token\",service=\"test-registry\",scope=\"repository:a/b:pull\"\r\n"
                    );
                    ("401 Unauthorized", challenge, b"{}".to_vec())
                } else if path.contains("/manifests/") {
                    ("200 OK", String::new(), served.0.clone())
                } else {
                    ("200 OK", String::new(), served.1.clone())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            }
        });
        let reference: OciReference = format!("oci://{addr}/a/b:1").parse().unwrap();
        let pulled = pull(&reference, false).unwrap();
        assert_eq!(pulled.wasm, wasm);
        assert_eq!(
            pulled.manifest_digest,
            format!("sha256:{}", sha256_hex(&manifest))
        );
        // One token, reused for the blob.
        assert_eq!(tokens_issued.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn references_parse_and_bad_ones_say_why() {
        let r: OciReference = "oci://127.0.0.1:5000/lookout/http:0.1.0".parse().unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "lookout/http");
        assert_eq!(r.reference, "0.1.0");
        assert_eq!(r.base(false), "http://127.0.0.1:5000/v2/lookout/http");
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/lookout/http:0.1.0");
        let r: OciReference = "oci://ghcr.io/acme/probe".parse().unwrap();
        assert_eq!(r.reference, "latest");
        assert_eq!(r.base(false), "https://ghcr.io/v2/acme/probe");
        let digest = format!("sha256:{}", "ab".repeat(32));
        let r: OciReference = format!("oci://localhost:5000/a/b@{digest}")
            .parse()
            .unwrap();
        assert!(r.is_digest());
        assert_eq!(r.to_string(), format!("oci://localhost:5000/a/b@{digest}"));
        for bad in [
            "https://x/y",
            "oci://host",
            "oci:///a:b",
            "oci://h/Upper:tag",
            "oci://h/a@sha256:abc",
        ] {
            let err = bad.parse::<OciReference>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn digests_are_checked_and_a_mismatch_names_both() {
        let bytes = b"component";
        check_digest("x", bytes, &sha256_hex(bytes)).unwrap();
        let err = check_digest("blob", bytes, &"0".repeat(64))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&sha256_hex(bytes)) && err.contains(&"0".repeat(64)),
            "{err}"
        );
    }
}
