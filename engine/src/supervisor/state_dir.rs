//! The project's state directory `.locald/` (mode 0700): where the control
//! socket, pid and lock files, persisted ports and service logs live.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("cannot prepare state directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
}

/// Paths inside one project's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(path: &Path) -> Self {
        StateDir {
            root: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("supervisor.sock")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.root.join("supervisor.pid")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join("supervisor.lock")
    }

    pub fn supervisor_log(&self) -> PathBuf {
        self.root.join("supervisor.log")
    }

    pub fn ports_file(&self) -> PathBuf {
        self.root.join("ports.json")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn service_log(&self, service: &str) -> PathBuf {
        self.logs_dir().join(format!("{service}.log"))
    }

    /// Create `.locald/` and `.locald/logs/` private to the user (0700), also
    /// tightening them when they already exist.
    pub fn ensure(&self) -> Result<(), StateDirError> {
        for dir in [self.root.clone(), self.logs_dir()] {
            let create = |source| StateDirError::Create {
                path: dir.clone(),
                source,
            };
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(create)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(create)?;
        }
        Ok(())
    }

    /// Take the supervisor lock: held for the life of a supervisor, released
    /// by the kernel however it dies. `Ok(None)` when another supervisor holds it.
    pub fn try_lock(&self) -> Result<Option<Flock<File>>, StateDirError> {
        let path = self.lock_file();
        let lock_error = |source| StateDirError::Lock {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_error)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(lock_error(io::Error::from(errno))),
        }
    }

    /// Whether a live supervisor holds the lock right now.
    pub fn is_locked(&self) -> bool {
        if !self.lock_file().exists() {
            return false;
        }
        matches!(self.try_lock(), Ok(None))
    }

    /// Remove the socket and pid file a dead supervisor left behind.
    pub fn remove_runtime_files(&self) {
        for path in [self.socket(), self.pid_file()] {
            if let Err(error) = fs::remove_file(&path) {
                if error.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), %error, "cannot remove stale file");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_creates_private_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(&dir.path().join(".locald"));
        fs::create_dir(state.path()).unwrap();
        fs::set_permissions(state.path(), fs::Permissions::from_mode(0o755)).unwrap();
        state.ensure().unwrap();
        for path in [state.path().to_path_buf(), state.logs_dir()] {
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", path.display());
        }
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        assert!(!state.is_locked());
        let held = state.try_lock().unwrap().expect("first lock succeeds");
        assert!(state.try_lock().unwrap().is_none());
        assert!(state.is_locked());
        drop(held);
        assert!(!state.is_locked());
    }
}
