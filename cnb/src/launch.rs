//! What a launcher does before it execs, as a function: which process runs, with which
//! arguments, in which directory and environment, as the reference launcher decides it
//! (Platform API 0.10+).
//!
//! - The process: the image's entrypoint is `/cnb/process/<type>` (a link to the launcher),
//!   so the launcher's `argv[0]` names the type ([`entrypoint_process`] says which type the
//!   exporter makes the entrypoint: `CNB_PROCESS_TYPE` if the platform set one, else the
//!   buildpacks' default). For a type, `command[1..]` are always passed and the user's
//!   arguments replace `args` (Buildpack API 0.9+; appended before). Run as the launcher
//!   itself, `-- CMD ARGS` runs CMD directly; `CMD ARGS` runs CMD as shell text
//!   (`sh -c CMD ARGS`: the reference uses bash, which busybox lacks). `CNB_PROCESS_TYPE` at
//!   launch is ignored, as the reference does.
//! - The environment: the container's, less the lifecycle's own variables and with
//!   `/cnb/process` and `/cnb/lifecycle` out of `PATH`; then, buildpack by buildpack, every
//!   layer's `bin` and `lib` (in name order), then every layer's `env/`, `env.launch/` and
//!   `env.launch/<type>/` files.
//! - The working directory: the process's (relative to the app), or the app.
//! - `exec.d`: the executables to run before the exec (by buildpack, layer, then name,
//!   `exec.d/*` before `exec.d/<type>/*`), each overriding the environment with what it
//!   writes on fd 3 ([`Launch::run_exec_d`], [`exec_d`]).
//!
//! The layers directory is read as an exported image holds it: every directory of a
//! buildpack's layers directory is a layer (an image only carries launch layers).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::build::{BuildMetadata, Process};
use crate::env::{Action, Env, EnvError};
use crate::read::Limits;

/// Why no process can be launched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("when there is no default process a command is required")]
    NoCommand,
    #[error("process type `{0}` was not found")]
    UnknownProcessType(String),
    #[error("process `{process}` names buildpack {buildpack}, which is not in the metadata")]
    UnknownBuildpack { process: String, buildpack: String },
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("{}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: more than {limit} layers", path.display())]
    TooManyLayers { path: PathBuf, limit: usize },
}

/// Where the image's lifecycle paths are.
#[derive(Debug, Clone)]
pub struct LaunchDirs {
    pub app: PathBuf,
    pub layers: PathBuf,
    /// `/cnb/process`: the process-type links (taken out of `PATH`).
    pub process: PathBuf,
    /// `/cnb/lifecycle`: the launcher's directory (taken out of `PATH`).
    pub lifecycle: PathBuf,
}

/// What to exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The process type, when one was chosen.
    pub process_type: Option<String>,
    /// `argv`: for a direct command its first element is looked up on the new `PATH`; for
    /// shell text it is `["sh", "-c", TEXT, ARGS…]`.
    pub argv: Vec<String>,
    pub direct: bool,
    pub working_dir: PathBuf,
    /// The complete environment, sorted by name.
    pub env: Vec<(String, String)>,
    /// `exec.d` executables for the launcher to run before the exec, in order.
    pub exec_d: Vec<PathBuf>,
}

impl Launch {
    /// Runs the `exec.d` executables in order in `app`, each seeing the environment the
    /// ones before it left, and overrides the environment with what they wrote.
    pub fn run_exec_d(&mut self, app: &Path, limits: &Limits) -> Result<(), exec_d::ExecDError> {
        for path in std::mem::take(&mut self.exec_d) {
            let vars = exec_d::run(&path, &self.env, app, limits)?;
            let mut env: BTreeMap<String, String> =
                std::mem::take(&mut self.env).into_iter().collect();
            env.extend(vars);
            self.env = env.into_iter().collect();
        }
        Ok(())
    }
}

/// The process type the exporter makes the image's entrypoint: `requested`
/// (`CNB_PROCESS_TYPE`), which must exist, else the buildpacks' default, else none (the
/// entrypoint is the launcher itself).
pub fn entrypoint_process(
    metadata: &BuildMetadata,
    requested: Option<&str>,
) -> Result<Option<String>, LaunchError> {
    match requested.filter(|r| !r.is_empty()) {
        Some(requested) => match metadata.processes.iter().any(|p| p.r#type == requested) {
            true => Ok(Some(requested.to_string())),
            false => Err(LaunchError::UnknownProcessType(requested.to_string())),
        },
        None => Ok(metadata.default_process.clone()),
    }
}

