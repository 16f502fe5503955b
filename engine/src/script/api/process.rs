//! Running a command in the foreground: the terminal attached, SIGTERM and
//! SIGHUP forwarded, the exit status returned (128+N when killed by signal N).

use std::collections::BTreeMap;
use std::process::Command;

use locald_shim_protocol::exit::exit_code;

use rhai::plugin::*;
use rhai::{Array, Map};

use crate::program::Program;
use crate::sandbox::interrupt::ForegroundChild;

/// How a script gives a command: a `Program` (what the CLI passes as
/// `args.command`), a string (a shell line, run by `sh -c`), or an array of
/// words (an argv, run as it is).
pub fn program_from(value: &Dynamic) -> Result<Program, String> {
    if let Some(program) = value.clone().try_cast::<Program>() {
        return Ok(program);
    }
    if let Some(line) = value.clone().try_cast::<ImmutableString>() {
        return Ok(Program::Shell(line.to_string()));
    }
    let Some(items) = value.clone().try_cast::<Array>() else {
        return Err(format!(
            "a command is a string, an array of strings or a Program, not {}",
            value.type_name()
        ));
    };
    Program::exec(items.iter().map(|word| word.to_string()).collect()).map_err(|e| e.to_string())
}

/// Options of `run_command`: `env` (a map added to the environment), `cwd`.
pub fn apply_options(cmd: &mut Command, options: &Map) -> Result<(), String> {
    for (key, value) in options {
        match key.as_str() {
            "env" => {
                let env = value
                    .clone()
                    .try_cast::<Map>()
                    .ok_or("`env` must be a map of strings")?;
                let env: BTreeMap<String, String> = env
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                cmd.envs(env);
            }
            "cwd" => {
                cmd.current_dir(value.to_string());
            }
            other => return Err(format!("unknown option `{other}` (known: env, cwd)")),
        }
    }
    Ok(())
}

/// Runs `cmd` attached to the terminal and returns its exit code.
pub fn run_foreground(mut cmd: Command) -> Result<i64, String> {
    let program = format!("{:?}", cmd.get_program());
    // spawn(2) reports a missing working directory as ENOENT, which would read
    // as "command not found".
    if let Some(dir) = cmd.get_current_dir() {
        if !dir.is_dir() {
            return Err(format!(
                "working directory {} does not exist (or is not a directory)",
                dir.display()
            ));
        }
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("command not found: {program}"),
        _ => format!("cannot run {program}: {e}"),
    })?;
    let _foreground = ForegroundChild::enter(child.id());
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {program}: {e}"))?;
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

    /// A `Program` from words as a command line gives them: one word is a
    /// shell line, several are an argv. A string is a shell line.
    #[rhai_fn(return_raw)]
    pub fn program(ctx: NativeCallContext, words: Dynamic) -> Result<Program, Box<EvalAltResult>> {
        let fail = |e: String| crate::script::api::fail(&ctx, e);
        match words.clone().try_cast::<Array>() {
            Some(items) => Program::from_words(items.iter().map(|w| w.to_string()).collect())
                .map_err(|e| fail(e.to_string())),
            None => super::program_from(&words).map_err(fail),
        }
    }

    /// Runs a command in the foreground and returns its exit code. `argv` is a
    /// shell line (string), an array of words, or a `Program`.
    #[rhai_fn(return_raw, name = "run_command")]
    pub fn run_command(ctx: NativeCallContext, argv: Dynamic) -> Result<i64, Box<EvalAltResult>> {
        run_command_with(ctx, argv, Map::new())
    }

    /// Runs a command in the foreground with options `#{ env: #{…}, cwd: "…" }`
    /// and returns its exit code.
    #[rhai_fn(return_raw, name = "run_command")]
    pub fn run_command_with(
        ctx: NativeCallContext,
        argv: Dynamic,
        options: Map,
    ) -> Result<i64, Box<EvalAltResult>> {
        let mut cmd = super::program_from(&argv)
            .map_err(|e| crate::script::api::fail(&ctx, e))?
            .command();
        super::apply_options(&mut cmd, &options).map_err(|e| crate::script::api::fail(&ctx, e))?;
        super::run_foreground(cmd).map_err(|e| crate::script::api::fail(&ctx, e))
    }
}
