//! Running a command in the foreground: the terminal attached, SIGTERM and
//! SIGHUP forwarded, the exit status returned (128+N when killed by signal N).
//! A Ctrl-C (or SIGTERM/SIGHUP) while the command runs ends the script once
//! the command has exited, unless the script asked to go on
//! ([`OnInterrupt::Continue`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use locald_shim_protocol::exit::{exit_code, ExecFailure};

use rhai::plugin::*;
use rhai::Array;
use serde::Deserialize;

use super::options::{self, OptionsError};
use crate::program::{EmptyProgram, Program};
use crate::sandbox::interrupt::{self, ForegroundChild};

/// Why a command could not be run (or waited for).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("a command is a string, an array of strings or a Program, not {type_name}")]
    NotACommand { type_name: String },
    #[error(transparent)]
    Empty(#[from] EmptyProgram),
    #[error(transparent)]
    Options(#[from] OptionsError),
    // spawn(2) reports a missing working directory as ENOENT, which would
    // read as "command not found".
    #[error("working directory {} does not exist (or is not a directory)", .0.display())]
    MissingWorkdir(PathBuf),
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("waiting for {program}: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
}

/// How a script gives a command: a `Program` (what the CLI passes as
/// `args.command`), a string (a shell line, run by `sh -c`), or an array of
/// words (an argv, run as it is).
pub fn program_from(value: &Dynamic) -> Result<Program, ProcessError> {
    if let Some(program) = value.clone().try_cast::<Program>() {
        return Ok(program);
    }
    if let Some(line) = value.clone().try_cast::<ImmutableString>() {
        return Ok(Program::Shell(line.to_string()));
    }
    let Some(items) = value.clone().try_cast::<Array>() else {
        return Err(ProcessError::NotACommand {
            type_name: value.type_name().to_string(),
        });
    };
    Ok(Program::exec(
        items.iter().map(|word| word.to_string()).collect(),
    )?)
}

/// A command option (`command`, `entrypoint`): a shell line, an array of
/// words or a `Program`, taken as the script value it is.
pub fn program_option<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Program, D::Error> {
    let value = <Dynamic as serde::Deserialize>::deserialize(deserializer)?;
    program_from(&value).map_err(serde::de::Error::custom)
}

/// The options of `run_command`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunCommandOptions {
    /// Added to the environment.
    #[serde(deserialize_with = "options::env_map")]
    pub env: BTreeMap<String, String>,
    /// The working directory; the current one when not given.
    pub cwd: Option<PathBuf>,
    /// What a Ctrl-C (or SIGTERM/SIGHUP) during the command does to the
    /// script once the command has exited.
    pub on_interrupt: OnInterrupt,
}

/// What a signal that stopped the foreground command does to its script.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInterrupt {
    /// The script ends too, with 128+N (as make and just stop).
    #[default]
    Stop,
    /// The script goes on; `run_command` returns 128+N (what the script
    /// would have ended with), whatever the command itself exited with: a
    /// server that catches Ctrl-C often exits 0 or 1, and the script asked
    /// to know that it was stopped.
    Continue,
}

/// The command of `run_command` and `capture_command`: `command` as a
/// script gives it, with `env` added, in `cwd` (the current directory when
/// not given).
pub(super) fn build_command(
    command: &Dynamic,
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
) -> Result<Command, ProcessError> {
    let mut cmd = program_from(command)?.command();
    cmd.envs(env);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    Ok(cmd)
}

/// A command started, or what a shell says of one it could not start.
pub(super) enum Started {
    Child(std::process::Child),
    /// The program was not found (127) or cannot be executed (126): the
    /// caller gets the code and the one line a shell would print.
    NotRun {
        code: i32,
        line: String,
    },
}

/// Starts `cmd`: the one spawn path of `run_command` and `capture_command`,
/// so both report a missing directory, a missing program and one that
/// cannot run alike.
pub(super) fn start(cmd: &mut Command) -> Result<Started, ProcessError> {
    if let Some(dir) = cmd.get_current_dir() {
        if !dir.is_dir() {
            return Err(ProcessError::MissingWorkdir(dir.to_path_buf()));
        }
    }
    match cmd.spawn() {
        Ok(child) => Ok(Started::Child(child)),
        Err(source) => {
            // As a shell: a program not found exits 127, one that cannot be
            // executed 126, said in one line; the caller gets the code.
            let name = cmd.get_program().to_string_lossy();
            let failure = source
                .raw_os_error()
                .and_then(|errno| ExecFailure::from_errno(&name, errno));
            match failure {
                Some(failure) => Ok(Started::NotRun {
                    code: failure.code,
                    line: format!("locald: {name}: {}", failure.reason),
                }),
                None => Err(ProcessError::Spawn {
                    program: format!("{:?}", cmd.get_program()),
                    source,
                }),
            }
        }
    }
}