/// Decides the launch of `argv0 args…` in the image described by `metadata`, from the
/// container environment `env`.
pub fn plan(
    metadata: &BuildMetadata,
    dirs: &LaunchDirs,
    argv0: &str,
    args: &[String],
    env: Vec<(String, String)>,
    limits: &Limits,
) -> Result<Launch, LaunchError> {
    if env
        .iter()
        .any(|(k, v)| k == "CNB_PROCESS_TYPE" && !v.is_empty())
    {
        tracing::warn!("CNB_PROCESS_TYPE is not supported at launch: run with the entrypoint /cnb/process/<type> instead");
    }
    let name = Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let process = metadata.processes.iter().find(|p| p.r#type == name);
    let (process_type, argv, direct, working_dir) = match process {
        Some(process) => {
            let mut argv = process_argv(metadata, process, args)?;
            if !process.direct {
                // A pre-0.9 `direct = false` process: its command is shell text.
                argv.splice(0..0, ["sh".to_string(), "-c".to_string()]);
            }
            let working_dir = match &process.working_dir {
                Some(dir) => dirs.app.join(dir),
                None => dirs.app.clone(),
            };
            (
                Some(process.r#type.clone()),
                argv,
                process.direct,
                working_dir,
            )
        }
        None => {
            let (argv, direct) = match args {
                [] => return Err(LaunchError::NoCommand),
                [dashes, command, rest @ ..] if dashes == "--" => (
                    std::iter::once(command).chain(rest).cloned().collect(),
                    true,
                ),
                [command, rest @ ..] => {
                    let mut argv = vec!["sh".to_string(), "-c".to_string(), command.clone()];
                    argv.extend(rest.iter().cloned());
                    (argv, false)
                }
            };
            (None, argv, direct, dirs.app.clone())
        }
    };

    let mut launch_env = Env::for_launch(
        env,
        &dirs.process.to_string_lossy(),
        &dirs.lifecycle.to_string_lossy(),
    );
    let mut exec_d = Vec::new();
    for buildpack in &metadata.buildpacks {
        let bp_dir = dirs.layers.join(buildpack.id.escaped());
        let layers = subdirs(&bp_dir, limits)?;
        for layer in &layers {
            launch_env.add_root_dir(layer);
        }
        for layer in &layers {
            launch_env.add_env_dir(&layer.join("env"), Action::Override, limits)?;
            launch_env.add_env_dir(&layer.join("env.launch"), Action::Override, limits)?;
            if let Some(process_type) = &process_type {
                launch_env.add_env_dir(
                    &layer.join("env.launch").join(process_type),
                    Action::Override,
                    limits,
                )?;
            }
        }
        for layer in &layers {
            exec_d.extend(files(&layer.join("exec.d"), limits)?);
            if let Some(process_type) = &process_type {
                exec_d.extend(files(&layer.join("exec.d").join(process_type), limits)?);
            }
        }
    }
    Ok(Launch {
        process_type,
        argv,
        direct,
        working_dir,
        env: launch_env.vars(),
        exec_d,
    })
}

/// The argv of a process type given the user's `args` (the reference
/// `handleUserArgs`): `command[1..]` always; the user's arguments replace the process's
/// `args` (appended to them for a buildpack older than API 0.9, when `command` is one word).
fn process_argv(
    metadata: &BuildMetadata,
    process: &Process,
    user: &[String],
) -> Result<Vec<String>, LaunchError> {
    let mut argv = process.command.clone();
    if process.command.len() > 1 || user.is_empty() {
        argv.extend(
            if user.is_empty() { &process.args } else { user }
                .iter()
                .cloned(),
        );
        return Ok(argv);
    }
    let buildpack = metadata
        .buildpacks
        .iter()
        .find(|b| b.id == process.buildpack_id)
        .ok_or_else(|| LaunchError::UnknownBuildpack {
            process: process.r#type.clone(),
            buildpack: process.buildpack_id.to_string(),
        })?;
    if !buildpack.api.at_least(0, 9) {
        argv.extend(process.args.iter().cloned());
    }
    argv.extend(user.iter().cloned());
    Ok(argv)
}

/// The entries of `dir` (none if it does not exist) that are directories (`dirs = true`) or
/// not, in name order, at most `limits.layers` of them.
fn entries(dir: &Path, dirs: bool, limits: &Limits) -> Result<Vec<PathBuf>, LaunchError> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LaunchError::Dir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut found = Vec::new();
    for entry in read {
        let entry = entry.map_err(|source| LaunchError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() == dirs {
            if found.len() == limits.layers {
                return Err(LaunchError::TooManyLayers {
                    path: dir.to_path_buf(),
                    limit: limits.layers,
                });
            }
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn subdirs(dir: &Path, limits: &Limits) -> Result<Vec<PathBuf>, LaunchError> {
    entries(dir, true, limits)
}

fn files(dir: &Path, limits: &Limits) -> Result<Vec<PathBuf>, LaunchError> {
    entries(dir, false, limits)
}

pub mod exec_d;

#[cfg(test)]
mod tests;
