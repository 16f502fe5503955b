//! `locald __service-init [--no-pid-namespace] -- PROGRAM ARGS…`: the tiny
//! wrapper every host service runs under, so that no process of a service
//! outlives the supervisor.
//!
//! The supervisor spawns this wrapper with `PR_SET_PDEATHSIG(SIGKILL)`. The
//! wrapper ("outer") unshares a PID namespace (as root directly, otherwise
//! inside a fresh user namespace mapping the caller's ids) and forks an init
//! that is PID 1 of it. The init, with its own PDEATHSIG on the outer, forks
//! the service command into a new process group. When the command exits the
//! init exits with its status, and when the init dies for any reason the
//! kernel kills every process left in the namespace: grandchildren included,
//! and even after a `kill -9` of the supervisor (PDEATHSIG chain: supervisor
//! → outer → init → namespace).
//!
//! Both the outer and the init block the signals they forward and wait for
//! them with `sigwait`: no handlers, no async runtime, std and nix only. The
//! supervisor signals the outer's process group; the outer forwards to the
//! init, the init to the command's process group. With
//! `--no-pid-namespace` (namespaces unavailable) the wrapper simply `exec`s
//! the command, keeping the supervisor's PDEATHSIG and process group.
//!
//! `--probe` checks whether PID namespaces work here and exits 0 or 1.

use std::ffi::{CString, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use locald_shim_protocol::exit::signal_exit_code;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, fork, getgid, getuid, setpgid, ForkResult, Pid};

/// Signals the wrappers pass on to the service rather than act on: the same list as
/// `locald-shim`'s, which runs under this wrapper for a container service.
pub use locald_shim_protocol::signals::FORWARDED_SIGNALS;

/// Exit code when the wrapper itself cannot do its job (like a shell's 127).
const EXIT_CANNOT_RUN: i32 = 127;

enum Invocation {
    Probe,
    Run {
        use_namespace: bool,
        argv: Vec<OsString>,
    },
}

/// The `__service-init` entry. `args` are the arguments after
/// `__service-init` (anything up to and including a `__service-init` marker
/// is skipped, so the full argv works too).
pub fn service_init_main(args: Vec<OsString>) -> ! {
    let invocation = match parse_args(args) {
        Ok(invocation) => invocation,
        Err(message) => {
            eprintln!("locald __service-init: {message}");
            std::process::exit(2);
        }
    };
    match invocation {
        Invocation::Probe => std::process::exit(if probe() { 0 } else { 1 }),
        Invocation::Run {
            use_namespace: false,
            argv,
        } => exec_command(&argv),
        Invocation::Run {
            use_namespace: true,
            argv,
        } => {
            let blocked = forwarded_and_child_signals();
            if let Err(errno) = blocked.thread_block() {
                eprintln!("locald __service-init: cannot block signals: {errno}");
                std::process::exit(EXIT_CANNOT_RUN);
            }
            if let Err(errno) = enter_pid_namespace() {
                // The supervisor probed for support; reaching this is rare
                // (a sandbox denying it per process). Run unprotected.
                eprintln!("locald: cannot create a PID namespace ({errno}); running without it");
                let _ = blocked.thread_unblock();
                exec_command(&argv);
            }
            run_outer(&argv, &blocked)
        }
    }
}

/// A command line `__service-init` does not understand (only locald writes it).
#[derive(Debug, thiserror::Error)]
enum InitArgsError {
    #[error("unexpected argument {0:?}")]
    Unexpected(OsString),
    #[error("usage: __service-init [--no-pid-namespace] -- PROGRAM [ARGS…]")]
    NoProgram,
}

fn parse_args(args: Vec<OsString>) -> Result<Invocation, InitArgsError> {
    let start = args
        .iter()
        .position(|arg| arg == "__service-init")
        .map_or(0, |marker| marker + 1);
    let mut args = args.into_iter().skip(start);
    let mut use_namespace = true;
    for arg in args.by_ref() {
        match arg.to_str() {
            Some("--probe") => return Ok(Invocation::Probe),
            Some("--no-pid-namespace") => use_namespace = false,
            Some("--") => break,
            _ => return Err(InitArgsError::Unexpected(arg)),
        }
    }
    let argv: Vec<OsString> = args.collect();
    if argv.is_empty() {
        return Err(InitArgsError::NoProgram);
    }
    Ok(Invocation::Run {
        use_namespace,
        argv,
    })
}

fn forwarded_and_child_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in FORWARDED_SIGNALS {
        set.add(signal);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// New PID namespace for the next child: directly when privileged, else in
/// a new user namespace that maps our own uid/gid (so the service keeps its
/// identity and file ownership).
fn enter_pid_namespace() -> nix::Result<()> {
    if unshare(CloneFlags::CLONE_NEWPID).is_ok() {
        return Ok(());
    }
    let (uid, gid) = (getuid(), getgid());
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID)?;
    let write = |path: &str, content: String| {
        std::fs::write(path, content)
            .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EPERM)))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    Ok(())
}

/// Whether a PID namespace can be created and populated here.
fn probe() -> bool {
    if enter_pid_namespace().is_err() {
        return false;
    }
    // SAFETY: single-threaded at this point (hidden entry, nothing started).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => unsafe { libc::_exit(0) },
        Ok(ForkResult::Parent { child }) => {
            matches!(waitpid(child, None), Ok(WaitStatus::Exited(_, 0)))
        }
        Err(_) => false,
    }
}

