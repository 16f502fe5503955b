//! The primitives: locald's public scripting API. Each file is one area, an
//! `#[export_module]` plugin module registered into every verb engine.
//!
//! Primitives that fail return an error at the call position; scripts may
//! catch it with `try { … } catch (e) { … }`.

use rhai::plugin::*;
use rhai::{Engine, EvalAltResult};

pub mod build;
mod build_cache;
pub mod build_phases;
pub mod build_service;
pub mod buildpacks;
pub mod capture;
pub mod config;
pub mod container;
pub mod options;
pub mod ports;
pub mod process;
pub mod processes;
pub mod supervisor;
pub mod tasks;
pub mod terminal;
pub mod waiting;

#[cfg(test)]
mod tests;

use super::handles::{ProjectHandle, ServiceHandle};

/// Registers every primitive and the project types into `engine`.
pub fn register_all(engine: &mut Engine) {
    engine.build_type::<ProjectHandle>();
    engine.build_type::<ServiceHandle>();
    engine.build_type::<crate::program::Program>();
    super::handles::register_runtime_types(engine);
    build_phases::register_types(engine);
    engine.register_global_module(exported_module!(project_api).into());
    engine.register_global_module(exported_module!(ports::ports_api).into());
    engine.register_global_module(exported_module!(process::process_api).into());
    engine.register_global_module(exported_module!(processes::processes_api).into());
    engine.register_global_module(exported_module!(terminal::terminal_api).into());
    engine.register_global_module(exported_module!(config::config_api).into());
    engine.register_global_module(exported_module!(supervisor::supervisor_api).into());
    engine.register_global_module(exported_module!(container::container_api).into());
    engine.register_global_module(exported_module!(tasks::tasks_api).into());
    engine.register_global_module(exported_module!(build::build_api).into());
    engine.register_global_module(exported_module!(build_phases::build_phases_api).into());
    engine.register_global_module(exported_module!(build_service::build_service_api).into());
    engine.register_global_module(exported_module!(waiting::waiting_api).into());
}

/// Turns any displayable error into a script error at the caller's position.
pub(crate) fn fail(ctx: &NativeCallContext, error: impl std::fmt::Display) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        error.to_string().into(),
        ctx.call_position(),
    ))
}

#[export_module]
pub mod project_api {

    use crate::script::handles::ProjectHandle;

    /// The project of the current directory (`locald.toml` / `locald.rhai`
    /// here or in a parent directory).
    #[rhai_fn(return_raw)]
    pub fn load_project(ctx: NativeCallContext) -> Result<ProjectHandle, Box<EvalAltResult>> {
        let cwd = std::env::current_dir().map_err(|e| super::fail(&ctx, e))?;
        crate::project::load_project(&cwd)
            .map(ProjectHandle::new)
            .map_err(|e| crate::script::throw(&ctx, e))
    }

    /// Where the project of the current directory lives, for what needs only
    /// its supervisor (`down`, and `status` while one runs): its directory and
    /// name, with no services. It evaluates no script, so it answers at once
    /// whatever the config holds: errors after an edit, or a `locald.rhai`
    /// that loops. Fails only when there is no project here at all.
    #[rhai_fn(return_raw)]
    pub fn locate_project(ctx: NativeCallContext) -> Result<ProjectHandle, Box<EvalAltResult>> {
        let cwd = std::env::current_dir().map_err(|e| super::fail(&ctx, e))?;
        crate::project::locate_project(&cwd)
            .map(ProjectHandle::new)
            .map_err(|e| crate::script::throw(&ctx, e))
    }

    /// True when the current directory belongs to a project.
    pub fn has_project() -> bool {
        std::env::current_dir()
            .ok()
            .and_then(|cwd| crate::config::find_config(&cwd))
            .is_some()
    }
}
