//! `locald-shim exec`: run a command in a running container, as `runc exec` does: it joins the
//! namespaces of the container's init (user first when the container has its own, then mount,
//! PID, UTS, IPC, cgroup and network when they differ from the shim's), so it sees the
//! container's root, processes and hostname; it runs with the spec's environment (plus
//! `--env`), working directory and user (or `--user`), and is confined as the container's init
//! is: the spec's capabilities, `noNewPrivileges` and seccomp filter. Being in the container's
//! PID namespace, it is killed with the container's init: it never outlives the container.
//!
//! Why not libcontainer's tenant builder: it reads the container's state from libcontainer's
//! state directory, which the `run` shim keeps in its private mount namespace, and that state
//! records the init's pid as seen from the service init's PID namespace, not the host's (issue
//! 3's notes). Joining the namespaces of the init's host pid, which the caller finds, needs
//! neither, and applies the same confinement from the same spec.
//!
//! The shim forks the command after joining (a PID namespace applies to children only),
//! forwards the signals it gets to it, and exits with its status (128+N for signal N; 127 when
//! the command is not found, 126 when it cannot run, 125 when the shim fails).

use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::Spec;
use locald_shim_protocol::args::ExecArgs;
use locald_shim_protocol::exit::signal_exit_code;
use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Gid, Pid, Uid};

/// The namespaces joined, in order: the user namespace first, so that the others may be joined
/// with its capabilities.
const NAMESPACES: [(&str, CloneFlags); 7] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("net", CloneFlags::CLONE_NEWNET),
];

/// Signals passed on to the command; Ctrl-C and Ctrl-\ reach it from the terminal itself.
const FORWARDED: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Who the command runs as.
struct Account {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
}

pub fn exec(args: &ExecArgs) -> Result<i32> {
    // Dies with its caller (`locald exec`), and the command with it (below).
    // SAFETY: a plain prctl on this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let spec = Spec::load(args.bundle.join("config.json"))
        .context("loading the container's config.json")?;
    let process = spec
        .process()
        .as_ref()
        .context("the container's spec has no process")?;
    // Compiled (or read from the cache) before joining anything: the cache is on the host.
    let filter = crate::seccomp::for_exec(&spec, args.seccomp_cache.as_deref())?;
    let env = environment(process.env().as_deref().unwrap_or_default(), &args.env);
    let cwd = args.cwd.clone().unwrap_or_else(|| process.cwd().clone());
    let argv: Vec<CString> = args
        .command
        .iter()
        .map(|arg| CString::new(arg.clone().into_vec()))
        .collect::<Result<_, _>>()
        .context("a command word holds a NUL byte")?;
    join(args.pid)?;
    // In the container's mount namespace now: its /etc/passwd names its users.
    let account = match &args.user {
        Some(user) => account_named(user)?,
        None => Account {
            uid: Uid::from_raw(process.user().uid()),
            gid: Gid::from_raw(process.user().gid()),
            groups: process
                .user()
                .additional_gids()
                .iter()
                .flatten()
                .map(|gid| Gid::from_raw(*gid))
                .collect(),
        },
    };
    let mut signals = SigSet::empty();
    for signal in FORWARDED {
        signals.add(signal);
    }
    signals.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)?;
    // SAFETY: the shim is single-threaded: the child may do anything before its exec.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let code = match run_command(&spec, &account, &cwd, &env, &argv, &signals, filter) {
                Ok(never) => match never {},
                Err(Failure { code, message }) => {
                    eprintln!("locald-shim: {message}");
                    code
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => follow(child, &signals),
    }
}

/// The spec's `KEY=VALUE`s with `overrides` over them, in the spec's order then the new keys.
fn environment(spec: &[String], overrides: &[String]) -> Vec<CString> {
    let mut order: Vec<String> = Vec::new();
    let mut values: HashMap<String, String> = HashMap::new();
    for pair in spec.iter().chain(overrides) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if values.insert(key.to_string(), value.to_string()).is_none() {
            order.push(key.to_string());
        }
    }
    order
        .into_iter()
        .filter_map(|key| CString::new(format!("{key}={}", values[&key])).ok())
        .collect()
}

/// Join the namespaces of `pid` that differ from ours.
fn join(pid: i32) -> Result<()> {
    let mut joined = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = File::open(format!("/proc/{pid}/ns/{name}"))
            .with_context(|| format!("the container's init (pid {pid}) is gone"))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))?;
        let their_meta = theirs.metadata()?;
        if their_meta.ino() != ours.ino() || their_meta.dev() != ours.dev() {
            joined.push((name, flag, theirs));
        }
    }
    if !joined.iter().any(|(name, _, _)| *name == "pid") {
        bail!("process {pid} is not a container's init (it shares our PID namespace)");
    }
    for (name, flag, file) in joined {
        setns(file.as_fd(), flag)
            .with_context(|| format!("joining the container's {name} namespace"))?;
    }
    Ok(())
}

/// `NAME` from the container's `/etc/passwd`, or `UID[:GID]`.
fn account_named(user: &str) -> Result<Account> {
    let (name, group) = match user.split_once(':') {
        Some((name, group)) => (name, Some(group)),
        None => (user, None),
    };
    let numeric = |text: &str| text.parse::<u32>().ok();
    let (uid, mut gid) = match numeric(name) {
        Some(uid) => (uid, 0),
        None => {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            passwd
                .lines()
                .map(|line| line.split(':').collect::<Vec<_>>())
                .find(|fields| fields.len() > 3 && fields[0] == name)
                .and_then(|fields| Some((numeric(fields[2])?, numeric(fields[3])?)))
                .with_context(|| format!("no user `{name}` in the container's /etc/passwd"))?
        }
    };
    if let Some(group) = group {
        gid = numeric(group).with_context(|| format!("group `{group}`: expected a number"))?;
    }
    Ok(Account {
        uid: Uid::from_raw(uid),
        gid: Gid::from_raw(gid),
        groups: Vec::new(),
    })
}

