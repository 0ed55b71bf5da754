//! Image references (`host[:port]/repo/path:tag`, `...@sha256:<hex>`) and push targets
//! (`host[:port][/namespace/...]`): parsing, validation, and the Docker Hub defaults.

use std::fmt;

use crate::digest::Digest;

/// The registry name Docker Hub references use, and the host its API answers on.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

const NO_SCHEME: &str =
    "no scheme is written (HOST[:PORT]/...); plain HTTP is --plain-http, or automatic on loopback";

/// A registry host as the user wrote it (`host`, `host:port`, `[::1]:5000`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Host(String);

impl Host {
    /// `NAME[:PORT]` or `[IPV6][:PORT]`, with a port of 1 to 65535 when one is given.
    pub fn parse(s: &str) -> Result<Host, String> {
        if s.is_empty() {
            return Err("empty registry host".into());
        }
        let bad = || format!("invalid registry host {s:?}");
        let (name_ok, port) = if let Some(rest) = s.strip_prefix('[') {
            let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (addr.parse::<std::net::Ipv6Addr>().is_ok(), port)
        } else {
            let (name, port) = match s.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (s, None),
            };
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
            (ok, port)
        };
        if !name_ok {
            return Err(bad());
        }
        if let Some(p) = port {
            let valid = !p.is_empty()
                && p.len() <= 5
                && p.bytes().all(|b| b.is_ascii_digit())
                && matches!(p.parse::<u32>(), Ok(1..=65535));
            if !valid {
                return Err(format!(
                    "invalid port {p:?} in registry host {s:?} (1 to 65535)"
                ));
            }
        }
        Ok(Host(s.to_string()))
    }

    /// The name the user wrote, used for credentials lookup and messages.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host:port the HTTP API is reached on.
    pub fn api_host(&self) -> &str {
        if self.0 == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.0
        }
    }

    /// The host name without port or brackets.
    pub fn hostname(&self) -> &str {
        let s = self.0.as_str();
        if let Some(rest) = s.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        s.split(':').next().unwrap_or(s)
    }

    /// Loopback hosts get Docker's treatment: HTTPS first, plain HTTP if TLS is not spoken.
    pub fn is_loopback(&self) -> bool {
        let h = self.hostname();
        if h.eq_ignore_ascii_case("localhost") || h == "::1" {
            return true;
        }
        match h.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => false,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed image reference. At least one of `tag` and `digest` is set after parsing
/// (a reference with neither gets the tag `latest`, as every other client does).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    pub host: Host,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
    /// The text the user gave, for messages.
    original: String,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, String> {
        let err = |why: String| format!("invalid reference {s:?}: {why}");
        if s.is_empty() {
            return Err("empty reference".into());
        }
        if s.contains("://") {
            return Err(err(NO_SCHEME.into()));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.parse::<Digest>().map_err(err)?)),
            None => (s, None),
        };
        // The tag is after the last ':' of the last path component.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(err)?;
        }
        let (host, repository) = split_host(name);
        if !name.contains('/') && looks_like_a_registry(name, tag) {
            return Err(err(
                "a registry host without a repository (write HOST[:PORT]/REPOSITORY[:TAG])".into(),
            ));
        }
        let host = Host::parse(host).map_err(err)?;
        let repository = if host.as_str() == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        validate_repository(&repository).map_err(err)?;
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(Reference {
            host,
            repository,
            tag,
            digest,
            original: s.to_string(),
        })
    }

    /// What to ask the registry for: the digest when there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// A push destination: a registry and an optional repository prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: Host,
    pub namespace: Option<String>,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        let err = |why: String| format!("invalid target {s:?}: {why}");
        if s.contains("://") {
            return Err(err(NO_SCHEME.into()));
        }
        let s2 = s.trim_end_matches('/');
        let (host, ns) = match s2.split_once('/') {
            Some((h, n)) => (h, Some(n)),
            None => (s2, None),
        };
        let host = Host::parse(host).map_err(err)?;
        if let Some(ns) = ns {
            if ns.contains(':') || ns.contains('@') {
                return Err(err(
                    "a target is HOST[:PORT][/NAMESPACE]: tags come from the backup".into(),
                ));
            }
            validate_repository(ns).map_err(err)?;
        }
        Ok(Target {
            host,
            namespace: ns.map(str::to_string),
        })
    }

    /// The repository a layout at relative path `rel` goes to ("" = the namespace itself).
    pub fn repository_for(&self, rel: &str) -> Result<String, String> {
        let repo = match (&self.namespace, rel.is_empty()) {
            (Some(ns), true) => ns.clone(),
            (Some(ns), false) => format!("{ns}/{rel}"),
            (None, false) => rel.to_string(),
            (None, true) => {
                return Err(format!(
                    "{}: the input is a single layout, so the target must name a repository (HOST/REPOSITORY)",
                    self.host
                ))
            }
        };
        validate_repository(&repo)?;
        Ok(repo)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}", self.host, ns),
            None => write!(f, "{}", self.host),
        }
    }
}

/// True when a reference without '/' (which Docker would read as a Docker Hub repository)
/// is surely a registry host the user meant: `localhost`, an IP address, or a dotted name
/// with a numeric "tag" (`registry.example.com:5000`).
fn looks_like_a_registry(name: &str, tag: Option<&str>) -> bool {
    name == "localhost"
        || name.parse::<std::net::IpAddr>().is_ok()
        || (name.contains('.') && tag.is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit())))
}

