//! `locald-shim`: locald's embedded container runtime. It runs one OCI bundle with libcontainer
//! (no runc, no Docker) and stays in the foreground until the container exits.
//!
//! ```text
//! locald-shim run --bundle DIR --id ID [--root STATE_DIR] [--stop-timeout SECONDS]
//!                 [--seccomp-cache DIR]
//! locald-shim exec --bundle DIR --pid PID [--seccomp-cache DIR] [--user USER] [--cwd DIR]
//!                  [--env KEY=VALUE]... -- COMMAND...
//! ```
//!
//! `exec` runs a command in the running container whose init is host pid PID (see `exec.rs`).
//!
//! - `--bundle`: the OCI bundle (`config.json` + rootfs). If the spec carries the annotations
//!   `org.locald.rootfs.lower`, `.upper` and `.work`, the shim mounts an overlay of the (read-only)
//!   lower directory on the bundle's rootfs first, inside its own private mount namespace.
//! - `--id`: the container id; `--root`: libcontainer's state root (default `BUNDLE/state`).
//! - `--seccomp-cache`: a directory (created 0700) where compiled seccomp programs are kept, so
//!   that the spec's filter is compiled once rather than at every start (see `seccomp.rs`).
//! - `--stop-timeout`: grace period after a forwarded SIGTERM/SIGINT/SIGHUP/SIGQUIT before the
//!   container's init gets SIGKILL, in decimal seconds (default 10; a second stop signal kills at
//!   once). SIGUSR1, SIGUSR2, SIGWINCH and SIGALRM are forwarded too, with no escalation.
//! - A terminal is used when the spec says `process.terminal: true`: the shim receives the pty
//!   master over a console socket, puts its stdin in raw mode and relays both ways.
//!   Otherwise the container inherits the shim's stdin/stdout/stderr directly.
//! - Run by root, the container gets the spec's cgroup; run by anyone else, the shim first enters
//!   a user namespace mapping the caller to root (rootless mode, see `runtime/README.md`).
//! - Run by root on a cgroup v1 host, the shim creates the container's cgroups itself (see
//!   `cgroups.rs`: this avoids a global RCU wait in the kernel at every start).
//! - The bundle directory and the state root must be owned by the caller and writable by no one
//!   else, their parents owned by root or the caller and not writable by others unless sticky,
//!   and none of them a symlink (see `locald_shim_protocol::private_dir`); the state root is
//!   created 0700 if missing (and tightened to 0700 if others may read it).
//! - A bundle with a lock file next to it (`<bundle>.lock`, as the runtime crate makes them) is
//!   locked (shared) for as long as the shim runs, so that no sweep of stale bundles takes it.
//! - The command line, the annotations, the lock file, the parent variable, the forwarded signals
//!   and the seccomp cache's layout are defined once, for the shim and the runtime crate, in
//!   `locald-shim-protocol`.
//! - With `LOCALD_SHIM_PARENT_PID` set to its parent's pid (as `locald container run` does), the
//!   death of that parent is a stop request, as SIGTERM.
//!
//! Exit status: the container's (128+n when killed by signal n); 125 when the shim itself fails.
//! Everything the shim creates (container state, cgroups, mounts, console socket) is removed
//! before it exits, including when it is stopped by SIGTERM or SIGINT, or fails.

mod cgroups;
mod cleanup;
mod exec;
mod mounts;
mod parent;
mod run;
mod seccomp;
mod signals;
mod terminal;
mod unknown_syscalls;
mod watch;

use locald_shim_protocol::args::{ExecArgs, RunArgs, EXEC_COMMAND};

/// Exit status for failures of the shim itself, as `docker run` uses it.
const SHIM_FAILURE: i32 = 125;

fn main() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|command| command == EXEC_COMMAND)
    {
        let status = match ExecArgs::parse(std::env::args_os().skip(2)) {
            Ok(args) => exec::exec(&args).unwrap_or_else(|err| {
                eprintln!("locald-shim: exec: {err:#}");
                SHIM_FAILURE
            }),
            Err(err) => {
                eprintln!("locald-shim: {err}");
                2
            }
        };
        std::process::exit(status);
    }
    let status = match RunArgs::parse(std::env::args_os().skip(1)) {
        Ok(args) => match run::run(&args) {
            Ok(status) => status,
            Err(err) => {
                eprintln!("locald-shim: {err:#}");
                SHIM_FAILURE
            }
        },
        Err(err) => {
            eprintln!("locald-shim: {err:#}");
            2
        }
    };
    std::process::exit(status);
}
