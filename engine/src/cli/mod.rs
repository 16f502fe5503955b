//! The command line: parse arguments, then hand them to the built-in script
//! of the verb. No verb logic lives here; it lives in `stdlib/*.rhai` over the
//! engine's primitives, so users can read and reuse it.

mod args;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;
use rhai::{Dynamic, Map};

pub use args::{Cli, ContainerCommand, ImageCommand, ServiceAdd, ServiceCommand, Subcommand};

use crate::program::Program;
use crate::{sandbox, script};

/// Entry point of the `locald` binary; returns the process exit code.
pub fn main() -> i32 {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // Hidden entries the supervisor re-executes this binary with; they must
    // not pay for argument parsing or logging set-up.
    match argv.get(1).and_then(|a| a.to_str()) {
        Some("__service-init") => crate::supervisor::service_init_main(argv[2..].to_vec()),
        Some("__supervise") => {
            let root = argv
                .iter()
                .skip(2)
                .skip_while(|a| *a != "--root")
                .nth(1)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            crate::supervisor::supervise_main(&root)
        }
        _ => {}
    }

    let cli = Cli::parse_from(argv);
    init_tracing(cli.verbose);
    if let Some(dir) = &cli.directory {
        if let Err(e) = std::env::set_current_dir(dir) {
            let message = format!("cannot change to {}: {e}", dir.display());
            eprintln!(
                "error: {}",
                crate::sandbox::terminal_text::for_terminal(&message)
            );
            return 2;
        }
    }
    match cli.command.execute() {
        Ok(code) => code,
        Err(error) => {
            // Config diagnostics are rendered whole, `error:` header included.
            let text = format!("{error:#}");
            // Errors quote what registries, images and configs said: never raw.
            let text = crate::sandbox::terminal_text::for_terminal(text.trim_end());
            let text = text.as_ref();
            if text.starts_with("error") {
                eprintln!("{text}");
            } else {
                eprintln!("error: {text}");
            }
            1
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

impl Subcommand {
    /// Runs the verb: its built-in script, with its arguments as `args`.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            Subcommand::Repl => Ok(script::repl()?),
            Subcommand::Stdlib { name: None } => {
                for (name, _) in script::stdlib::SCRIPTS {
                    println!("{name}");
                }
                Ok(0)
            }
            Subcommand::Stdlib { name: Some(name) } => match script::stdlib::get(&name) {
                Some(source) => {
                    print!("{source}");
                    Ok(0)
                }
                None => anyhow::bail!("no built-in script named `{name}` (see `locald stdlib`)"),
            },
            Subcommand::Script { file, args } => {
                let mut map = Map::new();
                map.insert("argv".into(), strings(args));
                report(script::run_file(&file, map))
            }
            verb => {
                let (name, args) = verb.into_script_call();
                report(script::run_verb(name, args))
            }
        }
    }

    /// The built-in script and the `args` map it receives.
    fn into_script_call(self) -> (&'static str, Map) {
        let mut args = Map::new();
        let mut set = |key: &str, value: Dynamic| {
            args.insert(key.into(), value);
        };
        let name = match self {
            Subcommand::Up {
                detach,
                wait,
                timeout,
                services,
            } => {
                set("detach", detach.into());
                set("wait", wait.into());
                set("timeout", optional(timeout));
                set("services", strings(services));
                "up"
            }
            Subcommand::Down => "down",
            Subcommand::Status { json } => {
                set("json", json.into());
                "status"
            }
            Subcommand::Logs {
                service,
                follow,
                lines,
            } => {
                set("service", optional(service));
                set("follow", follow.into());
                set("lines", Dynamic::from(lines as i64));
                "logs"
            }
            Subcommand::Start { service } => {
                set("service", service.into());
                "start"
            }
            Subcommand::Stop { service } => {
                set("service", optional(service));
                "stop"
            }
            Subcommand::Restart { service } => {
                set("service", service.into());
                "restart"
            }
            Subcommand::Reload => "reload",
            Subcommand::Try {
                save,
                no_save,
                command,
            } => {
                set("save", optional(save));
                set("no_save", no_save.into());
                set("command", words_program(command));
                "try"
            }
            Subcommand::Run { service, command } => {
                set("service", service.into());
                set("command", words_program(command));
                "run"
            }
            Subcommand::Compile { file } => {
                set("file", optional(file.map(|f| f.display().to_string())));
                "compile"
            }
            Subcommand::Container(ContainerCommand::Run {
                interactive,
                tty,
                rm: _,
                env,
                volume,
                workdir,
                user,
                entrypoint,
                pull,
                cap_add,
                cap_drop,
                security_opt,
                image,
                command,
            }) => {
                set("interactive", interactive.into());
                set("tty", tty.into());
                set("env", strings(env));
                set("volumes", strings(volume));
                set("workdir", optional(workdir));
                set("user", optional(user));
                set("entrypoint", optional(entrypoint));
                set("pull", pull.into());
                set("cap_add", strings(cap_add));
                set("cap_drop", strings(cap_drop));
                set("security_opt", strings(security_opt));
                set("image", image.into());
                // Docker's rule: the words are the argv, one word included;
                // none leaves the image's own command.
                set(
                    "command",
                    Program::exec(command).map_or(Dynamic::UNIT, Dynamic::from),
                );
                "container-run"
            }
            Subcommand::Image(ImageCommand::Pull { reference }) => {
                set("reference", reference.into());
                "image-pull"
            }
            Subcommand::Image(ImageCommand::Ls { json }) => {
                set("json", json.into());
                "image-ls"
            }
            Subcommand::Image(ImageCommand::Rm { references }) => {
                set("references", strings(references));
                "image-rm"
            }
            Subcommand::Image(ImageCommand::Prune) => "image-prune",
            Subcommand::Image(ImageCommand::Import { path, name }) => {
                set("path", path.display().to_string().into());
                set("name", optional(name));
                "image-import"
            }
            Subcommand::Service(ServiceCommand::Add(ServiceAdd::Container {
                image,
                name,
                port,
                command,
            })) => {
                set("image", image.into());
                set("name", name.into());
                set(
                    "port",
                    port.map_or(Dynamic::UNIT, |p| Dynamic::from(i64::from(p))),
                );
                set("command", optional(command));
                "service-add"
            }
            Subcommand::Service(ServiceCommand::Add(ServiceAdd::Command {
                name,
                port,
                command,
            })) => {
                set("image", Dynamic::UNIT);
                set("name", name.into());
                set(
                    "port",
                    port.map_or(Dynamic::UNIT, |p| Dynamic::from(i64::from(p))),
                );
                set("command", words_program(command));
                "service-add"
            }
            Subcommand::Repl | Subcommand::Stdlib { .. } | Subcommand::Script { .. } => {
                unreachable!("handled in execute")
            }
        };
        (name, args)
    }
}

fn report(result: Result<i32, sandbox::ScriptError>) -> anyhow::Result<i32> {
    match result {
        Ok(code) => Ok(code),
        Err(e) if e.is_interrupt() => Ok(sandbox::interrupt::exit_code()),
        Err(e) => Err(e.into()),
    }
}

fn optional(value: Option<String>) -> Dynamic {
    value.map_or(Dynamic::UNIT, Dynamic::from)
}

/// The words after `--` as a `Program` (one word is a shell line); clap
/// requires at least one.
fn words_program(words: Vec<String>) -> Dynamic {
    Program::from_words(words).map_or(Dynamic::UNIT, Dynamic::from)
}

fn strings(values: Vec<String>) -> Dynamic {
    Dynamic::from_array(values.into_iter().map(Dynamic::from).collect())
}
