//! The caller's death as a stop request: `locald container run` names itself in [`PARENT_ENV`].

use nix::sys::signal::Signal;

use locald_shim_protocol::PARENT_ENV;

/// When started by `locald container run` (which sets [`PARENT_ENV`] to its pid), treat the
/// death of that parent as a stop request: SIGTERM, forwarded to the container and escalated
/// after the stop timeout, so that a killed caller leaves no container running.
pub(crate) fn stop_with_parent() {
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|pid| pid.parse::<libc::pid_t>().ok())
    else {
        return;
    };
    // SAFETY: prctl(2) with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) };
    if nix::unistd::getppid().as_raw() != parent {
        // It died before the signal was armed.
        let _ = nix::sys::signal::raise(Signal::SIGTERM);
    }
}
