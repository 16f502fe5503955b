//! A loaded project: finding and loading its config (`locald.toml`, then
//! `locald.rhai` in the [sandbox](crate::sandbox)), the world its services
//! run in (environment and dotenv files, ports assigned and kept), and its
//! state directory `.locald/`, and its tasks (the declared ones and the
//! files `tasks/*.rhai`). Below both the scripts and the supervisor:
//! `run` and `try` need all of it with no supervisor at all, and the
//! supervisor loads projects through it.

pub mod build;
pub mod dotenv;
pub mod env;
pub mod listeners;
pub(crate) mod load;
pub mod ports;
pub mod state_dir;
pub mod tasks;

use std::path::PathBuf;

use crate::sandbox::ScriptError;

pub use dotenv::DotenvError;
pub use env::{interpolate, EnvError};
pub use load::{load_project, locate_project, read_source};
pub use ports::PortError;
pub use state_dir::{StateDir, StateDirError};
pub use tasks::{find_task, project_tasks, TaskError, UnknownTask};

use std::collections::BTreeMap;

use crate::model::{Project, Service};

/// The environment `service` runs with (also what `locald run` gives a
/// command): for a host service, the process environment plus the project's
/// layers; for a container service, only the project's layers, which the
/// container adds to its image's environment (the host's PATH or HOME would
/// break the image).
pub fn service_env(
    project: &Project,
    service: &Service,
    ports: &BTreeMap<String, u16>,
) -> Result<BTreeMap<String, String>, EnvError> {
    if service.is_container() {
        env::container_env(project, service, ports)
    } else {
        env::service_env(project, service, ports)
    }
}

impl LoadError {
    /// True when the load was stopped by Ctrl-C (or SIGTERM): the command
    /// that loads must stop too, not fall back to something else.
    pub fn is_interrupt(&self) -> bool {
        matches!(self, LoadError::Script(error) if error.is_interrupt())
    }
}

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no locald.toml or locald.rhai in {} or any parent directory", .0.display())]
    NoConfig(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} {reason}", path.display())]
    TooLarge { path: PathBuf, reason: String },
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Script(#[from] ScriptError),
    #[error("invalid project: {0}")]
    Invalid(crate::config::FieldError),
}
