//! Integration test harness: real `docker-registry` processes, raw-HTTP seeding with an
//! independent client (ureq), fixture builders, layout and registry checks, and a runner for
//! the crate's binaries.
//!
//! Nothing here uses the `ocipipe` library: the registries are seeded and checked with code
//! written for the tests, so a bug in the crate cannot hide itself.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

mod certs;
mod token_server;
#[allow(unused_imports)]
pub use certs::*;
pub use token_server::*;

// ---------------------------------------------------------------------------------------------
// Media types
// ---------------------------------------------------------------------------------------------

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
pub const SBOM_ARTIFACT_TYPE: &str = "application/vnd.example.sbom.v1+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The Accept list every manifest request must carry (distribution 2.8 converts or 404s
/// without it).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn is_manifest_type(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST || is_index_type(media_type)
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

pub fn hex_of(digest: &str) -> &str {
    digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"))
}

fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_nanos();
    let seed = format!("{}-{}-{}", std::process::id(), n, t);
    format!("{:x}", Sha256::digest(seed.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Registry process
// ---------------------------------------------------------------------------------------------

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A `docker-registry` (CNCF distribution 2.8) on a free 127.0.0.1 port with its own temp
/// storage. Killed and reaped on drop.
pub struct Registry {
    child: Child,
    port: u16,
    dir: TempDir,
    /// Basic credentials, or the token server credentials of a token-auth registry.
    creds: Option<(String, String)>,
    /// True for `auth.token` registries: the harness answers bearer challenges itself.
    token_auth: bool,
    /// Bearer tokens earned by the harness, per scope.
    tokens: Mutex<HashMap<String, String>>,
    /// For HTTPS registries: the CA the harness trusts (requests go through curl).
    tls_ca: Option<PathBuf>,
    agent: ureq::Agent,
}

/// How a test registry authenticates clients.
#[derive(Clone, Debug, Default)]
pub enum RegistryAuth {
    #[default]
    Anonymous,
    /// `auth.htpasswd` (bcrypt cost 5).
    Basic { user: String, pass: String },
    /// `auth.token`: bearer tokens from a token server (see [`TokenServer`]). `user` and
    /// `pass` are what the harness itself sends to the token server.
    Token {
        realm: String,
        service: String,
        issuer: String,
        rootcertbundle: PathBuf,
        user: String,
        pass: String,
    },
}

/// The server side of an HTTPS registry: its certificate chain and key, and the CA that
/// clients (the harness) must trust.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// How to start a registry.
#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    pub auth: RegistryAuth,
    /// Serve HTTPS only (`http.tls`) instead of plain HTTP.
    pub tls: Option<ServerTls>,
    /// Log every request (see [`Registry::requests`]).
    pub access_log: bool,
}

/// A port that was free a moment ago and has nothing listening on it.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local_addr").port();
    drop(listener);
    port
}

/// An address where nothing listens (a closed port): for "unreachable registry" tests.
pub fn closed_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

pub(crate) fn require_tool(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "required tool {path} is missing: install the Debian package `{package}` \
         (apt-get install -y {package})"
    );
}

