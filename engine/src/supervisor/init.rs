//! `locald __service-init --spawner SOCKET LIFELINE`: the one small process
//! that starts every service of a supervisor, and the tiny init each host
//! service runs under, so that no process of a service outlives the
//! supervisor.
//!
//! The supervisor starts the spawner once (with `PR_SET_PDEATHSIG(SIGKILL)`,
//! in its own process group) and sends it a [`SpawnRequest`] per start over
//! a `SOCK_SEQPACKET` socket, the service's stdout/stderr pipes and any
//! inherited descriptors attached (`SCM_RIGHTS`). For each request the
//! spawner `clone`s itself with `CLONE_PARENT | CLONE_NEWPID` (and
//! `CLONE_NEWUSER` mapping the caller's own ids when not privileged): the
//! new process is PID 1 of a fresh PID namespace and a *child of the
//! supervisor*, which waits for it, signals its process group and reads its
//! exit status as for any child. It is a fork of the spawner, not a new
//! `exec` of this 70 MB binary: its pages are shared with the spawner and
//! with every other init, so each costs a few tens of kB instead of the
//! ~700 kB of relocated data an exec'd copy dirties (see docs/benchmarks.md).
//!
//! The init arms its own PDEATHSIG (its parent is the supervisor's thread),
//! forks the service command into a new process group, forwards the
//! signals it gets to that group, reaps orphans, and exits with the
//! command's status (128+N for signal N). When the init dies for any reason
//! the kernel kills every process left in the namespace: grandchildren
//! included, and even after a `kill -9` of the supervisor (PDEATHSIG:
//! supervisor → init → namespace).
//!
//! The init learns that the supervisor died before its PDEATHSIG was armed
//! from the lifeline pipe hanging up (the supervisor holds its only write
//! end; `getppid()` is 0 across the namespace boundary). Signals are
//! blocked in the spawner (so also in each init from its first
//! instruction) and taken with `sigwait`: no handlers, no async runtime.
//! When PID namespaces are unavailable (the supervisor probed with
//! `--probe`), the clone execs the command directly instead, keeping
//! PDEATHSIG and the process group.

use std::ffi::{CString, OsStr, OsString};
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use locald_shim_protocol::exit::signal_exit_code;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessageOwned, MsgFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getgid, getuid, setpgid, ForkResult, Gid, Pid, Uid};

/// Signals the init passes on to the service rather than act on: the same list as
/// `locald-shim`'s, which runs under it for a container service.
pub use locald_shim_protocol::signals::FORWARDED_SIGNALS;

/// Exit code when the init itself cannot do its job (like a shell's 127).
const EXIT_CANNOT_RUN: i32 = 127;
/// The largest request (argv, environment and working directory): far above
/// any real environment, and below the socket's default send buffer.
pub const MAX_REQUEST: usize = 128 * 1024;
/// The most descriptors one request carries: stdout, stderr, and the
/// inherited ones (a container's image lease).
pub const MAX_REQUEST_FDS: usize = 8;

enum Invocation {
    Probe,
    Spawner { socket: RawFd, lifeline: RawFd },
}

/// The `__service-init` entry. `args` are the arguments after
/// `__service-init` (anything up to and including a `__service-init` marker
/// is skipped, so the full argv works too).
pub fn service_init_main(args: Vec<OsString>) -> ! {
    match parse_args(args) {
        Ok(Invocation::Probe) => std::process::exit(if probe() { 0 } else { 1 }),
        Ok(Invocation::Spawner { socket, lifeline }) => {
            // SAFETY: the supervisor passed these two descriptors open, for us alone.
            let (socket, lifeline) =
                unsafe { (OwnedFd::from_raw_fd(socket), OwnedFd::from_raw_fd(lifeline)) };
            run_spawner(socket, lifeline)
        }
        Err(message) => {
            eprintln!("locald __service-init: {message}");
            std::process::exit(2);
        }
    }
}

