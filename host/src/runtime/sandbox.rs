//! What one invocation's store holds, and the capabilities it is built
//! with: every grant is turned into WASI configuration here, and everything
//! not granted stays denied.
//!
//! - HTTP: wasi:http requests go through [`HttpPolicy::send_request`], which
//!   checks the authority against the `http` grants (wasi-http does not pass
//!   through the sockets policy: the host makes the connection itself).
//! - TCP/UDP: `allow_tcp`/`allow_udp` only when granted, and a
//!   `socket_addr_check` that compares every connect/send address with the
//!   granted patterns, host names resolved when the store is built.
//! - ICMP: `lookout:plugin/icmp.echo` reaches only addresses of the `icmp`
//!   grants ([`IcmpPolicy`]), resolved the same way.
//! - File-system statistics: `lookout:plugin/filesystem-stats.stat` answers
//!   only for paths under a `statfs` or `files` grant, or any path with a
//!   `statfs` grant of `*` ([`StatfsPolicy`]).
//! - Name lookup: enabled with any tcp, udp or icmp grant (a plugin that
//!   may reach a host by name must be able to resolve it).
//! - Files: one read-only preopen per granted path; nothing else exists.
//!   The invocation then runs on a thread of its own and wasi's file calls
//!   block it ([`files_block_their_thread`]).
//! - Environment: only the named variables, copied from the host's.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::PluginStateStore;
use super::limits;
use crate::model::Grants;

/// Who is running, for log lines and key-value scoping.
#[derive(Clone, Debug)]
pub struct Identity {
    pub plugin: Arc<str>,
    pub job: Arc<str>,
    pub target: Arc<str>,
}

/// Everything one invocation's `Store` carries.
pub struct InvocationState {
    pub(super) wasi: WasiCtx,
    pub(super) http: WasiHttpCtx,
    pub(super) table: ResourceTable,
    pub(super) http_policy: HttpPolicy,
    pub(super) icmp: IcmpPolicy,
    pub(super) statfs: StatfsPolicy,
    pub(super) limiter: MemoryLimiter,
    pub(super) host: HostServices,
    /// When the epoch callback interrupts the guest.
    pub(super) deadline: Instant,
    pub(super) stderr: MemoryOutputPipe,
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InvocationState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_policy,
        }
    }
}

/// The host interface of the contract (`lookout:plugin/host`).
pub struct HostServices {
    pub(super) identity: Identity,
    pub(super) state: Arc<dyn PluginStateStore>,
    pub(super) log_lines: u32,
}

/// Splits a target into host and optional port: a URL's authority, or
/// `host:port`, or a bare host. `[v6]:port` keeps the brackets off the host.
pub fn target_host_port(target: &str) -> (String, Option<u16>) {
    let rest = match target.split_once("://") {
        Some((_, rest)) => rest,
        None => target,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority
        .rsplit_once('@')
        .map(|(_, a)| a)
        .unwrap_or(authority);
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').unwrap_or((v6, ""));
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return (host.to_ascii_lowercase(), port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host.to_ascii_lowercase(), port.parse().ok()),
        _ => (authority.to_ascii_lowercase(), None),
    }
}

/// Replaces `{target}` in grant patterns with the target's host (and port).
pub fn expand_target(patterns: &[String], target: &str) -> Vec<String> {
    let (host, port) = target_host_port(target);
    let host_port = match port {
        Some(p) if host.contains(':') => format!("[{host}]:{p}"),
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    patterns
        .iter()
        .map(|p| p.replace("{target}", &host_port))
        .collect()
}

/// A `host[:port]` pattern: host is exact, `*`, or `*.suffix`; port exact or any.
#[derive(Clone, Debug, PartialEq)]
struct HostPattern {
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    fn parse(pattern: &str) -> HostPattern {
        let (host, port) = target_host_port(pattern);
        HostPattern { host, port }
    }

    fn matches_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if self.host == "*" {
            return true;
        }
        match self.host.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => self.host == host,
        }
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        self.matches_host(host) && self.port.is_none_or(|p| p == port)
    }
}

/// Outbound HTTP policy: the `http` grants, checked per request.
pub struct HttpPolicy {
    identity: Identity,
    allowed: Vec<HostPattern>,
    deadline: Instant,
}