/// Poll `GET /v2/` until it answers 200 or 401 (max 10 s); Err(log text) when the process
/// exits or never answers. HTTPS registries are probed with curl trusting `tls_ca`.
fn wait_ready(
    child: &mut Child,
    port: u16,
    log_path: &Path,
    tls_ca: Option<&Path>,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(500))
        .build();
    let log = || fs::read_to_string(log_path).unwrap_or_default();
    let mut last_error = String::new();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("docker-registry exited with {status}: {}", log()));
        }
        let status = match tls_ca {
            None => match probe.get(&format!("http://127.0.0.1:{port}/v2/")).call() {
                Ok(r) => Some(r.status()),
                Err(ureq::Error::Status(s, _)) => Some(s),
                Err(e) => {
                    last_error = e.to_string();
                    None
                }
            },
            // Only try the TLS handshake once something listens.
            Some(ca) => match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Err(e) => {
                    last_error = e.to_string();
                    None
                }
                Ok(_) => {
                    let url = format!("https://127.0.0.1:{port}/v2/");
                    match curl_request(ca, "GET", &url, &[], None) {
                        Ok(r) => Some(r.status),
                        Err(e) => {
                            last_error = e;
                            None
                        }
                    }
                }
            },
        };
        if let Some(200 | 401) = status {
            return Ok(());
        }
        if let Some(s) = status {
            last_error = format!("GET /v2/ answered {s}");
        }
        if Instant::now() > deadline {
            return Err(format!(
                "docker-registry did not answer /v2/ within 10 s ({last_error}): {}",
                log()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Registry {
    /// Anonymous registry.
    pub fn start() -> Registry {
        Self::start_with_config(RegistryConfig::default())
    }

    /// Registry protected by HTTP basic auth (htpasswd, bcrypt cost 5).
    pub fn start_with_basic_auth(user: &str, pass: &str) -> Registry {
        Self::start_with_config(RegistryConfig {
            auth: RegistryAuth::Basic {
                user: user.to_string(),
                pass: pass.to_string(),
            },
            ..Default::default()
        })
    }

    /// Registry protected by bearer tokens from `server` (which holds the signing
    /// certificate the registry trusts). The harness fetches its own tokens from `server`
    /// with the server's user and password.
    pub fn start_with_token_auth(server: &TokenServer) -> Registry {
        Self::start_with_config(RegistryConfig {
            auth: server.registry_auth(),
            ..Default::default()
        })
    }

    /// Anonymous registry speaking HTTPS only, with the given certificate.
    pub fn start_with_tls(tls: &ServerTls) -> Registry {
        Self::start_with_config(RegistryConfig {
            auth: RegistryAuth::Anonymous,
            tls: Some(tls.clone()),
            ..Default::default()
        })
    }

    pub fn start_with_config(config: RegistryConfig) -> Registry {
        require_tool(REGISTRY_BIN, "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("ocipipe-registry-")
            .tempdir()
            .expect("create registry temp dir");
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage).expect("create storage dir");

        let mut auth_section = String::new();
        let mut creds = None;
        let mut token_auth = false;
        match &config.auth {
            RegistryAuth::Anonymous => {}
            RegistryAuth::Basic { user, pass } => {
                require_tool("/usr/bin/htpasswd", "apache2-utils");
                let out = Command::new("htpasswd")
                    .args(["-Bbn", "-C", "5", user, pass])
                    .output()
                    .expect("run htpasswd");
                assert!(
                    out.status.success(),
                    "htpasswd failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let htpasswd = dir.path().join("htpasswd");
                fs::write(&htpasswd, &out.stdout).expect("write htpasswd file");
                auth_section = format!(
                    "auth:\n  htpasswd:\n    realm: ocipipe-test\n    path: \"{}\"\n",
                    htpasswd.display()
                );
                creds = Some((user.clone(), pass.clone()));
            }
            RegistryAuth::Token {
                realm,
                service,
                issuer,
                rootcertbundle,
                user,
                pass,
            } => {
                auth_section = format!(
                    "auth:\n  token:\n    realm: \"{realm}\"\n    service: \"{service}\"\n    \
                     issuer: \"{issuer}\"\n    rootcertbundle: \"{}\"\n",
                    rootcertbundle.display()
                );
                creds = Some((user.clone(), pass.clone()));
                token_auth = true;
            }
        }
        let tls_section = match &config.tls {
            None => String::new(),
            Some(tls) => format!(
                "  tls:\n    certificate: \"{}\"\n    key: \"{}\"\n",
                tls.certificate.display(),
                tls.key.display()
            ),
        };
        let tls_ca = config.tls.as_ref().map(|t| t.ca.clone());
        if tls_ca.is_some() {
            require_tool(CURL, "curl");
        }

        let log_path = dir.path().join("registry.log");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: error\n  accesslog:\n    disabled: {}\n\
                 storage:\n  filesystem:\n    rootdirectory: \"{}\"\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: 127.0.0.1:{}\n  secret: \"{}\"\n{}\
                 health:\n  storagedriver:\n    enabled: false\n\
                 {}",
                !config.access_log,
                storage.display(),
                port,
                unique_token(),
                tls_section,
                auth_section
            );
            let config_path = dir.path().join("config.yml");
            fs::write(&config_path, config).expect("write registry config");
            let log = fs::File::create(&log_path).expect("create registry log");
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let mut child = child;
            match wait_ready(&mut child, port, &log_path, tls_ca.as_deref()) {
                Ok(()) => {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(60))
                        .redirects(0)
                        .build();
                    return Registry {
                        child,
                        port,
                        dir,
                        creds,
                        token_auth,
                        tokens: Mutex::new(HashMap::new()),
                        tls_ca,
                        agent,
                    };
                }
                Err(log) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if !log.contains("address already in use") {
                        panic!("docker-registry did not start:\n{log}");
                    }
                    // The port was taken between probing and binding: try another one.
                    last_log = log;
                }
            }
        }
        panic!("docker-registry did not start after 5 attempts:\n{last_log}");
    }

    /// "127.0.0.1:PORT"
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// True when the registry speaks HTTPS only.
    pub fn is_tls(&self) -> bool {
        self.tls_ca.is_some()
    }

    /// "http://127.0.0.1:PORT" + path ("https://" for HTTPS registries)
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{}", self.port, path)
    }

    /// A full reference "127.0.0.1:PORT/repo:tag" or "127.0.0.1:PORT/repo@sha256:..."
    /// (`reference` starting with "sha256:" is taken as a digest).
    pub fn reference(&self, repo: &str, reference: &str) -> String {
        if reference.starts_with("sha256:") {
            format!("{}/{}@{}", self.addr(), repo, reference)
        } else {
            format!("{}/{}:{}", self.addr(), repo, reference)
        }
    }

    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The registry's storage root (distribution filesystem driver layout).
    pub fn storage_root(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps the bytes of a blob (or manifest) on disk.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = hex_of(digest);
        self.storage_root()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Every request the registry answered, as (method, request URI, status), from its access
    /// log; empty unless it was started with `access_log`.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.log()
            .lines()
            .filter_map(|line| {
                let (_, rest) = line.split_once("] \"")?;
                let (request, rest) = rest.split_once('"')?;
                let mut parts = request.split(' ');
                let method = parts.next()?.to_string();
                let uri = parts.next()?.to_string();
                let status = rest.split_whitespace().next()?.parse().ok()?;
                Some((method, uri, status))
            })
            .collect()
    }

    fn basic_header(&self) -> Option<String> {
        self.creds.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
    }

    /// The Authorization header to send first: basic credentials, or a cached bearer token
    /// for the scope the request probably needs.
    fn auth_header(&self, method: &str, url: &str) -> Option<String> {
        if !self.token_auth {
            return self.basic_header();
        }
        let scope = guess_scope(method, url)?;
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&scope)
            .cloned()
    }

    /// Answers a bearer challenge: GET realm?service=..&scope=.. with basic credentials from
    /// the token server; caches and returns "Bearer TOKEN".
    fn bearer_for_challenge(&self, challenge: &str) -> String {
        let params = parse_challenge_params(challenge);
        let realm = params
            .get("realm")
            .unwrap_or_else(|| panic!("bearer challenge without realm: {challenge}"));
        let scope = params.get("scope").cloned().unwrap_or_default();
        let mut url = format!("{realm}?");
        if let Some(service) = params.get("service") {
            url.push_str(&format!("service={}&", percent_encode(service)));
        }
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            url.push_str(&format!("scope={}&", percent_encode(s)));
        }
        url.pop();
        let mut req = self.agent.get(&url);
        if let Some(b) = self.basic_header() {
            req = req.set("Authorization", &b);
        }
        let resp = req
            .call()
            .unwrap_or_else(|e| panic!("harness token request {url}: {e}"));
        let mut text = String::new();
        resp.into_reader()
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("harness token request {url}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("harness token request {url}: bad JSON: {e}"));
        let token = v["token"]
            .as_str()
            .or_else(|| v["access_token"].as_str())
            .unwrap_or_else(|| panic!("harness token request {url}: no token in {v}"));
        let header = format!("Bearer {token}");
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scope, header.clone());
        header
    }
}

/// The scope distribution asks for on `url`: `repository:NAME:pull` for reads,
/// `repository:NAME:pull,push` for writes, `registry:catalog:*` for the catalog.
fn guess_scope(method: &str, url: &str) -> Option<String> {
    let path = url.split('?').next()?;
    let path = &path[path.find("/v2/")? + 4..];
    if path == "_catalog" {
        return Some("registry:catalog:*".to_string());
    }
    let end = ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .filter_map(|m| path.rfind(m))
        .max()?;
    let name = &path[..end];
    let actions = if method == "GET" || method == "HEAD" {
        "pull"
    } else {
        "pull,push"
    };
    Some(format!("repository:{name}:{actions}"))
}

