//! `capture_command`: runs a command with its output captured instead of
//! shown, as Tilt's `local()` or a shell's `$(…)`, and returns
//! `#{ code, stdout, stderr }`.
//!
//! Started by the same path as `run_command` ([`super::process::start`]), so
//! exit codes read alike (127/126, 128+N). What differs, and why:
//!
//! - The command runs in its own process group, off the terminal: it gets no
//!   terminal input (stdin is the `stdin` option, or /dev/null), and the
//!   whole group can be stopped at once.
//! - Each stream is bounded ([`CAPTURE_LIMIT`]): past it the group is killed
//!   and the call fails naming the limit; output is never cut silently and
//!   memory never grows without bound.
//! - A Ctrl-C (or SIGTERM/SIGHUP) reaches locald only, so it is passed on to
//!   the group, SIGKILL follows after [`INTERRUPT_GRACE`], and the script
//!   ends as interrupted (130/143) as it does after `run_command`.
//!
//! One thread does it all with `poll(2)`: the two output pipes, the input
//! pipe, and every [`LOOK`] the interrupt flag (a signal handler can only set
//! a flag, so the wait looks at it).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use locald_shim_protocol::exit::exit_code;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use rhai::{Dynamic, Map};
use serde::Deserialize;

use super::options::{self, OptionsError};
use super::process::{self, ProcessError, Started};
use crate::sandbox::interrupt;

/// The most a captured stream (stdout, stderr) may hold: 16 MiB.
pub const CAPTURE_LIMIT: usize = 16 << 20;
/// After a Ctrl-C passed on to the command, how long it has to exit before
/// SIGKILL.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(2);
/// How often the wait looks at the interrupt flag.
const LOOK: u16 = 10;
/// One read from a pipe.
const CHUNK: usize = 64 << 10;

/// Why `capture_command` failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(
        "capture_command: the command's {stream} passed {} (the most a captured stream may hold); \
         the command was stopped",
        super::container::size_text(*limit as i64)
    )]
    TooLong { stream: &'static str, limit: usize },
    #[error("capture_command: reading the command's {stream}: {source}")]
    Read {
        stream: &'static str,
        source: io::Error,
    },
    #[error("capture_command: waiting for the command: {0}")]
    Wait(#[source] io::Error),
    /// Ctrl-C (or SIGTERM/SIGHUP) during the command: it was stopped, and so
    /// is the script.
    #[error("interrupted")]
    Interrupted,
}

/// The options of `capture_command`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureOptions {
    /// Added to the environment.
    #[serde(deserialize_with = "options::env_map")]
    pub env: BTreeMap<String, String>,
    /// The working directory; the current one when not given.
    pub cwd: Option<PathBuf>,
    /// The command's input; none (/dev/null) when not given.
    pub stdin: Option<String>,
}

/// What a captured command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Captured {
    /// `#{ code, stdout, stderr }`.
    pub fn into_map(self) -> Map {
        let mut map = Map::new();
        map.insert("code".into(), Dynamic::from_int(i64::from(self.code)));
        map.insert("stdout".into(), self.stdout.into());
        map.insert("stderr".into(), self.stderr.into());
        map
    }
}

/// `capture_command(command, options)`.
pub fn capture_command(command: &Dynamic, options: Map) -> Result<Captured, CaptureError> {
    let options: CaptureOptions = options::read("capture_command", options)?;
    let cmd = process::build_command(command, options.env, options.cwd)?;
    capture(cmd, options.stdin.map(String::into_bytes), CAPTURE_LIMIT)
}

/// Runs `cmd` with `input` on its stdin, each output stream bounded by
/// `limit` bytes.
fn capture(
    mut cmd: Command,
    input: Option<Vec<u8>>,
    limit: usize,
) -> Result<Captured, CaptureError> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let child = match process::start(&mut cmd)? {
        Started::Child(child) => child,
        Started::NotRun { code, line } => {
            return Ok(Captured {
                code,
                stdout: String::new(),
                stderr: line + "\n",
            })
        }
    };
    let mut group = Group::new(child);
    let outcome = group.drive(input, limit);
    match outcome {
        Ok(Drove::Finished { stdout, stderr }) => {
            let status = group.reap().map_err(CaptureError::Wait)?;
            Ok(Captured {
                code: exit_code(status),
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            })
        }
        Ok(Drove::Interrupted) => {
            // Consumed here: the script ends by the error, and no stale
            // Ctrl-C is left for what runs next (a REPL's next entry).
            interrupt::take();
            Err(CaptureError::Interrupted)
        }
        Err(error) => Err(error),
    }
}

/// How [`Group::drive`] ended.
enum Drove {
    /// The command exited and closed its output.
    Finished { stdout: Vec<u8>, stderr: Vec<u8> },
    /// Stopped by a Ctrl-C (or SIGTERM/SIGHUP); the group is killed and
    /// reaped.
    Interrupted,
}

/// One output pipe being read.
struct Output<R> {
    pipe: Option<R>,
    bytes: Vec<u8>,
    name: &'static str,
}

