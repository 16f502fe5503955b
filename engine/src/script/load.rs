//! Loading a project: find `locald.toml` / `locald.rhai`, compile the TOML to
//! Rhai, and evaluate both through the declaration primitives `project()` and
//! `service()`. This is the one way every command (and the supervisor daemon)
//! gets a [`Project`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::{Engine, EvalAltResult, Map, NativeCallContext, Scope};

use super::error::{LoadError, ScriptError};
use super::sandbox::base_engine;
use crate::config;
use crate::model::{Project, Service};

/// What the declaration primitives collect while a project script runs.
#[derive(Default)]
struct Declarations {
    name: Option<String>,
    services: Vec<Service>,
}

/// Loads the project whose config is in `start` or the nearest parent.
pub fn load_project(start: &Path) -> Result<Project, LoadError> {
    let files = config::find_config(start).ok_or_else(|| LoadError::NoConfig(start.into()))?;
    let declared = Arc::new(Mutex::new(Declarations::default()));
    let engine = declaration_engine(declared.clone(), files.dir.clone());

    if let Some(toml_path) = &files.toml {
        let source = read(toml_path)?;
        let script = config::compile_toml(toml_path, &source)?;
        let name = format!("{} (compiled)", toml_path.display());
        eval(&engine, &name, &script)?;
    }
    if let Some(rhai_path) = &files.rhai {
        let source = read(rhai_path)?;
        eval(&engine, &rhai_path.display().to_string(), &source)?;
    }

    let declared = std::mem::take(&mut *lock(&declared));
    let project = Project {
        name: declared.name.unwrap_or_else(|| dir_name(&files.dir)),
        root: files.dir,
        services: declared.services,
    };
    config::check_project(&project).map_err(LoadError::Invalid)?;
    Ok(project)
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn eval(engine: &Engine, source_name: &str, source: &str) -> Result<(), ScriptError> {
    let mut ast = engine
        .compile(source)
        .map_err(|e| ScriptError::from_parse(source_name, source, &e))?;
    ast.set_source(source_name);
    engine
        .run_ast_with_scope(&mut Scope::new(), &ast)
        .map_err(|e| ScriptError::from_eval(source_name, source, &e, false))
}

fn lock(declared: &Mutex<Declarations>) -> std::sync::MutexGuard<'_, Declarations> {
    // A panic while holding this lock cannot leave it inconsistent: every
    // update is a single push or assignment.
    declared.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "project".to_string())
}

/// The engine a project script runs in: the sandbox plus `project(name)` and
/// `service(name, #{...})`.
fn declaration_engine(declared: Arc<Mutex<Declarations>>, base_dir: PathBuf) -> Engine {
    let mut engine = base_engine();
    let for_project = declared.clone();
    engine.register_fn(
        "project",
        move |ctx: NativeCallContext, name: &str| -> Result<(), Box<EvalAltResult>> {
            if name.trim().is_empty() {
                return Err(runtime_error(&ctx, "project name must not be empty".into()));
            }
            lock(&for_project).name = Some(name.to_string());
            Ok(())
        },
    );
    engine.register_fn(
        "service",
        move |ctx: NativeCallContext, name: &str, spec: Map| -> Result<(), Box<EvalAltResult>> {
            let service = config::service_from_map(name, &spec, &base_dir)
                .map_err(|e| runtime_error(&ctx, e.to_string()))?;
            let mut declared = lock(&declared);
            if declared.services.iter().any(|s| s.name == name) {
                return Err(runtime_error(
                    &ctx,
                    format!("service `{name}` is declared twice"),
                ));
            }
            declared.services.push(service);
            Ok(())
        },
    );
    engine
}

pub(crate) fn runtime_error(ctx: &NativeCallContext, message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        message.into(),
        ctx.call_position(),
    ))
}
