//! The task schema: what `[tasks]` of `locald.toml` and `task(name, ...)` of
//! `locald.rhai` accept, read into `model::Task`. A task is a shell line
//! (`test = "cargo test"`) or a table (`{ command, service, description,
//! depends_on }`); the names it gives to `service` and `depends_on` are
//! checked against the project's services once all are known
//! ([`check_references`]).

use super::convert::{self, wrong_type};
use super::diagnostic::{KeyPath, Problem};
use super::value::{Node, NodeKind};
use crate::model::{Task, TaskAction};

/// The keys a task table accepts, in documentation order.
pub(crate) const TASK_KEYS: &[&str] = &["command", "description", "service", "depends_on"];

/// What a valid task name is, for error messages: the rule of service names,
/// so that a name that works as `locald run NAME` works as `locald task NAME`.
pub(crate) const TASK_NAME_RULE: &str =
    "task names use letters, digits, `_` and `-`, do not start with `-`, and are at most 63 characters";

/// Whether `name` can name a task.
pub(crate) fn is_task_name(name: &str) -> bool {
    convert::is_service_name(name)
}

/// Validates task `name` declared by `node` (a string or a table) at `path`
/// (`tasks.NAME`) and builds it. Returns every problem found.
pub(crate) fn build_task(name: &str, node: &Node, path: &KeyPath) -> Result<Task, Vec<Problem>> {
    let mut problems = Vec::new();
    if !is_task_name(name) {
        problems.push(
            Problem::standalone(path.clone(), format!("invalid task name `{name}`"))
                .with_span(node.key_or_value_span())
                .with_help(TASK_NAME_RULE),
        );
    }
    let entries = match &node.kind {
        NodeKind::Str(_) => {
            return match convert::non_empty_string(node, path) {
                Ok(line) if problems.is_empty() => Ok(Task::command(name, line)),
                Ok(_) => Err(problems),
                Err(problem) => {
                    problems.push(problem.with_help(format!(
                        "give the shell line to run: {name} = \"cargo test\""
                    )));
                    Err(problems)
                }
            };
        }
        NodeKind::Table(entries) => entries,
        _ => {
            problems.push(
                wrong_type(node, path, "a string or a table").with_help(format!(
                    "write {name} = \"shell line\", or {name} = {{ command = \"...\", description = \"...\" }}"
                )),
            );
            return Err(problems);
        }
    };

    let mut command = None;
    let mut task = Task::command(name, "");
    for (key, value) in entries {
        if value.is_null() {
            continue;
        }
        let key_path = path.key(key);
        let before = problems.len();
        match key.as_str() {
            "command" => match convert::non_empty_string(value, &key_path) {
                Ok(line) => command = Some(line.to_owned()),
                Err(problem) => problems.push(problem),
            },
            "description" => match convert::string(value, &key_path) {
                Ok(text) if text.contains(['\n', '\r']) => problems.push(convert::bad_value(
                    value,
                    &key_path,
                    "a description is one line",
                )),
                // An empty one is none: the listing shows the command.
                Ok(text) => {
                    task.description = Some(text.trim().to_owned()).filter(|t| !t.is_empty())
                }
                Err(problem) => problems.push(problem),
            },
            "service" => match convert::non_empty_string(value, &key_path) {
                Ok(service) => task.service = Some(service.to_owned()),
                Err(problem) => problems.push(problem),
            },
            "depends_on" => {
                convert::names_list(value, &key_path, &mut task.depends_on, &mut problems)
            }
            _ => problems.push(unknown_task_key(key, value, key_path)),
        }
        for problem in &mut problems[before..] {
            if problem.span.is_none() {
                problem.span = value.best_span();
            }
        }
    }
    match command {
        Some(line) => task.action = TaskAction::Command(line),
        None if !entries
            .iter()
            .any(|(key, _)| convert::suggest(key, ["command"]).unwrap_or(key) == "command") =>
        {
            problems.push(
                Problem::standalone(path.clone(), format!("task `{name}` has no `command`"))
                    .with_span(node.key_or_value_span())
                    .with_help("add `command = \"...\"`: the shell line the task runs"),
            );
        }
        // A misspelt or invalid `command` was reported already.
        None => {}
    }
    if problems.is_empty() {
        Ok(task)
    } else {
        Err(problems)
    }
}

fn unknown_task_key(key: &str, value: &Node, path: KeyPath) -> Problem {
    let help = match convert::suggest(key, TASK_KEYS.iter().copied()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("a task takes {}", convert::backticked(TASK_KEYS)),
    };
    Problem::unknown_key(path, Some(help)).with_span(value.key_or_value_span())
}

/// A name a task gives that is not one of the project's services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownReference {
    /// `tasks.NAME.service` or `tasks.NAME.depends_on[i]`.
    pub path: KeyPath,
    /// Which key: `service`, or `depends_on` with the item's index.
    pub key: &'static str,
    pub index: Option<usize>,
    pub problem: Problem,
}

