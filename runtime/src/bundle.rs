//! Prepared OCI bundles: `config.json`, an empty rootfs mount point, the overlay's writable
//! upper/work directories and the container's /etc/hosts and /etc/resolv.conf, in a 0700
//! directory `<runtime_root>/bundles/<id>`.
//!
//! Next to it, `<id>.lock` is locked (a shared flock(2)) for as long as the bundle is in use:
//! [`Bundle`] takes the lock before it creates the directory and drops it after removing it, and
//! `locald-shim` takes its own for as long as it runs (`<bundle dir>.lock`, when present). A
//! bundle whose lock nobody holds (an exclusive lock can be had) belongs to processes that are
//! gone, killed with `kill -9` say: [`crate::sweep_stale`] removes it.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{mkdirat, Mode as FileMode};

use locald_shim_protocol::args::RunArgs;
use locald_shim_protocol::lock::{same_file, try_lock, LockMode};
use locald_shim_protocol::private_dir::{ensure_private_subdir, PrivateDirError};
use locald_shim_protocol::{seccomp_cache, LOCK_SUFFIX};

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
    /// The runtime root or a directory in it is not private to the caller.
    #[error(transparent)]
    PrivateDir(#[from] PrivateDirError),
    /// `XDG_RUNTIME_DIR` is not the caller's own: locald will not keep bundles there.
    #[error("XDG_RUNTIME_DIR: {0} (or unset XDG_RUNTIME_DIR)")]
    XdgRuntimeDir(PrivateDirError),
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
/// `$XDG_RUNTIME_DIR/locald` or `/tmp/locald-$UID`. locald uses it only once it has checked
/// that it is private to the caller (mode 0700, owned by the caller, no symlink: see
/// [`locald_shim_protocol::private_dir`]).
pub fn runtime_root() -> PathBuf {
    let uid = nix::unistd::Uid::effective();
    if uid.is_root() {
        return PathBuf::from("/run/locald");
    }
    match xdg_runtime_dir() {
        Some(dir) => dir.join("locald"),
        None => PathBuf::from(format!("/tmp/locald-{uid}")),
    }
}

/// `$XDG_RUNTIME_DIR` when set and not empty.
pub(crate) fn xdg_runtime_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
}

/// libcontainer's state root for the shim (one directory per running container).
pub fn state_root() -> PathBuf {
    runtime_root().join("state")
}

/// The directory holding every bundle and its lock file.
pub fn bundles_root() -> PathBuf {
    runtime_root().join("bundles")
}

/// The lock file of bundle `id`: `<bundles_root>/<id>.lock`, where the shim looks for it
/// ([`locald_shim_protocol::bundle_lock_path`] of the bundle directory).
pub(crate) fn lock_path(bundles: &Path, id: &str) -> PathBuf {
    bundles.join(format!("{id}{LOCK_SUFFIX}"))
}