/// `key="value"` parameters of a `WWW-Authenticate` challenge (keys lowercased; quoted
/// values may hold commas).
pub fn parse_challenge_params(header: &str) -> HashMap<String, String> {
    let rest = header.trim();
    let mut rest = rest.split_once(' ').map(|(_, r)| r).unwrap_or("");
    let mut out = HashMap::new();
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = &rest[eq + 1..];
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            value = r[..end].to_string();
            rest = &r[(end + 1).min(r.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.insert(key, value);
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP request to the registry, carrying its credentials when it has some (basic, or
/// bearer tokens the harness fetches itself from the token server). HTTPS registries are
/// reached with curl trusting the test CA. Transport errors panic; every HTTP status is
/// returned.
pub fn http(
    reg: &Registry,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    let mut auth = reg.auth_header(method, url);
    let mut answered = false;
    loop {
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            all.push(("Authorization", a));
        }
        let resp = match &reg.tls_ca {
            Some(ca) => curl_request(ca, method, url, &all, body),
            None => ureq_request(&reg.agent, method, url, &all, body),
        }
        .unwrap_or_else(|e| {
            panic!(
                "{method} {url}: transport error: {e}\nregistry log:\n{}",
                reg.log()
            )
        });
        if resp.status == 401 && reg.token_auth && !answered {
            if let Some(challenge) = resp.header("WWW-Authenticate") {
                if challenge.to_ascii_lowercase().starts_with("bearer ") {
                    auth = Some(reg.bearer_for_challenge(challenge));
                    answered = true;
                    continue;
                }
            }
        }
        return resp;
    }
}

fn ureq_request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
        .collect();
    let mut bytes = Vec::new();
    if method != "HEAD" {
        resp.into_reader()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading body: {e}"))?;
    }
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

pub const CURL: &str = "/usr/bin/curl";

/// One HTTPS request with curl (HTTP/1.1, no redirects), trusting only `ca`. Err(curl's
/// message) on a transport or TLS failure.
pub fn curl_request(
    ca: &Path,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    require_tool(CURL, "curl");
    let tmp = TempDir::new().expect("temp dir");
    let head_file = tmp.path().join("headers");
    let body_file = tmp.path().join("body");
    let mut cmd = Command::new(CURL);
    cmd.args(["--silent", "--show-error", "--http1.1", "--max-time", "60"])
        .arg("--cacert")
        .arg(ca)
        .arg("--dump-header")
        .arg(&head_file)
        .arg("--output")
        .arg(&body_file)
        // No "Expect: 100-continue", no default form Content-Type.
        .args(["--header", "Expect:"]);
    if method == "HEAD" {
        cmd.arg("--head");
    } else {
        cmd.args(["--request", method]);
    }
    let mut has_content_type = false;
    for (k, v) in headers {
        has_content_type |= k.eq_ignore_ascii_case("content-type");
        cmd.arg("--header").arg(format!("{k}: {v}"));
    }
    if let Some(b) = body {
        let upload = tmp.path().join("upload");
        fs::write(&upload, b).expect("write request body");
        if !has_content_type {
            cmd.args(["--header", "Content-Type:"]);
        }
        cmd.arg("--data-binary")
            .arg(format!("@{}", upload.display()));
    }
    cmd.arg(url).stdin(Stdio::null());
    let out = cmd.output().expect("run curl");
    if !out.status.success() {
        return Err(format!(
            "curl exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let head = fs::read_to_string(&head_file).map_err(|e| format!("curl headers: {e}"))?;
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("curl: bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        fs::read(&body_file).unwrap_or_default()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Upload a blob (monolithic: POST then PUT with the whole body). Skips when it exists.
pub fn push_blob(reg: &Registry, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256_digest(bytes);
    if blob_exists(reg, repo, &digest) {
        return digest;
    }
    let start = http(
        reg,
        "POST",
        &reg.url(&format!("/v2/{repo}/blobs/uploads/")),
        &[],
        Some(&[]),
    );
    assert_eq!(
        start.status,
        202,
        "POST blob upload to {repo}: {}",
        String::from_utf8_lossy(&start.body)
    );
    let location = start
        .header("Location")
        .expect("upload Location header")
        .to_string();
    let mut url = if location.starts_with("http://") || location.starts_with("https://") {
        location
    } else {
        reg.url(&location)
    };
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str("digest=");
    url.push_str(&digest);
    let put = http(
        reg,
        "PUT",
        &url,
        &[("Content-Type", "application/octet-stream")],
        Some(bytes),
    );
    assert_eq!(
        put.status,
        201,
        "PUT blob {digest} to {repo}: {}",
        String::from_utf8_lossy(&put.body)
    );
    assert!(
        blob_exists(reg, repo, &digest),
        "blob {digest} not in {repo} after upload"
    );
    digest
}

/// PUT a manifest under a tag or digest; returns its digest (checked against the registry's
/// `Docker-Content-Digest`).
pub fn push_manifest(
    reg: &Registry,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> String {
    let digest = sha256_digest(bytes);
    let resp = http(
        reg,
        "PUT",
        &reg.url(&format!("/v2/{repo}/manifests/{reference}")),
        &[("Content-Type", media_type)],
        Some(bytes),
    );
    assert_eq!(
        resp.status,
        201,
        "PUT manifest {repo}:{reference} ({media_type}): {}\n{}",
        String::from_utf8_lossy(&resp.body),
        String::from_utf8_lossy(bytes)
    );
    assert_eq!(
        resp.header("Docker-Content-Digest"),
        Some(digest.as_str()),
        "registry computed another digest for {repo}:{reference}"
    );
    digest
}

/// GET a manifest with the full Accept list: (digest from header, body, content type).
/// `None` on 404.
pub fn get_manifest(
    reg: &Registry,
    repo: &str,
    reference: &str,
) -> Option<(String, Vec<u8>, String)> {
    let resp = http(
        reg,
        "GET",
        &reg.url(&format!("/v2/{repo}/manifests/{reference}")),
        &[("Accept", MANIFEST_ACCEPT)],
        None,
    );
    if resp.status == 404 {
        return None;
    }
    assert_eq!(
        resp.status,
        200,
        "GET manifest {repo}:{reference}: {}",
        String::from_utf8_lossy(&resp.body)
    );
    let digest = resp
        .header("Docker-Content-Digest")
        .expect("Docker-Content-Digest header")
        .to_string();
    let content_type = resp
        .header("Content-Type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    Some((digest, resp.body, content_type))
}

pub fn blob_exists(reg: &Registry, repo: &str, digest: &str) -> bool {
    let resp = http(
        reg,
        "HEAD",
        &reg.url(&format!("/v2/{repo}/blobs/{digest}")),
        &[],
        None,
    );
    match resp.status {
        200 => true,
        404 => false,
        s => panic!("HEAD blob {repo}@{digest}: status {s}"),
    }
}

/// GET a blob's bytes; `None` on 404.
pub fn get_blob(reg: &Registry, repo: &str, digest: &str) -> Option<Vec<u8>> {
    let resp = http(
        reg,
        "GET",
        &reg.url(&format!("/v2/{repo}/blobs/{digest}")),
        &[],
        None,
    );
    match resp.status {
        200 => Some(resp.body),
        404 => None,
        s => panic!(
            "GET blob {repo}@{digest}: status {s}: {}",
            String::from_utf8_lossy(&resp.body)
        ),
    }
}

/// Tags of a repository (sorted); empty when the repository or its tags are unknown.
pub fn tags(reg: &Registry, repo: &str) -> Vec<String> {
    let resp = http(
        reg,
        "GET",
        &reg.url(&format!("/v2/{repo}/tags/list")),
        &[],
        None,
    );
    if resp.status == 404 {
        return Vec::new();
    }
    assert_eq!(
        resp.status,
        200,
        "GET tags of {repo}: {}",
        String::from_utf8_lossy(&resp.body)
    );
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("tags list JSON");
    let mut out: Vec<String> = v["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t.as_str().expect("tag string").to_string())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Repositories of the registry (sorted).
pub fn catalog(reg: &Registry) -> Vec<String> {
    let resp = http(reg, "GET", &reg.url("/v2/_catalog?n=1000"), &[], None);
    assert_eq!(resp.status, 200, "GET catalog");
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("catalog JSON");
    let mut out: Vec<String> = v["repositories"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t.as_str().expect("repo string").to_string())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Fixture builders
// ---------------------------------------------------------------------------------------------

/// A real tar.gz holding the given files (deterministic: fixed mtime, mode, owner).
pub fn gzip_tar_layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let tar = plain_tar(files);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).expect("gzip");
    gz.finish().expect("gzip finish")
}

/// An uncompressed tar holding the given files.
pub fn plain_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).expect("tar path");
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, *data).expect("tar append");
    }
    builder.into_inner().expect("tar finish")
}

/// sha256 of the uncompressed content of a gzip layer (the config's diff_id).
pub fn diff_id_of_gzip(gz: &[u8]) -> String {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut tar)
        .expect("gunzip layer");
    sha256_digest(&tar)
}

#[derive(Clone, Debug)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
    pub platform: Option<(String, String)>,
    pub artifact_type: Option<String>,
    pub annotations: Vec<(String, String)>,
}

impl Descriptor {
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: sha256_digest(bytes),
            size: bytes.len(),
            platform: None,
            artifact_type: None,
            annotations: Vec::new(),
        }
    }

    pub fn with_platform(mut self, os: &str, arch: &str) -> Descriptor {
        self.platform = Some((os.to_string(), arch.to_string()));
        self
    }

    pub fn with_annotation(mut self, k: &str, v: &str) -> Descriptor {
        self.annotations.push((k.to_string(), v.to_string()));
        self
    }
}

// A deliberately odd JSON writer: 3-space indent, " : " separators, keys in the order given
// (not sorted), trailing newline at top level. Any re-serialization changes the bytes.

const INDENT: &str = "   ";

fn jstr(s: &str) -> String {
    serde_json::to_string(s).expect("json string")
}

fn jobj(level: usize, fields: Vec<(&str, String)>) -> String {
    if fields.is_empty() {
        return "{ }".to_string();
    }
    let pad = INDENT.repeat(level + 1);
    let body: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{pad}{} : {v}", jstr(k)))
        .collect();
    format!("{{\n{}\n{}}}", body.join(",\n"), INDENT.repeat(level))
}

fn jarr(level: usize, items: Vec<String>) -> String {
    if items.is_empty() {
        return "[ ]".to_string();
    }
    let pad = INDENT.repeat(level + 1);
    let body: Vec<String> = items.into_iter().map(|v| format!("{pad}{v}")).collect();
    format!("[\n{}\n{}]", body.join(",\n"), INDENT.repeat(level))
}

fn jannotations(level: usize, annotations: &[(String, String)]) -> String {
    jobj(
        level,
        annotations
            .iter()
            .map(|(k, v)| (k.as_str(), jstr(v)))
            .collect(),
    )
}

fn descriptor_json(level: usize, d: &Descriptor) -> String {
    let mut fields = vec![
        ("size", d.size.to_string()),
        ("digest", jstr(&d.digest)),
        ("mediaType", jstr(&d.media_type)),
    ];
    if let Some((os, arch)) = &d.platform {
        fields.push((
            "platform",
            jobj(
                level + 1,
                vec![("architecture", jstr(arch)), ("os", jstr(os))],
            ),
        ));
    }
    if let Some(at) = &d.artifact_type {
        fields.push(("artifactType", jstr(at)));
    }
    if !d.annotations.is_empty() {
        fields.push(("annotations", jannotations(level + 1, &d.annotations)));
    }
    jobj(level, fields)
}

/// An image config (OCI or Docker, same shape) with a distinguishing label.
pub fn image_config_json(os: &str, arch: &str, diff_ids: &[String], label: &str) -> Vec<u8> {
    let json = jobj(
        0,
        vec![
            (
                "rootfs",
                jobj(
                    1,
                    vec![
                        (
                            "diff_ids",
                            jarr(2, diff_ids.iter().map(|d| jstr(d)).collect()),
                        ),
                        ("type", jstr("layers")),
                    ],
                ),
            ),
            ("os", jstr(os)),
            ("architecture", jstr(arch)),
            (
                "config",
                jobj(
                    1,
                    vec![
                        ("Cmd", jarr(2, vec![jstr("/bin/app"), jstr("--serve")])),
                        ("Env", jarr(2, vec![jstr("PATH=/usr/bin:/bin")])),
                        (
                            "Labels",
                            jobj(2, vec![("org.example.fixture", jstr(label))]),
                        ),
                    ],
                ),
            ),
            ("created", jstr("2024-01-02T03:04:05Z")),
        ],
    );
    format!("{json}\n").into_bytes()
}

/// An image manifest (OCI or Docker schema 2 by `media_type`), keys in an unusual order.
pub fn manifest_json(
    media_type: &str,
    config: &Descriptor,
    layers: &[Descriptor],
    artifact_type: Option<&str>,
    annotations: &[(&str, &str)],
) -> Vec<u8> {
    let mut fields = vec![
        ("schemaVersion", "2".to_string()),
        ("mediaType", jstr(media_type)),
    ];
    if let Some(at) = artifact_type {
        fields.push(("artifactType", jstr(at)));
    }
    fields.push((
        "layers",
        jarr(1, layers.iter().map(|l| descriptor_json(2, l)).collect()),
    ));
    fields.push(("config", descriptor_json(1, config)));
    if !annotations.is_empty() {
        let owned: Vec<(String, String)> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        fields.push(("annotations", jannotations(1, &owned)));
    }
    format!("{}\n", jobj(0, fields)).into_bytes()
}

/// An image index / manifest list (by `media_type`), keys in an unusual order.
pub fn index_json(
    media_type: &str,
    manifests: &[Descriptor],
    annotations: &[(&str, &str)],
) -> Vec<u8> {
    let mut fields = vec![
        (
            "manifests",
            jarr(1, manifests.iter().map(|m| descriptor_json(2, m)).collect()),
        ),
        ("mediaType", jstr(media_type)),
        ("schemaVersion", "2".to_string()),
    ];
    if !annotations.is_empty() {
        let owned: Vec<(String, String)> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        fields.push(("annotations", jannotations(1, &owned)));
    }
    format!("{}\n", jobj(0, fields)).into_bytes()
}

/// Push config + layers, then the manifest by digest and under each tag. Returns the manifest
/// digest and bytes.
pub fn push_image(
    reg: &Registry,
    repo: &str,
    tags: &[&str],
    manifest_type: &str,
    config: (&str, &[u8]),
    layers: &[(&str, &[u8])],
    artifact_type: Option<&str>,
    annotations: &[(&str, &str)],
) -> (String, Vec<u8>) {
    let config_desc = Descriptor::of(config.0, config.1);
    push_blob(reg, repo, config.1);
    let mut layer_descs = Vec::new();
    for (mt, bytes) in layers {
        push_blob(reg, repo, bytes);
        layer_descs.push(Descriptor::of(mt, bytes));
    }
    let manifest = manifest_json(
        manifest_type,
        &config_desc,
        &layer_descs,
        artifact_type,
        annotations,
    );
    let digest = push_manifest(
        reg,
        repo,
        &sha256_digest(&manifest),
        manifest_type,
        &manifest,
    );
    for tag in tags {
        push_manifest(reg, repo, tag, manifest_type, &manifest);
    }
    (digest, manifest)
}

/// A small image with one gzip layer, distinguished by `label`; returns (digest, bytes).
pub fn push_simple_image(
    reg: &Registry,
    repo: &str,
    tags: &[&str],
    label: &str,
) -> (String, Vec<u8>) {
    let layer = gzip_tar_layer(&[("etc/label.txt", format!("label {label}\n").as_bytes())]);
    let config = image_config_json("linux", "amd64", &[diff_id_of_gzip(&layer)], label);
    push_image(
        reg,
        repo,
        tags,
        OCI_MANIFEST,
        (OCI_CONFIG, &config),
        &[(OCI_LAYER_GZIP, &layer)],
        None,
        &[("org.example.label", label)],
    )
}

// ---------------------------------------------------------------------------------------------
// Seeded fixtures
// ---------------------------------------------------------------------------------------------

/// One top-level thing seeded: a tagged manifest, or (tag None) a manifest pushed by digest
/// only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seeded {
    pub repo: String,
    pub tag: Option<String>,
    pub digest: String,
    pub media_type: String,
}

impl Seeded {
    /// The tag, or the digest for digest-only entries.
    pub fn reference(&self) -> &str {
        self.tag.as_deref().unwrap_or(&self.digest)
    }
}

#[derive(Clone, Debug)]
pub struct Fixtures {
    /// Top-level references, one per tag, plus digest-only manifests (tag None).
    pub entries: Vec<Seeded>,
    /// Children of indexes / manifest lists (pushed by digest as parts of their parents).
    pub children: Vec<Seeded>,
    /// The gzip base layer stored in both `library/app` and `shared/other`.
    pub shared_base_layer: String,
}

impl Fixtures {
    pub fn get(&self, repo: &str, tag: &str) -> &Seeded {
        self.entries
            .iter()
            .find(|e| e.repo == repo && e.tag.as_deref() == Some(tag))
            .unwrap_or_else(|| panic!("no fixture {repo}:{tag}"))
    }

    /// The digest-only (untagged) fixture.
    pub fn untagged(&self) -> &Seeded {
        self.entries
            .iter()
            .find(|e| e.tag.is_none())
            .expect("an untagged fixture")
    }

    /// Sorted distinct repositories.
    pub fn repos(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| e.repo.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Sorted tags seeded in `repo`.
    pub fn tags_of(&self, repo: &str) -> Vec<String> {
        let mut t: Vec<String> = self
            .entries
            .iter()
            .filter(|e| e.repo == repo)
            .filter_map(|e| e.tag.clone())
            .collect();
        t.sort();
        t
    }

    /// Every entry as a full reference on `reg` (tag or @digest).
    pub fn refs(&self, reg: &Registry) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| reg.reference(&e.repo, e.reference()))
            .collect()
    }
}

/// Seed the standard fixture set into `reg` with raw HTTP.
pub fn seed_fixtures(reg: &Registry) -> Fixtures {
    let mut entries = Vec::new();
    let mut children = Vec::new();
    let tagged = |repo: &str, tag: &str, digest: &str, mt: &str| Seeded {
        repo: repo.into(),
        tag: Some(tag.into()),
        digest: digest.into(),
        media_type: mt.into(),
    };

    // Shared base layer: in library/app and shared/other.
    let base = gzip_tar_layer(&[
        ("etc/os-release", b"ID=fixture\nVERSION_ID=1\n"),
        ("bin/busybox", &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0]),
    ]);
    let shared_base_layer = sha256_digest(&base);

    // library/app:1.0 — OCI image, config + two gzip layers.
    let app_layer = gzip_tar_layer(&[
        ("app/main.sh", b"#!/bin/sh\necho hello from app\n"),
        ("app/data/config.toml", b"[server]\nport = 8080\n"),
    ]);
    let app_config = image_config_json(
        "linux",
        "amd64",
        &[diff_id_of_gzip(&base), diff_id_of_gzip(&app_layer)],
        "library/app",
    );
    let (d, _) = push_image(
        reg,
        "library/app",
        &["1.0"],
        OCI_MANIFEST,
        (OCI_CONFIG, &app_config),
        &[(OCI_LAYER_GZIP, &base), (OCI_LAYER_GZIP, &app_layer)],
        None,
        &[("org.opencontainers.image.title", "app")],
    );
    entries.push(tagged("library/app", "1.0", &d, OCI_MANIFEST));

    // shared/other:1 — same base layer, its own layer and config.
    let other_layer = gzip_tar_layer(&[("srv/other.txt", b"other service\n")]);
    let other_config = image_config_json(
        "linux",
        "amd64",
        &[diff_id_of_gzip(&base), diff_id_of_gzip(&other_layer)],
        "shared/other",
    );
    let (d, _) = push_image(
        reg,
        "shared/other",
        &["1"],
        OCI_MANIFEST,
        (OCI_CONFIG, &other_config),
        &[(OCI_LAYER_GZIP, &base), (OCI_LAYER_GZIP, &other_layer)],
        None,
        &[],
    );
    entries.push(tagged("shared/other", "1", &d, OCI_MANIFEST));

    // multi:latest — two-platform OCI index.
    let mut platform_descs = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = gzip_tar_layer(&[(
            "usr/share/arch.txt",
            format!("built for linux/{arch}\n").as_bytes(),
        )]);
        let config = image_config_json("linux", arch, &[diff_id_of_gzip(&layer)], "multi");
        let (d, bytes) = push_image(
            reg,
            "multi",
            &[],
            OCI_MANIFEST,
            (OCI_CONFIG, &config),
            &[(OCI_LAYER_GZIP, &layer)],
            None,
            &[],
        );
        children.push(Seeded {
            repo: "multi".into(),
            tag: None,
            digest: d,
            media_type: OCI_MANIFEST.into(),
        });
        platform_descs.push(Descriptor::of(OCI_MANIFEST, &bytes).with_platform("linux", arch));
    }
    let index = index_json(
        OCI_INDEX,
        &platform_descs,
        &[("org.opencontainers.image.description", "two platforms")],
    );
    let d = push_manifest(reg, "multi", "latest", OCI_INDEX, &index);
    entries.push(tagged("multi", "latest", &d, OCI_INDEX));

    // dockerimg:v1 — Docker schema 2 image.
    let docker_layer = gzip_tar_layer(&[("opt/docker.txt", b"docker schema 2 layer\n")]);
    let docker_layer2 = gzip_tar_layer(&[("opt/second.txt", b"second docker layer\n")]);
    let docker_config = image_config_json(
        "linux",
        "amd64",
        &[
            diff_id_of_gzip(&docker_layer),
            diff_id_of_gzip(&docker_layer2),
        ],
        "dockerimg",
    );
    let (d, _) = push_image(
        reg,
        "dockerimg",
        &["v1"],
        DOCKER_MANIFEST,
        (DOCKER_CONFIG_TYPE, &docker_config),
        &[
            (DOCKER_LAYER_GZIP, &docker_layer),
            (DOCKER_LAYER_GZIP, &docker_layer2),
        ],
        None,
        &[],
    );
    entries.push(tagged("dockerimg", "v1", &d, DOCKER_MANIFEST));

    // dockerlist:v1 — Docker manifest list of two schema 2 manifests.
    let mut list_descs = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer =
            gzip_tar_layer(&[("etc/arch", format!("docker list child {arch}\n").as_bytes())]);
        let config = image_config_json("linux", arch, &[diff_id_of_gzip(&layer)], "dockerlist");
        let (d, bytes) = push_image(
            reg,
            "dockerlist",
            &[],
            DOCKER_MANIFEST,
            (DOCKER_CONFIG_TYPE, &config),
            &[(DOCKER_LAYER_GZIP, &layer)],
            None,
            &[],
        );
        children.push(Seeded {
            repo: "dockerlist".into(),
            tag: None,
            digest: d,
            media_type: DOCKER_MANIFEST.into(),
        });
        list_descs.push(Descriptor::of(DOCKER_MANIFEST, &bytes).with_platform("linux", arch));
    }
    let list = index_json(DOCKER_LIST, &list_descs, &[]);
    let d = push_manifest(reg, "dockerlist", "v1", DOCKER_LIST, &list);
    entries.push(tagged("dockerlist", "v1", &d, DOCKER_LIST));

    // team/app/api — nested three levels, three tags on one digest; one gzip and one
    // uncompressed tar layer.
    let api_gz = gzip_tar_layer(&[("srv/api/server.py", b"print('api')\n")]);
    let api_tar = plain_tar(&[("srv/api/VERSION", b"1.0.0\n")]);
    let api_config = image_config_json(
        "linux",
        "amd64",
        &[diff_id_of_gzip(&api_gz), sha256_digest(&api_tar)],
        "team/app/api",
    );
    let (d, _) = push_image(
        reg,
        "team/app/api",
        &["1.0.0", "1.0", "latest"],
        OCI_MANIFEST,
        (OCI_CONFIG, &api_config),
        &[(OCI_LAYER_GZIP, &api_gz), (OCI_LAYER_TAR, &api_tar)],
        None,
        &[],
    );
    for tag in ["1.0.0", "1.0", "latest"] {
        entries.push(tagged("team/app/api", tag, &d, OCI_MANIFEST));
    }

    // artifacts/sbom:v1 — artifact with artifactType and the empty config; opaque layers.
    let in_toto = b"{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[],\n \"predicateType\":\"https://spdx.dev/Document\"}\n".to_vec();
    let zstd_blob: Vec<u8> = (0u32..3000).map(|i| (i * 7 + 3) as u8).collect();
    let (d, _) = push_image(
        reg,
        "artifacts/sbom",
        &["v1"],
        OCI_MANIFEST,
        (OCI_EMPTY, b"{}"),
        &[(IN_TOTO, &in_toto), (OCI_LAYER_ZSTD, &zstd_blob)],
        Some(SBOM_ARTIFACT_TYPE),
        &[("org.opencontainers.image.created", "2024-01-02T03:04:05Z")],
    );
    entries.push(tagged("artifacts/sbom", "v1", &d, OCI_MANIFEST));

    // charts/demo:0.1.0 — a Helm chart (Helm config and chart layer types).
    let chart = gzip_tar_layer(&[
        (
            "demo/Chart.yaml",
            b"apiVersion: v2\nname: demo\nversion: 0.1.0\n",
        ),
        ("demo/values.yaml", b"replicas: 1\n"),
    ]);
    let chart_config = b"{\"name\":\"demo\",\"version\":\"0.1.0\",\"apiVersion\":\"v2\"}".to_vec();
    let (d, _) = push_image(
        reg,
        "charts/demo",
        &["0.1.0"],
        OCI_MANIFEST,
        (HELM_CONFIG, &chart_config),
        &[(HELM_CHART, &chart)],
        None,
        &[],
    );
    entries.push(tagged("charts/demo", "0.1.0", &d, OCI_MANIFEST));

    // untagged/img@sha256:... — pushed by digest only, no tag anywhere.
    let untagged_layer = gzip_tar_layer(&[("untagged.txt", b"no tag points here\n")]);
    let untagged_config = image_config_json(
        "linux",
        "amd64",
        &[diff_id_of_gzip(&untagged_layer)],
        "untagged/img",
    );
    let (d, _) = push_image(
        reg,
        "untagged/img",
        &[],
        OCI_MANIFEST,
        (OCI_CONFIG, &untagged_config),
        &[(OCI_LAYER_GZIP, &untagged_layer)],
        None,
        &[],
    );
    entries.push(Seeded {
        repo: "untagged/img".into(),
        tag: None,
        digest: d,
        media_type: OCI_MANIFEST.into(),
    });

    Fixtures {
        entries,
        children,
        shared_base_layer,
    }
}