/// The services `task` names that the project does not declare.
pub(crate) fn check_references<'a>(
    task: &Task,
    services: impl Iterator<Item = &'a str> + Clone,
) -> Vec<UnknownReference> {
    let mut found = Vec::new();
    let path = KeyPath::root().key("tasks").key(&task.name);
    let mut check = |name: &str, key: &'static str, index: Option<usize>| {
        if services.clone().any(|known| known == name) {
            return;
        }
        let help = match convert::suggest(name, services.clone()) {
            Some(close) => format!("did you mean `{close}`?"),
            None if services.clone().next().is_none() => {
                "the project declares no services".to_owned()
            }
            None => convert::declared_services(services.clone()),
        };
        let item_path = match index {
            Some(i) => path.key(key).index(i),
            None => path.key(key),
        };
        let what = if key == "service" {
            "runs in"
        } else {
            "depends on"
        };
        found.push(UnknownReference {
            path: item_path.clone(),
            key,
            index,
            problem: Problem::standalone(
                item_path,
                format!("task `{}` {what} unknown service `{name}`", task.name),
            )
            .with_help(help),
        });
    };
    if let Some(service) = &task.service {
        check(service, "service", None);
    }
    for (index, dependency) in task.depends_on.iter().enumerate() {
        check(dependency, "depends_on", Some(index));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(source: &str) -> Node {
        let engine = rhai::Engine::new();
        let value: rhai::Dynamic = engine.eval(source).unwrap();
        super::super::rhai_source::lower(&value)
    }

    fn build(name: &str, source: &str) -> Result<Task, Vec<String>> {
        build_task(
            name,
            &lower(source),
            &KeyPath::root().key("tasks").key(name),
        )
        .map_err(|problems| problems.iter().map(Problem::headline).collect())
    }

    #[test]
    fn a_string_is_a_command_and_a_table_has_every_key() {
        assert_eq!(
            build("test", r#""cargo test""#),
            Ok(Task::command("test", "cargo test"))
        );
        let task = build(
            "seed",
            r#"#{ command: "psql -f seed.sql", service: "db", description: " Seed it ", depends_on: ["db"] }"#,
        )
        .unwrap();
        assert_eq!(task.action, TaskAction::Command("psql -f seed.sql".into()));
        assert_eq!(task.service.as_deref(), Some("db"));
        assert_eq!(task.description.as_deref(), Some("Seed it"));
        assert_eq!(task.depends_on, ["db"]);
        let task = build("lint", r#"#{ command: "cargo clippy", description: "  " }"#).unwrap();
        assert_eq!(task.description, None);
    }

    #[test]
    fn bad_tasks_are_refused_with_what_is_wrong() {
        let problems = build("t", r#""  ""#).unwrap_err();
        assert!(problems[0].contains("must not be empty"), "{problems:?}");
        let problems = build("t", "#{ comand: \"x\" }").unwrap_err();
        assert_eq!(
            problems.len(),
            1,
            "no second error for the missing command: {problems:?}"
        );
        assert!(
            problems[0].contains("unknown key `comand` in [tasks.t]"),
            "{problems:?}"
        );
        let problems = build("t", r#"#{ description: "d" }"#).unwrap_err();
        assert!(
            problems[0].contains("task `t` has no `command`"),
            "{problems:?}"
        );
        let problems = build("bad name", r#""x""#).unwrap_err();
        assert!(
            problems[0].contains("invalid task name `bad name`"),
            "{problems:?}"
        );
        let problems = build("t", "3").unwrap_err();
        assert!(problems[0].contains("a string or a table"), "{problems:?}");
        let problems = build("t", r#"#{ command: "x", depends_on: ["a", "a"] }"#).unwrap_err();
        assert!(problems[0].contains("listed twice"), "{problems:?}");
        let problems = build("t", "#{ command: \"x\", description: \"a\\nb\" }").unwrap_err();
        assert!(problems[0].contains("one line"), "{problems:?}");
    }

    #[test]
    fn unknown_services_are_named_with_a_suggestion() {
        let mut task = Task::command("t", "x");
        task.service = Some("apj".into());
        task.depends_on = vec!["db".into(), "cache".into()];
        let found = check_references(&task, ["api", "db"].into_iter());
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].path.to_string(), "tasks.t.service");
        assert!(found[0]
            .problem
            .headline()
            .contains("task `t` runs in unknown service `apj`"));
        assert_eq!(
            found[0].problem.help.as_deref(),
            Some("did you mean `api`?")
        );
        assert_eq!(found[1].path.to_string(), "tasks.t.depends_on[1]");
        assert_eq!(
            found[1].problem.help.as_deref(),
            Some("declared services: api, db")
        );
        let none = check_references(&task, std::iter::empty());
        assert_eq!(
            none[0].problem.help.as_deref(),
            Some("the project declares no services")
        );
    }
}
