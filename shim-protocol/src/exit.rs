//! Exit codes as shells and Docker report them: a process's own code, or 128 + N when signal N
//! ended it. The shim exits with this code for its container, `__service-init` for its service,
//! and the engine reads it back the same way, so there is one rule in one place.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// The code a shell reports for a process ended by `signal`.
pub const fn signal_exit_code(signal: i32) -> i32 {
    128 + signal
}

/// The code of a finished process: its own, or 128 + the signal that ended it.
///
/// A status that is neither (a stopped or continued process, which `wait` without `WUNTRACED`
/// never reports) counts as a plain failure, 1.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(signal_exit_code))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_signals() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
        assert_eq!(signal_exit_code(libc::SIGINT), 130);
    }
}
