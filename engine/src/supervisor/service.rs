//! One service's task: a state machine that waits for its dependencies to be
//! healthy, launches the process, probes it, records its exit, and restarts
//! it per its policy with backoff, taking start/stop/restart commands from
//! the supervisor at every step. Its status is published on a `watch`
//! channel, and every change bumps a shared generation counter that wakes
//! whoever waits on other services (dependents, the supervisor).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::process::Child;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use super::container;
use super::health::{self, ResolvedProbe};
use super::launch::{self, LaunchSpec};
use super::logs::Stream;
use super::output::{collect, ServiceOutput};
use super::protocol::{ServiceState, ServiceStatus};
use crate::model::{Project, RestartMode, Service};
use crate::project::{interpolate, service_env};

/// How long to keep reading a service's pipes after it exited: output its
/// processes wrote is never lost, but a process that escaped (possible only
/// without PID namespaces) cannot hold the exit report back forever.
const PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Probe period until the first success, so readiness is noticed quickly.
const EARLY_PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// What the supervisor asks of a service.
#[derive(Debug)]
pub enum ServiceCommand {
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
}

/// Everything a service task needs at creation.
pub struct ServiceTask {
    pub service: Service,
    pub shared: Arc<Shared>,
    pub status: watch::Sender<ServiceStatus>,
    pub dependencies: Vec<watch::Receiver<ServiceStatus>>,
    pub commands: mpsc::UnboundedReceiver<ServiceCommand>,
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
        exit_code: None,
        since_unix_ms: now_unix_ms(),
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// Whether a dependency in this status lets dependents start: healthy, or a
/// one-shot job that finished successfully.
pub fn satisfies_dependents(status: &ServiceStatus) -> bool {
    status.state == ServiceState::Healthy.as_str()
        || (status.state == ServiceState::Exited.as_str() && status.exit_code == Some(0))
}

enum Gate {
    Open,
    Command(ServiceCommand),
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

/// Prepare what to launch for one start of `service`: for a host service
/// `sh -c COMMAND` with its environment, for a container service the shim
/// over a fresh bundle (pulling the image when missing).
async fn prepare(
    shared: &Shared,
    service: &Service,
    port: Option<u16>,
) -> Result<Prepared, Unprepared> {
    let permanent = |error: String| Unprepared {
        reason: error,
        permanent: true,
    };
    let env = service_env(&shared.project, service, &shared.ports)
        .map_err(|error| permanent(error.to_string()))?;
    let command = match service.command.as_deref() {
        Some(command) => Some(
            interpolate(&shared.project, command, &shared.ports)
                .map_err(|error| permanent(error.to_string()))?,
        ),
        None => None,
    };
    let probe = health::resolve(&shared.project, service, port.unwrap_or(0), &env);
    if let Some(image) = &service.image {
        let prepared = container::prepare(
            &shared.project,
            service,
            image,
            command.clone(),
            &shared.ports,
        )
        .await
        .map_err(|error| Unprepared {
            permanent: matches!(error, container::ContainerError::Env(_)),
            reason: error.to_string(),
        })?;
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
        return Err(permanent("no command to run".into()));
    };
    // Spawning would fail with ENOENT at every restart; say what is
    // missing, once, and wait for `locald restart`.
    if !service.workdir.is_dir() {
        return Err(permanent(format!(
            "working directory {} does not exist (or is not a directory): create it or \
             change `workdir`, then `locald restart {}`",
            service.workdir.display(),
            service.name
        )));
    }
    let spec = LaunchSpec {
        argv: launch::program_argv(&crate::program::Program::Shell(command.clone())),
        env,
        workdir: service.workdir.clone(),
        inherited: Vec::new(),
    };
    Ok(Prepared {
        spec,
        probe,
        description: command,
        container: None,
    })
}

struct Runner {
    task: ServiceTask,
    state: ServiceState,
    port: Option<u16>,
    restarts: u32,
    backoff: Backoff,
    generation: watch::Receiver<u64>,
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
            backoff: Backoff::new(),
            generation,
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
            exit_code,
            since_unix_ms: now_unix_ms(),
        };
        self.task.status.send_replace(status);
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
                    Some(ServiceCommand::Start) => wanted = true,
                    Some(ServiceCommand::Restart(reply)) => {
                        wanted = true;
                        let _ = reply.send(());
                    }
                    Some(ServiceCommand::Stop(reply)) => {
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
                Gate::Command(ServiceCommand::Start) => continue,
                Gate::Command(ServiceCommand::Restart(reply)) => {
                    let _ = reply.send(());
                    continue;
                }
                Gate::Command(ServiceCommand::Stop(reply)) => {
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
                Some(ServiceCommand::Stop(reply)) => {
                    self.set(ServiceState::Stopped, None, exit_code);
                    let _ = reply.send(());
                    return AfterEnd::Idle;
                }
                Some(ServiceCommand::Start) => {}
                Some(ServiceCommand::Restart(reply)) => {
                    self.backoff.reset();
                    let _ = reply.send(());
                }
            },
        }
        self.restarts += 1;
        AfterEnd::Run
    }

