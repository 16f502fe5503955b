//! Running a command in the foreground: the terminal attached, SIGTERM and
//! SIGHUP forwarded, the exit status returned (128+N when killed by signal N).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use rhai::plugin::*;
use rhai::{Array, Map};

use crate::sandbox::interrupt::ForegroundChild;

/// How a script describes a command: one string is a shell command
/// (`sh -c`), an array is an argv run as is.
pub fn command_from(argv: &Dynamic) -> Result<Command, String> {
    if let Some(line) = argv.clone().try_cast::<ImmutableString>() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(line.as_str());
        return Ok(cmd);
    }
    let Some(items) = argv.clone().try_cast::<Array>() else {
        return Err(format!(
            "a command is a string or an array of strings, not {}",
            argv.type_name()
        ));
    };
    let words: Vec<String> = items.iter().map(|w| w.to_string()).collect();
    match words.split_first() {
        Some((program, rest)) if words.len() == 1 && program.contains(' ') => {
            // A single word with spaces is what users type as a shell line.
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(program).args(rest);
            Ok(cmd)
        }
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest);
            Ok(cmd)
        }
        None => Err("the command is empty".to_string()),
    }
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
    Ok(exit_code(status))
}

pub fn exit_code(status: std::process::ExitStatus) -> i64 {
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => 1,
    }
}

#[export_module]
pub mod process_api {
    use rhai::Map;

    /// Runs a command in the foreground and returns its exit code. `argv` is a
    /// shell command string or an array of words.
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
        let mut cmd = super::command_from(&argv).map_err(|e| crate::script::api::fail(&ctx, e))?;
        super::apply_options(&mut cmd, &options).map_err(|e| crate::script::api::fail(&ctx, e))?;
        super::run_foreground(cmd).map_err(|e| crate::script::api::fail(&ctx, e))
    }
}
