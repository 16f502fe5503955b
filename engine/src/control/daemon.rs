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
    if !opts.wait {
        return Ok(0);
    }
    wait_until_healthy(&mut client, state, enabled, opts.timeout, started)
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
    let report = client.reload()?;
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
    if !opts.wait {
        return Ok(0);
    }
    wait_until_healthy(&mut client, state, enabled, opts.timeout, started)
}

/// Block until every service in `enabled` is ready; report and return 1 when
/// one fails or `timeout` (counted from `started`) passes.
pub fn wait_until_healthy(
    client: &mut Client,
    state: &StateDir,
    enabled: &BTreeSet<String>,
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
        if let Some(failed) = statuses
            .iter()
            .find(|status| ServiceState::parse(&status.state) == Some(ServiceState::Failed))
        {
            let code = failed
                .exit_code
                .map(|code| format!(" (exit code {code})"))
                .unwrap_or_default();
            report(
                state,
                &[failed],
                &format!("service {} failed{code}", failed.name),
            );
            return Ok(1);
        }
        let not_ready: Vec<&ServiceStatus> =
            statuses.iter().filter(|status| !is_ready(status)).collect();
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
