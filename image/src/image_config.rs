//! What a container needs from an image's config: entrypoint, command,
//! environment, working directory, user and exposed ports.

use serde::{Deserialize, Serialize};

use crate::oci::ConfigFile;

/// The runtime-relevant part of an image config, with Docker's "absent means
/// empty" already applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// Docker form, e.g. `80/tcp`.
    pub exposed_ports: Vec<String>,
}

impl ImageConfig {
    pub(crate) fn from_config_file(file: &ConfigFile) -> Self {
        let config = &file.config;
        let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        Self {
            entrypoint: config.entrypoint.clone().unwrap_or_default(),
            cmd: config.cmd.clone().unwrap_or_default(),
            env: config.env.clone().unwrap_or_default(),
            working_dir: non_empty(&config.working_dir),
            user: non_empty(&config.user),
            exposed_ports: config
                .exposed_ports
                .as_ref()
                .map(|ports| ports.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_style_config() {
        let json = r#"{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
            "config":{"Entrypoint":["/docker-entrypoint.sh"],"Cmd":["nginx","-g","daemon off;"],
            "Env":["PATH=/usr/bin"],"WorkingDir":"","User":"101","ExposedPorts":{"80/tcp":{}},
            "Labels":{"x":"y"}},"rootfs":{"type":"layers","diff_ids":[]},"history":[]}"#;
        let file: ConfigFile = serde_json::from_str(json).unwrap();
        let config = ImageConfig::from_config_file(&file);
        assert_eq!(config.entrypoint, vec!["/docker-entrypoint.sh"]);
        assert_eq!(config.cmd, vec!["nginx", "-g", "daemon off;"]);
        assert_eq!(config.env, vec!["PATH=/usr/bin"]);
        assert_eq!(config.working_dir, None);
        assert_eq!(config.user.as_deref(), Some("101"));
        assert_eq!(config.exposed_ports, vec!["80/tcp"]);
    }

    #[test]
    fn null_fields_are_empty() {
        let json =
            r#"{"config":{"Cmd":null,"Entrypoint":null},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let file: ConfigFile = serde_json::from_str(json).unwrap();
        assert_eq!(ImageConfig::from_config_file(&file), ImageConfig::default());
    }

    #[test]
    fn labels_that_are_not_strings_are_dropped_not_fatal() {
        let json = r#"{"config":{"Labels":{"a":"1","b":2,"c":null}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let file: ConfigFile = serde_json::from_str(json).unwrap();
        let labels = file.config.labels.unwrap();
        assert_eq!(labels.len(), 1);
        assert_eq!(labels["a"], "1");
        let json = r#"{"config":{"Labels":"nonsense"},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let file: ConfigFile = serde_json::from_str(json).unwrap();
        assert_eq!(file.config.labels, None);
    }
}
