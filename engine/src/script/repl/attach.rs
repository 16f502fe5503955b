//! The session's link to its project: the `project` value put in scope, the
//! banner, the prompt (the supervisor's state, asked afresh before each
//! prompt), and where history is kept.

use std::borrow::Cow;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use reedline::{Prompt, PromptEditMode, PromptHistorySearch, PromptHistorySearchStatus};

use crate::control::Client;
use crate::project::state_dir::StateDir;
use crate::script::handles::ProjectHandle;

/// The project the session runs in, if any.
#[derive(Default)]
pub struct Attachment {
    /// The loaded project; when its config has errors, the located one
    /// (name and root, no services).
    pub project: Option<ProjectHandle>,
    /// Why the config did not load, rendered.
    pub config_error: Option<String>,
}

/// What the supervisor is doing, for the banner and the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supervisor {
    NotRunning,
    Running {
        healthy: usize,
        total: usize,
    },
    /// Running, but it did not answer (or `.locald` is unsafe).
    Unknown(String),
}

impl Attachment {
    /// The project of `cwd`: loaded, or located when its config has errors,
    /// or none.
    pub fn find(cwd: &Path) -> Attachment {
        match crate::project::load_project(cwd) {
            Ok(project) => Attachment {
                project: Some(ProjectHandle::new(project)),
                config_error: None,
            },
            Err(error) => match crate::project::locate_project(cwd) {
                Ok(project) => Attachment {
                    project: Some(ProjectHandle::new(project)),
                    config_error: Some(error.to_string()),
                },
                Err(_) => Attachment::default(),
            },
        }
    }

    /// The service names of the loaded project (none when it did not load).
    pub fn service_names(&self) -> Vec<String> {
        self.project
            .iter()
            .flat_map(|p| p.0.services.iter().map(|s| s.name.clone()))
            .collect()
    }

    /// Asks the project's supervisor for its services' states.
    pub fn supervisor(&self) -> Supervisor {
        let Some(project) = &self.project else {
            return Supervisor::NotRunning;
        };
        match Client::connect(&project.0.state_dir()) {
            Ok(None) => Supervisor::NotRunning,
            Ok(Some(mut client)) => match client.status() {
                Ok(services) => Supervisor::Running {
                    healthy: services.iter().filter(|s| s.state == "healthy").count(),
                    total: services.len(),
                },
                Err(error) => Supervisor::Unknown(error.to_string()),
            },
            Err(error) => Supervisor::Unknown(error.to_string()),
        }
    }

    /// The lines shown when an interactive session starts.
    pub fn banner(&self, supervisor: &Supervisor) -> String {
        let mut text = String::from("locald repl: Rhai with locald's primitives. `help` lists them, Tab completes, Ctrl-D exits.\n");
        match &self.project {
            None => text.push_str("No project here: the primitives that need one fail until you `cd` into one (restart the REPL).\n"),
            Some(project) => {
                let p = &project.0;
                text.push_str(&format!(
                    "Project `{}` ({}) is `project`",
                    p.name,
                    p.root.display()
                ));
                match &self.config_error {
                    None => text.push_str(&format!(
                        ", {} service{}.\n",
                        p.services.len(),
                        if p.services.len() == 1 { "" } else { "s" }
                    )),
                    Some(error) => text.push_str(&format!(
                        ", without its services: its config has errors:\n{}\n",
                        error.trim_end()
                    )),
                }
                match supervisor {
                    Supervisor::NotRunning => text.push_str(
                        "No supervisor is running: `up(project, #{ detach: true })` starts one; everything else works without it.\n",
                    ),
                    Supervisor::Running { healthy, total } => text.push_str(&format!(
                        "Supervisor running: {healthy}/{total} healthy. `status()`, `start(\"NAME\")`, `stop(\"NAME\")`, `restart(\"NAME\")`, `logs(\"NAME\")`, `reload()`, `down()` steer it.\n"
                    )),
                    Supervisor::Unknown(error) => {
                        text.push_str(&format!("The supervisor did not answer: {error}\n"))
                    }
                }
            }
        }
        text
    }

    /// The prompt's words before `>`: `shop 5/6 healthy`, `shop` (no
    /// supervisor), `locald` (no project).
    pub fn prompt_text(&self, supervisor: &Supervisor) -> String {
        let Some(project) = &self.project else {
            return "locald".to_string();
        };
        match supervisor {
            Supervisor::NotRunning => project.0.name.clone(),
            Supervisor::Running { healthy, total } => {
                format!("{} {healthy}/{total} healthy", project.0.name)
            }
            Supervisor::Unknown(_) => format!("{} ?", project.0.name),
        }
    }

    /// The history file: `.locald/history` in a project, else the user's
    /// (`$XDG_STATE_HOME/locald/history`, `~/.local/state/locald/history`).
    /// Its directory is made private (0700) and the file 0600 before
    /// reedline opens it, as entries may hold secrets.
    pub fn history_file(&self) -> io::Result<PathBuf> {
        let dir = match &self.project {
            Some(project) => {
                let state = StateDir::new(&project.0.state_dir());
                state.ensure().map_err(io::Error::other)?;
                state.path().to_path_buf()
            }
            None => {
                let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
                    Some(dir) => PathBuf::from(dir),
                    None => {
                        let home = std::env::var_os("HOME")
                            .filter(|v| !v.is_empty())
                            .ok_or_else(|| {
                                io::Error::new(io::ErrorKind::NotFound, "HOME is not set")
                            })?;
                        PathBuf::from(home).join(".local/state")
                    }
                };
                let dir = base.join("locald");
                // Made 0700, or refused when it is a link, someone else's,
                // or writable by others: as locald's other private dirs.
                locald_shim_protocol::private_dir::ensure_private_dir(&dir)
                    .map_err(io::Error::other)?;
                dir
            }
        };
        let file = dir.join("history");
        // A regular file of ours, never through a link.
        crate::project::state_dir::open_file(
            OpenOptions::new().append(true).create(true).mode(0o600),
            &file,
        )?;
        Ok(file)
    }
}

/// reedline's prompt: `shop 5/6 healthy > `, then `... ` on continued lines.
pub struct ReplPrompt(pub String);

impl Prompt for ReplPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.0)
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed(" > ")
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("... ")
    }

    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        let status = match search.status {
            PromptHistorySearchStatus::Passing => "",
            PromptHistorySearchStatus::Failing => "failing ",
        };
        Cow::Owned(format!(" ({status}search: {}) ", search.term))
    }
}