/// A command line `__service-init` does not understand (only locald writes it).
#[derive(Debug, thiserror::Error)]
enum InitArgsError {
    #[error("unexpected argument {0:?}")]
    Unexpected(OsString),
    #[error("usage: __service-init --probe | --spawner SOCKET_FD LIFELINE_FD")]
    Usage,
}

fn parse_args(args: Vec<OsString>) -> Result<Invocation, InitArgsError> {
    let start = args
        .iter()
        .position(|arg| arg == "__service-init")
        .map_or(0, |marker| marker + 1);
    let args: Vec<OsString> = args.into_iter().skip(start).collect();
    let fd = |arg: &OsString| -> Result<RawFd, InitArgsError> {
        arg.to_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| InitArgsError::Unexpected(arg.clone()))
    };
    match args.as_slice() {
        [flag] if flag == "--probe" => Ok(Invocation::Probe),
        [flag, socket, lifeline] if flag == "--spawner" => Ok(Invocation::Spawner {
            socket: fd(socket)?,
            lifeline: fd(lifeline)?,
        }),
        [first, ..] if first != "--probe" && first != "--spawner" => {
            Err(InitArgsError::Unexpected(first.clone()))
        }
        _ => Err(InitArgsError::Usage),
    }
}

/// One start of a service, as the supervisor sends it to the spawner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnRequest {
    /// Run the command under an init in a new PID namespace.
    pub namespace: bool,
    pub argv: Vec<OsString>,
    /// `NAME=value` entries: the command's whole environment.
    pub env: Vec<OsString>,
    pub workdir: PathBuf,
}

/// A request the spawner cannot read (only locald writes them).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("the request is truncated")]
    Truncated,
    #[error("the request has no command")]
    NoCommand,
    #[error("the command, its environment or its directory contains a NUL byte")]
    Nul,
    #[error("the command and its environment take more than {MAX_REQUEST} bytes")]
    TooLarge,
}

impl SpawnRequest {
    /// `[namespace: u8][argc: u32][envc: u32]` then every argument, every
    /// environment entry and the working directory, each ending in NUL
    /// (none can contain one: they come from C strings or are checked).
    pub fn encode(&self) -> Result<Vec<u8>, RequestError> {
        let mut bytes = vec![u8::from(self.namespace)];
        let count = |n: usize| u32::try_from(n).map_err(|_| RequestError::TooLarge);
        bytes.extend(count(self.argv.len())?.to_ne_bytes());
        bytes.extend(count(self.env.len())?.to_ne_bytes());
        let strings = self
            .argv
            .iter()
            .chain(&self.env)
            .map(OsString::as_os_str)
            .chain([self.workdir.as_os_str()]);
        for string in strings {
            let string = string.as_bytes();
            if string.contains(&0) {
                return Err(RequestError::Nul);
            }
            bytes.extend(string);
            bytes.push(0);
        }
        if bytes.len() > MAX_REQUEST {
            return Err(RequestError::TooLarge);
        }
        Ok(bytes)
    }

    pub fn decode(bytes: &[u8]) -> Result<SpawnRequest, RequestError> {
        let header = bytes.get(..9).ok_or(RequestError::Truncated)?;
        let number = |at: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&header[at..at + 4]);
            u32::from_ne_bytes(word) as usize
        };
        let (argc, envc) = (number(1), number(5));
        let mut strings = bytes[9..]
            .split_inclusive(|byte| *byte == 0)
            .map(|string| match string.split_last() {
                Some((0, text)) => Ok(OsStr::from_bytes(text).to_os_string()),
                _ => Err(RequestError::Truncated),
            });
        let mut take = |n: usize| -> Result<Vec<OsString>, RequestError> {
            (0..n)
                .map(|_| strings.next().unwrap_or(Err(RequestError::Truncated)))
                .collect()
        };
        let argv = take(argc)?;
        let env = take(envc)?;
        let workdir = take(1)?.remove(0).into();
        if argv.is_empty() {
            return Err(RequestError::NoCommand);
        }
        Ok(SpawnRequest {
            namespace: header[0] != 0,
            argv,
            env,
            workdir,
        })
    }
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
    map_own_ids(uid, gid)
}

