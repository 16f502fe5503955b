//! `up -d`: start the supervisor as a detached daemon (`locald __supervise`
//! in a new session, stdin from /dev/null, output to
//! `.locald/supervisor.log`) and, with `--wait`, block until every selected
//! service is healthy, one fails, or the timeout passes.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::client::Client;
use super::log_reader::tail;
use crate::model::Project;
use crate::project::state_dir::{open_file, StateDir};
use crate::supervisor::protocol::ServiceState;
use crate::supervisor::wait::{Baseline, Seen, WaitOutcome};
use crate::supervisor::{DaemonError, Handoff, SupervisorError, UpOptions};

/// How long the daemon may take to load the project and open its socket.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
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

/// Block until every service in `enabled` is ready; report and return 1 when
/// one fails after what `baseline` saw or `timeout` (counted from `started`)
/// passes. The supervisor decides (see [`crate::supervisor::wait`]).
pub fn wait_until_healthy(
    client: &mut Client,
    state: &StateDir,
    enabled: &BTreeSet<String>,
    baseline: &Baseline,
    timeout: Option<Duration>,
    started: Instant,
) -> Result<i32, SupervisorError> {
    // `--timeout` bounds the whole command, start-up included.
    let left = timeout.map(|timeout| timeout.saturating_sub(started.elapsed()));
    let outcome = client.wait(
        Some(enabled.iter().cloned().collect()),
        Some(baseline.clone()),
        left,
    )?;
    match failure_message(state, &outcome, timeout) {
        None => Ok(0),
        Some(message) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {message}");
            Ok(1)
        }
    }
}

/// Why a wait did not end ready, as `up --wait` and `wait_healthy` say it:
/// the headline, then the last log lines of the services concerned. `None`
/// when it ended ready. `timeout` is the one the user gave (a wait that
/// began later was asked for what was left of it).
pub fn failure_message(
    state: &StateDir,
    outcome: &WaitOutcome,
    timeout: Option<Duration>,
) -> Option<String> {
    let (headline, services): (String, Vec<&str>) = match outcome {
        WaitOutcome::Ready => return None,
        WaitOutcome::Failed { service, headline } => (headline.clone(), vec![service.as_str()]),
        WaitOutcome::TimedOut { waiting } => {
            let names: Vec<String> = waiting
                .iter()
                .map(|(name, state)| format!("{name} ({state})"))
                .collect();
            let after = timeout
                .map(|timeout| format!(" after {}", humantime::format_duration(timeout)))
                .unwrap_or_default();
            (
                format!("timed out{after} waiting for: {}", names.join(", ")),
                waiting.iter().map(|(name, _)| name.as_str()).collect(),
            )
        }
    };
    let mut message = headline;
    for name in services {
        let lines = tail(&state.service_log(name), FAILURE_LOG_LINES);
        if lines.is_empty() {
            continue;
        }
        message.push_str(&format!("\nlast log lines of {name}:"));
        for line in lines {
            message.push_str(&format!("\n  {line}"));
        }
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_said_with_the_last_log_lines_of_the_service() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        std::fs::write(state.service_log("web"), "booting\ncrashed\n").unwrap();
        let failed = WaitOutcome::Failed {
            service: "web".into(),
            headline: "service web failed (exit code 3)".into(),
        };
        let message = failure_message(&state, &failed, None).unwrap();
        assert!(
            message.starts_with("service web failed (exit code 3)\nlast log lines of web:\n  "),
            "{message}"
        );
        assert!(message.ends_with("crashed"), "{message}");
        let timed_out = WaitOutcome::TimedOut {
            waiting: vec![("db".into(), "running".into())],
        };
        assert_eq!(
            failure_message(&state, &timed_out, Some(Duration::from_secs(90))).unwrap(),
            "timed out after 1m 30s waiting for: db (running)"
        );
        assert_eq!(failure_message(&state, &WaitOutcome::Ready, None), None);
    }
}
