//! Running scripts: the built-in verbs and a user's task script (the REPL
//! is [`super::repl`]).
//! The script's result is the command's exit code (`()` is 0, an integer is
//! itself, `exit(n)` ends early with n).

use std::path::Path;

use rhai::{Dynamic, Engine, Map, Scope, AST};

use super::{api, stdlib};
use crate::sandbox::{self, interrupt, Limits, OnInterrupt, ScriptError};

/// The engine verbs and task scripts run in: the sandbox plus every primitive.
pub fn verb_engine() -> Engine {
    interrupt::install();
    let mut engine = sandbox::base_engine(Limits::SCRIPT, OnInterrupt::Consume);
    api::register_all(&mut engine);
    engine
}

/// Runs the built-in script `name` with `args` bound to the constant `args`.
pub fn run_verb(name: &str, args: Map) -> Result<i32, ScriptError> {
    let Some(source) = stdlib::get(name) else {
        return Err(ScriptError::unstarted(
            &format!("stdlib/{name}.rhai"),
            format!("no built-in script named `{name}`"),
        ));
    };
    run_source(&format!("stdlib/{name}.rhai"), source, args, true)
}

/// Runs a user's script file with `args` (its command-line words as an array).
pub fn run_file(path: &Path, args: Map) -> Result<i32, ScriptError> {
    let name = path.display().to_string();
    let source = crate::project::read_source(path, &Limits::SCRIPT)
        .map_err(|e| ScriptError::unstarted(&name, e.to_string()))?;
    run_source(&name, &source, args, false)
}

fn run_source(name: &str, source: &str, args: Map, stdlib: bool) -> Result<i32, ScriptError> {
    let engine = verb_engine();
    let ast = compile(&engine, name, source)?;
    let mut scope = Scope::new();
    scope.push_constant("args", args);
    let result = engine
        .eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
        .map_err(|e| ScriptError::from_eval(name, source, &e, stdlib))?;
    // A stop asked for during the last statement (Ctrl-C in a primitive
    // that does not look, stdout closed by `| head`) still ends the command
    // as stopped, not with the script's value.
    if interrupt::take() {
        return Err(ScriptError::interrupted(name));
    }
    Ok(exit_code(&result))
}

fn compile(engine: &Engine, name: &str, source: &str) -> Result<AST, ScriptError> {
    let mut ast = engine
        .compile(source)
        .map_err(|e| ScriptError::from_parse(name, source, &e))?;
    ast.set_source(name);
    Ok(ast)
}

fn exit_code(value: &Dynamic) -> i32 {
    if let Ok(code) = value.as_int() {
        return i32::try_from(code).unwrap_or(1);
    }
    if let Ok(ok) = value.as_bool() {
        return if ok { 0 } else { 1 };
    }
    0
}
