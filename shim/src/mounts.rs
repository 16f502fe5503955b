//! The shim's own namespaces: a private mount namespace (entered first, so the rootfs overlay and
//! anything else mounted here vanish with the shim even if it is SIGKILLed) and, for a non-root
//! caller, a user namespace mapping the caller to the container's user (root unless the spec
//! says otherwise) so that those mounts are allowed.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::{LinuxIdMapping, Spec};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{Gid, Uid};

use locald_shim_protocol::cgroup::{self, CGROUP_ROOT};
use locald_shim_protocol::{mount_ns, mountinfo};
// Annotations with which the runtime crate asks for an overlay rootfs: the read-only image
// directory, and the per-container writable upper and work directories.
use locald_shim_protocol::{LOWER_ANNOTATION, UPPER_ANNOTATION, WORK_ANNOTATION};

/// Unshares a mount namespace and makes every mount in it private, so nothing mounted from now
/// on propagates back to the host.
pub fn enter_private_mount_namespace() -> Result<()> {
    mount_ns::enter_private().context("unshare(CLONE_NEWNS) and making / private")
}

/// Mounts a `/proc` of this process's PID namespace over the host's, when they differ (in this
/// private mount namespace only). Under the supervisor the shim runs in the PID namespace of the
/// service's init, and libcontainer records the container's pid as this namespace numbers it,
/// then reads its state from `/proc/<pid>`: the host's `/proc` would show another process (or
/// none) under that number. Only for a root shim: rootless, the PID namespace belongs to the
/// init's user namespace, where the shim has no capability to mount it.
pub fn own_proc() -> Result<()> {
    if mount_ns::proc_is_ours() {
        return Ok(());
    }
    mount_ns::mount_own_proc().context("mounting a /proc of the shim's PID namespace")
}

fn make_mounts_private() -> Result<()> {
    mount_ns::make_mounts_private().context("making / recursively private")
}

/// The ids a non-root caller (`uid`, `gid`) becomes in the container's user namespace: what the
/// spec's single-id `uidMappings`/`gidMappings` map them to (the container's user: root for most
/// images, a CNB builder's `CNB_USER_ID` for a build), root when the spec has none. The caller's
/// own ids are the only ones it may map without a setuid helper, so any other mapping is refused.
pub fn rootless_ids(spec: &Spec, uid: Uid, gid: Gid) -> Result<(u32, u32)> {
    let linux = spec.linux().as_ref();
    let inside = |mappings: Option<&Vec<LinuxIdMapping>>, host: u32, what: &str| match mappings {
        None => Ok(0),
        Some(mappings) => match mappings.as_slice() {
            [only] if only.host_id() == host && only.size() == 1 => Ok(only.container_id()),
            _ => bail!(
                "the spec's {what} must map only the caller's id {host} (one id): a rootless \
                 shim cannot map others"
            ),
        },
    };
    Ok((
        inside(
            linux.and_then(|l| l.uid_mappings().as_ref()),
            uid.as_raw(),
            "uidMappings",
        )?,
        inside(
            linux.and_then(|l| l.gid_mappings().as_ref()),
            gid.as_raw(),
            "gidMappings",
        )?,
    ))
}

/// For a non-root caller: unshares a user namespace in which the caller's `uid` and `gid` are
/// `inside` (a single-id mapping, so no setuid helper is needed) together with a private mount
/// namespace. The shim keeps every capability in the new namespace whatever id it maps to, so
/// it can still mount the rootfs; the container's process loses them when it execs as non-root.
pub fn enter_rootless_namespaces(uid: Uid, gid: Gid, inside: (u32, u32)) -> Result<()> {
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).context(
        "unshare(CLONE_NEWUSER | CLONE_NEWNS): are unprivileged user namespaces enabled?",
    )?;
    let (inside_uid, inside_gid) = inside;
    // An unprivileged process must deny setgroups before it may write a gid map (CVE-2014-8989).
    fs::write("/proc/self/setgroups", "deny").context("writing /proc/self/setgroups")?;
    fs::write("/proc/self/uid_map", format!("{inside_uid} {uid} 1"))
        .context("writing /proc/self/uid_map")?;
    fs::write("/proc/self/gid_map", format!("{inside_gid} {gid} 1"))
        .context("writing /proc/self/gid_map")?;
    make_mounts_private()
}

