//! An inode-allocation hint for the store's `tmp/` directory, where every
//! rootfs is unpacked before being renamed into `rootfs/`.
//!
//! Why: on ext4 without a journal (the project's machines mount `/` that way)
//! the kernel will not reuse an inode freed in the last minute or so (six
//! when its inode-table block is still dirty). `find_inode_bit` skips such
//! inodes one by one, starting from the beginning of the block group, for
//! *every* file created. ext4 places a new directory near its parent, and a
//! file in its directory's group, so unpacking a rootfs right after another
//! one was deleted (a prune, a re-pull, a benchmark wiping the store) lands
//! in exactly the groups full of just-freed inodes: each `open(O_CREAT)` then
//! costs hundreds of microseconds and a 9,000-file image spends seconds of
//! system time in `recently_deleted`.
//!
//! The ext4 "top directory" flag (`chattr +T`, `FS_TOPDIR_FL`) tells the
//! Orlov allocator that the children of a directory are unrelated trees, so
//! each new subdirectory is spread to a lightly used block group chosen from a
//! hash of its (here unique) name instead of its parent's group. Every staging
//! rootfs then gets fresh groups of its own. The flag is only a placement
//! hint: other filesystems ignore or refuse it, and failing to set it is
//! harmless, so errors are logged and dropped.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// `FS_TOPDIR_FL` from `<linux/fs.h>` (not exported by the libc crate).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Sets the top-directory allocation hint on `dir` when it is not set yet.
pub(crate) fn mark_top_directory(dir: &Path) {
    if let Err(error) = try_mark_top_directory(dir) {
        tracing::debug!(
            dir = %dir.display(),
            %error,
            "cannot set the top-directory allocation hint"
        );
    }
}

fn try_mark_top_directory(dir: &Path) -> std::io::Result<()> {
    let file = File::open(dir)?;
    let fd = file.as_raw_fd();
    // The kernel reads and writes an `int` for these ioctls (e2fsprogs does the same).
    let mut flags: libc::c_int = 0;
    // SAFETY: `fd` is an open descriptor owned by `file` for the whole call and
    // `flags` is a live, writable c_int, which is what FS_IOC_GETFLAGS fills.
    if unsafe { libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: as above; FS_IOC_SETFLAGS only reads the c_int behind the pointer.
    if unsafe { libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_the_hint_is_best_effort_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        mark_top_directory(dir.path());
        mark_top_directory(dir.path());
        // On ext4 the flag is now set; elsewhere (tmpfs, overlayfs) the ioctl is
        // refused, which must not matter to the caller.
        let file = File::open(dir.path()).unwrap();
        let mut flags: libc::c_int = 0;
        // SAFETY: see try_mark_top_directory.
        let read = unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
        if read == 0 && try_mark_top_directory(dir.path()).is_ok() {
            assert_ne!(flags & FS_TOPDIR_FL, 0);
        }
        // A missing directory is reported to the caller of the fallible form only.
        assert!(try_mark_top_directory(&dir.path().join("missing")).is_err());
        mark_top_directory(&dir.path().join("missing"));
    }
}
