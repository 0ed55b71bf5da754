//! A client for one registry host speaking the OCI distribution API: manifests and blobs
//! in, manifests and blobs out, with authentication (`auth`), Docker's HTTPS-then-HTTP
//! fallback for loopback hosts, and errors that name the URL and the registry's reason.

pub mod auth;
pub mod retry;

use std::io::{self, Read};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::digest::{Digest, VerifyingReader};
use crate::manifest::{Descriptor, ACCEPT, MAX_MANIFEST_SIZE};
use crate::reference::Host;
use auth::Auth;

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Speak plain HTTP to every registry.
    pub plain_http: bool,
}

/// A request body.
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A stream of known length; it cannot be replayed, so it is only sent once the
    /// scope's authorization is known.
    Stream(&'a mut dyn Read, u64),
}

/// A manifest as served: its bytes, the Content-Type, and the digest the registry claims.
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub digest: Digest,
}

/// What a cross-repository mount attempt did.
pub enum Mount {
    Mounted,
    /// The registry opened an ordinary upload session instead, at this URL.
    Upload(String),
}

/// A client for one registry host. Cheap to share between threads.
pub struct Registry {
    host: Host,
    agent: ureq::Agent,
    auth: Auth,
    options: Options,
    base: OnceLock<String>,
}

