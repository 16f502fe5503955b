//! The REPL's own functions: the supervisor verbs with the current project
//! implied (`status()`, `start("web")`, `stop()`, …), `help`, and
//! `exit(n)` that leaves the session.
//!
//! They exist in the REPL engine only: a task script says which project it
//! steers (`load_project()`) once and passes it, as the stdlib's verbs do,
//! while at the prompt the project is the one the session is attached to and
//! typing it each time is noise. Each call finds the project again, as the
//! CLI's verbs do, so an edit to `locald.toml` is seen by the next call.
//! Each form calls the primitive itself (by its typed signature, so
//! `stop(project)` and `stop("web")` stay distinct), never a copy of it.

use rhai::plugin::*;
use rhai::{Engine, EvalAltResult};

use crate::script::handles::ProjectHandle;

/// The value an `exit(n)` carries up through the evaluation (an error no
/// `try`/`catch` can hold, as an interrupt is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitRequest(pub i64);

/// Registers the REPL's functions into `engine`.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(repl_api).into());
}

fn loaded(ctx: &NativeCallContext) -> Result<ProjectHandle, Box<EvalAltResult>> {
    ctx.call_native_fn("load_project", ())
}

/// The project for what needs only its supervisor: located (works while its
/// config has errors) when a supervisor runs, loaded otherwise.
fn for_supervisor(ctx: &NativeCallContext) -> Result<ProjectHandle, Box<EvalAltResult>> {
    let project: ProjectHandle = ctx.call_native_fn("locate_project", ())?;
    if ctx.call_native_fn::<bool>("is_running", (project.clone(),))? {
        Ok(project)
    } else {
        loaded(ctx)
    }
}

#[export_module]
pub mod repl_api {
    use super::{for_supervisor, loaded, ExitRequest};
    use crate::script::handles::ProjectHandle;

    /// `status(project)` for the attached project.
    #[rhai_fn(return_raw, name = "status")]
    pub fn status_here(ctx: NativeCallContext) -> Result<rhai::Array, Box<EvalAltResult>> {
        let project = for_supervisor(&ctx)?;
        ctx.call_native_fn("status", (project,))
    }

    /// `print_status(project)` for the attached project.
    #[rhai_fn(return_raw, name = "print_status")]
    pub fn print_status_here(ctx: NativeCallContext) -> Result<(), Box<EvalAltResult>> {
        let project = for_supervisor(&ctx)?;
        ctx.call_native_fn("print_status", (project,))
    }

