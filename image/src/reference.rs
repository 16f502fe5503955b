//! Docker-style image references (`alpine`, `redis:7`, `host:5000/team/app:v1`,
//! `name@sha256:...`) parsed by hand and normalised the way Docker does, so that
//! `alpine` and `docker.io/library/alpine:latest` name the same stored image.
//!
//! The parser is deliberately regex-free: `ImageStore::resolve` runs on latency
//! sensitive paths (every container start) and must stay cheap.

use std::fmt;
use std::str::FromStr;

/// The registry Docker uses when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag Docker uses when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

const MAX_TAG_LEN: usize = 128;

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference is empty")]
    Empty,
    #[error("invalid image reference `{reference}`: {reason}")]
    Invalid {
        reference: String,
        reason: &'static str,
    },
}

/// A normalised image reference: registry, repository and a tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses and normalises a Docker-style reference.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let invalid = |reason| ReferenceError::Invalid {
            reference: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if input.chars().any(char::is_whitespace) {
            return Err(invalid("it contains whitespace"));
        }

        let (name_and_tag, digest) =
            match input.split_once('@') {
                Some((name, digest)) => (
                    name,
                    Some(parse_digest(digest).ok_or_else(|| {
                        invalid("the digest must look like sha256:<64 hex digits>")
                    })?),
                ),
                None => (input, None),
            };

        // The tag separator is the last ':' after the last '/', so that a
        // registry port (`host:5000/app`) is not mistaken for a tag.
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => {
                let split = last_slash + i;
                (&name_and_tag[..split], Some(&name_and_tag[split + 1..]))
            }
            None => (name_and_tag, None),
        };
        if let Some(tag) = tag {
            if !is_valid_tag(tag) {
                return Err(invalid("the tag must be 1-128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"));
            }
        }

        let (registry, repository) = split_registry(name);
        if registry.is_empty() {
            return Err(invalid("the registry name is empty"));
        }
        let mut repository = repository.to_string();
        if !is_valid_repository(&repository) {
            return Err(invalid("the repository name must be lowercase letters, digits and separators (`.`, `_`, `__`, `-`) between `/`"));
        }
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry.to_string()
        };
        if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            repository = format!("library/{repository}");
        }

        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry host (and port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one (digest-only references have none).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The pinned digest (`sha256:...`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same repository pinned to `digest`, without a tag.
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        }
    }

    /// The host part without port, used to decide whether plain HTTP is allowed.
    pub fn registry_host(&self) -> &str {
        registry_host(&self.registry)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Strips the port (and IPv6 brackets) from `host[:port]`.
pub(crate) fn registry_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(host, _)| host)
}

/// Docker's rule: the first path component is a registry only if it looks like
/// a host (has a `.` or `:`, or is `localhost`); otherwise it is part of the name.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

fn parse_digest(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| digest.to_string())
}

/// Whether `digest` is a well-formed `sha256:<64 lowercase hex>` digest.
pub fn is_sha256_digest(digest: &str) -> bool {
    parse_digest(digest).is_some()
}

fn is_valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    tag.len() <= MAX_TAG_LEN
        && (first.is_ascii_alphanumeric() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_valid_repository(repository: &str) -> bool {
    !repository.is_empty() && repository.split('/').all(is_valid_path_component)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, checked without a regex.
fn is_valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let valid = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !valid {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(input: &str) -> String {
        Reference::parse(input).unwrap().to_string()
    }

    #[test]
    fn short_names_get_docker_hub_library_and_latest() {
        assert_eq!(canonical("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(canonical("redis:7"), "docker.io/library/redis:7");
        assert_eq!(canonical("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(
            canonical("index.docker.io/library/alpine:3"),
            "docker.io/library/alpine:3"
        );
        assert_eq!(
            canonical("docker.io/alpine"),
            "docker.io/library/alpine:latest"
        );
    }

    #[test]
    fn registries_with_ports_and_hosts() {
        let r = Reference::parse("127.0.0.1:5000/team/app:v1.2").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("v1.2"));
        assert_eq!(r.registry_host(), "127.0.0.1");
        assert_eq!(canonical("localhost/app"), "localhost/app:latest");
        assert_eq!(canonical("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(canonical("ghcr.io/owner/tool"), "ghcr.io/owner/tool:latest");
        // A port-looking suffix after the last slash is a tag, not a port.
        assert_eq!(canonical("team/app:5000"), "docker.io/team/app:5000");
    }

    #[test]
    fn digests() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{digest}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(digest.as_str()));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{digest}"));
        let both = Reference::parse(&format!("host:1/x:t@{digest}")).unwrap();
        assert_eq!(both.to_string(), format!("host:1/x:t@{digest}"));
        assert!(Reference::parse("busybox@sha256:abc").is_err());
        assert!(Reference::parse(&format!("busybox@md5:{}", "a".repeat(64))).is_err());
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "", "UPPER", "a b", "app:", "app:-x", "/app", "app/", "a..b", "a//b", ":tag", "a:b:c",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let message = Reference::parse("Bad").unwrap_err().to_string();
        assert!(message.contains("`Bad`"), "{message}");
    }

    #[test]
    fn separators_in_names() {
        for good in ["a_b", "a__b", "a.b", "a-b", "a---b", "x/y-z/w.v"] {
            assert!(Reference::parse(good).is_ok(), "{good:?} should parse");
        }
        for bad in ["a___b", "a.-b", "-a", "a-"] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
