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
/// Not handled here, left to the container that wraps a build: a buildpack that leaves a
/// background process holding its output open keeps the run going until that process
/// ends, and nothing limits time or memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostExecutor;

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
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    tracing::warn!(%error, "reading a buildpack's output");
                    break;
                }
            };
            // A log that stops taking output must not stop the buildpack (it would block
            // on a full pipe): the rest is read and dropped.
            if !output_failed {
                if let Err(error) = output.write_all(&buffer[..n]) {
                    tracing::warn!(%error, "writing a buildpack's output");
                    output_failed = true;
                }
            }
        }
        drop(reader);
        Ok(Exit::from(child.wait()?))
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
