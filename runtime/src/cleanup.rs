//! Removing what a container leaves on the host: directory trees (without following symlinks
//! or crossing into mounted filesystems: [`locald_image::remove_tree`], shared with the image
//! store), mounts under a directory, and cgroup directories (with
//! [`locald_shim_protocol::cgroup`], as the shim removes them).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags};

use locald_shim_protocol::{cgroup, mountinfo};

pub use locald_image::remove_tree::remove_tree;

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
