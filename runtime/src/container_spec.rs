//! What the engine asks for when it runs a container: the image plus Docker-style overrides.

use std::path::{Component, Path, PathBuf};

use crate::security::Security;

/// One container to run. Overrides follow `docker run` semantics (see [`crate::runtime_spec`]).
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Unique, caller-provided (e.g. `project-service-random`); letters, digits, `_+-.` only.
    pub id: String,
    pub image: locald_image::StoredImage,
    /// Replaces the image's Cmd.
    pub command: Option<Vec<String>>,
    /// Replaces the image's Entrypoint, and clears its Cmd unless `command` is given.
    pub entrypoint: Option<Vec<String>>,
    /// Merged over the image's Env; same keys are overridden.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// `uid[:gid]`, `name[:group]`, resolved against the image's /etc/passwd and /etc/group.
    pub user: Option<String>,
    pub volumes: Vec<VolumeMount>,
    pub tty: bool,
    /// Keep stdin attached (otherwise the container reads /dev/null).
    pub interactive: bool,
    pub hostname: Option<String>,
    /// Capabilities, seccomp and no-new-privileges; [`Security::default`] confines as Docker does,
    /// without `CAP_NET_RAW`.
    pub security: Security,
    /// The host path of an init to run as PID 1 in front of the command (see
    /// [`crate::init_binary`]); none by default.
    pub init: Option<PathBuf>,
}

impl ContainerSpec {
    /// A container of `image` as the image describes it (its command, environment, working
    /// directory and user), confined by default, with no terminal and stdin closed.
    pub fn new(id: impl Into<String>, image: locald_image::StoredImage) -> ContainerSpec {
        ContainerSpec {
            id: id.into(),
            image,
            command: None,
            entrypoint: None,
            env: Vec::new(),
            workdir: None,
            user: None,
            volumes: Vec::new(),
            tty: false,
            interactive: false,
            hostname: None,
            security: Security::default(),
            init: None,
        }
    }
}

/// A host directory or file bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeMount {
    pub host: PathBuf,
    /// Absolute path inside the container.
    pub container: String,
    pub read_only: bool,
}

impl VolumeMount {
    /// `HOST:CONTAINER[:ro|rw]`, as `docker run -v` and `volumes` in locald.toml write a bind
    /// mount; a relative HOST is taken from `base_dir` (`.` components dropped).
    pub fn parse(text: &str, base_dir: &Path) -> Result<VolumeMount, VolumeSpecError> {
        let shape = || VolumeSpecError::Shape {
            text: text.to_string(),
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (host, container, read_only) = match parts.as_slice() {
            [host, container] => (*host, *container, false),
            [host, container, "ro"] => (*host, *container, true),
            [host, container, "rw"] => (*host, *container, false),
            [_, _, mode] => {
                return Err(VolumeSpecError::Mode {
                    text: text.to_string(),
                    mode: mode.to_string(),
                })
            }
            _ => return Err(shape()),
        };
        if host.is_empty() || container.is_empty() {
            return Err(shape());
        }
        if !container.starts_with('/') {
            return Err(VolumeSpecError::RelativeContainer {
                host: host.to_string(),
                container: container.to_string(),
            });
        }
        let host: PathBuf = base_dir
            .join(host)
            .components()
            .filter(|component| !matches!(component, Component::CurDir))
            .collect();
        Ok(VolumeMount {
            host,
            container: container.to_string(),
            read_only,
        })
    }
}

/// A bind mount written other than `HOST:CONTAINER[:ro|rw]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeSpecError {
    #[error("\"{text}\" is not a volume")]
    Shape { text: String },
    #[error("unknown volume mode `{mode}` in \"{text}\"")]
    Mode { text: String, mode: String },
    #[error("the container path `{container}` must be absolute")]
    RelativeContainer { host: String, container: String },
}

/// Who runs the container: root with cgroups, or an unprivileged caller in a user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Root,
    /// The caller's ids, mapped to the ids the container runs as (root unless the image or the
    /// request names a user) by a single-id mapping.
    Rootless {
        uid: u32,
        gid: u32,
    },
}

impl Mode {
    /// The mode of the current process: root when the effective uid is 0.
    pub fn current() -> Mode {
        let uid = nix::unistd::Uid::effective().as_raw();
        if uid == 0 {
            Mode::Root
        } else {
            Mode::Rootless {
                uid,
                gid: nix::unistd::Gid::effective().as_raw(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse_as_docker_writes_them() {
        let base = Path::new("/work/shop");
        let volume = VolumeMount::parse("./data:/var/lib/db:ro", base).unwrap();
        assert_eq!(volume.host, Path::new("/work/shop/data"));
        assert_eq!(volume.container, "/var/lib/db");
        assert!(volume.read_only);
        let volume = VolumeMount::parse("/etc/app:/app:rw", base).unwrap();
        assert_eq!(volume.host, Path::new("/etc/app"));
        assert!(!volume.read_only);
        for (text, error) in [
            ("/tmp", "\"/tmp\" is not a volume"),
            (":/x", "\":/x\" is not a volume"),
            ("a:/b:rx", "unknown volume mode `rx` in \"a:/b:rx\""),
            ("a:b", "the container path `b` must be absolute"),
        ] {
            let got = VolumeMount::parse(text, base).unwrap_err().to_string();
            assert_eq!(got, error, "{text}");
        }
    }
}
