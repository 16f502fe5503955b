//! Opening a file a project or a user names (its `locald.toml`/`locald.rhai`,
//! an `env_file`, the project's `.env`, a seccomp profile) for reading without
//! letting the file's kind take locald hostage.
//!
//! `open(2)` of a FIFO blocks until someone opens the other end, and a read
//! of a character device (`/dev/zero`, a terminal) may never end or block:
//! a checkout (an unpacked tarball) or a config naming such a path would hang
//! `locald status`, `locald up`, `locald run` or the supervisor's service
//! start, with the thread stuck in a system call that Ctrl-C does not
//! interrupt. So the file
//! is opened with `O_NONBLOCK` (which makes the open of a FIFO return at
//! once) and refused unless it is a regular file. Symlinks are followed: a
//! project may link its `.env` to a shared one; what matters is what the
//! link ends at.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Opens `path` read-only, refusing (with an [`io::ErrorKind::InvalidInput`]
/// error that names the file's kind) anything but a regular file, without
/// ever blocking in `open`.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        let kind = if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_char_device() {
            "a character device"
        } else if file_type.is_block_device() {
            "a block device"
        } else if file_type.is_socket() {
            "a socket"
        } else if file_type.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file"),
        ));
    }
    // Regular files ignore O_NONBLOCK, so reads behave as usual.
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        // Nobody ever opens the FIFO's write end: a blocking open would hang here for good.
        let dir = tempfile::TempDir::new().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let error = open_regular(&fifo).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("a FIFO"), "{error}");
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let error = open_regular(Path::new("/dev/zero")).unwrap_err();
        assert!(error.to_string().contains("a character device"), "{error}");
        let error = open_regular(Path::new("/")).unwrap_err();
        assert!(error.to_string().contains("a directory"), "{error}");
    }

    #[test]
    fn regular_files_are_read_through_symlinks() {
        use std::io::Read;
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::write(dir.path().join("real"), "A=1\n").unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        let mut text = String::new();
        open_regular(&dir.path().join("link"))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "A=1\n");
    }
}
