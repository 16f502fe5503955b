//! Removing what a container leaves on the host: directory trees (without following symlinks
//! or crossing into mounted filesystems: [`locald_image::remove_tree`], shared with the image
//! store), mounts under a directory, and cgroup directories.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Where hosts mount their cgroup filesystems.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How long cgroup removal keeps retrying while killed processes finish dying.
const CGROUP_REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

pub use locald_image::remove_tree::remove_tree;

/// Lazily unmounts every mount at or below `dir` in this mount namespace, deepest first.
/// Returns how many were unmounted.
pub fn unmount_under(dir: &Path) -> io::Result<usize> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let mut targets: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape_mount_path(point)))
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

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(path: &str) -> OsString {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(value) = u8::from_str_radix(digits, 8) {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    OsString::from_vec(out)
}

/// Mount points of every cgroup (v1) and cgroup2 filesystem under /sys/fs/cgroup.
pub fn cgroup_mount_points() -> Vec<PathBuf> {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    mountinfo
        .lines()
        .filter_map(|line| {
            let (mount, filesystem) = line.split_once(" - ")?;
            let fstype = filesystem.split(' ').next()?;
            let point = PathBuf::from(unescape_mount_path(mount.split(' ').nth(4)?));
            (matches!(fstype, "cgroup" | "cgroup2") && point.starts_with(CGROUP_ROOT))
                .then_some(point)
        })
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
    let mut first_error = None;
    for hierarchy in hierarchies {
        let path = hierarchy.join(relative);
        if let Err(err) = remove_cgroup(&path) {
            first_error.get_or_insert(err);
        }
        for parent in relative.ancestors().skip(1) {
            if parent.as_os_str().is_empty() || fs::remove_dir(hierarchy.join(parent)).is_err() {
                break;
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn remove_cgroup(path: &Path) -> io::Result<()> {
    let deadline = Instant::now() + CGROUP_REMOVE_TIMEOUT;
    let mut pause = Duration::from_micros(200);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                if let Ok(procs) = fs::read_to_string(path.join("cgroup.procs")) {
                    for pid in procs
                        .split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok())
                    {
                        if pid > 0 {
                            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                        }
                    }
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/a\\040b"), OsString::from("/a b"));
        assert_eq!(unescape_mount_path("/end\\04"), OsString::from("/end\\04"));
    }
}
