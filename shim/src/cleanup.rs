//! Undoing everything a run created (container state, cgroups, overlay, console socket, the
//! spec's copy), however the run ends.

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use libcontainer::container::Container;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use locald_shim_protocol::cgroup::{self as cgroup_fs, open_dir, remove_empty_parents};
use locald_shim_protocol::mountinfo;

use crate::cgroups::V1Cgroups;
use crate::mounts::OverlayRootfs;
use crate::run::{CONSOLE_SOCKET, LIBCONTAINER_CONFIG_DIR};

/// Everything the shim created, undone in reverse order however the run ended (on drop).
pub(crate) struct Cleanup {
    pub(crate) bundle: PathBuf,
    /// libcontainer's state directory for the container (`<state root>/<id>`).
    pub(crate) state_dir: PathBuf,
    pub(crate) cgroups_path: Option<PathBuf>,
    pub(crate) overlay: Option<OverlayRootfs>,
    pub(crate) rootless: bool,
    /// The cgroups the shim set up itself (root on a cgroup v1 host).
    pub(crate) managed_cgroups: Option<V1Cgroups>,
    pub(crate) container: Option<Container>,
    /// The container's init while it may still run (not reaped yet).
    pub(crate) init: Option<Pid>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut container) = self.container.take() {
            if self.rootless || self.managed_cgroups.is_some() {
                // libcontainer's delete would kill the pids its init wrote to the scratch
                // cgroupfs, which may have been reused by now. Killing the init takes the rest of
                // its pid namespace down with it.
                if let Some(init) = self.init.take() {
                    let _ = kill(init, Signal::SIGKILL);
                    let _ = waitpid(init, None);
                }
            } else if let Err(err) = container.delete(true) {
                eprintln!("locald-shim: deleting the container: {err}");
            }
        }
        // libcontainer removes it when it deletes the container; not on the other paths (and not
        // when its delete failed half-way).
        let _ = fs::remove_dir_all(&self.state_dir);
        if let Some(cgroups) = &mut self.managed_cgroups {
            for error in cgroups.remove() {
                eprintln!("locald-shim: {error}");
            }
        } else if !self.rootless {
            remove_cgroup_parents(self.cgroups_path.as_deref());
        }
        if let Some(overlay) = &self.overlay {
            overlay.unmount();
        }
        let _ = fs::remove_file(self.bundle.join(CONSOLE_SOCKET));
        let _ = fs::remove_dir_all(self.bundle.join(LIBCONTAINER_CONFIG_DIR));
    }
}

/// libcontainer removes the container's own cgroup but not the parents it created (for
/// `/locald/<id>`, the `locald` directory). Remove them when empty; a busy one belongs to another
/// running container and rmdir leaves it alone.
fn remove_cgroup_parents(cgroups_path: Option<&Path>) {
    let Some(path) = cgroups_path else { return };
    let Ok(relative) = path.strip_prefix("/") else {
        return;
    };
    if relative
        .parent()
        .is_none_or(|parent| parent.as_os_str().is_empty())
    {
        return;
    }
    let Ok(text) = mountinfo::read() else {
        return;
    };
    for mount in cgroup_fs::cgroup_mounts(&text) {
        if let Ok(root) = open_dir(None, &mount.mount_point) {
            remove_empty_parents(root.as_fd(), relative);
        }
    }
}