    /// `start(project, name)` for the attached project.
    #[rhai_fn(return_raw, name = "start")]
    pub fn start_here(
        ctx: NativeCallContext,
        name: ImmutableString,
    ) -> Result<(), Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        ctx.call_native_fn("start", (project, name))
    }

    /// `stop(project)` for the attached project: every service, the
    /// supervisor stays.
    #[rhai_fn(return_raw, name = "stop")]
    pub fn stop_all_here(ctx: NativeCallContext) -> Result<(), Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        ctx.call_native_fn("stop", (project,))
    }

    /// `stop(project, name)` for the attached project.
    #[rhai_fn(return_raw, name = "stop")]
    pub fn stop_here(
        ctx: NativeCallContext,
        name: ImmutableString,
    ) -> Result<(), Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        ctx.call_native_fn("stop", (project, name))
    }

    /// `restart(project, name)` for the attached project.
    #[rhai_fn(return_raw, name = "restart")]
    pub fn restart_here(
        ctx: NativeCallContext,
        name: ImmutableString,
    ) -> Result<(), Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        ctx.call_native_fn("restart", (project, name))
    }

    /// `reload(project)` for the attached project.
    #[rhai_fn(return_raw, name = "reload")]
    pub fn reload_here(ctx: NativeCallContext) -> Result<rhai::Map, Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        ctx.call_native_fn("reload", (project,))
    }

    /// `down(project)` for the attached project (works while its config has
    /// errors).
    #[rhai_fn(return_raw, name = "down")]
    pub fn down_here(ctx: NativeCallContext) -> Result<bool, Box<EvalAltResult>> {
        let project: ProjectHandle = ctx.call_native_fn("locate_project", ())?;
        ctx.call_native_fn("down", (project,))
    }

    /// `tasks(project)` for the attached project.
    #[rhai_fn(return_raw, name = "tasks")]
    pub fn tasks_here(ctx: NativeCallContext) -> Result<rhai::Array, Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        ctx.call_native_fn("tasks", (project,))
    }

    /// `run_task(project, name)` for the attached project.
    #[rhai_fn(return_raw, name = "run_task")]
    pub fn run_task_here(
        ctx: NativeCallContext,
        name: ImmutableString,
    ) -> Result<i64, Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        ctx.call_native_fn("run_task", (project, name))
    }

    /// `run_task(project, name, argv)` for the attached project.
    #[rhai_fn(return_raw, name = "run_task")]
    pub fn run_task_with_here(
        ctx: NativeCallContext,
        name: ImmutableString,
        argv: rhai::Array,
    ) -> Result<i64, Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        ctx.call_native_fn("run_task", (project, name, argv))
    }

    /// `wait_healthy(project)` for the attached project.
    #[rhai_fn(return_raw, name = "wait_healthy")]
    pub fn wait_healthy_here(ctx: NativeCallContext) -> Result<(), Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        ctx.call_native_fn("wait_healthy", (project,))
    }

    /// `wait_healthy(project, options)` for the attached project
    /// (`wait_healthy(#{ services: ["db"], timeout: "30s" })`).
    #[rhai_fn(return_raw, name = "wait_healthy")]
    pub fn wait_healthy_with_here(
        ctx: NativeCallContext,
        options: rhai::Map,
    ) -> Result<(), Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        ctx.call_native_fn("wait_healthy", (project, options))
    }

    /// `dashboard_url(project)` for the attached project.
    #[rhai_fn(return_raw, name = "dashboard_url")]
    pub fn dashboard_url_here(ctx: NativeCallContext) -> Result<Dynamic, Box<EvalAltResult>> {
        let project = for_supervisor(&ctx)?;
        ctx.call_native_fn("dashboard_url", (project,))
    }

    /// `logs(project)` for the attached project.
    #[rhai_fn(return_raw, name = "logs")]
    pub fn logs_here(ctx: NativeCallContext) -> Result<rhai::Array, Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        ctx.call_native_fn("logs", (project,))
    }

    /// `logs(project, #{ service: name })` for the attached project.
    #[rhai_fn(return_raw, name = "logs")]
    pub fn service_logs_here(
        ctx: NativeCallContext,
        name: ImmutableString,
    ) -> Result<rhai::Array, Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        let mut options = rhai::Map::new();
        options.insert("service".into(), name.into());
        ctx.call_native_fn("logs", (project, options))
    }

    /// `print_logs(project, #{ service: name })` for the attached project.
    #[rhai_fn(return_raw, name = "print_logs")]
    pub fn print_logs_here(
        ctx: NativeCallContext,
        name: ImmutableString,
    ) -> Result<(), Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        let mut options = rhai::Map::new();
        options.insert("service".into(), name.into());
        ctx.call_native_fn("print_logs", (project, options))
    }

    /// `print_logs(project, options)` for the attached project, with
    /// `service` set to `name` (`print_logs("web", #{ follow: true })`).
    #[rhai_fn(return_raw, name = "print_logs")]
    pub fn print_logs_with_here(
        ctx: NativeCallContext,
        name: ImmutableString,
        mut options: rhai::Map,
    ) -> Result<(), Box<EvalAltResult>> {
        let project = loaded(&ctx)?;
        options.insert("service".into(), name.into());
        ctx.call_native_fn("print_logs", (project, options))
    }

    /// What the REPL offers (`help`), or a function's signatures and
    /// documentation (`help("name")`).
    #[rhai_fn(name = "help")]
    pub fn help_about(ctx: NativeCallContext, name: &str) {
        let catalog = super::super::catalog::Catalog::of(ctx.engine());
        crate::sandbox::stdout::print_line(super::super::help::about(&catalog, name).trim_end());
    }

    /// What the REPL offers: its commands and the supervisor verbs.
    #[rhai_fn(name = "help")]
    pub fn help_overview() {
        crate::sandbox::stdout::print_line(super::super::help::overview().trim_end());
    }

    /// Leaves the REPL with exit code `code`.
    #[rhai_fn(return_raw, name = "exit")]
    pub fn exit_with(code: i64) -> Result<(), Box<EvalAltResult>> {
        Err(EvalAltResult::ErrorTerminated(Dynamic::from(ExitRequest(code)), Position::NONE).into())
    }

    /// Leaves the REPL (exit code 0).
    #[rhai_fn(return_raw, name = "exit")]
    pub fn exit_now() -> Result<(), Box<EvalAltResult>> {
        exit_with(0)
    }
}