impl HttpPolicy {
    fn permits(&self, host: &str, port: u16) -> bool {
        self.allowed.iter().any(|p| p.matches(host, port))
    }
}

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let uri = request.uri();
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        if !self.permits(&host, port) {
            tracing::warn!(
                plugin = %self.identity.plugin, job = %self.identity.job, target = %self.identity.target,
                denied = %uri, "capability denied: outbound HTTP to a host not granted"
            );
            // Read what the guest writes of the body until it stops (see
            // `GuestBody`).
            drop(GuestBody::forward(request.into_body()));
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        // wasi-http's own timeouts default to 600 s; nothing may outlive the
        // invocation's deadline.
        let left = self.deadline.saturating_duration_since(Instant::now());
        let clamp = |t: Option<std::time::Duration>| Some(t.map_or(left, |t| t.min(left)));
        let options = options.unwrap_or_default();
        let options = wasmtime_wasi_http::RequestOptions {
            connect_timeout: clamp(options.connect_timeout),
            first_byte_timeout: clamp(options.first_byte_timeout),
            between_bytes_timeout: clamp(options.between_bytes_timeout),
        };
        drop(fut);
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, GuestBody::forward(body));
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io)
                    as Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
            ))
        })
    }
}

/// The body of a guest's outgoing request, read to its end by a task of
/// its own whatever becomes of the request. When a request fails (refused,
/// denied) while the guest is still writing its body, a dropped body would
/// break the guest's output stream, and some guest runtimes (StarlingMonkey,
/// behind JavaScript's `fetch`) trap on that instead of reporting the
/// request's error; drained, the guest's writes succeed and it sees the
/// error the response carries.
struct GuestBody {
    frames: tokio::sync::mpsc::Receiver<
        Result<http_body::Frame<bytes::Bytes>, wasmtime_wasi_http::Error>,
    >,
    size_hint: http_body::SizeHint,
}

impl GuestBody {
    /// Forwards `body` to the returned body for as long as it is read, then
    /// drains the rest.
    fn forward(body: wasmtime_wasi_http::WasiBody) -> wasmtime_wasi_http::WasiBody {
        use http_body::Body as _;
        use http_body_util::BodyExt;
        let size_hint = body.size_hint();
        let (sender, frames) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut body = body;
            let mut sender = Some(sender);
            while let Some(frame) = body.frame().await {
                if let Some(to) = &sender
                    && to.send(frame).await.is_err()
                {
                    sender = None; // the request is gone: keep draining
                }
            }
        });
        GuestBody { frames, size_hint }.boxed_unsync()
    }
}

impl http_body::Body for GuestBody {
    type Data = bytes::Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        self.frames.poll_recv(cx)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.size_hint
    }
}

/// Where `icmp.echo` may send: the `icmp` grants' addresses. A pattern's
/// port, if any, is ignored (ICMP has none).
pub struct IcmpPolicy {
    allowed: SocketAllowList,
}

impl IcmpPolicy {
    pub(super) fn permits(&self, ip: IpAddr) -> bool {
        self.allowed.permits_ip(ip)
    }
}

/// Where `filesystem-stats.stat` may look: paths under a `statfs` or a
/// `files` grant (what a plugin may read, it may know the size of), or
/// anywhere with a `statfs` grant of `*`. Relative patterns cover nothing.
#[derive(Clone, Debug, Default)]
pub struct StatfsPolicy {
    anywhere: bool,
    roots: Vec<PathBuf>,
}

impl StatfsPolicy {
    pub(super) fn new(grants: &Grants) -> StatfsPolicy {
        StatfsPolicy {
            anywhere: grants.statfs.iter().any(|p| p == "*"),
            roots: grants
                .statfs
                .iter()
                .chain(&grants.files)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .collect(),
        }
    }

    /// Whether the grants cover `path` as written: absolute, without `..`
    /// (`statfs::checked_path`). A root covers itself and what is below it,
    /// component by component (`/mnt` covers `/mnt/a`, not `/mntx`).
    pub(super) fn permits(&self, path: &Path) -> bool {
        self.anywhere || self.roots.iter().any(|root| path.starts_with(root))
    }

    /// Whether a covered path must still be checked once its symbolic links
    /// are resolved (`/proc/1/root` is under `/proc` but leads to `/`).
    pub(super) fn needs_resolving(&self) -> bool {
        !self.anywhere
    }

