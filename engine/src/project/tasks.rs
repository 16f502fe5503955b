//! A project's tasks: those its config declares (`[tasks]`, `task(...)`)
//! and the files `tasks/*.rhai` beside it, each named by its file stem and
//! described by its first `//` comment line. The files are read when tasks
//! are listed or run, not when the project loads: a stray file there never
//! stops `up`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config;
use crate::model::{Project, Task, TaskAction};

/// The directory, in the project root, whose `*.rhai` files are tasks.
pub const TASKS_DIR: &str = "tasks";

/// How much of a task file is read for its description: the comment at the
/// top, never the whole of a large script.
const DESCRIPTION_BYTES: u64 = 4096;

/// Why the project's tasks could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("task `{name}` is declared twice: in {declared} and as {}; rename or remove one", .file.display())]
    Conflict {
        name: String,
        /// `locald.toml ([tasks] NAME)` or `locald.rhai`.
        declared: String,
        /// `tasks/NAME.rhai`.
        file: PathBuf,
    },
    #[error("{}: `{name}` cannot name a task ({rule}); rename the file", .file.display(), rule = config::TASK_NAME_RULE)]
    BadFileName { name: String, file: PathBuf },
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A task name that is none of the project's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task `{name}`{}", hint(.suggestion, .known))]
pub struct UnknownTask {
    pub name: String,
    pub suggestion: Option<String>,
    pub known: Vec<String>,
}

fn hint(suggestion: &Option<String>, known: &[String]) -> String {
    match (suggestion, known.is_empty()) {
        (_, true) => format!(
            ": the project has no tasks (add one under [tasks] in locald.toml, or as a file {TASKS_DIR}/NAME.rhai)"
        ),
        (Some(close), false) => format!(": did you mean `{close}`? (tasks: {})", known.join(", ")),
        (None, false) => format!(" (tasks: {})", known.join(", ")),
    }
}

/// Every task of `project`, sorted by name: the declared ones and the files
/// `tasks/*.rhai` (hidden files are not tasks).
pub fn project_tasks(project: &Project) -> Result<Vec<Task>, TaskError> {
    let mut tasks = project.tasks.clone();
    for file in task_files(&project.root)? {
        if let Some(declared) = tasks.iter().find(|t| t.name == file.name) {
            return Err(TaskError::Conflict {
                name: declared.name.clone(),
                declared: declared_in(&project.root, &declared.name),
                file: file.relative,
            });
        }
        let description = read_description(&file.path)?;
        tasks.push(Task {
            name: file.name,
            description,
            action: TaskAction::Script(file.path),
            service: None,
            depends_on: Vec::new(),
        });
    }
    tasks.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tasks)
}

/// The task called `name` among `tasks`, or an error naming the nearest one.
pub fn find_task<'a>(tasks: &'a [Task], name: &str) -> Result<&'a Task, UnknownTask> {
    if let Some(task) = tasks.iter().find(|t| t.name == name) {
        return Ok(task);
    }
    let known: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
    Err(UnknownTask {
        name: name.to_owned(),
        suggestion: config::suggest(name, known.iter().map(String::as_str)).map(str::to_owned),
        known,
    })
}

/// The names of the files `tasks/*.rhai` under `root`, for completions:
/// nothing is read but the directory.
pub fn task_file_names(root: &Path) -> Vec<String> {
    task_files(root)
        .unwrap_or_default()
        .into_iter()
        .map(|file| file.name)
        .collect()
}

/// One file `tasks/NAME.rhai`.
struct TaskFile {
    name: String,
    path: PathBuf,
    /// As the user sees it: `tasks/NAME.rhai`.
    relative: PathBuf,
}