/// Hides the host's cgroup hierarchies behind an empty tmpfs in the shim's mount namespace, with
/// stand-in files for what libcontainer writes: its init joins `<hierarchy>/<cgroups_path>` in
/// every v1 hierarchy it finds in mountinfo (`cgroup.procs`, and `cpuset.cpus`/`cpuset.mems` up
/// the cpuset path), and applies device rules (`devices.allow`/`devices.deny`) when asked to.
/// Used when the container gets no cgroup of its own (rootless: nothing is delegated to it) and
/// when the shim sets the real ones up itself (see [`crate::cgroups`]). The tmpfs disappears
/// with the shim's mount namespace.
pub fn shadow_cgroupfs(
    hierarchies: &[PathBuf],
    cgroups_path: &Path,
    device_files: bool,
) -> Result<()> {
    if !Path::new(CGROUP_ROOT).is_dir() {
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        CGROUP_ROOT,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .context("mounting a scratch tmpfs over /sys/fs/cgroup")?;
    let relative = cgroups_path.strip_prefix("/").unwrap_or(cgroups_path);
    for hierarchy in hierarchies {
        if !hierarchy.starts_with(CGROUP_ROOT) {
            continue;
        }
        let dir = hierarchy.join(relative);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // The cpuset controller copies cpus/mems down from each parent and refuses empty ones.
        if hierarchy.to_string_lossy().contains("cpuset") {
            let mut level = hierarchy.clone();
            for component in std::iter::once(None).chain(relative.components().map(Some)) {
                if let Some(component) = component {
                    level.push(component);
                }
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    fs::write(level.join(file), "0\n")
                        .with_context(|| format!("creating {}/{file}", level.display()))?;
                }
            }
        }
        // Writes are discarded and reads are empty: libcontainer's clean-up after a failed start
        // reads `cgroup.procs` back and kills every pid listed, pids its intermediate process
        // wrote and that may belong to someone else by then.
        let mut files = vec!["cgroup.procs"];
        if device_files && hierarchy.ends_with("devices") {
            files.extend(["devices.allow", "devices.deny"]);
        }
        for file in files {
            std::os::unix::fs::symlink("/dev/null", dir.join(file))
                .with_context(|| format!("creating {}/{file}", dir.display()))?;
        }
    }
    Ok(())
}

/// Mount points of the cgroup v1 hierarchies (named ones too), from /proc/self/mountinfo.
pub fn v1_cgroup_mount_points() -> Result<Vec<PathBuf>> {
    let text = mountinfo::read().with_context(|| format!("reading {}", mountinfo::PATH))?;
    Ok(cgroup::cgroup_mounts(&text)
        .into_iter()
        .filter(|mount| !mount.unified)
        .map(|mount| mount.mount_point)
        .collect())
}

/// The directories of an overlay rootfs requested through the spec's annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayRootfs {
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
}

impl OverlayRootfs {
    /// Reads the overlay request from `spec`; `None` when the bundle's rootfs is a plain directory.
    pub fn from_spec(spec: &Spec, bundle: &Path) -> Result<Option<OverlayRootfs>> {
        let Some(annotations) = spec.annotations() else {
            return Ok(None);
        };
        let Some(lower) = annotations.get(LOWER_ANNOTATION) else {
            return Ok(None);
        };
        let dir = |key: &str| -> Result<PathBuf> {
            let value = annotations
                .get(key)
                .with_context(|| format!("{LOWER_ANNOTATION} is set but {key} is not"))?;
            Ok(bundle.join(value))
        };
        let root = spec.root().as_ref().context("the spec has no root")?;
        Ok(Some(OverlayRootfs {
            lower: bundle.join(lower),
            upper: dir(UPPER_ANNOTATION)?,
            work: dir(WORK_ANNOTATION)?,
            target: bundle.join(root.path()),
        }))
    }

    /// The overlay mount data; overlayfs splits options on ',' and lower layers on ':'.
    pub fn mount_options(&self, in_user_namespace: bool) -> Result<String> {
        for path in [&self.lower, &self.upper, &self.work] {
            let text = path.to_str().context("overlay paths must be UTF-8")?;
            if text.contains([',', ':']) {
                bail!("overlay path {text:?} contains ',' or ':', which overlayfs cannot take");
            }
        }
        let mut options = format!(
            "lowerdir={},upperdir={},workdir={}",
            self.lower.display(),
            self.upper.display(),
            self.work.display()
        );
        // Inside a user namespace overlayfs may not use trusted.* xattrs; user.* ones are allowed.
        if in_user_namespace {
            options.push_str(",userxattr");
        }
        Ok(options)
    }