/// In a new user namespace: map the ids we had outside to themselves.
fn map_own_ids(uid: Uid, gid: Gid) -> nix::Result<()> {
    let write = |path: &str, content: String| {
        std::fs::write(path, content)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EPERM)))
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

/// The spawner's loop: one request in, one process started, its pid (or
/// `-errno`) back; it ends when the supervisor closes its end.
fn run_spawner(socket: OwnedFd, lifeline: OwnedFd) -> ! {
    let blocked = forwarded_and_child_signals();
    if let Err(errno) = blocked.thread_block() {
        fail(&format!("cannot block signals: {errno}"));
    }
    set_name(c"locald-spawner");
    let identity = (getuid(), getgid());
    // Learnt at the first start: whether a user namespace is needed too.
    let mut needs_user_namespace = false;
    let mut buffer = vec![0u8; MAX_REQUEST];
    loop {
        let received = match receive(socket.as_fd(), &mut buffer) {
            Ok(Some(received)) => Ok(received),
            Ok(None) => std::process::exit(0),
            Err(Errno::EINTR) => continue,
            // Too large for the buffer: refuse this one, serve the next.
            Err(Errno::EMSGSIZE) => Err(Errno::EMSGSIZE),
            Err(errno) => fail(&format!("cannot read a request: {errno}")),
        };
        let (decoded, fds) = match received {
            Ok((length, fds)) => (
                SpawnRequest::decode(&buffer[..length]).map_err(|_| libc::EINVAL),
                fds,
            ),
            Err(errno) => (Err(errno as i32), Vec::new()),
        };
        let reply = match decoded {
            Err(errno) => -i64::from(errno),
            Ok(request) => {
                let start = Start {
                    request: &request,
                    fds: &fds,
                    socket: socket.as_raw_fd(),
                    lifeline: lifeline.as_raw_fd(),
                    blocked: &blocked,
                };
                match start.spawn(&mut needs_user_namespace, identity) {
                    Ok(pid) => i64::from(pid.as_raw()),
                    Err(errno) => -i64::from(errno as i32),
                }
            }
        };
        drop(fds);
        let reply = reply.to_ne_bytes();
        if let Err(errno) = sendmsg::<()>(
            socket.as_raw_fd(),
            &[std::io::IoSlice::new(&reply)],
            &[],
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            fail(&format!("cannot answer the supervisor: {errno}"));
        }
    }
}

/// One request and its descriptors; `None` at end of file.
fn receive(
    socket: BorrowedFd<'_>,
    buffer: &mut [u8],
) -> nix::Result<Option<(usize, Vec<OwnedFd>)>> {
    let mut space = nix::cmsg_space!([RawFd; MAX_REQUEST_FDS]);
    let mut iov = [IoSliceMut::new(buffer)];
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for control in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = control {
            // SAFETY: the kernel just installed these descriptors for us.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if message.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    if message
        .flags
        .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC)
    {
        return Err(Errno::EMSGSIZE);
    }
    Ok(Some((message.bytes, fds)))
}

/// What one start needs in the clone.
struct Start<'a> {
    request: &'a SpawnRequest,
    /// stdout, stderr, then the descriptors the command inherits.
    fds: &'a [OwnedFd],
    socket: RawFd,
    lifeline: RawFd,
    blocked: &'a SigSet,
}

