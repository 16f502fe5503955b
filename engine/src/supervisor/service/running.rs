//! One run of a prepared service: launching it, collecting its output, probing its health,
//! taking commands while it runs, and stopping it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::supervisor::launch::ServiceProcess as Child;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{RunEnd, Runner, ServiceRequest};
use crate::model::{HealthCheck, RestartMode};
use crate::supervisor::health::{self, Ownership, ProbeError, ResolvedProbe};
use crate::supervisor::launch::{self, LaunchSpec};
use crate::supervisor::logs::Stream;
use crate::supervisor::output::{collect, ServiceOutput};
use crate::supervisor::protocol::{now_unix_ms, ProcessInfo, ServiceState};

/// How long to keep reading a service's pipes after it exited: output its
/// processes wrote is never lost, but a process that escaped (possible only
/// without PID namespaces) cannot hold the exit report back forever.
const PIPE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

impl Runner {
    pub(super) async fn run_prepared(
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
        tracing::debug!(service = %self.name(), ?pid, %command, "started");
        let id = self.task.shared.ids.allocate();
        self.process = Some(ProcessInfo {
            id: id.clone(),
            service: self.name().to_string(),
            one_off: false,
            kind: crate::supervisor::processes::kind(&self.task.service).to_string(),
            pid,
            started_unix_ms: now_unix_ms(),
            state: String::new(),
            command: command.to_string(),
            exit_code: None,
        });
        let collectors = start_collectors(&mut child, &self.task.output);
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
        self.process = None;
        self.task.shared.ids.release(&id);
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
    /// Ready takes both the probe passing (or, without a probe, nothing) and
    /// the process having stayed up for its settle time.
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
                check.clone(),
                pid.map(Ownership::new),
                health.ready.clone(),
                results_sender,
            )))
        });
        let waits_for_log = matches!(probe, ResolvedProbe::Log { .. });
        // Whether the probe says ready now: without a probe, always.
        let mut passing = probe == ResolvedProbe::None;
        let settle = health::settle(&check, &probe);
        let settled = tokio::time::sleep(settle);
        tokio::pin!(settled);
        let mut settle_over = settle.is_zero();
        if passing && settle_over {
            self.mark_healthy(&mut health, pid);
        }
        // The last "not ready" reason worth an event, said once.
        let mut announced: Option<String> = None;
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
                    Ok(()) => {
                        passing = true;
                        if settle_over || health.ready_at.is_some() {
                            self.mark_healthy(&mut health, pid);
                        }
                    }
                    Err(reason) => {
                        passing = false;
                        if health.ready_at.is_none() {
                            tracing::debug!(service = %self.name(), %reason, "not ready yet");
                            // Someone else on the port will not go away by
                            // waiting: say who, once.
                            if matches!(reason, ProbeError::NotOurs { .. }) {
                                let text = format!("not ready: {reason}");
                                if announced.as_ref() != Some(&text) {
                                    self.event(&text);
                                    announced = Some(text);
                                }
                            }
                            if started.elapsed() >= check.start_period && self.state == ServiceState::Starting {
                                self.set(ServiceState::Running, pid, None);
                            }
                        } else if started.elapsed() >= check.start_period {
                            health.consecutive_failures += 1;
                            if health.consecutive_failures >= check.retries.max(1) && self.state != ServiceState::Unhealthy {
                                health.unhealthy = true;
                                // Counted now: with `restart = "never"` the
                                // run goes on, and may be healthy again before
                                // anyone looks at its state.
                                self.failures += 1;
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
                        passing = true;
                        if settle_over {
                            self.mark_healthy(&mut health, pid);
                        }
                    }
                }
                _ = &mut settled, if !settle_over => {
                    settle_over = true;
                    if passing {
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
                    Some(ServiceRequest::Start) => {}
                    Some(ServiceRequest::Stop(reply)) => return (Watched::Stop(reply), health),
                    Some(ServiceRequest::Restart(reply)) => return (Watched::Restart(reply), health),
                    None => return (Watched::Closed, health),
                },
            }
        }
    }

    /// Stop a running process: its stop signal to the process group, then
    /// SIGKILL after `stop_timeout`, or as soon as a forced `down` asks.
    /// Returns its exit code.
    async fn terminate(&mut self, child: &mut Child) -> Option<i32> {
        let service = &self.task.service;
        let (signal, timeout) = (service.stop_signal, service.stop_timeout);
        let force = self.task.shared.force.subscribe();
        let output = self.task.output.clone();
        stop_process(child, signal, timeout, force, &output, || {
            self.set_stopping(signal, timeout)
        })
        .await
    }
}