    /// Mounts the overlay. It is `volatile` (Linux 5.10+, else mounted without): the writable
    /// layer is thrown away with the container, so overlayfs need not sync the upper directory's
    /// whole filesystem when the last reference to the mount goes (which otherwise waits for
    /// every dirty page on that filesystem, the project's build output included).
    pub fn mount(&self, in_user_namespace: bool) -> Result<()> {
        let options = self.mount_options(in_user_namespace)?;
        let volatile = format!("{options},volatile");
        let mount_with = |data: &str| {
            mount(
                Some("overlay"),
                &self.target,
                Some("overlay"),
                MsFlags::empty(),
                Some(data),
            )
        };
        match mount_with(&volatile) {
            Err(nix::errno::Errno::EINVAL) => mount_with(&options),
            other => other,
        }
        .with_context(|| format!("mounting the overlay rootfs on {}", self.target.display()))
    }

    /// Detaches the overlay; the mount namespace would drop it anyway when the shim exits.
    pub fn unmount(&self) {
        let _ = umount2(&self.target, MntFlags::MNT_DETACH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcontainer::oci_spec::runtime::{RootBuilder, SpecBuilder};
    use std::collections::HashMap;

    #[test]
    fn a_rootless_caller_becomes_the_user_its_spec_maps_it_to() {
        let spec = |uid_map: serde_json::Value| -> Spec {
            serde_json::from_value(serde_json::json!({
                "ociVersion": "1.0.2",
                "root": {"path": "rootfs"},
                "linux": {
                    "uidMappings": uid_map,
                    "gidMappings": [{"containerID": 1001, "hostID": 600, "size": 1}]
                }
            }))
            .unwrap()
        };
        let (uid, gid) = (Uid::from_raw(500), Gid::from_raw(600));
        let build = spec(serde_json::json!([{"containerID": 1000, "hostID": 500, "size": 1}]));
        assert_eq!(rootless_ids(&build, uid, gid).unwrap(), (1000, 1001));
        let plain = spec_with(&[]);
        assert_eq!(rootless_ids(&plain, uid, gid).unwrap(), (0, 0));
        // Another user's id, or a range, would need newuidmap: refused, not half-mapped.
        for refused in [
            serde_json::json!([{"containerID": 0, "hostID": 501, "size": 1}]),
            serde_json::json!([{"containerID": 0, "hostID": 500, "size": 2}]),
            serde_json::json!([
                {"containerID": 0, "hostID": 500, "size": 1},
                {"containerID": 1, "hostID": 100000, "size": 65536}
            ]),
        ] {
            let error = rootless_ids(&spec(refused), uid, gid).unwrap_err();
            assert!(error.to_string().contains("uidMappings"), "{error}");
        }
    }

    fn spec_with(annotations: &[(&str, &str)]) -> Spec {
        let annotations: HashMap<String, String> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SpecBuilder::default()
            .root(RootBuilder::default().path("rootfs").build().unwrap())
            .annotations(annotations)
            .build()
            .unwrap()
    }

    #[test]
    fn overlay_request_comes_from_annotations() {
        let spec = spec_with(&[
            (LOWER_ANNOTATION, "/images/abc/rootfs"),
            (UPPER_ANNOTATION, "upper"),
            (WORK_ANNOTATION, "work"),
        ]);
        let overlay = OverlayRootfs::from_spec(&spec, Path::new("/b"))
            .unwrap()
            .unwrap();
        assert_eq!(overlay.lower, PathBuf::from("/images/abc/rootfs"));
        assert_eq!(overlay.upper, PathBuf::from("/b/upper"));
        assert_eq!(overlay.work, PathBuf::from("/b/work"));
        assert_eq!(overlay.target, PathBuf::from("/b/rootfs"));
        assert_eq!(
            overlay.mount_options(false).unwrap(),
            "lowerdir=/images/abc/rootfs,upperdir=/b/upper,workdir=/b/work"
        );
        assert!(overlay.mount_options(true).unwrap().ends_with(",userxattr"));
    }

    #[test]
    fn plain_bundles_have_no_overlay() {
        let spec = spec_with(&[]);
        assert_eq!(
            OverlayRootfs::from_spec(&spec, Path::new("/b")).unwrap(),
            None
        );
    }

    #[test]
    fn incomplete_or_unmountable_requests_are_errors() {
        let spec = spec_with(&[(LOWER_ANNOTATION, "/l")]);
        assert!(OverlayRootfs::from_spec(&spec, Path::new("/b")).is_err());
        let spec = spec_with(&[
            (LOWER_ANNOTATION, "/l,ro"),
            (UPPER_ANNOTATION, "upper"),
            (WORK_ANNOTATION, "work"),
        ]);
        let overlay = OverlayRootfs::from_spec(&spec, Path::new("/b"))
            .unwrap()
            .unwrap();
        assert!(overlay.mount_options(false).is_err());
    }
}
