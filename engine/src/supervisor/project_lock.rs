//! One supervisor per project, whatever happens to `.locald/`.
//!
//! The lock in `.locald/supervisor.lock` lives in the project's tree: delete
//! `.locald/` and a second supervisor could start beside the first, and
//! `down` would then reach only the second. So a supervisor also holds, for
//! its whole life, an exclusive flock(2) on
//! `<runtime root>/project-<sha256 of the canonical project root>.lock`
//! (the runtime root is the per-user, 0700 directory of
//! [`locald_runtime::prepare_runtime_root`]). The kernel drops the lock
//! however the supervisor dies, so a stale file never blocks anyone; the
//! file holds the holder's pid for error messages. The holder removes the
//! file when it lets go (while still holding the lock), and a taker checks
//! that the file it locked is still the one at the path (else it retries),
//! so removing it never lets two holders lock different files.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use locald_shim_protocol::lock;
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

use crate::project::state_dir::open_file;

#[derive(Debug, thiserror::Error)]
pub enum ProjectLockError {
    #[error("cannot resolve the project directory {path}: {source}")]
    Resolve { path: PathBuf, source: io::Error },
    #[error("cannot prepare the runtime directory: {0}")]
    Runtime(#[from] locald_runtime::Error),
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
}

/// The held lock: this process is the project's one supervisor until it is
/// dropped (or the process ends).
#[derive(Debug)]
pub struct ProjectLock {
    path: PathBuf,
    _file: Flock<File>,
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        // Still locked: a taker that opened this file before the unlink
        // finds it unlinked once it gets the lock, and tries again.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Who holds a project's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's pid, when its file says (it may be writing it still).
    pub pid: Option<u32>,
}

impl Holder {
    pub fn pid_text(&self) -> String {
        self.pid
            .map_or_else(|| "unknown".to_string(), |pid| pid.to_string())
    }
}

/// The lock file of the project at `root`.
fn lock_path(root: &Path) -> Result<PathBuf, ProjectLockError> {
    let canonical = root
        .canonicalize()
        .map_err(|source| ProjectLockError::Resolve {
            path: root.to_path_buf(),
            source,
        })?;
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let runtime = locald_runtime::prepare_runtime_root()?;
    Ok(runtime
        .path
        .join(format!("project-{}.lock", hex::encode(digest))))
}

fn open(path: &Path) -> Result<File, ProjectLockError> {
    open_file(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
        path,
    )
    .map_err(|source| ProjectLockError::Lock {
        path: path.to_path_buf(),
        source,
    })
}

impl ProjectLock {
    /// Take the lock of the project at `root`, or say who holds it.
    pub fn acquire(root: &Path) -> Result<Result<ProjectLock, Holder>, ProjectLockError> {
        Self::take(root, true)
    }

    /// Take the lock; record this process as its holder when `record`.
    fn take(root: &Path, record: bool) -> Result<Result<ProjectLock, Holder>, ProjectLockError> {
        let path = lock_path(root)?;
        let lock_error = |source| ProjectLockError::Lock {
            path: path.clone(),
            source,
        };
        loop {
            let mut file = match Flock::lock(open(&path)?, FlockArg::LockExclusiveNonblock) {
                Ok(file) => file,
                Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Ok(Err(read_holder(&mut file)))
                }
                Err((_, errno)) => return Err(lock_error(io::Error::from(errno))),
            };
            if !lock::still_at(file.as_fd(), &path).map_err(lock_error)? {
                continue;
            }
            if record {
                // Ours now: say who holds it.
                file.set_len(0).map_err(lock_error)?;
                file.rewind().map_err(lock_error)?;
                writeln!(file, "{}", std::process::id()).map_err(lock_error)?;
            }
            return Ok(Ok(ProjectLock {
                path: path.clone(),
                _file: file,
            }));
        }
    }

    /// Who holds the lock of the project at `root`, if anyone (the lock is
    /// left free).
    pub fn holder(root: &Path) -> Result<Option<Holder>, ProjectLockError> {
        Ok(ProjectLock::take(root, false)?.err())
    }
}

fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file.take(64).read_to_string(&mut text);
    Holder {
        pid: text.trim().parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_project_named_by_pid() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let held = ProjectLock::acquire(dir.path()).unwrap().unwrap();
        // The same project, by another path to it, is taken.
        let again = ProjectLock::acquire(&dir.path().join("."))
            .unwrap()
            .unwrap_err();
        assert_eq!(again.pid, Some(std::process::id()));
        assert_eq!(
            ProjectLock::holder(dir.path()).unwrap(),
            Some(Holder {
                pid: Some(std::process::id())
            })
        );
        // Another project is not.
        assert!(ProjectLock::holder(other.path()).unwrap().is_none());
        let path = lock_path(dir.path()).unwrap();
        drop(held);
        assert!(!path.exists(), "the lock file goes with its holder");
        assert!(ProjectLock::holder(dir.path()).unwrap().is_none());
        assert!(!lock_path(other.path()).unwrap().exists());
    }

    #[test]
    fn a_file_removed_by_its_last_holder_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path()).unwrap();
        // Opened (as a taker would) before the holder lets go and removes it.
        let held = ProjectLock::acquire(dir.path()).unwrap().unwrap();
        let stale = open(&path).unwrap();
        drop(held);
        let stale = Flock::lock(stale, FlockArg::LockExclusiveNonblock).unwrap();
        // The taker sees its file is gone (and would try again)...
        assert!(!lock::still_at(stale.as_fd(), &path).unwrap());
        // ...and a new holder gets the lock meanwhile.
        let fresh = ProjectLock::acquire(dir.path()).unwrap().unwrap();
        assert!(ProjectLock::acquire(dir.path()).unwrap().is_err());
        drop((stale, fresh));
    }
}
