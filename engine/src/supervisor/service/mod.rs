//! One service's task: a state machine that waits for its dependencies to be
//! healthy, launches the process, probes it, records its exit, and restarts
//! it per its policy with backoff, taking start/stop/restart commands from
//! the supervisor at every step. Its status is published on a `watch`
//! channel, and every change bumps a shared generation counter that wakes
//! whoever waits on other services (dependents, the supervisor).
//!
//! Building a built service's image when its source changed is in [`building`]; preparing one
//! start (environment, templates, container bundle) in [`prepare`]; one run of the prepared
//! process (launch, output, probes, stop) in [`running`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::backoff::Backoff;
use super::output::ServiceOutput;
use super::processes::Ids;
use super::protocol::{now_unix_ms, ProcessInfo, ServiceState, ServiceStatus};
use crate::model::{Project, RestartMode, Service};

mod building;
mod prepare;
mod running;

pub(super) use prepare::PrepareError;
pub(super) use running::{describe_exit, drain, start_collectors, stop_process};

use prepare::prepare;

/// What the supervisor asks of a service.
#[derive(Debug)]
pub enum ServiceRequest {
    Start,
    /// Stop it; the reply comes once none of its processes is left.
    Stop(oneshot::Sender<()>),
    /// Stop it if running, then start it again at once.
    Restart(oneshot::Sender<()>),
}

/// What every service task shares.
pub struct Shared {
    pub project: Arc<Project>,
    pub ports: Arc<BTreeMap<String, u16>>,
    /// Bumped on every status change of any service.
    pub generation: watch::Sender<u64>,
    /// Raised by a forced `down` (a second Ctrl-C): stops under way send
    /// SIGKILL now, later ones at once, without waiting for `stop_timeout`.
    pub force: watch::Sender<bool>,
    /// The IDs of the processes `ps` shows.
    pub ids: Arc<Ids>,
    /// Every service's output as it is written, for the dashboard.
    pub live: super::live::LiveLogs,
}

/// Everything a service task needs at creation.
pub struct ServiceTask {
    pub service: Service,
    pub shared: Arc<Shared>,
    pub status: watch::Sender<ServiceStatus>,
    pub dependencies: Vec<watch::Receiver<ServiceStatus>>,
    pub commands: mpsc::UnboundedReceiver<ServiceRequest>,
    pub output: Arc<ServiceOutput>,
}

/// The initial status of a service.
pub fn initial_status(name: &str, port: Option<u16>, enabled: bool) -> ServiceStatus {
    let state = if enabled {
        ServiceState::Pending
    } else {
        ServiceState::Stopped
    };
    ServiceStatus {
        name: name.to_string(),
        state: state.as_str().to_string(),
        pid: None,
        port,
        restarts: 0,
        failures: 0,
        exit_code: None,
        since_unix_ms: now_unix_ms(),
        stopping: None,
        process: None,
    }
}

/// `SIGTERM` for 15; the number for what nix does not name.
fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|signal| signal.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

/// Whether a dependency in this status lets dependents start: healthy, or a
/// one-shot job that finished successfully.
pub fn satisfies_dependents(status: &ServiceStatus) -> bool {
    status.state == ServiceState::Healthy.as_str()
        || (status.state == ServiceState::Exited.as_str() && status.exit_code == Some(0))
}

enum Gate {
    Open,
    Command(ServiceRequest),
    Closed,
}

/// How one run of the process ended.
enum RunEnd {
    Finished {
        exit_code: Option<i32>,
        healthy_for: Duration,
        unhealthy: bool,
    },
    Stopped(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
    /// The service cannot start as configured; retrying would not help.
    Invalid,
    Closed,
}

enum AfterEnd {
    Run,
    Idle,
    Closed,
}

struct Runner {
    task: ServiceTask,
    state: ServiceState,
    port: Option<u16>,
    restarts: u32,
    /// Runs that failed (see [`ServiceStatus::failures`]).
    failures: u32,
    backoff: Backoff,
    generation: watch::Receiver<u64>,
    /// The current run's process, while it is launched.
    process: Option<ProcessInfo>,
}

impl ServiceTask {
    /// Run the service until the supervisor drops its command channel.
    pub async fn run(self, enabled: bool) {
        let port = self.shared.ports.get(&self.service.name).copied();
        let generation = self.shared.generation.subscribe();
        let mut runner = Runner {
            state: if enabled {
                ServiceState::Pending
            } else {
                ServiceState::Stopped
            },
            task: self,
            port,
            restarts: 0,
            failures: 0,
            backoff: Backoff::new(),
            generation,
            process: None,
        };
        runner.run(enabled).await;
    }
}

impl Runner {
    fn name(&self) -> &str {
        &self.task.service.name
    }

