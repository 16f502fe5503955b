//! The optional init of a container (`init = true`, as `docker run --init`): Debian's
//! `tini-static` (what Docker ships as `docker-init`), bind-mounted read-only into the
//! container and run as its PID 1 in front of the command. A PID 1 gets no default signal
//! handlers from the kernel, so a command that does not install its own (`sleep`, a shell,
//! many entrypoints) ignores the stop signal and costs `stop_timeout` at every stop; tini
//! forwards the signal to it and reaps the zombies it leaves.

use std::path::{Path, PathBuf};

/// Where the init is found on the host: a static binary, so it runs in any image.
pub const INIT_BINARY: &str = "/usr/bin/tini-static";

/// Where the init appears inside the container.
pub const INIT_IN_CONTAINER: &str = "/sbin/locald-init";

/// Why a container cannot have its init.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "a container init needs {}, which is missing: install Debian's `tini` package \
         (apt-get install tini)",
        .0.display()
    )]
    Missing(PathBuf),
}

/// The host path of the init, checked to exist.
pub fn init_binary() -> Result<PathBuf, InitError> {
    find_init(Path::new(INIT_BINARY))
}

fn find_init(path: &Path) -> Result<PathBuf, InitError> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(InitError::Missing(path.to_path_buf()))
    }
}

/// The process arguments behind the init: `[init, "--", args...]`.
pub fn behind_init(args: Vec<String>) -> Vec<String> {
    [INIT_IN_CONTAINER.to_string(), "--".to_string()]
        .into_iter()
        .chain(args)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_init_names_the_package() {
        let error = find_init(Path::new("/nonexistent/tini-static")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("/nonexistent/tini-static"), "{message}");
        assert!(message.contains("`tini` package"), "{message}");
    }

    #[test]
    fn the_command_runs_behind_the_init() {
        assert_eq!(
            behind_init(vec!["sleep".into(), "5".into()]),
            ["/sbin/locald-init", "--", "sleep", "5"]
        );
    }
}
