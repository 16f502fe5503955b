//! The supervisor actor: owns one task per service, answers [`Control`]
//! messages arriving on an mpsc channel (from the control socket), and runs
//! the ordered shutdown (dependents first) on `down`, Ctrl-C or SIGTERM,
//! saying which services it waits for once a wait is noticeable. A second
//! Ctrl-C (or SIGTERM) during shutdown, or a forced `down`, kills every
//! service still running at once.
//!
//! A reload's body is in `reload.rs`, the stop order in `order.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use indexmap::IndexMap;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::console::{Console, StopWaits};
use super::oneoff::{self, OneOff};
use super::order::{dependency_levels, stop_in_waves};
use super::output::ServiceOutput;
use super::processes::Ids;
use super::protocol::{now_unix_ms, ProcessInfo, ReloadReport, ServiceState, ServiceStatus};
use super::reload::ReloadError;
use super::run::StateLost;
use super::service::{initial_status, ServiceRequest, ServiceTask, Shared};
use super::wait::{Baseline, Seen, WaitOutcome};
use crate::model::{Probe, Project, Service};
use crate::project::state_dir::StateDir;

/// Replies to a `down`: the supervisor hands the requester a sender to
/// acknowledge once the answer is written, so it exits only after that.
pub type DownAck = oneshot::Sender<()>;

/// Why the actor refused or could not carry out a [`Control`]; the control socket sends its
/// message to the client, which prints it.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown service {0:?}")]
    UnknownService(String),
    #[error("service {0:?} is shutting down")]
    ServiceShuttingDown(String),
    #[error("the supervisor is shutting down")]
    ShuttingDown,
    /// A reload reached [`Supervisor::handle`], which cannot await; never sent by `run`.
    #[error("a reload is served by the run loop")]
    ReloadOutsideLoop,
    #[error(transparent)]
    Reload(#[from] ReloadError),
}

impl ControlError {
    /// Whether the error is a rendered config diagnostic (a reload of a
    /// config with errors), which is shown whole.
    pub fn is_diagnostic(&self) -> bool {
        matches!(
            self,
            ControlError::Reload(ReloadError::Load(crate::project::LoadError::Config(_)))
        )
    }
}

/// A request to the actor.
#[derive(Debug)]
pub enum Control {
    Status(oneshot::Sender<Vec<ServiceStatus>>),
    /// The statuses with the project they belong to (the dashboard's view).
    Overview(oneshot::Sender<Overview>),
    /// Start a service and, first, what it depends on.
    Start(String, oneshot::Sender<Result<(), ControlError>>),
    /// Stop one service, or all in reverse dependency order.
    Stop(Option<String>, oneshot::Sender<Result<(), ControlError>>),
    Restart(String, oneshot::Sender<Result<(), ControlError>>),
    /// Kill at once those of the services (all with `None`) that locald is
    /// stopping now, without waiting for their `stop_timeout` (a Ctrl-C
    /// during `locald stop` or `restart`).
    Kill(Option<String>, oneshot::Sender<Result<(), ControlError>>),
    /// Start a one-off run of a command in a service's world.
    Run {
        service: String,
        command: crate::program::Program,
        reply: oneshot::Sender<Result<ProcessInfo, ControlError>>,
    },
    /// The processes running (with `all`: and the finished one-off runs
    /// whose log is kept).
    Ps {
        all: bool,
        reply: oneshot::Sender<Vec<ProcessInfo>>,
    },
    /// Read the config again and apply it (see [`reload`]).
    Reload(oneshot::Sender<Result<ReloadReport, ControlError>>),
    /// Stop everything and end the supervisor; `force`: without waiting for
    /// `stop_timeout` (see [`super::protocol::Request::Down`]).
    Down {
        force: bool,
        reply: oneshot::Sender<DownAck>,
    },
    /// Answer once services are ready, one fails, or the timeout passes
    /// (see [`super::protocol::Request::Wait`]).
    Wait {
        services: Option<Vec<String>>,
        baseline: Option<Baseline>,
        timeout: Option<std::time::Duration>,
        reply: oneshot::Sender<Result<WaitOutcome, ControlError>>,
    },
}

