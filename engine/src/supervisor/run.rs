//! Running a supervisor: foreground `up`, and the detached daemon entry
//! `locald __supervise --root DIR`. Both bind the control socket, spawn the
//! actor on a current-thread runtime on the calling thread (small, idle
//! cheap, and the thread services' PDEATHSIG is tied to), and clean their
//! files on the way out.
//!
//! `up -d` has loaded and checked the project already: it hands the daemon
//! that project and the services to run ([`Handoff`], JSON on the daemon's
//! stdin), so the daemon neither loads the config a second time nor can
//! see a different one than the command that started it (an edit in
//! between, a `locald.rhai` that answers differently).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::Flock;
use serde::{Deserialize, Serialize};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use super::actor::{Ended, Supervisor};
use super::console::Console;
use super::dashboard::Dashboard;
use super::project_lock::{Holder, ProjectLock};
use super::server::{serve, HeldConnections};
use super::{HandoffError, SupervisorError};
use crate::model::Project;
use crate::project::ports;
use crate::project::state_dir::StateDir;

/// What `up -d` hands the daemon it starts: the loaded project and the
/// services asked for (all when empty). Both ends are the same binary, so
/// the JSON of the model types is no stable format, only a pipe's payload.
#[derive(Debug, Serialize, Deserialize)]
pub struct Handoff {
    pub project: Project,
    pub services: Vec<String>,
}

/// The most a handoff may hold (a project is bounded well below this by the
/// limits of its loading).
const HANDOFF_LIMIT: u64 = 64 << 20;

impl Handoff {
    /// Reads the handoff from stdin to its end, then points stdin at
    /// `/dev/null` (nothing the daemon starts should hold the pipe). `None`
    /// when stdin held nothing: the daemon was started by hand, and loads
    /// the project itself.
    fn from_stdin() -> Result<Option<Handoff>, SupervisorError> {
        use std::io::Read;
        let mut bytes = Vec::new();
        let read = std::io::stdin()
            .lock()
            .take(HANDOFF_LIMIT + 1)
            .read_to_end(&mut bytes);
        let io_error = |context: &str, source| SupervisorError::Io {
            context: context.to_string(),
            source,
        };
        let null = File::open("/dev/null").map_err(|e| io_error("cannot open /dev/null", e))?;
        nix::unistd::dup2_stdin(&null)
            .map_err(|e| io_error("cannot point stdin at /dev/null", e.into()))?;
        read.map_err(|e| io_error("cannot read stdin", e))?;
        if bytes.is_empty() {
            return Ok(None);
        }
        if bytes.len() as u64 > HANDOFF_LIMIT {
            return Err(SupervisorError::Handoff(HandoffError::TooLarge {
                limit: HANDOFF_LIMIT,
            }));
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| SupervisorError::Handoff(error.into()))
    }
}

/// Foreground `locald up` once the caller has checked that no supervisor
/// runs: supervise `enabled` in this process until Ctrl-C, `down`, or every
/// service has finished. Returns the process exit code.
pub fn run_in_foreground(
    project: &Project,
    enabled: &BTreeSet<String>,
    state: &StateDir,
) -> Result<i32, SupervisorError> {
    let locks = take_locks(project, state)?;
    let ports = ports::assign(project)?;
    let console = Console::for_stdout(&project.service_names());
    let ended = run_supervisor(project, ports, enabled, state, Some(console), locks)?;
    Ok(exit_code(&ended))
}

/// The `__supervise` entry: supervise the project handed over on stdin
/// ([`Handoff`]), or, when stdin is empty, the one loaded from `root` with
/// all its services.
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
    let (project, requested) = match Handoff::from_stdin()? {
        Some(Handoff { project, services }) => (project, services),
        None => (crate::project::load_project(root)?, Vec::new()),
    };
    let enabled = select_services(&project, &requested)?;
    let state = StateDir::new(&project.state_dir());
    state.ensure()?;
    let locks = take_locks(&project, &state)?;
    let ports = ports::assign(&project)?;
    tracing::info!(project = %project.name, pid = std::process::id(), "supervisor started");
    let ended = run_supervisor(&project, ports, &enabled, &state, None, locks)?;
    tracing::info!("supervisor exiting");
    Ok(exit_code(&ended))
}

