//! `up -d`: start the supervisor as a detached daemon (`locald __supervise`
//! in a new session, stdin from /dev/null, output to
//! `.locald/supervisor.log`) and, with `--wait`, block until every selected
//! service is healthy, one fails, or the timeout passes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::client::{answer_timeout, Client};
use super::log_reader::tail;
use crate::model::Project;
use crate::project::state_dir::{open_file, StateDir};
use crate::supervisor::protocol::{ServiceState, ServiceStatus};
use crate::supervisor::{DaemonError, Handoff, SupervisorError, UpOptions};

/// How long the daemon may take to load the project and open its socket.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// Log lines shown for a service that failed `--wait`.
const FAILURE_LOG_LINES: usize = 20;

pub fn start(
    project: &Project,
    state: &StateDir,
    opts: &UpOptions,
    enabled: &BTreeSet<String>,
) -> Result<i32, SupervisorError> {
    let started = Instant::now();
    let exe = std::env::current_exe().map_err(DaemonError::NoBinary)?;
    let log_path = state.supervisor_log();
    let log = open_file(
        OpenOptions::new().create(true).append(true).mode(0o600),
        &log_path,
    )
    .map_err(|source| DaemonError::Log {
        path: log_path.clone(),
        source,
    })?;
    let log_for_stderr = log.try_clone().map_err(|source| DaemonError::Log {
        path: log_path.clone(),
        source,
    })?;
    let log_start = log.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    let mut command = Command::new(exe);
    command
        .args(
            super::SuperviseArgs {
                root: project.root.clone(),
            }
            .to_argv(),
        )
        .current_dir(&project.root)
        .stdin(Stdio::piped())
        .stdout(log)
        .stderr(log_for_stderr);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let handoff = serde_json::to_vec(&Handoff {
        project: project.clone(),
        services: opts.services.clone(),
    })
    .map_err(DaemonError::Handoff)?;
    let mut child = command.spawn().map_err(DaemonError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A daemon that dies before reading it closes the pipe: the write
        // fails, and the loop below reports the exit and its output.
        let _ = stdin.write_all(&handoff);
    }

    // `--wait --timeout T` bounds the whole command, start-up included.
    let startup = match (opts.wait, opts.timeout) {
        (true, Some(timeout)) => timeout.min(STARTUP_TIMEOUT),
        _ => STARTUP_TIMEOUT,
    };
    let deadline = started + startup;
    let mut client = loop {
        if let Some(client) = Client::connect(state.path())? {
            break client;
        }
        if let Ok(Some(status)) = child.try_wait() {
            // What this start wrote: from where the log ended before it,
            // at most 64 KiB, whatever the bytes.
            let mut bytes = Vec::new();
            if let Ok(mut file) = open_file(OpenOptions::new().read(true), &log_path) {
                use std::io::{Read, Seek, SeekFrom};
                if file.seek(SeekFrom::Start(log_start)).is_ok() {
                    let _ = file.take(64 << 10).read_to_end(&mut bytes);
                }
            }
            let output = String::from_utf8_lossy(&bytes).trim().to_string();
            return Err(DaemonError::Exited { status, output }.into());
        }
        if crate::sandbox::interrupt::take() {
            return Err(SupervisorError::Interrupted);
        }
        if Instant::now() >= deadline {
            return Err(DaemonError::NoSocket {
                waited: startup,
                log: log_path,
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A new supervisor: every service starts from no failure.
    wait_if_asked(&mut client, state, opts, enabled, &Baseline::new(), started)
}

/// `up -d` while a supervisor runs: the supervisor reads the config again
/// (added services start, changed ones restart, removed ones stop), then
/// each service asked for (all when none were named, with what they depend
/// on) that is stopped, exited or failed starts again. Says what it did on
/// stderr; with `--wait`, waits as a fresh `up -d --wait` does.
pub fn reconcile(
    mut client: Client,
    state: &StateDir,
    opts: &UpOptions,
    enabled: &BTreeSet<String>,
) -> Result<i32, SupervisorError> {
    let started = Instant::now();
    // Failures from before this command are not its to report; those from
    // the reload on are (taken first, so that none slips in between).
    let mut baseline: Baseline = client
        .status()?
        .iter()
        .map(|status| (status.name.clone(), Seen::of(status)))
        .collect();
    let report = client.reload()?;
    // Added and changed services start over with fresh counters.
    for name in report.added.iter().chain(&report.changed) {
        baseline.remove(name);
    }
    let mut restarted = Vec::new();
    for status in client.status()? {
        let down = matches!(
            ServiceState::parse(&status.state),
            Some(ServiceState::Stopped | ServiceState::Exited | ServiceState::Failed)
        );
        if down && enabled.contains(&status.name) && !report.added.contains(&status.name) {
            client.start(&status.name)?;
            restarted.push(status.name);
        }
    }
    // As `locald reload` says it.
    let mut said = false;
    for (names, what) in [
        (&report.added, "started"),
        (&report.changed, "restarted"),
        (&report.removed, "stopped"),
        (&restarted, "started"),
    ] {
        for name in names {
            eprintln!("locald: {name}: {what}");
            said = true;
        }
    }
    if !said {
        let pid = state
            .read_pid()
            .map_or_else(|| "?".to_string(), |pid| pid.to_string());
        eprintln!("locald: already up (supervisor pid {pid}); nothing changed");
    }
    wait_if_asked(&mut client, state, opts, enabled, &baseline, started)
}

/// With `--wait`, [`wait_until_healthy`]; without, done.
fn wait_if_asked(
    client: &mut Client,
    state: &StateDir,
    opts: &UpOptions,
    enabled: &BTreeSet<String>,
    baseline: &Baseline,
    started: Instant,
) -> Result<i32, SupervisorError> {
    if !opts.wait {
        return Ok(0);
    }
    wait_until_healthy(client, state, enabled, baseline, opts.timeout, started)
}

/// What a wait knew of a service when it began: the counters that only
/// grow, so that a failure between two polls is seen even when the service
/// is back up by the next one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    restarts: u32,
    failures: u32,
}

impl Seen {
    fn of(status: &ServiceStatus) -> Seen {
        Seen {
            restarts: status.restarts,
            failures: status.failures,
        }
    }
}

/// [`Seen`] per service; a service missing has seen nothing yet.
pub type Baseline = BTreeMap<String, Seen>;

/// Where one service stands for `--wait`.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Ready,
    Waiting,
    /// It failed (or exited and was restarted) since the wait began: the
    /// headline says how.
    Failed(String),
}

/// As `docker compose up --wait`: a service that fails while waited for
/// fails the wait, even when its restart policy has brought it back (a
/// restart count that grew), whatever its health form.
fn verdict(status: &ServiceStatus, seen: Seen) -> Verdict {
    let state = ServiceState::parse(&status.state);
    let name = &status.name;
    let code = status
        .exit_code
        .map(|code| format!(" (exit code {code})"))
        .unwrap_or_default();
    if status.failures > seen.failures {
        return Verdict::Failed(match state {
            Some(ServiceState::Failed) => format!("service {name} failed{code}"),
            Some(ServiceState::Unhealthy) => format!("service {name} turned unhealthy"),
            _ => format!(
                "service {name} failed{code} and is being restarted (now {})",
                status.state
            ),
        });
    }
    if status.restarts > seen.restarts {
        return Verdict::Failed(format!(
            "service {name} exited{code} and was restarted (now {})",
            status.state
        ));
    }
    if is_ready(status) {
        Verdict::Ready
    } else {
        Verdict::Waiting
    }
}

/// Block until every service in `enabled` is ready; report and return 1 when
/// one fails after what `baseline` saw or `timeout` (counted from `started`)
/// passes.
pub fn wait_until_healthy(
    client: &mut Client,
    state: &StateDir,
    enabled: &BTreeSet<String>,
    baseline: &Baseline,
    timeout: Option<Duration>,
    started: Instant,
) -> Result<i32, SupervisorError> {
    loop {
        // `--timeout` bounds the whole wait, silent supervisor included: no
        // single status request may outlast it.
        if let Some(timeout) = timeout {
            let left = timeout.saturating_sub(started.elapsed());
            // At least a moment, so that the last poll can still succeed.
            let bound = left.max(Duration::from_millis(200)).min(answer_timeout());
            client.set_timeout(bound)?;
        }
        let statuses: Vec<ServiceStatus> = client
            .status()?
            .into_iter()
            .filter(|status| enabled.contains(&status.name))
            .collect();
        let verdicts: Vec<(&ServiceStatus, Verdict)> = statuses
            .iter()
            .map(|status| {
                let seen = baseline.get(&status.name).copied().unwrap_or_default();
                (status, verdict(status, seen))
            })
            .collect();
        if let Some((failed, Verdict::Failed(headline))) = verdicts
            .iter()
            .find(|(_, verdict)| matches!(verdict, Verdict::Failed(_)))
        {
            report(state, &[failed], headline);
            return Ok(1);
        }
        let not_ready: Vec<&ServiceStatus> = verdicts
            .iter()
            .filter(|(_, verdict)| *verdict != Verdict::Ready)
            .map(|(status, _)| *status)
            .collect();
        if not_ready.is_empty() {
            return Ok(0);
        }
        if let Some(timeout) = timeout {
            if started.elapsed() >= timeout {
                let waiting: Vec<String> = not_ready
                    .iter()
                    .map(|status| format!("{} ({})", status.name, status.state))
                    .collect();
                let headline = format!(
                    "timed out after {} waiting for: {}",
                    humantime::format_duration(timeout),
                    waiting.join(", ")
                );
                report(state, &not_ready, &headline);
                return Ok(1);
            }
        }
        std::thread::sleep(POLL);
        // The services go on (as with compose): only the wait ends.
        if crate::sandbox::interrupt::take() {
            return Err(SupervisorError::Interrupted);
        }
    }
}

/// Ready for `--wait`: healthy, or a job that finished successfully.
fn is_ready(status: &ServiceStatus) -> bool {
    match ServiceState::parse(&status.state) {
        Some(ServiceState::Healthy) => true,
        Some(ServiceState::Exited) => status.exit_code == Some(0),
        _ => false,
    }
}

fn report(state: &StateDir, services: &[&ServiceStatus], headline: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {headline}");
    for status in services {
        let lines = tail(&state.service_log(&status.name), FAILURE_LOG_LINES);
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(stderr, "last log lines of {}:", status.name);
        for line in lines {
            let _ = writeln!(stderr, "  {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str, restarts: u32, failures: u32, exit_code: Option<i32>) -> ServiceStatus {
        ServiceStatus {
            name: "web".into(),
            state: state.into(),
            pid: None,
            port: None,
            restarts,
            failures,
            exit_code,
            ..ServiceStatus::default()
        }
    }

    fn headline(verdict: Verdict) -> String {
        match verdict {
            Verdict::Failed(headline) => headline,
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn ready_and_waiting_states() {
        let fresh = Seen::default();
        assert_eq!(
            verdict(&status("healthy", 0, 0, None), fresh),
            Verdict::Ready
        );
        assert_eq!(
            verdict(&status("exited", 0, 0, Some(0)), fresh),
            Verdict::Ready
        );
        for state in ["pending", "starting", "running"] {
            assert_eq!(verdict(&status(state, 0, 0, None), fresh), Verdict::Waiting);
        }
    }

    #[test]
    fn a_failure_since_the_wait_began_fails_it_even_once_recovered() {
        let fresh = Seen::default();
        assert_eq!(
            headline(verdict(&status("failed", 0, 1, Some(3)), fresh)),
            "service web failed (exit code 3)"
        );
        assert_eq!(
            headline(verdict(&status("backoff", 0, 1, Some(3)), fresh)),
            "service web failed (exit code 3) and is being restarted (now backoff)"
        );
        // Crashed and came back between two polls: only the counter tells.
        assert!(matches!(
            verdict(&status("healthy", 1, 1, None), fresh),
            Verdict::Failed(_)
        ));
        assert_eq!(
            headline(verdict(&status("unhealthy", 0, 1, None), fresh)),
            "service web turned unhealthy"
        );
        // `restart = "always"` after a clean exit: a restart, not a failure.
        assert_eq!(
            headline(verdict(&status("starting", 1, 0, None), fresh)),
            "service web exited and was restarted (now starting)"
        );
    }

    #[test]
    fn failures_from_before_the_wait_are_not_its_own() {
        // `up -d --wait` beside a supervisor whose service failed earlier,
        // and is being started again: its stale `failed` is no verdict.
        let seen = Seen {
            restarts: 2,
            failures: 3,
        };
        assert_eq!(
            verdict(&status("failed", 2, 3, Some(1)), seen),
            Verdict::Waiting
        );
        assert_eq!(
            verdict(&status("healthy", 2, 3, None), seen),
            Verdict::Ready
        );
        assert!(matches!(
            verdict(&status("backoff", 2, 4, Some(1)), seen),
            Verdict::Failed(_)
        ));
    }
}
