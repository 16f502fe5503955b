//! Process primitives: what the supervisor runs (`processes`,
//! `print_processes`, behind `locald ps`), one-off runs under it
//! (`run_detached`, behind `locald run --detach`), and finding one process
//! by service name or ID (`process`), with the errors a person needs: the
//! known targets, an ambiguous prefix, a service that is not running.

use rhai::plugin::*;
use rhai::Map;
use serde::Deserialize;

use super::options::{self, OptionsError};
use super::supervisor::{connect, SteerError};
use crate::control::Client;
use crate::script::handles::{ProjectHandle, ServiceHandle};
use crate::supervisor::{ProcessInfo, SupervisorError};

/// Why a process primitive failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessesError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Steer(#[from] SteerError),
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Process(#[from] super::process::ProcessError),
    #[error(transparent)]
    UnknownService(#[from] crate::script::handles::UnknownService),
    #[error(transparent)]
    Resolve(#[from] crate::script::handles::ResolveError),
    #[error("-t (tty) needs a terminal: stdin is not one")]
    NoTerminal,
    #[error("cannot start the exec helper: {0}")]
    Helper(std::io::Error),
    #[error(transparent)]
    Container(#[from] crate::control::exec::FindError),
}

/// A target (service name or process ID) that names no single process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no service or process ID `{target}`{}", known(.services, .ids))]
    Unknown {
        target: String,
        services: Vec<String>,
        ids: Vec<String>,
    },
    #[error("`{target}` is the start of several process IDs ({}): give more of it", .ids.join(", "))]
    Ambiguous { target: String, ids: Vec<String> },
    #[error(
        "service `{service}` is not running (start it with `locald start {service}`, \
         or run a new process in its environment with `locald run {service} -- COMMAND`)"
    )]
    NotRunning { service: String },
}

fn known(services: &[String], ids: &[String]) -> String {
    let mut parts = Vec::new();
    if !services.is_empty() {
        parts.push(format!("services: {}", services.join(", ")));
    }
    if !ids.is_empty() {
        parts.push(format!("process IDs: {}", ids.join(", ")));
    }
    if parts.is_empty() {
        return ": the project declares no services".to_string();
    }
    format!("; known {}", parts.join("; "))
}

/// The one ID in `ids` that is `target` or starts with it.
pub fn match_id<'a>(
    ids: impl IntoIterator<Item = &'a str>,
    target: &str,
) -> Result<Option<&'a str>, Vec<String>> {
    let mut matches: Vec<&str> = Vec::new();
    for id in ids {
        if id == target {
            return Ok(Some(id));
        }
        if !target.is_empty() && id.starts_with(target) {
            matches.push(id);
        }
    }
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(many.iter().map(|id| id.to_string()).collect()),
    }
}

/// The process `target` names among `processes`: a service's (by name),
/// or any (by ID, or a prefix of one only it has).
pub fn resolve(
    services: &[String],
    processes: &[ProcessInfo],
    target: &str,
) -> Result<ProcessInfo, TargetError> {
    if services.iter().any(|service| service == target) {
        return processes
            .iter()
            .find(|process| !process.one_off && process.service == target)
            .cloned()
            .ok_or_else(|| TargetError::NotRunning {
                service: target.to_string(),
            });
    }
    let ids = processes.iter().map(|process| process.id.as_str());
    match match_id(ids, target) {
        Ok(Some(id)) => Ok(processes
            .iter()
            .find(|process| process.id == id)
            .cloned()
            .expect("the matched ID is one of the processes")),
        Ok(None) => Err(TargetError::Unknown {
            target: target.to_string(),
            services: services.to_vec(),
            ids: processes.iter().map(|process| process.id.clone()).collect(),
        }),
        Err(ids) => Err(TargetError::Ambiguous {
            target: target.to_string(),
            ids,
        }),
    }
}

/// The IDs of the one-off runs whose log is kept (`logs/runs/ID.log`).
pub fn logged_runs(project: &ProjectHandle) -> Vec<String> {
    let state = crate::project::state_dir::StateDir::new(&project.0.state_dir());
    crate::control::log_names(&state.runs_dir())
}

/// The options of `processes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessesOptions {
    /// Also the finished one-off runs whose log is kept.
    pub all: bool,
}

/// The options of `print_processes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrintProcessesOptions {
    /// Also the finished one-off runs whose log is kept.
    pub all: bool,
    /// JSON instead of the table.
    pub json: bool,
}

/// What the running supervisor runs; nothing when none runs.
fn processes(project: &ProjectHandle, all: bool) -> Result<Vec<ProcessInfo>, ProcessesError> {
    match Client::connect(&project.0.state_dir())? {
        Some(mut client) => Ok(client.processes(all)?),
        None => Ok(Vec::new()),
    }
}

fn service_names(project: &ProjectHandle) -> Vec<String> {
    project.0.services.iter().map(|s| s.name.clone()).collect()
}

/// `process(project, target)`.
pub fn process(project: &ProjectHandle, target: &str) -> Result<ProcessInfo, ProcessesError> {
    let mut client = connect(project)?;
    let processes = client.processes(true)?;
    Ok(resolve(&service_names(project), &processes, target)?)
}