fn exit_code(ended: &Ended) -> i32 {
    match ended {
        Ended::Finished { failed: true } | Ended::StateLost => 1,
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

/// What a supervisor holds for its whole life: the project's lock (outside
/// the project) and the state directory's.
pub(crate) struct Locks {
    _project: ProjectLock,
    _state: Flock<File>,
}

/// Take both locks, or say which supervisor holds them.
///
/// Whoever asks whether a supervisor runs (`up`, `status`, and `up -d`
/// itself while its daemon starts) takes these locks for a moment to see: a
/// busy lock is tried again for a short while before it counts as another
/// supervisor's, which holds it for its whole life.
pub(crate) fn take_locks(project: &Project, state: &StateDir) -> Result<Locks, SupervisorError> {
    const PROBES_END_WITHIN: Duration = Duration::from_millis(300);
    let deadline = std::time::Instant::now() + PROBES_END_WITHIN;
    let retry = || {
        let again = std::time::Instant::now() < deadline;
        if again {
            std::thread::sleep(Duration::from_millis(10));
        }
        again
    };
    loop {
        let project_lock = match ProjectLock::acquire(&project.root)? {
            Ok(lock) => lock,
            Err(_) if retry() => continue,
            Err(holder) => return Err(held_elsewhere(state, &holder)),
        };
        match state.try_lock()? {
            Some(state_lock) => {
                return Ok(Locks {
                    _project: project_lock,
                    _state: state_lock,
                })
            }
            None if retry() => continue,
            None => return Err(already_running(state)),
        }
    }
}

/// The error for a project whose lock another supervisor holds: reachable
/// through `.locald/` or orphaned (its state directory deleted).
pub fn held_elsewhere(state: &StateDir, holder: &Holder) -> SupervisorError {
    let pid = holder.pid_text();
    if state.read_pid().map(|pid| pid.to_string()) == Some(pid.clone()) {
        SupervisorError::AlreadyRunning { pid }
    } else {
        SupervisorError::Orphaned { pid }
    }
}

pub fn already_running(state: &StateDir) -> SupervisorError {
    let pid = state
        .read_pid()
        .map_or_else(|| "unknown".to_string(), |pid| pid.to_string());
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
    locks: Locks,
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
    // Containers of supervisors that were killed (kill -9, a crash) left their
    // bundles, state and cgroups: nobody else removes them. Cheap when there
    // are none (one directory read); only containers sharing this runtime
    // directory are looked at, and only those whose lock nobody holds.
    if project
        .services
        .iter()
        .any(|service| service.is_container())
    {
        match locald_runtime::sweep_stale() {
            Ok(report) => tracing::debug!(?report, "swept stale containers"),
            Err(error) => tracing::warn!(%error, "cannot sweep stale containers"),
        }
    }
    let ended = runtime.block_on(async {
        state.remove_runtime_files();
        let socket = state.socket();
        let listener =
            UnixListener::bind(&socket).map_err(io_error("cannot bind the control socket"))?;
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o600))
            .map_err(io_error("cannot restrict the control socket"))?;
        state
            .write_pid()
            .map_err(io_error("cannot write the pid file"))?;
        let bound =
            fs::symlink_metadata(&socket).map_err(io_error("cannot look at the control socket"))?;
        let identity = (bound.dev(), bound.ino());
        let (controls, control_receiver) = mpsc::channel(64);
        let service_ports: Vec<u16> = ports.values().copied().collect();
        let supervisor = Supervisor::spawn(project.clone(), ports, enabled, state, console.clone());
        let dashboard = start_dashboard(&project, state, &service_ports, &supervisor, &controls);
        let dashboard_url = dashboard.as_ref().map(|(url, _)| url.clone());
        if let (Some(url), Some(_)) = (&dashboard_url, &console) {
            eprintln!("locald: dashboard at {url}");
        }
        let server = tokio::spawn(serve(listener, controls, held.clone(), dashboard_url));
        let end_when_finished = console.is_some();
        let lost = state_lost(socket.clone(), identity);
        let ended = supervisor
            .run(control_receiver, end_when_finished, lost)
            .await;
        // Only our own: after `.locald/` was deleted the names may be
        // someone else's.
        state.remove_own_runtime_files(identity);
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
        if let Some((_, task)) = dashboard {
            task.abort();
        }
        Ok::<_, SupervisorError>(ended)
    });
    // Release the locks before the `down` requester sees end of file, so an
    // `up` right after `down` never finds this supervisor still "running".
    drop(locks);
    if let Ok(mut connections) = held.lock() {
        connections.clear();
    }
    drop(runtime);
    ended
}