    fn set(&mut self, state: ServiceState, pid: Option<u32>, exit_code: Option<i32>) {
        self.state = state;
        let status = ServiceStatus {
            name: self.task.service.name.clone(),
            state: state.as_str().to_string(),
            pid,
            port: self.port,
            restarts: self.restarts,
            failures: self.failures,
            exit_code,
            since_unix_ms: now_unix_ms(),
            stopping: None,
            process: self
                .process
                .as_ref()
                .filter(|_| state.has_process())
                .map(|process| ProcessInfo {
                    state: state.as_str().to_string(),
                    ..process.clone()
                }),
        };
        self.task.status.send_replace(status);
        self.bump_generation();
    }

    /// Publish that the process was sent `signal` and is waited for, keeping
    /// its state (`set` clears it once the process is gone).
    fn set_stopping(&mut self, signal: i32, kill_after: Duration) {
        let stopping = super::protocol::Stopping {
            signal: signal_name(signal),
            since_unix_ms: now_unix_ms(),
            kill_after_ms: kill_after.as_millis().try_into().unwrap_or(u64::MAX),
        };
        self.task
            .status
            .send_modify(|status| status.stopping = Some(stopping));
        self.bump_generation();
    }

    fn bump_generation(&self) {
        self.task
            .shared
            .generation
            .send_modify(|generation| *generation += 1);
    }

    fn event(&self, text: &str) {
        self.task.output.event(text);
    }

    async fn run(&mut self, enabled: bool) {
        let mut wanted = enabled;
        loop {
            if !wanted {
                match self.task.commands.recv().await {
                    None => return,
                    Some(ServiceRequest::Start) => wanted = true,
                    Some(ServiceRequest::Restart(reply)) => {
                        wanted = true;
                        let _ = reply.send(());
                    }
                    Some(ServiceRequest::Stop(reply)) => {
                        if self.state != ServiceState::Stopped {
                            self.set(ServiceState::Stopped, None, None);
                        }
                        let _ = reply.send(());
                    }
                }
                if wanted {
                    self.backoff.reset();
                }
                continue;
            }
            match self.wait_for_dependencies().await {
                Gate::Open => {}
                Gate::Closed => return,
                Gate::Command(ServiceRequest::Start) => continue,
                Gate::Command(ServiceRequest::Restart(reply)) => {
                    let _ = reply.send(());
                    continue;
                }
                Gate::Command(ServiceRequest::Stop(reply)) => {
                    self.set(ServiceState::Stopped, None, None);
                    let _ = reply.send(());
                    wanted = false;
                    continue;
                }
            }
            match self.run_once().await {
                RunEnd::Closed => return,
                RunEnd::Stopped(reply) => {
                    self.set(ServiceState::Stopped, None, None);
                    let _ = reply.send(());
                    wanted = false;
                }
                RunEnd::Restart(reply) => {
                    self.backoff.reset();
                    let _ = reply.send(());
                }
                RunEnd::Invalid => {
                    self.failures += 1;
                    self.set(ServiceState::Failed, None, None);
                    wanted = false;
                }
                RunEnd::Finished {
                    exit_code,
                    healthy_for,
                    unhealthy,
                } => match self.after_end(exit_code, healthy_for, unhealthy).await {
                    AfterEnd::Run => {}
                    AfterEnd::Idle => wanted = false,
                    AfterEnd::Closed => return,
                },
            }
        }
    }

