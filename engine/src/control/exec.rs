//! `locald exec` into a running host service: the command joins the PID
//! namespace the service's init made (and its user namespace, when the
//! supervisor runs unprivileged), with a private mount namespace whose
//! `/proc` shows that PID namespace, so `exec web -- ps` lists the service's
//! own processes. Because it is in the service's PID namespace, the kernel
//! kills it when the service's init dies: when the service stops or
//! restarts, and after a `kill -9` of the supervisor (whose death kills the
//! init), as for the service itself.
//!
//! Joining a namespace takes a single-threaded process, and a PID namespace
//! only applies to the children of the process that joined it, so the
//! command runs under a small helper: `locald __exec-in PID [--user USER]
//! -- ARGV...`, exec'd fresh by the CLI with the service's environment and
//! working directory. The helper joins the namespaces, forks the command,
//! forwards the signals it gets to it, and exits with its status (128+N
//! for signal N; 127 when it is not found and 126 when it cannot run, as
//! shells say).

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use locald_shim_protocol::exit::signal_exit_code;
use nix::errno::Errno;

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, fork, ForkResult, Pid};

/// The hidden entry of the helper.
pub const ENTRY: &str = "__exec-in";

/// Why the helper could not run the command in the service.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("usage: locald {ENTRY} PID [--user USER] -- COMMAND...")]
    Usage,
    #[error("process {pid} is gone (the service stopped meanwhile?)")]
    Gone { pid: i32 },
    #[error(
        "the service (pid {pid}) runs without a PID namespace of its own (unavailable here): \
         exec cannot join it; use `locald run`"
    )]
    NoNamespace { pid: i32 },
    #[error("cannot join the service's {what} namespace: {errno}")]
    Join { what: &'static str, errno: Errno },
    #[error("cannot mount /proc for the service's processes: {0}")]
    Proc(Errno),
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    #[error("cannot become user `{user}`: {errno}")]
    User { user: String, errno: Errno },
    #[error("{context}: {errno}")]
    Sys { context: &'static str, errno: Errno },
}

/// A running container service, as `locald exec` joins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The `locald-shim` that runs it (the same binary runs the exec).
    pub shim: std::path::PathBuf,
    /// Its run's arguments: the bundle and the seccomp cache.
    pub run: locald_shim_protocol::args::RunArgs,
    /// The host pid of the container's init.
    pub init: i32,
}

/// Why a running container could not be found under a service's init.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("no container runs under process {0} (is it starting or stopping?)")]
    NoShim(u32),
    #[error("the container of process {0} has no init yet (is it starting?)")]
    NoInit(u32),
}

/// The pids whose parent is `parent`.
fn children(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

/// The `locald-shim run` arguments of `pid`, if that is what it runs.
fn shim_run(pid: i32) -> Option<locald_shim_protocol::args::RunArgs> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<OsString> = cmdline
        .split(|byte| *byte == 0)
        .filter(|word| !word.is_empty())
        .map(|word| std::ffi::OsStr::from_bytes(word).to_os_string())
        .collect();
    let program = std::path::Path::new(words.first()?).file_name()?;
    if program != "locald-shim" {
        return None;
    }
    locald_shim_protocol::args::RunArgs::parse(words.into_iter().skip(1)).ok()
}

fn pid_namespace(pid: i32) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(format!("/proc/{pid}/ns/pid")).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The container that runs under the service init `init` (or is it, where
/// services get no PID namespace): its shim, and its init's host pid (the
/// shim's child in another PID namespace).
pub fn find_container(init: u32) -> Result<Container, FindError> {
    let init_pid = i32::try_from(init).map_err(|_| FindError::NoShim(init))?;
    let (shim_pid, run) = std::iter::once(init_pid)
        .chain(children(init_pid))
        .find_map(|pid| Some((pid, shim_run(pid)?)))
        .ok_or(FindError::NoShim(init))?;
    let shim =
        std::fs::read_link(format!("/proc/{shim_pid}/exe")).map_err(|_| FindError::NoShim(init))?;
    let shim_namespace = pid_namespace(shim_pid);
    let container_init = children(shim_pid)
        .into_iter()
        .find(|pid| pid_namespace(*pid).is_some_and(|ns| Some(ns) != shim_namespace))
        .ok_or(FindError::NoInit(init))?;
    Ok(Container {
        shim,
        run,
        init: container_init,
    })
}

/// The command that runs `exec` in `container` through its shim.
pub fn container_exec_command(
    container: &Container,
    user: Option<&str>,
    cwd: Option<&std::path::Path>,
    env: &std::collections::BTreeMap<String, String>,
    argv: &[String],
) -> Command {
    let args = locald_shim_protocol::args::ExecArgs {
        bundle: container.run.bundle.clone(),
        pid: container.init,
        seccomp_cache: container.run.seccomp_cache.clone(),
        user: user.map(str::to_string),
        cwd: cwd.map(std::path::Path::to_path_buf),
        env: env
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect(),
        command: argv.iter().map(OsString::from).collect(),
    };
    let mut command = Command::new(&container.shim);
    command.args(args.to_argv());
    command
}

/// The command that runs `argv` in the PID namespace of `pid` (a host
/// service's init): the helper, with nothing else set (the caller sets the
/// environment and the working directory, which the command inherits).
pub fn exec_command(pid: u32, user: Option<&str>, argv: &[String]) -> std::io::Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg(ENTRY).arg(pid.to_string());
    if let Some(user) = user {
        command.arg("--user").arg(user);
    }
    command.arg("--").args(argv);
    Ok(command)
}