fn task_files(root: &Path) -> Result<Vec<TaskFile>, TaskError> {
    let dir = root.join(TASKS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(TaskError::Read { path: dir, source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| TaskError::Read {
            path: dir.clone(),
            source,
        })?;
        let file_name = entry.file_name();
        let Some(name) = file_name
            .to_str()
            .and_then(|file_name| file_name.strip_suffix(".rhai"))
        else {
            continue;
        };
        // Editors' lock and backup files (`.#seed.rhai`) are not tasks.
        if name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        let relative = Path::new(TASKS_DIR).join(&file_name);
        if !config::is_task_name(name) {
            return Err(TaskError::BadFileName {
                name: name.to_owned(),
                file: relative,
            });
        }
        files.push(TaskFile {
            name: name.to_owned(),
            path: entry.path(),
            relative,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Where a declared task comes from, for the conflict message.
fn declared_in(root: &Path, name: &str) -> String {
    let in_toml = std::fs::read_to_string(root.join(config::TOML_FILE))
        .map(|source| {
            config::declared_task_names(&source)
                .iter()
                .any(|n| n == name)
        })
        .unwrap_or(false);
    if in_toml {
        format!("{} ([tasks] {name})", config::TOML_FILE)
    } else {
        config::RHAI_FILE.to_owned()
    }
}

fn read_description(path: &Path) -> Result<Option<String>, TaskError> {
    let read_error = |source| TaskError::Read {
        path: path.to_owned(),
        source,
    };
    // Not File::open: a FIFO named like a task would block the listing.
    let file = locald_shim_protocol::regular_file::open_regular(path).map_err(read_error)?;
    let mut head = Vec::new();
    file.take(DESCRIPTION_BYTES)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    Ok(description(&String::from_utf8_lossy(&head)))
}

/// The first `//` comment line of a script's leading comment (blank lines,
/// a `#!` line and empty comment lines skipped); none when code comes first.
fn description(source: &str) -> Option<String> {
    for line in source.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("#!") {
            continue;
        }
        let text = line
            .strip_prefix("//")?
            .trim_start_matches(['/', '!'])
            .trim();
        if !text.is_empty() {
            return Some(text.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project_in(dir: &Path, toml: &str) -> Project {
        std::fs::write(dir.join(config::TOML_FILE), toml).unwrap();
        crate::project::load_project(dir).unwrap()
    }

    #[test]
    fn descriptions_are_the_first_comment_line() {
        assert_eq!(
            description("// Seed the database\n// more\nlet x = 1;"),
            Some("Seed the database".into())
        );
        assert_eq!(
            description("#!/usr/bin/env locald\n\n//\n//! Run it  \n"),
            Some("Run it".into())
        );
        assert_eq!(description("let x = 1; // not this\n"), None);
        assert_eq!(description(""), None);
    }

    #[test]
    fn files_and_declared_tasks_are_listed_together_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let tasks_dir = dir.path().join(TASKS_DIR);
        std::fs::create_dir(&tasks_dir).unwrap();
        std::fs::write(tasks_dir.join("seed.rhai"), "// Fill the database\n0\n").unwrap();
        std::fs::write(tasks_dir.join("bare.rhai"), "0\n").unwrap();
        std::fs::write(tasks_dir.join("notes.txt"), "not a task").unwrap();
        std::fs::write(tasks_dir.join(".#seed.rhai"), "lock").unwrap();
        std::fs::create_dir(tasks_dir.join("dir.rhai")).unwrap();
        let project = project_in(dir.path(), "[tasks]\ntest = \"cargo test\"\n");
        let tasks = project_tasks(&project).unwrap();
        let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["bare", "seed", "test"]);
        assert_eq!(tasks[1].description.as_deref(), Some("Fill the database"));
        assert_eq!(
            tasks[1].action,
            TaskAction::Script(tasks_dir.join("seed.rhai"))
        );
        assert_eq!(tasks[0].description, None);
        assert_eq!(task_file_names(dir.path()), ["bare", "seed"]);
    }

    #[test]
    fn a_name_declared_both_ways_names_both_places() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(TASKS_DIR)).unwrap();
        std::fs::write(dir.path().join("tasks/test.rhai"), "0").unwrap();
        let project = project_in(dir.path(), "[tasks]\ntest = \"cargo test\"\n");
        let error = project_tasks(&project).unwrap_err().to_string();
        assert_eq!(
            error,
            "task `test` is declared twice: in locald.toml ([tasks] test) and as tasks/test.rhai; rename or remove one"
        );
        std::fs::remove_file(dir.path().join("tasks/test.rhai")).unwrap();
        std::fs::write(dir.path().join("tasks/my task.rhai"), "0").unwrap();
        let error = project_tasks(&project).unwrap_err().to_string();
        assert!(
            error.starts_with("tasks/my task.rhai: `my task` cannot name a task (task names use"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_task_suggests_the_nearest() {
        let tasks = vec![Task::command("test", "x"), Task::command("lint", "y")];
        assert_eq!(find_task(&tasks, "lint").unwrap().name, "lint");
        assert_eq!(
            find_task(&tasks, "tset").unwrap_err().to_string(),
            "unknown task `tset`: did you mean `test`? (tasks: test, lint)"
        );
        assert_eq!(
            find_task(&tasks, "deploy").unwrap_err().to_string(),
            "unknown task `deploy` (tasks: test, lint)"
        );
        assert!(find_task(&[], "x")
            .unwrap_err()
            .to_string()
            .contains("the project has no tasks (add one under [tasks] in locald.toml"));
    }
}