/// Runs `cmd` attached to the terminal and returns its exit code: 127 when
/// the program is not found, 126 when it cannot be executed, as shells give;
/// after a Ctrl-C (or SIGTERM/SIGHUP) during it, see [`OnInterrupt`].
pub fn run_foreground(mut cmd: Command, on_interrupt: OnInterrupt) -> Result<i64, ProcessError> {
    let program = format!("{:?}", cmd.get_program());
    let mut child = match start(&mut cmd)? {
        Started::Child(child) => child,
        Started::NotRun { code, line } => {
            eprintln!("{}", crate::sandbox::terminal_text::for_terminal(&line));
            return Ok(i64::from(code));
        }
    };
    let foreground = ForegroundChild::enter(child.id());
    let status = child
        .wait()
        .map_err(|source| ProcessError::Wait { program, source })?;
    drop(foreground);
    // With `Stop` the flag stays up and the engine ends the script at its
    // next step (or `run_verb` right after its last).
    if on_interrupt == OnInterrupt::Continue && interrupt::take() {
        return Ok(i64::from(interrupt::exit_code()));
    }
    Ok(i64::from(exit_code(status)))
}

/// `Program` in scripts: `args.command` of `run`, `try` and `container run`.
impl rhai::CustomType for Program {
    fn build(mut builder: rhai::TypeBuilder<Self>) {
        builder
            .with_name("Program")
            .with_get("line", |p: &mut Self| p.shell_line())
            .with_get("argv", |p: &mut Self| -> Array {
                p.argv().into_iter().map(Dynamic::from).collect()
            })
            .with_get("is_shell", |p: &mut Self| matches!(p, Program::Shell(_)))
            .with_get("name", |p: &mut Self| p.program_name().to_string())
            .with_get("service_name", |p: &mut Self| p.service_name())
            .with_fn("to_string", |p: &mut Self| p.shell_line())
            .with_fn("to_debug", |p: &mut Self| {
                format!("Program({})", p.shell_line())
            });
    }
}

#[export_module]
pub mod process_api {
    use rhai::{Array, Map};

    use crate::program::Program;
    use crate::script::api::fail;

    /// A `Program` from words as a command line gives them: one word is a
    /// shell line, several are an argv. A string is a shell line.
    #[rhai_fn(return_raw)]
    pub fn program(ctx: NativeCallContext, words: Dynamic) -> Result<Program, Box<EvalAltResult>> {
        match words.clone().try_cast::<Array>() {
            Some(items) => Program::from_words(items.iter().map(|w| w.to_string()).collect())
                .map_err(|e| fail(&ctx, e)),
            None => super::program_from(&words).map_err(|e| fail(&ctx, e)),
        }
    }

    /// Runs a command in the foreground and returns its exit code. `command`
    /// is a shell line (string), an array of words, or a `Program`.
    #[rhai_fn(return_raw, name = "run_command")]
    pub fn run_command(
        ctx: NativeCallContext,
        command: Dynamic,
    ) -> Result<i64, Box<EvalAltResult>> {
        run_command_with(ctx, command, Map::new())
    }

    /// Runs a command in the foreground with options `#{ env: #{…}, cwd: "…",
    /// on_interrupt: "stop" | "continue" }` and returns its exit code.
    #[rhai_fn(return_raw, name = "run_command")]
    pub fn run_command_with(
        ctx: NativeCallContext,
        command: Dynamic,
        options: Map,
    ) -> Result<i64, Box<EvalAltResult>> {
        super::run_command(&command, options).map_err(|e| fail(&ctx, e))
    }

    /// Runs a command with its output captured (as Tilt's `local()`) and
    /// returns `#{ code, stdout, stderr }`. `command` as `run_command`
    /// takes it. Each stream holds at most 16 MiB: past it the command is
    /// killed and the call fails.
    #[rhai_fn(return_raw, name = "capture_command")]
    pub fn capture_command(
        ctx: NativeCallContext,
        command: Dynamic,
    ) -> Result<Map, Box<EvalAltResult>> {
        capture_command_with(ctx, command, Map::new())
    }

    /// Runs a command with its output captured, with options `#{ env: #{…},
    /// cwd: "…", stdin: "text" }` (no `stdin`: /dev/null), and returns
    /// `#{ code, stdout, stderr }`.
    #[rhai_fn(return_raw, name = "capture_command")]
    pub fn capture_command_with(
        ctx: NativeCallContext,
        command: Dynamic,
        options: Map,
    ) -> Result<Map, Box<EvalAltResult>> {
        crate::script::api::capture::capture_command(&command, options)
            .map(crate::script::api::capture::Captured::into_map)
            .map_err(|e| crate::script::throw(&ctx, e))
    }
}

/// `run_command(command, options)`.
fn run_command(command: &Dynamic, options: rhai::Map) -> Result<i64, ProcessError> {
    let options: RunCommandOptions = options::read("run_command", options)?;
    let cmd = build_command(command, options.env, options.cwd)?;
    run_foreground(cmd, options.on_interrupt)
}
