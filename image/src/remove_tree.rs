//! Removing a directory tree that someone else filled: an image's rootfs (the store), a
//! container's writable layer (the runtime's bundles).
//!
//! Both hold what untrusted code wrote, so the removal must hold up against any shape of tree:
//! symlinks are removed, never followed; a directory that is the root of another mount is neither
//! entered nor removed; directories without read or search permission (overlayfs's `work/work`
//! is 000, and a layer may ship a 000 directory) are opened up before being emptied; and depth
//! costs neither stack nor descriptors. `std::fs::remove_dir_all` recurses with one descriptor
//! per level: an image nesting 1,900 directories made `image prune` fail for good with EMFILE
//! under the usual limit of 1,024 descriptors, and a container nesting 30,000 (by renames, never a
//! long path) overflowed the stack of the recursive walk locald had before.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmodat, FchmodatFlags, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// Removes `dir` and everything below it. Symlinks are removed, never followed; a directory that
/// is the root of another mount (a bind mount, the overlay rootfs) is neither entered nor
/// removed, and the removal then fails with `EBUSY` rather than delete files of another
/// filesystem. A missing `dir` is not an error.
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    remove_tree_freeing(dir).map(|_| ())
}

/// [`remove_tree`], returning the disk space it freed (in bytes, as `du` counts it: the blocks of
/// each file whose last link it removed, so a hard-linked file counts once, and only if no link
/// to it is left elsewhere).
pub fn remove_tree_freeing(dir: &Path) -> io::Result<u64> {
    let mut freed = 0;
    remove_tree_counting(dir, &mut freed)?;
    Ok(freed)
}

fn remove_tree_counting(dir: &Path, freed: &mut u64) -> io::Result<()> {
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
            return remove_entry(parent.as_fd(), name, false, freed).map_err(io::Error::from);
        }
        Err(err) => return Err(err.into()),
    };
    let mount = mount_id(top.as_fd())?;
    empty_dir(top, mount, freed)?;
    remove_entry(parent.as_fd(), name, true, freed).map_err(io::Error::from)
}

/// One directory on the way down from the top of the tree being emptied.
struct Level {
    /// Its name in its parent (unused for the top).
    name: OsString,
    /// Its device and inode, to check that `..` leads back to it.
    id: (u64, u64),
    /// Its subdirectories still to empty and remove.
    subdirs: Vec<OsString>,
}

/// Deletes the contents of the directory `top` (which is on mount `mount`).
///
/// Iterative, with one open directory at a time: what is removed here is written by containers,
/// and a container can nest directories as deep as it likes (renaming a directory into a new
/// one adds a level without ever using a long path). A recursive walk overflowed the stack and
/// aborted locald (the supervisor with it) for 30,000 levels, and one descriptor per level would
/// run out of descriptors. Going back up opens `..` and checks it is the directory we came from
/// (device and inode), so a directory moved meanwhile stops the removal instead of leading it
/// elsewhere.
fn empty_dir(top: OwnedFd, mount: u64, freed: &mut u64) -> io::Result<()> {
    let mut current = top;
    let mut stack = vec![Level {
        name: OsString::new(),
        id: file_id(current.as_fd())?,
        subdirs: remove_files(current.as_fd(), freed)?,
    }];
    loop {
        let Some(level) = stack.last_mut() else {
            return Ok(());
        };
        if let Some(name) = level.subdirs.pop() {
            let child = match open_child_dir(current.as_fd(), &name) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => continue,
                Err(err) => return Err(err.into()),
            };
            if mount_id(child.as_fd())? != mount {
                // Something is mounted here: leave it (and so its parents) alone.
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
            let id = file_id(child.as_fd())?;
            let subdirs = remove_files(child.as_fd(), freed)?;
            current = child;
            stack.push(Level { name, id, subdirs });
            continue;
        }
        // `current` is empty: go back up to its parent and remove it there.
        let done = stack.pop().expect("the loop saw a last level");
        let Some(parent) = stack.last() else {
            return Ok(());
        };
        let up = open_dir(Some(current.as_fd()), Path::new(".."))?;
        if file_id(up.as_fd())? != parent.id {
            return Err(io::Error::other(format!(
                "directory {:?} was moved while being removed",
                done.name
            )));
        }
        current = up;
        match remove_entry(current.as_fd(), &done.name, true, freed) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(err) => return Err(err.into()),
        }
    }
}

