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

/// A program that could not be started, as shells and `docker run` report it: the code (127
/// when it was not found, 126 when it was found but cannot be executed) and a short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecFailure {
    pub code: i32,
    pub reason: &'static str,
}

impl ExecFailure {
    /// Why `execve` of `program` failed with `errno`, when a shell would exit 126 or 127 for it;
    /// `None` for other failures (out of memory, too many files), which are not about the
    /// program. `program` is as given: a name is looked up in `PATH`, a path is not.
    pub fn from_errno(program: &str, errno: i32) -> Option<ExecFailure> {
        let is_path = program.contains('/');
        let (code, reason) = match errno {
            libc::ENOENT if is_path => (127, "no such file or directory"),
            libc::ENOENT => (127, "command not found"),
            // execve says EACCES for a directory too.
            libc::EACCES | libc::EISDIR if is_path && std::path::Path::new(program).is_dir() => {
                (126, "is a directory")
            }
            libc::EACCES | libc::EPERM => (126, "permission denied"),
            libc::ENOEXEC => (126, "exec format error"),
            libc::ENOTDIR => (126, "not a directory"),
            _ => return None,
        };
        Some(ExecFailure { code, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_failures_get_the_codes_shells_give() {
        let failure =
            |program, errno| ExecFailure::from_errno(program, errno).map(|f| (f.code, f.reason));
        assert_eq!(
            failure("nosuch", libc::ENOENT),
            Some((127, "command not found"))
        );
        assert_eq!(
            failure("./nosuch", libc::ENOENT),
            Some((127, "no such file or directory"))
        );
        assert_eq!(
            failure("./x", libc::EACCES),
            Some((126, "permission denied"))
        );
        assert_eq!(failure("/", libc::EACCES), Some((126, "is a directory")));
        assert_eq!(
            failure("./x", libc::ENOEXEC),
            Some((126, "exec format error"))
        );
        assert_eq!(failure("x", libc::ENOMEM), None);
    }

    #[test]
    fn codes_and_signals() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
        assert_eq!(signal_exit_code(libc::SIGINT), 130);
    }
}
