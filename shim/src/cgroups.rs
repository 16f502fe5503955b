//! Root-mode cgroups on cgroup v1 hosts (legacy or hybrid layout), set up by the shim itself.
//!
//! libcontainer puts a container into its cgroups by having the intermediate process write its
//! pid to `cgroup.procs` in every v1 hierarchy. The kernel serves such a write under the global
//! threadgroup rwsem taken for writing, and taking it waits for an RCU grace period: 5 to 15 ms
//! per container on the project's machines, more than everything else the shim does. A thread
//! that moves *itself* (`0` written to `tasks`) does not need that lock.
//!
//! So on v1 hosts the shim creates the container's cgroups, applies the device rules, moves
//! itself in just before libcontainer forks the container (whose processes inherit the cgroups
//! at fork), and moves itself back out right after; libcontainer gets a scratch cgroupfs to write
//! its own bookkeeping into ([`crate::mounts::shadow_cgroupfs`]). The shim is single-threaded, so
//! moving its only thread is moving the process. Everything here works on directory descriptors
//! opened before the scratch cgroupfs hides the real one.
//!
//! Only used when the spec asks for nothing but device rules (the runtime crate's specs): with
//! any other resource, or on a cgroup v2 host, libcontainer manages the cgroups as usual.

use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use libcontainer::oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, Spec};
use locald_shim_protocol::cgroup::{
    open_dir, read_file, remove_cgroup, remove_empty_parents, V1Hierarchy, CGROUP_ROOT, CONTROLLERS,
};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mkdirat, Mode};

/// The calling process's cgroup in each v1 hierarchy, from `/proc/self/cgroup` text: pairs of
/// (sorted controllers, path).
fn own_cgroups(proc_cgroup: &str) -> Vec<(Vec<String>, String)> {
    proc_cgroup
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            let mut controllers: Vec<String> = controllers
                .split(',')
                .filter(|c| CONTROLLERS.contains(c))
                .map(String::from)
                .collect();
            if controllers.is_empty() {
                return None;
            }
            controllers.sort();
            Some((controllers, path.to_string()))
        })
        .collect()
}

/// Whether this shim sets the cgroups up itself (see the module documentation), and with which
/// cgroup path and device rules.
pub fn managed_by_shim(spec: &Spec) -> Option<(PathBuf, Vec<LinuxDeviceCgroup>)> {
    let linux = spec.linux().as_ref()?;
    let path = linux.cgroups_path().as_ref()?;
    // libcontainer builds a container's cgroupfs mount from the cgroups it joined itself.
    let mounts_cgroupfs = spec
        .mounts()
        .iter()
        .flatten()
        .any(|mount| mount.typ().as_deref() == Some("cgroup"));
    if mounts_cgroupfs {
        return None;
    }
    if !path.is_absolute() || !is_plain_relative(path.strip_prefix("/").ok()?) {
        return None;
    }
    let mut devices = Vec::new();
    if let Some(resources) = linux.resources() {
        let only_devices = resources.memory().is_none()
            && resources.cpu().is_none()
            && resources.pids().is_none()
            && resources.block_io().is_none()
            && resources.hugepage_limits().is_none()
            && resources.network().is_none()
            && resources.rdma().is_none()
            && resources.unified().is_none();
        if !only_devices {
            return None;
        }
        devices = resources.devices().clone().unwrap_or_default();
    }
    // A cgroup2 (unified) host: libcontainer (device rules are eBPF programs there).
    let stat = nix::sys::statfs::statfs(CGROUP_ROOT).ok()?;
    if stat.filesystem_type() != nix::sys::statfs::TMPFS_MAGIC {
        return None;
    }
    Some((path.clone(), devices))
}

/// `a/b/c` with normal components only (no `..`, no `.`), at least one.
fn is_plain_relative(path: &Path) -> bool {
    path.components().count() > 0 && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// The device rules a container gets: the spec's, then libcontainer's defaults (the devices it
/// creates in every container's /dev, mknod, and the pty/console/tun devices), applied in that
/// order exactly as libcontainer's v1 devices controller does, after denying everything.
pub fn device_rules(spec_rules: &[LinuxDeviceCgroup]) -> Vec<String> {
    let rule = |typ: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        let number = |n: Option<i64>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        format!("{typ} {}:{} {access}", number(major), number(minor))
    };
    let mut rules = vec![format!("deny {}", rule("a", None, None, "rwm"))];
    for device in spec_rules {
        let verb = if device.allow() { "allow" } else { "deny" };
        let typ = device
            .typ()
            .unwrap_or(LinuxDeviceType::A)
            .as_str()
            .to_string();
        let access = device.access().clone().unwrap_or_default();
        rules.push(format!(
            "{verb} {}",
            rule(&typ, device.major(), device.minor(), &access)
        ));
    }
    // libcgroups' default_devices() (allowed rwm) and default_allow_devices().
    for (major, minor) in [(1, 3), (1, 5), (1, 7), (5, 0), (1, 9), (1, 8)] {
        rules.push(format!(
            "allow {}",
            rule("c", Some(major), Some(minor), "rwm")
        ));
    }
    rules.push(format!("allow {}", rule("c", None, None, "m")));
    rules.push(format!("allow {}", rule("b", None, None, "m")));
    for (major, minor) in [(5, Some(1)), (136, None), (5, Some(2)), (10, Some(200))] {
        rules.push(format!("allow {}", rule("c", Some(major), minor, "rwm")));
    }
    rules
}

