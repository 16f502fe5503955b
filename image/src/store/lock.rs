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

/// How often [`lock_async`] tries again while another process holds the lock.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

/// Takes a lock from async code without blocking a runtime worker while a
/// prune in another process holds it. It polls (`LOCK_NB`) instead of
/// waiting in `flock` on a blocking thread: such a thread cannot be
/// cancelled, and a runtime being shut down waits for it, so a pull
/// interrupted while it waits would hang until the prune ends.
pub(crate) async fn lock_async(path: PathBuf, exclusive: bool) -> Result<LockGuard, StoreError> {
    let io_error = |source| StoreError::Io {
        action: "lock",
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error)?;
    let arg = if exclusive {
        FlockArg::LockExclusiveNonblock
    } else {
        FlockArg::LockSharedNonblock
    };
    loop {
        match Flock::lock(file, arg) {
            Ok(lock) => return Ok(LockGuard { _lock: lock }),
            Err((unlocked, nix::errno::Errno::EWOULDBLOCK)) => {
                file = unlocked;
                tokio::time::sleep(LOCK_RETRY).await;
            }
            Err((_, errno)) => return Err(io_error(errno.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_for_a_held_lock_can_be_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.lock");
        // What a prune in another process does (flock locks are per open
        // file, so this blocks a second open in this process too).
        let held = lock(&path, true).unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn({
            let path = path.clone();
            move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let got_it = runtime.block_on(async {
                    tokio::select! {
                        _ = lock_async(path, false) => true,
                        // The caller gives up (Ctrl-C) while the lock is held.
                        () = tokio::time::sleep(std::time::Duration::from_millis(100)) => false,
                    }
                });
                // Dropping the runtime waits for its blocking threads.
                drop(runtime);
                done.send(got_it).unwrap();
            }
        });
        // A guard against a hang, not a timing assertion.
        let got_it = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("abandoning the wait for a held lock hung");
        assert!(!got_it, "got a lock another holder has");
        waiter.join().unwrap();
        drop(held);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(lock_async(path, false)).unwrap();
    }
}
