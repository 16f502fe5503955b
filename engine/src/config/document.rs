//! The whole-file rules of `locald.toml`: the top-level tables (`[project]`,
//! `[services.NAME]`, `[tasks]`), each service and task through the shared
//! schemas, then the dependency graph and the services tasks name, every
//! problem located in the source.

use std::path::{Path, PathBuf};

use super::convert::{self, wrong_type};
use super::dashboard;
use super::diagnostic::{KeyPath, Problem};
use super::graph::{self, GraphNode, GraphProblem};
use super::schema;
use super::task;
use super::templates;
use super::value::{Node, NodeKind};
use crate::model::{DashboardSettings, Project, Service, Task};

const TOP_LEVEL_KEYS: &[&str] = &["project", "services", "tasks", "dashboard"];
const PROJECT_KEYS: &[&str] = &["name"];

/// A `locald.toml` that passed every check.
pub(crate) struct ValidDocument<'a> {
    pub project_name: String,
    pub root: PathBuf,
    pub services: Vec<DeclaredService<'a>>,
    pub tasks: Vec<DeclaredTask<'a>>,
    /// `[dashboard]`, with its value tree (for compiling) when declared.
    pub dashboard: Option<(&'a Node, DashboardSettings)>,
}

/// A service with the value tree it was declared by (kept for compiling, in
/// the user's key order).
pub(crate) struct DeclaredService<'a> {
    pub node: &'a Node,
    pub service: Service,
}

/// A task with the value tree it was declared by.
pub(crate) struct DeclaredTask<'a> {
    pub node: &'a Node,
    pub task: Task,
}

impl ValidDocument<'_> {
    pub(crate) fn into_project(self) -> Project {
        Project {
            name: self.project_name,
            root: self.root,
            services: self.services.into_iter().map(|s| s.service).collect(),
            dashboard: self
                .dashboard
                .map(|(_, settings)| settings)
                .unwrap_or_default(),
            tasks: self.tasks.into_iter().map(|t| t.task).collect(),
        }
    }
}

/// The directory a config file's relative paths resolve against.
pub(crate) fn config_dir(config_path: &Path) -> PathBuf {
    let absolute = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_owned());
    match absolute.parent() {
        Some(dir) => dir.to_owned(),
        None => PathBuf::from("/"),
    }
}

/// The project name used when `[project] name` is not set: the directory's.
pub(crate) fn default_project_name(dir: &Path) -> String {
    dir.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "project".to_owned())
}

/// Validates the lowered document of the file at `config_path`.
pub(crate) fn validate<'a>(
    root: &'a Node,
    config_path: &Path,
) -> Result<ValidDocument<'a>, Vec<Problem>> {
    let base_dir = config_dir(config_path);
    let mut problems = Vec::new();
    let top = KeyPath::root();
    let Some(entries) = root.as_table() else {
        return Err(vec![wrong_type(root, &top, "a table")]);
    };

    let mut project_name = None;
    let mut services = Vec::new();
    let mut tasks = Vec::new();
    let mut dashboard = None;
    let mut all_services_valid = true;
    for (key, node) in entries {
        let path = top.key(key);
        match key.as_str() {
            "project" => project_name = read_project(node, &path, &mut problems),
            "services" => {
                all_services_valid =
                    read_services(node, &path, &base_dir, &mut services, &mut problems)
            }
            "tasks" => read_tasks(node, &path, &mut tasks, &mut problems),
            "dashboard" => match dashboard::build_dashboard(node, &path) {
                Ok(settings) => dashboard = Some((node, settings)),
                Err(found) => problems.extend(found),
            },
            _ => problems.push(unknown_key(
                key,
                node,
                path,
                TOP_LEVEL_KEYS,
                "the top level takes",
            )),
        }
    }
    if all_services_valid {
        check_graph(&services, &mut problems);
        check_task_references(&services, &tasks, &mut problems);
    }
    if let Some((node, settings)) = &dashboard {
        let declared = services.iter().map(|declared| &declared.service);
        if let Some(service) = dashboard::port_taken_by(settings, declared) {
            problems.push(port_clash(node, service));
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ValidDocument {
        project_name: project_name.unwrap_or_else(|| default_project_name(&base_dir)),
        root: base_dir,
        services,
        tasks,
        dashboard,
    })
}

/// `[dashboard] port` fixed to a port a service fixes too.
fn port_clash(node: &Node, service: &str) -> Problem {
    let path = KeyPath::root().key("dashboard").key("port");
    let port_node = node
        .as_table()
        .and_then(|entries| entries.iter().find(|(key, _)| key == "port"))
        .map_or(node, |(_, value)| value);
    convert::bad_value(
        port_node,
        &path,
        format!("service `{service}` has this port too"),
    )
    .with_help("give the dashboard another port, or leave `port` out for a free one")
}

fn unknown_key(key: &str, node: &Node, path: KeyPath, known: &[&str], takes: &str) -> Problem {
    let help = match convert::suggest(key, known.iter().copied()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("{takes} {}", convert::backticked(known)),
    };
    Problem::unknown_key(path, Some(help)).with_span(node.key_or_value_span())
}