// ---------------------------------------------------------------------------------------------
// Graph walking and comparisons
// ---------------------------------------------------------------------------------------------

/// Everything reachable from one manifest: manifests (digest -> (media type, bytes)) and
/// blobs (digest -> bytes).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Graph {
    pub root: String,
    pub manifests: BTreeMap<String, (String, Vec<u8>)>,
    pub blobs: BTreeMap<String, Vec<u8>>,
}

impl Graph {
    pub fn all_digests(&self) -> Vec<String> {
        self.manifests
            .keys()
            .chain(self.blobs.keys())
            .cloned()
            .collect()
    }
}

/// The digest of layer `i` of the image manifest `repo:reference` in `reg`.
pub fn layer_digest(reg: &Registry, repo: &str, reference: &str, i: usize) -> String {
    let (_, manifest, _) = get_manifest(reg, repo, reference)
        .unwrap_or_else(|| panic!("{}: no manifest", reg.reference(repo, reference)));
    let v: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    v["layers"][i]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no layer {i}", reg.reference(repo, reference)))
        .to_string()
}

fn descriptors_of(manifest: &[u8]) -> (Vec<(String, String)>, Vec<(String, String)>) {
    // returns (child manifests, blobs) as (digest, media type)
    let v: serde_json::Value = serde_json::from_slice(manifest).expect("manifest JSON");
    let pick = |d: &serde_json::Value| {
        (
            d["digest"].as_str().expect("descriptor digest").to_string(),
            d["mediaType"].as_str().unwrap_or_default().to_string(),
        )
    };
    let mut children = Vec::new();
    let mut blobs = Vec::new();
    if let Some(ms) = v["manifests"].as_array() {
        children.extend(ms.iter().map(pick));
    }
    if v["config"].is_object() {
        blobs.push(pick(&v["config"]));
    }
    if let Some(ls) = v["layers"].as_array() {
        blobs.extend(ls.iter().map(pick));
    }
    (children, blobs)
}

