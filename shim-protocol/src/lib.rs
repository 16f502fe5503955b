//! What locald's runtime side (the `locald-runtime` crate, the engine) and `locald-shim` agree
//! on, written down once: the two are built together but run as separate processes, and every
//! name or rule one side assumed of the other used to be copied by hand (and drifted).
//!
//! - [`args`]: the shim's command line, built by the runtime and parsed by the shim.
//! - [`PARENT_ENV`], the overlay annotations ([`LOWER_ANNOTATION`], [`UPPER_ANNOTATION`],
//!   [`WORK_ANNOTATION`]) and the bundle lock file ([`LOCK_SUFFIX`], [`bundle_lock_path`]).
//! - [`signals`]: the signals passed on to a service or container rather than acted on.
//! - [`cgroup`]: cgroup mounts from mountinfo, and removing a container's cgroup and its empty
//!   parents.
//! - [`private_dir`]: the checks that a directory (image store, runtime root, bundle, state root)
//!   can be changed by no one but root and the caller.
//! - [`seccomp_cache`]: where and how compiled seccomp programs are cached.
//!
//! The shim links this crate, so it depends on nothing the shim does not link already (no tokio,
//! no image code).

pub mod args;
pub mod cgroup;
pub mod private_dir;
pub mod seccomp_cache;
pub mod signals;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Set by `locald container run` to its own pid in the shim's environment: the shim then treats
/// the death of that parent as a stop request (`PR_SET_PDEATHSIG`), so that a killed caller
/// leaves no container running.
pub const PARENT_ENV: &str = "LOCALD_SHIM_PARENT_PID";

/// Spec annotations with which the runtime asks the shim for an overlay rootfs: the read-only
/// image directory (absolute), and the per-container writable upper and work directories
/// (relative to the bundle). The shim mounts the overlay on the spec's root path.
pub const LOWER_ANNOTATION: &str = "org.locald.rootfs.lower";
pub const UPPER_ANNOTATION: &str = "org.locald.rootfs.upper";
pub const WORK_ANNOTATION: &str = "org.locald.rootfs.work";

/// The lock file of a bundle is the bundle directory's path with this suffix (`<dir>.lock`).
/// Whoever uses the bundle holds a shared flock(2) on it; a sweep that gets an exclusive one
/// knows the bundle is stale.
pub const LOCK_SUFFIX: &str = ".lock";

/// The lock file of the bundle directory `bundle` (`<bundle>.lock`, beside it); `None` for a
/// path without a final name (`/`, `..`).
pub fn bundle_lock_path(bundle: &Path) -> Option<PathBuf> {
    let name = bundle.file_name()?;
    let mut lock_name = OsString::from(name);
    lock_name.push(LOCK_SUFFIX);
    Some(bundle.with_file_name(lock_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_sits_beside_the_bundle() {
        assert_eq!(
            bundle_lock_path(Path::new("/run/locald/bundles/web-1")),
            Some(PathBuf::from("/run/locald/bundles/web-1.lock"))
        );
        assert_eq!(bundle_lock_path(Path::new("/")), None);
    }
}
