//! What locald's runtime side (the `locald-runtime` crate, the engine) and `locald-shim` agree
//! on, written down once: the two are built together but run as separate processes, and every
//! name or rule one side assumed of the other used to be copied by hand (and drifted).
//!
//! - [`args`]: the shim's command line, built by the runtime and parsed by the shim.
//! - [`exit`]: exit codes (128 + N for signal N), as the shim and `__service-init` report them.
//! - [`PARENT_ENV`], the overlay annotations ([`LOWER_ANNOTATION`], [`UPPER_ANNOTATION`],
//!   [`WORK_ANNOTATION`]).
//! - [`lock`]: the bundle's lock file, held by whoever uses the bundle, taken by a sweep.
//! - [`signals`]: the signals passed on to a service or container rather than acted on.
//! - [`mountinfo`]: the mount table, with mount points unescaped.
//! - [`mount_ns`]: a process's own private mount namespace and `/proc` (the shim's, and the
//!   engine's `locald exec` helper's).
//! - [`cgroup`]: cgroup mounts from mountinfo, and removing a container's cgroup and its empty
//!   parents.
//! - [`private_dir`]: the checks that a directory (image store, runtime root, bundle, state root)
//!   can be changed by no one but root and the caller.
//! - [`seccomp_cache`]: where and how compiled seccomp programs are cached.
//! - [`regular_file`]: opening a file that must be a regular one without blocking on a FIFO;
//!   not shim protocol, but every crate that opens such files (image, runtime, engine) links
//!   this one, so it is written here once.
//!
//! The shim links this crate, so it depends on nothing the shim does not link already (no tokio,
//! no image code).

pub mod args;
pub mod cgroup;
pub mod exit;
pub mod lock;
pub mod mount_ns;
pub mod mountinfo;
pub mod private_dir;
pub mod regular_file;
pub mod seccomp_cache;
pub mod signals;

pub use lock::{bundle_lock_path, LOCK_SUFFIX};

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