/// A bundle directory ready for `locald-shim run`; removed by [`Bundle::remove`] or on drop.
/// Holds the bundle's lock for its whole life.
#[derive(Debug)]
pub struct Bundle {
    id: String,
    dir: PathBuf,
    shim: PathBuf,
    lock: Option<OwnedFd>,
    lock_path: PathBuf,
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
        let root = crate::root::prepare()?;
        // Entries are made through the checked directories' descriptors: nothing is created
        // through a symlink, whoever planted it.
        let bundles_fd = ensure_private_subdir(root.fd.as_fd(), &root.path, "bundles".as_ref())
            .map_err(BundleError::from)?;
        // The shim's state root (it checks it again).
        ensure_private_subdir(root.fd.as_fd(), &root.path, "state".as_ref())
            .map_err(BundleError::from)?;
        let bundles = root.path.join("bundles");
        let lock_path = lock_path(&bundles, &spec.id);
        let lock = create_locked(bundles_fd.as_fd(), &lock_path, &spec.id)?;
        let dir = bundles.join(&spec.id);
        // From here on the lock file is ours, and the directory once created: drop removes them
        // if anything below fails.
        let mut bundle = Bundle {
            id: spec.id.clone(),
            dir,
            shim,
            lock: Some(lock),
            lock_path,
            removed: false,
        };
        match mkdirat(
            bundles_fd.as_fd(),
            spec.id.as_str(),
            FileMode::from_bits_truncate(0o700),
        ) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                // A leftover of some other run with this id: not ours to remove.
                bundle.dir = PathBuf::new();
                return Err(BundleError::AlreadyExists(spec.id.clone()).into());
            }
            Err(err) => {
                let dir = std::mem::take(&mut bundle.dir);
                return Err(io_error("creating", &dir)(err.into()).into());
            }
        }
        let dir_fd = nix::fcntl::openat(
            bundles_fd.as_fd(),
            spec.id.as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            FileMode::empty(),
        )
        .map_err(|err| io_error("opening", &bundle.dir)(err.into()))?;
        bundle.populate(dir_fd.as_fd(), spec, oci)?;
        Ok(bundle)
    }

    /// Fills the new bundle directory, open as `dir`: its entries are made relative to that
    /// descriptor, new and without following symlinks.
    fn populate(
        &self,
        dir: BorrowedFd<'_>,
        spec: &ContainerSpec,
        mut oci: Spec,
    ) -> Result<(), BundleError> {
        for name in [
            runtime_spec::ROOTFS_DIR,
            runtime_spec::UPPER_DIR,
            runtime_spec::WORK_DIR,
        ] {
            mkdirat(dir, name, FileMode::from_bits_truncate(0o755))
                .map_err(|err| io_error("creating", &self.dir.join(name))(err.into()))?;
        }
        let hosts = hosts_file(spec.hostname.as_deref());
        self.write_new(dir, runtime_spec::HOSTS_FILE, hosts.as_bytes())?;
        let host_resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
        self.write_new(dir, runtime_spec::RESOLV_CONF_FILE, &host_resolv)?;

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
        let config = serde_json::to_vec(&oci)
            .map_err(|err| io_error("writing", &self.dir.join("config.json"))(err.into()))?;
        self.write_new(dir, "config.json", &config)
    }

    /// Creates the file `name` (mode 0644: the container reads some of them) in the bundle
    /// directory `dir`; it must not exist yet.
    fn write_new(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        contents: &[u8],
    ) -> Result<(), BundleError> {
        let path = self.dir.join(name);
        let fd = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            FileMode::from_bits_truncate(0o644),
        )
        .map_err(|err| io_error("creating", &path)(err.into()))?;
        fs::File::from(fd)
            .write_all(contents)
            .map_err(io_error("writing", &path))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `locald-shim run` arguments for this bundle.
    pub fn shim_args(&self) -> RunArgs {
        RunArgs {
            state_root: state_root(),
            // Compiled seccomp programs, kept across containers (a few KiB per distinct profile
            // and capability set, in memory until reboot).
            seccomp_cache: Some(seccomp_cache::cache_dir(&runtime_root())),
            // The runtime root was checked private (`prepare_runtime_root`) and the bundle and state
            // root made in it, here, in the host's ids: a shim started inside a rootless
            // supervisor's user namespace, where root shows as the overflow uid, relies on that.
            parents_checked_on_host: true,
            ..RunArgs::new(self.dir.clone(), self.id.clone())
        }
    }

    /// The `locald-shim run` invocation for this bundle; the caller chooses stdio.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.shim);
        command.args(self.shim_args().to_argv());
        command
    }

    /// Deletes the bundle directory, then its lock (the container must have exited).
    pub fn remove(mut self) -> Result<(), crate::Error> {
        self.removed = true;
        let result = self.remove_files();
        result.map_err(Into::into)
    }

    fn remove_files(&mut self) -> Result<(), BundleError> {
        if !self.dir.as_os_str().is_empty() && nix::unistd::Uid::effective().is_root() {
            // The shim removes the container's cgroups; if the shim was killed, its container
            // may still be running in them, with nobody left to stop it.
            let _ = crate::cleanup::remove_cgroups(
                &crate::cleanup::cgroup_mount_points(),
                &runtime_spec::cgroup_relative_path(&self.id),
            );
        }
        if !self.dir.as_os_str().is_empty() {
            remove_tree(&self.dir).map_err(io_error("removing", &self.dir))?;
        }
        // The directory is gone: now the lock may go (a sweep treats a bundle directory without
        // a lock file as stale, so the lock file must outlive the directory).
        if let Some(lock) = self.lock.take() {
            if same_file(lock.as_fd(), &self.lock_path) {
                let _ = fs::remove_file(&self.lock_path);
            }
        }
        Ok(())
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.remove_files();
        }
    }
}

