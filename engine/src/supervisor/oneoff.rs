//! One-off runs under the supervisor (`locald run --detach SERVICE -- CMD`):
//! a command in a service's world (its environment and working directory,
//! or a new container of its image), launched through the same spawner and
//! per-process init as services, so `down` and a `kill -9` of the
//! supervisor leave nothing of it either. No time limit; its output goes to
//! its own log (`logs/runs/ID.log`, what `locald logs ID` reads) and, marked
//! `[run ID]`, to its service's log and console. It takes the same
//! [`ServiceRequest`]s as a service task (only `Stop` does anything), so
//! `stop ID` and the ordered shutdown treat it alike.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::container::{self, PreparedContainer};
use super::launch::{self, LaunchSpec};
use super::output::ServiceOutput;
use super::processes;
use super::protocol::{now_unix_ms, ProcessInfo};
use super::service::{
    describe_exit, drain, start_collectors, stop_process, PrepareError, ServiceRequest, Shared,
};
use crate::model::Service;
use crate::program::Program;
use crate::project::service_env;

/// A one-off run, as the supervisor keeps it.
pub(super) struct OneOff {
    pub(super) info: watch::Receiver<ProcessInfo>,
    pub(super) commands: mpsc::UnboundedSender<ServiceRequest>,
    pub(super) task: JoinHandle<()>,
}

impl OneOff {
    pub(super) fn is_finished(&self) -> bool {
        self.info.borrow().exit_code.is_some() || self.task.is_finished()
    }
}

/// Whether `event` is the last a one-off run writes to its log (how it
/// ended, or why it never started): `logs -f ID` stops after it.
pub(crate) fn is_last_event(event: &str) -> bool {
    ["exited", "stopped", "cannot start"]
        .iter()
        .any(|last| event.starts_with(last))
}

/// States of a one-off run, as `ps` shows them.
const STARTING: &str = "starting";
const RUNNING: &str = "running";
const STOPPING: &str = "stopping";
const EXITED: &str = "exited";

/// Start `command` as run `id` of `service`; `service_output` is the
/// service's own output, where the run's lines are copied, marked.
pub(super) fn start(
    shared: Arc<Shared>,
    service: Service,
    command: Program,
    id: String,
    service_output: Arc<ServiceOutput>,
    log: &std::path::Path,
) -> OneOff {
    let info = ProcessInfo {
        id: id.clone(),
        service: service.name.clone(),
        one_off: true,
        kind: processes::kind(&service).to_string(),
        pid: None,
        started_unix_ms: now_unix_ms(),
        state: STARTING.to_string(),
        command: command.shell_line(),
        exit_code: None,
    };
    let (info, info_receiver) = watch::channel(info);
    let (commands, command_receiver) = mpsc::unbounded_channel();
    let output = Arc::new(ServiceOutput::for_run(&id, log, service_output));
    let run = Run {
        shared,
        service,
        command,
        info,
        commands: command_receiver,
        output,
    };
    OneOff {
        info: info_receiver,
        commands,
        task: tokio::spawn(run.run()),
    }
}

struct Run {
    shared: Arc<Shared>,
    service: Service,
    command: Program,
    info: watch::Sender<ProcessInfo>,
    commands: mpsc::UnboundedReceiver<ServiceRequest>,
    output: Arc<ServiceOutput>,
}

impl Run {
    async fn run(mut self) {
        let mut replies = Vec::new();
        let prepared = {
            let preparing = prepare(&self.shared, &self.service, &self.command);
            tokio::pin!(preparing);
            loop {
                tokio::select! {
                    prepared = &mut preparing => break Some(prepared),
                    command = self.commands.recv() => match command {
                        Some(ServiceRequest::Stop(reply)) => { replies.push(reply); break None }
                        Some(ServiceRequest::Restart(reply)) => { let _ = reply.send(()); }
                        Some(ServiceRequest::Start) => {}
                        None => break None,
                    },
                }
            }
        };
        let exit_code = match prepared {
            None => {
                self.output.event("stopped before it started");
                None
            }
            Some(Err(error)) => {
                self.output.event(&format!("cannot start: {error}"));
                None
            }
            Some(Ok((spec, container))) => {
                let code = self.launched(&spec, &mut replies).await;
                if let Some(container) = container {
                    container.finish();
                }
                code
            }
        };
        // Not started at all: 127, as a shell says of a command it cannot run.
        let exit_code = exit_code.unwrap_or(127);
        self.info.send_modify(|info| {
            info.state = EXITED.to_string();
            info.exit_code = Some(exit_code);
        });
        self.shared.ids.release(&self.info.borrow().id);
        for reply in replies {
            let _ = reply.send(());
        }
    }

    /// Launch, collect the output, wait for the exit or a stop; the exit
    /// code once every line is recorded.
    async fn launched(
        &mut self,
        spec: &LaunchSpec,
        replies: &mut Vec<oneshot::Sender<()>>,
    ) -> Option<i32> {
        let mut child = match launch::launch(spec) {
            Ok(child) => child,
            Err(error) => {
                self.output.event(&format!("cannot start: {error}"));
                return None;
            }
        };
        let pid = child.id();
        let collectors = start_collectors(&mut child, &self.output);
        self.output.event(&format!(
            "starting (pid {}): {}",
            pid.unwrap_or(0),
            self.info.borrow().command
        ));
        self.info.send_modify(|info| {
            info.pid = pid;
            info.state = RUNNING.to_string();
        });
        let stop = loop {
            tokio::select! {
                status = child.wait() => break Some(status.ok().map(launch::exit_code)),
                command = self.commands.recv() => match command {
                    Some(ServiceRequest::Stop(reply)) => { replies.push(reply); break None }
                    Some(ServiceRequest::Restart(reply)) => { let _ = reply.send(()); }
                    Some(ServiceRequest::Start) => {}
                    None => break None,
                },
            }
        };
        let (exit_code, stopped) = match stop {
            Some(code) => (code, false),
            None => {
                let force = self.shared.force.subscribe();
                let (signal, timeout) = (self.service.stop_signal, self.service.stop_timeout);
                let info = &self.info;
                let code = stop_process(&mut child, signal, timeout, force, &self.output, || {
                    info.send_modify(|info| info.state = STOPPING.to_string())
                })
                .await;
                (code, true)
            }
        };
        drain(collectors).await;
        let verb = if stopped { "stopped" } else { "exited" };
        self.output
            .event(&format!("{verb}{}", describe_exit(exit_code)));
        exit_code
    }
}

/// What to launch for a one-off run: the command with the service's
/// environment in its working directory, or a new container of its image
/// with the command in place of the image's.
async fn prepare(
    shared: &Shared,
    service: &Service,
    command: &Program,
) -> Result<(LaunchSpec, Option<PreparedContainer>), PrepareError> {
    if let Some(image) = &service.image {
        let prepared = container::prepare(
            &shared.project,
            service,
            image,
            Some(command.clone()),
            &shared.ports,
        )
        .await?;
        return Ok((prepared.launch.clone(), Some(prepared)));
    }
    if !service.workdir.is_dir() {
        return Err(PrepareError::NoWorkdir {
            workdir: service.workdir.clone(),
            service: service.name.clone(),
        });
    }
    let env = service_env(&shared.project, service, &shared.ports)?;
    Ok((
        LaunchSpec {
            argv: launch::program_argv(command),
            env,
            workdir: service.workdir.clone(),
            inherited: Vec::new(),
            pid_namespace: true,
        },
        None,
    ))
}