/// Walk a manifest graph in a registry (children by digest, blobs by GET). Panics when a
/// part is missing or does not hash to its digest.
pub fn registry_graph(reg: &Registry, repo: &str, reference: &str) -> Graph {
    let (root, body, ct) = get_manifest(reg, repo, reference)
        .unwrap_or_else(|| panic!("{}: manifest not found", reg.reference(repo, reference)));
    let mut g = Graph {
        root: root.clone(),
        ..Default::default()
    };
    fn walk(reg: &Registry, repo: &str, digest: String, body: Vec<u8>, ct: String, g: &mut Graph) {
        assert_eq!(
            sha256_digest(&body),
            digest,
            "{repo}@{digest}: body hash mismatch"
        );
        let (children, blobs) = descriptors_of(&body);
        g.manifests.insert(digest, (ct, body));
        for (d, _) in blobs {
            if g.blobs.contains_key(&d) {
                continue;
            }
            let bytes = get_blob(reg, repo, &d)
                .unwrap_or_else(|| panic!("{}: blob {d} missing", reg.reference(repo, "x")));
            assert_eq!(sha256_digest(&bytes), d, "{repo} blob {d}: hash mismatch");
            g.blobs.insert(d, bytes);
        }
        for (d, _) in children {
            let (cd, cb, cct) = get_manifest(reg, repo, &d)
                .unwrap_or_else(|| panic!("{}: child manifest missing", reg.reference(repo, &d)));
            assert_eq!(cd, d);
            walk(reg, repo, cd, cb, cct, g);
        }
    }
    walk(reg, repo, root, body, ct, &mut g);
    g
}