/// The services' statuses and the project as the supervisor runs it now
/// (after any reload), taken at one moment.
#[derive(Debug, Clone)]
pub struct Overview {
    pub project: Arc<Project>,
    pub statuses: Vec<ServiceStatus>,
}

/// A [`Control`] on its way from a connection: `taken` tells the connection
/// the actor took the request up; its receiver is dropped when the client
/// has gone, and then the actor drops the request unexecuted (see
/// `server.rs` for why requests are tied to their connection).
#[derive(Debug)]
pub struct Envelope {
    pub control: Control,
    pub taken: oneshot::Sender<()>,
}

impl Envelope {
    /// The control to carry out, or `None` when nobody waits for it.
    fn open(self) -> Option<Control> {
        match self.taken.send(()) {
            Ok(()) => Some(self.control),
            Err(()) => {
                tracing::info!(request = ?self.control, "dropping a request whose client has gone");
                None
            }
        }
    }
}

/// Why the actor ended.
pub enum Ended {
    /// `down` was requested; answer once the supervisor's files are gone.
    Down(oneshot::Sender<DownAck>),
    /// Ctrl-C, SIGTERM or SIGHUP.
    Signal,
    /// Foreground only: every service finished; `failed` when one failed.
    Finished { failed: bool },
    /// The state directory (its control socket) was removed or replaced:
    /// nobody can reach this supervisor any more.
    StateLost,
}

pub(super) struct RunningService {
    pub(super) commands: mpsc::UnboundedSender<ServiceRequest>,
    pub(super) status: watch::Receiver<ServiceStatus>,
    /// Kept so a replacement task (after a reload) publishes on the same
    /// channel its dependents already watch.
    pub(super) status_sender: watch::Sender<ServiceStatus>,
    pub(super) task: JoinHandle<()>,
    pub(super) depends_on: Vec<String>,
    /// Where its one-off runs copy their output.
    pub(super) output: Arc<ServiceOutput>,
}

/// Finished one-off runs remembered for `ps -a`; the oldest are forgotten
/// first (their logs stay, for `logs ID`).
const FINISHED_RUNS_KEPT: usize = 100;

pub struct Supervisor {
    pub(super) services: IndexMap<String, RunningService>,
    pub(super) shared: Arc<Shared>,
    state: StateDir,
    pub(super) console: Option<Console>,
    generation: watch::Receiver<u64>,
    /// One-off runs by ID, oldest first.
    runs: IndexMap<String, OneOff>,
}