fn pull(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn push(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

impl Registry {
    pub fn new(host: &Host, options: &Options) -> Result<Registry> {
        let credentials = auth::credentials_for(host)?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            // A registry that stops answering is given up on (then retried) after this
            // long without a byte; finishing a large upload takes the registry seconds.
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .max_idle_connections_per_host(16)
            .user_agent(concat!("ocipipe/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Registry {
            host: host.clone(),
            agent,
            auth: Auth::new(host.clone(), credentials),
            options: options.clone(),
            base: OnceLock::new(),
        })
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// `https://host` or `http://host`. For loopback hosts, as Docker does, HTTPS is tried
    /// first and plain HTTP used when the server does not speak TLS.
    fn base(&self) -> Result<&str> {
        if let Some(b) = self.base.get() {
            return Ok(b);
        }
        let api = self.host.api_host();
        let base = if self.options.plain_http {
            format!("http://{api}")
        } else if self.host.is_loopback() {
            let https = format!("https://{api}");
            match self.agent.get(&format!("{https}/v2/")).call() {
                Ok(_) | Err(ureq::Error::Status(..)) => https,
                Err(ureq::Error::Transport(t)) if t.to_string().contains("certificate") => {
                    bail!("{https}/v2/: {t}")
                }
                Err(ureq::Error::Transport(_)) => format!("http://{api}"),
            }
        } else {
            format!("https://{api}")
        };
        Ok(self.base.get_or_init(|| base))
    }

    fn url(&self, repo: &str, tail: &str) -> Result<String> {
        Ok(format!("{}/v2/{repo}/{tail}", self.base()?))
    }

    /// Sends a request, answering one authentication challenge, and sends it again after
    /// a transient failure (`retry`) when its body can be replayed. Returns the response
    /// whatever its status; `status_error` marks a transient one that outlived its retries.
    fn send(
        &self,
        method: &str,
        url: &str,
        scope: &str,
        headers: &[(&str, &str)],
        mut body: Body<'_>,
    ) -> Result<ureq::Response> {
        let replayable = !matches!(body, Body::Stream(..));
        retry::retrying(|| {
            let sent = self.send_once(method, url, scope, headers, &mut body);
            match sent {
                _ if !replayable => retry::Try::Done(sent),
                Ok(resp) if retry::is_transient_status(resp.status()) => retry::Try::Again {
                    retry_after: resp.header("Retry-After").map(str::to_string),
                    outcome: Ok(resp),
                },
                sent => retry::again_if_transient(sent),
            }
        })
    }

    /// One try of `send`: the request, and once more if it met an authentication challenge.
    fn send_once(
        &self,
        method: &str,
        url: &str,
        scope: &str,
        headers: &[(&str, &str)],
        body: &mut Body<'_>,
    ) -> Result<ureq::Response> {
        let mut authz = self.auth.header_for(scope);
        for attempt in 0..2 {
            let mut req = self.agent.request(method, url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = &authz {
                req = req.set("Authorization", a);
            }
            let mut read_error = None;
            let result = match body {
                Body::Empty => req.call(),
                Body::Bytes(b) => req.send_bytes(b),
                Body::Stream(r, len) => {
                    let mut recording = RecordingReader {
                        inner: &mut **r,
                        error: &mut read_error,
                    };
                    req.set("Content-Length", &len.to_string())
                        .send(&mut recording)
                }
            };
            let resp = match result {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                // The content being uploaded failed (its digest check, a cut archive):
                // that is the error, not the network.
                Err(ureq::Error::Transport(_)) if read_error.is_some() => {
                    let e = read_error.unwrap_or_else(|| io::Error::other("read failed"));
                    return Err(anyhow!(e));
                }
                Err(ureq::Error::Transport(t)) => {
                    let msg = format!("{method} {}: {}", without_query(url), transport_message(&t));
                    if retry::is_transient_transport(&t) {
                        return Err(anyhow!(retry::Transient(msg)));
                    }
                    return Err(anyhow!(msg));
                }
            };
            if resp.status() != 401 || attempt == 1 {
                return Ok(resp);
            }
            let Some(challenge) = resp.header("WWW-Authenticate").map(str::to_string) else {
                return Ok(resp);
            };
            if matches!(body, Body::Stream(..)) {
                bail!(
                    "{method} {}: authentication required in the middle of an upload",
                    without_query(url)
                );
            }
            authz = Some(self.auth.answer(
                &challenge,
                scope,
                authz.as_deref(),
                |token_url, basic| self.fetch_token(token_url, basic),
            )?);
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn fetch_token(&self, url: &str, basic: Option<String>) -> Result<auth::Token> {
        let mut req = self.agent.get(url);
        if let Some(b) = &basic {
            req = req.set("Authorization", b);
        }
        let result = retry::retrying(|| match req.clone().call() {
            Err(ureq::Error::Status(code, r)) if retry::is_transient_status(code) => {
                retry::Try::Again {
                    retry_after: r.header("Retry-After").map(str::to_string),
                    outcome: Err(ureq::Error::Status(code, r)),
                }
            }
            Err(ureq::Error::Transport(t)) if retry::is_transient_transport(&t) => {
                retry::Try::Again {
                    retry_after: None,
                    outcome: Err(ureq::Error::Transport(t)),
                }
            }
            other => retry::Try::Done(other),
        });
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(401, _)) if basic.is_some() => {
                bail!(
                    "authentication failed for {}: credentials refused",
                    self.host
                )
            }
            Err(ureq::Error::Status(401, _)) => return Err(self.auth.no_credentials()),
            Err(ureq::Error::Status(code, r)) => {
                bail!("token request {url}: HTTP {code} {}", r.status_text())
            }
            Err(ureq::Error::Transport(t)) => {
                bail!("token request {url}: {}", transport_message(&t))
            }
        };
        let mut body = Vec::new();
        resp.into_reader()
            .take(1 << 20)
            .read_to_end(&mut body)
            .with_context(|| format!("token request {url}"))?;
        auth::token_from_response(&body).with_context(|| format!("token request {url}"))
    }

    /// Fetches a manifest by tag or digest, with every manifest type in `Accept`. The
    /// digest returned is that of the bytes; when `reference` is a digest, or the
    /// registry names one, the bytes are checked against it.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<FetchedManifest> {
        let url = self.url(repo, &format!("manifests/{reference}"))?;
        // A body cut in the middle is fetched again (manifests are small: no Range).
        let (bytes, content_type, claimed) = retry::retrying(|| {
            let resp = match self.send("GET", &url, &pull(repo), &[("Accept", ACCEPT)], Body::Empty)
            {
                Ok(r) if r.status() == 200 => r,
                Ok(r) => return retry::Try::Done(Err(self.status_error(r))),
                Err(e) => return retry::Try::Done(Err(e)),
            };
            let content_type = resp
                .header("Content-Type")
                .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
            let claimed = resp.header("Docker-Content-Digest").map(str::to_string);
            let mut bytes = Vec::new();
            let read = resp
                .into_reader()
                .take(MAX_MANIFEST_SIZE + 1)
                .read_to_end(&mut bytes);
            match read {
                Ok(_) => retry::Try::Done(Ok((bytes, content_type, claimed))),
                Err(e) => {
                    let transient = retry::is_transient_io(&e);
                    let outcome = Err(anyhow!(e).context(format!("GET {url}")));
                    if transient {
                        retry::Try::Again {
                            outcome,
                            retry_after: None,
                        }
                    } else {
                        retry::Try::Done(outcome)
                    }
                }
            }
        })?;
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            bail!("GET {url}: manifest larger than {MAX_MANIFEST_SIZE} bytes");
        }
        let digest = match reference.parse::<Digest>() {
            Ok(asked) => {
                asked
                    .verify(&bytes, None)
                    .with_context(|| format!("GET {url}"))?;
                asked
            }
            Err(_) => {
                let computed = Digest::sha256_of(&bytes);
                if let Some(claimed) = claimed.and_then(|c| c.parse::<Digest>().ok()) {
                    if claimed.algorithm() == computed.algorithm() && claimed != computed {
                        bail!(
                            "GET {url}: the registry says the manifest is {claimed} but its bytes are {computed}"
                        );
                    }
                }
                computed
            }
        };
        Ok(FetchedManifest {
            bytes,
            content_type,
            digest,
        })
    }

    /// True when the registry has the manifest with this digest.
    pub fn has_manifest(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let url = self.url(repo, &format!("manifests/{digest}"))?;
        let resp = self.send(
            "HEAD",
            &url,
            &pull(repo),
            &[("Accept", ACCEPT)],
            Body::Empty,
        )?;
        match resp.status() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error(resp)),
        }
    }

    /// Opens blob `desc` for reading; the reader fails at the end unless the content
    /// matches the descriptor's digest and size. A download cut in the middle is resumed
    /// where it stopped (`Range`), so the reader sees the blob once, whole.
    pub fn get_blob(
        &self,
        repo: &str,
        desc: &Descriptor,
    ) -> Result<VerifyingReader<Box<dyn Read + Send + Sync + '_>>> {
        let url = self.url(repo, &format!("blobs/{}", desc.digest))?;
        let first = self.open_blob(repo, &url, 0)?;
        let what = format!("GET {url}");
        let repo = repo.to_string();
        let reopen = move |offset: u64| self.open_blob(&repo, &url, offset);
        let body = retry::ResumingReader::new(first, what, Box::new(reopen));
        Ok(VerifyingReader::new(
            Box::new(body),
            &desc.digest,
            desc.size,
        ))
    }

    /// A blob's body from byte `offset` on: a `Range` request past 0, and a registry that
    /// answers it with the whole blob (200) has the first bytes skipped.
    fn open_blob(
        &self,
        repo: &str,
        url: &str,
        offset: u64,
    ) -> Result<Box<dyn Read + Send + Sync + 'static>> {
        let range = format!("bytes={offset}-");
        let headers: &[(&str, &str)] = if offset == 0 {
            &[]
        } else {
            &[("Range", range.as_str())]
        };
        let resp = self.send("GET", url, &pull(repo), headers, Body::Empty)?;
        match resp.status() {
            200 => {
                let mut body = resp.into_reader();
                if offset > 0 {
                    let skipped = io::copy(&mut (&mut body).take(offset), &mut io::sink())
                        .with_context(|| format!("GET {url}"))?;
                    if skipped != offset {
                        bail!("GET {url}: the blob ended before byte {offset}");
                    }
                }
                Ok(body)
            }
            206 if offset > 0 => {
                let start = resp
                    .header("Content-Range")
                    .and_then(|r| r.trim().strip_prefix("bytes "))
                    .and_then(|r| r.split('-').next())
                    .and_then(|r| r.parse::<u64>().ok());
                if start != Some(offset) {
                    bail!("GET {url}: asked for the blob from byte {offset}, got another range");
                }
                Ok(resp.into_reader())
            }
            _ => Err(self.status_error(resp)),
        }
    }

    /// True when the registry has blob `digest` in `repo`.
    pub fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let url = self.url(repo, &format!("blobs/{digest}"))?;
        let resp = self.send("HEAD", &url, &push(repo), &[], Body::Empty)?;
        match resp.status() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error(resp)),
        }
    }

    /// The size of blob `digest` in `repo`, None when the repository does not have it.
    pub fn blob_size(&self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        let url = self.url(repo, &format!("blobs/{digest}"))?;
        let resp = self.send("HEAD", &url, &pull(repo), &[], Body::Empty)?;
        match resp.status() {
            200 => resp
                .header("Content-Length")
                .and_then(|v| v.trim().parse().ok())
                .map(Some)
                .ok_or_else(|| anyhow!("HEAD {url}: no Content-Length")),
            404 => Ok(None),
            _ => Err(self.status_error(resp)),
        }
    }

    /// Asks the registry to mount `digest` from repository `from` into `repo`.
    pub fn mount_blob(&self, repo: &str, digest: &Digest, from: &str) -> Result<Mount> {
        let url = self.url(
            repo,
            &format!(
                "blobs/uploads/?mount={digest}&from={}",
                auth::encode_query(from)
            ),
        )?;
        let scope = format!("{} {}", push(repo), pull(from));
        let resp = self.send("POST", &url, &scope, &[], Body::Empty)?;
        match resp.status() {
            201 => Ok(Mount::Mounted),
            202 => Ok(Mount::Upload(self.location(&resp, &url)?)),
            _ => Err(self.status_error(resp)),
        }
    }

    /// Opens an upload session; returns its URL.
    pub fn start_upload(&self, repo: &str) -> Result<String> {
        let url = self.url(repo, "blobs/uploads/")?;
        let resp = self.send("POST", &url, &push(repo), &[], Body::Empty)?;
        if resp.status() != 202 {
            return Err(self.status_error(resp));
        }
        self.location(&resp, &url)
    }

    /// Uploads blob `desc` in one PUT to an open upload session. The stream is checked
    /// against the descriptor as it goes; a mismatch aborts the request, so the registry
    /// never commits a wrong blob.
    pub fn finish_upload(
        &self,
        repo: &str,
        location: &str,
        desc: &Descriptor,
        content: &mut dyn Read,
    ) -> Result<()> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!(
            "{location}{sep}digest={}",
            auth::encode_query(&desc.digest.to_string())
        );
        let mut verified = VerifyingReader::new(content, &desc.digest, desc.size);
        let resp = self.send(
            "PUT",
            &url,
            &push(repo),
            &[("Content-Type", "application/octet-stream")],
            Body::Stream(&mut verified, desc.size),
        )?;
        if resp.status() != 201 {
            return Err(self.status_error(resp));
        }
        Ok(())
    }

    /// Pushes manifest `bytes` under `reference` (a tag or its digest).
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        desc: &Descriptor,
        bytes: &[u8],
    ) -> Result<()> {
        desc.digest
            .verify(bytes, Some(desc.size))
            .with_context(|| format!("manifest {}", desc.digest))?;
        let url = self.url(repo, &format!("manifests/{reference}"))?;
        let resp = self.send(
            "PUT",
            &url,
            &push(repo),
            &[("Content-Type", desc.media_type.as_str())],
            Body::Bytes(bytes),
        )?;
        if resp.status() != 201 && resp.status() != 200 {
            return Err(self.status_error(resp));
        }
        if let Some(d) = resp.header("Docker-Content-Digest") {
            if let Ok(d) = d.parse::<Digest>() {
                if d.algorithm() == desc.digest.algorithm() && d != desc.digest {
                    bail!(
                        "PUT {url}: the registry stored the manifest as {d}, not {}",
                        desc.digest
                    );
                }
            }
        }
        Ok(())
    }

    /// The error for an unexpected status; a 401 says whether credentials were missing
    /// or refused.
    fn status_error(&self, resp: ureq::Response) -> anyhow::Error {
        if resp.status() == 401 {
            if !self.auth.has_credentials() {
                return self.auth.no_credentials();
            }
            return anyhow!(
                "authentication failed: the credentials for {} were refused",
                self.host
            );
        }
        status_error(resp)
    }

    fn location(&self, resp: &ureq::Response, url: &str) -> Result<String> {
        let loc = resp
            .header("Location")
            .ok_or_else(|| anyhow!("POST {url}: upload session without a Location"))?;
        if loc.starts_with("http://") || loc.starts_with("https://") {
            Ok(loc.to_string())
        } else if loc.starts_with('/') {
            Ok(format!("{}{loc}", self.base()?))
        } else {
            bail!("POST {url}: unsupported Location {loc:?}")
        }
    }
}