/// Binds and serves the dashboard unless the project turns it off; a port
/// it cannot have costs the dashboard (said in the log and on the console),
/// never the services. Returns its address and its task.
fn start_dashboard(
    project: &Project,
    state: &StateDir,
    service_ports: &[u16],
    supervisor: &Supervisor,
    controls: &mpsc::Sender<super::actor::Envelope>,
) -> Option<(String, tokio::task::JoinHandle<()>)> {
    if !project.dashboard.enabled {
        return None;
    }
    let dashboard = match Dashboard::bind(state, project.dashboard.port, service_ports) {
        Ok(dashboard) => dashboard,
        Err(error) => {
            tracing::warn!(%error, "no dashboard");
            return None;
        }
    };
    let url = dashboard.url();
    tracing::info!(port = dashboard.port(), "dashboard listening on 127.0.0.1");
    let (generation, live) = supervisor.watchers();
    let task = tokio::spawn(dashboard.serve(controls.clone(), state.clone(), generation, live));
    Some((url, task))
}

/// How often a supervisor checks that its control socket is still there.
pub const STATE_CHECK: Duration = Duration::from_secs(1);

/// Resolves (with what happened) once the control socket at `socket` is no
/// longer the one this supervisor bound (`identity`: device and inode): its
/// state directory was deleted or replaced, so no client can reach it and a
/// second supervisor could take its place. A cheap `lstat` per check.
/// What became of the control socket a supervisor bound.
#[derive(Debug, thiserror::Error)]
pub enum StateLost {
    #[error("replaced ({})", .0.display())]
    Replaced(PathBuf),
    #[error("removed ({})", .0.display())]
    Removed(PathBuf),
}

