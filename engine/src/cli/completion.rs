//! Shell completions: `locald completions bash|zsh|fish` prints the script
//! to source, which calls `locald` back on each TAB (clap_complete's dynamic
//! completion, switched on by [`VAR`]), so the grammar completed is always
//! the binary's own and service arguments complete the names of the
//! project here.
//!
//! Service and task names are read from `locald.toml`'s `[services.*]`
//! tables and `[tasks]` (and the file names of `tasks/*.rhai`) without
//! evaluating or validating anything (as `locate_project` reads the
//! project's name): a TAB never runs `locald.rhai`, and a config with errors
//! still completes.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::env::Shells;
use clap_complete::{CompleteEnv, CompletionCandidate};

use super::Cli;

/// The variable that asks `locald` for completions instead of running: its
/// own name, so a `COMPLETE` set for another tool does not hijack a command.
pub const VAR: &str = "LOCALD_COMPLETE";

/// The shells `locald completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }
}

/// Answers a completion request and exits, when the shell's script made
/// one (see [`VAR`]); returns otherwise.
pub fn complete_if_asked() {
    CompleteEnv::with_factory(Cli::command)
        .var(VAR)
        .bin("locald")
        .completer("locald")
        .complete();
}

/// The script that makes `shell` complete `locald`.
pub fn script(shell: Shell) -> std::io::Result<Vec<u8>> {
    let shells = Shells::builtins();
    let completer = shells
        .completer(shell.name())
        .ok_or_else(|| std::io::Error::other(format!("no completer for {}", shell.name())))?;
    let mut script = Vec::new();
    completer.write_registration(VAR, "locald", "locald", "locald", &mut script)?;
    script.flush()?;
    Ok(script)
}

/// The services of the project here, for an argument that names services.
pub fn service_candidates() -> Vec<CompletionCandidate> {
    let Some((_, source)) = project_here() else {
        return Vec::new();
    };
    candidates(crate::config::declared_service_names(&source))
}

/// The tasks of the project here: `[tasks]` of `locald.toml`, then the
/// files `tasks/*.rhai`.
pub fn task_candidates() -> Vec<CompletionCandidate> {
    let Some((root, source)) = project_here() else {
        return Vec::new();
    };
    let mut names = crate::config::declared_task_names(&source);
    names.extend(crate::project::tasks::task_file_names(&root));
    candidates(names)
}

/// The project directory here and its `locald.toml` (empty when it has
/// none or it cannot be read).
fn project_here() -> Option<(std::path::PathBuf, String)> {
    let cwd = std::env::current_dir().ok()?;
    let files = crate::config::find_config(&cwd)?;
    let source = files
        .toml
        .and_then(|path| crate::project::read_source(&path, &crate::sandbox::Limits::PROJECT).ok())
        .unwrap_or_default();
    Some((files.dir, source))
}

fn candidates(names: Vec<String>) -> Vec<CompletionCandidate> {
    names.into_iter().map(CompletionCandidate::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shell_gets_a_script_that_calls_locald_back() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(script(shell).unwrap()).unwrap();
            assert!(script.contains(VAR), "{shell:?}: {script}");
            assert!(script.contains("locald"), "{shell:?}: {script}");
        }
    }
}