    /// Wait until every dependency is healthy; a command interrupts.
    async fn wait_for_dependencies(&mut self) -> Gate {
        let mut announced = false;
        loop {
            let waiting: Vec<String> = self
                .task
                .dependencies
                .iter()
                .map(|dependency| dependency.borrow().clone())
                .filter(|status| !satisfies_dependents(status))
                .map(|status| status.name)
                .collect();
            if waiting.is_empty() {
                return Gate::Open;
            }
            if self.state != ServiceState::Pending {
                self.set(ServiceState::Pending, None, None);
            }
            if !announced {
                self.event(&format!("waiting for {} to be healthy", waiting.join(", ")));
                announced = true;
            }
            tokio::select! {
                changed = self.generation.changed() => if changed.is_err() { return Gate::Closed },
                command = self.task.commands.recv() => return match command {
                    Some(command) => Gate::Command(command),
                    None => Gate::Closed,
                },
            }
        }
    }

    /// Decide what follows a run that ended by itself.
    async fn after_end(
        &mut self,
        exit_code: Option<i32>,
        healthy_for: Duration,
        unhealthy: bool,
    ) -> AfterEnd {
        let policy = self.task.service.restart;
        let failed = unhealthy || exit_code != Some(0);
        // An unhealthy run was counted when it turned unhealthy.
        if failed && !unhealthy {
            self.failures += 1;
        }
        let restart = match policy.mode {
            RestartMode::Always => true,
            RestartMode::OnFailure => failed,
            RestartMode::Never => false,
        };
        if !restart {
            let state = if failed {
                ServiceState::Failed
            } else {
                ServiceState::Exited
            };
            self.set(state, None, exit_code);
            return AfterEnd::Idle;
        }
        if let Some(max) = policy.max_restarts {
            if self.restarts >= max {
                self.event(&format!("failed: gave up after {max} restarts"));
                self.set(ServiceState::Failed, None, exit_code);
                return AfterEnd::Idle;
            }
        }
        let delay = self.backoff.next_delay(healthy_for);
        self.set(ServiceState::Backoff, None, exit_code);
        self.event(&format!(
            "restarting in {}",
            humantime::format_duration(delay)
        ));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            command = self.task.commands.recv() => match command {
                None => return AfterEnd::Closed,
                Some(ServiceRequest::Stop(reply)) => {
                    self.set(ServiceState::Stopped, None, exit_code);
                    let _ = reply.send(());
                    return AfterEnd::Idle;
                }
                Some(ServiceRequest::Start) => {}
                Some(ServiceRequest::Restart(reply)) => {
                    self.backoff.reset();
                    let _ = reply.send(());
                }
            },
        }
        self.restarts += 1;
        AfterEnd::Run
    }

    async fn run_once(&mut self) -> RunEnd {
        if let Err(end) = self.build_if_needed().await {
            return end;
        }
        // Preparing a container service may pull its image, which can take
        // long: a stop, a restart or the supervisor going away abandons it
        // (dropping the preparation cancels the pull and removes what it
        // wrote).
        let prepared = {
            let preparing = prepare(&self.task.shared, &self.task.service, self.port);
            tokio::pin!(preparing);
            loop {
                tokio::select! {
                    prepared = &mut preparing => break prepared,
                    command = self.task.commands.recv() => match command {
                        Some(ServiceRequest::Start) => {}
                        Some(ServiceRequest::Stop(reply)) => return RunEnd::Stopped(reply),
                        Some(ServiceRequest::Restart(reply)) => return RunEnd::Restart(reply),
                        None => return RunEnd::Closed,
                    },
                }
            }
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                self.event(&format!("cannot start: {error}"));
                if error.is_permanent() {
                    return RunEnd::Invalid;
                }
                return RunEnd::Finished {
                    exit_code: None,
                    healthy_for: Duration::ZERO,
                    unhealthy: false,
                };
            }
        };
        let end = self
            .run_prepared(&prepared.spec, prepared.probe, &prepared.description)
            .await;
        if let Some(container) = prepared.container {
            container.finish();
        }
        end
    }
}
