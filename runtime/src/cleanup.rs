//! Removing what a container leaves on the host: directory trees (without following symlinks
//! or crossing into mounted filesystems), mounts under a directory, and cgroup directories (with
//! [`locald_shim_protocol::cgroup`], as the shim removes them).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::{umount2, MntFlags};
use nix::sys::stat::{fchmodat, FchmodatFlags, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use locald_shim_protocol::{cgroup, mountinfo};

/// Removes `dir` and everything below it. Symlinks are removed, never followed; a directory that
/// is the root of another mount (a bind mount, the overlay rootfs) is neither entered nor
/// removed, and the removal then fails with `EBUSY` rather than delete files of another
/// filesystem. A missing `dir` is not an error.
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    let (parent, name) = match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(name)) => (parent, name),
        _ => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
    };
    let parent_path = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let parent = match open_dir(None, parent_path) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    let top = match open_child_dir(parent.as_fd(), name) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::ENOTDIR) => {
            // A file or symlink where the directory was expected: remove just that.
            return remove_entry(parent.as_fd(), name, false).map_err(io::Error::from);
        }
        Err(err) => return Err(err.into()),
    };
    let mount = mount_id(top.as_fd())?;
    empty_dir(top, mount)?;
    remove_entry(parent.as_fd(), name, true).map_err(io::Error::from)
}