    async fn run_once(&mut self) -> RunEnd {
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
                        Some(ServiceCommand::Start) => {}
                        Some(ServiceCommand::Stop(reply)) => return RunEnd::Stopped(reply),
                        Some(ServiceCommand::Restart(reply)) => return RunEnd::Restart(reply),
                        None => return RunEnd::Closed,
                    },
                }
            }
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(Unprepared { reason, permanent }) => {
                self.event(&format!("cannot start: {reason}"));
                if permanent {
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

    async fn run_prepared(
        &mut self,
        spec: &LaunchSpec,
        probe: ResolvedProbe,
        command: &str,
    ) -> RunEnd {
        self.task.output.reset_ready();
        let mut child = match launch::launch(spec) {
            Ok(child) => child,
            Err(error) => {
                self.event(&format!("cannot start: {error}"));
                return RunEnd::Finished {
                    exit_code: None,
                    healthy_for: Duration::ZERO,
                    unhealthy: false,
                };
            }
        };
        let pid = child.id();
        let collectors = self.start_collectors(&mut child);
        let port = self
            .port
            .map(|port| format!(", port {port}"))
            .unwrap_or_default();
        self.event(&format!(
            "starting (pid {}{port}): {command}",
            pid.unwrap_or(0)
        ));
        self.set(ServiceState::Starting, pid, None);

        let (end, health) = self.watch_running(&mut child, pid, probe).await;
        let (end, exit_code) = match end {
            Watched::Exited(status) => (None, status),
            Watched::Unhealthy => (None, self.terminate(&mut child).await),
            Watched::Stop(reply) => (
                Some(RunEnd::Stopped(reply)),
                self.terminate(&mut child).await,
            ),
            Watched::Restart(reply) => (
                Some(RunEnd::Restart(reply)),
                self.terminate(&mut child).await,
            ),
            Watched::Closed => (Some(RunEnd::Closed), self.terminate(&mut child).await),
        };
        drain(collectors).await;
        match &end {
            Some(_) => self.event(&format!("stopped{}", describe_exit(exit_code))),
            None => self.event(&format!("exited{}", describe_exit(exit_code))),
        }
        end.unwrap_or(RunEnd::Finished {
            exit_code,
            healthy_for: health.ready_at.map(|at| at.elapsed()).unwrap_or_default(),
            unhealthy: health.unhealthy,
        })
    }

    fn start_collectors(&self, child: &mut Child) -> Vec<JoinHandle<()>> {
        let mut collectors = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            collectors.push(tokio::spawn(collect(
                stdout,
                Stream::Stdout,
                self.task.output.clone(),
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            collectors.push(tokio::spawn(collect(
                stderr,
                Stream::Stderr,
                self.task.output.clone(),
            )));
        }
        collectors
    }

    fn mark_healthy(&mut self, health: &mut RunHealth, pid: Option<u32>) {
        health.consecutive_failures = 0;
        if health.ready_at.is_none() {
            health.ready_at = Some(Instant::now());
            health.ready.store(true, Ordering::Relaxed);
            self.set(ServiceState::Healthy, pid, None);
            self.event("healthy");
        } else if self.state == ServiceState::Unhealthy {
            health.unhealthy = false;
            self.set(ServiceState::Healthy, pid, None);
            self.event("healthy again");
        }
    }

    /// Follow a running process: probes, readiness, commands, and its exit.
    async fn watch_running(
        &mut self,
        child: &mut Child,
        pid: Option<u32>,
        probe: ResolvedProbe,
    ) -> (Watched, RunHealth) {
        let check = self.task.service.health.clone();
        let started = Instant::now();
        let mut health = RunHealth::default();
        let (results_sender, mut results) = mpsc::channel(1);
        let _prober = probe.is_polled().then(|| {
            AbortOnDrop(tokio::spawn(probe_loop(
                probe.clone(),
                check.interval,
                check.timeout,
                health.ready.clone(),
                results_sender,
            )))
        });
        let waits_for_log = matches!(probe, ResolvedProbe::Log { .. });
        if probe == ResolvedProbe::None {
            self.mark_healthy(&mut health, pid);
        }
        let mut log_ready = self.task.output.ready();
        let start_period_over = tokio::time::sleep(check.start_period);
        tokio::pin!(start_period_over);
        let mut start_period_passed = check.start_period.is_zero();
        loop {
            tokio::select! {
                status = child.wait() => {
                    let code = status.ok().map(launch::exit_code);
                    return (Watched::Exited(code), health);
                }
                Some(result) = results.recv() => match result {
                    Ok(()) => self.mark_healthy(&mut health, pid),
                    Err(reason) => {
                        if health.ready_at.is_none() {
                            tracing::debug!(service = %self.name(), %reason, "not ready yet");
                            if started.elapsed() >= check.start_period && self.state == ServiceState::Starting {
                                self.set(ServiceState::Running, pid, None);
                            }
                        } else if started.elapsed() >= check.start_period {
                            health.consecutive_failures += 1;
                            if health.consecutive_failures >= check.retries.max(1) && self.state != ServiceState::Unhealthy {
                                health.unhealthy = true;
                                self.set(ServiceState::Unhealthy, pid, None);
                                self.event(&format!("unhealthy: {reason}"));
                                if self.task.service.restart.mode != RestartMode::Never {
                                    return (Watched::Unhealthy, health);
                                }
                            }
                        }
                    }
                },
                changed = log_ready.changed(), if waits_for_log && health.ready_at.is_none() => {
                    if changed.is_ok() && *log_ready.borrow_and_update() {
                        self.mark_healthy(&mut health, pid);
                    }
                }
                _ = &mut start_period_over, if !start_period_passed => {
                    start_period_passed = true;
                    if health.ready_at.is_none() && self.state == ServiceState::Starting {
                        self.set(ServiceState::Running, pid, None);
                    }
                }
                command = self.task.commands.recv() => match command {
                    Some(ServiceCommand::Start) => {}
                    Some(ServiceCommand::Stop(reply)) => return (Watched::Stop(reply), health),
                    Some(ServiceCommand::Restart(reply)) => return (Watched::Restart(reply), health),
                    None => return (Watched::Closed, health),
                },
            }
        }
    }

    /// Stop a running process: its stop signal to the process group, then
    /// SIGKILL after `stop_timeout`. Returns its exit code.
    async fn terminate(&mut self, child: &mut Child) -> Option<i32> {
        let Some(group) = child.id() else {
            return child.wait().await.ok().map(launch::exit_code);
        };
        let service = &self.task.service;
        if let Err(error) = launch::signal_group(group, service.stop_signal) {
            tracing::warn!(service = %service.name, %error, "cannot send the stop signal");
        }
        match tokio::time::timeout(service.stop_timeout, child.wait()).await {
            Ok(status) => status.ok().map(launch::exit_code),
            Err(_) => {
                let timeout = humantime::format_duration(service.stop_timeout);
                self.event(&format!("did not stop within {timeout}; killing"));
                let _ = launch::signal_group(group, libc::SIGKILL);
                child.wait().await.ok().map(launch::exit_code)
            }
        }
    }
}

/// Health bookkeeping of one run.
#[derive(Default)]
struct RunHealth {
    ready_at: Option<Instant>,
    /// Shared with the probe loop, which polls faster until ready.
    ready: Arc<AtomicBool>,
    consecutive_failures: u32,
    unhealthy: bool,
}

/// What one start launches.
struct Prepared {
    spec: LaunchSpec,
    probe: ResolvedProbe,
    /// The command (or image) as shown in events.
    description: String,
    /// Kept until the run ends, then its bundle is removed.
    container: Option<container::PreparedContainer>,
}

/// Why a start could not be prepared; `permanent` when retrying cannot help
/// (a bad template), as opposed to, say, a registry that is down.
struct Unprepared {
    reason: String,
    permanent: bool,
}

/// Wait for output readers to reach end of file, within a bound.
async fn drain(collectors: Vec<JoinHandle<()>>) {
    let all = async {
        for collector in collectors {
            let _ = collector.await;
        }
    };
    if tokio::time::timeout(PIPE_DRAIN_TIMEOUT, all).await.is_err() {
        tracing::warn!("service output still open after exit; some process escaped it");
    }
}

fn describe_exit(exit_code: Option<i32>) -> String {
    match exit_code {
        Some(code) if code > 128 => format!(" with code {code} (signal {})", code - 128),
        Some(code) => format!(" with code {code}"),
        None => String::new(),
    }
}

/// How watching a running process ended.
enum Watched {
    Exited(Option<i32>),
    Unhealthy,
    Stop(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
    Closed,
}

/// Aborts the probe loop when the run ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn probe_loop(
    probe: ResolvedProbe,
    interval: Duration,
    timeout: Duration,
    ready: Arc<AtomicBool>,
    results: mpsc::Sender<Result<(), String>>,
) {
    loop {
        let period = if ready.load(Ordering::Relaxed) {
            interval
        } else {
            interval.min(EARLY_PROBE_INTERVAL)
        };
        tokio::time::sleep(period).await;
        let result = health::check(&probe, timeout).await;
        if results.send(result).await.is_err() {
            return;
        }
    }
}