/// The container's cgroup in one hierarchy.
struct Member {
    hierarchy: V1Hierarchy,
    /// The hierarchy's root directory (on the real cgroupfs, opened before it was hidden).
    root: OwnedFd,
    /// The container's cgroup directory.
    cgroup: OwnedFd,
    /// The shim's own cgroup, relative to the root, to return to.
    home: PathBuf,
}

/// The cgroups the shim created for one container, in every v1 hierarchy.
pub struct V1Cgroups {
    /// Relative to each hierarchy's root, e.g. `locald/<id>`.
    relative: PathBuf,
    members: Vec<Member>,
    joined: bool,
}

impl V1Cgroups {
    /// Creates `path` (absolute, e.g. `/locald/<id>`) in every hierarchy and applies the device
    /// rules. Call [`V1Cgroups::remove`] (also on errors after this returns).
    pub fn create(
        hierarchies: &[V1Hierarchy],
        path: &Path,
        spec_devices: &[LinuxDeviceCgroup],
    ) -> Result<V1Cgroups> {
        let relative = path.strip_prefix("/").unwrap_or(path).to_path_buf();
        let proc_cgroup =
            fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
        let homes = own_cgroups(&proc_cgroup);
        let mut cgroups = V1Cgroups {
            relative,
            members: Vec::new(),
            joined: false,
        };
        for hierarchy in hierarchies {
            let home = homes
                .iter()
                .find(|(controllers, _)| *controllers == hierarchy.controllers)
                .map(|(_, path)| PathBuf::from(path.trim_start_matches('/')))
                .unwrap_or_default();
            let root = open_dir(None, &hierarchy.mount_point)
                .with_context(|| format!("opening {}", hierarchy.mount_point.display()))?;
            let cgroup = create_levels(root.as_fd(), &cgroups.relative, hierarchy.has("cpuset"))
                .with_context(|| {
                    format!(
                        "creating cgroup {} in {}",
                        cgroups.relative.display(),
                        hierarchy.mount_point.display()
                    )
                })?;
            cgroups.members.push(Member {
                hierarchy: hierarchy.clone(),
                root,
                cgroup,
                home,
            });
        }
        let rules = device_rules(spec_devices);
        for member in cgroups
            .members
            .iter()
            .filter(|m| m.hierarchy.has("devices"))
        {
            // The kernel takes one rule per write(2): open each file once, write rule by rule.
            let allow = open_file(member.cgroup.as_fd(), "devices.allow", OFlag::O_WRONLY)
                .context("opening the container's devices.allow")?;
            let deny = open_file(member.cgroup.as_fd(), "devices.deny", OFlag::O_WRONLY)
                .context("opening the container's devices.deny")?;
            for rule in &rules {
                let (file, value) = match rule.split_once(' ') {
                    Some(("allow", value)) => (&allow, value),
                    Some((_, value)) => (&deny, value),
                    None => continue,
                };
                write_all(file.as_fd(), value)
                    .with_context(|| format!("applying the device rule {rule:?}"))?;
            }
        }
        Ok(cgroups)
    }

    /// Moves the calling thread (the single-threaded shim) into the container's cgroups.
    pub fn join(&mut self) -> Result<()> {
        self.joined = true;
        for member in &self.members {
            write_file(member.cgroup.as_fd(), "tasks", "0").with_context(|| {
                format!(
                    "joining cgroup {} in {}",
                    self.relative.display(),
                    member.hierarchy.mount_point.display()
                )
            })?;
        }
        Ok(())
    }

    /// Moves the shim back to its own cgroups (or the hierarchy's root if those are gone).
    pub fn leave(&mut self) {
        if !self.joined {
            return;
        }
        self.joined = false;
        for member in &self.members {
            let home = member.home.join("tasks");
            if write_file(member.root.as_fd(), &home, "0").is_err() {
                let _ = write_file(member.root.as_fd(), "tasks", "0");
            }
        }
    }