impl Start<'_> {
    /// Clone this process as a child of the supervisor (in a new PID
    /// namespace when asked); the pid, as the supervisor sees it.
    fn spawn(&self, needs_user_namespace: &mut bool, (uid, gid): (Uid, Gid)) -> nix::Result<Pid> {
        if self.fds.len() < 2 {
            return Err(Errno::EINVAL);
        }
        let mut flags = libc::CLONE_PARENT;
        if self.request.namespace {
            flags |= libc::CLONE_NEWPID;
        }
        loop {
            let user = flags & libc::CLONE_NEWPID != 0 && *needs_user_namespace;
            let all = flags | if user { libc::CLONE_NEWUSER } else { 0 };
            // SAFETY: a plain fork-like clone (no new stack: the child goes
            // on with a copy of ours) of this single-threaded process.
            let pid = unsafe { libc::syscall(libc::SYS_clone, all | libc::SIGCHLD, 0, 0, 0, 0) };
            match pid {
                0 => self.in_clone(flags & libc::CLONE_NEWPID != 0, user.then_some((uid, gid))),
                -1 => match Errno::last() {
                    Errno::EPERM if self.request.namespace && !*needs_user_namespace => {
                        *needs_user_namespace = true;
                    }
                    // The probe passed, but this clone is denied (a namespace
                    // limit reached, a sandbox deciding per process): run
                    // unprotected rather than not at all, and say so.
                    errno if flags & libc::CLONE_NEWPID != 0 => {
                        eprintln!(
                            "locald: cannot create a PID namespace ({errno}); \
                             running {:?} without it",
                            self.request.argv
                        );
                        flags &= !libc::CLONE_NEWPID;
                        *needs_user_namespace = false;
                    }
                    errno => return Err(errno),
                },
                pid => return Ok(Pid::from_raw(pid as i32)),
            }
        }
    }

    /// The cloned process: arm PDEATHSIG, then run the command (under this
    /// process as init when in a namespace).
    fn in_clone(&self, in_namespace: bool, map_ids: Option<(Uid, Gid)>) -> ! {
        // SAFETY: the spawner's socket is not ours to keep: a spawner that
        // died must look dead to the supervisor.
        unsafe { libc::close(self.socket) };
        // Our own group: the supervisor signals it (and sets it too, so
        // it exists as soon as it has our pid).
        let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
        // SAFETY: plain prctl with constant arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        set_name(c"locald-init");
        // SAFETY: the lifeline stays open in this process until closed here.
        let lifeline = unsafe { BorrowedFd::borrow_raw(self.lifeline) };
        let mut fds = [PollFd::new(lifeline, PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) > 0 {
            // The supervisor died before PDEATHSIG was armed.
            // SAFETY: exiting a clone without running destructors.
            unsafe { libc::_exit(EXIT_CANNOT_RUN) };
        }
        // SAFETY: as above; not used again.
        unsafe { libc::close(self.lifeline) };
        if let Some((uid, gid)) = map_ids {
            if let Err(errno) = map_own_ids(uid, gid) {
                fail(&format!("cannot map ids in the user namespace: {errno}"));
            }
        }
        if !in_namespace {
            self.exec_command()
        }
        self.run_init()
    }

    /// PID 1 of the namespace: start the command in its own process group,
    /// forward signals to that group, reap every orphan, and exit with the
    /// command's status (which makes the kernel kill whatever is left).
    fn run_init(&self) -> ! {
        // SAFETY: this process is single-threaded.
        let command = match unsafe { fork() } {
            Err(errno) => fail(&format!("cannot fork: {errno}")),
            Ok(ForkResult::Child) => {
                let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
                self.exec_command()
            }
            Ok(ForkResult::Parent { child }) => child,
        };
        // Set it from this side too: a signal may come before the child runs.
        let _ = setpgid(command, command);
        // The init keeps no end of the service's pipes: they end with the command's processes.
        for fd in self.fds {
            // SAFETY: closing our copies; the spawner owns its own.
            unsafe { libc::close(fd.as_raw_fd()) };
        }
        forward_until_exit(self.blocked, command, |signal| {
            if kill(Pid::from_raw(-command.as_raw()), signal).is_err() {
                let _ = kill(command, signal);
            }
        })
    }

    /// Replace this process with the command: stdin from /dev/null, the
    /// pipes as stdout/stderr, the inherited descriptors kept, the request's
    /// directory and environment, the default signal mask and SIGPIPE.
    fn exec_command(&self) -> ! {
        let (stdout, stderr, inherited) = (&self.fds[0], &self.fds[1], &self.fds[2..]);
        // SAFETY: plain descriptor calls in a single-threaded process about to exec.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            if null < 0
                || libc::dup2(null, 0) < 0
                || libc::dup2(stdout.as_raw_fd(), 1) < 0
                || libc::dup2(stderr.as_raw_fd(), 2) < 0
            {
                libc::_exit(EXIT_CANNOT_RUN);
            }
            for fd in inherited {
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0);
            }
        }
        let request = self.request;
        if let Err(error) = std::env::set_current_dir(&request.workdir) {
            fail(&format!(
                "cannot enter {}: {error}",
                request.workdir.display()
            ));
        }
        let c_strings = |list: &[OsString]| -> Vec<CString> {
            list.iter()
                .filter_map(|arg| CString::new(arg.as_bytes()).ok())
                .collect()
        };
        let (argv, env) = (c_strings(&request.argv), c_strings(&request.env));
        // `execvpe` looks the program up in *our* PATH: make it the command's.
        let path = request
            .env
            .iter()
            .find_map(|entry| entry.as_bytes().strip_prefix(b"PATH="))
            .and_then(|path| CString::new(path).ok());
        // SAFETY: single-threaded, about to exec.
        unsafe {
            match &path {
                Some(path) => libc::setenv(c"PATH".as_ptr(), path.as_ptr(), 1),
                None => libc::unsetenv(c"PATH".as_ptr()),
            };
        }
        // Rust's runtime ignores SIGPIPE, and an ignored signal stays ignored
        // across exec: give the command the default, as a shell would.
        // SAFETY: setting a disposition to its default.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        let _ =
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
        let errno = match nix::unistd::execvpe(&argv[0], &argv, &env) {
            Err(errno) => errno,
            Ok(never) => match never {},
        };
        fail(&format!("cannot run {:?}: {errno}", request.argv[0]))
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

