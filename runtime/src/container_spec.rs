//! What the engine asks for when it runs a container: the image plus Docker-style overrides.

use std::path::PathBuf;

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

/// Who runs the container: root with cgroups, or an unprivileged caller in a user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Root,
    /// The caller's ids, mapped to root inside the container (a single-id mapping).
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
