//! Resolving layer entry paths strictly inside the rootfs being built.
//!
//! Entry names are cleaned lexically the way Docker does (a leading `/` is
//! dropped, `.` ignored, `..` may not climb above the root). Then every
//! directory component is looked up with `lstat` under the root and symlinks
//! are followed by hand: an absolute target restarts at the rootfs root (so an
//! image's `/etc -> /` stays inside), a relative target that climbs above the
//! root is refused. The kernel never follows a symlink for us, so nothing an
//! image contains can make a write land outside the rootfs.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

/// Linux's own limit on symlinks followed while resolving one path.
const MAX_SYMLINK_FOLLOWS: usize = 40;

/// A path relative to the rootfs root, made only of normal components.
pub(crate) type RootPath = Vec<OsString>;

#[derive(Debug)]
pub(crate) enum ResolveError {
    /// The path (or a symlink on it) would leave the root.
    Escape,
    /// A component that must exist does not.
    Missing,
    /// A non-directory where a directory is needed.
    NotADirectory(PathBuf),
    TooManySymlinks,
    Io(io::Error),
}

/// Docker's lexical clean of an entry name, refusing to climb above the root.
pub(crate) fn clean_entry_path(path: &Path) -> Result<RootPath, ResolveError> {
    let mut parts = RootPath::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                parts.pop().ok_or(ResolveError::Escape)?;
            }
            Component::Normal(name) => parts.push(name.to_os_string()),
        }
    }
    Ok(parts)
}

pub(crate) fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(parts);
    path
}

/// Resolves the directory `dir` (already cleaned) under `root`, following
/// symlinks inside the root. With `create`, missing directories are made
/// (mode 0755, as Docker does for parents a layer does not list).
pub(crate) fn resolve_dir(
    root: &Path,
    dir: &[OsString],
    create: bool,
) -> Result<RootPath, ResolveError> {
    // (component, came from an absolute symlink target: `..` at the root stays at the root)
    let mut pending: VecDeque<(OsString, bool)> = dir.iter().map(|c| (c.clone(), false)).collect();
    let mut resolved = RootPath::new();
    let mut follows = 0;
    while let Some((name, clamp_at_root)) = pending.pop_front() {
        if name == OsStr::new("..") {
            if resolved.pop().is_none() && !clamp_at_root {
                return Err(ResolveError::Escape);
            }
            continue;
        }
        if name == OsStr::new(".") || name.is_empty() {
            continue;
        }
        let path = join(root, &resolved).join(&name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => resolved.push(name),
            Ok(meta) if meta.file_type().is_symlink() => {
                follows += 1;
                if follows > MAX_SYMLINK_FOLLOWS {
                    return Err(ResolveError::TooManySymlinks);
                }
                let target = std::fs::read_link(&path).map_err(ResolveError::Io)?;
                let absolute = target.is_absolute();
                if absolute {
                    resolved.clear();
                }
                let target_parts = target.components().filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_os_string()),
                    Component::ParentDir => Some(OsString::from("..")),
                    _ => None,
                });
                // Everything after this link is resolved relative to its target; a
                // `..` inherited from an absolute target clamps at the root.
                let mut expansion: Vec<(OsString, bool)> = target_parts
                    .map(|c| (c, absolute || clamp_at_root))
                    .collect();
                expansion.extend(pending.drain(..));
                pending = expansion.into();
            }
            Ok(_) => return Err(ResolveError::NotADirectory(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Err(ResolveError::Missing);
                }
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&path)
                    .map_err(ResolveError::Io)?;
                resolved.push(name);
            }
            Err(e) => return Err(ResolveError::Io(e)),
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn parts(s: &str) -> RootPath {
        clean_entry_path(Path::new(s)).unwrap()
    }

    #[test]
    fn cleaning_strips_root_and_refuses_climbing() {
        assert_eq!(parts("/etc/passwd"), parts("etc/passwd"));
        assert_eq!(parts("./a/./b/../c"), parts("a/c"));
        assert!(matches!(
            clean_entry_path(Path::new("../x")),
            Err(ResolveError::Escape)
        ));
        assert!(matches!(
            clean_entry_path(Path::new("/../../x")),
            Err(ResolveError::Escape)
        ));
        assert!(matches!(
            clean_entry_path(Path::new("a/../../x")),
            Err(ResolveError::Escape)
        ));
    }

    #[test]
    fn absolute_symlinks_stay_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        symlink("/", root.path().join("etc")).unwrap();
        symlink("/../../..", root.path().join("up")).unwrap();
        assert_eq!(
            resolve_dir(root.path(), &parts("etc"), false).unwrap(),
            RootPath::new()
        );
        assert_eq!(
            resolve_dir(root.path(), &parts("up/etc"), false).unwrap(),
            RootPath::new()
        );
    }

    #[test]
    fn relative_symlinks_out_of_the_root_are_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("a")).unwrap();
        symlink("../../outside", root.path().join("a/out")).unwrap();
        symlink("../b", root.path().join("a/sibling")).unwrap();
        assert!(matches!(
            resolve_dir(root.path(), &parts("a/out"), true),
            Err(ResolveError::Escape)
        ));
        assert_eq!(
            resolve_dir(root.path(), &parts("a/sibling"), true).unwrap(),
            parts("b")
        );
        assert!(root.path().join("b").is_dir());
    }

    #[test]
    fn symlink_loops_end() {
        let root = tempfile::tempdir().unwrap();
        symlink("loop", root.path().join("loop")).unwrap();
        assert!(matches!(
            resolve_dir(root.path(), &parts("loop/x"), true),
            Err(ResolveError::TooManySymlinks)
        ));
    }

    #[test]
    fn files_are_not_directories_and_missing_is_reported() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"").unwrap();
        assert!(matches!(
            resolve_dir(root.path(), &parts("f/x"), true),
            Err(ResolveError::NotADirectory(_))
        ));
        assert!(matches!(
            resolve_dir(root.path(), &parts("nope"), false),
            Err(ResolveError::Missing)
        ));
    }
}