/// `stop(project, ID)`: a one-off run (or a service's process, which stops
/// the service) by ID or prefix.
pub fn stop_process(project: &ProjectHandle, target: &str) -> Result<(), ProcessesError> {
    let mut client = connect(project)?;
    let processes = client.processes(true)?;
    let found = resolve(&service_names(project), &processes, target)?;
    let name = if found.one_off {
        found.id
    } else {
        found.service
    };
    Ok(client.stop(Some(&name))?)
}

fn to_map(process: &ProcessInfo) -> Result<Dynamic, ProcessesError> {
    rhai::serde::to_dynamic(process)
        .map_err(|error| ProcessesError::Supervisor(SupervisorError::Protocol(error.to_string())))
}

#[export_module]
pub mod processes_api {
    use rhai::{Array, Map};

    use crate::script::api::fail;
    use crate::script::handles::{ProjectHandle, ServiceHandle};

    /// The processes the project's supervisor runs (none when none runs), as
    /// maps `#{ id, service, one_off, kind, pid, started_unix_ms, state,
    /// command, exit_code }`: each service's current process, then the
    /// one-off runs.
    #[rhai_fn(return_raw, name = "processes")]
    pub fn processes(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<Array, Box<EvalAltResult>> {
        processes_with(ctx, project, Map::new())
    }

    /// The processes; options `#{ all }`: also the finished one-off runs
    /// whose log is kept, with their `exit_code`.
    #[rhai_fn(return_raw, name = "processes")]
    pub fn processes_with(
        ctx: NativeCallContext,
        project: ProjectHandle,
        options: Map,
    ) -> Result<Array, Box<EvalAltResult>> {
        super::list(&project, options).map_err(|e| fail(&ctx, e))
    }

    /// Prints the processes as the `locald ps` table.
    #[rhai_fn(return_raw, name = "print_processes")]
    pub fn print_processes(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<(), Box<EvalAltResult>> {
        print_processes_with(ctx, project, Map::new())
    }

    /// Prints the processes; options `#{ all, json }` (finished one-off
    /// runs too; JSON instead of the table).
    #[rhai_fn(return_raw, name = "print_processes")]
    pub fn print_processes_with(
        ctx: NativeCallContext,
        project: ProjectHandle,
        options: Map,
    ) -> Result<(), Box<EvalAltResult>> {
        super::print(&project, options).map_err(|e| fail(&ctx, e))
    }

    /// The process `target` names: a service's current one (by service
    /// name), or any (by ID, or the start of one only it has). Fails when
    /// the service is not running, the prefix is ambiguous, or nothing has
    /// that name (listing what has one).
    #[rhai_fn(return_raw)]
    pub fn process(
        ctx: NativeCallContext,
        project: ProjectHandle,
        target: &str,
    ) -> Result<Map, Box<EvalAltResult>> {
        super::process(&project, target)
            .and_then(|found| super::to_map(&found))
            .map(|found| found.cast::<Map>())
            .map_err(|e| fail(&ctx, e))
    }

    /// Runs `command` (a shell line, an array of words or a `Program`)
    /// inside the running process `target` names (a service, or an ID from
    /// `processes`), attached to the terminal, and returns its exit code. A
    /// container service's: in the running container, with its environment,
    /// working directory and user, confined as it is. A host service's: in
    /// its PID namespace (its `/proc` too, so `ps` lists its processes),
    /// working directory and environment. It is killed when the service
    /// stops.
    #[rhai_fn(return_raw, name = "exec")]
    pub fn exec(
        ctx: NativeCallContext,
        project: ProjectHandle,
        target: &str,
        command: Dynamic,
    ) -> Result<i64, Box<EvalAltResult>> {
        exec_with(ctx, project, target, command, Map::new())
    }

    /// `exec` with options `#{ env, workdir, user, interactive, tty }`:
    /// variables added to the service's environment, another working
    /// directory (relative: from the service's), another user, stdin passed
    /// on, a terminal required.
    #[rhai_fn(return_raw, name = "exec")]
    pub fn exec_with(
        ctx: NativeCallContext,
        project: ProjectHandle,
        target: &str,
        command: Dynamic,
        options: Map,
    ) -> Result<i64, Box<EvalAltResult>> {
        super::exec(&project, target, &command, options).map_err(|e| fail(&ctx, e))
    }

    /// Starts `command` (a shell line, an array of words or a `Program`) in
    /// the service's world as a one-off run under the running supervisor,
    /// and returns its ID at once. Its output goes to the logs (`logs ID`,
    /// and the service's, marked `[run ID]`); `stop(project, ID)` stops it.
    #[rhai_fn(return_raw)]
    pub fn run_detached(
        ctx: NativeCallContext,
        service: ServiceHandle,
        command: Dynamic,
    ) -> Result<String, Box<EvalAltResult>> {
        super::run_detached(&service, &command).map_err(|e| fail(&ctx, e))
    }
}

/// `processes(project, options)`.
fn list(project: &ProjectHandle, options: Map) -> Result<rhai::Array, ProcessesError> {
    let ProcessesOptions { all } = options::read("processes", options)?;
    processes(project, all)?.iter().map(to_map).collect()
}

/// `print_processes(project, options)`.
fn print(project: &ProjectHandle, options: Map) -> Result<(), ProcessesError> {
    let PrintProcessesOptions { all, json } = options::read("print_processes", options)?;
    crate::control::print_processes(&processes(project, all)?, json);
    Ok(())
}

/// The options of `exec`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecOptions {
    /// Added to the service's environment.
    #[serde(deserialize_with = "options::env_map")]
    pub env: std::collections::BTreeMap<String, String>,
    /// The working directory: the service's by default; a relative one is
    /// taken from the service's.
    pub workdir: Option<std::path::PathBuf>,
    /// Run as this user (a name), not the service's.
    pub user: Option<String>,
    /// Pass stdin on (without it the command reads end of file).
    pub interactive: bool,
    /// Require a terminal (the command gets it).
    pub tty: bool,
}

/// `exec(project, target, command, options)`: the command's exit code.
fn exec(
    project: &ProjectHandle,
    target: &str,
    command: &Dynamic,
    options: Map,
) -> Result<i64, ProcessesError> {
    use std::io::IsTerminal;
    let options: ExecOptions = options::read("exec", options)?;
    let program = super::process::program_from(command)?;
    if options.tty && !std::io::stdin().is_terminal() {
        return Err(ProcessesError::NoTerminal);
    }
    let found = process(project, target)?;
    let service = project.service(&found.service)?;
    let Some(pid) = found.pid else {
        return Err(TargetError::NotRunning {
            service: found.service,
        }
        .into());
    };
    let mut command = if found.kind == "container" {
        // The container's own environment, directory and user, from its
        // spec; only what was asked for changes them. In a built image, through
        // its launcher, which adds the launch environment the buildpacks set (as
        // `locald run` does).
        let container = crate::control::exec::find_container(pid)?;
        let argv = match &service.spec().build {
            Some(_) => {
                let (entrypoint, args) = crate::project::build::through_launcher(&program);
                entrypoint.into_iter().chain(args).collect()
            }
            None => program.argv(),
        };
        crate::control::exec::container_exec_command(
            &container,
            options.user.as_deref(),
            options.workdir.as_deref(),
            &options.env,
            &argv,
        )
    } else {
        let mut env = service.env()?;
        env.extend(options.env);
        let workdir = match options.workdir {
            Some(dir) => service.spec().workdir.join(dir),
            None => service.spec().workdir.clone(),
        };
        let mut command =
            crate::control::exec::exec_command(pid, options.user.as_deref(), &program.argv())
                .map_err(ProcessesError::Helper)?;
        command.env_clear().envs(env).current_dir(workdir);
        command
    };
    if !options.interactive && !options.tty {
        command.stdin(std::process::Stdio::null());
    }
    Ok(super::process::run_foreground(
        command,
        super::process::OnInterrupt::Stop,
    )?)
}

/// `run_detached(service, command)`.
fn run_detached(service: &ServiceHandle, command: &Dynamic) -> Result<String, ProcessesError> {
    let program = super::process::program_from(command).map_err(|error| {
        ProcessesError::Supervisor(SupervisorError::Protocol(error.to_string()))
    })?;
    let mut client =
        Client::connect(&service.project.state_dir())?.ok_or_else(|| SteerError::NotRunning {
            project: service.project.name.clone(),
        })?;
    Ok(client.run_detached(&service.name, &program)?.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(id: &str, service: &str, one_off: bool) -> ProcessInfo {
        ProcessInfo {
            id: id.into(),
            service: service.into(),
            one_off,
            ..ProcessInfo::default()
        }
    }

    #[test]
    fn targets_are_service_names_ids_or_unique_id_prefixes() {
        let services = vec!["web".to_string(), "db".to_string()];
        let running = vec![
            process("a1b2c3", "web", false),
            process("a1ffff", "web", true),
            process("0c0c0c", "web", true),
        ];
        assert_eq!(resolve(&services, &running, "web").unwrap().id, "a1b2c3");
        assert_eq!(resolve(&services, &running, "a1f").unwrap().id, "a1ffff");
        assert_eq!(resolve(&services, &running, "0c0c0c").unwrap().id, "0c0c0c");
        let ambiguous = resolve(&services, &running, "a1").unwrap_err();
        assert_eq!(
            ambiguous.to_string(),
            "`a1` is the start of several process IDs (a1b2c3, a1ffff): give more of it"
        );
        let stopped = resolve(&services, &running, "db").unwrap_err();
        assert!(
            stopped
                .to_string()
                .starts_with("service `db` is not running"),
            "{stopped}"
        );
        assert!(
            stopped.to_string().contains("locald run db --"),
            "{stopped}"
        );
        let unknown = resolve(&services, &running, "nope").unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "no service or process ID `nope`; known services: web, db; \
             process IDs: a1b2c3, a1ffff, 0c0c0c"
        );
        // An empty target is no prefix of everything.
        assert!(matches!(
            resolve(&services, &running, ""),
            Err(TargetError::Unknown { .. })
        ));
    }
}