async fn state_lost(socket: PathBuf, identity: (u64, u64)) -> StateLost {
    let mut check = tokio::time::interval(STATE_CHECK);
    loop {
        check.tick().await;
        match fs::symlink_metadata(&socket) {
            Ok(metadata) if (metadata.dev(), metadata.ino()) == identity => {}
            Ok(_) => return StateLost::Replaced(socket),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return StateLost::Removed(socket)
            }
            // Anything else (EACCES after a chmod, say) may pass: look again.
            Err(error) => {
                tracing::warn!(path = %socket.display(), %error, "cannot check the control socket")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // The tests drive the supervisor as a command would.
    use crate::control::Client;
    use crate::model::{HealthCheck, Probe, RestartMode, RestartPolicy};
    use crate::project::env::tests::{project, service};
    use crate::supervisor::launch::tests::find_descendant;
    use crate::supervisor::logs::parse_line;
    use crate::supervisor::ServiceStatus;
    use std::time::Instant;

    /// `up -d` hands the daemon the loaded project as JSON ([`Handoff`]):
    /// every form of every key must come back unchanged, but for the tasks,
    /// which the daemon never runs and so is not given.
    #[test]
    fn a_loaded_project_survives_the_handoff_to_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(
            root.join(crate::config::TOML_FILE),
            crate::project::load::tests::EVERY_FORM,
        )
        .unwrap();
        let loaded = crate::project::load_project(&root).unwrap();
        let handoff = Handoff {
            project: loaded.clone(),
            services: vec!["web".into()],
        };
        let json = serde_json::to_vec(&handoff).unwrap();
        let back: Handoff = serde_json::from_slice(&json).unwrap();
        assert!(!loaded.tasks.is_empty());
        assert!(back.project.tasks.is_empty());
        assert_eq!(
            back.project,
            crate::model::Project {
                tasks: Vec::new(),
                ..loaded
            }
        );
        assert_eq!(back.services, ["web"]);
    }

    /// A supervisor on its own thread, as `up` would run it.
    struct Running {
        state: StateDir,
        thread: std::thread::JoinHandle<Result<Ended, SupervisorError>>,
    }

    fn start(project: &Project) -> Running {
        let state = StateDir::new(&project.state_dir());
        state.ensure().unwrap();
        let locks = take_locks(project, &state).unwrap();
        let ports = ports::assign(project).unwrap();
        let enabled = select_services(project, &[]).unwrap();
        let thread = {
            let (project, state) = (project.clone(), state.clone());
            std::thread::spawn(move || {
                run_supervisor(&project, ports, &enabled, &state, None, locks)
            })
        };
        Running { state, thread }
    }

    impl Running {
        fn client(&self) -> Client {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Some(client) = Client::connect(self.state.path()).unwrap() {
                    return client;
                }
                assert!(Instant::now() < deadline, "supervisor did not come up");
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        /// Poll status until `done` holds for it.
        fn wait_for(
            &self,
            what: &str,
            done: impl Fn(&[ServiceStatus]) -> bool,
        ) -> Vec<ServiceStatus> {
            let mut client = self.client();
            let deadline = Instant::now() + Duration::from_secs(8);
            loop {
                let statuses = client.status().unwrap();
                if done(&statuses) {
                    return statuses;
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}: {statuses:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        fn down(self) {
            self.client().down().unwrap();
            self.thread.join().unwrap().unwrap();
            assert!(!self.state.socket().exists());
            assert!(!self.state.pid_file().exists());
        }

        fn log(&self, service: &str) -> Vec<(String, String)> {
            std::fs::read_to_string(self.state.service_log(service))
                .unwrap_or_default()
                .lines()
                .filter_map(parse_line)
                .map(|line| (line.timestamp.to_string(), line.text.to_string()))
                .collect()
        }
    }

    fn state_of<'a>(statuses: &'a [ServiceStatus], name: &str) -> &'a ServiceStatus {
        statuses.iter().find(|status| status.name == name).unwrap()
    }

    fn is_gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat.rsplit(") ").next().unwrap_or("").starts_with('Z'),
            Err(_) => true,
        }
    }

    #[test]
    fn dependents_wait_for_health_and_down_leaves_no_process() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut db = service("db", "sleep 0.3; echo ready; exec sleep 300", root);
        db.health.probe = Probe::Log {
            pattern: "^ready$".into(),
        };
        let mut api = service(
            "api",
            "echo url=$DB_URL; sh -c 'sleep 301' & exec sleep 302",
            root,
        );
        api.depends_on = vec!["db".into()];
        api.env.insert("DB_URL".into(), "${services.db.url}".into());
        let project = project(root, vec![db, api]);
        let running = start(&project);
        let statuses = running.wait_for("both healthy", |statuses| {
            statuses.iter().all(|status| status.state == "healthy")
        });

        let db_log = running.log("db");
        let db_healthy = db_log
            .iter()
            .find(|(_, text)| text == "healthy")
            .unwrap()
            .0
            .clone();
        let api_log = running.log("api");
        let api_start = api_log
            .iter()
            .find(|(_, text)| text.starts_with("starting"))
            .unwrap()
            .0
            .clone();
        assert!(
            api_start >= db_healthy,
            "api started at {api_start}, before db was healthy at {db_healthy}"
        );
        let db_port = state_of(&statuses, "db").port.unwrap();
        let wanted = format!("url=http://127.0.0.1:{db_port}");
        let deadline = Instant::now() + Duration::from_secs(3);
        while !running.log("api").iter().any(|(_, text)| *text == wanted) {
            assert!(
                Instant::now() < deadline,
                "api never printed {wanted}: {:?}",
                running.log("api")
            );
            std::thread::sleep(Duration::from_millis(20));
        }

        let api_pid = state_of(&statuses, "api").pid.unwrap() as i32;
        let grandchild = find_descendant(api_pid, "sleep").unwrap();
        running.down();
        assert!(
            is_gone(api_pid) && is_gone(grandchild),
            "a process survived down"
        );
        let api_log = running_log_texts(root, "api");
        let db_log = running_log_texts(root, "db");
        assert!(
            api_log.last().unwrap().starts_with("stopped"),
            "{api_log:?}"
        );
        assert!(db_log.last().unwrap().starts_with("stopped"), "{db_log:?}");
    }

    fn running_log_texts(root: &Path, service: &str) -> Vec<String> {
        std::fs::read_to_string(root.join(".locald/logs").join(format!("{service}.log")))
            .unwrap()
            .lines()
            .filter_map(parse_line)
            .map(|line| line.text.to_string())
            .collect()
    }

    #[test]
    fn failing_service_backs_off_then_fails_after_max_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut crash = service("crash", "echo boom; exit 4", dir.path());
        crash.restart = RestartPolicy {
            mode: RestartMode::OnFailure,
            max_restarts: Some(2),
        };
        let running = start(&project(dir.path(), vec![crash]));
        let statuses = running.wait_for("failed", |statuses| statuses[0].state == "failed");
        assert_eq!((statuses[0].restarts, statuses[0].exit_code), (2, Some(4)));
        assert_eq!(statuses[0].failures, 3, "every run failed");
        let texts: Vec<String> = running
            .log("crash")
            .into_iter()
            .map(|(_, text)| text)
            .collect();
        assert_eq!(
            texts.iter().filter(|text| *text == "boom").count(),
            3,
            "{texts:?}"
        );
        assert!(
            texts.contains(&"restarting in 100ms".to_string()),
            "{texts:?}"
        );
        assert!(
            texts.contains(&"restarting in 200ms".to_string()),
            "{texts:?}"
        );
        running.down();
    }

    #[test]
    fn unhealthy_service_is_restarted_and_stubborn_one_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("healthy-flag");
        std::fs::write(&flag, "").unwrap();
        let mut flaky = service("flaky", "exec sleep 300", dir.path());
        flaky.health = HealthCheck {
            probe: Probe::Exec {
                command: format!("test -f {}", flag.display()),
            },
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(1),
            retries: 2,
            start_period: Duration::ZERO,
            ..HealthCheck::default()
        };
        let mut stubborn = service("stubborn", "trap '' TERM; sleep 300", dir.path());
        stubborn.stop_timeout = Duration::from_millis(300);
        let running = start(&project(dir.path(), vec![flaky, stubborn]));
        let statuses = running.wait_for("healthy", |statuses| {
            statuses.iter().all(|s| s.state == "healthy")
        });
        let first_pid = state_of(&statuses, "flaky").pid;

        std::fs::remove_file(&flag).unwrap();
        let statuses = running.wait_for("unhealthy restart", |statuses| {
            state_of(statuses, "flaky").restarts == 1
        });
        // Counted once, when it turned unhealthy, not again at its stop.
        assert_eq!(state_of(&statuses, "flaky").failures, 1);
        std::fs::write(&flag, "").unwrap();
        let statuses = running.wait_for("healthy again", |statuses| {
            state_of(statuses, "flaky").state == "healthy"
        });
        assert_ne!(state_of(&statuses, "flaky").pid, first_pid);
        assert!(running
            .log("flaky")
            .iter()
            .any(|(_, text)| text.starts_with("unhealthy:")));

        let started = Instant::now();
        running.client().stop(Some("stubborn")).unwrap();
        let statuses = running.client().status().unwrap();
        assert_eq!(state_of(&statuses, "stubborn").state, "stopped");
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "stopped in {:?}: {:?}",
            started.elapsed(),
            running.log("stubborn")
        );
        assert!(running
            .log("stubborn")
            .iter()
            .any(|(_, text)| text.contains("killing")));
        running.down();
    }

    #[test]
    fn selecting_services_pulls_in_dependencies() {
        let root = std::path::Path::new("/tmp");
        let db = service("db", "true", root);
        let mut api = service("api", "true", root);
        api.depends_on = vec!["db".into()];
        let other = service("other", "true", root);
        let project = project(root, vec![db, api, other]);
        let selected = select_services(&project, &["api".to_string()]).unwrap();
        assert_eq!(selected.into_iter().collect::<Vec<_>>(), vec!["api", "db"]);
        assert!(matches!(
            select_services(&project, &["nope".to_string()]),
            Err(SupervisorError::UnknownService(_))
        ));
    }
}
