//! Finding and removing what containers of dead processes left behind.
//!
//! A bundle is in use exactly as long as its lock file (`bundles/<id>.lock`, see
//! [`crate::Bundle`]) is flock(2)ed by someone: the process that created the bundle, or the
//! shim running it. When both are gone (a `kill -9`, a crash, a power cut with a persistent
//! `/run`), the lock is free and everything of that container can go: the bundle directory
//! (after unmounting whatever is still mounted below it), libcontainer's state directory from
//! older shims, and the container's cgroups (killing what still runs in them: nobody supervises
//! those processes any more).

use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use locald_shim_protocol::private_dir::{check_owned_dir, open_private_subdir, PrivateDirError};
use locald_shim_protocol::LOCK_SUFFIX;

use crate::bundle::{lock_path, BundleError};
use crate::cleanup;
use crate::runtime_spec::{cgroup_relative_path, is_valid_id, CGROUP_PARENT};
use locald_shim_protocol::lock::{same_file, try_lock, LockMode};

/// What [`sweep_stale`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Ids of the stale containers whose leftovers were removed.
    pub removed: Vec<String>,
    /// Ids whose bundle is still in use (locked), left alone.
    pub in_use: Vec<String>,
    /// Leftovers that could not be removed (the sweep went on with the others).
    pub errors: Vec<String>,
}

/// Removes the leftovers of every container whose bundle lock nobody holds, under
/// [`crate::runtime_root`]. Cheap when there is nothing to do (one directory read, two when
/// an older locald left state directories). Safe to run at any time, from any number of
/// processes at once: a bundle in use is never touched.
pub fn sweep_stale() -> Result<SweepReport, crate::Error> {
    sweep_stale_in(&crate::root::prepare()?.path)
}

