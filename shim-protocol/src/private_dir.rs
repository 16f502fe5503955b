//! Directories that only the user running locald may reach: the image store and the runtime
//! root (bundles, container state, locks, the seccomp cache), and the bundle and state root
//! `locald-shim` is handed (it checks them again: it may be started by other means).
//!
//! Such a directory must never be one that another user made or can change: whoever could
//! create `/tmp/locald-$UID` first, or rename entries in one of its ancestors, could swap a
//! bundle or an image rootfs between locald writing it and a container using it, and run what
//! they like with the victim's privileges. So [`ensure_private_dir`]:
//!
//! - resolves the existing ancestors once (symlinks there are the administrator's business),
//!   then walks that canonical path again component by component with
//!   `openat(O_NOFOLLOW | O_DIRECTORY)`, checking on each opened descriptor that it is owned by
//!   root or by the caller and that no one else may write to it unless it is sticky (in a
//!   sticky directory such as `/tmp`, only an entry's owner may rename or remove it);
//! - creates what is missing with `mkdirat(0700)` relative to the parent's descriptor;
//! - opens the directory itself without following a symlink, and refuses it unless the caller
//!   owns it and neither group nor others may write to it (a directory someone else could write
//!   to may already have been tampered with: it is refused, never repaired); one of ours that
//!   others may only read or enter (mode 0755, as older locald versions made them) is tightened
//!   to 0700.
//!
//! Once a directory passed, every path from `/` down to it can only be changed by root or by
//! the caller, so paths below it resolve to what locald created there; callers that create
//! entries use the returned descriptor ([`ensure_private_subdir`]) so that not even a symlink
//! the user left there is followed.
//!
//! [`check_owned_dir`] applies the same rules to a directory that must exist already, and
//! changes nothing (the shim's bundle, `$XDG_RUNTIME_DIR`).
//!
//! The shim runs these checks before it enters a user namespace: in there, the owners of host
//! files read differently.
//!
//! A container service of an unprivileged user is different: its shim starts already inside the
//! user namespace of the supervisor's per-service init (made for its PID namespace), which maps
//! only the caller's own ids, so root's `/`, `/tmp` or `/run/user` show as the overflow uid
//! (65534), as does every other unmapped user's directory. There the walk cannot tell root from
//! another user, so on its own it must refuse. The supervisor made and checked the same runtime
//! root, bundle and state root in the host's ids just before; the trust property it checked
//! (only root or the caller can change any path to them) cannot be undone by another user. So a
//! shim told so (`locald-shim run --parents-checked-on-host`) walks with
//! [`TrustedOwners::after_host_check`]: only in a namespace where root is unmapped does it take
//! an ancestor owned by the overflow uid for root's; the caller's own ids, every mode bit (group
//! or other write without sticky), symlinks, and the directory itself are checked as always.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode};