/// Removes every entry of `dir` but its subdirectories, whose names it returns.
fn remove_files(dir: BorrowedFd<'_>, freed: &mut u64) -> io::Result<Vec<OsString>> {
    let dir_fd = nix::unistd::dup(dir)?;
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
    let mut subdirs = Vec::new();
    for (name, file_type) in names {
        let is_dir = match file_type {
            Some(Type::Directory) => true,
            Some(_) => false,
            None => nix::sys::stat::fstatat(
                dir,
                name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map(|st| (st.st_mode & libc::S_IFMT) == libc::S_IFDIR)
            .unwrap_or(false),
        };
        if is_dir {
            subdirs.push(name);
            continue;
        }
        match remove_entry(dir, &name, false, freed) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(subdirs)
}

/// The device and inode of the open file `fd`.
fn file_id(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let stat = nix::sys::stat::fstat(fd)?;
    Ok((stat.st_dev, stat.st_ino))
}

/// Removes `name` from `dir`, adding to `freed` the space that frees: its blocks when this was
/// its last link (a directory's own blocks always).
fn remove_entry(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    is_dir: bool,
    freed: &mut u64,
) -> nix::Result<()> {
    let flag = if is_dir {
        UnlinkatFlags::RemoveDir
    } else {
        UnlinkatFlags::NoRemoveDir
    };
    let stat = nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).ok();
    unlinkat(dir, name, flag)?;
    if let Some(stat) = stat {
        if is_dir || stat.st_nlink <= 1 {
            *freed += u64::try_from(stat.st_blocks).unwrap_or(0) * 512;
        }
    }
    Ok(())
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
            .or_else(|errno| {
                // Kernels without fchmodat2 refuse AT_SYMLINK_NOFOLLOW (ENOSYS, EINVAL) for
                // any entry; any other failure (EOPNOTSUPP means the entry is now a symlink)
                // must not be retried following links.
                if !matches!(errno, Errno::ENOSYS | Errno::EINVAL) {
                    return Err(errno);
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
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

    /// What `du` would count for `path`: its blocks.
    fn blocks(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::symlink_metadata(path).unwrap().blocks() * 512
    }

    #[test]
    fn the_space_freed_counts_each_file_once_and_not_those_still_linked() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("rootfs");
        fs::create_dir_all(tree.join("usr/lib")).unwrap();
        fs::write(tree.join("usr/lib/big"), vec![7u8; 200_000]).unwrap();
        // Two names for one file inside: its space counts once.
        fs::hard_link(tree.join("usr/lib/big"), tree.join("usr/big-again")).unwrap();
        // A file also linked from outside the tree: removing the tree frees nothing of it.
        fs::write(tree.join("shared"), vec![1u8; 100_000]).unwrap();
        fs::hard_link(tree.join("shared"), dir.path().join("kept")).unwrap();
        std::os::unix::fs::symlink("usr", tree.join("link")).unwrap();
        let expected = blocks(&tree.join("usr/lib/big"))
            + blocks(&tree.join("link"))
            + blocks(&tree)
            + blocks(&tree.join("usr"))
            + blocks(&tree.join("usr/lib"));
        assert!(expected >= 200_000, "{expected}");
        assert_eq!(remove_tree_freeing(&tree).unwrap(), expected);
        assert!(!tree.exists());
        assert_eq!(fs::read(dir.path().join("kept")).unwrap().len(), 100_000);
    }

    #[test]
    fn very_deep_trees_are_removed_without_recursion() {
        // A container can nest directories without limit (rename a directory into a new one,
        // over and over): 30,000 levels overflowed the recursive walk's stack and aborted locald.
        // Built here the same way, by renames, so no path is ever long.
        const DEPTH: usize = 10_000;
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("bundle");
        fs::create_dir(&tree).unwrap();
        let (x, y) = (tree.join("x"), tree.join("y"));
        fs::create_dir(&x).unwrap();
        fs::write(x.join("file"), "deepest").unwrap();
        for _ in 0..DEPTH {
            fs::create_dir(&y).unwrap();
            fs::rename(&x, y.join("x")).unwrap();
            fs::rename(&y, &x).unwrap();
        }
        fs::create_dir(tree.join("sibling")).unwrap();
        fs::write(tree.join("sibling/file"), "x").unwrap();
        // On a thread with a small stack (the supervisor's tokio threads have 2 MiB), so the
        // test does not depend on the main thread's.
        let removed = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || remove_tree(&tree).map(|()| tree))
            .unwrap()
            .join()
            .expect("remove_tree must not overflow its stack")
            .unwrap();
        assert!(!removed.exists());
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
