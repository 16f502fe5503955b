//! Launching a service process: the supervisor's spawner (see
//! [`super::init`]) clones a tiny init per service, PID 1 of its own PID
//! namespace and a child of the supervisor, in its own process group with
//! `PR_SET_PDEATHSIG(SIGKILL)`, so it dies with the supervisor. Stopping
//! signals that process group; the exit status is read through a pidfd.
//!
//! PDEATHSIG fires when the *thread* that forked the child exits, so services
//! must be spawned from a thread that lives as long as the supervisor: the
//! supervisor runs on a current-thread runtime on the thread that called it,
//! and each thread that launches services has its own spawner.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{
    recv, sendmsg, setsockopt, socketpair, sockopt, AddressFamily, ControlMessage, MsgFlags,
    SockFlag, SockType,
};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use super::init::SpawnRequest;
use crate::program::Program;

/// What to spawn: the service's argv, environment (complete: nothing is
/// inherited) and working directory. For a host service the argv is
/// `sh -c COMMAND`; for a container service it is the shim's.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub argv: Vec<OsString>,
    pub env: BTreeMap<String, String>,
    pub workdir: PathBuf,
    /// Descriptors the launched process inherits (a container's image
    /// lease, kept by its shim for the container's life); open until the
    /// spawn.
    pub inherited: Vec<std::os::fd::RawFd>,
    /// Whether it runs as the PID 1 of a namespace of its own (every service
    /// process, where PID namespaces are available), or as a plain child in
    /// its own process group, for what cleans up after itself and must see
    /// the host's ids and `/proc` (a build: see `service/building.rs`).
    pub pid_namespace: bool,
}

/// How to invoke the `__service-init` entry: the running binary (`locald`,
/// or the unit-test binary, which serves it too).
#[derive(Debug, Clone)]
pub struct InitProgram {
    pub program: PathBuf,
    pub leading_args: Vec<OsString>,
}

impl InitProgram {
    fn current() -> io::Result<InitProgram> {
        let program = std::env::current_exe()?;
        // In unit tests the test binary serves the same entry (see the
        // `.init_array` hook in `init`'s tests).
        let leading_args = vec![OsString::from("__service-init")];
        Ok(InitProgram {
            program,
            leading_args,
        })
    }

    fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command.args(&self.leading_args);
        command
    }
}

fn init_program() -> io::Result<&'static InitProgram> {
    static PROGRAM: OnceLock<InitProgram> = OnceLock::new();
    if let Some(program) = PROGRAM.get() {
        return Ok(program);
    }
    let program = InitProgram::current()?;
    Ok(PROGRAM.get_or_init(|| program))
}

/// Whether services get a PID namespace here; probed once per supervisor,
/// with a warning when they cannot.
pub fn pid_namespaces_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let probed = init_program().and_then(|init| {
            init.command()
                .arg("--probe")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
        });
        let available = matches!(probed, Ok(status) if status.success());
        if !available {
            tracing::warn!(
                "PID namespaces are unavailable: services run in their own process group with \
                 PDEATHSIG only, so a process that leaves its group can outlive the supervisor"
            );
        }
        available
    })
}

/// A running service process (its init), a child of the supervisor.
pub struct ServiceProcess {
    pid: u32,
    /// Readable once the process has exited.
    pidfd: AsyncFd<OwnedFd>,
    status: Option<ExitStatus>,
    pub stdout: Option<pipe::Receiver>,
    pub stderr: Option<pipe::Receiver>,
}

impl ServiceProcess {
    /// The pid (also its process group), until it has been waited for.
    pub fn id(&self) -> Option<u32> {
        self.status.is_none().then_some(self.pid)
    }

    /// Wait for the process to exit and reap it (cancel-safe).
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            let mut ready = self.pidfd.readable().await?;
            let mut raw = 0;
            // SAFETY: waiting for our own child; `raw` is a valid out-pointer.
            match unsafe { libc::waitpid(self.pid as i32, &mut raw, libc::WNOHANG) } {
                0 => ready.clear_ready(),
                -1 => return Err(io::Error::last_os_error()),
                _ => self.status = Some(ExitStatus::from_raw(raw)),
            }
        }
    }
}

