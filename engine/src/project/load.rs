//! Loading a project: find `locald.toml` / `locald.rhai`, load the TOML
//! straight into services (one pass; `locald compile` shows the same project
//! as Rhai), then evaluate `locald.rhai` through the declaration primitives
//! `project()`, `service()` and `task()`, within [`Limits::PROJECT`]. This is the one
//! way every command (and the supervisor daemon) gets a [`Project`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::{Engine, EvalAltResult, Map, NativeCallContext, Scope};

use super::LoadError;
use crate::config;
use crate::model::{Project, Service, Task};
use crate::sandbox::{base_engine, Limits, OnInterrupt, ScriptError};

/// What the declaration primitives collect while a project script runs.
#[derive(Default)]
struct Declarations {
    name: Option<String>,
    services: Vec<Service>,
    tasks: Vec<Task>,
    dashboard: Option<crate::model::DashboardSettings>,
}

/// Loads the project whose config is in `start` or the nearest parent.
pub fn load_project(start: &Path) -> Result<Project, LoadError> {
    let files = config::find_config(start).ok_or_else(|| LoadError::NoConfig(start.into()))?;
    let mut declared = Declarations::default();
    if let Some(toml_path) = &files.toml {
        let source = read_source(toml_path, &Limits::PROJECT)?;
        let project = config::load_toml(toml_path, &source)?;
        declared.name = Some(project.name);
        declared.services = project.services;
        declared.tasks = project.tasks;
        // Declared there (a `dashboard()` in locald.rhai too is then twice).
        declared.dashboard = (project.dashboard != Default::default()).then_some(project.dashboard);
    }
    let Some(rhai_path) = &files.rhai else {
        // `load_toml` checked the whole project already.
        return Ok(finish(declared, files.dir));
    };
    let source = read_source(rhai_path, &Limits::PROJECT)?;
    let declared = Arc::new(Mutex::new(declared));
    let engine = declaration_engine(declared.clone(), files.dir.clone());
    eval(&engine, &rhai_path.display().to_string(), &source)?;
    let project = finish(std::mem::take(&mut *lock(&declared)), files.dir);
    config::check_project(&project).map_err(LoadError::Invalid)?;
    Ok(project)
}

/// The project's directory and name, without its services and without
/// evaluating or validating anything: the name comes from `[project] name`
/// in `locald.toml` when it parses, else from the directory.
pub fn locate_project(start: &Path) -> Result<Project, LoadError> {
    let files = config::find_config(start).ok_or_else(|| LoadError::NoConfig(start.into()))?;
    let name = files
        .toml
        .as_deref()
        .and_then(|path| read_source(path, &Limits::PROJECT).ok())
        .and_then(|source| config::declared_project_name(&source))
        .unwrap_or_else(|| dir_name(&files.dir));
    Ok(Project {
        name,
        root: files.dir,
        services: Vec::new(),
        dashboard: Default::default(),
        tasks: Vec::new(),
    })
}

fn finish(declared: Declarations, root: PathBuf) -> Project {
    Project {
        name: declared.name.unwrap_or_else(|| dir_name(&root)),
        root,
        services: declared.services,
        dashboard: declared.dashboard.unwrap_or_default(),
        tasks: declared.tasks,
    }
}

/// Reads a config file or script, refusing one larger than `limits.source`
/// before reading it whole.
pub fn read_source(path: &Path, limits: &Limits) -> Result<String, LoadError> {
    use std::io::Read;
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Not File::open: a FIFO in a checkout would block the open, past Ctrl-C.
    let file = locald_shim_protocol::regular_file::open_regular(path).map_err(read_error)?;
    let mut source = String::new();
    // One byte past the limit tells a file at the limit from a larger one.
    file.take(limits.source as u64 + 1)
        .read_to_string(&mut source)
        .map_err(read_error)?;
    if source.len() > limits.source {
        let size = std::fs::metadata(path).map_or(source.len() as u64, |m| m.len());
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            reason: limits.source_too_large(size),
        });
    }
    Ok(source)
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

