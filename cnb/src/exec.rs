//! Running a buildpack executable (`bin/detect`, `bin/build`): the [`Executor`] trait, so
//! the engine can decide how and where it runs (as the builder's user, in the build
//! container), and [`HostExecutor`], which spawns it as a child process.
//!
//! The lifecycle hands an executor the whole environment (nothing is inherited), the
//! arguments and the working directory; the executor gives back the exit and writes the
//! executable's stdout and stderr, interleaved as they come, to the writer it is given:
//! the build log, or a [`Captured`] buffer for detect output.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One run of a buildpack executable.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

impl Invocation {
    /// The value of `key` in the environment, if set.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// How an executable ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Code(code) => Some(code),
            Exit::Signal(_) => None,
        }
    }
}

impl From<std::process::ExitStatus> for Exit {
    fn from(status: std::process::ExitStatus) -> Exit {
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Code(-1),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(signal) => write!(f, "signal {signal}"),
        }
    }
}

/// Runs buildpack executables.
pub trait Executor {
    /// Runs `invocation` to its end, its stdout and stderr written to `output`. An `Err` is
    /// an executable that could not be run at all (missing, not executable).
    fn run(&self, invocation: &Invocation, output: &mut dyn Write) -> io::Result<Exit>;
}

/// Spawns executables as child processes of this one, with no standard input.
///
/// A buildpack may leave a background process behind (a daemon it started, `cmd &`) that
/// holds its output open: the run ends when the executable itself exits, and what is
/// still written to its output is read for [`OUTPUT_AFTER_EXIT`] more (the reference
/// lifecycle gives buildpacks its own stdout and never waits for the output's end at all).
/// What is left runs on until the build container ends. Nothing limits a buildpack's time
/// or memory: that is the container's business, and Ctrl-C stops it.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostExecutor;

/// How long a buildpack's output is still read after its executable exited, while
/// something it started keeps the output open.
pub const OUTPUT_AFTER_EXIT: Duration = Duration::from_millis(500);

/// How often a run whose output is quiet checks whether the executable exited.
const EXIT_CHECK: Duration = Duration::from_millis(100);

impl Executor for HostExecutor {
    fn run(&self, invocation: &Invocation, output: &mut dyn Write) -> io::Result<Exit> {
        let (mut reader, writer) = io::pipe()?;
        let mut command = Command::new(&invocation.program);
        command
            .args(&invocation.args)
            .env_clear()
            .envs(invocation.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&invocation.cwd)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer);
        let mut child = spawn(&mut command)?;
        // The command holds the pipe's write ends until dropped: without this, the read
        // below would never see the end of the output.
        drop(command);
        let mut buffer = [0u8; 8192];
        let mut output_failed = false;
        let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
        loop {
            let wait = match exited {
                None => EXIT_CHECK,
                Some((_, at)) => match OUTPUT_AFTER_EXIT.checked_sub(at.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    // Only what the executable started still holds the output.
                    _ => break,
                },
            };
            if readable(&reader, wait)? {
                let n = match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        tracing::warn!(%error, "reading a buildpack's output");
                        break;
                    }
                };
                // A log that stops taking output must not stop the buildpack (it would
                // block on a full pipe): the rest is read and dropped.
                if !output_failed {
                    if let Err(error) = output.write_all(&buffer[..n]) {
                        tracing::warn!(%error, "writing a buildpack's output");
                        output_failed = true;
                    }
                }
            }
            if exited.is_none() {
                exited = child.try_wait()?.map(|status| (status, Instant::now()));
            }
        }
        drop(reader);
        let status = match exited {
            Some((status, _)) => status,
            None => child.wait()?,
        };
        Ok(Exit::from(status))
    }
}