/// Deletes the contents of the directory `dir` (which is on mount `mount`).
fn empty_dir(dir: OwnedFd, mount: u64) -> io::Result<()> {
    let dir_fd = nix::unistd::dup(dir.as_fd())?;
    let mut entries = Dir::from_fd(dir_fd)?;
    let mut names: Vec<(OsString, Option<Type>)> = Vec::new();
    for entry in entries.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push((OsString::from_vec(name.to_vec()), entry.file_type()));
    }
    drop(entries);
    for (name, file_type) in names {
        let is_dir = match file_type {
            Some(Type::Directory) => true,
            Some(_) => false,
            None => nix::sys::stat::fstatat(
                dir.as_fd(),
                name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map(|st| (st.st_mode & libc::S_IFMT) == libc::S_IFDIR)
            .unwrap_or(false),
        };
        if !is_dir {
            match remove_entry(dir.as_fd(), &name, false) {
                Ok(()) | Err(Errno::ENOENT) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        let child = match open_child_dir(dir.as_fd(), &name) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(err) => return Err(err.into()),
        };
        if mount_id(child.as_fd())? != mount {
            // Something is mounted here: leave it (and so its parents) alone.
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        empty_dir(child, mount)?;
        match remove_entry(dir.as_fd(), &name, true) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

fn remove_entry(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> nix::Result<()> {
    let flag = if is_dir {
        UnlinkatFlags::RemoveDir
    } else {
        UnlinkatFlags::NoRemoveDir
    };
    unlinkat(dir, name, flag)
}

/// Opens `name` in `dir` as a directory without following a symlink. overlayfs leaves its
/// `work/work` directory with mode 000, which a non-root owner must open up first.
fn open_child_dir(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<OwnedFd> {
    match open_dir(Some(dir), Path::new(name)) {
        Err(Errno::EACCES) => {
            fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(0o700),
                FchmodatFlags::NoFollowSymlink,
            )
            .or_else(|_| {
                // Older kernels refuse AT_SYMLINK_NOFOLLOW for fchmodat; the entry is a
                // directory (EACCES came from opening it as one), not a symlink.
                fchmodat(
                    dir,
                    name,
                    Mode::from_bits_truncate(0o700),
                    FchmodatFlags::FollowSymlink,
                )
            })?;
            open_dir(Some(dir), Path::new(name))
        }
        other => other,
    }
}

fn open_dir(dir: Option<BorrowedFd<'_>>, path: &Path) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match dir {
        Some(dir) => openat(dir, path, flags, Mode::empty()),
        None => nix::fcntl::open(path, flags, Mode::empty()),
    }
}

/// The id of the mount `fd` is on (statx `STATX_MNT_ID`, Linux 5.8+), else its device number,
/// which still tells mounts of other filesystems apart.
fn mount_id(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut buf = std::mem::MaybeUninit::<libc::statx>::zeroed();
    let empty = c"";
    // SAFETY: a valid descriptor, a NUL-terminated empty path with AT_EMPTY_PATH, and a buffer
    // of the right type for the kernel to fill.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            buf.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statx succeeded and filled the buffer.
    let stat = unsafe { buf.assume_init() };
    if stat.stx_mask & libc::STATX_MNT_ID != 0 {
        Ok(stat.stx_mnt_id)
    } else {
        Ok((u64::from(stat.stx_dev_major) << 32) | u64::from(stat.stx_dev_minor))
    }
}

/// Lazily unmounts every mount at or below `dir` in this mount namespace, deepest first.
/// Returns how many were unmounted.
pub fn unmount_under(dir: &Path) -> io::Result<usize> {
    let mut targets: Vec<PathBuf> = mountinfo::mount_points(&mountinfo::read()?)
        .into_iter()
        .filter(|point| point.starts_with(dir))
        .collect();
    targets.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    targets.dedup();
    let mut unmounted = 0;
    for target in targets {
        match umount2(&target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => unmounted += 1,
            Err(Errno::EINVAL | Errno::ENOENT) => {} // already gone
            Err(err) => return Err(err.into()),
        }
    }
    Ok(unmounted)
}

/// Mount points of every cgroup (v1) and cgroup2 filesystem under /sys/fs/cgroup.
pub fn cgroup_mount_points() -> Vec<PathBuf> {
    let Ok(text) = mountinfo::read() else {
        return Vec::new();
    };
    cgroup::cgroup_mounts(&text)
        .into_iter()
        .map(|mount| mount.mount_point)
        .filter(|point| point.starts_with(cgroup::CGROUP_ROOT))
        .collect()
}

/// Whether any process is still in cgroup `relative` (e.g. `locald/<id>`) of any hierarchy.
pub fn cgroup_has_processes(hierarchies: &[PathBuf], relative: &Path) -> bool {
    hierarchies.iter().any(|hierarchy| {
        fs::read_to_string(hierarchy.join(relative).join("cgroup.procs"))
            .is_ok_and(|procs| !procs.trim().is_empty())
    })
}

/// Removes cgroup `relative` (e.g. `locald/<id>`) from every hierarchy, SIGKILLing what still
/// runs in it first, then its parent directories that are left empty. Missing cgroups are fine.
pub fn remove_cgroups(hierarchies: &[PathBuf], relative: &Path) -> io::Result<()> {
    cgroup::remove_cgroups(hierarchies, relative).map_err(|(hierarchy, errno)| {
        io::Error::new(
            io::Error::from(errno).kind(),
            format!("in {}: {errno}", hierarchy.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn removes_trees_without_following_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("precious"), "keep").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("bundle");
        fs::create_dir_all(tree.join("a/b")).unwrap();
        fs::write(tree.join("a/b/file"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), tree.join("a/link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("precious"), tree.join("filelink")).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        assert_eq!(
            fs::read_to_string(outside.path().join("precious")).unwrap(),
            "keep"
        );
        // Missing is fine.
        remove_tree(&tree).unwrap();
    }

    #[test]
    fn removal_opens_up_unreadable_directories() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("bundle");
        fs::create_dir_all(tree.join("work/work")).unwrap();
        fs::set_permissions(tree.join("work/work"), fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
    }

    #[test]
    fn a_symlinked_top_is_removed_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("precious"), "keep").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("bundle");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        remove_tree(&link).unwrap();
        assert!(fs::symlink_metadata(&link).is_err());
        assert!(outside.path().join("precious").exists());
    }
}
