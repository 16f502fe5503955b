//! The supervisor: runs services, probes health, restarts, captures logs, stops cleanly.
//! This is the daemon (or the foreground `up`); what commands use to reach it
//! is [`crate::control`], which this module never calls.
//!
//! Shape (mini-redis / watchexec style): [`actor`] owns one task per service
//! ([`service`], a state machine publishing its status on a `watch`
//! channel) and takes [`actor::Control`] messages on an mpsc channel, fed by
//! the control socket ([`server`], newline-delimited JSON of [`protocol`]).
//! Everything runs on a current-thread tokio runtime on the thread that
//! called [`run_in_foreground`] or [`supervise_main`]: small RSS, idle CPU near zero, and
//! that thread's lifetime is what services' PDEATHSIG is tied to.
//!
//! No survivors: every service runs under its own small init, cloned by the
//! supervisor's spawner (`locald __service-init --spawner`, [`init`]) as a
//! child of the supervisor with `PR_SET_PDEATHSIG(SIGKILL)`, in its own
//! process group ([`launch`]). The init is PID 1 of a new PID namespace, so
//! when the supervisor dies (even by `kill -9`) the kernel kills the init,
//! then everything in the namespace, grandchildren included, without the
//! supervisor doing anything. Where namespaces are unavailable it falls back
//! to process group + PDEATHSIG and warns once.
//!
//! State lives in `.locald/` (0700): `supervisor.sock` (0600),
//! `supervisor.pid`, `supervisor.lock` (flock held for the supervisor's
//! life: the reliable liveness test), `supervisor.log` (daemon output),
//! `ports.json`, and `logs/<service>.log`. Beside it, outside the project,
//! each supervisor holds its project's lock in the per-user runtime
//! directory ([`project_lock`]), so no second one starts while it lives, and
//! it checks every [`run::STATE_CHECK`] that its socket is still the one it
//! bound: when `.locald/` is deleted it stops its services and exits.

mod actor;
mod backoff;
pub(crate) mod console;
mod container;
mod dashboard;
mod health;
mod init;
mod launch;
mod live;
pub(crate) mod log_store;
pub(crate) mod logs;
pub(crate) mod oneoff;
mod order;
mod output;
mod processes;
pub(crate) mod project_lock;
pub(crate) mod protocol;
mod reload;
mod run;
mod server;
mod service;
pub(crate) mod wait;

use std::path::PathBuf;
use std::time::Duration;

pub use container::ContainerError;
pub use dashboard::OPENER_PAGE as DASHBOARD_OPENER_PAGE;
pub use init::service_init_main;
pub use project_lock::ProjectLockError;
pub use protocol::{ProcessInfo, ReloadReport, ServiceState, ServiceStatus};
pub use run::{
    already_running, held_elsewhere, run_in_foreground, select_services, supervise_main, Handoff,
};

use crate::project::env::EnvError;
use crate::project::ports::PortError;
use crate::project::state_dir::StateDirError;

/// Options of `locald up`.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Run as a background daemon and return once it is up.
    pub detach: bool,
    /// With `detach`: return only once every service is healthy (exit code 0),
    /// or report the failing one (non-zero).
    pub wait: bool,
    /// Bound for `wait`; unbounded when `None`.
    pub timeout: Option<Duration>,
    /// Services to run (with everything they depend on); empty means all.
    pub services: Vec<String>,
    /// Serve no dashboard, whatever `[dashboard]` says (`--no-dashboard`).
    pub no_dashboard: bool,
}

/// Why the daemon could not read the project `up -d` handed it.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Why `up -d` could not start the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot find the locald binary: {0}")]
    NoBinary(#[source] std::io::Error),
    #[error("cannot open {}: {source}", .path.display())]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot hand the project over: {0}")]
    Handoff(#[source] serde_json::Error),
    #[error("cannot start the supervisor: {0}")]
    Spawn(#[source] std::io::Error),
    /// `output` is what it wrote to its log (at most 64 KiB), trimmed.
    #[error("the supervisor exited ({status}): {output}")]
    Exited {
        status: std::process::ExitStatus,
        output: String,
    },
    #[error(
        "the supervisor did not open its socket within {} (see {})",
        humantime::format_duration(*.waited),
        .log.display()
    )]
    NoSocket { waited: Duration, log: PathBuf },
}

/// Everything that can go wrong in the supervisor.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Ports(#[from] PortError),
    #[error(transparent)]
    StateDir(#[from] StateDirError),
    #[error(transparent)]
    ProjectLock(#[from] ProjectLockError),
    #[error(
        "a supervisor is already running for this project (pid {pid}); stop it with `locald down`"
    )]
    AlreadyRunning { pid: String },
    #[error(
        "a supervisor (pid {pid}) still runs for this project although its state directory \
         is gone; it stops its services and exits within seconds (if it does not: `kill {pid}`)"
    )]
    Orphaned { pid: String },
    /// Ctrl-C or SIGTERM while following logs or waiting for health.
    #[error("{}", crate::sandbox::INTERRUPTED)]
    Interrupted,
    #[error("unknown service {0:?}")]
    UnknownService(String),
    #[error("cannot load the project: {0}")]
    Project(#[from] crate::project::LoadError),
    #[error("cannot talk to the supervisor at {path}: {source}")]
    Connection {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the supervisor (pid {pid}) did not answer within {}; is it stopped? \
         (resume it with `kill -CONT {pid}`, or end it with `kill {pid}`); \
         a request it had not taken up yet is dropped, not carried out later",
        humantime::format_duration(*.waited)
    )]
    NotAnswering { pid: String, waited: Duration },
    /// The supervisor refused the request, saying why; `diagnostic` when
    /// that is a rendered config diagnostic (shown whole).
    #[error("{message}")]
    Rejected { message: String, diagnostic: bool },
    #[error("unexpected answer from the supervisor: {0}")]
    Protocol(String),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// What `up -d` handed the daemon on stdin could not be read.
    #[error("cannot read the project handed over by `locald up -d`: {0}")]
    Handoff(#[source] HandoffError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}