/// Why a directory cannot be used as a private directory.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "refusing {path}: it is owned by uid {owner}, not by uid {uid} who runs locald; another \
         user may have created it to tamper with what locald keeps there (have its owner or root \
         remove it: in a sticky directory such as /tmp you cannot; or give locald a directory of \
         yours: XDG_RUNTIME_DIR for containers, LOCALD_DATA_DIR for images)"
    )]
    NotOwned { path: PathBuf, owner: u32, uid: u32 },
    #[error(
        "refusing {path}: its mode {mode:04o} lets other users write to it, so what it holds may \
         have been tampered with (remove it; locald creates it again with mode 0700)"
    )]
    WritableByOthers { path: PathBuf, mode: u32 },
    #[error(
        "refusing {path}: it is a symbolic link or not a directory (locald never follows a link \
         there)"
    )]
    NotADirectory { path: PathBuf },
    #[error(
        "refusing {path}: its parent directory {ancestor} (owner uid {owner}, mode {mode:04o}) \
         could be changed by another user; use a directory whose parents are owned by root or \
         by you and not writable by others"
    )]
    UnsafeAncestor {
        path: PathBuf,
        ancestor: PathBuf,
        owner: u32,
        mode: u32,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(Errno) -> PrivateDirError {
    let path = path.to_path_buf();
    move |errno| PrivateDirError::Io {
        action,
        path,
        source: errno.into(),
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Whose directories may lie on the way down to a private directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedOwners {
    /// Root or the caller, as the caller's user namespace shows them: the full check.
    RootOrCaller,
    /// Root, the caller, or the overflow uid (any id the caller's user namespace does not map,
    /// root's included). Only for paths the caller's parent checked with
    /// [`TrustedOwners::RootOrCaller`] in the host's ids (see the module documentation).
    RootCallerOrUnmapped,
}

impl TrustedOwners {
    /// For paths the parent checked in the host's ids: [`TrustedOwners::RootCallerOrUnmapped`]
    /// when this process's user namespace does not map root (so root's directories show as the
    /// overflow uid), else the full [`TrustedOwners::RootOrCaller`].
    pub fn after_host_check() -> TrustedOwners {
        match std::fs::read_to_string("/proc/self/uid_map") {
            Ok(map) if !maps_id(&map, 0) => TrustedOwners::RootCallerOrUnmapped,
            _ => TrustedOwners::RootOrCaller,
        }
    }
}

/// Whether a `/proc/PID/uid_map` text (`INSIDE OUTSIDE COUNT` lines) maps the inside id `id`.
fn maps_id(map: &str, id: u64) -> bool {
    map.lines().any(|line| {
        let numbers: Vec<u64> = line
            .split_whitespace()
            .filter_map(|word| word.parse().ok())
            .collect();
        matches!(numbers[..], [inside, _, count] if inside <= id && id - inside < count)
    })
}

/// The uid the kernel shows for ids the caller's user namespace does not map.
fn overflow_uid() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(65534)
}

/// The mode locald creates its private directories with.
pub const PRIVATE_MODE: u32 = 0o700;

/// Creates `path` (and missing parents) with mode 0700, or checks the existing one; returns a
/// descriptor of the directory that passed the checks (see the module documentation).
pub fn ensure_private_dir(path: &Path) -> Result<OwnedFd, PrivateDirError> {
    ensure_private_dir_trusting(path, TrustedOwners::RootOrCaller)
}

/// [`ensure_private_dir`] with the parents' owners `trusted`.
pub fn ensure_private_dir_trusting(
    path: &Path,
    trusted: TrustedOwners,
) -> Result<OwnedFd, PrivateDirError> {
    let (parent_fd, parent_path, name) = open_parent_of(path, true, trusted)?;
    ensure_private_subdir(parent_fd.as_fd(), &parent_path, &name)
}

/// `path` made absolute, its parent opened as [`open_trusted_parent`] does (creating missing
/// ones with `create`), and its last component.
fn open_parent_of(
    path: &Path,
    create: bool,
    trusted: TrustedOwners,
) -> Result<(OwnedFd, PathBuf, std::ffi::OsString), PrivateDirError> {
    let path = std::path::absolute(path).map_err(|source| PrivateDirError::Io {
        action: "resolve",
        path: path.to_path_buf(),
        source,
    })?;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(PrivateDirError::NotADirectory { path });
    };
    let (parent_fd, parent_path) = open_trusted_parent(&path, parent, create, trusted)?;
    Ok((parent_fd, parent_path, name.to_os_string()))
}

/// Checks that the existing directory `path` is owned by the caller and not writable by others,
/// and that its parents are safe as for [`ensure_private_dir`]; nothing is created or changed.
/// For directories locald is handed (`$XDG_RUNTIME_DIR`) rather than its own.
pub fn check_owned_dir(path: &Path) -> Result<OwnedFd, PrivateDirError> {
    check_owned_dir_trusting(path, TrustedOwners::RootOrCaller)
}

/// [`check_owned_dir`] with the parents' owners `trusted`.
pub fn check_owned_dir_trusting(
    path: &Path,
    trusted: TrustedOwners,
) -> Result<OwnedFd, PrivateDirError> {
    let (parent_fd, parent_path, name) = open_parent_of(path, false, trusted)?;
    let child = parent_path.join(&name);
    let fd = open_child(parent_fd.as_fd(), &child, &name)?;
    check_private(fd.as_fd(), &child, false)?;
    Ok(fd)
}

/// Creates `name` in the private directory `parent` (shown as `parent_path` in errors) with mode
/// 0700, or checks the existing one, never following a symlink; returns its descriptor.
pub fn ensure_private_subdir(
    parent: BorrowedFd<'_>,
    parent_path: &Path,
    name: &OsStr,
) -> Result<OwnedFd, PrivateDirError> {
    let path = parent_path.join(name);
    check_name(&path, name)?;
    match mkdirat(parent, name, Mode::from_bits_truncate(PRIVATE_MODE)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => return Err(io_error("create", &path)(errno)),
    }
    // Removed again between the two calls: that is an error, not "absent".
    open_private_subdir(parent, parent_path, name)?
        .ok_or_else(|| io_error("open", &path)(Errno::ENOENT))
}

/// Opens the existing `name` in the private directory `parent` as [`ensure_private_subdir`]
/// would, without creating it: `None` when it does not exist.
pub fn open_private_subdir(
    parent: BorrowedFd<'_>,
    parent_path: &Path,
    name: &OsStr,
) -> Result<Option<OwnedFd>, PrivateDirError> {
    let path = parent_path.join(name);
    check_name(&path, name)?;
    let fd = match open_child(parent, &path, name) {
        Ok(fd) => fd,
        Err(PrivateDirError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(err) => return Err(err),
    };
    check_private(fd.as_fd(), &path, true)?;
    Ok(Some(fd))
}

/// A single normal path component: `..` or a slash would leave the checked directory.
fn check_name(path: &Path, name: &OsStr) -> Result<(), PrivateDirError> {
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) => Ok(()),
        _ => Err(PrivateDirError::NotADirectory {
            path: path.to_path_buf(),
        }),
    }
}