/// Creates `lock_path` already locked (shared), so that no sweep can ever see it unlocked: an anonymous
/// file (`O_TMPFILE`) is locked, then linked in under its name. Filesystems without `O_TMPFILE`
/// get a plain exclusive create, locked at once and checked to still be the file at that path
/// (a sweep could have taken and removed it in between: then again).
fn create_locked(
    bundles: BorrowedFd<'_>,
    lock_path: &Path,
    id: &str,
) -> Result<OwnedFd, BundleError> {
    let lock_error = |source: Errno| BundleError::Io {
        action: "locking",
        path: lock_path.to_path_buf(),
        source: source.into(),
    };
    let mode = FileMode::from_bits_truncate(0o600);
    let name = lock_path
        .file_name()
        .ok_or_else(|| lock_error(Errno::EINVAL))?;
    match nix::fcntl::openat(
        bundles,
        ".",
        OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        mode,
    ) {
        Ok(fd) => {
            try_lock(fd.as_fd(), LockMode::Shared).map_err(lock_error)?;
            // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc link works for anyone.
            let proc_path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            return match nix::unistd::linkat(
                nix::fcntl::AT_FDCWD,
                proc_path.as_path(),
                bundles,
                name,
                nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
            ) {
                Ok(()) => Ok(fd),
                Err(Errno::EEXIST) => Err(BundleError::AlreadyExists(id.to_string())),
                Err(err) => Err(lock_error(err)),
            };
        }
        Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL | Errno::ENOENT) => {}
        Err(err) => return Err(lock_error(err)),
    }
    for _ in 0..8 {
        let fd = match nix::fcntl::openat(
            bundles,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            mode,
        ) {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => return Err(BundleError::AlreadyExists(id.to_string())),
            Err(err) => return Err(lock_error(err)),
        };
        match try_lock(fd.as_fd(), LockMode::Shared) {
            Ok(()) if same_file(fd.as_fd(), lock_path) => return Ok(fd),
            // A sweep got to it first and will remove it.
            Ok(()) | Err(Errno::EWOULDBLOCK) => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(err) => return Err(lock_error(err)),
        }
    }
    Err(lock_error(Errno::EAGAIN))
}

use crate::cleanup::remove_tree;

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
    use std::os::unix::fs::PermissionsExt;

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
    fn the_lock_is_where_the_shim_looks_for_it() {
        let bundles = Path::new("/run/locald/bundles");
        assert_eq!(
            Some(lock_path(bundles, "web-1")),
            locald_shim_protocol::bundle_lock_path(&bundles.join("web-1"))
        );
    }

    #[test]
    fn the_shim_reads_back_the_arguments_the_runtime_gives_it() {
        let bundle = Bundle {
            id: "web-1".into(),
            dir: "/run/locald/bundles/web-1".into(),
            shim: "/usr/bin/locald-shim".into(),
            lock: None,
            lock_path: PathBuf::new(),
            removed: true,
        };
        let args = bundle.shim_args();
        assert_eq!(args.state_root, state_root());
        assert_eq!(
            args.seccomp_cache,
            Some(runtime_root().join(seccomp_cache::DIR_NAME))
        );
        let command = bundle.command();
        assert_eq!(command.get_program(), "/usr/bin/locald-shim");
        assert_eq!(RunArgs::parse(command.get_args()), Ok(args));
    }

    #[test]
    fn runtime_root_depends_on_the_user() {
        if nix::unistd::Uid::effective().is_root() {
            assert_eq!(runtime_root(), PathBuf::from("/run/locald"));
        }
        assert_eq!(state_root(), runtime_root().join("state"));
    }
}