/// Whether `reader` has something to read (or its end) within `timeout`.
fn readable(reader: &io::PipeReader, timeout: Duration) -> io::Result<bool> {
    use std::os::fd::AsRawFd as _;
    let mut fds = [libc::pollfd {
        fd: reader.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, for a descriptor `reader` keeps open.
    match unsafe { libc::poll(fds.as_mut_ptr(), 1, millis) } {
        -1 => {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(error)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// Spawns `command`, trying again for a moment while its executable is busy (`ETXTBSY`): a
/// file just written (a buildpack unpacked, a test's script) stays open for writing in any
/// child another thread forked meanwhile, until that child execs.
pub(crate) fn spawn(command: &mut Command) -> io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(error) if error.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

/// Output kept up to a size: what is over it is counted and dropped (the writer never
/// fails, so the executable is never stopped for writing too much).
#[derive(Debug, Clone, Default)]
pub struct Captured {
    bytes: Vec<u8>,
    limit: usize,
    dropped: u64,
}

impl Captured {
    pub fn new(limit: usize) -> Captured {
        Captured {
            bytes: Vec::new(),
            limit,
            dropped: 0,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes written past the limit.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The output as text (invalid UTF-8 replaced), with a note of what was dropped.
    pub fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.dropped > 0 {
            if !text.ends_with('\n') && !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("[{} more bytes not kept]\n", self.dropped));
        }
        text
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.bytes.len());
        let kept = room.min(buf.len());
        self.bytes.extend_from_slice(&buf[..kept]);
        self.dropped += (buf.len() - kept) as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, env: &[(&str, &str)]) -> Invocation {
        Invocation {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into(), "sh".into(), "first arg".into()],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: "/".into(),
        }
    }

    #[test]
    fn output_is_interleaved_and_the_environment_is_only_what_is_given() {
        let mut out = Vec::new();
        let exit = HostExecutor
            .run(
                &sh(
                    "echo out; echo err >&2; echo \"$1 ${ONLY-unset} ${HOME-nohome}\"; exit 7",
                    &[("ONLY", "given")],
                ),
                &mut out,
            )
            .unwrap();
        assert_eq!(exit, Exit::Code(7));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "out\nerr\nfirst arg given nohome\n"
        );
    }

    #[test]
    fn a_signal_is_reported_and_a_missing_program_is_an_error() {
        let mut out = Vec::new();
        assert_eq!(
            HostExecutor
                .run(&sh("kill -TERM $$", &[]), &mut out)
                .unwrap(),
            Exit::Signal(15)
        );
        let mut missing = sh("", &[]);
        missing.program = "/nonexistent/bin/detect".into();
        assert_eq!(
            HostExecutor.run(&missing, &mut out).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn captured_output_is_bounded_and_the_writer_keeps_reading() {
        let mut captured = Captured::new(10);
        // 200 kB: more than a pipe holds, so a writer that stopped reading would hang here.
        let exit = HostExecutor
            .run(&sh("i=0; while [ $i -lt 2000 ]; do echo 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789; i=$((i+1)); done", &[("PATH", "/bin:/usr/bin")]), &mut captured)
            .unwrap();
        assert_eq!(exit, Exit::Code(0));
        assert_eq!(captured.bytes(), b"0123456789");
        assert_eq!(captured.dropped(), 2000 * 101 - 10);
        assert!(captured.text().ends_with("[201990 more bytes not kept]\n"));
    }

    #[test]
    fn a_background_process_holding_the_output_does_not_keep_the_run_going() {
        // bin/build starting a daemon that keeps its stdout: the run ends with the
        // executable, not with the daemon (30 s here, forever for a real one).
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let exit = HostExecutor.run(
                &sh(
                    "sleep 30 & echo \"daemon $!\"; exit 3",
                    &[("PATH", "/bin:/usr/bin")],
                ),
                &mut out,
            );
            done.send((exit.map_err(|e| e.to_string()), out)).unwrap();
        });
        let (exit, out) = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the run waited for the background process");
        assert_eq!(exit, Ok(Exit::Code(3)));
        let out = String::from_utf8(out).unwrap();
        let pid: i32 = out
            .trim()
            .strip_prefix("daemon ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        // SAFETY: a plain kill of the test's own child's child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }

    #[test]
    fn an_executable_still_open_for_writing_is_waited_for() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("detect");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"#!/bin/sh\necho ran\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Open for writing (as in a child forked meanwhile) for a moment: exec gets ETXTBSY.
        let closer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(file);
        });
        let mut out = Vec::new();
        let invocation = Invocation {
            program: path,
            args: vec![],
            env: vec![],
            cwd: "/".into(),
        };
        assert_eq!(
            HostExecutor.run(&invocation, &mut out).unwrap(),
            Exit::Code(0)
        );
        assert_eq!(out, b"ran\n");
        closer.join().unwrap();
    }
}
