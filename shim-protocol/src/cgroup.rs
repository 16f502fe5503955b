//! cgroup mounts and container cgroups, as both the shim (which creates and removes a running
//! container's cgroups) and the runtime (which removes those of containers whose shim was
//! killed) need them.
//!
//! Mount points come from `/proc/self/mountinfo`, unescaped ([`crate::mountinfo`]). Removal
//! works relative to a descriptor of the hierarchy's root (cgroupfs has no symlinks, and only
//! root may create entries in it).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, Pid, UnlinkatFlags};

use crate::mountinfo;

/// Where hosts mount their cgroup filesystems.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The v1 controllers libcontainer puts containers under (libcgroups' `CONTROLLERS`): the shim
/// joins the same hierarchies, so a container is accounted for exactly as libcontainer would.
pub const CONTROLLERS: [&str; 12] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
];

/// How long removal keeps retrying a cgroup that still has (dying) tasks.
pub const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

/// One mounted cgroup filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Unescaped.
    pub mount_point: PathBuf,
    /// `cgroup2` rather than `cgroup` (v1).
    pub unified: bool,
    /// The superblock options (for v1: the controllers, `name=…`, `rw`…).
    pub options: Vec<String>,
}

/// Every cgroup (v1) and cgroup2 mount in `text` (of `/proc/self/mountinfo`), in its order,
/// bind mounts of one hierarchy included.
pub fn cgroup_mounts(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            // `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER_OPTIONS`
            let (mount, filesystem) = line.split_once(" - ")?;
            let mut fs_fields = filesystem.split(' ');
            let unified = match fs_fields.next()? {
                "cgroup" => false,
                "cgroup2" => true,
                _ => return None,
            };
            let options = fs_fields
                .nth(1)
                .unwrap_or("")
                .split(',')
                .filter(|option| !option.is_empty())
                .map(String::from)
                .collect();
            let mount_point = PathBuf::from(mountinfo::unescape(mount.split(' ').nth(4)?));
            Some(CgroupMount {
                mount_point,
                unified,
                options,
            })
        })
        .collect()
}

/// One mounted v1 hierarchy with at least one of [`CONTROLLERS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    pub mount_point: PathBuf,
    /// Its controllers (from the mount options), sorted.
    pub controllers: Vec<String>,
}

impl V1Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The v1 hierarchies with one of [`CONTROLLERS`] in `text` (of `/proc/self/mountinfo`), one
/// per hierarchy (the first mount of each); named hierarchies such as `name=systemd` are left
/// out.
pub fn v1_hierarchies(text: &str) -> Vec<V1Hierarchy> {
    let mut found: Vec<V1Hierarchy> = Vec::new();
    for mount in cgroup_mounts(text) {
        if mount.unified {
            continue;
        }
        let mut controllers: Vec<String> = mount
            .options
            .into_iter()
            .filter(|option| CONTROLLERS.contains(&option.as_str()))
            .collect();
        if controllers.is_empty() {
            continue;
        }
        controllers.sort();
        // A hierarchy mounted twice (bind mounts) is still one hierarchy.
        if found.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        found.push(V1Hierarchy {
            mount_point: mount.mount_point,
            controllers,
        });
    }
    found
}

/// Opens a hierarchy's root directory (or any directory) without following a symlink.
pub fn open_dir(dir: Option<BorrowedFd<'_>>, path: &Path) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    match dir {
        Some(dir) => openat(dir, path, flags, Mode::empty()),
        None => nix::fcntl::open(path, flags, Mode::empty()),
    }
}

/// Removes cgroup `relative` under the hierarchy root `root`: SIGKILLs the processes still
/// listed in it until it can be removed (dying tasks keep it busy for a moment), for up to
/// [`REMOVE_TIMEOUT`]. `cgroup`, when given, is the cgroup's own descriptor (to read its
/// members even where the path no longer resolves). A missing cgroup is fine.
pub fn remove_cgroup(
    root: BorrowedFd<'_>,
    cgroup: Option<BorrowedFd<'_>>,
    relative: &Path,
) -> nix::Result<()> {
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    let mut pause = Duration::from_micros(200);
    loop {
        match unlinkat(root, relative, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) if Instant::now() < deadline => {
                kill_members(root, cgroup, relative);
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(err) => return Err(err),
        }
    }
}