impl Supervisor {
    /// Spawn a task for every service of the project; those in `enabled`
    /// start at once, the others wait stopped. Must run inside the runtime.
    pub fn spawn(
        project: Arc<Project>,
        ports: BTreeMap<String, u16>,
        enabled: &BTreeSet<String>,
        state: &StateDir,
        console: Option<Console>,
    ) -> Supervisor {
        let (generation, generation_receiver) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            project: project.clone(),
            ports: Arc::new(ports),
            generation,
            force: watch::Sender::new(false),
            ids: Arc::new(Ids::new(state.runs_dir())),
            live: super::live::LiveLogs::default(),
        });
        let mut supervisor = Supervisor {
            services: IndexMap::new(),
            shared,
            state: state.clone(),
            console,
            generation: generation_receiver,
            runs: IndexMap::new(),
        };
        let statuses: IndexMap<String, watch::Sender<ServiceStatus>> = project
            .services
            .iter()
            .map(|service| {
                let port = supervisor.shared.ports.get(&service.name).copied();
                let status = initial_status(&service.name, port, enabled.contains(&service.name));
                (service.name.clone(), watch::Sender::new(status))
            })
            .collect();
        for service in &project.services {
            let handle = supervisor.spawn_service(
                service,
                statuses[&service.name].clone(),
                &statuses,
                enabled.contains(&service.name),
            );
            supervisor.services.insert(service.name.clone(), handle);
        }
        supervisor
    }

    /// Start the task of one service, publishing on `status` and gated on
    /// the services it depends on (found in `statuses`).
    pub(super) fn spawn_service(
        &self,
        service: &Service,
        status: watch::Sender<ServiceStatus>,
        statuses: &IndexMap<String, watch::Sender<ServiceStatus>>,
        enabled: bool,
    ) -> RunningService {
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let ready_pattern = match &service.health.probe {
            // Config validation compiled it already; a failure here only
            // means the probe never fires.
            Probe::Log { pattern } => regex::Regex::new(pattern).ok(),
            _ => None,
        };
        let output = Arc::new(
            ServiceOutput::new(
                &service.name,
                &self.state.service_log(&service.name),
                self.console.clone(),
                ready_pattern,
            )
            .with_live(self.shared.live.clone()),
        );
        let dependencies = service
            .depends_on
            .iter()
            .filter_map(|dependency| statuses.get(dependency).map(watch::Sender::subscribe))
            .collect();
        let task = ServiceTask {
            service: service.clone(),
            shared: self.shared.clone(),
            status: status.clone(),
            dependencies,
            commands: command_receiver,
            output: output.clone(),
        };
        RunningService {
            commands,
            status: status.subscribe(),
            status_sender: status,
            task: tokio::spawn(task.run(enabled)),
            depends_on: service.depends_on.clone(),
            output,
        }
    }

    fn overview(&self) -> Overview {
        Overview {
            project: self.shared.project.clone(),
            statuses: self.statuses(),
        }
    }

    /// What the dashboard watches: status changes (a generation bumped on
    /// every one) and every service's output as it is written.
    pub fn watchers(&self) -> (watch::Receiver<u64>, super::live::LiveLogs) {
        (self.generation.clone(), self.shared.live.clone())
    }

    fn statuses(&self) -> Vec<ServiceStatus> {
        self.services
            .values()
            .map(|handle| handle.status.borrow().clone())
            .collect()
    }

    /// Serve control messages until `down`, a signal, or (when
    /// `end_when_finished`) until no service is left to run.
    pub async fn run(
        mut self,
        mut controls: mpsc::Receiver<Envelope>,
        end_when_finished: bool,
        state_lost: impl std::future::Future<Output = StateLost>,
    ) -> Ended {
        tokio::pin!(state_lost);
        let mut interrupts = match Interrupts::new() {
            Ok(interrupts) => interrupts,
            Err(error) => {
                tracing::error!(%error, "cannot listen for signals");
                return Ended::Signal;
            }
        };
        let ended = loop {
            tokio::select! {
                Some(envelope) = controls.recv() => {
                    let Some(control) = envelope.open() else { continue };
                    if let Control::Reload(reply) = control {
                        let _ = reply.send(self.reload().await.map_err(ControlError::from));
                    } else if let Some(reply) = self.handle(control) {
                        break Ended::Down(reply);
                    }
                }
                _ = interrupts.next() => break Ended::Signal,
                why = &mut state_lost => {
                    tracing::error!(
                        state_dir = %self.state.path().display(),
                        "the control socket was {why}: nobody can reach this supervisor \
                         any more; stopping every service and exiting"
                    );
                    break Ended::StateLost;
                }
                changed = self.generation.changed(), if end_when_finished => {
                    if changed.is_err() {
                        break Ended::Signal;
                    }
                    if let Some(failed) = self.finished() {
                        break Ended::Finished { failed };
                    }
                }
            }
        };
        self.shut_down(&mut controls, &mut interrupts).await;
        ended
    }

    /// Answer a control message; a `down` is handed back to the run loop.
    fn handle(&mut self, control: Control) -> Option<oneshot::Sender<DownAck>> {
        match control {
            Control::Status(reply) => {
                let _ = reply.send(self.statuses());
            }
            Control::Overview(reply) => {
                let _ = reply.send(self.overview());
            }
            Control::Start(name, reply) => {
                let _ = reply.send(self.start_with_dependencies(&name));
            }
            Control::Stop(None, reply) => {
                let waves = self.stop_waves();
                tokio::spawn(async move {
                    stop_in_waves(waves).await;
                    let _ = reply.send(Ok(()));
                });
            }
            Control::Stop(Some(name), reply) => match self.runs.get(&name) {
                // Stopped already: as `docker stop` of a stopped container.
                Some(run) if !self.services.contains_key(&name) && run.is_finished() => {
                    let _ = reply.send(Ok(()));
                }
                Some(run) if !self.services.contains_key(&name) => {
                    forward_to(&run.commands, &name, ServiceRequest::Stop, reply)
                }
                _ => self.forward(&name, ServiceRequest::Stop, reply),
            },
            Control::Run {
                service,
                command,
                reply,
            } => {
                let _ = reply.send(self.start_run(&service, command));
            }
            Control::Ps { all, reply } => {
                let _ = reply.send(self.processes(all));
            }
            Control::Restart(name, reply) => self.forward(&name, ServiceRequest::Restart, reply),
            Control::Kill(name, reply) => {
                let _ = reply.send(self.kill_stopping(name.as_deref()));
            }
            Control::Down { force, reply } => {
                if force {
                    self.force_stops();
                }
                return Some(reply);
            }
            Control::Reload(reply) => {
                let _ = reply.send(Err(ControlError::ReloadOutsideLoop));
            }
            Control::Wait {
                services,
                baseline,
                timeout,
                reply,
            } => self.wait(services, baseline, timeout, reply),
        }
        None
    }

    /// Starts a wait on the services' status channels (see [`super::wait`]),
    /// answered from its own task: the actor goes on serving. A wait whose
    /// client has gone (the connection closed, the answer's receiver
    /// dropped) ends with it.
    fn wait(
        &self,
        services: Option<Vec<String>>,
        baseline: Option<Baseline>,
        timeout: Option<std::time::Duration>,
        mut reply: oneshot::Sender<Result<WaitOutcome, ControlError>>,
    ) {
        let names: Vec<String> = match services {
            Some(names) => {
                if let Some(unknown) = names.iter().find(|n| !self.services.contains_key(*n)) {
                    let _ = reply.send(Err(ControlError::UnknownService(unknown.clone())));
                    return;
                }
                names
            }
            // Those that run or are on their way: a stopped service would
            // only ever time out.
            None => self
                .services
                .iter()
                .filter(|(_, handle)| {
                    handle.status.borrow().state != ServiceState::Stopped.as_str()
                })
                .map(|(name, _)| name.clone())
                .collect(),
        };
        let receivers: Vec<_> = names
            .iter()
            .map(|name| self.services[name.as_str()].status.clone())
            .collect();
        let baseline = baseline.unwrap_or_else(|| {
            receivers
                .iter()
                .map(|status| {
                    let status = status.borrow();
                    (status.name.clone(), Seen::of(&status))
                })
                .collect()
        });
        tokio::spawn(async move {
            tokio::select! {
                outcome = super::wait::wait(receivers, baseline, timeout) => {
                    let _ = reply.send(Ok(outcome));
                }
                () = reply.closed() => {}
            }
        });
    }

    /// Send a command that replies when done, and answer once it has.
    fn forward(
        &self,
        name: &str,
        command: fn(oneshot::Sender<()>) -> ServiceRequest,
        reply: oneshot::Sender<Result<(), ControlError>>,
    ) {
        let Some(handle) = self.services.get(name) else {
            let _ = reply.send(Err(ControlError::UnknownService(name.to_string())));
            return;
        };
        forward_to(&handle.commands, name, command, reply);
    }

    /// Start a one-off run of `command` as `service` would run it.
    fn start_run(
        &mut self,
        service: &str,
        command: crate::program::Program,
    ) -> Result<ProcessInfo, ControlError> {
        let (Some(spec), Some(handle)) = (
            self.shared.project.service(service),
            self.services.get(service),
        ) else {
            return Err(ControlError::UnknownService(service.to_string()));
        };
        let id = self.shared.ids.allocate();
        let run = oneoff::start(
            self.shared.clone(),
            spec.clone(),
            command,
            id.clone(),
            handle.output.clone(),
            &self.state.run_log(&id),
        );
        let info = run.info.borrow().clone();
        self.runs.insert(id, run);
        self.forget_old_runs();
        Ok(info)
    }

    /// Keep at most [`FINISHED_RUNS_KEPT`] finished runs.
    fn forget_old_runs(&mut self) {
        let finished = self.runs.values().filter(|run| run.is_finished()).count();
        let mut excess = finished.saturating_sub(FINISHED_RUNS_KEPT);
        self.runs.retain(|_, run| {
            if excess > 0 && run.is_finished() {
                excess -= 1;
                return false;
            }
            true
        });
    }

    /// What `ps` shows: each service's current process, then the one-off
    /// runs (with `all`, those finished too, while their log is kept).
    fn processes(&self, all: bool) -> Vec<ProcessInfo> {
        let services = self
            .services
            .values()
            .filter_map(|handle| handle.status.borrow().process.clone());
        let runs = self
            .runs
            .iter()
            .filter(|(id, run)| !run.is_finished() || (all && self.state.run_log(id).exists()))
            .map(|(_, run)| run.info.borrow().clone());
        services.chain(runs).collect()
    }

    pub(super) fn start_with_dependencies(&self, name: &str) -> Result<(), ControlError> {
        if !self.services.contains_key(name) {
            return Err(ControlError::UnknownService(name.to_string()));
        }
        let mut to_visit = vec![name.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(next) = to_visit.pop() {
            if !seen.insert(next.clone()) {
                continue;
            }
            if let Some(handle) = self.services.get(&next) {
                let _ = handle.commands.send(ServiceRequest::Start);
                to_visit.extend(handle.depends_on.iter().cloned());
            }
        }
        Ok(())
    }

    /// `Some(any_failed)` once no service runs or waits to run.
    fn finished(&self) -> Option<bool> {
        let mut failed = false;
        for handle in self.services.values() {
            let status = handle.status.borrow();
            match ServiceState::parse(&status.state) {
                Some(ServiceState::Exited | ServiceState::Stopped) => {}
                Some(ServiceState::Failed) => failed = true,
                _ => return None,
            }
        }
        Some(failed)
    }

    /// Services grouped for stopping: one-off runs first, then dependents
    /// before their dependencies.
    fn stop_waves(&self) -> Vec<Vec<mpsc::UnboundedSender<ServiceRequest>>> {
        let runs: Vec<_> = self
            .runs
            .values()
            .filter(|run| !run.is_finished())
            .map(|run| run.commands.clone())
            .collect();
        let mut waves = vec![runs];
        waves.extend(self.service_stop_waves());
        waves
    }

    fn service_stop_waves(&self) -> Vec<Vec<mpsc::UnboundedSender<ServiceRequest>>> {
        let depends_on: BTreeMap<&str, &[String]> = self
            .services
            .iter()
            .map(|(name, handle)| (name.as_str(), handle.depends_on.as_slice()))
            .collect();
        let levels = dependency_levels(&depends_on);
        let deepest = levels.values().copied().max().unwrap_or(0);
        (0..=deepest)
            .rev()
            .map(|level| {
                self.services
                    .iter()
                    .filter(|(name, _)| levels.get(name.as_str()) == Some(&level))
                    .map(|(_, handle)| handle.commands.clone())
                    .collect()
            })
            .collect()
    }

    /// Ordered stop of everything, still answering status while it runs; a
    /// second interrupt (or a forced `down`) kills every process group
    /// outright. Says which services it waits for once a wait is noticeable.
    async fn shut_down(
        &mut self,
        controls: &mut mpsc::Receiver<Envelope>,
        interrupts: &mut Interrupts,
    ) {
        let stopping = stop_in_waves(self.stop_waves());
        tokio::pin!(stopping);
        let mut waits = StopWaits::default();
        let mut look = tokio::time::interval(StopWaits::LOOK);
        loop {
            tokio::select! {
                _ = &mut stopping => break,
                _ = interrupts.next() => self.force_stops(),
                // Only in the foreground, where the Ctrl-C that started this
                // was the user's: a daemon's `down` client says it itself
                // (and a slow stop is in the service's log either way).
                _ = look.tick(), if self.console.is_some() && !*self.shared.force.borrow() => {
                    if let Some(notice) = waits.notice(&self.statuses(), now_unix_ms(), "Ctrl-C again") {
                        eprintln!("locald: {notice}");
                    }
                }
                Some(envelope) = controls.recv() => match envelope.open() {
                    None => {}
                    Some(control) => match control {
                    Control::Status(reply) => { let _ = reply.send(self.statuses()); }
                    Control::Overview(reply) => { let _ = reply.send(self.overview()); }
                    // Shutting down kills through `force_stops`; a kill of
                    // one service is that.
                    Control::Kill(_, reply) => {
                        self.force_stops();
                        let _ = reply.send(Ok(()));
                    }
                    Control::Start(_, reply) | Control::Stop(_, reply) | Control::Restart(_, reply) => {
                        let _ = reply.send(Err(ControlError::ShuttingDown));
                    }
                    Control::Reload(reply) => {
                        let _ = reply.send(Err(ControlError::ShuttingDown));
                    }
                    Control::Run { reply, .. } => {
                        let _ = reply.send(Err(ControlError::ShuttingDown));
                    }
                    Control::Ps { all, reply } => { let _ = reply.send(self.processes(all)); }
                    Control::Wait { reply, .. } => {
                        let _ = reply.send(Err(ControlError::ShuttingDown));
                    }
                    // The first `down` (or signal) is already being served;
                    // later requesters see the connection close at exit.
                    Control::Down { force, reply } => {
                        if force {
                            self.force_stops();
                        }
                        std::mem::forget(reply);
                    }
                    },
                },
            }
        }
        for handle in self.services.values_mut() {
            // Closing the command channel ends the task.
            let (closed, _) = mpsc::unbounded_channel();
            handle.commands = closed;
        }
        for (_, handle) in self.services.drain(..) {
            let _ = handle.task.await;
        }
        for (_, run) in self.runs.drain(..) {
            drop(run.commands);
            let _ = run.task.await;
        }
    }

    /// Kill what is stopping now and stop the rest with SIGKILL at once, in
    /// the same order: no restart races the shutdown.
    /// SIGKILL to the process group of each service (`name`, or all) that
    /// is being stopped now: the stop then ends at once, as when its
    /// `stop_timeout` passes. Services not stopping are left alone.
    fn kill_stopping(&self, name: Option<&str>) -> Result<(), ControlError> {
        if let Some(name) = name {
            if !self.services.contains_key(name) {
                return Err(ControlError::UnknownService(name.to_string()));
            }
        }
        for (service, handle) in &self.services {
            if name.is_some_and(|name| name != service) {
                continue;
            }
            let status = handle.status.borrow().clone();
            if let (Some(_), Some(pid)) = (&status.stopping, status.pid) {
                tracing::warn!(service = %service, "killing (asked)");
                if let Err(error) = super::launch::signal_group(pid, libc::SIGKILL) {
                    tracing::warn!(service = %service, %error, "cannot kill");
                }
            }
        }
        Ok(())
    }

    fn force_stops(&self) {
        if !self.shared.force.send_replace(true) {
            tracing::warn!("forced: killing every service still running");
            if self.console.is_some() {
                eprintln!("locald: killing every service still running");
            }
        }
    }
}

/// Send a command that replies when done to a task, and answer once it has.
fn forward_to(
    commands: &mpsc::UnboundedSender<ServiceRequest>,
    name: &str,
    command: fn(oneshot::Sender<()>) -> ServiceRequest,
    reply: oneshot::Sender<Result<(), ControlError>>,
) {
    let (done, done_receiver) = oneshot::channel();
    if commands.send(command(done)).is_err() {
        let _ = reply.send(Err(ControlError::ServiceShuttingDown(name.to_string())));
        return;
    }
    tokio::spawn(async move {
        let _ = done_receiver.await;
        let _ = reply.send(Ok(()));
    });
}

/// The signals that stop a supervisor: Ctrl-C, SIGTERM, SIGHUP.
struct Interrupts {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Interrupts {
    fn new() -> std::io::Result<Interrupts> {
        Ok(Interrupts {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}
