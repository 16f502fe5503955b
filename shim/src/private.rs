//! The directories the shim works in (the bundle, libcontainer's state root) must be ones that
//! only root or the user running the shim can change: otherwise another user could swap the
//! bundle's `config.json` or rootfs between its creation and the container's start, and run
//! what they like with this user's privileges.
//!
//! The check walks the path from `/` with `openat(O_NOFOLLOW | O_DIRECTORY)`, looking at each
//! opened directory: every parent must be owned by root or by the caller and not writable by
//! others unless sticky (in a sticky directory such as `/tmp` only an entry's owner may rename
//! it), and the directory itself must be the caller's and writable by no one else. Once that
//! holds, the paths below it can only be changed by root or the caller, so the shim (and
//! libcontainer, which works with paths) may use them. The runtime crate's `private_dir`
//! module applies the same rules when it creates these directories; the shim checks again
//! because it may be started by other means, and it deliberately does not depend on that crate.
//!
//! Run before the shim enters a user namespace: in there, the owners of host files read
//! differently.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, mkdirat, Mode};

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Checks the existing directory `path` (absolute, without symlinks: canonicalized by the
/// caller) and returns a descriptor of it.
pub fn verify_dir(path: &Path) -> Result<OwnedFd> {
    walk(path, false)
}

/// Creates `path` with mode 0700 where missing (and its missing parents), or checks the existing
/// one, as [`verify_dir`] does. Symlinks among the existing parents are resolved first.
pub fn ensure_dir(path: &Path) -> Result<OwnedFd> {
    let path =
        std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    // Resolve what exists of the parents (the administrator's symlinks, such as /var/run);
    // the walk below then follows no link at all.
    let mut existing = path.parent().unwrap_or(Path::new("/"));
    let mut missing: Vec<&OsStr> = path.file_name().into_iter().collect();
    let canonical = loop {
        match std::fs::canonicalize(existing) {
            Ok(canonical) => break canonical,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                match (existing.parent(), existing.file_name()) {
                    (Some(up), Some(name)) => {
                        missing.push(name);
                        existing = up;
                    }
                    _ => return Err(err).with_context(|| format!("resolving {}", path.display())),
                }
            }
            Err(err) => {
                return Err(err).with_context(|| format!("resolving {}", existing.display()))
            }
        }
    };
    let full = missing
        .iter()
        .rev()
        .fold(canonical, |dir, name| dir.join(name));
    walk(&full, true)
}

fn walk(path: &Path, create: bool) -> Result<OwnedFd> {
    let us = nix::unistd::geteuid().as_raw();
    let names: Vec<&OsStr> = path
        .components()
        .map(|component| match component {
            Component::RootDir => Ok(None),
            Component::Normal(name) => Ok(Some(name)),
            _ => bail!("{} is not a plain absolute path", path.display()),
        })
        .filter_map(Result::transpose)
        .collect::<Result<_>>()?;
    if !path.is_absolute() || names.is_empty() {
        bail!("{} is not a plain absolute path", path.display());
    }
    let mut at = PathBuf::from("/");
    let mut dir = nix::fcntl::open("/", DIR_FLAGS, Mode::empty()).context("opening /")?;
    check_parent(dir.as_fd(), &at, path, us)?;
    for (index, name) in names.iter().enumerate() {
        at.push(name);
        if create {
            match mkdirat(dir.as_fd(), *name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(err) => return Err(err).with_context(|| format!("creating {}", at.display())),
            }
        }
        dir = match openat(dir.as_fd(), *name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ELOOP | Errno::ENOTDIR) => bail!(
                "refusing {}: {} is a symbolic link or not a directory (the shim follows no \
                 link there)",
                path.display(),
                at.display()
            ),
            Err(err) => return Err(err).with_context(|| format!("opening {}", at.display())),
        };
        if index + 1 < names.len() {
            check_parent(dir.as_fd(), &at, path, us)?;
        } else {
            check_own(dir.as_fd(), &at, us)?;
        }
    }
    Ok(dir)
}

