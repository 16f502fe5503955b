//! Task primitives: list a project's tasks, run one (`locald task`), and run
//! a command in a service's world (`locald run`, and a task with `service`):
//! the one place that decides how a command runs as a service would.

use std::path::{Path, PathBuf};

use rhai::plugin::*;
use rhai::{Array, Map};

use super::container::{self, PullStopped, RunContainerOptions};
use super::process::{self, OnInterrupt, ProcessError};
use crate::control::Client;
use crate::model::{Project, Task, TaskAction};
use crate::program::{shell_join, Program};
use crate::project::{TaskError, UnknownTask};
use crate::sandbox::ScriptError;
use crate::script::handles::{ProjectHandle, ResolveError, ServiceHandle, UnknownService};
use crate::supervisor::{SupervisorError, UpOptions};

/// Why a task (or a command in a service) could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tasks(#[from] TaskError),
    #[error(transparent)]
    UnknownTask(#[from] UnknownTask),
    #[error(transparent)]
    UnknownService(#[from] UnknownService),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    /// Ctrl-C (or SIGTERM) while the image was pulled.
    #[error("interrupted")]
    Interrupted,
    #[error("task `{task}`: starting its services: {source}")]
    Dependencies {
        task: String,
        source: Box<SupervisorError>,
    },
    #[error("task `{task}` did not run: {} did not become healthy", .services.join(", "))]
    Unhealthy { task: String, services: Vec<String> },
    #[error("cannot run task `{task}` from {}: {source}", .root.display())]
    Root {
        task: String,
        root: PathBuf,
        source: std::io::Error,
    },
    /// A task script failed: its own error, with its file, line and column.
    #[error(transparent)]
    Script(ScriptError),
}

impl From<PullStopped> for RunError {
    fn from(stopped: PullStopped) -> Self {
        match stopped {
            PullStopped::Interrupted => RunError::Interrupted,
            PullStopped::Failed(error) => RunError::Container(error),
        }
    }
}

/// Runs `program` in `service`'s world, as `locald run` does, attached to
/// the terminal, and returns its exit code. A host service: its environment
/// and working directory. A container service: a new container of its image
/// (its entrypoint applies) with its environment, volumes, confinement and
/// init, stdin forwarded, a terminal when there is one.
pub fn run_in_service(service: &ServiceHandle, program: Program) -> Result<i64, RunError> {
    let env = service.env()?;
    let spec = service.spec();
    let Some(image) = &spec.image else {
        let mut command = program.command();
        command.envs(env).current_dir(&spec.workdir);
        return Ok(process::run_foreground(command, OnInterrupt::Stop)?);
    };
    // A built image's entrypoint runs its process type: CMD goes to its launcher instead,
    // which gives it the launch environment, as `docker run --entrypoint launcher` does.
    let (entrypoint, program) = match &spec.build {
        Some(_) => {
            let (entrypoint, args) = crate::project::build::through_launcher(&program);
            (Some(Program::Exec(entrypoint)), Program::Exec(args))
        }
        None => (None, program),
    };
    let options = RunContainerOptions {
        entrypoint,
        command: Some(program),
        env,
        volumes: spec.volumes.clone(),
        cap_add: spec.security.cap_add.clone(),
        cap_drop: spec.security.cap_drop.clone(),
        security_opt: service.security_opts(),
        init: spec.init,
        hostname: Some(spec.name.clone()),
        interactive: true,
        tty: super::terminal::terminal_api::has_terminal(),
        ..RunContainerOptions::default()
    };
    Ok(container::run_container_options(image, options)?)
}

/// A task as scripts see it: `#{ name, description, kind, command | path,
/// service, depends_on }`.
fn task_map(task: &Task, root: &Path) -> Map {
    let optional = |text: &Option<String>| text.clone().map_or(Dynamic::UNIT, Dynamic::from);
    let mut map = Map::new();
    map.insert("name".into(), task.name.clone().into());
    map.insert("description".into(), optional(&task.description));
    match &task.action {
        TaskAction::Command(line) => {
            map.insert("kind".into(), "command".into());
            map.insert("command".into(), line.clone().into());
        }
        TaskAction::Script(path) => {
            map.insert("kind".into(), "script".into());
            let shown = path.strip_prefix(root).unwrap_or(path);
            map.insert("path".into(), shown.display().to_string().into());
        }
    }
    map.insert("service".into(), optional(&task.service));
    let depends_on: Array = task.depends_on.iter().cloned().map(Dynamic::from).collect();
    map.insert("depends_on".into(), depends_on.into());
    map
}

/// `run_task(project, name, argv)`.
pub fn run_task(project: &ProjectHandle, name: &str, argv: &[String]) -> Result<i64, RunError> {
    let tasks = crate::project::project_tasks(&project.0)?;
    let task = crate::project::find_task(&tasks, name)?;
    if !task.depends_on.is_empty() {
        make_healthy(&project.0, task)?;
    }
    match &task.action {
        TaskAction::Command(line) => {
            let program = Program::Shell(with_arguments(line, argv));
            if let Some(service) = &task.service {
                return run_in_service(&project.service(service)?, program);
            }
            let mut command = program.command();
            command.current_dir(&project.0.root);
            Ok(process::run_foreground(command, OnInterrupt::Stop)?)
        }
        TaskAction::Script(path) => run_script(&project.0, task, path, argv),
    }
}

/// A command task's line with the task's arguments appended, each quoted
/// for the shell as needed (`locald task test 'a b'` → `cargo test 'a b'`).
fn with_arguments(line: &str, argv: &[String]) -> String {
    if argv.is_empty() {
        return line.to_owned();
    }
    format!("{line} {}", shell_join(argv))
}

/// Runs a task script as `locald script` runs one, from the project root,
/// with `argv` as `args.argv`; its value is the exit code.
fn run_script(
    project: &Project,
    task: &Task,
    path: &Path,
    argv: &[String],
) -> Result<i64, RunError> {
    let root_error = |source| RunError::Root {
        task: task.name.clone(),
        root: project.root.clone(),
        source,
    };
    let _in_root = CurrentDir::enter(&project.root).map_err(root_error)?;
    // Relative to the root, so that errors name `tasks/NAME.rhai`.
    let shown = path.strip_prefix(&project.root).unwrap_or(path);
    let mut args = Map::new();
    let words: Array = argv.iter().cloned().map(Dynamic::from).collect();
    args.insert("argv".into(), words.into());
    crate::script::run_file(shown, args)
        .map(i64::from)
        .map_err(RunError::Script)
}

/// The process's working directory changed for a while, put back on drop
/// (a task run from the REPL, or from another task, leaves it as it was).
struct CurrentDir(Option<PathBuf>);

impl CurrentDir {
    fn enter(dir: &Path) -> std::io::Result<CurrentDir> {
        let previous = std::env::current_dir().ok();
        std::env::set_current_dir(dir)?;
        Ok(CurrentDir(previous))
    }
}

impl Drop for CurrentDir {
    fn drop(&mut self) {
        if let Some(previous) = &self.0 {
            let _ = std::env::set_current_dir(previous);
        }
    }
}

/// Makes the task's `depends_on` healthy: nothing to do when the running
/// supervisor says they are ready; otherwise what `up -d --wait SERVICES` does
/// (start a detached supervisor, or bring the running one up to date, and
/// wait until they are healthy).
fn make_healthy(project: &Project, task: &Task) -> Result<(), RunError> {
    let failed = |source| match source {
        SupervisorError::Interrupted => RunError::Interrupted,
        source => RunError::Dependencies {
            task: task.name.clone(),
            source: Box::new(source),
        },
    };
    if let Some(mut client) = Client::connect(&project.state_dir()).map_err(failed)? {
        let statuses = client.status().map_err(failed)?;
        // Ready as `up --wait` means it: healthy, or a job that finished
        // well (which `up -d` would start again).
        let ready = |name: &String| {
            statuses
                .iter()
                .any(|status| &status.name == name && crate::supervisor::wait::is_ready(status))
        };
        if task.depends_on.iter().all(ready) {
            return Ok(());
        }
    }
    let options = UpOptions {
        detach: true,
        wait: true,
        timeout: None,
        services: task.depends_on.clone(),
        ..UpOptions::default()
    };
    match crate::control::up(project, &options) {
        Ok(0) => Ok(()),
        Ok(_) => Err(RunError::Unhealthy {
            task: task.name.clone(),
            services: task.depends_on.clone(),
        }),
        Err(source) => Err(failed(source)),
    }
}

fn words(argv: &Array) -> Vec<String> {
    argv.iter()
        .map(|word| match word.clone().into_string() {
            Ok(text) => text,
            Err(_) => word.to_string(),
        })
        .collect()
}

#[export_module]
pub mod tasks_api {
    use rhai::{Array, Dynamic};

    use crate::script::handles::{ProjectHandle, ServiceHandle};

    /// The project's tasks, sorted by name: `[tasks]` of `locald.toml`,
    /// `task(...)` of `locald.rhai` and the files `tasks/*.rhai`. Each is
    /// `#{ name, description, kind, command, service, depends_on }` (`kind`
    /// "command"), or `#{ name, description, kind, path, service,
    /// depends_on }` (`kind` "script", `path` from the project root).
    #[rhai_fn(return_raw)]
    pub fn tasks(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<Array, Box<EvalAltResult>> {
        let tasks = crate::project::project_tasks(&project.0)
            .map_err(|e| crate::script::throw(&ctx, super::RunError::from(e)))?;
        Ok(tasks
            .iter()
            .map(|task| Dynamic::from_map(super::task_map(task, &project.0.root)))
            .collect())
    }

    /// Runs task `name` from the project root and returns its exit code.
    #[rhai_fn(return_raw, name = "run_task")]
    pub fn run_task(
        ctx: NativeCallContext,
        project: ProjectHandle,
        name: &str,
    ) -> Result<i64, Box<EvalAltResult>> {
        super::run_task(&project, name, &[]).map_err(|e| crate::script::throw(&ctx, e))
    }

    /// Runs task `name` with arguments `argv` and returns its exit code: a
    /// command gets them appended, each quoted for the shell; a script gets
    /// them as `args.argv`, and its value is the code. With `service`, the
    /// command runs in that service's world (as `run_in_service`); with
    /// `depends_on`, those services are made healthy first, under a detached
    /// supervisor started if none runs.
    #[rhai_fn(return_raw, name = "run_task")]
    pub fn run_task_with(
        ctx: NativeCallContext,
        project: ProjectHandle,
        name: &str,
        argv: Array,
    ) -> Result<i64, Box<EvalAltResult>> {
        super::run_task(&project, name, &super::words(&argv))
            .map_err(|e| crate::script::throw(&ctx, e))
    }

    /// Runs a command in the service's world, as `locald run` does, and
    /// returns its exit code: a host service's environment and working
    /// directory; for a container service, a new container of its image
    /// with its environment, volumes and confinement. `command` is a shell
    /// line, an array of words or a `Program`.
    #[rhai_fn(return_raw)]
    pub fn run_in_service(
        ctx: NativeCallContext,
        service: ServiceHandle,
        command: Dynamic,
    ) -> Result<i64, Box<EvalAltResult>> {
        let program = crate::script::api::process::program_from(&command)
            .map_err(|e| crate::script::throw(&ctx, super::RunError::from(e)))?;
        super::run_in_service(&service, program).map_err(|e| crate::script::throw(&ctx, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_see_each_kind_of_task_with_its_fields() {
        let root = Path::new("/srv/app");
        let mut seed = Task::command("seed", "python3 seed.py");
        seed.service = Some("db".into());
        seed.depends_on = vec!["db".into()];
        seed.description = Some("Fill it".into());
        let map = task_map(&seed, root);
        let text = |key: &str| map[key].clone().into_string().unwrap();
        assert_eq!(text("kind"), "command");
        assert_eq!(text("command"), "python3 seed.py");
        assert_eq!(text("service"), "db");
        assert_eq!(text("description"), "Fill it");
        assert_eq!(
            map["depends_on"]
                .clone()
                .into_typed_array::<String>()
                .unwrap(),
            ["db"]
        );
        assert!(!map.contains_key("path"));

        let script = Task {
            action: TaskAction::Script(root.join("tasks/ci.rhai")),
            ..Task::command("ci", "")
        };
        let map = task_map(&script, root);
        assert_eq!(map["kind"].clone().into_string().unwrap(), "script");
        assert_eq!(map["path"].clone().into_string().unwrap(), "tasks/ci.rhai");
        assert!(map["description"].is_unit() && map["service"].is_unit());
        assert!(!map.contains_key("command"));
    }

    #[test]
    fn arguments_are_appended_quoted_for_the_shell() {
        let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(with_arguments("cargo test", &[]), "cargo test");
        assert_eq!(
            with_arguments(
                "cargo test",
                &words(&["--release", "a b", "it's", "$HOME", ""])
            ),
            r#"cargo test --release 'a b' 'it'\''s' '$HOME' ''"#
        );
        // What the shell makes of it: the words as given.
        let line = with_arguments("printf '%s|'", &words(&["a b", "it's", "$HOME", "-n", "*"]));
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|it's|$HOME|-n|*|");
    }
}