/// Walk a manifest graph inside an OCI layout directory, starting at `digest`.
pub fn layout_graph(layout: &Path, digest: &str) -> Graph {
    let mut g = Graph {
        root: digest.to_string(),
        ..Default::default()
    };
    fn walk(layout: &Path, digest: &str, media_type: String, g: &mut Graph) {
        let body = layout_blob(layout, digest).unwrap_or_else(|| {
            panic!(
                "{}: manifest {digest} missing from blobs/",
                layout.display()
            )
        });
        let (children, blobs) = descriptors_of(&body);
        g.manifests.insert(digest.to_string(), (media_type, body));
        for (d, _) in blobs {
            let bytes = layout_blob(layout, &d)
                .unwrap_or_else(|| panic!("{}: blob {d} missing from blobs/", layout.display()));
            g.blobs.insert(d, bytes);
        }
        for (d, mt) in children {
            walk(layout, &d, mt, g);
        }
    }
    let mt = layout_entries(layout)
        .into_iter()
        .find(|e| e.digest == digest)
        .map(|e| e.media_type)
        .unwrap_or_default();
    walk(layout, digest, mt, &mut g);
    g
}

/// Assert that two graphs hold the same digests with identical bytes (media types of
/// manifests compared as well).
pub fn assert_same_graph(expected: &Graph, actual: &Graph, context: &str) {
    assert_eq!(expected.root, actual.root, "{context}: root digest differs");
    let ek: Vec<_> = expected.manifests.keys().collect();
    let ak: Vec<_> = actual.manifests.keys().collect();
    assert_eq!(ek, ak, "{context}: manifest sets differ");
    for (d, (_, bytes)) in &expected.manifests {
        assert!(
            actual.manifests[d].1 == *bytes,
            "{context}: manifest {d} bytes differ"
        );
    }
    let ek: Vec<_> = expected.blobs.keys().collect();
    let ak: Vec<_> = actual.blobs.keys().collect();
    assert_eq!(ek, ak, "{context}: blob sets differ");
    for (d, bytes) in &expected.blobs {
        assert!(
            actual.blobs[d] == *bytes,
            "{context}: blob {d} bytes differ"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// OCI layout reading
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutEntry {
    pub tag: Option<String>,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

pub fn layout_index(layout: &Path) -> serde_json::Value {
    let p = layout.join("index.json");
    let bytes = fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", p.display()))
}

/// Entries of `index.json` (tag from the `org.opencontainers.image.ref.name` annotation).
pub fn layout_entries(layout: &Path) -> Vec<LayoutEntry> {
    let v = layout_index(layout);
    v["manifests"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| LayoutEntry {
                    tag: m["annotations"][REF_NAME].as_str().map(str::to_string),
                    digest: m["digest"].as_str().expect("entry digest").to_string(),
                    media_type: m["mediaType"].as_str().unwrap_or_default().to_string(),
                    size: m["size"].as_u64().expect("entry size"),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn layout_blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(hex_of(digest))
}

pub fn layout_blob(layout: &Path, digest: &str) -> Option<Vec<u8>> {
    fs::read(layout_blob_path(layout, digest)).ok()
}

/// Assert the layout's `oci-layout` marker and `index.json` schema version.
pub fn assert_is_oci_layout(layout: &Path) {
    let marker = layout.join("oci-layout");
    let bytes = fs::read(&marker).unwrap_or_else(|e| panic!("read {}: {e}", marker.display()));
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("oci-layout JSON");
    assert_eq!(
        v,
        serde_json::json!({"imageLayoutVersion": "1.0.0"}),
        "{}",
        marker.display()
    );
    let index = layout_index(layout);
    assert_eq!(index["schemaVersion"], 2, "{}/index.json", layout.display());
}

/// Assert that the layout holds `(tag or None) -> digest` for `seeded` with the exact graph
/// the registry serves, and that every blob file hashes to its name.
pub fn assert_layout_matches(layout: &Path, src: &Registry, seeded: &Seeded) {
    assert_is_oci_layout(layout);
    let entries = layout_entries(layout);
    let matching: Vec<_> = entries
        .iter()
        .filter(|e| e.tag == seeded.tag && e.digest == seeded.digest)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{}: expected exactly one index.json entry for {:?} -> {}, have {:?}",
        layout.display(),
        seeded.tag,
        seeded.digest,
        entries
    );
    let entry = matching[0];
    assert_eq!(entry.media_type, seeded.media_type, "entry media type");
    let expected = registry_graph(src, &seeded.repo, seeded.reference());
    let size = expected.manifests[&seeded.digest].1.len() as u64;
    assert_eq!(entry.size, size, "entry size");
    let actual = layout_graph(layout, &seeded.digest);
    assert_same_graph(
        &expected,
        &actual,
        &format!("layout {} vs {}", layout.display(), seeded.repo),
    );
    assert_blob_files_verify(layout);
}

/// Every file under blobs/sha256 hashes to its own name.
pub fn assert_blob_files_verify(layout: &Path) {
    let dir = layout.join("blobs/sha256");
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().to_string();
        let bytes = fs::read(entry.path()).expect("read blob");
        assert_eq!(
            format!("{:x}", Sha256::digest(&bytes)),
            name,
            "{}: content does not match its name",
            entry.path().display()
        );
    }
}

/// Files (recursively) under `dir`; empty when it does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Assert that `dst/<prefix><repo>` holds every fixture exactly as `src` serves it: each tag
/// resolves to the source digest with identical bytes and graph; digest-only entries exist by
/// digest and gained no tag.
pub fn assert_restored(src: &Registry, fixtures: &Fixtures, dst: &Registry, prefix: &str) {
    for e in &fixtures.entries {
        let dst_repo = format!("{prefix}{}", e.repo);
        let expected = registry_graph(src, &e.repo, e.reference());
        let (digest, _, ct) = get_manifest(dst, &dst_repo, e.reference()).unwrap_or_else(|| {
            panic!(
                "{} not found after restore",
                dst.reference(&dst_repo, e.reference())
            )
        });
        assert_eq!(digest, e.digest, "{dst_repo}:{} digest", e.reference());
        assert_eq!(
            ct,
            e.media_type,
            "{dst_repo}:{} content type",
            e.reference()
        );
        let actual = registry_graph(dst, &dst_repo, e.reference());
        assert_same_graph(&expected, &actual, &format!("restored {dst_repo}"));
    }
    for repo in fixtures.repos() {
        let dst_repo = format!("{prefix}{repo}");
        assert_eq!(
            tags(dst, &dst_repo),
            fixtures.tags_of(&repo),
            "tags of restored {dst_repo}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------------------------

pub const BINARIES: [&str; 6] = [
    "oci-backup",
    "oci-restore",
    "oci-fetch",
    "oci-push",
    "oci-pack",
    "oci-unpack",
];

/// Path of one of the crate's binaries (built by cargo for integration tests).
pub fn bin(name: &str) -> PathBuf {
    let path = match name {
        "oci-backup" => option_env!("CARGO_BIN_EXE_oci-backup"),
        "oci-restore" => option_env!("CARGO_BIN_EXE_oci-restore"),
        "oci-fetch" => option_env!("CARGO_BIN_EXE_oci-fetch"),
        "oci-push" => option_env!("CARGO_BIN_EXE_oci-push"),
        "oci-pack" => option_env!("CARGO_BIN_EXE_oci-pack"),
        "oci-unpack" => option_env!("CARGO_BIN_EXE_oci-unpack"),
        other => panic!("unknown binary {other}"),
    };
    PathBuf::from(path.unwrap_or_else(|| {
        panic!("binary {name} is not built by this crate (no src/bin/{name}.rs at compile time)")
    }))
}

/// Run a binary with args and extra env (stdin closed, 120 s timeout). `DOCKER_CONFIG` points
/// at an empty directory unless `env` sets it, so no real credentials leak into tests.
pub fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_unsetting(name, args, env, &[])
}

/// Like [`run`], then removes the variables named in `unset` from the child's environment.
pub fn run_unsetting(name: &str, args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> Output {
    run_full(name, args, env, unset, Stdio::null())
}

/// Like [`run`], with `stdin` read from the file at `path`.
pub fn run_with_stdin_file(name: &str, args: &[&str], env: &[(&str, &str)], path: &Path) -> Output {
    let f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    run_full(name, args, env, &[], Stdio::from(f))
}

/// Like [`run`], with `bytes` on stdin.
pub fn run_with_stdin_bytes(
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
    bytes: &[u8],
) -> Output {
    let tmp = tempfile::NamedTempFile::new().expect("temp file");
    fs::write(tmp.path(), bytes).expect("write stdin file");
    run_with_stdin_file(name, args, env, tmp.path())
}

/// Like [`run_ok`], with `stdin` read from the file at `path`.
pub fn run_ok_with_stdin_file(
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
    path: &Path,
) -> Output {
    let out = run_with_stdin_file(name, args, env, path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "expected success:\n{}",
        describe(name, args, &out)
    );
    out
}

fn run_full(
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
    unset: &[&str],
    stdin: Stdio,
) -> Output {
    let empty_docker_config = TempDir::new().expect("temp dir");
    let mut cmd = Command::new(bin(name));
    cmd.args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("DOCKER_CONFIG", empty_docker_config.path())
        .env_remove("REGISTRY_AUTH_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait child") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t_out.join().expect("stdout thread"),
        stderr: t_err.join().expect("stderr thread"),
    }
}

pub fn describe(name: &str, args: &[&str], out: &Output) -> String {
    format!(
        "{name} {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run and assert exit 0.
pub fn run_ok(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = run(name, args, env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "expected success:\n{}",
        describe(name, args, &out)
    );
    out
}

/// Non-empty lines of stderr.
pub fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// skopeo
// ---------------------------------------------------------------------------------------------

pub const SKOPEO: &str = "/usr/bin/skopeo";

/// Run skopeo (global `--insecure-policy`); panics when skopeo is missing or fails.
pub fn skopeo(args: &[&str]) -> Vec<u8> {
    require_tool(SKOPEO, "skopeo");
    let mut full = vec!["--insecure-policy"];
    full.extend_from_slice(args);
    let out = Command::new(SKOPEO)
        .args(&full)
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {} failed:\n{}",
        full.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A temp dir holding a Docker `config.json` with basic-auth entries for each registry.
pub fn docker_config_for(entries: &[(&Registry, &str, &str)]) -> TempDir {
    let dir = TempDir::new().expect("temp dir");
    let mut auths = serde_json::Map::new();
    for (reg, user, pass) in entries {
        auths.insert(
            reg.addr(),
            serde_json::json!({
                "auth": base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
            }),
        );
    }
    let cfg = serde_json::json!({ "auths": auths });
    fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec_pretty(&cfg).expect("json"),
    )
    .expect("write config.json");
    dir
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Assert a failed run: exit 1 and exactly ONE non-empty stderr line that contains every
/// string of `contains` and at least one of `reasons` (case-insensitive).
pub fn assert_single_error_line(
    name: &str,
    args: &[&str],
    out: &Output,
    contains: &[&str],
    reasons: &[&str],
) {
    let ctx = describe(name, args, out);
    assert_eq!(out.status.code(), Some(1), "expected exit 1:\n{ctx}");
    let lines = stderr_lines(out);
    assert_eq!(lines.len(), 1, "expected exactly one stderr line:\n{ctx}");
    assert_line_explains(&lines[0], contains, reasons, &ctx);
}

/// Assert that exactly one stderr line mentions `reference`, and that it gives one of
/// `reasons` (case-insensitive). For runs where other refs succeed.
pub fn assert_error_line_for(
    name: &str,
    args: &[&str],
    out: &Output,
    reference: &str,
    reasons: &[&str],
) {
    let ctx = describe(name, args, out);
    let lines: Vec<String> = stderr_lines(out)
        .into_iter()
        .filter(|l| l.contains(reference))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one stderr line naming {reference}:\n{ctx}"
    );
    assert_line_explains(&lines[0], &[reference], reasons, &ctx);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "binary panicked:\n{ctx}"
    );
}

fn assert_line_explains(line: &str, contains: &[&str], reasons: &[&str], ctx: &str) {
    for c in contains {
        assert!(line.contains(c), "error line does not name {c:?}:\n{ctx}");
    }
    let lower = line.to_lowercase();
    assert!(
        reasons.iter().any(|r| lower.contains(&r.to_lowercase())),
        "error line gives none of the reasons {reasons:?}:\n{ctx}"
    );
}

/// Assert that every entry of the OCI layout at `layout` is in `dst/repo` exactly: tags
/// resolve to the entry digest, untagged entries exist by digest, and the graph in the
/// registry is byte-identical to the layout's.
pub fn assert_layout_restored(layout: &Path, dst: &Registry, repo: &str) {
    let entries = layout_entries(layout);
    assert!(!entries.is_empty(), "{}: no entries", layout.display());
    for e in &entries {
        let reference = e.tag.clone().unwrap_or_else(|| e.digest.clone());
        let (digest, _, _) = get_manifest(dst, repo, &reference).unwrap_or_else(|| {
            panic!(
                "{} missing after restore of {}",
                dst.reference(repo, &reference),
                layout.display()
            )
        });
        assert_eq!(digest, e.digest, "{repo}:{reference}");
        let expected = layout_graph(layout, &e.digest);
        let actual = registry_graph(dst, repo, &reference);
        assert_same_graph(&expected, &actual, &format!("{repo}:{reference}"));
    }
    let mut expected_tags: Vec<String> = entries.iter().filter_map(|e| e.tag.clone()).collect();
    expected_tags.sort();
    expected_tags.dedup();
    assert_eq!(tags(dst, repo), expected_tags, "tags of {repo}");
}

/// inode of every file under `dir` (to prove files were left in place).
pub fn inodes_under(dir: &Path) -> BTreeMap<PathBuf, u64> {
    use std::os::unix::fs::MetadataExt;
    files_under(dir)
        .into_iter()
        .map(|p| {
            let ino = fs::metadata(&p).expect("metadata").ino();
            (p, ino)
        })
        .collect()
}

/// Write a minimal OCI layout with the given raw `index.json` text (no blobs).
pub fn write_bare_layout(dir: &Path, index_json: &str) {
    fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir layout");
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    fs::write(dir.join("index.json"), index_json).expect("index.json");
}

// ---------------------------------------------------------------------------------------------
// Faults a real registry cannot be made to produce
// ---------------------------------------------------------------------------------------------

/// `tests/support/fault_proxy.py` in front of a real registry: it answers the requests its
/// rules match with a fault (a 429 or 503, a dropped connection, a body cut in half, a
/// redirect to another host, a refused mount) and forwards the rest. Killed on drop.
pub struct FaultProxy {
    child: Child,
    pub port: u16,
    log: tempfile::NamedTempFile,
}

impl FaultProxy {
    /// Starts the proxy in front of `upstream` with `rules` (see the script's doc).
    pub fn start(upstream: &Registry, rules: serde_json::Value) -> FaultProxy {
        use std::io::BufRead;
        let log = tempfile::NamedTempFile::new().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fault_proxy.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(upstream.port().to_string())
            .arg(rules.to_string())
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("spawn fault_proxy.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("fault proxy port");
        FaultProxy { child, port, log }
    }

    /// `127.0.0.1:PORT`, to use in place of the upstream registry's address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The proxy's log lines that start with `prefix` (`fault`, `range`, `request`, ...).
    pub fn lines(&self, prefix: &str) -> Vec<String> {
        fs::read_to_string(self.log.path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split(' ').next() == Some(prefix))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
