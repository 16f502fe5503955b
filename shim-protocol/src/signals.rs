//! The signals locald's wrappers pass on rather than act on: `locald __service-init` (to the
//! service's process group) and `locald-shim` (to the container's init). A container service
//! runs as `locald-shim run …` under the service's `__service-init` init, so a signal reaches a
//! container only if both pass it on: the two lists must be one.

use nix::sys::signal::Signal;

/// Signals forwarded as they are.
///
/// SIGALRM is in it because `stop_signal = "ALRM"` is a valid service setting: the supervisor
/// then sends SIGALRM, and `__service-init` always forwarded it, but the shim's own copy of this
/// list lacked it, so the default disposition killed the shim, which left without stopping or
/// cleaning up its container. Every signal here gets a handler in the shim.
pub const FORWARDED_SIGNALS: [Signal; 8] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGALRM,
];

/// Forwarded signals that ask the container to stop: after the first, the shim escalates to
/// SIGKILL when the stop timeout runs out or when a second one arrives. Other forwarded signals
/// (SIGALRM included) are passed on and nothing more: the supervisor that sent them escalates.
pub fn is_stop_request(signal: Signal) -> bool {
    matches!(
        signal,
        Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP | Signal::SIGQUIT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_requests_are_forwarded_terminating_signals() {
        for signal in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            assert!(is_stop_request(signal));
            assert!(FORWARDED_SIGNALS.contains(&signal));
        }
        assert!(!is_stop_request(Signal::SIGWINCH));
        assert!(!is_stop_request(Signal::SIGUSR1));
        assert!(!is_stop_request(Signal::SIGALRM));
    }

    #[test]
    fn a_stop_signal_of_alrm_is_forwarded() {
        assert!(FORWARDED_SIGNALS.contains(&Signal::SIGALRM));
    }
}