impl<R: Read + AsFd> Output<R> {
    fn new(pipe: Option<R>, name: &'static str) -> Self {
        Output {
            pipe,
            bytes: Vec::new(),
            name,
        }
    }

    /// Reads what is there (the pipe is readable); closes it at its end.
    fn read(&mut self, limit: usize) -> Result<(), CaptureError> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(());
        };
        let mut chunk = vec![0u8; CHUNK];
        match pipe.read(&mut chunk) {
            Ok(0) => self.pipe = None,
            Ok(read) => {
                if self.bytes.len() + read > limit {
                    return Err(CaptureError::TooLong {
                        stream: self.name,
                        limit,
                    });
                }
                self.bytes.extend_from_slice(&chunk[..read]);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(CaptureError::Read {
                    stream: self.name,
                    source,
                })
            }
        }
        Ok(())
    }
}

/// The input still to write to the command.
struct Input {
    pipe: Option<std::process::ChildStdin>,
    bytes: Vec<u8>,
    written: usize,
}

impl Input {
    fn new(pipe: Option<std::process::ChildStdin>, bytes: Vec<u8>) -> Self {
        let mut input = Input {
            pipe,
            bytes,
            written: 0,
        };
        // Non-blocking: a write after POLLOUT takes what fits and never
        // waits for a command that stopped reading.
        if let Some(pipe) = &input.pipe {
            let flags = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_GETFL)
                .map(nix::fcntl::OFlag::from_bits_truncate);
            let set = flags.and_then(|flags| {
                nix::fcntl::fcntl(
                    pipe,
                    nix::fcntl::FcntlArg::F_SETFL(flags | nix::fcntl::OFlag::O_NONBLOCK),
                )
            });
            if set.is_err() {
                input.pipe = None;
            }
        }
        input.close_if_done();
        input
    }

    /// Writes what fits; closes the pipe once all is written (the command
    /// sees the end of its input) or when the command closed its end.
    fn write(&mut self) {
        let Some(pipe) = self.pipe.as_mut() else {
            return;
        };
        match pipe.write(&self.bytes[self.written..]) {
            Ok(written) => self.written += written,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            // EPIPE: the command does not read all of it, as with a shell's
            // `printf … | cmd`.
            Err(_) => self.pipe = None,
        }
        self.close_if_done();
    }

    fn close_if_done(&mut self) {
        if self.written >= self.bytes.len() {
            self.pipe = None;
        }
    }
}

/// The command's process group, killed (and its leader reaped) unless it
/// finished: no error path leaves it running.
struct Group {
    child: Child,
    reaped: bool,
}

impl Group {
    fn new(child: Child) -> Self {
        Group {
            child,
            reaped: false,
        }
    }

    fn pgid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Whether the leader has exited, without reaping it: while it is a
    /// zombie its pid (the group's id) cannot be reused, so signalling the
    /// group stays safe.
    fn exited(&self) -> Result<bool, CaptureError> {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(self.pgid()), flags) {
            Ok(WaitStatus::StillAlive) => Ok(false),
            Ok(_) => Ok(true),
            Err(errno) => Err(CaptureError::Wait(io::Error::from(errno))),
        }
    }

    fn signal(&self, signal: Signal) {
        // ESRCH: nobody is left in the group.
        let _ = killpg(self.pgid(), signal);
    }

    fn reap(&mut self) -> io::Result<std::process::ExitStatus> {
        let status = self.child.wait()?;
        self.reaped = true;
        Ok(status)
    }

    /// Feeds `input`, reads stdout and stderr until the command has exited
    /// and closed them, or until an interrupt or the limit stops it.
    fn drive(&mut self, input: Option<Vec<u8>>, limit: usize) -> Result<Drove, CaptureError> {
        let mut stdout = Output::new(self.child.stdout.take(), "stdout");
        let mut stderr = Output::new(self.child.stderr.take(), "stderr");
        let mut input = Input::new(self.child.stdin.take(), input.unwrap_or_default());
        loop {
            if interrupt::pending() {
                self.stop_interrupted(&mut stdout, &mut stderr);
                return Ok(Drove::Interrupted);
            }
            let mut fds = Vec::with_capacity(3);
            let mut order = Vec::with_capacity(3);
            if let Some(pipe) = &stdout.pipe {
                fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
                order.push(0);
            }
            if let Some(pipe) = &stderr.pipe {
                fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
                order.push(1);
            }
            if let Some(pipe) = &input.pipe {
                fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLOUT));
                order.push(2);
            }
            if fds.is_empty() {
                // Output closed: the command may still be running.
                if self.exited()? {
                    return Ok(Drove::Finished {
                        stdout: stdout.bytes,
                        stderr: stderr.bytes,
                    });
                }
                std::thread::sleep(Duration::from_millis(u64::from(LOOK)));
                continue;
            }
            match poll(&mut fds, PollTimeout::from(LOOK)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => return Err(CaptureError::Wait(io::Error::from(errno))),
            }
            let ready: Vec<usize> = fds
                .iter()
                .zip(&order)
                .filter(|(fd, _)| fd.revents().is_some_and(|events| !events.is_empty()))
                .map(|(_, which)| *which)
                .collect();
            drop(fds);
            for which in ready {
                match which {
                    0 => stdout.read(limit)?,
                    1 => stderr.read(limit)?,
                    _ => input.write(),
                }
            }
        }
    }

    /// Passes the signal on to the group, waits up to [`INTERRUPT_GRACE`]
    /// for the command to exit (still reading, so that a full pipe does not
    /// hold it), then kills what is left and reaps the leader.
    fn stop_interrupted<R: Read + AsFd, E: Read + AsFd>(
        &mut self,
        stdout: &mut Output<R>,
        stderr: &mut Output<E>,
    ) {
        let signal = Signal::try_from(interrupt::signal()).unwrap_or(Signal::SIGINT);
        self.signal(signal);
        let deadline = Instant::now() + INTERRUPT_GRACE;
        while Instant::now() < deadline && !self.exited().unwrap_or(true) {
            // Drained and dropped: only the command's exit matters now.
            let _ = stdout.read_ready();
            let _ = stderr.read_ready();
            stdout.bytes.clear();
            stderr.bytes.clear();
            std::thread::sleep(Duration::from_millis(u64::from(LOOK)));
        }
    }
}

