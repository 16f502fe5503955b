//! Running `exec.d` executables (Buildpack API 0.9+'s replacement for `profile.d`): each
//! runs in the app directory with the launch environment so far, its stdout and stderr
//! going where the launcher's go, and writes `NAME = "value"` TOML on file descriptor 3;
//! those variables override the environment for the next one and for the process.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::exec::Exit;
use crate::read::Limits;

/// An `exec.d` executable that failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecDError {
    #[error("{}: could not run: {source}", path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: failed ({exit})", path.display())]
    Failed { path: PathBuf, exit: Exit },
    #[error("{}: wrote more than {limit} bytes on fd 3", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}: its fd 3 output is not TOML: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{}: `{key}` must be a variable name with a string value", path.display())]
    Value { path: PathBuf, key: String },
}

/// Runs `path` with `env` in `cwd`, giving the variables it wrote on fd 3 (sorted by name:
/// a TOML table is a map).
pub fn run(
    path: &Path,
    env: &[(String, String)],
    cwd: &Path,
    limits: &Limits,
) -> Result<Vec<(String, String)>, ExecDError> {
    let spawn_error = |source| ExecDError::Spawn {
        path: path.to_path_buf(),
        source,
    };
    let (mut reader, writer) = std::io::pipe().map_err(spawn_error)?;
    let fd = writer.as_raw_fd();
    let mut command = Command::new(path);
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) are made,
    // on a descriptor this process owns until the exec.
    unsafe {
        command.pre_exec(move || {
            if fd == 3 {
                // dup2 onto itself keeps close-on-exec: clear it instead.
                if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = crate::exec::spawn(&mut command).map_err(spawn_error)?;
    // The write end must be closed here, or the read below never ends.
    drop(command);
    drop(writer);
    let limit = limits.file_bytes;
    let mut output = Vec::new();
    let mut over = false;
    let mut buffer = [0u8; 8192];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            // Past the limit the output is drained (the executable must not block on a
            // full pipe) but not kept.
            Ok(n) if output.len() as u64 + n as u64 > limit => over = true,
            Ok(n) => output.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(spawn_error(source));
            }
        }
    }
    let status = child.wait().map_err(spawn_error)?;
    if !status.success() {
        return Err(ExecDError::Failed {
            path: path.to_path_buf(),
            exit: Exit::from(status),
        });
    }
    if over {
        return Err(ExecDError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    let text = String::from_utf8_lossy(&output);
    let table: toml::Table = toml::from_str(&text).map_err(|source| ExecDError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    table
        .into_iter()
        .map(|(key, value)| match value {
            toml::Value::String(value)
                if !key.is_empty() && !key.contains('=') && !value.contains('\0') =>
            {
                Ok((key, value))
            }
            _ => Err(ExecDError::Value {
                path: path.to_path_buf(),
                key,
            }),
        })
        .collect()
}
