//! The runtime root's filesystem: bundles and container state are runtime data, kept in memory
//! as `/run` normally is.
//!
//! Some hosts have `/run` on their disk (this project's machines: the ext4 root, mounted with
//! online discard). There every file or directory a container's run creates and removes costs
//! synchronous block discards, about a millisecond per container when the disk is idle and up to
//! hundreds under I/O load (a build writing beside it). Run as root on such a host, locald mounts
//! a tmpfs on `/run/locald` the first time it needs it, once nothing on the disk below is in use.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use locald_shim_protocol::private_dir::{check_owned_dir, ensure_private_dir};
use locald_shim_protocol::seccomp_cache;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statfs::{statfs, FsType, TMPFS_MAGIC};

use crate::bundle::{runtime_root, xdg_runtime_dir, BundleError};

/// The runtime root, checked private to the caller (see [`locald_shim_protocol::private_dir`]): its
/// path, and a descriptor of the directory that passed the checks, to create entries through
/// (e.g. with [`locald_shim_protocol::private_dir::ensure_private_subdir`]).
#[derive(Debug)]
pub struct RuntimeRoot {
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// Creates or checks the runtime root ([`crate::runtime_root`]) as locald's own containers use
/// it: private to the caller (mode 0700, owned by the caller, not a symlink; see
/// [`locald_shim_protocol::private_dir`]), in memory for root. For other per-user runtime files.
pub fn prepare_runtime_root() -> Result<RuntimeRoot, crate::Error> {
    prepare().map_err(Into::into)
}

/// The runtime root, created (mode 0700) if missing and, for root, in memory (see the module
/// documentation). Mounting is best effort: the root on disk works, only slower.
///
/// An existing root is used only if the caller owns it and nobody else may write to it, and
/// not through a symlink: without `XDG_RUNTIME_DIR` a rootless root is `/tmp/locald-$UID`, a
/// name any local user could take first. `XDG_RUNTIME_DIR` itself must be the caller's and not
/// writable by others.
pub(crate) fn prepare() -> Result<RuntimeRoot, BundleError> {
    let root = runtime_root();
    let is_root = nix::unistd::Uid::effective().is_root();
    if !is_root {
        if let Some(xdg) = xdg_runtime_dir() {
            check_owned_dir(&xdg).map_err(BundleError::XdgRuntimeDir)?;
        }
    }
    let mut fd = ensure_private_dir(&root)?;
    if is_root && !in_memory(&root) {
        if let Err(err) = mount_in_memory(&root) {
            tracing::debug!("keeping {} on disk: {err}", root.display());
        }
        if in_memory(&root) {
            // A tmpfs now covers the directory we checked: check (and use) the new one.
            fd = ensure_private_dir(&root)?;
        }
    }
    Ok(RuntimeRoot { path: root, fd })
}

/// Whether `path` is on a tmpfs or ramfs.
pub(crate) fn in_memory(path: &Path) -> bool {
    statfs(path).is_ok_and(|stat| {
        let kind = stat.filesystem_type();
        // ramfs: 0x858458f6 (linux/magic.h).
        kind == TMPFS_MAGIC || kind == FsType(0x8584_58f6)
    })
}

/// Mounts a tmpfs on `root`, unless one is there already or something below is still in use.
/// Serialized between processes by a lock on the directory underneath.
fn mount_in_memory(root: &Path) -> nix::Result<bool> {
    let dir = nix::fcntl::open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: flock(2) on a descriptor we own; released when it is closed.
    Errno::result(unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) })?;
    if in_memory(root) {
        return Ok(false); // another process got there first
    }
    // What an earlier locald left down there would be hidden for good: clean it up, and stay on
    // the disk while any of it is in use.
    let _ = crate::sweep::sweep_stale_in(root);
    clear_caches(root);
    if !holds_nothing(root) {
        return Ok(false);
    }
    mount(
        Some("tmpfs"),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=700"),
    )?;
    Ok(true)
}

/// Removes what is only a cache (compiled seccomp programs): it must not keep the root on disk.
fn clear_caches(root: &Path) {
    seccomp_cache::clear(root);
}

/// Whether `dir` holds nothing but empty directories.
fn holds_nothing(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().all(|entry| {
        entry.file_type().is_ok_and(|t| t.is_dir())
            && fs::read_dir(entry.path()).is_ok_and(|mut inner| inner.next().is_none())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_directories_count_as_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(holds_nothing(dir.path()));
        fs::create_dir_all(dir.path().join("bundles")).unwrap();
        fs::create_dir_all(dir.path().join("state")).unwrap();
        assert!(holds_nothing(dir.path()));
        fs::write(dir.path().join("bundles/x.lock"), "").unwrap();
        assert!(!holds_nothing(dir.path()));
        assert!(!holds_nothing(&dir.path().join("missing")));
    }

    #[test]
    fn the_prepared_root_is_private_to_the_caller() {
        let root = prepare_runtime_root().unwrap();
        assert_eq!(root.path, runtime_root());
        let stat = nix::sys::stat::fstat(&root.fd).unwrap();
        assert_eq!(stat.st_uid, nix::unistd::geteuid().as_raw());
        assert_eq!(stat.st_mode & 0o7777, 0o700);
        assert_eq!(stat.st_mode & libc::S_IFMT, libc::S_IFDIR);
    }

    #[test]
    fn the_seccomp_cache_does_not_keep_the_root_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let cache = seccomp_cache::cache_dir(dir.path());
        fs::create_dir_all(&cache).unwrap();
        fs::write(cache.join("0123.bpf"), [0u8; 8]).unwrap();
        assert!(!holds_nothing(dir.path()));
        clear_caches(dir.path());
        assert!(holds_nothing(dir.path()));
    }

    #[test]
    fn tmpfs_is_memory() {
        if Path::new("/dev/shm").is_dir() {
            assert!(in_memory(Path::new("/dev/shm")));
        }
        assert!(!in_memory(Path::new("/proc")));
    }
}