/// The helper's entry (`args`: what follows `__exec-in`); its exit code.
pub fn exec_main(args: Vec<OsString>) -> i32 {
    match parse(args).and_then(|(pid, user, argv)| run(pid, user, argv)) {
        Ok(code) => code,
        Err(error) => {
            let line = format!("locald: exec: {error}");
            eprintln!("{}", crate::sandbox::terminal_text::for_terminal(&line));
            // Distinct from a command's own failures, as `docker exec` does.
            126
        }
    }
}

type Parsed = (i32, Option<String>, Vec<CString>);

fn parse(args: Vec<OsString>) -> Result<Parsed, ExecError> {
    let mut args = args.into_iter();
    let pid = args
        .next()
        .and_then(|pid| pid.to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid > 0)
        .ok_or(ExecError::Usage)?;
    let mut user = None;
    loop {
        match args.next() {
            Some(flag) if flag == "--user" => {
                let name = args.next().ok_or(ExecError::Usage)?;
                user = Some(name.to_string_lossy().into_owned());
            }
            Some(flag) if flag == "--" => break,
            _ => return Err(ExecError::Usage),
        }
    }
    let argv: Vec<CString> = args
        .map(|arg| CString::new(arg.as_bytes()).map_err(|_| ExecError::Usage))
        .collect::<Result<_, _>>()?;
    if argv.is_empty() {
        return Err(ExecError::Usage);
    }
    Ok((pid, user, argv))
}

/// Signals passed on to the command. Ctrl-C and Ctrl-\ reach it from the
/// terminal directly (it stays in the caller's process group): passing
/// them on as well would deliver them twice.
const FORWARDED: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

fn sys(context: &'static str) -> impl FnOnce(Errno) -> ExecError {
    move |errno| ExecError::Sys { context, errno }
}

fn run(pid: i32, user: Option<String>, argv: Vec<CString>) -> Result<i32, ExecError> {
    // Dies with the caller; the command dies with this helper (below).
    // SAFETY: a plain prctl on this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    // The account first, while this process still reads the host's files.
    let account = user
        .map(|name| {
            nix::unistd::User::from_name(&name)
                .ok()
                .flatten()
                .map(|account| (name.clone(), account))
                .ok_or(ExecError::UnknownUser(name))
        })
        .transpose()?;
    enter(pid)?;
    let mut signals = SigSet::empty();
    for signal in FORWARDED {
        signals.add(signal);
    }
    signals.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .map_err(sys("cannot block signals"))?;
    // SAFETY: single-threaded (a fresh exec of the binary): the child may
    // do anything before its exec.
    match unsafe { fork() }.map_err(sys("cannot fork"))? {
        ForkResult::Child => {
            let code = in_child(&signals, account, &argv);
            std::process::exit(code)
        }
        ForkResult::Parent { child } => follow(child, &signals),
    }
}

/// Join the user namespace of `pid` (when not ours) and its PID namespace,
/// and make a private mount namespace for a `/proc` of that PID namespace.
fn enter(pid: i32) -> Result<(), ExecError> {
    let namespace = |kind: &str| -> Result<File, ExecError> {
        File::open(format!("/proc/{pid}/ns/{kind}")).map_err(|_| ExecError::Gone { pid })
    };
    let same = |theirs: &File, kind: &str| -> bool {
        let ours = std::fs::metadata(format!("/proc/self/ns/{kind}"));
        matches!((theirs.metadata(), ours), (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev())
    };
    let (user_ns, pid_ns) = (namespace("user")?, namespace("pid")?);
    if same(&pid_ns, "pid") {
        return Err(ExecError::NoNamespace { pid });
    }
    if !same(&user_ns, "user") {
        setns(user_ns.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|errno| ExecError::Join {
            what: "user",
            errno,
        })?;
    }
    setns(pid_ns.as_fd(), CloneFlags::CLONE_NEWPID)
        .map_err(|errno| ExecError::Join { what: "PID", errno })?;
    locald_shim_protocol::mount_ns::enter_private().map_err(|errno| ExecError::Join {
        what: "mount",
        errno,
    })
}

/// In the forked command: `/proc` of its PID namespace, the user asked
/// for, the caller's signal mask back, then the command.
fn in_child(
    signals: &SigSet,
    account: Option<(String, nix::unistd::User)>,
    argv: &[CString],
) -> i32 {
    let failed = |error: ExecError| {
        let line = format!("locald: exec: {error}");
        eprintln!("{}", crate::sandbox::terminal_text::for_terminal(&line));
        126
    };
    // SAFETY: a plain prctl on this process: it dies with the helper.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    if let Err(errno) = locald_shim_protocol::mount_ns::mount_own_proc() {
        return failed(ExecError::Proc(errno));
    }
    if let Some((name, account)) = account {
        let became = nix::unistd::setgroups(&[account.gid])
            .and_then(|()| nix::unistd::setgid(account.gid))
            .and_then(|()| nix::unistd::setuid(account.uid));
        if let Err(errno) = became {
            return failed(ExecError::User { user: name, errno });
        }
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(signals), None);
    let Err(errno) = execvp(&argv[0], argv);
    // As a shell: 127 when not found, 126 when it cannot be run.
    let name = argv[0].to_string_lossy();
    let (code, reason) = match errno {
        Errno::ENOENT => (127, "command not found".to_string()),
        errno => (126, errno.desc().to_lowercase()),
    };
    let line = format!("locald: {name}: {reason}");
    eprintln!("{}", crate::sandbox::terminal_text::for_terminal(&line));
    code
}

/// Pass signals on to the command until it exits; its exit code.
fn follow(child: Pid, signals: &SigSet) -> Result<i32, ExecError> {
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(signal_exit_code(signal as i32)),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(sys("cannot wait for the command")(errno)),
        }
        match signals.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(signal) => {
                let _ = kill(child, signal);
            }
        }
    }
}
