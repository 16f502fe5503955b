//! The client side of `locald-shim`: finding the binary, and running a container in the
//! foreground with the caller's stdio.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::bundle::{Bundle, BundleError};
use crate::container_spec::ContainerSpec;

/// The shim binary's file name.
pub const SHIM_NAME: &str = "locald-shim";

/// Set by [`run_foreground`] to its pid: the shim then treats the death of its parent as a stop
/// request (`PR_SET_PDEATHSIG`), so that a killed `locald container run` leaves no container
/// running.
pub use locald_shim_protocol::PARENT_ENV;

/// Errors finding or running the shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error(
        "cannot find {SHIM_NAME}: set LOCALD_SHIM, or install it next to the locald binary or on \
         PATH (looked in: {searched})"
    )]
    NotFound { searched: String },
    #[error("starting {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for {SHIM_NAME}: {0}")]
    Wait(#[source] std::io::Error),
}

/// Locates `locald-shim`: `$LOCALD_SHIM`, else next to the current executable (or one directory
/// up, for test binaries in `target/*/deps`), else on `PATH`.
pub fn shim_path() -> Result<PathBuf, ShimError> {
    if let Some(path) = std::env::var_os("LOCALD_SHIM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ShimError::NotFound {
                searched: format!("LOCALD_SHIM={}", path.display()),
            })
        };
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
    {
        candidates.push(dir.join(SHIM_NAME));
        if let Some(parent) = dir.parent() {
            candidates.push(parent.join(SHIM_NAME));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join(SHIM_NAME)));
    }
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return Ok(found.clone());
    }
    Err(ShimError::NotFound {
        searched: candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The running shim's pid for the forwarding handler (0 when none).
static SHIM_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_to_shim(signo: libc::c_int) {
    let pid = SHIM_PID.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, signo) };
    }
}

/// Signal dispositions changed for the duration of a foreground run, restored on drop.
struct ForegroundSignals {
    saved: Vec<(Signal, SigAction)>,
}

impl ForegroundSignals {
    /// SIGINT and SIGQUIT come from the terminal to the whole foreground process group, so the
    /// shim gets them itself: the caller ignores them. SIGTERM and SIGHUP are sent to the caller
    /// alone: it forwards them to the shim.
    fn install() -> ForegroundSignals {
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        let forward = SigAction::new(
            SigHandler::Handler(forward_to_shim),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let mut saved = Vec::new();
        for (signal, action) in [
            (Signal::SIGINT, &ignore),
            (Signal::SIGQUIT, &ignore),
            (Signal::SIGTERM, &forward),
            (Signal::SIGHUP, &forward),
        ] {
            // SAFETY: the handler only reads an atomic and calls kill(2).
            if let Ok(old) = unsafe { sigaction(signal, action) } {
                saved.push((signal, old));
            }
        }
        ForegroundSignals { saved }
    }
}

impl Drop for ForegroundSignals {
    fn drop(&mut self) {
        SHIM_PID.store(0, Ordering::Relaxed);
        for (signal, action) in &self.saved {
            // SAFETY: restoring the dispositions we replaced.
            let _ = unsafe { sigaction(*signal, action) };
        }
    }
}

/// Runs the container in the foreground with the caller's stdio (stdin only when `interactive`),
/// waits for it, removes its bundle and returns its exit status (128+n if killed by signal n).
/// Changes process-wide signal dispositions while it runs: call it from a CLI's main flow.
///
/// First sweeps away the leftovers of containers whose process was killed
/// ([`crate::sweep_stale`]). The shim holds the bundle's lock too, and stops its container if
/// the calling thread dies: a `kill -9` of the caller leaves neither a running container nor,
/// after the next sweep, any of its files.
pub fn run_foreground(spec: &ContainerSpec) -> Result<i32, crate::Error> {
    run_foreground_holding(spec, &[])
}

/// [`run_foreground`], with `held` descriptors (image leases: locked files)
/// inherited by the shim, which keeps them for its whole life: if this
/// process is killed, what they hold stays held until the container is gone.
pub fn run_foreground_holding(
    spec: &ContainerSpec,
    held: &[std::os::fd::BorrowedFd<'_>],
) -> Result<i32, crate::Error> {
    // A runtime directory that is not safe to use is this run's error, said once (not first as
    // a failed clean-up): the bundle could not be created there either.
    let root = crate::root::prepare()?;
    match crate::sweep_stale_in(&root.path) {
        Ok(_) => {}
        Err(err @ crate::Error::Bundle(BundleError::PrivateDir(_))) => return Err(err),
        Err(err) => tracing::warn!("cleaning up after earlier containers: {err}"),
    }
    drop(root);
    let bundle = Bundle::create(spec)?;
    let mut command = bundle.command();
    if !spec.interactive {
        command.stdin(Stdio::null());
    }
    // Stop the container (as a stop request would) if this thread dies.
    command.env(PARENT_ENV, std::process::id().to_string());
    {
        use std::os::fd::AsRawFd;
        let raw: Vec<i32> = held.iter().map(AsRawFd::as_raw_fd).collect();
        inherit(&mut command, &raw);
    }
    let signals = ForegroundSignals::install();
    let mut child = command.spawn().map_err(|source| ShimError::Spawn {
        path: PathBuf::from(command.get_program()),
        source,
    })?;
    SHIM_PID.store(child.id() as i32, Ordering::Relaxed);
    let status = child.wait().map_err(ShimError::Wait);
    drop(signals);
    let status = status?;
    bundle.remove()?;
    Ok(locald_shim_protocol::exit::exit_code(status))
}

/// Lets the program `command` runs inherit `fds` (descriptors locald opens
/// are close-on-exec): cleared in the child only, so nothing else that this
/// process starts gets them. The caller keeps them open until the spawn.
pub fn inherit(command: &mut std::process::Command, fds: &[std::os::fd::RawFd]) {
    use std::os::unix::process::CommandExt;
    if fds.is_empty() {
        return;
    }
    let raw = fds.to_vec();
    // SAFETY: fcntl(2) is async-signal-safe; nothing is allocated in the child.
    unsafe {
        command.pre_exec(move || {
            for fd in &raw {
                if libc::fcntl(*fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_override_is_reported() {
        // Only this test touches LOCALD_SHIM in this binary's unit tests.
        std::env::set_var("LOCALD_SHIM", "/nonexistent/locald-shim");
        let err = shim_path().unwrap_err();
        std::env::remove_var("LOCALD_SHIM");
        assert!(
            err.to_string().contains("/nonexistent/locald-shim"),
            "{err}"
        );
    }
}
