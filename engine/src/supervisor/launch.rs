//! Launching a service process: every service runs as
//! `locald __service-init -- ARGV…` (see [`super::init`]) in its own process
//! group, with `PR_SET_PDEATHSIG(SIGKILL)` so it dies with the supervisor.
//! Stopping signals that process group.
//!
//! PDEATHSIG fires when the *thread* that forked the child exits, so services
//! must be spawned from a thread that lives as long as the supervisor: the
//! supervisor runs on a current-thread runtime on the thread that called it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

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

/// Spawn a service: stdin from /dev/null, stdout and stderr piped.
pub fn launch(spec: &LaunchSpec) -> io::Result<Child> {
    let init = init_program()?;
    let mut command = init.command();
    if !pid_namespaces_available() {
        command.arg("--no-pid-namespace");
    }
    command
        .arg("--")
        .args(&spec.argv)
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_supervisor(&mut command);
    locald_runtime::inherit(&mut command, &spec.inherited);
    Command::from(command).spawn()
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
