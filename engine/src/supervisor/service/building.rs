//! Building a built service's image (`build = {...}`) before a start, as its
//! preparation, as a container service's pull is.
//!
//! Whether to build is decided here (`project::build`: the source and settings'
//! fingerprint against the last build's record, and the image still stored). The build
//! itself runs in a process of its own, `locald __build-service` (the one `locald build
//! SVC` runs, `script::api::build_service`), launched like a service's process through
//! the supervisor's spawner but as a plain child in its own process group (see
//! [`build_launch`]), so it dies with the supervisor and leaves nothing behind; its output goes to the service's log; a stop, a restart or the
//! supervisor going away stops it as a service is stopped (SIGTERM, which it handles by
//! stopping its build container, then SIGKILL after `stop_timeout`). It records the
//! build only once the image is stored, so a build cut short is built again. A failed
//! build leaves the service failed (no restart loop: the same source would fail again)
//! until `locald restart` or the next `up`.

use std::ffi::OsString;

use super::{RunEnd, Runner, ServiceRequest};
use crate::project::build::{
    BuildRequest, ServiceBuild, ServiceBuildError, BUILD_ENTRY, BUILD_REQUEST_ENV,
};
use crate::supervisor::launch::{self, LaunchSpec};
use crate::supervisor::protocol::ServiceState;
use crate::supervisor::service::{drain, start_collectors, stop_process};

/// Why deciding on a build failed.
#[derive(Debug, thiserror::Error)]
enum CheckError {
    #[error(transparent)]
    Settings(#[from] ServiceBuildError),
    #[error("the check's thread failed: {0}")]
    Thread(#[from] tokio::task::JoinError),
}

impl Runner {
    /// Builds the service's image first when it is built from source and its source or
    /// build settings changed since the last build, or the image is gone. `Err` is how
    /// the run ends instead of starting.
    pub(super) async fn build_if_needed(&mut self) -> Result<(), RunEnd> {
        if self.task.service.build.is_none() {
            return Ok(());
        }
        let project = self.task.shared.project.clone();
        let service = self.task.service.clone();
        // Walking a large tree takes a while: off the supervisor's threads.
        let mut checking = tokio::task::spawn_blocking(move || {
            let build = ServiceBuild::of(&service)?;
            let fingerprint = build.fingerprint()?;
            let current = build.is_current(&project, &fingerprint)?;
            Ok::<_, ServiceBuildError>((!current).then_some(build))
        });
        let checked = loop {
            tokio::select! {
                checked = &mut checking => break checked,
                command = self.task.commands.recv() => match interrupted(command) {
                    Some(end) => return Err(end),
                    None => continue,
                },
            }
        };
        let build = match checked.map_err(CheckError::from).and_then(|r| Ok(r?)) {
            Ok(None) => return Ok(()),
            Ok(Some(build)) => build,
            Err(error) => {
                self.event(&format!("cannot build: {error}"));
                return Err(RunEnd::Invalid);
            }
        };
        let spec = match build_launch(&self.task.shared.project.root, build) {
            Ok(spec) => spec,
            Err(error) => {
                self.event(&format!("cannot build: {error}"));
                return Err(RunEnd::Invalid);
            }
        };
        let mut child = match launch::launch(&spec) {
            Ok(child) => child,
            Err(error) => {
                self.event(&format!("cannot build: {error}"));
                return Err(RunEnd::Invalid);
            }
        };
        let collectors = start_collectors(&mut child, &self.task.output);
        self.event(&format!(
            "building {} (the source or the build settings changed, or no image yet)",
            self.task.service.image.as_deref().unwrap_or_default()
        ));
        self.set(ServiceState::Building, child.id(), None);
        let stopped = loop {
            tokio::select! {
                status = child.wait() => break Ok(status.ok().map(launch::exit_code)),
                command = self.task.commands.recv() => match interrupted(command) {
                    Some(end) => break Err(end),
                    None => continue,
                },
            }
        };
        let exit_code = match stopped {
            Ok(code) => code,
            Err(end) => {
                // SIGTERM, whatever the service's own stop signal: the build is locald's
                // process, which stops its build container on it.
                let (signal, timeout) = (libc::SIGTERM, self.task.service.stop_timeout);
                let force = self.task.shared.force.subscribe();
                let output = self.task.output.clone();
                let code = stop_process(&mut child, signal, timeout, force, &output, || {
                    self.set_stopping(signal, timeout)
                })
                .await;
                drain(collectors).await;
                self.event(&format!("build stopped{}", super::describe_exit(code)));
                return Err(end);
            }
        };
        drain(collectors).await;
        if exit_code == Some(0) {
            self.event("built");
            return Ok(());
        }
        self.event(&format!(
            "build failed{}: the service stays down until `locald restart {}`",
            super::describe_exit(exit_code),
            self.task.service.name
        ));
        Err(RunEnd::Invalid)
    }
}

/// How a run ends when `command` comes while it builds; `None`: it goes on (a start of
/// a service that is starting changes nothing).
fn interrupted(command: Option<ServiceRequest>) -> Option<RunEnd> {
    match command {
        Some(ServiceRequest::Start) => None,
        Some(ServiceRequest::Stop(reply)) => Some(RunEnd::Stopped(reply)),
        Some(ServiceRequest::Restart(reply)) => Some(RunEnd::Restart(reply)),
        None => Some(RunEnd::Closed),
    }
}

/// `locald __build-service` with the build in its environment, from the project root.
fn build_launch(root: &std::path::Path, build: ServiceBuild) -> std::io::Result<LaunchSpec> {
    let request = BuildRequest {
        project_root: root.to_path_buf(),
        build,
    };
    let json = serde_json::to_string(&request).map_err(std::io::Error::other)?;
    let mut env = crate::project::env::host_env();
    env.insert(BUILD_REQUEST_ENV.to_string(), json);
    Ok(LaunchSpec {
        argv: vec![
            OsString::from(std::env::current_exe()?),
            OsString::from(BUILD_ENTRY),
        ],
        env,
        workdir: root.to_path_buf(),
        inherited: Vec::new(),
        // Not in a PID namespace (nor, rootless, the user namespace that makes one): the
        // runtime in the build reads its container's state from `/proc/<pid>` and checks
        // the store's and runtime root's owners, which a namespace would show wrong (the
        // host's `/proc`, root's directories as the overflow uid). Nothing outlives the
        // supervisor all the same: the build dies with it (PDEATHSIG), its shim with the
        // build (PDEATHSIG, then the container's teardown), the container's processes with
        // the container's own PID namespace.
        pid_namespace: false,
    })
}