/// Copy a launched process's stdout and stderr to `output` until they close.
pub(in crate::supervisor) fn start_collectors(
    child: &mut Child,
    output: &Arc<ServiceOutput>,
) -> Vec<JoinHandle<()>> {
    let mut collectors = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        collectors.push(tokio::spawn(collect(
            stdout,
            Stream::Stdout,
            output.clone(),
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        collectors.push(tokio::spawn(collect(
            stderr,
            Stream::Stderr,
            output.clone(),
        )));
    }
    collectors
}

/// Stop a launched process: `signal` to its process group, then SIGKILL
/// after `timeout`, or as soon as a forced `down` asks (at once if it
/// already has). `signalled` runs once the stop signal is sent. Returns its
/// exit code.
pub(in crate::supervisor) async fn stop_process(
    child: &mut Child,
    signal: i32,
    timeout: Duration,
    mut force: tokio::sync::watch::Receiver<bool>,
    output: &ServiceOutput,
    signalled: impl FnOnce(),
) -> Option<i32> {
    let Some(group) = child.id() else {
        return child.wait().await.ok().map(launch::exit_code);
    };
    tracing::debug!(group, signal, ?timeout, "stopping");
    if !*force.borrow_and_update() {
        if let Err(error) = launch::signal_group(group, signal) {
            tracing::warn!(group, %error, "cannot send the stop signal");
        }
        signalled();
        tokio::select! {
            status = child.wait() => return status.ok().map(launch::exit_code),
            () = tokio::time::sleep(timeout) => {
                let timeout = humantime::format_duration(timeout);
                output.event(&format!("did not stop within {timeout}; killing"));
            }
            Ok(_) = force.wait_for(|forced| *forced) => output.event("killing (forced)"),
        }
    }
    let _ = launch::signal_group(group, libc::SIGKILL);
    child.wait().await.ok().map(launch::exit_code)
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

/// Wait for output readers to reach end of file, within a bound.
pub(in crate::supervisor) async fn drain(collectors: Vec<JoinHandle<()>>) {
    let all = async {
        for collector in collectors {
            let _ = collector.await;
        }
    };
    if tokio::time::timeout(PIPE_DRAIN_TIMEOUT, all).await.is_err() {
        tracing::warn!("service output still open after exit; some process escaped it");
    }
}

pub(in crate::supervisor) fn describe_exit(exit_code: Option<i32>) -> String {
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

/// How long the probe loop waits before its next probe: `start_interval`
/// until the service is first ready, then the slower `interval`.
fn probe_period(check: &HealthCheck, ready: bool) -> Duration {
    if ready {
        check.interval
    } else {
        check.start_interval
    }
}

async fn probe_loop(
    probe: ResolvedProbe,
    check: HealthCheck,
    mut ownership: Option<Ownership>,
    ready: Arc<AtomicBool>,
    results: mpsc::Sender<Result<(), ProbeError>>,
) {
    loop {
        tokio::time::sleep(probe_period(&check, ready.load(Ordering::Relaxed))).await;
        let result = health::check(&probe, ownership.as_mut(), check.timeout).await;
        tracing::trace!(?result, "probe");
        if results.send(result).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_slow_down_once_ready() {
        let check = HealthCheck::default();
        assert_eq!(probe_period(&check, false), Duration::from_millis(200));
        assert_eq!(probe_period(&check, true), Duration::from_secs(10));
        let configured = HealthCheck {
            interval: Duration::from_secs(30),
            start_interval: Duration::from_millis(50),
            ..HealthCheck::default()
        };
        assert_eq!(probe_period(&configured, false), Duration::from_millis(50));
        assert_eq!(probe_period(&configured, true), Duration::from_secs(30));
    }
}
