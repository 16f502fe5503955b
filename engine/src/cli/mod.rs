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
pub mod completion;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;
use rhai::{Dynamic, Map};
use serde::Serialize;

pub use args::{
    Build, Cli, Compile, ContainerCommand, ContainerRun, DashboardArgs, Exec, ImageCommand,
    ImageImport, ImageReference, ImageReferences, Init, Json, Logs, NoArgs, Ps, Pull, Run, Script,
    ServiceAdd, ServiceAddCommand, ServiceAddContainer, ServiceCommand, Services, SomeServices,
    Subcommand, Task, Try, Up,
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
        Some(crate::project::build::BUILD_ENTRY) => {
            return crate::script::api::build_service::build_main()
        }
        Some(crate::control::exec::ENTRY) => {
            return crate::control::exec::exec_main(argv[2..].to_vec())
        }
        Some(SuperviseArgs::ENTRY) => match SuperviseArgs::parse(&argv[2..]) {
            Ok(args) => crate::supervisor::supervise_main(&args.root),
            Err(usage) => {
                eprintln!("{usage}");
                return 2;
            }
        },
        _ => {}
    }

    completion::complete_if_asked();
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
        .with_ansi(use_color(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(verbose > 1)
        .try_init();
}

/// Colour on `stream` only for a person: a terminal, and `NO_COLOR` unset
/// (<https://no-color.org>); never escape codes in a file or a pipe.
fn use_color(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
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
    /// The completion script could not be made.
    #[error("cannot write the completion script: {0}")]
    Completions(std::io::Error),
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
            CliError::Message(_) | CliError::Repl(_) | CliError::Completions(_) => {
                ErrorKind::Message
            }
        }
    }
}

/// What a command line asks for.
enum Action {
    /// A built-in script and its `args`.
    Verb(&'static str, Map),
    /// A task script and its `args` (`argv`).
    File(PathBuf, Map),
    Repl,
    /// List the built-in scripts, or print one.
    Stdlib(Option<String>),
    /// Print the completion script of a shell.
    Completions(completion::Shell),
}

impl Subcommand {
    /// Runs the verb: its built-in script, with its arguments as `args`.
    /// Returns the exit code (the script's result, or its `exit(n)`).
    pub fn execute(self) -> Result<i32, CliError> {
        match self.action()? {
            Action::Verb(name, args) => Ok(script::run_verb(name, args)?),
            Action::File(path, args) => Ok(script::run_file(&path, args)?),
            Action::Repl => Ok(script::repl()?),
            Action::Stdlib(None) => {
                let names: String = script::stdlib::SCRIPTS
                    .iter()
                    .map(|(name, _)| format!("{name}\n"))
                    .collect();
                Ok(print_out(&names))
            }
            Action::Completions(shell) => {
                let script = completion::script(shell).map_err(CliError::Completions)?;
                Ok(print_out(&String::from_utf8_lossy(&script)))
            }
            Action::Stdlib(Some(name)) => match script::stdlib::get(&name) {
                Some(source) => Ok(print_out(source)),
                None => Err(CliError::Message(format!(
                    "no built-in script named `{name}` (see `locald stdlib`)"
                ))),
            },
        }
    }

    /// What to run: for a verb, its built-in script and the `args` map it
    /// receives.
    fn action(self) -> Result<Action, CliError> {
        let verb = |name, args| Ok(Action::Verb(name, args));
        match self {
            Subcommand::Init(a) => verb("init", script_args(&a)?),
            Subcommand::Up(a) => verb("up", script_args(&a)?),
            Subcommand::Down(a) => verb("down", script_args(&a)?),
            Subcommand::Status(a) => verb("status", script_args(&a)?),
            Subcommand::Ps(a) => verb("ps", script_args(&a)?),
            Subcommand::Logs(a) => verb("logs", script_args(&a)?),
            Subcommand::Start(a) => verb("start", script_args(&a)?),
            Subcommand::Stop(a) => verb("stop", script_args(&a)?),
            Subcommand::Restart(a) => verb("restart", script_args(&a)?),
            Subcommand::Reload(a) => verb("reload", script_args(&a)?),
            Subcommand::Dashboard(a) => verb("dashboard", script_args(&a)?),
            Subcommand::Try(a) => verb("try", script_args(&a)?),
            Subcommand::Run(a) => verb("run", script_args(&a)?),
            Subcommand::Exec(a) => verb("exec", script_args(&a)?),
            Subcommand::Task(a) => verb("task", script_args(&a)?),
            Subcommand::Compile(a) => verb("compile", script_args(&a)?),
            Subcommand::Build(a) => verb("build", script_args(&a)?),
            Subcommand::Container(ContainerCommand::Run(a)) => {
                verb("container-run", script_args(&a)?)
            }
            Subcommand::Image(ImageCommand::Pull(a)) => verb("image-pull", script_args(&a)?),
            Subcommand::Image(ImageCommand::Ls(a)) => verb("image-ls", script_args(&a)?),
            Subcommand::Image(ImageCommand::Rm(a)) => verb("image-rm", script_args(&a)?),
            Subcommand::Image(ImageCommand::Prune(a)) => verb("image-prune", script_args(&a)?),
            Subcommand::Image(ImageCommand::Import(a)) => verb("image-import", script_args(&a)?),
            Subcommand::Service(ServiceCommand::Add(ServiceAdd::Container(a))) => {
                verb("service-add", script_args(&a)?)
            }
            Subcommand::Service(ServiceCommand::Add(ServiceAdd::Command(a))) => {
                verb("service-add", script_args(&a)?)
            }
            Subcommand::Script(a) => {
                let args = script_args(&a)?;
                Ok(Action::File(a.file, args))
            }
            Subcommand::Repl => Ok(Action::Repl),
            Subcommand::Stdlib { name } => Ok(Action::Stdlib(name)),
            Subcommand::Completions { shell } => Ok(Action::Completions(shell)),
        }
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

impl ScriptArgs for Init {}
impl ScriptArgs for Up {}
impl ScriptArgs for NoArgs {}
impl ScriptArgs for Json {}
impl ScriptArgs for Ps {}
impl ScriptArgs for DashboardArgs {}
impl ScriptArgs for Logs {}
impl ScriptArgs for SomeServices {}
impl ScriptArgs for Services {}
impl ScriptArgs for Compile {}
impl ScriptArgs for Build {}
impl ScriptArgs for Script {}
impl ScriptArgs for Task {}
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

impl ScriptArgs for Exec {
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