fn read_project(node: &Node, path: &KeyPath, problems: &mut Vec<Problem>) -> Option<String> {
    let entries = match convert::table(node, path) {
        Ok(entries) => entries,
        Err(problem) => {
            problems.push(problem.with_help("write [project] with name = \"...\""));
            return None;
        }
    };
    let mut name = None;
    for (key, value) in entries {
        let key_path = path.key(key);
        if key != "name" {
            problems.push(unknown_key(
                key,
                value,
                key_path,
                PROJECT_KEYS,
                "[project] takes",
            ));
            continue;
        }
        match convert::non_empty_string(value, &key_path) {
            Ok(text) if text.contains(['/', '\n', '\0']) => problems.push(convert::bad_value(
                value,
                &key_path,
                "a project name cannot contain `/` or line breaks",
            )),
            Ok(text) => name = Some(text.to_owned()),
            Err(problem) => problems.push(problem),
        }
    }
    name
}

/// Builds every service; returns whether all were valid.
fn read_services<'a>(
    node: &'a Node,
    path: &KeyPath,
    base_dir: &Path,
    services: &mut Vec<DeclaredService<'a>>,
    problems: &mut Vec<Problem>,
) -> bool {
    let entries = match convert::table(node, path) {
        Ok(entries) => entries,
        Err(problem) => {
            problems
                .push(problem.with_help("declare each service as its own table: [services.NAME]"));
            return false;
        }
    };
    let mut all_valid = true;
    for (name, service_node) in entries {
        match schema::build_service(name, service_node, &path.key(name), base_dir) {
            Ok(service) => services.push(DeclaredService {
                node: service_node,
                service,
            }),
            Err(found) => {
                all_valid = false;
                problems.extend(found);
            }
        }
    }
    all_valid
}

/// Builds every task of `[tasks]`.
fn read_tasks<'a>(
    node: &'a Node,
    path: &KeyPath,
    tasks: &mut Vec<DeclaredTask<'a>>,
    problems: &mut Vec<Problem>,
) {
    let entries = match convert::table(node, path) {
        Ok(entries) => entries,
        Err(problem) => {
            problems.push(
                problem.with_help("write [tasks] with one task a line: test = \"cargo test\""),
            );
            return;
        }
    };
    for (name, task_node) in entries {
        match task::build_task(name, task_node, &path.key(name)) {
            Ok(task) => tasks.push(DeclaredTask {
                node: task_node,
                task,
            }),
            Err(found) => problems.extend(found),
        }
    }
}

/// The services tasks run in or depend on must exist: each unknown name is
/// pointed at in the file.
fn check_task_references(
    services: &[DeclaredService],
    tasks: &[DeclaredTask],
    problems: &mut Vec<Problem>,
) {
    let names = services.iter().map(|s| s.service.name.as_str());
    for declared in tasks {
        for found in task::check_references(&declared.task, names.clone()) {
            let value = declared.node.get(found.key);
            let span = match (value, found.index) {
                (
                    Some(Node {
                        kind: NodeKind::Array(items),
                        ..
                    }),
                    Some(index),
                ) => items.get(index).and_then(Node::best_span),
                (Some(value), _) => value.best_span(),
                (None, _) => None,
            };
            problems.push(found.problem.with_span(span));
        }
    }
}

/// Dependencies and `${services...}` templates, which only make sense with
/// every service known.
fn check_graph(services: &[DeclaredService], problems: &mut Vec<Problem>) {
    let nodes: Vec<GraphNode> = services
        .iter()
        .map(|s| GraphNode {
            name: &s.service.name,
            depends_on: &s.service.depends_on,
        })
        .collect();
    for found in graph::check(&nodes) {
        problems.push(locate(services, &nodes, found));
    }
    let known = templates::KnownServices::new(services.iter().map(|s| s.service.name.as_str()));
    for declared in services {
        let Some(env) = declared.node.get("env").and_then(Node::as_table) else {
            continue;
        };
        for (variable, value) in env {
            let NodeKind::Str(text) = &value.kind else {
                continue;
            };
            if let Some(bad) = templates::check(text, &known) {
                let path = KeyPath::root()
                    .key("services")
                    .key(&declared.service.name)
                    .key("env")
                    .key(variable);
                problems.push(
                    Problem::invalid(path, bad.message)
                        .with_help(bad.help)
                        .with_span(value.best_span()),
                );
            }
        }
    }
}

/// Adds the span to a graph problem: the repeated service's key, or the
/// `depends_on` entry at fault. `depends_on[i]` in the model is item `i` of
/// the array in the file, as the schema rejects repeated entries.
fn locate(services: &[DeclaredService], nodes: &[GraphNode], found: GraphProblem) -> Problem {
    let span = match &found {
        GraphProblem::Duplicate { service } => services[*service].node.key_or_value_span(),
        GraphProblem::UnknownDependency {
            service,
            dependency,
            ..
        }
        | GraphProblem::Cycle {
            service,
            dependency,
            ..
        } => services[*service]
            .node
            .get("depends_on")
            .and_then(|array| match &array.kind {
                NodeKind::Array(items) => items.get(*dependency),
                _ => None,
            })
            .and_then(Node::best_span),
    };
    found.to_problem(nodes).with_span(span)
}
