//! Replacing a file atomically: the new contents go to a temporary file in the
//! same directory, are flushed to disk, take the old file's mode and owner,
//! and are renamed over it, so readers see either the old file or the new one
//! and a failure at any step leaves the old file as it was. A file that did
//! not exist is created 0644 less the umask, as editors and `touch` create
//! files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `contents`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace_with(path, |file| file.write_all(contents))
}

/// Replaces `path` with what `write` puts into the temporary file. Split out
/// from `write_atomic` so tests can make the write fail.
pub(crate) fn replace_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let (dir, temp_path) = beside(path)?;
    // The original's mode and owner, to keep; none for a new file.
    let original = match fs::metadata(path) {
        Ok(metadata) => Some(metadata),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(error),
    };

    let result = (|| {
        // Private until it has its final mode: nobody reads a half-written
        // file, nor opens it in between to keep a handle.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if original.is_some() {
                0o600
            } else {
                NEW_FILE_MODE
            })
            .open(&temp_path)?;
        write(&mut file)?;
        if let Some(original) = &original {
            keep_owner(&file, original)?;
            // Exactly the original's bits (the umask filtered those at creation).
            file.set_permissions(fs::Permissions::from_mode(original.mode() & 0o7777))?;
        }
        file.sync_all()?;
        fs::rename(&temp_path, path)
    })();
    if let Err(error) = result {
        let _ = fs::remove_file(&temp_path);
        return Err(error);
    }
    // Persist the rename itself; failing here leaves the new file in place.
    if let Ok(directory) = File::open(&dir) {
        let _ = directory.sync_all();
    }
    Ok(())
}

/// Creates `path` with `contents`, refusing (`AlreadyExists`) when it
/// exists, even if it appears meanwhile: the contents go to a temporary
/// file first and are hard-linked into place, which fails rather than
/// replace, so readers never see a half-written file either.
pub(crate) fn create_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let (dir, temp_path) = beside(path)?;
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(NEW_FILE_MODE)
            .open(&temp_path)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::hard_link(&temp_path, path)
    })();
    let _ = fs::remove_file(&temp_path);
    result?;
    if let Ok(directory) = File::open(&dir) {
        let _ = directory.sync_all();
    }
    Ok(())
}

/// The directory of `path` and a temporary path beside it: the rename or
/// link into place then stays on one file system.
fn beside(path: &Path) -> io::Result<(PathBuf, PathBuf)> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name to write to"))?;
    let temp_path = dir.join(temp_name(file_name.to_string_lossy().as_ref()));
    Ok((dir, temp_path))
}

/// The mode of a file that did not exist, less the umask (what `touch` gives).
const NEW_FILE_MODE: u32 = 0o644;

/// Gives `file` the owner and group of `original` when they differ from ours
/// (root editing a user's file). A caller who may not give files away (a
/// member of the file's group, say) keeps the file as its own: the edit is
/// still made, as editors make it.
fn keep_owner(file: &File, original: &fs::Metadata) -> io::Result<()> {
    let (uid, gid) = (original.uid(), original.gid());
    let ours = file.metadata()?;
    if ours.uid() == uid && ours.gid() == gid {
        return Ok(());
    }
    match std::os::unix::fs::fchown(file, Some(uid), Some(gid)) {
        Ok(()) => Ok(()),
        Err(error) if error.raw_os_error() == Some(libc::EPERM) => Ok(()),
        Err(error) => Err(error),
    }
}

/// A hidden, unique name beside the target so the rename stays on one file system.
fn temp_name(file_name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        ".{file_name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_contents_and_keeps_permissions() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("locald.toml");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        assert_eq!(entries(temp.path()), ["locald.toml"]);
    }

    /// The umask of this process, without changing it (other tests create
    /// files meanwhile).
    fn umask() -> u32 {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
    }

    #[test]
    fn a_new_file_is_0644_less_the_umask_never_world_writable() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("locald.toml");
        write_atomic(&path, b"new").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644 & !umask());
        assert_eq!(mode & 0o022, 0, "{mode:o}");
    }

    #[test]
    fn create_new_writes_a_new_file_and_never_replaces_one() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("locald.toml");
        create_new(&path, b"first").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644 & !umask());
        let error = create_new(&path, b"second").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");
        assert_eq!(entries(temp.path()), ["locald.toml"]);
    }

    #[test]
    fn an_edit_keeps_odd_modes_exactly() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("locald.toml");
        fs::write(&path, "old").unwrap();
        // Bits the umask would filter at creation, and the group-writable
        // file of a shared checkout.
        for mode in [0o664, 0o600, 0o755] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            write_atomic(&path, b"new").unwrap();
            let kept = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
            assert_eq!(kept, mode, "{kept:o} != {mode:o}");
        }
    }

    #[test]
    fn an_edit_by_root_keeps_the_owner() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to give a file away");
            return;
        }
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("locald.toml");
        fs::write(&path, "old").unwrap();
        std::os::unix::fs::chown(&path, Some(4321), Some(4322)).unwrap();
        write_atomic(&path, b"new").unwrap();
        let metadata = fs::metadata(&path).unwrap();
        assert_eq!((metadata.uid(), metadata.gid()), (4321, 4322));
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    }

    #[test]
    fn a_failed_write_leaves_the_original_and_no_temporary_file() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("locald.toml");
        fs::write(&path, "original").unwrap();
        let error = replace_with(&path, |file| {
            file.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "disk full");
        assert_eq!(fs::read_to_string(&path).unwrap(), "original");
        assert_eq!(entries(temp.path()), ["locald.toml"]);
    }

    #[test]
    fn a_failed_rename_leaves_the_target_and_no_temporary_file() {
        let temp = tempfile::tempdir().unwrap();
        let target = temp.path().join("locald.toml");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), "kept").unwrap();
        assert!(write_atomic(&target, b"new").is_err());
        assert_eq!(fs::read_to_string(target.join("inside")).unwrap(), "kept");
        assert_eq!(entries(temp.path()), ["locald.toml"]);
    }
}
