//! The launcher of images built by locald (`/cnb/lifecycle/launcher`, and every
//! `/cnb/process/<type>` link to it), as the Platform API's launcher:
//!
//! 1. read `$CNB_LAYERS_DIR/config/metadata.toml` (`/layers` by default), the app being
//!    `$CNB_APP_DIR` (`/workspace`);
//! 2. decide the process, its arguments, working directory and environment from the
//!    metadata, the layers and the container's environment (`locald_cnb::launch::plan`:
//!    `argv[0]`'s name is the process type when it is one; else `-- CMD ARGS` runs CMD,
//!    `CMD ARGS` runs CMD as shell text);
//! 3. run the `exec.d` executables, each overriding the environment;
//! 4. change to the working directory and exec the command, found on the new `PATH`,
//!    without forking: the process is the container's main process, and its exit status
//!    the container's.
//!
//! It is linked statically (`scripts/build-launcher`) because a run image may have no
//! C library at all. Its own failures exit 80–89, as the reference launcher's do (80:
//! the metadata or the launch cannot be decided, 81: an `exec.d` executable failed, 82:
//! the command cannot be executed), with one line on stderr.

use std::convert::Infallible;
use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};

use locald_cnb::build::BuildMetadata;
use locald_cnb::launch::{exec_d::ExecDError, plan, LaunchDirs, LaunchError};
use locald_cnb::Limits;

const DEFAULT_LAYERS_DIR: &str = "/layers";
const DEFAULT_APP_DIR: &str = "/workspace";
const PROCESS_DIR: &str = "/cnb/process";
const LIFECYCLE_DIR: &str = "/cnb/lifecycle";

#[derive(Debug, thiserror::Error)]
enum LauncherError {
    #[error("argument or environment variable {0:?} is not UTF-8")]
    NotUtf8(OsString),
    #[error(transparent)]
    Metadata(#[from] locald_cnb::formats::FormatError),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    ExecD(#[from] ExecDError),
    #[error("`{command}` was not found on PATH ({path})")]
    NotFound { command: String, path: String },
    #[error("cannot execute `{}`: {source}", command.display())]
    Exec {
        command: PathBuf,
        source: std::io::Error,
    },
}

impl LauncherError {
    fn exit_code(&self) -> i32 {
        match self {
            LauncherError::NotUtf8(_) | LauncherError::Metadata(_) | LauncherError::Launch(_) => 80,
            LauncherError::ExecD(_) => 81,
            LauncherError::NotFound { .. } | LauncherError::Exec { .. } => 82,
        }
    }
}

fn main() {
    let Err(error) = launch();
    eprintln!("launcher: {error}");
    std::process::exit(error.exit_code());
}

fn utf8(value: OsString) -> Result<String, LauncherError> {
    value.into_string().map_err(LauncherError::NotUtf8)
}

fn launch() -> Result<Infallible, LauncherError> {
    let mut args = std::env::args_os();
    let argv0 = utf8(args.next().unwrap_or_default())?;
    let args: Vec<String> = args.map(utf8).collect::<Result<_, _>>()?;
    let env: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| Ok((utf8(k)?, utf8(v)?)))
        .collect::<Result<_, LauncherError>>()?;
    let var = |name: &str, default: &str| {
        env.iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map_or_else(|| default.to_string(), |(_, v)| v.clone())
    };
    let dirs = LaunchDirs {
        app: var("CNB_APP_DIR", DEFAULT_APP_DIR).into(),
        layers: var("CNB_LAYERS_DIR", DEFAULT_LAYERS_DIR).into(),
        process: PROCESS_DIR.into(),
        lifecycle: LIFECYCLE_DIR.into(),
    };
    let limits = Limits::DEFAULT;
    let metadata = BuildMetadata::read(&dirs.layers.join("config/metadata.toml"), &limits)?;
    let mut launch = plan(&metadata, &dirs, &argv0, &args, env, &limits)?;
    launch.run_exec_d(&dirs.app, &limits)?;
    let Some((command, rest)) = launch.argv.split_first() else {
        return Err(LaunchError::NoCommand.into());
    };
    let path = launch
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let program = resolve(command, path)?;
    let error = std::process::Command::new(&program)
        .arg0(command)
        .args(rest)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.working_dir)
        .exec();
    Err(LauncherError::Exec {
        command: program,
        source: error,
    })
}

/// `command` itself when it has a `/`, else the first executable of that name on `path`
/// (the launch environment's, not the launcher's).
fn resolve(command: &str, path: &str) -> Result<PathBuf, LauncherError> {
    if command.contains('/') {
        return Ok(command.into());
    }
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(command))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| LauncherError::NotFound {
            command: command.to_string(),
            path: path.to_string(),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_found_on_the_launch_path() {
        assert_eq!(resolve("/bin/sh", "").unwrap(), Path::new("/bin/sh"));
        let dir = std::env::temp_dir().join(format!("launcher-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("plain"), "not executable").unwrap();
        let found = resolve("sh", &format!("/nonexistent:{}:/bin", dir.display())).unwrap();
        assert_eq!(found, Path::new("/bin/sh"));
        let error = resolve("plain", &dir.display().to_string()).unwrap_err();
        assert_eq!(error.exit_code(), 82);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
