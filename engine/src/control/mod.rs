//! The client side of the supervisor: what a command does to reach, start
//! and read a supervisor, apart from the daemon itself
//! ([`crate::supervisor`], which never calls back here). The socket
//! [`Client`] (bounded requests), `up` (the supervisor in the foreground, or
//! a detached daemon started and waited for by [`daemon`]), reading the
//! services' logs ([`log_reader`]), printing their status
//! ([`status_table`]) and their processes ([`process_table`]).

mod client;
mod daemon;
pub mod exec;
mod log_reader;
mod process_table;
mod status_table;
mod supervise_args;

pub use crate::supervisor::log_store::log_names;
pub use client::{answer_timeout, Client};
pub use daemon::failure_message;
pub use log_reader::{print_logs, read_logs, since, LogQuery, SinceError, StoredLine};
pub use process_table::print_processes;
pub use status_table::print_status;
pub use supervise_args::{SuperviseArgs, SuperviseUsage};

use crate::model::Project;
use crate::project::state_dir::StateDir;
use crate::supervisor::project_lock::ProjectLock;
use crate::supervisor::{self, SupervisorError, UpOptions};

/// `locald up`: run in the foreground until Ctrl-C, `down`, or every service
/// has finished; with `detach`, start the daemon and return (after waiting
/// for health with `wait`). Returns the process exit code.
pub fn up(project: &Project, opts: &UpOptions) -> Result<i32, SupervisorError> {
    let mut project = std::borrow::Cow::Borrowed(project);
    if opts.no_dashboard {
        project.to_mut().dashboard.enabled = false;
    }
    let project = project.as_ref();
    let enabled = supervisor::select_services(project, &opts.services)?;
    let state = StateDir::new(&project.state_dir());
    state.ensure()?;
    // `up -d` beside a running supervisor brings it up to date, as
    // `docker compose up -d` does, rather than failing.
    if opts.detach {
        if let Some(client) = Client::connect(state.path())? {
            return daemon::reconcile(client, &state, opts, &enabled);
        }
    }
    // The project lock first: it holds even when `.locald/` was deleted
    // under a live supervisor, and names it without asking it anything.
    if let Some(holder) = ProjectLock::holder(&project.root)? {
        return Err(supervisor::held_elsewhere(&state, &holder));
    }
    if Client::connect(state.path())?.is_some() || state.is_locked() {
        return Err(supervisor::already_running(&state));
    }
    crate::project::ports::check_fixed_ports_free(project, &enabled)?;
    if opts.detach {
        return daemon::start(project, &state, opts, &enabled);
    }
    let code = supervisor::run_in_foreground(project, &enabled, &state);
    // Ctrl-C was the supervisor's to handle (it stopped the services and
    // says how it ended), as a foreground command's is: not the script's.
    crate::sandbox::interrupt::take();
    code
}