/// [`sweep_stale`] for the runtime root `root` (holding `bundles/` and `state/`).
///
/// `root`, `bundles/` and `state/` must be private to the caller (see
/// [`locald_shim_protocol::private_dir`]): a symlink or a directory someone else could write to there
/// is an error, never followed, so that a sweep cannot be turned on files elsewhere.
pub fn sweep_stale_in(root: &Path) -> Result<SweepReport, crate::Error> {
    let mut report = SweepReport::default();
    let root_fd = match check_owned_dir(root) {
        Ok(fd) => fd,
        Err(PrivateDirError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(report)
        }
        Err(err) => return Err(BundleError::from(err).into()),
    };
    let present = |name: &str| -> Result<bool, crate::Error> {
        let found =
            open_private_subdir(root_fd.as_fd(), root, name.as_ref()).map_err(BundleError::from)?;
        Ok(found.is_some())
    };
    let (has_bundles, has_state) = (present("bundles")?, present("state")?);
    let bundles = root.join("bundles");
    let state = root.join("state");

    let mut ids: Vec<String> = Vec::new();
    let bundle_names = if has_bundles {
        dir_names(&bundles)?
    } else {
        Vec::new()
    };
    for name in bundle_names {
        let id = name.strip_suffix(LOCK_SUFFIX).unwrap_or(&name);
        if is_valid_id(id) && !ids.iter().any(|known| known == id) {
            ids.push(id.to_string());
        }
    }
    // Shims before the state moved onto their own tmpfs kept it here: any entry is stale once
    // its bundle is (or is gone).
    let state_names = if has_state {
        dir_names(&state)?
    } else {
        Vec::new()
    };
    let state_ids: Vec<String> = state_names
        .into_iter()
        .filter(|id| is_valid_id(id))
        .collect();
    for id in &state_ids {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    if ids.is_empty() {
        return Ok(report);
    }

    // Read from mountinfo only once a bundle turns out not to be in use.
    let hierarchies = std::cell::OnceCell::new();
    let hierarchies = || hierarchies.get_or_init(cleanup::cgroup_mount_points);
    for id in ids {
        let dir = bundles.join(&id);
        let lock = lock_path(&bundles, &id);
        // Held for the rest of this id's sweep, so that nobody else sweeps it at the same time.
        let held = match nix::fcntl::open(
            &lock,
            OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => match try_lock(fd.as_fd(), LockMode::Exclusive) {
                Ok(()) if same_file(fd.as_fd(), &lock) => Some(fd),
                // Released and removed by its owner just now: nothing left to do.
                Ok(()) => continue,
                Err(nix::errno::Errno::EWOULDBLOCK) => {
                    report.in_use.push(id);
                    continue;
                }
                Err(err) => {
                    report
                        .errors
                        .push(format!("locking {}: {err}", lock.display()));
                    continue;
                }
            },
            Err(nix::errno::Errno::ENOENT) => None,
            Err(err) => {
                report
                    .errors
                    .push(format!("opening {}: {err}", lock.display()));
                continue;
            }
        };
        let cgroup = cgroup_relative_path(&id);
        if held.is_none() && legacy_container_runs(hierarchies(), &cgroup) {
            // No lock file: a bundle of a locald from before locks, whose container still runs.
            report.in_use.push(id);
            continue;
        }
        let mut failed = Vec::new();
        if dir.exists() {
            match cleanup::unmount_under(&dir) {
                Ok(_) => {}
                Err(err) => failed.push(format!("unmounting under {}: {err}", dir.display())),
            }
            if let Err(err) = cleanup::remove_tree(&dir) {
                failed.push(format!("removing {}: {err}", dir.display()));
            }
        }
        if let Err(err) = cleanup::remove_tree(&state.join(&id)) {
            failed.push(format!("removing {}: {err}", state.join(&id).display()));
        }
        if let Err(err) = cleanup::remove_cgroups(hierarchies(), &cgroup) {
            failed.push(format!("removing cgroup /{}: {err}", cgroup.display()));
        }
        if failed.is_empty() {
            if held.is_some() {
                let _ = fs::remove_file(&lock);
            }
            report.removed.push(id);
        } else {
            // The lock file stays, so that a later sweep tries again.
            report.errors.extend(failed);
        }
        drop(held);
    }
    if !report.removed.is_empty() {
        remove_orphan_cgroups(hierarchies(), &bundles, &mut report);
    }
    Ok(report)
}

/// Empty cgroups under `locald/` whose container has no bundle at all (left by older shims):
/// removed when a sweep found something stale anyway. A cgroup with processes in it is left
/// alone: nothing says whose they are.
fn remove_orphan_cgroups(hierarchies: &[PathBuf], bundles: &Path, report: &mut SweepReport) {
    for hierarchy in hierarchies {
        let parent = hierarchy.join(CGROUP_PARENT);
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        // Child cgroups are the directories; the rest are the parent's control files.
        let names = entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|entry| entry.file_name().into_string().ok());
        for name in names {
            if !is_valid_id(&name)
                || bundles.join(&name).exists()
                || lock_path(bundles, &name).exists()
            {
                continue;
            }
            if fs::remove_dir(parent.join(&name)).is_ok() && !report.removed.contains(&name) {
                report.removed.push(name);
            }
        }
        let _ = fs::remove_dir(&parent);
    }
}

/// For a bundle without a lock file (made by an older locald): does its container still run?
/// Yes if its cgroup has processes. (libcontainer's state is no help: its pid may be one of
/// another pid namespace.) A rootless container of an older locald has no cgroup to tell.
fn legacy_container_runs(hierarchies: &[PathBuf], cgroup: &Path) -> bool {
    cleanup::cgroup_has_processes(hierarchies, cgroup)
}

/// The names in `dir` (none if it does not exist).
fn dir_names(dir: &Path) -> Result<Vec<String>, crate::Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(BundleError::Io {
                action: "reading",
                path: dir.to_path_buf(),
                source,
            }
            .into())
        }
    };
    Ok(entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect())
}