/// Splits `name` into registry host and repository, as Docker does: the first component
/// is a host when it has a '.' or ':' or is `localhost`; otherwise the host is Docker Hub.
fn split_host(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

/// Repository names per the distribution spec: lowercase components of `[a-z0-9]` joined by
/// `.`, `_`, `__` or `-` runs, separated by `/`. This also makes them safe relative paths.
pub fn validate_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("empty repository name".into());
    }
    if repo.len() > 255 {
        return Err("repository name longer than 255 characters".into());
    }
    for comp in repo.split('/') {
        let b = comp.as_bytes();
        // Separators between alphanumeric runs: '.', '_', '__', or any run of '-'.
        let separators_ok = comp
            .split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .all(|s| s == "." || s == "_" || s == "__" || s.bytes().all(|c| c == b'-'));
        let ok = !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c))
            && separators_ok;
        if !ok {
            return Err(format!(
                "invalid repository name {repo:?} (component {comp:?})"
            ));
        }
    }
    Ok(())
}

/// Tags per the distribution spec: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"_.-".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag {tag:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_with_bad_ports_or_brackets_are_refused() {
        for h in [
            "127.0.0.1:99999",
            "127.0.0.1:",
            "host:0",
            "host:5o00",
            "[::1",
            "[::1]5000",
            "[zz]:5000",
            "a:1:2",
        ] {
            assert!(Host::parse(h).is_err(), "{h} accepted");
        }
        for h in [
            "localhost:5000",
            "[::1]:5000",
            "[::1]",
            "127.0.0.1:65535",
            "registry.k8s.io",
        ] {
            assert!(Host::parse(h).is_ok(), "{h} refused");
        }
        let e = Reference::parse("127.0.0.1:99999/x:1").unwrap_err();
        assert!(e.contains("invalid port \"99999\""), "{e}");
    }

    #[test]
    fn schemes_empty_references_and_tagged_targets_are_refused_with_their_reason() {
        let e = Reference::parse("http://127.0.0.1:5000/a:1").unwrap_err();
        assert!(e.contains("--plain-http"), "{e}");
        assert_eq!(Reference::parse("").unwrap_err(), "empty reference");
        let e = Target::parse("localhost:5000/ns:v1").unwrap_err();
        assert!(e.contains("tags come from the backup"), "{e}");
        assert!(Target::parse("https://localhost:5000").is_err());
    }

    #[test]
    fn repository_components_follow_the_distribution_grammar() {
        for ok in [
            "a",
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "my.repo/some-thing__x/a-b.c_d",
        ] {
            assert!(validate_repository(ok).is_ok(), "{ok} refused");
        }
        for bad in ["a___b", "a..b", "a._b", "a-_b", "_a", "a-", "A", "a//b", ""] {
            assert!(validate_repository(bad).is_err(), "{bad} accepted");
        }
        assert!(Host::parse("LOCALHOST:5000").unwrap().is_loopback());
    }

    #[test]
    fn a_registry_host_without_a_repository_is_refused() {
        for r in [
            "127.0.0.1:46185",
            "localhost:5000",
            "localhost",
            "registry.example.com:5000",
            "[::1]:5000",
        ] {
            assert!(Reference::parse(r).is_err(), "{r} accepted");
        }
        // Docker Hub names are still what Docker makes of them.
        assert_eq!(
            Reference::parse("alpine:3.19").unwrap().repository,
            "library/alpine"
        );
        assert_eq!(
            Reference::parse("my.app:v1").unwrap().repository,
            "library/my.app"
        );
    }

    #[test]
    fn host_port_nested_repository_and_tag() {
        let r = Reference::parse("host:5000/team/app/api:1.0.0").unwrap();
        assert_eq!(r.host.as_str(), "host:5000");
        assert_eq!(r.repository, "team/app/api");
        assert_eq!(r.tag.as_deref(), Some("1.0.0"));
        assert!(r.digest.is_none());
    }

    #[test]
    fn registry_without_port() {
        let r = Reference::parse("registry.k8s.io/kube-apiserver-arm64:v1.31.0").unwrap();
        assert_eq!(r.host.as_str(), "registry.k8s.io");
        assert_eq!(r.repository, "kube-apiserver-arm64");
    }

    #[test]
    fn digest_only_and_tag_plus_digest() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = Reference::parse(&format!("localhost:5000/a@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), d);
        let r = Reference::parse(&format!("localhost:5000/a:v1@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.manifest_reference(), d);
    }

    #[test]
    fn docker_hub_defaults() {
        let r = Reference::parse("alpine").unwrap();
        assert_eq!(r.host.as_str(), "docker.io");
        assert_eq!(r.host.api_host(), "registry-1.docker.io");
        assert_eq!(r.repository, "library/alpine");
        assert_eq!(r.tag.as_deref(), Some("latest"));
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "host:5000/UPPER:tag",
            "host:5000/a/../b:tag",
            "host:5000/a:bad tag",
            "host:5000/a:",
            "host:5000/a@sha256:zz",
            "host:5000//a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn loopback_detection() {
        for h in ["localhost:5000", "127.0.0.1:1", "127.3.4.5", "[::1]:5000"] {
            assert!(Host::parse(h).unwrap().is_loopback(), "{h}");
        }
        for h in ["example.com", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!Host::parse(h).unwrap().is_loopback(), "{h}");
        }
    }

    #[test]
    fn target_with_and_without_namespace() {
        let t = Target::parse("localhost:15000/my-mirror").unwrap();
        assert_eq!(t.repository_for("team/app").unwrap(), "my-mirror/team/app");
        assert_eq!(t.repository_for("").unwrap(), "my-mirror");
        let t = Target::parse("localhost:15000").unwrap();
        assert_eq!(t.repository_for("team/app").unwrap(), "team/app");
        assert!(t.repository_for("").is_err());
    }
}