    /// Whether `real`, a path with its links resolved, is covered by a root
    /// as written or resolved itself. Touches the file system: call it where
    /// blocking is allowed.
    pub(super) fn permits_resolved(&self, real: &Path) -> bool {
        self.permits(real)
            || self.roots.iter().any(|root| {
                std::fs::canonicalize(root).is_ok_and(|resolved| real.starts_with(resolved))
            })
    }
}

/// Caps linear memory and remembers whether the cap was hit, so the trap
/// that follows (Rust aborts on allocation failure) is reported as a memory
/// limit rather than a bare trap.
pub struct MemoryLimiter {
    pub(super) max_bytes: usize,
    pub(super) hit: Arc<AtomicBool>,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit.store(true, Ordering::Relaxed);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= limits::MAX_TABLE_ELEMENTS)
    }
}

/// Socket addresses a plugin may reach, resolved when its store is built.
#[derive(Debug, Default)]
struct SocketAllowList {
    any_host_ports: Vec<Option<u16>>,
    addrs: HashSet<(IpAddr, Option<u16>)>,
}

impl SocketAllowList {
    async fn resolve(patterns: &[String]) -> SocketAllowList {
        let mut list = SocketAllowList::default();
        for pattern in patterns {
            let HostPattern { host, port } = HostPattern::parse(pattern);
            if host == "*" {
                list.any_host_ports.push(port);
            } else if let Ok(ip) = host.parse::<IpAddr>() {
                list.addrs.insert((ip, port));
            } else if let Ok(addrs) = tokio::net::lookup_host((host.as_str(), 0)).await {
                list.addrs.extend(addrs.map(|a| (a.ip(), port)));
            }
        }
        list
    }

    fn permits(&self, addr: SocketAddr) -> bool {
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == addr.port());
        self.any_host_ports.iter().any(port_ok)
            || self.addrs.contains(&(addr.ip(), Some(addr.port())))
            || self.addrs.contains(&(addr.ip(), None))
    }

    /// Whether some pattern covers `ip`, whatever its port.
    fn permits_ip(&self, ip: IpAddr) -> bool {
        !self.any_host_ports.is_empty() || self.addrs.iter().any(|(a, _)| *a == ip)
    }

    fn is_empty(&self) -> bool {
        self.any_host_ports.is_empty() && self.addrs.is_empty()
    }
}

/// Whether an invocation with these grants runs on a thread of its own,
/// where wasi's file calls block that thread instead of each hopping to
/// tokio's blocking pool (see `Runtime::invoke`): any plugin granted files.
pub(super) fn files_block_their_thread(grants: &Grants) -> bool {
    !grants.files.is_empty()
}

