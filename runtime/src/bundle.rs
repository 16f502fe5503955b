//! Prepared OCI bundles: `config.json`, an empty rootfs mount point, the overlay's writable
//! upper/work directories and the container's /etc/hosts and /etc/resolv.conf, in a 0700
//! directory under [`runtime_root`].

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::Spec;

use crate::container_spec::{ContainerSpec, Mode};
use crate::runtime_spec::{self, runtime_spec};
use crate::shim;

/// Errors while preparing or removing a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("a bundle for container {0:?} already exists (is it still running?)")]
    AlreadyExists(String),
    #[error("volume source {0} does not exist")]
    MissingVolumeSource(PathBuf),
    #[error("writing config.json: {0}")]
    WriteSpec(#[source] oci_spec::OciSpecError),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BundleError {
    let path = path.to_path_buf();
    move |source| BundleError::Io {
        action,
        path,
        source,
    }
}

/// Where locald keeps bundles and container state: `/run/locald` for root, otherwise
/// `$XDG_RUNTIME_DIR/locald` or `/tmp/locald-$UID`.
pub fn runtime_root() -> PathBuf {
    let uid = nix::unistd::Uid::effective();
    if uid.is_root() {
        return PathBuf::from("/run/locald");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("locald"),
        _ => PathBuf::from(format!("/tmp/locald-{uid}")),
    }
}

/// libcontainer's state root for the shim (one directory per running container).
pub fn state_root() -> PathBuf {
    runtime_root().join("state")
}

/// A bundle directory ready for `locald-shim run`; removed by [`Bundle::remove`] or on drop.
#[derive(Debug)]
pub struct Bundle {
    id: String,
    dir: PathBuf,
    shim: PathBuf,
    removed: bool,
}

impl Bundle {
    /// Writes the bundle for `spec` under `runtime_root()/bundles/<id>`.
    pub fn create(spec: &ContainerSpec) -> Result<Bundle, crate::Error> {
        let oci = runtime_spec(spec, Mode::current())?;
        for volume in &spec.volumes {
            if !volume.host.exists() {
                return Err(BundleError::MissingVolumeSource(volume.host.clone()).into());
            }
        }
        let shim = shim::shim_path()?;
        let bundles = runtime_root().join("bundles");
        create_private_dir_all(&bundles)?;
        let dir = bundles.join(&spec.id);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                return Err(BundleError::AlreadyExists(spec.id.clone()).into())
            }
            Err(err) => return Err(io_error("creating", &dir)(err).into()),
        }
        // From here on the directory is ours: drop removes it if anything below fails.
        let bundle = Bundle {
            id: spec.id.clone(),
            dir,
            shim,
            removed: false,
        };
        bundle.populate(spec, oci)?;
        Ok(bundle)
    }

    fn populate(&self, spec: &ContainerSpec, mut oci: Spec) -> Result<(), BundleError> {
        for name in [
            runtime_spec::ROOTFS_DIR,
            runtime_spec::UPPER_DIR,
            runtime_spec::WORK_DIR,
        ] {
            let path = self.dir.join(name);
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&path)
                .map_err(io_error("creating", &path))?;
        }
        let hosts = self.dir.join(runtime_spec::HOSTS_FILE);
        fs::write(&hosts, hosts_file(spec.hostname.as_deref()))
            .map_err(io_error("writing", &hosts))?;
        let resolv = self.dir.join(runtime_spec::RESOLV_CONF_FILE);
        let host_resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
        fs::write(&resolv, host_resolv).map_err(io_error("writing", &resolv))?;

        let cwd = runtime_spec::process_cwd(spec);
        create_in_upper(
            &spec.image.rootfs,
            &self.dir.join(runtime_spec::UPPER_DIR),
            &cwd,
        )?;

        // The shim runs with an arbitrary working directory: make bundle-relative sources
        // absolute.
        if let Some(mounts) = oci.mounts_mut() {
            for mount in mounts.iter_mut() {
                if mount.typ().as_deref() == Some("bind") {
                    if let Some(source) = mount.source().clone() {
                        if source.is_relative() {
                            mount.set_source(Some(self.dir.join(source)));
                        }
                    }
                }
            }
        }
        oci.save(self.dir.join("config.json"))
            .map_err(BundleError::WriteSpec)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `locald-shim run` invocation for this bundle; the caller chooses stdio.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.shim);
        command
            .arg("run")
            .arg("--bundle")
            .arg(&self.dir)
            .arg("--id")
            .arg(&self.id)
            .arg("--root")
            .arg(state_root());
        command
    }

    /// Deletes the bundle directory (the container must have exited).
    pub fn remove(mut self) -> Result<(), crate::Error> {
        self.removed = true;
        remove_tree(&self.dir).map_err(|err| io_error("removing", &self.dir)(err).into())
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if !self.removed {
            let _ = remove_tree(&self.dir);
        }
    }
}

