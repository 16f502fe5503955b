//! Preparing one start of a service: its environment and command templates resolved, and for a
//! container service, the image pulled and a fresh bundle made.

use std::path::PathBuf;

use super::Shared;
use crate::model::Service;
use crate::project::env::EnvError;
use crate::project::ports::{self, PortError};
use crate::project::{interpolate, service_env};
use crate::supervisor::container;
use crate::supervisor::health::{self, ResolvedProbe};
use crate::supervisor::launch::{self, LaunchSpec};

/// Prepare what to launch for one start of `service`: for a host service
/// `sh -c COMMAND` with its environment, for a container service the shim
/// over a fresh bundle (pulling the image when missing).
pub(super) async fn prepare(
    shared: &Shared,
    service: &Service,
    port: Option<u16>,
) -> Result<Prepared, PrepareError> {
    // `up` checked fixed ports before starting anything; a restart or a
    // reload comes later, when another process may have taken the port:
    // name it, rather than let the service fail with "address in use" (or
    // a probe pass on the other process's answer).
    ports::check_fixed_ports_free(&shared.project, [&service.name])?;
    let env = service_env(&shared.project, service, &shared.ports)?;
    let command = match service.command.as_deref() {
        Some(command) => Some(interpolate(&shared.project, command, &shared.ports)?),
        None => None,
    };
    let probe = health::resolve(&shared.project, service, port.unwrap_or(0), &env);
    if let Some(image) = &service.image {
        let prepared = container::prepare(
            &shared.project,
            service,
            image,
            command.clone().map(crate::program::Program::Shell),
            &shared.ports,
        )
        .await?;
        let description = match &command {
            Some(command) => format!("{image}: {command}"),
            None => image.clone(),
        };
        return Ok(Prepared {
            spec: prepared.launch.clone(),
            probe,
            description,
            container: Some(prepared),
        });
    }
    let Some(command) = command else {
        return Err(PrepareError::NoCommand);
    };
    // Spawning would fail with ENOENT at every restart; say what is
    // missing, once, and wait for `locald restart`.
    if !service.workdir.is_dir() {
        return Err(PrepareError::NoWorkdir {
            workdir: service.workdir.clone(),
            service: service.name.clone(),
        });
    }
    let spec = LaunchSpec {
        argv: launch::program_argv(&crate::program::Program::Shell(command.clone())),
        env,
        workdir: service.workdir.clone(),
        inherited: Vec::new(),
        pid_namespace: true,
    };
    Ok(Prepared {
        spec,
        probe,
        description: command,
        container: None,
    })
}

/// What one start launches.
pub(super) struct Prepared {
    pub(super) spec: LaunchSpec,
    pub(super) probe: ResolvedProbe,
    /// The command (or image) as shown in events.
    pub(super) description: String,
    /// Kept until the run ends, then its bundle is removed.
    pub(super) container: Option<container::PreparedContainer>,
}

/// Why a start could not be prepared.
#[derive(Debug, thiserror::Error)]
pub(in crate::supervisor) enum PrepareError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    /// A fixed port another process holds; it may let go, so the start is
    /// tried again as after a crash.
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("no command to run")]
    NoCommand,
    #[error(
        "working directory {} does not exist (or is not a directory): create it or \
         change `workdir`, then `locald restart {service}`",
        .workdir.display()
    )]
    NoWorkdir { workdir: PathBuf, service: String },
}

impl PrepareError {
    /// Whether retrying cannot help (a bad template), as opposed to, say, a registry that is
    /// down.
    pub(super) fn is_permanent(&self) -> bool {
        match self {
            PrepareError::Container(error) => {
                matches!(error, container::ContainerError::Env(_))
            }
            PrepareError::Env(_) | PrepareError::NoCommand | PrepareError::NoWorkdir { .. } => true,
            PrepareError::Port(_) => false,
        }
    }
}
