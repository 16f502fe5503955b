//! Settings that come from the user's files rather than the project: insecure
//! (plain HTTP) registries from locald's own config, and registry credentials
//! from Docker's `config.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

/// A user config file that exists but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UserConfigError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Debug, Default, Deserialize)]
struct UserConfig {
    #[serde(default)]
    insecure_registries: Vec<String>,
    #[serde(default)]
    build: BuildDefaults,
}

/// `[build]`: what builds take when the project does not say.
#[derive(Debug, Default, Deserialize)]
struct BuildDefaults {
    /// The builder image of `build = "."` services and `locald build` without `--builder`.
    builder: Option<String>,
}

/// `$XDG_CONFIG_HOME/locald/config.toml`, else `~/.config/locald/config.toml`.
pub fn user_config_path() -> Option<PathBuf> {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("XDG_CONFIG_HOME") {
        return Some(Path::new(&dir).join("locald/config.toml"));
    }
    non_empty("HOME").map(|home| Path::new(&home).join(".config/locald/config.toml"))
}

/// `insecure_registries` from the user config; empty when there is no file.
pub fn configured_insecure_registries() -> Result<Vec<String>, UserConfigError> {
    Ok(read_user_config()?.insecure_registries)
}

/// `[build] builder` from the user config: the default builder image; `None` when there
/// is no file or it sets none.
pub fn configured_default_builder() -> Result<Option<String>, UserConfigError> {
    Ok(read_user_config()?
        .build
        .builder
        .filter(|builder| !builder.trim().is_empty()))
}

/// The user config; the defaults when there is no file.
fn read_user_config() -> Result<UserConfig, UserConfigError> {
    let Some(path) = user_config_path() else {
        return Ok(UserConfig::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UserConfig::default()),
        Err(source) => return Err(UserConfigError::Read { path, source }),
    };
    toml::from_str(&text).map_err(|e| UserConfigError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })
}

/// Docker's rule: loopback registries are always reached over plain HTTP.
pub fn is_loopback_registry(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Debug, Default, Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
}

/// `user:password` for `registry` from `$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json` (the basic `auth` field only; credential helpers
/// are not run).
pub fn docker_credentials(registry: &str) -> Result<Option<(String, String)>, UserConfigError> {
    let path = match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => Path::new(&dir).join("config.json"),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => Path::new(&home).join(".docker/config.json"),
            None => return Ok(None),
        },
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(UserConfigError::Read { path, source }),
    };
    let config: DockerConfig =
        serde_json::from_slice(&bytes).map_err(|e| UserConfigError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    credentials_for(&config, registry, &path)
}

fn credentials_for(
    config: &DockerConfig,
    registry: &str,
    path: &Path,
) -> Result<Option<(String, String)>, UserConfigError> {
    let wanted = auth_key(registry);
    let Some(auth) = config
        .auths
        .iter()
        .find(|(key, _)| auth_key(key) == wanted)
        .and_then(|(_, entry)| entry.auth.as_deref())
    else {
        return Ok(None);
    };
    let invalid = |reason: &str| UserConfigError::Invalid {
        path: path.to_path_buf(),
        reason: format!("the `auth` of `{registry}` {reason}"),
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| invalid("is not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid("is not UTF-8"))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| invalid("is not `user:password`"))?;
    Ok(Some((user.to_string(), password.to_string())))
}

/// Docker keys auths by URL or host; Docker Hub under its legacy v1 URL.
fn auth_key(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_insecure() {
        assert!(is_loopback_registry("localhost"));
        assert!(is_loopback_registry("127.0.0.1"));
        assert!(is_loopback_registry("127.8.9.10"));
        assert!(!is_loopback_registry("10.0.0.1"));
        assert!(!is_loopback_registry("registry.example.com"));
    }

    #[test]
    fn docker_credentials_by_host_and_hub_alias() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("me:s3:cret");
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{encoded}"}},"reg.example:5000":{{"auth":"{encoded}"}}}}}}"#
        );
        let config: DockerConfig = serde_json::from_str(&json).unwrap();
        let path = Path::new("config.json");
        let hub = credentials_for(&config, "docker.io", path).unwrap();
        assert_eq!(hub, Some(("me".into(), "s3:cret".into())));
        assert!(credentials_for(&config, "reg.example:5000", path)
            .unwrap()
            .is_some());
        assert!(credentials_for(&config, "other", path).unwrap().is_none());
    }
}
