//! A bundle's lock file: `<bundle dir>.lock`, beside the bundle. The runtime creates it already
//! locked before it creates the bundle, and holds a shared flock(2) for as long as the bundle
//! exists; the shim holds its own shared one for as long as it runs. A sweep that gets an
//! exclusive lock knows that nobody uses the bundle any more and removes it, then the lock file.
//! A lock file that is no longer the one at its path was removed by a sweep: the bundle is
//! going away.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// The lock file of a bundle is the bundle directory's path with this suffix (`<dir>.lock`).
pub const LOCK_SUFFIX: &str = ".lock";

/// The lock file of the bundle directory `bundle` (`<bundle>.lock`, beside it); `None` for a
/// path without a final name (`/`, `..`).
pub fn bundle_lock_path(bundle: &Path) -> Option<PathBuf> {
    let name = bundle.file_name()?;
    let mut lock_name = OsString::from(name);
    lock_name.push(LOCK_SUFFIX);
    Some(bundle.with_file_name(lock_name))
}

/// How a bundle's lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// By the bundle's users (the runtime's `Bundle`, the shim): any number at once.
    Shared,
    /// By a sweep: only when nobody uses the bundle.
    Exclusive,
}

/// Takes a flock(2) on `fd` without waiting; `EWOULDBLOCK` when the other kind is held.
pub fn try_lock(fd: BorrowedFd<'_>, mode: LockMode) -> nix::Result<()> {
    let kind = match mode {
        LockMode::Shared => libc::LOCK_SH,
        LockMode::Exclusive => libc::LOCK_EX,
    };
    // SAFETY: flock(2) on a descriptor we borrow; no memory is involved.
    Errno::result(unsafe { libc::flock(fd.as_raw_fd(), kind | libc::LOCK_NB) }).map(drop)
}

/// Whether `path` (not followed if a symlink) is still the file open as `fd`: a lock file
/// released and removed (or replaced) by its last holder between an open and a lock is nobody's
/// lock any more. `Ok(false)` when nothing is at `path`; an error when that cannot be told.
pub fn still_at(fd: BorrowedFd<'_>, path: &Path) -> io::Result<bool> {
    let open = nix::sys::stat::fstat(fd)?;
    match fs::symlink_metadata(path) {
        Ok(named) => Ok(open.st_dev == named.dev() && open.st_ino == named.ino()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// [`still_at`], taking "cannot tell" for "no": for callers that then leave the file alone.
pub fn same_file(fd: BorrowedFd<'_>, path: &Path) -> bool {
    still_at(fd, path).unwrap_or(false)
}

/// Why a bundle's lock could not be held.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("opening the bundle's lock file {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "bundle {bundle} is being removed (a sweep holds or removed its lock file {path}): it \
         cannot be run"
    )]
    BeingRemoved { bundle: PathBuf, path: PathBuf },
}

/// Takes a shared lock on the lock file of `bundle` when it has one (bundles the runtime makes
/// do), for as long as the returned descriptor stays open; `None` when there is no lock file.
/// Refuses a bundle that a sweep holds or has removed.
pub fn hold_shared(bundle: &Path) -> Result<Option<OwnedFd>, LockError> {
    let Some(path) = bundle_lock_path(bundle) else {
        return Ok(None);
    };
    let fd = match nix::fcntl::open(
        &path,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => {
            return Err(LockError::Open {
                path,
                source: errno.into(),
            })
        }
    };
    if try_lock(fd.as_fd(), LockMode::Shared).is_err() || !same_file(fd.as_fd(), &path) {
        return Err(LockError::BeingRemoved {
            bundle: bundle.to_path_buf(),
            path,
        });
    }
    Ok(Some(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_sits_beside_the_bundle() {
        assert_eq!(
            bundle_lock_path(Path::new("/run/locald/bundles/web-1")),
            Some(PathBuf::from("/run/locald/bundles/web-1.lock"))
        );
        assert_eq!(bundle_lock_path(Path::new("/")), None);
    }

    #[test]
    fn users_share_the_lock_and_keep_a_sweep_out() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("b1");
        // No lock file: nothing to hold (a bundle made by other means).
        assert!(hold_shared(&bundle).unwrap().is_none());
        let lock = bundle_lock_path(&bundle).unwrap();
        fs::write(&lock, "").unwrap();
        let first = hold_shared(&bundle).unwrap().unwrap();
        let second = hold_shared(&bundle).unwrap().unwrap();
        let sweep =
            nix::fcntl::open(&lock, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        assert_eq!(
            try_lock(sweep.as_fd(), LockMode::Exclusive),
            Err(Errno::EWOULDBLOCK)
        );
        drop((first, second));
        try_lock(sweep.as_fd(), LockMode::Exclusive).unwrap();
        // Now the sweep holds it: a user is refused.
        let err = hold_shared(&bundle).unwrap_err();
        assert!(matches!(err, LockError::BeingRemoved { .. }), "{err}");
        assert!(
            err.to_string().contains(&bundle.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_replaced_lock_file_is_not_the_bundles_lock() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("x.lock");
        fs::write(&lock, "").unwrap();
        let held =
            nix::fcntl::open(&lock, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        assert!(same_file(held.as_fd(), &lock));
        fs::remove_file(&lock).unwrap();
        fs::write(&lock, "").unwrap();
        assert!(!same_file(held.as_fd(), &lock));
        std::os::unix::fs::symlink("/dev/null", dir.path().join("link")).unwrap();
        assert!(!same_file(held.as_fd(), &dir.path().join("link")));
        // Nothing there is a plain "no"; a path that cannot be looked at is an error.
        assert!(!still_at(held.as_fd(), &dir.path().join("gone")).unwrap());
        assert!(still_at(held.as_fd(), &lock.join("below-a-file")).is_err());
    }
}