impl<R: Read + AsFd> Output<R> {
    /// Reads once if something is there now, without waiting.
    fn read_ready(&mut self) -> Result<(), CaptureError> {
        let readable = match &self.pipe {
            Some(pipe) => {
                let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
                matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            }
            None => false,
        };
        if readable {
            self.read(usize::MAX)?;
        }
        Ok(())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            self.signal(Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(line: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", line]);
        cmd
    }

    #[test]
    fn captures_both_streams_and_the_exit_code() {
        let captured = capture(shell("echo out; echo err >&2; exit 3"), None, 1024).unwrap();
        assert_eq!(
            captured,
            Captured {
                code: 3,
                stdout: "out\n".into(),
                stderr: "err\n".into()
            }
        );
    }

    #[test]
    fn stdin_is_the_given_text_or_nothing() {
        let captured = capture(shell("cat; echo ."), Some(b"a\nb".to_vec()), 1024).unwrap();
        assert_eq!(captured.stdout, "a\nb.\n");
        // No input: /dev/null, so `cat` ends at once instead of waiting.
        assert_eq!(capture(shell("cat"), None, 1024).unwrap().stdout, "");
        // More input than a pipe holds, to a command that reads it all while
        // writing as much: neither side waits on the other.
        let big = vec![b'x'; 1 << 20];
        let captured = capture(shell("cat"), Some(big.clone()), 2 << 20).unwrap();
        assert_eq!(captured.stdout.len(), big.len());
        // A command that reads none of it still finishes.
        let captured = capture(shell("exit 0"), Some(big), 1024).unwrap();
        assert_eq!(captured.code, 0);
    }

    #[test]
    fn a_stream_past_the_limit_kills_the_group_and_fails() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("after");
        // A background child in the group too: it must not survive.
        let line = format!(
            "(sleep 1; touch {}) & head -c 5000 /dev/zero; sleep 30",
            marker.display()
        );
        let started = Instant::now();
        let error = capture(shell(&line), None, 4096).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            matches!(
                error,
                CaptureError::TooLong {
                    stream: "stdout",
                    limit: 4096
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "capture_command: the command's stdout passed 4.0 kB (the most a captured stream \
             may hold); the command was stopped"
        );
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!marker.exists(), "the group was killed");
        // Exactly at the limit is fine.
        let captured = capture(shell("head -c 4096 /dev/zero >&2"), None, 4096).unwrap();
        assert_eq!(captured.stderr.len(), 4096);
    }

    #[test]
    fn output_that_is_not_utf8_is_replaced() {
        let captured = capture(shell("printf 'a\\377b'"), None, 1024).unwrap();
        assert_eq!(captured.stdout, "a\u{fffd}b");
    }

    #[test]
    fn exit_codes_read_as_run_command_gives_them() {
        let captured = capture(Command::new("/nonexistent/prog"), None, 1024).unwrap();
        assert_eq!(captured.code, 127);
        assert_eq!(
            captured.stderr,
            "locald: /nonexistent/prog: no such file or directory\n"
        );
        let captured = capture(Command::new("/"), None, 1024).unwrap();
        assert_eq!(captured.code, 126);
        assert_eq!(capture(shell("kill -9 $$"), None, 1024).unwrap().code, 137);
    }

    #[test]
    fn returns_once_the_output_is_closed() {
        // As `$(…)`: a background job that keeps the output open is waited
        // for; one that closed it is not.
        let started = Instant::now();
        let captured = capture(shell("(sleep 1; echo late) & echo now"), None, 1024).unwrap();
        assert_eq!(captured.stdout, "now\nlate\n");
        assert!(started.elapsed() >= Duration::from_millis(900));
        let started = Instant::now();
        capture(shell("sleep 5 >/dev/null 2>&1 & echo now"), None, 1024).unwrap();
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
