//! Configuration: parsing and validating `locald.toml`, compiling it to Rhai, and editing it.
//!
//! One set of rules (`schema`, `health`, `graph`) runs over a small value tree
//! (`value`) fed by two front ends: `toml_source` (with byte spans, so errors
//! point into the file) and `rhai_source` (maps passed to `service(...)` and
//! `task(...)`, whose position the script engine reports). Tasks (`task`)
//! follow the same path as services.

mod atomic;
mod build;
mod compile;
mod convert;
mod dashboard;
mod diagnostic;
mod discovery;
mod document;
pub mod edit;
mod graph;
mod health;
pub mod import;
mod rhai_source;
mod schema;
mod task;
mod templates;
mod toml_source;
mod value;

use std::path::Path;

pub(crate) use atomic::{create_new, write_atomic};
pub(crate) use convert::suggest;
pub use diagnostic::{ConfigError, Diagnostic, FieldError};
pub use discovery::{find_config, ConfigFiles, RHAI_FILE, TOML_FILE};
pub use edit::{add_service, EditError};
pub use schema::{DEFAULT_STOP_SIGNAL, DEFAULT_STOP_TIMEOUT};
pub(crate) use task::{is_task_name, TASK_NAME_RULE};

/// The largest config or script source locald reads (`locald.toml`,
/// `locald.rhai`, a verb or task script): nothing legitimate comes near it.
pub const MAX_SOURCE_BYTES: usize = 8 << 20;

use crate::model::{Project, Service, Task};
use diagnostic::KeyPath;
use graph::GraphNode;

/// Validates `locald.toml` (its text `source`, read from `path`) and returns
/// the Rhai script that builds the same project through `project(...)` and
/// `service(...)`.
pub fn compile_toml(path: &Path, source: &str) -> Result<String, ConfigError> {
    let root = lower_toml(path, source)?;
    let document = document::validate(&root, path)
        .map_err(|problems| ConfigError::from_problems(path, source, problems))?;
    Ok(compile::emit(&document, path, source))
}

/// Validates `locald.toml` and returns the project it declares, without going
/// through Rhai.
pub fn load_toml(path: &Path, source: &str) -> Result<Project, ConfigError> {
    let root = lower_toml(path, source)?;
    let document = document::validate(&root, path)
        .map_err(|problems| ConfigError::from_problems(path, source, problems))?;
    Ok(document.into_project())
}

/// `[project] name` of `locald.toml`, read without validating the rest (for
/// what needs only to know which project this is); `None` when the file
/// does not parse or sets no name.
pub fn declared_project_name(source: &str) -> Option<String> {
    let document = toml_edit::Document::parse(source).ok()?;
    let name = document.get("project")?.get("name")?.as_str()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The names of `locald.toml`'s `[services.*]` tables, in order, read
/// without validating anything (for shell completions); none when the file
/// does not parse.
pub fn declared_service_names(source: &str) -> Vec<String> {
    declared_keys(source, "services")
}

/// The names of `locald.toml`'s `[tasks]`, in order, read without
/// validating anything (for shell completions); none when the file does not
/// parse.
pub fn declared_task_names(source: &str) -> Vec<String> {
    declared_keys(source, "tasks")
}

/// The keys of the top-level table `table`, in order.
fn declared_keys(source: &str, table: &str) -> Vec<String> {
    let Ok(document) = toml_edit::Document::parse(source) else {
        return Vec::new();
    };
    document
        .get(table)
        .and_then(|entries| entries.as_table_like())
        .map(|entries| entries.iter().map(|(name, _)| name.to_owned()).collect())
        .unwrap_or_default()
}

fn lower_toml(path: &Path, source: &str) -> Result<value::Node, ConfigError> {
    toml_source::parse(source).map_err(|error| ConfigError::from_syntax(path, source, &error))
}

/// Validates the map given to `service(name, #{...})` and builds the service,
/// resolving relative paths against `base_dir` (the project directory).
/// Reports the first problem.
pub fn service_from_map(
    name: &str,
    map: &rhai::Map,
    base_dir: &Path,
) -> Result<Service, FieldError> {
    let node = rhai_source::lower_map(map);
    let path = KeyPath::root().key("services").key(name);
    schema::build_service(name, &node, &path, base_dir)
        .map_err(|problems| first_problem(problems, &path, "invalid service"))
}

/// The first of `problems` (found at `path`) as what a Rhai call throws.
fn first_problem(
    problems: Vec<diagnostic::Problem>,
    path: &KeyPath,
    otherwise: &str,
) -> FieldError {
    problems
        .into_iter()
        .next()
        .map(diagnostic::Problem::into_field_error)
        .unwrap_or_else(|| FieldError {
            path: path.to_string(),
            message: otherwise.to_owned(),
            help: None,
        })
}

/// Validates what `task(name, ...)` is given (a shell line or a map) and
/// builds the task. Reports the first problem.
pub fn task_from_value(name: &str, value: &rhai::Dynamic) -> Result<Task, FieldError> {
    let node = rhai_source::lower(value);
    let path = KeyPath::root().key("tasks").key(name);
    task::build_task(name, &node, &path)
        .map_err(|problems| first_problem(problems, &path, "invalid task"))
}

/// Validates what `dashboard(#{ enabled, port })` is given. Reports the
/// first problem.
pub fn dashboard_from_map(map: &rhai::Map) -> Result<crate::model::DashboardSettings, FieldError> {
    let node = rhai_source::lower_map(map);
    let path = KeyPath::root().key("dashboard");
    dashboard::build_dashboard(&node, &path)
        .map_err(|problems| first_problem(problems, &path, "invalid dashboard settings"))
}

/// Checks what no single service can: duplicate names, dependencies on
/// services that do not exist, dependency cycles, and `${services.NAME...}`
/// templates in `env` naming services that do not exist, and tasks naming
/// services that do not exist. (`locald.toml` gets the same checks, with
/// spans, inside `compile_toml`.)
pub fn check_project(project: &Project) -> Result<(), FieldError> {
    let nodes: Vec<GraphNode> = project
        .services
        .iter()
        .map(|service| GraphNode {
            name: &service.name,
            depends_on: &service.depends_on,
        })
        .collect();
    if let Some(found) = graph::check(&nodes).first() {
        return Err(found.to_problem(&nodes).into_field_error());
    }
    let known = templates::KnownServices::new(project.services.iter().map(|s| s.name.as_str()));
    for service in &project.services {
        for (variable, value) in &service.env {
            if let Some(bad) = templates::check(value, &known) {
                let path = KeyPath::root()
                    .key("services")
                    .key(&service.name)
                    .key("env")
                    .key(variable);
                return Err(FieldError {
                    path: path.to_string(),
                    message: bad.message,
                    help: Some(bad.help),
                });
            }
        }
    }
    if let Some(service) = dashboard::port_taken_by(&project.dashboard, &project.services) {
        return Err(FieldError {
            path: "dashboard.port".into(),
            message: format!("service `{service}` has this port too"),
            help: Some(
                "give the dashboard another port, or leave `port` out for a free one".into(),
            ),
        });
    }
    let names = project.services.iter().map(|s| s.name.as_str());
    for task in &project.tasks {
        if let Some(found) = task::check_references(task, names.clone())
            .into_iter()
            .next()
        {
            return Err(found.problem.into_field_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