/// Why a service could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot start the service spawner: {0}")]
    Spawner(#[source] io::Error),
    #[error(transparent)]
    Request(#[from] super::init::RequestError),
    #[error("{0}")]
    Spawn(#[source] io::Error),
}

/// The process that clones every service's init (see [`super::init`]):
/// one per launching thread, started at the first launch.
struct Spawner {
    socket: Option<OwnedFd>,
    /// The only write end of the pipe whose hang-up tells a new init that
    /// the supervisor died before the init armed its PDEATHSIG.
    _lifeline: OwnedFd,
    process: std::process::Child,
}

thread_local! {
    static SPAWNER: RefCell<Option<Spawner>> = const { RefCell::new(None) };
}

/// How long a spawner may take to answer one request (a clone: microseconds).
const SPAWNER_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Spawner {
    fn start() -> io::Result<Spawner> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        setsockopt(
            &ours,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(SPAWNER_ANSWER_TIMEOUT.as_secs() as _, 0),
        )?;
        let (lifeline_read, lifeline_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let init = init_program()?;
        let mut command = init.command();
        command
            .arg("--spawner")
            .arg(theirs.as_raw_fd().to_string())
            .arg(lifeline_read.as_raw_fd().to_string())
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        die_with_supervisor(&mut command);
        locald_runtime::inherit(
            &mut command,
            &[theirs.as_raw_fd(), lifeline_read.as_raw_fd()],
        );
        let process = command.spawn()?;
        Ok(Spawner {
            socket: Some(ours),
            _lifeline: lifeline_write,
            process,
        })
    }

    /// Send one request; the new process's pid.
    fn spawn(&self, request: &[u8], fds: &[RawFd]) -> Result<Pid, SpawnFailure> {
        let socket = self.socket.as_ref().ok_or(SpawnFailure::Gone)?;
        let rights = [ControlMessage::ScmRights(fds)];
        sendmsg::<()>(
            socket.as_raw_fd(),
            &[io::IoSlice::new(request)],
            &rights,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|errno| match errno {
            Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN => SpawnFailure::Gone,
            errno => SpawnFailure::Failed(errno.into()),
        })?;
        // From here the request may have been carried out: never resent.
        let mut reply = [0u8; 8];
        let length = recv(socket.as_raw_fd(), &mut reply, MsgFlags::empty())
            .map_err(|errno| SpawnFailure::Failed(errno.into()))?;
        if length != reply.len() {
            return Err(SpawnFailure::Failed(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the service spawner exited",
            )));
        }
        match i64::from_ne_bytes(reply) {
            pid if pid > 0 => Ok(Pid::from_raw(pid as i32)),
            errno => Err(SpawnFailure::Refused(io::Error::from_raw_os_error(
                -errno as i32,
            ))),
        }
    }
}

/// How a request to the spawner failed.
enum SpawnFailure {
    /// The spawner is gone and the request was not sent: start a new one.
    Gone,
    /// The spawner could not start the process (the clone failed).
    Refused(io::Error),
    /// The spawner did not answer: replace it for the next request.
    Failed(io::Error),
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // Closing our end ends its loop; kill it anyway, as it may be stuck
        // (the inits it made are our children, not its), then reap it.
        drop(self.socket.take());
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Ask this thread's spawner (started, or restarted if it died) to start `request`.
fn spawn_with_spawner(request: &[u8], fds: &[RawFd]) -> Result<Pid, LaunchError> {
    SPAWNER.with(|cell| {
        let mut spawner = cell.borrow_mut();
        let mut restarted = false;
        loop {
            let current = match spawner.as_ref() {
                Some(current) => current,
                None => spawner.insert(Spawner::start().map_err(LaunchError::Spawner)?),
            };
            match current.spawn(request, fds) {
                Ok(pid) => return Ok(pid),
                Err(SpawnFailure::Refused(error)) => return Err(LaunchError::Spawn(error)),
                Err(SpawnFailure::Gone) if !restarted => {
                    tracing::warn!("the service spawner is gone; starting a new one");
                    restarted = true;
                    *spawner = None;
                }
                Err(SpawnFailure::Gone) => {
                    *spawner = None;
                    return Err(LaunchError::Spawner(io::ErrorKind::BrokenPipe.into()));
                }
                Err(SpawnFailure::Failed(error)) => {
                    *spawner = None;
                    return Err(LaunchError::Spawner(error));
                }
            }
        }
    })
}

/// Spawn a service: stdin from /dev/null, stdout and stderr piped.
pub fn launch(spec: &LaunchSpec) -> Result<ServiceProcess, LaunchError> {
    let request = SpawnRequest {
        namespace: spec.pid_namespace && pid_namespaces_available(),
        argv: spec.argv.clone(),
        env: spec
            .env
            .iter()
            .map(|(name, value)| OsString::from(format!("{name}={value}")))
            .collect(),
        workdir: spec.workdir.clone(),
    }
    .encode()?;
    let (stdout_read, stdout_write) = pipe_pair().map_err(LaunchError::Spawn)?;
    let (stderr_read, stderr_write) = pipe_pair().map_err(LaunchError::Spawn)?;
    let mut fds = vec![stdout_write.as_raw_fd(), stderr_write.as_raw_fd()];
    fds.extend(&spec.inherited);
    let pid = spawn_with_spawner(&request, &fds)?;
    // Ours only from here: the service holds its own copies.
    drop((stdout_write, stderr_write));
    // The init sets its group too; whichever comes first, it exists now.
    let _ = nix::unistd::setpgid(pid, pid);
    let tracked = (|| -> io::Result<ServiceProcess> {
        let pidfd = pidfd_open(pid)?;
        Ok(ServiceProcess {
            pid: pid.as_raw() as u32,
            // SAFETY: an owned descriptor, open for as long as the `AsyncFd` holds it.
            pidfd: unsafe { AsyncFd::register(pidfd) }.map_err(io::Error::from)?,
            status: None,
            stdout: Some(pipe::Receiver::from_owned_fd(stdout_read)?),
            stderr: Some(pipe::Receiver::from_owned_fd(stderr_read)?),
        })
    })();
    tracked.map_err(|error| {
        // Started but not followable: it must not run untracked.
        let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        LaunchError::Spawn(error)
    })
}

fn pipe_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

/// A descriptor that becomes readable when our child `pid` exits (it
/// cannot be reused meanwhile: only we reap it).
fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: a plain system call; the result is a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// In the child before exec: a process group of its own (so terminal Ctrl-C
/// reaches only the supervisor, which stops services in order) and SIGKILL
/// when the spawning thread dies.
pub fn die_with_supervisor(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let supervisor = std::process::id();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The supervisor died before PDEATHSIG was armed.
            if libc::getppid() as u32 != supervisor {
                // No allocation between fork and exec: a plain errno.
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Send `signal` (a raw number, as in the config) to a process group.
pub fn signal_group(group: u32, signal: i32) -> io::Result<()> {
    let signal = Signal::try_from(signal).map_err(io::Error::from)?;
    let group = i32::try_from(group).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    match kill(Pid::from_raw(-group), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(io::Error::from(errno)),
    }
}

/// The argv of a program, as the launch takes it.
pub fn program_argv(program: &Program) -> Vec<OsString> {
    program.argv().into_iter().map(OsString::from).collect()
}

pub use locald_shim_protocol::exit::exit_code;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use tokio::io::AsyncReadExt;

    fn spec(command: &str) -> LaunchSpec {
        LaunchSpec {
            argv: program_argv(&Program::Shell(command.into())),
            env: BTreeMap::from([(
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            )]),
            workdir: std::env::temp_dir(),
            inherited: Vec::new(),
            pid_namespace: true,
        }
    }

    fn alive(pid: i32) -> bool {
        // A zombie counts as gone: it runs nothing.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat.rsplit(") ").next().unwrap_or("").starts_with('Z'),
            Err(_) => false,
        }
    }

    fn wait_gone(pid: i32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if !alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn output_and_exit_code_come_through() {
        runtime().block_on(async {
            let mut child = launch(&spec("echo out; echo err >&2; exit 7")).unwrap();
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .await
                .unwrap();
            let status = child.wait().await.unwrap();
            assert!(out.ends_with("out\n"), "{out:?}");
            assert_eq!(exit_code(status), 7);
        });
    }

    #[test]
    fn stopping_the_group_kills_escaped_grandchildren() {
        runtime().block_on(async {
            // `setsid` moves the grandchild out of the process group: only the
            // PID namespace can still catch it.
            let mut child = launch(&spec("setsid sleep 300 & wait")).unwrap();
            let group = child.id().unwrap();
            let sleeper = find_descendant(group as i32, "sleep").expect("sleep runs");
            signal_group(group, libc::SIGTERM).unwrap();
            let status = child.wait().await.unwrap();
            assert_eq!(exit_code(status), 128 + libc::SIGTERM);
            assert!(wait_gone(sleeper), "grandchild {sleeper} survived");
        });
    }

    #[test]
    fn supervisor_death_kills_everything() {
        // A stand-in supervisor thread: PDEATHSIG follows the spawning thread.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            runtime().block_on(async {
                let mut child = launch(&spec("sleep 300 & sleep 300")).unwrap();
                let group = child.id().unwrap();
                let sleeper = loop {
                    if let Some(pid) = find_descendant(group as i32, "sleep") {
                        break pid;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                };
                sender.send((group as i32, sleeper)).unwrap();
                let _ = child.stdout.take();
                std::mem::forget(child);
            });
        })
        .join()
        .unwrap();
        let (wrapper, sleeper) = receiver.recv().unwrap();
        assert!(wait_gone(wrapper), "wrapper survived its thread");
        assert!(wait_gone(sleeper), "service survived the supervisor");
    }

    /// Any descendant of `root` whose command name is `name`.
    pub(crate) fn find_descendant(root: i32, name: &str) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let mut parents = std::collections::HashMap::new();
            let mut names = std::collections::HashMap::new();
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    continue;
                };
                let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                    continue;
                };
                let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
                names.insert(pid, stat[open + 1..close].to_string());
                parents.insert(pid, fields[1].parse::<i32>().unwrap_or(0));
            }
            for (pid, comm) in &names {
                if comm != name {
                    continue;
                }
                let mut ancestor = *pid;
                while let Some(parent) = parents.get(&ancestor) {
                    if *parent == root {
                        return Some(*pid);
                    }
                    ancestor = *parent;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}
