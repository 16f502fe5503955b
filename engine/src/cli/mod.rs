//! The command line: parse arguments, then hand them to the built-in script
//! of the verb. No verb logic lives here; it lives in `stdlib/*.rhai` over the
//! engine's primitives, so users can read and reuse it.
//!
//! The contract with the scripts is typed: each verb's arguments are one
//! clap struct (`args.rs`) that serde turns into the script's `args` map, so
//! its keys are the struct's field names (`()` for an absent option) and
//! `args.command`, where a verb takes one, is a `Program`. Each script's
//! header lists its usage; a test checks that every key a script reads is
//! given and every key given is read.

mod args;

use std::ffi::OsString;

use clap::Parser;
use rhai::{Dynamic, Map};
use serde::Serialize;

pub use args::{
    Cli, Compile, ContainerCommand, ContainerRun, ImageCommand, ImageImport, ImageReference,
    ImageReferences, Json, Logs, MaybeService, NoArgs, OneService, Pull, Run, Script, ServiceAdd,
    ServiceAddCommand, ServiceAddContainer, ServiceCommand, Subcommand, Try, Up,
};

use crate::control::SuperviseArgs;
use crate::program::Program;
use crate::sandbox::{self, ErrorKind, ScriptError};
use crate::script;

/// Entry point of the `locald` binary; returns the process exit code.
pub fn main() -> i32 {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // Hidden entries the supervisor re-executes this binary with; they must
    // not pay for argument parsing or logging set-up.
    match argv.get(1).and_then(|a| a.to_str()) {
        Some("__service-init") => crate::supervisor::service_init_main(argv[2..].to_vec()),
        Some(SuperviseArgs::ENTRY) => match SuperviseArgs::parse(&argv[2..]) {
            Ok(args) => crate::supervisor::supervise_main(&args.root),
            Err(usage) => {
                eprintln!("{usage}");
                return 2;
            }
        },
        _ => {}
    }

    let cli = Cli::parse_from(argv);
    init_tracing(cli.verbose);
    if let Some(dir) = &cli.directory {
        if let Err(e) = std::env::set_current_dir(dir) {
            let message = format!("cannot change to {}: {e}", dir.display());
            CliError::Message(message).print();
            return 2;
        }
    }
    match cli.command.execute() {
        Ok(code) => code,
        Err(error) => {
            error.print();
            error.exit_code()
        }
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "locald=warn,locald_image=warn,locald_runtime=warn",
        1 => "locald=debug,locald_image=debug,locald_runtime=debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(verbose > 1)
        .try_init();
}

/// Why a command failed, as the CLI shows it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The verb's script failed: shown as its [`ErrorKind`] says.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// A failure of the CLI itself: shown as `error: MESSAGE`.
    #[error("{0}")]
    Message(String),
    /// The REPL could not read its input or write its prompt.
    #[error(transparent)]
    Repl(#[from] std::io::Error),
}

impl CliError {
    /// Writes the error to stderr (see [`sandbox::show_error`]).
    pub fn print(&self) {
        sandbox::show_error(self.kind(), &self.to_string());
    }

    /// The exit code: 128+N when signal N interrupted the command, else 1.
    pub fn exit_code(&self) -> i32 {
        match self.kind() {
            ErrorKind::Interrupted => sandbox::interrupt::exit_code(),
            _ => 1,
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            CliError::Script(error) => error.kind,
            CliError::Message(_) | CliError::Repl(_) => ErrorKind::Message,
        }
    }
}

impl Subcommand {
    /// Runs the verb: its built-in script, with its arguments as `args`.
    /// Returns the exit code (the script's result, or its `exit(n)`).
    pub fn execute(self) -> Result<i32, CliError> {
        let (name, args) = match self {
            Subcommand::Repl => return Ok(script::repl()?),
            Subcommand::Stdlib { name: None } => {
                let names: String = script::stdlib::SCRIPTS
                    .iter()
                    .map(|(name, _)| format!("{name}\n"))
                    .collect();
                return Ok(print_out(&names));
            }
            Subcommand::Stdlib { name: Some(name) } => {
                return match script::stdlib::get(&name) {
                    Some(source) => Ok(print_out(source)),
                    None => Err(CliError::Message(format!(
                        "no built-in script named `{name}` (see `locald stdlib`)"
                    ))),
                }
            }
            Subcommand::Script(call) => {
                let args = script_args(&call)?;
                return Ok(script::run_file(&call.file, args)?);
            }
            verb => verb.into_script_call()?,
        };
        Ok(script::run_verb(name, args)?)
    }

    /// The built-in script of a verb and the `args` map it receives.
    fn into_script_call(self) -> Result<(&'static str, Map), CliError> {
        Ok(match self {
            Subcommand::Up(a) => ("up", script_args(&a)?),
            Subcommand::Down(a) => ("down", script_args(&a)?),
            Subcommand::Status(a) => ("status", script_args(&a)?),
            Subcommand::Logs(a) => ("logs", script_args(&a)?),
            Subcommand::Start(a) => ("start", script_args(&a)?),
            Subcommand::Stop(a) => ("stop", script_args(&a)?),
            Subcommand::Restart(a) => ("restart", script_args(&a)?),
            Subcommand::Reload(a) => ("reload", script_args(&a)?),
            Subcommand::Try(a) => ("try", script_args(&a)?),
            Subcommand::Run(a) => ("run", script_args(&a)?),
            Subcommand::Compile(a) => ("compile", script_args(&a)?),
            Subcommand::Container(ContainerCommand::Run(a)) => ("container-run", script_args(&a)?),
            Subcommand::Image(ImageCommand::Pull(a)) => ("image-pull", script_args(&a)?),
            Subcommand::Image(ImageCommand::Ls(a)) => ("image-ls", script_args(&a)?),
            Subcommand::Image(ImageCommand::Rm(a)) => ("image-rm", script_args(&a)?),
            Subcommand::Image(ImageCommand::Prune(a)) => ("image-prune", script_args(&a)?),
            Subcommand::Image(ImageCommand::Import(a)) => ("image-import", script_args(&a)?),
            Subcommand::Service(ServiceCommand::Add(ServiceAdd::Container(a))) => {
                ("service-add", script_args(&a)?)
            }
            Subcommand::Service(ServiceCommand::Add(ServiceAdd::Command(a))) => {
                ("service-add", script_args(&a)?)
            }
            Subcommand::Repl | Subcommand::Stdlib { .. } | Subcommand::Script(_) => {
                unreachable!("run by execute, not by a built-in script")
            }
        })
    }
}

/// Prints `text` to stdout; the exit code: 0, or 141 when the reader has
/// gone (as SIGPIPE ends other Unix tools).
fn print_out(text: &str) -> i32 {
    if sandbox::stdout::write_all(text.as_bytes()) {
        0
    } else {
        sandbox::interrupt::exit_code()
    }
}

/// A verb's arguments as its script sees them.
trait ScriptArgs: Serialize {
    /// `args.command`, for a verb that takes one: a `Program`, which serde
    /// cannot build, so the field is `#[serde(skip)]` and added here.
    fn command(&self) -> Option<Dynamic> {
        None
    }
}

impl ScriptArgs for Up {}
impl ScriptArgs for NoArgs {}
impl ScriptArgs for Json {}
impl ScriptArgs for Logs {}
impl ScriptArgs for OneService {}
impl ScriptArgs for MaybeService {}
impl ScriptArgs for Compile {}
impl ScriptArgs for Script {}
impl ScriptArgs for ImageReference {}
impl ScriptArgs for ImageReferences {}
impl ScriptArgs for ImageImport {}
impl ScriptArgs for ServiceAddContainer {}

impl ScriptArgs for Try {
    fn command(&self) -> Option<Dynamic> {
        Some(words_program(&self.command))
    }
}

impl ScriptArgs for Run {
    fn command(&self) -> Option<Dynamic> {
        Some(words_program(&self.command))
    }
}

impl ScriptArgs for ServiceAddCommand {
    fn command(&self) -> Option<Dynamic> {
        Some(words_program(&self.command))
    }
}

impl ScriptArgs for ContainerRun {
    /// Docker's rule: the words are the argv, one word included; none
    /// leaves the image's own command (`()`).
    fn command(&self) -> Option<Dynamic> {
        Some(Program::exec(self.command.clone()).map_or(Dynamic::UNIT, Dynamic::from))
    }
}

/// The `args` map of a verb's script: its fields by name, then `command`.
fn script_args(args: &impl ScriptArgs) -> Result<Map, CliError> {
    let value = rhai::serde::to_dynamic(args)
        .map_err(|e| CliError::Message(format!("cannot pass the arguments to the script: {e}")))?;
    let mut map = value
        .try_cast::<Map>()
        .ok_or_else(|| CliError::Message("the arguments are not a map".to_string()))?;
    if let Some(command) = args.command() {
        map.insert("command".into(), command);
    }
    Ok(map)
}

/// The words after `--` as a `Program` (one word is a shell line); clap
/// requires at least one.
fn words_program(words: &[String]) -> Dynamic {
    Program::from_words(words.to_vec()).map_or(Dynamic::UNIT, Dynamic::from)
}

#[cfg(test)]
mod tests;