/// Builds the WASI context and HTTP policy for one invocation.
/// `blocking_files`: wasi's file calls run on the calling thread, which
/// must then be one the invocation has to itself.
pub(super) async fn build_state(
    identity: Identity,
    grants: &Grants,
    state: Arc<dyn PluginStateStore>,
    max_memory_bytes: u64,
    deadline: Instant,
    blocking_files: bool,
) -> Result<InvocationState, String> {
    let target = identity.target.to_string();
    let http = expand_target(&grants.http, &target);
    let tcp = Arc::new(SocketAllowList::resolve(&expand_target(&grants.tcp, &target)).await);
    let udp = Arc::new(SocketAllowList::resolve(&expand_target(&grants.udp, &target)).await);
    let icmp = SocketAllowList::resolve(&expand_target(&grants.icmp, &target)).await;

    let stderr = MemoryOutputPipe::new(limits::STDERR_CAPTURE_BYTES);
    let mut builder = WasiCtxBuilder::new();
    builder.stderr(stderr.clone());
    builder.allow_tcp(!tcp.is_empty());
    builder.allow_udp(!udp.is_empty());
    // Granted patterns, not what they resolved to: a target whose name does
    // not resolve must fail in the plugin as "name not resolved", not as a
    // sandbox refusal.
    builder.allow_ip_name_lookup(
        !grants.tcp.is_empty() || !grants.udp.is_empty() || !grants.icmp.is_empty(),
    );
    let who = identity.clone();
    builder.socket_addr_check(move |addr, use_| {
        let allowed = match use_ {
            // Connect and send perform an implicit bind to the wildcard
            // address first; that bind is harmless and must pass.
            SocketAddrUse::TcpBind => {
                addr.ip().is_unspecified() && addr.port() == 0 && !tcp.is_empty()
            }
            SocketAddrUse::UdpBind => {
                addr.ip().is_unspecified() && addr.port() == 0 && !udp.is_empty()
            }
            SocketAddrUse::TcpConnect => tcp.permits(addr),
            SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => udp.permits(addr),
            // Plugins are clients; nothing may listen or accept.
            _ => false,
        };
        if !allowed {
            tracing::warn!(
                plugin = %who.plugin, job = %who.job, target = %who.target,
                denied = %addr, use_ = ?use_, "capability denied: socket address not granted"
            );
        }
        Box::pin(async move { allowed })
    });
    for name in &grants.env {
        if let Ok(value) = std::env::var(name) {
            builder.env(name, value);
        }
    }
    // Before the preopens: each directory keeps the setting it was opened with.
    builder.allow_blocking_current_thread(blocking_files);
    for path in &grants.files {
        builder
            .preopened_dir(path, path, FsPerms::ReadOnly)
            .map_err(|e| format!("granted path {path} cannot be opened: {e}"))?;
    }

    Ok(InvocationState {
        wasi: builder.build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        http_policy: HttpPolicy {
            identity: identity.clone(),
            allowed: http.iter().map(|p| HostPattern::parse(p)).collect(),
            deadline,
        },
        icmp: IcmpPolicy { allowed: icmp },
        statfs: StatfsPolicy::new(grants),
        limiter: MemoryLimiter {
            max_bytes: max_memory_bytes as usize,
            hit: Arc::new(AtomicBool::new(false)),
        },
        host: HostServices {
            identity,
            state,
            log_lines: 0,
        },
        deadline,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_host_port_reads_urls_pairs_and_v6() {
        assert_eq!(
            target_host_port("http://Example.com:8080/x?y"),
            ("example.com".into(), Some(8080))
        );
        assert_eq!(
            target_host_port("https://user:pw@example.com/"),
            ("example.com".into(), None)
        );
        assert_eq!(
            target_host_port("127.0.0.1:6379"),
            ("127.0.0.1".into(), Some(6379))
        );
        assert_eq!(target_host_port("[::1]:80"), ("::1".into(), Some(80)));
        assert_eq!(
            target_host_port("db.internal"),
            ("db.internal".into(), None)
        );
    }

    #[test]
    fn target_placeholder_expands_to_host_and_port() {
        let out = expand_target(
            &["{target}".into(), "api.example.com".into()],
            "http://127.0.0.1:9000/health",
        );
        assert_eq!(
            out,
            vec!["127.0.0.1:9000".to_string(), "api.example.com".to_string()]
        );
    }

    #[test]
    fn host_patterns_match_exact_wildcard_and_port() {
        let p = HostPattern::parse("*.example.com");
        assert!(p.matches("api.example.com", 443));
        assert!(
            !p.matches("example.com", 443),
            "a suffix wildcard needs a subdomain"
        );
        assert!(!p.matches("evilexample.com", 443));
        let p = HostPattern::parse("127.0.0.1:9000");
        assert!(p.matches("127.0.0.1", 9000));
        assert!(!p.matches("127.0.0.1", 9001));
        assert!(HostPattern::parse("*").matches("anything", 1));
    }

    #[tokio::test]
    async fn socket_allow_list_checks_ip_and_port() {
        let list = SocketAllowList::resolve(&["127.0.0.1:6379".into(), "localhost".into()]).await;
        assert!(list.permits("127.0.0.1:6379".parse().unwrap()));
        assert!(
            list.permits("127.0.0.1:1234".parse().unwrap()),
            "localhost with any port resolves to 127.0.0.1"
        );
        assert!(!list.permits("10.1.2.3:6379".parse().unwrap()));
        let empty = SocketAllowList::resolve(&[]).await;
        assert!(empty.is_empty() && !empty.permits("127.0.0.1:80".parse().unwrap()));
    }

    async fn icmp_policy(patterns: &[&str], target: &str) -> IcmpPolicy {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        IcmpPolicy {
            allowed: SocketAllowList::resolve(&expand_target(&patterns, target)).await,
        }
    }

    #[tokio::test]
    async fn icmp_grants_cover_the_target_and_nothing_else() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let policy = icmp_policy(&["{target}"], "127.0.0.1").await;
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(!policy.permits(ip("::1")));

        // A bare IPv6 target is one host, not host:port.
        let policy = icmp_policy(&["{target}"], "::1").await;
        assert!(policy.permits(ip("::1")) && !policy.permits(ip("127.0.0.1")));

        // Names resolve when the invocation starts, like tcp and udp grants.
        let policy = icmp_policy(&["{target}"], "localhost").await;
        assert!(
            policy.permits(ip("127.0.0.1")),
            "localhost resolves to 127.0.0.1"
        );
        assert!(!policy.permits(ip("192.0.2.1")));

        // Ports in a pattern (or the target) do not matter to ICMP.
        let policy = icmp_policy(&["10.0.0.7:443", "{target}"], "[2001:db8::5]:80").await;
        assert!(policy.permits(ip("10.0.0.7")) && policy.permits(ip("2001:db8::5")));

        assert!(icmp_policy(&["*"], "x").await.permits(ip("198.51.100.3")));
        let none = icmp_policy(&[], "127.0.0.1").await;
        assert!(!none.permits(ip("127.0.0.1")), "no grant, no echo");
    }

    fn statfs_policy(statfs: &[&str], files: &[&str]) -> StatfsPolicy {
        let list = |l: &[&str]| l.iter().map(|p| p.to_string()).collect();
        StatfsPolicy::new(&Grants {
            statfs: list(statfs),
            files: list(files),
            ..Grants::default()
        })
    }

    #[test]
    fn statfs_is_denied_without_a_grant() {
        let none = statfs_policy(&[], &[]);
        for path in ["/", "/proc", "/home/user"] {
            assert!(!none.permits(Path::new(path)), "{path}");
        }
        // Other grants do not open statfs either.
        let others = StatfsPolicy::new(&Grants {
            http: vec!["*".into()],
            tcp: vec!["*:*".into()],
            env: vec!["HOME".into()],
            ..Grants::default()
        });
        assert!(!others.permits(Path::new("/")));
    }

    #[test]
    fn statfs_grants_cover_paths_below_them() {
        let policy = statfs_policy(&["/srv/data", "relative"], &[]);
        assert!(policy.permits(Path::new("/srv/data")));
        assert!(policy.permits(Path::new("/srv/data/shard/1")));
        assert!(
            !policy.permits(Path::new("/srv/database")),
            "a prefix covers whole components only"
        );
        assert!(!policy.permits(Path::new("/srv")));
        assert!(!policy.permits(Path::new("/")));
        assert!(
            !policy.permits(Path::new("/relative")),
            "a relative pattern covers nothing"
        );
        assert!(policy.needs_resolving());
    }

    #[test]
    fn files_grants_cover_statfs_and_star_covers_everything() {
        let files = statfs_policy(&[], &["/proc", "/sys"]);
        assert!(files.permits(Path::new("/proc")) && files.permits(Path::new("/sys/fs/cgroup")));
        assert!(!files.permits(Path::new("/")));
        let root = statfs_policy(&["/"], &[]);
        assert!(root.permits(Path::new("/")) && root.permits(Path::new("/mnt/nfs")));
        let any = statfs_policy(&["*"], &[]);
        assert!(any.permits(Path::new("/anything/at/all")));
        assert!(!any.needs_resolving());
    }

    #[test]
    fn statfs_grants_are_checked_again_after_resolving_links() {
        let dir = tempfile::tempdir().unwrap();
        let granted = dir.path().join("granted");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&granted).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, granted.join("escape")).unwrap();
        let granted = std::fs::canonicalize(&granted).unwrap();
        let elsewhere = std::fs::canonicalize(&elsewhere).unwrap();
        let policy = statfs_policy(&[granted.to_str().unwrap()], &[]);
        // As written, the link is under the grant; resolved, it is not.
        assert!(policy.permits(&granted.join("escape")));
        assert!(!policy.permits_resolved(&elsewhere));
        assert!(policy.permits_resolved(&granted));

        // A granted path that is itself a link covers where it leads.
        let link = dir.path().join("link-to-elsewhere");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let policy = statfs_policy(&[link.to_str().unwrap()], &[]);
        assert!(policy.permits_resolved(&elsewhere.join("x")));
    }
}