fn open_child(
    parent: BorrowedFd<'_>,
    path: &Path,
    name: &OsStr,
) -> Result<OwnedFd, PrivateDirError> {
    match openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => Ok(fd),
        // O_NOFOLLOW on a symlink: ELOOP; O_DIRECTORY on anything else: ENOTDIR.
        Err(Errno::ELOOP | Errno::ENOTDIR) => Err(PrivateDirError::NotADirectory {
            path: path.to_path_buf(),
        }),
        Err(errno) => Err(io_error("open", path)(errno)),
    }
}

/// Owned by us and not writable by group or others; with `tighten`, readable or searchable by
/// them is fixed to 0700 (it is ours, and nobody else could have written to it).
fn check_private(fd: BorrowedFd<'_>, path: &Path, tighten: bool) -> Result<(), PrivateDirError> {
    let stat = fstat(fd).map_err(io_error("inspect", path))?;
    let uid = nix::unistd::geteuid().as_raw();
    let mode = stat.st_mode & 0o7777;
    if stat.st_uid != uid {
        return Err(PrivateDirError::NotOwned {
            path: path.to_path_buf(),
            owner: stat.st_uid,
            uid,
        });
    }
    if mode & 0o022 != 0 {
        return Err(PrivateDirError::WritableByOthers {
            path: path.to_path_buf(),
            mode,
        });
    }
    if tighten && mode & 0o077 != 0 {
        fchmod(fd, Mode::from_bits_truncate(PRIVATE_MODE)).map_err(io_error("restrict", path))?;
        tracing::info!(
            "restricted {} from mode {mode:04o} to {PRIVATE_MODE:04o}: other users must not reach it",
            path.display()
        );
    }
    Ok(())
}

/// Whether a directory (owner `uid`, `mode`) on the way down can only be changed by root or by
/// us: owned by one of them (or, when `trusted` says so, by an unmapped id), and not writable by
/// others unless sticky.
fn is_trusted_ancestor(uid: u32, mode: u32, trusted: TrustedOwners) -> bool {
    let us = nix::unistd::geteuid().as_raw();
    let owner = uid == 0
        || uid == us
        || (trusted == TrustedOwners::RootCallerOrUnmapped && uid == overflow_uid());
    owner && (mode & 0o022 == 0 || mode & libc::S_ISVTX != 0)
}

