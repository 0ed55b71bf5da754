//! Registry authentication: credentials from the Docker config file, `WWW-Authenticate`
//! challenge parsing, and the HTTP basic and bearer-token schemes. Tokens are cached per
//! scope for the life of the client.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;

use crate::reference::{Host, DOCKER_HUB};

/// A user name and password (or token) for one registry.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The Docker config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`
/// (an empty `DOCKER_CONFIG` counts as unset, as in Docker).
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Looks up credentials for `host` in the Docker config file. A missing file means
/// anonymous access; an unreadable or malformed one is an error naming the file.
pub fn credentials_for(host: &Host) -> Result<Option<Credentials>> {
    let Some(path) = docker_config_path() else {
        return Ok(None);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow!("{}: {e}", path.display())),
    };
    let config: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: invalid JSON", path.display()))?;
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let wanted = host.as_str();
    let entry = auths.iter().find(|(key, _)| {
        let k = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let k = k.split('/').next().unwrap_or(k);
        k == wanted
            || (wanted == DOCKER_HUB
                && (k == "index.docker.io" || k == "registry-1.docker.io" || k == DOCKER_HUB))
    });
    let Some((key, entry)) = entry else {
        return Ok(None);
    };
    let bad = |why: &str| anyhow!("{}: auths.{key}: {why}", path.display());
    if let Some(auth) = entry
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("auth is not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad("auth is not UTF-8"))?;
        let (u, p) = decoded
            .split_once(':')
            .ok_or_else(|| bad("auth is not base64 of user:password"))?;
        return Ok(Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        }));
    }
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(str::to_string);
    if let (Some(username), Some(password)) = (field("username"), field("password")) {
        return Ok(Some(Credentials { username, password }));
    }
    Ok(None)
}

