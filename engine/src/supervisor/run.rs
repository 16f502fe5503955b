//! Running a supervisor: foreground `up`, and the detached daemon entry
//! `locald __supervise --root DIR`. Both bind the control socket, spawn the
//! actor on a current-thread runtime on the calling thread (small, idle
//! cheap, and the thread services' PDEATHSIG is tied to), and clean their
//! files on the way out.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::Flock;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use super::actor::{Ended, Supervisor};
use super::client::Client;
use super::console::Console;
use super::daemon;
use super::ports;
use super::server::{serve, HeldConnections};
use super::state_dir::StateDir;
use super::{SupervisorError, UpOptions};
use crate::model::Project;

/// Environment variable carrying the `up` service subset to the daemon.
pub const SERVICES_VAR: &str = "LOCALD_SUPERVISE_SERVICES";

/// `locald up`: run in the foreground until Ctrl-C, `down`, or every service
/// has finished; with `detach`, start the daemon and return (after waiting
/// for health with `wait`). Returns the process exit code.
pub fn up(project: &Project, opts: &UpOptions) -> Result<i32, SupervisorError> {
    let enabled = select_services(project, &opts.services)?;
    let state = StateDir::new(&project.state_dir());
    state.ensure()?;
    if Client::connect(state.path())?.is_some() || state.is_locked() {
        return Err(already_running(&state));
    }
    if opts.detach {
        return daemon::start(project, &state, opts, &enabled);
    }
    let lock = state.try_lock()?.ok_or_else(|| already_running(&state))?;
    let ports = ports::assign(project)?;
    let console = Console::for_stdout(&project.service_names());
    let ended = run_supervisor(project, ports, &enabled, &state, Some(console), lock)?;
    Ok(exit_code(&ended))
}

/// The `__supervise` entry: load the project at `root` and supervise it
/// (services from [`SERVICES_VAR`], comma-separated; all when unset).
pub fn supervise_main(root: &Path) -> ! {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOCALD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let code = match supervise(root) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("locald supervisor: {error}");
            1
        }
    };
    std::process::exit(code)
}

fn supervise(root: &Path) -> Result<i32, SupervisorError> {
    let project = crate::script::load_project(root)
        .map_err(|error| SupervisorError::Project(error.to_string()))?;
    let requested: Vec<String> = std::env::var(SERVICES_VAR)
        .unwrap_or_default()
        .split(',')
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    let enabled = select_services(&project, &requested)?;
    let state = StateDir::new(&project.state_dir());
    state.ensure()?;
    let lock = state.try_lock()?.ok_or_else(|| already_running(&state))?;
    let ports = ports::assign(&project)?;
    tracing::info!(project = %project.name, pid = std::process::id(), "supervisor started");
    let ended = run_supervisor(&project, ports, &enabled, &state, None, lock)?;
    tracing::info!("supervisor exiting");
    Ok(exit_code(&ended))
}

fn exit_code(ended: &Ended) -> i32 {
    match ended {
        Ended::Finished { failed: true } => 1,
        _ => 0,
    }
}

/// The requested services plus everything they depend on (all when empty).
pub fn select_services(
    project: &Project,
    requested: &[String],
) -> Result<BTreeSet<String>, SupervisorError> {
    if requested.is_empty() {
        return Ok(project
            .services
            .iter()
            .map(|service| service.name.clone())
            .collect());
    }
    let mut selected = BTreeSet::new();
    let mut to_visit: Vec<String> = requested.to_vec();
    while let Some(name) = to_visit.pop() {
        let service = project
            .service(&name)
            .ok_or_else(|| SupervisorError::UnknownService(name.clone()))?;
        if selected.insert(name) {
            to_visit.extend(service.depends_on.iter().cloned());
        }
    }
    Ok(selected)
}

fn already_running(state: &StateDir) -> SupervisorError {
    let pid = fs::read_to_string(state.pid_file())
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    SupervisorError::AlreadyRunning { pid }
}

/// Bind the socket, run the actor until it ends, clean up. Holding `lock`
/// proves no other supervisor runs, so leftover files are stale.
pub(crate) fn run_supervisor(
    project: &Project,
    ports: std::collections::BTreeMap<String, u16>,
    enabled: &BTreeSet<String>,
    state: &StateDir,
    console: Option<Console>,
    lock: Flock<File>,
) -> Result<Ended, SupervisorError> {
    let io_error = |context: &str| {
        let context = context.to_string();
        move |source| SupervisorError::Io { context, source }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_error("cannot start the async runtime"))?;
    let held = HeldConnections::default();
    let project = Arc::new(project.clone());
    let ended = runtime.block_on(async {
        state.remove_runtime_files();
        let socket = state.socket();
        let listener =
            UnixListener::bind(&socket).map_err(io_error("cannot bind the control socket"))?;
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o600))
            .map_err(io_error("cannot restrict the control socket"))?;
        fs::write(state.pid_file(), format!("{}\n", std::process::id()))
            .map_err(io_error("cannot write the pid file"))?;
        let (controls, control_receiver) = mpsc::channel(64);
        let server = tokio::spawn(serve(listener, controls, held.clone()));
        let supervisor = Supervisor::spawn(project.clone(), ports, enabled, state, console.clone());
        let end_when_finished = console.is_some();
        let ended = supervisor.run(control_receiver, end_when_finished).await;
        state.remove_runtime_files();
        let ended = match ended {
            Ended::Down(reply) => {
                let (ack, acked) = oneshot::channel();
                if reply.send(ack).is_ok() {
                    let _ = tokio::time::timeout(Duration::from_secs(2), acked).await;
                }
                Ended::Signal
            }
            other => other,
        };
        server.abort();
        Ok::<_, SupervisorError>(ended)
    });
    // Release the lock before the `down` requester sees end of file, so an
    // `up` right after `down` never finds this supervisor still "running".
    drop(lock);
    if let Ok(mut connections) = held.lock() {
        connections.clear();
    }
    drop(runtime);
    ended
}