/// A parent on the way: owned by root or us, not writable by others unless sticky.
fn check_parent(fd: BorrowedFd<'_>, at: &Path, target: &Path, us: u32) -> Result<()> {
    let stat = fstat(fd).with_context(|| format!("inspecting {}", at.display()))?;
    let mode = stat.st_mode & 0o7777;
    if (stat.st_uid == 0 || stat.st_uid == us) && (mode & 0o022 == 0 || mode & libc::S_ISVTX != 0) {
        return Ok(());
    }
    bail!(
        "refusing {}: its parent directory {} (owner uid {}, mode {mode:04o}) could be changed \
         by another user",
        target.display(),
        at.display(),
        stat.st_uid
    )
}

/// The directory itself: ours, and writable by no one else.
fn check_own(fd: BorrowedFd<'_>, at: &Path, us: u32) -> Result<()> {
    let stat = fstat(fd).with_context(|| format!("inspecting {}", at.display()))?;
    let mode = stat.st_mode & 0o7777;
    if stat.st_uid != us {
        bail!(
            "refusing {}: it is owned by uid {}, not by uid {us} who runs the shim; another user \
             may have planted it",
            at.display(),
            stat.st_uid
        );
    }
    if mode & 0o022 != 0 {
        bail!(
            "refusing {}: its mode {mode:04o} lets other users write to it, so its contents may \
             have been tampered with",
            at.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_private_directory_passes_and_a_missing_one_is_created_0700() {
        let base = tempfile::tempdir().unwrap();
        let bundle = base.path().join("bundle");
        fs::create_dir(&bundle).unwrap();
        set_mode(&bundle, 0o755);
        verify_dir(&fs::canonicalize(&bundle).unwrap()).unwrap();
        let state = base.path().join("run/state");
        ensure_dir(&state).unwrap();
        assert_eq!(fs::metadata(&state).unwrap().mode() & 0o7777, 0o700);
        ensure_dir(&state).unwrap();
    }

    #[test]
    fn directories_others_may_write_to_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let bundle = base.path().join("bundle");
        fs::create_dir(&bundle).unwrap();
        set_mode(&bundle, 0o777);
        let err = verify_dir(&bundle).unwrap_err().to_string();
        assert!(err.contains("lets other users write"), "{err}");
        assert!(err.contains(&bundle.display().to_string()), "{err}");
        // A parent others may write to (not sticky): they could rename the bundle away.
        set_mode(&bundle, 0o700);
        set_mode(base.path(), 0o777);
        let err = verify_dir(&bundle).unwrap_err().to_string();
        assert!(err.contains("parent directory"), "{err}");
        set_mode(base.path(), 0o1777);
        verify_dir(&bundle).unwrap();
        set_mode(base.path(), 0o700);
    }

    #[test]
    fn a_directory_of_someone_else_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            return; // needs chown
        }
        let base = tempfile::tempdir().unwrap();
        let state = base.path().join("state");
        fs::create_dir(&state).unwrap();
        set_mode(&state, 0o700);
        std::os::unix::fs::chown(&state, Some(nix::unistd::geteuid().as_raw() + 4242), None)
            .unwrap();
        let err = ensure_dir(&state).unwrap_err().to_string();
        assert!(err.contains("owned by uid"), "{err}");
    }

    #[test]
    fn symlinks_are_not_followed() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("target");
        fs::create_dir(&target).unwrap();
        let link = base.path().join("state");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = ensure_dir(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let err = verify_dir(&link.join("inner")).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        // A symlinked parent of a directory to create is the administrator's: resolved once.
        let alias = base.path().join("alias");
        std::os::unix::fs::symlink(&target, &alias).unwrap();
        ensure_dir(&alias.join("state")).unwrap();
        assert!(target.join("state").is_dir());
    }
}