/// The credential helper the Docker config file names for `host` (`credHelpers.<host>`,
/// else `credsStore`), if any: Docker Desktop and `docker login` with a helper keep the
/// password there, not in the file.
fn credential_helper_of(host: &Host) -> Option<String> {
    let bytes = std::fs::read(docker_config_path()?).ok()?;
    let config: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let per_host = config
        .get("credHelpers")
        .and_then(|h| h.get(host.as_str()))
        .and_then(|h| h.as_str());
    per_host
        .or_else(|| config.get("credsStore").and_then(|s| s.as_str()))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Basic realm="..."` or `Bearer realm="...",service="...",scope="..."`.
pub fn parse_challenge(header: &str) -> Result<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Ok(Challenge::Basic),
        "bearer" => {
            let realm = params
                .get("realm")
                .cloned()
                .ok_or_else(|| anyhow!("bearer challenge without realm: {header}"))?;
            Ok(Challenge::Bearer {
                realm,
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            })
        }
        _ => bail!("unsupported authentication scheme: {header}"),
    }
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = &rest[eq + 1..];
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = r.char_indices();
            let mut end = r.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &r[end.min(r.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.insert(key, value);
    }
    out
}

/// Authorization state for one registry host: its credentials, and the headers already
/// earned (basic for every request once the registry asked for it; bearer per scope).
pub struct Auth {
    host: Host,
    credentials: Option<Credentials>,
    basic: Mutex<bool>,
    tokens: Mutex<HashMap<String, Earned>>,
    /// Held while a token is fetched, so that parallel requests that all met a 401 for the
    /// same scope ask the token server once, not once each.
    fetching: Mutex<()>,
}

/// A bearer header and when to stop sending it.
struct Earned {
    header: String,
    renew_at: Instant,
}

/// A token the token endpoint gave, with its lifetime when it said one.
#[derive(Debug, PartialEq, Eq)]
pub struct Token {
    pub token: String,
    pub expires_in: Option<u64>,
}

/// The lifetime the token spec tells clients to assume when `expires_in` is missing.
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

/// When to fetch a new token: well before the old one expires, so that a request (an upload
/// that cannot be replayed, above all) never starts with a token about to lapse.
fn renew_at(now: Instant, expires_in: Option<u64>) -> Instant {
    let life = expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME);
    // Keep a quarter of the lifetime (at least 10 s) as margin.
    let margin = (life / 4).max(10).min(life);
    now + Duration::from_secs(life - margin)
}

impl Auth {
    pub fn new(host: Host, credentials: Option<Credentials>) -> Auth {
        Auth {
            host,
            credentials,
            basic: Mutex::new(false),
            tokens: Mutex::new(HashMap::new()),
            fetching: Mutex::new(()),
        }
    }

    /// The `Authorization` header to send for `scope`, if one is known already.
    pub fn header_for(&self, scope: &str) -> Option<String> {
        if *self.basic.lock().unwrap_or_else(|e| e.into_inner()) {
            return self.credentials.as_ref().map(Credentials::basic_header);
        }
        self.fresh_token(scope, None)
    }

    /// The cached bearer header for `scope` unless it is due for renewal or is `rejected`
    /// (the header a 401 just refused).
    fn fresh_token(&self, scope: &str, rejected: Option<&str>) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let earned = tokens.get(scope)?;
        if Instant::now() >= earned.renew_at || Some(earned.header.as_str()) == rejected {
            return None;
        }
        Some(earned.header.clone())
    }

    /// Answers a 401's challenge for `scope`, fetching a token with `get_token` (called with
    /// the token URL and the basic header, if any) for bearer challenges. `rejected` is the
    /// header the 401 refused, if one was sent. Returns the header to retry with.
    pub fn answer(
        &self,
        challenge: &str,
        scope: &str,
        rejected: Option<&str>,
        get_token: impl FnOnce(&str, Option<String>) -> Result<Token>,
    ) -> Result<String> {
        match parse_challenge(challenge)? {
            Challenge::Basic => {
                let creds = self
                    .credentials
                    .as_ref()
                    .ok_or_else(|| self.no_credentials())?;
                *self.basic.lock().unwrap_or_else(|e| e.into_inner()) = true;
                Ok(creds.basic_header())
            }
            Challenge::Bearer { realm, service, .. } => {
                let mut url = realm.clone();
                let mut sep = if url.contains('?') { '&' } else { '?' };
                if let Some(s) = &service {
                    url.push_str(&format!("{sep}service={}", encode_query(s)));
                    sep = '&';
                }
                for sc in scope.split(' ').filter(|s| !s.is_empty()) {
                    url.push_str(&format!("{sep}scope={}", encode_query(sc)));
                    sep = '&';
                }
                let _one_fetch = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
                // Another thread may have fetched it while this one waited.
                if let Some(header) = self.fresh_token(scope, rejected) {
                    return Ok(header);
                }
                let basic = self.credentials.as_ref().map(Credentials::basic_header);
                let token = get_token(&url, basic)?;
                let header = format!("Bearer {}", token.token);
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        scope.to_string(),
                        Earned {
                            header: header.clone(),
                            renew_at: renew_at(Instant::now(), token.expires_in),
                        },
                    );
                Ok(header)
            }
        }
    }

    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    pub fn no_credentials(&self) -> anyhow::Error {
        let where_ = docker_config_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the Docker config file".into());
        let helper = credential_helper_of(&self.host)
            .map(|h| {
                format!(
                    " (it names the credential helper {h:?}, which is not run: an auths entry \
                     with auth = base64 of user:password is read)"
                )
            })
            .unwrap_or_default();
        anyhow!(
            "authentication required: no credentials for {} in {where_}{helper}",
            self.host
        )
    }
}

/// Extracts the token and its lifetime from a token endpoint's JSON answer.
pub fn token_from_response(body: &[u8]) -> Result<Token> {
    let v: serde_json::Value =
        serde_json::from_slice(body).context("token endpoint answered with invalid JSON")?;
    let expires_in = v.get("expires_in").and_then(|e| e.as_u64());
    for key in ["token", "access_token"] {
        if let Some(t) = v
            .get(key)
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
        {
            return Ok(Token {
                token: t.to_string(),
                expires_in,
            });
        }
    }
    bail!("token endpoint answered without a token")
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
    }

    #[test]
    fn parses_basic_challenge() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
    }

    #[test]
    fn bearer_answer_builds_token_url_with_every_scope() {
        let auth = Auth::new(Host::parse("r.example").unwrap(), None);
        let mut seen = String::new();
        let h = auth
            .answer(
                r#"Bearer realm="https://t.example/token",service="svc""#,
                "repository:b:pull,push repository:a:pull",
                None,
                |url, basic| {
                    assert!(basic.is_none());
                    seen = url.to_string();
                    Ok(Token {
                        token: "tok".into(),
                        expires_in: Some(300),
                    })
                },
            )
            .unwrap();
        assert_eq!(h, "Bearer tok");
        assert_eq!(
            seen,
            "https://t.example/token?service=svc&scope=repository%3Ab%3Apull%2Cpush&scope=repository%3Aa%3Apull"
        );
        assert_eq!(
            auth.header_for("repository:b:pull,push repository:a:pull")
                .as_deref(),
            Some("Bearer tok")
        );
    }

    #[test]
    fn a_token_is_renewed_before_it_expires_and_when_refused() {
        let auth = Auth::new(Host::parse("r.example").unwrap(), None);
        let challenge = r#"Bearer realm="https://t.example/token""#;
        let fetches = std::cell::Cell::new(0);
        let get = |_: &str, _: Option<String>| {
            fetches.set(fetches.get() + 1);
            Ok(Token {
                token: format!("t{}", fetches.get()),
                expires_in: Some(0),
            })
        };
        assert_eq!(auth.answer(challenge, "s", None, get).unwrap(), "Bearer t1");
        // Lifetime 0: never reused.
        assert_eq!(auth.header_for("s"), None);
        let long = |_: &str, _: Option<String>| {
            Ok(Token {
                token: "long".into(),
                expires_in: None,
            })
        };
        assert_eq!(
            auth.answer(challenge, "s", None, long).unwrap(),
            "Bearer long"
        );
        assert_eq!(auth.header_for("s").as_deref(), Some("Bearer long"));
        // A cached token that was not the refused one is returned without a fetch.
        let h = auth
            .answer(challenge, "s", Some("Bearer old"), |_, _| unreachable!())
            .unwrap();
        assert_eq!(h, "Bearer long");
        // The refused one is fetched anew.
        let h = auth
            .answer(challenge, "s", Some("Bearer long"), |_, _| {
                Ok(Token {
                    token: "new".into(),
                    expires_in: Some(120),
                })
            })
            .unwrap();
        assert_eq!(h, "Bearer new");
    }

    #[test]
    fn renewal_keeps_a_margin_of_a_quarter_and_at_least_ten_seconds() {
        let now = Instant::now();
        assert_eq!(renew_at(now, Some(300)), now + Duration::from_secs(225));
        assert_eq!(renew_at(now, None), now + Duration::from_secs(45));
        assert_eq!(renew_at(now, Some(20)), now + Duration::from_secs(10));
        assert_eq!(renew_at(now, Some(5)), now);
    }

    #[test]
    fn basic_challenge_without_credentials_is_an_error() {
        let auth = Auth::new(Host::parse("r.example").unwrap(), None);
        let e = auth
            .answer(r#"Basic realm="x""#, "s", None, |_, _| unreachable!())
            .unwrap_err();
        assert!(e.to_string().contains("authentication required"), "{e}");
    }
}