    /// Leaves the cgroups, kills whatever is still in them and removes them, then removes the
    /// parent directories (e.g. `locald`) that are left empty. Best effort.
    pub fn remove(&mut self) -> Vec<String> {
        self.leave();
        let mut errors = Vec::new();
        for member in &self.members {
            if let Err(err) = remove_cgroup(
                member.root.as_fd(),
                Some(member.cgroup.as_fd()),
                &self.relative,
            ) {
                errors.push(format!(
                    "removing cgroup {} in {}: {err}",
                    self.relative.display(),
                    member.hierarchy.mount_point.display()
                ));
            }
            remove_empty_parents(member.root.as_fd(), &self.relative);
        }
        self.members.clear();
        errors
    }
}

/// Creates every missing level of `relative` under `root` and returns the leaf. In a cpuset
/// hierarchy a cgroup starts with empty `cpuset.cpus`/`cpuset.mems`, and nothing can join it
/// until they are set: each level gets its parent's when empty, as libcontainer does.
fn create_levels(root: BorrowedFd<'_>, relative: &Path, cpuset: bool) -> Result<OwnedFd> {
    // Another shim removing an empty parent at the same moment can make a level vanish between
    // creating it and creating the next: start over a few times.
    let mut attempts = 0;
    loop {
        attempts += 1;
        match try_create_levels(root, relative, cpuset) {
            Err(Errno::ENOENT) if attempts < 5 => continue,
            other => return other.map_err(anyhow::Error::from),
        }
    }
}

fn try_create_levels(root: BorrowedFd<'_>, relative: &Path, cpuset: bool) -> nix::Result<OwnedFd> {
    let mut level = nix::unistd::dup(root)?;
    for component in relative.components() {
        let Component::Normal(name) = component else {
            return Err(Errno::EINVAL);
        };
        match mkdirat(level.as_fd(), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(err) => return Err(err),
        }
        let child = open_dir(Some(level.as_fd()), Path::new(name))?;
        if cpuset {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let current = read_file(child.as_fd(), Path::new(file))?;
                if current.trim().is_empty() {
                    let inherited = read_file(level.as_fd(), Path::new(file))?;
                    write_file(child.as_fd(), file, inherited.trim())?;
                }
            }
        }
        level = child;
    }
    Ok(level)
}

fn open_file<P: AsRef<OsStr> + ?Sized>(
    dir: BorrowedFd<'_>,
    name: &P,
    access: OFlag,
) -> nix::Result<OwnedFd> {
    openat(
        dir,
        Path::new(name.as_ref()),
        access | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
}

/// One write(2) of `value`: cgroup files take a value per write and do not do partial ones.
fn write_all(fd: BorrowedFd<'_>, value: &str) -> nix::Result<()> {
    let written = nix::unistd::write(fd, value.as_bytes())?;
    if written != value.len() {
        return Err(Errno::EIO);
    }
    Ok(())
}

fn write_file<P: AsRef<OsStr> + ?Sized>(
    dir: BorrowedFd<'_>,
    name: &P,
    value: &str,
) -> nix::Result<()> {
    let fd = open_file(dir, name, OFlag::O_WRONLY)?;
    write_all(fd.as_fd(), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroups_skip_named_and_unified_hierarchies() {
        let text =
            "12:pids:/user.slice\n3:cpuacct,cpu:/\n1:name=systemd:/init.scope\n0::/init.scope\n";
        assert_eq!(
            own_cgroups(text),
            vec![
                (vec!["pids".to_string()], "/user.slice".to_string()),
                (
                    vec!["cpu".to_string(), "cpuacct".to_string()],
                    "/".to_string()
                ),
            ]
        );
    }

    #[test]
    fn device_rules_deny_all_then_follow_the_spec_and_libcontainer() {
        use libcontainer::oci_spec::runtime::LinuxDeviceCgroupBuilder;
        let spec = [
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(136)
                .access("rwm")
                .build()
                .unwrap(),
        ];
        let rules = device_rules(&spec);
        assert_eq!(rules[0], "deny a *:* rwm");
        assert_eq!(rules[1], "deny a *:* rwm");
        assert_eq!(rules[2], "allow c 136:* rwm");
        assert!(rules.contains(&"allow c 1:3 rwm".to_string()));
        assert!(rules.contains(&"allow b *:* m".to_string()));
        assert_eq!(rules.last().map(String::as_str), Some("allow c 10:200 rwm"));
    }

    #[test]
    fn cgroup_paths_must_be_plain() {
        assert!(is_plain_relative(Path::new("locald/x")));
        assert!(!is_plain_relative(Path::new("locald/../x")));
        assert!(!is_plain_relative(Path::new("")));
    }
}