/// A reader that keeps the first error it returns, so an upload that fails because its
/// content did can say so.
struct RecordingReader<'a, 'e> {
    inner: &'a mut dyn Read,
    error: &'e mut Option<io::Error>,
}

impl Read for RecordingReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if self.error.is_none() {
                *self.error = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

/// `url` without its query: upload URLs carry the registry's session state there, which
/// is long and means nothing to a reader of the error.
fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

fn transport_message(t: &ureq::Transport) -> String {
    let mut msg = match t.message() {
        Some(m) => m.to_string(),
        None => t.kind().to_string(),
    };
    let mut source = std::error::Error::source(t);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg = format!("{msg}: {text}");
        }
        source = s.source();
    }
    msg
}

/// The error for an unexpected status: the registry's own message when it sent one.
fn status_error(resp: ureq::Response) -> anyhow::Error {
    let status = resp.status();
    let status_text = resp.status_text().to_string();
    let what = format!(
        "{} {}",
        resp.get_url().split('?').next().unwrap_or(""),
        status
    );
    let mut body = Vec::new();
    let _ = resp.into_reader().take(64 * 1024).read_to_end(&mut body);
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?;
            let msg = e.get("message").and_then(|m| m.as_str());
            let code = e.get("code").and_then(|m| m.as_str());
            msg.or(code).map(str::to_string)
        });
    let message = match (status, message) {
        (401, _) => format!("authentication failed ({what})"),
        (403, m) => format!(
            "access denied{} ({what})",
            m.map(|m| format!(": {m}")).unwrap_or_default()
        ),
        // A registry's own message says what failed; a transient one also says how.
        (s, Some(m)) if retry::is_transient_status(s) => format!("{m} ({what})"),
        (_, Some(m)) => m,
        (_, None) => format!("HTTP {status} {status_text} ({what})"),
    };
    if retry::is_transient_status(status) {
        anyhow!(retry::Transient(message))
    } else {
        anyhow!(message)
    }
}