fn kill_members(root: BorrowedFd<'_>, cgroup: Option<BorrowedFd<'_>>, relative: &Path) {
    let procs = match cgroup {
        Some(dir) => read_file(dir, Path::new("cgroup.procs")),
        None => read_file(root, &relative.join("cgroup.procs")),
    };
    for pid in procs.unwrap_or_default().split_whitespace() {
        if let Ok(pid) = pid.parse::<i32>() {
            if pid > 0 {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// Removes the ancestors of `relative` under `root` (deepest first) that are empty; stops at
/// the first busy one (another container's, or the user's).
pub fn remove_empty_parents(root: BorrowedFd<'_>, relative: &Path) {
    for parent in relative.ancestors().skip(1) {
        if parent.as_os_str().is_empty() {
            break;
        }
        if unlinkat(root, parent, UnlinkatFlags::RemoveDir).is_err() {
            break;
        }
    }
}

/// Removes cgroup `relative` (e.g. `locald/<id>`) from every hierarchy mounted at
/// `mount_points` as [`remove_cgroup`] does, then its parents left empty. Goes on after a
/// failure; returns the first, with the hierarchy it happened in.
pub fn remove_cgroups(mount_points: &[PathBuf], relative: &Path) -> Result<(), (PathBuf, Errno)> {
    let mut first_error = None;
    for mount_point in mount_points {
        let root = match open_dir(None, mount_point) {
            Ok(root) => root,
            Err(Errno::ENOENT) => continue, // unmounted meanwhile: nothing of ours in it
            Err(err) => {
                first_error.get_or_insert((mount_point.clone(), err));
                continue;
            }
        };
        if let Err(err) = remove_cgroup(root.as_fd(), None, relative) {
            first_error.get_or_insert((mount_point.clone(), err));
        }
        remove_empty_parents(root.as_fd(), relative);
    }
    first_error.map_or(Ok(()), Err)
}

/// The contents of `name` under `dir` (lossily UTF-8), not following a final symlink.
pub fn read_file(dir: BorrowedFd<'_>, name: &Path) -> nix::Result<String> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match nix::unistd::read(&fd, &mut buffer) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buffer[..n]),
            Err(Errno::EINTR) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const MOUNTINFO_TEXT: &str = "\
43 42 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
26 25 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
27 26 0:23 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
28 26 0:24 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
29 26 0:25 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio
30 26 0:26 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
31 26 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
32 26 0:23 / /mnt/cpu\\040again rw,relatime - cgroup cgroup rw,cpu
33 26 0:28 / /mnt/my\\040pids shared:5 - cgroup cgroup rw,pids
";

    #[test]
    fn hierarchies_come_from_mountinfo() {
        let found = v1_hierarchies(MOUNTINFO_TEXT);
        let mounts: Vec<_> = found.iter().map(|h| h.mount_point.clone()).collect();
        assert_eq!(
            mounts,
            [
                PathBuf::from("/sys/fs/cgroup/cpu"),
                PathBuf::from("/sys/fs/cgroup/cpuacct"),
                PathBuf::from("/sys/fs/cgroup/net_cls,net_prio"),
                PathBuf::from("/mnt/my pids"),
            ]
        );
        assert_eq!(found[2].controllers, ["net_cls", "net_prio"]);
        assert!(found[2].has("net_prio"));
        assert!(!found[2].has("cpu"));
    }

    #[test]
    fn every_cgroup_mount_is_found_and_unescaped() {
        let mounts = cgroup_mounts(MOUNTINFO_TEXT);
        let points: Vec<_> = mounts.iter().map(|m| m.mount_point.clone()).collect();
        assert_eq!(
            points,
            [
                "/sys/fs/cgroup/cpu",
                "/sys/fs/cgroup/cpuacct",
                "/sys/fs/cgroup/net_cls,net_prio",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified",
                "/mnt/cpu again",
                "/mnt/my pids",
            ]
            .map(PathBuf::from)
        );
        assert!(mounts[4].unified);
        assert!(!mounts[3].unified);
        assert!(mounts[3].options.contains(&"name=systemd".to_string()));
    }

    #[test]
    fn the_live_mount_table_parses() {
        // Whatever this host mounts, every cgroup mount point read back exists.
        let text = mountinfo::read().unwrap();
        for mount in cgroup_mounts(&text) {
            assert!(mount.mount_point.is_dir(), "{mount:?}");
        }
    }

    /// Directories on an ordinary filesystem stand in for a hierarchy: rmdir works the same
    /// on empty ones (a cgroup's control files do not count as entries there).
    #[test]
    fn removal_takes_the_cgroup_and_its_empty_parents_only() {
        let hierarchy = tempfile::tempdir().unwrap();
        fs::create_dir_all(hierarchy.path().join("locald/a")).unwrap();
        fs::create_dir_all(hierarchy.path().join("locald/b")).unwrap();
        let mounts = [
            hierarchy.path().to_path_buf(),
            hierarchy.path().join("gone"),
        ];
        remove_cgroups(&mounts, Path::new("locald/a")).unwrap();
        assert!(!hierarchy.path().join("locald/a").exists());
        assert!(
            hierarchy.path().join("locald/b").is_dir(),
            "a busy parent stays"
        );
        remove_cgroups(&mounts, Path::new("locald/b")).unwrap();
        assert!(!hierarchy.path().join("locald").exists());
        assert!(hierarchy.path().is_dir());
        // Missing: fine.
        remove_cgroups(&mounts, Path::new("locald/b")).unwrap();
    }
}