/// Opens `parent` (of `target`) through trusted directories only, creating its missing tail
/// with mode 0700 when `create`. Returns the descriptor and the canonical path it was opened at.
fn open_trusted_parent(
    target: &Path,
    parent: &Path,
    create: bool,
    trusted: TrustedOwners,
) -> Result<(OwnedFd, PathBuf), PrivateDirError> {
    // The longest part of `parent` that exists, resolved once; the rest must be created.
    let mut existing = parent;
    let canonical = loop {
        match std::fs::canonicalize(existing) {
            Ok(canonical) => break canonical,
            Err(err) if err.kind() == io::ErrorKind::NotFound => match existing.parent() {
                Some(up) => existing = up,
                None => {
                    return Err(PrivateDirError::Io {
                        action: "resolve",
                        path: parent.to_path_buf(),
                        source: err,
                    })
                }
            },
            Err(source) => {
                return Err(PrivateDirError::Io {
                    action: "resolve",
                    path: existing.to_path_buf(),
                    source,
                })
            }
        }
    };
    let missing = parent.strip_prefix(existing).unwrap_or(Path::new(""));
    if !create && !missing.as_os_str().is_empty() {
        return Err(PrivateDirError::Io {
            action: "open",
            path: target.to_path_buf(),
            source: io::ErrorKind::NotFound.into(),
        });
    }

    let mut path = PathBuf::from("/");
    let mut dir =
        nix::fcntl::open("/", DIR_FLAGS, Mode::empty()).map_err(io_error("open", &path))?;
    let check_ancestor = |fd: BorrowedFd<'_>, at: &Path| -> Result<(), PrivateDirError> {
        let stat = fstat(fd).map_err(io_error("inspect", at))?;
        if is_trusted_ancestor(stat.st_uid, stat.st_mode & 0o7777, trusted) {
            Ok(())
        } else {
            Err(PrivateDirError::UnsafeAncestor {
                path: target.to_path_buf(),
                ancestor: at.to_path_buf(),
                owner: stat.st_uid,
                mode: stat.st_mode & 0o7777,
            })
        }
    };
    check_ancestor(dir.as_fd(), &path)?;
    for component in canonical.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        path.push(name);
        dir = match openat(dir.as_fd(), name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            // Canonical a moment ago: a symlink now means someone changed it.
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(PrivateDirError::NotADirectory { path })
            }
            Err(errno) => return Err(io_error("open", &path)(errno)),
        };
        check_ancestor(dir.as_fd(), &path)?;
    }
    for component in missing.components() {
        let Component::Normal(name) = component else {
            // `..` or `.` in a part that does not exist yet: nothing sensible to create.
            return Err(PrivateDirError::NotADirectory {
                path: path.join(missing),
            });
        };
        dir = ensure_private_subdir(dir.as_fd(), &path, name)?;
        path.push(name);
    }
    Ok((dir, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Another uid than ours (the tests run as root, who may hand files to anyone).
    fn someone_else() -> u32 {
        nix::unistd::geteuid().as_raw() + 4242
    }

    #[test]
    fn missing_directories_are_created_0700() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b/store");
        ensure_private_dir(&dir).unwrap();
        for path in [base.path().join("a"), base.path().join("a/b"), dir.clone()] {
            assert_eq!(mode(&path), 0o700, "{}", path.display());
        }
        // Again: the existing one passes.
        ensure_private_dir(&dir).unwrap();
    }

    #[test]
    fn a_directory_of_someone_else_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            return; // needs chown
        }
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("locald-1000");
        fs::create_dir(&dir).unwrap();
        set_mode(&dir, 0o777);
        std::os::unix::fs::chown(&dir, Some(someone_else()), None).unwrap();
        let err = ensure_private_dir(&dir).unwrap_err();
        assert!(matches!(err, PrivateDirError::NotOwned { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(message.contains("owned by uid"), "{message}");
        // The victim of a planted /tmp/locald-$UID cannot remove it (sticky /tmp): say what works.
        assert!(
            message.contains("XDG_RUNTIME_DIR") && message.contains("LOCALD_DATA_DIR"),
            "{message}"
        );
        // Refused as it was, not repaired.
        assert_eq!(mode(&dir), 0o777);
        // Even when it is not writable by others.
        set_mode(&dir, 0o700);
        assert!(matches!(
            ensure_private_dir(&dir),
            Err(PrivateDirError::NotOwned { .. })
        ));
    }

    #[test]
    fn a_directory_of_ours_writable_by_others_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("runtime");
        fs::create_dir(&dir).unwrap();
        for bad in [0o777, 0o770, 0o702] {
            set_mode(&dir, bad);
            let err = ensure_private_dir(&dir).unwrap_err();
            assert!(
                matches!(err, PrivateDirError::WritableByOthers { mode, .. } if mode == bad),
                "{err}"
            );
            assert!(err.to_string().contains("tampered"), "{err}");
            assert_eq!(mode(&dir), bad);
        }
    }

    #[test]
    fn a_readable_directory_of_ours_is_tightened() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("images");
        fs::create_dir(&dir).unwrap();
        set_mode(&dir, 0o755);
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_symlink_in_place_of_the_directory_is_refused_not_followed() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("elsewhere");
        fs::create_dir(&target).unwrap();
        set_mode(&target, 0o755);
        let link = base.path().join("locald-1000");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = ensure_private_dir(&link).unwrap_err();
        assert!(
            matches!(err, PrivateDirError::NotADirectory { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(mode(&target), 0o755, "the link's target was touched");
        // The same for a subdirectory, and when only checking.
        let parent = ensure_private_dir(&base.path().join("root")).unwrap();
        std::os::unix::fs::symlink(&target, base.path().join("root/bundles")).unwrap();
        let sub = ensure_private_subdir(
            parent.as_fd(),
            &base.path().join("root"),
            "bundles".as_ref(),
        );
        assert!(matches!(sub, Err(PrivateDirError::NotADirectory { .. })));
        let sub = open_private_subdir(
            parent.as_fd(),
            &base.path().join("root"),
            "bundles".as_ref(),
        );
        assert!(matches!(sub, Err(PrivateDirError::NotADirectory { .. })));
        assert!(matches!(
            check_owned_dir(&link),
            Err(PrivateDirError::NotADirectory { .. })
        ));
        // A file is no directory either.
        fs::write(base.path().join("file"), "").unwrap();
        assert!(matches!(
            ensure_private_dir(&base.path().join("file")),
            Err(PrivateDirError::NotADirectory { .. })
        ));
    }

    #[test]
    fn ancestors_others_may_change_are_refused_sticky_ones_are_fine() {
        let base = tempfile::tempdir().unwrap();
        let shared = base.path().join("shared");
        fs::create_dir(&shared).unwrap();
        set_mode(&shared, 0o777);
        let err = ensure_private_dir(&shared.join("locald/images")).unwrap_err();
        assert!(
            matches!(&err, PrivateDirError::UnsafeAncestor { ancestor, .. } if *ancestor == shared),
            "{err}"
        );
        assert!(!shared.join("locald").exists());
        // Sticky, as /tmp: others cannot rename what is ours in there.
        set_mode(&shared, 0o1777);
        ensure_private_dir(&shared.join("locald/images")).unwrap();
        // A symlinked ancestor is resolved once, then walked without following links.
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&shared, &link).unwrap();
        ensure_private_dir(&link.join("locald/images")).unwrap();
    }

    #[test]
    fn handed_directories_are_checked_not_changed() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("xdg");
        fs::create_dir(&dir).unwrap();
        set_mode(&dir, 0o755);
        check_owned_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o755);
        set_mode(&dir, 0o777);
        assert!(matches!(
            check_owned_dir(&dir),
            Err(PrivateDirError::WritableByOthers { .. })
        ));
        assert!(check_owned_dir(&base.path().join("missing")).is_err());
    }

    #[test]
    fn names_must_be_single_components() {
        let base = tempfile::tempdir().unwrap();
        let parent = ensure_private_dir(&base.path().join("root")).unwrap();
        for name in ["..", "a/b", ""] {
            assert!(
                ensure_private_subdir(parent.as_fd(), base.path(), name.as_ref()).is_err(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn uid_maps_are_read_for_root() {
        assert!(maps_id("         0          0 4294967295\n", 0));
        assert!(maps_id("0 1000 1\n", 0));
        assert!(!maps_id("1000 1000 1\n", 0));
        assert!(!maps_id("1 100000 65536\n", 0));
        assert!(maps_id("1000 1000 1\n0 100000 1\n", 0));
        assert!(!maps_id("", 0));
    }

    #[test]
    fn an_unmapped_owner_counts_as_roots_only_when_trusted_so() {
        let overflow = overflow_uid();
        let strict = TrustedOwners::RootOrCaller;
        let unmapped = TrustedOwners::RootCallerOrUnmapped;
        assert!(!is_trusted_ancestor(overflow, 0o755, strict));
        assert!(is_trusted_ancestor(overflow, 0o755, unmapped));
        assert!(is_trusted_ancestor(overflow, 0o1777, unmapped));
        // The mode still counts: writable by others, and not sticky.
        assert!(!is_trusted_ancestor(overflow, 0o777, unmapped));
        assert!(!is_trusted_ancestor(overflow, 0o775, unmapped));
        // A mapped user other than root and us never passes.
        assert!(!is_trusted_ancestor(someone_else(), 0o755, unmapped));
    }

    /// For real: a process of an unprivileged uid in a user namespace mapping only its own ids
    /// (as a rootless supervisor's per-service init makes), where `/` shows as the overflow uid.
    #[test]
    fn in_a_user_namespace_of_our_own_ids_roots_parents_pass_only_after_a_host_check() {
        if !nix::unistd::geteuid().is_root() {
            return; // needs another uid to become
        }
        let base = tempfile::tempdir().unwrap();
        set_mode(base.path(), 0o755);
        let uid = someone_else();
        let home = base.path().join("home");
        fs::create_dir(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
        set_mode(&home, 0o700);
        let target = home.join("run/locald");
        let open = base.path().join("open");
        fs::create_dir(&open).unwrap();
        set_mode(&open, 0o777);
        // SAFETY: the child makes plain system calls and the checks, then `_exit`s.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = (|| -> Result<(), u8> {
                    let (u, g) = (
                        nix::unistd::Uid::from_raw(uid),
                        nix::unistd::Gid::from_raw(uid),
                    );
                    nix::unistd::setgroups(&[]).map_err(|_| 10)?;
                    nix::unistd::setresgid(g, g, g).map_err(|_| 11)?;
                    nix::unistd::setresuid(u, u, u).map_err(|_| 12)?;
                    // Changing ids made us undumpable: /proc/self would stay root's.
                    // SAFETY: plain prctl with constant arguments.
                    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(|_| 13)?;
                    fs::write("/proc/self/setgroups", "deny").map_err(|_| 14)?;
                    fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")).map_err(|_| 15)?;
                    fs::write("/proc/self/gid_map", format!("{uid} {uid} 1")).map_err(|_| 16)?;
                    let trusted = TrustedOwners::after_host_check();
                    if trusted != TrustedOwners::RootCallerOrUnmapped {
                        return Err(20);
                    }
                    // The full check cannot tell root's `/` from another user's: refused.
                    match ensure_private_dir(&target) {
                        Err(PrivateDirError::UnsafeAncestor {
                            ancestor, owner, ..
                        }) if ancestor == Path::new("/") && owner == overflow_uid() => {}
                        _ => return Err(21),
                    }
                    // After the host's check: passes, and the directory is made 0700.
                    ensure_private_dir_trusting(&target, trusted).map_err(|_| 22)?;
                    check_owned_dir_trusting(&target, trusted).map_err(|_| 23)?;
                    // Everything else is still checked: a parent writable by all, and a
                    // directory that is not ours.
                    match ensure_private_dir_trusting(&open.join("locald"), trusted) {
                        Err(PrivateDirError::UnsafeAncestor { .. }) => {}
                        _ => return Err(24),
                    }
                    match check_owned_dir_trusting(base.path(), trusted) {
                        Err(PrivateDirError::NotOwned { .. }) => Ok(()),
                        _ => Err(25),
                    }
                })();
                // SAFETY: leaving the forked child without running the test harness's code.
                unsafe { libc::_exit(code.err().map_or(0, i32::from)) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
        assert_eq!(mode(&target), 0o700);
        assert_eq!(fs::metadata(&target).unwrap().uid(), uid);
    }
}
