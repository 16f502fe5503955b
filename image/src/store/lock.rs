//! Advisory `flock` locks that keep concurrent locald processes from corrupting
//! the shared store.
//!
//! Two locks: `store.lock` is held shared by every pull/import for its whole
//! duration and exclusively by prune (so prune never deletes a blob a pull has
//! just downloaded but not yet referenced); `refs.lock` serialises the
//! read-modify-write of the refs index.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::StoreError;

/// A held lock; released when dropped (the file is closed).
#[derive(Debug)]
pub(crate) struct LockGuard {
    _lock: Flock<File>,
}

pub(crate) fn lock(path: &Path, exclusive: bool) -> Result<LockGuard, StoreError> {
    let io_error = |source| StoreError::Io {
        action: "lock",
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_error)?;
    let arg = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    let lock = Flock::lock(file, arg).map_err(|(_, errno)| io_error(errno.into()))?;
    Ok(LockGuard { _lock: lock })
}

/// Takes a lock from async code without blocking a runtime worker while a
/// prune in another process holds it.
pub(crate) async fn lock_async(path: PathBuf, exclusive: bool) -> Result<LockGuard, StoreError> {
    let waiting_path = path.clone();
    tokio::task::spawn_blocking(move || lock(&waiting_path, exclusive))
        .await
        .map_err(|join| StoreError::Io {
            action: "lock",
            path,
            source: std::io::Error::other(join.to_string()),
        })?
}