/// The engine a project script runs in: the sandbox plus `project(name)`,
/// `service(name, #{...})` and `task(name, "line" | #{...})`.
fn declaration_engine(declared: Arc<Mutex<Declarations>>, base_dir: PathBuf) -> Engine {
    // A Ctrl-C during a load is for the command that loads, not only the load.
    let mut engine = base_engine(Limits::PROJECT, OnInterrupt::Propagate);
    let for_project = declared.clone();
    let for_tasks = declared.clone();
    let for_dashboard = declared.clone();
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
    engine.register_fn(
        "dashboard",
        move |ctx: NativeCallContext, spec: Map| -> Result<(), Box<EvalAltResult>> {
            let settings = config::dashboard_from_map(&spec)
                .map_err(|e| runtime_error(&ctx, e.to_string()))?;
            let mut declared = lock(&for_dashboard);
            if declared.dashboard.is_some() {
                return Err(runtime_error(&ctx, "`dashboard` is declared twice".into()));
            }
            declared.dashboard = Some(settings);
            Ok(())
        },
    );
    // A shell line or a map: `task("test", "cargo test")`,
    // `task("seed", #{ command: "...", depends_on: ["db"] })`.
    engine.register_fn(
        "task",
        move |ctx: NativeCallContext,
              name: &str,
              spec: rhai::Dynamic|
              -> Result<(), Box<EvalAltResult>> {
            let task = config::task_from_value(name, &spec)
                .map_err(|e| runtime_error(&ctx, e.to_string()))?;
            let mut declared = lock(&for_tasks);
            if declared.tasks.iter().any(|t| t.name == name) {
                return Err(runtime_error(
                    &ctx,
                    format!("task `{name}` is declared twice"),
                ));
            }
            declared.tasks.push(task);
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every key of `[services.NAME]` in each form it accepts.
    /// A `locald.toml` with every form of every key.
    pub(crate) const EVERY_FORM: &str = r#"[project]
name = "forms"

[services.db]
image = "postgres:16"
env = { POSTGRES_PASSWORD = "dev", "MY-VAR" = 1, ON = true }
volumes = ["./data:/var/lib/postgresql/data", "/tmp/x:/x:ro"]
health = { exec = "pg_isready", interval = "1s", timeout = "2s", retries = 3, start_period = 4 }
stop_signal = "SIGINT"
cap_add = ["NET_RAW", "cap_sys_ptrace"]
cap_drop = ["ALL"]
security_opt = ["seccomp=unconfined", "no-new-privileges=false"]

[services.web]
command = "npm run dev -- --port $PORT"
workdir = "web"
depends_on = ["db"]
env = { API = "${services.db.url}", DB_PORT = "${services.db.port}", QUOTED = "say \"hi\"\n", UNICODE = "é🚀" }
env_file = [".env", "web/.env"]
port = 3000
restart = "always"
max_restarts = 5
stop_timeout = "2s"
health = { http = "/healthz", status = 204 }

[services.worker]
command = "python3 worker.py"
env_file = ".env.worker"
depends_on = ["web", "db"]
health = { log = "ready to (accept|serve)" }
stop_signal = 1
stop_timeout = 3
restart = "never"

[services.cache]
image = "redis:7"
command = "redis-server --port $PORT"
health = "tcp"

[services.probe]
command = "sleep 600"
health = { tcp = true, interval = "250ms" }
restart = "on-failure"

[services.quiet]
command = "sleep 600"
health = "none"

[services.auto]
command = "sleep 600"
health = "auto"

[tasks]
test = "cargo test --workspace"
seed = { command = "python3 seed.py \"$PORT\"", service = "db", description = "Fill the database", depends_on = ["db", "web"] }
lint = { command = "cargo clippy", description = "" }

[dashboard]
enabled = false
port = 4999
"#;

    /// The project `locald.toml` means, loaded directly and through the Rhai
    /// that `locald compile` prints for it, by the real loader.
    fn both_ways(toml: &str) -> (Project, Project) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let toml_path = root.join(config::TOML_FILE);
        std::fs::write(&toml_path, toml).unwrap();
        let direct = load_project(&root).unwrap();
        let script = config::compile_toml(&toml_path, toml).unwrap();
        std::fs::remove_file(&toml_path).unwrap();
        std::fs::write(root.join(config::RHAI_FILE), &script).unwrap();
        let through_rhai = load_project(&root).unwrap();
        (direct, through_rhai)
    }

    #[test]
    fn the_compiled_script_declares_the_project_the_toml_loads_to() {
        let (direct, through_rhai) = both_ways(EVERY_FORM);
        assert_eq!(direct.services.len(), 7);
        assert_eq!(direct.tasks.len(), 3);
        assert_eq!(
            direct.dashboard,
            crate::model::DashboardSettings {
                enabled: false,
                port: Some(4999)
            }
        );
        assert_eq!(direct, through_rhai);
    }

    #[test]
    fn every_example_loads_the_same_both_ways() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&examples).unwrap() {
            let path = entry.unwrap().path().join(config::TOML_FILE);
            if let Ok(toml) = std::fs::read_to_string(&path) {
                let (direct, through_rhai) = both_ways(&toml);
                assert_eq!(direct, through_rhai, "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen > 0, "no example under {}", examples.display());
    }

    #[test]
    fn locald_rhai_adds_to_locald_toml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(config::TOML_FILE),
            "[services.web]\ncommand = \"sleep 600\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(config::RHAI_FILE),
            "project(\"both\");\nservice(\"worker\", #{ command: \"sleep 1\", depends_on: [\"web\"] });\n",
        )
        .unwrap();
        let project = load_project(dir.path()).unwrap();
        assert_eq!(project.name, "both");
        assert_eq!(project.service_names(), ["web", "worker"]);

        std::fs::write(
            dir.path().join(config::RHAI_FILE),
            "service(\"web\", #{ command: \"sleep 1\" });\n",
        )
        .unwrap();
        let error = load_project(dir.path()).unwrap_err().to_string();
        assert!(error.contains("service `web` is declared twice"), "{error}");
    }

    #[test]
    fn locald_rhai_declares_tasks_beside_locald_toml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(config::TOML_FILE),
            "[services.web]\ncommand = \"sleep 600\"\n[tasks]\ntest = \"true\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(config::RHAI_FILE),
            "task(\"seed\", #{ command: \"x\", depends_on: [\"web\"] });\n",
        )
        .unwrap();
        let project = load_project(dir.path()).unwrap();
        let names: Vec<&str> = project.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["test", "seed"]);

        for (script, expected) in [
            (
                "task(\"test\", \"false\");\n",
                "task `test` is declared twice",
            ),
            (
                "task(\"psql\", #{ command: \"psql\", service: \"db\" });\n",
                "tasks.psql.service: task `psql` runs in unknown service `db`",
            ),
            (
                "task(\"x\", #{ comand: \"y\" });\n",
                "did you mean `command`?",
            ),
        ] {
            std::fs::write(dir.path().join(config::RHAI_FILE), script).unwrap();
            let error = load_project(dir.path()).unwrap_err().to_string();
            assert!(error.contains(expected), "{script}: {error}");
        }
    }
}