fn create_private_dir_all(path: &Path) -> Result<(), BundleError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_error("creating", path))
}

/// Removes a bundle. overlayfs leaves `work/work` with mode 000, which a non-root owner must
/// open up before it can delete it.
fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
            make_owner_writable(dir);
            fs::remove_dir_all(dir)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn make_owner_writable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_owner_writable(&entry.path());
            }
        }
    }
}

/// The container's /etc/hosts: loopback names, plus the hostname when one is set (host
/// networking means the host's own addresses are the container's).
fn hosts_file(hostname: Option<&str>) -> String {
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(name) = hostname {
        hosts.push_str(&format!("127.0.1.1\t{name}\n"));
    }
    hosts
}

/// Makes `path` (absolute, in the container) exist once the overlay is mounted, by creating the
/// missing directories in the upper layer: the image's rootfs is shared and never written.
/// Stops at a component that the image has as a symlink or a file, leaving it to the container.
fn create_in_upper(lower: &Path, upper: &Path, path: &str) -> Result<(), BundleError> {
    // `..` could climb out of the rootfs through the image's layout: leave such paths be.
    if Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Ok(());
    }
    let mut relative = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) => relative.push(name),
            _ => continue,
        }
        let image_dir = match fs::symlink_metadata(lower.join(&relative)) {
            Ok(meta) if meta.is_dir() => Some(meta),
            Ok(_) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(io_error("inspecting", &lower.join(&relative))(err)),
        };
        let target = upper.join(&relative);
        match fs::DirBuilder::new().mode(0o755).create(&target) {
            Ok(()) => {
                // An upper directory's attributes win in the merged view: keep the image's.
                if let Some(meta) = image_dir {
                    let _ = fs::set_permissions(&target, meta.permissions());
                    let _ = std::os::unix::fs::lchown(&target, Some(meta.uid()), Some(meta.gid()));
                }
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(io_error("creating", &target)(err)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_is_created_in_the_upper_layer_only() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir(lower.path().join("srv")).unwrap();
        fs::set_permissions(lower.path().join("srv"), fs::Permissions::from_mode(0o750)).unwrap();
        create_in_upper(lower.path(), upper.path(), "/srv/app/data").unwrap();
        assert!(upper.path().join("srv/app/data").is_dir());
        let srv = fs::metadata(upper.path().join("srv")).unwrap();
        assert_eq!(srv.permissions().mode() & 0o7777, 0o750);
        assert!(!lower.path().join("srv/app").exists());
    }

    #[test]
    fn workdir_creation_stops_at_image_symlinks() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", lower.path().join("app")).unwrap();
        create_in_upper(lower.path(), upper.path(), "/app/x").unwrap();
        assert!(!upper.path().join("app").exists());
        create_in_upper(lower.path(), upper.path(), "/a/../../x").unwrap();
        assert!(!upper.path().join("a").exists());
    }

    #[test]
    fn hosts_file_names_the_hostname() {
        assert!(hosts_file(None).starts_with("127.0.0.1\tlocalhost\n"));
        assert!(hosts_file(Some("web")).ends_with("127.0.1.1\tweb\n"));
    }

    #[test]
    fn runtime_root_depends_on_the_user() {
        if nix::unistd::Uid::effective().is_root() {
            assert_eq!(runtime_root(), PathBuf::from("/run/locald"));
        }
        assert_eq!(state_root(), runtime_root().join("state"));
    }

    #[test]
    fn removal_opens_up_unreadable_directories() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("bundle");
        fs::create_dir_all(tree.join("work/work")).unwrap();
        fs::set_permissions(tree.join("work/work"), fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        remove_tree(&tree).unwrap();
    }
}