/// Outside the namespace: fork the init, forward signals to it, and exit
/// with its status.
fn run_outer(argv: &[OsString], blocked: &SigSet) -> ! {
    // The init learns that we died before its PDEATHSIG was armed from this
    // pipe hanging up (getppid() is 0 across the namespace boundary).
    let (parent_alive_read, parent_alive_write) = match nix::unistd::pipe() {
        Ok(pipe) => pipe,
        Err(errno) => fail(&format!("cannot create pipe: {errno}")),
    };
    // SAFETY: this process is single-threaded.
    match unsafe { fork() } {
        Err(errno) => fail(&format!("cannot fork: {errno}")),
        Ok(ForkResult::Child) => {
            drop(parent_alive_write);
            // SAFETY: plain prctl with constant arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            let mut fds = [PollFd::new(parent_alive_read.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) > 0 {
                // SAFETY: exiting a forked child without running destructors.
                unsafe { libc::_exit(EXIT_CANNOT_RUN) };
            }
            drop(parent_alive_read);
            run_init(argv, blocked)
        }
        Ok(ForkResult::Parent { child: init }) => {
            drop(parent_alive_read);
            // Kept open for our whole life on purpose.
            let _parent_alive_write = parent_alive_write;
            forward_until_exit(blocked, init, |signal| {
                let _ = kill(init, signal);
            })
        }
    }
}

/// Wait for the blocked signals: pass each on with `forward` until `child` exits, then exit with
/// its status.
fn forward_until_exit(blocked: &SigSet, child: Pid, forward: impl Fn(Signal)) -> ! {
    loop {
        match blocked.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(code) = reap(child) {
                    std::process::exit(code);
                }
            }
            Ok(signal) => forward(signal),
            Err(_) => continue,
        }
    }
}

/// PID 1 of the namespace: start the command in its own process group,
/// forward signals to that group, reap every orphan, and exit with the
/// command's status (which makes the kernel kill whatever is left).
fn run_init(argv: &[OsString], blocked: &SigSet) -> ! {
    // Our own group, so a signal to the outer's group reaches the command once.
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // SAFETY: this process is single-threaded.
    let command = match unsafe { fork() } {
        Err(errno) => fail(&format!("cannot fork: {errno}")),
        Ok(ForkResult::Child) => {
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            let _ = blocked.thread_unblock();
            exec_command(argv)
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    // Set it from this side too: a signal may come before the child runs.
    let _ = setpgid(command, command);
    forward_until_exit(blocked, command, |signal| {
        if kill(Pid::from_raw(-command.as_raw()), signal).is_err() {
            let _ = kill(command, signal);
        }
    })
}

/// Reap every exited child; the exit code of `main` once it is among them.
fn reap(main: Pid) -> Option<i32> {
    let mut main_code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => main_code = Some(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == main => {
                main_code = Some(signal_exit_code(signal as i32))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return main_code,
            Ok(_) => continue,
        }
    }
}

/// Replace this process with the command (restoring the default mask).
fn exec_command(argv: &[OsString]) -> ! {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let c_args: Result<Vec<CString>, _> = argv
        .iter()
        .map(|arg| CString::new(arg.as_bytes()))
        .collect();
    let c_args = match c_args {
        Ok(args) => args,
        Err(_) => fail("command contains a NUL byte"),
    };
    let errno = match execvp(&c_args[0], &c_args) {
        Err(errno) => errno,
        Ok(never) => match never {},
    };
    fail(&format!("cannot run {:?}: {errno}", argv[0]))
}

fn fail(message: &str) -> ! {
    eprintln!("locald __service-init: {message}");
    std::process::exit(EXIT_CANNOT_RUN)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn args_accept_full_argv_and_flags() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        match parse_args(args(&["locald", "__service-init", "--", "sh", "-c", "x"])).unwrap() {
            Invocation::Run {
                use_namespace,
                argv,
            } => {
                assert!(use_namespace);
                assert_eq!(argv, args(&["sh", "-c", "x"]));
            }
            Invocation::Probe => panic!("not a probe"),
        }
        assert!(matches!(
            parse_args(args(&["--no-pid-namespace", "--", "true"])).unwrap(),
            Invocation::Run {
                use_namespace: false,
                ..
            }
        ));
        assert!(matches!(
            parse_args(args(&["--probe"])).unwrap(),
            Invocation::Probe
        ));
        assert!(matches!(
            parse_args(args(&["--"])),
            Err(InitArgsError::NoProgram)
        ));
        assert!(matches!(
            parse_args(args(&["--bogus", "--", "true"])),
            Err(InitArgsError::Unexpected(arg)) if arg == "--bogus"
        ));
    }

    /// In the unit-test binary, `__service-init` is served before libtest
    /// starts (libtest would run it on a second thread, where blocking
    /// signals for `sigwait` cannot work): glibc calls `.init_array` entries
    /// with the process's argc/argv before `main`.
    #[used]
    #[link_section = ".init_array"]
    static SERVICE_INIT_IN_TESTS: extern "C" fn(
        libc::c_int,
        *const *const libc::c_char,
        *const *const libc::c_char,
    ) = service_init_before_main;

    extern "C" fn service_init_before_main(
        argc: libc::c_int,
        argv: *const *const libc::c_char,
        _envp: *const *const libc::c_char,
    ) {
        if argc < 2 || argv.is_null() {
            return;
        }
        // SAFETY: the kernel-provided argv holds `argc` valid C strings.
        let args: Vec<OsString> = (0..argc as usize)
            .map(|index| unsafe { std::ffi::CStr::from_ptr(*argv.add(index)) })
            .map(|arg| OsString::from(std::ffi::OsStr::from_bytes(arg.to_bytes())))
            .collect();
        if args[1] == "__service-init" {
            service_init_main(args);
        }
    }
}