/// The name `ps` and `top` show (every init otherwise shows the spawner's command line).
fn set_name(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (cut at 15 bytes).
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
}

fn fail(message: &str) -> ! {
    eprintln!("locald __service-init: {message}");
    std::process::exit(EXIT_CANNOT_RUN)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn args_are_a_probe_or_a_spawner() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(matches!(
            parse_args(args(&["locald", "__service-init", "--spawner", "5", "6"])).unwrap(),
            Invocation::Spawner {
                socket: 5,
                lifeline: 6
            }
        ));
        assert!(matches!(
            parse_args(args(&["--probe"])).unwrap(),
            Invocation::Probe
        ));
        assert!(matches!(
            parse_args(args(&["--spawner", "5"])),
            Err(InitArgsError::Usage)
        ));
        assert!(matches!(
            parse_args(args(&["--spawner", "x", "6"])),
            Err(InitArgsError::Unexpected(arg)) if arg == "x"
        ));
        assert!(matches!(
            parse_args(args(&["--bogus"])),
            Err(InitArgsError::Unexpected(arg)) if arg == "--bogus"
        ));
    }

    #[test]
    fn requests_round_trip_and_bad_ones_are_refused() {
        let request = SpawnRequest {
            namespace: true,
            argv: vec!["sh".into(), "-c".into(), "echo é; exit 3".into(), "".into()],
            env: vec!["PATH=/bin".into(), "EMPTY=".into()],
            workdir: "/tmp/a dir".into(),
        };
        let bytes = request.encode().unwrap();
        assert_eq!(SpawnRequest::decode(&bytes).unwrap(), request);
        for cut in [0, 5, 9, bytes.len() - 1] {
            assert_eq!(
                SpawnRequest::decode(&bytes[..cut]),
                Err(RequestError::Truncated),
                "cut at {cut}"
            );
        }
        let no_command = SpawnRequest {
            argv: vec![],
            ..request.clone()
        };
        assert_eq!(
            SpawnRequest::decode(&no_command.encode().unwrap()),
            Err(RequestError::NoCommand)
        );
        let huge = SpawnRequest {
            env: vec![OsString::from(format!("X={}", "x".repeat(MAX_REQUEST)))],
            ..request
        };
        assert_eq!(huge.encode(), Err(RequestError::TooLarge));
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