/// Whether this process's user namespace forbids `setgroups` (`/proc/self/setgroups` says
/// `deny`).
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|text| text.trim() == "deny")
}

/// Why the command did not start: the exit code and what to say.
struct Failure {
    code: i32,
    message: String,
}

fn failed(context: &str) -> impl FnOnce(Errno) -> Failure + '_ {
    move |errno| Failure {
        code: 125,
        message: format!("{context}: {errno}"),
    }
}

/// In the forked child: the container's confinement, then the command.
fn run_command(
    spec: &Spec,
    account: &Account,
    cwd: &Path,
    env: &[CString],
    argv: &[CString],
    signals: &SigSet,
    filter: Option<crate::seccomp::BpfProgram>,
) -> std::result::Result<std::convert::Infallible, Failure> {
    // SAFETY: a plain prctl on this process: it dies with the shim.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let process = spec.process().as_ref().expect("checked by the caller");
    // In a rootless container's user namespace setgroups is denied (it had to be before its gid
    // map could be written): its processes keep the groups they came with, as its init did. Only
    // asking for groups there is an error.
    if !(account.groups.is_empty() && setgroups_denied()) {
        nix::unistd::setgroups(&account.groups).map_err(failed("setting the groups"))?;
    }
    nix::unistd::setresgid(account.gid, account.gid, account.gid)
        .map_err(failed("setting the group"))?;
    // Keep the capabilities across the change of user; the spec's set is applied next.
    // SAFETY: plain prctls on this process.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    nix::unistd::setresuid(account.uid, account.uid, account.uid)
        .map_err(failed("setting the user"))?;
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    let syscall = libcontainer::syscall::syscall::create_syscall();
    // A change away from uid 0 clears the effective set, which the drop
    // below needs (CAP_SETPCAP): back to the permitted set first, as
    // libcontainer does for a container's init.
    libcontainer::capabilities::reset_effective(syscall.as_ref()).map_err(|error| Failure {
        code: 125,
        message: format!("restoring the capabilities: {error}"),
    })?;
    std::env::set_current_dir(cwd).map_err(|error| Failure {
        code: 125,
        message: format!("working directory {}: {error}", cwd.display()),
    })?;
    let no_new_privileges = process.no_new_privileges().unwrap_or(false);
    // Without noNewPrivileges the filter needs CAP_SYS_ADMIN: loaded before the drop.
    if let (Some(filter), false) = (&filter, no_new_privileges) {
        filter.install().map_err(|error| Failure {
            code: 125,
            message: format!("installing the seccomp filter: {error}"),
        })?;
    }
    if let Some(capabilities) = process.capabilities() {
        libcontainer::capabilities::drop_privileges(capabilities, syscall.as_ref()).map_err(
            |error| Failure {
                code: 125,
                message: format!("setting the capabilities: {error}"),
            },
        )?;
    }
    if no_new_privileges {
        // SAFETY: a plain prctl on this process.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(failed("setting no_new_privs")(Errno::last()));
        }
        if let Some(filter) = &filter {
            filter.install().map_err(|error| Failure {
                code: 125,
                message: format!("installing the seccomp filter: {error}"),
            })?;
        }
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(signals), None);
    let errno = match find_in_path(&argv[0], env) {
        Some(program) => match nix::unistd::execve(&program, argv, env) {
            Err(errno) => errno,
            Ok(never) => match never {},
        },
        None => Errno::ENOENT,
    };
    let name = argv[0].to_string_lossy();
    Err(match errno {
        Errno::ENOENT => Failure {
            code: 127,
            message: format!("{name}: command not found in the container"),
        },
        errno => Failure {
            code: 126,
            message: format!("{name}: {}", errno.desc().to_lowercase()),
        },
    })
}

/// `program` as the container's `PATH` (from `env`) finds it; a name with a slash as it is.
fn find_in_path(program: &CString, env: &[CString]) -> Option<CString> {
    let bytes = program.as_bytes();
    if bytes.contains(&b'/') {
        return Some(program.clone());
    }
    let path = env
        .iter()
        .find_map(|pair| pair.to_str().ok()?.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|dir| PathBuf::from(dir).join(OsString::from_vec(bytes.to_vec())))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.mode() & 0o111 != 0)
        })
        .and_then(|found| CString::new(found.into_os_string().into_vec()).ok())
}

/// Pass signals on to the command until it exits; its exit code.
fn follow(child: Pid, signals: &SigSet) -> Result<i32> {
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(signal_exit_code(signal as i32)),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno).context("waiting for the command"),
        }
        match signals.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(signal) => {
                let _ = kill(child, signal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_the_spec_environment_in_place() {
        let env = environment(
            &["PATH=/bin".into(), "A=1".into(), "B=2".into()],
            &["A=changed".into(), "C=new".into()],
        );
        let env: Vec<&str> = env.iter().map(|pair| pair.to_str().unwrap()).collect();
        assert_eq!(env, ["PATH=/bin", "A=changed", "B=2", "C=new"]);
    }
}
