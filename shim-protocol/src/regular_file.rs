//! Opening a file without letting its kind take locald hostage: one a project or a user names
//! (its `locald.toml`/`locald.rhai`, an `env_file`, the project's `.env`, a seccomp profile), one
//! an image carries (its `/etc/passwd`), one in a directory locald owns (its state directory,
//! the image store's leases).
//!
//! `open(2)` of a FIFO blocks until someone opens the other end, and a read
//! of a character device (`/dev/zero`, a terminal) may never end or block:
//! a checkout (an unpacked tarball) or a config naming such a path would hang
//! `locald status`, `locald up`, `locald run` or the supervisor's service
//! start, with the thread stuck in a system call that Ctrl-C does not
//! interrupt. So the file
//! is opened with `O_NONBLOCK` (which makes the open of a FIFO return at
//! once) and refused unless it is a regular file. Symlinks are followed for
//! what a user names ([`Links::Follow`]: a project may link its `.env` to a
//! shared one; what matters is what the link ends at), and refused in what an
//! image carries or locald owns ([`Links::Refuse`]: a link there would make
//! locald read or write a file it was not meant to).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Whether a symbolic link at the path's last component is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    Follow,
    /// `O_NOFOLLOW`: opening a link fails with `ELOOP`.
    Refuse,
}

/// The error (inside an [`io::Error`] of kind [`io::ErrorKind::InvalidInput`]) for a file that
/// opened but is not a regular file; `kind` names what it is.
#[derive(Debug, thiserror::Error)]
#[error("it is {kind}, not a regular file")]
pub struct NotRegular {
    pub kind: &'static str,
}

impl NotRegular {
    /// The [`NotRegular`] inside `error`, if that is what it is.
    pub fn of(error: &io::Error) -> Option<&NotRegular> {
        error.get_ref()?.downcast_ref()
    }
}

/// Opens `path` read-only, following links, refusing anything but a regular file (with a
/// [`NotRegular`] error), without ever blocking in `open`.
pub fn open_regular(path: &Path) -> io::Result<File> {
    open_regular_with(OpenOptions::new().read(true), path, Links::Follow)
}

/// Opens `path` with `options` (plus `O_NONBLOCK` and `O_CLOEXEC`, and `O_NOFOLLOW` for
/// [`Links::Refuse`]), refusing anything but a regular file (with a [`NotRegular`] error). A FIFO
/// fails at once (`ENXIO`) when opened for writing with no reader.
pub fn open_regular_with(options: &mut OpenOptions, path: &Path, links: Links) -> io::Result<File> {
    let nofollow = match links {
        Links::Follow => 0,
        Links::Refuse => libc::O_NOFOLLOW,
    };
    let file = options
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | nofollow)
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
            NotRegular { kind },
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
    fn links_are_refused_when_asked() {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::write(dir.path().join("real"), "A=1\n").unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        let read = || {
            let mut options = OpenOptions::new();
            options.read(true);
            options
        };
        let error =
            open_regular_with(&mut read(), &dir.path().join("link"), Links::Refuse).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ELOOP));
        assert!(open_regular_with(&mut read(), &dir.path().join("real"), Links::Refuse).is_ok());
        let error = open_regular_with(&mut read(), Path::new("/"), Links::Refuse).unwrap_err();
        assert_eq!(NotRegular::of(&error).unwrap().kind, "a directory");
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
